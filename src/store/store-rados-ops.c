/* store-rados-ops.c — accounts and mailboxes of the rados backend.
 *
 * Trust boundary: see store-rados.c. An account object is named by an id
 * taken from the keyed hash of the address (never the address) and holds
 * the full hash, the public key and the wrapped private keys. Creating a
 * mailbox takes its UIDVALIDITY from the account's "ver" xattr in a guarded
 * write, so validities grow per account even with several nodes. */
#include "store/store-rados-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RADOS_ACCT_BYTES (STORE_TAG_BYTES + STORE_PK_BYTES + 8)

static uint64_t rados_account_id(const uint8_t addr_hash[STORE_ADDR_HASH_BYTES])
{
	uint64_t id = 0;

	for (int i = 0; i < 8; i++)
		id = id << 8 | addr_hash[i];
	id &= INT64_MAX;
	return id != 0 ? id : 1;
}

int rados_account_create(struct store *s, struct store_account *a, const char **error_r)
{
	uint8_t acct[RADOS_ACCT_BYTES];
	char oid[RADOS_OID_MAX];
	rados_write_op_t op;
	uint64_t created = (uint64_t)a->created;
	int r;

	a->id = rados_account_id(a->addr_hash);
	rados_oid_account(oid, a->id);
	memcpy(acct, a->tag, STORE_TAG_BYTES);
	memcpy(acct + STORE_TAG_BYTES, a->pk, STORE_PK_BYTES);
	for (int i = 0; i < 8; i++)
		acct[STORE_TAG_BYTES + STORE_PK_BYTES + i] = (uint8_t)(created >> (8 * i));
	op = rados_create_write_op();
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, "hash", (const char *)a->addr_hash, STORE_ADDR_HASH_BYTES);
	rados_write_op_setxattr(op, "acct", (const char *)acct, sizeof(acct));
	rados_write_op_setxattr(op, "wp", (const char *)a->wrapped_password.data,
				a->wrapped_password.len);
	rados_write_op_setxattr(op, "wr", (const char *)a->wrapped_recovery.data,
				a->wrapped_recovery.len);
	if (a->address_sealed.len > 0)
		rados_write_op_setxattr(op, "addr", (const char *)a->address_sealed.data,
					a->address_sealed.len);
	rados_write_op_setxattr(op, "ver", "0", 1);
	r = rados_write_op_operate2(op, RS(s)->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == -EEXIST) {
		*error_r = "account already exists";
		return -1;
	}
	return r < 0 ? rados_fail(r, "create account", error_r) : 0;
}

static void rados_xattr_buf(struct buf *b, const char *val, size_t len)
{
	buf_reset(b);
	if (len > 0 && buf_append(b, val, len) < 0)
		log_fatal("out of memory");
}

int rados_account_get(struct store *s, const uint8_t addr_hash[STORE_ADDR_HASH_BYTES],
		      struct store_account *a, const char **error_r)
{
	uint64_t id = rados_account_id(addr_hash);
	rados_read_op_t op = rados_create_read_op();
	rados_xattrs_iter_t iter;
	char oid[RADOS_OID_MAX];
	const char *name, *val;
	size_t len;
	int prval = 0, r, found = 0, ok = 0;

	rados_oid_account(oid, id);
	rados_read_op_getxattrs(op, &iter, &prval);
	r = rados_read_op_operate(op, RS(s)->io, oid, 0);
	rados_release_read_op(op);
	if (r < 0 || prval < 0) {
		/* The iterator exists whatever the result. */
		rados_getxattrs_end(iter);
		if (r == -ENOENT)
			return 0;
		return rados_fail(r < 0 ? r : prval, "read account", error_r);
	}
	while (rados_getxattrs_next(iter, &name, &val, &len) == 0 && name != NULL) {
		if (strcmp(name, "hash") == 0) {
			found = len == STORE_ADDR_HASH_BYTES &&
				memcmp(val, addr_hash, STORE_ADDR_HASH_BYTES) == 0;
		} else if (strcmp(name, "acct") == 0 && len == RADOS_ACCT_BYTES) {
			uint64_t created = 0;

			memcpy(a->tag, val, STORE_TAG_BYTES);
			memcpy(a->pk, val + STORE_TAG_BYTES, STORE_PK_BYTES);
			for (int i = 0; i < 8; i++)
				created |=
				    (uint64_t)(uint8_t)val[STORE_TAG_BYTES + STORE_PK_BYTES + i]
				    << (8 * i);
			a->created = (int64_t)created;
			ok = 1;
		} else if (strcmp(name, "wp") == 0) {
			rados_xattr_buf(&a->wrapped_password, val, len);
		} else if (strcmp(name, "wr") == 0) {
			rados_xattr_buf(&a->wrapped_recovery, val, len);
		} else if (strcmp(name, "addr") == 0) {
			rados_xattr_buf(&a->address_sealed, val, len);
		}
	}
	rados_getxattrs_end(iter);
	if (!found)
		return 0;
	if (!ok) {
		*error_r = "store: malformed account object";
		return -1;
	}
	a->id = id;
	memcpy(a->addr_hash, addr_hash, STORE_ADDR_HASH_BYTES);
	return 1;
}

int rados_account_set_wrapped(struct store *s, uint64_t account_id, const struct buf *password,
			      const struct buf *recovery, const char **error_r)
{
	rados_write_op_t op = rados_create_write_op();
	char oid[RADOS_OID_MAX];
	int r;

	rados_oid_account(oid, account_id);
	rados_write_op_assert_exists(op);
	rados_write_op_setxattr(op, "wp", (const char *)password->data, password->len);
	rados_write_op_setxattr(op, "wr", (const char *)recovery->data, recovery->len);
	r = rados_write_op_operate2(op, RS(s)->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == -ENOENT) {
		*error_r = "no such account";
		return -1;
	}
	return r < 0 ? rados_fail(r, "update account", error_r) : 0;
}

int rados_account_delete(struct store *s, uint64_t account_id, const char **error_r)
{
	char oid[RADOS_OID_MAX];
	uint64_t *ids = NULL;
	size_t n = 0;
	int r;

	if (rados_account_mailboxes(RS(s), account_id, &ids, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rados_mailbox_delete(s, account_id, ids[i], error_r) < 0) {
			free(ids);
			return -1;
		}
	}
	free(ids);
	rados_oid_account(oid, account_id);
	r = rados_remove(RS(s)->io, oid);
	return r < 0 && r != -ENOENT ? rados_fail(r, "remove account", error_r) : 0;
}

/* Reads mailbox ID (header and sealed name): 1, 0 when it does not exist. */
static int rados_mailbox_read(struct rados_store *rs, uint64_t id, struct store_mailbox *b,
			      const char **error_r)
{
	struct rados_hdr h;
	char oid[RADOS_OID_MAX], name[4096];
	int r, n;

	if ((r = rados_hdr_read(rs, id, &h, NULL, error_r)) <= 0)
		return r;
	rados_oid_mailbox(oid, id);
	n = rados_getxattr(rs->io, oid, "name", name, sizeof(name));
	if (n < 0 && n != -ENODATA && n != -ENOENT)
		return rados_fail(n, "read mailbox name", error_r);
	buf_reset(&b->name_sealed);
	if (n > 0 && buf_append(&b->name_sealed, name, (size_t)n) < 0)
		log_fatal("out of memory");
	b->id = id;
	b->account_id = h.account_id;
	b->role = (enum store_role)h.role;
	b->uidvalidity = h.uidvalidity;
	b->uidnext = h.uidnext;
	b->highestmodseq = h.modseq;
	b->messages = h.messages;
	b->subscribed = h.subscribed;
	return 1;
}

int rados_account_usage(struct store *s, uint64_t account_id, uint64_t *messages_r,
			uint64_t *bytes_r, const char **error_r)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int ret = 0;

	*messages_r = *bytes_r = 0;
	if (rados_account_mailboxes(RS(s), account_id, &ids, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct rados_hdr h;
		int r = rados_hdr_read(RS(s), ids[i], &h, NULL, error_r);

		if (r < 0)
			ret = -1;
		else if (r > 0) {
			*messages_r += h.messages;
			*bytes_r += h.bytes;
		}
	}
	free(ids);
	return ret;
}

int rados_mailbox_create(struct store *s, uint64_t account_id, enum store_role role,
			 const struct buf *name_sealed, struct store_mailbox *box_r,
			 const char **error_r)
{
	struct rados_store *rs = RS(s);
	struct rados_hdr h = {account_id, (int)role, 0, 1, 1, 0, 0, 1, 0};
	char aoid[RADOS_OID_MAX], boid[RADOS_OID_MAX], key[RADOS_OID_MAX], text[128], ver[32];
	uint64_t id = 0;
	int r;

	rados_oid_account(aoid, account_id);
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		rados_write_op_t op;
		char newver[32];
		const char *val = "";
		size_t vlen = 0;
		uint32_t now = (uint32_t)time(NULL), old;
		int n = rados_getxattr(rs->io, aoid, "ver", ver, sizeof(ver) - 1);

		if (n == -ENOENT) {
			*error_r = "no such account";
			goto undo;
		}
		if (n < 0) {
			rados_fail(n, "read account", error_r);
			goto undo;
		}
		ver[n] = '\0';
		old = (uint32_t)strtoul(ver, NULL, 10);
		h.uidvalidity = now > old ? now : old + 1;
		rados_hdr_format(&h, text, sizeof(text));
		while (id == 0) {
			/* A fresh mailbox object; no one else knows its id yet. */
			id = 1 + (rados_random_u64() % (uint64_t)INT32_MAX);
			rados_oid_mailbox(boid, id);
			op = rados_create_write_op();
			rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
			rados_write_op_setxattr(op, "hdr", text, strlen(text));
			if (name_sealed != NULL && name_sealed->len > 0)
				rados_write_op_setxattr(op, "name", (const char *)name_sealed->data,
							name_sealed->len);
			r = rados_write_op_operate2(op, rs->io, boid, NULL, 0);
			rados_release_write_op(op);
			if (r == -EEXIST) {
				id = 0;
				continue;
			}
			if (r < 0) {
				id = 0;
				return rados_fail(r, "create mailbox", error_r);
			}
		}
		if ((r = rados_setxattr(rs->io, boid, "hdr", text, strlen(text))) < 0) {
			rados_fail(r, "create mailbox", error_r);
			goto undo;
		}
		snprintf(newver, sizeof(newver), "%" PRIu32, h.uidvalidity);
		snprintf(key, sizeof(key), "b.%08" PRIx64, id);
		op = rados_create_write_op();
		rados_write_op_cmpxattr(op, "ver", LIBRADOS_CMPXATTR_OP_EQ, ver, strlen(ver));
		rados_write_op_setxattr(op, "ver", newver, strlen(newver));
		rados_write_op_omap_set(op, (const char *const[]){key}, &val, &vlen, 1);
		r = rados_write_op_operate2(op, rs->io, aoid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED)
			continue;
		if (r < 0) {
			rados_fail(r, "register mailbox", error_r);
			goto undo;
		}
		if (box_r != NULL) {
			box_r->id = id;
			box_r->account_id = account_id;
			box_r->role = role;
			box_r->uidvalidity = h.uidvalidity;
			box_r->uidnext = 1;
			box_r->highestmodseq = 1;
			box_r->messages = 0;
			box_r->subscribed = 1;
			buf_reset(&box_r->name_sealed);
			if (name_sealed != NULL && name_sealed->len > 0 &&
			    buf_append(&box_r->name_sealed, name_sealed->data, name_sealed->len) <
				0)
				log_fatal("out of memory");
		}
		return 0;
	}
	*error_r = "store: mailbox create: too much contention";
undo:
	if (id != 0)
		rados_remove(rs->io, boid);
	return -1;
}

static int rados_box_cmp(const void *a, const void *b)
{
	const struct store_mailbox *x = a, *y = b;

	if (x->uidvalidity != y->uidvalidity)
		return x->uidvalidity < y->uidvalidity ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int rados_mailbox_list(struct store *s, uint64_t account_id, struct store_mailbox **boxes_r,
		       size_t *count_r, const char **error_r)
{
	struct store_mailbox *boxes;
	uint64_t *ids = NULL;
	size_t n = 0, got = 0;

	if (rados_account_mailboxes(RS(s), account_id, &ids, &n, error_r) < 0)
		return -1;
	boxes = xcalloc(n ? n : 1, sizeof(*boxes));
	for (size_t i = 0; i < n; i++) {
		int r = rados_mailbox_read(RS(s), ids[i], &boxes[got], error_r);

		if (r < 0) {
			free(ids);
			store_mailboxes_free(&boxes, got + 1);
			return -1;
		}
		/* A mailbox being deleted by another node may be gone. */
		if (r > 0 && boxes[got].account_id == account_id)
			got++;
		else
			store_mailbox_clear(&boxes[got]);
	}
	free(ids);
	/* Creation order: UIDVALIDITY grows per account. */
	qsort(boxes, got, sizeof(*boxes), rados_box_cmp);
	*boxes_r = boxes;
	*count_r = got;
	return 0;
}

int rados_mailbox_get_role(struct store *s, uint64_t account_id, enum store_role role,
			   struct store_mailbox *box_r, const char **error_r)
{
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	int ret = 0;

	if (rados_mailbox_list(s, account_id, &boxes, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (boxes[i].role == role) {
			store_mailbox_clear(box_r);
			*box_r = boxes[i];
			buf_init(&boxes[i].name_sealed);
			ret = 1;
			break;
		}
	}
	store_mailboxes_free(&boxes, n);
	return ret;
}

int rados_mailbox_get(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      struct store_mailbox *box_r, const char **error_r)
{
	struct store_mailbox b;
	int r;

	memset(&b, 0, sizeof(b));
	buf_init(&b.name_sealed);
	r = rados_mailbox_read(RS(s), mailbox_id, &b, error_r);
	if (r > 0 && b.account_id != account_id)
		r = 0;
	if (r > 0) {
		buf_free(&box_r->name_sealed);
		*box_r = b;
	} else {
		store_mailbox_clear(&b);
	}
	return r;
}

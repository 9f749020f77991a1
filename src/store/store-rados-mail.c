/* store-rados-mail.c — the IMAP side of the rados backend: index scans, flag
 * changes with modification sequences, expunge, copy and move, mailbox
 * delete, rename and subscribe.
 *
 * Trust boundary: see store-rados.c. Only plaintext index fields are read
 * or changed here; sealed names, metadata and records move as opaque bytes.
 * Each change of a mailbox is one write operation guarded by its header;
 * records lose their last reference (and their object) only after the index
 * no longer names them. */
#include "store/store-rados-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RADOS_KEYS_MAX 512

typedef int rados_val_fn(void *ctx, uint32_t uid, const char *val, size_t len);

/* Calls FN for the omap values PREFIX.<uid> of UIDS that exist, by uid. */
static int rados_by_uid(struct rados_store *rs, uint64_t mailbox_id, char prefix,
			const uint32_t *uids, size_t count, rados_val_fn *fn, void *ctx,
			const char **error_r)
{
	char oid[RADOS_OID_MAX], (*kb)[16] = xcalloc(RADOS_KEYS_MAX, 16);
	const char *keys[RADOS_KEYS_MAX];
	int ret = 0;

	rados_oid_mailbox(oid, mailbox_id);
	for (size_t off = 0; off < count && ret == 0; off += RADOS_KEYS_MAX) {
		size_t n = count - off < RADOS_KEYS_MAX ? count - off : RADOS_KEYS_MAX;
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t iter;
		char *key, *val;
		size_t klen, vlen;
		int prval = 0, r;

		for (size_t i = 0; i < n; i++) {
			rados_key_uid(kb[i], prefix, uids[off + i]);
			keys[i] = kb[i];
		}
		rados_read_op_omap_get_vals_by_keys(op, keys, n, &iter, &prval);
		r = rados_read_op_operate(op, rs->io, oid, 0);
		rados_release_read_op(op);
		if (r < 0 || prval < 0)
			rados_omap_get_end(iter); /* exists whatever the result */
		if (r == -ENOENT)
			break;
		if (r < 0 || prval < 0) {
			ret = rados_fail(r < 0 ? r : prval, "read index", error_r);
			break;
		}
		while (ret == 0 && rados_omap_get_next2(iter, &key, &val, &klen, &vlen) == 0 &&
		       key != NULL)
			ret = fn(ctx, (uint32_t)strtoul(key + 2, NULL, 16), val, vlen);
		rados_omap_get_end(iter);
	}
	free(kb);
	return ret;
}

static int rados_collect_entry(void *ctx, uint32_t uid, const char *val, size_t len)
{
	struct rados_entries *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->e = realloc(c->e, c->cap * sizeof(*c->e));
		if (c->e == NULL)
			log_fatal("out of memory");
	}
	if (rados_entry_unpack(val, len, &c->e[c->n]) < 0)
		return -1;
	c->e[c->n++].uid = uid;
	return 0;
}

static int rados_collect_meta(void *ctx, uint32_t uid, const char *val, size_t len)
{
	struct rados_entries *c = ctx;

	/* Entries and metadata come sorted by uid; match them up. */
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].uid == uid) {
			buf_reset(&c->meta[i]);
			if (len > 0 && buf_append(&c->meta[i], val, len) < 0)
				log_fatal("out of memory");
			break;
		}
	}
	return 0;
}

int rados_entries_get(struct rados_store *rs, uint64_t mailbox_id, const uint32_t *uids,
		      size_t count, struct rados_entries *c, const char **error_r)
{
	memset(c, 0, sizeof(*c));
	if (rados_by_uid(rs, mailbox_id, 'u', uids, count, rados_collect_entry, c, error_r) < 0) {
		rados_entries_free(c->e, c->n);
		if (*error_r == NULL)
			*error_r = "store: malformed index entry";
		return -1;
	}
	return 0;
}

int rados_metas_get(struct rados_store *rs, uint64_t mailbox_id, struct rados_entries *c,
		    const char **error_r)
{
	uint32_t *uids = xcalloc(c->n ? c->n : 1, sizeof(*uids));
	int r;

	c->meta = xcalloc(c->n ? c->n : 1, sizeof(*c->meta));
	for (size_t i = 0; i < c->n; i++) {
		buf_init(&c->meta[i]);
		uids[i] = c->e[i].uid;
	}
	r = rados_by_uid(rs, mailbox_id, 'm', uids, c->n, rados_collect_meta, c, error_r);
	free(uids);
	return r;
}

void rados_entries_clear(struct rados_entries *c)
{
	if (c->meta != NULL)
		for (size_t i = 0; i < c->n; i++)
			buf_free(&c->meta[i]);
	free(c->meta);
	rados_entries_free(c->e, c->n);
	memset(c, 0, sizeof(*c));
}

/* ---- scans --------------------------------------------------------------------- */

int rados_message_scan(struct store *s, uint64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
		       uint64_t modseq_min, int with_meta, store_message_fn *fn, void *ctx,
		       const char **error_r)
{
	struct rados_entries c;
	struct store_message m;
	size_t keep = 0;
	int ret = 0;

	memset(&c, 0, sizeof(c));
	if (rados_entries_read(RS(s), mailbox_id, uid_min, uid_max, &c.e, &c.n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < c.n; i++) {
		if (c.e[i].modseq > modseq_min)
			c.e[keep++] = c.e[i];
		else
			free(c.e[i].keywords);
	}
	c.n = keep;
	if (with_meta && rados_metas_get(RS(s), mailbox_id, &c, error_r) < 0) {
		rados_entries_clear(&c);
		return -1;
	}
	store_message_init(&m);
	for (size_t i = 0; i < c.n; i++) {
		const struct rados_entry *e = &c.e[i];

		m.id = mailbox_id << 32 | e->uid;
		m.mailbox_id = mailbox_id;
		m.uid = e->uid;
		m.flags = e->flags;
		m.keywords = e->keywords;
		m.modseq = e->modseq;
		m.internal_date = e->internal_date;
		m.size = e->size;
		m.record_size = e->record_size;
		buf_reset(&m.meta);
		if (with_meta && c.meta[i].len > 0 &&
		    buf_append(&m.meta, c.meta[i].data, c.meta[i].len) < 0)
			log_fatal("out of memory");
		if (fn(ctx, &m) != 0)
			break;
	}
	m.keywords = NULL;
	store_message_clear(&m);
	rados_entries_clear(&c);
	return ret;
}

int rados_message_list(struct store *s, uint64_t mailbox_id, uint32_t uid_min, store_message_fn *fn,
		       void *ctx, const char **error_r)
{
	return rados_message_scan(s, mailbox_id, uid_min, UINT32_MAX, 0, 1, fn, ctx, error_r);
}

/* ---- mailboxes ---------------------------------------------------------------- */

/* Removes the mailbox object in one write guarded by the header read with
 * its entries, so that a message added by another node in between (which
 * changes the header) makes the remove fail with -ECANCELED and start over
 * with that message among the entries whose records lose a reference.
 * First the header is marked as being deleted (one short guarded write):
 * from then on no one else sees the mailbox, so writers that keep adding
 * to it cannot make every try of the remove fail. */
/* Changes MAILBOX_ID's header with one guarded write (with NAME_SEALED as
 * its new name when not NULL), read and edited again whenever another
 * writer came in between; ANY: a mailbox being deleted too. EDIT returns 0
 * to write, 1 when the header is not one to change. 1 written, 0 no such
 * mailbox (or EDIT declined), -1 error. */
static int rados_hdr_update(struct rados_store *rs, uint64_t mailbox_id, int any,
			    int (*edit)(struct rados_hdr *h, void *ctx), void *ctx,
			    const struct buf *name_sealed, const char **error_r);

/* A delete that failed after marking MAILBOX_ID: the mark is taken off
 * again (best effort), so that the mailbox is seen and the delete can be
 * retried. (After a crash in between it stays hidden; deleting the account
 * removes it.) */
static int rados_unmark_edit(struct rados_hdr *h, void *ctx)
{
	(void)ctx;
	if (!h->deleting)
		return 1;
	h->deleting = 0;
	return 0;
}

static void rados_mailbox_unmark(struct rados_store *rs, uint64_t mailbox_id)
{
	const char *error;

	(void)rados_hdr_update(rs, mailbox_id, 1, rados_unmark_edit, NULL, NULL, &error);
}

static int rados_mailbox_remove(struct rados_store *rs, uint64_t account_id, uint64_t mailbox_id,
				const char **error_r)
{
	char oid[RADOS_OID_MAX];

	rados_oid_mailbox(oid, mailbox_id);
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_entry *e = NULL;
		struct rados_hdr h;
		char old[128];
		rados_write_op_t op;
		size_t n = 0;
		int r = rados_hdr_read_any(rs, mailbox_id, &h, old, error_r);

		if (r <= 0)
			return r;
		if (h.account_id != account_id)
			return 1;
		if (!h.deleting) {
			char marked[128];

			h.deleting = 1;
			op = rados_create_write_op();
			rados_hdr_guard(op, old, &h, marked);
			r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
			rados_release_write_op(op);
			if (r < 0 && r != -ECANCELED)
				return r == -ENOENT ? 0 : rados_fail(r, "remove mailbox", error_r);
			continue;
		}
		if (rados_entries_read(rs, mailbox_id, 1, UINT32_MAX, &e, &n, error_r) < 0) {
			rados_mailbox_unmark(rs, mailbox_id);
			return -1;
		}
		op = rados_create_write_op();
		rados_write_op_cmpxattr(op, "hdr", LIBRADOS_CMPXATTR_OP_EQ, old, strlen(old));
		rados_write_op_remove(op);
		r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED) {
			rados_entries_free(e, n);
			continue;
		}
		if (r < 0) {
			rados_entries_free(e, n);
			/* Gone already: whoever removed it dropped its references. */
			if (r == -ENOENT)
				return 0;
			rados_mailbox_unmark(rs, mailbox_id);
			return rados_fail(r, "remove mailbox", error_r);
		}
		for (size_t i = 0; i < n; i++) {
			if (rados_record_ref(rs, e[i].record, -1, error_r) < 0) {
				rados_entries_free(e, n);
				return -1;
			}
		}
		rados_entries_free(e, n);
		return 0;
	}
	rados_mailbox_unmark(rs, mailbox_id);
	*error_r = "store: mailbox delete: too much contention";
	return -1;
}

int rados_mailbox_delete(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			 const char **error_r)
{
	struct rados_store *rs = RS(s);
	char oid[RADOS_OID_MAX], key[RADOS_OID_MAX];
	const char *keys[1] = {key};
	rados_write_op_t op;
	int r;

	if ((r = rados_mailbox_remove(rs, account_id, mailbox_id, error_r)) != 0)
		return r < 0 ? -1 : 0; /* 1: another account's mailbox */
	rados_oid_account(oid, account_id);
	snprintf(key, sizeof(key), "b.%08llx", (unsigned long long)mailbox_id);
	op = rados_create_write_op();
	rados_write_op_omap_rm_keys(op, keys, 1);
	r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
	rados_release_write_op(op);
	return r < 0 && r != -ENOENT ? rados_fail(r, "unregister mailbox", error_r) : 0;
}

static int rados_hdr_update(struct rados_store *rs, uint64_t mailbox_id, int any,
			    int (*edit)(struct rados_hdr *h, void *ctx), void *ctx,
			    const struct buf *name_sealed, const char **error_r)
{
	char oid[RADOS_OID_MAX];

	rados_oid_mailbox(oid, mailbox_id);
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_hdr h;
		char old[128], new[128];
		rados_write_op_t op;
		int r = any ? rados_hdr_read_any(rs, mailbox_id, &h, old, error_r)
			    : rados_hdr_read(rs, mailbox_id, &h, old, error_r);

		if (r <= 0 || edit(&h, ctx) != 0)
			return r < 0 ? -1 : 0;
		op = rados_create_write_op();
		rados_hdr_guard(op, old, &h, new);
		if (name_sealed != NULL)
			rados_write_op_setxattr(op, "name", (const char *)name_sealed->data,
						name_sealed->len);
		r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED)
			continue;
		return r < 0 ? rados_fail(r, "update mailbox", error_r) : 1;
	}
	*error_r = "store: mailbox update: too much contention";
	return -1;
}

struct rados_update_ctx {
	uint64_t account_id;
	int subscribed;
};

static int rados_update_edit(struct rados_hdr *h, void *ctx)
{
	const struct rados_update_ctx *c = ctx;

	if (h->account_id != c->account_id)
		return 1;
	if (c->subscribed >= 0)
		h->subscribed = c->subscribed ? 1 : 0;
	return 0;
}

int rados_mailbox_update(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			 const struct buf *name_sealed, int subscribed, const char **error_r)
{
	struct rados_update_ctx c = {account_id, subscribed};

	if (rados_hdr_update(RS(s), mailbox_id, 0, rados_update_edit, &c, name_sealed, error_r) < 0)
		return -1;
	return 0;
}

/* Raises the UIDVALIDITY guard of ACCOUNT_ID ("ver": the last one given)
 * to at least UIDVALIDITY, so that a mailbox created later gets a higher
 * one than a moved mailbox brought. */
static int rados_account_ver_raise(struct rados_store *rs, uint64_t account_id,
				   uint32_t uidvalidity, const char **error_r)
{
	char oid[RADOS_OID_MAX], ver[32], newver[32];

	rados_oid_account(oid, account_id);
	snprintf(newver, sizeof(newver), "%" PRIu32, uidvalidity);
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		rados_write_op_t op;
		int r, n = rados_getxattr(rs->io, oid, "ver", ver, sizeof(ver) - 1);

		if (n < 0)
			return rados_fail(n, "read account", error_r);
		ver[n] = '\0';
		if (strtoul(ver, NULL, 10) >= uidvalidity)
			return 0;
		op = rados_create_write_op();
		rados_write_op_cmpxattr(op, "ver", LIBRADOS_CMPXATTR_OP_EQ, ver, (size_t)n);
		rados_write_op_setxattr(op, "ver", newver, strlen(newver));
		r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED)
			continue;
		return r < 0 ? rados_fail(r, "update account", error_r) : 0;
	}
	*error_r = "store: account update: too much contention";
	return -1;
}

struct rados_uids_ctx {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint64_t account_id; /* result */
};

static int rados_uids_edit(struct rados_hdr *h, void *ctx)
{
	struct rados_uids_ctx *c = ctx;

	h->uidvalidity = c->uidvalidity;
	if (h->uidnext < c->uidnext)
		h->uidnext = c->uidnext;
	if (h->modseq < c->highestmodseq)
		h->modseq = c->highestmodseq;
	c->account_id = h->account_id;
	return 0;
}

int rados_mailbox_set_uids(struct store *s, uint64_t mailbox_id, uint32_t uidvalidity,
			   uint32_t uidnext, uint64_t highestmodseq, const char **error_r)
{
	struct rados_uids_ctx c = {uidvalidity, uidnext, highestmodseq, 0};
	int r = rados_hdr_update(RS(s), mailbox_id, 0, rados_uids_edit, &c, NULL, error_r);

	if (r == 0)
		*error_r = "store: no such mailbox";
	if (r <= 0)
		return -1;
	return rados_account_ver_raise(RS(s), c.account_id, uidvalidity, error_r);
}

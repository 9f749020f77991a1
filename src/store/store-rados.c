/* store-rados.c — the distributed store: one Ceph RADOS pool per region.
 *
 * Trust boundary: holds only what store.h allows (ciphertext and plaintext
 * index fields); object names carry random ids or ids taken from keyed
 * hashes, never an address. Residency is the pool's: its CRUSH rule places
 * every object on the OSDs of one jurisdiction (docs/ceph.md). Several nodes
 * may share a pool: every change to a mailbox is one atomic RADOS write
 * operation guarded by a compare of the mailbox header ("hdr" xattr), retried
 * when another writer got there first (-ECANCELED), so no lock server is
 * needed and UIDs stay strictly increasing per mailbox.
 *
 * URI: rados:pool=POOL,conf=PATH,id=CLIENT[,namespace=NS] */
#include "store/store-rados-private.h"
#include "store/store-rados.h"

#include "crypto/seal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RADOS_OMAP_PAGE 512

int rados_fail(int err, const char *what, const char **error_r)
{
	*error_r = str_tfmt("store: rados %s: %s", what, strerror(err < 0 ? -err : err));
	return -1;
}

void rados_oid_account(char oid[RADOS_OID_MAX], uint64_t account_id)
{
	snprintf(oid, RADOS_OID_MAX, "a.%016" PRIx64, account_id);
}

void rados_oid_mailbox(char oid[RADOS_OID_MAX], uint64_t mailbox_id)
{
	snprintf(oid, RADOS_OID_MAX, "b.%08" PRIx64, mailbox_id);
}

void rados_oid_record(char oid[RADOS_OID_MAX], uint64_t record)
{
	snprintf(oid, RADOS_OID_MAX, "r.%016" PRIx64, record);
}

void rados_key_uid(char key[16], char prefix, uint32_t uid)
{
	snprintf(key, 16, "%c.%08" PRIx32, prefix, uid);
}

uint64_t rados_random_u64(void)
{
	uint64_t v;

	seal_random(&v, sizeof(v));
	return v;
}

/* ---- mailbox header ------------------------------------------------------- */

void rados_hdr_format(const struct rados_hdr *h, char *out, size_t size)
{
	snprintf(out, size,
		 "%" PRIu64 " %d %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %d%s",
		 h->account_id, h->role, h->uidvalidity, h->uidnext, h->modseq, h->messages,
		 h->bytes, h->subscribed, h->deleting ? " deleting" : "");
}

int rados_hdr_read(struct rados_store *rs, uint64_t mailbox_id, struct rados_hdr *h,
		   char text_r[128], const char **error_r)
{
	int r = rados_hdr_read_any(rs, mailbox_id, h, text_r, error_r);

	return r > 0 && h->deleting ? 0 : r;
}

int rados_hdr_read_any(struct rados_store *rs, uint64_t mailbox_id, struct rados_hdr *h,
		       char text_r[128], const char **error_r)
{
	char oid[RADOS_OID_MAX], text[128];
	int n, end = 0;

	rados_oid_mailbox(oid, mailbox_id);
	n = rados_getxattr(rs->io, oid, "hdr", text, sizeof(text) - 1);
	if (n == -ENOENT || n == -ENODATA)
		return 0;
	if (n < 0)
		return rados_fail(n, "read mailbox", error_r);
	text[n] = '\0';
	memset(h, 0, sizeof(*h));
	if (sscanf(text,
		   "%" SCNu64 " %d %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu32 " %" SCNu64
		   " %d%n",
		   &h->account_id, &h->role, &h->uidvalidity, &h->uidnext, &h->modseq, &h->messages,
		   &h->bytes, &h->subscribed, &end) != 8) {
		*error_r = "store: malformed mailbox header";
		return -1;
	}
	h->deleting = strcmp(text + end, " deleting") == 0;
	if (text_r != NULL)
		memcpy(text_r, text, (size_t)n + 1);
	return 1;
}

void rados_hdr_guard(rados_write_op_t op, const char *old_text, const struct rados_hdr *h,
		     char new_text[128])
{
	rados_hdr_format(h, new_text, 128);
	rados_write_op_cmpxattr(op, "hdr", LIBRADOS_CMPXATTR_OP_EQ, old_text, strlen(old_text));
	rados_write_op_setxattr(op, "hdr", new_text, strlen(new_text));
}

/* ---- index entries ---------------------------------------------------------- */

static void put_u64(struct buf *b, uint64_t v)
{
	uint8_t p[8];

	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	if (buf_append(b, p, 8) < 0)
		log_fatal("out of memory");
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#define RADOS_ENTRY_FIXED (6 * 8 + 2)

void rados_entry_pack(const struct rados_entry *e, struct buf *out)
{
	size_t kw = e->keywords != NULL ? strlen(e->keywords) : 0;
	uint8_t len[2] = {(uint8_t)kw, (uint8_t)(kw >> 8)};

	buf_reset(out);
	put_u64(out, e->flags);
	put_u64(out, e->modseq);
	put_u64(out, (uint64_t)e->internal_date);
	put_u64(out, e->size);
	put_u64(out, e->record_size);
	put_u64(out, e->record);
	if (buf_append(out, len, 2) < 0 || (kw > 0 && buf_append(out, e->keywords, kw) < 0))
		log_fatal("out of memory");
}

int rados_entry_unpack(const void *data, size_t len, struct rados_entry *e)
{
	const uint8_t *p = data;
	size_t kw;

	if (len < RADOS_ENTRY_FIXED)
		return -1;
	kw = (size_t)p[48] | (size_t)p[49] << 8;
	if (len != RADOS_ENTRY_FIXED + kw)
		return -1;
	e->flags = (uint32_t)get_u64(p);
	e->modseq = get_u64(p + 8);
	e->internal_date = (int64_t)get_u64(p + 16);
	e->size = get_u64(p + 24);
	e->record_size = get_u64(p + 32);
	e->record = get_u64(p + 40);
	e->keywords = NULL;
	if (kw > 0) {
		e->keywords = xmalloc(kw + 1);
		memcpy(e->keywords, p + RADOS_ENTRY_FIXED, kw);
		e->keywords[kw] = '\0';
	}
	return 0;
}

void rados_entries_free(struct rados_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(entries[i].keywords);
	free(entries);
}

/* Calls FN for every omap key of OID that starts with PREFIX and sorts
 * after AFTER (NULL: from the first), in key order, a page at a time. FN
 * returns 0 to go on, 1 to stop, -1 to fail (setting *ERROR_R). An object
 * that does not exist has no keys. WHAT names the read in errors. */
typedef int rados_omap_fn(void *ctx, const char *key, const char *val, size_t vlen,
			  const char **error_r);

static int rados_omap_scan(struct rados_store *rs, const char *oid, const char *prefix,
			   const char *after, const char *what, rados_omap_fn *fn, void *ctx,
			   const char **error_r)
{
	char from[RADOS_OID_MAX];
	unsigned char more = 1;
	int ret = 0;

	snprintf(from, sizeof(from), "%s", after != NULL ? after : prefix);
	while (more && ret == 0) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t iter;
		int prval = 0, r;
		char *key, *val;
		size_t klen, vlen;

		rados_read_op_omap_get_vals2(op, from, prefix, RADOS_OMAP_PAGE, &iter, &more,
					     &prval);
		r = rados_read_op_operate(op, rs->io, oid, 0);
		rados_release_read_op(op);
		if (r < 0 || prval < 0) {
			rados_omap_get_end(iter); /* exists whatever the result */
			if (r == -ENOENT)
				return 0;
			return rados_fail(r < 0 ? r : prval, what, error_r);
		}
		while (ret == 0 && rados_omap_get_next2(iter, &key, &val, &klen, &vlen) == 0 &&
		       key != NULL) {
			snprintf(from, sizeof(from), "%s", key);
			ret = fn(ctx, key, val, vlen, error_r);
		}
		rados_omap_get_end(iter);
	}
	return ret < 0 ? -1 : 0;
}

struct rados_tombstones {
	uint64_t modseq_min;
	store_uid_fn *fn;
	void *ctx;
};

static int rados_tombstone_cb(void *ctx, const char *key, const char *val, size_t vlen,
			      const char **error_r)
{
	struct rados_tombstones *t = ctx;
	char num[24];
	uint64_t modseq;

	if (vlen == 0 || vlen >= sizeof(num))
		return 0;
	memcpy(num, val, vlen);
	num[vlen] = '\0';
	modseq = strtoull(num, NULL, 10);
	if (modseq > t->modseq_min && t->fn(t->ctx, (uint32_t)strtoul(key + 2, NULL, 16), modseq))
		return 1;
	return 0;
}

/* The tombstones "x.<uid>" (value: the modseq of the expunge, decimal). */
int rados_expunged_scan(struct store *s, uint64_t mailbox_id, uint64_t modseq_min, store_uid_fn *fn,
			void *ctx, const char **error_r)
{
	struct rados_tombstones t = {.modseq_min = modseq_min, .fn = fn, .ctx = ctx};
	char oid[RADOS_OID_MAX];

	rados_oid_mailbox(oid, mailbox_id);
	return rados_omap_scan(RS(s), oid, "x.", NULL, "read tombstones", rados_tombstone_cb, &t,
			       error_r);
}

struct rados_entry_list {
	struct rados_entry *entries;
	size_t n, cap;
	uint32_t uid_max;
};

static int rados_entry_cb(void *ctx, const char *key, const char *val, size_t vlen,
			  const char **error_r)
{
	struct rados_entry_list *l = ctx;
	uint32_t uid = (uint32_t)strtoul(key + 2, NULL, 16);

	if (uid > l->uid_max)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->entries = realloc(l->entries, l->cap * sizeof(*l->entries));
		if (l->entries == NULL)
			log_fatal("out of memory");
	}
	if (rados_entry_unpack(val, vlen, &l->entries[l->n]) < 0) {
		*error_r = "store: malformed index entry";
		return -1;
	}
	l->entries[l->n++].uid = uid;
	return 0;
}

int rados_entries_read(struct rados_store *rs, uint64_t mailbox_id, uint32_t uid_min,
		       uint32_t uid_max, struct rados_entry **entries_r, size_t *count_r,
		       const char **error_r)
{
	struct rados_entry_list l = {.uid_max = uid_max};
	char oid[RADOS_OID_MAX], after[16];

	rados_oid_mailbox(oid, mailbox_id);
	if (uid_min > 1)
		rados_key_uid(after, 'u', uid_min - 1);
	if (rados_omap_scan(rs, oid, "u.", uid_min > 1 ? after : NULL, "read index", rados_entry_cb,
			    &l, error_r) < 0) {
		rados_entries_free(l.entries, l.n);
		return -1;
	}
	*entries_r = l.entries;
	*count_r = l.n;
	return 0;
}

/* ---- records and accounts ---------------------------------------------------- */

int rados_record_ref(struct rados_store *rs, uint64_t record, int delta, const char **error_r)
{
	char oid[RADOS_OID_MAX], old[32], new[32];

	rados_oid_record(oid, record);
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		rados_write_op_t op;
		long refs;
		int n, r;

		n = rados_getxattr(rs->io, oid, "refs", old, sizeof(old) - 1);
		if (n == -ENOENT && delta < 0)
			return 0;
		if (n < 0)
			return rados_fail(n, "read record references", error_r);
		old[n] = '\0';
		refs = strtol(old, NULL, 10) + delta;
		op = rados_create_write_op();
		rados_write_op_cmpxattr(op, "refs", LIBRADOS_CMPXATTR_OP_EQ, old, strlen(old));
		if (refs <= 0) {
			rados_write_op_remove(op);
		} else {
			snprintf(new, sizeof(new), "%ld", refs);
			rados_write_op_setxattr(op, "refs", new, strlen(new));
		}
		r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED)
			continue;
		if (r == -ENOENT && delta < 0)
			return 0;
		if (r < 0)
			return rados_fail(r, "update record references", error_r);
		return 0;
	}
	*error_r = "store: record references: too much contention";
	return -1;
}

struct rados_id_list {
	uint64_t *ids;
	size_t n, cap;
};

static int rados_mailbox_id_cb(void *ctx, const char *key, const char *val, size_t vlen,
			       const char **error_r)
{
	struct rados_id_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->ids = realloc(l->ids, l->cap * sizeof(*l->ids));
		if (l->ids == NULL)
			log_fatal("out of memory");
	}
	l->ids[l->n++] = strtoull(key + 2, NULL, 16);
	return 0;
}

int rados_account_mailboxes(struct rados_store *rs, uint64_t account_id, uint64_t **ids_r,
			    size_t *count_r, const char **error_r)
{
	struct rados_id_list l = {NULL, 0, 0};
	char oid[RADOS_OID_MAX];

	/* No such account: no mailboxes. */
	rados_oid_account(oid, account_id);
	if (rados_omap_scan(rs, oid, "b.", NULL, "list mailboxes", rados_mailbox_id_cb, &l,
			    error_r) < 0) {
		free(l.ids);
		return -1;
	}
	*ids_r = l.ids;
	*count_r = l.n;
	return 0;
}

/* ---- open and close ------------------------------------------------------------ */

static char *rados_uri_get(const char *location, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = location; *p != '\0';) {
		size_t n = strcspn(p, ",");

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			char *v = xmalloc(n - klen);

			memcpy(v, p + klen + 1, n - klen - 1);
			v[n - klen - 1] = '\0';
			return v;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return NULL;
}

int store_rados_connect(const char *location, const char *what, rados_t *cluster_r,
			rados_ioctx_t *io_r, const char **error_r)
{
	char *pool = rados_uri_get(location, "pool"), *conf = rados_uri_get(location, "conf");
	char *id = rados_uri_get(location, "id"), *ns = rados_uri_get(location, "namespace");
	rados_t cluster = NULL;
	int r, ret = -1;

	if (pool == NULL || conf == NULL || id == NULL) {
		*error_r = str_tfmt("%s: rados: needs pool=, conf= and id=", what);
		goto out;
	}
	if ((r = rados_create(&cluster, id)) < 0) {
		*error_r = str_tfmt("%s: rados create: %s", what, strerror(-r));
		cluster = NULL;
		goto out;
	}
	if ((r = rados_conf_read_file(cluster, conf)) < 0) {
		*error_r = str_tfmt("%s: rados: cannot read %s: %s", what, conf, strerror(-r));
		goto out;
	}
	rados_conf_set(cluster, "client_mount_timeout", "15");
	if ((r = rados_connect(cluster)) < 0) {
		*error_r = str_tfmt("%s: rados connect: %s", what, strerror(-r));
		goto out;
	}
	if ((r = rados_ioctx_create(cluster, pool, io_r)) < 0) {
		*error_r = str_tfmt("%s: rados: pool %s: %s", what, pool, strerror(-r));
		goto out;
	}
	if (ns != NULL)
		rados_ioctx_set_namespace(*io_r, ns);
	*cluster_r = cluster;
	cluster = NULL;
	ret = 0;
out:
	if (cluster != NULL)
		rados_shutdown(cluster);
	free(pool);
	free(conf);
	free(id);
	free(ns);
	return ret;
}

static int rados_open(const char *location, struct store **store_r, const char **error_r)
{
	struct rados_store *rs;

	if (seal_init() < 0) {
		*error_r = "store: cannot initialise libsodium";
		return -1;
	}
	rs = xcalloc(1, sizeof(*rs));
	rs->store.backend = &store_backend_rados;
	rs->node = rados_random_u64();
	if (store_rados_connect(location, "store", &rs->cluster, &rs->io, error_r) < 0) {
		free(rs);
		return -1;
	}
	pthread_mutex_init(&rs->lock, NULL);
	pthread_cond_init(&rs->cond, NULL);
	{
		pthread_condattr_t attr; /* timed waits on the monotonic clock */

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&rs->notified, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (pthread_create(&rs->committer, NULL, rados_committer_main, rs) != 0) {
		*error_r = "store: cannot start the commit thread";
		pthread_mutex_destroy(&rs->lock);
		pthread_cond_destroy(&rs->cond);
		rados_ioctx_destroy(rs->io);
		rados_shutdown(rs->cluster);
		free(rs);
		return -1;
	}
	*store_r = &rs->store;
	return 0;
}

static void rados_close(struct store **store)
{
	struct rados_store *rs = RS(*store);

	*store = NULL;
	pthread_mutex_lock(&rs->lock);
	rs->stopping = 1;
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
	pthread_join(rs->committer, NULL);
	if (rados_notify_drain(rs) < 0) {
		/* librados still holds completions that point at RS: shutting
		 * it down (or freeing RS) would have them run on freed memory.
		 * Left as is; this happens only as the process ends. */
		return;
	}
	pthread_mutex_destroy(&rs->lock);
	pthread_cond_destroy(&rs->cond);
	pthread_cond_destroy(&rs->notified);
	rados_aio_flush(rs->io);
	rados_watch_flush(rs->cluster);
	rados_ioctx_destroy(rs->io);
	rados_shutdown(rs->cluster);
	free(rs);
}

const struct store_backend store_backend_rados = {
    .scheme = "rados",
    .open = rados_open,
    .close = rados_close,
    .account_create = rados_account_create,
    .account_get = rados_account_get,
    .account_set_wrapped = rados_account_set_wrapped,
    .account_delete = rados_account_delete,
    .account_usage = rados_account_usage,
    .mailbox_create = rados_mailbox_create,
    .mailbox_list = rados_mailbox_list,
    .mailbox_get_role = rados_mailbox_get_role,
    .record_begin = rados_record_begin,
    .record_write = rados_record_write,
    .record_commit = rados_record_commit,
    .record_abort = rados_record_abort,
    .message_list = rados_message_list,
    .record_read = rados_record_read,
    .mailbox_get = rados_mailbox_get,
    .mailbox_delete = rados_mailbox_delete,
    .mailbox_update = rados_mailbox_update,
    .mailbox_set_uids = rados_mailbox_set_uids,
    .message_scan = rados_message_scan,
    .message_set_flags = rados_message_set_flags,
    .message_expunge = rados_message_expunge,
    .expunged_scan = rados_expunged_scan,
    .message_copy = rados_message_copy,
    .change_watch = rados_change_watch,
    .change_unwatch = rados_change_unwatch,
    .change_notify = rados_change_notify,
};

/* store-rados-flags.c — flag changes, expunge, copy and move on RADOS.
 *
 * Trust boundary: see store-rados.c; only plaintext index fields change.
 * Each operation reads the mailbox header and the entries it touches, then
 * writes every change in one operation guarded by the header, and starts
 * over when another node changed the mailbox in between. A copy takes its
 * references on the records before the new entries exist; an expunge drops
 * them only after its entries are gone, so a record is never removed while
 * an index names it. A move copies first, then removes its sources; a
 * source already gone (another node moved it) has its copy taken back. */
#include "store/store-rados-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int rados_same_kw(const char *a, const char *b)
{
	if (a == NULL || *a == '\0')
		return b == NULL || *b == '\0';
	return b != NULL && strcmp(a, b) == 0;
}

/* Writes OP (with the header guard) to MAILBOX_ID: 0, 1 to retry, -1. */
static int rados_guarded(struct rados_store *rs, uint64_t mailbox_id, rados_write_op_t op,
			 const char **error_r)
{
	char oid[RADOS_OID_MAX];
	int r;

	rados_oid_mailbox(oid, mailbox_id);
	r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == -ECANCELED)
		return 1;
	return r < 0 ? rados_fail(r, "update mailbox", error_r) : 0;
}

int rados_message_set_flags(struct store *s, uint64_t mailbox_id, const struct store_flag_update *u,
			    store_message_fn *fn, void *ctx, const char **error_r)
{
	struct rados_store *rs = RS(s);

	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_entries c;
		struct rados_hdr h;
		char old[128], new[128], (*kb)[16];
		const char **keys, **vals;
		size_t *lens, changed = 0;
		struct buf *packed;
		rados_write_op_t op;
		int r = rados_hdr_read(rs, mailbox_id, &h, old, error_r);

		if (r <= 0) {
			if (r == 0)
				*error_r = "store: no such mailbox";
			return -1;
		}
		if (rados_entries_get(rs, mailbox_id, u->uids, u->count, &c, error_r) < 0)
			return -1;
		kb = xcalloc(c.n + 1, 16);
		keys = xcalloc(c.n + 1, sizeof(*keys));
		vals = xcalloc(c.n + 1, sizeof(*vals));
		lens = xcalloc(c.n + 1, sizeof(*lens));
		packed = xcalloc(c.n + 1, sizeof(*packed));
		for (size_t i = 0; i < c.n; i++) {
			struct rados_entry *e = &c.e[i];
			uint32_t flags;
			char *kw;

			if (u->unchanged_since != 0 && e->modseq > u->unchanged_since)
				continue;
			flags = u->mode == STORE_FLAGS_SET   ? u->flags
				: u->mode == STORE_FLAGS_ADD ? e->flags | u->flags
							     : e->flags & ~u->flags;
			kw = store_keywords_apply(e->keywords, u->keywords, u->mode);
			if (flags == e->flags && rados_same_kw(kw, e->keywords)) {
				free(kw);
				continue;
			}
			if (changed == 0)
				h.modseq++;
			free(e->keywords);
			e->keywords = kw;
			e->flags = flags;
			e->modseq = h.modseq;
			buf_init(&packed[changed]);
			rados_entry_pack(e, &packed[changed]);
			rados_key_uid(kb[changed], 'u', e->uid);
			keys[changed] = kb[changed];
			vals[changed] = (const char *)packed[changed].data;
			lens[changed] = packed[changed].len;
			/* Mark the entry as changed for the callback below. */
			e->record_size = UINT64_MAX;
			changed++;
		}
		r = 0;
		if (changed > 0) {
			op = rados_create_write_op();
			rados_hdr_guard(op, old, &h, new);
			rados_write_op_omap_set(op, keys, vals, lens, changed);
			r = rados_guarded(rs, mailbox_id, op, error_r);
		}
		for (size_t i = 0; i < changed; i++)
			buf_free(&packed[i]);
		free(packed);
		free(lens);
		free(vals);
		free(keys);
		free(kb);
		if (r == 0 && fn != NULL) {
			struct store_message m;

			for (size_t i = 0; i < c.n; i++) {
				if (c.e[i].record_size != UINT64_MAX)
					continue;
				memset(&m, 0, sizeof(m));
				buf_init(&m.meta);
				m.id = mailbox_id << 32 | c.e[i].uid;
				m.mailbox_id = mailbox_id;
				m.uid = c.e[i].uid;
				m.flags = c.e[i].flags;
				m.keywords = c.e[i].keywords;
				m.modseq = c.e[i].modseq;
				fn(ctx, &m);
			}
		}
		rados_entries_clear(&c);
		if (r <= 0)
			return r;
	}
	*error_r = "store: flags: too much contention";
	return -1;
}

/* Removes the entries of UIDS; *C_R receives the removed ones. */
static int rados_expunge_entries(struct rados_store *rs, uint64_t mailbox_id, const uint32_t *uids,
				 size_t count, struct rados_entries *c, const char **error_r)
{
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_hdr h;
		char old[128], new[128], (*kb)[16], (*xkb)[16], modseq[24];
		const char **keys, **xkeys, **xvals;
		size_t *xlens;
		rados_write_op_t op;
		int r = rados_hdr_read(rs, mailbox_id, &h, old, error_r);

		if (r <= 0) {
			memset(c, 0, sizeof(*c));
			return r;
		}
		if (rados_entries_get(rs, mailbox_id, uids, count, c, error_r) < 0)
			return -1;
		if (c->n == 0)
			return 0;
		kb = xcalloc(2 * c->n, 16);
		keys = xcalloc(2 * c->n, sizeof(*keys));
		for (size_t i = 0; i < c->n; i++) {
			rados_key_uid(kb[2 * i], 'u', c->e[i].uid);
			rados_key_uid(kb[2 * i + 1], 'm', c->e[i].uid);
			keys[2 * i] = kb[2 * i];
			keys[2 * i + 1] = kb[2 * i + 1];
			h.messages = h.messages > 0 ? h.messages - 1 : 0;
			h.bytes =
			    h.bytes >= c->e[i].record_size ? h.bytes - c->e[i].record_size : 0;
		}
		/* RFC 7162: an expunge changes the mailbox's HIGHESTMODSEQ; the
		 * tombstones ("x.<uid>": the modseq in decimal) keep it for
		 * QRESYNC. */
		h.modseq++;
		snprintf(modseq, sizeof(modseq), "%llu", (unsigned long long)h.modseq);
		xkb = xcalloc(c->n, 16);
		xkeys = xcalloc(c->n, sizeof(*xkeys));
		xvals = xcalloc(c->n, sizeof(*xvals));
		xlens = xcalloc(c->n, sizeof(*xlens));
		for (size_t i = 0; i < c->n; i++) {
			rados_key_uid(xkb[i], 'x', c->e[i].uid);
			xkeys[i] = xkb[i];
			xvals[i] = modseq;
			xlens[i] = strlen(modseq);
		}
		op = rados_create_write_op();
		rados_hdr_guard(op, old, &h, new);
		rados_write_op_omap_rm_keys(op, keys, 2 * c->n);
		rados_write_op_omap_set(op, xkeys, xvals, xlens, c->n);
		r = rados_guarded(rs, mailbox_id, op, error_r);
		free(keys);
		free(kb);
		free(xkeys);
		free(xkb);
		free(xvals);
		free(xlens);
		if (r <= 0) {
			if (r < 0)
				rados_entries_clear(c);
			return r;
		}
		rados_entries_clear(c);
	}
	*error_r = "store: expunge: too much contention";
	return -1;
}

int rados_message_expunge(struct store *s, uint64_t mailbox_id, const uint32_t *uids, size_t count,
			  const char **error_r)
{
	struct rados_entries c;
	int ret = 0;

	if (count == 0)
		return 0;
	if (rados_expunge_entries(RS(s), mailbox_id, uids, count, &c, error_r) < 0)
		return -1;
	for (size_t i = 0; i < c.n && ret == 0; i++)
		ret = rados_record_ref(RS(s), c.e[i].record, -1, error_r);
	rados_entries_clear(&c);
	return ret;
}

/* Adds C's entries (references already taken) to DST with new UIDs. */
static int rados_copy_into(struct rados_store *rs, uint64_t dst, struct rados_entries *c,
			   uint32_t *new_uids, const char **error_r)
{
	for (int tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_hdr h;
		char old[128], new[128], (*kb)[16] = xcalloc(2 * c->n, 16);
		const char **keys = xcalloc(2 * c->n, sizeof(*keys));
		const char **vals = xcalloc(2 * c->n, sizeof(*vals));
		size_t *lens = xcalloc(2 * c->n, sizeof(*lens));
		struct buf *packed = xcalloc(c->n, sizeof(*packed));
		rados_write_op_t op;
		int r = rados_hdr_read(rs, dst, &h, old, error_r);

		if (r == 0)
			*error_r = "store: no such mailbox";
		if (r > 0 && (uint64_t)h.uidnext + c->n > UINT32_MAX) {
			*error_r = "store: mailbox UIDs exhausted";
			r = -1;
		}
		for (size_t i = 0; r > 0 && i < c->n; i++) {
			struct rados_entry e = c->e[i];

			e.modseq = ++h.modseq;
			new_uids[i] = h.uidnext++;
			h.messages++;
			h.bytes += e.record_size;
			buf_init(&packed[i]);
			rados_entry_pack(&e, &packed[i]);
			rados_key_uid(kb[2 * i], 'u', new_uids[i]);
			rados_key_uid(kb[2 * i + 1], 'm', new_uids[i]);
			keys[2 * i] = kb[2 * i];
			vals[2 * i] = (const char *)packed[i].data;
			lens[2 * i] = packed[i].len;
			keys[2 * i + 1] = kb[2 * i + 1];
			vals[2 * i + 1] = (const char *)c->meta[i].data;
			lens[2 * i + 1] = c->meta[i].len;
		}
		if (r > 0) {
			op = rados_create_write_op();
			rados_hdr_guard(op, old, &h, new);
			rados_write_op_omap_set(op, keys, vals, lens, 2 * c->n);
			r = rados_guarded(rs, dst, op, error_r);
		} else {
			r = -1;
		}
		for (size_t i = 0; i < c->n; i++)
			buf_free(&packed[i]);
		free(packed);
		free(lens);
		free(vals);
		free(keys);
		free(kb);
		if (r <= 0)
			return r;
	}
	*error_r = "store: copy: too much contention";
	return -1;
}

/* After a move's copy: removes the sources, guarded. A source another node
 * moved or expunged since it was read is not this node's to move: its new
 * copy in DST is taken back (with the reference taken for it), and its
 * DST_UIDS_R entry becomes 0. So two nodes moving one message leave one
 * copy; a crash in between leaves two, never none. */
static int rados_move_finish(struct store *s, uint64_t src, uint64_t dst, struct rados_entries *c,
			     const uint32_t *uids, size_t count, uint32_t *dst_uids_r,
			     const char **error_r)
{
	struct rados_store *rs = RS(s);
	struct rados_entries gone;
	uint32_t *src_uids = xcalloc(c->n, sizeof(*src_uids));
	uint32_t *undo = xcalloc(c->n, sizeof(*undo));
	size_t k = 0;
	int ret = 0;

	for (size_t i = 0; i < c->n; i++)
		src_uids[i] = c->e[i].uid;
	if (rados_expunge_entries(rs, src, src_uids, c->n, &gone, error_r) < 0) {
		free(src_uids);
		free(undo);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		int ours = 0;

		if (dst_uids_r[i] == 0)
			continue;
		for (size_t j = 0; j < gone.n && !ours; j++)
			ours = gone.e[j].uid == uids[i];
		if (!ours) {
			undo[k++] = dst_uids_r[i];
			dst_uids_r[i] = 0;
		}
	}
	/* The sources' references go with them, as in an expunge. */
	for (size_t i = 0; i < gone.n && ret == 0; i++)
		ret = rados_record_ref(rs, gone.e[i].record, -1, error_r);
	if (ret == 0 && k > 0)
		ret = rados_message_expunge(s, dst, undo, k, error_r);
	rados_entries_clear(&gone);
	free(src_uids);
	free(undo);
	return ret;
}

int rados_message_copy(struct store *s, uint64_t src_mailbox_id, const uint32_t *uids, size_t count,
		       uint64_t dst_mailbox_id, int move, uint32_t *dst_uids_r,
		       const char **error_r)
{
	struct rados_store *rs = RS(s);
	struct rados_entries c;
	uint32_t *new_uids;
	size_t refs = 0;
	int ret = -1;

	if (count == 0)
		return 0;
	memset(dst_uids_r, 0, count * sizeof(*dst_uids_r));
	if (rados_entries_get(rs, src_mailbox_id, uids, count, &c, error_r) < 0)
		return -1;
	if (c.n == 0) {
		rados_entries_clear(&c);
		return 0;
	}
	new_uids = xcalloc(c.n, sizeof(*new_uids));
	if (rados_metas_get(rs, src_mailbox_id, &c, error_r) < 0)
		goto out;
	for (; refs < c.n; refs++)
		if (rados_record_ref(rs, c.e[refs].record, 1, error_r) < 0)
			goto out;
	if (rados_copy_into(rs, dst_mailbox_id, &c, new_uids, error_r) < 0)
		goto out;
	refs = 0;
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < c.n; j++)
			if (c.e[j].uid == uids[i])
				dst_uids_r[i] = new_uids[j];
	ret = move ? rados_move_finish(s, src_mailbox_id, dst_mailbox_id, &c, uids, count,
				       dst_uids_r, error_r)
		   : 0;
out:
	for (size_t i = 0; i < refs; i++)
		rados_record_ref(rs, c.e[i].record, -1, error_r);
	free(new_uids);
	rados_entries_clear(&c);
	return ret;
}

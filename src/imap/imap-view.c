/* imap-view.c — the selected mailbox as the session sees it: sequence
 * numbers, UIDs and flags, kept in step with the store.
 *
 * Trust boundary: only plaintext index fields. Changes by other sessions
 * (in this process, announced through the notification hub) and by other
 * processes (seen by comparing UIDNEXT, HIGHESTMODSEQ and the message
 * count) are reported as untagged EXISTS, EXPUNGE (VANISHED after ENABLE
 * QRESYNC) and FETCH FLAGS; EXPUNGE only when the command allows it
 * (RFC 3501 7.4.1). Expunges before a QRESYNC resynchronisation come from
 * the store's tombstones (UIDs and modseqs only). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

static void imap_view_msg_set(struct imap_msg *m, const struct store_message *sm)
{
	m->uid = sm->uid;
	m->flags = sm->flags;
	m->modseq = sm->modseq;
	m->id = sm->id;
	m->internal_date = sm->internal_date;
	m->size = sm->size;
	free(m->keywords);
	m->keywords = sm->keywords != NULL ? xstrdup(sm->keywords) : NULL;
}

static void imap_view_append(struct imap_view *v, const struct store_message *sm)
{
	if (v->count == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->msgs = realloc(v->msgs, v->cap * sizeof(*v->msgs));
		if (v->msgs == NULL)
			log_fatal("out of memory");
	}
	memset(&v->msgs[v->count], 0, sizeof(v->msgs[0]));
	imap_view_msg_set(&v->msgs[v->count], sm);
	v->count++;
}

static int imap_view_load_cb(void *ctx, const struct store_message *sm)
{
	imap_view_append(ctx, sm);
	return 0;
}

long imap_view_find(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else if (v->msgs[mid].uid > uid)
			hi = mid;
		else
			return (long)mid;
	}
	return -1;
}

void imap_view_save(struct imap_session *s, const uint32_t *uids, size_t count)
{
	free(s->saved);
	s->saved = NULL;
	s->saved_count = 0;
	if (count == 0)
		return;
	s->saved = xcalloc(count, sizeof(*s->saved));
	memcpy(s->saved, uids, count * sizeof(*uids));
	s->saved_count = count;
}

void imap_view_saved_set(struct imap_session *s, int uid, struct imap_seqset *set_r)
{
	struct imap_range *r = xcalloc(s->saved_count ? s->saved_count : 1, sizeof(*r));
	size_t n = 0;

	for (size_t i = 0; s->view != NULL && i < s->saved_count; i++) {
		long k = imap_view_find(s->view, s->saved[i]);
		uint32_t x;

		if (k < 0)
			continue; /* expunged since */
		x = uid ? s->saved[i] : (uint32_t)k + 1;
		if (n > 0 && (uint64_t)r[n - 1].hi + 1 == x)
			r[n - 1].hi = x;
		else
			r[n].lo = r[n].hi = x, n++;
	}
	set_r->ranges = r;
	set_r->count = n;
}

void imap_view_close(struct imap_session *s)
{
	struct imap_view *v = s->view;

	imap_view_save(s, NULL, 0);
	if (v == NULL)
		return;
	s->view = NULL;
	for (size_t i = 0; i < v->count; i++)
		free(v->msgs[i].keywords);
	free(v->msgs);
	free(v);
}

int imap_view_open(struct imap_session *s, const struct imap_mbox *box, int readonly,
		   const char **error_r)
{
	struct imap_view *v = xcalloc(1, sizeof(*v));
	struct store_mailbox st;
	int r;

	imap_view_close(s);
	memset(&st, 0, sizeof(st));
	r = s->store->backend->mailbox_get(s->store, s->acct->st.id, box->id, &st, error_r);
	if (r == 0)
		*error_r = "Mailbox does not exist";
	if (r <= 0) {
		store_mailbox_clear(&st);
		free(v);
		return -1;
	}
	v->id = box->id;
	v->role = box->role;
	v->readonly = readonly;
	v->uidvalidity = st.uidvalidity;
	v->uidnext = st.uidnext;
	v->highestmodseq = st.highestmodseq;
	store_mailbox_clear(&st);
	/* Index fields only: no sealed byte is read to select. */
	if (s->store->backend->message_scan(s->store, v->id, 1, UINT32_MAX, 0, 0, imap_view_load_cb,
					    v, error_r) < 0) {
		s->view = v;
		imap_view_close(s);
		return -1;
	}
	s->view = v;
	return 0;
}

void imap_view_remove(struct imap_session *s, size_t index)
{
	struct imap_view *v = s->view;

	free(v->msgs[index].keywords);
	memmove(&v->msgs[index], &v->msgs[index + 1], (v->count - index - 1) * sizeof(v->msgs[0]));
	v->count--;
}

/* A UID set written as ranges, merged as they come (in ascending order). */
struct imap_uidset_out {
	struct buf *out;
	uint32_t lo, hi;
	int open, any;
};

static void imap_uidset_flush(struct imap_uidset_out *o)
{
	int r;

	if (!o->open)
		return;
	r = o->lo == o->hi ? buf_printf(o->out, "%s%u", o->any ? "," : "", o->lo)
			   : buf_printf(o->out, "%s%u:%u", o->any ? "," : "", o->lo, o->hi);
	if (r < 0)
		log_fatal("out of memory");
	o->any = 1;
	o->open = 0;
}

static void imap_uidset_add(struct imap_uidset_out *o, uint32_t lo, uint32_t hi)
{
	if (o->open && (uint64_t)lo <= (uint64_t)o->hi + 1) {
		if (hi > o->hi)
			o->hi = hi;
		return;
	}
	imap_uidset_flush(o);
	o->lo = lo;
	o->hi = hi;
	o->open = 1;
}

static int imap_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int imap_size_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x > y ? -1 : x < y;
}

void imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t count)
{
	struct imap_view *v = s->view;
	size_t *idx = xcalloc(count ? count : 1, sizeof(*idx)), n = 0;

	for (size_t i = 0; i < count; i++) {
		long k = imap_view_find(v, uids[i]);

		if (k >= 0)
			idx[n++] = (size_t)k;
	}
	/* Highest first, so that the numbers sent stay valid. */
	qsort(idx, n, sizeof(*idx), imap_size_desc);
	if (s->qresync && n > 0) {
		uint32_t *gone = xcalloc(n, sizeof(*gone));
		struct imap_uidset_out o;
		struct buf line;

		buf_init(&line);
		memset(&o, 0, sizeof(o));
		o.out = &line;
		for (size_t i = 0; i < n; i++) {
			gone[i] = v->msgs[idx[i]].uid;
			imap_view_remove(s, idx[i]);
		}
		qsort(gone, n, sizeof(*gone), imap_uid_cmp);
		for (size_t i = 0; i < n; i++)
			imap_uidset_add(&o, gone[i], gone[i]);
		imap_uidset_flush(&o);
		imap_reply(s, "* VANISHED %s", buf_cstr(&line));
		buf_free(&line);
		free(gone);
	} else {
		for (size_t i = 0; i < n; i++) {
			imap_view_remove(s, idx[i]);
			imap_reply(s, "* %zu EXPUNGE", idx[i] + 1);
		}
	}
	free(idx);
}

struct imap_vanished {
	const struct imap_seqset *known;
	uint32_t max_uid;
	struct imap_uidset_out o;
};

static int imap_vanished_cb(void *ctx, uint32_t uid, uint64_t modseq)
{
	struct imap_vanished *c = ctx;

	if (uid > c->max_uid)
		return 1; /* in UID order: nothing further is wanted */
	if (c->known == NULL || imap_seqset_contains(c->known, uid))
		imap_uidset_add(&c->o, uid, uid);
	return 0;
}

/* [LO, HI] intersected with KNOWN (all when NULL) into O. */
static void imap_vanished_range(struct imap_vanished *c, uint32_t lo, uint32_t hi)
{
	if (hi > c->max_uid)
		hi = c->max_uid;
	if (lo > hi)
		return;
	if (c->known == NULL) {
		imap_uidset_add(&c->o, lo, hi);
		return;
	}
	for (size_t r = 0; r < c->known->count; r++) {
		const struct imap_range *k = &c->known->ranges[r];

		if (k->hi < lo)
			continue;
		if (k->lo > hi)
			break;
		imap_uidset_add(&c->o, k->lo > lo ? k->lo : lo, k->hi < hi ? k->hi : hi);
	}
}

int imap_view_vanished_earlier(struct imap_session *s, uint64_t modseq,
			       const struct imap_seqset *known, uint32_t max_uid,
			       const char **error_r)
{
	const struct imap_view *v = s->view;
	struct imap_vanished c;
	struct buf line;

	if (modseq >= v->highestmodseq)
		return 0; /* nothing has changed since */
	memset(&c, 0, sizeof(c));
	buf_init(&line);
	c.known = known;
	c.max_uid = v->uidnext > 1 && v->uidnext - 1 < max_uid ? v->uidnext - 1 : max_uid;
	if (v->uidnext <= 1)
		return 0;
	c.o.out = &line;
	if (s->store->backend->expunged_scan != NULL) {
		if (s->store->backend->expunged_scan(s->store, v->id, modseq, imap_vanished_cb, &c,
						     error_r) < 0) {
			buf_free(&line);
			return -1;
		}
	} else {
		/* No tombstones: every gap below UIDNEXT. */
		uint32_t next = 1;

		for (size_t i = 0; i < v->count; i++) {
			if (v->msgs[i].uid > next)
				imap_vanished_range(&c, next, v->msgs[i].uid - 1);
			next = v->msgs[i].uid + 1;
		}
		if (next <= c.max_uid)
			imap_vanished_range(&c, next, c.max_uid);
	}
	imap_uidset_flush(&c.o);
	if (c.o.any)
		imap_reply(s, "* VANISHED (EARLIER) %s", buf_cstr(&line));
	buf_free(&line);
	return 0;
}

struct imap_sync {
	struct imap_view *v;
	uint32_t old_uidnext;
	uint32_t *changed;
	size_t changed_count, changed_cap;
	size_t added;
	uint8_t *seen; /* full scan: which view entries still exist */
};

static int imap_sync_changed_cb(void *ctx, const struct store_message *sm)
{
	struct imap_sync *y = ctx;
	long i = imap_view_find(y->v, sm->uid);

	if (i < 0) {
		if (sm->uid >= y->old_uidnext &&
		    (y->v->count == 0 || sm->uid > y->v->msgs[y->v->count - 1].uid)) {
			imap_view_append(y->v, sm);
			y->added++;
		}
		return 0;
	}
	struct imap_msg *m = &y->v->msgs[i];
	int same = m->flags == sm->flags && ((m->keywords == NULL && sm->keywords == NULL) ||
					     (m->keywords != NULL && sm->keywords != NULL &&
					      strcmp(m->keywords, sm->keywords) == 0));

	m->modseq = sm->modseq;
	if (same)
		return 0;
	imap_view_msg_set(m, sm);
	if (y->changed_count == y->changed_cap) {
		y->changed_cap = y->changed_cap ? y->changed_cap * 2 : 16;
		y->changed = realloc(y->changed, y->changed_cap * sizeof(*y->changed));
		if (y->changed == NULL)
			log_fatal("out of memory");
	}
	y->changed[y->changed_count++] = sm->uid;
	return 0;
}

static int imap_sync_full_cb(void *ctx, const struct store_message *sm)
{
	struct imap_sync *y = ctx;
	long i = imap_view_find(y->v, sm->uid);

	if (i >= 0)
		y->seen[i] = 1;
	return 0;
}

void imap_view_sync(struct imap_session *s, int allow_expunge)
{
	struct imap_view *v = s->view;
	struct store_mailbox st;
	struct imap_sync y;
	const char *error = NULL;
	int r;

	if (v == NULL || s->dead)
		return;
	memset(&st, 0, sizeof(st));
	r = s->store->backend->mailbox_get(s->store, s->acct->st.id, v->id, &st, &error);
	buf_free(&st.name_sealed);
	if (r < 0) {
		imap_session_log(s, LOG_WARN, "sync: %s", error);
		return;
	}
	if (r == 0) {
		imap_session_close(s, "Selected mailbox was deleted");
		return;
	}
	if (st.uidnext == v->uidnext && st.highestmodseq == v->highestmodseq &&
	    st.messages == v->count)
		return;
	memset(&y, 0, sizeof(y));
	y.v = v;
	y.old_uidnext = v->uidnext;
	if (s->store->backend->message_scan(s->store, v->id, 1, UINT32_MAX, v->highestmodseq, 0,
					    imap_sync_changed_cb, &y, &error) < 0) {
		imap_session_log(s, LOG_WARN, "sync: %s", error);
		goto out;
	}
	if (allow_expunge && st.messages != v->count) {
		y.seen = xcalloc(v->count + 1, 1);
		if (s->store->backend->message_scan(s->store, v->id, 1, UINT32_MAX, 0, 0,
						    imap_sync_full_cb, &y, &error) < 0) {
			imap_session_log(s, LOG_WARN, "sync: %s", error);
			goto out;
		}
		uint32_t *gone = xcalloc(v->count + 1, sizeof(*gone));
		size_t n = 0;

		for (size_t i = v->count; i-- > 0;) {
			if (y.seen[i])
				continue;
			if (i >= v->count - y.added)
				y.added--;
			gone[n++] = v->msgs[i].uid;
		}
		imap_view_expunged(s, gone, n);
		free(gone);
	}
	if (y.added > 0 || (allow_expunge && y.seen != NULL))
		imap_reply(s, "* %zu EXISTS", v->count);
	for (size_t i = 0; i < y.changed_count; i++) {
		long idx = imap_view_find(v, y.changed[i]);
		struct buf fl;

		if (idx < 0)
			continue;
		buf_init(&fl);
		imap_flags_format(v->msgs[idx].flags, v->msgs[idx].keywords, &fl);
		if (s->condstore)
			imap_reply(s, "* %ld FETCH (UID %u FLAGS (%s) MODSEQ (%llu))", idx + 1,
				   v->msgs[idx].uid, buf_cstr(&fl),
				   (unsigned long long)v->msgs[idx].modseq);
		else
			imap_reply(s, "* %ld FETCH (UID %u FLAGS (%s))", idx + 1, v->msgs[idx].uid,
				   buf_cstr(&fl));
		buf_free(&fl);
	}
	if (st.uidnext > v->uidnext)
		v->uidnext = st.uidnext;
	v->highestmodseq = st.highestmodseq;
out:
	free(y.seen);
	free(y.changed);
}

int imap_view_set(struct imap_session *s, const char *set, int uid, size_t **idx_r, size_t *count_r,
		  const char **error_r)
{
	struct imap_view *v = s->view;
	struct imap_seqset ss;
	uint32_t star;
	size_t *idx, n = 0;

	*idx_r = NULL;
	*count_r = 0;
	if (set == NULL) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	if (strcmp(set, "$") == 0) {
		/* The saved result, as UIDs: the same messages either way. */
		idx = xcalloc(s->saved_count ? s->saved_count : 1, sizeof(*idx));
		for (size_t i = 0; i < s->saved_count; i++) {
			long k = imap_view_find(v, s->saved[i]);

			if (k >= 0)
				idx[n++] = (size_t)k;
		}
		*idx_r = idx;
		*count_r = n;
		return 0;
	}
	if (uid)
		star = v->count > 0 ? v->msgs[v->count - 1].uid
				    : (v->uidnext > 1 ? v->uidnext - 1 : 1);
	else
		star = (uint32_t)v->count;
	if (imap_seqset_parse(set, star, &ss, error_r) < 0)
		return -1;
	if (!uid && ss.count > 0 && ss.ranges[ss.count - 1].hi > v->count) {
		imap_seqset_free(&ss);
		*error_r = "Invalid sequence set: no such message";
		return -1;
	}
	idx = xcalloc(v->count ? v->count : 1, sizeof(*idx));
	for (size_t r = 0; r < ss.count; r++) {
		if (uid) {
			/* Binary search for the first UID in the range. */
			size_t lo = 0, hi = v->count;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (v->msgs[mid].uid < ss.ranges[r].lo)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < v->count && v->msgs[lo].uid <= ss.ranges[r].hi; lo++)
				idx[n++] = lo;
		} else {
			for (uint64_t i = ss.ranges[r].lo; i <= ss.ranges[r].hi; i++)
				idx[n++] = (size_t)i - 1;
		}
	}
	imap_seqset_free(&ss);
	*idx_r = idx;
	*count_r = n;
	return 0;
}

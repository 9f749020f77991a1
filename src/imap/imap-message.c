/* imap-message.c — opening a message for FETCH and SEARCH: its sealed
 * metadata part (ENVELOPE, BODYSTRUCTURE, header) or its whole body.
 *
 * Trust boundary: this is where sealed records become plaintext, in memory
 * only, with the session's opener (the account key unlocked at login).
 * Callers wipe what they get (buf_free wipes) and never write it anywhere
 * but the client's connection. A record that fails to open (modified,
 * truncated, not ours) is an error, never partial plaintext. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

int imap_msg_meta(struct imap_session *s, const struct buf *sealed, struct buf *plain_r,
		  const char **error_r)
{
	uint8_t *plain;
	size_t len;

	buf_reset(plain_r);
	if (seal_blob_open(s->opener, sealed->data, sealed->len, &plain, &len, error_r) < 0)
		return -1;
	if (buf_append(plain_r, plain, len) < 0)
		log_fatal("out of memory");
	mem_wipe(plain, len);
	free(plain);
	return 0;
}

static int imap_msg_feed(void *ctx, const uint8_t *data, size_t len)
{
	const char *error;

	return seal_reader_write(ctx, data, len, &error);
}

/* ---- whole bodies, shared with the output buffer ------------------------- */

static int imap_plain_grow(struct imap_plain *p, size_t need)
{
	size_t cap = p->cap * 2 > need ? p->cap * 2 : need;
	uint8_t *d;

	if (need > SIZE_MAX / 2)
		return -1;
	/* Not realloc(): the old block must be wiped before it is released. */
	d = malloc(cap);
	if (d == NULL)
		return -1;
	memcpy(d, p->data, p->len);
	mem_wipe(p->data, p->len);
	free(p->data);
	p->data = d;
	p->cap = cap;
	return 0;
}

/* Chunks are opened straight into the body's buffer (seal_reader_set_dest):
 * the sink only counts what arrived there. */
static uint8_t *imap_plain_dest(void *ctx, size_t n)
{
	struct imap_plain *p = ctx;

	if (n >= p->cap - p->len && imap_plain_grow(p, p->len + n + 1) < 0)
		return NULL;
	return p->data + p->len;
}

static int imap_plain_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct imap_plain *p = ctx;

	if (data != p->data + p->len || len >= p->cap - p->len)
		return -1;
	p->len += len;
	p->data[p->len] = '\0';
	return 0;
}

void imap_plain_ref(struct imap_plain *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void imap_plain_unref(struct imap_plain **pp)
{
	struct imap_plain *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Only the bytes ever written hold plaintext (+1: the NUL). */
	mem_wipe(p->data, p->len + 1);
	free(p->data);
	free(p);
}

static void imap_plain_evbuffer_cleanup(const void *data, size_t len, void *extra)
{
	struct imap_plain *p = extra;

	imap_plain_unref(&p);
}

void imap_plain_add(struct evbuffer *ev, struct imap_plain *p, const uint8_t *data, size_t len)
{
	if (len == 0)
		return;
	imap_plain_ref(p);
	if (evbuffer_add_reference(ev, data, len, imap_plain_evbuffer_cleanup, p) < 0)
		log_fatal("out of memory");
}

int imap_msg_plain(struct imap_session *s, const struct imap_msg *m, struct seal_reader **reader,
		   struct imap_plain **p_r, const char **error_r)
{
	struct imap_plain *p = xcalloc(1, sizeof(*p));
	int ret = -1;

	atomic_init(&p->refs, 1);
	p->cap = (size_t)m->size + 1;
	p->data = xmalloc(p->cap);
	p->data[0] = '\0';
	*p_r = NULL;
	if (*reader != NULL) {
		seal_reader_reset(*reader, imap_plain_sink, p);
	} else if (seal_reader_begin(s->opener, imap_plain_sink, p, reader) < 0) {
		*error_r = "cannot open the record";
		goto out;
	}
	seal_reader_set_dest(*reader, imap_plain_dest);
	if (s->store->backend->record_read(s->store, m->id, imap_msg_feed, *reader, error_r) < 0 ||
	    seal_reader_finish(*reader, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (*reader != NULL)
		seal_reader_reset(*reader, NULL, NULL);
	if (ret < 0)
		imap_plain_unref(&p);
	*p_r = p;
	return ret;
}

struct imap_meta_scan {
	struct imap_session *s;
	const size_t *idx;
	size_t count, pos;
	int (*fn)(void *ctx, size_t index, const struct store_message *m);
	void *ctx;
};

static int imap_meta_scan_cb(void *ctx, const struct store_message *m)
{
	struct imap_meta_scan *c = ctx;
	const struct imap_view *v = c->s->view;

	while (c->pos < c->count && v->msgs[c->idx[c->pos]].uid < m->uid)
		c->pos++;
	if (c->pos >= c->count)
		return 1;
	if (v->msgs[c->idx[c->pos]].uid != m->uid)
		return 0;
	return c->fn(c->ctx, c->idx[c->pos++], m);
}

int imap_msg_scan_meta(struct imap_session *s, const size_t *idx, size_t count,
		       int (*fn)(void *ctx, size_t index, const struct store_message *m), void *ctx,
		       const char **error_r)
{
	struct imap_meta_scan c = {s, idx, count, 0, fn, ctx};
	const struct imap_view *v = s->view;

	if (count == 0)
		return 0;
	return s->store->backend->message_scan(s->store, v->id, v->msgs[idx[0]].uid,
					       v->msgs[idx[count - 1]].uid, 0, 1, imap_meta_scan_cb,
					       &c, error_r);
}

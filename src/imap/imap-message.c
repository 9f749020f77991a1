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

static int imap_msg_sink(void *ctx, const uint8_t *data, size_t len)
{
	return buf_append(ctx, data, len);
}

static int imap_msg_feed(void *ctx, const uint8_t *data, size_t len)
{
	const char *error;

	return seal_reader_write(ctx, data, len, &error);
}

int imap_msg_body(struct imap_session *s, const struct imap_msg *m, struct buf *plain_r,
		  const char **error_r)
{
	struct seal_reader *reader = NULL;
	int ret = -1;

	buf_free(plain_r);
	if (buf_reserve(plain_r, (size_t)m->size + 1) < 0)
		log_fatal("out of memory");
	if (seal_reader_begin(s->opener, imap_msg_sink, plain_r, &reader) < 0) {
		*error_r = "cannot open the record";
		return -1;
	}
	if (s->store->backend->record_read(s->store, m->id, imap_msg_feed, reader, error_r) < 0 ||
	    seal_reader_finish(reader, error_r) < 0)
		goto out;
	ret = 0;
out:
	seal_reader_free(&reader);
	if (ret < 0)
		buf_free(plain_r);
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
		       int (*fn)(void *ctx, size_t index, const struct store_message *m),
		       void *ctx, const char **error_r)
{
	struct imap_meta_scan c = {s, idx, count, 0, fn, ctx};
	const struct imap_view *v = s->view;

	if (count == 0)
		return 0;
	return s->store->backend->message_scan(s->store, v->id, v->msgs[idx[0]].uid,
					       v->msgs[idx[count - 1]].uid, 0, 1,
					       imap_meta_scan_cb, &c, error_r);
}

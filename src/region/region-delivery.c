/* region-delivery.c — one incoming message, sealed to each recipient as it
 * arrives and committed into each recipient's home region.
 *
 * Trust boundary: the plaintext comes from the network (SMTP), a local MTA
 * (`sealmail deliver`) or an IMAP client (APPEND), and is held in memory
 * only, never more than about DELIVERY_STREAM_BYTES of it:
 * - a message that stays below that is collected whole and sealed for each
 *   recipient by the commit job on a pool thread (beside the event loop),
 *   or for a small one (DELIVERY_INLINE_BYTES) at once by delivery_commit,
 *   with its metadata part computed from the whole;
 * - past it, the delivery streams: every DELIVERY_STREAM_BYTES collected go
 *   to a drain job on the pool that seals them for each recipient, feeds
 *   the metadata stream (mime_meta_stream) and wipes them; the commit then
 *   finishes what the drain has. Drain jobs of one delivery run one at a
 *   time, in order (d->draining).
 * Sealed bytes go to each store's record writer, which keeps them in memory
 * or spills them to a temporary file (ciphertext only). Each copy goes to
 * router_store(recipient): the store of the recipient's own region. */
#include "region/region-private.h"

#include "mime/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plaintext collected before a delivery starts to stream. */
#define DELIVERY_STREAM_BYTES (1024 * 1024)
/* Plaintext times recipients up to which delivery_commit seals on the
 * caller's thread (the event loop, for SMTP) instead of on the pool: a few
 * tens of microseconds of CPU and no I/O (every store keeps records of this
 * size in memory until their commit), which costs less than the two
 * hand-offs between threads it saves. */
#define DELIVERY_INLINE_BYTES (64 * 1024)
/* Plaintext waiting for the drain job past which the writer is held back
 * (delivery_set_pacing), and below which it may go on again. */
#define DELIVERY_QUEUE_HIGH_BYTES (4 * DELIVERY_STREAM_BYTES)
#define DELIVERY_QUEUE_LOW_BYTES  (2 * DELIVERY_STREAM_BYTES)

enum delivery_pacing { PACE_NONE, PACE_CALLBACK, PACE_WAIT };

/* Collected plaintext on its way to the drain job. */
struct delivery_piece {
	struct delivery_piece *next;
	struct buf data;
};

struct delivery_copy {
	struct delivery *d;
	const struct account *acct;
	uint32_t flags;
	char *keywords;
	uint32_t *uid_r;
	struct store *store;
	struct store_record_writer *rw;
	struct seal_writer *sw;
	uint64_t inbox_id;
	struct buf meta;
};

struct delivery {
	struct router *router;
	uint64_t max_size;
	struct buf plain; /* collected, not yet sealed; owned by the writer's thread */
	int written;
	int failed;
	/* Streaming, once the message outgrew DELIVERY_STREAM_BYTES. MS and
	 * the copies' writers belong to the drain job from then on. */
	struct mime_meta_stream *ms;
	uint64_t streamed;            /* bytes queued for the drain */
	struct delivery_piece *queue; /* under LOCK, oldest first */
	struct delivery_piece **queue_end;
	int draining;                    /* under LOCK: a drain job is queued or runs */
	int commit_wanted, abort_wanted; /* under LOCK */
	int drain_failed;                /* under LOCK */
	char drain_error[200];
	uint64_t queued; /* under LOCK: plaintext bytes in QUEUE */
	enum delivery_pacing pacing;
	void (*ready)(void *ctx); /* under LOCK; NULL once the owner is gone */
	void *ready_ctx;
	int held;                      /* under LOCK: the writer waits for READY */
	pthread_cond_t drained;        /* PACE_WAIT: QUEUED went down */
	struct delivery_copy **copies; /* each is a sink context: must not move */
	size_t count;

	/* commit */
	int64_t internal_date;
	delivery_done_fn *done;
	void *done_ctx;
	pthread_mutex_t lock;
	size_t pending;
	int result;
	char error[200];
};

int delivery_begin(struct router *router, uint64_t max_size, struct delivery **d_r,
		   const char **error_r)
{
	struct delivery *d = xcalloc(1, sizeof(*d));

	d->router = router;
	d->max_size = max_size;
	buf_init(&d->plain);
	d->queue_end = &d->queue;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->drained, NULL);
	*d_r = d;
	return 0;
}

static int delivery_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct delivery_copy *c = ctx;
	const char *error;

	if (c->store->backend->record_write(c->rw, data, len, &error) < 0) {
		log_warn("delivery: %s", error);
		return -1;
	}
	return 0;
}

int delivery_add_recipient(struct delivery *d, const struct account *acct, const char **error_r)
{
	struct store *store = router_store(d->router, acct);
	struct delivery_copy *c;
	struct seal_sender *sender;
	uint64_t inbox_id = acct->inbox_id;
	int r;

	if (d->written) {
		*error_r = "recipients must be added before the message";
		return -1;
	}
	for (size_t i = 0; i < d->count; i++)
		if (d->copies[i]->acct->region == acct->region &&
		    d->copies[i]->acct->st.id == acct->st.id)
			return 0;
	if (inbox_id == 0 && router_account_find_inbox(d->router, acct, &inbox_id, error_r) < 0)
		return -1;

	d->copies = realloc(d->copies, (d->count + 1) * sizeof(*d->copies));
	if (d->copies == NULL)
		log_fatal("out of memory");
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->acct = acct;
	c->store = store;
	buf_init(&c->meta);
	c->inbox_id = inbox_id;
	if (store->backend->record_begin(store, &c->rw, error_r) < 0) {
		free(c);
		return -1;
	}
	pthread_mutex_lock(&d->router->senders_lock);
	sender = router_sender_get(d->router, acct->st.pk);
	r = sender == NULL ? -1 : seal_writer_begin(sender, delivery_sink, c, &c->sw, error_r);
	pthread_mutex_unlock(&d->router->senders_lock);
	if (r < 0) {
		if (sender == NULL)
			*error_r = "cannot start a sealing epoch";
		store->backend->record_abort(&c->rw);
		free(c);
		return -1;
	}
	d->copies[d->count++] = c;
	return 0;
}

int delivery_set_mailbox(struct delivery *d, uint64_t mailbox_id, uint32_t flags,
			 const char *keywords, uint32_t *uid_r, const char **error_r)
{
	struct delivery_copy *c;

	if (d->count == 0 || d->written) {
		*error_r = "delivery_set_mailbox: no recipient, or the message has begun";
		return -1;
	}
	c = d->copies[d->count - 1];
	c->inbox_id = mailbox_id;
	c->flags = flags;
	free(c->keywords);
	c->keywords = keywords != NULL && keywords[0] != '\0' ? xstrdup(keywords) : NULL;
	c->uid_r = uid_r;
	return 0;
}

/* The bytes collected so far, past DELIVERY_STREAM_BYTES, go to the drain
 * job: the delivery streams from here on. */
static void delivery_drain_job(void *ctx);

static int delivery_flush(struct delivery *d, int last, const char **error_r)
{
	struct delivery_piece *piece;
	int start, held = 0;

	if (d->failed) {
		*error_r = "delivery already failed";
		return -1;
	}
	if (d->streamed + d->plain.len > d->max_size) {
		d->failed = 1;
		*error_r = "message too large";
		return -1;
	}
	if (d->plain.len < (last ? 1 : DELIVERY_STREAM_BYTES))
		return 0;
	if (d->ms == NULL && (d->ms = mime_meta_stream_new()) == NULL)
		log_fatal("out of memory");
	piece = xcalloc(1, sizeof(*piece));
	piece->data = d->plain; /* moved: the caller's buffer stays D->PLAIN */
	buf_init(&d->plain);
	if (!last && buf_reserve(&d->plain, DELIVERY_STREAM_BYTES) < 0)
		log_fatal("out of memory");
	d->streamed += piece->data.len;
	pthread_mutex_lock(&d->lock);
	*d->queue_end = piece;
	d->queue_end = &piece->next;
	d->queued += piece->data.len;
	start = !d->draining;
	d->draining = 1;
	if (start)
		pool_submit(d->router->pool, delivery_drain_job, d);
	if (!last && d->pacing == PACE_WAIT) {
		while (d->queued >= DELIVERY_QUEUE_HIGH_BYTES && !d->drain_failed)
			pthread_cond_wait(&d->drained, &d->lock);
	} else if (!last && d->pacing == PACE_CALLBACK && d->queued >= DELIVERY_QUEUE_HIGH_BYTES) {
		d->held = 1;
		held = 1;
	}
	if (d->drain_failed) {
		d->failed = 1;
		*error_r = str_tfmt("%s", d->drain_error);
	}
	pthread_mutex_unlock(&d->lock);
	return d->failed ? -1 : held;
}

int delivery_write(struct delivery *d, const void *data, size_t len, const char **error_r)
{
	if (d->failed) {
		*error_r = "delivery already failed";
		return -1;
	}
	d->written = 1;
	if (d->streamed + d->plain.len + len > d->max_size) {
		d->failed = 1;
		*error_r = "message too large";
		return -1;
	}
	if (buf_append(&d->plain, data, len) < 0) {
		d->failed = 1;
		*error_r = "out of memory";
		return -1;
	}
	return delivery_flush(d, 0, error_r) < 0 ? -1 : 0;
}

void delivery_set_pacing(struct delivery *d, void (*ready)(void *ctx), void *ctx)
{
	d->pacing = ready != NULL ? PACE_CALLBACK : PACE_WAIT;
	d->ready = ready;
	d->ready_ctx = ctx;
}

struct buf *delivery_buffer(struct delivery *d, uint64_t expected)
{
	d->written = 1;
	if (expected > DELIVERY_STREAM_BYTES)
		expected = DELIVERY_STREAM_BYTES;
	if (expected > d->plain.len && buf_reserve(&d->plain, (size_t)expected - d->plain.len) < 0)
		log_fatal("out of memory");
	return &d->plain;
}

int delivery_buffer_taken(struct delivery *d, const char **error_r)
{
	return delivery_flush(d, 0, error_r);
}

static void delivery_pieces_free(struct delivery_piece *p)
{
	while (p != NULL) {
		struct delivery_piece *next = p->next;

		buf_free(&p->data);
		free(p);
		p = next;
	}
}

static void delivery_free(struct delivery *d)
{
	for (size_t i = 0; i < d->count; i++) {
		struct delivery_copy *c = d->copies[i];

		seal_writer_free(&c->sw);
		if (c->rw != NULL)
			c->store->backend->record_abort(&c->rw);
		buf_free(&c->meta);
		free(c->keywords);
		free(c);
	}
	free(d->copies);
	buf_free(&d->plain);
	delivery_pieces_free(d->queue);
	mime_meta_stream_free(&d->ms);
	pthread_cond_destroy(&d->drained);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void delivery_abort(struct delivery **dp)
{
	struct delivery *d = *dp;
	int busy;

	if (d == NULL)
		return;
	*dp = NULL;
	/* A running drain job owns D: it frees it when it stops. */
	pthread_mutex_lock(&d->lock);
	busy = d->draining;
	d->abort_wanted = 1;
	d->ready = NULL;
	pthread_mutex_unlock(&d->lock);
	if (!busy)
		delivery_free(d);
}

/* One copy finished (or failed); the last one reports and frees. */
static void delivery_copy_done(void *ctx, int result, uint32_t uid, const char *error)
{
	struct delivery_copy *c = ctx;
	struct delivery *d = c->d;
	size_t left;

	if (result == 0) {
		if (c->uid_r != NULL)
			*c->uid_r = uid;
		router_notify(c->acct->region, c->acct->st.id, c->inbox_id, NULL);
	}
	pthread_mutex_lock(&d->lock);
	if (result < 0 && d->result == 0) {
		d->result = -1;
		snprintf(d->error, sizeof(d->error), "%s", error ? error : "store error");
	}
	left = --d->pending;
	pthread_mutex_unlock(&d->lock);
	if (left > 0)
		return;
	d->done(d->done_ctx, d->result, d->result < 0 ? d->error : NULL);
	delivery_free(d);
}

/* Seals the next LEN plaintext bytes for every recipient. */
static int delivery_seal(struct delivery *d, const uint8_t *data, size_t len, const char **error_r)
{
	for (size_t i = 0; i < d->count && len > 0; i++) {
		if (seal_writer_write(d->copies[i]->sw, data, len, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Everything is sealed: seals META for each copy and commits every copy
 * into its store. Consumes D (through DONE). */
static void delivery_finish(struct delivery *d, const struct buf *meta, uint64_t size)
{
	const char *error = "out of memory";
	size_t i, count;

	for (i = 0; i < d->count; i++) {
		struct delivery_copy *c = d->copies[i];
		uint8_t *sealed;
		size_t sealed_len;

		if (seal_writer_finish(c->sw, &error) < 0 ||
		    seal_writer_seal_meta(c->sw, meta->data, meta->len, &sealed, &sealed_len,
					  &error) < 0)
			goto fail;
		if (buf_append(&c->meta, sealed, sealed_len) < 0)
			log_fatal("out of memory");
		free(sealed);
		seal_writer_free(&c->sw);
	}
	/* Once the last copy is handed over, the store may finish it and free
	 * D at any time: the loop must not look at D after that. */
	count = d->pending = d->count;
	for (i = 0; i < count; i++) {
		struct delivery_copy *c = d->copies[i];
		struct store_message msg;

		store_message_init(&msg);
		msg.mailbox_id = c->inbox_id;
		msg.flags = c->flags;
		msg.keywords = c->keywords; /* borrowed: the store copies it */
		msg.internal_date = d->internal_date;
		msg.size = size;
		msg.meta = c->meta; /* borrowed: the store copies it */
		c->store->backend->record_commit(&c->rw, &msg, delivery_copy_done, c);
	}
	return;
fail:
	d->done(d->done_ctx, -1, error);
	delivery_free(d);
}

/* A message that stayed below DELIVERY_STREAM_BYTES: sealed whole. */
static void delivery_commit_job(void *ctx)
{
	struct delivery *d = ctx;
	const char *error = "out of memory";
	uint64_t size = d->plain.len;
	struct buf meta;

	buf_init(&meta);
	if (d->failed || d->count == 0 || d->plain.len > d->max_size) {
		error = d->count == 0 ? "no recipients"
			: d->failed   ? "delivery already failed"
				      : "message too large";
		goto fail;
	}
	if (mime_meta_build(d->plain.data ? d->plain.data : (const uint8_t *)"", d->plain.len,
			    &meta) < 0 ||
	    delivery_seal(d, d->plain.data, d->plain.len, &error) < 0)
		goto fail;
	/* Plaintext is not needed past this point. */
	buf_free(&d->plain);
	delivery_finish(d, &meta, size);
	buf_free(&meta);
	return;
fail:
	buf_free(&meta);
	d->done(d->done_ctx, -1, error);
	delivery_free(d);
}

/* Seals the queued pieces in order; the last drain of a committed delivery
 * finishes it. Runs on the pool, one at a time per delivery. */
static void delivery_drain_job(void *ctx)
{
	struct delivery *d = ctx;
	struct delivery_piece *piece;
	struct buf meta;
	const char *error = NULL;
	int failed;

	for (;;) {
		pthread_mutex_lock(&d->lock);
		piece = d->queue;
		if (piece == NULL) {
			if (d->commit_wanted || d->abort_wanted)
				break; /* the owner is gone: D is ours to finish */
			d->draining = 0;
			pthread_mutex_unlock(&d->lock);
			return;
		}
		d->queue = piece->next;
		if (d->queue == NULL)
			d->queue_end = &d->queue;
		if (d->abort_wanted || d->drain_failed) {
			d->queued -= piece->data.len;
			pthread_cond_broadcast(&d->drained);
			pthread_mutex_unlock(&d->lock);
			piece->next = NULL;
			delivery_pieces_free(piece);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		piece->next = NULL;
		failed = mime_meta_stream_write(d->ms, piece->data.data, piece->data.len) < 0 ||
			 delivery_seal(d, piece->data.data, piece->data.len, &error) < 0;
		pthread_mutex_lock(&d->lock);
		if (failed) {
			d->drain_failed = 1;
			snprintf(d->drain_error, sizeof(d->drain_error), "%s",
				 error != NULL ? error : "out of memory");
		}
		d->queued -= piece->data.len;
		pthread_cond_broadcast(&d->drained);
		/* The writer may go on (and learns of a failure when it does). */
		if (d->held && (d->queued < DELIVERY_QUEUE_LOW_BYTES || d->drain_failed)) {
			d->held = 0;
			if (d->ready != NULL)
				d->ready(d->ready_ctx);
		}
		pthread_mutex_unlock(&d->lock);
		delivery_pieces_free(piece);
	}
	/* Queue empty, and the delivery is committed or aborted. */
	pthread_mutex_unlock(&d->lock);
	if (d->abort_wanted) {
		delivery_free(d);
		return;
	}
	if (d->drain_failed) {
		d->done(d->done_ctx, -1, d->drain_error);
		delivery_free(d);
		return;
	}
	buf_init(&meta);
	if (mime_meta_stream_finish(d->ms, &meta) < 0) {
		buf_free(&meta);
		d->done(d->done_ctx, -1, "out of memory");
		delivery_free(d);
		return;
	}
	mime_meta_stream_free(&d->ms);
	delivery_finish(d, &meta, d->streamed);
	buf_free(&meta);
}

void delivery_commit(struct delivery **dp, int64_t internal_date, delivery_done_fn *done, void *ctx)
{
	struct delivery *d = *dp;
	const char *error = NULL;
	int start;

	*dp = NULL;
	d->internal_date = internal_date;
	d->done = done;
	d->done_ctx = ctx;
	if (d->ms == NULL) {
		if (d->plain.len * d->count <= DELIVERY_INLINE_BYTES)
			delivery_commit_job(d);
		else
			pool_submit(d->router->pool, delivery_commit_job, d);
		return;
	}
	/* Streaming: the rest goes to the drain, which then finishes. */
	if (delivery_flush(d, 1, &error) < 0 && !d->failed)
		d->failed = 1;
	pthread_mutex_lock(&d->lock);
	if (d->failed && !d->drain_failed) {
		d->drain_failed = 1;
		snprintf(d->drain_error, sizeof(d->drain_error), "%s",
			 error != NULL ? error : "delivery already failed");
	}
	if (d->count == 0 && !d->drain_failed) {
		d->drain_failed = 1;
		snprintf(d->drain_error, sizeof(d->drain_error), "no recipients");
	}
	d->commit_wanted = 1;
	d->ready = NULL;
	start = !d->draining;
	d->draining = 1;
	pthread_mutex_unlock(&d->lock);
	if (start)
		pool_submit(d->router->pool, delivery_drain_job, d);
}

static void delivery_wait_done(void *ctx, int result, const char *error)
{
	waiter_finish(ctx, result, 0, error);
}

int delivery_commit_wait(struct delivery **d, int64_t internal_date, const char **error_r)
{
	struct waiter w;

	waiter_init(&w);
	delivery_commit(d, internal_date, delivery_wait_done, &w);
	return waiter_wait(&w, NULL, error_r) < 0 ? -1 : 0;
}

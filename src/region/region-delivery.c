/* region-delivery.c — one incoming message, sealed to each recipient as it
 * arrives and committed into each recipient's home region.
 *
 * Trust boundary: the plaintext comes from the network (SMTP), a local MTA
 * (`sealmail deliver`) or an IMAP client (APPEND). delivery_write only
 * collects it in memory (the whole message is needed for the metadata part
 * anyway); the commit job seals it for each recipient on a pool thread, so
 * that sealing runs beside the event loop, and wipes it before anything
 * reaches a store. Each copy goes to router_store(recipient): the store of
 * the recipient's own region. */
#include "region/region-private.h"

#include "mime/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	struct buf plain;
	int written;
	int failed;
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
	pthread_mutex_init(&d->lock, NULL);
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
	struct store_mailbox inbox;
	struct delivery_copy *c;
	struct seal_sender *sender;
	int r;

	if (d->written) {
		*error_r = "recipients must be added before the message";
		return -1;
	}
	for (size_t i = 0; i < d->count; i++)
		if (d->copies[i]->acct->region == acct->region &&
		    d->copies[i]->acct->st.id == acct->st.id)
			return 0;
	memset(&inbox, 0, sizeof(inbox));
	r = store->backend->mailbox_get_role(store, acct->st.id, STORE_ROLE_INBOX, &inbox, error_r);
	if (r == 0)
		*error_r = "the account has no INBOX";
	if (r <= 0) {
		store_mailbox_clear(&inbox);
		return -1;
	}

	d->copies = realloc(d->copies, (d->count + 1) * sizeof(*d->copies));
	if (d->copies == NULL)
		log_fatal("out of memory");
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->acct = acct;
	c->store = store;
	buf_init(&c->meta);
	c->inbox_id = inbox.id;
	store_mailbox_clear(&inbox);
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

int delivery_write(struct delivery *d, const void *data, size_t len, const char **error_r)
{
	if (d->failed) {
		*error_r = "delivery already failed";
		return -1;
	}
	d->written = 1;
	if (d->plain.len + len > d->max_size) {
		d->failed = 1;
		*error_r = "message too large";
		return -1;
	}
	if (buf_append(&d->plain, data, len) < 0) {
		d->failed = 1;
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

struct buf *delivery_buffer(struct delivery *d, uint64_t expected)
{
	d->written = 1;
	if (expected > d->max_size)
		expected = d->max_size;
	if (expected > d->plain.len && buf_reserve(&d->plain, (size_t)expected - d->plain.len) < 0)
		log_fatal("out of memory");
	return &d->plain;
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
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void delivery_abort(struct delivery **dp)
{
	if (*dp == NULL)
		return;
	delivery_free(*dp);
	*dp = NULL;
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

static void delivery_commit_job(void *ctx)
{
	struct delivery *d = ctx;
	const char *error = "out of memory";
	uint64_t size = d->plain.len;
	struct buf meta;
	size_t i, count;

	buf_init(&meta);
	if (d->failed || d->count == 0 || d->plain.len > d->max_size) {
		error = d->count == 0 ? "no recipients"
			: d->failed   ? "delivery already failed"
				      : "message too large";
		goto fail;
	}
	if (mime_meta_build(d->plain.data ? d->plain.data : (const uint8_t *)"", d->plain.len,
			    &meta) < 0)
		goto fail;
	for (i = 0; i < d->count; i++) {
		struct delivery_copy *c = d->copies[i];
		uint8_t *sealed;
		size_t sealed_len;

		if ((d->plain.len > 0 &&
		     seal_writer_write(c->sw, d->plain.data, d->plain.len, &error) < 0) ||
		    seal_writer_finish(c->sw, &error) < 0 ||
		    seal_writer_seal_meta(c->sw, meta.data, meta.len, &sealed, &sealed_len,
					  &error) < 0)
			goto fail;
		if (buf_append(&c->meta, sealed, sealed_len) < 0)
			log_fatal("out of memory");
		free(sealed);
		seal_writer_free(&c->sw);
	}
	buf_free(&meta);
	/* Plaintext is not needed past this point. */
	buf_free(&d->plain);
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
	buf_free(&meta);
	d->done(d->done_ctx, -1, error);
	delivery_free(d);
}

void delivery_commit(struct delivery **dp, int64_t internal_date, delivery_done_fn *done, void *ctx)
{
	struct delivery *d = *dp;

	*dp = NULL;
	d->internal_date = internal_date;
	d->done = done;
	d->done_ctx = ctx;
	pool_submit(d->router->pool, delivery_commit_job, d);
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

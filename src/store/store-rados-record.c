/* store-rados-record.c — sealed records and new messages on RADOS.
 *
 * Trust boundary: see store-rados.c. A record is written as one object with
 * a random name; its bytes are sealed. Pending bytes are buffered in memory
 * and written out every RADOS_FLUSH_BYTES.
 *
 * Group commit: commits queue for one thread per store. It takes every
 * queued commit, writes their records in parallel (asynchronous write
 * operations), then gives each mailbox of the batch one guarded write that
 * allocates consecutive UIDs and adds all its index entries at once; another
 * node's write in between makes it fail with -ECANCELED and it is retried
 * on the new header. Only then are the callbacks run. A record whose index
 * write failed is removed; a crash between the two leaves an unreferenced
 * sealed object. */
#include "store/store-rados-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RADOS_FLUSH_BYTES (4 * 1024 * 1024)
#define RADOS_BATCH_MAX   64
#define RADOS_READ_BYTES  (4 * 1024 * 1024)

struct store_record_writer {
	struct rados_store *rs;
	struct store_record_writer *next; /* in the commit queue */
	uint64_t record;
	char oid[RADOS_OID_MAX];
	struct buf pending;
	uint64_t size, flushed;
	struct store_message msg;
	store_commit_fn *done;
	void *done_ctx;
	int result;
	uint32_t uid;
	char error[200];
};

int rados_record_begin(struct store *s, struct store_record_writer **w_r, const char **error_r)
{
	struct store_record_writer *w = xcalloc(1, sizeof(*w));

	w->rs = RS(s);
	w->record = rados_random_u64();
	rados_oid_record(w->oid, w->record);
	buf_init(&w->pending);
	store_message_init(&w->msg);
	*w_r = w;
	return 0;
}

int rados_record_write(struct store_record_writer *w, const void *data, size_t len,
		       const char **error_r)
{
	if (buf_append(&w->pending, data, len) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	w->size += len;
	if (w->pending.len >= RADOS_FLUSH_BYTES) {
		int r = rados_write(w->rs->io, w->oid, (const char *)w->pending.data,
				    w->pending.len, w->flushed);

		if (r < 0)
			return rados_fail(r, "write record", error_r);
		w->flushed += w->pending.len;
		buf_reset(&w->pending);
	}
	return 0;
}

static void rados_writer_free(struct store_record_writer *w)
{
	buf_free(&w->pending);
	store_message_clear(&w->msg);
	free(w);
}

void rados_record_abort(struct store_record_writer **wp)
{
	struct store_record_writer *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	if (w->flushed > 0)
		rados_remove(w->rs->io, w->oid);
	rados_writer_free(w);
}

void rados_record_commit(struct store_record_writer **wp, const struct store_message *msg,
			 store_commit_fn *done, void *ctx)
{
	struct store_record_writer *w = *wp;
	struct rados_store *rs = w->rs;

	*wp = NULL;
	w->msg.mailbox_id = msg->mailbox_id;
	w->msg.flags = msg->flags;
	w->msg.keywords = msg->keywords ? xstrdup(msg->keywords) : NULL;
	w->msg.internal_date = msg->internal_date;
	w->msg.size = msg->size;
	if (buf_append(&w->msg.meta, msg->meta.data, msg->meta.len) < 0)
		log_fatal("out of memory");
	w->done = done;
	w->done_ctx = ctx;
	w->next = NULL;
	pthread_mutex_lock(&rs->lock);
	if (rs->queue_tail != NULL)
		rs->queue_tail->next = w;
	else
		rs->queue_head = w;
	rs->queue_tail = w;
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
}

static void rados_commit_fail(struct store_record_writer *w, const char *error)
{
	w->result = -1;
	snprintf(w->error, sizeof(w->error), "%s", error != NULL ? error : "store error");
}

/* Writes the last bytes and the reference count of every record of BATCH. */
static void rados_batch_records(struct rados_store *rs, struct store_record_writer **batch,
				size_t n)
{
	rados_completion_t comps[RADOS_BATCH_MAX];
	rados_write_op_t ops[RADOS_BATCH_MAX];

	for (size_t i = 0; i < n; i++) {
		struct store_record_writer *w = batch[i];

		ops[i] = rados_create_write_op();
		if (w->flushed == 0)
			rados_write_op_create(ops[i], LIBRADOS_CREATE_EXCLUSIVE, NULL);
		if (w->pending.len > 0)
			rados_write_op_write(ops[i], (const char *)w->pending.data, w->pending.len,
					     w->flushed);
		rados_write_op_setxattr(ops[i], "refs", "1", 1);
		rados_aio_create_completion2(NULL, NULL, &comps[i]);
		rados_aio_write_op_operate(ops[i], rs->io, comps[i], w->oid, NULL, 0);
	}
	for (size_t i = 0; i < n; i++) {
		int r;

		rados_aio_wait_for_complete(comps[i]);
		r = rados_aio_get_return_value(comps[i]);
		rados_aio_release(comps[i]);
		rados_release_write_op(ops[i]);
		if (r < 0)
			rados_commit_fail(batch[i],
					  str_tfmt("store: rados write record: %s", strerror(-r)));
		buf_free(&batch[i]->pending);
	}
}

/* Adds the messages BATCH[0..N) (all of MAILBOX_ID, results still 0) to the
 * mailbox in one guarded write. */
static void rados_batch_index(struct rados_store *rs, uint64_t mailbox_id,
			      struct store_record_writer **batch, size_t n)
{
	const char *keys[2 * RADOS_BATCH_MAX];
	const char *vals[2 * RADOS_BATCH_MAX];
	size_t lens[2 * RADOS_BATCH_MAX];
	char keybuf[2 * RADOS_BATCH_MAX][16];
	struct buf packed[RADOS_BATCH_MAX];
	char oid[RADOS_OID_MAX];
	const char *error = NULL;
	int tries;

	rados_oid_mailbox(oid, mailbox_id);
	for (size_t i = 0; i < n; i++)
		buf_init(&packed[i]);
	for (tries = 0; tries < RADOS_RETRIES; tries++) {
		struct rados_hdr h;
		char old[128], new[128];
		rados_write_op_t op;
		int r = rados_hdr_read(rs, mailbox_id, &h, old, &error);

		if (r <= 0) {
			if (r == 0)
				error = "store: no such mailbox";
			break;
		}
		if ((uint64_t)h.uidnext + n > UINT32_MAX) {
			error = "store: mailbox UIDs exhausted";
			break;
		}
		for (size_t i = 0; i < n; i++) {
			struct store_record_writer *w = batch[i];
			struct rados_entry e = {
			    .uid = h.uidnext,
			    .flags = w->msg.flags,
			    .modseq = ++h.modseq,
			    .internal_date = w->msg.internal_date,
			    .size = w->msg.size,
			    .record_size = w->size,
			    .record = w->record,
			    .keywords = w->msg.keywords,
			};

			w->uid = h.uidnext++;
			h.messages++;
			h.bytes += w->size;
			rados_entry_pack(&e, &packed[i]);
			rados_key_uid(keybuf[2 * i], 'u', w->uid);
			rados_key_uid(keybuf[2 * i + 1], 'm', w->uid);
			keys[2 * i] = keybuf[2 * i];
			vals[2 * i] = (const char *)packed[i].data;
			lens[2 * i] = packed[i].len;
			keys[2 * i + 1] = keybuf[2 * i + 1];
			vals[2 * i + 1] = (const char *)w->msg.meta.data;
			lens[2 * i + 1] = w->msg.meta.len;
		}
		op = rados_create_write_op();
		rados_hdr_guard(op, old, &h, new);
		rados_write_op_omap_set(op, keys, vals, lens, 2 * n);
		r = rados_write_op_operate2(op, rs->io, oid, NULL, 0);
		rados_release_write_op(op);
		if (r == -ECANCELED)
			continue;
		if (r < 0)
			error = str_tfmt("store: rados add messages: %s", strerror(-r));
		break;
	}
	if (tries == RADOS_RETRIES)
		error = "store: add messages: too much contention";
	for (size_t i = 0; i < n; i++) {
		buf_free(&packed[i]);
		if (error != NULL) {
			rados_commit_fail(batch[i], error);
			rados_remove(rs->io, batch[i]->oid);
		}
	}
}

static void rados_batch_run(struct rados_store *rs, struct store_record_writer **batch, size_t n)
{
	struct store_record_writer *group[RADOS_BATCH_MAX];
	uint8_t taken[RADOS_BATCH_MAX] = {0};

	rados_batch_records(rs, batch, n);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		if (taken[i] || batch[i]->result < 0)
			continue;
		/* Every commit of this mailbox in the batch, in queue order. */
		for (size_t j = i; j < n; j++) {
			if (!taken[j] && batch[j]->result == 0 &&
			    batch[j]->msg.mailbox_id == batch[i]->msg.mailbox_id) {
				taken[j] = 1;
				group[k++] = batch[j];
			}
		}
		rados_batch_index(rs, batch[i]->msg.mailbox_id, group, k);
	}
	for (size_t i = 0; i < n; i++) {
		struct store_record_writer *w = batch[i];
		store_commit_fn *done = w->done;
		void *done_ctx = w->done_ctx;
		char error[sizeof(w->error)];
		int result = w->result;
		uint32_t uid = w->uid;

		memcpy(error, w->error, sizeof(error));
		rados_writer_free(w);
		done(done_ctx, result, uid, result < 0 ? error : NULL);
	}
}

void *rados_committer_main(void *arg)
{
	struct rados_store *rs = arg;
	struct store_record_writer *batch[RADOS_BATCH_MAX];

	pthread_setname_np(pthread_self(), "store-commit");
	pthread_mutex_lock(&rs->lock);
	for (;;) {
		size_t n = 0;

		while (rs->queue_head == NULL && !rs->stopping)
			pthread_cond_wait(&rs->cond, &rs->lock);
		if (rs->queue_head == NULL && rs->stopping)
			break;
		while (rs->queue_head != NULL && n < RADOS_BATCH_MAX) {
			struct store_record_writer *w = rs->queue_head;

			rs->queue_head = w->next;
			batch[n++] = w;
		}
		if (rs->queue_head == NULL)
			rs->queue_tail = NULL;
		rs->batches++;
		rs->commits += n;
		pthread_mutex_unlock(&rs->lock);
		rados_batch_run(rs, batch, n);
		pthread_mutex_lock(&rs->lock);
	}
	pthread_mutex_unlock(&rs->lock);
	return NULL;
}

/* ---- reading -------------------------------------------------------------------- */

int rados_record_read(struct store *s, uint64_t message_id, store_bytes_fn *fn, void *ctx,
		      const char **error_r)
{
	struct rados_store *rs = RS(s);
	uint64_t mailbox_id = message_id >> 32;
	uint32_t uid = (uint32_t)message_id;
	struct rados_entry *e = NULL;
	char oid[RADOS_OID_MAX], *data;
	size_t n = 0;
	uint64_t off = 0;
	int ret = 0;

	if (uid == 0 || rados_entries_read(rs, mailbox_id, uid, uid, &e, &n, error_r) < 0)
		return -1;
	if (n != 1) {
		rados_entries_free(e, n);
		*error_r = store_error_gone;
		return -1;
	}
	rados_oid_record(oid, e[0].record);
	data = xmalloc(RADOS_READ_BYTES);
	while (off < e[0].record_size) {
		int r = rados_read(rs->io, oid, data, RADOS_READ_BYTES, off);

		if (r <= 0) {
			/* Removed by an expunge since its entry was read. */
			ret = r < 0 && r != -ENOENT ? rados_fail(r, "read record", error_r) : -1;
			if (r == -ENOENT)
				*error_r = store_error_gone;
			if (r == 0)
				*error_r = "store: record is short";
			break;
		}
		if (fn(ctx, (const uint8_t *)data, (size_t)r) < 0) {
			*error_r = "record read aborted";
			ret = -1;
			break;
		}
		off += (uint64_t)r;
	}
	free(data);
	rados_entries_free(e, n);
	return ret;
}

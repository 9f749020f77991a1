/* imap-cmd-fetch.c — FETCH and UID FETCH (with CONDSTORE's CHANGEDSINCE
 * and QRESYNC's VANISHED).
 *
 * Trust boundary: decides what is opened for each message. FLAGS, UID,
 * INTERNALDATE, RFC822.SIZE and MODSEQ come from the plaintext index;
 * ENVELOPE, BODYSTRUCTURE, BODY and top-level header sections from the
 * sealed metadata part alone (no body is decrypted); only body sections
 * decrypt the record. Plaintext lives in wiped buffers for the time of one
 * message's response. Long fetches run in slices of IMAP_SLICE_US so that
 * other connections are served in between. */
#include "imap/imap-fetch.h"

#include "crypto/seal.h"
#include "mime/mime.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMAP_FETCH_BATCH 128
/* Message bytes one batch of body sections opens at most (but at least one
 * message): what a pool job holds in plaintext at a time. */
#define IMAP_FETCH_BATCH_BYTES (512 * 1024)
/* Bodies of one batch are opened on this many threads at once (the job's
 * and pool threads that are idle): one client's FETCH is otherwise bound to
 * a single core's cipher speed. Worth it from this many bytes. */
#define IMAP_FETCH_WORKERS        IMAP_POOL_THREADS
#define IMAP_FETCH_PARALLEL_BYTES (64 * 1024)

struct imap_fetch {
	struct imap_fetch_spec spec;
	size_t *idx;
	size_t count, pos;
	uint8_t *flags_changed; /* per entry of IDX: \Seen was just set */
	struct buf *metas;      /* sealed metadata of the current batch */
	size_t batch_start, batch_len;
	unsigned failed;
	/* The responses of the current batch, moved to the connection without
	 * a copy once it is done; bodies are in it by reference. */
	struct evbuffer *ev;
	/* When bodies are opened on several threads: each message's response,
	 * joined into EV in order. */
	struct evbuffer *outs[IMAP_FETCH_BATCH];
	uint64_t batch_bytes;
	/* Kept from one body to the next, one per worker. */
	struct seal_reader *readers[IMAP_FETCH_WORKERS];
	/* Errors of the batch (a pool thread does not log), under LOCK. */
	pthread_mutex_t lock;
	unsigned batch_failed;
	uint32_t error_uid;
	char error[160];
};

static void imap_fetch_free(struct imap_fetch *f)
{
	if (f == NULL)
		return;
	imap_fetch_spec_free(&f->spec);
	if (f->metas != NULL)
		for (size_t i = 0; i < IMAP_FETCH_BATCH; i++)
			buf_free(&f->metas[i]);
	free(f->metas);
	if (f->ev != NULL)
		evbuffer_free(f->ev);
	for (size_t i = 0; i < IMAP_FETCH_BATCH; i++)
		if (f->outs[i] != NULL)
			evbuffer_free(f->outs[i]);
	for (size_t i = 0; i < IMAP_FETCH_WORKERS; i++)
		seal_reader_free(&f->readers[i]);
	pthread_mutex_destroy(&f->lock);
	free(f->flags_changed);
	free(f->idx);
	free(f);
}

static void imap_fetch_error(struct imap_fetch *f, uint32_t uid, const char *error)
{
	pthread_mutex_lock(&f->lock);
	if (f->batch_failed++ == 0) {
		f->error_uid = uid;
		snprintf(f->error, sizeof(f->error), "%s", error != NULL ? error : "unknown error");
	}
	pthread_mutex_unlock(&f->lock);
}

/* Moves what OUT holds to EV (the bytes in OUT are wiped). */
static void imap_fetch_flush(struct evbuffer *ev, struct buf *out)
{
	if (out->len > 0 && evbuffer_add(ev, out->data, out->len) < 0)
		log_fatal("out of memory");
	buf_reset(out);
}

/* Appends V in decimal (without printf: a FLAGS fetch formats a few
 * numbers per message and little else). */
static int imap_fetch_num(struct buf *out, uint64_t v)
{
	char tmp[20];
	size_t n = sizeof(tmp);

	do
		tmp[--n] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return buf_append(out, tmp + n, sizeof(tmp) - n);
}

static void imap_fetch_literal(struct buf *out, const uint8_t *data, size_t len)
{
	if (buf_printf(out, "{%zu}\r\n", len) < 0 || buf_append(out, data, len) < 0)
		log_fatal("out of memory");
}

static void imap_fetch_meta_field(struct buf *out, const struct buf *meta, enum mime_field field,
				  const char *fallback)
{
	const uint8_t *v;
	size_t len;

	if (meta->len > 0 && mime_meta_get(meta->data, meta->len, field, &v, &len) == 1) {
		if (buf_append(out, v, len) < 0)
			log_fatal("out of memory");
	} else if (buf_append_str(out, fallback) < 0) {
		log_fatal("out of memory");
	}
}

/* One message's response, built in OUT and moved to EV (a whole body
 * section by reference, without a copy), opening its body with *READER;
 * 0, or -1 when it could not be opened. Runs on a pool thread when the spec
 * opens anything, on several at once for bodies: it reads the view, which
 * does not change while the command runs, and writes only EV, *READER and
 * F's errors. */
static int imap_fetch_one(struct imap_session *s, struct imap_fetch *f, size_t k,
			  const struct buf *sealed_meta, struct buf *out, struct evbuffer *ev,
			  struct seal_reader **reader)
{
	const struct imap_msg *m = &s->view->msgs[f->idx[k]];
	const struct imap_fetch_spec *spec = &f->spec;
	struct imap_plain *body = NULL;
	struct buf meta, scratch;
	const uint8_t *hdr = NULL;
	size_t hdr_len = 0;
	const char *error;
	int ret = -1, first = 1, has_uid = 0, has_flags = 0;

	buf_init(&meta);
	buf_init(&scratch);
	if (spec->need_meta) {
		if (sealed_meta == NULL || sealed_meta->len == 0) {
			imap_fetch_error(f, m->uid, "no sealed metadata");
			goto out;
		}
		if (imap_msg_meta(s, sealed_meta, &meta, &error) < 0) {
			imap_fetch_error(f, m->uid, error);
			goto out;
		}
		if (mime_meta_get(meta.data, meta.len, MIME_FIELD_HEADER, &hdr, &hdr_len) != 1) {
			hdr = (const uint8_t *)"\r\n";
			hdr_len = 2;
		}
	}
	if (spec->need_body && imap_msg_plain(s, m, reader, &body, &error) < 0) {
		imap_fetch_error(f, m->uid, error);
		goto out;
	}
	if (buf_append_str(out, "* ") < 0 || imap_fetch_num(out, f->idx[k] + 1) < 0 ||
	    buf_append_str(out, " FETCH (") < 0)
		log_fatal("out of memory");
	for (size_t i = 0; i < spec->count; i++) {
		const struct imap_fetch_item *it = &spec->items[i];
		int r = 0;

		if (!first && buf_append(out, " ", 1) < 0)
			log_fatal("out of memory");
		first = 0;
		switch (it->kind) {
		case IMAP_FETCH_FLAGS:
			r |= buf_append_str(out, "FLAGS (");
			imap_flags_format(m->flags, m->keywords, out);
			r |= buf_append_str(out, ")");
			has_flags = 1;
			break;
		case IMAP_FETCH_UID:
			r |= buf_append_str(out, "UID ");
			r |= imap_fetch_num(out, m->uid);
			has_uid = 1;
			break;
		case IMAP_FETCH_MODSEQ:
			r |= buf_append_str(out, "MODSEQ (");
			r |= imap_fetch_num(out, m->modseq);
			r |= buf_append_str(out, ")");
			break;
		case IMAP_FETCH_INTERNALDATE: {
			static const char mon[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
						      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
			time_t t = (time_t)m->internal_date;
			struct tm tm;

			gmtime_r(&t, &tm);
			r |= buf_printf(out, "INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d +0000\"",
					tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
					tm.tm_min, tm.tm_sec);
			break;
		}
		case IMAP_FETCH_SIZE:
			r |= buf_append_str(out, "RFC822.SIZE ");
			r |= imap_fetch_num(out, m->size);
			break;
		case IMAP_FETCH_ENVELOPE:
			r |= buf_append_str(out, "ENVELOPE ");
			imap_fetch_meta_field(out, &meta, MIME_FIELD_ENVELOPE,
					      "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
			break;
		case IMAP_FETCH_BODYSTRUCTURE:
			r |= buf_append_str(out, "BODYSTRUCTURE ");
			imap_fetch_meta_field(out, &meta, MIME_FIELD_BODYSTRUCTURE,
					      "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
			break;
		case IMAP_FETCH_BODY:
			r |= buf_append_str(out, "BODY ");
			imap_fetch_meta_field(out, &meta, MIME_FIELD_BODY,
					      "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
			break;
		case IMAP_FETCH_SECTION:
		case IMAP_FETCH_BINARY_SIZE: {
			const uint8_t *d = NULL;
			size_t len = 0;
			int found = imap_fetch_section(it, body != NULL ? body->data : NULL,
						       body != NULL ? body->len : 0, hdr, hdr_len,
						       &scratch, &d, &len) == 0;

			if (it->kind == IMAP_FETCH_BINARY_SIZE) {
				r |= buf_printf(out, "%s %zu", it->name, found ? len : 0);
			} else if (found && body != NULL && len > 0 && d >= body->data &&
				   d + len <= body->data + body->len) {
				/* A slice of the body: by reference, not copied. */
				r |= buf_printf(out, "%s {%zu}\r\n", it->name, len);
				imap_fetch_flush(ev, out);
				imap_plain_add(ev, body, d, len);
			} else {
				r |= buf_printf(out, "%s ", it->name);
				if (found)
					imap_fetch_literal(out, d, len);
				else
					r |= buf_append_str(out, "\"\"");
			}
			buf_free(&scratch);
			break;
		}
		}
		if (r != 0)
			log_fatal("out of memory");
	}
	if (s->uid_cmd && !has_uid &&
	    (buf_append_str(out, " UID ") < 0 || imap_fetch_num(out, m->uid) < 0))
		log_fatal("out of memory");
	if (f->flags_changed != NULL && f->flags_changed[k] && !has_flags) {
		if (buf_append_str(out, " FLAGS (") < 0)
			log_fatal("out of memory");
		imap_flags_format(m->flags, m->keywords, out);
		if (buf_append_str(out, ")") < 0)
			log_fatal("out of memory");
	}
	if (buf_append_str(out, ")\r\n") < 0)
		log_fatal("out of memory");
	imap_fetch_flush(ev, out);
	ret = 0;
out:
	buf_free(&meta);
	imap_plain_unref(&body);
	buf_free(&scratch);
	buf_reset(out);
	return ret;
}

static int imap_fetch_meta_cb(void *ctx, size_t index, const struct store_message *m)
{
	struct imap_fetch *f = ctx;

	for (size_t k = f->batch_start; k < f->batch_start + f->batch_len; k++) {
		if (f->idx[k] == index) {
			struct buf *b = &f->metas[k - f->batch_start];

			buf_reset(b);
			if (buf_append(b, m->meta.data, m->meta.len) < 0)
				log_fatal("out of memory");
			break;
		}
	}
	return 0;
}

/* The next batch: at most IMAP_FETCH_BATCH messages and, when bodies are
 * opened, about IMAP_FETCH_BATCH_BYTES of them. */
static void imap_fetch_plan(struct imap_session *s, struct imap_fetch *f)
{
	uint64_t bytes = 0;
	size_t n = 0;

	f->batch_start = f->pos;
	while (f->pos + n < f->count && n < IMAP_FETCH_BATCH) {
		if (f->spec.need_body) {
			if (n > 0 &&
			    bytes + s->view->msgs[f->idx[f->pos + n]].size > IMAP_FETCH_BATCH_BYTES)
				break;
			bytes += s->view->msgs[f->idx[f->pos + n]].size;
		}
		n++;
	}
	f->batch_len = n;
	f->batch_bytes = bytes;
	f->batch_failed = 0;
	f->error[0] = '\0';
}

struct imap_fetch_par {
	struct imap_session *s;
	struct imap_fetch *f;
	unsigned failed;
};

/* Message I of the batch into EV, its body opened with WORKER's reader. */
static void imap_fetch_item(struct imap_fetch_par *p, size_t i, struct evbuffer *ev,
			    unsigned worker)
{
	struct imap_fetch *f = p->f;
	struct buf out;

	buf_init(&out);
	if (imap_fetch_one(p->s, f, f->batch_start + i, f->spec.need_meta ? &f->metas[i] : NULL,
			   &out, ev, &f->readers[worker]) < 0) {
		pthread_mutex_lock(&f->lock);
		p->failed++;
		pthread_mutex_unlock(&f->lock);
	}
	buf_free(&out);
}

/* pool_parallel(): message I into a response buffer of its own. */
static void imap_fetch_par_one(void *ctx, size_t i, unsigned worker)
{
	struct imap_fetch_par *p = ctx;
	struct imap_fetch *f = p->f;

	if (f->outs[i] == NULL && (f->outs[i] = evbuffer_new()) == NULL)
		log_fatal("out of memory");
	imap_fetch_item(p, i, f->outs[i], worker);
}

/* Opens and formats the planned batch into F->ev. On a pool thread when the
 * spec opens anything (bodies of a big enough batch on all the pool's
 * threads), else on the loop. */
static void imap_fetch_batch(struct imap_session *s, struct imap_fetch *f)
{
	struct imap_fetch_par par = {s, f, 0};
	const char *error;

	if (f->spec.need_meta) {
		for (size_t i = 0; i < f->batch_len; i++)
			buf_reset(&f->metas[i]);
		if (imap_msg_scan_meta(s, f->idx + f->batch_start, f->batch_len, imap_fetch_meta_cb,
				       f, &error) < 0)
			imap_fetch_error(f, 0, error);
	}
	if (f->spec.need_body && f->batch_len > 1 && f->batch_bytes >= IMAP_FETCH_PARALLEL_BYTES &&
	    pool_idle(s->server->pool) > 0) {
		pool_parallel(s->server->pool, IMAP_FETCH_WORKERS - 1, f->batch_len,
			      imap_fetch_par_one, &par);
		for (size_t i = 0; i < f->batch_len; i++)
			if (evbuffer_add_buffer(f->ev, f->outs[i]) < 0)
				log_fatal("out of memory");
	} else {
		for (size_t i = 0; i < f->batch_len; i++)
			imap_fetch_item(&par, i, f->ev, 0);
	}
	f->failed += par.failed;
	f->pos = f->batch_start + f->batch_len;
}

static void imap_fetch_batch_out(struct imap_session *s, struct imap_fetch *f)
{
	if (f->batch_failed > 0) {
		if (f->error_uid != 0)
			imap_session_log(s, LOG_WARN, "message uid %u: %s (%u in batch)",
					 f->error_uid, f->error, f->batch_failed);
		else
			imap_session_log(s, LOG_ERROR, "fetch: %s", f->error);
	}
	net_conn_write_buffer(s->conn, f->ev);
}

static void imap_fetch_cont(struct imap_session *s);

static void imap_fetch_job(void *ctx)
{
	struct imap_session *s = ctx;

	imap_fetch_batch(s, s->cont_ctx);
}

static void imap_fetch_job_done(struct imap_session *s, void *ctx)
{
	struct imap_fetch *f = s->cont_ctx;

	if (!s->dead)
		imap_fetch_batch_out(s, f);
	imap_fetch_cont(s);
}

/* Runs batch after batch: on the loop in slices of IMAP_SLICE_US when only
 * index fields are asked for, else each batch as a pool job (decryption off
 * the loop, on the other core). A batch is prepared only while less than
 * IMAP_OUTPUT_HIGH_BYTES wait to be sent, so a client that reads slowly
 * holds at most that much plus one batch in memory. */
static void imap_fetch_cont(struct imap_session *s)
{
	struct imap_fetch *f = s->cont_ctx;
	int64_t start = time_now_us();
	int opens = f->spec.need_meta || f->spec.need_body;

	if (s->dead) {
		imap_fetch_free(f);
		s->cont_ctx = NULL;
		return;
	}
	if (f->ev == NULL && (f->ev = evbuffer_new()) == NULL)
		log_fatal("out of memory");
	while (f->pos < f->count) {
		if (net_conn_output_pending(s->conn) > IMAP_OUTPUT_HIGH_BYTES) {
			imap_session_wait_output(s, imap_fetch_cont);
			return;
		}
		imap_fetch_plan(s, f);
		if (opens) {
			imap_session_job(s, imap_fetch_job, imap_fetch_job_done, s);
			return;
		}
		imap_fetch_batch(s, f);
		imap_fetch_batch_out(s, f);
		if (time_now_us() - start > IMAP_SLICE_US && f->pos < f->count) {
			imap_session_continue(s, imap_fetch_cont);
			return;
		}
	}
	s->cont_ctx = NULL;
	if (f->failed > 0)
		imap_cmd_finish(s, "NO", "Some messages could not be fetched");
	else
		imap_cmd_finish(s, "OK", "FETCH completed");
	imap_fetch_free(f);
}

static int imap_seen_op_cb(void *ctx, const struct store_message *m)
{
	return 0;
}

static int imap_seen_op(struct imap_write *w, const char **error_r)
{
	w->fu.uids = w->uids;
	w->fu.count = w->count;
	w->fu.mode = STORE_FLAGS_ADD;
	w->fu.flags = STORE_FLAG_SEEN;
	return w->store->backend->message_set_flags(w->store, w->mailbox_id, &w->fu,
						    imap_seen_op_cb, NULL, error_r);
}

static void imap_seen_done(struct imap_session *s, struct imap_write *w)
{
	struct imap_fetch *f = w->cmd;

	if (s->dead) {
		imap_fetch_free(f);
		imap_write_free(&w);
		return;
	}
	if (w->result == 0) {
		f->flags_changed = xcalloc(f->count + 1, 1);
		for (size_t k = 0; k < f->count; k++) {
			struct imap_msg *m = &s->view->msgs[f->idx[k]];

			if (!(m->flags & STORE_FLAG_SEEN)) {
				m->flags |= STORE_FLAG_SEEN;
				f->flags_changed[k] = 1;
			}
		}
		if (w->count > 0)
			imap_session_changed(s, w->mailbox_id);
	}
	imap_write_free(&w);
	s->cont_ctx = f;
	imap_fetch_cont(s);
}

void imap_cmd_fetch(struct imap_session *s, struct imap_args *args)
{
	struct imap_fetch *f;
	uint64_t changed_since = 0;
	const char *error;
	size_t n = 0;
	int vanished = 0;

	if (args->count < 2 || args->count > 3) {
		imap_cmd_finish(s, "BAD", "Usage: FETCH set attributes");
		return;
	}
	if (args->count == 3) {
		const struct imap_arg *m = &args->list[2];
		int bad = m->type != IMAP_ARG_LIST || m->count == 0;

		/* (CHANGEDSINCE modseq [VANISHED]) in any order (RFC 7162 3.1.4,
		 * 3.2.6). */
		for (size_t i = 0; !bad && i < m->count; i++) {
			const char *v;
			char *end;

			if (imap_arg_is_atom(&m->list[i], "VANISHED") && !vanished) {
				vanished = 1;
			} else if (imap_arg_is_atom(&m->list[i], "CHANGEDSINCE") &&
				   changed_since == 0 && i + 1 < m->count &&
				   m->list[i + 1].type == IMAP_ARG_ATOM) {
				v = m->list[++i].str;
				changed_since = strtoull(v, &end, 10);
				bad = changed_since == 0 || *end != '\0' || *v < '0' || *v > '9';
			} else {
				bad = 1;
			}
		}
		/* VANISHED: UID FETCH only, with CHANGEDSINCE, after ENABLE
		 * QRESYNC. */
		if (!bad && vanished && (!s->uid_cmd || !s->qresync || changed_since == 0))
			bad = 1;
		if (bad || changed_since == 0) {
			imap_cmd_finish(s, "BAD", "Invalid FETCH modifier");
			return;
		}
		s->condstore = 1;
	}
	f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	if (imap_fetch_spec_parse(&args->list[1], &f->spec, &error) < 0) {
		imap_fetch_free(f);
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	f->spec.changed_since = changed_since;
	if (s->condstore) {
		/* RFC 7162 3.1.4.1 and 3.2: MODSEQ with CHANGEDSINCE and with FLAGS. */
		int has_modseq = 0, has_flags = 0;

		for (size_t i = 0; i < f->spec.count; i++) {
			has_modseq |= f->spec.items[i].kind == IMAP_FETCH_MODSEQ;
			has_flags |= f->spec.items[i].kind == IMAP_FETCH_FLAGS;
		}
		if (!has_modseq && (has_flags || changed_since != 0) &&
		    f->spec.count < IMAP_FETCH_ITEMS_MAX)
			f->spec.items[f->spec.count++].kind = IMAP_FETCH_MODSEQ;
	}
	/* CHANGEDSINCE answers from the store's current state: changes by
	 * others are reported first (expunges only where allowed). */
	if (changed_since != 0)
		imap_view_sync(s, s->uid_cmd);
	if (imap_view_set(s, imap_arg_string(&args->list[0]), s->uid_cmd, &f->idx, &f->count,
			  &error) < 0) {
		imap_fetch_free(f);
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	if (vanished) {
		/* Expunged UIDs of the set, '*' taken up to UIDNEXT - 1. */
		const struct imap_view *v = s->view;
		struct imap_seqset set;
		uint32_t star = v->uidnext > 1 ? v->uidnext - 1 : 1;

		if (imap_seqset_parse(imap_arg_string(&args->list[0]), star, &set, &error) == 0) {
			if (imap_view_vanished_earlier(s, changed_since, &set, UINT32_MAX, &error) <
			    0)
				imap_session_log(s, LOG_ERROR, "fetch vanished: %s", error);
			imap_seqset_free(&set);
		}
	}
	if (f->spec.changed_since != 0) {
		for (size_t k = 0; k < f->count; k++)
			if (s->view->msgs[f->idx[k]].modseq > f->spec.changed_since)
				f->idx[n++] = f->idx[k];
		f->count = n;
	}
	if (f->spec.need_meta)
		f->metas = xcalloc(IMAP_FETCH_BATCH, sizeof(*f->metas));
	if (f->spec.sets_seen && !s->view->readonly) {
		struct imap_write *w = imap_write_new(s, imap_seen_op, imap_seen_done);

		w->mailbox_id = s->view->id;
		w->uids = xcalloc(f->count + 1, sizeof(*w->uids));
		for (size_t k = 0; k < f->count; k++)
			if (!(s->view->msgs[f->idx[k]].flags & STORE_FLAG_SEEN))
				w->uids[w->count++] = s->view->msgs[f->idx[k]].uid;
		if (w->count > 0) {
			w->cmd = f;
			imap_write_run(s, w);
			return;
		}
		imap_write_free(&w);
	}
	s->cont_ctx = f;
	imap_fetch_cont(s);
}

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMAP_FETCH_BATCH 128
/* Message bytes one batch of body sections opens at most (but at least one
 * message): what a pool job holds in plaintext at a time. */
#define IMAP_FETCH_BATCH_BYTES (512 * 1024)
/* Batches that open something are pool jobs, and while a pool thread is
 * idle, later batches are opened beside the oldest, up to this many at
 * once: one client's FETCH then keeps both cores busy, also while one
 * thread decrypts a message of several megabytes on its own. Each is
 * written once it and those before it are ready. */
#define IMAP_FETCH_SLOTS 4
/* Plaintext opened ahead of the oldest batch, at most (beside the output
 * that waits to be sent, IMAP_OUTPUT_HIGH_BYTES). */
#define IMAP_FETCH_AHEAD_BYTES (4 * 1024 * 1024)

struct imap_fetch;

/* One batch: messages [START, START + LEN) of the fetch. */
struct imap_fetch_slot {
	struct imap_session *s;
	struct imap_fetch *f;
	size_t start, len;
	uint64_t bytes;
	int running;       /* its job has not reported back */
	struct buf *metas; /* sealed metadata, when the spec needs it */
	/* The responses, moved to the connection without a copy once the
	 * batch is done; bodies are in it by reference. */
	struct evbuffer *ev;
	/* Kept from one body to the next. */
	struct seal_reader *reader;
	/* Errors (a pool thread does not log); messages found gone. */
	unsigned failed, gone;
	uint32_t error_uid;
	char error[160];
};

struct imap_fetch {
	struct imap_fetch_spec spec;
	size_t *idx;
	size_t count, pos;
	uint8_t *flags_changed; /* per entry of IDX: \Seen was just set */
	unsigned failed, gone;
	/* A ring: SLOTS[HEAD] is the oldest of the USED batches in flight. */
	struct imap_fetch_slot slots[IMAP_FETCH_SLOTS];
	unsigned head, used;
};

static void imap_fetch_free(struct imap_fetch *f)
{
	if (f == NULL)
		return;
	imap_fetch_spec_free(&f->spec);
	for (unsigned k = 0; k < IMAP_FETCH_SLOTS; k++) {
		struct imap_fetch_slot *sl = &f->slots[k];

		if (sl->metas != NULL)
			for (size_t i = 0; i < IMAP_FETCH_BATCH; i++)
				buf_free(&sl->metas[i]);
		free(sl->metas);
		if (sl->ev != NULL)
			evbuffer_free(sl->ev);
		seal_reader_free(&sl->reader);
	}
	free(f->flags_changed);
	free(f->idx);
	free(f);
}

static void imap_fetch_error(struct imap_fetch_slot *sl, uint32_t uid, const char *error)
{
	/* Another session expunged it after this one's view was last
	 * updated (RFC 2180 4.1.3): not a fault, and not logged as one. */
	if (error == store_error_gone) {
		sl->gone++;
		return;
	}
	if (sl->failed++ == 0) {
		sl->error_uid = uid;
		snprintf(sl->error, sizeof(sl->error), "%s",
			 error != NULL ? error : "unknown error");
	}
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

/* Message K's response, built in OUT and moved to SL's buffer (a whole
 * body section by reference, without a copy); 0, or -1 when it could not
 * be opened. Runs on a pool thread when the spec opens anything, on several
 * at once (one per batch): it reads the view, which does not change while
 * the command runs, and writes only SL. */
static int imap_fetch_one(struct imap_fetch_slot *sl, size_t k, const struct buf *sealed_meta,
			  struct buf *out)
{
	struct imap_session *s = sl->s;
	struct imap_fetch *f = sl->f;
	struct evbuffer *ev = sl->ev;
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
			/* The scan found no row: the column is never empty. */
			imap_fetch_error(sl, m->uid, store_error_gone);
			goto out;
		}
		if (imap_msg_meta(s, sealed_meta, &meta, &error) < 0) {
			imap_fetch_error(sl, m->uid, error);
			goto out;
		}
		if (mime_meta_get(meta.data, meta.len, MIME_FIELD_HEADER, &hdr, &hdr_len) != 1) {
			hdr = (const uint8_t *)"\r\n";
			hdr_len = 2;
		}
	}
	if (spec->need_body && imap_msg_plain(s, m, &sl->reader, &body, &error) < 0) {
		imap_fetch_error(sl, m->uid, error);
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
	struct imap_fetch_slot *sl = ctx;

	for (size_t k = sl->start; k < sl->start + sl->len; k++) {
		if (sl->f->idx[k] == index) {
			struct buf *b = &sl->metas[k - sl->start];

			buf_reset(b);
			if (buf_append(b, m->meta.data, m->meta.len) < 0)
				log_fatal("out of memory");
			break;
		}
	}
	return 0;
}

/* The next batch into SL: at most IMAP_FETCH_BATCH messages and, when
 * bodies are opened, about IMAP_FETCH_BATCH_BYTES of them. */
static void imap_fetch_plan(struct imap_session *s, struct imap_fetch *f,
			    struct imap_fetch_slot *sl)
{
	uint64_t bytes = 0;
	size_t n = 0;

	sl->s = s;
	sl->f = f;
	sl->start = f->pos;
	while (f->pos + n < f->count && n < IMAP_FETCH_BATCH) {
		if (f->spec.need_body) {
			if (n > 0 &&
			    bytes + s->view->msgs[f->idx[f->pos + n]].size > IMAP_FETCH_BATCH_BYTES)
				break;
			bytes += s->view->msgs[f->idx[f->pos + n]].size;
		}
		n++;
	}
	sl->len = n;
	sl->bytes = bytes;
	sl->failed = sl->gone = 0;
	sl->error[0] = '\0';
	f->pos += n;
	if (sl->ev == NULL && (sl->ev = evbuffer_new()) == NULL)
		log_fatal("out of memory");
	if (f->spec.need_meta && sl->metas == NULL)
		sl->metas = xcalloc(IMAP_FETCH_BATCH, sizeof(*sl->metas));
}

/* Opens and formats SL's batch into its buffer: on a pool thread when the
 * spec opens anything, else on the loop. */
static void imap_fetch_batch(void *ctx)
{
	struct imap_fetch_slot *sl = ctx;
	struct buf out;
	const char *error;

	if (sl->metas != NULL) {
		for (size_t i = 0; i < sl->len; i++)
			buf_reset(&sl->metas[i]);
		if (imap_msg_scan_meta(sl->s, sl->f->idx + sl->start, sl->len, imap_fetch_meta_cb,
				       sl, &error) < 0)
			imap_fetch_error(sl, 0, error);
	}
	buf_init(&out);
	for (size_t i = 0; i < sl->len; i++)
		imap_fetch_one(sl, sl->start + i, sl->metas != NULL ? &sl->metas[i] : NULL, &out);
	buf_free(&out);
}

/* Logs SL's errors and moves its responses to the connection. */
static void imap_fetch_batch_out(struct imap_session *s, struct imap_fetch *f,
				 struct imap_fetch_slot *sl)
{
	if (sl->failed > 0) {
		if (sl->error_uid != 0)
			imap_session_log(s, LOG_WARN, "message uid %u: %s (%u in batch)",
					 sl->error_uid, sl->error, sl->failed);
		else
			imap_session_log(s, LOG_ERROR, "fetch: %s", sl->error);
	}
	f->failed += sl->failed;
	f->gone += sl->gone;
	net_conn_write_buffer(s->conn, sl->ev);
}

static void imap_fetch_cont(struct imap_session *s);

static void imap_fetch_job_done(struct imap_session *s, void *ctx)
{
	struct imap_fetch_slot *sl = ctx;

	sl->running = 0;
	imap_fetch_cont(s);
}

/* Whether another batch may be opened beside the USED ones in flight. */
static int imap_fetch_may_open(struct imap_session *s, struct imap_fetch *f)
{
	uint64_t ahead = 0;

	if (f->used == 0)
		return 1;
	if (f->used == IMAP_FETCH_SLOTS || pool_idle(s->server->pool) == 0)
		return 0;
	for (unsigned k = 1; k < f->used; k++)
		ahead += f->slots[(f->head + k) % IMAP_FETCH_SLOTS].bytes;
	return ahead < IMAP_FETCH_AHEAD_BYTES;
}

/* Index fields only: batch after batch on the loop, in slices of
 * IMAP_SLICE_US. 1 when done, 0 when it continues later. */
static int imap_fetch_on_loop(struct imap_session *s, struct imap_fetch *f)
{
	struct imap_fetch_slot *sl = &f->slots[0];
	int64_t start = time_now_us();

	while (f->pos < f->count) {
		if (net_conn_output_pending(s->conn) > IMAP_OUTPUT_HIGH_BYTES) {
			imap_session_wait_output(s, imap_fetch_cont);
			return 0;
		}
		imap_fetch_plan(s, f, sl);
		imap_fetch_batch(sl);
		imap_fetch_batch_out(s, f, sl);
		if (time_now_us() - start > IMAP_SLICE_US && f->pos < f->count) {
			imap_session_continue(s, imap_fetch_cont);
			return 0;
		}
	}
	return 1;
}

/* Batches that open something: the oldest ones that are ready go out, in
 * order, and new ones are started while the output is below
 * IMAP_OUTPUT_HIGH_BYTES (a client that reads slowly holds at most that
 * much plus the batches in flight in memory). 1 when done, 0 when a job or
 * the output calls back. */
static int imap_fetch_in_pool(struct imap_session *s, struct imap_fetch *f)
{
	while (f->used > 0 && !f->slots[f->head].running) {
		imap_fetch_batch_out(s, f, &f->slots[f->head]);
		f->head = (f->head + 1) % IMAP_FETCH_SLOTS;
		f->used--;
	}
	while (f->pos < f->count && imap_fetch_may_open(s, f)) {
		struct imap_fetch_slot *sl = &f->slots[(f->head + f->used) % IMAP_FETCH_SLOTS];

		if (net_conn_output_pending(s->conn) > IMAP_OUTPUT_HIGH_BYTES) {
			if (f->used == 0)
				imap_session_wait_output(s, imap_fetch_cont);
			return 0;
		}
		imap_fetch_plan(s, f, sl);
		sl->running = 1;
		f->used++;
		imap_session_job(s, imap_fetch_batch, imap_fetch_job_done, sl);
	}
	return f->pos == f->count && f->used == 0;
}

static void imap_fetch_cont(struct imap_session *s)
{
	struct imap_fetch *f = s->cont_ctx;

	if (s->dead) {
		/* The jobs still running use F. */
		for (unsigned k = 0; k < f->used; k++)
			if (f->slots[(f->head + k) % IMAP_FETCH_SLOTS].running)
				return;
		imap_fetch_free(f);
		s->cont_ctx = NULL;
		return;
	}
	if (!(f->spec.need_meta || f->spec.need_body ? imap_fetch_in_pool(s, f)
						     : imap_fetch_on_loop(s, f)))
		return;
	s->cont_ctx = NULL;
	if (f->failed > 0)
		imap_cmd_finish(s, "NO", "Some messages could not be fetched");
	else if (f->gone > 0)
		imap_cmd_finish(s, "NO", "[EXPUNGEISSUED] Some messages were expunged meanwhile");
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

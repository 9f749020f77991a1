/* smtp-data.c — receiving a message: DATA (dot-stuffed) and BDAT (chunks),
 * streamed into the delivery that seals it per recipient.
 *
 * Trust boundary: the message is untrusted and is plaintext here: it is
 * decoded straight into the delivery's buffer (delivery_buffer), which the
 * delivery wipes once its commit job has sealed it; it reaches no disk
 * unsealed. Limits
 * (text line length, message size) are checked as bytes arrive; a message
 * that breaks one is read to its end, dropped, and refused as a whole. The
 * reply to the final dot or BDAT LAST is "250" only once delivery_commit has
 * reported every copy durable; its callback runs on a store thread and only
 * fills the session's smtp_commit slot and activates its event. */
#include "smtp/smtp-private.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum smtp_dot_state { DOT_BOL, DOT_TEXT, DOT_CR, DOT_DOT, DOT_DOT_CR };

static const char *const smtp_reply_too_big =
    "552 5.3.4 Message size exceeds fixed maximum message size";
static const char *const smtp_reply_tempfail = "451 4.3.0 Temporary failure, try again later";
static const char *const smtp_reply_no_space = "452 4.3.1 Insufficient system storage";

/* A store error as a reply: full disks get 452 (RFC 5321 4.5.3.1.10),
 * anything else the generic temporary failure. Both make the client retry. */
static const char *smtp_reply_store_error(const char *error)
{
	if (error != NULL &&
	    (strstr(error, "No space left") != NULL || strstr(error, "disk is full") != NULL ||
	     strstr(error, "quota") != NULL))
		return smtp_reply_no_space;
	return smtp_reply_tempfail;
}

/* ---- dot decoding ---------------------------------------------------------- */

void smtp_dot_init(struct smtp_dot_decoder *d, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->state = DOT_BOL;
	d->max_line = max_line;
}

static void smtp_dot_emit(struct smtp_dot_decoder *d, struct buf *out, const void *p, size_t n,
			  int counts)
{
	if (counts) {
		d->line_len += n;
		if (d->max_line != 0 && d->line_len + 2 > d->max_line)
			d->flags |= SMTP_DOT_LINE_TOO_LONG;
	}
	if (out != NULL && buf_append(out, p, n) < 0)
		log_fatal("out of memory");
}

/* One byte of line text that is CR, LF or NUL, or any byte after a dot. */
static void smtp_dot_text_byte(struct smtp_dot_decoder *d, struct buf *out, uint8_t c)
{
	d->state = DOT_TEXT;
	if (c == '\r') {
		d->state = DOT_CR;
		return;
	}
	if (c == '\n')
		d->flags |= SMTP_DOT_BARE_LF;
	else if (c == '\0')
		d->flags |= SMTP_DOT_NUL;
	smtp_dot_emit(d, out, &c, 1, 1);
}

/* The length of the run of IN that holds no CR, LF or NUL: memchr for the CR
 * that ends a line, then for a stray LF or NUL before it. */
static size_t smtp_dot_text_run(const uint8_t *in, size_t len)
{
	const uint8_t *cr = memchr(in, '\r', len), *p;
	size_t n = cr != NULL ? (size_t)(cr - in) : len;

	if ((p = memchr(in, '\n', n)) != NULL)
		n = (size_t)(p - in);
	if ((p = memchr(in, '\0', n)) != NULL)
		n = (size_t)(p - in);
	return n;
}

static int smtp_dot_plain_byte(uint8_t c)
{
	return c != '\r' && c != '\n' && c != '\0';
}

/* The length of the run of whole lines at the start of IN that need no
 * decoding: each ends in CR LF, holds no other CR, LF or NUL, is within
 * the line limit, and does not start with a dot. A message is mostly such
 * lines: they are appended in one piece, and the byte-by-byte states only
 * see what is left (a dot at the start of a line, a stray CR or LF, a NUL,
 * a long line, a line cut by the end of IN). */
static size_t smtp_dot_clean_lines(const struct smtp_dot_decoder *d, const uint8_t *in, size_t len)
{
	const uint8_t *nul;
	size_t i = 0;

	while (i < len && in[i] != '.') {
		const uint8_t *lf = memchr(in + i, '\n', len - i);
		size_t n;

		if (lf == NULL)
			break;
		n = (size_t)(lf - (in + i)); /* the line's bytes before LF */
		if (n == 0 || in[i + n - 1] != '\r' || (d->max_line != 0 && n + 1 > d->max_line) ||
		    memchr(in + i, '\r', n - 1) != NULL)
			break;
		i += n + 1;
	}
	/* A NUL: the clean run ends before its line. */
	if (i > 0 && (nul = memchr(in, '\0', i)) != NULL) {
		const uint8_t *lf = memrchr(in, '\n', (size_t)(nul - in));

		i = lf != NULL ? (size_t)(lf - in) + 1 : 0;
	}
	return i;
}

int smtp_dot_decode(struct smtp_dot_decoder *d, const uint8_t *in, size_t len, struct buf *out,
		    size_t *used_r)
{
	size_t i = 0, j;

	while (i < len) {
		uint8_t c = in[i];

		switch (d->state) {
		case DOT_TEXT:
			j = smtp_dot_text_run(in + i, len - i);
			if (j > 0) {
				smtp_dot_emit(d, out, in + i, j, 1);
				i += j;
				continue;
			}
			smtp_dot_text_byte(d, out, c);
			break;
		case DOT_BOL:
			j = smtp_dot_clean_lines(d, in + i, len - i);
			if (j > 0) {
				smtp_dot_emit(d, out, in + i, j, 0);
				i += j;
				continue;
			}
			if (c == '.') {
				d->state = DOT_DOT; /* terminator or transparency dot */
			} else if (smtp_dot_plain_byte(c)) {
				d->state = DOT_TEXT; /* the run starts with this byte */
				continue;
			} else {
				smtp_dot_text_byte(d, out, c);
			}
			break;
		case DOT_DOT:
			if (c == '\r') {
				d->state = DOT_DOT_CR;
			} else if (smtp_dot_plain_byte(c)) {
				d->state = DOT_TEXT;
				continue;
			} else {
				smtp_dot_text_byte(d, out, c);
			}
			break;
		case DOT_DOT_CR:
			if (c == '\n') {
				*used_r = i + 1;
				d->state = DOT_BOL;
				return 1;
			}
			/* ".<CR>x": a lone CR after a removed dot */
			__attribute__((fallthrough));
		case DOT_CR:
			if (c == '\n') {
				smtp_dot_emit(d, out, "\r\n", 2, 0);
				d->line_len = 0;
				d->state = DOT_BOL;
				break;
			}
			d->flags |= SMTP_DOT_BARE_CR;
			smtp_dot_emit(d, out, "\r", 1, 1);
			smtp_dot_text_byte(d, out, c);
			break;
		}
		i++;
	}
	*used_r = len;
	return 0;
}

/* ---- the delivery ------------------------------------------------------------ */

static void smtp_data_fail(struct smtp_session *s, const char *reply, const char *why)
{
	if (s->fail_reply != NULL)
		return;
	s->fail_reply = reply;
	smtp_session_log(s, LOG_INFO, "message refused: %s", why);
	s->body = NULL;
	delivery_abort(&s->delivery);
	/* The rest of the message is still read, to be dropped. */
	if (s->sealing_wait) {
		s->sealing_wait = 0;
		net_conn_resume(s->conn);
	}
}

/* Message bytes were appended to s->body: enforce the size limit, and let
 * the delivery take them (a large message is sealed as it streams in; when
 * the client sends faster than that, reading pauses until smtp_data_sealed). */
static void smtp_data_account(struct smtp_session *s, size_t added)
{
	const char *error = NULL;
	int r;

	s->received += added;
	if (s->received > s->server->cfg->smtp_max_message_size) {
		smtp_data_fail(s, smtp_reply_too_big, "message too large");
		return;
	}
	r = delivery_buffer_taken(s->delivery, &error);
	if (r < 0) {
		smtp_session_log(s, LOG_ERROR, "sealing failed: %s", error ? error : "?");
		smtp_data_fail(s, smtp_reply_store_error(error), "store error");
	} else if (r > 0 && !s->sealing_wait) {
		s->sealing_wait = 1;
		net_conn_pause(s->conn);
	}
}

/* Runs on a pool thread, under the delivery's lock: post the event only. */
static void smtp_data_ready(void *ctx)
{
	struct smtp_commit *commit = ctx;

	event_active(commit->sealed_ev, 0, 1);
}

void smtp_data_sealed(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (!s->sealing_wait)
		return;
	s->sealing_wait = 0;
	if (s->waiting || s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
		return;
	net_conn_resume(s->conn);
	smtp_session_input(s);
}

static const char *smtp_data_protocol(struct smtp_session *s)
{
	int tls = net_conn_is_tls(s->conn);

	if (s->mail.smtputf8)
		return tls ? "UTF8SMTPS" : "UTF8SMTP";
	if (!s->esmtp)
		return tls ? "SMTPS" : "SMTP";
	return tls ? "ESMTPS" : "ESMTP";
}

/* Return-Path (RFC 5321 4.4: the final-delivery MTA adds it) and Received. */
static int smtp_data_headers(struct smtp_session *s)
{
	const struct config *cfg = s->server->cfg;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	int ret = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	ret |= buf_printf(s->body, "Return-Path: <%s>\r\n", s->mail.path.address);
	ret |=
	    buf_printf(s->body, "Received: from %s ([%s%s])\r\n\tby %s (sealmail) with %s", s->helo,
		       s->peer_v6 ? "IPv6:" : "", s->peer, cfg->hostname, smtp_data_protocol(s));
	if (net_conn_is_tls(s->conn))
		ret |= buf_printf(s->body, "\r\n\t(%s %s)", net_conn_tls_version(s->conn),
				  net_conn_tls_cipher(s->conn));
	ret |= buf_printf(s->body, " id %s.%u", s->id, s->transactions);
	if (s->rcpt_count == 1)
		ret |= buf_printf(s->body, "\r\n\tfor <%s>", s->first_rcpt.address);
	ret |= buf_printf(s->body, ";\r\n\t%s\r\n", date);
	return ret == 0 ? 0 : -1;
}

int smtp_data_begin(struct smtp_session *s, const char **reply_r)
{
	const struct config *cfg = s->server->cfg;
	const char *error = NULL;

	s->transactions++;
	s->received = 0;
	s->fail_reply = NULL;
	s->body = NULL;
	smtp_dot_init(&s->dot, (size_t)cfg->smtp_max_line);
	if (delivery_begin(s->server->router, cfg->smtp_max_message_size + SMTP_HEADER_ROOM_BYTES,
			   &s->delivery, &error) < 0)
		goto fail;
	for (size_t i = 0; i < s->rcpt_count; i++) {
		if (delivery_add_recipient(s->delivery, s->rcpts[i], &error) < 0)
			goto fail;
	}
	delivery_set_pacing(s->delivery, smtp_data_ready, s->commit);
	/* Sized once from SIZE= when the client sent it (RFC 1870 6.1: the
	 * size is an estimate; a larger message still fits, by doubling). */
	s->body =
	    delivery_buffer(s->delivery, s->mail.size_given ? s->mail.size + SMTP_HEADER_ROOM_BYTES
							    : SMTP_BODY_INITIAL_BYTES);
	if (smtp_data_headers(s) < 0)
		log_fatal("out of memory");
	return 0;
fail:
	smtp_session_log(s, LOG_ERROR, "cannot start a delivery: %s", error ? error : "?");
	delivery_abort(&s->delivery);
	*reply_r = smtp_reply_store_error(error);
	return -1;
}

/* Runs on a store thread: touch nothing but the commit slot. */
static void smtp_data_committed(void *ctx, int result, const char *error)
{
	struct smtp_commit *commit = ctx;

	commit->result = result;
	snprintf(commit->error, sizeof(commit->error), "%s", error != NULL ? error : "");
	event_active(commit->ev, 0, 1);
}

static void smtp_data_finish(struct smtp_session *s)
{
	const char *reply = s->fail_reply;

	if (reply == NULL) {
		if (s->dot.flags & SMTP_DOT_LINE_TOO_LONG)
			reply = "500 5.5.2 Line too long";
		else if (s->dot.flags & (SMTP_DOT_BARE_LF | SMTP_DOT_BARE_CR))
			reply = "550 5.6.0 Bare CR or LF in message; lines must end in CRLF";
		else if (s->dot.flags & SMTP_DOT_NUL)
			reply = "550 5.6.0 NUL byte in message";
		if (reply != NULL)
			smtp_data_fail(s, reply, "malformed message");
	}
	if (s->fail_reply != NULL) {
		smtp_session_reply_error(s, s->fail_reply);
		smtp_session_transaction_done(s);
		return;
	}
	smtp_session_enter_state(s, SMTP_STATE_COMMIT);
	s->body = NULL;
	s->sealing_wait = 0; /* the commit resumes reading when it answers */
	delivery_commit(&s->delivery, (int64_t)time(NULL), smtp_data_committed, s->commit);
}

void smtp_data_commit_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (s->commit->result == 0) {
		smtp_session_log(s, LOG_INFO, "message %s.%u stored: %llu bytes, %zu recipients",
				 s->id, s->transactions, (unsigned long long)s->received,
				 s->rcpt_count);
		smtp_session_reply(s, "250 2.0.0 Ok: message %s.%u accepted", s->id,
				   s->transactions);
	} else {
		smtp_session_log(s, LOG_ERROR, "message %s.%u not stored: %s", s->id,
				 s->transactions, s->commit->error);
		smtp_session_reply(s, "%s", smtp_reply_store_error(s->commit->error));
	}
	if (s->conn_lost) {
		smtp_session_free(&s);
		return;
	}
	smtp_session_transaction_done(s);
	smtp_session_input(s);
}

/* ---- reading the bytes -------------------------------------------------------- */

/* The first non-empty run of buffered input; NULL when there is none. */
static const uint8_t *smtp_data_peek(struct evbuffer *in, size_t *len_r)
{
	struct evbuffer_iovec v[4];
	size_t total = evbuffer_get_length(in);
	int n;

	if (total == 0)
		return NULL;
	n = evbuffer_peek(in, -1, NULL, v, (int)N_ELEMENTS(v));
	for (int i = 0; i < n && i < (int)N_ELEMENTS(v); i++) {
		if (v[i].iov_len > 0) {
			*len_r = v[i].iov_len;
			return v[i].iov_base;
		}
	}
	*len_r = total < SMTP_PULLUP_BYTES ? total : SMTP_PULLUP_BYTES;
	return evbuffer_pullup(in, (ssize_t)*len_r);
}

static void smtp_data_chunk_done(struct smtp_session *s)
{
	if (s->chunk_discard) {
		smtp_session_reply_error(s, s->chunk_reply);
		smtp_session_transaction_done(s);
	} else if (s->chunk_last || s->fail_reply != NULL) {
		smtp_data_finish(s);
	} else {
		smtp_session_reply(s, "250 2.0.0 %llu octets received",
				   (unsigned long long)s->received);
		smtp_session_enter_state(s, SMTP_STATE_CHUNK);
	}
}

void smtp_data_bdat(struct smtp_session *s, uint64_t size, int last, const char *discard_reply)
{
	s->chunk_left = size;
	s->chunk_last = last;
	s->chunk_discard = discard_reply != NULL;
	s->chunk_reply = discard_reply;
	if (!s->chunk_discard && s->received + size > s->server->cfg->smtp_max_message_size)
		smtp_data_fail(s, smtp_reply_too_big, "message too large");
	smtp_session_enter_state(s, SMTP_STATE_BDAT);
	if (size == 0)
		smtp_data_chunk_done(s);
}

static void smtp_data_input_bdat(struct smtp_session *s, struct evbuffer *in)
{
	const uint8_t *data;
	size_t len, take;

	while (s->chunk_left > 0 && (data = smtp_data_peek(in, &len)) != NULL) {
		take = len < s->chunk_left ? len : (size_t)s->chunk_left;
		if (!s->chunk_discard && s->fail_reply == NULL) {
			if (buf_append(s->body, data, take) < 0)
				log_fatal("out of memory");
			smtp_data_account(s, take);
		}
		evbuffer_drain(in, take);
		s->chunk_left -= take;
	}
	if (s->chunk_left == 0)
		smtp_data_chunk_done(s);
}

static void smtp_data_input_dot(struct smtp_session *s, struct evbuffer *in)
{
	const uint8_t *data;
	size_t len, used, before;
	int done;

	while ((data = smtp_data_peek(in, &len)) != NULL) {
		struct buf *out = s->fail_reply == NULL ? s->body : NULL;

		before = out != NULL ? out->len : 0;
		done = smtp_dot_decode(&s->dot, data, len, out, &used);
		evbuffer_drain(in, used);
		if (out != NULL)
			smtp_data_account(s, out->len - before);
		if (done) {
			smtp_data_finish(s);
			return;
		}
	}
}

void smtp_data_input(struct smtp_session *s)
{
	struct evbuffer *in = net_conn_input(s->conn);

	if (s->state == SMTP_STATE_DATA)
		smtp_data_input_dot(s, in);
	else if (s->state == SMTP_STATE_BDAT)
		smtp_data_input_bdat(s, in);
}

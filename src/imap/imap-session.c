/* imap-session.c — one IMAP connection: command assembly (lines and
 * literals), the command table, dispatch by state, and the plumbing for
 * commands that finish later (pool jobs, sliced work, IDLE).
 *
 * SECURITY
 *	The client is untrusted. A command is assembled from lines of at most
 *	[imap] max_line bytes and literals of at most [imap] max_literal bytes
 *	(IMAP_UNAUTH_LITERAL_MAX before login); a literal announced larger is
 *	refused before a byte of it is read (synchronising) or the connection
 *	is closed (LITERAL+), so no announcement makes us buffer more than the
 *	limit. Only whole commands reach the parser, which is pure and bounded
 *	(imap-parser.c). Before login at most [imap] max_unauth_commands
 *	commands are taken and the session times out after timeout_unauth.
 *	Commands beyond [imap] max_commands_per_second wait their turn.
 *	Each command is checked against the table for the current state before
 *	its arguments are looked at. Logs name the session id and the client
 *	address only: never a login name, mailbox name or message content. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAP_CMD_EXTRA_BYTES (1024 * 1024) /* command bytes beside its literals */

static const struct imap_command imap_commands[] = {
    {"CAPABILITY", IMAP_ANY, IMAP_CMDF_NOARGS, imap_cmd_capability},
    {"NOOP", IMAP_ANY, IMAP_CMDF_NOARGS, imap_cmd_noop},
    {"LOGOUT", IMAP_ANY, IMAP_CMDF_NOARGS, imap_cmd_logout},
    {"ID", IMAP_ANY, 0, imap_cmd_id},
    {"STARTTLS", IMAP_NOAUTH, IMAP_CMDF_NOARGS, imap_cmd_starttls},
    {"LOGIN", IMAP_NOAUTH, 0, imap_cmd_login},
    {"AUTHENTICATE", IMAP_NOAUTH, 0, imap_cmd_authenticate},
    {"ENABLE", IMAP_AUTHED, 0, imap_cmd_enable},
    {"NAMESPACE", IMAP_AUTHED, IMAP_CMDF_NOARGS, imap_cmd_namespace},
    {"SELECT", IMAP_AUTHED, 0, imap_cmd_select},
    {"EXAMINE", IMAP_AUTHED, 0, imap_cmd_examine},
    {"CREATE", IMAP_AUTHED, 0, imap_cmd_create},
    {"DELETE", IMAP_AUTHED, 0, imap_cmd_delete},
    {"RENAME", IMAP_AUTHED, 0, imap_cmd_rename},
    {"SUBSCRIBE", IMAP_AUTHED, 0, imap_cmd_subscribe},
    {"UNSUBSCRIBE", IMAP_AUTHED, 0, imap_cmd_unsubscribe},
    {"LIST", IMAP_AUTHED, 0, imap_cmd_list},
    {"LSUB", IMAP_AUTHED, 0, imap_cmd_lsub},
    {"STATUS", IMAP_AUTHED, 0, imap_cmd_status},
    {"APPEND", IMAP_AUTHED, 0, imap_cmd_append},
    {"IDLE", IMAP_AUTHED, IMAP_CMDF_NOARGS, imap_cmd_idle},
    {"CHECK", IMAP_SELECTED, IMAP_CMDF_NOARGS, imap_cmd_check},
    {"CLOSE", IMAP_SELECTED, IMAP_CMDF_NOARGS, imap_cmd_close},
    {"UNSELECT", IMAP_SELECTED, IMAP_CMDF_NOARGS, imap_cmd_unselect},
    {"EXPUNGE", IMAP_SELECTED, IMAP_CMDF_UID, imap_cmd_expunge},
    {"SEARCH", IMAP_SELECTED, IMAP_CMDF_UID | IMAP_CMDF_NOEXPUNGE, imap_cmd_search},
    {"FETCH", IMAP_SELECTED, IMAP_CMDF_UID | IMAP_CMDF_NOEXPUNGE, imap_cmd_fetch},
    {"STORE", IMAP_SELECTED, IMAP_CMDF_UID | IMAP_CMDF_NOEXPUNGE, imap_cmd_store},
    {"COPY", IMAP_SELECTED, IMAP_CMDF_UID | IMAP_CMDF_NOEXPUNGE, imap_cmd_copy},
    {"MOVE", IMAP_SELECTED, IMAP_CMDF_UID, imap_cmd_move},
};

void imap_session_log(const struct imap_session *s, enum log_level level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "imap %s [%s]: %s", s->id, s->peer, msg);
}

void imap_write(struct imap_session *s, const void *data, size_t len)
{
	if (!s->dead)
		net_conn_write(s->conn, data, len);
}

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	int n;

	if (s->dead)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_init(&b);
	if (buf_reserve(&b, (size_t)n + 3) < 0)
		log_fatal("out of memory");
	va_start(ap, fmt);
	vsnprintf((char *)b.data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	memcpy(b.data + n, "\r\n", 2);
	net_conn_write(s->conn, b.data, (size_t)n + 2);
	buf_free(&b);
}

void imap_capabilities(struct imap_session *s, struct buf *out)
{
	int tls = net_conn_is_tls(s->conn);
	int ret = buf_append_str(
	    out, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE");

	if (s->state == IMAP_STATE_NOAUTH) {
		if (!tls && s->server->tls != NULL)
			ret |= buf_append_str(out, " STARTTLS");
		if (!tls && !imap_peer_is_loopback(s->peer))
			ret |= buf_append_str(out, " LOGINDISABLED");
		else
			ret |= buf_append_str(out, " AUTH=PLAIN");
	} else {
		ret |= buf_append_str(out,
				      " NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE CHILDREN"
				      " LIST-STATUS CONDSTORE QRESYNC UTF8=ACCEPT ESEARCH SEARCHRES"
				      " BINARY STATUS=SIZE");
	}
	if (ret != 0)
		log_fatal("out of memory");
}

void imap_session_set_state(struct imap_session *s, enum imap_state state)
{
	const struct config *cfg = s->server->cfg;

	s->state = state;
	if (state == IMAP_STATE_AUTH || state == IMAP_STATE_SELECTED)
		net_conn_set_timeout(s->conn, cfg->imap_timeout_idle);
	else if (state == IMAP_STATE_NOAUTH)
		net_conn_set_timeout(s->conn, cfg->imap_timeout_unauth);
}

void imap_session_close(struct imap_session *s, const char *bye)
{
	if (s->closing || s->dead)
		return;
	if (bye != NULL)
		imap_reply(s, "* BYE %s", bye);
	s->closing = 1;
	s->state = IMAP_STATE_LOGOUT;
	net_conn_close_after_flush(s->conn);
}

void imap_session_shutdown(struct imap_session *s)
{
	if (s->cmd_def == NULL || s->idling)
		imap_session_close(s, "Server shutting down");
	else
		s->shutdown = 1;
}

static void imap_cmd_reset(struct imap_session *s)
{
	imap_args_free(&s->args);
	buf_reset(&s->cmd);
	s->cmd_def = NULL;
	s->line_fn = NULL;
	s->uid_cmd = 0;
	s->idling = 0;
	s->tag[0] = '\0';
}

void imap_cmd_finish(struct imap_session *s, const char *status, const char *fmt, ...)
{
	char text[1000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->view != NULL && s->state == IMAP_STATE_SELECTED && strcmp(status, "BAD") != 0)
		imap_view_sync(s, s->uid_cmd || s->cmd_def == NULL ||
				      !(s->cmd_def->flags & IMAP_CMDF_NOEXPUNGE));
	s->notified = 0;
	imap_reply(s, "%s %s %s", s->tag, status, text);
	imap_cmd_reset(s);
	if (s->shutdown) {
		imap_session_close(s, "Server shutting down");
		return;
	}
	if (!s->in_input && !s->dead && !s->closing) {
		net_conn_resume(s->conn);
		imap_session_input(s);
	}
}

/* ---- asynchronous work -------------------------------------------------- */

static void imap_session_reap(struct imap_session *s)
{
	if (s->dead && s->jobs == 0 && !s->cont_pending)
		imap_session_free(&s);
}

struct imap_job {
	struct imap_session *s;
	struct event *ev;
	imap_job_fn *fn;
	imap_job_done_fn *done;
	void *ctx;
};

static void imap_job_thread(void *ctx)
{
	struct imap_job *j = ctx;

	j->fn(j->ctx);
	event_active(j->ev, 0, 1);
}

static void imap_job_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_job *j = arg;
	struct imap_session *s = j->s;

	event_free(j->ev);
	s->jobs--;
	j->done(s, j->ctx);
	free(j);
	imap_session_reap(s);
}

void imap_session_job(struct imap_session *s, imap_job_fn *fn, imap_job_done_fn *done, void *ctx)
{
	struct imap_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->fn = fn;
	j->done = done;
	j->ctx = ctx;
	j->ev = event_new(s->server->base, -1, 0, imap_job_cb, j);
	if (j->ev == NULL)
		log_fatal("imap: cannot create a job event");
	s->jobs++;
	net_conn_pause(s->conn);
	pool_submit(s->server->pool, imap_job_thread, j);
}

static void imap_cont_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	s->cont_pending = 0;
	s->waiting_output = 0;
	s->cont_fn(s);
	imap_session_reap(s);
}

void imap_session_continue(struct imap_session *s, imap_cont_fn *fn)
{
	imap_session_delay(s, fn, 0);
}

void imap_session_delay(struct imap_session *s, imap_cont_fn *fn, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	s->cont_pending = 1;
	s->cont_fn = fn;
	event_add(s->cont_ev, &tv);
}

void imap_session_wait_output(struct imap_session *s, imap_cont_fn *fn)
{
	imap_session_delay(s, fn, IMAP_OUTPUT_POLL_MS);
	s->waiting_output = 1;
}

static void imap_session_drained(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	struct timeval now = {0, 0};

	if (!s->waiting_output || !s->cont_pending ||
	    net_conn_output_pending(conn) > IMAP_OUTPUT_LOW_BYTES)
		return;
	s->waiting_output = 0;
	event_del(s->cont_ev);
	event_add(s->cont_ev, &now);
}

/* ---- change notification -------------------------------------------------- */

/* Runs on whichever thread posted the change (hub locked). */
static void imap_session_notify(void *ctx, uint64_t mailbox_id)
{
	struct imap_session *s = ctx;

	event_active(s->notify_ev, 0, 1);
}

static void imap_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	s->notified = 1;
	if (s->idling && s->view != NULL && !s->dead) {
		imap_view_sync(s, 1);
		s->notified = 0;
	}
}

static void imap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if (s->idling && s->view != NULL && !s->dead)
		imap_view_sync(s, 1);
}

void imap_session_changed(struct imap_session *s, uint64_t mailbox_id)
{
	if (s->acct != NULL)
		router_notify(s->acct->region, s->acct->st.id, mailbox_id, s);
}

/* [imap] idle_poll, or when 0: rarely where the store notifies changes
 * across nodes (the poll only backs up a lost watch), each second where
 * it does not (another process's change is seen only by polling). */
static time_t imap_session_poll_secs(const struct imap_session *s)
{
	const struct store *store = s->acct->region->store;

	if (s->server->cfg->imap_idle_poll > 0)
		return (time_t)s->server->cfg->imap_idle_poll;
	if (store != NULL && store->backend->change_watch != NULL)
		return IMAP_IDLE_POLL_NOTIFIED_SECS;
	return IMAP_IDLE_POLL_SECS;
}

void imap_session_watch(struct imap_session *s)
{
	struct timeval tv = {imap_session_poll_secs(s), 0};

	s->watch = router_watch_add(s->acct, imap_session_notify, s);
	event_add(s->timer_ev, &tv);
}

/* ---- input ------------------------------------------------------------------ */

static void imap_session_dispatch(struct imap_session *s);

/* Stands in for a whole command held back by the rate limit, so that the
 * input loop stops until it has run. */
static const struct imap_command imap_throttled = {"", 0, 0, NULL};

static void imap_session_throttled_cb(struct imap_session *s)
{
	if (s->dead || s->closing)
		return;
	s->cmd_def = NULL;
	imap_session_dispatch(s);
	if (s->cmd_def == NULL && !s->dead && !s->closing && !s->in_input) {
		net_conn_resume(s->conn);
		imap_session_input(s);
	}
}

/* [imap] max_commands_per_second, with a burst of one second's worth: a
 * command over the rate waits (the connection is not read meanwhile)
 * rather than failing, so that a fast honest client only slows down.
 * Returns 1 if the command was held back. */
static int imap_session_throttle(struct imap_session *s)
{
	uint64_t rate = s->server->cfg->imap_max_commands_per_second;
	int64_t now = time_now_us(), interval, ahead;

	if (rate == 0)
		return 0;
	interval = 1000000 / (int64_t)(rate > 1000000 ? 1000000 : rate);
	if (s->rate_tat_us < now)
		s->rate_tat_us = now;
	ahead = s->rate_tat_us - now;
	if (ahead + interval > 1000000) {
		s->cmd_def = &imap_throttled;
		net_conn_pause(s->conn);
		imap_session_delay(s, imap_session_throttled_cb,
				   (uint64_t)(ahead + interval - 1000000 + 999) / 1000);
		return 1;
	}
	s->rate_tat_us += interval;
	return 0;
}

static void imap_session_dispatch(struct imap_session *s)
{
	const struct config *cfg = s->server->cfg;
	const struct imap_command *cmd = NULL;
	const char *error = NULL;
	char name[32];
	size_t rest;
	int r;

	if (imap_session_throttle(s))
		return;
	r = imap_command_split(s->cmd.data, s->cmd.len, s->tag, name, &rest, &error);
	if (s->state == IMAP_STATE_NOAUTH && cfg->imap_max_unauth_commands != 0 &&
	    ++s->unauth_commands > cfg->imap_max_unauth_commands) {
		imap_session_close(s, "Too many commands before login");
		return;
	}
	if (r == -1) {
		imap_reply(s, "* BAD %s", error);
		imap_cmd_reset(s);
		return;
	}
	if (r == 0 && strcasecmp(name, "UID") == 0) {
		const uint8_t *p = s->cmd.data + rest;
		size_t left = s->cmd.len - rest, n = 0;

		while (n < left && n < sizeof(name) - 1 && p[n] >= 'A' && (p[n] | 0x20) <= 'z')
			name[n] = (char)p[n], n++;
		name[n] = '\0';
		if (n == 0 || (n < left && p[n] != ' ')) {
			error = "Missing UID command";
			r = -2;
		}
		rest += n < left ? n + 1 : n;
		s->uid_cmd = 1;
	}
	if (r < 0) {
		imap_reply(s, "%s BAD %s", s->tag, error);
		imap_cmd_reset(s);
		return;
	}
	for (size_t i = 0; i < N_ELEMENTS(imap_commands); i++)
		if (strcasecmp(imap_commands[i].name, name) == 0)
			cmd = &imap_commands[i];
	if (cmd == NULL || (s->uid_cmd && !(cmd->flags & IMAP_CMDF_UID))) {
		imap_reply(s, "%s BAD Unknown command", s->tag);
		imap_cmd_reset(s);
		return;
	}
	if (!(cmd->states & IMAP_STATE_BIT(s->state))) {
		imap_reply(s, "%s BAD %s", s->tag,
			   s->state == IMAP_STATE_NOAUTH ? "Log in first"
			   : s->state == IMAP_STATE_AUTH ? "Select a mailbox first"
							 : "Not allowed in this state");
		imap_cmd_reset(s);
		return;
	}
	if (imap_args_parse(s->cmd.data + rest, s->cmd.len - rest, &s->args, &error) < 0) {
		imap_reply(s, "%s BAD %s", s->tag, error);
		imap_cmd_reset(s);
		return;
	}
	s->cmd_def = cmd;
	if (cmd->handler != imap_cmd_append && imap_args_have_literal8(&s->args)) {
		imap_cmd_finish(s, "BAD", "A literal8 (~{n}) is allowed in APPEND only");
		return;
	}
	if ((cmd->flags & IMAP_CMDF_NOARGS) && s->args.count > 0) {
		imap_cmd_finish(s, "BAD", "%s takes no arguments", cmd->name);
		return;
	}
	cmd->handler(s, &s->args);
}

/* A line of a command; returns 1 when the command is complete. */
static int imap_session_line(struct imap_session *s)
{
	const struct config *cfg = s->server->cfg;
	uint64_t max =
	    s->state == IMAP_STATE_NOAUTH ? IMAP_UNAUTH_LITERAL_MAX : cfg->imap_max_literal;
	uint64_t size;
	int nonsync, r;

	if (s->cmd.len + s->line.len > max + IMAP_CMD_EXTRA_BYTES) {
		imap_reply(s, "* BAD Command too long");
		imap_session_close(s, "Command too long");
		return 0;
	}
	if (buf_append(&s->cmd, s->line.data, s->line.len) < 0)
		log_fatal("out of memory");
	r = imap_literal_tail(s->line.data, s->line.len, UINT32_MAX, &size, &nonsync);
	if (r == 0)
		return 1;
	if (r < 0 || size > max) {
		char tag[IMAP_TAG_MAX], name[32];
		const char *error;
		size_t rest;

		if (r > 0 && nonsync) {
			/* RFC 7888: the bytes are coming anyway. */
			imap_reply(s, "* BAD [TOOBIG] Literal too large");
			imap_session_close(s, "Literal too large");
			return 0;
		}
		if (imap_command_split(s->cmd.data, s->cmd.len, tag, name, &rest, &error) == -1)
			snprintf(tag, sizeof(tag), "*");
		if (r < 0)
			imap_reply(s, "%s BAD Invalid literal", tag);
		else
			imap_reply(s, "%s NO [TOOBIG] Literal too large", tag);
		buf_reset(&s->cmd);
		return 0;
	}
	if (buf_append(&s->cmd, "\r\n", 2) < 0)
		log_fatal("out of memory");
	s->literal_left = size;
	if (!nonsync)
		imap_reply(s, "+ OK");
	return 0;
}

void imap_session_input(struct imap_session *s)
{
	const struct config *cfg = s->server->cfg;

	if (s->in_input)
		return;
	s->in_input = 1;
	while (!s->closing && !s->dead && s->jobs == 0 &&
	       (s->cmd_def == NULL || s->line_fn != NULL)) {
		enum net_line_result r;

		if (s->literal_left > 0) {
			struct evbuffer *in = net_conn_input(s->conn);
			size_t n = evbuffer_get_length(in);

			if (n == 0)
				break;
			if (n > s->literal_left)
				n = (size_t)s->literal_left;
			if (buf_reserve(&s->cmd, n) < 0)
				log_fatal("out of memory");
			evbuffer_remove(in, s->cmd.data + s->cmd.len, n);
			s->cmd.len += n;
			s->literal_left -= n;
			continue;
		}
		r = net_conn_read_line(s->conn, (size_t)cfg->imap_max_line, &s->line);
		if (r == NET_LINE_NONE)
			break;
		if (r == NET_LINE_TOO_LONG) {
			imap_reply(s, "* BAD Line too long");
			if (s->line_fn == NULL)
				imap_cmd_reset(s);
			continue;
		}
		if (s->line_fn != NULL) {
			s->line_fn(s, (const char *)s->line.data, s->line.len);
			continue;
		}
		if (s->cmd.len == 0 && s->line.len == 0)
			continue;
		if (imap_session_line(s))
			imap_session_dispatch(s);
	}
	s->in_input = 0;
}

/* ---- life cycle --------------------------------------------------------------- */

static void imap_session_read_cb(struct net_conn *conn, void *ctx)
{
	imap_session_input(ctx);
}

static void imap_session_greet(struct imap_session *s)
{
	struct buf caps;

	buf_init(&caps);
	imap_capabilities(s, &caps);
	imap_reply(s, "* OK [CAPABILITY %s] %s ready", buf_cstr(&caps), s->server->cfg->hostname);
	buf_free(&caps);
}

static void imap_session_tls_ready(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;

	imap_session_log(s, LOG_DEBUG, "TLS started: %s %s", net_conn_tls_version(conn),
			 net_conn_tls_cipher(conn));
	imap_cmd_reset(s);
	net_conn_resume(s->conn);
	imap_session_input(s);
}

static void imap_session_closed(struct net_conn *conn, void *ctx, enum net_close_reason reason)
{
	struct imap_session *s = ctx;

	if (reason == NET_CLOSE_TIMEOUT && !s->closing && !s->dead) {
		imap_session_close(s, "Autologout; idle for too long");
		return;
	}
	s->dead = 1;
	imap_session_reap(s);
}

void imap_session_create(struct imap_server *server, struct net_conn *conn)
{
	static const struct net_conn_callbacks cb = {
	    .read = imap_session_read_cb,
	    .tls_ready = imap_session_tls_ready,
	    .drained = imap_session_drained,
	    .closed = imap_session_closed,
	};
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct event_base *base = server->base;

	s->server = server;
	s->conn = conn;
	snprintf(s->id, sizeof(s->id), "%02x%02x%08x", server->id_prefix[0], server->id_prefix[1],
		 ++server->id_counter);
	snprintf(s->peer, sizeof(s->peer), "%s", net_conn_peer(conn));
	buf_init(&s->line);
	buf_init(&s->cmd);
	s->cont_ev = evtimer_new(base, imap_cont_cb, s);
	s->notify_ev = event_new(base, -1, 0, imap_notify_cb, s);
	s->timer_ev = event_new(base, -1, EV_PERSIST, imap_timer_cb, s);
	if (s->cont_ev == NULL || s->notify_ev == NULL || s->timer_ev == NULL)
		log_fatal("imap: cannot create session events");
	s->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = s;
	server->sessions = s;
	server->session_count++;
	net_conn_set_callbacks(conn, &cb, s);
	net_conn_set_output_low(conn, IMAP_OUTPUT_LOW_BYTES);
	imap_session_set_state(s, IMAP_STATE_NOAUTH);
	imap_session_log(s, LOG_DEBUG, "connected%s", net_conn_is_tls(conn) ? " (TLS)" : "");
	if (server->draining) {
		imap_session_close(s, "Server shutting down");
		return;
	}
	imap_session_greet(s);
}

void imap_session_free(struct imap_session **sp)
{
	struct imap_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	router_watch_remove(&s->watch);
	imap_view_close(s);
	imap_boxes_free(s);
	imap_cmd_reset(s);
	seal_opener_free(&s->opener);
	imap_key_release(s->server, &s->key);
	router_account_free(&s->acct);
	event_free(s->cont_ev);
	event_free(s->notify_ev);
	event_free(s->timer_ev);
	net_conn_free(&s->conn);
	buf_free(&s->line);
	buf_free(&s->cmd);
	imap_server_session_gone(s->server, s);
	free(s);
}

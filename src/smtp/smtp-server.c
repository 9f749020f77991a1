/* smtp-server.c — the set of SMTP sessions: their life cycle, their
 * connection events and the graceful shutdown.
 *
 * Trust boundary: connection events come from the network layer; a session
 * is freed only here, and never while its message is being made durable (the
 * store thread still holds its commit slot). A shutdown never withholds or
 * loses an acknowledged message: sessions whose message is being committed
 * are always waited for, and only transactions that have not reached the
 * final dot are temp-failed once the grace period is over. */
#include "smtp/smtp-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

/* ---- sessions: connection events and life cycle ------------------------------- */

static void smtp_session_read_cb(struct net_conn *conn, void *ctx)
{
	smtp_session_input(ctx);
}

static void smtp_session_drained_cb(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->output_full) {
		s->output_full = 0;
		smtp_session_input(s);
	}
}

static void smtp_session_tls_ready_cb(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;

	smtp_session_log(s, LOG_INFO, "TLS established: %s, %s", net_conn_tls_version(conn),
			 net_conn_tls_cipher(conn));
	smtp_session_enter_state(s, SMTP_STATE_INIT);
	if (s->server->draining) {
		smtp_session_close(s, "421 4.3.2 Service shutting down, closing connection");
		return;
	}
	smtp_session_input(s);
}

static void smtp_session_closed_cb(struct net_conn *conn, void *ctx, enum net_close_reason why)
{
	struct smtp_session *s = ctx;
	enum smtp_state st = s->state;

	if (why == NET_CLOSE_TIMEOUT && st != SMTP_STATE_QUIT && st != SMTP_STATE_COMMIT &&
	    st != SMTP_STATE_TLS) {
		smtp_session_log(s, LOG_INFO, "timeout in state %s", smtp_state_name(st));
		smtp_session_close(s, str_tfmt("421 4.4.2 %s Timeout, closing connection",
					       s->server->cfg->hostname));
		return;
	}
	if (why != NET_CLOSE_FLUSHED && st != SMTP_STATE_QUIT)
		smtp_session_log(s, LOG_INFO, "connection %s in state %s",
				 why == NET_CLOSE_EOF ? "closed by client" : "lost",
				 smtp_state_name(st));
	if (st == SMTP_STATE_COMMIT || s->lookup_pending) {
		s->conn_lost = 1; /* freed once the store or the lookup answers */
		return;
	}
	smtp_session_free(&s);
}

void smtp_session_create(struct smtp_server *server, struct net_conn *conn)
{
	static const struct net_conn_callbacks cbs = {
	    .read = smtp_session_read_cb,
	    .tls_ready = smtp_session_tls_ready_cb,
	    .drained = smtp_session_drained_cb,
	    .closed = smtp_session_closed_cb,
	};
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->server = server;
	s->conn = conn;
	server->id_counter++;
	snprintf(s->id, sizeof(s->id), "%02x%02x%08x", server->id_prefix[0], server->id_prefix[1],
		 server->id_counter);
	snprintf(s->peer, sizeof(s->peer), "%s", net_conn_peer(conn));
	s->peer_v6 = net_conn_peer_is_v6(conn);
	buf_init(&s->line);
	s->commit = xcalloc(1, sizeof(*s->commit));
	s->commit->ev = event_new(server->base, -1, 0, smtp_data_commit_done, s);
	s->commit->sealed_ev = event_new(server->base, -1, 0, smtp_data_sealed, s);
	if (s->commit->ev == NULL || s->commit->sealed_ev == NULL)
		log_fatal("smtp: cannot create session events");
	net_conn_set_callbacks(conn, &cbs, s);
	s->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = s;
	server->sessions = s;
	server->session_count++;
	smtp_session_log(s, LOG_INFO, "connect (%u sessions)", server->session_count);
	s->state = SMTP_STATE_INIT;
	smtp_session_enter_state(s, SMTP_STATE_INIT);
	smtp_session_reply(s, "220 %s ESMTP sealmail", server->cfg->hostname);
}

void smtp_session_shutdown(struct smtp_session *s, int tempfail)
{
	switch (s->state) {
	case SMTP_STATE_INIT:
	case SMTP_STATE_HELO:
		if (!s->waiting)
			smtp_session_close(s,
					   "421 4.3.2 Service shutting down, closing connection");
		break;
	case SMTP_STATE_TLS:
		if (tempfail)
			smtp_session_close(s, NULL);
		break;
	case SMTP_STATE_QUIT:
	case SMTP_STATE_COMMIT:
		break;
	default:
		if (!tempfail)
			break;
		smtp_session_log(s, LOG_INFO, "transaction in state %s cut short by shutdown",
				 smtp_state_name(s->state));
		if (s->delay_timer != NULL)
			evtimer_del(s->delay_timer);
		s->waiting = 0;
		smtp_session_close(s, "451 4.3.2 System shutting down, try again later");
		break;
	}
}

static void smtp_server_session_gone(struct smtp_server *server, struct smtp_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		server->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	server->session_count--;
	if (server->draining && server->session_count == 0)
		event_active(server->done_event, 0, 1);
}

void smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	if ((s->state == SMTP_STATE_COMMIT || s->lookup_pending) && !s->conn_lost)
		log_panic("smtp: freeing a session that a worker still uses");
	s->state = SMTP_STATE_QUIT;
	smtp_session_reset(s);
	smtp_session_log(s, LOG_INFO, "disconnect (%u transactions, %u errors)", s->transactions,
			 s->errors);
	if (s->delay_timer != NULL)
		event_free(s->delay_timer);
	if (s->lookup != NULL) {
		router_account_free(&s->lookup->acct);
		event_free(s->lookup->ev);
		free(s->lookup);
	}
	event_free(s->commit->ev);
	event_free(s->commit->sealed_ev);
	free(s->commit);
	buf_free(&s->line);
	net_conn_free(&s->conn);
	smtp_server_session_gone(s->server, s);
	free(s);
	*sp = NULL;
}

/* ---- the server ------------------------------------------------------------------- */

static void smtp_server_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *server = arg;

	if (server->drained != NULL && server->session_count == 0) {
		void (*done)(void *ctx) = server->drained;

		server->drained = NULL;
		done(server->drained_ctx);
	}
}

static void smtp_server_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *server = arg;
	struct smtp_session *s;

	log_info("smtp: shutdown grace period over, %u sessions left", server->session_count);
	for (s = server->sessions; s != NULL; s = s->next)
		smtp_session_shutdown(s, 1);
}

struct smtp_server *smtp_server_create(struct event_base *base, const struct config *cfg,
				       struct router *router, struct net_tls *tls)
{
	struct smtp_server *server = xcalloc(1, sizeof(*server));

	server->base = base;
	server->cfg = cfg;
	server->router = router;
	server->tls = tls;
	if (getrandom(server->id_prefix, sizeof(server->id_prefix), 0) !=
	    (ssize_t)sizeof(server->id_prefix))
		server->id_prefix[0] = (uint8_t)time_now_us();
	server->lookups = pool_new(SMTP_LOOKUP_THREADS, "smtp-lookup", 5);
	server->grace_timer = evtimer_new(base, smtp_server_grace_cb, server);
	server->done_event = event_new(base, -1, 0, smtp_server_done_cb, server);
	if (server->grace_timer == NULL || server->done_event == NULL)
		log_fatal("smtp: cannot create server events");
	return server;
}

void smtp_server_accept(void *ctx, struct net_conn *conn)
{
	smtp_session_create(ctx, conn);
}

void smtp_server_drain(struct smtp_server *server, uint64_t grace, void (*done)(void *ctx),
		       void *ctx)
{
	struct timeval tv = {(time_t)grace, 0};
	struct smtp_session *s;

	server->draining = 1;
	server->drained = done;
	server->drained_ctx = ctx;
	log_info("smtp: shutting down, %u sessions, grace %llus", server->session_count,
		 (unsigned long long)grace);
	for (s = server->sessions; s != NULL; s = s->next)
		smtp_session_shutdown(s, 0);
	evtimer_add(server->grace_timer, &tv);
	if (server->session_count == 0)
		event_active(server->done_event, 0, 1);
}

unsigned smtp_server_session_count(const struct smtp_server *server)
{
	return server->session_count;
}

void smtp_server_free(struct smtp_server **serverp)
{
	struct smtp_server *server = *serverp;

	if (server == NULL)
		return;
	if (server->session_count != 0)
		log_panic("smtp: freeing the server with %u sessions", server->session_count);
	pool_free(&server->lookups);
	event_free(server->grace_timer);
	event_free(server->done_event);
	free(server);
	*serverp = NULL;
}

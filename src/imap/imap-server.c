/* imap-server.c — the set of IMAP sessions, the worker pool they share, the
 * failed-login bookkeeping, and graceful shutdown.
 *
 * Trust boundary: keeps, per client address and per account, how many
 * logins failed recently (in memory only; accounts by region and numeric
 * id, never by name) so that guessing passwords gets slower with every miss
 * from either side, and stops: after [imap] auth_fail_lockout failures
 * within auth_fail_window the address or account is refused without a
 * password check until the window has passed since its last failure.
 * Addresses and accounts have tables of their own, so that failures from
 * many fresh addresses cannot push an account's lockout out of memory; an
 * IPv6 client counts as its /64 (one host usually holds a whole /64). */
#include "imap/imap-private.h"

#include "mime/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>

#define IMAP_FAILS_MAX       1024
#define IMAP_FAIL_FACTOR_MAX 8

struct imap_fail {
	char key[96];
	unsigned count;
	int64_t last_us;
};

struct imap_fails {
	struct imap_fail addrs[IMAP_FAILS_MAX];
	struct imap_fail accts[IMAP_FAILS_MAX];
};

static void imap_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_server *server = arg;

	if (server->drained != NULL && server->session_count == 0) {
		void (*done)(void *ctx) = server->drained;

		server->drained = NULL;
		done(server->drained_ctx);
	}
}

static void imap_trim_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_server *server = ctx;

	imap_plain_cache_trim(server->plain_cache);
}

struct imap_server *imap_server_create(struct event_base *base, const struct config *cfg,
				       struct router *router, struct net_tls *tls)
{
	struct imap_server *server = xcalloc(1, sizeof(*server));
	const struct timeval trim_every = {5, 0};

	server->base = base;
	server->cfg = cfg;
	server->router = router;
	server->tls = tls;
	mime_init();
	server->pool = pool_new(IMAP_POOL_THREADS, "imap-worker", 0);
	server->fails = xcalloc(1, sizeof(*server->fails));
	if (getrandom(server->id_prefix, sizeof(server->id_prefix), 0) !=
	    (ssize_t)sizeof(server->id_prefix))
		server->id_prefix[0] = (uint8_t)time_now_us();
	server->done_event = event_new(base, -1, 0, imap_done_cb, server);
	server->plain_cache = imap_plain_cache_new();
	server->trim_event = event_new(base, -1, EV_PERSIST, imap_trim_cb, server);
	if (server->done_event == NULL || server->trim_event == NULL ||
	    event_add(server->trim_event, &trim_every) < 0)
		log_fatal("imap: cannot create server events");
	return server;
}

void imap_server_accept(void *ctx, struct net_conn *conn)
{
	imap_session_create(ctx, conn);
}

void imap_server_session_gone(struct imap_server *server, struct imap_session *s)
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

void imap_server_drain(struct imap_server *server, void (*done)(void *ctx), void *ctx)
{
	struct imap_session *s;

	server->draining = 1;
	server->drained = done;
	server->drained_ctx = ctx;
	log_info("imap: shutting down, %u sessions", server->session_count);
	for (s = server->sessions; s != NULL; s = s->next)
		imap_session_shutdown(s);
	if (server->session_count == 0)
		event_active(server->done_event, 0, 1);
}

unsigned imap_server_session_count(const struct imap_server *server)
{
	return server->session_count;
}

void imap_server_free(struct imap_server **serverp)
{
	struct imap_server *server = *serverp;

	if (server == NULL)
		return;
	*serverp = NULL;
	while (server->sessions != NULL) {
		struct imap_session *s = server->sessions;

		imap_session_free(&s);
	}
	pool_free(&server->pool);
	imap_plain_cache_free(&server->plain_cache);
	imap_keys_free(server);
	event_free(server->done_event);
	event_free(server->trim_event);
	free(server->fails);
	free(server);
}

int imap_peer_is_loopback(const char *peer)
{
	return strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0 ||
	       strncmp(peer, "::ffff:127.", 11) == 0;
}

/* ---- failed logins --------------------------------------------------------- */

/* The slot for KEY in its table (keys starting "ip " are addresses), or
 * NULL; with CREATE, a free slot or the one whose last failure is oldest. */
static struct imap_fail *imap_fail_slot(struct imap_server *server, const char *key, int create)
{
	struct imap_fail *oldest = NULL;
	struct imap_fail *slots =
	    strncmp(key, "ip ", 3) == 0 ? server->fails->addrs : server->fails->accts;
	int64_t now = time_now_us();
	int64_t forget_us = (int64_t)server->cfg->imap_auth_fail_window * 1000000;

	for (size_t i = 0; i < IMAP_FAILS_MAX; i++) {
		struct imap_fail *f = &slots[i];

		if (f->count > 0 && now - f->last_us > forget_us)
			f->count = 0;
		if (f->count > 0 && strcmp(f->key, key) == 0)
			return f;
		if (f->count == 0) {
			if (oldest == NULL || oldest->count != 0)
				oldest = f;
		} else if (oldest == NULL || (oldest->count != 0 && f->last_us < oldest->last_us)) {
			oldest = f;
		}
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	return oldest;
}

static void imap_fail_keys(const char *peer, const struct account *acct, char ip[96], char ac[96])
{
	struct in6_addr a6;
	char net[INET6_ADDRSTRLEN];

	/* IPv6 by /64; IPv4 (and IPv4-mapped IPv6) by address. */
	if (strchr(peer, ':') != NULL && strncmp(peer, "::ffff:", 7) != 0 &&
	    inet_pton(AF_INET6, peer, &a6) == 1) {
		memset(&a6.s6_addr[8], 0, 8);
		if (inet_ntop(AF_INET6, &a6, net, sizeof(net)) != NULL) {
			snprintf(ip, 96, "ip %s/64", net);
			peer = NULL;
		}
	}
	if (peer != NULL)
		snprintf(ip, 96, "ip %s", peer);
	if (acct != NULL)
		snprintf(ac, 96, "acct %s %llu", acct->region->name,
			 (unsigned long long)acct->st.id);
	else
		ac[0] = '\0';
}

uint64_t imap_fail_delay(struct imap_server *server, const char *peer, const struct account *acct)
{
	char ip[96], ac[96];
	struct imap_fail *f;
	unsigned n = 0;

	imap_fail_keys(peer, acct, ip, ac);
	f = imap_fail_slot(server, ip, 0);
	if (f != NULL)
		n = f->count;
	f = ac[0] ? imap_fail_slot(server, ac, 0) : NULL;
	if (f != NULL && f->count > n)
		n = f->count;
	if (n > IMAP_FAIL_FACTOR_MAX)
		n = IMAP_FAIL_FACTOR_MAX;
	return server->cfg->imap_auth_fail_delay_ms * (n ? n : 1);
}

int imap_fail_locked(struct imap_server *server, const char *peer, const struct account *acct)
{
	uint64_t limit = server->cfg->imap_auth_fail_lockout;
	char ip[96], ac[96];
	struct imap_fail *f;

	if (limit == 0)
		return 0;
	imap_fail_keys(peer, acct, ip, ac);
	f = acct == NULL ? imap_fail_slot(server, ip, 0) : imap_fail_slot(server, ac, 0);
	return f != NULL && f->count >= limit;
}

void imap_fail_record(struct imap_server *server, const char *peer, const struct account *acct)
{
	char ip[96], ac[96];
	struct imap_fail *f;

	imap_fail_keys(peer, acct, ip, ac);
	f = imap_fail_slot(server, ip, 1);
	f->count++;
	f->last_us = time_now_us();
	if (ac[0]) {
		f = imap_fail_slot(server, ac, 1);
		f->count++;
		f->last_us = time_now_us();
	}
}

void imap_fail_clear(struct imap_server *server, const struct account *acct)
{
	char ip[96], ac[96];
	struct imap_fail *f;

	imap_fail_keys("", acct, ip, ac);
	f = ac[0] ? imap_fail_slot(server, ac, 0) : NULL;
	if (f != NULL)
		f->count = 0;
}

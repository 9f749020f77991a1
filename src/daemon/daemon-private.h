/* daemon-private.h — the daemon's state and its table of protocol services.
 *
 * Trust boundary: as daemon.h. Each protocol is a struct daemon_service
 * (daemon-smtp.c; an IMAP one goes beside it) that the loop in
 * daemon-main.c starts, reloads, drains and frees. */
#ifndef SEALMAIL_DAEMON_PRIVATE_H
#define SEALMAIL_DAEMON_PRIVATE_H

#include "daemon/daemon.h"

#include <event2/event.h>

struct net_tls;
struct net_limits;
struct net_listener;
struct router;
struct smtp_server;
struct imap_server;
struct tlog;
struct pool;

struct daemon {
	const struct config *cfg;
	struct event_base *base;
	struct router *router;
	struct net_tls *tls; /* NULL when no certificate is configured */
	int stopping;
	unsigned draining; /* services not yet drained */

	/* smtp (daemon-smtp.c) */
	struct net_limits *smtp_limits;
	struct net_listener *smtp_listener; /* every address [smtp] listen names */
	struct smtp_server *smtp;

	/* imap (daemon-imap.c) */
	struct net_limits *imap_limits;
	struct net_listener *imap_listener;  /* [imap] listen: STARTTLS */
	struct net_listener *imaps_listener; /* [imap] listen_tls: implicit TLS */
	struct imap_server *imap;

	/* owner notices of legal requests (daemon-legal.c) */
	struct tlog *tlog;
	struct pool *legal_pool;
	struct event *legal_timer;
	int legal_busy; /* a sweep is queued or running (atomic) */
};

struct daemon_service {
	const char *name;
	/* Binds the listeners (before privileges are dropped). */
	int (*listen)(struct daemon *d, const char **error_r);
	/* Creates the protocol server once the router is open. */
	int (*start)(struct daemon *d, const char **error_r);
	/* Closes the listeners: no new connections. */
	void (*stop_accepting)(struct daemon *d);
	/* Ends the sessions gracefully; calls daemon_service_drained() once. */
	void (*drain)(struct daemon *d);
	void (*free)(struct daemon *d);
};

extern const struct daemon_service daemon_smtp_service;
extern const struct daemon_service daemon_imap_service;
extern const struct daemon_service daemon_legal_service;

/* A service has no session left. */
void daemon_service_drained(void *ctx);

#endif

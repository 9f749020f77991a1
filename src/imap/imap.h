/* imap.h — the IMAP server (RFC 3501, with the extensions listed in
 * docs/imap.md) over the shared event loop.
 *
 * Trust boundary: IMAP clients are untrusted until they log in, and then
 * trusted only with their own account. A login unlocks the account's key
 * (Argon2id, on a worker thread); with it the session opens sealed names,
 * metadata and messages in memory, and seals what the client stores
 * (APPEND, new mailbox names). Nothing opened is written anywhere unsealed,
 * and logs carry session ids and client addresses only. */
#ifndef SEALMAIL_IMAP_H
#define SEALMAIL_IMAP_H

#include "lib/config.h"
#include "lib/lib.h"

#include <event2/event.h>

struct imap_server;
struct net_conn;
struct net_tls;
struct router;

/* TLS may be NULL (no STARTTLS, no implicit TLS listener). */
struct imap_server *imap_server_create(struct event_base *base, const struct config *cfg,
				       struct router *router, struct net_tls *tls);
/* A net_accept_fn: CTX is the server. */
void imap_server_accept(void *ctx, struct net_conn *conn);
/* Logs every session out (BYE) as soon as its command in progress ends;
 * DONE(CTX) runs once no session is left. */
void imap_server_drain(struct imap_server *server, void (*done)(void *ctx), void *ctx);
unsigned imap_server_session_count(const struct imap_server *server);
void imap_server_free(struct imap_server **server);

#endif

/* net-private.h — what the files of net/ share with each other and nobody else.
 *
 * Trust boundary: as net.h. This is the only header that names OpenSSL types. */
#ifndef SEALMAIL_NET_PRIVATE_H
#define SEALMAIL_NET_PRIVATE_H

#include "net/net.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

/* A new server-side SSL on the current context; NULL on failure. */
SSL *net_tls_ssl_new(struct net_tls *tls);

/* Takes a slot for ADDR: 0, -1 over the total limit, -2 over the per-address
 * limit. Every 0 must be matched by one net_limits_release. */
int net_limits_acquire(struct net_limits *limits, const char *addr);
void net_limits_release(struct net_limits *limits, const char *addr);

/* Wraps an accepted socket (the connection owns FD from here on, even on
 * failure). With TLS set, the handshake starts at once (implicit TLS). The
 * accounting slot for ADDR, already taken, is released when it is freed. */
struct net_conn *net_conn_create(struct event_base *base, int fd, const char *addr, int v6,
				 struct net_limits *limits, struct net_tls *tls);

#endif

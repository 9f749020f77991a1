/* net.h — listeners, connection accounting, TLS and buffered connections.
 *
 * Trust boundary: everything read from a struct net_conn comes from the
 * network and is untrusted. This module moves bytes and enforces transport
 * limits (connections in total and per client address, timeouts, bounded
 * line reads); it never interprets them. Protocol sessions (smtp/, imap/)
 * read lines or raw bytes and write replies; whether the bytes travel in the
 * clear, over implicit TLS or after a STARTTLS upgrade is this module's
 * business. Only net/ includes OpenSSL.
 *
 * Threads: everything here runs on the event-loop thread. */
#ifndef SEALMAIL_NET_H
#define SEALMAIL_NET_H

#include "lib/lib.h"

#include <event2/buffer.h>
#include <event2/event.h>

#define NET_ADDR_MAX        64     /* textual client address, NUL included */
#define NET_READ_HIGH_BYTES 262144 /* input buffered before reading pauses */

struct net_tls;
struct net_limits;
struct net_listener;
struct net_conn;

/* ---- TLS contexts (net-tls.c) ---------------------------------------------
 * A server context built from a PEM certificate chain and key: TLS 1.2 or
 * later, forward-secret AEAD ciphers only, no renegotiation, no compression. */
int net_tls_create(const char *cert_path, const char *key_path, struct net_tls **tls_r,
		   const char **error_r) WARN_UNUSED;
/* Re-reads the certificate and key. On failure the old ones stay in use and
 * -1 is returned. Connections already open keep the context they started with. */
int net_tls_reload(struct net_tls *tls, const char **error_r) WARN_UNUSED;
void net_tls_free(struct net_tls **tls);

/* ---- connection accounting (net-listener.c) -------------------------------
 * One per protocol, shared by its listeners; counts live connections in total
 * and per client address. Must outlive every connection accepted under it. */
struct net_limits *net_limits_create(uint64_t max_total, uint64_t max_per_addr);
unsigned net_limits_count(const struct net_limits *limits);
void net_limits_free(struct net_limits **limits);

/* ---- listeners (net-listener.c) ------------------------------------------- */
/* Called for every accepted connection within the limits. The callee owns
 * CONN and must set its callbacks (net_conn_set_callbacks) or free it. */
typedef void net_accept_fn(void *ctx, struct net_conn *conn);

struct net_listener_settings {
	const char *name;     /* "smtp", for logs */
	const char *hostport; /* "host:port", "[v6]:port", "*:port" */
	struct net_limits *limits;
	struct net_tls *tls; /* implicit TLS when set (IMAPS); else NULL */
	/* Written in the clear before closing a refused connection (a whole
	 * protocol line, CRLF included); NULL to just close. */
	const char *refuse_total_line;
	const char *refuse_addr_line;
	net_accept_fn *accept;
	void *ctx;
};

/* Binds every address HOSTPORT resolves to (IPv4 and IPv6). */
int net_listener_create(struct event_base *base, const struct net_listener_settings *set,
			struct net_listener **listener_r, const char **error_r) WARN_UNUSED;
/* Textual "addr:port" of the first bound socket (useful with port 0). */
const char *net_listener_address(const struct net_listener *listener);
/* Stops accepting and closes the listening sockets. */
void net_listener_free(struct net_listener **listener);

/* ---- connections (net-conn.c) --------------------------------------------- */
enum net_close_reason {
	NET_CLOSE_EOF,     /* the client closed */
	NET_CLOSE_ERROR,   /* socket or TLS error */
	NET_CLOSE_TIMEOUT, /* no input within the read timeout (or stuck output) */
	NET_CLOSE_FLUSHED, /* after net_conn_close_after_flush: all output sent */
};

struct net_conn_callbacks {
	/* New input is buffered (see net_conn_read_line / net_conn_input). */
	void (*read)(struct net_conn *conn, void *ctx);
	/* A STARTTLS handshake completed; the session starts afresh. */
	void (*tls_ready)(struct net_conn *conn, void *ctx);
	/* Everything written so far has gone out (for flow control: a protocol
	 * stops reading commands while net_conn_output_size() is large). */
	void (*drained)(struct net_conn *conn, void *ctx);
	/* The connection is over (or, for TIMEOUT, unusable for reading): the
	 * owner may still write a last reply and close_after_flush, or free. */
	void (*closed)(struct net_conn *conn, void *ctx, enum net_close_reason reason);
};

void net_conn_set_callbacks(struct net_conn *conn, const struct net_conn_callbacks *cb, void *ctx);
/* Frees the connection and releases its accounting slot; no callback runs. */
void net_conn_free(struct net_conn **conn);

const char *net_conn_peer(const struct net_conn *conn); /* "192.0.2.1", "2001:db8::1" */
int net_conn_peer_is_v6(const struct net_conn *conn);
struct event_base *net_conn_base(const struct net_conn *conn);

/* Read timeout in seconds (0: none); also bounds how long output may stall. */
void net_conn_set_timeout(struct net_conn *conn, uint64_t secs);
/* Stops / restarts reading from the socket; buffered input stays. */
void net_conn_pause(struct net_conn *conn);
void net_conn_resume(struct net_conn *conn);

enum net_line_result {
	NET_LINE_NONE = 0,      /* no complete line buffered yet */
	NET_LINE_OK = 1,        /* *line holds the line without its LF / CRLF */
	NET_LINE_TOO_LONG = -1, /* a line over MAX bytes (terminator included)
				   was discarded, up to and including its LF */
};
/* Reads one LF-terminated line of at most MAX bytes (CR LF counted) into
 * LINE (reset first). A too long line is skipped as it arrives, never
 * buffered whole; TOO_LONG is reported once per such line. */
enum net_line_result net_conn_read_line(struct net_conn *conn, size_t max, struct buf *line);
/* Raw input, for bodies that are not line based (BDAT) or streamed (DATA). */
struct evbuffer *net_conn_input(struct net_conn *conn);

void net_conn_write(struct net_conn *conn, const void *data, size_t len);
/* Moves all of DATA to the output without copying (reference chains keep
 * their cleanup callbacks, run once the bytes are sent or dropped). */
void net_conn_write_buffer(struct net_conn *conn, struct evbuffer *data);
/* Bytes written but not yet sent (TLS: before and after encryption). */
size_t net_conn_output_pending(const struct net_conn *conn);
size_t net_conn_output_size(const struct net_conn *conn); /* the same */
/* drained() runs when the output falls to BYTES or less (default 0: when
 * it is empty), so that a writer refills before the socket idles. */
void net_conn_set_output_low(struct net_conn *conn, size_t bytes);
void net_conn_printf(struct net_conn *conn, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Stops reading, discards buffered input, and calls closed(FLUSHED) once
 * everything written so far has been sent (or closed(ERROR/TIMEOUT)). */
void net_conn_close_after_flush(struct net_conn *conn);

/* Upgrades the connection to TLS (server side) after the protocol's "go
 * ahead" reply has been written: that reply is sent in the clear, any input
 * the client sent before the handshake is discarded (RFC 3207 section 6),
 * and tls_ready or closed(ERROR) follows. */
int net_conn_starttls(struct net_conn *conn, struct net_tls *tls, const char **error_r) WARN_UNUSED;
int net_conn_is_tls(const struct net_conn *conn);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384"; "" in the clear. */
const char *net_conn_tls_version(const struct net_conn *conn);
const char *net_conn_tls_cipher(const struct net_conn *conn);

#endif

/* net-conn.c — one client connection: buffered I/O, bounded line reads,
 * timeouts, STARTTLS upgrade and orderly close.
 *
 * Trust boundary: all input is untrusted. Input is buffered up to
 * NET_READ_HIGH_BYTES before reading pauses; a line longer than the caller's
 * limit is discarded as it arrives and never held whole. Callbacks are
 * deferred to the event loop, so a protocol handler is never re-entered from
 * inside a write. On STARTTLS, input received before the handshake is thrown
 * away so that nothing sent in the clear is taken as sent under TLS. */
#include "net/net-private.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NET_FLUSH_POLL_MS      10
#define NET_CLOSE_TIMEOUT_SECS 10           /* longest wait for a last reply to drain */
#define NET_WRITE_MAX_BYTES    (256 * 1024) /* per send; libevent's default is 16 KiB */

struct net_conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct net_limits *limits;
	struct net_conn_callbacks cb;
	void *ctx;

	struct event *later; /* deferred closed(FLUSHED) and flush polling */
	int64_t close_deadline_us;
	uint64_t timeout;
	size_t output_low; /* drained() once output is at most this */

	char addr[NET_ADDR_MAX];
	char tls_version[24];
	char tls_cipher[64];
	unsigned int v6 : 1;
	unsigned int tls : 1;       /* TLS is up (handshake done) */
	unsigned int upgrading : 1; /* STARTTLS handshake in progress */
	unsigned int closing : 1;   /* close_after_flush called */
	unsigned int failing : 1;   /* closing after an error: report ERROR */
	unsigned int closed : 1;    /* closed() has been called for good */
	unsigned int skipping : 1;  /* inside an over-long line */
};

static void net_conn_closed(struct net_conn *conn, enum net_close_reason reason)
{
	if (conn->closed)
		return;
	if (reason != NET_CLOSE_TIMEOUT || conn->closing)
		conn->closed = 1;
	if (conn->cb.closed != NULL)
		conn->cb.closed(conn, conn->ctx, reason);
}

size_t net_conn_output_pending(const struct net_conn *conn)
{
	struct bufferevent *under = bufferevent_get_underlying(conn->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(conn->bev));

	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* While closing: FLUSHED once nothing is left to send, else poll again (the
 * underlying socket of a TLS filter may still hold bytes). */
static void net_conn_flush_check(struct net_conn *conn)
{
	struct timeval tv = {0, NET_FLUSH_POLL_MS * 1000};

	if (net_conn_output_pending(conn) == 0) {
		net_conn_closed(conn, conn->failing ? NET_CLOSE_ERROR : NET_CLOSE_FLUSHED);
		return;
	}
	if (time_now_us() > conn->close_deadline_us) {
		net_conn_closed(conn, NET_CLOSE_TIMEOUT);
		return;
	}
	event_add(conn->later, &tv);
}

static void net_conn_later_cb(evutil_socket_t fd, short what, void *arg)
{
	net_conn_flush_check(arg);
}

/* libevent 2.1 reads a socket at most 4 KiB per wakeup (EVBUFFER_MAX_READ):
 * a 100 KB message cost some 25 rounds of epoll_wait, FIONREAD and readv.
 * On a plain socket, take what else is already there in bigger reads, up to
 * the high watermark; EOF and errors are left for the bufferevent's own read,
 * which the still-readable socket triggers. */
static void net_conn_read_more(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	size_t have = evbuffer_get_length(in);

	if (fd < 0 || bufferevent_openssl_get_ssl(bev) != NULL ||
	    bufferevent_get_underlying(bev) != NULL)
		return;
	/* A socket bufferevent keeps its input's end frozen except while it
	 * reads; do as it does. */
	evbuffer_unfreeze(in, 0);
	while (have < NET_READ_HIGH_BYTES) {
		size_t want =
		    NET_READ_HIGH_BYTES - have < 65536 ? NET_READ_HIGH_BYTES - have : 65536;
		struct evbuffer_iovec v;
		ssize_t n;

		if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) < 1)
			break;
		n = recv(fd, v.iov_base, want, MSG_DONTWAIT);
		if (n <= 0)
			break;
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
		have += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	evbuffer_freeze(in, 0);
}

static void net_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *conn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (conn->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	/* Decrypted input that raced the handshake event: tls_ready reads it. */
	if (conn->upgrading)
		return;
	net_conn_read_more(bev);
	if (conn->cb.read != NULL)
		conn->cb.read(conn, conn->ctx);
}

static void net_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *conn = arg;

	if (conn->closing) {
		if (!conn->closed)
			net_conn_flush_check(conn);
	} else if (conn->cb.drained != NULL) {
		conn->cb.drained(conn, conn->ctx);
	}
}

static void net_conn_tls_info(struct net_conn *conn)
{
	SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
	const SSL_CIPHER *cipher;

	if (ssl == NULL)
		return;
	cipher = SSL_get_current_cipher(ssl);
	snprintf(conn->tls_version, sizeof(conn->tls_version), "%s", SSL_get_version(ssl));
	snprintf(conn->tls_cipher, sizeof(conn->tls_cipher), "%s",
		 cipher != NULL ? SSL_CIPHER_get_name(cipher) : "unknown");
}

/* An error on BEV. A STARTTLS handshake that failed has left OpenSSL's
 * alert (protocol_version, say) in the socket's own buffer, under the TLS
 * filter: it is sent before the error is reported, so that the client
 * learns why rather than seeing the connection drop. */
static void net_conn_failed(struct net_conn *conn, struct bufferevent *bev)
{
	struct bufferevent *under = bufferevent_get_underlying(bev);

	if (conn->upgrading && !conn->closing && under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		conn->failing = 1;
		net_conn_close_after_flush(conn);
		bufferevent_enable(under, EV_WRITE);
		return;
	}
	net_conn_closed(conn, NET_CLOSE_ERROR);
}

static void net_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *conn = arg;

	if (what & BEV_EVENT_CONNECTED) {
		int upgraded = conn->upgrading;

		conn->tls = 1;
		conn->upgrading = 0;
		net_conn_tls_info(conn);
		if (upgraded && conn->cb.tls_ready != NULL && !conn->closing)
			conn->cb.tls_ready(conn, conn->ctx);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		net_conn_closed(conn, NET_CLOSE_TIMEOUT);
	else if (what & BEV_EVENT_EOF)
		net_conn_closed(conn, NET_CLOSE_EOF);
	else if (what & BEV_EVENT_ERROR)
		net_conn_failed(conn, bev);
}

static void net_conn_setup_bev(struct net_conn *conn)
{
	bufferevent_setcb(conn->bev, net_conn_read_cb, net_conn_write_cb, net_conn_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_READ, 0, NET_READ_HIGH_BYTES);
	bufferevent_setwatermark(conn->bev, EV_WRITE, conn->output_low, 0);
	bufferevent_set_max_single_write(conn->bev, NET_WRITE_MAX_BYTES);
	net_conn_set_timeout(conn, conn->timeout);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
}

struct net_conn *net_conn_create(struct event_base *base, int fd, const char *addr, int v6,
				 struct net_limits *limits, struct net_tls *tls)
{
	struct net_conn *conn = xcalloc(1, sizeof(*conn));
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	int one = 1;
	SSL *ssl;

	conn->base = base;
	conn->limits = limits;
	conn->v6 = v6 ? 1 : 0;
	snprintf(conn->addr, sizeof(conn->addr), "%s", addr);
	evutil_make_socket_nonblocking(fd);
	/* Output leaves in bursts the loop has already coalesced; Nagle would
	 * hold each burst's tail until the client's delayed ACK (40 ms). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls != NULL) {
		ssl = net_tls_ssl_new(tls);
		if (ssl != NULL)
			conn->bev = bufferevent_openssl_socket_new(base, fd, ssl,
								   BUFFEREVENT_SSL_ACCEPTING, opts);
		if (ssl != NULL && conn->bev == NULL)
			SSL_free(ssl);
		if (conn->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
	} else {
		conn->bev = bufferevent_socket_new(base, fd, opts);
	}
	conn->later = event_new(base, -1, 0, net_conn_later_cb, conn);
	if (conn->bev == NULL || conn->later == NULL) {
		if (conn->bev == NULL)
			close(fd);
		net_conn_free(&conn);
		return NULL;
	}
	net_conn_setup_bev(conn);
	return conn;
}

void net_conn_set_callbacks(struct net_conn *conn, const struct net_conn_callbacks *cb, void *ctx)
{
	conn->cb = *cb;
	conn->ctx = ctx;
}

void net_conn_free(struct net_conn **connp)
{
	struct net_conn *conn = *connp;

	if (conn == NULL)
		return;
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	if (conn->later != NULL)
		event_free(conn->later);
	net_limits_release(conn->limits, conn->addr);
	free(conn);
	*connp = NULL;
}

const char *net_conn_peer(const struct net_conn *conn)
{
	return conn->addr;
}

int net_conn_peer_is_v6(const struct net_conn *conn)
{
	return conn->v6;
}

struct event_base *net_conn_base(const struct net_conn *conn)
{
	return conn->base;
}

void net_conn_set_timeout(struct net_conn *conn, uint64_t secs)
{
	struct timeval tv = {(time_t)secs, 0};

	conn->timeout = secs;
	if (secs == 0)
		bufferevent_set_timeouts(conn->bev, NULL, NULL);
	else
		bufferevent_set_timeouts(conn->bev, &tv, &tv);
}

void net_conn_pause(struct net_conn *conn)
{
	bufferevent_disable(conn->bev, EV_READ);
}

void net_conn_resume(struct net_conn *conn)
{
	if (!conn->closing)
		bufferevent_enable(conn->bev, EV_READ);
}

enum net_line_result net_conn_read_line(struct net_conn *conn, size_t max, struct buf *line)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct evbuffer_ptr eol;
	size_t avail, len, eol_len;

	buf_reset(line);
	for (;;) {
		avail = evbuffer_get_length(in);
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (conn->skipping) {
				evbuffer_drain(in, avail);
				return NET_LINE_NONE;
			}
			if (avail < max)
				return NET_LINE_NONE;
			evbuffer_drain(in, avail);
			conn->skipping = 1;
			return NET_LINE_TOO_LONG;
		}
		len = (size_t)eol.pos + 1;
		if (conn->skipping) {
			evbuffer_drain(in, len);
			conn->skipping = 0;
			continue;
		}
		if (len > max) {
			evbuffer_drain(in, len);
			return NET_LINE_TOO_LONG;
		}
		if (buf_reserve(line, len) < 0)
			log_fatal("out of memory");
		evbuffer_remove(in, line->data, len);
		len--;
		if (len > 0 && line->data[len - 1] == '\r')
			len--;
		line->len = len;
		line->data[len] = '\0';
		return NET_LINE_OK;
	}
}

struct evbuffer *net_conn_input(struct net_conn *conn)
{
	return bufferevent_get_input(conn->bev);
}

void net_conn_write(struct net_conn *conn, const void *data, size_t len)
{
	if (conn->closed)
		return;
	bufferevent_write(conn->bev, data, len);
}

void net_conn_write_buffer(struct net_conn *conn, struct evbuffer *data)
{
	if (conn->closed) {
		evbuffer_drain(data, evbuffer_get_length(data));
		return;
	}
	bufferevent_write_buffer(conn->bev, data);
}

size_t net_conn_output_size(const struct net_conn *conn)
{
	return net_conn_output_pending(conn);
}

void net_conn_set_output_low(struct net_conn *conn, size_t bytes)
{
	conn->output_low = bytes;
	bufferevent_setwatermark(conn->bev, EV_WRITE, bytes, 0);
}

void net_conn_printf(struct net_conn *conn, const char *fmt, ...)
{
	va_list ap;

	if (conn->closed)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(conn->bev), fmt, ap);
	va_end(ap);
}

void net_conn_close_after_flush(struct net_conn *conn)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct timeval now = {0, 0};

	if (conn->closing)
		return;
	conn->closing = 1;
	conn->close_deadline_us = time_now_us() + (int64_t)NET_CLOSE_TIMEOUT_SECS * 1000000;
	bufferevent_disable(conn->bev, EV_READ);
	evbuffer_drain(in, evbuffer_get_length(in));
	/* Never call back from inside the caller: check from the loop. */
	event_add(conn->later, &now);
}

int net_conn_starttls(struct net_conn *conn, struct net_tls *tls, const char **error_r)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct bufferevent *filter;
	SSL *ssl;

	if (conn->tls || conn->upgrading) {
		*error_r = "TLS is already active";
		return -1;
	}
	ssl = net_tls_ssl_new(tls);
	if (ssl == NULL) {
		*error_r = "cannot create a TLS session";
		return -1;
	}
	/* RFC 3207 section 6: anything pipelined after STARTTLS is discarded. */
	evbuffer_drain(in, evbuffer_get_length(in));
	conn->skipping = 0;
	filter =
	    bufferevent_openssl_filter_new(conn->base, conn->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
					   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (filter == NULL) {
		SSL_free(ssl);
		*error_r = "cannot start TLS on the connection";
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	conn->bev = filter;
	conn->upgrading = 1;
	net_conn_setup_bev(conn);
	return 0;
}

int net_conn_is_tls(const struct net_conn *conn)
{
	return conn->tls;
}

const char *net_conn_tls_version(const struct net_conn *conn)
{
	return conn->tls_version;
}

const char *net_conn_tls_cipher(const struct net_conn *conn)
{
	return conn->tls_cipher;
}

/* net-listener.c — listening sockets and connection accounting.
 *
 * Trust boundary: the first contact with a network peer. Before a connection
 * costs anything more than a file descriptor, it is counted against the
 * protocol's total and per-address limits; one over either limit gets the
 * protocol's refusal line (written once, without waiting) and is closed. */
#include "net/net-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_LIMITS_BUCKETS     4096
#define NET_LISTEN_SOCKETS_MAX 8
#define NET_LISTEN_BACKLOG     512

struct net_addr_count {
	struct net_addr_count *next;
	unsigned count;
	char addr[NET_ADDR_MAX];
};

struct net_limits {
	uint64_t max_total;
	uint64_t max_per_addr;
	unsigned total;
	struct net_addr_count *buckets[NET_LIMITS_BUCKETS];
};

struct net_listener {
	struct net_listener_settings set;
	char *name;
	char *refuse_total_line;
	char *refuse_addr_line;
	struct evconnlistener *evl[NET_LISTEN_SOCKETS_MAX];
	size_t count;
	char address[NET_ADDR_MAX + 8];
};

/* ---- accounting ------------------------------------------------------------- */

struct net_limits *net_limits_create(uint64_t max_total, uint64_t max_per_addr)
{
	struct net_limits *limits = xcalloc(1, sizeof(*limits));

	limits->max_total = max_total;
	limits->max_per_addr = max_per_addr;
	return limits;
}

static struct net_addr_count **net_limits_slot(struct net_limits *limits, const char *addr)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	struct net_addr_count **p;

	for (const char *c = addr; *c != '\0'; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	for (p = &limits->buckets[h % NET_LIMITS_BUCKETS]; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->addr, addr) == 0)
			break;
	return p;
}

int net_limits_acquire(struct net_limits *limits, const char *addr)
{
	struct net_addr_count **slot;

	if (limits->total >= limits->max_total)
		return -1;
	slot = net_limits_slot(limits, addr);
	if (*slot != NULL && (*slot)->count >= limits->max_per_addr)
		return -2;
	if (*slot == NULL) {
		if (limits->max_per_addr == 0)
			return -2;
		*slot = xcalloc(1, sizeof(**slot));
		snprintf((*slot)->addr, sizeof((*slot)->addr), "%s", addr);
	}
	(*slot)->count++;
	limits->total++;
	return 0;
}

void net_limits_release(struct net_limits *limits, const char *addr)
{
	struct net_addr_count **slot = net_limits_slot(limits, addr), *gone;

	if (*slot == NULL || limits->total == 0)
		log_panic("net: releasing a connection slot that was never taken");
	limits->total--;
	if (--(*slot)->count == 0) {
		gone = *slot;
		*slot = gone->next;
		free(gone);
	}
}

unsigned net_limits_count(const struct net_limits *limits)
{
	return limits->total;
}

void net_limits_free(struct net_limits **limitsp)
{
	struct net_limits *limits = *limitsp;
	struct net_addr_count *c, *next;

	if (limits == NULL)
		return;
	for (size_t i = 0; i < NET_LIMITS_BUCKETS; i++) {
		for (c = limits->buckets[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(limits);
	*limitsp = NULL;
}

/* ---- listeners ----------------------------------------------------------- */

static void net_addr_format(const struct sockaddr *sa, char *out, size_t size, int *v6_r,
			    unsigned *port_r)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	*v6_r = 0;
	*port_r = 0;
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out, (socklen_t)size);
		*port_r = ntohs(in6->sin6_port);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)size);
		*v6_r = 1;
		*port_r = ntohs(in6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, out, (socklen_t)size);
		*port_r = ntohs(in4->sin_port);
	} else {
		snprintf(out, size, "unknown");
	}
}

static void net_listener_refuse(struct net_listener *l, int fd, const char *addr, const char *line,
				const char *why)
{
	log_warn("%s: refused connection from %s: %s", l->name, addr, why);
	/* One non-blocking attempt: a refused client gets no buffer and no wait. */
	if (line != NULL && l->set.tls == NULL)
		(void)!send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void net_listener_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
				int salen, void *ctx)
{
	struct net_listener *l = ctx;
	char addr[NET_ADDR_MAX];
	struct net_conn *conn;
	unsigned port;
	int v6, ret;

	net_addr_format(sa, addr, sizeof(addr), &v6, &port);
	ret = net_limits_acquire(l->set.limits, addr);
	if (ret == -1) {
		net_listener_refuse(l, fd, addr, l->refuse_total_line, "too many connections");
		return;
	}
	if (ret == -2) {
		net_listener_refuse(l, fd, addr, l->refuse_addr_line,
				    "too many connections from this address");
		return;
	}
	conn =
	    net_conn_create(evconnlistener_get_base(evl), fd, addr, v6, l->set.limits, l->set.tls);
	if (conn == NULL) {
		log_error("%s: cannot set up a connection from %s", l->name, addr);
		return;
	}
	l->set.accept(l->set.ctx, conn);
}

static void net_listener_error(struct evconnlistener *evl, void *ctx)
{
	struct net_listener *l = ctx;
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: keep serving the connections we have. */
	log_error("%s: accept failed: %s", l->name, evutil_socket_error_to_string(err));
}

/* 0 bound, -1 error, -2 this address cannot exist here (skip it). */
static int net_listener_bind(struct net_listener *l, struct event_base *base, const char *hostport,
			     const struct addrinfo *ai, const char **error_r)
{
	int fd, one = 1;
	struct evconnlistener *evl;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*error_r = str_tfmt("socket: %s", strerror(errno));
		return errno == EAFNOSUPPORT ? -2 : -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, NET_LISTEN_BACKLOG) < 0) {
		int err = errno;

		*error_r = str_tfmt("cannot listen on %s: %s", hostport, strerror(err));
		close(fd);
		return err == EADDRNOTAVAIL || err == EAFNOSUPPORT ? -2 : -1;
	}
	evl = evconnlistener_new(base, net_listener_accept, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (evl == NULL) {
		*error_r = "cannot create an event listener";
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(evl, net_listener_error);
	if (l->count == 0) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char host[NET_ADDR_MAX];
		unsigned port;
		int v6;

		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
			net_addr_format((struct sockaddr *)&ss, host, sizeof(host), &v6, &port);
			snprintf(l->address, sizeof(l->address), v6 ? "[%s]:%u" : "%s:%u", host,
				 port);
		}
	}
	l->evl[l->count++] = evl;
	return 0;
}

int net_listener_create(struct event_base *base, const struct net_listener_settings *set,
			struct net_listener **listener_r, const char **error_r)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct net_listener *l;
	char *host = NULL, portstr[8];
	unsigned port;
	int ret = -1, gai;

	if (str_parse_hostport(set->hostport, &host, &port) < 0) {
		*error_r = str_tfmt("cannot parse listen address '%s'", set->hostport);
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	l->set = *set;
	l->name = xstrdup(set->name);
	l->refuse_total_line = set->refuse_total_line ? xstrdup(set->refuse_total_line) : NULL;
	l->refuse_addr_line = set->refuse_addr_line ? xstrdup(set->refuse_addr_line) : NULL;
	l->set.name = l->name;
	l->set.hostport = NULL; /* only used here */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
	if (gai != 0) {
		*error_r = str_tfmt("cannot resolve '%s': %s", host, gai_strerror(gai));
		goto out;
	}
	/* An address family the host lacks (say, ::1 without IPv6) is skipped
	 * as long as one address can be bound. */
	for (ai = res; ai != NULL && l->count < NET_LISTEN_SOCKETS_MAX; ai = ai->ai_next) {
		int r = net_listener_bind(l, base, set->hostport, ai, error_r);

		if (r == -1 || (r == -2 && ai->ai_next == NULL && l->count == 0))
			goto out;
	}
	ret = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	free(host);
	if (ret < 0)
		net_listener_free(&l);
	*listener_r = l;
	return ret;
}

const char *net_listener_address(const struct net_listener *listener)
{
	return listener->address;
}

void net_listener_free(struct net_listener **listenerp)
{
	struct net_listener *l = *listenerp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		evconnlistener_free(l->evl[i]);
	free(l->name);
	free(l->refuse_total_line);
	free(l->refuse_addr_line);
	free(l);
	*listenerp = NULL;
}

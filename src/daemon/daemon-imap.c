/* daemon-imap.c — the IMAP service of the daemon: its listeners (plain
 * with STARTTLS, and implicit TLS), its connection limits and its server,
 * wired to the event loop.
 *
 * Trust boundary: the first contact with IMAP clients. Connections over
 * [imap] max_connections or max_connections_per_ip are answered BYE and
 * closed before a session exists. The implicit-TLS listener is only opened
 * when a certificate is configured. */
#include "daemon/daemon-private.h"
#include "imap/imap.h"
#include "net/net.h"

static const char daemon_imap_refuse_total[] = "* BYE Too many connections, try again later\r\n";
static const char daemon_imap_refuse_addr[] =
    "* BYE Too many connections from your address, try again later\r\n";

static void daemon_imap_accept(void *ctx, struct net_conn *conn)
{
	struct daemon *d = ctx;

	if (d->imap == NULL || d->stopping) {
		net_conn_free(&conn);
		return;
	}
	imap_server_accept(d->imap, conn);
}

static int daemon_imap_listen_one(struct daemon *d, const char *hostport, struct net_tls *tls,
				  struct net_listener **listener_r, const char **error_r)
{
	struct net_listener_settings set = {
	    .name = tls != NULL ? "imaps" : "imap",
	    .hostport = hostport,
	    .limits = d->imap_limits,
	    .tls = tls,
	    .refuse_total_line = daemon_imap_refuse_total,
	    .refuse_addr_line = daemon_imap_refuse_addr,
	    .accept = daemon_imap_accept,
	    .ctx = d,
	};

	if (net_listener_create(d->base, &set, listener_r, error_r) < 0)
		return -1;
	log_info("%s: listening on %s", set.name, net_listener_address(*listener_r));
	return 0;
}

static int daemon_imap_listen(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->cfg;
	int plain = cfg->imap_listen != NULL && cfg->imap_listen[0] != '\0';
	int tls = cfg->imap_listen_tls != NULL && cfg->imap_listen_tls[0] != '\0';

	if (!plain && !tls)
		return 0;
	d->imap_limits =
	    net_limits_create(cfg->imap_max_connections, cfg->imap_max_connections_per_ip);
	if (plain &&
	    daemon_imap_listen_one(d, cfg->imap_listen, NULL, &d->imap_listener, error_r) < 0)
		return -1;
	if (tls && d->tls == NULL) {
		log_warn("imaps: no TLS certificate: %s not opened", cfg->imap_listen_tls);
		return 0;
	}
	if (tls && daemon_imap_listen_one(d, cfg->imap_listen_tls, d->tls, &d->imaps_listener,
					  error_r) < 0)
		return -1;
	return 0;
}

static int daemon_imap_start(struct daemon *d, const char **error_r)
{
	if (d->imap_listener == NULL && d->imaps_listener == NULL)
		return 0;
	d->imap = imap_server_create(d->base, d->cfg, d->router, d->tls);
	return 0;
}

static void daemon_imap_stop_accepting(struct daemon *d)
{
	net_listener_free(&d->imap_listener);
	net_listener_free(&d->imaps_listener);
}

static void daemon_imap_drain(struct daemon *d)
{
	if (d->imap == NULL) {
		daemon_service_drained(d);
		return;
	}
	imap_server_drain(d->imap, daemon_service_drained, d);
}

static void daemon_imap_free(struct daemon *d)
{
	daemon_imap_stop_accepting(d);
	imap_server_free(&d->imap);
	net_limits_free(&d->imap_limits);
}

const struct daemon_service daemon_imap_service = {
    .name = "imap",
    .listen = daemon_imap_listen,
    .start = daemon_imap_start,
    .stop_accepting = daemon_imap_stop_accepting,
    .drain = daemon_imap_drain,
    .free = daemon_imap_free,
};

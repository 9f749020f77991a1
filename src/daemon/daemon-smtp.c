/* daemon-smtp.c — the SMTP service of the daemon: its listener, its
 * connection limits and its server, wired to the event loop.
 *
 * Trust boundary: the first contact with SMTP clients. Connections over
 * [smtp] max_connections or max_connections_per_ip are answered 421 and
 * closed before a session exists. */
#include "daemon/daemon-private.h"
#include "net/net.h"
#include "smtp/smtp.h"

static const char daemon_smtp_refuse_total[] =
    "421 4.7.0 Too many connections, try again later\r\n";
static const char daemon_smtp_refuse_addr[] =
    "421 4.7.0 Too many connections from your address, try again later\r\n";

/* Listeners exist before the server (privileges are dropped in between),
 * so they call this, which finds the server through the daemon. */
static void daemon_smtp_accept(void *ctx, struct net_conn *conn)
{
	struct daemon *d = ctx;

	if (d->smtp == NULL || d->stopping) {
		net_conn_free(&conn);
		return;
	}
	smtp_server_accept(d->smtp, conn);
}

static int daemon_smtp_listen(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->cfg;
	struct net_listener_settings set = {
	    .name = "smtp",
	    .hostport = cfg->smtp_listen,
	    .refuse_total_line = daemon_smtp_refuse_total,
	    .refuse_addr_line = daemon_smtp_refuse_addr,
	    .accept = daemon_smtp_accept,
	    .ctx = d,
	};

	if (cfg->smtp_listen == NULL || cfg->smtp_listen[0] == '\0')
		return 0;
	d->smtp_limits =
	    net_limits_create(cfg->smtp_max_connections, cfg->smtp_max_connections_per_ip);
	set.limits = d->smtp_limits;
	if (net_listener_create(d->base, &set, &d->smtp_listener, error_r) < 0)
		return -1;
	log_info("smtp: listening on %s", net_listener_address(d->smtp_listener));
	return 0;
}

static int daemon_smtp_start(struct daemon *d, const char **error_r)
{
	if (d->smtp_listener == NULL)
		return 0;
	d->smtp = smtp_server_create(d->base, d->cfg, d->router, d->tls);
	return 0;
}

static void daemon_smtp_stop_accepting(struct daemon *d)
{
	net_listener_free(&d->smtp_listener);
}

static void daemon_smtp_drain(struct daemon *d)
{
	if (d->smtp == NULL) {
		daemon_service_drained(d);
		return;
	}
	smtp_server_drain(d->smtp, d->cfg->smtp_shutdown_grace, daemon_service_drained, d);
}

static void daemon_smtp_free(struct daemon *d)
{
	daemon_smtp_stop_accepting(d);
	smtp_server_free(&d->smtp);
	net_limits_free(&d->smtp_limits);
}

const struct daemon_service daemon_smtp_service = {
    .name = "smtp",
    .listen = daemon_smtp_listen,
    .start = daemon_smtp_start,
    .stop_accepting = daemon_smtp_stop_accepting,
    .drain = daemon_smtp_drain,
    .free = daemon_smtp_free,
};

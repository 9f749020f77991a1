/* daemon-legal.c — releases owner notices of legal requests: at start and
 * every [legal] notify_interval, a sweep delivers the sealed notices whose
 * non-disclosure order has ended (legal_notify_due). At start it also logs
 * policy.changed when the policy file differs from the last one logged.
 *
 * Trust boundary: no network input. A sweep appends to the transparency log
 * and delivers into owners' mailboxes; it blocks on syncs, so it runs on a
 * worker thread of its own, never on the event loop. */
#include "daemon/daemon-private.h"
#include "legal/legal.h"
#include "region/region.h"
#include "tlog/tlog.h"

static void daemon_legal_sweep(void *ctx)
{
	struct daemon *d = ctx;
	const char *error = NULL;
	unsigned released = 0;

	if (legal_notify_due(d->cfg, d->router, d->tlog, 0, &released, &error) < 0)
		log_warn("legal: owner notices not released: %s", error);
	else if (released > 0)
		log_info("legal: released %u owner notice(s)", released);
	__atomic_store_n(&d->legal_busy, 0, __ATOMIC_RELEASE);
}

static void daemon_legal_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	/* One sweep at a time; a slow one simply skips a tick. */
	if (__atomic_exchange_n(&d->legal_busy, 1, __ATOMIC_ACQ_REL) == 0)
		pool_submit(d->legal_pool, daemon_legal_sweep, d);
}

static int daemon_legal_listen(struct daemon *d, const char **error_r)
{
	return 0;
}

static int daemon_legal_start(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->cfg;
	struct timeval tv = {.tv_sec = (time_t)cfg->legal_notify_interval};

	if (tlog_open(cfg->tlog_dir, cfg->tlog_origin, cfg->tlog_key, &d->tlog, error_r) < 0) {
		*error_r = str_tfmt("transparency log: %s", *error_r);
		return -1;
	}
	router_set_tlog(d->router, d->tlog);
	/* A policy edited while the server was down is on record before the
	 * first sweep. An invalid one stops only `legal decide`, which says why. */
	if (legal_policy_record(cfg, d->router, d->tlog, error_r) < 0)
		log_warn("legal: the policy in force is not logged: %s", *error_r);
	d->legal_pool = pool_new(1, "legal", 10);
	if (cfg->legal_notify_interval > 0) {
		d->legal_timer = event_new(d->base, -1, EV_PERSIST, daemon_legal_timer, d);
		if (d->legal_timer == NULL || event_add(d->legal_timer, &tv) < 0) {
			*error_r = "cannot start the owner-notice timer";
			return -1;
		}
	}
	daemon_legal_timer(-1, 0, d);
	return 0;
}

static void daemon_legal_stop_accepting(struct daemon *d)
{
	if (d->legal_timer != NULL)
		event_del(d->legal_timer);
}

static void daemon_legal_drain(struct daemon *d)
{
	/* A running sweep finishes in daemon_legal_free (pool_free waits). */
	daemon_service_drained(d);
}

static void daemon_legal_free(struct daemon *d)
{
	pool_free(&d->legal_pool);
	if (d->legal_timer != NULL) {
		event_free(d->legal_timer);
		d->legal_timer = NULL;
	}
	if (d->router != NULL)
		router_set_tlog(d->router, NULL);
	tlog_close(&d->tlog);
}

const struct daemon_service daemon_legal_service = {
    .name = "legal",
    .listen = daemon_legal_listen,
    .start = daemon_legal_start,
    .stop_accepting = daemon_legal_stop_accepting,
    .drain = daemon_legal_drain,
    .free = daemon_legal_free,
};

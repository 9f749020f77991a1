/* store-rados-watch.c — changes across nodes: RADOS watch/notify on the
 * account object.
 *
 * Trust boundary: a notification carries no content, only the posting
 * node's random id, the account id and the mailbox id (all numbers already
 * in object names or index fields). Every node sharing the pool may post
 * them; a forged one only makes an IMAP session look at its mailbox. A node
 * ignores its own notifications: it has told its own sessions already. */
#include "store/store-rados-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RADOS_NOTIFY_BYTES      24
#define RADOS_NOTIFY_TIMEOUT_MS 2000

struct store_watch {
	struct rados_store *rs;
	uint64_t cookie;
	uint64_t account_id;
	char oid[RADOS_OID_MAX];
	store_change_fn *fn;
	void *ctx;
};

static void rados_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rados_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void rados_watch_cb(void *arg, uint64_t notify_id, uint64_t handle, uint64_t notifier_id,
			   void *data, size_t len)
{
	struct store_watch *w = arg;
	const uint8_t *p = data;

	rados_notify_ack(w->rs->io, w->oid, notify_id, handle, NULL, 0);
	if (len != RADOS_NOTIFY_BYTES || rados_get64(p) == w->rs->node ||
	    rados_get64(p + 8) != w->account_id)
		return;
	w->fn(w->ctx, w->account_id, rados_get64(p + 16));
}

static void rados_watch_err(void *arg, uint64_t cookie, int err)
{
	struct store_watch *w = arg;

	/* The watch is lost (e.g. the OSD restarted); IMAP still polls, and
	 * a fresh watch is tried so that wake-ups become immediate again. */
	log_warn("store: rados watch lost: %s", strerror(-err));
	rados_unwatch2(w->rs->io, w->cookie);
	if (rados_watch2(w->rs->io, w->oid, &w->cookie, rados_watch_cb, rados_watch_err, w) < 0)
		log_warn("store: rados watch could not be renewed");
}

int rados_change_watch(struct store *s, uint64_t account_id, store_change_fn *fn, void *ctx,
		       struct store_watch **w_r, const char **error_r)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	int r;

	w->rs = RS(s);
	w->account_id = account_id;
	w->fn = fn;
	w->ctx = ctx;
	rados_oid_account(w->oid, account_id);
	r = rados_watch2(w->rs->io, w->oid, &w->cookie, rados_watch_cb, rados_watch_err, w);
	if (r < 0) {
		free(w);
		return rados_fail(r, "watch", error_r);
	}
	*w_r = w;
	return 0;
}

void rados_change_unwatch(struct store *s, struct store_watch **wp)
{
	struct store_watch *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	rados_unwatch2(w->rs->io, w->cookie);
	/* Waits for callbacks in flight, so W can go. */
	rados_watch_flush(w->rs->cluster);
	free(w);
}

static void rados_notify_done(rados_completion_t c, void *arg)
{
	struct rados_store *rs = arg;

	(void)c;
	pthread_mutex_lock(&rs->lock);
	rs->notifies--;
	pthread_cond_broadcast(&rs->notified);
	pthread_mutex_unlock(&rs->lock);
}

void rados_change_notify(struct store *s, uint64_t account_id, uint64_t mailbox_id)
{
	struct rados_store *rs = RS(s);
	uint8_t msg[RADOS_NOTIFY_BYTES];
	char oid[RADOS_OID_MAX];
	rados_completion_t c;

	rados_put64(msg, rs->node);
	rados_put64(msg + 8, account_id);
	rados_put64(msg + 16, mailbox_id);
	rados_oid_account(oid, account_id);
	if (rados_aio_create_completion2(rs, rados_notify_done, &c) < 0)
		return;
	pthread_mutex_lock(&rs->lock);
	rs->notifies++;
	pthread_mutex_unlock(&rs->lock);
	/* Not waited for here: librados keeps the completion until it is done,
	 * and the store's close waits for the count to drop. */
	if (rados_aio_notify(rs->io, oid, c, (const char *)msg, sizeof(msg),
			     RADOS_NOTIFY_TIMEOUT_MS, NULL, NULL) < 0) {
		log_warn("store: rados notify failed");
		rados_notify_done(c, rs);
	}
	rados_aio_release(c);
}

int rados_notify_drain(struct rados_store *rs)
{
	struct timespec until;
	unsigned left;

	/* A notification ends within its own timeout, acknowledged or not;
	 * a few seconds more in case the cluster is gone. */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += RADOS_NOTIFY_TIMEOUT_MS / 1000 + 5;
	pthread_mutex_lock(&rs->lock);
	while (rs->notifies > 0 &&
	       pthread_cond_timedwait(&rs->notified, &rs->lock, &until) != ETIMEDOUT)
		;
	left = rs->notifies;
	pthread_mutex_unlock(&rs->lock);
	if (left > 0)
		log_warn("store: %u rados notifications still pending at close", left);
	return left > 0 ? -1 : 0;
}

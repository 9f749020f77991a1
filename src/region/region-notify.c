/* region-notify.c — change notification per account.
 *
 * Trust boundary: carries no content, only "mailbox N of account A changed",
 * between threads of this process: a delivery committing on a store thread,
 * an IMAP session changing flags or expunging, and the account's other IMAP
 * sessions (IDLE). Where the region's store can tell other nodes (rados:
 * watch/notify), each change is also posted there and each watch also hears
 * the other nodes' changes. IMAP also polls the mailbox status cheaply for
 * changes nobody announced. */
#include "region/region-private.h"

#include <stdlib.h>

struct router_watch {
	struct router_watch *prev, *next;
	const struct region *region;
	uint64_t account_id;
	router_notify_fn *fn;
	void *ctx;
	struct store_watch *remote; /* the store's watch for other nodes' changes */
};

/* One hub for the process: watchers are keyed by region and account, which
 * are unique per router. Held while callbacks run, so that once
 * router_watch_remove() returns no callback of that watch is running. */
static pthread_mutex_t router_watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct router_watch *router_watches;

/* Another node changed a mailbox of W's account (on a store thread). */
static void router_watch_remote(void *ctx, uint64_t account_id, uint64_t mailbox_id)
{
	struct router_watch *w = ctx;

	pthread_mutex_lock(&router_watch_lock);
	w->fn(w->ctx, mailbox_id);
	pthread_mutex_unlock(&router_watch_lock);
}

struct router_watch *router_watch_add(const struct account *acct, router_notify_fn *fn, void *ctx)
{
	struct router_watch *w = xcalloc(1, sizeof(*w));
	struct store *store = acct->region->store;
	const char *error = NULL;

	w->region = acct->region;
	w->account_id = acct->st.id;
	w->fn = fn;
	w->ctx = ctx;
	pthread_mutex_lock(&router_watch_lock);
	w->next = router_watches;
	if (router_watches != NULL)
		router_watches->prev = w;
	router_watches = w;
	pthread_mutex_unlock(&router_watch_lock);
	if (store != NULL && store->backend->change_watch != NULL &&
	    store->backend->change_watch(store, w->account_id, router_watch_remote, w, &w->remote,
					 &error) < 0)
		log_warn("changes from other nodes are polled only: %s", error);
	return w;
}

void router_watch_remove(struct router_watch **wp)
{
	struct router_watch *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	pthread_mutex_lock(&router_watch_lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		router_watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&router_watch_lock);
	/* Outside the lock: the remote callback takes it. */
	if (w->remote != NULL)
		w->region->store->backend->change_unwatch(w->region->store, &w->remote);
	free(w);
}

void router_notify(const struct region *region, uint64_t account_id, uint64_t mailbox_id,
		   const void *origin)
{
	pthread_mutex_lock(&router_watch_lock);
	for (struct router_watch *w = router_watches; w != NULL; w = w->next)
		if (w->region == region && w->account_id == account_id && w->ctx != origin)
			w->fn(w->ctx, mailbox_id);
	pthread_mutex_unlock(&router_watch_lock);
	if (region->store != NULL && region->store->backend->change_notify != NULL)
		region->store->backend->change_notify(region->store, account_id, mailbox_id);
}

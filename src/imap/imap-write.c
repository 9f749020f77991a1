/* imap-write.c — store writes of IMAP commands, off the event loop.
 *
 * Trust boundary: carries index fields, UIDs and sealed names only. A write
 * is durable (synced by the store's group commit) before its DONE runs, so
 * a tagged OK always follows a durable change. */
#include "imap/imap-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imap_write *imap_write_new(struct imap_session *s, imap_write_op *op, imap_write_done *done)
{
	struct imap_write *w = xcalloc(1, sizeof(*w));

	w->op = op;
	w->done = done;
	w->store = s->store;
	w->account_id = s->acct->st.id;
	w->subscribed = -1;
	buf_init(&w->name_sealed);
	return w;
}

void imap_write_free(struct imap_write **wp)
{
	struct imap_write *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	buf_free(&w->name_sealed);
	free(w->uids);
	free(w->dst_uids);
	free(w->keywords);
	for (size_t i = 0; i < w->changed_count; i++)
		store_message_clear(&w->changed[i]);
	free(w->changed);
	free(w);
}

static void imap_write_job(void *ctx)
{
	struct imap_write *w = ctx;
	const char *error = NULL;

	w->result = w->op(w, &error);
	if (w->result < 0)
		snprintf(w->error, sizeof(w->error), "%s", error ? error : "store error");
}

static void imap_write_job_done(struct imap_session *s, void *ctx)
{
	struct imap_write *w = ctx;

	if (w->result < 0 && !s->dead)
		imap_session_log(s, LOG_ERROR, "store: %s", w->error);
	w->done(s, w);
}

void imap_write_run(struct imap_session *s, struct imap_write *w)
{
	imap_session_job(s, imap_write_job, imap_write_job_done, w);
}

/* imap-cmd-select.c — SELECT, EXAMINE, CHECK, CLOSE, UNSELECT (RFC 3691)
 * and EXPUNGE / UID EXPUNGE (RFC 4315).
 *
 * Trust boundary: selecting reads the index fields only (no sealed byte).
 * An expunge removes the messages and, through the store, the ciphertext of
 * records no other message shares. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

static void imap_select_common(struct imap_session *s, struct imap_args *args, int readonly)
{
	const struct imap_mbox *box;
	const struct imap_view *v;
	const char *error;
	char *name;
	long unseen = -1;

	if (args->count < 1 || args->count > 2 ||
	    (args->count == 2 && (args->list[1].type != IMAP_ARG_LIST ||
				  args->list[1].count != 1 ||
				  !imap_arg_is_atom(&args->list[1].list[0], "CONDSTORE")))) {
		imap_cmd_finish(s, "BAD", "Usage: %s mailbox [(CONDSTORE)]", s->cmd_def->name);
		return;
	}
	if (args->count == 2)
		s->condstore = 1;
	if (s->view != NULL) {
		imap_view_close(s);
		imap_session_set_state(s, IMAP_STATE_AUTH);
		imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if (imap_name_in(s, &args->list[0], &name, &error) < 0) {
		imap_cmd_finish(s, "NO", "%s", error);
		return;
	}
	if (imap_boxes_load(s, &error) < 0 || (box = imap_box_find(s, name)) == NULL) {
		free(name);
		imap_cmd_finish(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	free(name);
	if (imap_view_open(s, box, readonly, &error) < 0) {
		imap_session_log(s, LOG_ERROR, "select: %s", error);
		imap_cmd_finish(s, "NO", "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	v = s->view;
	imap_session_set_state(s, IMAP_STATE_SELECTED);
	for (size_t i = 0; i < v->count && unseen < 0; i++)
		if (!(v->msgs[i].flags & STORE_FLAG_SEEN))
			unseen = (long)i + 1;
	imap_reply(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	imap_reply(s, "* OK [PERMANENTFLAGS (%s)] Flags permitted",
		   readonly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*");
	imap_reply(s, "* %zu EXISTS", v->count);
	if (s->rev2) {
		/* RFC 9051 6.3.2: no RECENT or UNSEEN; a LIST response
		 * names the mailbox as the server knows it. */
		struct buf line;

		buf_init(&line);
		if (buf_append_str(&line, "* LIST () \"/\" ") < 0)
			log_fatal("out of memory");
		imap_name_out(s, box->name, &line);
		imap_reply(s, "%s", buf_cstr(&line));
		buf_free(&line);
	} else {
		imap_reply(s, "* 0 RECENT");
		if (unseen > 0)
			imap_reply(s, "* OK [UNSEEN %ld] First unseen", unseen);
	}
	imap_reply(s, "* OK [UIDVALIDITY %u] UIDs valid", v->uidvalidity);
	imap_reply(s, "* OK [UIDNEXT %u] Predicted next UID", v->uidnext);
	imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->highestmodseq);
	imap_cmd_finish(s, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
			s->cmd_def->name);
}

void imap_cmd_select(struct imap_session *s, struct imap_args *args)
{
	imap_select_common(s, args, 0);
}

void imap_cmd_examine(struct imap_session *s, struct imap_args *args)
{
	imap_select_common(s, args, 1);
}

void imap_cmd_check(struct imap_session *s, struct imap_args *args)
{
	imap_cmd_finish(s, "OK", "CHECK completed");
}

void imap_cmd_unselect(struct imap_session *s, struct imap_args *args)
{
	if (args->count != 0) {
		imap_cmd_finish(s, "BAD", "UNSELECT takes no arguments");
		return;
	}
	imap_view_close(s);
	imap_session_set_state(s, IMAP_STATE_AUTH);
	imap_cmd_finish(s, "OK", "UNSELECT completed");
}

static int imap_expunge_op(struct imap_write *w, const char **error_r)
{
	return w->store->backend->message_expunge(w->store, w->mailbox_id, w->uids, w->count,
						  error_r);
}

/* CLOSE: removed silently. */
static void imap_close_done(struct imap_session *s, struct imap_write *w)
{
	if (!s->dead) {
		if (w->result == 0 && w->count > 0)
			imap_session_changed(s, w->mailbox_id);
		imap_view_close(s);
		imap_session_set_state(s, IMAP_STATE_AUTH);
		if (w->result < 0)
			imap_cmd_finish(s, "NO", "[SERVERBUG] Expunge failed");
		else
			imap_cmd_finish(s, "OK", "CLOSE completed");
	}
	imap_write_free(&w);
}

static void imap_expunge_done(struct imap_session *s, struct imap_write *w)
{
	if (!s->dead && w->result == 0) {
		/* Highest first, so that the numbers sent stay valid. */
		for (size_t i = w->count; i-- > 0;) {
			long idx = imap_view_find(s->view, w->uids[i]);

			if (idx < 0)
				continue;
			imap_view_remove(s, (size_t)idx);
			imap_reply(s, "* %ld EXPUNGE", idx + 1);
		}
		if (w->count > 0)
			imap_session_changed(s, w->mailbox_id);
		imap_cmd_finish(s, "OK", "EXPUNGE completed");
	} else if (!s->dead) {
		imap_cmd_finish(s, "NO", "[SERVERBUG] Expunge failed");
	}
	imap_write_free(&w);
}

/* The \Deleted messages (of SET when given) as a write job. */
static struct imap_write *imap_expunge_prepare(struct imap_session *s, const size_t *idx,
					       size_t n, imap_write_done *done)
{
	struct imap_write *w = imap_write_new(s, imap_expunge_op, done);
	const struct imap_view *v = s->view;
	size_t count = idx != NULL ? n : v->count;

	w->mailbox_id = v->id;
	w->uids = xcalloc(count ? count : 1, sizeof(*w->uids));
	for (size_t i = 0; i < count; i++) {
		const struct imap_msg *m = &v->msgs[idx != NULL ? idx[i] : i];

		if (m->flags & STORE_FLAG_DELETED)
			w->uids[w->count++] = m->uid;
	}
	return w;
}

void imap_cmd_close(struct imap_session *s, struct imap_args *args)
{
	if (args->count != 0) {
		imap_cmd_finish(s, "BAD", "CLOSE takes no arguments");
		return;
	}
	if (s->view->readonly) {
		imap_view_close(s);
		imap_session_set_state(s, IMAP_STATE_AUTH);
		imap_cmd_finish(s, "OK", "CLOSE completed");
		return;
	}
	imap_write_run(s, imap_expunge_prepare(s, NULL, 0, imap_close_done));
}

void imap_cmd_expunge(struct imap_session *s, struct imap_args *args)
{
	size_t *idx = NULL, n = 0;
	const char *error;

	if (args->count != (s->uid_cmd ? 1u : 0u)) {
		imap_cmd_finish(s, "BAD", s->uid_cmd ? "Usage: UID EXPUNGE set" : "Usage: EXPUNGE");
		return;
	}
	if (s->view->readonly) {
		imap_cmd_finish(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (s->uid_cmd && imap_view_set(s, imap_arg_string(&args->list[0]), 1, &idx, &n,
					&error) < 0) {
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	imap_write_run(s, imap_expunge_prepare(s, s->uid_cmd ? idx : NULL, n, imap_expunge_done));
	free(idx);
}

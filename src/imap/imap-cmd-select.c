/* imap-cmd-select.c — SELECT, EXAMINE (with CONDSTORE and QRESYNC
 * parameters, RFC 7162), CHECK, CLOSE, UNSELECT (RFC 3691) and EXPUNGE /
 * UID EXPUNGE (RFC 4315).
 *
 * Trust boundary: selecting reads the index fields only (no sealed byte).
 * An expunge removes the messages and, through the store, the ciphertext of
 * records no other message shares. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

/* The QRESYNC select parameter (RFC 7162 3.2.5). */
struct imap_qresync {
	int set;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;
	int has_known;
};

/* A positive decimal number of at most MAX; 0 when invalid. */
static uint64_t imap_number(const struct imap_arg *a, uint64_t max)
{
	const char *p = a != NULL && a->type == IMAP_ARG_ATOM ? a->str : NULL;
	uint64_t n = 0;

	if (p == NULL || *p == '\0')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > (max - (uint64_t)(*p - '0')) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	return n;
}

/* "(uidvalidity modseq [known-uids] [(known-seqs known-uids)])" */
static int imap_qresync_parse(const struct imap_arg *a, struct imap_qresync *q)
{
	const char *error;
	size_t i = 2;

	if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 4)
		return -1;
	q->uidvalidity = (uint32_t)imap_number(&a->list[0], UINT32_MAX);
	q->modseq = imap_number(&a->list[1], INT64_MAX);
	if (q->uidvalidity == 0 || q->modseq == 0)
		return -1;
	if (i < a->count && a->list[i].type == IMAP_ARG_ATOM) {
		if (imap_seqset_parse(a->list[i].str, UINT32_MAX, &q->known, &error) < 0)
			return -1;
		q->has_known = 1;
		i++;
	}
	if (i < a->count) {
		/* seq-match-data: checked, not needed (the store keeps
		 * tombstones, or every gap is reported). */
		const struct imap_arg *m = &a->list[i];
		struct imap_seqset x;

		if (m->type != IMAP_ARG_LIST || m->count != 2 || i + 1 != a->count)
			return -1;
		for (size_t k = 0; k < 2; k++) {
			if (m->list[k].type != IMAP_ARG_ATOM ||
			    imap_seqset_parse(m->list[k].str, UINT32_MAX, &x, &error) < 0)
				return -1;
			imap_seqset_free(&x);
		}
	}
	return 0;
}

/* "(CONDSTORE)", "(QRESYNC (...))" or both. */
static int imap_select_params(struct imap_session *s, const struct imap_arg *a, int *condstore_r,
			      struct imap_qresync *q)
{
	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return -1;
	for (size_t i = 0; i < a->count; i++) {
		if (imap_arg_is_atom(&a->list[i], "CONDSTORE")) {
			*condstore_r = 1;
		} else if (imap_arg_is_atom(&a->list[i], "QRESYNC") && !q->set &&
			   i + 1 < a->count) {
			/* RFC 7162 3.2.5: BAD unless QRESYNC was enabled. */
			if (!s->qresync || imap_qresync_parse(&a->list[++i], q) < 0)
				return -1;
			q->set = 1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* What changed since the client's state: VANISHED (EARLIER), then FETCH
 * FLAGS MODSEQ for each message changed after the modseq. */
static void imap_select_qresync(struct imap_session *s, const struct imap_qresync *q)
{
	const struct imap_view *v = s->view;
	const char *error;

	if (q->uidvalidity != v->uidvalidity)
		return; /* the client must start over */
	if (imap_view_vanished_earlier(s, q->modseq, q->has_known ? &q->known : NULL, UINT32_MAX,
				       &error) < 0)
		imap_session_log(s, LOG_ERROR, "qresync: %s", error);
	for (size_t i = 0; i < v->count; i++) {
		const struct imap_msg *m = &v->msgs[i];
		struct buf fl;

		if (m->modseq <= q->modseq)
			continue;
		buf_init(&fl);
		imap_flags_format(m->flags, m->keywords, &fl);
		imap_reply(s, "* %zu FETCH (UID %u FLAGS (%s) MODSEQ (%llu))", i + 1, m->uid,
			   buf_cstr(&fl), (unsigned long long)m->modseq);
		buf_free(&fl);
	}
}

static void imap_select_common(struct imap_session *s, struct imap_args *args, int readonly)
{
	const struct imap_mbox *box;
	const struct imap_view *v;
	struct imap_qresync q;
	const char *error;
	char *name;
	long unseen = -1;
	int condstore = 0;

	memset(&q, 0, sizeof(q));
	if (args->count < 1 || args->count > 2 ||
	    (args->count == 2 && imap_select_params(s, &args->list[1], &condstore, &q) < 0)) {
		imap_seqset_free(&q.known);
		imap_cmd_finish(s, "BAD",
				"Usage: %s mailbox [(CONDSTORE | QRESYNC (uidvalidity modseq"
				" [known-uids] [(seqs uids)]))]",
				s->cmd_def->name);
		return;
	}
	if (condstore)
		s->condstore = 1;
	if (s->view != NULL) {
		imap_view_close(s);
		imap_session_set_state(s, IMAP_STATE_AUTH);
		imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if (imap_name_in(s, &args->list[0], &name, &error) < 0) {
		imap_seqset_free(&q.known);
		imap_cmd_finish(s, "NO", "%s", error);
		return;
	}
	if (imap_boxes_load(s, &error) < 0 || (box = imap_box_find(s, name)) == NULL) {
		free(name);
		imap_seqset_free(&q.known);
		imap_cmd_finish(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	free(name);
	if (imap_view_open(s, box, readonly, &error) < 0) {
		imap_seqset_free(&q.known);
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
	if (q.set)
		imap_select_qresync(s, &q);
	imap_seqset_free(&q.known);
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
		imap_view_expunged(s, w->uids, w->count);
		if (w->count > 0)
			imap_session_changed(s, w->mailbox_id);
		imap_cmd_finish(s, "OK", "EXPUNGE completed");
	} else if (!s->dead) {
		imap_cmd_finish(s, "NO", "[SERVERBUG] Expunge failed");
	}
	imap_write_free(&w);
}

/* The \Deleted messages (of SET when given) as a write job. */
static struct imap_write *imap_expunge_prepare(struct imap_session *s, const size_t *idx, size_t n,
					       imap_write_done *done)
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
	if (s->uid_cmd &&
	    imap_view_set(s, imap_arg_string(&args->list[0]), 1, &idx, &n, &error) < 0) {
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	imap_write_run(s, imap_expunge_prepare(s, s->uid_cmd ? idx : NULL, n, imap_expunge_done));
	free(idx);
}

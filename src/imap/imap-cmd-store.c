/* imap-cmd-store.c — STORE (with CONDSTORE's UNCHANGEDSINCE), COPY and MOVE
 * (RFC 6851), with UIDPLUS's COPYUID (RFC 4315).
 *
 * Trust boundary: flags and keywords are plaintext index fields by design
 * (store.h); keywords are validated atoms. COPY and MOVE share the sealed
 * record and metadata of the source: nothing is opened to copy. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct imap_store_cmd {
	size_t *idx;
	size_t count;
	int silent;
};

static int imap_store_op_cb(void *ctx, const struct store_message *m)
{
	struct imap_write *w = ctx;
	struct store_message *c = &w->changed[w->changed_count++];

	store_message_init(c);
	c->uid = m->uid;
	c->flags = m->flags;
	c->modseq = m->modseq;
	c->keywords = m->keywords != NULL ? xstrdup(m->keywords) : NULL;
	return 0;
}

static int imap_store_op(struct imap_write *w, const char **error_r)
{
	w->changed = xcalloc(w->count ? w->count : 1, sizeof(*w->changed));
	w->fu.uids = w->uids;
	w->fu.count = w->count;
	w->fu.keywords = w->keywords;
	return w->store->backend->message_set_flags(w->store, w->mailbox_id, &w->fu,
						    imap_store_op_cb, w, error_r);
}

static void imap_store_fetch_line(struct imap_session *s, size_t i)
{
	const struct imap_msg *m = &s->view->msgs[i];
	struct buf line;
	int ret;

	buf_init(&line);
	ret = buf_printf(&line, "* %zu FETCH (", i + 1);
	if (s->uid_cmd)
		ret |= buf_printf(&line, "UID %u ", m->uid);
	ret |= buf_append_str(&line, "FLAGS (");
	imap_flags_format(m->flags, m->keywords, &line);
	ret |= buf_append_str(&line, ")");
	if (s->condstore)
		ret |= buf_printf(&line, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	if (ret != 0)
		log_fatal("out of memory");
	imap_reply(s, "%s)", buf_cstr(&line));
	buf_free(&line);
}

static void imap_store_done(struct imap_session *s, struct imap_write *w)
{
	struct imap_store_cmd *c = w->cmd;
	struct buf modified;

	buf_init(&modified);
	if (!s->dead && w->result == 0) {
		uint32_t *failed = xcalloc(c->count + 1, sizeof(*failed));
		size_t nfailed = 0;

		for (size_t i = 0; i < w->changed_count; i++) {
			long idx = imap_view_find(s->view, w->changed[i].uid);
			struct imap_msg *m;

			if (idx < 0)
				continue;
			m = &s->view->msgs[idx];
			m->flags = w->changed[i].flags;
			m->modseq = w->changed[i].modseq;
			free(m->keywords);
			m->keywords =
			    w->changed[i].keywords ? xstrdup(w->changed[i].keywords) : NULL;
		}
		for (size_t i = 0; i < c->count; i++) {
			const struct imap_msg *m = &s->view->msgs[c->idx[i]];

			if (w->fu.unchanged_since != 0 && m->modseq > w->fu.unchanged_since) {
				failed[nfailed++] = s->uid_cmd ? m->uid : (uint32_t)c->idx[i] + 1;
				continue;
			}
			if (!c->silent || (s->condstore && w->fu.unchanged_since != 0))
				imap_store_fetch_line(s, c->idx[i]);
		}
		if (w->changed_count > 0)
			imap_session_changed(s, w->mailbox_id);
		if (nfailed > 0 && imap_seqset_format(failed, nfailed, &modified) < 0)
			log_fatal("out of memory");
		free(failed);
		if (modified.len > 0)
			imap_cmd_finish(s, "OK", "[MODIFIED %s] Conditional STORE failed",
					buf_cstr(&modified));
		else
			imap_cmd_finish(s, "OK", "STORE completed");
	} else if (!s->dead) {
		imap_cmd_finish(s, "NO", "[SERVERBUG] STORE failed");
	}
	buf_free(&modified);
	free(c->idx);
	free(c);
	imap_write_free(&w);
}

void imap_cmd_store(struct imap_session *s, struct imap_args *args)
{
	struct imap_store_cmd *c;
	struct imap_write *w;
	const char *error, *item;
	size_t a = 1, *idx = NULL, n = 0;
	uint64_t unchanged = 0;
	enum store_flag_mode mode;
	struct imap_arg flags_arg;
	uint32_t flags;
	char *keywords;
	int silent;

	if (args->count >= 2 && args->list[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &args->list[1];
		const char *v = m->count == 2 ? imap_arg_string(&m->list[1]) : NULL;
		char *end;

		if (v == NULL || !imap_arg_is_atom(&m->list[0], "UNCHANGEDSINCE") ||
		    (unchanged = strtoull(v, &end, 10)) == 0 || *end != '\0') {
			imap_cmd_finish(s, "BAD", "Invalid STORE modifier");
			return;
		}
		s->condstore = 1;
		a++;
	}
	if (args->count < a + 2 || (item = imap_arg_string(&args->list[a])) == NULL) {
		imap_cmd_finish(s, "BAD", "Usage: STORE set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	mode = item[0] == '+'   ? STORE_FLAGS_ADD
	       : item[0] == '-' ? STORE_FLAGS_REMOVE
				: STORE_FLAGS_SET;
	if (mode != STORE_FLAGS_SET)
		item++;
	silent = strcasecmp(item, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(item, "FLAGS") != 0) {
		imap_cmd_finish(s, "BAD", "Invalid STORE item");
		return;
	}
	/* "(\Seen \Deleted)" or "\Seen \Deleted" */
	memset(&flags_arg, 0, sizeof(flags_arg));
	flags_arg.type = IMAP_ARG_LIST;
	flags_arg.list = &args->list[a + 1];
	flags_arg.count = args->count - a - 1;
	if (imap_flags_parse(flags_arg.count == 1 ? &args->list[a + 1] : &flags_arg, &flags,
			     &keywords, &error) < 0) {
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	if (s->view->readonly) {
		free(keywords);
		imap_cmd_finish(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_view_set(s, imap_arg_string(&args->list[0]), s->uid_cmd, &idx, &n, &error) < 0) {
		free(keywords);
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	w = imap_write_new(s, imap_store_op, imap_store_done);
	w->mailbox_id = s->view->id;
	w->uids = xcalloc(n ? n : 1, sizeof(*w->uids));
	for (size_t i = 0; i < n; i++)
		w->uids[w->count++] = s->view->msgs[idx[i]].uid;
	w->fu.mode = mode;
	w->fu.flags = flags;
	w->fu.unchanged_since = unchanged;
	w->keywords = keywords;
	c = xcalloc(1, sizeof(*c));
	c->idx = idx;
	c->count = n;
	c->silent = silent;
	w->cmd = c;
	imap_write_run(s, w);
}

/* ---- COPY and MOVE ----------------------------------------------------------- */

static int imap_copy_op(struct imap_write *w, const char **error_r)
{
	w->dst_uids = xcalloc(w->count ? w->count : 1, sizeof(*w->dst_uids));
	return w->store->backend->message_copy(w->store, w->mailbox_id, w->uids, w->count,
					       w->dst_id, w->move, w->dst_uids, error_r);
}

static void imap_copy_done(struct imap_session *s, struct imap_write *w)
{
	const uint32_t *validity = w->cmd;
	struct buf src, dst;

	buf_init(&src);
	buf_init(&dst);
	if (!s->dead && w->result == 0) {
		uint32_t *from = xcalloc(w->count + 1, sizeof(*from));
		uint32_t *to = xcalloc(w->count + 1, sizeof(*to));
		size_t n = 0;

		for (size_t i = 0; i < w->count; i++) {
			if (w->dst_uids[i] == 0)
				continue;
			from[n] = w->uids[i];
			to[n++] = w->dst_uids[i];
		}
		if (imap_seqset_format(from, n, &src) < 0 || imap_seqset_format(to, n, &dst) < 0)
			log_fatal("out of memory");
		free(to);
		imap_session_changed(s, w->dst_id);
		if (w->move && n > 0) {
			imap_reply(s, "* OK [COPYUID %u %s %s] Moved", *validity, buf_cstr(&src),
				   buf_cstr(&dst));
			imap_view_expunged(s, from, n);
			imap_session_changed(s, w->mailbox_id);
			imap_cmd_finish(s, "OK", "MOVE completed");
		} else if (n > 0) {
			imap_cmd_finish(s, "OK", "[COPYUID %u %s %s] COPY completed", *validity,
					buf_cstr(&src), buf_cstr(&dst));
		} else {
			imap_cmd_finish(s, "OK", "%s completed", w->move ? "MOVE" : "COPY");
		}
		free(from);
	} else if (!s->dead) {
		imap_cmd_finish(s, "NO", "[SERVERBUG] %s failed", w->move ? "MOVE" : "COPY");
	}
	buf_free(&src);
	buf_free(&dst);
	free(w->cmd);
	imap_write_free(&w);
}

static void imap_copy_common(struct imap_session *s, struct imap_args *args, int move)
{
	const struct imap_mbox *box;
	struct imap_write *w;
	const char *error;
	size_t *idx = NULL, n = 0;
	uint32_t *validity;
	char *name;

	if (args->count != 2) {
		imap_cmd_finish(s, "BAD", "Usage: %s set mailbox", move ? "MOVE" : "COPY");
		return;
	}
	if (imap_view_set(s, imap_arg_string(&args->list[0]), s->uid_cmd, &idx, &n, &error) < 0) {
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	if (imap_name_in(s, &args->list[1], &name, &error) < 0) {
		free(idx);
		imap_cmd_finish(s, "NO", "%s", error);
		return;
	}
	if (imap_boxes_load(s, &error) < 0 || (box = imap_box_find(s, name)) == NULL) {
		free(idx);
		free(name);
		imap_cmd_finish(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	free(name);
	if (move && s->view->readonly) {
		free(idx);
		imap_cmd_finish(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	w = imap_write_new(s, imap_copy_op, imap_copy_done);
	w->mailbox_id = s->view->id;
	w->dst_id = box->id;
	w->move = move;
	w->uids = xcalloc(n ? n : 1, sizeof(*w->uids));
	for (size_t i = 0; i < n; i++)
		w->uids[w->count++] = s->view->msgs[idx[i]].uid;
	free(idx);
	validity = xmalloc(sizeof(*validity));
	*validity = box->uidvalidity;
	w->cmd = validity;
	imap_write_run(s, w);
}

void imap_cmd_copy(struct imap_session *s, struct imap_args *args)
{
	imap_copy_common(s, args, 0);
}

void imap_cmd_move(struct imap_session *s, struct imap_args *args)
{
	imap_copy_common(s, args, 1);
}

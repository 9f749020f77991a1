/* imap-cmd-list.c — LIST (with the LIST-EXTENDED selection and return
 * options that SPECIAL-USE and LIST-STATUS need), LSUB and STATUS.
 *
 * Trust boundary: patterns come from the client and are matched against
 * the account's own opened names only, by a matcher without backtracking
 * (time bounded by pattern length times name length). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAP_LIST_RET_SUBSCRIBED (1u << 0)
#define IMAP_LIST_RET_STATUS     (1u << 1)
#define IMAP_LIST_SEL_SUBSCRIBED (1u << 2)
#define IMAP_LIST_SEL_SPECIAL    (1u << 3)
#define IMAP_LIST_LSUB           (1u << 4)

/* Glob match with '*' (anything) and '%' (anything but '/'): a row of the
 * classic dynamic programme, O(pattern x name), no backtracking. */
static int imap_match(const char *pat, const char *name)
{
	size_t n = strlen(name);
	uint8_t *dp = xcalloc(n + 1, 1), *next = xcalloc(n + 1, 1), *t;
	int ret;

	dp[0] = 1;
	for (; *pat != '\0'; pat++) {
		if (*pat == '*') {
			next[0] = dp[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = next[j - 1] || dp[j];
		} else if (*pat == '%') {
			next[0] = dp[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = dp[j] || (next[j - 1] && name[j - 1] != '/');
		} else {
			next[0] = 0;
			for (size_t j = 1; j <= n; j++)
				next[j] = dp[j - 1] && name[j - 1] == *pat;
		}
		t = dp;
		dp = next;
		next = t;
	}
	ret = dp[n];
	free(dp);
	free(next);
	return ret;
}

static const char *imap_role_attr(enum store_role role)
{
	switch (role) {
	case STORE_ROLE_SENT:
		return " \\Sent";
	case STORE_ROLE_DRAFTS:
		return " \\Drafts";
	case STORE_ROLE_TRASH:
		return " \\Trash";
	case STORE_ROLE_JUNK:
		return " \\Junk";
	case STORE_ROLE_ARCHIVE:
		return " \\Archive";
	default:
		return "";
	}
}

static int imap_has_children(struct imap_session *s, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < s->box_count; i++)
		if (strncmp(s->boxes[i].name, name, len) == 0 && s->boxes[i].name[len] == '/')
			return 1;
	return 0;
}

struct imap_status_count {
	uint32_t unseen, deleted;
	uint64_t size;
};

static int imap_status_count_cb(void *ctx, const struct store_message *m)
{
	struct imap_status_count *c = ctx;

	if (!(m->flags & STORE_FLAG_SEEN))
		c->unseen++;
	if (m->flags & STORE_FLAG_DELETED)
		c->deleted++;
	c->size += m->size;
	return 0;
}

int imap_status_format(struct imap_session *s, const struct imap_mbox *box,
		       const struct imap_arg *items, struct buf *out, const char **error_r)
{
	struct imap_status_count c = {0, 0, 0};
	int counted = 0, ret = 0;

	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		*error_r = "Invalid status items";
		return -1;
	}
	for (size_t i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];
		const char *sep = i ? " " : "";

		if ((imap_arg_is_atom(a, "UNSEEN") || imap_arg_is_atom(a, "SIZE") ||
		     imap_arg_is_atom(a, "DELETED")) &&
		    !counted) {
			if (s->store->backend->message_scan(s->store, box->id, 1, UINT32_MAX, 0, 0,
							    imap_status_count_cb, &c, error_r) < 0)
				return -1;
			counted = 1;
		}
		if (imap_arg_is_atom(a, "MESSAGES"))
			ret |= buf_printf(out, "%sMESSAGES %u", sep, box->messages);
		else if (imap_arg_is_atom(a, "RECENT"))
			ret |= buf_printf(out, "%sRECENT 0", sep);
		else if (imap_arg_is_atom(a, "UIDNEXT"))
			ret |= buf_printf(out, "%sUIDNEXT %u", sep, box->uidnext);
		else if (imap_arg_is_atom(a, "UIDVALIDITY"))
			ret |= buf_printf(out, "%sUIDVALIDITY %u", sep, box->uidvalidity);
		else if (imap_arg_is_atom(a, "UNSEEN"))
			ret |= buf_printf(out, "%sUNSEEN %u", sep, c.unseen);
		else if (imap_arg_is_atom(a, "DELETED"))
			ret |= buf_printf(out, "%sDELETED %u", sep, c.deleted);
		else if (imap_arg_is_atom(a, "SIZE"))
			ret |= buf_printf(out, "%sSIZE %llu", sep, (unsigned long long)c.size);
		else if (imap_arg_is_atom(a, "HIGHESTMODSEQ"))
			ret |= buf_printf(out, "%sHIGHESTMODSEQ %llu", sep,
					  (unsigned long long)box->highestmodseq);
		else {
			*error_r = "Unknown status item";
			return -1;
		}
	}
	if (ret != 0)
		log_fatal("out of memory");
	return 0;
}

static void imap_list_line(struct imap_session *s, const char *name, const char *attrs,
			   unsigned opts, const struct imap_arg *status_items,
			   const struct imap_mbox *box)
{
	struct buf line;
	const char *error;

	buf_init(&line);
	if (buf_printf(&line, "* %s (%s) \"/\" ", opts & IMAP_LIST_LSUB ? "LSUB" : "LIST", attrs) <
	    0)
		log_fatal("out of memory");
	imap_name_out(s, name, &line);
	imap_reply(s, "%s", buf_cstr(&line));
	if (box != NULL && (opts & IMAP_LIST_RET_STATUS)) {
		buf_reset(&line);
		if (buf_append_str(&line, "* STATUS ") < 0)
			log_fatal("out of memory");
		imap_name_out(s, name, &line);
		if (buf_append_str(&line, " (") < 0)
			log_fatal("out of memory");
		if (imap_status_format(s, box, status_items, &line, &error) == 0)
			imap_reply(s, "%s)", buf_cstr(&line));
	}
	buf_free(&line);
}

static void imap_list_run(struct imap_session *s, const char *pattern, unsigned opts,
			  const struct imap_arg *status_items)
{
	struct buf attrs;

	buf_init(&attrs);
	for (size_t i = 0; i < s->box_count; i++) {
		const struct imap_mbox *b = &s->boxes[i];
		int children = imap_has_children(s, b->name);

		if (!imap_match(pattern, b->name)) {
			continue;
		}
		if ((opts & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_LSUB)) && !b->subscribed)
			continue;
		if ((opts & IMAP_LIST_SEL_SPECIAL) && b->role <= STORE_ROLE_INBOX)
			continue;
		buf_reset(&attrs);
		if (buf_printf(&attrs, "%s%s%s", children ? "\\HasChildren" : "\\HasNoChildren",
			       (opts & (IMAP_LIST_RET_SUBSCRIBED | IMAP_LIST_SEL_SUBSCRIBED)) &&
				       b->subscribed
				   ? " \\Subscribed"
				   : "",
			       imap_role_attr(b->role)) < 0)
			log_fatal("out of memory");
		imap_list_line(s, b->name, buf_cstr(&attrs), opts, status_items, b);
	}
	/* Parents that are not mailboxes themselves, for '%' patterns. */
	if (!(opts & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL | IMAP_LIST_LSUB))) {
		for (size_t i = 0; i < s->box_count; i++) {
			char *n = xstrdup(s->boxes[i].name), *slash;

			while ((slash = strrchr(n, '/')) != NULL) {
				int dup = 0;

				*slash = '\0';
				if (imap_box_find(s, n) != NULL || !imap_match(pattern, n))
					continue;
				for (size_t j = 0; j < i && !dup; j++)
					dup = strncmp(s->boxes[j].name, n, strlen(n)) == 0 &&
					      s->boxes[j].name[strlen(n)] == '/';
				/* IMAP4rev2 (LIST-EXTENDED): \NonExistent
				 * implies \Noselect. */
				if (!dup)
					imap_list_line(s, n,
						       s->rev2 ? "\\NonExistent \\HasChildren"
							       : "\\Noselect \\HasChildren",
						       opts, NULL, NULL);
			}
			free(n);
		}
	}
	buf_free(&attrs);
}

static void imap_list_common(struct imap_session *s, struct imap_args *args, unsigned opts)
{
	const struct imap_arg *status_items = NULL, *patterns;
	const char *ref, *error;
	size_t i = 0;

	if (args->count > 0 && args->list[0].type == IMAP_ARG_LIST && !(opts & IMAP_LIST_LSUB)) {
		for (size_t j = 0; j < args->list[0].count; j++) {
			if (imap_arg_is_atom(&args->list[0].list[j], "SUBSCRIBED"))
				opts |= IMAP_LIST_SEL_SUBSCRIBED;
			else if (imap_arg_is_atom(&args->list[0].list[j], "SPECIAL-USE"))
				opts |= IMAP_LIST_SEL_SPECIAL;
		}
		i++;
	}
	if (args->count < i + 2 || (ref = imap_arg_string(&args->list[i])) == NULL) {
		imap_cmd_finish(s, "BAD", "Usage: LIST reference pattern");
		return;
	}
	patterns = &args->list[i + 1];
	if (args->count > i + 2) {
		const struct imap_arg *ret = &args->list[i + 3];

		if (args->count != i + 4 || !imap_arg_is_atom(&args->list[i + 2], "RETURN") ||
		    ret->type != IMAP_ARG_LIST) {
			imap_cmd_finish(s, "BAD", "Invalid LIST options");
			return;
		}
		for (size_t j = 0; j < ret->count; j++) {
			if (imap_arg_is_atom(&ret->list[j], "SUBSCRIBED"))
				opts |= IMAP_LIST_RET_SUBSCRIBED;
			else if (imap_arg_is_atom(&ret->list[j], "STATUS") && j + 1 < ret->count &&
				 ret->list[j + 1].type == IMAP_ARG_LIST)
				opts |= IMAP_LIST_RET_STATUS, status_items = &ret->list[++j];
		}
	}
	if (imap_boxes_load(s, &error) < 0) {
		imap_cmd_finish(s, "NO", "[SERVERBUG] Cannot list mailboxes");
		return;
	}
	for (size_t p = 0; p < (patterns->type == IMAP_ARG_LIST ? patterns->count : 1); p++) {
		const char *pat = imap_arg_string(
		    patterns->type == IMAP_ARG_LIST ? &patterns->list[p] : patterns);
		struct buf full, utf8;

		if (pat == NULL) {
			imap_cmd_finish(s, "BAD", "Invalid pattern");
			return;
		}
		if (pat[0] == '\0' && !(opts & IMAP_LIST_LSUB)) {
			imap_reply(s, "* LIST (\\Noselect) \"/\" \"\"");
			continue;
		}
		buf_init(&full);
		buf_init(&utf8);
		if (buf_printf(&full, "%s%s", pat[0] == '/' ? "" : ref, pat) < 0)
			log_fatal("out of memory");
		if (s->utf8 ? buf_append_str(&utf8, buf_cstr(&full)) == 0
			    : imap_utf7_to_utf8(buf_cstr(&full), &utf8) == 0) {
			char *u = (char *)buf_cstr(&utf8);

			if (strncasecmp(u, "INBOX", 5) == 0 && (u[5] == '\0' || u[5] == '/'))
				memcpy(u, "INBOX", 5);
			imap_list_run(s, u, opts, status_items);
		}
		buf_free(&full);
		buf_free(&utf8);
	}
	imap_cmd_finish(s, "OK", "%s completed", opts & IMAP_LIST_LSUB ? "LSUB" : "LIST");
}

void imap_cmd_list(struct imap_session *s, struct imap_args *args)
{
	imap_list_common(s, args, 0);
}

void imap_cmd_lsub(struct imap_session *s, struct imap_args *args)
{
	imap_list_common(s, args, IMAP_LIST_LSUB);
}

void imap_cmd_status(struct imap_session *s, struct imap_args *args)
{
	const struct imap_mbox *box;
	const char *error;
	struct buf line;
	char *name;

	if (args->count != 2) {
		imap_cmd_finish(s, "BAD", "Usage: STATUS mailbox (items)");
		return;
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
	buf_init(&line);
	if (buf_append_str(&line, "* STATUS ") < 0)
		log_fatal("out of memory");
	imap_name_out(s, name, &line);
	free(name);
	if (buf_append_str(&line, " (") < 0)
		log_fatal("out of memory");
	if (imap_status_format(s, box, &args->list[1], &line, &error) < 0) {
		buf_free(&line);
		imap_cmd_finish(s, "BAD", "%s", error);
		return;
	}
	imap_reply(s, "%s)", buf_cstr(&line));
	buf_free(&line);
	imap_cmd_finish(s, "OK", "STATUS completed");
}

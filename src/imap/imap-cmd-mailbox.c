/* imap-cmd-mailbox.c — CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.
 *
 * Trust boundary: mailbox names from the client are checked
 * (imap_mailbox_name_check) and sealed to the account key before they reach
 * the store; the store never sees a name in the clear. INBOX cannot be
 * created, deleted or renamed. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

/* Reloads the table and resolves ARG; finishes the command on error. */
static int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char **name_r)
{
	const char *error;

	if (imap_name_in(s, arg, name_r, &error) < 0) {
		imap_cmd_finish(s, "NO", "%s", error);
		return -1;
	}
	if (imap_boxes_load(s, &error) < 0) {
		imap_session_log(s, LOG_ERROR, "mailbox list: %s", error);
		free(*name_r);
		imap_cmd_finish(s, "NO", "[SERVERBUG] Cannot list mailboxes");
		return -1;
	}
	return 0;
}

static void imap_mailbox_done(struct imap_session *s, struct imap_write *w)
{
	if (!s->dead) {
		if (w->result < 0)
			imap_cmd_finish(s, "NO", "[SERVERBUG] %s failed", s->cmd_def->name);
		else
			imap_cmd_finish(s, "OK", "%s completed", s->cmd_def->name);
	}
	imap_write_free(&w);
}

static int imap_create_op(struct imap_write *w, const char **error_r)
{
	return w->store->backend->mailbox_create(w->store, w->account_id, STORE_ROLE_NONE,
						 &w->name_sealed, NULL, error_r);
}

void imap_cmd_create(struct imap_session *s, struct imap_args *args)
{
	struct imap_write *w;
	const char *error;
	char *name;
	size_t len;

	if (args->count != 1) {
		imap_cmd_finish(s, "BAD", "Usage: CREATE mailbox");
		return;
	}
	/* A trailing separator only declares the intent to have children. */
	if (args->list[0].type != IMAP_ARG_LIST && args->list[0].len > 1 &&
	    args->list[0].str[args->list[0].len - 1] == '/')
		args->list[0].str[--args->list[0].len] = '\0';
	if (imap_mailbox_arg(s, &args->list[0], &name) < 0)
		return;
	len = strlen(name);
	if (imap_box_find(s, name) != NULL || strcmp(name, "INBOX") == 0) {
		free(name);
		imap_cmd_finish(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		return;
	}
	w = imap_write_new(s, imap_create_op, imap_mailbox_done);
	if (len > IMAP_MAILBOX_NAME_MAX ||
	    imap_box_seal_name(s, name, &w->name_sealed, &error) < 0) {
		free(name);
		imap_write_free(&w);
		imap_cmd_finish(s, "NO", "Cannot create the mailbox");
		return;
	}
	free(name);
	imap_write_run(s, w);
}

static int imap_delete_op(struct imap_write *w, const char **error_r)
{
	return w->store->backend->mailbox_delete(w->store, w->account_id, w->mailbox_id, error_r);
}

static void imap_delete_done(struct imap_session *s, struct imap_write *w)
{
	if (!s->dead && w->result == 0) {
		if (s->view != NULL && s->view->id == w->mailbox_id) {
			imap_view_close(s);
			imap_session_set_state(s, IMAP_STATE_AUTH);
		}
		imap_session_changed(s, w->mailbox_id);
	}
	imap_mailbox_done(s, w);
}

void imap_cmd_delete(struct imap_session *s, struct imap_args *args)
{
	struct imap_mbox *box;
	struct imap_write *w;
	char *name;

	if (args->count != 1) {
		imap_cmd_finish(s, "BAD", "Usage: DELETE mailbox");
		return;
	}
	if (imap_mailbox_arg(s, &args->list[0], &name) < 0)
		return;
	box = imap_box_find(s, name);
	free(name);
	if (box == NULL) {
		imap_cmd_finish(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	if (box->role == STORE_ROLE_INBOX) {
		imap_cmd_finish(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	w = imap_write_new(s, imap_delete_op, imap_delete_done);
	w->mailbox_id = box->id;
	imap_write_run(s, w);
}

/* A rename moves the children along: one new sealed name per mailbox. */
struct imap_rename {
	size_t count;
	uint64_t *ids;
	struct buf *names;
};

static int imap_rename_op(struct imap_write *w, const char **error_r)
{
	struct imap_rename *r = w->cmd;

	for (size_t i = 0; i < r->count; i++)
		if (w->store->backend->mailbox_update(w->store, w->account_id, r->ids[i],
						      &r->names[i], -1, error_r) < 0)
			return -1;
	return 0;
}

static void imap_rename_done(struct imap_session *s, struct imap_write *w)
{
	struct imap_rename *r = w->cmd;

	for (size_t i = 0; i < r->count; i++)
		buf_free(&r->names[i]);
	free(r->names);
	free(r->ids);
	free(r);
	w->cmd = NULL;
	imap_mailbox_done(s, w);
}

void imap_cmd_rename(struct imap_session *s, struct imap_args *args)
{
	char *from = NULL, *to = NULL;
	struct imap_rename *r = NULL;
	struct imap_write *w;
	const char *error;
	size_t flen;

	if (args->count != 2) {
		imap_cmd_finish(s, "BAD", "Usage: RENAME from to");
		return;
	}
	if (imap_mailbox_arg(s, &args->list[0], &from) < 0)
		return;
	if (imap_name_in(s, &args->list[1], &to, &error) < 0) {
		free(from);
		imap_cmd_finish(s, "NO", "%s", error);
		return;
	}
	flen = strlen(from);
	if (imap_box_find(s, from) == NULL) {
		imap_cmd_finish(s, "NO", "[NONEXISTENT] No such mailbox");
		goto out;
	}
	if (strcmp(from, "INBOX") == 0 || strncmp(to, "INBOX", 5) == 0) {
		imap_cmd_finish(s, "NO", "[CANNOT] INBOX cannot be renamed");
		goto out;
	}
	if (imap_box_find(s, to) != NULL) {
		imap_cmd_finish(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		goto out;
	}
	if (strncmp(to, from, flen) == 0 && to[flen] == '/') {
		imap_cmd_finish(s, "NO", "[CANNOT] Cannot move a mailbox into itself");
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	r->ids = xcalloc(s->box_count, sizeof(*r->ids));
	r->names = xcalloc(s->box_count, sizeof(*r->names));
	for (size_t i = 0; i < s->box_count; i++) {
		const char *n = s->boxes[i].name;
		struct buf newname;

		if (strncmp(n, from, flen) != 0 || (n[flen] != '\0' && n[flen] != '/'))
			continue;
		buf_init(&newname);
		buf_init(&r->names[r->count]);
		if (buf_printf(&newname, "%s%s", to, n + flen) < 0)
			log_fatal("out of memory");
		if (newname.len > IMAP_MAILBOX_NAME_MAX ||
		    imap_box_seal_name(s, buf_cstr(&newname), &r->names[r->count], &error) < 0) {
			buf_free(&newname);
			for (size_t j = 0; j <= r->count; j++)
				buf_free(&r->names[j]);
			free(r->names);
			free(r->ids);
			free(r);
			imap_cmd_finish(s, "NO", "Cannot rename the mailbox");
			goto out;
		}
		buf_free(&newname);
		r->ids[r->count++] = s->boxes[i].id;
	}
	w = imap_write_new(s, imap_rename_op, imap_rename_done);
	w->cmd = r;
	imap_write_run(s, w);
out:
	free(from);
	free(to);
}

static int imap_subscribe_op(struct imap_write *w, const char **error_r)
{
	return w->store->backend->mailbox_update(w->store, w->account_id, w->mailbox_id, NULL,
						 w->subscribed, error_r);
}

static void imap_subscribe_common(struct imap_session *s, struct imap_args *args, int on)
{
	struct imap_mbox *box;
	struct imap_write *w;
	char *name;

	if (args->count != 1) {
		imap_cmd_finish(s, "BAD", "Usage: %s mailbox", s->cmd_def->name);
		return;
	}
	if (imap_mailbox_arg(s, &args->list[0], &name) < 0)
		return;
	box = imap_box_find(s, name);
	free(name);
	if (box == NULL) {
		if (on)
			imap_cmd_finish(s, "NO", "[NONEXISTENT] No such mailbox");
		else
			imap_cmd_finish(s, "OK", "UNSUBSCRIBE completed");
		return;
	}
	w = imap_write_new(s, imap_subscribe_op, imap_mailbox_done);
	w->mailbox_id = box->id;
	w->subscribed = on;
	imap_write_run(s, w);
}

void imap_cmd_subscribe(struct imap_session *s, struct imap_args *args)
{
	imap_subscribe_common(s, args, 1);
}

void imap_cmd_unsubscribe(struct imap_session *s, struct imap_args *args)
{
	imap_subscribe_common(s, args, 0);
}

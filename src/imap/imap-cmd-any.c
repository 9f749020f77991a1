/* imap-cmd-any.c — CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE
 * (RFC 5161: CONDSTORE, QRESYNC, UTF8=ACCEPT, IMAP4rev2), NAMESPACE (RFC 2342) and
 * IDLE (RFC 2177).
 *
 * Trust boundary: ID parameters from the client are parsed for syntax and
 * otherwise ignored (not logged: they may identify a person's device). */
#include "imap/imap-private.h"

#include <string.h>
#include <strings.h>

void imap_cmd_capability(struct imap_session *s, struct imap_args *args)
{
	struct buf caps;

	buf_init(&caps);
	imap_capabilities(s, &caps);
	imap_reply(s, "* CAPABILITY %s", buf_cstr(&caps));
	buf_free(&caps);
	imap_cmd_finish(s, "OK", "Capability completed");
}

void imap_cmd_noop(struct imap_session *s, struct imap_args *args)
{
	imap_cmd_finish(s, "OK", "NOOP completed");
}

void imap_cmd_logout(struct imap_session *s, struct imap_args *args)
{
	imap_reply(s, "* BYE Logging out");
	imap_reply(s, "%s OK Logout completed", s->tag);
	imap_session_close(s, NULL);
}

void imap_cmd_id(struct imap_session *s, struct imap_args *args)
{
	const struct imap_arg *a = args->count == 1 ? &args->list[0] : NULL;

	if (a == NULL || !(imap_arg_is_atom(a, "NIL") ||
			   (a->type == IMAP_ARG_LIST && a->count % 2 == 0 && a->count <= 60))) {
		imap_cmd_finish(s, "BAD", "Usage: ID NIL | ID (field value ...)");
		return;
	}
	imap_reply(s, "* ID (\"name\" \"sealmail\")");
	imap_cmd_finish(s, "OK", "ID completed");
}

void imap_cmd_enable(struct imap_session *s, struct imap_args *args)
{
	struct buf enabled;

	if (args->count == 0) {
		imap_cmd_finish(s, "BAD", "Usage: ENABLE capability ...");
		return;
	}
	buf_init(&enabled);
	for (size_t i = 0; i < args->count; i++) {
		const char *name = NULL;

		if (imap_arg_is_atom(&args->list[i], "CONDSTORE")) {
			s->condstore = 1;
			name = "CONDSTORE";
		} else if (imap_arg_is_atom(&args->list[i], "QRESYNC")) {
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE. */
			s->condstore = 1;
			s->qresync = 1;
			name = "QRESYNC";
		} else if (imap_arg_is_atom(&args->list[i], "UTF8=ACCEPT")) {
			s->utf8 = 1;
			name = "UTF8=ACCEPT";
		} else if (imap_arg_is_atom(&args->list[i], "IMAP4rev2")) {
			/* RFC 9051: UTF-8 mailbox names, ESEARCH answers, no
			 * \Recent. */
			s->rev2 = 1;
			s->utf8 = 1;
			name = "IMAP4rev2";
		}
		if (name != NULL && buf_printf(&enabled, " %s", name) < 0)
			log_fatal("out of memory");
	}
	imap_reply(s, "* ENABLED%s", buf_cstr(&enabled));
	buf_free(&enabled);
	imap_cmd_finish(s, "OK", "Enabled");
}

void imap_cmd_namespace(struct imap_session *s, struct imap_args *args)
{
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_cmd_finish(s, "OK", "Namespace completed");
}

static void imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->idling = 0;
	s->line_fn = NULL;
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_cmd_finish(s, "OK", "IDLE terminated");
	else
		imap_cmd_finish(s, "BAD", "Expected DONE");
}

void imap_cmd_idle(struct imap_session *s, struct imap_args *args)
{
	if (args->count != 0) {
		imap_cmd_finish(s, "BAD", "IDLE takes no arguments");
		return;
	}
	if (s->view != NULL)
		imap_view_sync(s, 1);
	s->notified = 0;
	imap_reply(s, "+ idling");
	s->idling = 1;
	s->line_fn = imap_idle_line;
	if (s->shutdown)
		imap_session_close(s, "Server shutting down");
}

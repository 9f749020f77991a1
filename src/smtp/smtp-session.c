/* smtp-session.c — one SMTP session as an explicit state machine.
 *
 * SECURITY
 *	The client is untrusted and may be hostile: it may pipeline anything,
 *	send binary garbage, NULs, lines of any length, or vanish at any
 *	moment. Input is handled one command at a time from a bounded buffer
 *	(lines over [smtp] max_command_line are skipped without being held),
 *	each command is checked against the command table for the current
 *	state before its arguments are parsed, and every client error counts
 *	towards [smtp] max_errors, after which the session is dropped with
 *	421. Mail is accepted only for local accounts; unknown recipients are
 *	answered after [smtp] unknown_user_delay_ms, and VRFY never says
 *	whether an account exists. Commands other than MAIL, RCPT, DATA and
 *	BDAT beyond [smtp] max_commands_per_second wait their turn; a client that stays over the
 *	rate for SMTP_RATE_EXCESS_SECS is dropped with 421 4.7.0. Every state
 *	change goes through
 *	smtp_session_enter_state(), which also sets the timeout for the state.
 *	Logs name the session id and client address only: never an envelope
 *	address, the EHLO name, a header or any message content. */
#include "smtp/smtp-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Seconds' worth of commands held back in a row after which the session
 * is closed with 421 (a client that never slows down). */
#define SMTP_RATE_EXCESS_SECS 5

#define SMTP_CMDF_NOARGS   (1u << 0) /* arguments are a syntax error */
#define SMTP_CMDF_NEEDARGS (1u << 1) /* no argument is a syntax error */
#define SMTP_CMDF_HELO     (1u << 2) /* needs EHLO/HELO first */

#define SMTP_CMD_STATES                                                                            \
	(SMTP_STATE_BIT(SMTP_STATE_INIT) | SMTP_STATE_BIT(SMTP_STATE_HELO) |                       \
	 SMTP_STATE_BIT(SMTP_STATE_MAIL) | SMTP_STATE_BIT(SMTP_STATE_RCPT) |                       \
	 SMTP_STATE_BIT(SMTP_STATE_CHUNK))

struct smtp_cmd {
	const char *name;
	unsigned states; /* SMTP_STATE_BIT()s where it is allowed */
	unsigned flags;  /* SMTP_CMDF_* */
	const char *out_of_sequence;
	void (*handler)(struct smtp_session *s, const char *args);
};

static const char *const smtp_state_names[SMTP_STATE_COUNT] = {
    [SMTP_STATE_INIT] = "INIT",   [SMTP_STATE_HELO] = "HELO",     [SMTP_STATE_MAIL] = "MAIL",
    [SMTP_STATE_RCPT] = "RCPT",   [SMTP_STATE_DATA] = "DATA",     [SMTP_STATE_BDAT] = "BDAT",
    [SMTP_STATE_CHUNK] = "CHUNK", [SMTP_STATE_COMMIT] = "COMMIT", [SMTP_STATE_TLS] = "TLS",
    [SMTP_STATE_QUIT] = "QUIT",
};

const char *smtp_state_name(enum smtp_state state)
{
	return state < SMTP_STATE_COUNT ? smtp_state_names[state] : "?";
}

void smtp_session_log(const struct smtp_session *s, enum log_level level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level, "smtp %s [%s]: %s", s->id, s->peer, msg);
}

void smtp_session_enter_state(struct smtp_session *s, enum smtp_state state)
{
	const struct config *cfg = s->server->cfg;

	if (s->state != state)
		log_debug("smtp %s [%s]: %s -> %s", s->id, s->peer, smtp_state_name(s->state),
			  smtp_state_name(state));
	s->state = state;
	switch (state) {
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
		net_conn_set_timeout(s->conn, cfg->smtp_timeout_data);
		break;
	case SMTP_STATE_COMMIT:
		/* Nothing is read until the message is durable and answered. */
		net_conn_pause(s->conn);
		net_conn_set_timeout(s->conn, 0);
		return;
	case SMTP_STATE_QUIT:
		return;
	default:
		net_conn_set_timeout(s->conn, cfg->smtp_timeout_command);
		break;
	}
	if (!s->waiting && !s->sealing_wait)
		net_conn_resume(s->conn);
}

void smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	net_conn_write(s->conn, line, (size_t)n + 2);
}

void smtp_session_close(struct smtp_session *s, const char *reply)
{
	if (s->state == SMTP_STATE_QUIT)
		return;
	if (reply != NULL)
		smtp_session_reply(s, "%s", reply);
	if (s->state != SMTP_STATE_COMMIT)
		smtp_session_reset(s);
	smtp_session_enter_state(s, SMTP_STATE_QUIT);
	net_conn_close_after_flush(s->conn);
}

void smtp_session_reply_error(struct smtp_session *s, const char *reply)
{
	uint64_t max = s->server->cfg->smtp_max_errors;

	smtp_session_reply(s, "%s", reply);
	if (max != 0 && ++s->errors >= max) {
		smtp_session_log(s, LOG_WARN, "too many errors (%u), disconnecting", s->errors);
		smtp_session_close(s, "421 4.7.0 Too many errors, closing connection");
	}
}

void smtp_session_reset(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_COMMIT)
		log_panic("smtp: resetting a transaction that is being committed");
	delivery_abort(&s->delivery);
	for (size_t i = 0; i < s->rcpt_count; i++)
		router_account_free(&s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->rcpt_count = 0;
	memset(&s->mail, 0, sizeof(s->mail));
	memset(&s->first_rcpt, 0, sizeof(s->first_rcpt));
	s->body = NULL;
	s->sealing_wait = 0;
	s->received = 0;
	s->fail_reply = NULL;
	s->chunk_left = 0;
	s->chunk_discard = 0;
}

void smtp_session_transaction_done(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_QUIT)
		return;
	if (s->state == SMTP_STATE_COMMIT)
		smtp_session_enter_state(s, SMTP_STATE_HELO);
	smtp_session_reset(s);
	if (s->server->draining) {
		smtp_session_close(s, "421 4.3.2 Service shutting down, closing connection");
		return;
	}
	smtp_session_enter_state(s, s->helo[0] != '\0' ? SMTP_STATE_HELO : SMTP_STATE_INIT);
}

/* ---- commands ------------------------------------------------------------------ */

static void smtp_cmd_helo_common(struct smtp_session *s, const char *args, int esmtp)
{
	const char *error;
	char helo[SMTP_DOMAIN_MAX + 1];

	if (smtp_parse_helo(args, helo, sizeof(helo), &error) < 0) {
		smtp_session_reply_error(s, error);
		return;
	}
	smtp_session_reset(s);
	memcpy(s->helo, helo, sizeof(helo));
	s->esmtp = esmtp ? 1 : 0;
	if (!esmtp) {
		smtp_session_reply(s, "250 %s", s->server->cfg->hostname);
	} else {
		smtp_session_reply(s, "250-%s Hello [%s]", s->server->cfg->hostname, s->peer);
		smtp_session_reply(s, "250-PIPELINING");
		smtp_session_reply(s, "250-SIZE %llu",
				   (unsigned long long)s->server->cfg->smtp_max_message_size);
		smtp_session_reply(s, "250-8BITMIME");
		smtp_session_reply(s, "250-ENHANCEDSTATUSCODES");
		if (s->server->tls != NULL && !net_conn_is_tls(s->conn))
			smtp_session_reply(s, "250-STARTTLS");
		smtp_session_reply(s, "250-SMTPUTF8");
		smtp_session_reply(s, "250 CHUNKING");
	}
	smtp_session_enter_state(s, SMTP_STATE_HELO);
	if (s->server->draining)
		smtp_session_transaction_done(s);
}

static void smtp_cmd_ehlo(struct smtp_session *s, const char *args)
{
	smtp_cmd_helo_common(s, args, 1);
}

static void smtp_cmd_helo(struct smtp_session *s, const char *args)
{
	smtp_cmd_helo_common(s, args, 0);
}

static void smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	const char *error;

	if (smtp_parse_mail(args, s->esmtp, &s->mail, &error) < 0) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_session_reply_error(s, error);
		return;
	}
	if (s->mail.size_given && s->mail.size > s->server->cfg->smtp_max_message_size) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_session_reply_error(s, "552 5.3.4 Message size exceeds fixed maximum "
					    "message size");
		return;
	}
	smtp_session_reply(s, "250 2.1.0 Ok");
	smtp_session_enter_state(s, SMTP_STATE_MAIL);
}

static void smtp_session_command(struct smtp_session *s);

/* The delay timer ends either a delayed reply or a command held back by
 * the rate limit (never both: input waits for either). */
static void smtp_session_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	s->waiting = 0;
	if (s->rate_held) {
		s->rate_held = 0;
		if (s->server->draining &&
		    (s->state == SMTP_STATE_INIT || s->state == SMTP_STATE_HELO)) {
			/* Shutdown passed this session by while it waited. */
			buf_reset(&s->line);
			smtp_session_close(s,
					   "421 4.3.2 Service shutting down, closing connection");
			return;
		}
		smtp_session_command(s);
		buf_reset(&s->line);
		if (s->waiting || s->state == SMTP_STATE_QUIT)
			return;
		net_conn_resume(s->conn);
		smtp_session_input(s);
		return;
	}
	smtp_session_reply_error(s, s->delayed_reply);
	if (s->state != SMTP_STATE_QUIT)
		net_conn_resume(s->conn);
	smtp_session_input(s);
}

/* A reply that should not come back at once (address harvesting). */
static void smtp_session_reply_delayed(struct smtp_session *s, const char *reply)
{
	uint64_t ms = s->server->cfg->smtp_unknown_user_delay_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (ms == 0) {
		smtp_session_reply_error(s, reply);
		return;
	}
	if (s->delay_timer == NULL) {
		s->delay_timer = evtimer_new(s->server->base, smtp_session_delay_cb, s);
		if (s->delay_timer == NULL)
			log_fatal("smtp: cannot create a timer");
	}
	s->delayed_reply = reply;
	s->waiting = 1;
	net_conn_pause(s->conn);
	evtimer_add(s->delay_timer, &tv);
}

/* Touches only the lookup slot: may run on a worker thread. */
static void smtp_lookup_run(struct smtp_lookup *l)
{
	const char *error = NULL;

	l->acct = NULL;
	l->result = router_account_find(l->router, l->path.address, &l->acct, &error);
	/* Its INBOX too: the delivery must not look it up on the loop. */
	if (l->result > 0 &&
	    router_account_find_inbox(l->router, l->acct, &l->acct->inbox_id, &error) < 0) {
		router_account_free(&l->acct);
		l->result = -1;
	}
	snprintf(l->error, sizeof(l->error), "%s", error != NULL ? error : "");
}

static void smtp_lookup_job(void *ctx)
{
	struct smtp_lookup *l = ctx;

	smtp_lookup_run(l);
	event_active(l->ev, 0, 1);
}

/* Answers the RCPT with the lookup's result (on the loop). */
static void smtp_session_lookup_answer(struct smtp_session *s)
{
	struct smtp_lookup *l = s->lookup;
	struct account *acct = l->acct;

	l->acct = NULL;
	if (l->result < 0) {
		smtp_session_log(s, LOG_ERROR, "recipient lookup failed: %s", l->error);
		smtp_session_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
	} else if (l->result == 0) {
		smtp_session_log(s, LOG_INFO, "recipient refused: unknown account");
		smtp_session_reply_delayed(s, "550 5.1.1 Recipient address rejected: "
					      "no such user here");
	} else {
		s->rcpts = realloc(s->rcpts, (s->rcpt_count + 1) * sizeof(*s->rcpts));
		if (s->rcpts == NULL)
			log_fatal("out of memory");
		if (s->rcpt_count == 0)
			s->first_rcpt = l->path;
		s->rcpts[s->rcpt_count++] = acct;
		smtp_session_reply(s, "250 2.1.5 Ok");
		smtp_session_enter_state(s, SMTP_STATE_RCPT);
	}
}

void smtp_session_lookup_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	s->lookup_pending = 0;
	s->waiting = 0;
	if (s->conn_lost || s->state == SMTP_STATE_QUIT) {
		router_account_free(&s->lookup->acct);
		/* Closing: the flush frees the session, unless it is gone. */
		if (s->conn_lost)
			smtp_session_free(&s);
		return;
	}
	smtp_session_lookup_answer(s);
	if (s->waiting || s->state == SMTP_STATE_QUIT)
		return;
	net_conn_resume(s->conn);
	smtp_session_input(s);
}

/* Looks the recipient up: on the loop when the directory and the stores are
 * local files (a page-cache read costs less than the two hand-offs between
 * threads, which under load held every pipelined RCPT for a third of a
 * millisecond), otherwise off it (RADOS answers over the network) while
 * input waits for the answer. */
static void smtp_session_lookup(struct smtp_session *s, const struct smtp_path *path)
{
	if (s->lookup == NULL) {
		s->lookup = xcalloc(1, sizeof(*s->lookup));
		s->lookup->router = s->server->router;
		s->lookup->ev = event_new(s->server->base, -1, 0, smtp_session_lookup_done, s);
		if (s->lookup->ev == NULL)
			log_fatal("smtp: cannot create an event");
	}
	s->lookup->path = *path;
	if (router_lookups_local(s->server->router)) {
		smtp_lookup_run(s->lookup);
		smtp_session_lookup_answer(s);
		return;
	}
	s->lookup_pending = 1;
	s->waiting = 1;
	net_conn_pause(s->conn);
	pool_submit(s->server->lookups, smtp_lookup_job, s->lookup);
}

static int smtp_domain_is_local(const struct config *cfg, const char *domain)
{
	if (cfg->domains == NULL || cfg->domains[0] == NULL)
		return 1;
	for (char **d = cfg->domains; *d != NULL; d++)
		if (strcasecmp(*d, domain) == 0)
			return 1;
	return 0;
}

static void smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->server->cfg;
	struct smtp_path path;
	const char *error = NULL, *domain;

	if (s->rcpt_count >= cfg->smtp_max_recipients) {
		smtp_session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (smtp_parse_rcpt(args, s->mail.smtputf8, &path, &error) < 0) {
		smtp_session_reply_error(s, error);
		return;
	}
	if (path.postmaster) {
		domain = cfg->domains != NULL && cfg->domains[0] != NULL ? cfg->domains[0]
									 : cfg->hostname;
		snprintf(path.address, sizeof(path.address), "postmaster@%s", domain);
	}
	domain = path.address + path.local_len + 1;
	if (!smtp_domain_is_local(cfg, domain)) {
		smtp_session_log(s, LOG_INFO, "recipient refused: not a local domain");
		smtp_session_reply_error(s, "550 5.7.1 Relaying denied: not a local domain");
		return;
	}
	smtp_session_lookup(s, &path);
}

static void smtp_cmd_data(struct smtp_session *s, const char *args)
{
	const char *reply;

	if (s->rcpt_count == 0) {
		smtp_session_reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (smtp_data_begin(s, &reply) < 0) {
		smtp_session_reply(s, "%s", reply);
		smtp_session_transaction_done(s);
		return;
	}
	smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_session_enter_state(s, SMTP_STATE_DATA);
}

/* A BDAT's bytes follow it whatever the reply, so a refused chunk is still
 * read (and dropped) before the refusal is sent (RFC 3030 section 3). */
static void smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	const char *error, *discard = NULL, *reply;
	uint64_t size;
	int last;

	if (smtp_parse_bdat(args, &size, &last, &error) < 0) {
		smtp_session_reply_error(s, error);
		return;
	}
	if (s->state == SMTP_STATE_INIT)
		discard = "503 5.5.1 Send EHLO/HELO first";
	else if (s->state == SMTP_STATE_HELO)
		discard = "503 5.5.1 Need MAIL before BDAT";
	else if (s->state == SMTP_STATE_MAIL)
		discard = "554 5.5.1 No valid recipients";
	else if (s->state == SMTP_STATE_RCPT && smtp_data_begin(s, &reply) < 0)
		discard = reply;
	smtp_data_bdat(s, size, last, discard);
}

static void smtp_cmd_rset(struct smtp_session *s, const char *args)
{
	smtp_session_reply(s, "250 2.0.0 Ok");
	smtp_session_transaction_done(s);
}

static void smtp_cmd_noop(struct smtp_session *s, const char *args)
{
	smtp_session_reply(s, "250 2.0.0 Ok");
}

static void smtp_cmd_quit(struct smtp_session *s, const char *args)
{
	smtp_session_close(s, "221 2.0.0 Bye");
}

static void smtp_cmd_help(struct smtp_session *s, const char *args)
{
	smtp_session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
			      "HELP VRFY STARTTLS");
}

static void smtp_cmd_vrfy(struct smtp_session *s, const char *args)
{
	smtp_session_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt "
			      "delivery");
}

static void smtp_cmd_not_implemented(struct smtp_session *s, const char *args)
{
	smtp_session_reply_error(s, "502 5.5.1 Command not implemented");
}

static void smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	const char *error;

	if (s->server->tls == NULL) {
		smtp_session_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	if (net_conn_is_tls(s->conn)) {
		smtp_session_reply_error(s, "503 5.5.1 TLS already active");
		return;
	}
	smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 section 4.2: forget everything learnt in the clear. */
	smtp_session_reset(s);
	s->helo[0] = '\0';
	s->esmtp = 0;
	if (net_conn_starttls(s->conn, s->server->tls, &error) < 0) {
		smtp_session_log(s, LOG_ERROR, "STARTTLS failed: %s", error);
		smtp_session_close(s, NULL);
		return;
	}
	smtp_session_enter_state(s, SMTP_STATE_TLS);
}

static const struct smtp_cmd smtp_cmds[] = {
    {"EHLO", SMTP_CMD_STATES, SMTP_CMDF_NEEDARGS, NULL, smtp_cmd_ehlo},
    {"HELO", SMTP_CMD_STATES, SMTP_CMDF_NEEDARGS, NULL, smtp_cmd_helo},
    {"MAIL", SMTP_STATE_BIT(SMTP_STATE_HELO), SMTP_CMDF_NEEDARGS | SMTP_CMDF_HELO,
     "503 5.5.1 Nested MAIL command", smtp_cmd_mail},
    {"RCPT", SMTP_STATE_BIT(SMTP_STATE_MAIL) | SMTP_STATE_BIT(SMTP_STATE_RCPT),
     SMTP_CMDF_NEEDARGS | SMTP_CMDF_HELO, "503 5.5.1 Need MAIL before RCPT", smtp_cmd_rcpt},
    {"DATA", SMTP_STATE_BIT(SMTP_STATE_MAIL) | SMTP_STATE_BIT(SMTP_STATE_RCPT),
     SMTP_CMDF_NOARGS | SMTP_CMDF_HELO, "503 5.5.1 Need RCPT before DATA (or BDAT already used)",
     smtp_cmd_data},
    {"BDAT", SMTP_CMD_STATES, SMTP_CMDF_NEEDARGS, NULL, smtp_cmd_bdat},
    {"RSET", SMTP_CMD_STATES, SMTP_CMDF_NOARGS, NULL, smtp_cmd_rset},
    {"NOOP", SMTP_CMD_STATES, 0, NULL, smtp_cmd_noop},
    {"QUIT", SMTP_CMD_STATES, SMTP_CMDF_NOARGS, NULL, smtp_cmd_quit},
    {"HELP", SMTP_CMD_STATES, 0, NULL, smtp_cmd_help},
    {"VRFY", SMTP_CMD_STATES, SMTP_CMDF_NEEDARGS, NULL, smtp_cmd_vrfy},
    {"STARTTLS", SMTP_STATE_BIT(SMTP_STATE_HELO), SMTP_CMDF_NOARGS | SMTP_CMDF_HELO,
     "503 5.5.1 STARTTLS not allowed during a transaction", smtp_cmd_starttls},
    {"EXPN", SMTP_CMD_STATES, 0, NULL, smtp_cmd_not_implemented},
    {"AUTH", SMTP_CMD_STATES, 0, NULL, smtp_cmd_not_implemented},
    {"ETRN", SMTP_CMD_STATES, 0, NULL, smtp_cmd_not_implemented},
    {"TURN", SMTP_CMD_STATES, 0, NULL, smtp_cmd_not_implemented},
};

static void smtp_session_command(struct smtp_session *s)
{
	char verb[SMTP_VERB_MAX + 1];
	const struct smtp_cmd *cmd = NULL;
	const char *args, *error;

	if (smtp_parse_line((const char *)s->line.data, s->line.len, verb, &args, &error) < 0) {
		smtp_session_reply_error(s, error);
		return;
	}
	for (size_t i = 0; i < N_ELEMENTS(smtp_cmds) && cmd == NULL; i++)
		if (strcmp(smtp_cmds[i].name, verb) == 0)
			cmd = &smtp_cmds[i];
	if (cmd == NULL) {
		smtp_session_reply_error(s, "500 5.5.2 Syntax error, command unrecognized");
		return;
	}
	if ((cmd->flags & SMTP_CMDF_HELO) && s->state == SMTP_STATE_INIT) {
		smtp_session_reply_error(s, "503 5.5.1 Send EHLO/HELO first");
		return;
	}
	if (!(cmd->states & SMTP_STATE_BIT(s->state))) {
		smtp_session_reply_error(s, cmd->out_of_sequence
						? cmd->out_of_sequence
						: "503 5.5.1 Bad sequence of commands");
		return;
	}
	if ((cmd->flags & SMTP_CMDF_NOARGS) && args[0] != '\0') {
		smtp_session_reply_error(s, "501 5.5.4 Syntax error: no parameters allowed");
		return;
	}
	if ((cmd->flags & SMTP_CMDF_NEEDARGS) && args[0] == '\0') {
		smtp_session_reply_error(s, "501 5.5.4 Syntax error: parameter required");
		return;
	}
	cmd->handler(s, args);
}

/* MAIL, RCPT, DATA and BDAT move mail: their pace is the mail's own, bounded
 * by the recipient, size and error limits, and a busy MTA reusing one
 * connection sends hundreds a second. The rate limit is for the rest. */
static int smtp_line_moves_mail(const struct buf *line)
{
	static const char *const verbs[] = {"MAIL ", "RCPT ", "DATA", "BDAT "};

	for (size_t i = 0; i < N_ELEMENTS(verbs); i++) {
		size_t n = strlen(verbs[i]);

		if (line->len >= n && strncasecmp((const char *)line->data, verbs[i], n) == 0 &&
		    (n == 5 || line->len == 4 || line->data[4] == ' ' || line->data[4] == '\r'))
			return 1;
	}
	return 0;
}

/* [smtp] max_commands_per_second, with a burst of one second's worth (the
 * GCRA, as for IMAP), for commands that do not move mail (NOOP, RSET,
 * VRFY, HELP, EHLO, unknown ones...): a command over the rate waits in s->line, the
 * connection unread meanwhile, so that a pipelining client only slows
 * down. A client held back for SMTP_RATE_EXCESS_SECS' worth of commands in
 * a row is answered 421 and dropped. Returns 1 if the command waits, -1 if
 * the session is closing. */
static int smtp_session_throttle(struct smtp_session *s)
{
	uint64_t rate = s->server->cfg->smtp_max_commands_per_second;
	int64_t now = time_now_us(), interval, ahead;
	struct timeval tv;
	uint64_t ms;

	if (rate == 0)
		return 0;
	if (rate > 1000000)
		rate = 1000000;
	interval = 1000000 / (int64_t)rate;
	if (s->rate_tat_us < now)
		s->rate_tat_us = now;
	ahead = s->rate_tat_us - now;
	if (ahead + interval <= 1000000) {
		s->rate_tat_us += interval;
		s->rate_strikes = 0;
		return 0;
	}
	if (++s->rate_strikes > rate * SMTP_RATE_EXCESS_SECS) {
		smtp_session_log(s, LOG_WARN, "command rate limit exceeded, closing");
		smtp_session_close(s, "421 4.7.0 Too many commands, closing connection");
		return -1;
	}
	if (s->delay_timer == NULL) {
		s->delay_timer = evtimer_new(s->server->base, smtp_session_delay_cb, s);
		if (s->delay_timer == NULL)
			log_fatal("smtp: cannot create a timer");
	}
	ms = (uint64_t)(ahead + interval - 1000000 + 999) / 1000;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	s->rate_tat_us += interval; /* the held command's turn */
	s->rate_held = 1;
	s->waiting = 1;
	net_conn_pause(s->conn);
	evtimer_add(s->delay_timer, &tv);
	return 1;
}

void smtp_session_input(struct smtp_session *s)
{
	enum net_line_result r;

	if (s->in_input)
		return;
	s->in_input = 1;
	for (;;) {
		if (s->waiting || s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_TLS ||
		    s->state == SMTP_STATE_QUIT)
			break;
		if (net_conn_output_size(s->conn) > SMTP_OUTPUT_HIGH_BYTES) {
			/* A client that pipelines without reading: stop taking
			 * commands (the input buffer then fills and reading
			 * stops) until the replies have gone out. */
			s->output_full = 1;
			break;
		}
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
			smtp_data_input(s);
			if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
				break; /* needs more input */
			continue;
		}
		r = net_conn_read_line(s->conn, (size_t)s->server->cfg->smtp_max_command_line,
				       &s->line);
		if (r == NET_LINE_NONE)
			break;
		if (r == NET_LINE_TOO_LONG) {
			smtp_session_reply_error(s, "500 5.5.2 Line too long");
		} else if (!smtp_line_moves_mail(&s->line) && smtp_session_throttle(s) != 0) {
			break; /* the line waits in s->line, or the session closes */
		} else {
			smtp_session_command(s);
		}
	}
	if (!s->rate_held)
		buf_reset(&s->line);
	s->in_input = 0;
}

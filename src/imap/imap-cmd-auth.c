/* imap-cmd-auth.c — STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 4616).
 *
 * Trust boundary: the password crosses here. It is refused before TLS
 * except on loopback (LOGINDISABLED), copied only into the job that runs
 * Argon2id on a pool thread, wiped afterwards, and never logged; neither is
 * the login name. A failed login is answered only after a delay that grows
 * with recent failures of the client address and of the account; past
 * [imap] auth_fail_lockout failures the address or the account is refused
 * (after the same delay) without looking at the password. An
 * account homed in a region this node does not serve gets a referral
 * (RFC 2221) and no password check here. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct imap_login {
	struct router *router;
	struct account *acct;
	char *password;
	struct seal_keypair *kp;
	int result;
	char error[160];
};

static void imap_login_free(struct imap_login *l)
{
	if (l->password != NULL) {
		mem_wipe(l->password, strlen(l->password));
		free(l->password);
	}
	router_account_free(&l->acct);
	seal_keypair_free(&l->kp);
	free(l);
}

static void imap_login_failed_reply(struct imap_session *s)
{
	if (!s->dead)
		imap_cmd_finish(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
}

static void imap_login_locked_reply(struct imap_session *s)
{
	if (!s->dead)
		imap_cmd_finish(s, "NO", "[UNAVAILABLE] Too many failed logins, try again later");
}

/* A locked-out address is told so; a locked-out account is answered as a
 * wrong password would be, so that lockouts do not reveal which accounts
 * exist. Neither runs Argon2id nor counts as a new failure. */
static int imap_login_locked(struct imap_session *s, const struct account *acct)
{
	if (!imap_fail_locked(s->server, s->peer, acct))
		return 0;
	imap_session_log(s, LOG_WARN, "login refused: %s locked out",
			 acct == NULL ? "address" : "account");
	net_conn_pause(s->conn);
	imap_session_delay(s, acct == NULL ? imap_login_locked_reply : imap_login_failed_reply,
			   imap_fail_delay(s->server, s->peer, acct));
	return 1;
}

static void imap_login_fail(struct imap_session *s, const struct account *acct)
{
	uint64_t ms;

	imap_fail_record(s->server, s->peer, acct);
	ms = imap_fail_delay(s->server, s->peer, acct);
	imap_session_log(s, LOG_INFO, "login failed");
	net_conn_pause(s->conn);
	imap_session_delay(s, imap_login_failed_reply, ms);
}

static void imap_login_ok(struct imap_session *s, struct account **acct, struct imap_key *key)
{
	struct buf caps;

	s->acct = *acct;
	*acct = NULL;
	s->store = router_store(s->server->router, s->acct);
	s->key = key;
	if (seal_opener_new(imap_key_pair(key), &s->opener) < 0) {
		imap_cmd_finish(s, "NO", "[UNAVAILABLE] Cannot open the account");
		imap_session_close(s, "Internal error");
		return;
	}
	imap_fail_clear(s->server, s->acct);
	imap_session_watch(s);
	imap_session_set_state(s, IMAP_STATE_AUTH);
	imap_session_log(s, LOG_INFO, "logged in");
	buf_init(&caps);
	imap_capabilities(s, &caps);
	imap_cmd_finish(s, "OK", "[CAPABILITY %s] Logged in", buf_cstr(&caps));
	buf_free(&caps);
}

static void imap_login_job(void *ctx)
{
	struct imap_login *l = ctx;
	const char *error = NULL;

	l->result = router_account_unlock(l->router, l->acct, l->password, &l->kp, &error);
	if (l->result < 0)
		snprintf(l->error, sizeof(l->error), "%s", error ? error : "unlock failed");
}

static void imap_login_done(struct imap_session *s, void *ctx)
{
	struct imap_login *l = ctx;
	struct imap_key *key;

	if (s->dead) {
		imap_login_free(l);
		return;
	}
	if (l->result < 0) {
		if (strcmp(l->error, "wrong password") != 0)
			imap_session_log(s, LOG_WARN, "unlock: %s", l->error);
		imap_login_fail(s, l->acct);
		imap_login_free(l);
		return;
	}
	key = imap_key_add(s->server, l->acct, l->password, &l->kp);
	imap_login_ok(s, &l->acct, key);
	imap_login_free(l);
}

static void imap_url_escape(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,=", c) != NULL;

		if (plain ? buf_append(out, s, 1) < 0 : buf_printf(out, "%%%02X", c) < 0)
			log_fatal("out of memory");
	}
}

/* Checks USER and PASSWORD and finishes the command (maybe later). */
static void imap_login_start(struct imap_session *s, const char *user, const char *password)
{
	struct account *acct = NULL;
	struct imap_login *l;
	struct imap_key *key;
	const char *error = NULL;
	int r;

	if (imap_login_locked(s, NULL))
		return;
	r = router_account_find(s->server->router, user, &acct, &error);
	if (r < 0) {
		imap_session_log(s, LOG_ERROR, "account lookup: %s", error);
		imap_cmd_finish(s, "NO", "[UNAVAILABLE] Temporary failure, try again later");
		return;
	}
	if (r > 0 && imap_login_locked(s, acct)) {
		router_account_free(&acct);
		return;
	}
	if (r == 0 || password[0] == '\0') {
		imap_login_fail(s, acct);
		router_account_free(&acct);
		return;
	}
	if (!acct->region->served) {
		const struct config_region *cr =
		    config_region_find(s->server->cfg, acct->region->name);
		struct buf url;

		buf_init(&url);
		if (cr != NULL && cr->referral_host != NULL && cr->referral_host[0] != '\0') {
			if (buf_append_str(&url, "imap://") < 0)
				log_fatal("out of memory");
			imap_url_escape(&url, acct->address);
			if (buf_printf(&url, ";AUTH=*@%s/", cr->referral_host) < 0)
				log_fatal("out of memory");
			imap_session_log(s, LOG_INFO, "login referred to region %s",
					 acct->region->name);
			imap_cmd_finish(s, "NO", "[REFERRAL %s] Account is served elsewhere",
					buf_cstr(&url));
		} else {
			imap_cmd_finish(s, "NO", "[UNAVAILABLE] Account is not served here");
		}
		buf_free(&url);
		router_account_free(&acct);
		return;
	}
	key = imap_key_find(s->server, acct, password);
	if (key != NULL) {
		imap_login_ok(s, &acct, key);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->router = s->server->router;
	l->acct = acct;
	l->password = xstrdup(password);
	imap_session_job(s, imap_login_job, imap_login_done, l);
}

static int imap_login_allowed(struct imap_session *s)
{
	if (net_conn_is_tls(s->conn) || imap_peer_is_loopback(s->peer))
		return 1;
	imap_cmd_finish(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS or the TLS port first");
	return 0;
}

void imap_cmd_login(struct imap_session *s, struct imap_args *args)
{
	const char *user, *password;

	if (args->count != 2 || (user = imap_arg_string(&args->list[0])) == NULL ||
	    (password = imap_arg_string(&args->list[1])) == NULL) {
		imap_cmd_finish(s, "BAD", "Usage: LOGIN user password");
		return;
	}
	if (imap_login_allowed(s))
		imap_login_start(s, user, password);
}

static char *imap_dup_part(const uint8_t *p, size_t len)
{
	char *r = xmalloc(len + 1);

	memcpy(r, p, len);
	r[len] = '\0';
	return r;
}

static void imap_auth_plain(struct imap_session *s, const char *b64)
{
	uint8_t *raw = NULL;
	const uint8_t *u, *pw;
	size_t len = 0;
	char *authz = NULL, *user = NULL, *password = NULL;

	if (strcmp(b64, "=") == 0)
		b64 = "";
	if (seal_base64_decode(b64, &raw, &len) < 0 || len == 0) {
		free(raw);
		imap_cmd_finish(s, "BAD", "Invalid base64");
		return;
	}
	/* authzid NUL authcid NUL passwd */
	u = memchr(raw, '\0', len);
	pw = u != NULL ? memchr(u + 1, '\0', len - (size_t)(u + 1 - raw)) : NULL;
	if (pw == NULL || memchr(pw + 1, '\0', len - (size_t)(pw + 1 - raw)) != NULL) {
		imap_cmd_finish(s, "BAD", "Invalid PLAIN response");
		goto out;
	}
	authz = imap_dup_part(raw, (size_t)(u - raw));
	user = imap_dup_part(u + 1, (size_t)(pw - u - 1));
	password = imap_dup_part(pw + 1, len - (size_t)(pw + 1 - raw));
	if (authz[0] != '\0' && strcmp(authz, user) != 0)
		imap_cmd_finish(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	else
		imap_login_start(s, user, password);
out:
	if (password != NULL)
		mem_wipe(password, strlen(password));
	free(authz);
	free(user);
	free(password);
	mem_wipe(raw, len);
	free(raw);
}

static void imap_auth_line(struct imap_session *s, const char *line, size_t len)
{
	s->line_fn = NULL;
	if (strlen(line) != len) {
		imap_cmd_finish(s, "BAD", "Invalid response");
		return;
	}
	if (strcmp(line, "*") == 0) {
		imap_cmd_finish(s, "BAD", "Authentication cancelled");
		return;
	}
	imap_auth_plain(s, line);
}

void imap_cmd_authenticate(struct imap_session *s, struct imap_args *args)
{
	const char *ir = args->count == 2 ? imap_arg_string(&args->list[1]) : NULL;

	if (args->count < 1 || args->count > 2 || args->list[0].type != IMAP_ARG_ATOM ||
	    (args->count == 2 && ir == NULL)) {
		imap_cmd_finish(s, "BAD", "Usage: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!imap_arg_is_atom(&args->list[0], "PLAIN")) {
		imap_cmd_finish(s, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (!imap_login_allowed(s))
		return;
	if (ir != NULL) {
		imap_auth_plain(s, ir);
		return;
	}
	imap_reply(s, "+ ");
	s->line_fn = imap_auth_line;
}

void imap_cmd_starttls(struct imap_session *s, struct imap_args *args)
{
	const char *error;

	if (args->count != 0) {
		imap_cmd_finish(s, "BAD", "STARTTLS takes no arguments");
		return;
	}
	if (s->server->tls == NULL || net_conn_is_tls(s->conn)) {
		imap_cmd_finish(s, "NO", "TLS is not available");
		return;
	}
	imap_reply(s, "%s OK Begin TLS negotiation now", s->tag);
	/* The session starts afresh in imap_session_tls_ready. */
	s->line_fn = NULL;
	net_conn_pause(s->conn);
	if (net_conn_starttls(s->conn, s->server->tls, &error) < 0) {
		imap_session_log(s, LOG_WARN, "STARTTLS: %s", error);
		imap_session_close(s, "TLS failed");
	}
}

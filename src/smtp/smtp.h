/* smtp.h — the ESMTP receiver (RFC 5321): the MX for the local domains.
 *
 * Trust boundary: every byte of an SMTP session comes from an untrusted
 * client. The parser (smtp-parse.c) is pure: it turns command lines into
 * checked values, or into the reply to send, and does no I/O. Sessions accept
 * mail only for local accounts and stream each message into a delivery,
 * which seals it per recipient as it arrives; "250" after the message is
 * sent only once every sealed copy is durable. Logs carry a session id and
 * the client address, never an envelope address, a header or a body. */
#ifndef SEALMAIL_SMTP_H
#define SEALMAIL_SMTP_H

#include "lib/config.h"
#include "lib/lib.h"

#include <event2/event.h>

struct net_conn;
struct net_tls;
struct router;

/* ---- server (smtp-server.c) ------------------------------------------------ */
struct smtp_server;

/* TLS may be NULL (no STARTTLS offered). CFG, ROUTER and TLS must outlive
 * the server. */
struct smtp_server *smtp_server_create(struct event_base *base, const struct config *cfg,
				       struct router *router, struct net_tls *tls);
/* A net_accept_fn: starts a session on CONN (CTX is the server). */
void smtp_server_accept(void *ctx, struct net_conn *conn);
/* Graceful stop: idle sessions are told 421 and closed; sessions inside a
 * transaction may finish it within GRACE seconds, after which they get
 * 451 4.3.2 and are closed — except those whose message is being made
 * durable, which are always waited for, so that no "250" is ever lost or
 * withheld. DONE runs (on the loop) once no session is left. */
void smtp_server_drain(struct smtp_server *server, uint64_t grace, void (*done)(void *ctx),
		       void *ctx);
unsigned smtp_server_session_count(const struct smtp_server *server);
/* Frees the server; every session must be gone (after drain's DONE). */
void smtp_server_free(struct smtp_server **server);

/* ---- parser (smtp-parse.c) ---------------------------------------------------
 * On error these return -1 and set *error_r to the complete reply to send
 * ("501 5.1.7 Bad sender address syntax"), without CRLF. */
#define SMTP_VERB_MAX       16
#define SMTP_PATH_MAX       256 /* RFC 5321 4.5.3.1.3, brackets included */
#define SMTP_LOCAL_PART_MAX 64  /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX     255 /* RFC 5321 4.5.3.1.2 */

enum smtp_body { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME };

/* A path without its angle brackets: "" for the null reverse-path <>. A
 * quoted local part whose content is a valid dot-string is unquoted
 * ("\"abc\"@x" is "abc@x"); other quoted local parts keep their quotes. */
struct smtp_path {
	char address[SMTP_PATH_MAX + 1];
	size_t local_len;            /* bytes of the local part in ADDRESS */
	unsigned int utf8 : 1;       /* holds non-ASCII (needs SMTPUTF8) */
	unsigned int postmaster : 1; /* RCPT TO:<Postmaster>, no domain */
};

struct smtp_mail_params {
	struct smtp_path path;
	uint64_t size; /* SIZE=, 0 when not given */
	int size_given;
	enum smtp_body body;
	int smtputf8;
};

/* Splits a command line (no CRLF; LEN bytes, may hold NULs) into an
 * upper-cased VERB and *ARGS_R (a pointer into LINE past the separating
 * space, "" when none). Refuses NUL and control bytes other than TAB. */
int smtp_parse_line(const char *line, size_t len, char verb[SMTP_VERB_MAX + 1], const char **args_r,
		    const char **error_r) WARN_UNUSED;
/* The argument of EHLO/HELO: a domain or an address literal. */
int smtp_parse_helo(const char *args, char *domain_r, size_t size,
		    const char **error_r) WARN_UNUSED;
/* "FROM:<path> [params]". ESMTP: whether EHLO (not HELO) was used. */
int smtp_parse_mail(const char *args, int esmtp, struct smtp_mail_params *mail_r,
		    const char **error_r) WARN_UNUSED;
/* "TO:<path> [params]". SMTPUTF8: whether the transaction allows UTF-8. */
int smtp_parse_rcpt(const char *args, int smtputf8, struct smtp_path *path_r,
		    const char **error_r) WARN_UNUSED;
/* "SIZE [LAST]" (RFC 3030). */
int smtp_parse_bdat(const char *args, uint64_t *size_r, int *last_r,
		    const char **error_r) WARN_UNUSED;
/* Parses "<path>" at *S, advancing *S past it. REVERSE: allows "<>". */
int smtp_parse_path(const char **s, int reverse, struct smtp_path *path_r) WARN_UNUSED;

/* ---- DATA decoding (smtp-data.c) ---------------------------------------------
 * Turns the dot-stuffed DATA stream into message bytes (RFC 5321 4.5.2). The
 * end of data is only CR LF "." CR LF: a bare LF never ends a line or the
 * message, so "<LF>.<LF>" cannot smuggle a second message. Bare CR, bare LF,
 * NUL and over-long lines are flagged (the message is then refused whole). */
enum smtp_dot_flag {
	SMTP_DOT_LINE_TOO_LONG = 1 << 0,
	SMTP_DOT_BARE_LF = 1 << 1,
	SMTP_DOT_BARE_CR = 1 << 2,
	SMTP_DOT_NUL = 1 << 3,
};

struct smtp_dot_decoder {
	int state;
	size_t line_len; /* bytes of the current line so far */
	size_t max_line; /* limit incl. CR LF; 0 for none */
	unsigned flags;  /* enum smtp_dot_flag */
};

void smtp_dot_init(struct smtp_dot_decoder *d, size_t max_line);
/* Decodes up to LEN bytes of IN, appending message bytes to OUT (NULL to
 * discard them). Returns 1 once the end-of-data line was consumed (*used_r
 * counts the bytes used, terminator included), 0 if all LEN bytes were used. */
int smtp_dot_decode(struct smtp_dot_decoder *d, const uint8_t *in, size_t len, struct buf *out,
		    size_t *used_r);

#endif

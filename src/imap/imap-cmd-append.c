/* imap-cmd-append.c — APPEND, with UIDPLUS's APPENDUID (RFC 4315) and
 * BINARY's literal8 message (RFC 3516: "~{n}", which may hold any byte).
 *
 * Trust boundary: the message is plaintext from the client. It goes through
 * the same delivery path as mail from SMTP (region/: sealed chunk by chunk
 * to the account's key, metadata computed in memory and sealed), on a pool
 * thread, into the account's own store only. Its size is bounded by
 * [imap] max_literal before a byte is read. */
#include "imap/imap-private.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct imap_append {
	struct router *router;
	const struct account *acct;
	uint64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t flags;
	char *keywords;
	const char *data; /* the literal, owned by the session's arguments */
	size_t len;
	uint64_t max;
	int64_t date;
	uint32_t uid;
	int result;
	char error[160];
};

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time, the day also " d" or
 * "d"); -1 if invalid. The shape is checked first: sscanf alone would take
 * signs, spaces and short fields ("02: 02-0700"). */
static int imap_date_time_parse(const char *s, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const char shape[] = "dd-Mmm-dddd dd:dd:dd sdddd";
	size_t off = s[0] != '\0' && s[1] == '-' ? 1 : 0;
	char mon[4], sign;
	int day, year, hh, mm, ss, zone, n = 0;
	const char *m;
	struct tm tm;

	if (strlen(s) + off != sizeof(shape) - 1)
		return -1;
	for (size_t i = off; i < sizeof(shape) - 1; i++) {
		char c = s[i - off];

		if (shape[i] == 'd' ? !isdigit((unsigned char)c) && !(i == 0 && c == ' ')
		    : shape[i] == 'M' || shape[i] == 'm' ? !isalpha((unsigned char)c)
		    : shape[i] == 's'                    ? c != '+' && c != '-'
							 : c != shape[i])
			return -1;
	}
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss, &sign,
		   &zone, &n) != 8 ||
	    s[n] != '\0' || (sign != '+' && sign != '-'))
		return -1;
	m = strcasestr(months, mon);
	if (strlen(mon) != 3 || m == NULL || (m - months) % 3 != 0 || day < 1 || day > 31 ||
	    year < 1900 || hh > 23 || mm > 59 || ss > 60 || zone % 100 > 59 || zone > 2359)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = (int64_t)timegm(&tm) -
	       (sign == '-' ? -1 : 1) * (int64_t)((zone / 100) * 3600 + (zone % 100) * 60);
	return 0;
}

static void imap_append_job(void *ctx)
{
	struct imap_append *a = ctx;
	struct delivery *d = NULL;
	const char *error = "delivery failed";

	a->result = -1;
	if (delivery_begin(a->router, a->max, &d, &error) < 0 ||
	    delivery_add_recipient(d, a->acct, &error) < 0 ||
	    delivery_set_mailbox(d, a->mailbox_id, a->flags, a->keywords, &a->uid, &error) < 0 ||
	    delivery_write(d, a->data, a->len, &error) < 0) {
		delivery_abort(&d);
		snprintf(a->error, sizeof(a->error), "%s", error);
		return;
	}
	if (delivery_commit_wait(&d, a->date, &error) < 0) {
		snprintf(a->error, sizeof(a->error), "%s", error);
		return;
	}
	a->result = 0;
}

static void imap_append_done(struct imap_session *s, void *ctx)
{
	struct imap_append *a = ctx;

	if (!s->dead) {
		if (a->result == 0) {
			imap_cmd_finish(s, "OK", "[APPENDUID %u %u] APPEND completed",
					a->uidvalidity, a->uid);
		} else {
			imap_session_log(s, LOG_ERROR, "append: %s", a->error);
			imap_cmd_finish(s, "NO", "[SERVERBUG] APPEND failed");
		}
	}
	free(a->keywords);
	free(a);
}

void imap_cmd_append(struct imap_session *s, struct imap_args *args)
{
	const struct imap_arg *msg;
	const struct imap_mbox *box;
	struct imap_append *a;
	const char *error;
	char *name, *keywords = NULL;
	uint32_t flags = 0;
	int64_t date = (int64_t)time(NULL);
	size_t i = 1;

	if (args->count < 2 || args->count > 4) {
		imap_cmd_finish(s, "BAD", "Usage: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (args->list[i].type == IMAP_ARG_LIST && i + 1 < args->count) {
		if (imap_flags_parse(&args->list[i], &flags, &keywords, &error) < 0) {
			imap_cmd_finish(s, "BAD", "%s", error);
			return;
		}
		i++;
	}
	if (args->list[i].type == IMAP_ARG_STRING && i + 1 < args->count) {
		if (imap_date_time_parse(args->list[i].str, &date) < 0) {
			free(keywords);
			imap_cmd_finish(s, "BAD", "Invalid date-time");
			return;
		}
		i++;
	}
	msg = &args->list[i];
	if (i + 1 != args->count || msg->type == IMAP_ARG_LIST || msg->type == IMAP_ARG_ATOM) {
		free(keywords);
		imap_cmd_finish(s, "BAD", "Usage: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (args->list[0].binary) {
		free(keywords);
		imap_cmd_finish(s, "BAD", "A literal8 is allowed for the message only");
		return;
	}
	if (!msg->binary && memchr(msg->str, '\0', msg->len) != NULL) {
		/* RFC 3501 literals are CHAR8: a NUL needs a literal8. */
		free(keywords);
		imap_cmd_finish(s, "BAD", "NUL in a literal: use a literal8 (~{n})");
		return;
	}
	if (msg->len == 0) {
		free(keywords);
		imap_cmd_finish(s, "NO", "Empty message");
		return;
	}
	if (imap_name_in(s, &args->list[0], &name, &error) < 0) {
		free(keywords);
		imap_cmd_finish(s, "NO", "%s", error);
		return;
	}
	if (imap_boxes_load(s, &error) < 0 || (box = imap_box_find(s, name)) == NULL) {
		free(keywords);
		free(name);
		imap_cmd_finish(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	free(name);
	a = xcalloc(1, sizeof(*a));
	a->router = s->server->router;
	a->acct = s->acct;
	a->mailbox_id = box->id;
	a->uidvalidity = box->uidvalidity;
	a->flags = flags;
	a->keywords = keywords;
	a->data = msg->str;
	a->len = msg->len;
	a->max = s->server->cfg->imap_max_literal;
	a->date = date;
	imap_session_job(s, imap_append_job, imap_append_done, a);
}

/* legal-notify.c — telling an account's owner about a request that named it:
 * a notice delivered into their own INBOX, sealed to their key like any other
 * message, at decision time or once the non-disclosure order has ended.
 *
 * Trust boundary: the notice's plaintext (request details, the owner's
 * address) exists only in memory on its way through delivery_write(), which
 * seals it. Before delivery the legal.notified entry is in the log; it
 * reveals the account's tag and the nonce of the commitment that stood for
 * it in legal.decided, so the owner (and anyone) can tie the two together. */
#include "legal/legal-private.h"

#include "region/region.h"
#include "tlog/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void notice_row(struct buf *b, const char *name, const char *value)
{
	legal_putf(b, "  %-18s %s\r\n", name, value);
}

static void notice_compose(struct legal *legal, const struct legal_request *req,
			   const struct legal_account_info *a, const char *nonce_hex,
			   uint64_t notice_index, struct buf *b)
{
	const char *domain = strrchr(a->address, '@') + 1;
	const char *origin = tlog_origin(legal->log);
	char when[LEGAL_TIME_MAX], date[64], commit[LEGAL_HASH_HEX_MAX], num[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	legal_putf(b,
		   "From: sealmail legal notices <postmaster@%s>\r\n"
		   "To: <%s>\r\n"
		   "Subject: Legal request %s named your account (%s)\r\n"
		   "Date: %s\r\n"
		   "Message-ID: <legal.%s.%d.%llu@%s>\r\n"
		   "Auto-Submitted: auto-generated\r\n"
		   "MIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: 8bit\r\n"
		   "\r\n",
		   domain, a->address, req->id, legal_decision_name(a->decision), date, req->id,
		   a->position, (unsigned long long)notice_index, domain);
	legal_putf(b, "Your account %s was named in a legal request.\r\n\r\n", a->address);
	notice_row(b, "Request", req->id);
	legal_time_format(req->received, when);
	notice_row(b, "Received", when);
	notice_row(b, "Authority", req->authority);
	notice_row(b, "Jurisdiction", req->jurisdiction);
	notice_row(b, "Instrument", legal_instrument_name(req->instrument));
	notice_row(b, "Reference", req->reference);
	notice_row(b, "Scope",
		   req->scope == LEGAL_SCOPE_CONTENT
		       ? "content (your stored messages)"
		       : "non-content (dates, sizes and flags of your messages)");
	if (req->nondisclosure_ends > 0) {
		legal_time_format(req->nondisclosure_ends, when);
		legal_putf(b, "  %-18s ended %s; this notice was held back until then\r\n",
			   "Non-disclosure", when);
	} else {
		notice_row(b, "Non-disclosure", "none");
	}
	legal_putf(b, "\r\nDecision: %s\r\n  %s.\r\n", legal_decision_name(a->decision),
		   a->explanation);
	if (a->channel[0] != '\0')
		legal_putf(b, "  The authority was pointed to: %s.\r\n", a->channel);
	if (req->reject_reason != NULL) {
		legal_put(b, "  The operator's reason:\r\n");
		for (const char *p = req->reject_reason; *p != '\0';) {
			size_t n = strcspn(p, "\n");

			legal_putf(b, "    %.*s\r\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
	if (a->decision == LEGAL_ACCEPTED && req->instrument != LEGAL_PRESERVATION)
		legal_putf(b,
			   "\r\nWhat can be handed over: %s, exports so far: %zu. Your mail is "
			   "sealed to\r\nyour key: an export is ciphertext that only your password "
			   "or recovery code\r\nopens; the operator cannot read it.\r\n",
			   req->scope == LEGAL_SCOPE_CONTENT ? "your sealed messages and their "
							       "index metadata"
							     : "index metadata only",
			   req->export_count);
	else
		legal_put(b, "\r\nNothing was handed over.\r\n");
	legal_putf(b, "\r\nTransparency log %s:\r\n", origin != NULL ? origin : "");
	snprintf(num, sizeof(num), "entry %llu", (unsigned long long)req->index);
	notice_row(b, "legal.received", num);
	snprintf(num, sizeof(num), "entry %lld", (long long)a->decided_index);
	notice_row(b, "legal.decided", num);
	snprintf(num, sizeof(num), "entry %llu", (unsigned long long)notice_index);
	notice_row(b, "legal.notified", num);
	for (size_t i = 0; i < req->export_count; i++) {
		snprintf(num, sizeof(num), "entry %llu",
			 (unsigned long long)req->exports[i].log_index);
		notice_row(b, "legal.exported", num);
	}
	notice_row(b, "Your account tag", a->tag);
	notice_row(b, "Nonce", nonce_hex);
	legal_commitment(a->tag, nonce_hex, commit);
	legal_putf(b,
		   "The decision entry names your account only by the commitment\r\n"
		   "  SHA-256(\"sealmail-legal-account\\n\" TAG \"\\n\" NONCE) = %s\r\n"
		   "Check any entry with `sealmail log show --from N` and its inclusion with\r\n"
		   "`sealmail log prove-inclusion N`.\r\n",
		   commit);
}

static int notice_deliver(struct legal *legal, const struct account *acct, const struct buf *msg,
			  const char **error_r)
{
	struct delivery *d = NULL;

	if (delivery_begin(legal->router, legal->cfg->smtp_max_message_size, &d, error_r) < 0)
		return -1;
	if (delivery_add_recipient(d, acct, error_r) < 0 ||
	    delivery_write(d, msg->data, msg->len, error_r) < 0) {
		delivery_abort(&d);
		return -1;
	}
	return delivery_commit_wait(&d, (int64_t)time(NULL), error_r);
}

/* Logs (unless logged before an interruption) and delivers one notice. */
static int notice_release(struct legal *legal, const struct legal_request *req,
			  struct legal_account_info *a, unsigned *released_r, const char **error_r)
{
	char nonce[2 * LEGAL_NONCE_BYTES + 1], dec[24];
	const char *fields[20];
	struct account *acct = NULL;
	struct buf msg;
	uint64_t index;
	int found, ret = -1;
	size_t n = 0;

	buf_init(&msg);
	found = router_account_find(legal->router, a->address, &acct, error_r);
	if (found < 0)
		return -1;
	if (found) {
		char tag[LEGAL_TAG_HEX_MAX];

		legal_hex(acct->st.tag, STORE_TAG_BYTES, tag);
		found = strcmp(tag, a->tag) == 0;
	}
	if (!found) {
		/* The account was deleted (or deleted and made anew): nobody to tell. */
		ret = legal_db_set_notice(legal, req->index, a->position, "gone", -1, error_r);
		goto out;
	}
	if (legal_db_nonce(legal, req->index, a->position, nonce, error_r) < 0)
		goto out;
	if (strcmp(a->notice, "pending") == 0) {
		snprintf(dec, sizeof(dec), "%lld", (long long)a->decided_index);
		fields[n++] = "request";
		fields[n++] = req->id;
		fields[n++] = "jurisdiction";
		fields[n++] = req->jurisdiction;
		fields[n++] = "decision";
		fields[n++] = legal_decision_name(a->decision);
		fields[n++] = "decided_entry";
		fields[n++] = dec;
		fields[n++] = "account";
		fields[n++] = a->tag;
		fields[n++] = "nonce";
		fields[n++] = nonce;
		fields[n] = NULL;
		if (tlog_append(legal->log, "legal.notified", fields, &index, error_r) < 0 ||
		    legal_db_set_notice(legal, req->index, a->position, "logged", (int64_t)index,
					error_r) < 0)
			goto out;
		a->notice_index = (int64_t)index;
		snprintf(a->notice, sizeof(a->notice), "logged");
	}
	notice_compose(legal, req, a, nonce, (uint64_t)a->notice_index, &msg);
	if (notice_deliver(legal, acct, &msg, error_r) < 0 ||
	    legal_db_set_notice(legal, req->index, a->position, "delivered", a->notice_index,
				error_r) < 0)
		goto out;
	(*released_r)++;
	ret = 0;
out:
	buf_free(&msg);
	router_account_free(&acct);
	return ret;
}

/* Logs that REQ's non-disclosure order has ended, naming the tags of the
 * accounts it covered; before any notice it held back is released. */
static int legal_nd_expired(struct legal *legal, const struct legal_request *req,
			    const char **error_r)
{
	char ended[LEGAL_TIME_MAX];
	const char *fields[9];
	struct buf tags;
	uint64_t index;
	size_t n = 0;
	int ret;

	buf_init(&tags);
	for (size_t i = 0; i < req->account_count; i++) {
		if (req->accounts[i].tag[0] == '\0')
			continue;
		legal_putf(&tags, "%s%s", tags.len > 0 ? " " : "", req->accounts[i].tag);
	}
	legal_time_format(req->nondisclosure_ends, ended);
	fields[n++] = "request";
	fields[n++] = req->id;
	fields[n++] = "jurisdiction";
	fields[n++] = req->jurisdiction;
	fields[n++] = "ended";
	fields[n++] = ended;
	if (tags.len > 0) {
		fields[n++] = "accounts";
		fields[n++] = buf_cstr(&tags);
	}
	fields[n] = NULL;
	ret = tlog_append(legal->log, "legal.nondisclosure_expired", fields, &index, error_r);
	if (ret == 0)
		ret = legal_db_add_nd_expired(legal, req->index, index, error_r);
	buf_free(&tags);
	return ret;
}

int legal_notify_request(struct legal *legal, const struct legal_request *req, int64_t as_of,
			 unsigned *released_r, const char **error_r)
{
	int ret = 0;

	if (strcmp(req->status, "decided") != 0 && strcmp(req->status, "rejected") != 0)
		return 0;
	if (req->nondisclosure_ends > 0 && as_of < req->nondisclosure_ends)
		return 0;
	if (req->nondisclosure_ends > 0 && req->nd_expired_index < 0 &&
	    legal_nd_expired(legal, req, error_r) < 0)
		return -1;
	for (size_t i = 0; i < req->account_count; i++) {
		struct legal_account_info *a = &req->accounts[i];

		if (strcmp(a->notice, "pending") != 0 && strcmp(a->notice, "logged") != 0)
			continue;
		if (notice_release(legal, req, a, released_r, error_r) < 0)
			ret = -1;
	}
	return ret;
}

int legal_notify(struct legal *legal, int64_t as_of, unsigned *released_r, const char **error_r)
{
	struct legal_request *req = NULL;
	uint64_t *pending = NULL;
	size_t count = 0;
	const char *error = NULL;
	char id[LEGAL_ID_MAX], first[400] = "";
	int ret = 0;

	*released_r = 0;
	if (legal->log == NULL || legal->router == NULL) {
		*error_r = "the transparency log is not open";
		return -1;
	}
	if (legal_lock(legal, error_r) < 0)
		return -1;
	if (legal_db_pending_notices(legal, as_of, &pending, &count, error_r) < 0) {
		legal_unlock(legal);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		int r;

		legal_id_format(pending[i], id);
		r = legal_request_get(legal, id, &req, &error);
		if (r > 0)
			r = legal_notify_request(legal, req, as_of, released_r, &error);
		legal_request_free(&req);
		if (r < 0 && ret == 0) {
			snprintf(first, sizeof(first), "%s: %s", id, error);
			ret = -1;
		}
	}
	free(pending);
	legal_unlock(legal);
	if (ret < 0)
		*error_r = str_tfmt("%s", first);
	return ret;
}

int legal_notify_due(const struct config *cfg, struct router *router, struct tlog *log,
		     int64_t as_of, unsigned *released_r, const char **error_r)
{
	struct legal *legal = NULL;
	int ret;

	*released_r = 0;
	if (legal_open(cfg, router, log, &legal, error_r) < 0)
		return -1;
	ret = legal_notify(legal, as_of > 0 ? as_of : (int64_t)time(NULL), released_r, error_r);
	legal_close(&legal);
	return ret;
}

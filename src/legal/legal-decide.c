/* legal-decide.c — filing a request, deciding it by the policy, and the
 * operator's rejection.
 *
 * Trust boundary: the request's text comes from an outside authority through
 * the operator. Before anything is stored it is validated; before a decision
 * is stored it is in the transparency log (legal.received, legal.decided).
 * Those entries carry the authority's name, jurisdictions, instrument, scope,
 * decision and reason class; an account appears only as a salted commitment
 * to its tag, revealed when its owner is notified (legal-notify.c), so the
 * log does not tell an owner about a request before a non-disclosure order
 * allows it. */
#include "legal/legal-private.h"

#include "region/region.h"
#include "tlog/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEGAL_FIELDS_MAX 32

struct legal_fields {
	const char *v[LEGAL_FIELDS_MAX + 1];
	size_t n;
};

static void legal_field(struct legal_fields *f, const char *key, const char *value)
{
	if (f->n + 2 > LEGAL_FIELDS_MAX)
		log_panic("legal: too many log fields");
	f->v[f->n++] = key;
	f->v[f->n++] = value;
	f->v[f->n] = NULL;
}

static int legal_need_log(struct legal *legal, const char **error_r)
{
	if (legal->log == NULL || legal->router == NULL) {
		*error_r = "the transparency log is not open";
		return -1;
	}
	return 0;
}

/* Keeps the policy hash of the last policy.changed entry seen. */
static int legal_policy_last(void *ctx, uint64_t index, const uint8_t *json, size_t len)
{
	static const char type[] = "\"policy.changed\"";
	char *last = ctx, **fields = NULL;
	const char *error, *hash;

	if (memmem(json, len, type, sizeof(type) - 1) == NULL ||
	    tlog_json_decode(json, len, &fields, &error) < 0)
		return 0;
	hash = tlog_json_field(fields, "policy_sha256");
	if (strcmp(tlog_json_field(fields, "type"), "policy.changed") == 0 && hash != NULL)
		snprintf(last, LEGAL_HASH_HEX_MAX, "%s", hash);
	tlog_json_fields_free(&fields);
	return 0;
}

/* Under the lock: appends policy.changed unless the log's last one is for
 * POLICY. HASH_R receives POLICY's hash. */
static int legal_policy_log(struct legal *legal, const struct legal_policy *policy,
			    char hash_r[LEGAL_HASH_HEX_MAX], const char **error_r)
{
	char last[LEGAL_HASH_HEX_MAX] = "";
	struct buf summary;
	uint64_t index;
	int ret;

	legal_policy_hash(policy, hash_r);
	if (tlog_foreach(legal->log, 0, legal_policy_last, last, error_r) < 0)
		return -1;
	if (strcmp(last, hash_r) == 0)
		return 0;
	buf_init(&summary);
	legal_policy_summary(policy, &summary);
	{
		const char *fields[] = {"policy_sha256",
					hash_r,
					"policy",
					buf_cstr(&summary),
					"previous",
					last[0] != '\0' ? last : "none",
					NULL};

		ret = tlog_append(legal->log, "policy.changed", fields, &index, error_r);
	}
	buf_free(&summary);
	return ret;
}

int legal_policy_record(const struct config *cfg, struct router *router, struct tlog *log,
			const char **error_r)
{
	struct legal_policy *policy = NULL;
	struct legal *legal = NULL;
	char hash[LEGAL_HASH_HEX_MAX];
	int ret = -1;

	if (legal_open(cfg, router, log, &legal, error_r) < 0)
		return -1;
	if (legal_need_log(legal, error_r) < 0 ||
	    legal_policy_load(cfg->legal_policy, &policy, error_r) < 0 ||
	    legal_policy_check(policy, cfg, error_r) < 0 || legal_lock(legal, error_r) < 0)
		goto out;
	ret = legal_policy_log(legal, policy, hash, error_r);
	legal_unlock(legal);
out:
	legal_policy_free(&policy);
	legal_close(&legal);
	return ret;
}

/* Normalised, distinct addresses; *list_r is a malloc'd array of malloc'd
 * strings. */
static int legal_addresses(const struct legal_filing *f, char ***list_r, const char **error_r)
{
	char **list;

	if (f->address_count == 0 || f->address_count > LEGAL_ACCOUNTS_MAX) {
		*error_r = str_tfmt("a request names 1 to %d accounts", LEGAL_ACCOUNTS_MAX);
		return -1;
	}
	list = xcalloc(f->address_count + 1, sizeof(*list));
	for (size_t i = 0; i < f->address_count; i++) {
		list[i] = router_address_normalize(f->addresses[i]);
		if (list[i] == NULL) {
			*error_r = str_tfmt("account %zu is not a mail address", i + 1);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(list[i], list[j]) == 0) {
				*error_r =
				    str_tfmt("accounts %zu and %zu are the same", j + 1, i + 1);
				goto fail;
			}
		}
	}
	*list_r = list;
	return 0;
fail:
	for (size_t i = 0; i < f->address_count; i++)
		free(list[i]);
	free(list);
	return -1;
}

int legal_file(struct legal *legal, const struct legal_filing *f, char id_r[LEGAL_ID_MAX],
	       const char **error_r)
{
	struct legal_fields fields = {.n = 0};
	struct legal_filing norm = *f;
	char **addresses = NULL, jur[3], count[24], nd[LEGAL_TIME_MAX];
	uint64_t index;
	int64_t now = (int64_t)time(NULL);
	int ret = -1;

	if (legal_need_log(legal, error_r) < 0)
		return -1;
	if (!legal_text_valid(f->authority, LEGAL_AUTHORITY_MAX, 0)) {
		*error_r = str_tfmt("the authority must be 1 to %d bytes of text on one line",
				    LEGAL_AUTHORITY_MAX);
		return -1;
	}
	if (legal_jurisdiction_parse(f->jurisdiction, jur) < 0) {
		*error_r = "the jurisdiction must be an ISO 3166-1 alpha-2 code such as US or IE";
		return -1;
	}
	if (!legal_text_valid(f->reference, LEGAL_TEXT_MAX, 0)) {
		*error_r = str_tfmt("the reference must be 1 to %d bytes of text on one line",
				    LEGAL_TEXT_MAX);
		return -1;
	}
	if (f->nondisclosure_ends < 0) {
		*error_r = "bad non-disclosure date";
		return -1;
	}
	if (legal_addresses(f, &addresses, error_r) < 0)
		return -1;
	norm.jurisdiction = jur;
	snprintf(count, sizeof(count), "%zu", f->address_count);
	if (f->nondisclosure_ends > 0)
		legal_time_format(f->nondisclosure_ends, nd);
	else
		snprintf(nd, sizeof(nd), "none");
	legal_field(&fields, "authority", f->authority);
	legal_field(&fields, "jurisdiction", jur);
	legal_field(&fields, "instrument", legal_instrument_name(f->instrument));
	legal_field(&fields, "scope", legal_scope_name(f->scope));
	legal_field(&fields, "accounts", count);
	legal_field(&fields, "nondisclosure_ends", nd);
	if (legal_lock(legal, error_r) < 0)
		goto out;
	if (tlog_append(legal->log, "legal.received", fields.v, &index, error_r) < 0)
		goto out;
	if (legal_db_insert_request(legal, index, now, &norm, addresses, error_r) < 0)
		goto out;
	legal_id_format(index, id_r);
	ret = 0;
out:
	legal_unlock(legal);
	for (size_t i = 0; i < f->address_count; i++) {
		mem_wipe(addresses[i], strlen(addresses[i]));
		free(addresses[i]);
	}
	free(addresses);
	return ret;
}

/* Decides (or, with REJECT, rejects) account A of REQ and logs it first. */
static int legal_decide_account(struct legal *legal, const struct legal_request *req,
				struct legal_account_info *a, const struct legal_policy *policy,
				const char *policy_hash, const char **error_r)
{
	struct legal_fields fields = {.n = 0};
	struct legal_verdict v;
	struct account *acct = NULL;
	uint8_t nonce[LEGAL_NONCE_BYTES];
	char nonce_hex[2 * LEGAL_NONCE_BYTES + 1] = "", commit[LEGAL_HASH_HEX_MAX];
	uint64_t index;
	int found, ret = -1;

	found = router_account_find(legal->router, a->address, &acct, error_r);
	if (found < 0)
		return -1;
	memset(&v, 0, sizeof(v));
	free(a->channel);
	free(a->explanation);
	a->channel = NULL;
	a->explanation = NULL;
	if (found) {
		legal_hex(acct->st.tag, STORE_TAG_BYTES, a->tag);
		snprintf(a->region, sizeof(a->region), "%s", acct->region->name);
		snprintf(a->data_jurisdiction, sizeof(a->data_jurisdiction), "%s",
			 acct->region->jurisdiction);
		seal_random(nonce, sizeof(nonce));
		legal_hex(nonce, sizeof(nonce), nonce_hex);
		legal_commitment(a->tag, nonce_hex, commit);
	}
	if (policy == NULL) {
		v.decision = LEGAL_REJECTED;
		v.reason = "operator";
		snprintf(v.explanation, sizeof(v.explanation), "the operator refused the request");
	} else if (!found) {
		v.decision = LEGAL_NO_DATA;
		v.reason = "no-account";
		snprintf(v.explanation, sizeof(v.explanation), "there is no such account");
	} else {
		legal_policy_decide(policy, a->region, a->data_jurisdiction, req->jurisdiction,
				    req->instrument, req->scope, &v);
	}
	a->decision = v.decision;
	snprintf(a->reason, sizeof(a->reason), "%s", v.reason);
	a->channel = xstrdup(v.channel);
	a->explanation = xstrdup(v.explanation);

	legal_field(&fields, "request", req->id);
	legal_field(&fields, "jurisdiction", req->jurisdiction);
	legal_field(&fields, "instrument", legal_instrument_name(req->instrument));
	legal_field(&fields, "scope", legal_scope_name(req->scope));
	legal_field(&fields, "decision", legal_decision_name(v.decision));
	legal_field(&fields, "reason", v.reason);
	if (found) {
		legal_field(&fields, "account", commit);
		legal_field(&fields, "data_jurisdiction", a->data_jurisdiction);
	}
	if (v.channel[0] != '\0')
		legal_field(&fields, "channel", v.channel);
	if (policy_hash != NULL)
		legal_field(&fields, "policy_sha256", policy_hash);
	if (tlog_append(legal->log, "legal.decided", fields.v, &index, error_r) < 0)
		goto out;
	a->decided_index = (int64_t)index;
	ret = legal_db_set_decision(legal, req->index, a, nonce_hex, found ? "pending" : "none",
				    error_r);
out:
	mem_wipe(nonce, sizeof(nonce));
	router_account_free(&acct);
	return ret;
}

/* Decides every account not decided yet (so an interrupted run resumes),
 * marks the request, and releases the notices that are due now. */
static int legal_close_request(struct legal *legal, const char *id, const char *reject_reason,
			       const char **error_r)
{
	struct legal_policy *policy = NULL;
	struct legal_request *req = NULL;
	const char *status = reject_reason != NULL ? "rejected" : "decided";
	char policy_hash[LEGAL_HASH_HEX_MAX];
	int64_t now = (int64_t)time(NULL);
	unsigned released = 0;
	int r, ret = -1;

	if (legal_need_log(legal, error_r) < 0)
		return -1;
	if (reject_reason == NULL) {
		if (legal_policy_load(legal->cfg->legal_policy, &policy, error_r) < 0 ||
		    legal_policy_check(policy, legal->cfg, error_r) < 0)
			goto out;
	} else if (!legal_text_valid(reject_reason, LEGAL_TEXT_MAX, 1)) {
		*error_r = str_tfmt("the reason must be 1 to %d bytes of text", LEGAL_TEXT_MAX);
		goto out;
	}
	if (legal_lock(legal, error_r) < 0)
		goto out;
	r = legal_request_get(legal, id, &req, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = str_tfmt("no request %s", id);
		goto out;
	}
	if (strcmp(req->status, "received") != 0) {
		*error_r = str_tfmt("%s is %s already", req->id, req->status);
		goto out;
	}
	/* The policy in force is in the log before any decision made under it. */
	if (policy != NULL && legal_policy_log(legal, policy, policy_hash, error_r) < 0)
		goto out;
	for (size_t i = 0; i < req->account_count; i++) {
		if (req->accounts[i].decided_index >= 0)
			continue;
		if (legal_decide_account(legal, req, &req->accounts[i], policy,
					 policy != NULL ? policy_hash : NULL, error_r) < 0)
			goto out;
	}
	if (legal_db_set_status(legal, req->index, status, now, reject_reason, error_r) < 0)
		goto out;
	legal_request_free(&req);
	if (legal_request_get(legal, id, &req, error_r) <= 0)
		goto out;
	if (legal_notify_request(legal, req, now, &released, error_r) < 0)
		log_warn("legal: %s: a notice could not be delivered yet (`sealmail legal notify` "
			 "retries): %s",
			 req->id, *error_r);
	ret = 0;
out:
	legal_unlock(legal);
	legal_request_free(&req);
	legal_policy_free(&policy);
	return ret;
}

int legal_decide(struct legal *legal, const char *id, const char **error_r)
{
	return legal_close_request(legal, id, NULL, error_r);
}

int legal_reject(struct legal *legal, const char *id, const char *reason, const char **error_r)
{
	return legal_close_request(legal, id, reason, error_r);
}

int legal_release(struct legal *legal, const char *id, uint64_t *index_r, const char **error_r)
{
	struct legal_fields fields = {.n = 0};
	struct legal_request *req = NULL;
	int r, ret = -1;

	if (legal_need_log(legal, error_r) < 0 || legal_lock(legal, error_r) < 0)
		return -1;
	r = legal_request_get(legal, id, &req, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = str_tfmt("no request %s", id);
		goto out;
	}
	if (req->instrument != LEGAL_PRESERVATION) {
		*error_r = str_tfmt("%s is a %s, not a preservation request; only preservation "
				    "requests hold accounts",
				    req->id, legal_instrument_name(req->instrument));
		goto out;
	}
	if (strcmp(req->status, "decided") != 0) {
		*error_r = str_tfmt("%s is %s; only a decided request can be released", req->id,
				    req->status);
		goto out;
	}
	if (req->released_index >= 0) {
		*error_r = str_tfmt("%s was released already (log entry %lld)", req->id,
				    (long long)req->released_index);
		goto out;
	}
	legal_field(&fields, "request", req->id);
	if (tlog_append(legal->log, "legal.released", fields.v, index_r, error_r) < 0 ||
	    legal_db_add_release(legal, req->index, *index_r, error_r) < 0)
		goto out;
	ret = 0;
out:
	legal_unlock(legal);
	legal_request_free(&req);
	return ret;
}

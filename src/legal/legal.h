/* legal.h — legal requests for stored data: filing, the jurisdiction policy,
 * decisions, sealed exports, owner notices and the transparency report.
 *
 * Trust boundary: requests are typed in by the operator on behalf of an
 * outside authority; their free text (authority, reference, reasons) is
 * validated and never reaches the log except for the authority's name. The
 * request store (DIR/legal/requests.sqlite) keeps the addresses a request
 * names, the reference and the operator's reasons only sealed under
 * keys_dir/legal.key. Every event is appended to the transparency log before
 * the action it records takes effect, and log entries name accounts only by
 * their random tag (or, while an owner may not yet be told, by a salted
 * commitment to it). An export holds sealed records and index metadata only:
 * nothing in this module can open a record except legal_bundle_open(), which
 * needs the owner's unlocked key. The report is computed from log entries
 * alone, so anyone holding the log can recompute it (docs/legal.md). */
#ifndef SEALMAIL_LEGAL_H
#define SEALMAIL_LEGAL_H

#include "lib/config.h"
#include "lib/lib.h"

struct router;
struct account;
struct tlog;
struct seal_keypair;

#define LEGAL_ID_MAX          32
#define LEGAL_TAG_HEX_MAX     33 /* 16-byte account tag in hex + NUL */
#define LEGAL_HASH_HEX_MAX    65 /* SHA-256 in hex + NUL */
#define LEGAL_TIME_MAX        24 /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
#define LEGAL_CHANNEL_MAX     256
#define LEGAL_EXPLANATION_MAX 512
#define LEGAL_ACCOUNTS_MAX    100 /* accounts one request may name */
#define LEGAL_AUTHORITY_MAX   200 /* bytes */
#define LEGAL_TEXT_MAX        900 /* reference, reject reason: bytes */
#define LEGAL_DIR_NAME        "legal"
#define LEGAL_DB_NAME         "requests.sqlite"
#define LEGAL_KEY_NAME        "legal.key"

enum legal_instrument {
	LEGAL_WARRANT,
	LEGAL_SUBPOENA,
	LEGAL_COURT_ORDER,
	LEGAL_PRESERVATION,
};

enum legal_scope {
	LEGAL_SCOPE_CONTENT,
	LEGAL_SCOPE_NON_CONTENT,
};

enum legal_decision {
	LEGAL_UNDECIDED = 0,
	LEGAL_ACCEPTED,
	LEGAL_REFUSED,  /* by the policy */
	LEGAL_REJECTED, /* by the operator */
	LEGAL_NO_DATA,  /* no such account */
};

/* ---- names, dates, ids (legal-util.c) ------------------------------------ */
/* "warrant", "subpoena", "court-order", "preservation". */
const char *legal_instrument_name(enum legal_instrument i);
int legal_instrument_parse(const char *s, enum legal_instrument *i_r) WARN_UNUSED;
/* "content", "non-content". */
const char *legal_scope_name(enum legal_scope s);
int legal_scope_parse(const char *s, enum legal_scope *s_r) WARN_UNUSED;
/* "", "accepted", "refused", "rejected", "no-data". */
const char *legal_decision_name(enum legal_decision d);
enum legal_decision legal_decision_parse(const char *s);
/* Parses "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC). A bare date means its
 * first second, or with END_OF_DAY the first second of the next day (so a
 * date "until" or "to" includes the whole day). */
int legal_date_parse(const char *s, int end_of_day, int64_t *t_r) WARN_UNUSED;
/* "YYYY-MM-DDTHH:MM:SSZ". */
void legal_time_format(int64_t t, char out[LEGAL_TIME_MAX]);
/* A request's id is "LR-" followed by the index of its legal.received entry
 * in the transparency log, so it is unique for the log's lifetime. */
void legal_id_format(uint64_t index, char out[LEGAL_ID_MAX]);
int legal_id_parse(const char *id, uint64_t *index_r) WARN_UNUSED;
/* The commitment that stands for an account in legal.decided entries:
 * hex(SHA-256("sealmail-legal-account\n" TAG_HEX "\n" NONCE_HEX)). The
 * legal.notified entry later reveals TAG_HEX and NONCE_HEX. */
void legal_commitment(const char *tag_hex, const char *nonce_hex, char out[LEGAL_HASH_HEX_MAX]);

/* ---- policy (legal-policy.c) ----------------------------------------------
 * The policy file: INI sections [policy] and [region NAME]; see docs/legal.md.
 * Errors have the form "PATH:LINE: problem". */
struct legal_policy;

int legal_policy_parse(const char *path, const char *text, size_t len,
		       struct legal_policy **policy_r, const char **error_r) WARN_UNUSED;
int legal_policy_load(const char *path, struct legal_policy **policy_r,
		      const char **error_r) WARN_UNUSED;
/* Fails ("PATH:LINE: ...") if the policy names a region CFG does not have. */
int legal_policy_check(const struct legal_policy *policy, const struct config *cfg,
		       const char **error_r) WARN_UNUSED;
void legal_policy_free(struct legal_policy **policy);
/* Appends one line that states everything a decision depends on (instrument
 * lists, preservation, channels, partners per region), in file order and
 * without comments: the policy's public summary. */
void legal_policy_summary(const struct legal_policy *policy, struct buf *out);
/* hex(SHA-256(summary)): two files that decide alike hash alike. */
void legal_policy_hash(const struct legal_policy *policy, char out[LEGAL_HASH_HEX_MAX]);
/* Writes the default policy to PATH (mode 0600); refuses to overwrite. */
int legal_policy_write_default(const char *path, const char **error_r) WARN_UNUSED;

struct legal_verdict {
	enum legal_decision decision;            /* LEGAL_ACCEPTED or LEGAL_REFUSED */
	const char *reason;                      /* class; static string */
	char channel[LEGAL_CHANNEL_MAX];         /* "IE via mutual legal assistance" or "" */
	char explanation[LEGAL_EXPLANATION_MAX]; /* one sentence for people */
};

/* Decides a request from ISSUER (ISO code) for data of an account homed in
 * REGION, whose jurisdiction is DATA_JURISDICTION. Reason classes:
 * "same-jurisdiction", "partner" and "preservation" (accepted);
 * "foreign-jurisdiction" (refused with a channel), "instrument" and
 * "preservation-not-honoured" (refused). */
void legal_policy_decide(const struct legal_policy *policy, const char *region,
			 const char *data_jurisdiction, const char *issuer,
			 enum legal_instrument instrument, enum legal_scope scope,
			 struct legal_verdict *verdict_r);

/* ---- the request store and its actions ------------------------------------ */
struct legal;

/* Opens DIR/legal/requests.sqlite (DIR = the config's folder; created with
 * mode 0700) and the sealing key keys_dir/legal.key (created when missing).
 * ROUTER and LOG stay owned by the caller and must outlive the handle. */
int legal_open(const struct config *cfg, struct router *router, struct tlog *log,
	       struct legal **legal_r, const char **error_r) WARN_UNUSED;
void legal_close(struct legal **legal);

struct legal_filing {
	const char *authority;    /* e.g. "US District Court, S.D.N.Y." */
	const char *jurisdiction; /* issuing jurisdiction, ISO 3166-1 alpha-2 */
	enum legal_instrument instrument;
	const char *reference; /* the instrument's reference; kept sealed */
	enum legal_scope scope;
	const char *const *addresses;
	size_t address_count;
	int64_t nondisclosure_ends; /* first second the owner may be told; 0 none */
};

/* Logs legal.received and stores the request. ID_R receives its id. */
int legal_file(struct legal *legal, const struct legal_filing *filing, char id_r[LEGAL_ID_MAX],
	       const char **error_r) WARN_UNUSED;
/* Applies the policy file ([legal] policy) to every account the request
 * names: one legal.decided entry per account, then the owner notices that
 * are due now. Only for a request not decided yet. */
int legal_decide(struct legal *legal, const char *id, const char **error_r) WARN_UNUSED;
/* The operator refuses the request (not decided yet): REASON is kept sealed;
 * the log records the reason class "operator". Owners are notified. */
int legal_reject(struct legal *legal, const char *id, const char *reason,
		 const char **error_r) WARN_UNUSED;

struct legal_export_result {
	uint64_t log_index; /* of the legal.exported entry */
	unsigned accounts;
	uint64_t records; /* messages listed */
	uint64_t bytes;   /* sealed bytes written */
	char manifest_sha256[LEGAL_HASH_HEX_MAX];
};

/* Writes the bundle of an accepted request into OUT_DIR, which must not
 * exist: sealed records (content scope) or index metadata only (non-content
 * scope) of the accepted accounts, manifest.json, its signature by the log
 * key, and the legal.exported entry with its inclusion proof. The entry is
 * durable before any file of the bundle is written; OUT_DIR appears (by
 * rename) only when the bundle is complete. */
int legal_export(struct legal *legal, const char *id, const char *out_dir,
		 struct legal_export_result *result_r, const char **error_r) WARN_UNUSED;

/* Releases owner notices due at AS_OF (unix seconds): for each decided
 * request whose non-disclosure order has ended (or that had none), appends
 * legal.notified and delivers a sealed notice to each named owner's INBOX.
 * *RELEASED_R counts the notices delivered. */
int legal_notify(struct legal *legal, int64_t as_of, unsigned *released_r,
		 const char **error_r) WARN_UNUSED;

/* For the daemon, at start and on a timer: legal_open + legal_notify(now or
 * AS_OF when > 0) + legal_close. Blocks on disk syncs and sealing: call it
 * from a worker thread, never from an event loop. Another process working on
 * the request store at the same time is waited for (file lock). */
int legal_notify_due(const struct config *cfg, struct router *router, struct tlog *log,
		     int64_t as_of, unsigned *released_r, const char **error_r) WARN_UNUSED;

/* Loads the policy file ([legal] policy) and, if its hash differs from the
 * one in the log's last policy.changed entry (or there is none), appends
 * policy.changed with the hash and the summary. For the daemon at start;
 * `legal decide` does the same before deciding. */
int legal_policy_record(const struct config *cfg, struct router *router, struct tlog *log,
			const char **error_r) WARN_UNUSED;

/* Ends the hold of a decided preservation request: appends legal.released
 * (with the request id) and records it. Until then the accounts it accepted
 * cannot be deleted. *INDEX_R receives the entry's log index. */
int legal_release(struct legal *legal, const char *id, uint64_t *index_r,
		  const char **error_r) WARN_UNUSED;
/* 1 when an accepted, unreleased preservation request holds ACCT (its id in
 * ID_R), 0 when none does, -1 on error. */
int legal_account_held(struct legal *legal, const struct account *acct, char id_r[LEGAL_ID_MAX],
		       const char **error_r) WARN_UNUSED;

/* ---- reading requests (legal-db.c) ----------------------------------------- */
struct legal_account_info {
	int position;                /* 1-based, as named */
	char *address;               /* opened from its sealed copy */
	char tag[LEGAL_TAG_HEX_MAX]; /* "" until decided, or no account */
	char region[64];
	char data_jurisdiction[3];
	enum legal_decision decision;
	char reason[40];
	char *channel;
	char *explanation;
	int64_t decided_index; /* -1 if none */
	char notice[16];       /* none, pending, logged, delivered, gone */
	int64_t notice_index;  /* -1 if none */
};

struct legal_export_info {
	uint64_t log_index;
	int64_t created;
	char manifest_sha256[LEGAL_HASH_HEX_MAX];
};

struct legal_request {
	char id[LEGAL_ID_MAX];
	uint64_t index; /* of legal.received */
	int64_t received;
	char *authority;
	char jurisdiction[3];
	enum legal_instrument instrument;
	enum legal_scope scope;
	char *reference;            /* opened from its sealed copy */
	int64_t nondisclosure_ends; /* 0 none */
	char status[16];            /* received, decided, rejected */
	int64_t decided;
	char *reject_reason;      /* NULL unless rejected */
	int64_t released_index;   /* legal.released entry; -1 none */
	int64_t nd_expired_index; /* legal.nondisclosure_expired entry; -1 none */
	struct legal_account_info *accounts;
	size_t account_count;
	struct legal_export_info *exports;
	size_t export_count;
};

/* 1 found, 0 unknown id, -1 error. */
int legal_request_get(struct legal *legal, const char *id, struct legal_request **req_r,
		      const char **error_r) WARN_UNUSED;
/* Calls FN for each request, oldest first; stops when FN returns non-zero. */
int legal_request_list(struct legal *legal, int (*fn)(void *ctx, const struct legal_request *req),
		       void *ctx, const char **error_r) WARN_UNUSED;
void legal_request_free(struct legal_request **req);

/* ---- bundles (legal-bundle.c) ----------------------------------------------
 * Checks bundle DIR: log.json's entry is a legal.exported entry included in a
 * checkpoint signed by the log whose verifier key is VERIFIER_KEY, its
 * manifest_sha256 is the hash of manifest.json, manifest.sig is that log
 * key's signature of manifest.json, and every file the manifest lists has
 * the listed size and hash. */
int legal_bundle_verify(const char *dir, const char *verifier_key,
			const char **error_r) WARN_UNUSED;
/* The owner's side: opens every sealed record of account TAG_HEX in bundle
 * DIR with the account's unlocked key KP and writes each message to OUT_DIR
 * (created, mode 0700) as NAME.eml. Fails if a record does not open. */
int legal_bundle_open(const char *dir, const char *tag_hex, const struct seal_keypair *kp,
		      const char *out_dir, unsigned *opened_r, const char **error_r) WARN_UNUSED;

/* ---- the transparency report (legal-report.c, legal-report-html.c) ---------- */
struct legal_report;

/* Aggregates the log's first tlog_size() entries (fixed when called) for
 * requests received in [FROM, TO) (unix seconds). */
int legal_report_compute(struct tlog *log, int64_t from, int64_t to, struct legal_report **report_r,
			 const char **error_r) WARN_UNUSED;
void legal_report_json(const struct legal_report *report, struct buf *out);
/* One self-contained page: inline CSS and SVG, no external resources. */
void legal_report_html(const struct legal_report *report, struct buf *out);
void legal_report_free(struct legal_report **report);

#endif

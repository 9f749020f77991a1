/* legal-private.h — shared between the legal module's files.
 *
 * Trust boundary: see legal.h. The handle holds the request store's sealing
 * key; it is wiped by legal_close(). */
#ifndef SEALMAIL_LEGAL_PRIVATE_H
#define SEALMAIL_LEGAL_PRIVATE_H

#include "crypto/seal.h"
#include "legal/legal.h"

#include <sqlite3.h>

#define LEGAL_NONCE_BYTES 16
#define LEGAL_LOCK_NAME   "lock"

struct legal {
	const struct config *cfg;
	struct router *router;
	struct tlog *log;
	sqlite3 *db;
	uint8_t key[SEAL_KEY_BYTES]; /* seals addresses, references, reasons */
	int lock_fd;
	int locked;
};

/* ---- legal-util.c: output helpers (abort on out-of-memory) ---------------- */
void legal_put(struct buf *b, const char *s);
void legal_putf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* A JSON string literal with quotes; control characters as \u00xx. */
void legal_put_json(struct buf *b, const char *s);
void legal_hex(const void *data, size_t len, char *out);
/* Text an authority typed: non-empty, valid UTF-8, no control characters
 * (newlines allowed if MULTILINE), at most MAX bytes. */
int legal_text_valid(const char *s, size_t max, int multiline);
/* An ISO 3166-1 alpha-2 code; copied upper-cased into OUT. */
int legal_jurisdiction_parse(const char *s, char out[3]) WARN_UNUSED;
/* Reads KEY_PATH (32 bytes) or creates it (0600). */
int legal_key_load(const char *keys_dir, uint8_t key_r[SEAL_KEY_BYTES],
		   const char **error_r) WARN_UNUSED;

/* ---- legal-db.c: the request store ---------------------------------------- */
/* Serialises changes between processes (CLI, daemon): flock on DIR/legal/lock. */
int legal_lock(struct legal *legal, const char **error_r) WARN_UNUSED;
void legal_unlock(struct legal *legal);
int legal_db_exec(struct legal *legal, const char *sql, const char **error_r) WARN_UNUSED;
int legal_db_fail(struct legal *legal, const char **error_r);
/* Seals / opens a short text under the store key; sealing returns a malloc'd
 * blob, opening a malloc'd NUL-terminated string (NULL if it does not open). */
uint8_t *legal_seal_text(struct legal *legal, const char *text, size_t *len_r);
char *legal_open_text(struct legal *legal, const void *blob, size_t len);
int legal_db_insert_request(struct legal *legal, uint64_t index, int64_t received,
			    const struct legal_filing *filing, char *const *addresses,
			    const char **error_r) WARN_UNUSED;
/* Stores the decision of account POSITION of request INDEX. */
int legal_db_set_decision(struct legal *legal, uint64_t index,
			  const struct legal_account_info *acct, const char *nonce_hex,
			  const char *notice, const char **error_r) WARN_UNUSED;
int legal_db_set_status(struct legal *legal, uint64_t index, const char *status, int64_t decided,
			const char *reject_reason, const char **error_r) WARN_UNUSED;
int legal_db_set_notice(struct legal *legal, uint64_t index, int position, const char *notice,
			int64_t notice_index, const char **error_r) WARN_UNUSED;
/* The commitment nonce of an account, hex; "" if none. */
int legal_db_nonce(struct legal *legal, uint64_t index, int position,
		   char out[2 * LEGAL_NONCE_BYTES + 1], const char **error_r) WARN_UNUSED;
int legal_db_add_export(struct legal *legal, uint64_t index, uint64_t log_index,
			const char *manifest_sha256, const char **error_r) WARN_UNUSED;
int legal_db_add_release(struct legal *legal, uint64_t index, uint64_t log_index,
			 const char **error_r) WARN_UNUSED;
/* Indexes of the requests that have a notice waiting (pending or logged) or
 * whose non-disclosure order ended by AS_OF without legal.nondisclosure_expired
 * logged yet. */
int legal_db_pending_notices(struct legal *legal, int64_t as_of, uint64_t **indexes_r,
			     size_t *count_r, const char **error_r) WARN_UNUSED;
int legal_db_add_nd_expired(struct legal *legal, uint64_t index, uint64_t log_index,
			    const char **error_r) WARN_UNUSED;

/* ---- legal-notify.c -------------------------------------------------------- */
/* Releases the due notices of request REQ (loaded, decided or rejected). */
int legal_notify_request(struct legal *legal, const struct legal_request *req, int64_t as_of,
			 unsigned *released_r, const char **error_r) WARN_UNUSED;

/* ---- legal-report.c: shared with legal-report-html.c ----------------------- */
enum legal_report_count {
	LR_REQUESTS,
	LR_ACCOUNTS,
	LR_ACCEPTED,
	LR_REFUSED,
	LR_REDIRECTED,
	LR_REJECTED,
	LR_NO_DATA,
	LR_CONTENT,
	LR_NON_CONTENT,
	LR_NOTIFIED,
	LR_ND_ACTIVE,
	LEGAL_REPORT_COUNTS
};
/* JSON names of the counts. */
extern const char *const legal_report_names[LEGAL_REPORT_COUNTS];

struct legal_strings {
	char **v;
	size_t n;
};

struct legal_report_row {
	char jur[8]; /* ISO code, or "all" for the totals */
	uint64_t v[LEGAL_REPORT_COUNTS];
	struct legal_strings channels; /* refusal channels ... */
	uint64_t *channel_counts;      /* ... and the requests refused with each */
};

struct legal_report {
	char *origin;
	uint64_t size;                 /* entries the report covers */
	char *root;                    /* base64 root hash at SIZE */
	struct buf checkpoint;         /* signed checkpoint note for SIZE */
	int64_t from, to;              /* [from, to) */
	struct legal_report_row *rows; /* sorted by jurisdiction */
	size_t row_count;
	struct legal_report_row totals;
};

#endif

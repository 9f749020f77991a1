/* tlog-private.h — the log handle and the database helpers shared by
 * tlog-store.c (opening, appending) and tlog-query.c (reading, proofs,
 * verification). No file outside src/tlog/ may include it.
 *
 * Trust boundary: struct tlog holds the log's secret signing key. */
#ifndef SEALMAIL_TLOG_PRIVATE_H
#define SEALMAIL_TLOG_PRIVATE_H

#include "crypto/seal.h"
#include "tlog/tlog.h"

#include <sqlite3.h>

struct tlog {
	sqlite3 *db;
	char *origin;
	uint8_t sk[SEAL_SIGN_SK_BYTES];
	const uint8_t *pk;      /* second half of sk (libsodium layout) */
	struct tlog_tree *tree; /* leaf hashes as last read from the database */
	char error[512];
};

/* Formats an error into log->error, points *error_r at it and returns -1.
 * Arguments may come from str_tfmt() or SQLite, never from log->error. */
int tlog_fail(struct tlog *log, const char **error_r, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* tlog_fail() with SQLite's message for the last call. */
int tlog_db_fail(struct tlog *log, const char **error_r, const char *what);
int tlog_db_exec(struct tlog *log, const char *sql, const char **error_r);
sqlite3_stmt *tlog_db_prepare(struct tlog *log, const char *sql, const char **error_r);
/* Rolls back the open transaction, if any. */
void tlog_db_rollback(struct tlog *log);

/* Reads leaf hashes appended since we last looked (possibly by another
 * process) into log->tree; fails if the stored indexes have a gap. */
int tlog_refresh(struct tlog *log, const char **error_r);
/* Replaces NOTE_R with the stored checkpoint for SIZE; 1 if there is none. */
int tlog_load_checkpoint(struct tlog *log, uint64_t size, struct buf *note_r, const char **error_r);
/* Checks NOTE's signature and origin, that it is for WANT_SIZE, and that its
 * root equals TREE's root at that size. */
/* 0 if TREE has at least SIZE leaves and ROOT is its root at SIZE, else why
 * not. */
#define TLOG_ROOT_SHORT   1
#define TLOG_ROOT_DIFFERS 2
int tlog_root_check(const struct tlog_tree *tree, uint64_t size,
		    const uint8_t root[TLOG_HASH_BYTES]);
int tlog_check_note(struct tlog *log, const struct tlog_tree *tree, const struct buf *note,
		    uint64_t want_size, const char **error_r);

#endif

/* tlog-query.c — reading the log: entries, checkpoints, proofs, and the full
 * verification of everything stored.
 *
 * Trust boundary: the database may have been edited behind our back. Proofs
 * and checkpoints are only handed out after the stored checkpoint for their
 * size has been checked against its signature and the leaves; tlog_verify()
 * recomputes every hash from the stored entry bytes. */
#include "tlog/tlog-private.h"

#include <stdlib.h>
#include <string.h>

int tlog_entry(struct tlog *log, uint64_t index, struct buf *json_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	st = tlog_db_prepare(log, "SELECT data FROM entries WHERE idx = ?1", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		buf_reset(json_r);
		if (buf_append(json_r, sqlite3_column_blob(st, 0),
			       (size_t)sqlite3_column_bytes(st, 0)) < 0)
			ret = tlog_fail(log, error_r, "tlog: out of memory");
	} else if (rc == SQLITE_DONE) {
		ret = tlog_fail(log, error_r, "tlog: no entry %llu", (unsigned long long)index);
	} else {
		ret = tlog_db_fail(log, error_r, "reading entry");
	}
	sqlite3_finalize(st);
	return ret;
}

int tlog_foreach(struct tlog *log, uint64_t from, tlog_entry_fn *fn, void *ctx,
		 const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	st = tlog_db_prepare(log, "SELECT idx, data FROM entries WHERE idx >= ?1 ORDER BY idx",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
			 (size_t)sqlite3_column_bytes(st, 1));
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "reading entries");
	sqlite3_finalize(st);
	return ret;
}

int tlog_checkpoint_at(struct tlog *log, uint64_t size, struct buf *note_r, const char **error_r)
{
	int rc;

	if (tlog_refresh(log, error_r) < 0)
		return -1;
	rc = tlog_load_checkpoint(log, size, note_r, error_r);
	if (rc < 0)
		return -1;
	if (rc == 1)
		return tlog_fail(log, error_r, "tlog: no checkpoint for size %llu",
				 (unsigned long long)size);
	return tlog_check_note(log, log->tree, note_r, size, error_r);
}

int tlog_checkpoint(struct tlog *log, struct buf *note_r, const char **error_r)
{
	if (tlog_refresh(log, error_r) < 0)
		return -1;
	return tlog_checkpoint_at(log, tlog_tree_size(log->tree), note_r, error_r);
}

int tlog_root(struct tlog *log, uint64_t size, uint8_t root_r[TLOG_HASH_BYTES],
	      const char **error_r)
{
	const char *error;

	if (tlog_refresh(log, error_r) < 0)
		return -1;
	if (tlog_tree_root(log->tree, size, root_r, &error) < 0)
		return tlog_fail(log, error_r, "tlog: %s", error);
	return 0;
}

/* Root at SIZE, checked against the signed checkpoint stored for SIZE. */
static int signed_root(struct tlog *log, uint64_t size, uint8_t root_r[TLOG_HASH_BYTES],
		       const char **error_r)
{
	struct buf note;
	int ret;

	buf_init(&note);
	ret = tlog_checkpoint_at(log, size, &note, error_r);
	buf_free(&note);
	if (ret == 0)
		ret = tlog_root(log, size, root_r, error_r);
	return ret;
}

int tlog_prove_inclusion(struct tlog *log, uint64_t index, uint64_t size,
			 uint8_t leaf_r[TLOG_HASH_BYTES], uint8_t root_r[TLOG_HASH_BYTES],
			 struct tlog_proof *proof_r, const char **error_r)
{
	const char *error;

	if (signed_root(log, size, root_r, error_r) < 0)
		return -1;
	if (tlog_tree_prove_inclusion(log->tree, index, size, proof_r, &error) < 0)
		return tlog_fail(log, error_r, "tlog: %s", error);
	memcpy(leaf_r, tlog_tree_leaf(log->tree, index), TLOG_HASH_BYTES);
	if (tlog_verify_inclusion(leaf_r, index, size, proof_r, root_r) < 0)
		log_panic("tlog: inclusion proof for %llu in %llu does not verify",
			  (unsigned long long)index, (unsigned long long)size);
	return 0;
}

int tlog_prove_consistency(struct tlog *log, uint64_t old_size, uint64_t new_size,
			   uint8_t old_root_r[TLOG_HASH_BYTES], uint8_t new_root_r[TLOG_HASH_BYTES],
			   struct tlog_proof *proof_r, const char **error_r)
{
	const char *error;

	if (signed_root(log, old_size, old_root_r, error_r) < 0 ||
	    signed_root(log, new_size, new_root_r, error_r) < 0)
		return -1;
	if (tlog_tree_prove_consistency(log->tree, old_size, new_size, proof_r, &error) < 0)
		return tlog_fail(log, error_r, "tlog: %s", error);
	if (tlog_verify_consistency(old_size, new_size, old_root_r, new_root_r, proof_r) < 0)
		log_panic("tlog: consistency proof %llu..%llu does not verify",
			  (unsigned long long)old_size, (unsigned long long)new_size);
	return 0;
}

char *tlog_verifier_key(struct tlog *log)
{
	return tlog_note_verifier_key(log->origin, log->pk);
}

const char *tlog_origin(const struct tlog *log)
{
	return log->origin;
}

/* Recomputes every leaf from the stored bytes into TREE. */
static int verify_entries(struct tlog *log, struct tlog_tree *tree, const char **error_r)
{
	uint8_t leaf[TLOG_HASH_BYTES];
	sqlite3_stmt *st;
	struct buf again;
	char **fields = NULL;
	const char *error;
	int rc, ret = 0;

	buf_init(&again);
	st = tlog_db_prepare(log, "SELECT idx, data, leaf_hash FROM entries ORDER BY idx", error_r);
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
		const void *data = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		if (idx != tlog_tree_size(tree)) {
			ret = tlog_fail(log, error_r, "tlog: entry %llu is missing",
					(unsigned long long)tlog_tree_size(tree));
			break;
		}
		tlog_leaf_hash(data, len, leaf);
		if (sqlite3_column_bytes(st, 2) != TLOG_HASH_BYTES ||
		    memcmp(sqlite3_column_blob(st, 2), leaf, TLOG_HASH_BYTES) != 0) {
			ret = tlog_fail(log, error_r, "tlog: entry %llu has a wrong leaf hash",
					(unsigned long long)idx);
			break;
		}
		buf_reset(&again);
		if (tlog_json_decode(data, len, &fields, &error) < 0 ||
		    tlog_json_encode((const char *const *)fields, &again, &error) < 0 ||
		    again.len != len || memcmp(again.data, data, len) != 0 ||
		    tlog_json_field(fields, "type") == NULL ||
		    tlog_json_field(fields, "time") == NULL) {
			tlog_json_fields_free(&fields);
			ret = tlog_fail(log, error_r, "tlog: entry %llu is not a canonical event",
					(unsigned long long)idx);
			break;
		}
		tlog_json_fields_free(&fields);
		tlog_tree_append(tree, leaf);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "reading entries");
	sqlite3_finalize(st);
	buf_free(&again);
	return ret;
}

static int verify_checkpoints(struct tlog *log, const struct tlog_tree *tree, const char **error_r)
{
	uint64_t newest = 0, count = 0;
	sqlite3_stmt *st;
	struct buf note;
	int rc, ret = 0;

	buf_init(&note);
	st = tlog_db_prepare(log, "SELECT size, note FROM checkpoints ORDER BY size", error_r);
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 0);

		buf_reset(&note);
		if (buf_append(&note, sqlite3_column_blob(st, 1),
			       (size_t)sqlite3_column_bytes(st, 1)) < 0) {
			ret = tlog_fail(log, error_r, "tlog: out of memory");
			break;
		}
		if ((ret = tlog_check_note(log, tree, &note, size, error_r)) < 0)
			break;
		newest = size;
		count++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "reading checkpoints");
	if (ret == 0 && (count == 0 || newest != tlog_tree_size(tree)))
		ret = tlog_fail(log, error_r,
				"tlog: entries from %llu on are not covered by a signed "
				"checkpoint (inserted?)",
				count == 0 ? 0ULL : (unsigned long long)newest);
	sqlite3_finalize(st);
	buf_free(&note);
	return ret;
}

/* A checkpoint published earlier: signed by this log's key, for a size the
 * log still has, with the root the stored entries give at that size. */
static int verify_published(struct tlog *log, const struct tlog_tree *tree, const void *note,
			    size_t len, const char **error_r)
{
	uint8_t root[TLOG_HASH_BYTES];
	const char *error;
	uint64_t size;
	int r;

	if (tlog_checkpoint_open(note, len, log->origin, log->pk, &size, root, &error) < 0)
		return tlog_fail(log, error_r, "tlog: the published checkpoint: %s", error);
	r = tlog_root_check(tree, size, root);
	if (r == TLOG_ROOT_SHORT)
		return tlog_fail(log, error_r,
				 "tlog: the published checkpoint is for size %llu but the log has "
				 "only %llu entries (rolled back?)",
				 (unsigned long long)size,
				 (unsigned long long)tlog_tree_size(tree));
	if (r == TLOG_ROOT_DIFFERS)
		return tlog_fail(log, error_r,
				 "tlog: the log's first %llu entries do not match the published "
				 "checkpoint (rewritten?)",
				 (unsigned long long)size);
	return 0;
}

int tlog_verify(struct tlog *log, const char **error_r)
{
	return tlog_verify_published(log, NULL, 0, error_r);
}

int tlog_verify_published(struct tlog *log, const void *note, size_t len, const char **error_r)
{
	struct tlog_tree *tree = tlog_tree_new();
	int ret = -1;

	/* One read transaction: a consistent snapshot even while others append. */
	if (tlog_db_exec(log, "BEGIN", error_r) < 0)
		goto out;
	if (verify_entries(log, tree, error_r) < 0 || verify_checkpoints(log, tree, error_r) < 0)
		goto out;
	if (note != NULL && verify_published(log, tree, note, len, error_r) < 0)
		goto out;
	ret = 0;
out:
	tlog_db_rollback(log);
	tlog_tree_free(&tree);
	return ret;
}

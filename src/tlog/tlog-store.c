/* tlog-store.c — the log itself: opening the SQLite file, the key, and
 * durable appends of entries with their signed checkpoints.
 *
 * Trust boundary: the database is on the operator's disk and may have been
 * edited by anyone with access to it; tlog_append() refuses to extend a log
 * whose leaves no longer match its newest signed checkpoint (tlog-query.c
 * checks the rest). The key file is the log's only secret: it must not be
 * readable by group or others and is wiped from memory at close. One struct
 * tlog must not be used by two threads at once; several processes may append
 * to one log (appends serialise on the database's write lock). */
#include "tlog/tlog-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TLOG_BUSY_TIMEOUT_MS 10000

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL,"
    " leaf_hash BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);";

int tlog_fail(struct tlog *log, const char **error_r, const char *fmt, ...)
{
	char tmp[sizeof(log->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(log->error, tmp, sizeof(tmp));
	*error_r = log->error;
	return -1;
}

int tlog_db_fail(struct tlog *log, const char **error_r, const char *what)
{
	return tlog_fail(log, error_r, "tlog: %s: %s", what, sqlite3_errmsg(log->db));
}

int tlog_db_exec(struct tlog *log, const char *sql, const char **error_r)
{
	if (sqlite3_exec(log->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return tlog_db_fail(log, error_r, sql);
	return 0;
}

sqlite3_stmt *tlog_db_prepare(struct tlog *log, const char *sql, const char **error_r)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(log->db, sql, -1, &st, NULL) != SQLITE_OK) {
		tlog_db_fail(log, error_r, "prepare");
		return NULL;
	}
	return st;
}

void tlog_db_rollback(struct tlog *log)
{
	if (sqlite3_get_autocommit(log->db) == 0)
		(void)sqlite3_exec(log->db, "ROLLBACK", NULL, NULL, NULL);
}

int tlog_refresh(struct tlog *log, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	st = tlog_db_prepare(log, "SELECT idx, leaf_hash FROM entries WHERE idx >= ?1 ORDER BY idx",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)tlog_tree_size(log->tree));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);

		if (idx != tlog_tree_size(log->tree) ||
		    sqlite3_column_bytes(st, 1) != TLOG_HASH_BYTES) {
			ret = tlog_fail(log, error_r,
					"tlog: log is corrupt at entry %llu; "
					"run 'sealmail log verify'",
					(unsigned long long)idx);
			break;
		}
		tlog_tree_append(log->tree, sqlite3_column_blob(st, 1));
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "reading leaf hashes");
	sqlite3_finalize(st);
	return ret;
}

int tlog_load_checkpoint(struct tlog *log, uint64_t size, struct buf *note_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	st = tlog_db_prepare(log, "SELECT note FROM checkpoints WHERE size = ?1", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		buf_reset(note_r);
		ret = 0;
		if (buf_append(note_r, sqlite3_column_blob(st, 0),
			       (size_t)sqlite3_column_bytes(st, 0)) < 0)
			ret = tlog_fail(log, error_r, "tlog: out of memory");
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else {
		ret = tlog_db_fail(log, error_r, "reading checkpoint");
	}
	sqlite3_finalize(st);
	return ret;
}

int tlog_check_note(struct tlog *log, const struct tlog_tree *tree, const struct buf *note,
		    uint64_t want_size, const char **error_r)
{
	uint8_t root[TLOG_HASH_BYTES];
	const char *error;
	uint64_t size;
	int r;

	r = tlog_checkpoint_open(note->data, note->len, log->origin, log->pk, &size, root, &error);
	if (r < 0)
		return tlog_fail(log, error_r, "tlog: checkpoint for size %llu: %s",
				 (unsigned long long)want_size, error);
	if (size != want_size)
		return tlog_fail(log, error_r,
				 "tlog: checkpoint stored for size %llu says size %llu",
				 (unsigned long long)want_size, (unsigned long long)size);
	r = tlog_root_check(tree, size, root);
	if (r == TLOG_ROOT_SHORT)
		return tlog_fail(log, error_r,
				 "tlog: signed checkpoint for size %llu but the log has "
				 "only %llu entries (entries deleted?)",
				 (unsigned long long)size,
				 (unsigned long long)tlog_tree_size(tree));
	if (r == TLOG_ROOT_DIFFERS)
		return tlog_fail(log, error_r,
				 "tlog: entries do not match the signed checkpoint for "
				 "size %llu (edited, reordered or deleted?)",
				 (unsigned long long)size);
	return 0;
}

int tlog_root_check(const struct tlog_tree *tree, uint64_t size,
		    const uint8_t root[TLOG_HASH_BYTES])
{
	uint8_t ours[TLOG_HASH_BYTES];
	const char *error;

	if (size > tlog_tree_size(tree))
		return TLOG_ROOT_SHORT;
	if (tlog_tree_root(tree, size, ours, &error) < 0 ||
	    memcmp(root, ours, TLOG_HASH_BYTES) != 0)
		return TLOG_ROOT_DIFFERS;
	return 0;
}

/* Signs and stores the checkpoint for the tree's current size. */
static int store_checkpoint(struct tlog *log, const char **error_r)
{
	uint64_t size = tlog_tree_size(log->tree);
	uint8_t root[TLOG_HASH_BYTES];
	struct buf text, note;
	sqlite3_stmt *st = NULL;
	const char *error = "out of memory";
	int ret = -1;

	buf_init(&text);
	buf_init(&note);
	if (tlog_tree_root(log->tree, size, root, &error) < 0 ||
	    tlog_checkpoint_format(log->origin, size, root, &text) < 0 ||
	    tlog_note_sign(text.data, text.len, log->origin, log->sk, &note, &error) < 0) {
		tlog_fail(log, error_r, "tlog: signing checkpoint: %s", error);
		goto out;
	}
	st = tlog_db_prepare(log, "INSERT INTO checkpoints (size, note) VALUES (?1, ?2)", error_r);
	if (st == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
	sqlite3_bind_blob(st, 2, note.data, (int)note.len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		tlog_db_fail(log, error_r, "storing checkpoint");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	buf_free(&text);
	buf_free(&note);
	return ret;
}

static int read_key(struct tlog *log, const char *key_path, const char **error_r)
{
	static const char probe[] = "sealmail tlog key check";
	uint8_t sig[SEAL_SIGN_BYTES], *data = NULL;
	struct stat stb;
	size_t len = 0;
	int ret = -1;

	if (stat(key_path, &stb) < 0 || fs_read_all(key_path, &data, &len) < 0) {
		tlog_fail(log, error_r, "tlog: cannot read key file %s: %s", key_path,
			  strerror(errno));
		goto out;
	}
	if ((stb.st_mode & 077) != 0) {
		tlog_fail(log, error_r, "tlog: key file %s is accessible by group or others",
			  key_path);
		goto out;
	}
	if (len != SEAL_SIGN_SK_BYTES) {
		tlog_fail(log, error_r, "tlog: key file %s is not a %d-byte Ed25519 key", key_path,
			  SEAL_SIGN_SK_BYTES);
		goto out;
	}
	memcpy(log->sk, data, SEAL_SIGN_SK_BYTES);
	log->pk = log->sk + 32;
	seal_sign(log->sk, probe, sizeof(probe), sig);
	if (seal_sign_verify(log->pk, probe, sizeof(probe), sig) < 0) {
		tlog_fail(log, error_r, "tlog: key file %s is corrupt", key_path);
		goto out;
	}
	ret = 0;
out:
	if (data != NULL) {
		mem_wipe(data, len);
		free(data);
	}
	return ret;
}

/* Reads a meta value; 1 if absent. */
static int meta_get(struct tlog *log, const char *name, struct buf *value_r, const char **error_r)
{
	sqlite3_stmt *st = tlog_db_prepare(log, "SELECT value FROM meta WHERE name = ?1", error_r);
	int rc, ret = 1;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = 0;
		if (buf_append(value_r, sqlite3_column_blob(st, 0),
			       (size_t)sqlite3_column_bytes(st, 0)) < 0)
			ret = tlog_fail(log, error_r, "tlog: out of memory");
	} else if (rc != SQLITE_DONE) {
		ret = tlog_db_fail(log, error_r, "reading meta");
	}
	sqlite3_finalize(st);
	return ret;
}

static int meta_put(struct tlog *log, const char *name, const void *value, size_t len,
		    const char **error_r)
{
	sqlite3_stmt *st =
	    tlog_db_prepare(log, "INSERT INTO meta (name, value) VALUES (?1, ?2)", error_r);
	int ret = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "writing meta");
	sqlite3_finalize(st);
	return ret;
}

/* Creates the tables, or checks that an existing log has our origin and key. */
static int setup_db(struct tlog *log, const char **error_r)
{
	struct buf origin, pk;
	int r1, r2, ret = -1;

	buf_init(&origin);
	buf_init(&pk);
	if (tlog_db_exec(log, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (tlog_db_exec(log, schema, error_r) < 0 ||
	    (r1 = meta_get(log, "origin", &origin, error_r)) < 0 ||
	    (r2 = meta_get(log, "public_key", &pk, error_r)) < 0)
		goto out;
	if (r1 == 1 && r2 == 1) {
		if (meta_put(log, "origin", log->origin, strlen(log->origin), error_r) < 0 ||
		    meta_put(log, "public_key", log->pk, 32, error_r) < 0 ||
		    store_checkpoint(log, error_r) < 0)
			goto out;
	} else if (r1 != 0 || origin.len != strlen(log->origin) ||
		   memcmp(origin.data, log->origin, origin.len) != 0) {
		tlog_fail(log, error_r, "tlog: the log's origin is not '%s'", log->origin);
		goto out;
	} else if (r2 != 0 || pk.len != 32 || memcmp(pk.data, log->pk, 32) != 0) {
		tlog_fail(log, error_r, "tlog: the key file does not hold the log's key");
		goto out;
	}
	ret = tlog_db_exec(log, "COMMIT", error_r);
out:
	if (ret < 0)
		tlog_db_rollback(log);
	buf_free(&origin);
	buf_free(&pk);
	return ret;
}

int tlog_open(const char *dir, const char *origin, const char *key_path, struct tlog **log_r,
	      const char **error_r)
{
	struct tlog *log = xcalloc(1, sizeof(*log));
	char *path = fs_path_join(dir, TLOG_DB_NAME);
	sqlite3_stmt *st = NULL;
	const char *error;
	int rc;

	log->origin = xstrdup(origin);
	log->tree = tlog_tree_new();
	if (!tlog_note_name_valid(origin)) {
		tlog_fail(log, &error, "tlog: invalid origin '%s' (no spaces or '+')", origin);
		goto fail;
	}
	if (read_key(log, key_path, &error) < 0)
		goto fail;
	if (fs_mkdir_p(dir, 0700) < 0) {
		tlog_fail(log, &error, "tlog: cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(path, &log->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		tlog_db_fail(log, &error, path);
		goto fail;
	}
	sqlite3_busy_timeout(log->db, TLOG_BUSY_TIMEOUT_MS);
	st = tlog_db_prepare(log, "PRAGMA journal_mode=WAL", &error);
	if (st == NULL)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		tlog_fail(log, &error, "tlog: %s: cannot enable WAL mode", path);
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (tlog_db_exec(log, "PRAGMA synchronous=FULL", &error) < 0 || setup_db(log, &error) < 0)
		goto fail;
	if (fs_fsync_parent(path) < 0) {
		tlog_fail(log, &error, "tlog: fsync %s: %s", dir, strerror(errno));
		goto fail;
	}
	/* A damaged log still opens, so that tlog_verify() can say what is
	 * wrong; every other operation re-reads the leaves and fails. */
	(void)tlog_refresh(log, &error);
	free(path);
	*log_r = log;
	return 0;
fail:
	*error_r = str_tfmt("%s", error);
	sqlite3_finalize(st);
	free(path);
	tlog_close(&log);
	return -1;
}

void tlog_close(struct tlog **logp)
{
	struct tlog *log = *logp;

	if (log == NULL)
		return;
	if (log->db != NULL)
		sqlite3_close_v2(log->db);
	mem_wipe(log->sk, sizeof(log->sk));
	tlog_tree_free(&log->tree);
	free(log->origin);
	free(log);
	*logp = NULL;
}

int tlog_keygen(const char *key_path, const char **error_r)
{
	uint8_t pk[SEAL_SIGN_PK_BYTES], sk[SEAL_SIGN_SK_BYTES];
	char *parent = xstrdup(key_path), *slash = strrchr(parent, '/');
	int ret = -1;

	if (access(key_path, F_OK) == 0) {
		*error_r = str_tfmt("tlog: key file %s exists; refusing to overwrite it", key_path);
		goto out;
	}
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (fs_mkdir_p(parent, 0700) < 0) {
			*error_r = str_tfmt("tlog: cannot create %s: %s", parent, strerror(errno));
			goto out;
		}
	}
	seal_sign_keypair(pk, sk);
	if (fs_write_atomic(key_path, sk, sizeof(sk), 0600) < 0) {
		*error_r = str_tfmt("tlog: cannot write %s: %s", key_path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	mem_wipe(sk, sizeof(sk));
	free(parent);
	return ret;
}

static void format_time(char out[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int insert_entry(struct tlog *log, uint64_t idx, const struct buf *json,
			const uint8_t leaf[TLOG_HASH_BYTES], const char **error_r)
{
	sqlite3_stmt *st;
	int ret = 0;

	st = tlog_db_prepare(log, "INSERT INTO entries (idx, data, leaf_hash) VALUES (?1, ?2, ?3)",
			     error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)idx);
	sqlite3_bind_blob(st, 2, json->data, (int)json->len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, leaf, TLOG_HASH_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ret = tlog_db_fail(log, error_r, "storing entry");
	sqlite3_finalize(st);
	return ret;
}

int tlog_append(struct tlog *log, const char *type, const char *const *fields, uint64_t *index_r,
		const char **error_r)
{
	const char **all;
	uint8_t leaf[TLOG_HASH_BYTES];
	char now[32];
	struct buf json, note;
	uint64_t n = 0, i, idx = 0;
	const char *error;
	int ret = -1, rc;

	buf_init(&json);
	buf_init(&note);
	while (fields != NULL && fields[2 * n] != NULL) {
		if (strcmp(fields[2 * n], "type") == 0 || strcmp(fields[2 * n], "time") == 0)
			return tlog_fail(log, error_r, "tlog: field '%s' is reserved",
					 fields[2 * n]);
		if (fields[2 * n + 1] == NULL)
			return tlog_fail(log, error_r, "tlog: field '%s' has no value",
					 fields[2 * n]);
		n++;
	}
	if (type == NULL || type[0] == '\0')
		return tlog_fail(log, error_r, "tlog: an entry needs a type");
	format_time(now);
	all = xcalloc(2 * n + 5, sizeof(*all));
	for (i = 0; i < 2 * n; i++)
		all[i] = fields[i];
	all[2 * n] = "type";
	all[2 * n + 1] = type;
	all[2 * n + 2] = "time";
	all[2 * n + 3] = now;
	rc = tlog_json_encode(all, &json, &error);
	free(all);
	if (rc < 0) {
		buf_free(&json);
		return tlog_fail(log, error_r, "tlog: %s", error);
	}
	if (json.len > TLOG_ENTRY_MAX) {
		buf_free(&json);
		return tlog_fail(log, error_r, "tlog: entry too large (%zu bytes)", json.len);
	}
	tlog_leaf_hash(json.data, json.len, leaf);

	if (tlog_db_exec(log, "BEGIN IMMEDIATE", error_r) < 0)
		goto out;
	if (tlog_refresh(log, error_r) < 0)
		goto out;
	idx = tlog_tree_size(log->tree);
	rc = tlog_load_checkpoint(log, idx, &note, error_r);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		tlog_fail(log, error_r,
			  "tlog: no signed checkpoint for the log's %llu entries; "
			  "run 'sealmail log verify'",
			  (unsigned long long)idx);
		goto out;
	}
	if (tlog_check_note(log, log->tree, &note, idx, error_r) < 0)
		goto out;
	if (insert_entry(log, idx, &json, leaf, error_r) < 0)
		goto out;
	tlog_tree_append(log->tree, leaf);
	if (store_checkpoint(log, error_r) < 0 || tlog_db_exec(log, "COMMIT", error_r) < 0) {
		tlog_tree_truncate(log->tree, idx);
		goto out;
	}
	if (index_r != NULL)
		*index_r = idx;
	ret = 0;
out:
	if (ret < 0)
		tlog_db_rollback(log);
	buf_free(&json);
	buf_free(&note);
	return ret;
}

uint64_t tlog_size(struct tlog *log)
{
	const char *error;

	if (tlog_refresh(log, &error) < 0)
		log_warn("%s", error);
	return tlog_tree_size(log->tree);
}

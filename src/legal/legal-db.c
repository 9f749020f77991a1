/* legal-db.c — the request store: DIR/legal/requests.sqlite.
 *
 * Trust boundary: the file lives on the operator's disk beside the config.
 * It never holds an address, a reference or an operator's reason in the
 * clear: those are sealed (XChaCha20-Poly1305) under keys_dir/legal.key.
 * What it holds in the clear is what the log publishes anyway (authority,
 * jurisdictions, instrument, scope, decisions) plus each account's log tag,
 * home region and commitment nonce. Changes by the CLI and the daemon are
 * serialised by a file lock. */
#include "legal/legal-private.h"

#include "region/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char legal_schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
    "CREATE TABLE IF NOT EXISTS requests(id INTEGER PRIMARY KEY, received INTEGER NOT NULL,"
    " authority TEXT NOT NULL, jurisdiction TEXT NOT NULL, instrument TEXT NOT NULL,"
    " scope TEXT NOT NULL, reference_sealed BLOB NOT NULL, nd_ends INTEGER NOT NULL,"
    " status TEXT NOT NULL, decided INTEGER NOT NULL DEFAULT 0, reject_sealed BLOB);"
    "CREATE TABLE IF NOT EXISTS accounts(request INTEGER NOT NULL, position INTEGER NOT NULL,"
    " address_sealed BLOB NOT NULL, tag TEXT NOT NULL DEFAULT '',"
    " region TEXT NOT NULL DEFAULT '', data_jurisdiction TEXT NOT NULL DEFAULT '',"
    " decision TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '',"
    " channel TEXT NOT NULL DEFAULT '', explanation TEXT NOT NULL DEFAULT '',"
    " nonce TEXT NOT NULL DEFAULT '', decided_index INTEGER NOT NULL DEFAULT -1,"
    " notice TEXT NOT NULL DEFAULT 'none', notice_index INTEGER NOT NULL DEFAULT -1,"
    " PRIMARY KEY(request, position));"
    "CREATE TABLE IF NOT EXISTS exports(request INTEGER NOT NULL, log_index INTEGER NOT NULL,"
    " created INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL,"
    " PRIMARY KEY(request, log_index));"
    "CREATE TABLE IF NOT EXISTS releases(request INTEGER PRIMARY KEY,"
    " log_index INTEGER NOT NULL, released INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nd_expired(request INTEGER PRIMARY KEY,"
    " log_index INTEGER NOT NULL);";

int legal_db_fail(struct legal *legal, const char **error_r)
{
	*error_r = str_tfmt("legal requests: %s", sqlite3_errmsg(legal->db));
	return -1;
}

int legal_db_exec(struct legal *legal, const char *sql, const char **error_r)
{
	if (sqlite3_exec(legal->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return legal_db_fail(legal, error_r);
	return 0;
}

static sqlite3_stmt *legal_prepare(struct legal *legal, const char *sql, const char **error_r)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(legal->db, sql, -1, &st, NULL) != SQLITE_OK) {
		legal_db_fail(legal, error_r);
		return NULL;
	}
	return st;
}

/* Steps a statement that returns no rows and finalises it. */
static int legal_step_done(struct legal *legal, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : legal_db_fail(legal, error_r);

	sqlite3_finalize(st);
	return ret;
}

int legal_open(const struct config *cfg, struct router *router, struct tlog *log,
	       struct legal **legal_r, const char **error_r)
{
	struct legal *legal = xcalloc(1, sizeof(*legal));
	char *dir = fs_path_join(cfg->dir, LEGAL_DIR_NAME), *db = NULL, *lock = NULL;
	int ret = -1;

	legal->cfg = cfg;
	legal->router = router;
	legal->log = log;
	legal->lock_fd = -1;
	if (fs_mkdir_p(dir, 0700) < 0) {
		*error_r = str_tfmt("cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	if (legal_key_load(cfg->keys_dir, legal->key, error_r) < 0)
		goto out;
	lock = fs_path_join(dir, LEGAL_LOCK_NAME);
	legal->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (legal->lock_fd < 0) {
		*error_r = str_tfmt("cannot open %s: %s", lock, strerror(errno));
		goto out;
	}
	db = fs_path_join(dir, LEGAL_DB_NAME);
	if (sqlite3_open_v2(db, &legal->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		*error_r =
		    str_tfmt("%s: %s", db, legal->db ? sqlite3_errmsg(legal->db) : "out of memory");
		goto out;
	}
	chmod(db, 0600);
	sqlite3_busy_timeout(legal->db, 10000);
	if (legal_db_exec(legal, legal_schema, error_r) < 0)
		goto out;
	ret = 0;
out:
	free(dir);
	free(db);
	free(lock);
	if (ret < 0)
		legal_close(&legal);
	*legal_r = legal;
	return ret;
}

void legal_close(struct legal **legalp)
{
	struct legal *legal = *legalp;

	if (legal == NULL)
		return;
	*legalp = NULL;
	legal_unlock(legal);
	if (legal->lock_fd >= 0)
		close(legal->lock_fd);
	sqlite3_close(legal->db);
	mem_wipe(legal->key, sizeof(legal->key));
	free(legal);
}

int legal_lock(struct legal *legal, const char **error_r)
{
	while (flock(legal->lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			*error_r = str_tfmt("cannot lock the request store: %s", strerror(errno));
			return -1;
		}
	}
	legal->locked = 1;
	return 0;
}

void legal_unlock(struct legal *legal)
{
	if (!legal->locked)
		return;
	flock(legal->lock_fd, LOCK_UN);
	legal->locked = 0;
}

uint8_t *legal_seal_text(struct legal *legal, const char *text, size_t *len_r)
{
	uint8_t *out = NULL;

	if (seal_secretbox_encrypt(legal->key, text, strlen(text), &out, len_r) < 0)
		log_fatal("cannot seal a request field");
	return out;
}

char *legal_open_text(struct legal *legal, const void *blob, size_t len)
{
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	char *s;

	if (blob == NULL || seal_secretbox_decrypt(legal->key, blob, len, &plain, &plain_len) < 0)
		return NULL;
	s = xmalloc(plain_len + 1);
	memcpy(s, plain, plain_len);
	s[plain_len] = '\0';
	mem_wipe(plain, plain_len);
	free(plain);
	return s;
}

static void legal_bind_sealed(struct legal *legal, sqlite3_stmt *st, int col, const char *text)
{
	size_t len;
	uint8_t *blob = legal_seal_text(legal, text, &len);

	sqlite3_bind_blob(st, col, blob, (int)len, free);
}

int legal_db_insert_request(struct legal *legal, uint64_t index, int64_t received,
			    const struct legal_filing *f, char *const *addresses,
			    const char **error_r)
{
	sqlite3_stmt *st;

	if (legal_db_exec(legal, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	st = legal_prepare(legal,
			   "INSERT INTO requests(id, received, authority, jurisdiction, instrument,"
			   " scope, reference_sealed, nd_ends, status) VALUES (?,?,?,?,?,?,?,?,"
			   "'received')",
			   error_r);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 2, received);
	sqlite3_bind_text(st, 3, f->authority, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->jurisdiction, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, legal_instrument_name(f->instrument), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, legal_scope_name(f->scope), -1, SQLITE_STATIC);
	legal_bind_sealed(legal, st, 7, f->reference);
	sqlite3_bind_int64(st, 8, f->nondisclosure_ends);
	if (legal_step_done(legal, st, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < f->address_count; i++) {
		st = legal_prepare(legal,
				   "INSERT INTO accounts(request, position, address_sealed)"
				   " VALUES (?,?,?)",
				   error_r);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
		sqlite3_bind_int(st, 2, (int)i + 1);
		legal_bind_sealed(legal, st, 3, addresses[i]);
		if (legal_step_done(legal, st, error_r) < 0)
			goto fail;
	}
	return legal_db_exec(legal, "COMMIT", error_r);
fail:
	sqlite3_exec(legal->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int legal_db_set_decision(struct legal *legal, uint64_t index, const struct legal_account_info *a,
			  const char *nonce_hex, const char *notice, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(
	    legal,
	    "UPDATE accounts SET tag = ?, region = ?, data_jurisdiction = ?, decision = ?,"
	    " reason = ?, channel = ?, explanation = ?, nonce = ?, decided_index = ?,"
	    " notice = ? WHERE request = ? AND position = ?",
	    error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, a->tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->data_jurisdiction, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, legal_decision_name(a->decision), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->channel ? a->channel : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, a->explanation ? a->explanation : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, nonce_hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, a->decided_index);
	sqlite3_bind_text(st, 10, notice, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)index);
	sqlite3_bind_int(st, 12, a->position);
	return legal_step_done(legal, st, error_r);
}

int legal_db_set_status(struct legal *legal, uint64_t index, const char *status, int64_t decided,
			const char *reject_reason, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(legal,
					 "UPDATE requests SET status = ?, decided = ?,"
					 " reject_sealed = ? WHERE id = ?",
					 error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, decided);
	if (reject_reason != NULL)
		legal_bind_sealed(legal, st, 3, reject_reason);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)index);
	return legal_step_done(legal, st, error_r);
}

int legal_db_set_notice(struct legal *legal, uint64_t index, int position, const char *notice,
			int64_t notice_index, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(legal,
					 "UPDATE accounts SET notice = ?, notice_index = ?"
					 " WHERE request = ? AND position = ?",
					 error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, notice, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, notice_index);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)index);
	sqlite3_bind_int(st, 4, position);
	return legal_step_done(legal, st, error_r);
}

int legal_db_nonce(struct legal *legal, uint64_t index, int position,
		   char out[2 * LEGAL_NONCE_BYTES + 1], const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(
	    legal, "SELECT nonce FROM accounts WHERE request = ? AND position = ?", error_r);
	const char *nonce;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int(st, 2, position);
	rc = sqlite3_step(st);
	nonce = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	snprintf(out, 2 * LEGAL_NONCE_BYTES + 1, "%s", nonce != NULL ? nonce : "");
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return legal_db_fail(legal, error_r);
	return 0;
}

int legal_db_add_export(struct legal *legal, uint64_t index, uint64_t log_index,
			const char *manifest_sha256, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(legal,
					 "INSERT INTO exports(request, log_index, created,"
					 " manifest_sha256) VALUES (?,?,?,?)",
					 error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)log_index);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 4, manifest_sha256, -1, SQLITE_STATIC);
	return legal_step_done(legal, st, error_r);
}

int legal_db_pending_notices(struct legal *legal, int64_t as_of, uint64_t **indexes_r,
			     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st =
	    legal_prepare(legal,
			  "SELECT request FROM accounts WHERE notice IN ('pending', 'logged')"
			  " UNION SELECT id FROM requests WHERE nd_ends > 0 AND nd_ends <= ?1"
			  " AND status IN ('decided', 'rejected')"
			  " AND id NOT IN (SELECT request FROM nd_expired) ORDER BY 1",
			  error_r);
	size_t n = 0, cap = 16;
	uint64_t *v;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)as_of);
	v = xcalloc(cap, sizeof(*v));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			uint64_t *bigger = xcalloc(cap * 2, sizeof(*v));

			memcpy(bigger, v, n * sizeof(*v));
			free(v);
			v = bigger;
			cap *= 2;
		}
		v[n++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return legal_db_fail(legal, error_r);
	}
	*indexes_r = v;
	*count_r = n;
	return 0;
}

static char *legal_column_dup(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return xstrdup(s != NULL ? s : "");
}

static void legal_column_copy(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(out, size, "%s", s != NULL ? s : "");
}

static int legal_load_accounts(struct legal *legal, struct legal_request *req, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(
	    legal,
	    "SELECT position, address_sealed, tag, region, data_jurisdiction, decision, reason,"
	    " channel, explanation, decided_index, notice, notice_index FROM accounts"
	    " WHERE request = ? ORDER BY position",
	    error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)req->index);
	req->accounts = xcalloc(LEGAL_ACCOUNTS_MAX, sizeof(*req->accounts));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && req->account_count < LEGAL_ACCOUNTS_MAX) {
		struct legal_account_info *a = &req->accounts[req->account_count++];
		char decision[16];

		a->position = sqlite3_column_int(st, 0);
		a->address = legal_open_text(legal, sqlite3_column_blob(st, 1),
					     (size_t)sqlite3_column_bytes(st, 1));
		if (a->address == NULL)
			a->address = xstrdup("(cannot be opened with this server's key)");
		legal_column_copy(st, 2, a->tag, sizeof(a->tag));
		legal_column_copy(st, 3, a->region, sizeof(a->region));
		legal_column_copy(st, 4, a->data_jurisdiction, sizeof(a->data_jurisdiction));
		legal_column_copy(st, 5, decision, sizeof(decision));
		a->decision = legal_decision_parse(decision);
		legal_column_copy(st, 6, a->reason, sizeof(a->reason));
		a->channel = legal_column_dup(st, 7);
		a->explanation = legal_column_dup(st, 8);
		a->decided_index = sqlite3_column_int64(st, 9);
		legal_column_copy(st, 10, a->notice, sizeof(a->notice));
		a->notice_index = sqlite3_column_int64(st, 11);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return legal_db_fail(legal, error_r);
	st = legal_prepare(legal,
			   "SELECT log_index, created, manifest_sha256 FROM exports"
			   " WHERE request = ? ORDER BY log_index",
			   error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)req->index);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct legal_export_info *e;

		if (req->export_count % 8 == 0) {
			struct legal_export_info *bigger =
			    xcalloc(req->export_count + 8, sizeof(*bigger));

			if (req->exports != NULL)
				memcpy(bigger, req->exports, req->export_count * sizeof(*bigger));
			free(req->exports);
			req->exports = bigger;
		}
		e = &req->exports[req->export_count++];
		e->log_index = (uint64_t)sqlite3_column_int64(st, 0);
		e->created = sqlite3_column_int64(st, 1);
		legal_column_copy(st, 2, e->manifest_sha256, sizeof(e->manifest_sha256));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return legal_db_fail(legal, error_r);
	return 0;
}

#define LEGAL_REQUEST_COLUMNS                                                                      \
	"SELECT id, received, authority, jurisdiction, instrument, scope, reference_sealed,"       \
	" nd_ends, status, decided, reject_sealed,"                                                \
	" (SELECT log_index FROM releases WHERE releases.request = requests.id),"                  \
	" (SELECT log_index FROM nd_expired WHERE nd_expired.request = requests.id) FROM requests"

static int legal_row_request(struct legal *legal, sqlite3_stmt *st, struct legal_request **req_r,
			     const char **error_r)
{
	struct legal_request *req = xcalloc(1, sizeof(*req));
	char text[32];

	req->index = (uint64_t)sqlite3_column_int64(st, 0);
	legal_id_format(req->index, req->id);
	req->received = sqlite3_column_int64(st, 1);
	req->authority = legal_column_dup(st, 2);
	legal_column_copy(st, 3, req->jurisdiction, sizeof(req->jurisdiction));
	legal_column_copy(st, 4, text, sizeof(text));
	if (legal_instrument_parse(text, &req->instrument) < 0)
		req->instrument = LEGAL_WARRANT;
	legal_column_copy(st, 5, text, sizeof(text));
	if (legal_scope_parse(text, &req->scope) < 0)
		req->scope = LEGAL_SCOPE_CONTENT;
	req->reference =
	    legal_open_text(legal, sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6));
	if (req->reference == NULL)
		req->reference = xstrdup("(cannot be opened with this server's key)");
	req->nondisclosure_ends = sqlite3_column_int64(st, 7);
	legal_column_copy(st, 8, req->status, sizeof(req->status));
	req->decided = sqlite3_column_int64(st, 9);
	if (sqlite3_column_type(st, 10) != SQLITE_NULL)
		req->reject_reason = legal_open_text(legal, sqlite3_column_blob(st, 10),
						     (size_t)sqlite3_column_bytes(st, 10));
	req->released_index =
	    sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 11);
	req->nd_expired_index =
	    sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 12);
	if (legal_load_accounts(legal, req, error_r) < 0) {
		legal_request_free(&req);
		return -1;
	}
	*req_r = req;
	return 0;
}

int legal_request_get(struct legal *legal, const char *id, struct legal_request **req_r,
		      const char **error_r)
{
	sqlite3_stmt *st;
	uint64_t index;
	int rc, ret;

	if (legal_id_parse(id, &index) < 0)
		return 0;
	st = legal_prepare(legal, LEGAL_REQUEST_COLUMNS " WHERE id = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = legal_row_request(legal, st, req_r, error_r) < 0 ? -1 : 1;
	else
		ret = rc == SQLITE_DONE ? 0 : legal_db_fail(legal, error_r);
	sqlite3_finalize(st);
	return ret;
}

int legal_request_list(struct legal *legal, int (*fn)(void *ctx, const struct legal_request *req),
		       void *ctx, const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(legal, LEGAL_REQUEST_COLUMNS " ORDER BY id", error_r);
	struct legal_request *req;
	int rc, ret = 0;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (legal_row_request(legal, st, &req, error_r) < 0) {
			ret = -1;
			break;
		}
		ret = fn(ctx, req);
		legal_request_free(&req);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = legal_db_fail(legal, error_r);
	sqlite3_finalize(st);
	return ret < 0 ? -1 : 0;
}

void legal_request_free(struct legal_request **reqp)
{
	struct legal_request *req = *reqp;

	if (req == NULL)
		return;
	*reqp = NULL;
	for (size_t i = 0; i < req->account_count; i++) {
		struct legal_account_info *a = &req->accounts[i];

		if (a->address != NULL) {
			mem_wipe(a->address, strlen(a->address));
			free(a->address);
		}
		free(a->channel);
		free(a->explanation);
	}
	free(req->accounts);
	free(req->exports);
	free(req->authority);
	free(req->reference);
	free(req->reject_reason);
	free(req);
}

int legal_db_add_release(struct legal *legal, uint64_t index, uint64_t log_index,
			 const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(
	    legal, "INSERT INTO releases(request, log_index, released) VALUES (?,?,?)", error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)log_index);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	return legal_step_done(legal, st, error_r);
}

int legal_db_add_nd_expired(struct legal *legal, uint64_t index, uint64_t log_index,
			    const char **error_r)
{
	sqlite3_stmt *st = legal_prepare(
	    legal, "INSERT INTO nd_expired(request, log_index) VALUES (?,?)", error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)log_index);
	return legal_step_done(legal, st, error_r);
}

int legal_account_held(struct legal *legal, const struct account *acct, char id_r[LEGAL_ID_MAX],
		       const char **error_r)
{
	sqlite3_stmt *st =
	    legal_prepare(legal,
			  "SELECT r.id FROM requests r JOIN accounts a ON a.request = r.id"
			  " WHERE r.instrument = 'preservation' AND r.status = 'decided'"
			  " AND a.decision = 'accepted' AND a.tag = ?"
			  " AND NOT EXISTS (SELECT 1 FROM releases WHERE releases.request = r.id)"
			  " ORDER BY r.id LIMIT 1",
			  error_r);
	char tag[LEGAL_TAG_HEX_MAX];
	int rc;

	if (st == NULL)
		return -1;
	legal_hex(acct->st.tag, STORE_TAG_BYTES, tag);
	sqlite3_bind_text(st, 1, tag, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		legal_id_format((uint64_t)sqlite3_column_int64(st, 0), id_r);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return legal_db_fail(legal, error_r);
	return rc == SQLITE_ROW;
}

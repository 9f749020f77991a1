/* store-fs-mail.c — the IMAP side of the fs backend: mailbox status, delete,
 * rename and subscribe; index scans; flag changes with modification
 * sequences; expunge, copy and move.
 *
 * Trust boundary: see store-fs.c. Only plaintext index fields are read or
 * changed here; sealed names, metadata and records are moved as opaque
 * bytes. An expunge removes a record's ciphertext (its chunks) as soon as no
 * message refers to it, and asks the writer to truncate the WAL. Every write
 * is a job of the writer thread (group commit) and is durable on return. */
#include "store/store-fs-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct fs_store *FS(struct store *s)
{
	return (struct fs_store *)s;
}

static int fs_step_done(sqlite3 *db, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fs_sql_error(db, error_r);
}

int fs_mailbox_get(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   struct store_mailbox *box_r, const char **error_r)
{
	sqlite3 *db = FS(s)->rdb;
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (fs_sql_prepare(db, FS_MAILBOX_COLS "WHERE b.id = ? AND b.account_id = ?", &st,
			   error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)account_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		buf_reset(&box_r->name_sealed);
		box_r->id = (uint64_t)sqlite3_column_int64(st, 0);
		box_r->account_id = (uint64_t)sqlite3_column_int64(st, 1);
		box_r->role = (enum store_role)sqlite3_column_int(st, 2);
		if (sqlite3_column_bytes(st, 3) > 0 &&
		    buf_append(&box_r->name_sealed, sqlite3_column_blob(st, 3),
			       (size_t)sqlite3_column_bytes(st, 3)) < 0)
			log_fatal("out of memory");
		box_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
		box_r->uidnext = (uint32_t)sqlite3_column_int64(st, 5);
		box_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
		box_r->subscribed = sqlite3_column_int(st, 7);
		box_r->messages = (uint32_t)sqlite3_column_int64(st, 8);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		fs_sql_error(db, error_r);
	}
	sqlite3_finalize(st);
	return ret;
}

/* Drops one reference to RECORD_ID; the last one removes its ciphertext. */
static int fs_record_unref(struct fs_store *fs, sqlite3 *db, int64_t record_id,
			   const char **error_r)
{
	sqlite3_stmt *st;
	int64_t refs = 0;

	if (fs_sql_prepare(db, "UPDATE records SET refs = refs - 1 WHERE id = ? RETURNING refs",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, record_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		refs = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (refs > 0)
		return 0;
	if (fs_data_free(fs, db, record_id, error_r) < 0)
		return -1;
	if (fs_sql_prepare(db, "DELETE FROM chunks WHERE record_id = ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, record_id);
	if (fs_step_done(db, st, error_r) < 0)
		return -1;
	if (fs_sql_prepare(db, "DELETE FROM records WHERE id = ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, record_id);
	fs->checkpoint_truncate = 1;
	return fs_step_done(db, st, error_r);
}

/* Removes the message UID of MAILBOX_ID: 1 removed, 0 none, -1 error. */
static int fs_message_remove(struct fs_store *fs, sqlite3 *db, uint64_t mailbox_id, uint32_t uid,
			     const char **error_r)
{
	sqlite3_stmt *st;
	int64_t record_id;
	int rc;

	if (fs_sql_prepare(
		db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING record_id",
		&st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : fs_sql_error(db, error_r);
	}
	record_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return fs_record_unref(fs, db, record_id, error_r) < 0 ? -1 : 1;
}

/* Allocates the next modseq of MAILBOX_ID (and optionally a UID). */
static int fs_mailbox_bump(sqlite3 *db, uint64_t mailbox_id, int new_uid, uint32_t *uid_r,
			   uint64_t *modseq_r, const char **error_r)
{
	sqlite3_stmt *st;
	int64_t uid;

	if (fs_sql_prepare(db,
			   new_uid ? "UPDATE mailboxes SET uidnext = uidnext + 1,"
				     " highestmodseq = highestmodseq + 1 WHERE id = ?"
				     " RETURNING uidnext - 1, highestmodseq"
				   : "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
				     " WHERE id = ? RETURNING 0, highestmodseq",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*error_r = "store: no such mailbox";
		return -1;
	}
	uid = sqlite3_column_int64(st, 0);
	*modseq_r = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (new_uid && (uid <= 0 || uid > UINT32_MAX)) {
		*error_r = "store: mailbox UIDs exhausted";
		return -1;
	}
	if (uid_r != NULL)
		*uid_r = (uint32_t)uid;
	return 0;
}

/* ---- mailboxes ---------------------------------------------------------- */

struct fs_mbox_ctx {
	struct fs_store *fs;
	uint64_t account_id, mailbox_id;
	const struct buf *name_sealed;
	int subscribed;
};

static int fs_mailbox_delete_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_mbox_ctx *c = ctx;
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int ret = -1;

	if (fs_sql_prepare(db, "SELECT uid FROM messages WHERE mailbox_id = ?", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->mailbox_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			uids = realloc(uids, cap * sizeof(*uids));
			if (uids == NULL)
				log_fatal("out of memory");
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		if (fs_message_remove(c->fs, db, c->mailbox_id, uids[i], error_r) < 0)
			goto out;
	if (fs_sql_prepare(db, "DELETE FROM expunged WHERE mailbox_id = ?", &st, error_r) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->mailbox_id);
	if (fs_step_done(db, st, error_r) < 0)
		goto out;
	if (fs_sql_prepare(db, "DELETE FROM mailboxes WHERE id = ? AND account_id = ?", &st,
			   error_r) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)c->account_id);
	ret = fs_step_done(db, st, error_r);
	c->fs->checkpoint_truncate = 1;
out:
	free(uids);
	return ret;
}

int fs_mailbox_delete(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      const char **error_r)
{
	struct fs_mbox_ctx c = {FS(s), account_id, mailbox_id, NULL, -1};

	return fs_job_run_wait(FS(s), fs_mailbox_delete_job, &c, error_r);
}

static int fs_mailbox_update_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_mbox_ctx *c = ctx;
	sqlite3_stmt *st;

	if (c->name_sealed != NULL) {
		if (fs_sql_prepare(db,
				   "UPDATE mailboxes SET name_sealed = ? WHERE id = ? AND"
				   " account_id = ?",
				   &st, error_r) < 0)
			return -1;
		sqlite3_bind_blob(st, 1, c->name_sealed->data, (int)c->name_sealed->len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)c->mailbox_id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)c->account_id);
		if (fs_step_done(db, st, error_r) < 0)
			return -1;
		/* The old sealed name must not linger in the WAL. */
		c->fs->checkpoint_truncate = 1;
	}
	if (c->subscribed >= 0) {
		if (fs_sql_prepare(db,
				   "UPDATE mailboxes SET subscribed = ? WHERE id = ? AND"
				   " account_id = ?",
				   &st, error_r) < 0)
			return -1;
		sqlite3_bind_int(st, 1, c->subscribed ? 1 : 0);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)c->mailbox_id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)c->account_id);
		if (fs_step_done(db, st, error_r) < 0)
			return -1;
	}
	return 0;
}

int fs_mailbox_update(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      const struct buf *name_sealed, int subscribed, const char **error_r)
{
	struct fs_mbox_ctx c = {FS(s), account_id, mailbox_id, name_sealed, subscribed};

	return fs_job_run_wait(FS(s), fs_mailbox_update_job, &c, error_r);
}

struct fs_uids_ctx {
	uint64_t mailbox_id;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
};

static int fs_mailbox_set_uids_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_uids_ctx *c = ctx;
	sqlite3_stmt *st;

	if (fs_sql_prepare(db,
			   "UPDATE mailboxes SET uidvalidity = ?, uidnext = max(uidnext, ?),"
			   " highestmodseq = max(highestmodseq, ?) WHERE id = ?",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->uidvalidity);
	sqlite3_bind_int64(st, 2, c->uidnext);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)c->highestmodseq);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)c->mailbox_id);
	if (fs_step_done(db, st, error_r) < 0)
		return -1;
	if (sqlite3_changes(db) == 0) {
		*error_r = "store: no such mailbox";
		return -1;
	}
	return 0;
}

int fs_mailbox_set_uids(struct store *s, uint64_t mailbox_id, uint32_t uidvalidity,
			uint32_t uidnext, uint64_t highestmodseq, const char **error_r)
{
	struct fs_uids_ctx c = {mailbox_id, uidvalidity, uidnext, highestmodseq};

	return fs_job_run_wait(FS(s), fs_mailbox_set_uids_job, &c, error_r);
}

/* ---- scans --------------------------------------------------------------- */

int fs_message_scan(struct store *s, uint64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
		    uint64_t modseq_min, int with_meta, store_message_fn *fn, void *ctx,
		    const char **error_r)
{
	struct fs_reader *r = fs_reader_get(FS(s), FS_READER_SCANS, error_r);
	struct store_message m;
	sqlite3_stmt *st;
	int rc;

#define FS_SCAN_COLUMNS "SELECT id, uid, flags, keywords, modseq, internal_date, size, record_size"
#define FS_SCAN_WHERE   " WHERE mailbox_id = ? AND uid >= ? AND uid <= ? AND modseq > ? ORDER BY uid"
	/* With a modseq, only the changed rows are visited (the planner would
	   rather walk the uid index for the ORDER BY, which is the whole
	   mailbox); the few rows found are sorted. */
	static const char *const sql[2][2] = {
	    {FS_SCAN_COLUMNS " FROM messages" FS_SCAN_WHERE,
	     FS_SCAN_COLUMNS ", meta FROM messages" FS_SCAN_WHERE},
	    {FS_SCAN_COLUMNS " FROM messages INDEXED BY messages_modseq" FS_SCAN_WHERE,
	     FS_SCAN_COLUMNS ", meta FROM messages INDEXED BY messages_modseq" FS_SCAN_WHERE},
	};

	if (r == NULL)
		return -1;
	if (fs_sql_prepare(r->db, sql[modseq_min > 0][with_meta != 0], &st, error_r) < 0) {
		fs_reader_put(FS(s), r);
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid_min);
	sqlite3_bind_int64(st, 3, uid_max);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)modseq_min);
	store_message_init(&m);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *kw = sqlite3_column_text(st, 3);

		m.id = (uint64_t)sqlite3_column_int64(st, 0);
		m.mailbox_id = mailbox_id;
		m.uid = (uint32_t)sqlite3_column_int64(st, 1);
		m.flags = (uint32_t)sqlite3_column_int(st, 2);
		free(m.keywords);
		m.keywords = kw != NULL && kw[0] != '\0' ? xstrdup((const char *)kw) : NULL;
		m.modseq = (uint64_t)sqlite3_column_int64(st, 4);
		m.internal_date = sqlite3_column_int64(st, 5);
		m.size = (uint64_t)sqlite3_column_int64(st, 6);
		m.record_size = (uint64_t)sqlite3_column_int64(st, 7);
		buf_reset(&m.meta);
		if (with_meta && sqlite3_column_bytes(st, 8) > 0 &&
		    buf_append(&m.meta, sqlite3_column_blob(st, 8),
			       (size_t)sqlite3_column_bytes(st, 8)) < 0)
			log_fatal("out of memory");
		if (fn(ctx, &m) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	store_message_clear(&m);
	if (rc != SQLITE_DONE)
		fs_sql_error(r->db, error_r);
	sqlite3_finalize(st);
	fs_reader_put(FS(s), r);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- flags ---------------------------------------------------------------- */

struct fs_flags_ctx {
	uint64_t mailbox_id;
	const struct store_flag_update *u;
	struct store_message *changed;
	size_t count;
};

static int fs_set_flags_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_flags_ctx *c = ctx;
	const struct store_flag_update *u = c->u;
	sqlite3_stmt *get = NULL, *set = NULL;
	uint64_t modseq = 0;
	int ret = -1;

	c->count = 0;
	if (fs_sql_prepare(db,
			   "SELECT flags, keywords, modseq FROM messages WHERE mailbox_id = ?"
			   " AND uid = ?",
			   &get, error_r) < 0 ||
	    fs_sql_prepare(db,
			   "UPDATE messages SET flags = ?, keywords = ?, modseq = ?"
			   " WHERE mailbox_id = ? AND uid = ?",
			   &set, error_r) < 0)
		goto out;
	for (size_t i = 0; i < u->count; i++) {
		uint32_t old, flags;
		const char *oldkw;
		char *kw;
		uint64_t old_modseq;
		int same;

		sqlite3_reset(get);
		sqlite3_bind_int64(get, 1, (sqlite3_int64)c->mailbox_id);
		sqlite3_bind_int64(get, 2, u->uids[i]);
		if (sqlite3_step(get) != SQLITE_ROW)
			continue;
		old = (uint32_t)sqlite3_column_int(get, 0);
		oldkw = (const char *)sqlite3_column_text(get, 1);
		old_modseq = (uint64_t)sqlite3_column_int64(get, 2);
		if (u->unchanged_since != 0 && old_modseq > u->unchanged_since)
			continue;
		flags = u->mode == STORE_FLAGS_SET   ? u->flags
			: u->mode == STORE_FLAGS_ADD ? old | u->flags
						     : old & ~u->flags;
		kw = store_keywords_apply(oldkw, u->keywords, u->mode);
		same = flags == old && ((kw == NULL && (oldkw == NULL || *oldkw == '\0')) ||
					(kw != NULL && oldkw != NULL && strcmp(kw, oldkw) == 0));
		if (same) {
			free(kw);
			continue;
		}
		if (modseq == 0 &&
		    fs_mailbox_bump(db, c->mailbox_id, 0, NULL, &modseq, error_r) < 0) {
			free(kw);
			goto out;
		}
		sqlite3_reset(set);
		sqlite3_bind_int(set, 1, (int)flags);
		if (kw != NULL)
			sqlite3_bind_text(set, 2, kw, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(set, 2);
		sqlite3_bind_int64(set, 3, (sqlite3_int64)modseq);
		sqlite3_bind_int64(set, 4, (sqlite3_int64)c->mailbox_id);
		sqlite3_bind_int64(set, 5, u->uids[i]);
		if (sqlite3_step(set) != SQLITE_DONE) {
			free(kw);
			fs_sql_error(db, error_r);
			goto out;
		}
		store_message_init(&c->changed[c->count]);
		c->changed[c->count].mailbox_id = c->mailbox_id;
		c->changed[c->count].uid = u->uids[i];
		c->changed[c->count].flags = flags;
		c->changed[c->count].keywords = kw;
		c->changed[c->count].modseq = modseq;
		c->count++;
	}
	ret = 0;
out:
	sqlite3_finalize(get);
	sqlite3_finalize(set);
	if (ret < 0) {
		for (size_t i = 0; i < c->count; i++)
			store_message_clear(&c->changed[i]);
		c->count = 0;
	}
	return ret;
}

int fs_message_set_flags(struct store *s, uint64_t mailbox_id, const struct store_flag_update *u,
			 store_message_fn *fn, void *ctx, const char **error_r)
{
	struct fs_flags_ctx c = {mailbox_id, u, NULL, 0};
	int ret;

	c.changed = xcalloc(u->count ? u->count : 1, sizeof(*c.changed));
	ret = fs_job_run_wait(FS(s), fs_set_flags_job, &c, error_r);
	for (size_t i = 0; i < c.count; i++) {
		if (ret == 0 && fn != NULL)
			fn(ctx, &c.changed[i]);
		store_message_clear(&c.changed[i]);
	}
	free(c.changed);
	return ret;
}

/* ---- expunge, copy, move --------------------------------------------------- */

struct fs_move_ctx {
	struct fs_store *fs;
	uint64_t src, dst;
	const uint32_t *uids;
	size_t count;
	int move;
	uint32_t *dst_uids;
};

static int fs_expunge_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_move_ctx *c = ctx;
	sqlite3_stmt *st = NULL;
	uint32_t *gone = xcalloc(c->count ? c->count : 1, sizeof(*gone));
	size_t n = 0;
	uint64_t modseq;
	int ret = -1;

	for (size_t i = 0; i < c->count; i++) {
		int r = fs_message_remove(c->fs, db, c->src, c->uids[i], error_r);

		if (r < 0)
			goto out;
		if (r > 0)
			gone[n++] = c->uids[i];
	}
	ret = 0;
	if (n == 0)
		goto out;
	/* RFC 7162: an expunge changes the mailbox's HIGHESTMODSEQ; the
	 * tombstones carry that modseq for QRESYNC. */
	ret = -1;
	if (fs_mailbox_bump(db, c->src, 0, NULL, &modseq, error_r) < 0 ||
	    fs_sql_prepare(db,
			   "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq)"
			   " VALUES(?, ?, ?)",
			   &st, error_r) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)c->src);
		sqlite3_bind_int64(st, 2, gone[i]);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fs_sql_error(db, error_r);
			goto out;
		}
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	free(gone);
	return ret;
}

int fs_expunged_scan(struct store *s, uint64_t mailbox_id, uint64_t modseq_min, store_uid_fn *fn,
		     void *ctx, const char **error_r)
{
	struct fs_store *fs = FS(s);
	sqlite3_stmt *st;
	int rc;

	if (fs_sql_prepare(fs->rdb,
			   "SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ?"
			   " ORDER BY uid",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq_min);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn(ctx, (uint32_t)sqlite3_column_int64(st, 0),
		       (uint64_t)sqlite3_column_int64(st, 1)) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		fs_sql_error(fs->rdb, error_r);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int fs_message_expunge(struct store *s, uint64_t mailbox_id, const uint32_t *uids, size_t count,
		       const char **error_r)
{
	struct fs_move_ctx c = {FS(s), mailbox_id, 0, uids, count, 0, NULL};

	if (count == 0)
		return 0;
	return fs_job_run_wait(FS(s), fs_expunge_job, &c, error_r);
}

static int fs_copy_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_move_ctx *c = ctx;
	sqlite3_stmt *ins = NULL, *ref = NULL;
	int ret = -1;

	if (fs_sql_prepare(
		db,
		"INSERT INTO messages(mailbox_id, uid, record_id, flags, keywords, modseq,"
		" internal_date, size, record_size, meta) SELECT ?, ?, record_id, flags,"
		" keywords, ?, internal_date, size, record_size, meta FROM messages"
		" WHERE mailbox_id = ? AND uid = ? RETURNING record_id",
		&ins, error_r) < 0 ||
	    fs_sql_prepare(db, "UPDATE records SET refs = refs + 1 WHERE id = ?", &ref, error_r) <
		0)
		goto out;
	for (size_t i = 0; i < c->count; i++) {
		uint32_t uid;
		uint64_t modseq;
		int rc;

		c->dst_uids[i] = 0;
		if (fs_mailbox_bump(db, c->dst, 1, &uid, &modseq, error_r) < 0)
			goto out;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)c->dst);
		sqlite3_bind_int64(ins, 2, uid);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)modseq);
		sqlite3_bind_int64(ins, 4, (sqlite3_int64)c->src);
		sqlite3_bind_int64(ins, 5, c->uids[i]);
		rc = sqlite3_step(ins);
		if (rc == SQLITE_ROW) {
			int64_t record_id = sqlite3_column_int64(ins, 0);

			while (rc == SQLITE_ROW)
				rc = sqlite3_step(ins);
			sqlite3_reset(ref);
			sqlite3_bind_int64(ref, 1, record_id);
			if (sqlite3_step(ref) != SQLITE_DONE) {
				fs_sql_error(db, error_r);
				goto out;
			}
			c->dst_uids[i] = uid;
		}
		if (rc != SQLITE_DONE) {
			fs_sql_error(db, error_r);
			goto out;
		}
	}
	ret = 0;
	if (c->move) {
		sqlite3_finalize(ins);
		sqlite3_finalize(ref);
		ins = ref = NULL;
		ret = fs_expunge_job(db, ctx, uid_r, error_r);
	}
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(ref);
	return ret;
}

int fs_message_copy(struct store *s, uint64_t src_mailbox_id, const uint32_t *uids, size_t count,
		    uint64_t dst_mailbox_id, int move, uint32_t *dst_uids_r, const char **error_r)
{
	struct fs_move_ctx c = {FS(s), src_mailbox_id, dst_mailbox_id, uids,
				count, move,           dst_uids_r};

	if (count == 0)
		return 0;
	return fs_job_run_wait(FS(s), fs_copy_job, &c, error_r);
}

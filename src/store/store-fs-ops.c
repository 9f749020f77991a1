/* store-fs-ops.c — accounts, mailboxes and messages of the fs backend.
 *
 * Trust boundary: see store-fs.c. Reads go straight to the shared read
 * connection; every write is a job for the writer thread (group commit).
 * Pending records are sealed bytes only: they are buffered in memory and,
 * past FS_SPILL_BYTES, in an unnamed file (O_TMPFILE) in the region's
 * records/ folder, so a crash leaves nothing behind. Such a record is not
 * copied again: its committing thread syncs the file and the writer links
 * it into records/ as the record's own file (fs_file_link). */
#include "store/store-fs-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FS_CHUNK_ROW_BYTES (256 * 1024)
/* The first block of a record kept in memory: most messages fit. */
#define FS_MEM_FIRST_BYTES (16 * 1024)

struct store_record_writer {
	struct fs_store *fs;
	/* The record's bytes up to FS_SPILL_BYTES. Ciphertext only: grown with
	 * realloc and freed without the wipes of a struct buf, which cost a
	 * copy and a memset of every block outgrown. */
	uint8_t *mem;
	size_t mem_len, mem_cap;
	int fd;         /* spill file, -1 until used */
	int sync_errno; /* of the spill file's sync before the commit job */
	uint64_t size;
	struct store_message msg; /* copy for the commit job */
	struct fs_job job;
	store_commit_fn *done;
	void *done_ctx;
};

static struct fs_store *FS(struct store *s)
{
	return (struct fs_store *)s;
}

static void fs_col_buf(sqlite3_stmt *st, int col, struct buf *b)
{
	buf_reset(b);
	if (sqlite3_column_bytes(st, col) > 0 &&
	    buf_append(b, sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col)) < 0)
		log_fatal("out of memory");
}

/* ---- accounts --------------------------------------------------------- */

static int fs_account_create_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct store_account *a = ctx;
	sqlite3_stmt *st;
	int rc;

	if (fs_sql_prepare(db,
			   "INSERT INTO accounts(addr_hash, tag, pk, wrapped_password,"
			   " wrapped_recovery, created, address_sealed) VALUES (?,?,?,?,?,?,?)",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_blob(st, 1, a->addr_hash, STORE_ADDR_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, a->tag, STORE_TAG_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, a->pk, STORE_PK_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, a->wrapped_password.data, (int)a->wrapped_password.len,
			  SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, a->wrapped_recovery.data, (int)a->wrapped_recovery.len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->created);
	if (a->address_sealed.len > 0)
		sqlite3_bind_blob(st, 7, a->address_sealed.data, (int)a->address_sealed.len,
				  SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		*error_r = "account already exists";
		return -1;
	}
	if (rc != SQLITE_DONE)
		return fs_sql_error(db, error_r);
	a->id = (uint64_t)sqlite3_last_insert_rowid(db);
	return 0;
}

int fs_account_create(struct store *s, struct store_account *acct, const char **error_r)
{
	return fs_job_run_wait(FS(s), fs_account_create_job, acct, error_r);
}

int fs_account_get(struct store *s, const uint8_t addr_hash[STORE_ADDR_HASH_BYTES],
		   struct store_account *a, const char **error_r)
{
	struct fs_reader *r = fs_reader_get(FS(s), FS_READER_LOOKUPS, error_r);
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (r == NULL)
		return -1;
	if (fs_reader_stmt(r, FS_L_ACCOUNT, &st, error_r) < 0) {
		fs_reader_put(FS(s), r);
		return -1;
	}
	sqlite3_bind_blob(st, 1, addr_hash, STORE_ADDR_HASH_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
	} else if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == STORE_TAG_BYTES &&
		   sqlite3_column_bytes(st, 2) == STORE_PK_BYTES) {
		a->id = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(a->addr_hash, addr_hash, STORE_ADDR_HASH_BYTES);
		memcpy(a->tag, sqlite3_column_blob(st, 1), STORE_TAG_BYTES);
		memcpy(a->pk, sqlite3_column_blob(st, 2), STORE_PK_BYTES);
		fs_col_buf(st, 3, &a->wrapped_password);
		fs_col_buf(st, 4, &a->wrapped_recovery);
		fs_col_buf(st, 6, &a->address_sealed);
		a->created = sqlite3_column_int64(st, 5);
		ret = 1;
	} else if (rc == SQLITE_ROW) {
		*error_r = "store: malformed account row";
	} else {
		fs_sql_error(r->db, error_r);
	}
	sqlite3_reset(st);
	fs_reader_put(FS(s), r);
	return ret;
}

struct fs_wrapped_ctx {
	uint64_t account_id;
	const struct buf *password, *recovery;
};

static int fs_account_set_wrapped_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_wrapped_ctx *c = ctx;
	sqlite3_stmt *st;
	int rc;

	if (fs_sql_prepare(db,
			   "UPDATE accounts SET wrapped_password = ?, wrapped_recovery = ?"
			   " WHERE id = ?",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_blob(st, 1, c->password->data, (int)c->password->len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, c->recovery->data, (int)c->recovery->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)c->account_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fs_sql_error(db, error_r);
	if (sqlite3_changes(db) != 1) {
		*error_r = "no such account";
		return -1;
	}
	return 0;
}

int fs_account_set_wrapped(struct store *s, uint64_t account_id, const struct buf *password,
			   const struct buf *recovery, const char **error_r)
{
	struct fs_wrapped_ctx c = {account_id, password, recovery};

	return fs_job_run_wait(FS(s), fs_account_set_wrapped_job, &c, error_r);
}

struct fs_delete_ctx {
	struct fs_store *fs;
	uint64_t account_id;
};

static int fs_account_delete_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	static const char *const sql[] = {
	    "SELECT m.record_id FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id"
	    " WHERE b.account_id = ?1 AND (m.record_id IN (SELECT record_id FROM extents)"
	    " OR m.record_id IN (SELECT record_id FROM files))",
	    "DELETE FROM chunks WHERE record_id IN (SELECT m.record_id FROM messages m"
	    " JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?1)",
	    "DELETE FROM records WHERE id IN (SELECT m.record_id FROM messages m"
	    " JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?1)",
	    "DELETE FROM messages WHERE mailbox_id IN"
	    " (SELECT id FROM mailboxes WHERE account_id = ?1)",
	    "DELETE FROM expunged WHERE mailbox_id IN"
	    " (SELECT id FROM mailboxes WHERE account_id = ?1)",
	    "DELETE FROM mailboxes WHERE account_id = ?1",
	    "DELETE FROM accounts WHERE id = ?1",
	};
	struct fs_delete_ctx *c = ctx;

	for (size_t i = 0; i < N_ELEMENTS(sql); i++) {
		sqlite3_stmt *st;
		int rc;

		if (fs_sql_prepare(db, sql[i], &st, error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)c->account_id);
		/* The first statement lists the records kept outside SQLite. */
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (fs_data_free(c->fs, db, sqlite3_column_int64(st, 0), error_r) < 0) {
				sqlite3_finalize(st);
				return -1;
			}
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fs_sql_error(db, error_r);
	}
	c->fs->checkpoint_truncate = 1;
	return 0;
}

int fs_account_delete(struct store *s, uint64_t account_id, const char **error_r)
{
	struct fs_delete_ctx c = {FS(s), account_id};

	return fs_job_run_wait(FS(s), fs_account_delete_job, &c, error_r);
}

int fs_account_usage(struct store *s, uint64_t account_id, uint64_t *messages_r, uint64_t *bytes_r,
		     const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	if (fs_sql_prepare(FS(s)->rdb,
			   "SELECT count(*), coalesce(sum(m.record_size), 0) FROM messages m"
			   " JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = ?",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*messages_r = (uint64_t)sqlite3_column_int64(st, 0);
		*bytes_r = (uint64_t)sqlite3_column_int64(st, 1);
		ret = 0;
	} else {
		fs_sql_error(FS(s)->rdb, error_r);
	}
	sqlite3_finalize(st);
	return ret;
}

/* ---- mailboxes -------------------------------------------------------- */

struct fs_mailbox_ctx {
	uint64_t account_id;
	enum store_role role;
	const struct buf *name_sealed;
	struct store_mailbox *box;
};

static int fs_mailbox_create_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_mailbox_ctx *c = ctx;
	static uint32_t last_validity;
	uint32_t validity = (uint32_t)time(NULL);
	sqlite3_stmt *st;
	int rc;

	/* UIDVALIDITY must differ for a mailbox re-created under a name; the
	 * writer thread is the only caller, so a plain static is safe. */
	if (validity <= last_validity)
		validity = last_validity + 1;
	last_validity = validity;
	if (fs_sql_prepare(db,
			   "INSERT INTO mailboxes(account_id, role, name_sealed, uidvalidity,"
			   " uidnext, highestmodseq) VALUES (?,?,?,?,1,1)",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)c->account_id);
	sqlite3_bind_int(st, 2, (int)c->role);
	if (c->name_sealed != NULL && c->name_sealed->len > 0)
		sqlite3_bind_blob(st, 3, c->name_sealed->data, (int)c->name_sealed->len,
				  SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, validity);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fs_sql_error(db, error_r);
	if (c->box != NULL) {
		c->box->id = (uint64_t)sqlite3_last_insert_rowid(db);
		c->box->account_id = c->account_id;
		c->box->role = c->role;
		c->box->uidvalidity = validity;
		c->box->uidnext = 1;
		c->box->highestmodseq = 1;
		c->box->subscribed = 1;
	}
	return 0;
}

int fs_mailbox_create(struct store *s, uint64_t account_id, enum store_role role,
		      const struct buf *name_sealed, struct store_mailbox *box_r,
		      const char **error_r)
{
	struct fs_mailbox_ctx c = {account_id, role, name_sealed, box_r};

	if (box_r != NULL && name_sealed != NULL && name_sealed->len > 0 &&
	    buf_append(&box_r->name_sealed, name_sealed->data, name_sealed->len) < 0)
		log_fatal("out of memory");
	return fs_job_run_wait(FS(s), fs_mailbox_create_job, &c, error_r);
}

static void fs_mailbox_row(sqlite3_stmt *st, struct store_mailbox *b)
{
	b->id = (uint64_t)sqlite3_column_int64(st, 0);
	b->account_id = (uint64_t)sqlite3_column_int64(st, 1);
	b->role = (enum store_role)sqlite3_column_int(st, 2);
	fs_col_buf(st, 3, &b->name_sealed);
	b->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
	b->uidnext = (uint32_t)sqlite3_column_int64(st, 5);
	b->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
	b->subscribed = sqlite3_column_int(st, 7);
	b->messages = (uint32_t)sqlite3_column_int64(st, 8);
}

int fs_mailbox_list(struct store *s, uint64_t account_id, struct store_mailbox **boxes_r,
		    size_t *count_r, const char **error_r)
{
	struct store_mailbox *boxes = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	if (fs_sql_prepare(FS(s)->rdb, FS_MAILBOX_COLS "WHERE b.account_id = ? ORDER BY b.id", &st,
			   error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			boxes = realloc(boxes, cap * sizeof(*boxes));
			if (boxes == NULL)
				log_fatal("out of memory");
		}
		memset(&boxes[n], 0, sizeof(boxes[n]));
		fs_mailbox_row(st, &boxes[n]);
		n++;
	}
	if (rc != SQLITE_DONE) {
		fs_sql_error(FS(s)->rdb, error_r);
		sqlite3_finalize(st);
		store_mailboxes_free(&boxes, n);
		return -1;
	}
	sqlite3_finalize(st);
	*boxes_r = boxes;
	*count_r = n;
	return 0;
}

int fs_mailbox_get_role(struct store *s, uint64_t account_id, enum store_role role,
			struct store_mailbox *box_r, const char **error_r)
{
	struct fs_reader *r = fs_reader_get(FS(s), FS_READER_LOOKUPS, error_r);
	sqlite3_stmt *st;
	int rc, ret = -1;

	if (r == NULL)
		return -1;
	if (fs_reader_stmt(r, FS_L_MAILBOX_ROLE, &st, error_r) < 0) {
		fs_reader_put(FS(s), r);
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)account_id);
	sqlite3_bind_int(st, 2, (int)role);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		fs_mailbox_row(st, box_r);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		fs_sql_error(r->db, error_r);
	}
	sqlite3_reset(st);
	fs_reader_put(FS(s), r);
	return ret;
}

/* ---- records ---------------------------------------------------------- */

int fs_record_begin(struct store *s, struct store_record_writer **w_r, const char **error_r)
{
	struct store_record_writer *w = xcalloc(1, sizeof(*w));

	w->fs = FS(s);
	w->fd = -1;
	store_message_init(&w->msg);
	*w_r = w;
	return 0;
}

int fs_record_write(struct store_record_writer *w, const void *data, size_t len,
		    const char **error_r)
{
	if (w->fd < 0 && w->mem_len + len > FS_SPILL_BYTES) {
		w->fd = openat(w->fs->files_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (w->fd < 0 || fs_write_all(w->fd, w->mem, w->mem_len) < 0) {
			*error_r = str_tfmt("store: temporary file: %s", strerror(errno));
			return -1;
		}
		free(w->mem);
		w->mem = NULL;
		w->mem_len = w->mem_cap = 0;
	}
	if (w->fd >= 0) {
		if (fs_write_all(w->fd, data, len) < 0) {
			*error_r = str_tfmt("store: temporary file: %s", strerror(errno));
			return -1;
		}
	} else if (len > 0) {
		if (w->mem_len + len > w->mem_cap) {
			size_t cap = w->mem_cap ? w->mem_cap : FS_MEM_FIRST_BYTES;
			uint8_t *p;

			while (cap < w->mem_len + len)
				cap *= 2;
			if ((p = realloc(w->mem, cap)) == NULL) {
				*error_r = "out of memory";
				return -1;
			}
			w->mem = p;
			w->mem_cap = cap;
		}
		memcpy(w->mem + w->mem_len, data, len);
		w->mem_len += len;
	}
	w->size += len;
	return 0;
}

static int fs_insert_chunk(sqlite3_stmt *st, int64_t record_id, int seq, const void *data,
			   size_t len)
{
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, record_id);
	sqlite3_bind_int(st, 2, seq);
	sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int fs_record_chunks(sqlite3 *db, struct store_record_writer *w, int64_t record_id,
			    const char **error_r)
{
	sqlite3_stmt *st;
	uint8_t *piece = NULL;
	int seq = 0, ret = -1;

	if (fs_wstmt(w->fs, FS_W_CHUNK, &st, error_r) < 0)
		return -1;
	if (w->fd < 0) {
		for (size_t off = 0; off < w->mem_len; off += FS_CHUNK_ROW_BYTES) {
			size_t n = w->mem_len - off;

			if (n > FS_CHUNK_ROW_BYTES)
				n = FS_CHUNK_ROW_BYTES;
			if (fs_insert_chunk(st, record_id, seq++, w->mem + off, n) < 0)
				goto sqlfail;
		}
		ret = 0;
		goto out;
	}
	piece = xmalloc(FS_CHUNK_ROW_BYTES);
	for (uint64_t off = 0; off < w->size;) {
		ssize_t n = pread(w->fd, piece, FS_CHUNK_ROW_BYTES, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = "store: cannot read back the temporary file";
			goto out;
		}
		if (fs_insert_chunk(st, record_id, seq++, piece, (size_t)n) < 0)
			goto sqlfail;
		off += (uint64_t)n;
	}
	ret = 0;
	goto out;
sqlfail:
	fs_sql_error(db, error_r);
out:
	free(piece);
	sqlite3_reset(st);
	return ret;
}

static int fs_record_commit_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct store_record_writer *w = ctx;
	const struct store_message *m = &w->msg;
	sqlite3_stmt *st;
	int64_t record_id, uid, modseq;
	int rc;

	if (fs_wstmt(w->fs, FS_W_RECORD, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)w->size);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fs_sql_error(db, error_r);
	record_id = sqlite3_last_insert_rowid(db);
	if (w->fd >= 0 && w->sync_errno != 0) {
		*error_r = str_tfmt("store: syncing a record: %s", strerror(w->sync_errno));
		return -1;
	}
	if (w->fd >= 0 && (rc = fs_file_link(w->fs, w->fd, record_id, w->size, error_r)) <= 0) {
		if (rc < 0)
			return -1;
	} else if (w->size >= FS_FILE_MIN_BYTES) {
		uint64_t off;

		if (fs_data_append(w->fs, w->fd < 0 ? w->mem : NULL, w->fd, w->size, &off,
				   error_r) < 0)
			return -1;
		if (fs_wstmt(w->fs, FS_W_EXTENT, &st, error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, record_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)off);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)w->size);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return fs_sql_error(db, error_r);
	} else if (fs_record_chunks(db, w, record_id, error_r) < 0) {
		return -1;
	}

	if (fs_wstmt(w->fs, FS_W_UIDNEXT, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m->mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		*error_r = "store: no such mailbox";
		return -1;
	}
	uid = sqlite3_column_int64(st, 0);
	modseq = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (uid <= 0 || uid > UINT32_MAX) {
		*error_r = "store: mailbox UIDs exhausted";
		return -1;
	}

	if (fs_wstmt(w->fs, FS_W_MESSAGE, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m->mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, record_id);
	sqlite3_bind_int(st, 4, (int)m->flags);
	if (m->keywords != NULL)
		sqlite3_bind_text(st, 5, m->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, modseq);
	sqlite3_bind_int64(st, 7, m->internal_date);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)m->size);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)w->size);
	sqlite3_bind_blob(st, 10, m->meta.data, (int)m->meta.len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fs_sql_error(db, error_r);
	*uid_r = (uint32_t)uid;
	return 0;
}

static void fs_record_free(struct store_record_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->mem);
	store_message_clear(&w->msg);
	free(w);
}

static void fs_record_commit_done(void *ctx, int result, uint32_t uid, const char *error)
{
	struct store_record_writer *w = ctx;
	store_commit_fn *done = w->done;
	void *done_ctx = w->done_ctx;

	/* ERROR may point into W. */
	done(done_ctx, result, uid, error);
	fs_record_free(w);
}

void fs_record_commit(struct store_record_writer **wp, const struct store_message *msg,
		      store_commit_fn *done, void *ctx)
{
	struct store_record_writer *w = *wp;

	*wp = NULL;
	/* Here, on the committing thread, not on the writer that every commit
	 * waits for. The file is the record's own inode: its sync reports only
	 * its own bytes. */
	if (w->fd >= 0 && fdatasync(w->fd) < 0)
		w->sync_errno = errno;
	else if (w->fd >= 0)
		fs_cache_drop(w->fd, 0, w->size);
	w->msg.mailbox_id = msg->mailbox_id;
	w->msg.flags = msg->flags;
	w->msg.keywords = msg->keywords ? xstrdup(msg->keywords) : NULL;
	w->msg.internal_date = msg->internal_date;
	w->msg.size = msg->size;
	if (buf_append(&w->msg.meta, msg->meta.data, msg->meta.len) < 0)
		log_fatal("out of memory");
	w->done = done;
	w->done_ctx = ctx;
	memset(&w->job, 0, sizeof(w->job));
	w->job.run = fs_record_commit_job;
	w->job.ctx = w;
	w->job.done = fs_record_commit_done;
	w->job.done_ctx = w;
	fs_job_submit(w->fs, &w->job);
}

void fs_record_abort(struct store_record_writer **wp)
{
	if (*wp == NULL)
		return;
	fs_record_free(*wp);
	*wp = NULL;
}

/* ---- reading ---------------------------------------------------------- */

int fs_message_list(struct store *s, uint64_t mailbox_id, uint32_t uid_min, store_message_fn *fn,
		    void *ctx, const char **error_r)
{
	struct store_message m;
	sqlite3_stmt *st;
	int rc;

	if (fs_sql_prepare(FS(s)->rdb,
			   "SELECT id, uid, flags, keywords, modseq, internal_date, size,"
			   " record_size, meta FROM messages WHERE mailbox_id = ? AND uid >= ?"
			   " ORDER BY uid",
			   &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)mailbox_id);
	sqlite3_bind_int64(st, 2, uid_min);
	store_message_init(&m);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *kw = sqlite3_column_text(st, 3);

		m.id = (uint64_t)sqlite3_column_int64(st, 0);
		m.mailbox_id = mailbox_id;
		m.uid = (uint32_t)sqlite3_column_int64(st, 1);
		m.flags = (uint32_t)sqlite3_column_int(st, 2);
		free(m.keywords);
		m.keywords = kw ? xstrdup((const char *)kw) : NULL;
		m.modseq = (uint64_t)sqlite3_column_int64(st, 4);
		m.internal_date = sqlite3_column_int64(st, 5);
		m.size = (uint64_t)sqlite3_column_int64(st, 6);
		m.record_size = (uint64_t)sqlite3_column_int64(st, 7);
		fs_col_buf(st, 8, &m.meta);
		if (fn(ctx, &m) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	store_message_clear(&m);
	if (rc != SQLITE_DONE) {
		fs_sql_error(FS(s)->rdb, error_r);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Feeds FN the LEN bytes at OFF of FD (records.dat or a record file). */
static int fs_record_read_file(int fd, struct fs_reader *r, uint64_t off, uint64_t len,
			       store_bytes_fn *fn, void *ctx, const char **error_r)
{
	while (len > 0) {
		size_t want = len < FS_READ_PIECE_BYTES ? (size_t)len : FS_READ_PIECE_BYTES;
		ssize_t n = pread(fd, r->piece, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? str_tfmt("store: reading a record: %s", strerror(errno))
					 : "store: record truncated";
			return -1;
		}
		if (fn(ctx, r->piece, (size_t)n) < 0) {
			*error_r = "record read aborted";
			return -1;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Feeds FN the rows of RECORD_ID, which holds SIZE bytes. */
static int fs_record_read_rows(struct fs_reader *r, int64_t record_id, uint64_t size,
			       store_bytes_fn *fn, void *ctx, const char **error_r)
{
	uint64_t got = 0;
	int rc, ret = 0;

	sqlite3_bind_int64(r->chunks, 1, record_id);
	while ((rc = sqlite3_step(r->chunks)) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(r->chunks, 0);

		got += n;
		if (fn(ctx, sqlite3_column_blob(r->chunks, 0), n) < 0) {
			*error_r = "record read aborted";
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		ret = fs_sql_error(r->db, error_r);
	} else if (ret == 0 && got != size) {
		*error_r = "store: record truncated";
		ret = -1;
	}
	sqlite3_reset(r->chunks);
	return ret;
}

int fs_record_read(struct store *s, uint64_t message_id, store_bytes_fn *fn, void *ctx,
		   const char **error_r)
{
	struct fs_store *fs = FS(s);
	struct fs_reader *r = fs_reader_get(fs, FS_READER_RECORDS, error_r);
	int64_t record_id;
	uint64_t size, off, len, name;
	int rc, in_data, fd = -1;
	char buf[17];

	if (r == NULL)
		return -1;
	/* Until the last byte is read, a delete may commit but not wipe. */
	pthread_rwlock_rdlock(&fs->wipe_lock);
	sqlite3_bind_int64(r->locate, 1, (sqlite3_int64)message_id);
	rc = sqlite3_step(r->locate);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			*error_r = store_error_gone;
		else
			fs_sql_error(r->db, error_r);
		sqlite3_reset(r->locate);
		pthread_rwlock_unlock(&fs->wipe_lock);
		fs_reader_put(fs, r);
		return -1;
	}
	record_id = sqlite3_column_int64(r->locate, 0);
	size = (uint64_t)sqlite3_column_int64(r->locate, 1);
	in_data = sqlite3_column_type(r->locate, 2) != SQLITE_NULL;
	off = (uint64_t)sqlite3_column_int64(r->locate, 2);
	len = (uint64_t)sqlite3_column_int64(r->locate, 3);
	name = (uint64_t)sqlite3_column_int64(r->locate, 4);
	if (sqlite3_column_type(r->locate, 4) != SQLITE_NULL) {
		fs_file_name(name, buf);
		len = (uint64_t)sqlite3_column_int64(r->locate, 5);
		fd = openat(fs->files_fd, buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			*error_r =
			    str_tfmt("store: opening record file %s: %s", buf, strerror(errno));
	}
	if (fd >= 0) {
		sqlite3_reset(r->locate); /* ends the read transaction */
		rc = fs_record_read_file(fd, r, 0, len, fn, ctx, error_r);
		close(fd);
	} else if (name != 0) {
		rc = -1;
	} else if (in_data) {
		sqlite3_reset(r->locate);
		rc = fs_record_read_file(fs->data_fd, r, off, len, fn, ctx, error_r);
	} else {
		/* Rows under 32 KiB: read in the same read transaction, so a
		 * delete committed meanwhile cannot take them halfway. */
		rc = fs_record_read_rows(r, record_id, size, fn, ctx, error_r);
	}
	sqlite3_reset(r->locate);
	pthread_rwlock_unlock(&fs->wipe_lock);
	fs_reader_put(fs, r);
	return rc;
}

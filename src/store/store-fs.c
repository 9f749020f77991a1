/* store-fs.c — the embedded store: one SQLite database (WAL) per region.
 *
 * Trust boundary: holds only ciphertext and the plaintext index fields of
 * store.h. secure_delete is on, so deleted ciphertext is overwritten, and
 * deletes truncate the WAL after they commit.
 *
 * Group commit: every write is a job for one writer thread. The thread takes
 * all queued jobs, runs each under its own savepoint inside one transaction,
 * commits once (synchronous=FULL: one WAL sync for the whole batch) and only
 * then reports each job's result. Concurrent deliveries thus share a sync.
 *
 * Records of FS_FILE_MIN_BYTES or more are not copied into SQLite pages (which
 * the WAL would write twice, 4 KiB at a time): the job appends them to
 * records.dat at the end found under the write lock, and the batch
 * fdatasyncs that file before its COMMIT, so an index row never points at
 * bytes that are not durable. Freed extents are zeroed, synced and punched
 * out after the COMMIT that removed their rows (listed in wipes until then,
 * so that a crash cannot leave them behind). records.dat never gets
 * shorter once a batch has committed: no offset is given out twice. */
#include "store/store-fs-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FS_DB_NAME        "store.sqlite"
#define FS_DATA_NAME      "records.dat"
#define FS_SCHEMA_VERSION 4
#define FS_BATCH_MAX      256

/* Version 2: where records of 32 KiB and more lie in records.dat
 * (extents); tombstones of expunged messages (UID and modseq only) for
 * QRESYNC; an index by modseq, so that each IMAP command's sync (and
 * CONDSTORE) visits only the changed rows instead of the whole mailbox; and
 * a covering index of everything but the sealed metadata in uid order, so
 * that opening a mailbox reads the index instead of every row; each
 * mailbox's message count, kept by triggers, so that the count every IMAP
 * command compares costs nothing however large the mailbox. */
#define FS_SCHEMA_V2                                                                               \
	"CREATE TABLE IF NOT EXISTS expunged(mailbox_id INTEGER NOT NULL,"                         \
	" uid INTEGER NOT NULL, modseq INTEGER NOT NULL, PRIMARY KEY(mailbox_id, uid))"            \
	" WITHOUT ROWID;"                                                                          \
	"CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);"              \
	"CREATE INDEX IF NOT EXISTS messages_view ON messages(mailbox_id, uid, flags, modseq,"     \
	" internal_date, size, record_size, keywords);"                                            \
	"CREATE TABLE IF NOT EXISTS extents(record_id INTEGER PRIMARY KEY,"                        \
	" off INTEGER NOT NULL, len INTEGER NOT NULL);"                                            \
	"CREATE TRIGGER IF NOT EXISTS messages_added AFTER INSERT ON messages BEGIN"               \
	" UPDATE mailboxes SET messages = messages + 1 WHERE id = NEW.mailbox_id; END;"            \
	"CREATE TRIGGER IF NOT EXISTS messages_removed AFTER DELETE ON messages BEGIN"             \
	" UPDATE mailboxes SET messages = messages - 1 WHERE id = OLD.mailbox_id; END;"

/* Version 3: records past FS_SPILL_BYTES in files of their own in records/,
 * named by a random number (never by the record's id, which SQLite may give
 * again once the last one is deleted, possibly in the same batch). */
#define FS_SCHEMA_V3                                                                               \
	"CREATE TABLE IF NOT EXISTS files(record_id INTEGER PRIMARY KEY,"                          \
	" name INTEGER NOT NULL UNIQUE, len INTEGER NOT NULL);"

/* Version 4: freed records.dat extents whose bytes are not yet known to be
 * zeroed. A row is written by the transaction that frees the extent and
 * removed once the wiper has zeroed and synced it, so that a crash (or a
 * failed wipe) in between leaves it for the next open. records.dat never
 * gives an offset out twice (its end only grows), so OFF names one. */
#define FS_SCHEMA_V4                                                                               \
	"CREATE TABLE IF NOT EXISTS wipes(off INTEGER PRIMARY KEY, len INTEGER NOT NULL);"

static const char fs_schema[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    " id INTEGER PRIMARY KEY, addr_hash BLOB NOT NULL UNIQUE, tag BLOB NOT NULL,"
    " pk BLOB NOT NULL, wrapped_password BLOB NOT NULL, wrapped_recovery BLOB NOT NULL,"
    " address_sealed BLOB,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS mailboxes("
    " id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " role INTEGER NOT NULL, name_sealed BLOB, uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL, highestmodseq INTEGER NOT NULL,"
    " subscribed INTEGER NOT NULL DEFAULT 1, messages INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS mailboxes_account ON mailboxes(account_id);"
    "CREATE TABLE IF NOT EXISTS records(id INTEGER PRIMARY KEY, refs INTEGER NOT NULL,"
    " size INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks(record_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(record_id, seq));"
    "CREATE TABLE IF NOT EXISTS messages("
    " id INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
    " uid INTEGER NOT NULL, record_id INTEGER NOT NULL, flags INTEGER NOT NULL,"
    " keywords TEXT, modseq INTEGER NOT NULL, internal_date INTEGER NOT NULL,"
    " size INTEGER NOT NULL, record_size INTEGER NOT NULL, meta BLOB NOT NULL,"
    " UNIQUE(mailbox_id, uid));" FS_SCHEMA_V2 FS_SCHEMA_V3 FS_SCHEMA_V4 "PRAGMA user_version = 4;";

/* Version 1 kept every record in chunks rows, version 2 those of 32 KiB and
 * more in records.dat; both stay readable. */
static const char fs_schema_1to2[] =
    "ALTER TABLE mailboxes ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;"
    "UPDATE mailboxes SET messages = (SELECT count(*) FROM messages m"
    " WHERE m.mailbox_id = mailboxes.id);" FS_SCHEMA_V2;
static const char fs_schema_2to3[] = FS_SCHEMA_V3 "PRAGMA user_version = 3;";
static const char fs_schema_3to4[] = FS_SCHEMA_V4 "PRAGMA user_version = 4;";

int fs_sql_error(sqlite3 *db, const char **error_r)
{
	*error_r = str_tfmt("store: %s", sqlite3_errmsg(db));
	return -1;
}

int fs_sql_exec(sqlite3 *db, const char *sql, const char **error_r)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fs_sql_error(db, error_r);
	return 0;
}

int fs_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt_r, const char **error_r)
{
	if (sqlite3_prepare_v2(db, sql, -1, stmt_r, NULL) != SQLITE_OK)
		return fs_sql_error(db, error_r);
	return 0;
}

static const char *const fs_wstmt_sql[FS_W_COUNT] = {
    [FS_W_BEGIN] = "BEGIN IMMEDIATE",
    [FS_W_COMMIT] = "COMMIT",
    [FS_W_SAVEPOINT] = "SAVEPOINT job",
    [FS_W_RELEASE] = "RELEASE job",
    [FS_W_ROLLBACK_TO] = "ROLLBACK TO job",
    [FS_W_WIPE_ADD] = "INSERT OR REPLACE INTO wipes(off, len) VALUES (?, ?)",
    [FS_W_WIPE_DONE] = "DELETE FROM wipes WHERE off = ?",
    [FS_W_RECORD] = "INSERT INTO records(refs, size) VALUES (1, ?)",
    [FS_W_EXTENT] = "INSERT INTO extents(record_id, off, len) VALUES (?,?,?)",
    [FS_W_FILE] = "INSERT INTO files(record_id, name, len) VALUES (?,?,?)",
    [FS_W_CHUNK] = "INSERT INTO chunks(record_id, seq, data) VALUES (?,?,?)",
    [FS_W_UIDNEXT] = "UPDATE mailboxes SET uidnext = uidnext + 1,"
		     " highestmodseq = highestmodseq + 1 WHERE id = ?"
		     " RETURNING uidnext - 1, highestmodseq",
    [FS_W_MESSAGE] = "INSERT INTO messages(mailbox_id, uid, record_id, flags, keywords,"
		     " modseq, internal_date, size, record_size, meta)"
		     " VALUES (?,?,?,?,?,?,?,?,?,?)",
};

static const char *const fs_lookup_sql[FS_L_COUNT] = {
    [FS_L_ACCOUNT] = "SELECT id, tag, pk, wrapped_password, wrapped_recovery, created,"
		     " address_sealed FROM accounts WHERE addr_hash = ?",
    [FS_L_MAILBOX_ROLE] = FS_MAILBOX_COLS "WHERE b.account_id = ? AND b.role = ? ORDER BY b.id",
};

/* *SLOT, prepared from SQL on DB the first time, else reset and cleared. */
static int fs_stmt_cached(sqlite3 *db, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **st_r,
			  const char **error_r)
{
	if (*slot == NULL) {
		if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
		    SQLITE_OK)
			return fs_sql_error(db, error_r);
	} else {
		sqlite3_reset(*slot);
		sqlite3_clear_bindings(*slot);
	}
	*st_r = *slot;
	return 0;
}

int fs_wstmt(struct fs_store *fs, enum fs_wstmt which, sqlite3_stmt **st_r, const char **error_r)
{
	return fs_stmt_cached(fs->wdb, &fs->wstmts[which], fs_wstmt_sql[which], st_r, error_r);
}

int fs_reader_stmt(struct fs_reader *r, enum fs_lookup which, sqlite3_stmt **st_r,
		   const char **error_r)
{
	return fs_stmt_cached(r->db, &r->lookups[which], fs_lookup_sql[which], st_r, error_r);
}

int fs_wexec(struct fs_store *fs, enum fs_wstmt which, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (fs_wstmt(fs, which, &st, error_r) < 0)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fs_sql_error(fs->wdb, error_r);
}

static void fs_wstmts_free(struct fs_store *fs)
{
	for (int i = 0; i < FS_W_COUNT; i++) {
		sqlite3_finalize(fs->wstmts[i]);
		fs->wstmts[i] = NULL;
	}
}

/* Creates the schema of a new store; an existing one of the current
 * version is only read, so that opening a region's store never changes its
 * files. Older versions are brought up to date in one transaction. */
static int fs_schema_version(sqlite3 *db, const char **error_r)
{
	sqlite3_stmt *st;
	int version = -1;

	if (fs_sql_prepare(db, "PRAGMA user_version", &st, error_r) < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0 || version > FS_SCHEMA_VERSION) {
		*error_r = str_tfmt("store: unknown schema version %d", version);
		return -1;
	}
	return version;
}

static int fs_schema_ensure(sqlite3 *db, const char **error_r)
{
	int version = fs_schema_version(db, error_r);

	if (version < 0 || version == FS_SCHEMA_VERSION)
		return version < 0 ? -1 : 0;
	if (fs_sql_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	/* Again under the write lock: another process may have upgraded it. */
	if ((version = fs_schema_version(db, error_r)) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if ((version == 0 && fs_sql_exec(db, fs_schema, error_r) < 0) ||
	    (version == 1 && fs_sql_exec(db, fs_schema_1to2, error_r) < 0) ||
	    ((version == 1 || version == 2) && fs_sql_exec(db, fs_schema_2to3, error_r) < 0) ||
	    (version >= 1 && version <= 3 && fs_sql_exec(db, fs_schema_3to4, error_r) < 0) ||
	    fs_sql_exec(db, "COMMIT", error_r) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/* How long a connection waits for a lock another one holds. */
#define FS_BUSY_TIMEOUT_MS 10000

/* SQLite's own handler sleeps up to 100 ms between tries. Another handle
 * on the same store that retakes the write lock as soon as it lets it go
 * (a steady stream of deliveries does) then wins nearly every time, and a
 * writer of this handle can wait out the whole timeout. Trying again every
 * few hundred microseconds, it gets its turn within a few commits. */
static int fs_busy(void *ctx, int count)
{
	static __thread struct timespec start;
	struct timespec now;
	int64_t waited_ms;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (count == 0)
		start = now;
	waited_ms =
	    (int64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
	if (waited_ms >= FS_BUSY_TIMEOUT_MS)
		return 0;
	usleep(count < 10 ? 100 : 500);
	return 1;
}

static int fs_db_open(const char *path, int flags, sqlite3 **db_r, const char **error_r)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		*error_r = str_tfmt("store: cannot open %s: %s", path,
				    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_handler(db, fs_busy, NULL);
	if (fs_sql_exec(db,
			"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			"PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;",
			error_r) < 0) {
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

/* ---- readers --------------------------------------------------------------- */

static void fs_reader_free(struct fs_reader *r)
{
	sqlite3_finalize(r->locate);
	sqlite3_finalize(r->chunks);
	for (int i = 0; i < FS_L_COUNT; i++)
		sqlite3_finalize(r->lookups[i]);
	sqlite3_close(r->db);
	free(r->piece);
	free(r);
}

struct fs_reader *fs_reader_get(struct fs_store *fs, enum fs_reader_kind kind, const char **error_r)
{
	/* Records: 1 MiB, the B-trees' inner pages and more. */
	static const char *const pragmas[FS_READER_KINDS] = {
	    [FS_READER_RECORDS] = "PRAGMA query_only=ON; PRAGMA cache_size=-1024",
	    [FS_READER_SCANS] = "PRAGMA query_only=ON; PRAGMA cache_size=-16384",
	    [FS_READER_LOOKUPS] = "PRAGMA query_only=ON; PRAGMA cache_size=-2048",
	};
	struct fs_reader *r;

	pthread_mutex_lock(&fs->readers_lock);
	r = fs->readers[kind];
	if (r != NULL)
		fs->readers[kind] = r->next;
	pthread_mutex_unlock(&fs->readers_lock);
	if (r != NULL)
		return r;
	r = xcalloc(1, sizeof(*r));
	r->kind = kind;
	if (fs_db_open(fs->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, &r->db, error_r) <
		0 ||
	    fs_sql_exec(r->db, pragmas[kind], error_r) < 0) {
		fs_reader_free(r);
		return NULL;
	}
	if (kind != FS_READER_RECORDS)
		return r;
	if (sqlite3_prepare_v3(r->db,
			       "SELECT m.record_id, m.record_size, e.off, e.len, f.name, f.len"
			       " FROM messages m LEFT JOIN extents e ON e.record_id = m.record_id"
			       " LEFT JOIN files f ON f.record_id = m.record_id WHERE m.id = ?",
			       -1, SQLITE_PREPARE_PERSISTENT, &r->locate, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db, "SELECT data FROM chunks WHERE record_id = ? ORDER BY seq",
			       -1, SQLITE_PREPARE_PERSISTENT, &r->chunks, NULL) != SQLITE_OK) {
		fs_sql_error(r->db, error_r);
		fs_reader_free(r);
		return NULL;
	}
	r->piece = xmalloc(FS_READ_PIECE_BYTES);
	return r;
}

void fs_reader_put(struct fs_store *fs, struct fs_reader *r)
{
	pthread_mutex_lock(&fs->readers_lock);
	r->next = fs->readers[r->kind];
	fs->readers[r->kind] = r;
	pthread_mutex_unlock(&fs->readers_lock);
}

/* ---- records.dat ------------------------------------------------------------ */

/* Where copy_file_range cannot: up to 256 KiB through a buffer. */
static ssize_t fs_data_copy_piece(int in_fd, uint64_t in_off, int out_fd, uint64_t out_off,
				  uint64_t len)
{
	size_t want = len < 262144 ? (size_t)len : 262144;
	uint8_t *piece = xmalloc(want);
	ssize_t n = pread(in_fd, piece, want, (off_t)in_off);

	if (n > 0)
		n = pwrite(out_fd, piece, (size_t)n, (off_t)out_off);
	free(piece);
	return n;
}

int fs_data_append(struct fs_store *fs, const void *data, int fd, uint64_t len, uint64_t *off_r,
		   const char **error_r)
{
	uint64_t off = fs->data_end, done = 0;

	fs->data_dirty = 1;
	while (done < len) {
		ssize_t n;

		if (data != NULL) {
			n = pwrite(fs->data_fd, (const uint8_t *)data + done, len - done,
				   (off_t)(off + done));
		} else {
			loff_t in = (loff_t)done, out = (loff_t)(off + done);

			n = copy_file_range(fd, &in, fs->data_fd, &out, len - done, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP))
				n = fs_data_copy_piece(fd, done, fs->data_fd, off + done,
						       len - done);
			if (n == 0)
				errno = EIO; /* the spill file is shorter than it should be */
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = str_tfmt("store: writing %s: %s", FS_DATA_NAME, strerror(errno));
			/* What did reach the file is the batch's to cut or discard. */
			if (off + done > fs->data_high)
				fs->data_high = off + done;
			return -1;
		}
		done += (uint64_t)n;
	}
	fs->data_end = off + len;
	if (fs->data_end > fs->data_high)
		fs->data_high = fs->data_end;
	*off_r = off;
	/* Start writing it back now, so that the batch's fdatasync, after the
	 * batch's other jobs, has less left to wait for. */
	(void)sync_file_range(fs->data_fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
	return 0;
}

int fs_data_free(struct fs_store *fs, sqlite3 *db, int64_t record_id, const char **error_r)
{
	static const char *const sql[] = {
	    "DELETE FROM extents WHERE record_id = ? RETURNING off, len, 0",
	    "DELETE FROM files WHERE record_id = ? RETURNING 0, len, name",
	};

	size_t first = fs->nholes;
	sqlite3_stmt *st;

	for (size_t i = 0; i < N_ELEMENTS(sql); i++) {
		int rc;

		if (fs_sql_prepare(db, sql[i], &st, error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, record_id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct fs_extent *h;

			if (fs->nholes == fs->holes_cap) {
				fs->holes_cap = fs->holes_cap ? fs->holes_cap * 2 : 16;
				fs->holes = realloc(fs->holes, fs->holes_cap * sizeof(*fs->holes));
				if (fs->holes == NULL)
					log_fatal("out of memory");
			}
			h = &fs->holes[fs->nholes++];
			h->off = (uint64_t)sqlite3_column_int64(st, 0);
			h->len = (uint64_t)sqlite3_column_int64(st, 1);
			h->file = (uint64_t)sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fs_sql_error(db, error_r);
	}
	/* Until the wiper has zeroed them, in the same transaction. */
	for (size_t i = first; i < fs->nholes; i++) {
		if (fs->holes[i].file != 0)
			continue; /* a file no row names is wiped at open anyway */
		if (fs_wstmt(fs, FS_W_WIPE_ADD, &st, error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)fs->holes[i].off);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)fs->holes[i].len);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return fs_sql_error(db, error_r);
		}
		sqlite3_reset(st);
	}
	return 0;
}

/* Overwrites OFF..END of FD with zeros; 0, or -1 with errno. */
static int fs_zero_range(int fd, uint64_t off, uint64_t end)
{
	static const uint8_t zeros[65536];

	while (off < end) {
		size_t n = end - off < sizeof(zeros) ? (size_t)(end - off) : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		off += (uint64_t)w;
	}
	return 0;
}

/* Lets the page cache drop LEN synced bytes of FD at OFF: a sealed record is
 * written once and read back seldom (by one client, sometimes weeks later),
 * so keeping every delivered byte cached only made memory grow with the
 * mail received and evicted what is read again and again (the index). On
 * a virtual machine whose memory the host backs lazily or takes back when
 * it is free (balloon free page reporting), every new page-cache page also
 * costs a fault in the host: copying records into fresh pages took 36% of
 * the server's CPU in the benchmark's later runs, against 3% in its first.
 * Dropped, the pages are reused for the next records. A record then read
 * back comes from the disk (docs/performance.md). Only whole pages go;
 * advice that fails changes nothing. */
void fs_cache_drop(int fd, uint64_t off, uint64_t len)
{
	if (len > 0)
		(void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
}

static int fs_zero_data(int fd, uint64_t off, uint64_t end, int *wrote_r);

/* Zeroes and punches out OFF..END of records.dat: bytes of a batch that
 * did not commit. Best effort; a failure is logged. */
static void fs_data_discard(struct fs_store *fs, uint64_t off, uint64_t end)
{
	int wrote = 0;

	if (end <= off)
		return;
	if (fs_zero_data(fs->data_fd, off, end, &wrote) < 0)
		log_warn("store %s: zeroing a failed batch in %s: %s", fs->dir, FS_DATA_NAME,
			 strerror(errno));
	(void)fallocate(fs->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			(off_t)(end - off));
}

/* Overwrites with zeros what FD holds in OFF..END, passing over its holes
 * (a range already wiped costs two lseeks); sets *WROTE_R if it wrote.
 * 0, or -1 with errno. */
static int fs_zero_data(int fd, uint64_t off, uint64_t end, int *wrote_r)
{
	while (off < end) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			return 0; /* nothing but holes after OFF */
		if (data < 0) {
			data = (off_t)off; /* no SEEK_DATA here: all of it */
			hole = (off_t)end;
		} else {
			if ((uint64_t)data >= end)
				return 0;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > end)
				hole = (off_t)end;
		}
		if (fs_zero_range(fd, (uint64_t)data, (uint64_t)hole) < 0)
			return -1;
		*wrote_r = 1;
		off = (uint64_t)hole;
	}
	return 0;
}

/* Wipes the records.dat extents among R (those with FILE 0) on FD: zeroes
 * what they hold up to the file's end, syncs once, then punches them out.
 * 0, or -1 with errno (then nothing is punched: the bytes may not be zero
 * on disk yet). */
static int fs_wipe_extents(int fd, const struct fs_extent *r, size_t n)
{
	struct stat stt;
	uint64_t size;
	int wrote = 0;

	if (fstat(fd, &stt) < 0)
		return -1;
	size = (uint64_t)stt.st_size;
	for (size_t i = 0; i < n; i++) {
		uint64_t end = r[i].off + r[i].len;

		if (r[i].file != 0)
			continue;
		if (end > size)
			end = size; /* cut by an older version at open */
		if (r[i].off < end && fs_zero_data(fd, r[i].off, end, &wrote) < 0)
			return -1;
	}
	if (wrote && fdatasync(fd) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (r[i].file == 0 && r[i].off < size)
			(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)r[i].off, (off_t)r[i].len);
	return 0;
}

/* ---- record files (records/) -------------------------------------------------- */

#define FS_FILES_NAME "records"

void fs_file_name(uint64_t name, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)name);
}

/* Removes record file BUF from records/ the way records.dat loses a freed
 * extent: its bytes overwritten with zeros and synced, then unlinked. A
 * failure leaves ciphertext that nothing refers to (removed at the next
 * open); it is logged, not fatal. */
static void fs_file_wipe(struct fs_store *fs, const char *buf)
{
	struct stat stt;
	int fd = openat(fs->files_fd, buf, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("store %s: opening freed record %s: %s", fs->dir, buf,
				 strerror(errno));
		return;
	}
	if (fstat(fd, &stt) < 0 || fs_zero_range(fd, 0, (uint64_t)stt.st_size) < 0 ||
	    fdatasync(fd) < 0) {
		log_warn("store %s: zeroing freed record %s: %s", fs->dir, buf, strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	if (unlinkat(fs->files_fd, buf, 0) < 0)
		log_warn("store %s: removing freed record %s: %s", fs->dir, buf, strerror(errno));
}

int fs_file_link(struct fs_store *fs, int fd, int64_t record_id, uint64_t len, const char **error_r)
{
	char src[40], buf[17];
	sqlite3_stmt *st;
	uint64_t name;
	int rc;

	/* Linking an unnamed file by its descriptor needs /proc (or, with
	 * AT_EMPTY_PATH, a privilege the server does not keep). */
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	for (;;) {
		sqlite3_randomness(sizeof(name), &name);
		if (name == 0)
			continue;
		fs_file_name(name, buf);
		if (linkat(AT_FDCWD, src, fs->files_fd, buf, AT_SYMLINK_FOLLOW) == 0)
			break;
		if (errno == EEXIST || errno == EINTR)
			continue;
		if (errno == ENOENT || errno == EPERM || errno == EACCES || errno == ENOTDIR ||
		    errno == EOPNOTSUPP || errno == EXDEV)
			return 1;
		*error_r =
		    str_tfmt("store: linking a record into %s: %s", FS_FILES_NAME, strerror(errno));
		return -1;
	}
	if (fs->nlinked == fs->linked_cap) {
		fs->linked_cap = fs->linked_cap ? fs->linked_cap * 2 : 16;
		fs->linked = realloc(fs->linked, fs->linked_cap * sizeof(*fs->linked));
		if (fs->linked == NULL)
			log_fatal("out of memory");
	}
	fs->linked[fs->nlinked++] = name;
	if (fs_wstmt(fs, FS_W_FILE, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, record_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fs_sql_error(fs->wdb, error_r);
}

/* Unlinks the files the batch linked from the FROMth on: their rows are
 * rolled back. What fails stays an orphan until the next open. */
static void fs_files_unlink_from(struct fs_store *fs, size_t from)
{
	char buf[17];

	for (size_t i = from; i < fs->nlinked; i++) {
		fs_file_name(fs->linked[i], buf);
		if (unlinkat(fs->files_fd, buf, 0) < 0)
			log_warn("store %s: removing record %s of a failed write: %s", fs->dir, buf,
				 strerror(errno));
	}
	fs->nlinked = from;
}

/* Opens records/ (made if missing) and, under the write lock of
 * fs_data_open, wipes every file in it that no row names: a record linked
 * by a batch that never committed, or a freed one whose removal failed. */
static int fs_files_open(struct fs_store *fs, const char **error_r)
{
	char *path = fs_path_join(fs->dir, FS_FILES_NAME);
	sqlite3_stmt *st = NULL;
	struct dirent *de;
	DIR *d;
	int dfd, made;

	made = mkdir(path, 0700) == 0;
	if (!made && errno != EEXIST) {
		*error_r = str_tfmt("store: cannot create %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	fs->files_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* A new folder is made durable before any row can name a file in it:
	 * batches sync only the folder's own entries. */
	if (made && fs->files_fd >= 0 && (fsync(fs->files_fd) < 0 || fs_fsync_parent(path) < 0)) {
		*error_r = str_tfmt("store: cannot sync %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	dfd = fs->files_fd < 0 ? -1 : fcntl(fs->files_fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		*error_r = str_tfmt("store: cannot open %s: %s", path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		free(path);
		return -1;
	}
	free(path);
	if (fs_sql_prepare(fs->wdb, "SELECT 1 FROM files WHERE name = ?", &st, error_r) < 0) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t name;

		if (de->d_name[0] == '.')
			continue;
		if (strlen(de->d_name) != 16 || strspn(de->d_name, "0123456789abcdef") != 16) {
			log_warn("store %s: %s/%s is not a record file; left alone", fs->dir,
				 FS_FILES_NAME, de->d_name);
			continue;
		}
		name = strtoull(de->d_name, NULL, 16);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)name);
		if (sqlite3_step(st) == SQLITE_DONE) {
			log_info("store %s: removing orphan record file %s", fs->dir, de->d_name);
			fs_file_wipe(fs, de->d_name);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	closedir(d);
	return 0;
}

/* ---- freed records ------------------------------------------------------------- */

/* The rows of the freed extents and files HOLES are committed: overwrite
 * their bytes with zeros, sync, and give the blocks back to the file
 * system. A failure leaves ciphertext that nothing refers to; it is logged,
 * and the extents' rows in wipes keep them for the next open. On the wiper
 * thread. Returns 0 when every extent is zeroed and synced. */
static int fs_wipe_run(struct fs_store *fs, const struct fs_extent *holes, size_t nholes)
{
	int ret = 0;

	pthread_rwlock_wrlock(&fs->wipe_lock);
	for (size_t i = 0; i < nholes; i++) {
		char buf[17];

		if (holes[i].file == 0)
			continue;
		fs_file_name(holes[i].file, buf);
		fs_file_wipe(fs, buf);
	}
	if (fs_wipe_extents(fs->wipe_fd, holes, nholes) < 0) {
		log_warn("store %s: wiping freed records: %s", fs->dir, strerror(errno));
		ret = -1;
	}
	pthread_rwlock_unlock(&fs->wipe_lock);
	return ret;
}

/* A job that drops the rows in wipes of extents the wiper has zeroed. */
struct fs_wiped {
	struct fs_job job;
	struct fs_store *fs;
	size_t n;
	uint64_t offs[];
};

static int fs_wiped_job(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r)
{
	struct fs_wiped *w = ctx;
	sqlite3_stmt *st;

	(void)uid_r;
	if (fs_wstmt(w->fs, FS_W_WIPE_DONE, &st, error_r) < 0)
		return -1;
	for (size_t i = 0; i < w->n; i++) {
		int rc;

		sqlite3_bind_int64(st, 1, (sqlite3_int64)w->offs[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return fs_sql_error(db, error_r);
	}
	return 0;
}

static void fs_wiped_done(void *ctx, int result, uint32_t uid, const char *error)
{
	struct fs_wiped *w = ctx;

	(void)uid;
	/* The rows stay: the next open wipes the extents again, harmlessly. */
	if (result < 0)
		log_warn("store: forgetting wiped records: %s", error);
	free(w);
}

/* Queues the fs_wiped job for the extents (not files) of HOLES. */
static void fs_wiped_submit(struct fs_store *fs, const struct fs_extent *holes, size_t nholes)
{
	struct fs_wiped *w = xcalloc(1, sizeof(*w) + nholes * sizeof(w->offs[0]));

	for (size_t i = 0; i < nholes; i++)
		if (holes[i].file == 0)
			w->offs[w->n++] = holes[i].off;
	if (w->n == 0) {
		free(w);
		return;
	}
	w->fs = fs;
	w->job.run = fs_wiped_job;
	w->job.ctx = w;
	w->job.done = fs_wiped_done;
	w->job.done_ctx = w;
	fs_job_submit(fs, &w->job);
}

/* Reports JOB's result to its caller. */
static void fs_job_finish(struct fs_job *job)
{
	job->done(job->done_ctx, job->result, job->uid, job->result < 0 ? job->error : NULL);
}

/* Lets the wiper finish what is queued and waits for it. */
static void fs_wiper_stop(struct fs_store *fs)
{
	pthread_mutex_lock(&fs->wq_lock);
	fs->wq_stopping = 1;
	pthread_cond_broadcast(&fs->wq_cond);
	pthread_mutex_unlock(&fs->wq_lock);
	pthread_join(fs->wiper, NULL);
}

static void *fs_wiper_main(void *arg)
{
	struct fs_store *fs = arg;

	pthread_setname_np(pthread_self(), "store-wiper");
	pthread_mutex_lock(&fs->wq_lock);
	for (;;) {
		struct fs_wipe *w;

		while (fs->wq_head == NULL && !fs->wq_stopping)
			pthread_cond_wait(&fs->wq_cond, &fs->wq_lock);
		if (fs->wq_head == NULL)
			break;
		w = fs->wq_head;
		fs->wq_head = w->next;
		if (fs->wq_head == NULL)
			fs->wq_tail = NULL;
		pthread_mutex_unlock(&fs->wq_lock);
		if (fs_wipe_run(fs, w->holes, w->nholes) == 0)
			fs_wiped_submit(fs, w->holes, w->nholes);
		while (w->jobs != NULL) {
			struct fs_job *job = w->jobs;

			w->jobs = job->next;
			fs_job_finish(job);
		}
		free(w->holes);
		free(w);
		pthread_mutex_lock(&fs->wq_lock);
	}
	pthread_mutex_unlock(&fs->wq_lock);
	return NULL;
}

/* Hands what the committed batch freed to the wiper, with the jobs of
 * *BATCH that freed it (taken out of *BATCH, in order). */
static void fs_wipe_queue(struct fs_store *fs, struct fs_job **batch)
{
	struct fs_wipe *w = xcalloc(1, sizeof(*w));
	struct fs_job **tail = &w->jobs, **p = batch;

	w->holes = xmalloc(fs->nholes * sizeof(*w->holes));
	memcpy(w->holes, fs->holes, fs->nholes * sizeof(*w->holes));
	w->nholes = fs->nholes;
	fs->nholes = 0;
	while (*p != NULL) {
		struct fs_job *job = *p;

		if (!job->wipes) {
			p = &job->next;
			continue;
		}
		*p = job->next;
		job->next = NULL;
		*tail = job;
		tail = &job->next;
	}
	pthread_mutex_lock(&fs->wq_lock);
	if (fs->wq_tail != NULL)
		fs->wq_tail->next = w;
	else
		fs->wq_head = w;
	fs->wq_tail = w;
	pthread_cond_signal(&fs->wq_cond);
	pthread_mutex_unlock(&fs->wq_lock);
}

/* Under the write lock (so that no other process is between its append and
 * its COMMIT): zeroes, syncs and punches out the extents a committed
 * transaction freed but no wiper finished (wipes) and what a crash left
 * after the last committed extent, then forgets those rows. records.dat is
 * never cut shorter: another process's wiper may still be zeroing an
 * extent it freed, and an offset given out again would put that over a new
 * record. A failure is logged; the rows stay for the next open. */
static void fs_data_recover(struct fs_store *fs, int alone)
{
	struct fs_extent *ranges = NULL;
	size_t n = 0, listed, cap = 0;
	sqlite3_stmt *st = NULL;
	struct stat stt;
	uint64_t end = 0;
	int rc;

	if (fstat(fs->data_fd, &stt) < 0)
		goto fail_errno;
	/* Listed extents only when no other handle is open: its wiper may be
	 * zeroing them right now, and doing it again under the write lock
	 * (gigabytes, after a large delete) would hold up its writer. Not
	 * alone, the tail starts after the listed extents too. */
	if (sqlite3_prepare_v2(fs->wdb,
			       alone
				   ? "SELECT off, len FROM wipes UNION ALL"
				     " SELECT coalesce(max(off + len), 0), -1 FROM extents"
				   : "SELECT max(coalesce((SELECT max(off + len) FROM extents), 0),"
				     " coalesce((SELECT max(off + len) FROM wipes), 0)), -1",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail_sql;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);
		int64_t len = sqlite3_column_int64(st, 1);

		if (len < 0) {
			end = off; /* the row of the last committed extent's end */
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ranges = realloc(ranges, cap * sizeof(*ranges));
			if (ranges == NULL)
				log_fatal("out of memory");
		}
		ranges[n++] = (struct fs_extent){.off = off, .len = (uint64_t)len};
	}
	if (rc != SQLITE_DONE)
		goto fail_sql;
	listed = n;
	if ((uint64_t)stt.st_size > end) {
		if ((ranges = realloc(ranges, (n + 1) * sizeof(*ranges))) == NULL)
			log_fatal("out of memory");
		ranges[n++] = (struct fs_extent){.off = end, .len = (uint64_t)stt.st_size - end};
	}
	if (fs_wipe_extents(fs->data_fd, ranges, n) < 0)
		goto fail_errno;
	if (listed > 0 && sqlite3_exec(fs->wdb, "DELETE FROM wipes", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_sql;
	if (listed > 0)
		log_info("store %s: wiped %zu freed records a crash or a failed wipe had left",
			 fs->dir, listed);
	goto out;
fail_errno:
	log_warn("store %s: wiping what a crash left in %s: %s", fs->dir, FS_DATA_NAME,
		 strerror(errno));
	goto out;
fail_sql:
	log_warn("store %s: wiping what a crash left in %s: %s", fs->dir, FS_DATA_NAME,
		 sqlite3_errmsg(fs->wdb));
out:
	sqlite3_finalize(st);
	free(ranges);
}

/* 1 when no other handle (of any process) has this store open: see the
 * lock in fs_data_open. Asked before this handle takes its own. */
static int fs_data_alone(struct fs_store *fs)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};

	return fcntl(fs->data_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
}

/* Opens records.dat and records/ and wipes what a crash left in them: see
 * fs_data_recover, and the record files no row names. */
static int fs_data_open(struct fs_store *fs, const char **error_r)
{
	char *path = fs_path_join(fs->dir, FS_DATA_NAME);
	int ret;

	fs->data_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* The wiper's own description of the same file (see fs_store). */
	if (fs->data_fd >= 0)
		fs->wipe_fd = open(path, O_RDWR | O_CLOEXEC);
	if (fs->data_fd < 0 || fs->wipe_fd < 0) {
		*error_r = str_tfmt("store: cannot open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (fs_sql_exec(fs->wdb, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	fs_data_recover(fs, fs_data_alone(fs));
	/* Every open handle holds a shared lock on records.dat's first byte
	 * (an open file description lock, gone with the process), so that an
	 * open can tell whether another handle's wiper may be at work. */
	(void)fcntl(fs->data_fd, F_OFD_SETLK,
		    &(struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1});
	if (sqlite3_get_autocommit(fs->wdb)) {
		/* An error rolled the transaction back: no write lock. */
		*error_r =
		    str_tfmt("store: recovering %s: %s", FS_DATA_NAME, sqlite3_errmsg(fs->wdb));
		return -1;
	}
	ret = fs_files_open(fs, error_r);
	if (ret < 0 || fs_sql_exec(fs->wdb, "COMMIT", error_r) < 0) {
		sqlite3_exec(fs->wdb, "ROLLBACK", NULL, NULL, NULL);
		ret = -1;
	}
	return ret;
}

void fs_job_submit(struct fs_store *fs, struct fs_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&fs->lock);
	if (fs->queue_tail != NULL)
		fs->queue_tail->next = job;
	else
		fs->queue_head = job;
	fs->queue_tail = job;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

/* A COMMIT that failed (its WAL sync, say) may have left the batch's frames,
 * commit frame included, in the WAL file: recovery after a crash would then
 * replay writes that were answered as failed. One more small transaction
 * writes its frame where theirs begin, and since WAL frame checksums chain,
 * that ends the valid part of the WAL before them; this holds once the
 * frame is written, even if its own sync fails too. */
static int fs_wal_overwrite(struct fs_store *fs)
{
	char sql[64];
	int ret = -1;

	/* The store was brought to FS_SCHEMA_VERSION when it was opened: the
	 * same value again, only for the page it writes. Not str_tfmt: the
	 * batch's error message may be in its buffer. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", FS_SCHEMA_VERSION);
	if (sqlite3_exec(fs->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(fs->wdb, sql, NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_exec(fs->wdb, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		ret = 0;
	else
		log_warn("store %s: after a failed commit: %s", fs->dir, sqlite3_errmsg(fs->wdb));
	if (!sqlite3_get_autocommit(fs->wdb))
		sqlite3_exec(fs->wdb, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* Runs one batch; every job gets a result. Returns the number of jobs. */
static void fs_batch_run(struct fs_store *fs, struct fs_job *batch)
{
	const char *error = NULL;
	struct fs_job *job;
	struct stat stt;
	uint64_t batch_start = 0;
	int failed = 0, commit_failed = 0, may_replay = 0;

	fs->data_dirty = 0;
	fs->nholes = 0;
	fs->nlinked = 0;
	if (fs_wexec(fs, FS_W_BEGIN, &error) < 0) {
		failed = 1;
	} else if (fstat(fs->data_fd, &stt) < 0) {
		/* Under the write lock: the end of records.dat is ours. */
		error = str_tfmt("store: %s: %s", FS_DATA_NAME, strerror(errno));
		failed = 1;
		sqlite3_exec(fs->wdb, "ROLLBACK", NULL, NULL, NULL);
	} else {
		batch_start = fs->data_end = fs->data_high = (uint64_t)stt.st_size;
		for (job = batch; job != NULL; job = job->next) {
			const char *jerr = NULL;
			uint64_t job_start = fs->data_end;
			size_t job_holes = fs->nholes, job_linked = fs->nlinked;

			job->wipes = 0;
			if (fs_wexec(fs, FS_W_SAVEPOINT, &jerr) < 0 ||
			    job->run(fs->wdb, job->ctx, &job->uid, &jerr) < 0) {
				job->result = -1;
				snprintf(job->error, sizeof(job->error), "%s",
					 jerr ? jerr : "store error");
				/* Its appended bytes are overwritten by the next. */
				fs->data_end = job_start;
				fs->nholes = job_holes;
				fs_files_unlink_from(fs, job_linked);
				if (sqlite3_get_autocommit(fs->wdb) ||
				    fs_wexec(fs, FS_W_ROLLBACK_TO, &jerr) < 0) {
					failed = 1;
					error = jerr;
					break;
				}
			}
			if (fs_wexec(fs, FS_W_RELEASE, &jerr) < 0) {
				failed = 1;
				error = jerr;
				break;
			}
			job->wipes = fs->nholes > job_holes;
		}
		if (!failed && fs->data_dirty) {
			/* Failed jobs may have left bytes past the end: cut off
			 * while the write lock is still ours. */
			if (fs->data_high > fs->data_end &&
			    ftruncate(fs->data_fd, (off_t)fs->data_end) == 0)
				fs->data_high = fs->data_end;
			if (fs->data_high > fs->data_end || fdatasync(fs->data_fd) < 0) {
				error = str_tfmt("store: syncing %s: %s", FS_DATA_NAME,
						 strerror(errno));
				failed = 1;
			}
		}
		/* Written once, read back seldom: see fs_cache_drop. */
		if (!failed && fs->data_dirty)
			fs_cache_drop(fs->data_fd, batch_start, fs->data_end - batch_start);
		/* The new names in records/ are durable before the rows. */
		if (!failed && fs->nlinked > 0 && fsync(fs->files_fd) < 0) {
			error = str_tfmt("store: syncing %s: %s", FS_FILES_NAME, strerror(errno));
			failed = 1;
		}
		if (!failed && fs_wexec(fs, FS_W_COMMIT, &error) < 0)
			failed = commit_failed = 1;
		if (failed && !sqlite3_get_autocommit(fs->wdb))
			sqlite3_exec(fs->wdb, "ROLLBACK", NULL, NULL, NULL);
		/* If the overwrite failed too, a crash could bring the batch
		 * back: its files stay, for the next open to keep or wipe. */
		if (commit_failed && fs_wal_overwrite(fs) < 0)
			may_replay = 1;
		/* Its bytes in records.dat are nobody's: zeroed and punched out,
		 * never cut off (after the ROLLBACK another process may have
		 * appended past them, and no offset is given out twice). Kept
		 * if a crash could bring the batch back. */
		if (failed && fs->data_dirty && !may_replay)
			fs_data_discard(fs, batch_start, fs->data_high);
		if (failed && !may_replay)
			fs_files_unlink_from(fs, 0);
	}
	if (failed)
		fs->nholes = 0;
	if (fs->nholes > 0)
		fs_wipe_queue(fs, &batch);
	if (!failed && fs->checkpoint_truncate) {
		sqlite3_wal_checkpoint_v2(fs->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		fs->checkpoint_truncate = 0;
	}
	while (batch != NULL) {
		job = batch;
		batch = job->next;
		if (failed) {
			job->result = -1;
			snprintf(job->error, sizeof(job->error), "%s",
				 error ? error : "store error");
		}
		fs_job_finish(job);
	}
}

static void *fs_writer_main(void *arg)
{
	struct fs_store *fs = arg;
	struct fs_job *batch, *tail;
	size_t n;

	pthread_setname_np(pthread_self(), "store-writer");
	pthread_mutex_lock(&fs->lock);
	for (;;) {
		while (fs->queue_head == NULL && !fs->stopping)
			pthread_cond_wait(&fs->cond, &fs->lock);
		if (fs->queue_head == NULL && fs->stopping)
			break;
		/* Take up to FS_BATCH_MAX jobs: everything that queued while
		 * the previous batch was syncing shares this batch's sync. */
		batch = tail = fs->queue_head;
		for (n = 1; n < FS_BATCH_MAX && tail->next != NULL; n++)
			tail = tail->next;
		fs->queue_head = tail->next;
		if (fs->queue_head == NULL)
			fs->queue_tail = NULL;
		tail->next = NULL;
		fs->batches++;
		fs->jobs += n;
		pthread_mutex_unlock(&fs->lock);
		fs_batch_run(fs, batch);
		pthread_mutex_lock(&fs->lock);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

static void fs_wait_done(void *ctx, int result, uint32_t uid, const char *error)
{
	waiter_finish(ctx, result, uid, error);
}

int fs_job_run_wait(struct fs_store *fs, fs_job_fn *run, void *ctx, const char **error_r)
{
	struct fs_job job;
	struct waiter w;

	memset(&job, 0, sizeof(job));
	waiter_init(&w);
	job.run = run;
	job.ctx = ctx;
	job.done = fs_wait_done;
	job.done_ctx = &w;
	fs_job_submit(fs, &job);
	return waiter_wait(&w, NULL, error_r) < 0 ? -1 : 0;
}

static int fs_open(const char *location, struct store **store_r, const char **error_r)
{
	pthread_rwlockattr_t wipe_attr;
	struct fs_store *fs;

	if (fs_mkdir_p(location, 0700) < 0) {
		*error_r = str_tfmt("store: cannot create %s: %s", location, strerror(errno));
		return -1;
	}
	fs = xcalloc(1, sizeof(*fs));
	fs->data_fd = -1;
	fs->files_fd = -1;
	fs->wipe_fd = -1;
	fs->store.backend = &store_backend_fs;
	fs->dir = xstrdup(location);
	fs->db_path = fs_path_join(location, FS_DB_NAME);
	if (fs_db_open(fs->db_path,
		       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, &fs->wdb,
		       error_r) < 0)
		goto fail;
	if (fs_schema_ensure(fs->wdb, error_r) < 0)
		goto fail;
	if (fs_data_open(fs, error_r) < 0)
		goto fail;
	if (fs_db_open(fs->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, &fs->rdb,
		       error_r) < 0)
		goto fail;
	/* The process umask (077, set in main) keeps the database and its WAL
	 * and shm files private; an existing database is tightened too. */
	chmod(fs->db_path, 0600);
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	/* Writer first: a stream of FETCHes must not hold a wipe off. */
	pthread_rwlockattr_init(&wipe_attr);
	pthread_rwlockattr_setkind_np(&wipe_attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->wipe_lock, &wipe_attr);
	pthread_rwlockattr_destroy(&wipe_attr);
	pthread_mutex_init(&fs->wq_lock, NULL);
	pthread_cond_init(&fs->wq_cond, NULL);
	if (pthread_create(&fs->wiper, NULL, fs_wiper_main, fs) != 0) {
		*error_r = "store: cannot start the wiper thread";
		goto fail_locks;
	}
	if (pthread_create(&fs->writer, NULL, fs_writer_main, fs) != 0) {
		*error_r = "store: cannot start the writer thread";
		fs_wiper_stop(fs);
		goto fail_locks;
	}
	pthread_mutex_init(&fs->readers_lock, NULL);
	*store_r = &fs->store;
	return 0;
fail_locks:
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	pthread_rwlock_destroy(&fs->wipe_lock);
	pthread_mutex_destroy(&fs->wq_lock);
	pthread_cond_destroy(&fs->wq_cond);
fail:
	if (fs->wipe_fd >= 0)
		close(fs->wipe_fd);
	if (fs->data_fd >= 0)
		close(fs->data_fd);
	if (fs->files_fd >= 0)
		close(fs->files_fd);
	sqlite3_close(fs->rdb);
	sqlite3_close(fs->wdb);
	free(fs->db_path);
	free(fs->dir);
	free(fs);
	return -1;
}

static void fs_close(struct store **store)
{
	struct fs_store *fs = (struct fs_store *)*store;

	*store = NULL;
	pthread_mutex_lock(&fs->lock);
	fs->stopping = 1;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	pthread_join(fs->writer, NULL);
	/* After the writer: it queues no more; what is queued is wiped. */
	fs_wiper_stop(fs);
	/* The wiper's last fs_wiped jobs came after the writer stopped: one
	 * more batch of them, here (the writer thread is gone, wdb is free).
	 * Anything else submitted after close began is refused: it could free
	 * records, and the wiper is gone. */
	if (fs->queue_head != NULL) {
		struct fs_job *batch = NULL, **tail = &batch, *job;

		while ((job = fs->queue_head) != NULL) {
			fs->queue_head = job->next;
			job->next = NULL;
			if (job->run == fs_wiped_job) {
				*tail = job;
				tail = &job->next;
				continue;
			}
			job->result = -1;
			snprintf(job->error, sizeof(job->error), "store: closed");
			fs_job_finish(job);
		}
		fs->queue_tail = NULL;
		if (batch != NULL)
			fs_batch_run(fs, batch);
	}
	pthread_mutex_destroy(&fs->wq_lock);
	pthread_cond_destroy(&fs->wq_cond);
	fs_wstmts_free(fs);
	/* Group commit at work; not worth a line for a CLI's few writes. */
	if (fs->jobs >= 100)
		log_info("store %s: %llu writes in %llu commits (%.1f per sync)", fs->dir,
			 (unsigned long long)fs->jobs, (unsigned long long)fs->batches,
			 (double)fs->jobs / (double)fs->batches);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	for (int k = 0; k < FS_READER_KINDS; k++) {
		while (fs->readers[k] != NULL) {
			struct fs_reader *r = fs->readers[k];

			fs->readers[k] = r->next;
			fs_reader_free(r);
		}
	}
	pthread_mutex_destroy(&fs->readers_lock);
	pthread_rwlock_destroy(&fs->wipe_lock);
	sqlite3_close(fs->rdb);
	sqlite3_close(fs->wdb);
	close(fs->data_fd);
	close(fs->wipe_fd);
	close(fs->files_fd);
	free(fs->holes);
	free(fs->linked);
	free(fs->db_path);
	free(fs->dir);
	free(fs);
}

const struct store_backend store_backend_fs = {
    .scheme = "fs",
    .local = 1,
    .open = fs_open,
    .close = fs_close,
    .account_create = fs_account_create,
    .account_get = fs_account_get,
    .account_set_wrapped = fs_account_set_wrapped,
    .account_delete = fs_account_delete,
    .account_usage = fs_account_usage,
    .mailbox_create = fs_mailbox_create,
    .mailbox_list = fs_mailbox_list,
    .mailbox_get_role = fs_mailbox_get_role,
    .record_begin = fs_record_begin,
    .record_write = fs_record_write,
    .record_commit = fs_record_commit,
    .record_abort = fs_record_abort,
    .message_list = fs_message_list,
    .record_read = fs_record_read,
    .mailbox_get = fs_mailbox_get,
    .mailbox_delete = fs_mailbox_delete,
    .mailbox_update = fs_mailbox_update,
    .message_scan = fs_message_scan,
    .message_set_flags = fs_message_set_flags,
    .message_expunge = fs_message_expunge,
    .expunged_scan = fs_expunged_scan,
    .message_copy = fs_message_copy,
    .mailbox_set_uids = fs_mailbox_set_uids,
};

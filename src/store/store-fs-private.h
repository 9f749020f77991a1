/* store-fs-private.h — shared between the fs backend's files. */
#ifndef SEALMAIL_STORE_FS_PRIVATE_H
#define SEALMAIL_STORE_FS_PRIVATE_H

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>

/* The columns fs_mailbox_row() reads; the count is kept by triggers. */
#define FS_MAILBOX_COLS                                                                            \
	"SELECT b.id, b.account_id, b.role, b.name_sealed, b.uidvalidity, b.uidnext,"              \
	" b.highestmodseq, b.subscribed, b.messages FROM mailboxes b "

/* A unit of work run by the writer thread inside a batch transaction (under
 * its own savepoint). Returns 0 or -1 with *error_r. */
typedef int fs_job_fn(sqlite3 *db, void *ctx, uint32_t *uid_r, const char **error_r);

struct fs_job {
	struct fs_job *next;
	fs_job_fn *run;
	void *ctx;
	/* after the batch is durable: */
	store_commit_fn *done;
	void *done_ctx;
	/* results */
	int result;
	uint32_t uid;
	char error[200];
	int wipes; /* it freed records: done once they are wiped */
};

/* Records freed by one committed batch, for the wiper thread, and the
 * jobs that freed them: they are answered once the bytes are gone. */
struct fs_wipe {
	struct fs_wipe *next;
	struct fs_extent *holes;
	size_t nholes;
	struct fs_job *jobs;
};

/* What a reader connection is for: its page cache is sized for it. */
enum fs_reader_kind {
	/* Records: pages read once per fetch of the message (the rows of
	 * small records, the messages' rows); a cache of them only costs
	 * memory, and every page newly cached is a fresh allocation (a page
	 * fault on first use). */
	FS_READER_RECORDS,
	/* Message scans (views, flags, sealed metadata): the same pages again
	 * on every SELECT and FETCH of the mailbox. */
	FS_READER_SCANS,
	/* Single rows: an account, a mailbox by role (RCPT, login). */
	FS_READER_LOOKUPS,
	FS_READER_KINDS
};

/* The statements of FS_READER_LOOKUPS readers (fs_reader_stmt). */
enum fs_lookup { FS_L_ACCOUNT, FS_L_MAILBOX_ROLE, FS_L_COUNT };

/* The statements the writer runs for every batch and every delivered
 * message, prepared once on wdb (which only the writer thread uses) instead
 * of parsed again each time. */
enum fs_wstmt {
	FS_W_BEGIN,
	FS_W_COMMIT,
	FS_W_SAVEPOINT,
	FS_W_RELEASE,
	FS_W_ROLLBACK_TO,
	FS_W_RECORD,
	FS_W_EXTENT,
	FS_W_FILE,
	FS_W_CHUNK,
	FS_W_UIDNEXT,
	FS_W_MESSAGE,
	FS_W_WIPE_ADD,
	FS_W_WIPE_DONE,
	FS_W_COUNT
};

struct fs_store {
	struct store store;
	char *dir;
	char *db_path;

	sqlite3 *rdb; /* readers (serialised, SQLITE_OPEN_FULLMUTEX) */
	/* Connections for record reads and message scans, one per concurrent
	 * caller (fs_reader_get), a list of idle ones per kind. */
	pthread_mutex_t readers_lock;
	/* Held shared by a record read from its look-up to its last byte, and
	 * exclusively while freed records are wiped: a read that found a
	 * record before its delete committed gets all of it, and one after
	 * finds no row (readers never hold up a WAL commit, only the wipe). */
	pthread_rwlock_t wipe_lock;
	struct fs_reader *readers[FS_READER_KINDS];
	sqlite3 *wdb; /* the writer thread's connection */
	sqlite3_stmt *wstmts[FS_W_COUNT];

	pthread_t writer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fs_job *queue_head, *queue_tail;
	int stopping;
	uint64_t batches, jobs;  /* statistics */
	int checkpoint_truncate; /* set by deletes: truncate the WAL after the batch */

	/* Records of FS_FILE_MIN_BYTES or more: appended to records.dat by the
	 * writer thread, synced before the batch's COMMIT (store-fs.c). */
	int data_fd;
	uint64_t data_end;       /* where the next record goes (inside a batch) */
	uint64_t data_high;      /* the end of what the batch wrote */
	int data_dirty;          /* the batch appended: fdatasync before COMMIT */
	struct fs_extent *holes; /* freed by the batch: zeroed after COMMIT */
	size_t nholes, holes_cap;

	/* The wiper thread: zeroes, syncs and gives back what committed
	 * batches freed, so that the writer goes on with the next batch. It
	 * has a records.dat descriptor of its own: a sync on the writer's
	 * would take write-back errors the writer's own sync must see. */
	pthread_t wiper;
	pthread_mutex_t wq_lock;
	pthread_cond_t wq_cond;
	struct fs_wipe *wq_head, *wq_tail;
	int wq_stopping;
	int wipe_fd;

	/* Records past FS_SPILL_BYTES: each a file of its own in records/,
	 * written (and synced) once, as its spill file, and linked there by the
	 * writer thread, which syncs the folder before the batch's COMMIT. */
	int files_fd;     /* records/ */
	uint64_t *linked; /* names linked by the batch: unlinked if it fails */
	size_t nlinked, linked_cap;
};

/* Freed ciphertext: LEN bytes at OFF of records.dat, or (FILE not 0) the
 * record file of that name. */
struct fs_extent {
	uint64_t off, len, file;
};

/* A connection of its own for the record path, with its statements
 * prepared once and its read buffer: FETCH reads records on several
 * threads at once, and on the shared rdb they queued on its mutex and
 * re-parsed two statements for every message (a quarter of the CPU of a
 * 16-client full fetch). Taken for one call and given back. */
struct fs_reader {
	struct fs_reader *next;
	enum fs_reader_kind kind;
	sqlite3 *db;
	/* FS_READER_RECORDS only: */
	sqlite3_stmt *locate; /* a message's record: id, size, extent if any */
	sqlite3_stmt *chunks; /* a record's rows, in order */
	uint8_t *piece;       /* FS_READ_PIECE_BYTES */
	/* FS_READER_LOOKUPS only: prepared on first use. */
	sqlite3_stmt *lookups[FS_L_COUNT];
};
#define FS_READ_PIECE_BYTES (256 * 1024)

/* An idle reader of KIND, or a new one; NULL with *error_r. */
struct fs_reader *fs_reader_get(struct fs_store *fs, enum fs_reader_kind kind,
				const char **error_r);
void fs_reader_put(struct fs_store *fs, struct fs_reader *r);
/* Statement WHICH of a FS_READER_LOOKUPS reader, reset, with no values
 * bound. Reset it once done: until then it holds a read transaction. */
int fs_reader_stmt(struct fs_reader *r, enum fs_lookup which, sqlite3_stmt **st_r,
		   const char **error_r);

#define FS_FILE_MIN_BYTES (32 * 1024)
/* Pending records past this size are in an unnamed file in records/, which
 * becomes the record's own file (fs_file_link) when it is committed. */
#define FS_SPILL_BYTES (1024 * 1024)

/* Inside a job: appends LEN bytes (from DATA, or from FD when DATA is NULL)
 * to records.dat; *off_r is where they start. */
int fs_data_append(struct fs_store *fs, const void *data, int fd, uint64_t len, uint64_t *off_r,
		   const char **error_r);
/* Inside a job: makes FD, an unnamed file in records/ that holds a whole
 * record of LEN bytes (synced), RECORD_ID's file. 0 when linked, 1 when
 * this system cannot link it (no /proc: copy it with fs_data_append), -1
 * with *error_r. */
int fs_file_link(struct fs_store *fs, int fd, int64_t record_id, uint64_t len,
		 const char **error_r);
/* A record file's name in records/: NAME as 16 hex digits. */
void fs_file_name(uint64_t name, char buf[17]);

/* Inside a job: the extent or file of RECORD_ID (if any) is freed by this
 * job; its row is deleted and its bytes are zeroed once the batch commits. */
int fs_data_free(struct fs_store *fs, sqlite3 *db, int64_t record_id, const char **error_r);

/* Queues JOB for the next batch. */
void fs_job_submit(struct fs_store *fs, struct fs_job *job);
void fs_cache_drop(int fd, uint64_t off, uint64_t len);
/* Runs RUN in the writer thread and waits until it is durable. */
int fs_job_run_wait(struct fs_store *fs, fs_job_fn *run, void *ctx, const char **error_r);

/* On the writer thread: statement WHICH, reset, with no values bound. Reset
 * it again once done with it (an unfinished statement keeps its
 * transaction from committing). */
int fs_wstmt(struct fs_store *fs, enum fs_wstmt which, sqlite3_stmt **st_r, const char **error_r);
/* Runs statement WHICH (one without values or rows). */
int fs_wexec(struct fs_store *fs, enum fs_wstmt which, const char **error_r);

int fs_sql_exec(sqlite3 *db, const char *sql, const char **error_r);
int fs_sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt_r, const char **error_r);
int fs_sql_error(sqlite3 *db, const char **error_r);

/* Operations live in store-fs-ops.c. */
int fs_account_create(struct store *s, struct store_account *acct, const char **error_r);
int fs_account_get(struct store *s, const uint8_t addr_hash[STORE_ADDR_HASH_BYTES],
		   struct store_account *acct_r, const char **error_r);
int fs_account_set_wrapped(struct store *s, uint64_t account_id, const struct buf *password,
			   const struct buf *recovery, const char **error_r);
int fs_account_delete(struct store *s, uint64_t account_id, const char **error_r);
int fs_account_usage(struct store *s, uint64_t account_id, uint64_t *messages_r, uint64_t *bytes_r,
		     const char **error_r);
int fs_mailbox_create(struct store *s, uint64_t account_id, enum store_role role,
		      const struct buf *name_sealed, struct store_mailbox *box_r,
		      const char **error_r);
int fs_mailbox_list(struct store *s, uint64_t account_id, struct store_mailbox **boxes_r,
		    size_t *count_r, const char **error_r);
int fs_mailbox_get_role(struct store *s, uint64_t account_id, enum store_role role,
			struct store_mailbox *box_r, const char **error_r);
int fs_record_begin(struct store *s, struct store_record_writer **w_r, const char **error_r);
int fs_record_write(struct store_record_writer *w, const void *data, size_t len,
		    const char **error_r);
void fs_record_commit(struct store_record_writer **w, const struct store_message *msg,
		      store_commit_fn *done, void *ctx);
void fs_record_abort(struct store_record_writer **w);
int fs_message_list(struct store *s, uint64_t mailbox_id, uint32_t uid_min, store_message_fn *fn,
		    void *ctx, const char **error_r);
int fs_record_read(struct store *s, uint64_t message_id, store_bytes_fn *fn, void *ctx,
		   const char **error_r);

/* IMAP operations live in store-fs-mail.c. */
int fs_mailbox_get(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		   struct store_mailbox *box_r, const char **error_r);
int fs_mailbox_delete(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      const char **error_r);
int fs_mailbox_update(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      const struct buf *name_sealed, int subscribed, const char **error_r);
int fs_mailbox_set_uids(struct store *s, uint64_t mailbox_id, uint32_t uidvalidity,
			uint32_t uidnext, uint64_t highestmodseq, const char **error_r);
int fs_message_scan(struct store *s, uint64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
		    uint64_t modseq_min, int with_meta, store_message_fn *fn, void *ctx,
		    const char **error_r);
int fs_message_set_flags(struct store *s, uint64_t mailbox_id, const struct store_flag_update *u,
			 store_message_fn *fn, void *ctx, const char **error_r);
int fs_message_expunge(struct store *s, uint64_t mailbox_id, const uint32_t *uids, size_t count,
		       const char **error_r);
int fs_expunged_scan(struct store *s, uint64_t mailbox_id, uint64_t modseq_min, store_uid_fn *fn,
		     void *ctx, const char **error_r);
int fs_message_copy(struct store *s, uint64_t src_mailbox_id, const uint32_t *uids, size_t count,
		    uint64_t dst_mailbox_id, int move, uint32_t *dst_uids_r, const char **error_r);

#endif

/* bench-store.c — sealed records inside SQLite or as files beside it: the
 * measurement behind the choice documented in docs/store.md.
 *
 * Every variant stores the same messages (sizes from a fixed seed: 60% 2-8 KB,
 * 30% 8-64 KB, 9% 64 KB-1 MB, 1% 1-10 MB, uniform inside each class; random
 * bytes stand for ciphertext) with T concurrent writers, and a writer's next
 * message starts only once the previous one is acknowledged, and a message
 * is acknowledged only once it is durable:
 *   a   the fs backend as shipped, through the store API (store_open "fs:",
 *       record_begin/record_write/store_record_commit_wait): chunk rows in one
 *       SQLite database, WAL, synchronous=FULL, one writer thread, group
 *       commit;
 *   b   one file per record in a folder tree, each writer on its own: write a
 *       temporary file, fdatasync it, rename it into place, fsync the folder,
 *       then commit the index row in SQLite (WAL, synchronous=FULL; one
 *       transaction per message, the connection shared under a mutex);
 *   c1  files as in b, but the writers only write; one sync thread takes every
 *       pending file (up to 256, the store's batch limit), starts their
 *       writeback together (sync_file_range), fdatasyncs each, renames each
 *       into place, fsyncs each folder touched once, commits all index rows in
 *       one transaction and then acknowledges the whole batch;
 *   c2  as c1 with one syncfs() instead of the per-file fdatasyncs (renames
 *       before it; syncfs covers the folders too, and the index row, written
 *       after it, is what makes a file visible).
 * After the last thread count of each repeat it reads every record back once
 * with a cold page cache (posix_fadvise DONTNEED on every file of the run),
 * then once warm, and deletes every message of the first of ten mailboxes
 * (one message in ten, spread evenly through the store) for good ("secure
 * del"). For a: one message_expunge call, with secure_delete and the WAL
 * truncation as configured. For files, the counterpart: the index rows in one
 * transaction, the files overwritten with zeros, one syncfs, unlink, one fsync
 * per folder. Files also time a plain deletion of the second mailbox: index
 * rows, unlink, folder fsyncs ("unlink").
 *
 * T=1 runs are the slowest, so they use the first N/4 messages of the same
 * sequence (-1 to change); rates stay comparable. Timings are medians over
 * the repeats (-r); variants interleave inside each repeat, and the spread is
 * (max - min) / median of the message rate. "wr x" is what the process
 * dirtied for the disk (/proc/self/io) over the record bytes: about 2 for
 * SQLite in WAL mode, which writes each page to the WAL and again to the
 * database at the checkpoint.
 *
 * Trust boundary: none; random bytes in a scratch folder created under the
 * current directory (it must not be tmpfs) and removed on exit.
 *
 * Build and run from the top of the tree:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc \
 *       bench/bench-store.c src/lib/lib-*.c src/store/store.c src/store/store-fs*.c \
 *       -o bench-store -lsqlite3 -lpthread
 *   ./bench-store [-n messages (2000)] [-1 messages at T=1 (N/4)] [-t 1,8,64]
 *                 [-v a,b,c1,c2] [-r repeats (1)] [-s seed] [-k keep files] [-f allow tmpfs]
 *                 [-M bytes: clamp every size to this, to see the small-message regime] */
#include "store/store-fs-private.h" /* the writer's batch counters, for a */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define POOL_BYTES  (32u << 20)
#define PIECE_BYTES 65553 /* one sealed chunk: 64 KiB + 17 */
#define META_BYTES  400
#define ACCOUNTS    10
#define BATCH_MAX   256  /* FS_BATCH_MAX of store-fs.c */
#define BUCKET_SPAN 1024 /* records per folder of the file tree */
#define MAX_THREADS 256
#define MAX_REPEATS 9
#define MAX_TCOUNTS 8

struct msg {
	uint64_t off; /* into the pool */
	uint32_t size;
};

static uint8_t *pool;
static struct msg *msgs;
static size_t n_total = 2000, n_single;
static uint32_t size_cap; /* -M: clamps every size (0: none) */
static uint64_t seed = 0x5ea1ba11ULL;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench-store: %s: %s\n", what, detail ? detail : strerror(errno));
	exit(1);
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t uniform(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(splitmix(s) % (uint64_t)(hi - lo + 1));
}

static void gen_messages(void)
{
	uint64_t s = seed;

	pool = malloc(POOL_BYTES);
	msgs = calloc(n_total, sizeof(*msgs));
	if (pool == NULL || msgs == NULL)
		die("malloc", "out of memory");
	for (size_t i = 0; i < POOL_BYTES / 8; i++) {
		uint64_t v = splitmix(&s);

		memcpy(pool + 8 * i, &v, 8);
	}
	for (size_t i = 0; i < n_total; i++) {
		uint32_t c = (uint32_t)(splitmix(&s) % 100);

		if (c < 60)
			msgs[i].size = uniform(&s, 2 << 10, 8 << 10);
		else if (c < 90)
			msgs[i].size = uniform(&s, 8 << 10, 64 << 10);
		else if (c < 99)
			msgs[i].size = uniform(&s, 64 << 10, 1 << 20);
		else
			msgs[i].size = uniform(&s, 1 << 20, 10 << 20);
		if (size_cap != 0 && msgs[i].size > size_cap)
			msgs[i].size = size_cap;
		msgs[i].off = splitmix(&s) % (POOL_BYTES - msgs[i].size - META_BYTES);
	}
}

/* The sealed metadata part: the message's index, then pool bytes. */
static void make_meta(size_t i, uint8_t meta[META_BYTES])
{
	uint32_t idx = (uint32_t)i;

	memcpy(meta, pool + msgs[i].off + msgs[i].size, META_BYTES);
	memcpy(meta, &idx, sizeof(idx));
}

static size_t meta_index(const void *meta, size_t len)
{
	uint32_t idx;

	if (len != META_BYTES)
		die("read back", "malformed meta");
	memcpy(&idx, meta, sizeof(idx));
	if (idx >= n_total)
		die("read back", "meta index out of range");
	return idx;
}

static void write_full(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write", NULL);
		p += n;
		len -= (size_t)n;
	}
}

/* ---- one run: a variant, a thread count, a fresh folder ----------------- */

struct job;

struct run {
	const struct variant *v;
	char dir[512];
	size_t n;
	unsigned threads;
	atomic_size_t next;
	double *lat;
	uint64_t batches, jobs;

	/* a */
	struct store *s;
	const struct store_backend *b;
	uint64_t box[ACCOUNTS];
	uint64_t batches0, jobs0;

	/* files */
	sqlite3 *idx;
	sqlite3_stmt *st_uid, *st_ins;
	pthread_mutex_t idx_lock;
	int dirfd; /* the run's folder, for syncfs */
	int use_syncfs;
	pthread_t syncer;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct job *qhead, *qtail;
	int stopping;
};

struct variant {
	const char *id;
	const char *desc;
	void (*setup)(struct run *r);
	void (*deliver)(struct run *r, size_t i);
	void (*finish)(struct run *r); /* after the writers; counts batches */
	void (*read_all)(struct run *r, int verify);
	/* Deletes the first mailbox's messages for good and returns the time;
	 * files also unlink the second one's and time it in *unlink_r (a: -1). */
	double (*delete_tenth)(struct run *r, double *unlink_r);
	void (*teardown)(struct run *r);
};

/* ---- a: the fs backend through the store API ---------------------------- */

static void a_setup(struct run *r)
{
	char uri[600];
	const char *error = NULL;
	uint64_t s = seed ^ 0xacc0;

	snprintf(uri, sizeof(uri), "fs:%s", r->dir);
	if (store_open(uri, &r->s, &error) < 0)
		die("store_open", error);
	r->b = store_backend_of(r->s);
	for (int k = 0; k < ACCOUNTS; k++) {
		struct store_account acct;
		struct store_mailbox box;

		store_account_init(&acct);
		for (int j = 0; j < STORE_ADDR_HASH_BYTES; j += 8) {
			uint64_t v = splitmix(&s);

			memcpy(acct.addr_hash + j, &v, 8);
		}
		memset(acct.pk, 7, sizeof(acct.pk));
		if (buf_append(&acct.wrapped_password, "wp", 2) < 0 ||
		    buf_append(&acct.wrapped_recovery, "wr", 2) < 0)
			die("buf_append", "out of memory");
		if (r->b->account_create(r->s, &acct, &error) < 0)
			die("account_create", error);
		memset(&box, 0, sizeof(box));
		buf_init(&box.name_sealed);
		if (r->b->mailbox_create(r->s, acct.id, STORE_ROLE_INBOX, NULL, &box, &error) < 0)
			die("mailbox_create", error);
		r->box[k] = box.id;
		store_account_clear(&acct);
		store_mailbox_clear(&box);
	}
	{
		struct fs_store *fs = (struct fs_store *)r->s;

		pthread_mutex_lock(&fs->lock);
		r->batches0 = fs->batches;
		r->jobs0 = fs->jobs;
		pthread_mutex_unlock(&fs->lock);
	}
}

static void a_deliver(struct run *r, size_t i)
{
	const struct msg *m = &msgs[i];
	struct store_record_writer *w = NULL;
	struct store_message sm;
	uint8_t meta[META_BYTES];
	const char *error = NULL;
	uint32_t uid;

	if (r->b->record_begin(r->s, &w, &error) < 0)
		die("record_begin", error);
	for (uint32_t off = 0; off < m->size; off += PIECE_BYTES) {
		uint32_t len = m->size - off < PIECE_BYTES ? m->size - off : PIECE_BYTES;

		if (r->b->record_write(w, pool + m->off + off, len, &error) < 0)
			die("record_write", error);
	}
	make_meta(i, meta);
	store_message_init(&sm);
	sm.mailbox_id = r->box[i % ACCOUNTS];
	sm.internal_date = 1700000000 + (int64_t)i;
	sm.size = m->size;
	if (buf_append(&sm.meta, meta, sizeof(meta)) < 0)
		die("buf_append", "out of memory");
	if (store_record_commit_wait(r->s, &w, &sm, &uid, &error) < 0)
		die("store_record_commit_wait", error);
	store_message_clear(&sm);
}

static void a_finish(struct run *r)
{
	struct fs_store *fs = (struct fs_store *)r->s;

	pthread_mutex_lock(&fs->lock);
	r->batches = fs->batches - r->batches0;
	r->jobs = fs->jobs - r->jobs0;
	pthread_mutex_unlock(&fs->lock);
}

struct a_item {
	uint64_t id;
	uint32_t uid;
	size_t idx;
};

struct a_list {
	struct a_item *items;
	size_t n, cap;
};

static int a_list_cb(void *ctx, const struct store_message *m)
{
	struct a_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->items = realloc(l->items, l->cap * sizeof(*l->items));
		if (l->items == NULL)
			die("realloc", "out of memory");
	}
	l->items[l->n].id = m->id;
	l->items[l->n].uid = m->uid;
	l->items[l->n].idx = meta_index(m->meta.data, m->meta.len);
	l->n++;
	return 0;
}

struct check {
	const uint8_t *want;
	size_t size, pos;
	int verify;
};

static int check_bytes(void *ctx, const uint8_t *data, size_t len)
{
	struct check *c = ctx;

	if (c->pos + len > c->size || (c->verify && memcmp(c->want + c->pos, data, len) != 0))
		die("read back", "record bytes differ");
	c->pos += len;
	return 0;
}

static void a_read_all(struct run *r, int verify)
{
	const char *error = NULL;

	for (int k = 0; k < ACCOUNTS; k++) {
		struct a_list l = {NULL, 0, 0};

		if (r->b->message_list(r->s, r->box[k], 1, a_list_cb, &l, &error) < 0)
			die("message_list", error);
		for (size_t j = 0; j < l.n; j++) {
			const struct msg *m = &msgs[l.items[j].idx];
			struct check c = {pool + m->off, m->size, 0, verify};

			if (r->b->record_read(r->s, l.items[j].id, check_bytes, &c, &error) < 0)
				die("record_read", error);
			if (c.pos != m->size)
				die("read back", "record is short");
		}
		free(l.items);
	}
}

/* Expunges every message of the first mailbox (one message in ten, spread
 * evenly through the database) in one call, as one IMAP EXPUNGE would. */
static double a_delete_tenth(struct run *r, double *unlink_r)
{
	struct a_list l = {NULL, 0, 0};
	const char *error = NULL;
	uint32_t *uids;
	double t0;

	if (r->b->message_list(r->s, r->box[0], 1, a_list_cb, &l, &error) < 0)
		die("message_list", error);
	uids = calloc(l.n + 1, sizeof(*uids));
	if (uids == NULL)
		die("malloc", "out of memory");
	for (size_t j = 0; j < l.n; j++)
		uids[j] = l.items[j].uid;
	t0 = now();
	if (r->b->message_expunge(r->s, r->box[0], uids, l.n, &error) < 0)
		die("message_expunge", error);
	t0 = now() - t0;
	free(uids);
	free(l.items);
	*unlink_r = -1;
	return t0;
}

static void a_teardown(struct run *r)
{
	store_close(&r->s);
}

/* ---- b, c1, c2: one file per record, the index in SQLite ----------------- */

static void idx_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die("index", sqlite3_errmsg(db));
}

static void record_path(const struct run *r, size_t i, char *path, size_t size)
{
	size_t id = i + 1;

	snprintf(path, size, "%s/records/%04zx/%zu", r->dir, id / BUCKET_SPAN, id);
}

static void tmp_path(const struct run *r, size_t i, char *path, size_t size)
{
	snprintf(path, size, "%s/tmp/%zu", r->dir, i + 1);
}

static void fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		die(path, NULL);
	close(fd);
}

static void bucket_dir(const struct run *r, size_t bucket, char *path, size_t size)
{
	snprintf(path, size, "%s/records/%04zx", r->dir, bucket);
}

static void files_setup(struct run *r)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/tmp", r->dir);
	if (fs_mkdir_p(path, 0700) < 0)
		die(path, NULL);
	for (size_t b = 0; b <= (n_total + 1) / BUCKET_SPAN; b++) {
		bucket_dir(r, b, path, sizeof(path));
		if (fs_mkdir_p(path, 0700) < 0)
			die(path, NULL);
	}
	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		die(r->dir, NULL);
	snprintf(path, sizeof(path), "%s/index.sqlite", r->dir);
	if (sqlite3_open_v2(path, &r->idx,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		die("index open", r->idx ? sqlite3_errmsg(r->idx) : "out of memory");
	/* The same settings and row shape as the fs backend's messages. */
	idx_exec(r->idx, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;");
	idx_exec(r->idx,
		 "BEGIN;"
		 "CREATE TABLE mailboxes(id INTEGER PRIMARY KEY, uidnext INTEGER NOT NULL,"
		 " highestmodseq INTEGER NOT NULL);"
		 "CREATE TABLE messages(id INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL,"
		 " uid INTEGER NOT NULL, record_id INTEGER NOT NULL, flags INTEGER NOT NULL,"
		 " keywords TEXT, modseq INTEGER NOT NULL, internal_date INTEGER NOT NULL,"
		 " size INTEGER NOT NULL, record_size INTEGER NOT NULL, meta BLOB NOT NULL,"
		 " UNIQUE(mailbox_id, uid));"
		 "COMMIT;");
	for (int k = 0; k < ACCOUNTS; k++) {
		char sql[100];

		snprintf(sql, sizeof(sql), "INSERT INTO mailboxes VALUES (%d, 1, 1)", k + 1);
		idx_exec(r->idx, sql);
		r->box[k] = (uint64_t)k + 1;
	}
	if (sqlite3_prepare_v2(r->idx,
			       "UPDATE mailboxes SET uidnext = uidnext + 1,"
			       " highestmodseq = highestmodseq + 1 WHERE id = ?"
			       " RETURNING uidnext - 1, highestmodseq",
			       -1, &r->st_uid, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->idx,
			       "INSERT INTO messages(mailbox_id, uid, record_id, flags, keywords,"
			       " modseq, internal_date, size, record_size, meta)"
			       " VALUES (?,?,?,0,NULL,?,?,?,?,?)",
			       -1, &r->st_ins, NULL) != SQLITE_OK)
		die("index prepare", sqlite3_errmsg(r->idx));
	pthread_mutex_init(&r->idx_lock, NULL);
}

/* Adds message I's row inside the caller's transaction. */
static void idx_insert(struct run *r, size_t i)
{
	uint8_t meta[META_BYTES];
	int64_t uid, modseq;

	sqlite3_reset(r->st_uid);
	sqlite3_bind_int64(r->st_uid, 1, (sqlite3_int64)r->box[i % ACCOUNTS]);
	if (sqlite3_step(r->st_uid) != SQLITE_ROW)
		die("index uid", sqlite3_errmsg(r->idx));
	uid = sqlite3_column_int64(r->st_uid, 0);
	modseq = sqlite3_column_int64(r->st_uid, 1);
	if (sqlite3_step(r->st_uid) != SQLITE_DONE)
		die("index uid", sqlite3_errmsg(r->idx));
	make_meta(i, meta);
	sqlite3_reset(r->st_ins);
	sqlite3_bind_int64(r->st_ins, 1, (sqlite3_int64)r->box[i % ACCOUNTS]);
	sqlite3_bind_int64(r->st_ins, 2, uid);
	sqlite3_bind_int64(r->st_ins, 3, (sqlite3_int64)i + 1);
	sqlite3_bind_int64(r->st_ins, 4, modseq);
	sqlite3_bind_int64(r->st_ins, 5, 1700000000 + (sqlite3_int64)i);
	sqlite3_bind_int64(r->st_ins, 6, msgs[i].size);
	sqlite3_bind_int64(r->st_ins, 7, msgs[i].size);
	sqlite3_bind_blob(r->st_ins, 8, meta, META_BYTES, SQLITE_TRANSIENT);
	if (sqlite3_step(r->st_ins) != SQLITE_DONE)
		die("index insert", sqlite3_errmsg(r->idx));
}

/* Creates the temporary file of message I and writes its bytes. */
static int file_write(struct run *r, size_t i)
{
	const struct msg *m = &msgs[i];
	char path[600];
	int fd;

	tmp_path(r, i, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, NULL);
	for (uint32_t off = 0; off < m->size; off += PIECE_BYTES) {
		uint32_t len = m->size - off < PIECE_BYTES ? m->size - off : PIECE_BYTES;

		write_full(fd, pool + m->off + off, len);
	}
	return fd;
}

static void file_rename(struct run *r, size_t i)
{
	char from[600], to[600];

	tmp_path(r, i, from, sizeof(from));
	record_path(r, i, to, sizeof(to));
	if (rename(from, to) < 0)
		die("rename", NULL);
}

static void b_deliver(struct run *r, size_t i)
{
	char path[600];
	int fd = file_write(r, i);

	if (fdatasync(fd) < 0)
		die("fdatasync", NULL);
	close(fd);
	file_rename(r, i);
	bucket_dir(r, (i + 1) / BUCKET_SPAN, path, sizeof(path));
	fsync_dir(path);
	pthread_mutex_lock(&r->idx_lock);
	idx_exec(r->idx, "BEGIN IMMEDIATE");
	idx_insert(r, i);
	idx_exec(r->idx, "COMMIT");
	pthread_mutex_unlock(&r->idx_lock);
}

struct job {
	struct job *next;
	size_t i;
	int fd;
	int done;
	pthread_cond_t cond;
};

static void *c_sync_main(void *arg)
{
	struct run *r = arg;
	struct job *batch[BATCH_MAX];
	size_t buckets[BATCH_MAX];

	pthread_mutex_lock(&r->qlock);
	for (;;) {
		size_t n = 0, nb = 0;

		while (r->qhead == NULL && !r->stopping)
			pthread_cond_wait(&r->qcond, &r->qlock);
		if (r->qhead == NULL)
			break;
		while (r->qhead != NULL && n < BATCH_MAX) {
			batch[n++] = r->qhead;
			r->qhead = r->qhead->next;
		}
		if (r->qhead == NULL)
			r->qtail = NULL;
		pthread_mutex_unlock(&r->qlock);

		if (r->use_syncfs) {
			for (size_t j = 0; j < n; j++) {
				close(batch[j]->fd);
				file_rename(r, batch[j]->i);
			}
			if (syncfs(r->dirfd) < 0)
				die("syncfs", NULL);
		} else {
			for (size_t j = 0; j < n; j++)
				if (sync_file_range(batch[j]->fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0)
					die("sync_file_range", NULL);
			for (size_t j = 0; j < n; j++) {
				if (fdatasync(batch[j]->fd) < 0)
					die("fdatasync", NULL);
				close(batch[j]->fd);
				file_rename(r, batch[j]->i);
			}
			for (size_t j = 0; j < n; j++) {
				size_t b = (batch[j]->i + 1) / BUCKET_SPAN, k;

				for (k = 0; k < nb && buckets[k] != b; k++)
					;
				if (k == nb)
					buckets[nb++] = b;
			}
			for (size_t k = 0; k < nb; k++) {
				char path[600];

				bucket_dir(r, buckets[k], path, sizeof(path));
				fsync_dir(path);
			}
		}
		idx_exec(r->idx, "BEGIN IMMEDIATE");
		for (size_t j = 0; j < n; j++)
			idx_insert(r, batch[j]->i);
		idx_exec(r->idx, "COMMIT");

		pthread_mutex_lock(&r->qlock);
		r->batches++;
		r->jobs += n;
		for (size_t j = 0; j < n; j++) {
			batch[j]->done = 1;
			pthread_cond_signal(&batch[j]->cond);
		}
	}
	pthread_mutex_unlock(&r->qlock);
	return NULL;
}

static void c_setup(struct run *r)
{
	files_setup(r);
	pthread_mutex_init(&r->qlock, NULL);
	pthread_cond_init(&r->qcond, NULL);
	if (pthread_create(&r->syncer, NULL, c_sync_main, r) != 0)
		die("pthread_create", "sync thread");
}

static void c1_setup(struct run *r)
{
	r->use_syncfs = 0;
	c_setup(r);
}

static void c2_setup(struct run *r)
{
	r->use_syncfs = 1;
	c_setup(r);
}

static void c_deliver(struct run *r, size_t i)
{
	struct job job;

	memset(&job, 0, sizeof(job));
	job.i = i;
	job.fd = file_write(r, i);
	pthread_cond_init(&job.cond, NULL);
	pthread_mutex_lock(&r->qlock);
	if (r->qtail != NULL)
		r->qtail->next = &job;
	else
		r->qhead = &job;
	r->qtail = &job;
	pthread_cond_signal(&r->qcond);
	while (!job.done)
		pthread_cond_wait(&job.cond, &r->qlock);
	pthread_mutex_unlock(&r->qlock);
	pthread_cond_destroy(&job.cond);
}

static void b_finish(struct run *r)
{
	r->batches = r->jobs = r->n;
}

static void c_finish(struct run *r)
{
	pthread_mutex_lock(&r->qlock);
	r->stopping = 1;
	pthread_cond_signal(&r->qcond);
	pthread_mutex_unlock(&r->qlock);
	pthread_join(r->syncer, NULL);
	pthread_mutex_destroy(&r->qlock);
	pthread_cond_destroy(&r->qcond);
}

static void files_read_all(struct run *r, int verify)
{
	sqlite3_stmt *st;
	uint8_t *buf = malloc(PIECE_BYTES);

	if (buf == NULL)
		die("malloc", "out of memory");
	if (sqlite3_prepare_v2(r->idx,
			       "SELECT record_id, record_size, meta FROM messages"
			       " WHERE mailbox_id = ? ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK)
		die("index prepare", sqlite3_errmsg(r->idx));
	for (int k = 0; k < ACCOUNTS; k++) {
		size_t *items = malloc(n_total * sizeof(*items)), n = 0;

		if (items == NULL)
			die("malloc", "out of memory");
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)r->box[k]);
		while (sqlite3_step(st) == SQLITE_ROW)
			items[n++] = meta_index(sqlite3_column_blob(st, 2),
						(size_t)sqlite3_column_bytes(st, 2));
		for (size_t j = 0; j < n; j++) {
			const struct msg *m = &msgs[items[j]];
			struct check c = {pool + m->off, m->size, 0, verify};
			char path[600];
			ssize_t got;
			int fd;

			record_path(r, items[j], path, sizeof(path));
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die(path, NULL);
			while ((got = read(fd, buf, PIECE_BYTES)) > 0)
				check_bytes(&c, buf, (size_t)got);
			if (got < 0 || c.pos != m->size)
				die("read back", "record is short");
			close(fd);
		}
		free(items);
	}
	sqlite3_finalize(st);
	free(buf);
}

/* Removes the index rows of mailbox BOX (one transaction), then the files;
 * with OVERWRITE the files are first overwritten with zeros and synced. */
static void files_delete_box(struct run *r, uint64_t box, int overwrite)
{
	sqlite3_stmt *st;
	size_t *ids = malloc(n_total * sizeof(*ids)), n = 0;
	uint8_t *zeros = calloc(1, PIECE_BYTES);
	size_t last_bucket = (size_t)-1;

	if (ids == NULL || zeros == NULL)
		die("malloc", "out of memory");
	idx_exec(r->idx, "BEGIN IMMEDIATE");
	if (sqlite3_prepare_v2(r->idx,
			       "DELETE FROM messages WHERE mailbox_id = ? RETURNING record_id", -1,
			       &st, NULL) != SQLITE_OK)
		die("index prepare", sqlite3_errmsg(r->idx));
	sqlite3_bind_int64(st, 1, (sqlite3_int64)box);
	while (sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = (size_t)sqlite3_column_int64(st, 0) - 1;
	sqlite3_finalize(st);
	idx_exec(r->idx, "COMMIT");
	if (overwrite) {
		for (size_t j = 0; j < n; j++) {
			char path[600];
			struct stat sb;
			int fd;

			record_path(r, ids[j], path, sizeof(path));
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &sb) < 0)
				die(path, NULL);
			for (off_t off = 0; off < sb.st_size; off += PIECE_BYTES) {
				size_t len = (size_t)(sb.st_size - off) < PIECE_BYTES
						 ? (size_t)(sb.st_size - off)
						 : PIECE_BYTES;

				if (pwrite(fd, zeros, len, off) != (ssize_t)len)
					die("pwrite", NULL);
			}
			close(fd);
		}
		if (syncfs(r->dirfd) < 0)
			die("syncfs", NULL);
	}
	for (size_t j = 0; j < n; j++) {
		char path[600];

		record_path(r, ids[j], path, sizeof(path));
		if (unlink(path) < 0)
			die(path, NULL);
	}
	/* One fsync per folder touched (records are bucketed by id). */
	for (size_t j = 0; j < n; j++) {
		size_t b = (ids[j] + 1) / BUCKET_SPAN;
		char path[600];

		if (b == last_bucket)
			continue;
		bucket_dir(r, b, path, sizeof(path));
		fsync_dir(path);
		last_bucket = b;
	}
	free(ids);
	free(zeros);
}

static double files_delete_tenth(struct run *r, double *unlink_r)
{
	double t0 = now(), t;

	files_delete_box(r, r->box[0], 1);
	t = now() - t0;
	t0 = now();
	files_delete_box(r, r->box[1], 0);
	*unlink_r = now() - t0;
	return t;
}

static void files_teardown(struct run *r)
{
	sqlite3_finalize(r->st_uid);
	sqlite3_finalize(r->st_ins);
	sqlite3_close(r->idx);
	pthread_mutex_destroy(&r->idx_lock);
	close(r->dirfd);
}

static const struct variant variants[] = {
    {"a", "SQLite chunk rows, group commit", a_setup, a_deliver, a_finish, a_read_all,
     a_delete_tenth, a_teardown},
    {"b", "file per record, writer syncs", files_setup, b_deliver, b_finish, files_read_all,
     files_delete_tenth, files_teardown},
    {"c1", "files, batched fdatasync", c1_setup, c_deliver, c_finish, files_read_all,
     files_delete_tenth, files_teardown},
    {"c2", "files, batched syncfs", c2_setup, c_deliver, c_finish, files_read_all,
     files_delete_tenth, files_teardown},
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

/* ---- measuring ------------------------------------------------------------ */

static void *writer_main(void *arg)
{
	struct run *r = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&r->next, 1);
		double t0;

		if (i >= r->n)
			break;
		t0 = now();
		r->v->deliver(r, i);
		r->lat[i] = now() - t0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static uint64_t usage_bytes;
static int usage_only;

static int drop_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && !usage_only) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	if (type == FTW_F || type == FTW_D)
		usage_bytes += (uint64_t)sb->st_blocks * 512;
	return 0;
}

/* Drops the run's files from the page cache (unless ONLY_USAGE); returns
 * their disk usage. */
static uint64_t drop_cache(const char *dir, int only_usage)
{
	usage_bytes = 0;
	usage_only = only_usage;
	if (nftw(dir, drop_one, 32, FTW_PHYS) < 0)
		die("nftw", NULL);
	return usage_bytes;
}

struct cell { /* one variant at one thread count: a value per repeat */
	double rate[MAX_REPEATS], mbs[MAX_REPEATS], p50[MAX_REPEATS], p99[MAX_REPEATS],
	    per_batch[MAX_REPEATS], amp[MAX_REPEATS];
	size_t n;
};

struct after { /* one variant: read-back and deletion, a value per repeat */
	double cold[MAX_REPEATS], warm[MAX_REPEATS], del[MAX_REPEATS], unl[MAX_REPEATS],
	    usage[MAX_REPEATS], usage_after[MAX_REPEATS];
};

static double median(const double *v, unsigned n)
{
	double s[MAX_REPEATS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double spread(const double *v, unsigned n)
{
	double lo = v[0], hi = v[0], m = median(v, n);

	for (unsigned k = 1; k < n; k++) {
		lo = v[k] < lo ? v[k] : lo;
		hi = v[k] > hi ? v[k] : hi;
	}
	return m > 0 ? 100 * (hi - lo) / m : 0;
}

/* Bytes this process dirtied for the disk, less those it truncated before
 * writeback (/proc/self/io), or 0 when that is unavailable. */
static uint64_t proc_written(void)
{
	unsigned long long wb = 0, cancelled = 0;
	char line[128];
	FILE *f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "write_bytes: %llu", &wb);
		sscanf(line, "cancelled_write_bytes: %llu", &cancelled);
	}
	fclose(f);
	return wb > cancelled ? wb - cancelled : 0;
}

static void run_one(const struct variant *v, const char *base, unsigned threads, size_t n,
		    unsigned rep, int last, struct cell *cell, struct after *after)
{
	struct run *r = calloc(1, sizeof(*r));
	pthread_t tids[MAX_THREADS];
	uint64_t bytes = 0, io0;
	double t0, t;

	if (r == NULL || (r->lat = calloc(n, sizeof(double))) == NULL)
		die("malloc", "out of memory");
	r->v = v;
	r->n = n;
	r->threads = threads;
	snprintf(r->dir, sizeof(r->dir), "%s/%s-t%u-r%u", base, v->id, threads, rep);
	if (fs_mkdir_p(r->dir, 0700) < 0)
		die(r->dir, NULL);
	v->setup(r);
	for (size_t i = 0; i < n; i++)
		bytes += msgs[i].size;

	io0 = proc_written();
	t0 = now();
	for (unsigned k = 0; k < threads; k++)
		if (pthread_create(&tids[k], NULL, writer_main, r) != 0)
			die("pthread_create", "writer");
	for (unsigned k = 0; k < threads; k++)
		pthread_join(tids[k], NULL);
	t = now() - t0;
	v->finish(r);
	cell->amp[rep] = (double)(proc_written() - io0) / (double)bytes;

	qsort(r->lat, n, sizeof(double), cmp_double);
	cell->n = n;
	cell->rate[rep] = (double)n / t;
	cell->mbs[rep] = (double)bytes / t / 1e6;
	cell->p50[rep] = 1e3 * r->lat[n / 2];
	cell->p99[rep] = 1e3 * r->lat[n * 99 / 100 < n ? n * 99 / 100 : n - 1];
	cell->per_batch[rep] = r->batches ? (double)r->jobs / (double)r->batches : 0;
	fprintf(stderr,
		"  %-3s T=%-3u rep %u: %7.1f msg/s %7.1f MB/s p50 %7.1f ms p99 %7.1f ms"
		" %5.1f msg/batch  %.2f x written  (%.1f s)\n",
		v->id, threads, rep + 1, cell->rate[rep], cell->mbs[rep], cell->p50[rep],
		cell->p99[rep], cell->per_batch[rep], cell->amp[rep], t);

	if (last) {
		after->usage[rep] = (double)drop_cache(r->dir, 0) / 1e6;
		t0 = now();
		v->read_all(r, 0);
		after->cold[rep] = (double)bytes / (now() - t0) / 1e6;
		t0 = now();
		v->read_all(r, 0);
		after->warm[rep] = (double)bytes / (now() - t0) / 1e6;
		v->read_all(r, 1); /* untimed: checks every byte */
		after->del[rep] = 1e3 * v->delete_tenth(r, &after->unl[rep]);
		if (after->unl[rep] >= 0)
			after->unl[rep] *= 1e3;
		after->usage_after[rep] = (double)drop_cache(r->dir, 1) / 1e6;
		fprintf(stderr,
			"  %-3s read cold %.1f MB/s warm %.1f MB/s, secure del %.0f ms"
			" (unlink %.0f ms), on disk %.0f MB, after deleting %.0f MB\n",
			v->id, after->cold[rep], after->warm[rep], after->del[rep], after->unl[rep],
			after->usage[rep], after->usage_after[rep]);
	}
	v->teardown(r);
	if (fs_remove_tree(r->dir) < 0)
		die("remove", r->dir);
	/* Let the removal reach the disk before the next run starts. */
	{
		int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
	}
	free(r->lat);
	free(r);
}

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xef53:
		return "ext2/3/4";
	case 0x58465342:
		return "xfs";
	case 0x9123683e:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x858458f6:
		return "ramfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x2fc12fc1:
		return "zfs";
	case 0x6969:
		return "nfs";
	default:
		return "unknown";
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-store [-n messages] [-1 messages at T=1] [-t 1,8,64]"
			" [-v a,b,c1,c2] [-r repeats] [-s seed] [-M max bytes] [-k] [-f]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned tcounts[MAX_TCOUNTS] = {1, 8, 64}, n_tc = 3, repeats = 1;
	int use[N_VARIANTS], keep = 0, force = 0, opt;
	static struct cell cells[N_VARIANTS][MAX_TCOUNTS];
	static struct after afters[N_VARIANTS];
	char base[] = "./bench-store.XXXXXX";
	uint64_t class_n[4] = {0}, class_b[4] = {0}, total = 0;
	struct statfs sfs;
	double t_start = now();

	for (size_t v = 0; v < N_VARIANTS; v++)
		use[v] = 1;
	while ((opt = getopt(argc, argv, "n:1:t:v:r:s:M:kf")) != -1) {
		switch (opt) {
		case 'n':
			n_total = strtoul(optarg, NULL, 10);
			break;
		case '1':
			n_single = strtoul(optarg, NULL, 10);
			break;
		case 't': {
			char *p = optarg;

			for (n_tc = 0; *p != '\0' && n_tc < MAX_TCOUNTS; n_tc++) {
				tcounts[n_tc] = (unsigned)strtoul(p, &p, 10);
				if (tcounts[n_tc] == 0 || tcounts[n_tc] > MAX_THREADS)
					usage();
				if (*p == ',')
					p++;
			}
			break;
		}
		case 'v':
			for (size_t v = 0; v < N_VARIANTS; v++) {
				char *p = strstr(optarg, variants[v].id);
				size_t len = strlen(variants[v].id);

				use[v] = p != NULL && (p == optarg || p[-1] == ',') &&
					 (p[len] == ',' || p[len] == '\0');
			}
			break;
		case 'r':
			repeats = (unsigned)strtoul(optarg, NULL, 10);
			if (repeats == 0 || repeats > MAX_REPEATS)
				usage();
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'M':
			size_cap = (uint32_t)strtoul(optarg, NULL, 10);
			if (size_cap > (10u << 20))
				usage();
			break;
		case 'k':
			keep = 1;
			break;
		case 'f':
			force = 1;
			break;
		default:
			usage();
		}
	}
	if (n_total < 20)
		usage();
	if (n_single == 0 || n_single > n_total)
		n_single = n_total / 4;

	if (statfs(".", &sfs) < 0)
		die("statfs .", NULL);
	if ((sfs.f_type == 0x01021994 || sfs.f_type == 0x858458f6) && !force) {
		fprintf(stderr,
			"bench-store: the current directory is on %s, which never syncs;"
			" run it from a folder on a disk (or -f)\n",
			fs_name(sfs.f_type));
		return 1;
	}
	gen_messages();
	for (size_t i = 0; i < n_total; i++) {
		int c = msgs[i].size <= (8 << 10)    ? 0
			: msgs[i].size <= (64 << 10) ? 1
			: msgs[i].size <= (1 << 20)  ? 2
						     : 3;

		class_n[c]++;
		class_b[c] += msgs[i].size;
		total += msgs[i].size;
	}
	if (mkdtemp(base) == NULL)
		die("mkdtemp", NULL);
	printf("bench-store: %zu messages (%.1f MB; T=1 runs: the first %zu), seed %#llx,"
	       " %u repeat(s)\n",
	       n_total, (double)total / 1e6, n_single, (unsigned long long)seed, repeats);
	if (size_cap != 0)
		printf("  every size clamped to %u bytes (-M)\n", size_cap);
	printf("  size mix: 2-8 KB %llu (%.1f MB), 8-64 KB %llu (%.1f MB),"
	       " 64 KB-1 MB %llu (%.1f MB), 1-10 MB %llu (%.1f MB)\n",
	       (unsigned long long)class_n[0], class_b[0] / 1e6, (unsigned long long)class_n[1],
	       class_b[1] / 1e6, (unsigned long long)class_n[2], class_b[2] / 1e6,
	       (unsigned long long)class_n[3], class_b[3] / 1e6);
	printf("  folder %s on %s (statfs magic %#lx), SQLite %s, %ld CPUs online\n", base,
	       fs_name(sfs.f_type), (unsigned long)sfs.f_type, sqlite3_libversion(),
	       sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);

	/* Variants interleave inside each repeat, so drift on a shared machine
	 * spreads over all of them. */
	for (unsigned rep = 0; rep < repeats; rep++)
		for (unsigned ti = 0; ti < n_tc; ti++)
			for (size_t v = 0; v < N_VARIANTS; v++)
				if (use[v])
					run_one(&variants[v], base, tcounts[ti],
						tcounts[ti] == 1 ? n_single : n_total, rep,
						ti + 1 == n_tc, &cells[v][ti], &afters[v]);

	printf(
	    "\nwrites (durable before the acknowledgement; median of %u; spread = (max-min)/median"
	    " of msg/s)\n",
	    repeats);
	printf("%-3s %-31s %3s %5s %7s %6s %7s %7s %9s %5s %6s\n", "", "variant", "T", "N", "msg/s",
	       "MB/s", "p50 ms", "p99 ms", "msg/batch", "wr x", "spread");
	for (unsigned ti = 0; ti < n_tc; ti++)
		for (size_t v = 0; v < N_VARIANTS; v++) {
			struct cell *c = &cells[v][ti];

			if (!use[v])
				continue;
			printf("%-3s %-31s %3u %5zu %7.0f %6.1f %7.1f %7.1f %9.1f %5.2f %5.0f%%\n",
			       variants[v].id, variants[v].desc, tcounts[ti], c->n,
			       median(c->rate, repeats), median(c->mbs, repeats),
			       median(c->p50, repeats), median(c->p99, repeats),
			       median(c->per_batch, repeats), median(c->amp, repeats),
			       spread(c->rate, repeats));
		}
	{
		size_t n_last = tcounts[n_tc - 1] == 1 ? n_single : n_total;
		uint64_t box_bytes[2] = {0, 0};

		for (size_t i = 0; i < n_last; i++)
			if (i % ACCOUNTS < 2)
				box_bytes[i % ACCOUNTS] += msgs[i].size;
		printf(
		    "\nread-back and deletion (after the T=%u run of %zu messages; median of %u)\n",
		    tcounts[n_tc - 1], n_last, repeats);
		printf("%-3s %-31s %9s %9s %10s %7s %7s %6s\n", "", "variant", "cold MB/s",
		       "warm MB/s", "secure del", "unlink", "disk MB", "after");
		for (size_t v = 0; v < N_VARIANTS; v++) {
			struct after *a = &afters[v];
			char unl[32];

			if (!use[v])
				continue;
			if (a->unl[0] < 0)
				snprintf(unl, sizeof(unl), "%s", "-");
			else
				snprintf(unl, sizeof(unl), "%.0f", median(a->unl, repeats));
			printf("%-3s %-31s %9.0f %9.0f %10.0f %7s %7.0f %6.0f\n", variants[v].id,
			       variants[v].desc, median(a->cold, repeats), median(a->warm, repeats),
			       median(a->del, repeats), unl, median(a->usage, repeats),
			       median(a->usage_after, repeats));
		}
		printf(
		    "  wr x: bytes this process dirtied for the disk (/proc/self/io) / record"
		    " bytes\n"
		    "  secure del (ms): every message of mailbox 1 of 10 (%zu, %.1f MB) for good;"
		    " a: message_expunge\n"
		    "    (secure_delete=ON, then the WAL truncated); files: index rows, overwrite"
		    " with zeros,\n"
		    "    syncfs, unlink, folder fsyncs\n"
		    "  unlink (ms): files only, mailbox 2 (%zu, %.1f MB): index rows, unlink,"
		    " folder fsyncs\n"
		    "  disk: MB used after the writes, and after the deletions\n",
		    (n_last + ACCOUNTS - 1) / ACCOUNTS, (double)box_bytes[0] / 1e6,
		    (n_last + ACCOUNTS - 2) / ACCOUNTS, (double)box_bytes[1] / 1e6);
	}
	printf("total %.0f s\n", now() - t_start);
	if (!keep && fs_remove_tree(base) < 0)
		die("remove", base);
	free(pool);
	free(msgs);
	return 0;
}

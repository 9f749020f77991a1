/* lib.h — small shared helpers used by every module.
 *
 * Trust boundary: none; these helpers handle bytes without interpreting them.
 * Nothing here may log message content, subjects or addresses. */
#ifndef SEALMAIL_LIB_H
#define SEALMAIL_LIB_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WARN_UNUSED       __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define N_ELEMENTS(a)     (sizeof(a) / sizeof((a)[0]))

/* ---- logging (lib-log.c) ------------------------------------------------
 * One line per event on stderr (or the file set with log_open), prefixed with
 * an ISO-8601 UTC time and the severity. Callers pass session ids and client
 * addresses; they must never pass message content or mail addresses. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level level);
void log_set_ident(const char *ident);
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
/* An unusable environment: logs and exits with status 75 (EX_TEMPFAIL). */
void log_fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));
/* A bug: logs and aborts. */
void log_panic(const char *fmt, ...) PRINTF_LIKE(1, 2) __attribute__((noreturn));

/* ---- growable byte buffer (lib-buf.c) ------------------------------------
 * buf_free() wipes the bytes before freeing them, so a buffer may hold
 * plaintext mail for a moment without leaving it in freed heap memory.
 * Wipes cover every byte that may have been written (up to the largest
 * len + extra ever reserved, even if len was cut back since), not the
 * capacity beyond it, which was never touched. Code that writes into
 * data directly must buf_reserve() what it writes first. */
struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t used; /* high-water mark: bytes [0, used) may hold data */
};
void buf_init(struct buf *b);
int buf_reserve(struct buf *b, size_t extra) WARN_UNUSED;
int buf_append(struct buf *b, const void *data, size_t len) WARN_UNUSED;
int buf_append_str(struct buf *b, const char *s) WARN_UNUSED;
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3) WARN_UNUSED;
/* Returns a NUL-terminated view (the NUL is not counted in len). */
const char *buf_cstr(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Wipes memory in a way the compiler cannot elide. */
void mem_wipe(void *p, size_t len);

/* ---- files (lib-fs.c) ---------------------------------------------------- */
/* Creates DIR and its parents with MODE; 0 on success or if it exists. */
int fs_mkdir_p(const char *dir, mode_t mode) WARN_UNUSED;
/* Writes DATA to PATH atomically (temp file, fsync, rename, fsync dir). */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode) WARN_UNUSED;
/* Reads a whole (small) file; *data_r is malloc'd and NUL-terminated. */
int fs_read_all(const char *path, uint8_t **data_r, size_t *len_r) WARN_UNUSED;
/* Recursively removes PATH (file or directory); 0 if it did not exist. */
int fs_remove_tree(const char *path) WARN_UNUSED;
/* Writes all LEN bytes to FD, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *data, size_t len) WARN_UNUSED;
/* fsync()s the directory holding PATH. */
int fs_fsync_parent(const char *path) WARN_UNUSED;
/* Joins BASE and REL unless REL is absolute; returns malloc'd string. */
char *fs_path_join(const char *base, const char *rel);
/* Reads a whole stream (fd) into B, refusing more than MAX bytes:
 * returns 0, -1 on I/O error, -2 when the limit is exceeded. */
int fs_read_fd(int fd, struct buf *b, size_t max) WARN_UNUSED;

/* ---- strings (lib-str.c) -------------------------------------------------- */
char *xstrdup(const char *s) __attribute__((returns_nonnull));
void *xmalloc(size_t n) __attribute__((returns_nonnull, malloc));
void *xcalloc(size_t n, size_t size) __attribute__((returns_nonnull, malloc));
char *str_trim(char *s);
/* Lower-cases ASCII letters in place. */
void str_lower(char *s);
/* Formats into a static per-thread buffer, for error strings. */
const char *str_tfmt(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Parses "host:port" / "[v6]:port"; host_r is malloc'd. */
int str_parse_hostport(const char *s, char **host_r, unsigned *port_r) WARN_UNUSED;
/* Parses a size like "50M", "64k", "1048576". */
int str_parse_size(const char *s, uint64_t *size_r) WARN_UNUSED;
/* Parses "30s", "5m", "1h" or a number of seconds. */
int str_parse_duration(const char *s, uint64_t *secs_r) WARN_UNUSED;
/* Current time in microseconds since the epoch / seconds. */
int64_t time_now_us(void);

/* ---- waiting for another thread's result (lib-pool.c) ----------------------
 * A one-shot rendezvous: a thread blocks in waiter_wait() until another calls
 * waiter_finish() once with a result, a number and an optional error. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int result;
	uint32_t value;
	char error[200];
};
void waiter_init(struct waiter *w);
void waiter_finish(struct waiter *w, int result, uint32_t value, const char *error);
/* Returns the result; on -1 *error_r is the error (a per-thread copy).
 * *value_r (may be NULL) receives the number. Destroys the waiter. */
int waiter_wait(struct waiter *w, uint32_t *value_r, const char **error_r);

/* ---- worker pool (lib-pool.c) -----------------------------------------------
 * A few threads for work that must not run on an event loop (Argon2id,
 * parsing large messages). Jobs run in submission order per thread. */
struct pool;
/* NAME (up to 15 bytes) names the threads, as top -H and ps -L show them.
 * NICE (0 to 19) is added to their scheduling priority: a pool of bulk
 * work gives way to the event loop, which every session waits for. */
struct pool *pool_new(unsigned threads, const char *name, int nice);
void pool_submit(struct pool *p, void (*fn)(void *ctx), void *ctx);
/* How many threads wait for work that no queued job will take: a hint (it
 * may change at once). */
unsigned pool_idle(struct pool *p);
/* Waits for queued jobs to finish, then stops the threads. */
void pool_free(struct pool **p);

#endif

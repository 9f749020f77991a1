/* imap-private.h — the session, server and mailbox structures shared by
 * the files of imap/.
 *
 * Trust boundary: as imap.h. Sessions live on the event-loop thread only;
 * a pool thread touches a session only through the job it was handed
 * (imap_session_job), and the session is never freed while a job runs. */
#ifndef SEALMAIL_IMAP_PRIVATE_H
#define SEALMAIL_IMAP_PRIVATE_H

#include "imap/imap-parser.h"
#include "imap/imap.h"
#include "net/net.h"
#include "region/region.h"

#include <stdatomic.h>

#define IMAP_ID_BYTES           13
#define IMAP_UNAUTH_LITERAL_MAX 8192  /* literals before login (LOGIN password) */
#define IMAP_SLICE_US           20000 /* work per loop iteration for long commands */
/* [imap] idle_poll 0: how often an IDLE session looks for changes made by
 * other processes, unless the store tells it (watch/notify across nodes). */
#define IMAP_IDLE_POLL_SECS          1
#define IMAP_IDLE_POLL_NOTIFIED_SECS 30
#define IMAP_POOL_THREADS            2
/* Long responses (FETCH, SEARCH) are prepared no further ahead of a slow
 * client than this many bytes waiting to be sent ... */
#define IMAP_OUTPUT_HIGH_BYTES (1024 * 1024)
/* ... and resume when the output falls to this (or at the next poll). */
#define IMAP_OUTPUT_LOW_BYTES (256 * 1024)
#define IMAP_OUTPUT_POLL_MS   50

enum imap_state {
	IMAP_STATE_NOAUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
	IMAP_STATE_COUNT
};
#define IMAP_STATE_BIT(st) (1u << (st))
#define IMAP_ANY                                                                                   \
	(IMAP_STATE_BIT(IMAP_STATE_NOAUTH) | IMAP_STATE_BIT(IMAP_STATE_AUTH) |                     \
	 IMAP_STATE_BIT(IMAP_STATE_SELECTED))
#define IMAP_AUTHED   (IMAP_STATE_BIT(IMAP_STATE_AUTH) | IMAP_STATE_BIT(IMAP_STATE_SELECTED))
#define IMAP_SELECTED IMAP_STATE_BIT(IMAP_STATE_SELECTED)
#define IMAP_NOAUTH   IMAP_STATE_BIT(IMAP_STATE_NOAUTH)

#define IMAP_CMDF_UID       (1u << 0) /* may follow "UID" */
#define IMAP_CMDF_NOEXPUNGE (1u << 1) /* sequence numbers in use: no EXPUNGE */
#define IMAP_CMDF_NOARGS    (1u << 2) /* arguments are a syntax error */

struct imap_session;
typedef void imap_handler_fn(struct imap_session *s, struct imap_args *args);

struct imap_command {
	const char *name;
	unsigned states;
	unsigned flags;
	imap_handler_fn *handler;
};

/* One message of the selected mailbox; index + 1 is its sequence number. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	uint64_t id;
	int64_t internal_date;
	uint64_t size;
	char *keywords;
};

struct imap_view {
	uint64_t id;
	enum store_role role;
	int readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	size_t count, cap;
};

/* The account's mailboxes with their names opened (UTF-8; "INBOX"). */
struct imap_mbox {
	uint64_t id;
	enum store_role role;
	char *name;
	int subscribed;
	uint32_t messages, uidnext, uidvalidity;
	uint64_t highestmodseq;
};

struct imap_key;
struct imap_fails;

struct imap_server {
	struct event_base *base;
	const struct config *cfg;
	struct router *router;
	struct net_tls *tls;
	struct pool *pool;
	struct imap_session *sessions;
	unsigned session_count;
	uint32_t id_counter;
	uint8_t id_prefix[2];
	struct imap_key *keys;
	struct imap_fails *fails;
	struct imap_plain_cache *plain_cache;
	struct event *trim_event;

	int draining;
	struct event *done_event;
	void (*drained)(void *ctx);
	void *drained_ctx;
};

typedef void imap_job_fn(void *ctx);                              /* pool thread */
typedef void imap_job_done_fn(struct imap_session *s, void *ctx); /* loop */
typedef void imap_cont_fn(struct imap_session *s);                /* loop */
typedef void imap_line_fn(struct imap_session *s, const char *line, size_t len);

struct imap_session {
	struct imap_session *prev, *next;
	struct imap_server *server;
	struct net_conn *conn;
	char id[IMAP_ID_BYTES];
	char peer[NET_ADDR_MAX];
	enum imap_state state;
	unsigned unauth_commands;
	int64_t rate_tat_us; /* command rate limit: theoretical arrival time */

	/* Command assembly and the command in progress. */
	struct buf line;
	struct buf cmd;
	uint64_t literal_left;
	char tag[IMAP_TAG_MAX];
	const struct imap_command *cmd_def;
	struct imap_args args;
	int uid_cmd;
	imap_line_fn *line_fn; /* IDLE / AUTHENTICATE: lines go here */

	unsigned int in_input : 1;
	unsigned int cont_pending : 1;
	unsigned int dead : 1;     /* connection gone; free once idle */
	unsigned int closing : 1;  /* BYE written */
	unsigned int shutdown : 1; /* close after the current command */
	unsigned int notified : 1; /* another session or a delivery changed something */
	unsigned int utf8 : 1;     /* UTF-8 mailbox names (ENABLE UTF8=ACCEPT / IMAP4rev2) */
	unsigned int condstore : 1;
	unsigned int qresync : 1; /* ENABLE QRESYNC: VANISHED instead of EXPUNGE */
	unsigned int rev2 : 1;    /* ENABLE IMAP4rev2 (RFC 9051) */
	unsigned int idling : 1;
	unsigned int waiting_output : 1; /* cont_fn runs once the output drains */

	unsigned jobs; /* pool jobs running (imap_session_job) */
	struct event *cont_ev, *notify_ev, *timer_ev;
	imap_cont_fn *cont_fn;
	void *cont_ctx;

	/* Authenticated. */
	struct account *acct;
	struct store *store;
	struct imap_key *key;
	struct seal_opener *opener;
	struct router_watch *watch;
	struct imap_mbox *boxes;
	size_t box_count;
	struct imap_view *view;
	/* SEARCHRES (RFC 5182): UIDs of the last SEARCH RETURN (SAVE),
	 * ascending; "$" in a sequence set. Dropped with the view. */
	uint32_t *saved;
	size_t saved_count;
};

/* imap-session.c */
void imap_session_create(struct imap_server *server, struct net_conn *conn);
void imap_session_input(struct imap_session *s);
void imap_reply(struct imap_session *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
void imap_write(struct imap_session *s, const void *data, size_t len);
/* Ends the command in progress: syncs the selected mailbox (untagged
 * updates), writes the tagged STATUS reply and reads the next command. */
void imap_cmd_finish(struct imap_session *s, const char *status, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* Runs FN(CTX) on a pool thread, then DONE(S, CTX) on the loop (also when
 * the client has gone: DONE must check s->dead and only clean up). A
 * session may have several jobs running; their DONEs run in the order they
 * finish, and the session reads no command until all are done. */
void imap_session_job(struct imap_session *s, imap_job_fn *fn, imap_job_done_fn *done, void *ctx);
/* Calls FN on a later loop iteration (slices of long commands); FN must
 * check s->dead. */
void imap_session_continue(struct imap_session *s, imap_cont_fn *fn);
void imap_session_delay(struct imap_session *s, imap_cont_fn *fn, uint64_t ms);
/* Calls FN once the output has fallen to IMAP_OUTPUT_LOW_BYTES (or after
 * IMAP_OUTPUT_POLL_MS, whichever is first; FN checks again). FN must check
 * s->dead. */
void imap_session_wait_output(struct imap_session *s, imap_cont_fn *fn);
/* Starts watching the account for changes (after login). */
void imap_session_watch(struct imap_session *s);
void imap_session_close(struct imap_session *s, const char *bye);
void imap_session_shutdown(struct imap_session *s);
void imap_session_free(struct imap_session **s);
void imap_session_log(const struct imap_session *s, enum log_level level, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
void imap_session_set_state(struct imap_session *s, enum imap_state state);
/* Writes "* CAPABILITY ..." or the text after "[CAPABILITY " into OUT. */
void imap_capabilities(struct imap_session *s, struct buf *out);
/* Tells the account's other sessions that MAILBOX_ID changed. */
void imap_session_changed(struct imap_session *s, uint64_t mailbox_id);

/* imap-server.c */
void imap_server_session_gone(struct imap_server *server, struct imap_session *s);
int imap_peer_is_loopback(const char *peer);
/* Failed logins: the delay (ms) before answering, and bookkeeping. */
uint64_t imap_fail_delay(struct imap_server *server, const char *peer, const struct account *acct);
/* 1 if PEER (ACCT NULL) or ACCT has reached [imap] auth_fail_lockout. */
int imap_fail_locked(struct imap_server *server, const char *peer, const struct account *acct);
void imap_fail_record(struct imap_server *server, const char *peer, const struct account *acct);
void imap_fail_clear(struct imap_server *server, const struct account *acct);

/* imap-keys.c: unlocked keys shared by an account's sessions. */
struct imap_key *imap_key_find(struct imap_server *server, const struct account *acct,
			       const char *password);
struct imap_key *imap_key_add(struct imap_server *server, const struct account *acct,
			      const char *password, struct seal_keypair **kp);
const struct seal_keypair *imap_key_pair(const struct imap_key *key);
void imap_key_release(struct imap_server *server, struct imap_key **key);
void imap_keys_free(struct imap_server *server);

/* imap-mailbox.c */
int imap_boxes_load(struct imap_session *s, const char **error_r);
void imap_boxes_free(struct imap_session *s);
struct imap_mbox *imap_box_find(struct imap_session *s, const char *name);
/* A mailbox-name argument to canonical UTF-8; -1 with an error. */
int imap_name_in(struct imap_session *s, const struct imap_arg *arg, char **name_r,
		 const char **error_r);
/* Appends NAME as an IMAP string (quoted or literal) in the client's encoding. */
void imap_name_out(struct imap_session *s, const char *name, struct buf *out);
void imap_quote(struct buf *out, const char *s, size_t len);
int imap_view_open(struct imap_session *s, const struct imap_mbox *box, int readonly,
		   const char **error_r);
void imap_view_close(struct imap_session *s);
void imap_view_sync(struct imap_session *s, int allow_expunge);
/* Index of UID in the view or -1. */
long imap_view_find(const struct imap_view *v, uint32_t uid);
void imap_view_remove(struct imap_session *s, size_t index);
/* Removes the messages UIDS[0..COUNT) (those the view holds) and reports
 * them: "* n EXPUNGE" highest first, or one "* VANISHED uids" after ENABLE
 * QRESYNC (RFC 7162 3.2.10). */
void imap_view_expunged(struct imap_session *s, const uint32_t *uids, size_t count);
/* "* VANISHED (EARLIER) uids" for the UIDs of the view's mailbox expunged
 * after MODSEQ that lie in KNOWN (all when NULL) and at most MAX_UID. A
 * store without tombstones reports every UID below UIDNEXT that is not in
 * the view (RFC 7162 allows UIDs the client never saw). -1 on a store
 * error (nothing sent). */
int imap_view_vanished_earlier(struct imap_session *s, uint64_t modseq,
			       const struct imap_seqset *known, uint32_t max_uid,
			       const char **error_r);
/* "\Seen \Flagged kw1" into OUT. */
void imap_flags_format(uint32_t flags, const char *keywords, struct buf *out);
/* Parses a flag list (a list or a single flag) into FLAGS and space
 * separated KEYWORDS (malloc'd or NULL). */
int imap_flags_parse(const struct imap_arg *arg, uint32_t *flags_r, char **keywords_r,
		     const char **error_r);
/* A sequence set argument resolved against the view: sorted view indices.
 * "$" is the saved search result (RFC 5182). */
int imap_view_set(struct imap_session *s, const char *set, int uid, size_t **idx_r, size_t *count_r,
		  const char **error_r);
/* "$" as a sequence set of UIDs (UID != 0) or of sequence numbers: the
 * saved messages still in the view. */
void imap_view_saved_set(struct imap_session *s, int uid, struct imap_seqset *set_r);
/* Replaces the saved search result with UIDS[0..COUNT) (ascending). */
void imap_view_save(struct imap_session *s, const uint32_t *uids, size_t count);
int imap_box_seal_name(struct imap_session *s, const char *name, struct buf *out,
		       const char **error_r);

/* A store write, run on a pool thread so that the loop never waits for a
 * sync (imap-write.c). OP fills RESULT/ERROR; DONE runs on the loop, also
 * when the client has gone (check s->dead), and frees W with
 * imap_write_free. */
struct imap_write;
typedef int imap_write_op(struct imap_write *w, const char **error_r);
typedef void imap_write_done(struct imap_session *s, struct imap_write *w);
struct imap_write {
	imap_write_op *op;
	imap_write_done *done;
	struct store *store;
	uint64_t account_id, mailbox_id, dst_id;
	struct buf name_sealed;
	int subscribed;
	uint32_t *uids;
	size_t count;
	uint32_t *dst_uids;
	int move;
	struct store_flag_update fu;
	char *keywords;
	struct store_message *changed;
	size_t changed_count;
	void *cmd; /* the command's own state */
	int result;
	char error[160];
};
struct imap_write *imap_write_new(struct imap_session *s, imap_write_op *op, imap_write_done *done);
void imap_write_run(struct imap_session *s, struct imap_write *w);
void imap_write_free(struct imap_write **w);

/* STATUS items for BOX into OUT ("MESSAGES 3 UIDNEXT 4"); -1 BAD item. */
int imap_status_format(struct imap_session *s, const struct imap_mbox *box,
		       const struct imap_arg *items, struct buf *out, const char **error_r);

/* The commands (imap-cmd-*.c). */
void imap_cmd_capability(struct imap_session *s, struct imap_args *args);
void imap_cmd_noop(struct imap_session *s, struct imap_args *args);
void imap_cmd_logout(struct imap_session *s, struct imap_args *args);
void imap_cmd_id(struct imap_session *s, struct imap_args *args);
void imap_cmd_enable(struct imap_session *s, struct imap_args *args);
void imap_cmd_namespace(struct imap_session *s, struct imap_args *args);
void imap_cmd_starttls(struct imap_session *s, struct imap_args *args);
void imap_cmd_login(struct imap_session *s, struct imap_args *args);
void imap_cmd_authenticate(struct imap_session *s, struct imap_args *args);
void imap_cmd_select(struct imap_session *s, struct imap_args *args);
void imap_cmd_examine(struct imap_session *s, struct imap_args *args);
void imap_cmd_create(struct imap_session *s, struct imap_args *args);
void imap_cmd_delete(struct imap_session *s, struct imap_args *args);
void imap_cmd_rename(struct imap_session *s, struct imap_args *args);
void imap_cmd_subscribe(struct imap_session *s, struct imap_args *args);
void imap_cmd_unsubscribe(struct imap_session *s, struct imap_args *args);
void imap_cmd_list(struct imap_session *s, struct imap_args *args);
void imap_cmd_lsub(struct imap_session *s, struct imap_args *args);
void imap_cmd_status(struct imap_session *s, struct imap_args *args);
void imap_cmd_append(struct imap_session *s, struct imap_args *args);
void imap_cmd_check(struct imap_session *s, struct imap_args *args);
void imap_cmd_close(struct imap_session *s, struct imap_args *args);
void imap_cmd_unselect(struct imap_session *s, struct imap_args *args);
void imap_cmd_expunge(struct imap_session *s, struct imap_args *args);
void imap_cmd_search(struct imap_session *s, struct imap_args *args);
void imap_cmd_fetch(struct imap_session *s, struct imap_args *args);
void imap_cmd_store(struct imap_session *s, struct imap_args *args);
void imap_cmd_copy(struct imap_session *s, struct imap_args *args);
void imap_cmd_move(struct imap_session *s, struct imap_args *args);
void imap_cmd_idle(struct imap_session *s, struct imap_args *args);

/* imap-message.c: opening a message's metadata and body. */
int imap_msg_meta(struct imap_session *s, const struct buf *sealed, struct buf *plain_r,
		  const char **error_r);
/* A message's whole plaintext, shared by reference count between the
 * command that opened it and the output buffer it was handed to (without a
 * copy); the last reference wipes the bytes written and frees it. The count
 * is atomic: a pool thread may open and add, the loop thread release. */
struct imap_plain_cache;
struct imap_plain {
	atomic_uint refs;
	size_t len, cap; /* data[len] is NUL */
	size_t dirty;    /* bytes of DATA that may hold an earlier message */
	uint8_t *data;
	struct imap_plain_cache *cache; /* where DATA goes back */
};
/* Body buffers kept for the next message (imap-message.c). */
struct imap_plain_cache *imap_plain_cache_new(void);
void imap_plain_cache_free(struct imap_plain_cache **cache);
/* Frees what has not been used for a while. */
void imap_plain_cache_trim(struct imap_plain_cache *cache);
struct seal_reader;
/* Opens M's record into a new *P_R. *READER (NULL at first) is a reader
 * kept between calls and reset after each; seal_reader_free() it. */
int imap_msg_plain(struct imap_session *s, const struct imap_msg *m, struct seal_reader **reader,
		   struct imap_plain **p_r, const char **error_r);
void imap_plain_ref(struct imap_plain *p);
void imap_plain_unref(struct imap_plain **p);
/* Appends DATA..DATA+LEN (inside P) to EV by reference. */
void imap_plain_add(struct evbuffer *ev, struct imap_plain *p, const uint8_t *data, size_t len);
/* Calls FN for the messages of the view at indices IDX[0..COUNT) that lie
 * in one UID range scan, with their sealed metadata. */
int imap_msg_scan_meta(struct imap_session *s, const size_t *idx, size_t count,
		       int (*fn)(void *ctx, size_t index, const struct store_message *m), void *ctx,
		       const char **error_r);

#endif

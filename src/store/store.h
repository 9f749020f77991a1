/* store.h — one region's store, behind a backend vtable.
 *
 * Trust boundary: a store holds only sealed records, sealed metadata, sealed
 * mailbox names, wrapped keys and the plaintext index fields the protocols
 * need without the key (UIDs, flags, modseqs, dates, sizes). It never sees a
 * plaintext message, subject or mail address; accounts are known by a keyed
 * hash of their address. Backends: fs (SQLite, the embedded default) and
 * rados (Ceph, when built with librados). Reach a store only through region/
 * (the router).
 *
 * Threads: a store may be used from several threads. Durable writes go
 * through the backend's group commit: concurrent writers share one sync, and
 * a completion callback runs (on a store thread) only once the write is on
 * stable storage. */
#ifndef SEALMAIL_STORE_H
#define SEALMAIL_STORE_H

#include "lib/lib.h"

#define STORE_ADDR_HASH_BYTES 32
#define STORE_TAG_BYTES       16
#define STORE_PK_BYTES        32

enum store_role {
	STORE_ROLE_NONE = 0,
	STORE_ROLE_INBOX,
	STORE_ROLE_SENT,
	STORE_ROLE_DRAFTS,
	STORE_ROLE_TRASH,
	STORE_ROLE_JUNK,
	STORE_ROLE_ARCHIVE,
};

/* IMAP system flags as bits; keywords are kept apart. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

struct store_account {
	uint64_t id;
	uint8_t addr_hash[STORE_ADDR_HASH_BYTES];
	uint8_t tag[STORE_TAG_BYTES]; /* random; names the account in the log */
	uint8_t pk[STORE_PK_BYTES];
	struct buf wrapped_password;
	struct buf wrapped_recovery;
	/* The address sealed under the server's directory key (for the
	 * operator's account list); kept in the home region, never in the
	 * global directory. */
	struct buf address_sealed;
	int64_t created; /* unix seconds */
};

struct store_mailbox {
	uint64_t id;
	uint64_t account_id;
	enum store_role role;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	int subscribed;
	struct buf name_sealed; /* sealed to the account key; empty for INBOX */
};

struct store_message {
	uint64_t id;
	uint64_t mailbox_id;
	uint32_t uid;
	uint32_t flags; /* enum store_flag */
	char *keywords; /* space separated, may be NULL */
	uint64_t modseq;
	int64_t internal_date; /* unix seconds */
	uint64_t size;         /* plaintext RFC822.SIZE */
	uint64_t record_size;  /* sealed bytes */
	struct buf meta;       /* sealed metadata part */
};

struct store;
struct store_record_writer;

enum store_flag_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* Keyword lists are short, space separated, already validated atoms,
 * compared without regard to ASCII case. True if LIST holds KW[0..LEN). */
int store_keywords_has(const char *list, const char *kw, size_t len);
/* LIST after a STORE of KWS in MODE: a malloc'd list without duplicates,
 * or NULL when it is empty. */
char *store_keywords_apply(const char *list, const char *kws, enum store_flag_mode mode);

/* A STORE: change FLAGS and KEYWORDS (space separated, may be NULL) of the
 * messages UIDS[0..COUNT) in MODE. With UNCHANGED_SINCE != 0 a message whose
 * modseq is greater is left alone (RFC 7162). A message whose flags would not
 * change keeps its modseq. */
struct store_flag_update {
	const uint32_t *uids;
	size_t count;
	enum store_flag_mode mode;
	uint32_t flags;
	const char *keywords;
	uint64_t unchanged_since;
};

/* Runs once the commit is durable (result 0) or has failed (-1, ERROR).
 * UID is the message's UID in its mailbox. Called on a store thread. */
typedef void store_commit_fn(void *ctx, int result, uint32_t uid, const char *error);
/* Per-message callback of store_message_list; return non-zero to stop. */
typedef int store_message_fn(void *ctx, const struct store_message *msg);
/* Per-UID callback of expunged_scan; return non-zero to stop. */
typedef int store_uid_fn(void *ctx, uint32_t uid, uint64_t modseq);
/* Receives the sealed bytes of a record in order; return -1 to stop. */
typedef int store_bytes_fn(void *ctx, const uint8_t *data, size_t len);
/* "Mailbox MAILBOX_ID of ACCOUNT_ID changed", posted by another node. Runs on
 * a store thread. */
typedef void store_change_fn(void *ctx, uint64_t account_id, uint64_t mailbox_id);
struct store_watch;

struct store_backend {
	const char *scheme;
	/* 1: every call is answered from local files, never over the network;
	 * a look-up (account_get, mailbox_get_role) is then quick enough to
	 * make on an event loop. */
	int local;
	int (*open)(const char *location, struct store **store_r, const char **error_r);
	void (*close)(struct store **store);

	int (*account_create)(struct store *s, struct store_account *acct, const char **error_r);
	/* 1 found, 0 unknown, -1 error. */
	int (*account_get)(struct store *s, const uint8_t addr_hash[STORE_ADDR_HASH_BYTES],
			   struct store_account *acct_r, const char **error_r);
	int (*account_set_wrapped)(struct store *s, uint64_t account_id, const struct buf *password,
				   const struct buf *recovery, const char **error_r);
	/* Removes the account and every byte of its mail (ciphertext included). */
	int (*account_delete)(struct store *s, uint64_t account_id, const char **error_r);
	int (*account_usage)(struct store *s, uint64_t account_id, uint64_t *messages_r,
			     uint64_t *bytes_r, const char **error_r);

	int (*mailbox_create)(struct store *s, uint64_t account_id, enum store_role role,
			      const struct buf *name_sealed, struct store_mailbox *box_r,
			      const char **error_r);
	/* *boxes_r is an array of *count_r mailboxes; free with store_mailboxes_free. */
	int (*mailbox_list)(struct store *s, uint64_t account_id, struct store_mailbox **boxes_r,
			    size_t *count_r, const char **error_r);
	/* 1 found, 0 none, -1 error. box_r->messages may be left 0: this runs
	 * for every delivery, and counting would cost a pass over the mailbox. */
	int (*mailbox_get_role)(struct store *s, uint64_t account_id, enum store_role role,
				struct store_mailbox *box_r, const char **error_r);

	int (*record_begin)(struct store *s, struct store_record_writer **w_r,
			    const char **error_r);
	int (*record_write)(struct store_record_writer *w, const void *data, size_t len,
			    const char **error_r);
	/* Commits the record as a new message of MSG->mailbox_id (flags,
	 * keywords, internal_date, size, meta used; uid and modseq assigned).
	 * Consumes *W in every case; DONE runs exactly once. */
	void (*record_commit)(struct store_record_writer **w, const struct store_message *msg,
			      store_commit_fn *done, void *ctx);
	void (*record_abort)(struct store_record_writer **w);

	/* Calls FN for every message of MAILBOX_ID with uid >= UID_MIN, in UID order. */
	int (*message_list)(struct store *s, uint64_t mailbox_id, uint32_t uid_min,
			    store_message_fn *fn, void *ctx, const char **error_r);
	/* Feeds FN the sealed record of MESSAGE_ID. A message that is gone
	 * (expunged since the caller listed it) fails with *error_r set to
	 * store_error_gone itself, which callers may compare. */
	int (*record_read)(struct store *s, uint64_t message_id, store_bytes_fn *fn, void *ctx,
			   const char **error_r);

	/* ---- mail access (IMAP). Writes are durable when they return. ---- */
	/* 1 found (*box_r filled), 0 no such mailbox of ACCOUNT_ID, -1 error. */
	int (*mailbox_get)(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			   struct store_mailbox *box_r, const char **error_r);
	/* Removes the mailbox and its messages (ciphertext of records no
	 * other message shares included). */
	int (*mailbox_delete)(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			      const char **error_r);
	/* Sets the sealed name (NAME_SEALED != NULL) and/or the subscription
	 * (SUBSCRIBED >= 0). */
	int (*mailbox_update)(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			      const struct buf *name_sealed, int subscribed, const char **error_r);
	/* Calls FN for the messages of MAILBOX_ID with UID in [UID_MIN, UID_MAX]
	 * and modseq > MODSEQ_MIN, in UID order; META is filled only with
	 * WITH_META (an index walk without it reads no sealed data). */
	int (*message_scan)(struct store *s, uint64_t mailbox_id, uint32_t uid_min,
			    uint32_t uid_max, uint64_t modseq_min, int with_meta,
			    store_message_fn *fn, void *ctx, const char **error_r);
	/* Changes flags and keywords of U->uids; FN sees each changed message
	 * (new flags, keywords, modseq) after the change is durable. */
	int (*message_set_flags)(struct store *s, uint64_t mailbox_id,
				 const struct store_flag_update *u, store_message_fn *fn, void *ctx,
				 const char **error_r);
	/* Removes the messages UIDS[0..COUNT) (and the ciphertext of records no
	 * other message shares). */
	int (*message_expunge)(struct store *s, uint64_t mailbox_id, const uint32_t *uids,
			       size_t count, const char **error_r);
	/* Calls FN for the UIDs of MAILBOX_ID expunged (or moved away) with a
	 * modseq greater than MODSEQ_MIN, in UID order: the tombstones QRESYNC
	 * needs (RFC 7162 3.2.5). Only the UID and the modseq of the expunge
	 * are kept. Optional: NULL for a backend that keeps no tombstones. */
	int (*expunged_scan)(struct store *s, uint64_t mailbox_id, uint64_t modseq_min,
			     store_uid_fn *fn, void *ctx, const char **error_r);
	/* Copies (MOVE: moves) UIDS[0..COUNT) of SRC into DST of the same
	 * account, sharing the sealed records; DST_UIDS_R[i] receives the new
	 * UID of UIDS[i] (0 when it did not exist). */
	int (*message_copy)(struct store *s, uint64_t src_mailbox_id, const uint32_t *uids,
			    size_t count, uint64_t dst_mailbox_id, int move, uint32_t *dst_uids_r,
			    const char **error_r);
	/* Moving an account between regions: sets MAILBOX_ID's UIDVALIDITY and
	 * raises its next UID and highest modseq to at least UIDNEXT and
	 * HIGHESTMODSEQ, so that the next record_commit into a mailbox with no
	 * higher UID gets UID UIDNEXT. An error for a mailbox that does not
	 * exist. Optional: NULL for a backend that cannot take a moved
	 * account. */
	int (*mailbox_set_uids)(struct store *s, uint64_t mailbox_id, uint32_t uidvalidity,
				uint32_t uidnext, uint64_t highestmodseq, const char **error_r);

	/* ---- changes across nodes: optional (NULL for a store only one
	 * process uses). ---- */
	/* Calls FN for every change of ACCOUNT_ID's mailboxes posted by another
	 * node with change_notify. */
	int (*change_watch)(struct store *s, uint64_t account_id, store_change_fn *fn, void *ctx,
			    struct store_watch **w_r, const char **error_r);
	/* After this returns, the watch's FN is not running and will not run. */
	void (*change_unwatch)(struct store *s, struct store_watch **w);
	/* Tells the watchers on other nodes; best effort. */
	void (*change_notify)(struct store *s, uint64_t account_id, uint64_t mailbox_id);
};

/* Opens the store named by URI ("fs:/path", "rados:..."). */
int store_open(const char *uri, struct store **store_r, const char **error_r) WARN_UNUSED;
void store_close(struct store **store);
const struct store_backend *store_backend_of(const struct store *s);

/* Synchronous commit: waits until durable. Returns 0 and sets *uid_r. */
int store_record_commit_wait(struct store *s, struct store_record_writer **w,
			     const struct store_message *msg, uint32_t *uid_r,
			     const char **error_r) WARN_UNUSED;

void store_account_init(struct store_account *a);
void store_account_clear(struct store_account *a);
void store_mailbox_clear(struct store_mailbox *b);
void store_mailboxes_free(struct store_mailbox **boxes, size_t count);
void store_message_init(struct store_message *m);
void store_message_clear(struct store_message *m);

/* Every store begins with this so generic code can find its backend. */
struct store {
	const struct store_backend *backend;
};

/* record_read's error for a message that is gone. */
extern const char store_error_gone[];

extern const struct store_backend store_backend_fs;
#ifdef HAVE_RADOS
extern const struct store_backend store_backend_rados;
#endif

#endif

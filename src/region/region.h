/* region.h — accounts, their home regions, and the only way to a store.
 *
 * Trust boundary: callers hand in addresses and passwords from the network or
 * the CLI. The router turns an address into a keyed hash, finds the account's
 * home region in the directory, and returns that region's store; there is no
 * function that takes a region name from a client and writes to its store.
 * A delivery seals a message to each recipient's key as the bytes arrive and
 * writes each copy into that recipient's home region only. */
#ifndef SEALMAIL_REGION_H
#define SEALMAIL_REGION_H

#include "lib/config.h"
#include "lib/lib.h"
#include "store/store.h"

struct router;
struct seal_keypair;
struct tlog;

struct region {
	const char *name;
	const char *jurisdiction;
	struct store *store;
	int served; /* listed in [server] serve_regions (or all when unset) */
};

struct account {
	char *address; /* normalised (lower-case domain) */
	const struct region *region;
	struct store_account st;
	uint64_t inbox_id; /* 0 until router_account_find_inbox */
};

/* Opens every region's store, the account directory and the address key. */
int router_open(const struct config *cfg, struct router **router_r,
		const char **error_r) WARN_UNUSED;
void router_close(struct router **router);
/* The transparency log that account events are appended to; creating,
 * moving, re-keying or deleting an account fails while none is set. */
void router_set_tlog(struct router *router, struct tlog *log);
const struct region *router_region(struct router *router, const char *name);
size_t router_region_count(const struct router *router);
const struct region *router_region_at(const struct router *router, size_t i);

/* Normalises ADDRESS (trim, strip <>, ASCII lower case) into a
 * malloc'd string; NULL if it is not a plausible mailbox address. */
char *router_address_normalize(const char *address);

/* 1 when the directory and every region's store answer look-ups from local
 * files (SQLite): router_account_find and router_account_find_inbox are then
 * as quick as a page-cache read and may run on an event loop; 0 when one of
 * them may wait on the network (RADOS). */
int router_lookups_local(const struct router *router);
/* 1 found (*acct_r allocated), 0 unknown, -1 error. */
int router_account_find(struct router *router, const char *address, struct account **acct_r,
			const char **error_r) WARN_UNUSED;
void router_account_free(struct account **acct);
/* Looks up the id of ACCT's INBOX. Set as acct->inbox_id, a delivery to the
 * account needs no store look-up of its own (which may wait on disk or on
 * the network): call it where the recipient is looked up, off the event
 * loop. -1 on error, also when the account has no INBOX. */
int router_account_find_inbox(struct router *router, const struct account *acct,
			      uint64_t *inbox_id_r, const char **error_r) WARN_UNUSED;

/* Creates an account homed in REGION_NAME with the standard mailboxes (INBOX,
 * Sent, Drafts, Trash, Junk, Archive); writes the one-time recovery code. */
int router_account_create(struct router *router, const char *address, const char *region_name,
			  const char *password, char *recovery_code_r, size_t recovery_code_size,
			  const char **error_r) WARN_UNUSED;
/* Calls FN for every account (address and region); stops if FN returns != 0. */
int router_account_list(struct router *router,
			int (*fn)(void *ctx, const char *address, const struct region *region),
			void *ctx, const char **error_r) WARN_UNUSED;
/* Removes the account, every byte of its mail and its directory entry. */
int router_account_delete(struct router *router, struct account *acct,
			  const char **error_r) WARN_UNUSED;
/* Moves the account to region REGION_NAME: its keys, mailboxes (UIDVALIDITY,
 * UIDs, flags, keywords) and sealed records are copied as they are (never
 * opened) into that region's store, the directory is pointed there, and then
 * every byte of the account is removed from the old region. account.moved is
 * logged before anything is copied. Until the directory switch a failure
 * leaves the account whole in its old region; on success ACCT describes the
 * account in its new region. Mail delivered while the copy runs is carried
 * over; changes made over IMAP meanwhile may be lost. */
int router_account_move(struct router *router, struct account *acct, const char *region_name,
			const char **error_r) WARN_UNUSED;
/* Unlocks the account key with the password (Argon2id: slow by design; do not
 * call on an event loop). -1 with "wrong password" on mismatch. */
int router_account_unlock(struct router *router, struct account *acct, const char *password,
			  struct seal_keypair **kp_r, const char **error_r) WARN_UNUSED;
/* Re-wraps the key under NEW_PASSWORD (the mail is not touched). */
int router_account_passwd(struct router *router, struct account *acct, const char *old_password,
			  const char *new_password, const char **error_r) WARN_UNUSED;
/* Unlocks with the recovery code, sets NEW_PASSWORD and issues a new code. */
int router_account_recover(struct router *router, struct account *acct, const char *code,
			   const char *new_password, char *new_code_r, size_t new_code_size,
			   const char **error_r) WARN_UNUSED;

/* The only way to a store: the account's home region's store. */
struct store *router_store(struct router *router, const struct account *acct);

/* ---- delivery ------------------------------------------------------------
 * One incoming message for one or more local accounts. The plaintext is
 * collected in memory (never on disk), bounded by MAX_SIZE, and sealed per
 * recipient by the commit job on the worker pool (a small one by
 * delivery_commit itself), which also computes the metadata part from it.
 * Use from one thread until delivery_commit. */
struct delivery;
/* Called once every copy is durable (0) or one failed (-1); on a store
 * thread, or when it fails before reaching a store, possibly inside
 * delivery_commit. */
typedef void delivery_done_fn(void *ctx, int result, const char *error);

int delivery_begin(struct router *router, uint64_t max_size, struct delivery **d_r,
		   const char **error_r) WARN_UNUSED;
/* Adds a recipient (found with router_account_find; the delivery takes a
 * reference on nothing: ACCT must outlive the delivery). Duplicates of one
 * account are delivered once. Must precede the first delivery_write. */
int delivery_add_recipient(struct delivery *d, const struct account *acct,
			   const char **error_r) WARN_UNUSED;
/* Adds the next plaintext bytes. -1 with "message too large" past MAX_SIZE. */
int delivery_write(struct delivery *d, const void *data, size_t len,
		   const char **error_r) WARN_UNUSED;
/* The message buffer itself, for a writer that decodes straight into it
 * (SMTP DATA: one copy less than delivery_write). Appending to it is
 * writing, followed by delivery_buffer_taken(). The delivery wipes it.
 * EXPECTED (the client's SIZE=, or 0) sizes it once instead of by doubling,
 * up to what the delivery holds before it streams. */
struct buf *delivery_buffer(struct delivery *d, uint64_t expected);
/* Bytes were appended to delivery_buffer(): past a bound they go to be
 * sealed and the buffer is emptied (the same buffer stays valid). -1 when
 * the message is past MAX_SIZE or sealing failed ("message too large" or
 * the store's error): the delivery can only be aborted then. 1 when the
 * writer is held back (delivery_set_pacing with READY): read no more input
 * until READY runs. 0 otherwise. */
int delivery_buffer_taken(struct delivery *d, const char **error_r) WARN_UNUSED;
/* Holds back a writer that outruns sealing (a few MiB of plaintext wait):
 * with READY, delivery_buffer_taken() returns 1 and READY(CTX) runs later,
 * on a pool thread and under the delivery's lock (so: only post an event),
 * never after delivery_commit or delivery_abort returned; without READY,
 * delivery_write() waits (for threads that may block, e.g. the CLI). A
 * delivery without this call holds nothing back (APPEND: the caller already
 * holds the whole message). */
void delivery_set_pacing(struct delivery *d, void (*ready)(void *ctx), void *ctx);
/* Finishes sealing and commits every copy into its home region's store
 * (INBOX, internal date INTERNAL_DATE). DONE runs once. Consumes the delivery. */
void delivery_commit(struct delivery **d, int64_t internal_date, delivery_done_fn *done, void *ctx);
/* delivery_commit and wait for it. */
int delivery_commit_wait(struct delivery **d, int64_t internal_date,
			 const char **error_r) WARN_UNUSED;
void delivery_abort(struct delivery **d);
/* Puts the copy for the recipient added last into MAILBOX_ID (of that
 * account) with FLAGS (enum store_flag) and KEYWORDS (space separated, may
 * be NULL) instead of INBOX; *UID_R, when set, receives its UID before DONE
 * runs (APPEND). Must follow that delivery_add_recipient. */
int delivery_set_mailbox(struct delivery *d, uint64_t mailbox_id, uint32_t flags,
			 const char *keywords, uint32_t *uid_r, const char **error_r) WARN_UNUSED;

/* ---- change notification (region-notify.c) ----------------------------------
 * "Mailbox MAILBOX_ID of an account changed", within this process: every
 * committed delivery posts it, IMAP sessions post their own changes. FN runs
 * on the posting thread (any thread) with the hub locked: it must only hand
 * the news over (event_active) and never call back into the hub. */
typedef void router_notify_fn(void *ctx, uint64_t mailbox_id);
struct router_watch;
struct router_watch *router_watch_add(const struct account *acct, router_notify_fn *fn, void *ctx);
/* After this returns, FN is not running and will not run again. */
void router_watch_remove(struct router_watch **w);
/* Tells every watcher of the account except the one whose ctx is ORIGIN. */
void router_notify(const struct region *region, uint64_t account_id, uint64_t mailbox_id,
		   const void *origin);

#endif

/* store-rados-private.h — shared between the rados backend's files.
 *
 * Object layout in the region's pool (and namespace), no name holding an
 * address:
 *   a.<id>   an account; <id> (16 hex) is taken from the keyed hash of its
 *            address. xattrs: "hash" (the full keyed hash), "acct" (tag, pk,
 *            created), "wp", "wr" (wrapped keys), "ver" (guard: last
 *            UIDVALIDITY). omap: "b.<mailbox id>" for each of its mailboxes.
 *            Watched for changes across nodes.
 *   b.<id>   a mailbox (<id>: 8 hex, random below 2^31). xattr "hdr" (text:
 *            the version every change compares and sets), "name" (sealed).
 *            omap: "u.<uid>" index entries, "m.<uid>" sealed metadata,
 *            "x.<uid>" tombstones of expunged messages (the modseq of the
 *            expunge, for QRESYNC).
 *   r.<id>   a sealed record (<id>: 16 random hex), xattr "refs".
 * Message ids are (mailbox id << 32) | uid. */
#ifndef SEALMAIL_STORE_RADOS_PRIVATE_H
#define SEALMAIL_STORE_RADOS_PRIVATE_H

#include "store/store.h"

#include <pthread.h>
#include <rados/librados.h>

#define RADOS_OID_MAX 40
#define RADOS_RETRIES 1000

/* The mailbox header: the guard of every change to a mailbox. */
struct rados_hdr {
	uint64_t account_id;
	int role;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t modseq;
	uint32_t messages;
	uint64_t bytes;
	int subscribed;
	/* Being deleted: no one else sees the mailbox any more, so that the
	 * delete is not starved by writers that keep changing the header. */
	int deleting;
};

/* One index entry ("u.<uid>"). */
struct rados_entry {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	int64_t internal_date;
	uint64_t size;
	uint64_t record_size;
	uint64_t record;
	char *keywords; /* NULL when none */
};

struct rados_store {
	struct store store;
	rados_t cluster;
	rados_ioctx_t io;
	uint64_t node; /* random: tells this process's notifications apart */

	pthread_t committer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store_record_writer *queue_head, *queue_tail; /* commits */
	int stopping;
	uint64_t batches, commits; /* statistics */
	/* Notifications sent and not yet completed (under LOCK): close waits
	 * for them, since librados would complete one after its shutdown. */
	unsigned notifies;
	pthread_cond_t notified;
};

static inline struct rados_store *RS(struct store *s)
{
	return (struct rados_store *)s;
}

int rados_fail(int err, const char *what, const char **error_r);
void rados_oid_account(char oid[RADOS_OID_MAX], uint64_t account_id);
void rados_oid_mailbox(char oid[RADOS_OID_MAX], uint64_t mailbox_id);
void rados_oid_record(char oid[RADOS_OID_MAX], uint64_t record);
void rados_key_uid(char key[16], char prefix, uint32_t uid);

void rados_hdr_format(const struct rados_hdr *h, char *out, size_t size);
/* Reads mailbox MAILBOX_ID's header: 1 found (*TEXT set when not NULL), 0
 * none (or being deleted). */
int rados_hdr_read(struct rados_store *rs, uint64_t mailbox_id, struct rados_hdr *h_r,
		   char text_r[128], const char **error_r);
/* The same, and a mailbox being deleted is found too. */
int rados_hdr_read_any(struct rados_store *rs, uint64_t mailbox_id, struct rados_hdr *h_r,
		       char text_r[128], const char **error_r);
/* Adds a guarded header update to OP: compares OLD_TEXT, sets NEW. */
void rados_hdr_guard(rados_write_op_t op, const char *old_text, const struct rados_hdr *h,
		     char new_text[128]);

void rados_entry_pack(const struct rados_entry *e, struct buf *out);
int rados_entry_unpack(const void *data, size_t len, struct rados_entry *e);
/* Reads the index entries of MAILBOX_ID with uid in [UID_MIN, UID_MAX]
 * (without metadata) into *ENTRIES_R. */
int rados_entries_read(struct rados_store *rs, uint64_t mailbox_id, uint32_t uid_min,
		       uint32_t uid_max, struct rados_entry **entries_r, size_t *count_r,
		       const char **error_r);
void rados_entries_free(struct rados_entry *entries, size_t count);
/* The tombstones of MAILBOX_ID with modseq > MODSEQ_MIN, in UID order. */
int rados_expunged_scan(struct store *s, uint64_t mailbox_id, uint64_t modseq_min, store_uid_fn *fn,
			void *ctx, const char **error_r);
/* Adds DELTA to the references of RECORD; removes it when none are left. */
int rados_record_ref(struct rados_store *rs, uint64_t record, int delta, const char **error_r);
/* The mailboxes of ACCOUNT_ID (ids). */
int rados_account_mailboxes(struct rados_store *rs, uint64_t account_id, uint64_t **ids_r,
			    size_t *count_r, const char **error_r);
uint64_t rados_random_u64(void);

/* Waits until every notification RS sent has completed: 0, or -1 when
 * some are still pending after their timeout and a margin. */
int rados_notify_drain(struct rados_store *rs);

/* store-rados-ops.c */
int rados_account_create(struct store *s, struct store_account *acct, const char **error_r);
int rados_account_get(struct store *s, const uint8_t addr_hash[STORE_ADDR_HASH_BYTES],
		      struct store_account *acct_r, const char **error_r);
int rados_account_set_wrapped(struct store *s, uint64_t account_id, const struct buf *password,
			      const struct buf *recovery, const char **error_r);
int rados_account_delete(struct store *s, uint64_t account_id, const char **error_r);
int rados_account_usage(struct store *s, uint64_t account_id, uint64_t *messages_r,
			uint64_t *bytes_r, const char **error_r);
int rados_mailbox_create(struct store *s, uint64_t account_id, enum store_role role,
			 const struct buf *name_sealed, struct store_mailbox *box_r,
			 const char **error_r);
int rados_mailbox_list(struct store *s, uint64_t account_id, struct store_mailbox **boxes_r,
		       size_t *count_r, const char **error_r);
int rados_mailbox_get_role(struct store *s, uint64_t account_id, enum store_role role,
			   struct store_mailbox *box_r, const char **error_r);
int rados_mailbox_get(struct store *s, uint64_t account_id, uint64_t mailbox_id,
		      struct store_mailbox *box_r, const char **error_r);

/* store-rados-record.c */
int rados_record_begin(struct store *s, struct store_record_writer **w_r, const char **error_r);
int rados_record_write(struct store_record_writer *w, const void *data, size_t len,
		       const char **error_r);
void rados_record_commit(struct store_record_writer **w, const struct store_message *msg,
			 store_commit_fn *done, void *ctx);
void rados_record_abort(struct store_record_writer **w);
int rados_record_read(struct store *s, uint64_t message_id, store_bytes_fn *fn, void *ctx,
		      const char **error_r);
void *rados_committer_main(void *arg);

/* store-rados-mail.c */
struct rados_entries {
	struct rados_entry *e;
	size_t n, cap;
	struct buf *meta; /* parallel to e, when metadata is read */
};
/* The existing index entries of UIDS (sorted by uid). */
int rados_entries_get(struct rados_store *rs, uint64_t mailbox_id, const uint32_t *uids,
		      size_t count, struct rados_entries *c, const char **error_r);
/* Reads the sealed metadata of C's entries into C->meta. */
int rados_metas_get(struct rados_store *rs, uint64_t mailbox_id, struct rados_entries *c,
		    const char **error_r);
void rados_entries_clear(struct rados_entries *c);
int rados_message_list(struct store *s, uint64_t mailbox_id, uint32_t uid_min, store_message_fn *fn,
		       void *ctx, const char **error_r);
int rados_mailbox_delete(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			 const char **error_r);
int rados_mailbox_update(struct store *s, uint64_t account_id, uint64_t mailbox_id,
			 const struct buf *name_sealed, int subscribed, const char **error_r);
int rados_mailbox_set_uids(struct store *s, uint64_t mailbox_id, uint32_t uidvalidity,
			   uint32_t uidnext, uint64_t highestmodseq, const char **error_r);
int rados_message_scan(struct store *s, uint64_t mailbox_id, uint32_t uid_min, uint32_t uid_max,
		       uint64_t modseq_min, int with_meta, store_message_fn *fn, void *ctx,
		       const char **error_r);

/* store-rados-flags.c */
int rados_message_set_flags(struct store *s, uint64_t mailbox_id, const struct store_flag_update *u,
			    store_message_fn *fn, void *ctx, const char **error_r);
int rados_message_expunge(struct store *s, uint64_t mailbox_id, const uint32_t *uids, size_t count,
			  const char **error_r);
int rados_message_copy(struct store *s, uint64_t src_mailbox_id, const uint32_t *uids, size_t count,
		       uint64_t dst_mailbox_id, int move, uint32_t *dst_uids_r,
		       const char **error_r);

/* store-rados-watch.c */
int rados_change_watch(struct store *s, uint64_t account_id, store_change_fn *fn, void *ctx,
		       struct store_watch **w_r, const char **error_r);
void rados_change_unwatch(struct store *s, struct store_watch **w);
void rados_change_notify(struct store *s, uint64_t account_id, uint64_t mailbox_id);

#endif

/* tlog.h — the transparency log: an append-only Merkle log of canonical JSON
 * events with signed checkpoints.
 *
 * Trust boundary: everything written here is public by design. Entries must
 * never name an account (callers pass per-account random tags) and never
 * carry message content. The log's Ed25519 signing key is the only secret;
 * it is read from its key file at open and wiped at close.
 *
 * Formats (interoperable with Go's golang.org/x/mod/sumdb/{tlog,note}):
 *   leaf hash   SHA-256(0x00 || entry), node hash SHA-256(0x01 || l || r),
 *               empty tree SHA-256("") (RFC 6962 / RFC 9162 section 2.1)
 *   checkpoint  "ORIGIN\nSIZE\nBASE64(ROOT)\n" (C2SP tlog-checkpoint)
 *   signed note TEXT "\n" "\u2014 NAME BASE64(KEYID || SIG)\n" (C2SP
 *               signed-note, Ed25519; NAME is the log origin)
 *   verifier    "NAME+HHHHHHHH+BASE64(0x01 || PK)"
 *
 * Storage: DIR/log.db, SQLite in WAL mode with synchronous=FULL. A signed
 * checkpoint is stored in the same transaction as every appended entry (and
 * one for size 0 when the log is created), so the stored checkpoints cover
 * every size the log ever had and any later edit, deletion, reordering or
 * truncation contradicts one of them. */
#ifndef SEALMAIL_TLOG_H
#define SEALMAIL_TLOG_H

#include "lib/lib.h"

#define TLOG_HASH_BYTES 32
/* Longest proof for any tree of at most 2^64 leaves, with room to spare. */
#define TLOG_PROOF_MAX 72
/* Largest canonical JSON entry accepted. */
#define TLOG_ENTRY_MAX (64 * 1024)
/* Longest log origin (= signing key name). */
#define TLOG_ORIGIN_MAX 255
#define TLOG_DB_NAME    "log.db"

/* ---- Merkle tree hashing (tlog-merkle.c) ---------------------------------- */
void tlog_leaf_hash(const void *data, size_t len, uint8_t out[TLOG_HASH_BYTES]);
void tlog_node_hash(const uint8_t left[TLOG_HASH_BYTES], const uint8_t right[TLOG_HASH_BYTES],
		    uint8_t out[TLOG_HASH_BYTES]);

struct tlog_proof {
	size_t count;
	uint8_t hash[TLOG_PROOF_MAX][TLOG_HASH_BYTES];
};

/* An in-memory tree over leaf hashes. It keeps the hash of every complete,
 * aligned power-of-two subtree, so a root or a proof for any size costs
 * O(log^2 n) hashes at most, and appending costs O(1) amortised. */
struct tlog_tree;
struct tlog_tree *tlog_tree_new(void);
void tlog_tree_free(struct tlog_tree **t);
uint64_t tlog_tree_size(const struct tlog_tree *t);
void tlog_tree_append(struct tlog_tree *t, const uint8_t leaf_hash[TLOG_HASH_BYTES]);
/* Drops leaves so that SIZE remain (SIZE <= current size). */
void tlog_tree_truncate(struct tlog_tree *t, uint64_t size);
/* Leaf hash at INDEX (< size). */
const uint8_t *tlog_tree_leaf(const struct tlog_tree *t, uint64_t index);
/* Root of the first SIZE leaves; -1 if SIZE exceeds the tree. */
int tlog_tree_root(const struct tlog_tree *t, uint64_t size, uint8_t out[TLOG_HASH_BYTES],
		   const char **error_r) WARN_UNUSED;
/* RFC 9162 2.1.3.1 audit path for leaf INDEX in the tree of the first SIZE
 * leaves (INDEX < SIZE <= tree size). */
int tlog_tree_prove_inclusion(const struct tlog_tree *t, uint64_t index, uint64_t size,
			      struct tlog_proof *proof_r, const char **error_r) WARN_UNUSED;
/* RFC 9162 2.1.4.1 consistency proof from OLD_SIZE to NEW_SIZE
 * (0 < OLD_SIZE <= NEW_SIZE <= tree size; equal sizes give an empty proof). */
int tlog_tree_prove_consistency(const struct tlog_tree *t, uint64_t old_size, uint64_t new_size,
				struct tlog_proof *proof_r, const char **error_r) WARN_UNUSED;

/* RFC 9162 2.1.3.2. Returns 0 if LEAF is at INDEX in the tree of SIZE leaves
 * whose root is ROOT, else -1. */
int tlog_verify_inclusion(const uint8_t leaf[TLOG_HASH_BYTES], uint64_t index, uint64_t size,
			  const struct tlog_proof *proof,
			  const uint8_t root[TLOG_HASH_BYTES]) WARN_UNUSED;
/* RFC 9162 2.1.4.2. Returns 0 if the tree of OLD_SIZE leaves with root
 * OLD_ROOT is a prefix of the tree of NEW_SIZE leaves with root NEW_ROOT.
 * Equal sizes need an empty proof and equal roots; OLD_SIZE 0 needs an empty
 * proof and the empty-tree root. */
int tlog_verify_consistency(uint64_t old_size, uint64_t new_size,
			    const uint8_t old_root[TLOG_HASH_BYTES],
			    const uint8_t new_root[TLOG_HASH_BYTES],
			    const struct tlog_proof *proof) WARN_UNUSED;

/* ---- signed notes and checkpoints (tlog-note.c) --------------------------- */
/* A valid key name (= log origin): non-empty UTF-8 of at most TLOG_ORIGIN_MAX
 * bytes, no spaces, control characters or '+'. */
int tlog_note_name_valid(const char *name);
/* First 4 bytes (big-endian) of SHA-256(NAME || "\n" || 0x01 || PK). */
uint32_t tlog_note_key_id(const char *name, const uint8_t pk[32]);
/* "NAME+HHHHHHHH+BASE64(0x01 || PK)", malloc'd. */
char *tlog_note_verifier_key(const char *name, const uint8_t pk[32]);
/* Parses and checks a verifier key string; *name_r is malloc'd. */
int tlog_note_parse_verifier(const char *vkey, char **name_r, uint8_t pk_r[32],
			     const char **error_r) WARN_UNUSED;
/* Appends TEXT (UTF-8, ending in "\n", no blank line) and one Ed25519
 * signature line by NAME to NOTE_R. */
int tlog_note_sign(const void *text, size_t len, const char *name, const uint8_t sk[64],
		   struct buf *note_r, const char **error_r) WARN_UNUSED;
/* Parses NOTE and checks the signature by (NAME, PK). Signatures by other
 * keys are ignored; the note is rejected if it is malformed, if the signature
 * by this key is invalid, or if there is none. *text_len_r is the length of
 * the signed text, which starts at NOTE. */
int tlog_note_open(const void *note, size_t len, const char *name, const uint8_t pk[32],
		   size_t *text_len_r, const char **error_r) WARN_UNUSED;

/* Appends the checkpoint body for (ORIGIN, SIZE, ROOT) to TEXT_R. */
int tlog_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[TLOG_HASH_BYTES],
			   struct buf *text_r) WARN_UNUSED;
/* Parses a checkpoint body; its origin line must equal ORIGIN. Extension
 * lines after the root are allowed and ignored. */
int tlog_checkpoint_parse(const void *text, size_t len, const char *origin, uint64_t *size_r,
			  uint8_t root_r[TLOG_HASH_BYTES], const char **error_r) WARN_UNUSED;
/* tlog_note_open() + tlog_checkpoint_parse() with the origin as key name. */
int tlog_checkpoint_open(const void *note, size_t len, const char *origin, const uint8_t pk[32],
			 uint64_t *size_r, uint8_t root_r[TLOG_HASH_BYTES],
			 const char **error_r) WARN_UNUSED;

/* ---- canonical JSON entries (tlog-json.c) --------------------------------- */
/* Encodes FIELDS (NULL-terminated key, value, ... strings) as one JSON object:
 * keys sorted bytewise, no whitespace, '"' '\\' escaped and control
 * characters as \u00xx. Keys must be non-empty, unique, valid UTF-8; values
 * valid UTF-8. Appends to OUT. */
int tlog_json_encode(const char *const *fields, struct buf *out, const char **error_r) WARN_UNUSED;
/* Decodes a flat JSON object of string values into a malloc'd
 * NULL-terminated key, value, ... array (free with tlog_json_fields_free). */
int tlog_json_decode(const void *json, size_t len, char ***fields_r,
		     const char **error_r) WARN_UNUSED;
/* tlog_json_decode() for documents around entries (a bundle's log.json, the
 * output of `log prove-inclusion`): a value may also be a non-negative
 * integer, decoded to its digits, or an array of strings without spaces,
 * decoded to them joined by single spaces. */
int tlog_json_decode_doc(const void *json, size_t len, char ***fields_r,
			 const char **error_r) WARN_UNUSED;
void tlog_json_fields_free(char ***fields);
/* Looks KEY up in a decoded field array; NULL if absent. */
const char *tlog_json_field(char *const *fields, const char *key);
int tlog_utf8_valid(const void *data, size_t len);

/* ---- the log (tlog-store.c: open, append; tlog-query.c: read, prove, verify) */
/* Errors from calls on a struct tlog point into it and stay valid until the
 * next call on the same handle. */
struct tlog;
/* Opens (creating if needed) the log in DIR. KEY_PATH holds the 64-byte
 * Ed25519 secret key written by tlog_keygen(); it must not be readable by
 * group or others. A new log records ORIGIN and the public key; an existing
 * log refuses a different origin or key. */
int tlog_open(const char *dir, const char *origin, const char *key_path, struct tlog **log_r,
	      const char **error_r) WARN_UNUSED;
/* Writes a new key file (mode 0600, atomically); refuses to overwrite one. */
int tlog_keygen(const char *key_path, const char **error_r) WARN_UNUSED;
void tlog_close(struct tlog **log);

/* Appends the event {"type": TYPE, "time": now, FIELDS...} (see
 * tlog_json_encode; FIELDS may be NULL and may not use "type" or "time") and
 * a signed checkpoint for the new size, in one transaction that is on disk
 * before this returns. Refuses to extend a log whose leaves do not match its
 * last checkpoint. */
int tlog_append(struct tlog *log, const char *type, const char *const *fields, uint64_t *index_r,
		const char **error_r) WARN_UNUSED;
/* Number of entries (re-read from the database, so appends by other
 * processes are seen). */
uint64_t tlog_size(struct tlog *log);
/* Replaces JSON_R's contents with the entry's exact bytes. */
int tlog_entry(struct tlog *log, uint64_t index, struct buf *json_r,
	       const char **error_r) WARN_UNUSED;
/* Calls FN for each entry from index FROM on, in order, until FN returns
 * non-zero (which stops the walk and is returned). */
typedef int tlog_entry_fn(void *ctx, uint64_t index, const uint8_t *json, size_t len);
int tlog_foreach(struct tlog *log, uint64_t from, tlog_entry_fn *fn, void *ctx,
		 const char **error_r) WARN_UNUSED;

/* Replaces NOTE_R's contents with the signed checkpoint for the current size
 * / for SIZE (any size the log has had). */
int tlog_checkpoint(struct tlog *log, struct buf *note_r, const char **error_r) WARN_UNUSED;
int tlog_checkpoint_at(struct tlog *log, uint64_t size, struct buf *note_r,
		       const char **error_r) WARN_UNUSED;
/* Root of the first SIZE entries. */
int tlog_root(struct tlog *log, uint64_t size, uint8_t root_r[TLOG_HASH_BYTES],
	      const char **error_r) WARN_UNUSED;
/* Proofs against the tree of SIZE / NEW_SIZE entries; each proof is checked
 * against the stored checkpoint for that size before it is returned. */
int tlog_prove_inclusion(struct tlog *log, uint64_t index, uint64_t size,
			 uint8_t leaf_r[TLOG_HASH_BYTES], uint8_t root_r[TLOG_HASH_BYTES],
			 struct tlog_proof *proof_r, const char **error_r) WARN_UNUSED;
int tlog_prove_consistency(struct tlog *log, uint64_t old_size, uint64_t new_size,
			   uint8_t old_root_r[TLOG_HASH_BYTES], uint8_t new_root_r[TLOG_HASH_BYTES],
			   struct tlog_proof *proof_r, const char **error_r) WARN_UNUSED;
/* The verifier key string for this log (malloc'd). */
char *tlog_verifier_key(struct tlog *log);
const char *tlog_origin(const struct tlog *log);

/* Rechecks the whole log from the database: entries are numbered 0..n-1
 * without gaps, every stored leaf hash equals the hash of the stored bytes,
 * every stored checkpoint is signed by this log's key for its origin and its
 * root equals the recomputed root at its size, and the newest checkpoint is
 * for size n. Fails on any edit, deletion, reordering or truncation of
 * entries that leaves a signed checkpoint behind. */
int tlog_verify(struct tlog *log, const char **error_r) WARN_UNUSED;
/* tlog_verify(), and then against NOTE, a signed checkpoint published
 * earlier: it must be signed by this log's key for its origin, the log must
 * have at least its size, and the root of that many entries must be its
 * root. This catches what tlog_verify() alone cannot: a rollback that
 * deleted the newest entries together with their stored checkpoints. */
int tlog_verify_published(struct tlog *log, const void *note, size_t len,
			  const char **error_r) WARN_UNUSED;

#endif

/* seal.h — account keys and sealed message records.
 *
 * Trust boundary: this is the only module that sees key material and the only
 * one that includes <sodium.h>. Everything it hands to other modules is either
 * ciphertext (safe to store anywhere) or plaintext that the caller obtained by
 * presenting the account's unlocked key. Function prefix is seal_ (libsodium
 * owns crypto_). Byte-level format: docs/format.md.
 *
 * Record layout (SEAL_HEADER_BYTES header, then the body):
 *   header  = magic "SMR" | version | flags u8 | 3 reserved bytes |
 *             epoch public key (32) | nonce (24) | wrapped content key (48)
 *   body    = version 1: secretstream header (24) | chunks of SEAL_CHUNK_BYTES
 *             plaintext + 17 bytes each; the last (possibly empty) TAG_FINAL.
 *             version 2: AES-256-GCM chunks of SEAL_CHUNK_BYTES plaintext +
 *             16 bytes each; the last one shorter (possibly empty).
 *   meta    = stored apart (in the index): header | nonce (24) | AEAD(meta)
 */
#ifndef SEALMAIL_SEAL_H
#define SEALMAIL_SEAL_H

#include "lib/lib.h"

#define SEAL_PK_BYTES             32
#define SEAL_KEY_BYTES            32
#define SEAL_HASH_BYTES           32
#define SEAL_TAG_BYTES            16
#define SEAL_HEADER_BYTES         112
#define SEAL_STREAM_HEADER_BYTES  24
#define SEAL_CHUNK_BYTES          65536
#define SEAL_CHUNK_OVERHEAD_BYTES 17
/* A recovery code: 8 groups of 4 base32 characters joined by '-' + NUL. */
#define SEAL_RECOVERY_CODE_MAX 48

int seal_init(void) WARN_UNUSED;

/* ---- random and hashing -------------------------------------------------- */
void seal_random(void *buf, size_t len);
/* Keyed BLAKE2b-256 of DATA under KEY (32 bytes): names that must not reveal
 * an address (file names, directory keys, object names). */
void seal_keyed_hash(const uint8_t key[SEAL_KEY_BYTES], const void *data, size_t len,
		     uint8_t out[SEAL_HASH_BYTES]);
/* Constant-time comparison; 0 if equal. */
int seal_memcmp(const void *a, const void *b, size_t len);

/* ---- secret-key box for small server-held secrets (e.g. the address list) --
 * out = nonce (24) | XChaCha20-Poly1305 ciphertext; *out_r is malloc'd. */
int seal_secretbox_encrypt(const uint8_t key[SEAL_KEY_BYTES], const void *plain, size_t len,
			   uint8_t **out_r, size_t *out_len_r) WARN_UNUSED;
int seal_secretbox_decrypt(const uint8_t key[SEAL_KEY_BYTES], const uint8_t *in, size_t len,
			   uint8_t **plain_r, size_t *plain_len_r) WARN_UNUSED;

/* ---- account keys ---------------------------------------------------------
 * A keypair's secret half lives in sodium_malloc'd (guarded, mlocked,
 * MADV_DONTDUMP) memory and is wiped by seal_keypair_free(). */
struct seal_keypair;
int seal_keypair_generate(struct seal_keypair **kp_r) WARN_UNUSED;
const uint8_t *seal_keypair_public(const struct seal_keypair *kp);
void seal_keypair_free(struct seal_keypair **kp);

/* Argon2id cost; defaults are libsodium's INTERACTIVE limits. Tests may lower
 * them through SEALMAIL_ARGON2_OPS / SEALMAIL_ARGON2_MEM (bytes). */
struct seal_kdf_params {
	uint64_t opslimit;
	uint64_t memlimit;
};
void seal_kdf_params_default(struct seal_kdf_params *p_r);

/* Wraps KP's secret key under Argon2id(SECRET, random salt). The blob is
 * self-describing (format version, algorithm, opslimit, memlimit, salt, nonce,
 * ciphertext) so parameters can be raised later. *blob_r is malloc'd. */
int seal_key_wrap(const struct seal_keypair *kp, const char *secret, size_t secret_len,
		  const struct seal_kdf_params *params, uint8_t **blob_r, size_t *blob_len_r,
		  const char **error_r) WARN_UNUSED;
/* Unwraps BLOB with SECRET; checks the secret key matches PUBLIC_KEY.
 * Returns 0, or -1 with *error_r = "wrong password" (or a format error). */
int seal_key_unwrap(const uint8_t *blob, size_t blob_len, const char *secret, size_t secret_len,
		    const uint8_t public_key[SEAL_PK_BYTES], struct seal_keypair **kp_r,
		    const char **error_r) WARN_UNUSED;

/* A one-time recovery code, 160 random bits in base32 groups:
 * "ABCD-EFGH-...". */
void seal_recovery_code_generate(char code_r[SEAL_RECOVERY_CODE_MAX]);
/* Canonical form of a typed code (upper case, dashes and spaces dropped, then
 * regrouped) so that "abcd efgh..." unwraps too. -1 if not a code. */
int seal_recovery_code_normalize(const char *in, char out_r[SEAL_RECOVERY_CODE_MAX]) WARN_UNUSED;

/* ---- the body cipher of new records ----------------------------------------
 * Readers open both format versions; writers use one, for the whole process:
 * AES-256-GCM (version 2) where the CPU runs it (AES-NI and PCLMUL), the
 * faster one there, else XChaCha20-Poly1305 (version 1), which any CPU
 * opens. A version 2 record can only be opened on a CPU that runs
 * AES-256-GCM: a store shared with machines that cannot must be written as
 * version 1 (docs/format.md). */
enum seal_record_cipher {
	SEAL_CIPHER_AUTO,
	SEAL_CIPHER_XCHACHA20POLY1305,
	SEAL_CIPHER_AES256GCM,
};
/* "auto", "xchacha20poly1305" or "aes256gcm"; -1 for anything else. */
int seal_record_cipher_parse(const char *name, enum seal_record_cipher *c_r) WARN_UNUSED;
/* Sets the cipher of the records this process writes from now on. -1 with
 * *error_r when AES-256-GCM is asked for and this CPU cannot run it. Called
 * at start, before any writer exists. */
int seal_set_record_cipher(enum seal_record_cipher c, const char **error_r) WARN_UNUSED;
/* The cipher new records get: "aes256gcm" or "xchacha20poly1305". */
const char *seal_record_cipher_name(void);

/* ---- sealing (writer side: needs only the recipient's public key) ---------
 * A sender is one delivery epoch for one recipient: one X25519 key agreement
 * (crypto_kx) with a fresh ephemeral key, reused for every message sealed to
 * that recipient until seal_sender_expired(). Each message still gets its own
 * random content key, wrapped under the epoch key. */
struct seal_sender;
int seal_sender_new(const uint8_t recipient_pk[SEAL_PK_BYTES],
		    struct seal_sender **s_r) WARN_UNUSED;
/* True when the sender is older than MAX_AGE_SECS or sealed MAX_MESSAGES. */
int seal_sender_expired(const struct seal_sender *s, uint64_t max_age_secs, uint64_t max_messages);
void seal_sender_free(struct seal_sender **s);

/* Receives sealed bytes in order; returns 0 or -1 (aborts the writer). */
typedef int seal_sink_fn(void *ctx, const uint8_t *data, size_t len);

struct seal_writer;
/* Starts a record: emits the header and stream header to SINK at once. */
int seal_writer_begin(struct seal_sender *s, seal_sink_fn *sink, void *sink_ctx,
		      struct seal_writer **w_r, const char **error_r) WARN_UNUSED;
/* Seals plaintext as it arrives; holds at most one chunk. */
int seal_writer_write(struct seal_writer *w, const void *data, size_t len,
		      const char **error_r) WARN_UNUSED;
/* Emits the final chunk. After this, only seal_writer_seal_meta and _free. */
int seal_writer_finish(struct seal_writer *w, const char **error_r) WARN_UNUSED;
/* Seals the metadata part under the same content key: header|nonce|AEAD(meta)
 * with the header as associated data. *out_r is malloc'd. */
int seal_writer_seal_meta(struct seal_writer *w, const void *meta, size_t meta_len, uint8_t **out_r,
			  size_t *out_len_r, const char **error_r) WARN_UNUSED;
/* Seals a small standalone blob (e.g. a mailbox name) with a fresh content key:
 * header | nonce | AEAD(data). Opened by seal_blob_open(). */
int seal_blob_seal(struct seal_sender *s, const void *data, size_t len, uint8_t **out_r,
		   size_t *out_len_r, const char **error_r) WARN_UNUSED;
/* Total sealed bytes emitted so far (header included). */
uint64_t seal_writer_sealed_size(const struct seal_writer *w);
/* Wipes the content key and frees. */
void seal_writer_free(struct seal_writer **w);

/* ---- opening (reader side: needs the unlocked keypair) --------------------
 * An opener caches the epoch keys it derived (a small LRU in secure memory),
 * so opening many messages of one epoch costs one X25519. Readers and blob
 * opens on several threads may share one opener. */
struct seal_opener;
int seal_opener_new(const struct seal_keypair *kp, struct seal_opener **o_r) WARN_UNUSED;
void seal_opener_free(struct seal_opener **o);

/* Opens a metadata part or a small blob (same layout); *plain_r is malloc'd
 * (mem_wipe it before free). -1 if not sealed to this key or modified. */
int seal_blob_open(struct seal_opener *o, const uint8_t *sealed, size_t len, uint8_t **plain_r,
		   size_t *plain_len_r, const char **error_r) WARN_UNUSED;

/* Streaming reader: feed sealed bytes in any split; plaintext goes to SINK as
 * each chunk verifies. seal_reader_finish() fails unless the final chunk was
 * seen and nothing follows it (truncation, reordering, appended bytes and any
 * flipped bit are all errors). */
struct seal_reader;
int seal_reader_begin(struct seal_opener *o, seal_sink_fn *sink, void *sink_ctx,
		      struct seal_reader **r_r) WARN_UNUSED;
int seal_reader_write(struct seal_reader *r, const void *data, size_t len,
		      const char **error_r) WARN_UNUSED;
int seal_reader_finish(struct seal_reader *r, const char **error_r) WARN_UNUSED;
/* Wipes R's state and makes it ready for another record of the same opener,
 * to SINK (cheaper than free + begin: no guarded allocation). */
void seal_reader_reset(struct seal_reader *r, seal_sink_fn *sink, void *sink_ctx);
/* Opens each chunk straight into the caller's memory instead of the reader's
 * own buffer (one copy less): DEST(sink_ctx, n) returns where the next n
 * plaintext bytes may go, or NULL to fail. No unverified plaintext is left
 * there (a chunk that fails leaves those bytes as they were or zeroed); the
 * sink is then called with that same pointer. Until the next
 * seal_reader_reset(). */
typedef uint8_t *seal_dest_fn(void *sink_ctx, size_t n);
void seal_reader_set_dest(struct seal_reader *r, seal_dest_fn *dest);
void seal_reader_free(struct seal_reader **r);

/* ---- signatures (transparency log, export manifests) ---------------------- */
#define SEAL_SIGN_PK_BYTES 32
#define SEAL_SIGN_SK_BYTES 64
#define SEAL_SIGN_BYTES    64
void seal_sign_keypair(uint8_t pk_r[SEAL_SIGN_PK_BYTES], uint8_t sk_r[SEAL_SIGN_SK_BYTES]);
void seal_sign(const uint8_t sk[SEAL_SIGN_SK_BYTES], const void *msg, size_t len,
	       uint8_t sig_r[SEAL_SIGN_BYTES]);
int seal_sign_verify(const uint8_t pk[SEAL_SIGN_PK_BYTES], const void *msg, size_t len,
		     const uint8_t sig[SEAL_SIGN_BYTES]) WARN_UNUSED;
void seal_sha256(const void *data, size_t len, uint8_t out[32]);
/* Incremental SHA-256 for Merkle hashing with prefixes. */
struct seal_sha256_state {
	uint8_t opaque[128];
};
void seal_sha256_init(struct seal_sha256_state *st);
void seal_sha256_update(struct seal_sha256_state *st, const void *data, size_t len);
void seal_sha256_final(struct seal_sha256_state *st, uint8_t out[32]);
/* Standard base64 with padding; *out_r malloc'd NUL-terminated. */
char *seal_base64_encode(const void *data, size_t len);
int seal_base64_decode(const char *in, uint8_t **out_r, size_t *out_len_r) WARN_UNUSED;

#endif

/* seal-record.c — sealed message records: delivery epochs, the streaming
 * writer, the metadata part and small blobs, and the streaming reader.
 *
 * Trust boundary: the writer side holds only the recipient's public key and
 * the current epoch's send key; it turns plaintext into records that need the
 * account's secret key to open. The reader side faces bytes from storage,
 * which may have been altered by anyone with disk access: every byte is
 * authenticated before the plaintext it protects is handed on, memory use is
 * bounded by one chunk whatever the input, and any alteration, truncation,
 * reordering or appended data is an error. A reader's sink may already have
 * received verified chunks when a later one fails; callers discard the output
 * of a failed read. A reader uses its opener until the header is read, so the
 * opener must outlive it. Senders, writers, openers and readers are not
 * thread-safe; each belongs to one thread at a time.
 *
 * Layout (docs/format.md has the byte-level description):
 *   header (112) = "SMR" | version | flags 0 | 3 zero bytes |
 *                  epoch public key (32) | nonce (24) | wrapped content key (48)
 *   wrapped K    = XChaCha20-Poly1305-IETF(K, ad = header[0..40), nonce,
 *                  key = epoch key)
 *   body, version 1 = secretstream header (24) | secretstream chunks under
 *                  KDF(K, 1, "smbody01"), the header as associated data of
 *                  the first chunk
 *   body, version 2 = chunks of AES-256-GCM under the same body key, each
 *                  with the header as associated data and the nonce
 *                  chunk index (11 bytes) | 1 on the last chunk, else 0
 *   meta / blob  = header | nonce (24) | XChaCha20-Poly1305-IETF(data,
 *                  ad = header, key = KDF(K, 2, "smmeta01"))
 * The epoch key is crypto_kx's client tx key of a fresh ephemeral keypair
 * against the recipient's public key, i.e. the account's server rx key. */
#include "crypto/seal-private.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEAL_RECORD_MAGIC  "SMR"
#define SEAL_RECORD_V1     0x01 /* body: secretstream (XChaCha20-Poly1305) */
#define SEAL_RECORD_V2     0x02 /* body: AES-256-GCM chunks */
#define HDR_OFF_VERSION    3
#define HDR_OFF_FLAGS      4
#define HDR_OFF_RESERVED   5
#define HDR_RESERVED_BYTES 3
#define HDR_OFF_EPOCH_PK   8
#define HDR_OFF_NONCE      (HDR_OFF_EPOCH_PK + SEAL_PK_BYTES)
#define HDR_OFF_WRAPPED    (HDR_OFF_NONCE + AEAD_NONCE_BYTES)
#define HDR_WRAP_AD_BYTES  HDR_OFF_NONCE
#define HDR_WRAPPED_BYTES  (SEAL_KEY_BYTES + AEAD_TAG_BYTES)

#define AEAD_NONCE_BYTES    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_TAG_BYTES      crypto_aead_xchacha20poly1305_ietf_ABYTES
#define BLOB_OVERHEAD_BYTES (SEAL_HEADER_BYTES + AEAD_NONCE_BYTES + AEAD_TAG_BYTES)
#define PREFIX_BYTES        (SEAL_HEADER_BYTES + SEAL_STREAM_HEADER_BYTES)
#define CIPHER_CHUNK_BYTES  (SEAL_CHUNK_BYTES + SEAL_CHUNK_OVERHEAD_BYTES)
#define GCM_NONCE_BYTES     crypto_aead_aes256gcm_NPUBBYTES
#define GCM_TAG_BYTES       crypto_aead_aes256gcm_ABYTES
#define GCM_CHUNK_BYTES     (SEAL_CHUNK_BYTES + GCM_TAG_BYTES)

#define KDF_ID_BODY  1
#define KDF_ID_META  2
#define KDF_CTX_BODY "smbody01"
#define KDF_CTX_META "smmeta01"

#define OPENER_CACHE_MAX 64

#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL   crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(HDR_OFF_WRAPPED + HDR_WRAPPED_BYTES == SEAL_HEADER_BYTES, "header layout");
_Static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == SEAL_STREAM_HEADER_BYTES,
	       "stream header size");
_Static_assert(crypto_secretstream_xchacha20poly1305_ABYTES == SEAL_CHUNK_OVERHEAD_BYTES,
	       "chunk overhead");
_Static_assert(crypto_kx_SESSIONKEYBYTES == SEAL_KEY_BYTES, "epoch key size");
_Static_assert(crypto_aead_aes256gcm_KEYBYTES == SEAL_KEY_BYTES, "body key size");
_Static_assert(GCM_TAG_BYTES == SEAL_TAG_BYTES, "chunk tag size");
_Static_assert(GCM_CHUNK_BYTES < CIPHER_CHUNK_BYTES, "a version 1 chunk is the larger");
_Static_assert(sizeof(KDF_CTX_BODY) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");
_Static_assert(sizeof(KDF_CTX_META) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");

static const char err_sink[] = "writing the sealed record failed";
static const char err_not_record[] = "not a sealed record";
static const char err_version[] = "unsupported sealed record version";
static const char err_flags[] = "unsupported sealed record flags";
static const char err_not_ours[] = "record not sealed to this key, or modified";
static const char err_modified[] = "sealed record modified or corrupt";
static const char err_truncated[] = "sealed record truncated";
static const char err_trailing[] = "data after the end of the sealed record";
static const char err_state[] = "sealed record stream already ended";
static const char err_failed[] = "sealed record stream already failed";
static const char err_no_aes[] =
    "sealed record uses AES-256-GCM, which this CPU cannot run (no AES-NI and PCLMUL)";

/* The body cipher of new records: SEAL_RECORD_V1 or SEAL_RECORD_V2, chosen
 * by seal_init() (auto) and seal_set_record_cipher(), both at start before
 * any writer exists; 0 before either (writers then choose auto). */
static int record_version;

struct seal_sender {
	uint8_t epoch_key[SEAL_KEY_BYTES];
	uint8_t epoch_pk[SEAL_PK_BYTES];
	uint64_t created_ns;
	uint64_t messages;
};

struct seal_writer {
	crypto_aead_aes256gcm_state gcm;                    /* version 2 */
	crypto_secretstream_xchacha20poly1305_state stream; /* version 1 */
	uint64_t chunk_index;
	uint8_t content_key[SEAL_KEY_BYTES];
	uint8_t header[SEAL_HEADER_BYTES];
	seal_sink_fn *sink;
	void *sink_ctx;
	uint8_t *plain; /* SEAL_CHUNK_BYTES, plaintext not yet sealed */
	size_t plain_len;
	size_t plain_used; /* bytes of PLAIN ever written: what to wipe */
	uint8_t *cipher;   /* CIPHER_CHUNK_BYTES */
	uint64_t sealed_size;
	uint8_t version;
	bool first_chunk_done;
	bool finished;
	bool failed;
};

struct opener_entry {
	uint8_t epoch_pk[SEAL_PK_BYTES];
	uint8_t epoch_key[SEAL_KEY_BYTES];
	uint64_t last_used;
};

struct seal_opener {
	uint8_t pk[SEAL_PK_BYTES];
	uint8_t sk[SEAL_SK_BYTES];
	pthread_mutex_t lock; /* the cache: readers on several threads share it */
	uint64_t clock;
	unsigned int count;
	struct opener_entry cache[OPENER_CACHE_MAX];
};

enum reader_state { READER_PREFIX, READER_CHUNKS, READER_DONE, READER_FAILED };

struct seal_reader {
	crypto_aead_aes256gcm_state gcm;                    /* version 2 */
	crypto_secretstream_xchacha20poly1305_state stream; /* version 1 */
	uint64_t chunk_index;
	uint8_t prefix[PREFIX_BYTES]; /* record header | stream header (version 1) */
	size_t prefix_len, prefix_want;
	size_t chunk_bytes; /* a whole ciphertext chunk of this version */
	struct seal_opener *opener;
	seal_sink_fn *sink;
	seal_dest_fn *dest; /* NULL: chunks are opened into PLAIN */
	void *sink_ctx;
	uint8_t *cipher; /* CIPHER_CHUNK_BYTES, one chunk being received */
	size_t cipher_len;
	uint8_t *plain;    /* SEAL_CHUNK_BYTES */
	size_t plain_used; /* bytes of PLAIN ever written: what to wipe */
	enum reader_state state;
	bool first_chunk_done;
};

/* ---- helpers ------------------------------------------------------------- */

/* sodium_malloc() places the block against the trailing guard page, so its
 * alignment follows the size: round up to keep structs with 64-bit members
 * aligned. Returns zeroed memory, or NULL. */
static void *secure_alloc(size_t size)
{
	void *p;

	size = (size + 15) & ~(size_t)15;
	p = sodium_malloc(size);
	if (p != NULL)
		memset(p, 0, size);
	return p;
}

static void secure_free(void *p, size_t size)
{
	if (p == NULL)
		return;
	sodium_memzero(p, size);
	sodium_free(p);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void derive_key(uint8_t key_r[SEAL_KEY_BYTES], uint64_t id, const char *ctx,
		       const uint8_t content_key[SEAL_KEY_BYTES])
{
	/* Fails only for out-of-range sizes, which are constants here. */
	(void)crypto_kdf_derive_from_key(key_r, SEAL_KEY_BYTES, id, ctx, content_key);
}

/* ---- the body cipher of new records -------------------------------------- */

static int aes_available(void)
{
	return crypto_aead_aes256gcm_is_available();
}

/* The automatic choice: version 2 where this CPU runs AES-256-GCM. */
static int auto_version(void)
{
	return aes_available() ? SEAL_RECORD_V2 : SEAL_RECORD_V1;
}

void seal_record_init(void)
{
	if (record_version == 0)
		record_version = auto_version();
}

int seal_record_cipher_parse(const char *name, enum seal_record_cipher *c_r)
{
	if (strcmp(name, "auto") == 0)
		*c_r = SEAL_CIPHER_AUTO;
	else if (strcmp(name, "xchacha20poly1305") == 0)
		*c_r = SEAL_CIPHER_XCHACHA20POLY1305;
	else if (strcmp(name, "aes256gcm") == 0)
		*c_r = SEAL_CIPHER_AES256GCM;
	else
		return -1;
	return 0;
}

int seal_set_record_cipher(enum seal_record_cipher c, const char **error_r)
{
	switch (c) {
	case SEAL_CIPHER_AUTO:
		record_version = auto_version();
		return 0;
	case SEAL_CIPHER_XCHACHA20POLY1305:
		record_version = SEAL_RECORD_V1;
		return 0;
	case SEAL_CIPHER_AES256GCM:
		if (!aes_available()) {
			*error_r = "this CPU cannot run AES-256-GCM (no AES-NI and PCLMUL)";
			return -1;
		}
		record_version = SEAL_RECORD_V2;
		return 0;
	}
	*error_r = "unknown record cipher";
	return -1;
}

/* What a writer uses: the version set at start, or if none was (no
 * seal_init()), the automatic choice, without storing it. */
static int current_version(void)
{
	int v = record_version;

	return v != 0 ? v : auto_version();
}

const char *seal_record_cipher_name(void)
{
	return current_version() == SEAL_RECORD_V2 ? "aes256gcm" : "xchacha20poly1305";
}

/* The nonce of version 2's chunk INDEX: the index as an 11-byte big-endian
 * number, then 1 on the last chunk and 0 on any other. */
static void gcm_nonce(uint8_t nonce_r[GCM_NONCE_BYTES], uint64_t index, bool last)
{
	memset(nonce_r, 0, GCM_NONCE_BYTES);
	for (int i = 0; i < 8; i++)
		nonce_r[10 - i] = (uint8_t)(index >> (8 * i));
	nonce_r[11] = last ? 1 : 0;
}

/* Builds a new record header of VERSION for S with a fresh content key. */
static void header_build(struct seal_sender *s, int version, uint8_t header_r[SEAL_HEADER_BYTES],
			 uint8_t content_key_r[SEAL_KEY_BYTES])
{
	memset(header_r, 0, SEAL_HEADER_BYTES);
	memcpy(header_r, SEAL_RECORD_MAGIC, 3);
	header_r[HDR_OFF_VERSION] = (uint8_t)version;
	memcpy(header_r + HDR_OFF_EPOCH_PK, s->epoch_pk, SEAL_PK_BYTES);
	randombytes_buf(header_r + HDR_OFF_NONCE, AEAD_NONCE_BYTES);
	randombytes_buf(content_key_r, SEAL_KEY_BYTES);
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(
	    header_r + HDR_OFF_WRAPPED, NULL, content_key_r, SEAL_KEY_BYTES, header_r,
	    HDR_WRAP_AD_BYTES, NULL, header_r + HDR_OFF_NONCE, s->epoch_key);
	s->messages++;
}

/* header | nonce | AEAD(data, ad = header) under the meta key of CONTENT_KEY. */
static int blob_seal(const uint8_t header[SEAL_HEADER_BYTES],
		     const uint8_t content_key[SEAL_KEY_BYTES], const void *data, size_t len,
		     uint8_t **out_r, size_t *out_len_r, const char **error_r)
{
	uint8_t meta_key[SEAL_KEY_BYTES];
	uint8_t *out;

	if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
	    len > SIZE_MAX - BLOB_OVERHEAD_BYTES) {
		*error_r = "data too large to seal";
		return -1;
	}
	out = xmalloc(BLOB_OVERHEAD_BYTES + len);
	memcpy(out, header, SEAL_HEADER_BYTES);
	randombytes_buf(out + SEAL_HEADER_BYTES, AEAD_NONCE_BYTES);
	derive_key(meta_key, KDF_ID_META, KDF_CTX_META, content_key);
	(void)crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_HEADER_BYTES + AEAD_NONCE_BYTES,
							 NULL, data, len, header, SEAL_HEADER_BYTES,
							 NULL, out + SEAL_HEADER_BYTES, meta_key);
	sodium_memzero(meta_key, sizeof(meta_key));
	*out_r = out;
	*out_len_r = BLOB_OVERHEAD_BYTES + len;
	return 0;
}

/* ---- senders (delivery epochs) -------------------------------------------- */

int seal_sender_new(const uint8_t recipient_pk[SEAL_PK_BYTES], struct seal_sender **s_r)
{
	uint8_t eph_sk[crypto_kx_SECRETKEYBYTES];
	uint8_t rx[crypto_kx_SESSIONKEYBYTES];
	struct seal_sender *s;
	int ret;

	s = secure_alloc(sizeof(*s));
	if (s == NULL)
		return -1;
	(void)crypto_kx_keypair(s->epoch_pk, eph_sk);
	/* The client's tx key is the recipient's rx key; rx is never used. */
	ret = crypto_kx_client_session_keys(rx, s->epoch_key, s->epoch_pk, eph_sk, recipient_pk);
	sodium_memzero(eph_sk, sizeof(eph_sk));
	sodium_memzero(rx, sizeof(rx));
	if (ret != 0) {
		/* A low-order point: no shared secret. */
		secure_free(s, sizeof(*s));
		return -1;
	}
	s->created_ns = monotonic_ns();
	s->messages = 0;
	*s_r = s;
	return 0;
}

int seal_sender_expired(const struct seal_sender *s, uint64_t max_age_secs, uint64_t max_messages)
{
	uint64_t age_ns = monotonic_ns() - s->created_ns;

	if (s->messages >= max_messages)
		return 1;
	return age_ns / 1000000000u >= max_age_secs;
}

void seal_sender_free(struct seal_sender **s)
{
	secure_free(*s, sizeof(**s));
	*s = NULL;
}

/* ---- writer ---------------------------------------------------------------- */

/* Finished writers are kept (wiped) for the next record: sodium_malloc and
 * sodium_free cost an mmap, mprotects, mlock and munmap each, per message. */
#define WRITER_CACHE_MAX 64
/* The chunk buffers' pointers are kept here too, not only inside the
 * writer's guarded block, which leak checkers do not scan. */
struct writer_cache_entry {
	struct seal_writer *w;
	uint8_t *plain, *cipher;
};
static pthread_mutex_t writer_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer_cache_entry writer_cache[WRITER_CACHE_MAX];
static size_t writer_cache_count;

static struct seal_writer *writer_alloc(void)
{
	struct writer_cache_entry e = {NULL, NULL, NULL};
	struct seal_writer *w;

	pthread_mutex_lock(&writer_cache_lock);
	if (writer_cache_count > 0) {
		e = writer_cache[--writer_cache_count];
		writer_cache[writer_cache_count] = (struct writer_cache_entry){NULL, NULL, NULL};
	}
	pthread_mutex_unlock(&writer_cache_lock);
	if (e.w != NULL) {
		e.w->plain = e.plain;
		e.w->cipher = e.cipher;
		return e.w;
	}
	w = secure_alloc(sizeof(*w));
	if (w == NULL)
		return NULL;
	w->plain = xmalloc(SEAL_CHUNK_BYTES);
	w->cipher = xmalloc(CIPHER_CHUNK_BYTES);
	return w;
}

static int writer_emit(struct seal_writer *w, const uint8_t *data, size_t len, const char **error_r)
{
	if (w->sink(w->sink_ctx, data, len) < 0) {
		w->failed = true;
		*error_r = err_sink;
		return -1;
	}
	w->sealed_size += len;
	return 0;
}

/* Seals one chunk of plaintext; LAST for the final one. */
static int writer_push(struct seal_writer *w, const uint8_t *plain, size_t len, bool last,
		       const char **error_r)
{
	unsigned long long clen;

	if (w->version == SEAL_RECORD_V2) {
		uint8_t nonce[GCM_NONCE_BYTES];

		gcm_nonce(nonce, w->chunk_index++, last);
		(void)crypto_aead_aes256gcm_encrypt_afternm(w->cipher, &clen, plain, len, w->header,
							    SEAL_HEADER_BYTES, NULL, nonce,
							    &w->gcm);
	} else {
		const uint8_t *ad = w->first_chunk_done ? NULL : w->header;

		(void)crypto_secretstream_xchacha20poly1305_push(
		    &w->stream, w->cipher, &clen, plain, len, ad,
		    ad == NULL ? 0 : SEAL_HEADER_BYTES, last ? TAG_FINAL : TAG_MESSAGE);
		w->first_chunk_done = true;
	}
	return writer_emit(w, w->cipher, (size_t)clen, error_r);
}

int seal_writer_begin(struct seal_sender *s, seal_sink_fn *sink, void *sink_ctx,
		      struct seal_writer **w_r, const char **error_r)
{
	uint8_t stream_header[SEAL_STREAM_HEADER_BYTES];
	uint8_t body_key[SEAL_KEY_BYTES];
	struct seal_writer *w;

	w = writer_alloc();
	if (w == NULL) {
		*error_r = "out of secure memory";
		return -1;
	}
	w->sink = sink;
	w->sink_ctx = sink_ctx;
	w->version = (uint8_t)current_version();

	header_build(s, w->version, w->header, w->content_key);
	derive_key(body_key, KDF_ID_BODY, KDF_CTX_BODY, w->content_key);
	if (w->version == SEAL_RECORD_V2)
		(void)crypto_aead_aes256gcm_beforenm(&w->gcm, body_key);
	else
		(void)crypto_secretstream_xchacha20poly1305_init_push(&w->stream, stream_header,
								      body_key);
	sodium_memzero(body_key, sizeof(body_key));

	if (writer_emit(w, w->header, SEAL_HEADER_BYTES, error_r) < 0 ||
	    (w->version == SEAL_RECORD_V1 &&
	     writer_emit(w, stream_header, sizeof(stream_header), error_r) < 0)) {
		seal_writer_free(&w);
		return -1;
	}
	*w_r = w;
	return 0;
}

int seal_writer_write(struct seal_writer *w, const void *data, size_t len, const char **error_r)
{
	const uint8_t *p = data;

	if (w->failed || w->finished) {
		*error_r = w->failed ? err_sink : err_state;
		return -1;
	}
	while (len > 0) {
		size_t n;

		if (w->plain_len == 0 && len >= SEAL_CHUNK_BYTES) {
			/* A whole chunk in the input: seal it without a copy. */
			if (writer_push(w, p, SEAL_CHUNK_BYTES, false, error_r) < 0)
				return -1;
			p += SEAL_CHUNK_BYTES;
			len -= SEAL_CHUNK_BYTES;
			continue;
		}
		n = SEAL_CHUNK_BYTES - w->plain_len;
		if (n > len)
			n = len;
		memcpy(w->plain + w->plain_len, p, n);
		w->plain_len += n;
		if (w->plain_len > w->plain_used)
			w->plain_used = w->plain_len;
		p += n;
		len -= n;
		if (w->plain_len == SEAL_CHUNK_BYTES) {
			w->plain_len = 0;
			if (writer_push(w, w->plain, SEAL_CHUNK_BYTES, false, error_r) < 0)
				return -1;
		}
	}
	return 0;
}

int seal_writer_finish(struct seal_writer *w, const char **error_r)
{
	size_t len = w->plain_len;

	if (w->failed || w->finished) {
		*error_r = w->failed ? err_sink : err_state;
		return -1;
	}
	w->finished = true;
	w->plain_len = 0;
	return writer_push(w, w->plain, len, true, error_r);
}

int seal_writer_seal_meta(struct seal_writer *w, const void *meta, size_t meta_len, uint8_t **out_r,
			  size_t *out_len_r, const char **error_r)
{
	return blob_seal(w->header, w->content_key, meta, meta_len, out_r, out_len_r, error_r);
}

int seal_blob_seal(struct seal_sender *s, const void *data, size_t len, uint8_t **out_r,
		   size_t *out_len_r, const char **error_r)
{
	uint8_t header[SEAL_HEADER_BYTES];
	uint8_t content_key[SEAL_KEY_BYTES];
	int ret;

	header_build(s, current_version(), header, content_key);
	ret = blob_seal(header, content_key, data, len, out_r, out_len_r, error_r);
	sodium_memzero(content_key, sizeof(content_key));
	return ret;
}

uint64_t seal_writer_sealed_size(const struct seal_writer *w)
{
	return w->sealed_size;
}

void seal_writer_free(struct seal_writer **w)
{
	struct seal_writer *wr = *w;

	uint8_t *plain, *cipher;

	if (wr == NULL)
		return;
	*w = NULL;
	plain = wr->plain;
	cipher = wr->cipher;
	/* The cipher buffer holds ciphertext only; of PLAIN, only the bytes
	 * ever written (most messages fill a small part of the chunk). */
	sodium_memzero(plain, wr->plain_used);
	sodium_memzero(wr, sizeof(*wr));
	pthread_mutex_lock(&writer_cache_lock);
	if (writer_cache_count < WRITER_CACHE_MAX) {
		writer_cache[writer_cache_count++] = (struct writer_cache_entry){wr, plain, cipher};
		wr = NULL;
	}
	pthread_mutex_unlock(&writer_cache_lock);
	if (wr == NULL)
		return;
	free(plain);
	free(cipher);
	secure_free(wr, sizeof(*wr));
}

/* ---- opener ---------------------------------------------------------------- */

int seal_opener_new(const struct seal_keypair *kp, struct seal_opener **o_r)
{
	struct seal_opener *o = secure_alloc(sizeof(*o));

	if (o == NULL)
		return -1;
	memcpy(o->pk, kp->pk, SEAL_PK_BYTES);
	memcpy(o->sk, kp->sk, SEAL_SK_BYTES);
	pthread_mutex_init(&o->lock, NULL);
	*o_r = o;
	return 0;
}

void seal_opener_free(struct seal_opener **o)
{
	if (*o == NULL)
		return;
	pthread_mutex_destroy(&(*o)->lock);
	secure_free(*o, sizeof(**o));
	*o = NULL;
}

/* Copies the epoch key for EPOCH_PK into KEY_R: from the cache, or by one
 * key agreement whose result replaces the least recently used entry. -1 if
 * EPOCH_PK is not a usable public key. Safe on several threads at once. */
static int opener_epoch_key(struct seal_opener *o, const uint8_t epoch_pk[SEAL_PK_BYTES],
			    uint8_t key_r[SEAL_KEY_BYTES])
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	struct opener_entry *e = NULL;
	int ret;

	pthread_mutex_lock(&o->lock);
	for (unsigned int i = 0; i < o->count; i++) {
		if (memcmp(o->cache[i].epoch_pk, epoch_pk, SEAL_PK_BYTES) == 0) {
			o->cache[i].last_used = ++o->clock;
			memcpy(key_r, o->cache[i].epoch_key, SEAL_KEY_BYTES);
			pthread_mutex_unlock(&o->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&o->lock);
	/* The key agreement outside the lock: another thread may insert the
	 * same entry meanwhile, which costs one slot until it ages out. */
	ret = crypto_kx_server_session_keys(rx, tx, o->pk, o->sk, epoch_pk);
	sodium_memzero(tx, sizeof(tx));
	if (ret != 0) {
		sodium_memzero(rx, sizeof(rx));
		return -1;
	}
	memcpy(key_r, rx, SEAL_KEY_BYTES);
	pthread_mutex_lock(&o->lock);
	if (o->count < OPENER_CACHE_MAX) {
		e = &o->cache[o->count++];
	} else {
		e = &o->cache[0];
		for (unsigned int i = 1; i < OPENER_CACHE_MAX; i++)
			if (o->cache[i].last_used < e->last_used)
				e = &o->cache[i];
	}
	memcpy(e->epoch_pk, epoch_pk, SEAL_PK_BYTES);
	memcpy(e->epoch_key, rx, SEAL_KEY_BYTES);
	e->last_used = ++o->clock;
	pthread_mutex_unlock(&o->lock);
	sodium_memzero(rx, sizeof(rx));
	return 0;
}

/* Checks HEADER and recovers its content key. */
static int header_open(struct seal_opener *o, const uint8_t header[SEAL_HEADER_BYTES],
		       uint8_t content_key_r[SEAL_KEY_BYTES], const char **error_r)
{
	static const uint8_t zero[HDR_RESERVED_BYTES];
	uint8_t epoch_key[SEAL_KEY_BYTES];
	int ret;

	if (memcmp(header, SEAL_RECORD_MAGIC, 3) != 0) {
		*error_r = err_not_record;
		return -1;
	}
	if (header[HDR_OFF_VERSION] != SEAL_RECORD_V1 &&
	    header[HDR_OFF_VERSION] != SEAL_RECORD_V2) {
		*error_r = err_version;
		return -1;
	}
	if (header[HDR_OFF_FLAGS] != 0 ||
	    memcmp(header + HDR_OFF_RESERVED, zero, sizeof(zero)) != 0) {
		*error_r = err_flags;
		return -1;
	}
	if (opener_epoch_key(o, header + HDR_OFF_EPOCH_PK, epoch_key) < 0) {
		*error_r = err_not_ours;
		return -1;
	}
	ret = crypto_aead_xchacha20poly1305_ietf_decrypt(
	    content_key_r, NULL, NULL, header + HDR_OFF_WRAPPED, HDR_WRAPPED_BYTES, header,
	    HDR_WRAP_AD_BYTES, header + HDR_OFF_NONCE, epoch_key);
	sodium_memzero(epoch_key, sizeof(epoch_key));
	if (ret != 0) {
		*error_r = err_not_ours;
		return -1;
	}
	return 0;
}

int seal_blob_open(struct seal_opener *o, const uint8_t *sealed, size_t len, uint8_t **plain_r,
		   size_t *plain_len_r, const char **error_r)
{
	uint8_t content_key[SEAL_KEY_BYTES], meta_key[SEAL_KEY_BYTES];
	uint8_t *plain = NULL;
	size_t plain_len;
	int ret = -1;

	if (len < BLOB_OVERHEAD_BYTES) {
		*error_r = len < SEAL_HEADER_BYTES ? err_not_record : err_truncated;
		return -1;
	}
	if (header_open(o, sealed, content_key, error_r) < 0)
		return -1;
	derive_key(meta_key, KDF_ID_META, KDF_CTX_META, content_key);
	sodium_memzero(content_key, sizeof(content_key));

	plain_len = len - BLOB_OVERHEAD_BYTES;
	/* One spare byte: text callers may NUL-terminate without a copy. */
	plain = xmalloc(plain_len + 1);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		plain, NULL, NULL, sealed + SEAL_HEADER_BYTES + AEAD_NONCE_BYTES,
		len - SEAL_HEADER_BYTES - AEAD_NONCE_BYTES, sealed, SEAL_HEADER_BYTES,
		sealed + SEAL_HEADER_BYTES, meta_key) != 0) {
		*error_r = err_modified;
		goto out;
	}
	plain[plain_len] = '\0';
	*plain_r = plain;
	*plain_len_r = plain_len;
	plain = NULL;
	ret = 0;
out:
	sodium_memzero(meta_key, sizeof(meta_key));
	free(plain);
	return ret;
}

/* ---- reader ---------------------------------------------------------------- */

int seal_reader_begin(struct seal_opener *o, seal_sink_fn *sink, void *sink_ctx,
		      struct seal_reader **r_r)
{
	struct seal_reader *r = secure_alloc(sizeof(*r));

	if (r == NULL)
		return -1;
	r->opener = o;
	r->sink = sink;
	r->sink_ctx = sink_ctx;
	r->cipher = xmalloc(CIPHER_CHUNK_BYTES);
	r->plain = xmalloc(SEAL_CHUNK_BYTES);
	r->state = READER_PREFIX;
	r->prefix_want = SEAL_HEADER_BYTES;
	*r_r = r;
	return 0;
}

static int reader_fail(struct seal_reader *r, const char *error, const char **error_r)
{
	r->state = READER_FAILED;
	*error_r = error;
	return -1;
}

/* The record header (and for version 1 the stream header) are in: derive
 * the body key. */
static int reader_open_prefix(struct seal_reader *r, const char **error_r)
{
	uint8_t content_key[SEAL_KEY_BYTES], body_key[SEAL_KEY_BYTES];
	int ret = 0;

	if (r->prefix[HDR_OFF_VERSION] == SEAL_RECORD_V2 && !aes_available())
		return reader_fail(r, err_no_aes, error_r);
	if (header_open(r->opener, r->prefix, content_key, error_r) < 0) {
		r->state = READER_FAILED;
		return -1;
	}
	derive_key(body_key, KDF_ID_BODY, KDF_CTX_BODY, content_key);
	sodium_memzero(content_key, sizeof(content_key));
	if (r->prefix[HDR_OFF_VERSION] == SEAL_RECORD_V2) {
		(void)crypto_aead_aes256gcm_beforenm(&r->gcm, body_key);
		r->chunk_bytes = GCM_CHUNK_BYTES;
	} else {
		ret = crypto_secretstream_xchacha20poly1305_init_pull(
		    &r->stream, r->prefix + SEAL_HEADER_BYTES, body_key);
		r->chunk_bytes = CIPHER_CHUNK_BYTES;
	}
	sodium_memzero(body_key, sizeof(body_key));
	if (ret != 0)
		return reader_fail(r, err_modified, error_r);
	r->state = READER_CHUNKS;
	return 0;
}

/* Opens one version 2 chunk into M; AT_END: the input ended with it, so it
 * must be the last (a whole chunk never is: the writer seals a chunk as
 * soon as it is full, and the last one is shorter, possibly empty). */
static int reader_open_gcm(struct seal_reader *r, uint8_t *m, const uint8_t *c, size_t clen,
			   bool at_end, unsigned long long *mlen_r)
{
	uint8_t nonce[GCM_NONCE_BYTES];

	gcm_nonce(nonce, r->chunk_index++, at_end);
	return crypto_aead_aes256gcm_decrypt_afternm(m, mlen_r, NULL, c, clen, r->prefix,
						     SEAL_HEADER_BYTES, nonce, &r->gcm);
}

/* Opens one version 1 chunk into M: the tag says whether it is the last,
 * and only a whole chunk may carry TAG_MESSAGE. */
static int reader_open_stream(struct seal_reader *r, uint8_t *m, const uint8_t *c, size_t clen,
			      unsigned long long *mlen_r, bool *last_r, const char **error_r)
{
	const uint8_t *ad = r->first_chunk_done ? NULL : r->prefix;
	unsigned char tag;

	if (crypto_secretstream_xchacha20poly1305_pull(&r->stream, m, mlen_r, &tag, c, clen, ad,
						       ad == NULL ? 0 : SEAL_HEADER_BYTES) != 0) {
		*error_r = err_modified;
		return -1;
	}
	r->first_chunk_done = true;
	if (tag != TAG_MESSAGE && tag != TAG_FINAL) {
		*error_r = err_modified;
		return -1;
	}
	if (tag == TAG_MESSAGE && clen != CIPHER_CHUNK_BYTES) {
		*error_r = err_truncated;
		return -1;
	}
	*last_r = tag == TAG_FINAL;
	return 0;
}

/* Verifies and decrypts one ciphertext chunk and hands its plaintext on.
 * AT_END: the input ended with this chunk. */
static int reader_pull(struct seal_reader *r, const uint8_t *c, size_t clen, bool at_end,
		       const char **error_r)
{
	size_t overhead = r->chunk_bytes - SEAL_CHUNK_BYTES; /* of this version */
	uint8_t *m = r->plain;
	unsigned long long mlen;
	bool last = at_end;

	/* Nothing unverified is left in M: secretstream checks the tag
	 * before it writes, AES-256-GCM zeroes what it wrote on a bad tag. */
	if (r->dest != NULL && (m = r->dest(r->sink_ctx, clen - overhead)) == NULL)
		return reader_fail(r, "no memory for the opened record", error_r);
	if (r->prefix[HDR_OFF_VERSION] == SEAL_RECORD_V2) {
		if (reader_open_gcm(r, m, c, clen, at_end, &mlen) != 0)
			return reader_fail(r, err_modified, error_r);
	} else if (reader_open_stream(r, m, c, clen, &mlen, &last, error_r) < 0) {
		r->state = READER_FAILED;
		return -1;
	}
	if (m == r->plain && mlen > r->plain_used)
		r->plain_used = (size_t)mlen;
	if (mlen > 0 && r->sink(r->sink_ctx, m, (size_t)mlen) < 0)
		return reader_fail(r, "delivering the opened record failed", error_r);
	if (last)
		r->state = READER_DONE;
	return 0;
}

int seal_reader_write(struct seal_reader *r, const void *data, size_t len, const char **error_r)
{
	const uint8_t *p = data;

	if (r->state == READER_FAILED) {
		*error_r = err_failed;
		return -1;
	}
	while (len > 0) {
		size_t n;

		switch (r->state) {
		case READER_PREFIX:
			n = r->prefix_want - r->prefix_len;
			if (n > len)
				n = len;
			memcpy(r->prefix + r->prefix_len, p, n);
			r->prefix_len += n;
			p += n;
			len -= n;
			if (r->prefix_len < r->prefix_want)
				break;
			if (r->prefix_want == SEAL_HEADER_BYTES &&
			    r->prefix[HDR_OFF_VERSION] == SEAL_RECORD_V1) {
				r->prefix_want = PREFIX_BYTES; /* and the stream header */
				break;
			}
			if (reader_open_prefix(r, error_r) < 0)
				return -1;
			break;
		case READER_CHUNKS:
			if (r->cipher_len == 0 && len >= r->chunk_bytes) {
				/* A whole chunk in the input: open it in place. */
				if (reader_pull(r, p, r->chunk_bytes, false, error_r) < 0)
					return -1;
				p += r->chunk_bytes;
				len -= r->chunk_bytes;
				break;
			}
			n = r->chunk_bytes - r->cipher_len;
			if (n > len)
				n = len;
			memcpy(r->cipher + r->cipher_len, p, n);
			r->cipher_len += n;
			p += n;
			len -= n;
			if (r->cipher_len == r->chunk_bytes) {
				r->cipher_len = 0;
				if (reader_pull(r, r->cipher, r->chunk_bytes, false, error_r) < 0)
					return -1;
			}
			break;
		case READER_DONE:
			return reader_fail(r, err_trailing, error_r);
		case READER_FAILED:
			*error_r = err_failed;
			return -1;
		}
	}
	return 0;
}

int seal_reader_finish(struct seal_reader *r, const char **error_r)
{
	size_t clen;

	switch (r->state) {
	case READER_DONE:
		return 0;
	case READER_FAILED:
		*error_r = err_failed;
		return -1;
	case READER_PREFIX:
		return reader_fail(r, r->prefix_len == 0 ? err_not_record : err_truncated, error_r);
	case READER_CHUNKS:
		break;
	}
	clen = r->cipher_len;
	r->cipher_len = 0;
	/* The last chunk holds at least this version's tag (and tag byte). */
	if (clen < r->chunk_bytes - SEAL_CHUNK_BYTES)
		return reader_fail(r, err_truncated, error_r);
	if (reader_pull(r, r->cipher, clen, true, error_r) < 0)
		return -1;
	if (r->state != READER_DONE)
		return reader_fail(r, err_truncated, error_r);
	return 0;
}

void seal_reader_reset(struct seal_reader *r, seal_sink_fn *sink, void *sink_ctx)
{
	if (r->chunk_bytes == GCM_CHUNK_BYTES)
		sodium_memzero(&r->gcm, sizeof(r->gcm));
	else
		sodium_memzero(&r->stream, sizeof(r->stream));
	r->chunk_bytes = 0;
	r->chunk_index = 0;
	r->prefix_want = SEAL_HEADER_BYTES;
	sodium_memzero(r->prefix, sizeof(r->prefix));
	sodium_memzero(r->plain, r->plain_used);
	r->plain_used = 0;
	r->prefix_len = 0;
	r->cipher_len = 0;
	r->sink = sink;
	r->dest = NULL;
	r->sink_ctx = sink_ctx;
	r->state = READER_PREFIX;
	r->first_chunk_done = false;
}

void seal_reader_set_dest(struct seal_reader *r, seal_dest_fn *dest)
{
	r->dest = dest;
}

void seal_reader_free(struct seal_reader **r)
{
	struct seal_reader *rd = *r;

	if (rd == NULL)
		return;
	sodium_memzero(rd->plain, rd->plain_used);
	free(rd->plain);
	free(rd->cipher);
	secure_free(rd, sizeof(*rd));
	*r = NULL;
}

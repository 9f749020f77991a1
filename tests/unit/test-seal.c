/* test-seal.c — unit tests for crypto/: sealed records of both format
 * versions (round trips at the chunk edges, every kind of tampering),
 * metadata parts and blobs, wrapped account keys, recovery codes, delivery
 * epochs and the small helpers. The record tests run once per body cipher:
 * version 1 (XChaCha20-Poly1305 secretstream) and, where the CPU runs it,
 * version 2 (AES-256-GCM).
 *
 * Trust boundary: none; test keys and data only. Argon2id runs at libsodium's
 * minimum cost here (SEALMAIL_ARGON2_OPS / _MEM) so the suite stays fast. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/seal.h"

#define CHUNK         SEAL_CHUNK_BYTES
#define BLOB_OVERHEAD (SEAL_HEADER_BYTES + 24 + SEAL_TAG_BYTES)
/* The layout of the version under test (set by use_v1 / use_v2). */
#define CCHUNK (CHUNK + overhead)
#define PREFIX prefix
static size_t prefix, overhead;
static uint8_t version;

static struct seal_keypair *kp_a, *kp_b;

static int use_cipher(enum seal_record_cipher c)
{
	const char *error = NULL;

	if (seal_set_record_cipher(c, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return -1;
	}
	return 0;
}

/* Version 1: a 24-byte stream header after the record header, 17 bytes of
 * tag byte and MAC per chunk. */
static int use_v1(void **state)
{
	prefix = SEAL_HEADER_BYTES + SEAL_STREAM_HEADER_BYTES;
	overhead = SEAL_CHUNK_OVERHEAD_BYTES;
	version = 1;
	return use_cipher(SEAL_CIPHER_XCHACHA20POLY1305);
}

/* Version 2: chunks right after the header, 16 bytes of tag each. */
static int use_v2(void **state)
{
	prefix = SEAL_HEADER_BYTES;
	overhead = SEAL_TAG_BYTES;
	version = 2;
	return use_cipher(SEAL_CIPHER_AES256GCM);
}

/* ---- helpers ------------------------------------------------------------- */

static int sink_buf(void *ctx, const uint8_t *data, size_t len)
{
	return buf_append(ctx, data, len) < 0 ? -1 : 0;
}

static int sink_fail(void *ctx, const uint8_t *data, size_t len)
{
	return -1;
}

/* Sealed size of LEN plaintext bytes: the writer emits full chunks as soon as
 * they fill, so the final chunk holds LEN % CHUNK bytes (possibly none). */
static size_t sealed_len(size_t len)
{
	return PREFIX + (len / CHUNK + 1) * overhead + len;
}

static uint8_t *random_bytes(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	seal_random(p, len);
	return p;
}

static size_t rand_below(size_t n)
{
	uint64_t v;

	seal_random(&v, sizeof(v));
	return (size_t)(v % n);
}

/* Seals PLAIN to the sender's recipient, writing it in pieces of PIECE bytes
 * (0: all at once) into OUT. */
static void seal_pieces(struct seal_sender *s, const uint8_t *plain, size_t len, size_t piece,
			struct buf *out)
{
	struct seal_writer *w;
	const char *error = NULL;
	size_t off = 0;

	buf_init(out);
	assert_int_equal(seal_writer_begin(s, sink_buf, out, &w, &error), 0);
	assert_int_equal(out->len, PREFIX);
	do {
		size_t n = piece == 0 || piece > len - off ? len - off : piece;

		assert_int_equal(seal_writer_write(w, plain + off, n, &error), 0);
		off += n;
	} while (off < len);
	assert_int_equal(seal_writer_finish(w, &error), 0);
	assert_int_equal(seal_writer_sealed_size(w), out->len);
	seal_writer_free(&w);
	assert_null(w);
}

static void seal_to(const struct seal_keypair *kp, const uint8_t *plain, size_t len,
		    struct buf *out)
{
	struct seal_sender *s;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp), &s), 0);
	seal_pieces(s, plain, len, 0, out);
	seal_sender_free(&s);
	assert_null(s);
}

/* Feeds SEALED to a reader in pieces of PIECE bytes (0: all at once). Returns
 * the reader's result; plaintext in OUT (always initialised). */
static int open_pieces(struct seal_opener *o, const uint8_t *sealed, size_t len, size_t piece,
		       struct buf *out, const char **error_r)
{
	struct seal_reader *r;
	size_t off = 0;
	int ret = 0;

	buf_init(out);
	assert_int_equal(seal_reader_begin(o, sink_buf, out, &r), 0);
	while (off < len && ret == 0) {
		size_t n = piece == 0 || piece > len - off ? len - off : piece;

		ret = seal_reader_write(r, sealed + off, n, error_r);
		off += n;
	}
	if (ret == 0)
		ret = seal_reader_finish(r, error_r);
	seal_reader_free(&r);
	assert_null(r);
	return ret;
}

static int open_with(const struct seal_keypair *kp, const uint8_t *sealed, size_t len,
		     const char **error_r)
{
	struct seal_opener *o;
	struct buf out;
	int ret;

	assert_int_equal(seal_opener_new(kp, &o), 0);
	ret = open_pieces(o, sealed, len, 0, &out, error_r);
	buf_free(&out);
	seal_opener_free(&o);
	assert_null(o);
	return ret;
}

static int open_fails(struct seal_opener *o, const uint8_t *sealed, size_t len)
{
	const char *error = NULL;
	struct buf out;
	int ret = open_pieces(o, sealed, len, 0, &out, &error);

	buf_free(&out);
	if (ret == 0)
		return 0;
	assert_non_null(error);
	return 1;
}

/* ---- round trips ----------------------------------------------------------- */

static const size_t roundtrip_sizes[] = {
    0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 10 * 1000 * 1000,
};
static void test_roundtrip_sizes(void **state)
{
	/* Piece sizes for the writer and the reader: one byte, odd sizes
	 * around and across the chunk size, everything at once. */
	const size_t feed_pieces[] = {1, 7, 4093, CCHUNK - 1, CCHUNK + 3, 100003, 0};
	struct seal_opener *o;
	struct seal_sender *s;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (size_t i = 0; i < N_ELEMENTS(roundtrip_sizes); i++) {
		size_t len = roundtrip_sizes[i];
		uint8_t *plain = random_bytes(len);

		for (size_t j = 0; j < N_ELEMENTS(feed_pieces); j++) {
			size_t piece = feed_pieces[j];
			const char *error = NULL;
			struct buf sealed, out;

			/* One-byte feeding of 10 MB adds time, not coverage. */
			if (piece == 1 && len > 3 * CHUNK)
				continue;
			seal_pieces(s, plain, len, piece, &sealed);
			assert_int_equal(sealed.len, sealed_len(len));
			assert_int_equal(sealed.data[3], version);
			assert_int_equal(
			    open_pieces(o, sealed.data, sealed.len, piece, &out, &error), 0);
			assert_int_equal(out.len, len);
			if (len > 0)
				assert_memory_equal(out.data, plain, len);
			buf_free(&out);
			buf_free(&sealed);
		}
		free(plain);
	}
	seal_opener_free(&o);
	seal_sender_free(&s);
}

/* Two records of the same plaintext differ (fresh content key and nonces). */
static void test_records_are_randomised(void **state)
{
	static const char text[] = "Subject: hello\r\n\r\nbody\r\n";
	struct buf r1, r2;
	struct seal_sender *s;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	seal_pieces(s, (const uint8_t *)text, sizeof(text) - 1, 0, &r1);
	seal_pieces(s, (const uint8_t *)text, sizeof(text) - 1, 0, &r2);
	assert_int_equal(r1.len, r2.len);
	/* Same epoch public key, everything after it different. */
	assert_memory_equal(r1.data + 8, r2.data + 8, SEAL_PK_BYTES);
	assert_memory_not_equal(r1.data + 40, r2.data + 40, r1.len - 40);
	assert_null(memmem(r1.data, r1.len, "hello", 5));
	buf_free(&r1);
	buf_free(&r2);
	seal_sender_free(&s);
}

/* ---- tampering ------------------------------------------------------------- */

static void test_flip_every_byte_small(void **state)
{
	static const char text[] = "From: a@example.org\r\nSubject: flip\r\n\r\nsmall body\r\n";
	struct seal_opener *o;
	struct buf sealed;
	const char *error = NULL;

	seal_to(kp_a, (const uint8_t *)text, sizeof(text) - 1, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	assert_int_equal(open_with(kp_a, sealed.data, sealed.len, &error), 0);
	for (size_t pos = 0; pos < sealed.len; pos++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			sealed.data[pos] ^= (uint8_t)(1u << bit);
			assert_true(open_fails(o, sealed.data, sealed.len));
			sealed.data[pos] ^= (uint8_t)(1u << bit);
		}
	}
	/* Unchanged again, and the opener still works after all the failures. */
	assert_false(open_fails(o, sealed.data, sealed.len));
	seal_opener_free(&o);
	buf_free(&sealed);
}

static void test_flip_sampled_multichunk(void **state)
{
	size_t len = 3 * CHUNK + 100;
	uint8_t *plain = random_bytes(len);
	struct seal_opener *o;
	struct buf sealed;

	seal_to(kp_a, plain, len, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	/* The whole prefix, both ends of every chunk, and random positions. */
	for (size_t pos = 0; pos < sealed.len;) {
		sealed.data[pos] ^= 0x80;
		assert_true(open_fails(o, sealed.data, sealed.len));
		sealed.data[pos] ^= 0x80;
		if (pos < PREFIX || (pos - PREFIX) % CCHUNK < 24 ||
		    (pos - PREFIX) % CCHUNK > CCHUNK - 24)
			pos++;
		else
			pos += CCHUNK - 48;
	}
	for (int i = 0; i < 64; i++) {
		size_t pos = rand_below(sealed.len);

		sealed.data[pos] ^= 0x01;
		assert_true(open_fails(o, sealed.data, sealed.len));
		sealed.data[pos] ^= 0x01;
	}
	assert_false(open_fails(o, sealed.data, sealed.len));
	seal_opener_free(&o);
	buf_free(&sealed);
	free(plain);
}

/* Truncation at every chunk boundary and inside every part of the record. */
static void test_truncation(void **state)
{
	static const size_t sizes[] = {0, 100, 2 * CHUNK, 3 * CHUNK + 100};
	struct seal_opener *o;

	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		size_t len = sizes[i];
		uint8_t *plain = random_bytes(len);
		struct buf sealed;
		size_t nchunks;

		seal_to(kp_a, plain, len, &sealed);
		nchunks = len / CHUNK + 1;
		/* Inside the header, the stream header and at their ends. */
		static const size_t prefix_cuts[] = {0, 1, 3, 4, 39, 40, 111, 112, 113, 135, 136};
		for (size_t j = 0; j < N_ELEMENTS(prefix_cuts); j++)
			if (prefix_cuts[j] < sealed.len)
				assert_true(open_fails(o, sealed.data, prefix_cuts[j]));
		for (size_t c = 0; c < nchunks; c++) {
			size_t start = PREFIX + c * CCHUNK;
			size_t end = c + 1 < nchunks ? start + CCHUNK : sealed.len;
			size_t cuts[] = {
			    start,  start + 1, start + 16, start + 17, start + (end - start) / 2,
			    end - 1};

			for (size_t k = 0; k < N_ELEMENTS(cuts); k++)
				if (cuts[k] < sealed.len)
					assert_true(open_fails(o, sealed.data, cuts[k]));
		}
		/* Fed one byte at a time, a cut record fails at finish. */
		{
			const char *error = NULL;
			struct buf out;

			assert_int_equal(
			    open_pieces(o, sealed.data, sealed.len - 1, 1, &out, &error), -1);
			assert_non_null(error);
			buf_free(&out);
		}
		assert_false(open_fails(o, sealed.data, sealed.len));
		buf_free(&sealed);
		free(plain);
	}
	seal_opener_free(&o);
}

static void swap_chunks(uint8_t *sealed, size_t a, size_t b)
{
	uint8_t *tmp = malloc(CCHUNK);

	assert_non_null(tmp);
	memcpy(tmp, sealed + PREFIX + a * CCHUNK, CCHUNK);
	memcpy(sealed + PREFIX + a * CCHUNK, sealed + PREFIX + b * CCHUNK, CCHUNK);
	memcpy(sealed + PREFIX + b * CCHUNK, tmp, CCHUNK);
	free(tmp);
}

static void test_reorder(void **state)
{
	static const size_t swaps[][2] = {{0, 1}, {1, 2}, {0, 2}};
	size_t len = 3 * CHUNK + 100;
	uint8_t *plain = random_bytes(len);
	struct seal_opener *o;
	struct buf sealed;

	seal_to(kp_a, plain, len, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (size_t i = 0; i < N_ELEMENTS(swaps); i++) {
		swap_chunks(sealed.data, swaps[i][0], swaps[i][1]);
		assert_true(open_fails(o, sealed.data, sealed.len));
		swap_chunks(sealed.data, swaps[i][0], swaps[i][1]);
	}
	/* Dropping a middle chunk is a reordering of all that follow. */
	{
		uint8_t *cut = malloc(sealed.len - CCHUNK);

		assert_non_null(cut);
		memcpy(cut, sealed.data, PREFIX + CCHUNK);
		memcpy(cut + PREFIX + CCHUNK, sealed.data + PREFIX + 2 * CCHUNK,
		       sealed.len - PREFIX - 2 * CCHUNK);
		assert_true(open_fails(o, cut, sealed.len - CCHUNK));
		free(cut);
	}
	assert_false(open_fails(o, sealed.data, sealed.len));
	seal_opener_free(&o);
	buf_free(&sealed);
	free(plain);
}

static void test_append(void **state)
{
	static const size_t sizes[] = {0, 100, CHUNK, 2 * CHUNK + 5};
	const size_t extra[] = {1, 16, 17, 100, CCHUNK, CCHUNK + 1};
	struct seal_opener *o;

	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		uint8_t *plain = random_bytes(sizes[i]);
		struct buf sealed, other;

		seal_to(kp_a, plain, sizes[i], &sealed);
		seal_to(kp_a, plain, sizes[i], &other);
		for (size_t j = 0; j < N_ELEMENTS(extra); j++) {
			struct buf longer;

			buf_init(&longer);
			assert_int_equal(buf_append(&longer, sealed.data, sealed.len), 0);
			for (size_t k = 0; k < extra[j]; k++)
				assert_int_equal(buf_append(&longer, &(uint8_t){(uint8_t)k}, 1), 0);
			assert_true(open_fails(o, longer.data, longer.len));
			buf_free(&longer);
		}
		/* Two valid records back to back are not one record. */
		assert_int_equal(buf_append(&sealed, other.data, other.len), 0);
		assert_true(open_fails(o, sealed.data, sealed.len));
		buf_free(&other);
		buf_free(&sealed);
		free(plain);
	}
	seal_opener_free(&o);
}

/* A reader stops at the first byte after the final chunk, during write. */
static void test_append_fails_early(void **state)
{
	static const char text[] = "short";
	struct seal_opener *o;
	struct seal_reader *r;
	struct buf sealed, out;
	const char *error = NULL;

	seal_to(kp_a, (const uint8_t *)text, 5, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	buf_init(&out);
	assert_int_equal(seal_reader_begin(o, sink_buf, &out, &r), 0);
	/* The short final chunk is only recognised at finish... */
	assert_int_equal(seal_reader_write(r, sealed.data, sealed.len, &error), 0);
	assert_int_equal(seal_reader_write(r, "x", 1, &error), 0);
	assert_int_equal(seal_reader_finish(r, &error), -1);
	assert_int_equal(seal_reader_write(r, "x", 1, &error), -1);
	seal_reader_free(&r);
	buf_free(&out);
	buf_free(&sealed);

	/* ...a full final chunk as soon as it verifies. */
	{
		uint8_t *plain = random_bytes(CHUNK);
		struct seal_sender *s;

		assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
		seal_pieces(s, plain, CHUNK, 0, &sealed);
		buf_init(&out);
		assert_int_equal(seal_reader_begin(o, sink_buf, &out, &r), 0);
		assert_int_equal(seal_reader_write(r, sealed.data, sealed.len, &error), 0);
		assert_int_equal(seal_reader_finish(r, &error), 0);
		assert_int_equal(seal_reader_finish(r, &error), 0);
		assert_int_equal(seal_reader_write(r, "x", 1, &error), -1);
		assert_string_equal(error, "data after the end of the sealed record");
		seal_reader_free(&r);
		buf_free(&out);
		buf_free(&sealed);
		seal_sender_free(&s);
		free(plain);
	}
	seal_opener_free(&o);
}

static void test_unknown_version_and_magic(void **state)
{
	static const struct {
		size_t pos;
		uint8_t value;
		const char *error;
	} cases[] = {
	    {0, 'X', "not a sealed record"},
	    {2, 'K', "not a sealed record"},
	    {3, 0x03, "unsupported sealed record version"},
	    {3, 0x00, "unsupported sealed record version"},
	    /* The other known version: the byte is authenticated. */
	    {3, 0xff, "record not sealed to this key, or modified"},
	    {4, 0x01, "unsupported sealed record flags"},
	    {7, 0x01, "unsupported sealed record flags"},
	};
	static const char text[] = "versioned";
	struct buf sealed;

	seal_to(kp_a, (const uint8_t *)text, sizeof(text) - 1, &sealed);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const char *error = NULL;
		uint8_t old = sealed.data[cases[i].pos];

		sealed.data[cases[i].pos] = cases[i].value == 0xff ? 3 - version : cases[i].value;
		assert_int_equal(open_with(kp_a, sealed.data, sealed.len, &error), -1);
		assert_string_equal(error, cases[i].error);
		sealed.data[cases[i].pos] = old;
	}
	buf_free(&sealed);
}

static void test_other_account_fails(void **state)
{
	static const char text[] = "for a only";
	struct buf sealed, blob;
	struct seal_sender *s;
	struct seal_opener *o;
	const char *error = NULL;
	uint8_t *plain;
	size_t plain_len;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	seal_pieces(s, (const uint8_t *)text, sizeof(text) - 1, 0, &sealed);
	assert_int_equal(seal_blob_seal(s, text, sizeof(text) - 1, &blob.data, &blob.len, &error),
			 0);
	assert_int_equal(open_with(kp_b, sealed.data, sealed.len, &error), -1);
	assert_string_equal(error, "record not sealed to this key, or modified");
	assert_int_equal(seal_opener_new(kp_b, &o), 0);
	assert_int_equal(seal_blob_open(o, blob.data, blob.len, &plain, &plain_len, &error), -1);
	seal_opener_free(&o);
	assert_int_equal(open_with(kp_a, sealed.data, sealed.len, &error), 0);
	free(blob.data);
	buf_free(&sealed);
	seal_sender_free(&s);
}

/* A sink that refuses aborts the writer and the reader. */
static void test_sink_failure(void **state)
{
	static const char text[] = "abc";
	struct seal_writer *w = NULL;
	struct seal_sender *s;
	struct seal_opener *o;
	struct seal_reader *r;
	struct buf sealed;
	const char *error = NULL;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	assert_int_equal(seal_writer_begin(s, sink_fail, NULL, &w, &error), -1);
	assert_null(w);
	assert_non_null(error);
	seal_pieces(s, (const uint8_t *)text, 3, 0, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	assert_int_equal(seal_reader_begin(o, sink_fail, NULL, &r), 0);
	assert_int_equal(seal_reader_write(r, sealed.data, sealed.len, &error), 0);
	assert_int_equal(seal_reader_finish(r, &error), -1);
	seal_reader_free(&r);
	seal_opener_free(&o);
	buf_free(&sealed);
	seal_sender_free(&s);
}

/* seal_reader_set_dest: chunks are opened into the caller's buffer. */
struct dest_ctx {
	uint8_t *data;
	size_t len, cap, calls;
};

static uint8_t *dest_next(void *ctx, size_t n)
{
	struct dest_ctx *d = ctx;

	d->calls++;
	return n <= d->cap - d->len ? d->data + d->len : NULL;
}

static int dest_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct dest_ctx *d = ctx;

	if (data != d->data + d->len)
		return -1;
	d->len += len;
	return 0;
}

static int open_to_dest(struct seal_reader *r, const struct buf *sealed, struct dest_ctx *d,
			const char **error_r)
{
	d->len = d->calls = 0;
	memset(d->data, 0, d->cap);
	seal_reader_reset(r, dest_sink, d);
	seal_reader_set_dest(r, dest_next);
	if (seal_reader_write(r, sealed->data, sealed->len, error_r) < 0)
		return -1;
	return seal_reader_finish(r, error_r);
}

static void test_reader_dest(void **state)
{
	const size_t len = 3 * CHUNK + 5;
	uint8_t *plain = random_bytes(len);
	struct dest_ctx d = {calloc(1, len), 0, len, 0};
	struct seal_opener *o;
	struct seal_reader *r;
	const char *error = NULL;
	struct buf sealed, out;

	assert_non_null(d.data);
	seal_to(kp_a, plain, len, &sealed);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	assert_int_equal(seal_reader_begin(o, dest_sink, &d, &r), 0);
	assert_int_equal(open_to_dest(r, &sealed, &d, &error), 0);
	assert_int_equal(d.len, len);
	assert_int_equal(d.calls, 4);
	assert_memory_equal(d.data, plain, len);

	/* A flipped bit in the third chunk: the first two arrive, then
	 * nothing more is written to the destination. */
	sealed.data[PREFIX + 2 * CCHUNK + 100] ^= 0x01;
	assert_int_equal(open_to_dest(r, &sealed, &d, &error), -1);
	assert_int_equal(d.len, 2 * CHUNK);
	for (size_t i = 2 * CHUNK; i < len; i++)
		assert_int_equal(d.data[i], 0);
	sealed.data[PREFIX + 2 * CCHUNK + 100] ^= 0x01;

	/* No room for the next chunk: an error, not a short body. */
	d.cap = CHUNK + 1;
	assert_int_equal(open_to_dest(r, &sealed, &d, &error), -1);
	assert_non_null(error);
	d.cap = len;

	/* After a reset without a destination, the reader's own buffer again. */
	seal_reader_reset(r, sink_buf, &out);
	buf_init(&out);
	assert_int_equal(seal_reader_write(r, sealed.data, sealed.len, &error), 0);
	assert_int_equal(seal_reader_finish(r, &error), 0);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, plain, len);
	buf_free(&out);
	seal_reader_free(&r);
	seal_opener_free(&o);
	buf_free(&sealed);
	free(d.data);
	free(plain);
}

/* ---- metadata parts and blobs -------------------------------------------- */

static void test_meta_roundtrip_and_tamper(void **state)
{
	static const char meta[] = "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"secret subject\" NIL)";
	static const char body[] = "body";
	struct seal_writer *w;
	struct seal_sender *s;
	struct seal_opener *o;
	struct buf sealed;
	const char *error = NULL;
	uint8_t *m, *plain;
	size_t m_len, plain_len;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	buf_init(&sealed);
	assert_int_equal(seal_writer_begin(s, sink_buf, &sealed, &w, &error), 0);
	assert_int_equal(seal_writer_write(w, body, 4, &error), 0);
	assert_int_equal(seal_writer_finish(w, &error), 0);
	assert_int_equal(seal_writer_seal_meta(w, meta, sizeof(meta) - 1, &m, &m_len, &error), 0);
	seal_writer_free(&w);
	assert_int_equal(m_len, BLOB_OVERHEAD + sizeof(meta) - 1);
	/* The meta part carries the record's header: it can be matched to it. */
	assert_memory_equal(m, sealed.data, SEAL_HEADER_BYTES);
	assert_null(memmem(m, m_len, "secret", 6));

	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	assert_int_equal(seal_blob_open(o, m, m_len, &plain, &plain_len, &error), 0);
	assert_int_equal(plain_len, sizeof(meta) - 1);
	assert_memory_equal(plain, meta, plain_len);
	assert_int_equal(plain[plain_len], '\0');
	free(plain);
	for (size_t pos = 0; pos < m_len; pos++) {
		m[pos] ^= 0x04;
		error = NULL;
		assert_int_equal(seal_blob_open(o, m, m_len, &plain, &plain_len, &error), -1);
		assert_non_null(error);
		m[pos] ^= 0x04;
	}
	for (size_t cut = 0; cut < m_len; cut++)
		assert_int_equal(seal_blob_open(o, m, cut, &plain, &plain_len, &error), -1);
	{
		uint8_t *longer = malloc(m_len + 1);

		assert_non_null(longer);
		memcpy(longer, m, m_len);
		longer[m_len] = 0;
		assert_int_equal(seal_blob_open(o, longer, m_len + 1, &plain, &plain_len, &error),
				 -1);
		free(longer);
	}
	/* The body stream is not a blob and a blob is not a body stream. */
	assert_int_equal(seal_blob_open(o, sealed.data, sealed.len, &plain, &plain_len, &error),
			 -1);
	assert_true(open_fails(o, m, m_len));
	seal_opener_free(&o);
	free(m);
	buf_free(&sealed);
	seal_sender_free(&s);
}

static void test_blob_roundtrip(void **state)
{
	static const size_t sizes[] = {0, 1, 31, 4096, 3 * CHUNK};
	struct seal_sender *s;
	struct seal_opener *o;

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		uint8_t *data = random_bytes(sizes[i]), *blob, *plain;
		size_t blob_len, plain_len;
		const char *error = NULL;

		assert_int_equal(seal_blob_seal(s, data, sizes[i], &blob, &blob_len, &error), 0);
		assert_int_equal(blob_len, BLOB_OVERHEAD + sizes[i]);
		assert_int_equal(seal_blob_open(o, blob, blob_len, &plain, &plain_len, &error), 0);
		assert_int_equal(plain_len, sizes[i]);
		if (sizes[i] > 0)
			assert_memory_equal(plain, data, sizes[i]);
		free(plain);
		blob[rand_below(blob_len)] ^= 0x10;
		assert_int_equal(seal_blob_open(o, blob, blob_len, &plain, &plain_len, &error), -1);
		free(blob);
		free(data);
	}
	seal_opener_free(&o);
	seal_sender_free(&s);
}

/* ---- delivery epochs -------------------------------------------------------- */

static void test_many_messages_one_epoch(void **state)
{
	enum { N = 300 };
	struct seal_sender *s;
	struct seal_opener *o;
	struct buf sealed[N];
	uint8_t *metas[N];
	size_t meta_lens[N];

	assert_int_equal(seal_sender_new(seal_keypair_public(kp_a), &s), 0);
	for (int i = 0; i < N; i++) {
		struct seal_writer *w;
		const char *error = NULL;
		char text[64];
		int n = snprintf(text, sizeof(text), "message %d", i);

		buf_init(&sealed[i]);
		assert_int_equal(seal_writer_begin(s, sink_buf, &sealed[i], &w, &error), 0);
		assert_int_equal(seal_writer_write(w, text, (size_t)n, &error), 0);
		assert_int_equal(seal_writer_finish(w, &error), 0);
		assert_int_equal(
		    seal_writer_seal_meta(w, text, (size_t)n, &metas[i], &meta_lens[i], &error), 0);
		seal_writer_free(&w);
		/* All records of the epoch share its public key. */
		assert_memory_equal(sealed[i].data + 8, sealed[0].data + 8, SEAL_PK_BYTES);
	}
	assert_false(seal_sender_expired(s, 3600, N + 1));
	assert_true(seal_sender_expired(s, 3600, N));
	assert_true(seal_sender_expired(s, 0, 1000000));
	seal_sender_free(&s);
	assert_null(s);

	/* One opener, twice over, in shuffled order: all open (warm cache). */
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < N; k++) {
			int i = (k * 7 + round) % N;
			char text[64];
			int n = snprintf(text, sizeof(text), "message %d", i);
			const char *error = NULL;
			uint8_t *plain;
			size_t plain_len;
			struct buf out;

			assert_int_equal(
			    open_pieces(o, sealed[i].data, sealed[i].len, 0, &out, &error), 0);
			assert_int_equal(out.len, (size_t)n);
			assert_memory_equal(out.data, text, (size_t)n);
			buf_free(&out);
			assert_int_equal(
			    seal_blob_open(o, metas[i], meta_lens[i], &plain, &plain_len, &error),
			    0);
			assert_memory_equal(plain, text, (size_t)n);
			free(plain);
		}
	}
	seal_opener_free(&o);
	for (int i = 0; i < N; i++) {
		buf_free(&sealed[i]);
		free(metas[i]);
	}
}

/* More epochs than the opener caches: eviction must not break anything. */
static void test_opener_cache_eviction(void **state)
{
	enum { EPOCHS = 150 };
	struct seal_opener *o;
	struct buf sealed[EPOCHS];

	for (int i = 0; i < EPOCHS; i++)
		seal_to(kp_a, (const uint8_t *)&i, sizeof(i), &sealed[i]);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (int round = 0; round < 3; round++) {
		for (int k = 0; k < EPOCHS; k++) {
			int i = round == 1 ? EPOCHS - 1 - k : (k * 11) % EPOCHS;
			const char *error = NULL;
			struct buf out;

			assert_int_equal(
			    open_pieces(o, sealed[i].data, sealed[i].len, 0, &out, &error), 0);
			assert_int_equal(out.len, sizeof(i));
			assert_memory_equal(out.data, &i, sizeof(i));
			buf_free(&out);
		}
	}
	seal_opener_free(&o);
	for (int i = 0; i < EPOCHS; i++)
		buf_free(&sealed[i]);
}

/* One opener shared by four threads (FETCH opens a session's bodies on
 * all pool threads), each opening records of more epochs than it caches,
 * in different orders: every record opens to its own bytes. */
enum { SHARED_EPOCHS = 150 };
struct shared_open {
	struct seal_opener *o;
	struct buf *sealed;
	int start, bad;
};

static void *shared_open_main(void *p)
{
	struct shared_open *a = p;

	for (int k = 0; k < 3 * SHARED_EPOCHS; k++) {
		int i = (a->start + k * 7) % SHARED_EPOCHS;
		const char *error = NULL;
		struct buf out;

		if (open_pieces(a->o, a->sealed[i].data, a->sealed[i].len, 0, &out, &error) < 0 ||
		    out.len != sizeof(i) || memcmp(out.data, &i, sizeof(i)) != 0)
			a->bad++;
		buf_free(&out);
	}
	return NULL;
}

static void test_opener_shared_by_threads(void **state)
{
	struct buf sealed[SHARED_EPOCHS];
	struct shared_open args[4];
	struct seal_opener *o;
	pthread_t th[4];

	for (int i = 0; i < SHARED_EPOCHS; i++)
		seal_to(kp_a, (const uint8_t *)&i, sizeof(i), &sealed[i]);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	for (int t = 0; t < 4; t++) {
		args[t] = (struct shared_open){o, sealed, t * 37, 0};
		assert_int_equal(pthread_create(&th[t], NULL, shared_open_main, &args[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].bad, 0);
	}
	seal_opener_free(&o);
	for (int i = 0; i < SHARED_EPOCHS; i++)
		buf_free(&sealed[i]);
}

static void test_sender_rejects_bad_public_key(void **state)
{
	uint8_t zero[SEAL_PK_BYTES] = {0};
	struct seal_sender *s = NULL;

	/* A low-order point gives no shared secret. */
	assert_int_equal(seal_sender_new(zero, &s), -1);
	assert_null(s);
}

/* ---- account keys ------------------------------------------------------------ */

static void test_key_wrap_password(void **state)
{
	static const char pw[] = "correct horse battery staple";
	struct seal_kdf_params params;
	struct seal_keypair *kp = NULL;
	const char *error = NULL;
	uint8_t *blob;
	size_t blob_len;

	seal_kdf_params_default(&params);
	assert_int_equal(params.opslimit, 1);
	assert_int_equal(params.memlimit, 8192);
	assert_int_equal(seal_key_wrap(kp_a, pw, strlen(pw), &params, &blob, &blob_len, &error), 0);
	assert_memory_equal(blob, "SMK\x01\x01", 5);
	assert_int_equal(
	    seal_key_unwrap(blob, blob_len, pw, strlen(pw), seal_keypair_public(kp_a), &kp, &error),
	    0);
	assert_memory_equal(seal_keypair_public(kp), seal_keypair_public(kp_a), SEAL_PK_BYTES);
	seal_keypair_free(&kp);
	assert_null(kp);

	static const char *const wrong[] = {"correct horse battery stapl", "",
					    "Correct horse battery staple",
					    "correct horse battery staple "};
	for (size_t i = 0; i < N_ELEMENTS(wrong); i++) {
		error = NULL;
		assert_int_equal(seal_key_unwrap(blob, blob_len, wrong[i], strlen(wrong[i]),
						 seal_keypair_public(kp_a), &kp, &error),
				 -1);
		assert_string_equal(error, "wrong password");
		assert_null(kp);
	}
	/* The right password against another account's public key. */
	assert_int_equal(
	    seal_key_unwrap(blob, blob_len, pw, strlen(pw), seal_keypair_public(kp_b), &kp, &error),
	    -1);
	assert_string_not_equal(error, "wrong password");
	assert_null(kp);
	free(blob);
}

static void test_key_blob_tamper(void **state)
{
	static const char pw[] = "pw";
	struct seal_kdf_params params;
	struct seal_keypair *kp = NULL;
	const char *error = NULL;
	uint8_t *blob;
	size_t blob_len;

	seal_kdf_params_default(&params);
	assert_int_equal(seal_key_wrap(kp_a, pw, 2, &params, &blob, &blob_len, &error), 0);
	for (size_t pos = 0; pos < blob_len; pos++) {
		/* Flipping a low bit of the cost may still be in range: then the
		 * changed parameters (authenticated) make the unwrap fail. */
		blob[pos] ^= 0x01;
		error = NULL;
		assert_int_equal(
		    seal_key_unwrap(blob, blob_len, pw, 2, seal_keypair_public(kp_a), &kp, &error),
		    -1);
		assert_non_null(error);
		assert_null(kp);
		blob[pos] ^= 0x01;
	}
	blob[3] = 2;
	assert_int_equal(
	    seal_key_unwrap(blob, blob_len, pw, 2, seal_keypair_public(kp_a), &kp, &error), -1);
	assert_string_equal(error, "unsupported wrapped key version");
	blob[3] = 1;
	assert_int_equal(
	    seal_key_unwrap(blob, blob_len - 1, pw, 2, seal_keypair_public(kp_a), &kp, &error), -1);
	/* A stored cost beyond the accepted bound is refused before any work. */
	memset(blob + 13, 0xff, 8);
	assert_int_equal(
	    seal_key_unwrap(blob, blob_len, pw, 2, seal_keypair_public(kp_a), &kp, &error), -1);
	assert_string_equal(error, "wrapped key has Argon2id parameters out of range");
	free(blob);
}

static void test_recovery_code(void **state)
{
	char code[SEAL_RECOVERY_CODE_MAX], typed[SEAL_RECOVERY_CODE_MAX * 2];
	char norm[SEAL_RECOVERY_CODE_MAX], other[SEAL_RECOVERY_CODE_MAX];
	struct seal_kdf_params params;
	struct seal_keypair *kp = NULL;
	const char *error = NULL;
	uint8_t *blob;
	size_t blob_len, t = 0;

	seal_recovery_code_generate(code);
	assert_int_equal(strlen(code), 39);
	for (size_t i = 0; i < 39; i++) {
		if (i % 5 == 4)
			assert_int_equal(code[i], '-');
		else
			assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", code[i]));
	}
	seal_recovery_code_generate(other);
	assert_string_not_equal(code, other);

	seal_kdf_params_default(&params);
	assert_int_equal(seal_key_wrap(kp_a, code, strlen(code), &params, &blob, &blob_len, &error),
			 0);

	/* Typed in lower case with spaces instead of dashes, and stray ones. */
	for (size_t i = 0; code[i] != '\0'; i++) {
		if (code[i] == '-') {
			typed[t++] = ' ';
			continue;
		}
		typed[t++] =
		    (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a' : code[i]);
		if (i == 1)
			typed[t++] = '-';
	}
	typed[t] = '\0';
	assert_int_equal(seal_recovery_code_normalize(typed, norm), 0);
	assert_string_equal(norm, code);
	assert_int_equal(seal_key_unwrap(blob, blob_len, norm, strlen(norm),
					 seal_keypair_public(kp_a), &kp, &error),
			 0);
	seal_keypair_free(&kp);

	/* Another code does not unwrap. */
	assert_int_equal(seal_key_unwrap(blob, blob_len, other, strlen(other),
					 seal_keypair_public(kp_a), &kp, &error),
			 -1);
	assert_string_equal(error, "wrong password");
	free(blob);

	static const char *const bad[] = {
	    "",
	    "ABCD-EFGH",
	    "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-456",   /* 31 characters */
	    "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-45677", /* 33 */
	    "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4560",  /* '0' */
	    "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4518",  /* '1', '8' */
	    "ABCD_EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567",
	};
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(seal_recovery_code_normalize(bad[i], norm), -1);
	assert_int_equal(
	    seal_recovery_code_normalize(" abcd efgh ijkl mnop qrst uvwx yz23 4567 ", norm), 0);
	assert_string_equal(norm, "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567");
}

/* Changing the password re-wraps the key, never the mail. */
static void test_password_change_keeps_old_mail(void **state)
{
	static const char old_pw[] = "old password", new_pw[] = "new password";
	static const char text[] = "Subject: before the change\r\n\r\nstill readable\r\n";
	uint8_t pk[SEAL_PK_BYTES];
	struct seal_kdf_params params;
	struct seal_keypair *acct, *kp = NULL;
	uint8_t *old_blob, *new_blob;
	size_t old_len, new_len;
	const char *error = NULL;
	struct seal_opener *o;
	struct buf sealed, out;

	assert_int_equal(seal_keypair_generate(&acct), 0);
	memcpy(pk, seal_keypair_public(acct), sizeof(pk));
	seal_kdf_params_default(&params);
	assert_int_equal(
	    seal_key_wrap(acct, old_pw, strlen(old_pw), &params, &old_blob, &old_len, &error), 0);
	seal_keypair_free(&acct);

	/* Mail arrives: sealed with the public key only. */
	{
		struct seal_sender *s;

		assert_int_equal(seal_sender_new(pk, &s), 0);
		seal_pieces(s, (const uint8_t *)text, sizeof(text) - 1, 3, &sealed);
		seal_sender_free(&s);
	}

	/* Password change: unwrap with the old, re-wrap the same key. */
	assert_int_equal(
	    seal_key_unwrap(old_blob, old_len, old_pw, strlen(old_pw), pk, &kp, &error), 0);
	assert_int_equal(
	    seal_key_wrap(kp, new_pw, strlen(new_pw), &params, &new_blob, &new_len, &error), 0);
	seal_keypair_free(&kp);

	/* Next login: the new password unwraps and opens the old record. */
	assert_int_equal(
	    seal_key_unwrap(new_blob, new_len, new_pw, strlen(new_pw), pk, &kp, &error), 0);
	assert_int_equal(seal_opener_new(kp, &o), 0);
	seal_keypair_free(&kp);
	assert_int_equal(open_pieces(o, sealed.data, sealed.len, 5, &out, &error), 0);
	assert_int_equal(out.len, sizeof(text) - 1);
	assert_memory_equal(out.data, text, out.len);
	buf_free(&out);
	seal_opener_free(&o);

	/* The old password no longer opens the new blob. */
	assert_int_equal(
	    seal_key_unwrap(new_blob, new_len, old_pw, strlen(old_pw), pk, &kp, &error), -1);
	assert_string_equal(error, "wrong password");
	assert_null(kp);
	free(old_blob);
	free(new_blob);
	buf_free(&sealed);
}

static void test_kdf_params_bounds(void **state)
{
	static const struct {
		const char *ops, *mem;
		uint64_t want_ops, want_mem;
	} cases[] = {
	    {"1", "8192", 1, 8192},
	    {"0", "1", 1, 8192}, /* clamped up to the minimum */
	    {"3", "16777216", 3, 16777216},
	    {"x", "12k", 2, 67108864}, /* not numbers: the defaults */
	};
	struct seal_kdf_params p;
	const char *error = NULL;
	uint8_t *blob;
	size_t blob_len;

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		assert_int_equal(setenv("SEALMAIL_ARGON2_OPS", cases[i].ops, 1), 0);
		assert_int_equal(setenv("SEALMAIL_ARGON2_MEM", cases[i].mem, 1), 0);
		seal_kdf_params_default(&p);
		assert_int_equal(p.opslimit, cases[i].want_ops);
		assert_int_equal(p.memlimit, cases[i].want_mem);
	}
	assert_int_equal(setenv("SEALMAIL_ARGON2_OPS", "1", 1), 0);
	assert_int_equal(setenv("SEALMAIL_ARGON2_MEM", "8192", 1), 0);
	p.opslimit = 0;
	p.memlimit = 8192;
	assert_int_equal(seal_key_wrap(kp_a, "x", 1, &p, &blob, &blob_len, &error), -1);
	p.opslimit = 1;
	p.memlimit = 1024;
	assert_int_equal(seal_key_wrap(kp_a, "x", 1, &p, &blob, &blob_len, &error), -1);
}

/* ---- small helpers ------------------------------------------------------------ */

static void test_secretbox(void **state)
{
	static const char text[] = "alice@example.org\nbob@example.org\n";
	uint8_t key[SEAL_KEY_BYTES], key2[SEAL_KEY_BYTES];
	uint8_t *box, *plain;
	size_t box_len, plain_len;

	seal_random(key, sizeof(key));
	seal_random(key2, sizeof(key2));
	assert_int_equal(seal_secretbox_encrypt(key, text, sizeof(text) - 1, &box, &box_len), 0);
	assert_int_equal(box_len, 24 + sizeof(text) - 1 + SEAL_TAG_BYTES);
	assert_int_equal(seal_secretbox_decrypt(key, box, box_len, &plain, &plain_len), 0);
	assert_int_equal(plain_len, sizeof(text) - 1);
	assert_memory_equal(plain, text, plain_len);
	free(plain);
	assert_int_equal(seal_secretbox_decrypt(key2, box, box_len, &plain, &plain_len), -1);
	for (size_t pos = 0; pos < box_len; pos++) {
		box[pos] ^= 0x20;
		assert_int_equal(seal_secretbox_decrypt(key, box, box_len, &plain, &plain_len), -1);
		box[pos] ^= 0x20;
	}
	for (size_t cut = 0; cut < box_len; cut++)
		assert_int_equal(seal_secretbox_decrypt(key, box, cut, &plain, &plain_len), -1);
	free(box);

	assert_int_equal(seal_secretbox_encrypt(key, "", 0, &box, &box_len), 0);
	assert_int_equal(seal_secretbox_decrypt(key, box, box_len, &plain, &plain_len), 0);
	assert_int_equal(plain_len, 0);
	free(plain);
	free(box);
}

static void test_keyed_hash_and_memcmp(void **state)
{
	uint8_t key[SEAL_KEY_BYTES] = {1}, key2[SEAL_KEY_BYTES] = {2};
	uint8_t h1[SEAL_HASH_BYTES], h2[SEAL_HASH_BYTES], h3[SEAL_HASH_BYTES];

	seal_keyed_hash(key, "alice@example.org", 17, h1);
	seal_keyed_hash(key, "alice@example.org", 17, h2);
	assert_int_equal(seal_memcmp(h1, h2, sizeof(h1)), 0);
	seal_keyed_hash(key2, "alice@example.org", 17, h3);
	assert_int_not_equal(seal_memcmp(h1, h3, sizeof(h1)), 0);
	seal_keyed_hash(key, "alice@example.orG", 17, h3);
	assert_int_not_equal(seal_memcmp(h1, h3, sizeof(h1)), 0);
	assert_int_equal(seal_memcmp("", "", 0), 0);
}

static int group_setup(void **state)
{
	if (seal_init() < 0)
		return -1;
	/* Argon2id at libsodium's minimum so that wrapping takes microseconds. */
	if (setenv("SEALMAIL_ARGON2_OPS", "1", 1) < 0 ||
	    setenv("SEALMAIL_ARGON2_MEM", "8192", 1) < 0)
		return -1;
	if (seal_keypair_generate(&kp_a) < 0 || seal_keypair_generate(&kp_b) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	seal_keypair_free(&kp_a);
	seal_keypair_free(&kp_b);
	return 0;
}

/* A mailbox holds records of both versions: one opener and one reader
 * (reset between records, as FETCH does) open them in any order. */
static void test_versions_side_by_side(void **state)
{
	const size_t len = 2 * CHUNK + 77;
	uint8_t *plain = random_bytes(len);
	struct seal_opener *o;
	struct seal_reader *r;
	const char *error = NULL;
	struct buf rec[2], out;

	assert_int_equal(use_v1(state), 0);
	seal_to(kp_a, plain, len, &rec[0]);
	assert_int_equal(use_v2(state), 0);
	seal_to(kp_a, plain, len, &rec[1]);
	assert_int_equal(rec[0].data[3], 1);
	assert_int_equal(rec[1].data[3], 2);
	assert_int_equal(rec[0].len - rec[1].len, SEAL_STREAM_HEADER_BYTES + 3);
	assert_int_equal(seal_opener_new(kp_a, &o), 0);
	buf_init(&out);
	assert_int_equal(seal_reader_begin(o, sink_buf, &out, &r), 0);
	for (int i = 0; i < 6; i++) {
		const struct buf *b = &rec[(i / 2 + i) % 2]; /* 1 2 2 1 1 2 */

		buf_reset(&out);
		seal_reader_reset(r, sink_buf, &out);
		assert_int_equal(seal_reader_write(r, b->data, b->len, &error), 0);
		assert_int_equal(seal_reader_finish(r, &error), 0);
		assert_int_equal(out.len, len);
		assert_memory_equal(out.data, plain, len);
	}
	seal_reader_free(&r);
	buf_free(&out);
	seal_opener_free(&o);
	buf_free(&rec[0]);
	buf_free(&rec[1]);
	free(plain);
}

static void test_cipher_names(void **state)
{
	enum seal_record_cipher c;
	const char *error = NULL;

	assert_int_equal(seal_record_cipher_parse("auto", &c), 0);
	assert_int_equal(c, SEAL_CIPHER_AUTO);
	assert_int_equal(seal_record_cipher_parse("xchacha20poly1305", &c), 0);
	assert_int_equal(c, SEAL_CIPHER_XCHACHA20POLY1305);
	assert_int_equal(seal_record_cipher_parse("aes256gcm", &c), 0);
	assert_int_equal(c, SEAL_CIPHER_AES256GCM);
	assert_int_equal(seal_record_cipher_parse("AES", &c), -1);
	assert_int_equal(seal_record_cipher_parse("", &c), -1);
	assert_int_equal(seal_set_record_cipher(SEAL_CIPHER_XCHACHA20POLY1305, &error), 0);
	assert_string_equal(seal_record_cipher_name(), "xchacha20poly1305");
	assert_int_equal(seal_set_record_cipher(SEAL_CIPHER_AES256GCM, &error), 0);
	assert_string_equal(seal_record_cipher_name(), "aes256gcm");
	assert_int_equal(seal_set_record_cipher(SEAL_CIPHER_AUTO, &error), 0);
	assert_string_equal(seal_record_cipher_name(), "aes256gcm");
}

/* The record tests, run once per format version. */
static const struct {
	const char *name;
	CMUnitTestFunction fn;
} record_tests[] = {
#define T(f)                                                                                       \
	{                                                                                          \
#f, f                                                                              \
	}
    T(test_roundtrip_sizes),
    T(test_records_are_randomised),
    T(test_flip_every_byte_small),
    T(test_flip_sampled_multichunk),
    T(test_truncation),
    T(test_reorder),
    T(test_append),
    T(test_append_fails_early),
    T(test_unknown_version_and_magic),
    T(test_other_account_fails),
    T(test_sink_failure),
    T(test_reader_dest),
    T(test_meta_roundtrip_and_tamper),
    T(test_blob_roundtrip),
    T(test_many_messages_one_epoch),
#undef T
};

int main(void)
{
	static const struct CMUnitTest once[] = {
	    cmocka_unit_test(test_opener_cache_eviction),
	    cmocka_unit_test(test_opener_shared_by_threads),
	    cmocka_unit_test(test_sender_rejects_bad_public_key),
	    cmocka_unit_test(test_key_wrap_password),
	    cmocka_unit_test(test_key_blob_tamper),
	    cmocka_unit_test(test_recovery_code),
	    cmocka_unit_test(test_password_change_keeps_old_mail),
	    cmocka_unit_test(test_kdf_params_bounds),
	    cmocka_unit_test(test_secretbox),
	    cmocka_unit_test(test_keyed_hash_and_memcmp),
	};
	static const struct CMUnitTest with_aes[] = {
	    cmocka_unit_test(test_versions_side_by_side),
	    cmocka_unit_test(test_cipher_names),
	};
	struct CMUnitTest
	    tests[2 * N_ELEMENTS(record_tests) + N_ELEMENTS(once) + N_ELEMENTS(with_aes)];
	char names[2 * N_ELEMENTS(record_tests)][64];
	int have_aes = seal_init() == 0 &&
		       seal_set_record_cipher(SEAL_CIPHER_AES256GCM, &(const char *){NULL}) == 0;
	size_t n = 0;

	for (int v = 1; v <= 2; v++) {
		if (v == 2 && !have_aes) {
			printf("this CPU cannot run AES-256-GCM: version 2 records not tested\n");
			break;
		}
		for (size_t i = 0; i < N_ELEMENTS(record_tests); i++, n++) {
			snprintf(names[n], sizeof(names[n]), "v%d %s", v, record_tests[i].name);
			tests[n] = (struct CMUnitTest){names[n], record_tests[i].fn,
						       v == 1 ? use_v1 : use_v2, NULL, NULL};
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(once); i++)
		tests[n++] = once[i];
	for (size_t i = 0; have_aes && i < N_ELEMENTS(with_aes); i++)
		tests[n++] = with_aes[i];
	return _cmocka_run_group_tests("seal", tests, n, group_setup, group_teardown);
}

/* fuzz-seal.c — the sealed-record opener (seal_reader_*, seal_blob_open) on
 * bytes from storage, with a fixed test keypair.
 *
 * Trust boundary: records come back from disk or an object store that anyone
 * with access may have altered. The first input byte picks the mode:
 *   even  the rest is a record: it is opened as a stream (whole and in
 *         pieces, which must agree) and as a blob; whatever opens is sealed
 *         again and must open to the same bytes;
 *   odd   the rest describes a plaintext (length, pattern), whether to start
 *         a new delivery epoch, which format version to write (bit 2 of
 *         the flags: 1 for version 2, AES-256-GCM, where the CPU runs it),
 *         how to split the writes and reads, and up to 8 edits (flip,
 * truncate, append, delete, insert, swap chunks, repeat a chunk, splice another record's header).
 * The plaintext is sealed with seal_writer (and as a blob and a metadata part), edited, then
 * opened: an unedited record must open to exactly the plaintext, an edited one must fail, and what
 * a failing reader delivered before failing is always a prefix of the plaintext. Seeds:
 * tests/fuzz/corpus/seal/. Records there are sealed to the fixed key below, so that the fuzzer
 * starts past the AEAD checks; regenerate them with SEALMAIL_FUZZ_SEAL_SEEDS=tests/fuzz/corpus/seal
 * build/fuzz/fuzz-seal This harness builds the keypair itself, so it includes crypto/'s private
 * header and <sodium.h>. */
#include "crypto/seal-private.h"

#include "fuzz.h"

#include <sodium.h>

/* The layout of the version being written: 1 or 2. */
#define FUZZ_PREFIX_BYTES       (SEAL_HEADER_BYTES + (fuzz_version == 1 ? SEAL_STREAM_HEADER_BYTES : 0))
#define FUZZ_OVERHEAD_BYTES     (fuzz_version == 1 ? SEAL_CHUNK_OVERHEAD_BYTES : SEAL_TAG_BYTES)
#define FUZZ_CIPHER_CHUNK_BYTES (SEAL_CHUNK_BYTES + FUZZ_OVERHEAD_BYTES)
#define FUZZ_PLAIN_MAX          (3 * SEAL_CHUNK_BYTES + 1024)
#define FUZZ_BLOB_MAX           4096
#define FUZZ_EDITS_MAX          8
#define FUZZ_PIECES_MAX         1024 /* writes per record, to keep runs fast */

enum fuzz_edit {
	EDIT_FLIP,
	EDIT_TRUNCATE,
	EDIT_APPEND,
	EDIT_DELETE,
	EDIT_INSERT,
	EDIT_SWAP_CHUNKS,
	EDIT_REPEAT_CHUNK,
	EDIT_SPLICE_HEADER,
	EDIT_COUNT
};

static int fuzz_version;
static int fuzz_have_aes;
static struct seal_keypair *fuzz_kp;
static struct seal_opener *fuzz_opener;
static struct seal_sender *fuzz_sender;

static int fuzz_sink(void *ctx, const uint8_t *data, size_t len)
{
	return buf_append(ctx, data, len);
}

/* ---- sealing and opening ------------------------------------------------------ */

/* Writes VERSION (1 or 2; 1 where the CPU cannot run AES-256-GCM) from now on. */
static void fuzz_use_version(int version)
{
	const char *error;

	if (version == 2 && !fuzz_have_aes)
		version = 1;
	FUZZ_CHECK(seal_set_record_cipher(version == 2 ? SEAL_CIPHER_AES256GCM
						       : SEAL_CIPHER_XCHACHA20POLY1305,
					  &error) == 0);
	fuzz_version = version;
}

/* Seals PLAIN as a record, writing it in pieces of STEP bytes (0: whole). */
static void fuzz_seal(const uint8_t *plain, size_t len, size_t step, struct buf *rec)
{
	struct seal_writer *w;
	const char *error;
	size_t chunks = len / SEAL_CHUNK_BYTES + 1;

	if (step != 0 && step < len / FUZZ_PIECES_MAX)
		step = len / FUZZ_PIECES_MAX;
	buf_init(rec);
	FUZZ_CHECK(seal_writer_begin(fuzz_sender, fuzz_sink, rec, &w, &error) == 0);
	for (size_t pos = 0; pos < len;) {
		size_t n = step == 0 || step > len - pos ? len - pos : step;

		FUZZ_CHECK(seal_writer_write(w, plain + pos, n, &error) == 0);
		pos += n;
	}
	FUZZ_CHECK(seal_writer_finish(w, &error) == 0);
	FUZZ_CHECK(seal_writer_write(w, "x", 1, &error) < 0);
	FUZZ_CHECK(seal_writer_sealed_size(w) == rec->len);
	FUZZ_CHECK(rec->len == FUZZ_PREFIX_BYTES + len + chunks * FUZZ_OVERHEAD_BYTES);
	FUZZ_CHECK(rec->data[3] == fuzz_version);
	seal_writer_free(&w);
	FUZZ_CHECK(w == NULL);
}

struct fuzz_open {
	int ok;
	struct buf out;
	const char *error;
};

/* Opens REC as a stream, feeding it in pieces of STEP bytes (0: whole). */
static void fuzz_read(const uint8_t *rec, size_t len, size_t step, struct fuzz_open *r)
{
	struct seal_reader *rd;
	size_t pos = 0;

	if (step != 0 && step < len / FUZZ_PIECES_MAX)
		step = len / FUZZ_PIECES_MAX;
	buf_init(&r->out);
	r->ok = 0;
	r->error = NULL;
	FUZZ_CHECK(seal_reader_begin(fuzz_opener, fuzz_sink, &r->out, &rd) == 0);
	while (pos < len) {
		size_t n = step == 0 || step > len - pos ? len - pos : step;

		if (seal_reader_write(rd, rec + pos, n, &r->error) < 0)
			break;
		pos += n;
	}
	if (pos == len)
		r->ok = seal_reader_finish(rd, &r->error) == 0;
	if (!r->ok) {
		const char *again = NULL;

		FUZZ_CHECK(r->error != NULL);
		/* A failed reader stays failed. */
		FUZZ_CHECK(seal_reader_write(rd, "x", 1, &again) < 0 && again != NULL);
	}
	seal_reader_free(&rd);
	FUZZ_CHECK(rd == NULL);
}

static int fuzz_blob_open(const uint8_t *blob, size_t len, struct buf *out)
{
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	const char *error = NULL;

	buf_init(out);
	if (seal_blob_open(fuzz_opener, blob, len, &plain, &plain_len, &error) < 0) {
		FUZZ_CHECK(error != NULL && plain == NULL);
		return -1;
	}
	FUZZ_CHECK(plain != NULL && plain[plain_len] == '\0');
	FUZZ_CHECK(buf_append(out, plain, plain_len) == 0);
	mem_wipe(plain, plain_len);
	free(plain);
	return 0;
}

/* ---- mode 0: a record from storage -------------------------------------------- */

static void fuzz_raw(const uint8_t *data, size_t size, uint8_t mode)
{
	/* Around both versions' chunk sizes (65,552 and 65,553). */
	static const size_t steps[] = {
	    1, 17, 4096, SEAL_CHUNK_BYTES + 16, SEAL_CHUNK_BYTES + 17, SEAL_CHUNK_BYTES + 18};
	struct fuzz_open whole, piece, again;
	struct buf plain, rec;
	uint8_t *blob;
	size_t blob_len;
	const char *error;

	fuzz_read(data, size, 0, &whole);
	fuzz_read(data, size, steps[(mode >> 1) % N_ELEMENTS(steps)], &piece);
	FUZZ_CHECK(piece.ok == whole.ok);
	if (whole.ok) {
		FUZZ_CHECK(
		    fuzz_mem_eq(piece.out.data, piece.out.len, whole.out.data, whole.out.len));
		/* What opened seals and opens again to the same bytes. */
		fuzz_seal(whole.out.data, whole.out.len, 0, &rec);
		fuzz_read(rec.data, rec.len, 0, &again);
		FUZZ_CHECK(again.ok);
		FUZZ_CHECK(
		    fuzz_mem_eq(again.out.data, again.out.len, whole.out.data, whole.out.len));
		buf_free(&again.out);
		buf_free(&rec);
	} else {
		/* Both delivered only verified chunks: the shorter is a prefix. */
		size_t n = piece.out.len < whole.out.len ? piece.out.len : whole.out.len;

		FUZZ_CHECK(fuzz_mem_eq(piece.out.data, n, whole.out.data, n));
	}
	buf_free(&whole.out);
	buf_free(&piece.out);

	if (fuzz_blob_open(data, size, &plain) == 0) {
		FUZZ_CHECK(size >= SEAL_HEADER_BYTES + 24 + SEAL_TAG_BYTES);
		FUZZ_CHECK(plain.len == size - SEAL_HEADER_BYTES - 24 - SEAL_TAG_BYTES);
		FUZZ_CHECK(seal_blob_seal(fuzz_sender, plain.data, plain.len, &blob, &blob_len,
					  &error) == 0);
		FUZZ_CHECK(blob_len == size);
		FUZZ_CHECK(fuzz_blob_open(blob, blob_len, &rec) == 0);
		FUZZ_CHECK(fuzz_mem_eq(rec.data, rec.len, plain.data, plain.len));
		free(blob);
		buf_free(&rec);
	}
	buf_free(&plain);
}

/* ---- mode 1: seal, edit, open ---------------------------------------------------- */

struct fuzz_edit_op {
	uint8_t op;
	uint32_t off;
	uint8_t val;
};

static void fuzz_chunk_span(size_t len, size_t i, size_t *off_r, size_t *n_r)
{
	size_t off = FUZZ_PREFIX_BYTES + i * FUZZ_CIPHER_CHUNK_BYTES;

	*off_r = off < len ? off : len;
	*n_r = len - *off_r < FUZZ_CIPHER_CHUNK_BYTES ? len - *off_r : FUZZ_CIPHER_CHUNK_BYTES;
}

/* Applies the edits to a copy of REC; SPLICE is another record of the same
 * plaintext (only used by EDIT_SPLICE_HEADER). */
static void fuzz_edit(const struct buf *rec, const struct fuzz_edit_op *ops, size_t nops,
		      const struct buf *splice, struct buf *out)
{
	buf_init(out);
	FUZZ_CHECK(buf_append(out, rec->data, rec->len) == 0);
	for (size_t k = 0; k < nops; k++) {
		const struct fuzz_edit_op *e = &ops[k];
		size_t len = out->len, at = len ? e->off % len : 0, chunks, a, an, b, bn;
		struct buf t;

		switch ((enum fuzz_edit)(e->op % EDIT_COUNT)) {
		case EDIT_FLIP:
			if (len > 0)
				out->data[at] ^= (uint8_t)(e->val | 1);
			break;
		case EDIT_TRUNCATE:
			out->len = e->off % (len + 1);
			break;
		case EDIT_APPEND:
			FUZZ_CHECK(buf_append(out, &e->val, 1) == 0);
			break;
		case EDIT_DELETE:
			if (len > 0) {
				memmove(out->data + at, out->data + at + 1, len - at - 1);
				out->len--;
			}
			break;
		case EDIT_INSERT:
			FUZZ_CHECK(buf_reserve(out, 1) == 0);
			memmove(out->data + at + 1, out->data + at, len - at);
			out->data[at] = e->val;
			out->len++;
			break;
		case EDIT_SWAP_CHUNKS:
		case EDIT_REPEAT_CHUNK:
			if (len <= FUZZ_PREFIX_BYTES)
				break;
			chunks = (len - FUZZ_PREFIX_BYTES + FUZZ_CIPHER_CHUNK_BYTES - 1) /
				 FUZZ_CIPHER_CHUNK_BYTES;
			fuzz_chunk_span(len, e->off % chunks, &a, &an);
			fuzz_chunk_span(len, (e->off + 1) % chunks, &b, &bn);
			buf_init(&t);
			FUZZ_CHECK(buf_append(&t, out->data, a < b ? a : b) == 0);
			if (e->op % EDIT_COUNT == EDIT_SWAP_CHUNKS && a != b) {
				size_t lo = a < b ? a : b, lon = a < b ? an : bn;
				size_t hi = a < b ? b : a, hin = a < b ? bn : an;

				FUZZ_CHECK(buf_append(&t, out->data + hi, hin) == 0);
				FUZZ_CHECK(buf_append(&t, out->data + lo + lon, hi - lo - lon) ==
					   0);
				FUZZ_CHECK(buf_append(&t, out->data + lo, lon) == 0);
				FUZZ_CHECK(buf_append(&t, out->data + hi + hin, len - hi - hin) ==
					   0);
			} else {
				/* Chunk a twice in a row. */
				t.len = 0;
				FUZZ_CHECK(buf_append(&t, out->data, a + an) == 0);
				FUZZ_CHECK(buf_append(&t, out->data + a, len - a) == 0);
			}
			buf_free(out);
			*out = t;
			break;
		case EDIT_SPLICE_HEADER: {
			/* Another record's header (and stream header) on this body. */
			size_t n = FUZZ_PREFIX_BYTES < len ? FUZZ_PREFIX_BYTES : len;

			if (e->val & 1)
				n = SEAL_HEADER_BYTES < len ? SEAL_HEADER_BYTES : len;
			memcpy(out->data, splice->data, n);
			break;
		}
		case EDIT_COUNT:
			break;
		}
	}
}

/* Edits for a blob: the chunk edits do not apply. */
static void fuzz_edit_blob(const uint8_t *blob, size_t blob_len, const struct fuzz_edit_op *ops,
			   size_t nops, struct buf *out)
{
	struct fuzz_edit_op bops[FUZZ_EDITS_MAX];
	struct buf rec = {.data = (uint8_t *)blob,
			  .len = blob_len,
			  .cap = blob_len,
			  .used = blob_len},
		   none = rec;
	size_t n = 0;

	for (size_t k = 0; k < nops; k++) {
		uint8_t op = ops[k].op % EDIT_COUNT;

		if (op != EDIT_SWAP_CHUNKS && op != EDIT_REPEAT_CHUNK && op != EDIT_SPLICE_HEADER)
			bops[n++] = ops[k];
	}
	fuzz_edit(&rec, bops, n, &none, out);
}

static void fuzz_check_blob(const uint8_t *blob, size_t blob_len, const uint8_t *plain,
			    size_t plain_len, const struct fuzz_edit_op *ops, size_t nops)
{
	struct buf edited, opened;
	int changed;

	fuzz_edit_blob(blob, blob_len, ops, nops, &edited);
	changed = !fuzz_mem_eq(edited.data, edited.len, blob, blob_len);
	if (fuzz_blob_open(edited.data, edited.len, &opened) == 0) {
		FUZZ_CHECK(!changed);
		FUZZ_CHECK(fuzz_mem_eq(opened.data, opened.len, plain, plain_len));
	} else {
		FUZZ_CHECK(changed);
	}
	buf_free(&opened);
	buf_free(&edited);
}

static void fuzz_tamper(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct fuzz_edit_op ops[FUZZ_EDITS_MAX];
	uint8_t flags = fuzz_u8(&in);
	size_t plain_len = (fuzz_u16(&in) << 8 | fuzz_u8(&in)) % (FUZZ_PLAIN_MAX + 1);
	size_t wstep = fuzz_u16(&in), rstep = fuzz_u16(&in);
	size_t nops = fuzz_u8(&in) % (FUZZ_EDITS_MAX + 1), pattern_len, meta_len;
	const uint8_t *pattern;
	struct buf plain, rec, other, edited;
	struct fuzz_open r;
	uint8_t *blob;
	size_t blob_len;
	const char *error;
	struct seal_writer *w;
	int changed;

	for (size_t k = 0; k < nops; k++) {
		ops[k].op = fuzz_u8(&in);
		ops[k].off = fuzz_u32(&in);
		ops[k].val = fuzz_u8(&in);
	}
	pattern = fuzz_bytes(&in, in.left, &pattern_len);
	buf_init(&plain);
	FUZZ_CHECK(buf_reserve(&plain, plain_len) == 0);
	for (size_t i = 0; i < plain_len; i++)
		plain.data[i] = pattern_len ? pattern[i % pattern_len] : (uint8_t)i;
	plain.len = plain_len;
	if (flags & 1) /* whole chunks exactly: the final chunk is empty */
		plain.len = plain_len = plain_len / SEAL_CHUNK_BYTES * SEAL_CHUNK_BYTES;
	if (flags & 2) {
		/* A new delivery epoch: over many runs the opener's cache of
		 * epoch keys fills up and evicts. */
		seal_sender_free(&fuzz_sender);
		FUZZ_CHECK(seal_sender_new(fuzz_kp->pk, &fuzz_sender) == 0);
	}
	fuzz_use_version(flags & 4 ? 2 : 1);

	fuzz_seal(plain.data, plain.len, wstep, &rec);
	fuzz_seal(plain.data, plain.len, 0, &other);
	FUZZ_CHECK(!fuzz_mem_eq(rec.data, FUZZ_PREFIX_BYTES, other.data, FUZZ_PREFIX_BYTES));
	fuzz_edit(&rec, ops, nops, &other, &edited);
	changed = !fuzz_mem_eq(edited.data, edited.len, rec.data, rec.len);
	fuzz_read(edited.data, edited.len, rstep, &r);
	FUZZ_CHECK(r.ok == !changed);
	if (r.ok)
		FUZZ_CHECK(fuzz_mem_eq(r.out.data, r.out.len, plain.data, plain.len));
	else
		FUZZ_CHECK(r.out.len <= plain.len &&
			   fuzz_mem_eq(r.out.data, r.out.len, plain.data, r.out.len));
	buf_free(&r.out);
	buf_free(&edited);

	/* The metadata part of the same record, and a standalone blob. */
	meta_len = plain.len < FUZZ_BLOB_MAX ? plain.len : FUZZ_BLOB_MAX;
	buf_free(&rec);
	buf_init(&rec);
	FUZZ_CHECK(seal_writer_begin(fuzz_sender, fuzz_sink, &rec, &w, &error) == 0);
	FUZZ_CHECK(seal_writer_finish(w, &error) == 0);
	FUZZ_CHECK(seal_writer_seal_meta(w, plain.data, meta_len, &blob, &blob_len, &error) == 0);
	seal_writer_free(&w);
	fuzz_check_blob(blob, blob_len, plain.data, meta_len, ops, nops);
	free(blob);
	FUZZ_CHECK(seal_blob_seal(fuzz_sender, plain.data, meta_len, &blob, &blob_len, &error) ==
		   0);
	fuzz_check_blob(blob, blob_len, plain.data, meta_len, ops, nops);
	free(blob);

	buf_free(&rec);
	buf_free(&other);
	buf_free(&plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_tamper(data + 1, size - 1);
	else
		fuzz_raw(data + 1, size - 1, data[0]);
	return 0;
}

/* ---- set-up and seeds ------------------------------------------------------------- */

/* PREFIX-empty and PREFIX-message: records of the version being written. */
static void fuzz_write_record_seeds(const char *dir, const char *prefix, const char *msg,
				    size_t len)
{
	char name[32];
	struct buf rec;

	fuzz_seal((const uint8_t *)"", 0, 0, &rec);
	snprintf(name, sizeof(name), "%s-empty", prefix);
	fuzz_write_seed(dir, name, 0, rec.data, rec.len);
	buf_free(&rec);
	fuzz_seal((const uint8_t *)msg, len, 0, &rec);
	snprintf(name, sizeof(name), "%s-message", prefix);
	fuzz_write_seed(dir, name, 2, rec.data, rec.len);
	buf_free(&rec);
}

static void fuzz_write_seeds(const char *dir)
{
	static const char msg[] = "From: alice@example.net\r\nTo: bob@example.org\r\n"
				  "Subject: sealed\r\n\r\nHello Bob.\r\n";
	static const char mailbox[] = "Archive/2024/Receipts";
	/* mode 1: flags, length (24 bits), write step, read step, edit count,
	 * edits (op, offset u32, value), pattern */
	static const uint8_t tamper[][24] = {
	    {1, 0, 0, 0, 0, 0, 0, 0, 0, 'a'},          /* empty */
	    {0, 0, 0x10, 0, 0, 7, 0, 13, 0, 'x', 'y'}, /* no edit, split */
	    {1, 0x02, 0, 0, 0, 0, 0x10, 0, 1, EDIT_FLIP, 0, 1, 0, 0x10, 0x40},
	    {0, 0x01, 0x00, 0x05, 0, 0, 0, 0, 1, EDIT_TRUNCATE, 0, 1, 0, 0x88, 0},
	    {0, 0x02, 0x00, 0x03, 0, 0, 0, 0, 1, EDIT_SWAP_CHUNKS, 0, 0, 0, 0, 0},
	    {0, 0x01, 0x80, 0x00, 0, 0, 0, 0, 1, EDIT_REPEAT_CHUNK, 0, 0, 0, 0, 0},
	    {0, 0, 0x01, 0x00, 0, 0, 0, 0, 1, EDIT_SPLICE_HEADER, 0, 0, 0, 0, 0},
	    {0, 0, 0x01, 0x00, 0, 0, 0, 0, 2, EDIT_APPEND, 0, 0, 0, 0, EDIT_DELETE, 0, 0, 0, 9, 0},
	};
	struct buf plain, rec;
	uint8_t *blob;
	size_t blob_len;
	const char *error;
	struct seal_writer *w;
	char name[32];

	fuzz_use_version(1);
	fuzz_write_record_seeds(dir, "record", msg, sizeof(msg) - 1);
	/* One whole chunk and one more byte: a full TAG_MESSAGE chunk, then
	 * a one-byte final chunk. */
	buf_init(&plain);
	while (plain.len < SEAL_CHUNK_BYTES + 1)
		FUZZ_CHECK(buf_append(&plain, "Lorem ipsum dolor sit amet.\r\n",
				      plain.len + 29 <= SEAL_CHUNK_BYTES + 1
					  ? 29
					  : SEAL_CHUNK_BYTES + 1 - plain.len) == 0);
	fuzz_seal(plain.data, plain.len, 1000, &rec);
	fuzz_write_seed(dir, "record-two-chunks", 4, rec.data, rec.len);
	buf_free(&rec);
	buf_free(&plain);
	FUZZ_CHECK(seal_blob_seal(fuzz_sender, mailbox, sizeof(mailbox) - 1, &blob, &blob_len,
				  &error) == 0);
	fuzz_write_seed(dir, "blob-mailbox", 0, blob, blob_len);
	free(blob);
	buf_init(&rec);
	FUZZ_CHECK(seal_writer_begin(fuzz_sender, fuzz_sink, &rec, &w, &error) == 0);
	FUZZ_CHECK(seal_writer_write(w, msg, sizeof(msg) - 1, &error) == 0);
	FUZZ_CHECK(seal_writer_finish(w, &error) == 0);
	FUZZ_CHECK(seal_writer_seal_meta(w,
					 "\x05\x00\x00\x00\x01"
					 "4",
					 6, &blob, &blob_len, &error) == 0);
	seal_writer_free(&w);
	fuzz_write_seed(dir, "blob-meta", 0, blob, blob_len);
	free(blob);
	buf_free(&rec);
	for (size_t i = 0; i < N_ELEMENTS(tamper); i++) {
		uint8_t t[sizeof(tamper[i])];

		snprintf(name, sizeof(name), "tamper-%zu", i);
		fuzz_write_seed(dir, name, 1, tamper[i], sizeof(tamper[i]));
		/* The same with version 2 records. */
		memcpy(t, tamper[i], sizeof(t));
		t[0] |= 4;
		snprintf(name, sizeof(name), "tamper-v2-%zu", i);
		fuzz_write_seed(dir, name, 1, t, sizeof(t));
	}
	fuzz_use_version(2);
	FUZZ_CHECK(fuzz_version == 2);
	fuzz_write_record_seeds(dir, "record-v2", msg, sizeof(msg) - 1);
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t seed[32] = "sealmail fuzz-seal test keypair";
	const char *seeds = getenv("SEALMAIL_FUZZ_SEAL_SEEDS");

	if (seal_init() < 0)
		abort();
	fuzz_kp = sodium_malloc(sizeof(*fuzz_kp));
	if (fuzz_kp == NULL || crypto_kx_seed_keypair(fuzz_kp->pk, fuzz_kp->sk, seed) != 0 ||
	    seal_opener_new(fuzz_kp, &fuzz_opener) < 0 ||
	    seal_sender_new(fuzz_kp->pk, &fuzz_sender) < 0)
		abort();
	fuzz_have_aes = seal_set_record_cipher(SEAL_CIPHER_AES256GCM, &(const char *){NULL}) == 0;
	fuzz_use_version(1);
	if (seeds != NULL)
		fuzz_write_seeds(seeds);
	return 0;
}

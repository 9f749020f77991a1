/* fuzz-tlog-note.c — signed notes, checkpoints and verifier keys:
 * tlog_note_open, tlog_checkpoint_parse / _open, tlog_note_parse_verifier.
 *
 * Trust boundary: checkpoints and verifier keys are pasted by users, served
 * by mirrors and countersigned by witnesses; anyone may have written them.
 * The log's key here is a fixed Ed25519 key. The first input byte picks the
 * mode:
 *   even  the rest is a note, a checkpoint body and a verifier key as given;
 *         what opens or parses must be canonical: the signed text ends at the
 *         blank line before the signatures, a checkpoint re-formats to the
 *         same first three lines, a verifier key to the same string (up to
 *         the case of its hex key id), and re-signing opened text opens again;
 *   odd   the rest is a tree size, a root and extension lines: the checkpoint
 *         is formatted, signed and edited (flip a byte, cut, insert, add a
 *         signature by another key or a malformed line); the unedited note and
 *         one with only another key's signature added must open to the same
 *         size and root, every other edit must be refused.
 * Seeds: tests/fuzz/corpus/tlog-note/, signed with the fixed key; regenerate
 * them with SEALMAIL_FUZZ_NOTE_SEEDS=tests/fuzz/corpus/tlog-note
 * build/fuzz/fuzz-tlog-note. */
#include "tlog/tlog.h"

#include "crypto/seal.h"

#include "fuzz.h"

#include <sodium.h>
#include <strings.h>

#define FUZZ_ORIGIN "mx.example.org/sealmail-log"
#define FUZZ_OTHER  "witness.example.net/w1"

static uint8_t fuzz_pk[32], fuzz_sk[64];
static uint8_t other_pk[32], other_sk[64];

/* ---- mode 0: text as given ---------------------------------------------------------- */

static void check_checkpoint_text(const uint8_t *text, size_t len, const char *origin)
{
	uint8_t root[TLOG_HASH_BYTES];
	uint64_t size;
	const char *error = NULL;
	struct buf canon;

	if (tlog_checkpoint_parse(text, len, origin, &size, root, &error) < 0) {
		FUZZ_CHECK(error != NULL);
		return;
	}
	buf_init(&canon);
	FUZZ_CHECK(tlog_checkpoint_format(origin, size, root, &canon) == 0);
	FUZZ_CHECK(canon.len <= len && memcmp(canon.data, text, canon.len) == 0);
	/* Extension lines: non-empty, newline-terminated. */
	FUZZ_CHECK(text[len - 1] == '\n');
	FUZZ_CHECK(memmem(text + canon.len - 1, len - canon.len + 1, "\n\n", 2) == NULL);
	buf_free(&canon);
}

static void check_verifier(const uint8_t *data, size_t size)
{
	char *vkey = xmalloc(size + 1), *name = NULL, *again;
	uint8_t pk[32];
	const char *error = NULL;
	const char *plus;

	memcpy(vkey, data, size);
	vkey[size] = '\0';
	if (tlog_note_parse_verifier(vkey, &name, pk, &error) == 0) {
		FUZZ_CHECK(tlog_note_name_valid(name));
		again = tlog_note_verifier_key(name, pk);
		plus = strchr(vkey, '+');
		FUZZ_CHECK(strlen(again) == strlen(vkey));
		FUZZ_CHECK(strncmp(again, vkey, (size_t)(plus - vkey) + 1) == 0);
		FUZZ_CHECK(strncasecmp(again + (plus - vkey) + 1, plus + 1, 8) == 0);
		FUZZ_CHECK(strcmp(again + (plus - vkey) + 9, plus + 9) == 0);
		free(again);
		free(name);
	} else {
		FUZZ_CHECK(error != NULL && name == NULL);
	}
	free(vkey);
}

static void fuzz_raw(const uint8_t *data, size_t size)
{
	size_t text_len = 0, again_len = 0;
	const char *error = NULL;
	uint8_t root[TLOG_HASH_BYTES];
	uint64_t tree_size;
	struct buf note;

	check_verifier(data, size);
	check_checkpoint_text(data, size, FUZZ_ORIGIN);
	if (tlog_note_open(data, size, FUZZ_ORIGIN, fuzz_pk, &text_len, &error) < 0) {
		FUZZ_CHECK(error != NULL);
		FUZZ_CHECK(tlog_checkpoint_open(data, size, FUZZ_ORIGIN, fuzz_pk, &tree_size, root,
						&error) < 0);
		return;
	}
	/* The signed text: lines, then the blank line, then signatures. */
	FUZZ_CHECK(text_len > 0 && text_len + 2 < size);
	FUZZ_CHECK(data[text_len - 1] == '\n' && data[text_len] == '\n');
	FUZZ_CHECK(memmem(data + text_len + 1, size - text_len - 1, "\n\n", 2) == NULL);
	/* Signing that text again gives a note that opens. */
	buf_init(&note);
	if (tlog_note_sign(data, text_len, FUZZ_ORIGIN, fuzz_sk, &note, &error) == 0) {
		FUZZ_CHECK(tlog_note_open(note.data, note.len, FUZZ_ORIGIN, fuzz_pk, &again_len,
					  &error) == 0);
		FUZZ_CHECK(again_len == text_len);
	}
	buf_free(&note);
	if (tlog_checkpoint_open(data, size, FUZZ_ORIGIN, fuzz_pk, &tree_size, root, &error) == 0)
		check_checkpoint_text(data, text_len, FUZZ_ORIGIN);
}

/* ---- mode 1: sign, edit, open -------------------------------------------------------- */

enum fuzz_edit {
	EDIT_NONE,
	EDIT_OTHER_SIG, /* a signature line by another key: still opens */
	EDIT_FLIP,
	EDIT_TRUNCATE,
	EDIT_INSERT,
	EDIT_BAD_LINE,    /* a line that is not a signature */
	EDIT_OWN_SIG_BAD, /* a second signature by our key, on other text */
	EDIT_COUNT
};

/* What tlog_note_sign accepts: UTF-8 lines without other control bytes,
 * ending in a newline, no blank line. */
static int note_text_ok(const uint8_t *p, size_t len)
{
	if (len == 0 || p[0] == '\n' || p[len - 1] != '\n' || !tlog_utf8_valid(p, len) ||
	    memmem(p, len, "\n\n", 2) != NULL)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 && p[i] != '\n')
			return 0;
	return 1;
}

static void sign_line(const char *name, const uint8_t sk[64], const void *text, size_t len,
		      struct buf *line)
{
	struct buf note;
	const char *error;

	/* NOTE is TEXT, a blank line, then the signature line. */
	buf_init(&note);
	FUZZ_CHECK(tlog_note_sign(text, len, name, sk, &note, &error) == 0);
	FUZZ_CHECK(note.len > len + 1 && note.data[len] == '\n');
	FUZZ_CHECK(buf_append(line, note.data + len + 1, note.len - len - 1) == 0);
	buf_free(&note);
}

static void fuzz_signed(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t op = fuzz_u8(&in) % EDIT_COUNT, val = fuzz_u8(&in);
	uint32_t off = fuzz_u32(&in);
	uint64_t tree_size = fuzz_u64(&in), got_size;
	uint8_t root[TLOG_HASH_BYTES], got_root[TLOG_HASH_BYTES];
	const uint8_t *ext;
	size_t ext_len, text_len, at, len;
	const char *error = NULL;
	struct buf text, note;
	int ok, want;

	for (size_t i = 0; i < TLOG_HASH_BYTES; i++)
		root[i] = fuzz_u8(&in);
	ext = fuzz_bytes(&in, in.left, &ext_len);
	buf_init(&text);
	FUZZ_CHECK(tlog_checkpoint_format(FUZZ_ORIGIN, tree_size, root, &text) == 0);
	FUZZ_CHECK(buf_append(&text, ext, ext_len) == 0);
	buf_init(&note);
	if (tlog_note_sign(text.data, text.len, FUZZ_ORIGIN, fuzz_sk, &note, &error) < 0) {
		/* Only text that no note could carry is refused. */
		FUZZ_CHECK(!note_text_ok(text.data, text.len));
		goto out;
	}
	FUZZ_CHECK(note_text_ok(text.data, text.len));
	len = note.len;
	at = len ? off % len : 0;
	want = 1;
	switch ((enum fuzz_edit)op) {
	case EDIT_NONE:
		break;
	case EDIT_OTHER_SIG:
		sign_line(FUZZ_OTHER, other_sk, text.data, text.len, &note);
		break;
	case EDIT_FLIP:
		note.data[at] ^= (uint8_t)(val | 1);
		want = 0;
		break;
	case EDIT_TRUNCATE:
		note.len = at;
		want = 0;
		break;
	case EDIT_INSERT:
		FUZZ_CHECK(buf_reserve(&note, 1) == 0);
		memmove(note.data + at + 1, note.data + at, len - at);
		note.data[at] = val;
		note.len++;
		want = 0;
		break;
	case EDIT_BAD_LINE:
		FUZZ_CHECK(buf_printf(&note, "%c not a signature\n", (char)('A' + val % 26)) == 0);
		want = 0;
		break;
	case EDIT_OWN_SIG_BAD:
		sign_line(FUZZ_ORIGIN, fuzz_sk, "other text\n", 11, &note);
		want = 0;
		break;
	case EDIT_COUNT:
		break;
	}
	ok = tlog_note_open(note.data, note.len, FUZZ_ORIGIN, fuzz_pk, &text_len, &error) == 0;
	FUZZ_CHECK(ok == want);
	if (ok) {
		FUZZ_CHECK(text_len == text.len);
		/* Signable extension lines are non-empty, so the checkpoint parses. */
		FUZZ_CHECK(tlog_checkpoint_open(note.data, note.len, FUZZ_ORIGIN, fuzz_pk,
						&got_size, got_root, &error) == 0);
		FUZZ_CHECK(got_size == tree_size);
		FUZZ_CHECK(memcmp(got_root, root, TLOG_HASH_BYTES) == 0);
		/* Another key's view: our signature is not theirs. */
		FUZZ_CHECK(tlog_note_open(note.data, note.len, FUZZ_OTHER, other_pk, &text_len,
					  &error) == (op == EDIT_OTHER_SIG ? 0 : -1));
	}
out:
	buf_free(&note);
	buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_signed(data + 1, size - 1);
	else
		fuzz_raw(data + 1, size - 1);
	return 0;
}

/* ---- set-up and seeds ------------------------------------------------------------------ */

static void write_seeds(const char *dir)
{
	static const uint8_t root[TLOG_HASH_BYTES] = "0123456789abcdef0123456789abcdef";
	struct buf text, note;
	const char *error;
	char *vkey;

	buf_init(&text);
	buf_init(&note);
	FUZZ_CHECK(tlog_checkpoint_format(FUZZ_ORIGIN, 0, root, &text) == 0);
	FUZZ_CHECK(tlog_note_sign(text.data, text.len, FUZZ_ORIGIN, fuzz_sk, &note, &error) == 0);
	fuzz_write_seed(dir, "checkpoint-size-0", 0, note.data, note.len);
	buf_reset(&text);
	buf_reset(&note);
	FUZZ_CHECK(tlog_checkpoint_format(FUZZ_ORIGIN, 1234567, root, &text) == 0);
	FUZZ_CHECK(buf_append_str(&text, "— extension line\n") == 0);
	FUZZ_CHECK(tlog_note_sign(text.data, text.len, FUZZ_ORIGIN, fuzz_sk, &note, &error) == 0);
	sign_line(FUZZ_OTHER, other_sk, text.data, text.len, &note);
	fuzz_write_seed(dir, "checkpoint-cosigned", 0, note.data, note.len);
	fuzz_write_seed(dir, "checkpoint-body", 0, text.data, text.len);
	buf_reset(&note);
	FUZZ_CHECK(tlog_note_sign("a signed note\nwith two lines\n", 29, FUZZ_ORIGIN, fuzz_sk,
				  &note, &error) == 0);
	fuzz_write_seed(dir, "note-text", 0, note.data, note.len);
	vkey = tlog_note_verifier_key(FUZZ_ORIGIN, fuzz_pk);
	fuzz_write_seed(dir, "verifier-key", 0, vkey, strlen(vkey));
	free(vkey);
	vkey = tlog_note_verifier_key(FUZZ_OTHER, other_pk);
	fuzz_write_seed(dir, "verifier-key-other", 0, vkey, strlen(vkey));
	free(vkey);
	for (uint8_t op = 0; op < EDIT_COUNT; op++) {
		uint8_t seed[1 + 1 + 4 + 8 + TLOG_HASH_BYTES + 16] = {op, 0x41, 0, 0, 0, 57};
		char name[32];

		memcpy(seed + 6, "\0\0\0\0\0\0\x30\x39", 8);
		memcpy(seed + 14, root, TLOG_HASH_BYTES);
		memcpy(seed + 14 + TLOG_HASH_BYTES, "x-ext: yes\n\0\0\0\0\0", 16);
		snprintf(name, sizeof(name), "signed-edit-%u", op);
		fuzz_write_seed(dir, name, 1, seed,
				op == EDIT_NONE ? sizeof(seed) - 16 : sizeof(seed) - 5);
	}
	buf_free(&text);
	buf_free(&note);
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t seed[32] = "sealmail fuzz-tlog-note log key";
	static const uint8_t other_seed[32] = "sealmail fuzz-tlog-note witness";
	const char *seeds = getenv("SEALMAIL_FUZZ_NOTE_SEEDS");

	if (seal_init() < 0 || crypto_sign_seed_keypair(fuzz_pk, fuzz_sk, seed) != 0 ||
	    crypto_sign_seed_keypair(other_pk, other_sk, other_seed) != 0)
		abort();
	if (seeds != NULL)
		write_seeds(seeds);
	return 0;
}

/* fuzz-legal-bundle.c — checking an export bundle: the proof list of
 * log.json (bundle_proof_parse) and legal_bundle_verify on a whole bundle.
 *
 * Trust boundary: a bundle is a folder that has travelled (to a court, a
 * lawyer, the account's owner); every byte of it may have been changed.
 * legal-bundle.c is compiled into this harness (its proof parser is static).
 * The log key is a fixed Ed25519 key.
 *
 * The first input byte picks the mode:
 *   even  the rest is the text of log.json's "proof" field: it parses iff
 *         it is at most TLOG_PROOF_MAX space-separated base64 hashes of
 *         TLOG_HASH_BYTES each, into as many hashes;
 *   odd   the next two bytes pick an edit and the log's size; the rest is the
 *         content of up to three bundle files (split at '\n'). A bundle is
 *         built as legal-export.c builds one (manifest, its signature, the
 *         legal.exported entry among others in a signed checkpoint, the
 *         inclusion proof), then edited: unedited it must verify; with a
 *         file changed, added or removed, a manifest or entry not matching,
 *         or another key, it must be refused; with log.json or manifest.json
 *         replaced by the input bytes, anything but a crash or leak goes. */
#include "../../src/legal/legal-bundle.c"

#include "fuzz.h"

#include <sodium.h>

#define FUZZ_ORIGIN    "mx.example.org/sealmail-log"
#define FUZZ_FILES_MAX 3
#define FUZZ_LEAVES    9

static uint8_t fuzz_pk[32], fuzz_sk[64], other_sk[64];
static char fuzz_dir[64];
static char *fuzz_vkey;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32], other_pk[32];

	if (sodium_init() < 0)
		abort();
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(fuzz_pk, fuzz_sk, seed);
	memset(seed, 8, sizeof(seed));
	crypto_sign_seed_keypair(other_pk, other_sk, seed);
	fuzz_vkey = tlog_note_verifier_key(FUZZ_ORIGIN, fuzz_pk);
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz-legal-bundle.XXXXXX");
	if (fuzz_vkey == NULL || mkdtemp(fuzz_dir) == NULL)
		abort();
	return 0;
}

/* ---- mode 0: the proof list ------------------------------------------------------------ */

static void fuzz_proof(const uint8_t *data, size_t size)
{
	struct tlog_proof proof;
	char *text = xmalloc(size + 1), *copy, *tok, *save = NULL;
	size_t tokens = 0, good = 0;
	int r;

	memcpy(text, data, size);
	text[size] = '\0';
	r = bundle_proof_parse(text, &proof);
	copy = xstrdup(text);
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		uint8_t *h = NULL;
		size_t len = 0;

		tokens++;
		if (seal_base64_decode(tok, &h, &len) == 0 && len == TLOG_HASH_BYTES &&
		    (good == tokens - 1)) {
			if (r == 0)
				FUZZ_CHECK(memcmp(proof.hash[good], h, TLOG_HASH_BYTES) == 0);
			good++;
		}
		free(h);
	}
	FUZZ_CHECK((r == 0) == (good == tokens && tokens <= TLOG_PROOF_MAX));
	if (r == 0)
		FUZZ_CHECK(proof.count == tokens);
	free(copy);
	free(text);
}

/* ---- mode 1: whole bundles ------------------------------------------------------------- */

enum fuzz_edit {
	EDIT_NONE,
	EDIT_FILE_BYTE,    /* flip a byte of a listed file */
	EDIT_FILE_ADD,     /* a file the manifest does not list */
	EDIT_FILE_GONE,    /* a listed file removed */
	EDIT_MANIFEST,     /* manifest.json changed after signing */
	EDIT_SIG_OTHER,    /* manifest.sig by another key */
	EDIT_ENTRY,        /* the entry names another manifest hash */
	EDIT_INDEX,        /* log.json's index is off by one */
	EDIT_LOG_RAW,      /* log.json is the input */
	EDIT_MANIFEST_RAW, /* manifest.json is the input, signed and logged */
	EDIT_COUNT,
};

static void fuzz_write(const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
	f = fopen(path, "wb");
	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(len == 0 || fwrite(data, 1, len, f) == len);
	FUZZ_CHECK(fclose(f) == 0);
}

static void fuzz_remove(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
	unlink(path);
}

static char *fuzz_b64(const void *data, size_t len)
{
	return seal_base64_encode(data, len);
}

/* log.json for ENTRY at INDEX among SIZE leaves (the others are filler). */
static void fuzz_log(const char *entry, uint64_t index, uint64_t size, int off_by_one)
{
	struct tlog_tree *t = tlog_tree_new();
	uint8_t leaf[TLOG_HASH_BYTES], root[TLOG_HASH_BYTES];
	struct tlog_proof p;
	struct buf body, note, proof, out;
	const char *error = NULL;
	char num_index[24], num_size[24];

	buf_init(&body);
	buf_init(&note);
	buf_init(&proof);
	buf_init(&out);
	for (uint64_t i = 0; i < size; i++) {
		char filler[32];

		if (i == index) {
			tlog_leaf_hash(entry, strlen(entry), leaf);
		} else {
			snprintf(filler, sizeof(filler), "{\"n\":\"%llu\"}", (unsigned long long)i);
			tlog_leaf_hash(filler, strlen(filler), leaf);
		}
		tlog_tree_append(t, leaf);
	}
	FUZZ_CHECK(tlog_tree_root(t, size, root, &error) == 0);
	FUZZ_CHECK(tlog_tree_prove_inclusion(t, index, size, &p, &error) == 0);
	FUZZ_CHECK(tlog_checkpoint_format(FUZZ_ORIGIN, size, root, &body) == 0);
	FUZZ_CHECK(tlog_note_sign(body.data, body.len, FUZZ_ORIGIN, fuzz_sk, &note, &error) == 0);
	for (size_t i = 0; i < p.count; i++) {
		char *b64 = fuzz_b64(p.hash[i], TLOG_HASH_BYTES);

		FUZZ_CHECK(buf_printf(&proof, "%s%s", i > 0 ? " " : "", b64) == 0);
		free(b64);
	}
	snprintf(num_index, sizeof(num_index), "%llu",
		 (unsigned long long)(index + (off_by_one ? 1 : 0)));
	snprintf(num_size, sizeof(num_size), "%llu", (unsigned long long)size);
	{
		const char *fields[] = {
		    "checkpoint", buf_cstr(&note),  "entry", entry,    "index",        num_index,
		    "proof",      buf_cstr(&proof), "size",  num_size, "verifier_key", fuzz_vkey,
		    NULL};

		FUZZ_CHECK(tlog_json_encode(fields, &out, &error) == 0);
		FUZZ_CHECK(buf_append(&out, "\n", 1) == 0);
	}
	fuzz_write("log.json", out.data, out.len);
	tlog_tree_free(&t);
	buf_free(&body);
	buf_free(&note);
	buf_free(&proof);
	buf_free(&out);
}

static void fuzz_sign(const void *manifest, size_t len, const uint8_t sk[64])
{
	uint8_t sig[SEAL_SIGN_BYTES];
	char *b64;
	struct buf out;

	seal_sign(sk, manifest, len, sig);
	b64 = fuzz_b64(sig, sizeof(sig));
	buf_init(&out);
	FUZZ_CHECK(buf_printf(&out, "%s\n", b64) == 0);
	fuzz_write("manifest.sig", out.data, out.len);
	buf_free(&out);
	free(b64);
}

static void fuzz_bundle(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	enum fuzz_edit edit = (enum fuzz_edit)(fuzz_u8(&in) % EDIT_COUNT);
	uint64_t leaves = 1 + fuzz_u8(&in) % FUZZ_LEAVES, index = leaves / 2;
	const uint8_t *rest;
	size_t rest_len, nfiles = 0;
	struct buf manifest, entry;
	char hex[LEGAL_HASH_HEX_MAX], names[FUZZ_FILES_MAX][32];
	uint8_t hash[32];
	const char *error = NULL;
	int r, must;

	rest = fuzz_bytes(&in, in.left, &rest_len);
	buf_init(&manifest);
	buf_init(&entry);
	FUZZ_CHECK(buf_printf(&manifest, "{\"accounts\":[{\"files\":[") == 0);
	/* The files: the input split at '\n', at most FUZZ_FILES_MAX. */
	while (nfiles < FUZZ_FILES_MAX && (rest_len > 0 || nfiles == 0)) {
		const uint8_t *nl = memchr(rest, '\n', rest_len);
		size_t len = nl != NULL ? (size_t)(nl - rest) : rest_len;

		snprintf(names[nfiles], sizeof(names[nfiles]), "records/%zu.smr", nfiles);
		fuzz_write(names[nfiles], rest, len);
		seal_sha256(rest, len, hash);
		legal_hex(hash, sizeof(hash), hex);
		FUZZ_CHECK(buf_printf(&manifest,
				      "%s\n  {\"path\":\"%s\",\"size\":%zu,\"sha256\":\"%s\"}",
				      nfiles > 0 ? "," : "", names[nfiles], len, hex) == 0);
		nfiles++;
		rest += nl != NULL ? len + 1 : len;
		rest_len -= nl != NULL ? len + 1 : len;
	}
	FUZZ_CHECK(buf_printf(&manifest, "\n  ]}]}\n") == 0);
	if (edit == EDIT_MANIFEST_RAW) {
		buf_reset(&manifest);
		FUZZ_CHECK(buf_append(&manifest, data, size) == 0);
	}
	seal_sha256(manifest.data, manifest.len, hash);
	legal_hex(hash, sizeof(hash), hex);
	if (edit == EDIT_ENTRY)
		hex[0] = hex[0] == '0' ? '1' : '0';
	FUZZ_CHECK(buf_printf(&entry, "{\"manifest_sha256\":\"%s\",\"type\":\"legal.exported\"}",
			      hex) == 0);
	fuzz_write("manifest.json", manifest.data, manifest.len);
	fuzz_sign(manifest.data, manifest.len, edit == EDIT_SIG_OTHER ? other_sk : fuzz_sk);
	fuzz_log(buf_cstr(&entry), index, leaves, edit == EDIT_INDEX);

	must = 1;
	switch (edit) {
	case EDIT_NONE:
		must = 0;
		break;
	case EDIT_FILE_BYTE: {
		uint8_t *bytes = NULL;
		size_t len = 0;
		char path[256];

		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, names[0]);
		FUZZ_CHECK(fs_read_all(path, &bytes, &len) == 0);
		if (len == 0) {
			fuzz_write(names[0], "x", 1);
		} else {
			bytes[len / 2] ^= 0x20;
			fuzz_write(names[0], bytes, len);
		}
		free(bytes);
		break;
	}
	case EDIT_FILE_ADD:
		fuzz_write("records/extra.smr", data, size);
		break;
	case EDIT_FILE_GONE:
		fuzz_remove(names[nfiles - 1]);
		break;
	case EDIT_MANIFEST:
		FUZZ_CHECK(buf_append(&manifest, " ", 1) == 0);
		fuzz_write("manifest.json", manifest.data, manifest.len);
		break;
	case EDIT_LOG_RAW:
		fuzz_write("log.json", data, size);
		must = -1;
		break;
	case EDIT_MANIFEST_RAW:
		must = -1;
		break;
	default:
		break;
	}
	r = legal_bundle_verify(fuzz_dir, fuzz_vkey, &error);
	if (must == 0)
		FUZZ_CHECK(r == 0);
	else if (must == 1)
		FUZZ_CHECK(r < 0 && error != NULL);
	/* Clean up for the next input. */
	for (size_t i = 0; i < nfiles; i++)
		fuzz_remove(names[i]);
	fuzz_remove("records/extra.smr");
	buf_free(&manifest);
	buf_free(&entry);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char records[128];

	if (size == 0)
		return 0;
	snprintf(records, sizeof(records), "%s/records", fuzz_dir);
	(void)mkdir(records, 0700);
	if (data[0] % 2 == 0)
		fuzz_proof(data + 1, size - 1);
	else
		fuzz_bundle(data + 1, size - 1);
	return 0;
}

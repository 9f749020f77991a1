/* tlog-note.c — C2SP signed notes (Ed25519) and tlog checkpoints.
 *
 * Trust boundary: tlog_note_open(), tlog_note_parse_verifier() and
 * tlog_checkpoint_parse() read text that anyone may have written (a witness,
 * a mirror, a user pasting a checkpoint) and accept only what the formats
 * allow; tlog_note_sign() holds the log's secret key for one call. */
#include "tlog/tlog.h"

#include "crypto/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_ALG_ED25519    0x01
#define NOTE_SIG_PREFIX     "\xe2\x80\x94 " /* U+2014 EM DASH, space */
#define NOTE_SIG_PREFIX_LEN 4
#define NOTE_SIGS_MAX       100
#define NOTE_MAX            (1024 * 1024)

int tlog_note_name_valid(const char *name)
{
	size_t len = strlen(name), i;

	if (len == 0 || len > TLOG_ORIGIN_MAX || !tlog_utf8_valid(name, len))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c == 0x7f || c == '+')
			return 0;
		/* U+0085 and U+00A0 are spaces too (C2 85, C2 A0). */
		if (c == 0xc2 &&
		    ((unsigned char)name[i + 1] == 0x85 || (unsigned char)name[i + 1] == 0xa0))
			return 0;
		/* U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 */
		if (c == 0xe1 && (unsigned char)name[i + 1] == 0x9a &&
		    (unsigned char)name[i + 2] == 0x80)
			return 0;
		if (c == 0xe2 && (unsigned char)name[i + 1] == 0x80) {
			unsigned char d = (unsigned char)name[i + 2];

			if (d <= 0x8a || d == 0xa8 || d == 0xa9 || d == 0xaf)
				return 0;
		}
		if (c == 0xe2 && (unsigned char)name[i + 1] == 0x81 &&
		    (unsigned char)name[i + 2] == 0x9f)
			return 0;
		if (c == 0xe3 && (unsigned char)name[i + 1] == 0x80 &&
		    (unsigned char)name[i + 2] == 0x80)
			return 0;
	}
	return 1;
}

uint32_t tlog_note_key_id(const char *name, const uint8_t pk[32])
{
	static const uint8_t sep_alg[2] = {'\n', NOTE_ALG_ED25519};
	struct seal_sha256_state st;
	uint8_t h[32];

	seal_sha256_init(&st);
	seal_sha256_update(&st, name, strlen(name));
	seal_sha256_update(&st, sep_alg, sizeof(sep_alg));
	seal_sha256_update(&st, pk, 32);
	seal_sha256_final(&st, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

char *tlog_note_verifier_key(const char *name, const uint8_t pk[32])
{
	uint8_t key[33];
	char *b64, *out;
	size_t len;

	key[0] = NOTE_ALG_ED25519;
	memcpy(key + 1, pk, 32);
	b64 = seal_base64_encode(key, sizeof(key));
	len = strlen(name) + 1 + 8 + 1 + strlen(b64) + 1;
	out = xmalloc(len);
	snprintf(out, len, "%s+%08x+%s", name, (unsigned)tlog_note_key_id(name, pk), b64);
	free(b64);
	return out;
}

int tlog_note_parse_verifier(const char *vkey, char **name_r, uint8_t pk_r[32],
			     const char **error_r)
{
	const char *plus1 = strchr(vkey, '+'), *plus2;
	uint8_t *key = NULL;
	size_t key_len, i;
	uint32_t id = 0;
	char *name;

	plus2 = plus1 == NULL ? NULL : strchr(plus1 + 1, '+');
	if (plus2 == NULL || plus2 - plus1 != 9) {
		*error_r = "malformed verifier key (want NAME+HHHHHHHH+KEY)";
		return -1;
	}
	for (i = 1; i <= 8; i++) {
		char c = plus1[i];
		unsigned v;

		if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = (unsigned)(c - 'A' + 10);
		else {
			*error_r = "malformed verifier key id";
			return -1;
		}
		id = id << 4 | v;
	}
	if (seal_base64_decode(plus2 + 1, &key, &key_len) < 0 || key_len != 33 ||
	    key[0] != NOTE_ALG_ED25519) {
		free(key);
		*error_r = "verifier key is not a base64 Ed25519 key";
		return -1;
	}
	name = xmalloc((size_t)(plus1 - vkey) + 1);
	memcpy(name, vkey, (size_t)(plus1 - vkey));
	name[plus1 - vkey] = '\0';
	if (!tlog_note_name_valid(name) || tlog_note_key_id(name, key + 1) != id) {
		*error_r = tlog_note_name_valid(name) ? "verifier key id does not match the key"
						      : "invalid key name in verifier key";
		free(name);
		free(key);
		return -1;
	}
	memcpy(pk_r, key + 1, 32);
	free(key);
	*name_r = name;
	return 0;
}

/* Note text: valid UTF-8, no control characters except '\n'. */
static int note_chars_valid(const uint8_t *p, size_t len)
{
	size_t i;

	if (!tlog_utf8_valid(p, len))
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < 0x20 && p[i] != '\n')
			return 0;
	}
	return 1;
}

int tlog_note_sign(const void *text, size_t len, const char *name, const uint8_t sk[64],
		   struct buf *note_r, const char **error_r)
{
	uint8_t sig[4 + SEAL_SIGN_BYTES];
	uint32_t id;
	char *b64;
	int ret;

	if (len == 0 || ((const uint8_t *)text)[len - 1] != '\n' || !note_chars_valid(text, len) ||
	    memmem(text, len, "\n\n", 2) != NULL || ((const uint8_t *)text)[0] == '\n') {
		*error_r = "note text must be UTF-8 lines ending in newline, without blank lines";
		return -1;
	}
	if (!tlog_note_name_valid(name)) {
		*error_r = "invalid note key name";
		return -1;
	}
	/* The secret key's second half is its public key (libsodium layout). */
	id = tlog_note_key_id(name, sk + 32);
	sig[0] = (uint8_t)(id >> 24);
	sig[1] = (uint8_t)(id >> 16);
	sig[2] = (uint8_t)(id >> 8);
	sig[3] = (uint8_t)id;
	seal_sign(sk, text, len, sig + 4);
	b64 = seal_base64_encode(sig, sizeof(sig));
	ret = 0;
	if (buf_append(note_r, text, len) < 0 || buf_append_str(note_r, "\n" NOTE_SIG_PREFIX) < 0 ||
	    buf_printf(note_r, "%s %s\n", name, b64) < 0)
		ret = -1;
	free(b64);
	if (ret < 0)
		*error_r = "out of memory";
	return ret;
}

int tlog_note_open(const void *note, size_t len, const char *name, const uint8_t pk[32],
		   size_t *text_len_r, const char **error_r)
{
	const uint8_t *p = note, *sigs, *end = p + len, *nl, *split = NULL, *q;
	uint32_t want_id = tlog_note_key_id(name, pk);
	size_t name_len = strlen(name), nsigs = 0;
	int verified = 0;

	if (len > NOTE_MAX || !note_chars_valid(p, len)) {
		*error_r = "malformed note: not UTF-8 text";
		return -1;
	}
	/* The signature block follows the last blank line. */
	for (q = p; q + 1 < end; q++) {
		if (q[0] == '\n' && q[1] == '\n')
			split = q;
	}
	if (split == NULL || split + 2 == end || end[-1] != '\n') {
		*error_r = "malformed note: no signature block";
		return -1;
	}
	for (sigs = split + 2; sigs < end; sigs = nl + 1) {
		const uint8_t *line, *sp;
		uint8_t *sig = NULL;
		size_t sig_len;
		char *b64;
		uint32_t id;
		int bad;

		nl = memchr(sigs, '\n', (size_t)(end - sigs));
		line = sigs;
		if (++nsigs > NOTE_SIGS_MAX || (size_t)(nl - line) < NOTE_SIG_PREFIX_LEN ||
		    memcmp(line, NOTE_SIG_PREFIX, NOTE_SIG_PREFIX_LEN) != 0) {
			*error_r = "malformed note: bad signature line";
			return -1;
		}
		line += NOTE_SIG_PREFIX_LEN;
		sp = memchr(line, ' ', (size_t)(nl - line));
		if (sp == NULL || sp == line || sp + 1 == nl) {
			*error_r = "malformed note: bad signature line";
			return -1;
		}
		b64 = xmalloc((size_t)(nl - sp));
		memcpy(b64, sp + 1, (size_t)(nl - sp - 1));
		b64[nl - sp - 1] = '\0';
		bad = seal_base64_decode(b64, &sig, &sig_len) < 0 || sig_len < 5;
		free(b64);
		if (bad) {
			free(sig);
			*error_r = "malformed note: bad signature encoding";
			return -1;
		}
		id = (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 | (uint32_t)sig[2] << 8 |
		     sig[3];
		if ((size_t)(sp - line) != name_len || memcmp(line, name, name_len) != 0 ||
		    id != want_id) {
			/* A signature by some other key: not ours to judge. */
			free(sig);
			continue;
		}
		bad = sig_len != 4 + SEAL_SIGN_BYTES ||
		      seal_sign_verify(pk, p, (size_t)(split + 1 - p), sig + 4) < 0;
		free(sig);
		if (bad) {
			*error_r = "note signature does not verify";
			return -1;
		}
		verified = 1;
	}
	if (!verified) {
		*error_r = "note is not signed by the log's key";
		return -1;
	}
	*text_len_r = (size_t)(split + 1 - p);
	return 0;
}

int tlog_checkpoint_format(const char *origin, uint64_t size, const uint8_t root[TLOG_HASH_BYTES],
			   struct buf *text_r)
{
	char *b64 = seal_base64_encode(root, TLOG_HASH_BYTES);
	int ret = buf_printf(text_r, "%s\n%llu\n%s\n", origin, (unsigned long long)size, b64);

	free(b64);
	return ret;
}

int tlog_checkpoint_parse(const void *text, size_t len, const char *origin, uint64_t *size_r,
			  uint8_t root_r[TLOG_HASH_BYTES], const char **error_r)
{
	const char *p = text, *end = p + len, *l2, *l3, *l4, *q;
	size_t origin_len = strlen(origin);
	uint64_t size = 0;
	uint8_t *root = NULL;
	size_t root_len;
	char b64[64];

	l2 = memchr(p, '\n', len);
	l3 = l2 == NULL ? NULL : memchr(l2 + 1, '\n', (size_t)(end - l2 - 1));
	l4 = l3 == NULL ? NULL : memchr(l3 + 1, '\n', (size_t)(end - l3 - 1));
	if (l4 == NULL || end[-1] != '\n') {
		*error_r = "malformed checkpoint: fewer than three lines";
		return -1;
	}
	if ((size_t)(l2 - p) != origin_len || memcmp(p, origin, origin_len) != 0) {
		*error_r = "checkpoint is for another log (origin differs)";
		return -1;
	}
	/* Size: decimal without sign or leading zeros. */
	if (l3 == l2 + 1 || (l2[1] == '0' && l3 != l2 + 2) || l3 - l2 - 1 > 20) {
		*error_r = "malformed checkpoint: bad tree size";
		return -1;
	}
	for (q = l2 + 1; q < l3; q++) {
		unsigned d = (unsigned)(*q - '0');

		if (*q < '0' || *q > '9' || size > (UINT64_MAX - d) / 10) {
			*error_r = "malformed checkpoint: bad tree size";
			return -1;
		}
		size = size * 10 + d;
	}
	/* A NUL would end the copy early and hide the rest of the line. */
	if ((size_t)(l4 - l3 - 1) >= sizeof(b64) || memchr(l3 + 1, '\0', (size_t)(l4 - l3 - 1))) {
		*error_r = "malformed checkpoint: bad root hash";
		return -1;
	}
	memcpy(b64, l3 + 1, (size_t)(l4 - l3 - 1));
	b64[l4 - l3 - 1] = '\0';
	if (seal_base64_decode(b64, &root, &root_len) < 0 || root_len != TLOG_HASH_BYTES) {
		free(root);
		*error_r = "malformed checkpoint: bad root hash";
		return -1;
	}
	/* Extension lines, if any, must be non-empty. */
	for (q = l4 + 1; q < end; q = (const char *)memchr(q, '\n', (size_t)(end - q)) + 1) {
		if (*q == '\n') {
			free(root);
			*error_r = "malformed checkpoint: empty extension line";
			return -1;
		}
	}
	memcpy(root_r, root, TLOG_HASH_BYTES);
	free(root);
	*size_r = size;
	return 0;
}

int tlog_checkpoint_open(const void *note, size_t len, const char *origin, const uint8_t pk[32],
			 uint64_t *size_r, uint8_t root_r[TLOG_HASH_BYTES], const char **error_r)
{
	size_t text_len;

	if (tlog_note_open(note, len, origin, pk, &text_len, error_r) < 0)
		return -1;
	return tlog_checkpoint_parse(note, text_len, origin, size_r, root_r, error_r);
}

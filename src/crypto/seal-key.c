/* seal-key.c — account keypairs, their password- and recovery-code-wrapped
 * form, and one-time recovery codes.
 *
 * Trust boundary: the secret half of a keypair exists in plaintext only inside
 * sodium_malloc'd memory owned by this module (guarded, mlocked, excluded from
 * core dumps, read-only once built). What leaves is the public key and the
 * wrapped blob, which is safe to store anywhere: opening it needs the password
 * or the recovery code, at the Argon2id cost recorded in the blob. Passwords
 * and codes are used, never kept.
 *
 * Wrapped-key blob (SEAL_KEYBLOB_BYTES, all integers big-endian):
 *   "SMK" | version 0x01 | alg 0x01 | opslimit u64 | memlimit u64 |
 *   salt (16) | nonce (24) | XChaCha20-Poly1305(secret key 32) (48)
 * alg 0x01 = Argon2id v1.3 -> 32-byte key -> XChaCha20-Poly1305-IETF; the
 * associated data is every byte before the ciphertext, so the stored cost
 * parameters cannot be altered without the unwrap failing. */
#include "crypto/seal-private.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_KEYBLOB_VERSION              0x01
#define SEAL_KEYBLOB_ALG_ARGON2ID_XCHACHA 0x01
#define SEAL_KEYBLOB_SALT_BYTES           crypto_pwhash_argon2id_SALTBYTES
#define SEAL_KEYBLOB_NONCE_BYTES          crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_KEYBLOB_OFF_OPS              5
#define SEAL_KEYBLOB_OFF_MEM              13
#define SEAL_KEYBLOB_OFF_SALT             21
#define SEAL_KEYBLOB_OFF_NONCE            (SEAL_KEYBLOB_OFF_SALT + SEAL_KEYBLOB_SALT_BYTES)
#define SEAL_KEYBLOB_AD_BYTES             (SEAL_KEYBLOB_OFF_NONCE + SEAL_KEYBLOB_NONCE_BYTES)
#define SEAL_KEYBLOB_BYTES                                                                         \
	(SEAL_KEYBLOB_AD_BYTES + SEAL_SK_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* Cost bounds accepted when wrapping and when reading a stored blob: a blob
 * written by someone with disk access must not make a login allocate
 * unbounded memory or run for minutes. The upper bounds leave room to raise
 * the defaults well past libsodium's SENSITIVE level. */
#define SEAL_KDF_OPS_MIN crypto_pwhash_argon2id_OPSLIMIT_MIN
#define SEAL_KDF_OPS_MAX 16ULL
#define SEAL_KDF_MEM_MIN crypto_pwhash_argon2id_MEMLIMIT_MIN
#define SEAL_KDF_MEM_MAX (1ULL << 30)

#define SEAL_RECOVERY_RAW_BYTES 20
#define SEAL_RECOVERY_CHARS     32 /* 160 bits / 5 */
#define SEAL_RECOVERY_GROUP     4

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static struct seal_keypair *keypair_alloc(void)
{
	return sodium_malloc(sizeof(struct seal_keypair));
}

/* Seals the finished keypair against accidental writes. Failure to change
 * the protection (e.g. no mprotect) leaves it writable, which is harmless. */
static void keypair_seal(struct seal_keypair *kp)
{
	(void)sodium_mprotect_readonly(kp);
}

int seal_keypair_generate(struct seal_keypair **kp_r)
{
	struct seal_keypair *kp = keypair_alloc();

	if (kp == NULL)
		return -1;
	if (crypto_kx_keypair(kp->pk, kp->sk) != 0) {
		sodium_free(kp);
		return -1;
	}
	keypair_seal(kp);
	*kp_r = kp;
	return 0;
}

const uint8_t *seal_keypair_public(const struct seal_keypair *kp)
{
	return kp->pk;
}

void seal_keypair_free(struct seal_keypair **kp)
{
	if (*kp == NULL)
		return;
	(void)sodium_mprotect_readwrite(*kp);
	sodium_memzero(*kp, sizeof(**kp));
	sodium_free(*kp);
	*kp = NULL;
}

/* ---- Argon2id parameters ------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t def, uint64_t min, uint64_t max)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return def;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return def;
	if (v < min)
		return min;
	if (v > max)
		return max;
	return v;
}

void seal_kdf_params_default(struct seal_kdf_params *p_r)
{
	static atomic_int warned;

	p_r->opslimit = env_u64("SEALMAIL_ARGON2_OPS", crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
				SEAL_KDF_OPS_MIN, SEAL_KDF_OPS_MAX);
	p_r->memlimit = env_u64("SEALMAIL_ARGON2_MEM", crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
				SEAL_KDF_MEM_MIN, SEAL_KDF_MEM_MAX);
	if ((p_r->opslimit < crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE ||
	     p_r->memlimit < crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE) &&
	    atomic_exchange(&warned, 1) == 0)
		log_warn("SEALMAIL_ARGON2_OPS/_MEM lower the password hashing cost below the "
			 "interactive level: for tests only");
}

static int kdf_params_valid(uint64_t ops, uint64_t mem)
{
	return ops >= SEAL_KDF_OPS_MIN && ops <= SEAL_KDF_OPS_MAX && mem >= SEAL_KDF_MEM_MIN &&
	       mem <= SEAL_KDF_MEM_MAX;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Derives the 32-byte wrapping key from SECRET with the blob's parameters. */
static int kdf_derive(uint8_t key_r[crypto_aead_xchacha20poly1305_ietf_KEYBYTES],
		      const char *secret, size_t secret_len, const uint8_t *blob,
		      const char **error_r)
{
	uint64_t ops = get_be64(blob + SEAL_KEYBLOB_OFF_OPS);
	uint64_t mem = get_be64(blob + SEAL_KEYBLOB_OFF_MEM);

	if (secret_len > crypto_pwhash_argon2id_PASSWD_MAX) {
		*error_r = "password too long";
		return -1;
	}
	if (crypto_pwhash(key_r, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, secret, secret_len,
			  blob + SEAL_KEYBLOB_OFF_SALT, ops, (size_t)mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		*error_r = "key derivation failed (out of memory)";
		return -1;
	}
	return 0;
}

int seal_key_wrap(const struct seal_keypair *kp, const char *secret, size_t secret_len,
		  const struct seal_kdf_params *params, uint8_t **blob_r, size_t *blob_len_r,
		  const char **error_r)
{
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t *blob;
	int ret = -1;

	if (!kdf_params_valid(params->opslimit, params->memlimit)) {
		*error_r = "Argon2id parameters out of range";
		return -1;
	}
	blob = xmalloc(SEAL_KEYBLOB_BYTES);
	memcpy(blob, "SMK", 3);
	blob[3] = SEAL_KEYBLOB_VERSION;
	blob[4] = SEAL_KEYBLOB_ALG_ARGON2ID_XCHACHA;
	put_be64(blob + SEAL_KEYBLOB_OFF_OPS, params->opslimit);
	put_be64(blob + SEAL_KEYBLOB_OFF_MEM, params->memlimit);
	randombytes_buf(blob + SEAL_KEYBLOB_OFF_SALT, SEAL_KEYBLOB_SALT_BYTES);
	randombytes_buf(blob + SEAL_KEYBLOB_OFF_NONCE, SEAL_KEYBLOB_NONCE_BYTES);

	if (kdf_derive(key, secret, secret_len, blob, error_r) < 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(
		blob + SEAL_KEYBLOB_AD_BYTES, NULL, kp->sk, SEAL_SK_BYTES, blob,
		SEAL_KEYBLOB_AD_BYTES, NULL, blob + SEAL_KEYBLOB_OFF_NONCE, key) != 0) {
		*error_r = "key wrapping failed";
		goto out;
	}
	*blob_r = blob;
	*blob_len_r = SEAL_KEYBLOB_BYTES;
	blob = NULL;
	ret = 0;
out:
	sodium_memzero(key, sizeof(key));
	free(blob);
	return ret;
}

int seal_key_unwrap(const uint8_t *blob, size_t blob_len, const char *secret, size_t secret_len,
		    const uint8_t public_key[SEAL_PK_BYTES], struct seal_keypair **kp_r,
		    const char **error_r)
{
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint8_t pk[SEAL_PK_BYTES];
	struct seal_keypair *kp = NULL;
	int ret = -1;

	if (blob_len < 5 || memcmp(blob, "SMK", 3) != 0) {
		*error_r = "not a wrapped key";
		return -1;
	}
	if (blob[3] != SEAL_KEYBLOB_VERSION) {
		*error_r = "unsupported wrapped key version";
		return -1;
	}
	if (blob[4] != SEAL_KEYBLOB_ALG_ARGON2ID_XCHACHA) {
		*error_r = "unsupported wrapped key algorithm";
		return -1;
	}
	if (blob_len != SEAL_KEYBLOB_BYTES) {
		*error_r = "wrapped key has the wrong length";
		return -1;
	}
	if (!kdf_params_valid(get_be64(blob + SEAL_KEYBLOB_OFF_OPS),
			      get_be64(blob + SEAL_KEYBLOB_OFF_MEM))) {
		*error_r = "wrapped key has Argon2id parameters out of range";
		return -1;
	}
	kp = keypair_alloc();
	if (kp == NULL) {
		*error_r = "out of secure memory";
		return -1;
	}
	if (kdf_derive(key, secret, secret_len, blob, error_r) < 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		kp->sk, NULL, NULL, blob + SEAL_KEYBLOB_AD_BYTES,
		SEAL_KEYBLOB_BYTES - SEAL_KEYBLOB_AD_BYTES, blob, SEAL_KEYBLOB_AD_BYTES,
		blob + SEAL_KEYBLOB_OFF_NONCE, key) != 0) {
		*error_r = "wrong password";
		goto out;
	}
	if (crypto_scalarmult_base(pk, kp->sk) != 0 ||
	    sodium_memcmp(pk, public_key, SEAL_PK_BYTES) != 0) {
		*error_r = "wrapped key does not belong to this account";
		goto out;
	}
	memcpy(kp->pk, pk, SEAL_PK_BYTES);
	keypair_seal(kp);
	*kp_r = kp;
	kp = NULL;
	ret = 0;
out:
	sodium_memzero(key, sizeof(key));
	seal_keypair_free(&kp);
	return ret;
}

/* ---- recovery codes -------------------------------------------------------- */

/* Writes 32 characters grouped by 4 with '-' and a NUL into OUT. */
static void recovery_group(const char chars[SEAL_RECOVERY_CHARS], char out[SEAL_RECOVERY_CODE_MAX])
{
	size_t o = 0;

	for (size_t i = 0; i < SEAL_RECOVERY_CHARS; i++) {
		if (i > 0 && i % SEAL_RECOVERY_GROUP == 0)
			out[o++] = '-';
		out[o++] = chars[i];
	}
	out[o] = '\0';
}

void seal_recovery_code_generate(char code_r[SEAL_RECOVERY_CODE_MAX])
{
	uint8_t raw[SEAL_RECOVERY_RAW_BYTES];
	char chars[SEAL_RECOVERY_CHARS];
	size_t n = 0;
	unsigned bits = 0;
	uint32_t acc = 0;

	randombytes_buf(raw, sizeof(raw));
	/* RFC 4648 base32: 20 bytes are exactly 32 characters, no padding. */
	for (size_t i = 0; i < sizeof(raw); i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			chars[n++] = base32_alphabet[(acc >> bits) & 31];
		}
	}
	recovery_group(chars, code_r);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(chars, sizeof(chars));
	sodium_memzero(&acc, sizeof(acc));
}

int seal_recovery_code_normalize(const char *in, char out_r[SEAL_RECOVERY_CODE_MAX])
{
	char chars[SEAL_RECOVERY_CHARS];
	size_t n = 0;
	int ret = -1;

	for (; *in != '\0'; in++) {
		char c = *in;

		if (c == '-' || c == ' ' || c == '\t')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) || n == SEAL_RECOVERY_CHARS)
			goto out;
		chars[n++] = c;
	}
	if (n != SEAL_RECOVERY_CHARS)
		goto out;
	recovery_group(chars, out_r);
	ret = 0;
out:
	if (ret < 0)
		out_r[0] = '\0';
	sodium_memzero(chars, sizeof(chars));
	return ret;
}

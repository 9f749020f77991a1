/* seal-hash.c — Ed25519 signatures, SHA-256 and base64 for the transparency
 * log and export manifests.
 *
 * Trust boundary: signing keys pass through here but are never stored or
 * copied; callers own (and wipe) them. Hashes and encodings handle public
 * data only. */
#include "crypto/seal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SEAL_SIGN_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "ed25519 public key size");
_Static_assert(SEAL_SIGN_SK_BYTES == crypto_sign_SECRETKEYBYTES, "ed25519 secret key size");
_Static_assert(SEAL_SIGN_BYTES == crypto_sign_BYTES, "ed25519 signature size");
_Static_assert(crypto_hash_sha256_BYTES == 32, "sha256 size");
_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((struct seal_sha256_state *)0)->opaque),
	       "crypto_hash_sha256_state must fit in struct seal_sha256_state");

void seal_sign_keypair(uint8_t pk_r[SEAL_SIGN_PK_BYTES], uint8_t sk_r[SEAL_SIGN_SK_BYTES])
{
	if (crypto_sign_keypair(pk_r, sk_r) != 0)
		log_panic("crypto_sign_keypair failed");
}

void seal_sign(const uint8_t sk[SEAL_SIGN_SK_BYTES], const void *msg, size_t len,
	       uint8_t sig_r[SEAL_SIGN_BYTES])
{
	if (crypto_sign_detached(sig_r, NULL, msg, len, sk) != 0)
		log_panic("crypto_sign_detached failed");
}

int seal_sign_verify(const uint8_t pk[SEAL_SIGN_PK_BYTES], const void *msg, size_t len,
		     const uint8_t sig[SEAL_SIGN_BYTES])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : -1;
}

void seal_sha256(const void *data, size_t len, uint8_t out[32])
{
	crypto_hash_sha256(out, data, len);
}

/* The opaque bytes carry no alignment guarantee, so the libsodium state is
 * copied in and out rather than accessed through a cast pointer. */
void seal_sha256_init(struct seal_sha256_state *st)
{
	crypto_hash_sha256_state s;

	crypto_hash_sha256_init(&s);
	memcpy(st->opaque, &s, sizeof(s));
}

void seal_sha256_update(struct seal_sha256_state *st, const void *data, size_t len)
{
	crypto_hash_sha256_state s;

	memcpy(&s, st->opaque, sizeof(s));
	crypto_hash_sha256_update(&s, data, len);
	memcpy(st->opaque, &s, sizeof(s));
}

void seal_sha256_final(struct seal_sha256_state *st, uint8_t out[32])
{
	crypto_hash_sha256_state s;

	memcpy(&s, st->opaque, sizeof(s));
	crypto_hash_sha256_final(&s, out);
	sodium_memzero(&s, sizeof(s));
	sodium_memzero(st->opaque, sizeof(st->opaque));
}

char *seal_base64_encode(const void *data, size_t len)
{
	size_t out_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = xmalloc(out_len);

	sodium_bin2base64(out, out_len, data, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

int seal_base64_decode(const char *in, uint8_t **out_r, size_t *out_len_r)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789+/=";
	size_t in_len = strlen(in), max = in_len / 4 * 3 + 3, out_len = 0;
	const char *end = NULL;
	uint8_t *out;

	/* libsodium 1.0.18 decodes any byte >= 0x80 as '/': one encoding per
	 * value only if such bytes are refused here. */
	if (strspn(in, alphabet) != in_len)
		return -1;
	out = xmalloc(max + 1);
	if (sodium_base642bin(out, max, in, in_len, NULL, &out_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != in + in_len) {
		free(out);
		return -1;
	}
	out[out_len] = '\0';
	*out_r = out;
	*out_len_r = out_len;
	return 0;
}

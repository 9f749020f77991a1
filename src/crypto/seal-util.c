/* seal-util.c — library start-up, randomness, keyed hashing, constant-time
 * comparison and a secret-key box for small server-held secrets.
 *
 * Trust boundary: callers pass server-held keys and plaintext; what comes back
 * is either a digest that reveals nothing about its input without the key, or
 * authenticated ciphertext. Decryption refuses anything modified. */
#include "crypto/seal-private.h"

#include <sodium.h>
#include <stdlib.h>

#define SEAL_BOX_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_BOX_TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES

int seal_init(void)
{
	/* 0: initialised now, 1: already initialised, -1: failure. */
	if (sodium_init() < 0)
		return -1;
	seal_record_init();
	return 0;
}

void seal_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void seal_keyed_hash(const uint8_t key[SEAL_KEY_BYTES], const void *data, size_t len,
		     uint8_t out[SEAL_HASH_BYTES])
{
	/* Only fails for out-of-range sizes, which are constants here. */
	(void)crypto_generichash(out, SEAL_HASH_BYTES, data, len, key, SEAL_KEY_BYTES);
}

int seal_memcmp(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0 ? 0 : -1;
}

int seal_secretbox_encrypt(const uint8_t key[SEAL_KEY_BYTES], const void *plain, size_t len,
			   uint8_t **out_r, size_t *out_len_r)
{
	unsigned long long clen;
	uint8_t *out;

	if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
	    len > SIZE_MAX - SEAL_BOX_NONCE_BYTES - SEAL_BOX_TAG_BYTES)
		return -1;
	out = xmalloc(SEAL_BOX_NONCE_BYTES + len + SEAL_BOX_TAG_BYTES);
	randombytes_buf(out, SEAL_BOX_NONCE_BYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_BOX_NONCE_BYTES, &clen, plain,
						       len, NULL, 0, NULL, out, key) != 0) {
		free(out);
		return -1;
	}
	*out_r = out;
	*out_len_r = SEAL_BOX_NONCE_BYTES + (size_t)clen;
	return 0;
}

int seal_secretbox_decrypt(const uint8_t key[SEAL_KEY_BYTES], const uint8_t *in, size_t len,
			   uint8_t **plain_r, size_t *plain_len_r)
{
	unsigned long long plen;
	uint8_t *plain;
	size_t max;

	if (len < SEAL_BOX_NONCE_BYTES + SEAL_BOX_TAG_BYTES)
		return -1;
	max = len - SEAL_BOX_NONCE_BYTES - SEAL_BOX_TAG_BYTES;
	/* One spare byte so an empty plaintext still gets a real allocation and
	 * text can be NUL-terminated by the caller without a copy. */
	plain = xmalloc(max + 1);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		plain, &plen, NULL, in + SEAL_BOX_NONCE_BYTES, len - SEAL_BOX_NONCE_BYTES, NULL, 0,
		in, key) != 0) {
		free(plain);
		return -1;
	}
	plain[plen] = '\0';
	*plain_r = plain;
	*plain_len_r = (size_t)plen;
	return 0;
}

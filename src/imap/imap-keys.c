/* imap-keys.c — unlocked account keys, shared by an account's sessions.
 *
 * Trust boundary: holds the only plaintext secret keys of the IMAP side, in
 * sodium memory (struct seal_keypair), one per logged-in account, counted by
 * the sessions using it and wiped when the last one ends. A later login of
 * the same account skips Argon2id only when its password matches a keyed
 * hash (random per-process key) kept from the login that unlocked the key,
 * and the wrapped key has not changed since (a password change or a
 * recovery makes the next login unlock afresh). Never on disk, never
 * logged. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>

struct imap_key {
	struct imap_key *next;
	const struct region *region;
	uint64_t account_id;
	unsigned refs;
	struct seal_keypair *kp;
	uint8_t verifier[SEAL_HASH_BYTES];
	uint8_t wrapped_hash[32];
};

static uint8_t imap_key_secret[SEAL_KEY_BYTES];
static int imap_key_secret_set;

static void imap_key_hashes(const struct account *acct, const char *password,
			    uint8_t verifier[SEAL_HASH_BYTES], uint8_t wrapped[32])
{
	if (!imap_key_secret_set) {
		seal_random(imap_key_secret, sizeof(imap_key_secret));
		imap_key_secret_set = 1;
	}
	seal_keyed_hash(imap_key_secret, password, strlen(password), verifier);
	seal_sha256(acct->st.wrapped_password.data, acct->st.wrapped_password.len, wrapped);
}

static int imap_key_same_account(const struct imap_key *k, const struct account *acct)
{
	return k->region == acct->region && k->account_id == acct->st.id;
}

struct imap_key *imap_key_find(struct imap_server *server, const struct account *acct,
			       const char *password)
{
	uint8_t verifier[SEAL_HASH_BYTES], wrapped[32];
	struct imap_key *k;

	imap_key_hashes(acct, password, verifier, wrapped);
	for (k = server->keys; k != NULL; k = k->next) {
		if (!imap_key_same_account(k, acct))
			continue;
		if (seal_memcmp(k->wrapped_hash, wrapped, sizeof(wrapped)) != 0 ||
		    seal_memcmp(k->verifier, verifier, sizeof(verifier)) != 0)
			break;
		k->refs++;
		mem_wipe(verifier, sizeof(verifier));
		return k;
	}
	mem_wipe(verifier, sizeof(verifier));
	return NULL;
}

struct imap_key *imap_key_add(struct imap_server *server, const struct account *acct,
			      const char *password, struct seal_keypair **kp)
{
	struct imap_key *k;

	/* Another login of the account may have raced this one. */
	for (k = server->keys; k != NULL; k = k->next) {
		if (imap_key_same_account(k, acct)) {
			uint8_t wrapped[32];

			imap_key_hashes(acct, password, k->verifier, wrapped);
			memcpy(k->wrapped_hash, wrapped, sizeof(wrapped));
			k->refs++;
			seal_keypair_free(kp);
			return k;
		}
	}
	k = xcalloc(1, sizeof(*k));
	k->region = acct->region;
	k->account_id = acct->st.id;
	k->refs = 1;
	k->kp = *kp;
	*kp = NULL;
	imap_key_hashes(acct, password, k->verifier, k->wrapped_hash);
	k->next = server->keys;
	server->keys = k;
	return k;
}

const struct seal_keypair *imap_key_pair(const struct imap_key *key)
{
	return key->kp;
}

static void imap_key_destroy(struct imap_key *k)
{
	seal_keypair_free(&k->kp);
	mem_wipe(k, sizeof(*k));
	free(k);
}

void imap_key_release(struct imap_server *server, struct imap_key **keyp)
{
	struct imap_key *key = *keyp, **pp;

	if (key == NULL)
		return;
	*keyp = NULL;
	if (--key->refs > 0)
		return;
	for (pp = &server->keys; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == key) {
			*pp = key->next;
			break;
		}
	}
	imap_key_destroy(key);
}

void imap_keys_free(struct imap_server *server)
{
	while (server->keys != NULL) {
		struct imap_key *k = server->keys;

		server->keys = k->next;
		imap_key_destroy(k);
	}
}

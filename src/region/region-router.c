/* region-router.c — regions, keys for address hashing, delivery epochs.
 *
 * Trust boundary: the router is the only path from an account to a store.
 * It is given the operator's config; clients only ever give it addresses,
 * which it turns into keyed hashes before touching any store. */
#include "region/region-private.h"

#include "tlog/tlog.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROUTER_KEYS_FILE          "directory.key"
#define ROUTER_EPOCH_MESSAGES_MAX 100000

/* Reads (or creates, 0600) the 64-byte directory key file. */
static int router_keys_load(struct router *router, const char *keys_dir, const char **error_r)
{
	char *path = fs_path_join(keys_dir, ROUTER_KEYS_FILE);
	uint8_t *data = NULL, fresh[2 * SEAL_KEY_BYTES];
	size_t len = 0;
	int ret = -1;

	if (fs_read_all(path, &data, &len) < 0) {
		if (errno != ENOENT) {
			*error_r = str_tfmt("cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (fs_mkdir_p(keys_dir, 0700) < 0) {
			*error_r = str_tfmt("cannot create %s: %s", keys_dir, strerror(errno));
			goto out;
		}
		seal_random(fresh, sizeof(fresh));
		if (fs_write_atomic(path, fresh, sizeof(fresh), 0600) < 0) {
			*error_r = str_tfmt("cannot write %s: %s", path, strerror(errno));
			goto out;
		}
		memcpy(router->hash_key, fresh, SEAL_KEY_BYTES);
		memcpy(router->box_key, fresh + SEAL_KEY_BYTES, SEAL_KEY_BYTES);
		mem_wipe(fresh, sizeof(fresh));
		ret = 0;
		goto out;
	}
	if (len != 2 * SEAL_KEY_BYTES) {
		*error_r = str_tfmt("%s: expected %d bytes", path, 2 * SEAL_KEY_BYTES);
		goto out;
	}
	memcpy(router->hash_key, data, SEAL_KEY_BYTES);
	memcpy(router->box_key, data + SEAL_KEY_BYTES, SEAL_KEY_BYTES);
	ret = 0;
out:
	if (data != NULL) {
		mem_wipe(data, len);
		free(data);
	}
	free(path);
	return ret;
}

static int router_serves(const struct config *cfg, const char *name)
{
	if (cfg->serve_regions == NULL || cfg->serve_regions[0] == NULL)
		return 1;
	for (char **r = cfg->serve_regions; *r != NULL; r++)
		if (strcmp(*r, name) == 0)
			return 1;
	return 0;
}

int router_open(const struct config *cfg, struct router **router_r, const char **error_r)
{
	enum seal_record_cipher cipher;
	struct router *router;

	if (seal_init() < 0) {
		*error_r = "cannot initialise libsodium";
		return -1;
	}
	if (seal_record_cipher_parse(cfg->store_record_cipher, &cipher) < 0) {
		*error_r = str_tfmt("[store] record_cipher: unknown cipher '%s'",
				    cfg->store_record_cipher);
		return -1;
	}
	if (seal_set_record_cipher(cipher, error_r) < 0)
		return -1;
	router = xcalloc(1, sizeof(*router));
	router->cfg = cfg;
	pthread_mutex_init(&router->senders_lock, NULL);
	pthread_mutex_init(&router->dir_get_lock, NULL);
	if (router_keys_load(router, cfg->keys_dir, error_r) < 0)
		goto fail;
	if (router_directory_open(router, cfg->directory, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->region_count; i++) {
		struct region *r = &router->regions[i];
		const char *err = NULL;

		r->name = cfg->regions[i].name;
		r->jurisdiction = cfg->regions[i].jurisdiction;
		r->served = router_serves(cfg, r->name);
		router->region_count++;
		if (store_open(cfg->regions[i].store, &r->store, &err) < 0) {
			*error_r = str_tfmt("region %s: %s", r->name, err);
			goto fail;
		}
	}
	router->pool = pool_new(2, "seal", 5);
	*router_r = router;
	return 0;
fail:
	router_close(&router);
	return -1;
}

void router_close(struct router **routerp)
{
	struct router *router = *routerp;

	if (router == NULL)
		return;
	*routerp = NULL;
	pool_free(&router->pool);
	for (size_t i = 0; i < router->region_count; i++)
		store_close(&router->regions[i].store);
	for (size_t i = 0; i < router->sender_count; i++)
		seal_sender_free(&router->senders[i].sender);
	router_directory_close(router);
	pthread_mutex_destroy(&router->senders_lock);
	pthread_mutex_destroy(&router->dir_get_lock);
	mem_wipe(router->hash_key, sizeof(router->hash_key));
	mem_wipe(router->box_key, sizeof(router->box_key));
	free(router);
}

void router_set_tlog(struct router *router, struct tlog *log)
{
	router->tlog = log;
}

const struct region *router_region(struct router *router, const char *name)
{
	for (size_t i = 0; i < router->region_count; i++)
		if (strcmp(router->regions[i].name, name) == 0)
			return &router->regions[i];
	return NULL;
}

int router_lookups_local(const struct router *router)
{
	if (router->dir_rados != NULL)
		return 0;
	for (size_t i = 0; i < router->region_count; i++)
		if (!router->regions[i].store->backend->local)
			return 0;
	return 1;
}

size_t router_region_count(const struct router *router)
{
	return router->region_count;
}

const struct region *router_region_at(const struct router *router, size_t i)
{
	return i < router->region_count ? &router->regions[i] : NULL;
}

struct store *router_store(struct router *router, const struct account *acct)
{
	(void)router;
	return acct->region->store;
}

char *router_address_normalize(const char *address)
{
	char *copy, *s, *at;

	copy = xstrdup(address);
	s = str_trim(copy);
	if (s[0] == '<' && s[strlen(s) - 1] == '>') {
		s[strlen(s) - 1] = '\0';
		s++;
	}
	at = strrchr(s, '@');
	if (at == NULL || at == s || at[1] == '\0' || strlen(s) > 254 || at - s > 64)
		goto bad;
	for (const char *c = s; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' || *c == '\x7f')
			goto bad;
	for (const char *c = at + 1; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '[' &&
		    *c != ']' && *c != ':' && (unsigned char)*c < 0x80)
			goto bad;
	/* Local parts are matched without regard to ASCII case, as users
	 * expect (RFC 5321 allows either; Postfix and Dovecot do the same). */
	str_lower(s);
	s = xstrdup(s);
	free(copy);
	return s;
bad:
	free(copy);
	return NULL;
}

void router_addr_hash(const struct router *router, const char *address,
		      uint8_t out[SEAL_HASH_BYTES])
{
	seal_keyed_hash(router->hash_key, address, strlen(address), out);
}

struct seal_sender *router_sender_get(struct router *router, const uint8_t pk[SEAL_PK_BYTES])
{
	uint64_t max_age = router->cfg->store_epoch_seconds;
	struct router_sender *slot = NULL;

	for (size_t i = 0; i < router->sender_count; i++) {
		if (memcmp(router->senders[i].pk, pk, SEAL_PK_BYTES) == 0) {
			slot = &router->senders[i];
			break;
		}
	}
	if (slot != NULL && seal_sender_expired(slot->sender, max_age, ROUTER_EPOCH_MESSAGES_MAX))
		seal_sender_free(&slot->sender);
	if (slot == NULL) {
		if (router->sender_count == ROUTER_SENDERS_MAX) {
			/* Full: retire the oldest slot (the first). */
			seal_sender_free(&router->senders[0].sender);
			memmove(&router->senders[0], &router->senders[1],
				(ROUTER_SENDERS_MAX - 1) * sizeof(router->senders[0]));
			router->sender_count--;
		}
		slot = &router->senders[router->sender_count++];
		memcpy(slot->pk, pk, SEAL_PK_BYTES);
		slot->sender = NULL;
	}
	if (slot->sender == NULL && seal_sender_new(pk, &slot->sender) < 0)
		return NULL;
	return slot->sender;
}

int router_log_event(struct router *router, const char *type, const char *const *fields,
		     const char **error_r)
{
	uint64_t index;

	if (router->tlog == NULL) {
		*error_r = str_tfmt("%s cannot be logged: the transparency log is not open", type);
		return -1;
	}
	return tlog_append(router->tlog, type, fields, &index, error_r);
}

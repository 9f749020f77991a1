/* region-private.h — shared between the region module's files. */
#ifndef SEALMAIL_REGION_PRIVATE_H
#define SEALMAIL_REGION_PRIVATE_H

#include "crypto/seal.h"
#include "region/region.h"

#include <pthread.h>
#include <sqlite3.h>

#define ROUTER_SENDERS_MAX 1024

struct router_sender {
	uint8_t pk[SEAL_PK_BYTES];
	struct seal_sender *sender;
};

struct router {
	const struct config *cfg;
	struct region regions[CONFIG_REGIONS_MAX];
	size_t region_count;
	sqlite3 *dir;                 /* the account directory (SQLite), or */
	pthread_mutex_t dir_get_lock; /* for dir_get, prepared once */
	sqlite3_stmt *dir_get;
	struct router_dir_rados *dir_rados; /* the shared one in a RADOS pool */
	uint8_t hash_key[SEAL_KEY_BYTES];   /* keyed hashes of addresses */
	uint8_t box_key[SEAL_KEY_BYTES];    /* sealed address list */
	struct tlog *tlog;
	struct pool *pool; /* metadata parsing off the caller */

	pthread_mutex_t senders_lock; /* delivery epochs per recipient key */
	struct router_sender senders[ROUTER_SENDERS_MAX];
	size_t sender_count;
};

void router_addr_hash(const struct router *router, const char *address,
		      uint8_t out[SEAL_HASH_BYTES]);
/* The current delivery epoch for PK (a new one when expired). The sender
 * stays owned by the router; use it under router->senders_lock only. */
struct seal_sender *router_sender_get(struct router *router, const uint8_t pk[SEAL_PK_BYTES]);
/* Appends an event to the transparency log; fails when none is set (an
 * event that must be logged never goes unlogged). */
int router_log_event(struct router *router, const char *type, const char *const *fields,
		     const char **error_r);

/* Directory (region-directory.c): a SQLite file, or with "rados:..." a
 * RADOS pool that every node shares (region-directory-rados.c). */
int router_directory_open(struct router *router, const char *path, const char **error_r);
void router_directory_close(struct router *router);
/* 1 found (*region_r set), 0 unknown, -1 error. */
int router_directory_get(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const struct region **region_r, const char **error_r);
int router_directory_put(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const struct region *region, const char **error_r);
int router_directory_delete(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			    const char **error_r);
/* Points the entry of ADDR_HASH from region FROM to region TO in one atomic
 * step (an account move); fails if the entry does not name FROM. */
int router_directory_move(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			  const struct region *from, const struct region *to, const char **error_r);

/* The RADOS directory (region-directory-rados.c; built with HAVE_RADOS). */
int dir_rados_open(struct router *router, const char *uri, const char **error_r);
void dir_rados_close(struct router *router);
int dir_rados_get(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		  const struct region **region_r, const char **error_r);
int dir_rados_put(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		  const struct region *region, const char **error_r);
int dir_rados_delete(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		     const char **error_r);
int dir_rados_move(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		   const struct region *from, const struct region *to, const char **error_r);
int dir_rados_list(struct router *router,
		   int (*fn)(void *ctx, const uint8_t addr_hash[SEAL_HASH_BYTES],
			     const char *region),
		   void *ctx, const char **error_r);

#endif

/* region-directory.c — which region each account lives in.
 *
 * Trust boundary: the directory is global (every node reads it), so it holds
 * only what routing needs: a keyed hash of the address, the region name, and
 * the address itself sealed under the server's directory key (so the operator
 * can list accounts; a copy of the file without the key reveals no address). */
#include "region/region-private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int dir_error(struct router *router, const char **error_r)
{
	*error_r = str_tfmt("directory: %s", sqlite3_errmsg(router->dir));
	return -1;
}

int router_directory_open(struct router *router, const char *path, const char **error_r)
{
	if (sqlite3_open_v2(path, &router->dir,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		*error_r = str_tfmt("directory %s: %s", path,
				    router->dir ? sqlite3_errmsg(router->dir) : "out of memory");
		return -1;
	}
	chmod(path, 0600);
	sqlite3_busy_timeout(router->dir, 10000);
	if (sqlite3_exec(router->dir,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
			 "CREATE TABLE IF NOT EXISTS accounts(addr_hash BLOB PRIMARY KEY,"
			 " region TEXT NOT NULL, address_sealed BLOB NOT NULL,"
			 " created INTEGER NOT NULL);",
			 NULL, NULL, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	return 0;
}

int router_directory_get(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const struct region **region_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	if (sqlite3_prepare_v2(router->dir, "SELECT region FROM accounts WHERE addr_hash = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	sqlite3_bind_blob(st, 1, addr_hash, SEAL_HASH_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		*region_r = name ? router_region(router, name) : NULL;
		if (*region_r == NULL) {
			*error_r = str_tfmt("directory names region '%s', which is not configured",
					    name ? name : "");
			ret = -1;
		} else {
			ret = 1;
		}
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = dir_error(router, error_r);
	}
	sqlite3_finalize(st);
	return ret;
}

int router_directory_put(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const char *address, const struct region *region, const char **error_r)
{
	uint8_t *sealed = NULL;
	size_t sealed_len;
	sqlite3_stmt *st;
	int rc;

	if (seal_secretbox_encrypt(router->box_key, address, strlen(address), &sealed,
				   &sealed_len) < 0) {
		*error_r = "cannot seal the address";
		return -1;
	}
	if (sqlite3_prepare_v2(router->dir,
			       "INSERT INTO accounts(addr_hash, region, address_sealed, created)"
			       " VALUES (?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		free(sealed);
		return dir_error(router, error_r);
	}
	sqlite3_bind_blob(st, 1, addr_hash, SEAL_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, region->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(sealed);
	if (rc == SQLITE_CONSTRAINT) {
		*error_r = "account already exists";
		return -1;
	}
	if (rc != SQLITE_DONE)
		return dir_error(router, error_r);
	return 0;
}

int router_directory_delete(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			    const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(router->dir, "DELETE FROM accounts WHERE addr_hash = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	sqlite3_bind_blob(st, 1, addr_hash, SEAL_HASH_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dir_error(router, error_r);
	sqlite3_wal_checkpoint_v2(router->dir, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return 0;
}

int router_account_list(struct router *router,
			int (*fn)(void *ctx, const char *address, const struct region *region),
			void *ctx, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(router->dir,
			       "SELECT region, address_sealed FROM accounts ORDER BY created", -1,
			       &st, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const struct region *region = name ? router_region(router, name) : NULL;
		uint8_t *plain = NULL;
		size_t plain_len;
		char *address;
		int stop;

		if (region == NULL ||
		    seal_secretbox_decrypt(router->box_key, sqlite3_column_blob(st, 1),
					   (size_t)sqlite3_column_bytes(st, 1), &plain,
					   &plain_len) < 0) {
			*error_r = "directory: an entry cannot be read with this server's key";
			ret = -1;
			break;
		}
		address = xmalloc(plain_len + 1);
		memcpy(address, plain, plain_len);
		address[plain_len] = '\0';
		free(plain);
		stop = fn(ctx, address, region);
		free(address);
		if (stop)
			break;
	}
	if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = dir_error(router, error_r);
	sqlite3_finalize(st);
	return ret;
}

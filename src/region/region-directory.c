/* region-directory.c — which region each account lives in.
 *
 * Trust boundary: the directory is global (every node reads it), so it holds
 * only what routing needs: a keyed hash of the address, the region name, and
 * the address itself sealed under the server's directory key (so the operator
 * can list accounts; a copy of the file without the key reveals no address).
 * It is a SQLite file, or with "[server] directory = rados:pool=...,conf=...,
 * id=..." objects in a RADOS pool shared by all nodes (region-directory-rados.c). */
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

/* The rados: URI in PATH ("[server] directory" is read as a path, so it may
 * come prefixed with the config's folder), or NULL. */
static const char *dir_rados_uri(const struct router *router, const char *path)
{
	size_t n = strlen(router->cfg->dir);

	if (strncmp(path, "rados:", 6) == 0)
		return path + 6;
	if (strncmp(path, router->cfg->dir, n) == 0 && path[n] == '/' &&
	    strncmp(path + n + 1, "rados:", 6) == 0)
		return path + n + 7;
	return NULL;
}

int router_directory_open(struct router *router, const char *path, const char **error_r)
{
	const char *uri = dir_rados_uri(router, path);

	if (uri != NULL) {
#ifdef HAVE_RADOS
		return dir_rados_open(router, uri, error_r);
#else
		*error_r = "directory: this sealmail is built without rados";
		return -1;
#endif
	}
	if (sqlite3_open_v2(path, &router->dir,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		*error_r = str_tfmt("directory %s: %s", path,
				    router->dir ? sqlite3_errmsg(router->dir) : "out of memory");
		return -1;
	}
	chmod(path, 0600);
	sqlite3_busy_timeout(router->dir, 10000);
	if (sqlite3_exec(
		router->dir,
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
		"CREATE TABLE IF NOT EXISTS accounts(addr_hash BLOB PRIMARY KEY,"
		" region TEXT NOT NULL,"
		" created INTEGER NOT NULL);",
		NULL, NULL, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	return 0;
}

void router_directory_close(struct router *router)
{
#ifdef HAVE_RADOS
	dir_rados_close(router);
#endif
	sqlite3_finalize(router->dir_get);
	router->dir_get = NULL;
	sqlite3_close(router->dir);
	router->dir = NULL;
}

int router_directory_get(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const struct region **region_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

#ifdef HAVE_RADOS
	if (router->dir_rados != NULL)
		return dir_rados_get(router, addr_hash, region_r, error_r);
#endif
	/* Every RCPT and login comes here: the statement is prepared once,
	 * and used by one thread at a time. */
	pthread_mutex_lock(&router->dir_get_lock);
	if (router->dir_get == NULL &&
	    sqlite3_prepare_v3(router->dir, "SELECT region FROM accounts WHERE addr_hash = ?", -1,
			       SQLITE_PREPARE_PERSISTENT, &router->dir_get, NULL) != SQLITE_OK) {
		ret = dir_error(router, error_r);
		pthread_mutex_unlock(&router->dir_get_lock);
		return ret;
	}
	st = router->dir_get;
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
	sqlite3_reset(st); /* ends the read transaction */
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&router->dir_get_lock);
	return ret;
}

int router_directory_put(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			 const struct region *region, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

#ifdef HAVE_RADOS
	if (router->dir_rados != NULL)
		return dir_rados_put(router, addr_hash, region, error_r);
#endif
	if (sqlite3_prepare_v2(router->dir,
			       "INSERT INTO accounts(addr_hash, region, created) VALUES (?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	sqlite3_bind_blob(st, 1, addr_hash, SEAL_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, region->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
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

#ifdef HAVE_RADOS
	if (router->dir_rados != NULL)
		return dir_rados_delete(router, addr_hash, error_r);
#endif
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

int router_directory_move(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
			  const struct region *from, const struct region *to, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

#ifdef HAVE_RADOS
	if (router->dir_rados != NULL)
		return dir_rados_move(router, addr_hash, from, to, error_r);
#endif
	if (sqlite3_prepare_v2(router->dir,
			       "UPDATE accounts SET region = ? WHERE addr_hash = ? AND region = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	sqlite3_bind_text(st, 1, to->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, addr_hash, SEAL_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, from->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return dir_error(router, error_r);
	if (sqlite3_changes(router->dir) != 1) {
		*error_r =
		    str_tfmt("the directory no longer lists the account in region %s", from->name);
		return -1;
	}
	return 0;
}

struct dir_list {
	struct router *router;
	int (*fn)(void *ctx, const char *address, const struct region *region);
	void *ctx;
	const char *error;
};

/* One entry: reads the account from its home region, opens its sealed
 * address and hands it on. 1 to stop, -1 error. */
static int dir_list_entry(void *ctx, const uint8_t addr_hash[SEAL_HASH_BYTES], const char *name)
{
	struct dir_list *l = ctx;
	const struct region *region = name ? router_region(l->router, name) : NULL;
	struct store_account st;
	uint8_t *plain = NULL;
	size_t plain_len;
	char *address;
	int stop, r;

	if (region == NULL) {
		l->error = str_tfmt("directory names region '%s', which is not configured",
				    name ? name : "");
		return -1;
	}
	store_account_init(&st);
	r = region->store->backend->account_get(region->store, addr_hash, &st, &l->error);
	if (r == 0) {
		/* Deleted between the directory read and this one. */
		store_account_clear(&st);
		return 0;
	}
	if (r < 0 || seal_secretbox_decrypt(l->router->box_key, st.address_sealed.data,
					    st.address_sealed.len, &plain, &plain_len) < 0) {
		if (r > 0)
			l->error = "an account's address cannot be opened with this server's "
				   "directory key";
		store_account_clear(&st);
		return -1;
	}
	store_account_clear(&st);
	address = xmalloc(plain_len + 1);
	memcpy(address, plain, plain_len);
	address[plain_len] = '\0';
	mem_wipe(plain, plain_len);
	free(plain);
	stop = l->fn(l->ctx, address, region);
	free(address);
	return stop ? 1 : 0;
}

int router_account_list(struct router *router,
			int (*fn)(void *ctx, const char *address, const struct region *region),
			void *ctx, const char **error_r)
{
	struct dir_list l = {router, fn, ctx, NULL};
	sqlite3_stmt *st;
	int rc, ret = 0;

#ifdef HAVE_RADOS
	if (router->dir_rados != NULL) {
		ret = dir_rados_list(router, dir_list_entry, &l, error_r);
		if (ret < 0 && l.error != NULL)
			*error_r = l.error;
		return ret;
	}
#endif
	if (sqlite3_prepare_v2(router->dir,
			       "SELECT region, addr_hash FROM accounts ORDER BY created", -1, &st,
			       NULL) != SQLITE_OK)
		return dir_error(router, error_r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int r;

		if (sqlite3_column_bytes(st, 1) != SEAL_HASH_BYTES) {
			l.error = "directory: malformed entry";
			r = -1;
		} else {
			r = dir_list_entry(&l, sqlite3_column_blob(st, 1),
					   (const char *)sqlite3_column_text(st, 0));
		}

		if (r < 0) {
			*error_r = l.error;
			ret = -1;
			break;
		}
		if (r > 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = dir_error(router, error_r);
	sqlite3_finalize(st);
	return ret;
}

/* region-directory-rados.c — the account directory in a RADOS pool, shared
 * by every node: "[server] directory = rados:pool=POOL,conf=PATH,id=CLIENT
 * [,namespace=NS]".
 *
 * Trust boundary: one object per account, "d.<keyed hash of the address>",
 * with one xattr "region" (its home region's name), no data and no omap:
 * only what routing needs. Not even when the account was created: the
 * directory pool is global, and creation times per region say something
 * of a jurisdiction's users to every other. The sealed address, keys,
 * creation time and mail stay in the region's own pool. Creating an entry
 * is an exclusive create, so two nodes cannot home one address twice.
 * Listing goes in keyed-hash order. */
#include "region/region-private.h"
#include "store/store-rados.h"

#include <errno.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router_dir_rados {
	rados_t cluster;
	rados_ioctx_t io;
};

struct dir_rados_entry {
	uint8_t hash[SEAL_HASH_BYTES];
	char region[64];
};

static int dir_rados_fail(int err, const char *what, const char **error_r)
{
	*error_r = str_tfmt("directory: rados %s: %s", what, strerror(-err));
	return -1;
}

static void dir_rados_oid(char oid[80], const uint8_t addr_hash[SEAL_HASH_BYTES])
{
	static const char hex[] = "0123456789abcdef";

	oid[0] = 'd';
	oid[1] = '.';
	for (int i = 0; i < SEAL_HASH_BYTES && i < 32; i++) {
		oid[2 + 2 * i] = hex[addr_hash[i] >> 4];
		oid[3 + 2 * i] = hex[addr_hash[i] & 15];
	}
	oid[2 + 2 * (SEAL_HASH_BYTES < 32 ? SEAL_HASH_BYTES : 32)] = '\0';
}

/* The keyed hash back from an object name "d.<64 hex digits>". */
static int dir_rados_oid_hash(const char *oid, uint8_t hash[SEAL_HASH_BYTES])
{
	if (strlen(oid) != 2 + 2 * SEAL_HASH_BYTES)
		return -1;
	for (int i = 0; i < SEAL_HASH_BYTES; i++) {
		unsigned v;

		if (sscanf(oid + 2 + 2 * i, "%2x", &v) != 1)
			return -1;
		hash[i] = (uint8_t)v;
	}
	return 0;
}

int dir_rados_open(struct router *router, const char *uri, const char **error_r)
{
	struct router_dir_rados *d = xcalloc(1, sizeof(*d));

	if (store_rados_connect(uri, "directory", &d->cluster, &d->io, error_r) < 0) {
		free(d);
		return -1;
	}
	router->dir_rados = d;
	return 0;
}

void dir_rados_close(struct router *router)
{
	struct router_dir_rados *d = router->dir_rados;

	if (d == NULL)
		return;
	router->dir_rados = NULL;
	rados_ioctx_destroy(d->io);
	rados_shutdown(d->cluster);
	free(d);
}

int dir_rados_get(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		  const struct region **region_r, const char **error_r)
{
	char oid[80], name[64];
	int n;

	dir_rados_oid(oid, addr_hash);
	n = rados_getxattr(router->dir_rados->io, oid, "region", name, sizeof(name) - 1);
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return dir_rados_fail(n, "read", error_r);
	name[n] = '\0';
	*region_r = router_region(router, name);
	if (*region_r == NULL) {
		*error_r = str_tfmt("directory names region '%s', which is not configured", name);
		return -1;
	}
	return 1;
}

int dir_rados_put(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		  const struct region *region, const char **error_r)
{
	rados_write_op_t op = rados_create_write_op();
	char oid[80];
	int r;

	dir_rados_oid(oid, addr_hash);
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, "region", region->name, strlen(region->name));
	r = rados_write_op_operate2(op, router->dir_rados->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == -EEXIST) {
		*error_r = "account already exists";
		return -1;
	}
	return r < 0 ? dir_rados_fail(r, "write", error_r) : 0;
}

int dir_rados_move(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		   const struct region *from, const struct region *to, const char **error_r)
{
	rados_write_op_t op = rados_create_write_op();
	char oid[80];
	int r;

	dir_rados_oid(oid, addr_hash);
	rados_write_op_assert_exists(op);
	rados_write_op_cmpxattr(op, "region", LIBRADOS_CMPXATTR_OP_EQ, from->name,
				strlen(from->name));
	rados_write_op_setxattr(op, "region", to->name, strlen(to->name));
	r = rados_write_op_operate2(op, router->dir_rados->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (r == -ENOENT || r == -ECANCELED) {
		*error_r =
		    str_tfmt("the directory no longer lists the account in region %s", from->name);
		return -1;
	}
	return r < 0 ? dir_rados_fail(r, "write", error_r) : 0;
}

int dir_rados_delete(struct router *router, const uint8_t addr_hash[SEAL_HASH_BYTES],
		     const char **error_r)
{
	char oid[80];
	int r;

	dir_rados_oid(oid, addr_hash);
	r = rados_remove(router->dir_rados->io, oid);
	return r < 0 && r != -ENOENT ? dir_rados_fail(r, "remove", error_r) : 0;
}

/* Reads the entry OID into E: 1, 0 when it went away meanwhile. */
static int dir_rados_read(rados_ioctx_t io, const char *oid, struct dir_rados_entry *e,
			  const char **error_r)
{
	rados_read_op_t op = rados_create_read_op();
	rados_xattrs_iter_t iter;
	const char *name, *val;
	size_t len;
	int prval = 0, r;

	e->region[0] = '\0';
	rados_read_op_getxattrs(op, &iter, &prval);
	r = rados_read_op_operate(op, io, oid, 0);
	rados_release_read_op(op);
	if (r < 0 || prval < 0) {
		/* The iterator exists whatever the result. */
		rados_getxattrs_end(iter);
		if (r == -ENOENT)
			return 0;
		return dir_rados_fail(r < 0 ? r : prval, "read", error_r);
	}
	while (rados_getxattrs_next(iter, &name, &val, &len) == 0 && name != NULL) {
		if (strcmp(name, "region") == 0 && len < sizeof(e->region)) {
			memcpy(e->region, val, len);
			e->region[len] = '\0';
		}
	}
	rados_getxattrs_end(iter);
	return 1;
}

static int dir_rados_cmp(const void *a, const void *b)
{
	const struct dir_rados_entry *x = a, *y = b;

	return memcmp(x->hash, y->hash, SEAL_HASH_BYTES);
}

int dir_rados_list(struct router *router,
		   int (*fn)(void *ctx, const uint8_t addr_hash[SEAL_HASH_BYTES],
			     const char *region),
		   void *ctx, const char **error_r)
{
	rados_ioctx_t io = router->dir_rados->io;
	struct dir_rados_entry *entries = NULL;
	size_t n = 0, cap = 0;
	rados_list_ctx_t lc;
	const char *oid;
	int r, ret = 0;

	if ((r = rados_nobjects_list_open(io, &lc)) < 0)
		return dir_rados_fail(r, "list", error_r);
	while ((r = rados_nobjects_list_next(lc, &oid, NULL, NULL)) == 0) {
		if (strncmp(oid, "d.", 2) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			entries = realloc(entries, cap * sizeof(*entries));
			if (entries == NULL)
				log_fatal("out of memory");
		}
		if (dir_rados_oid_hash(oid, entries[n].hash) < 0)
			continue;
		r = dir_rados_read(io, oid, &entries[n], error_r);
		if (r < 0) {
			ret = -1;
			break;
		}
		n += (size_t)r;
	}
	rados_nobjects_list_close(lc);
	if (ret == 0 && r != -ENOENT)
		ret = dir_rados_fail(r, "list", error_r);
	qsort(entries, n, sizeof(*entries), dir_rados_cmp);
	for (size_t i = 0; i < n && ret == 0; i++) {
		r = fn(ctx, entries[i].hash, entries[i].region);
		if (r < 0)
			ret = -1;
		else if (r > 0)
			break;
	}
	free(entries);
	return ret;
}

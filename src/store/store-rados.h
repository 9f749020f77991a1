/* store-rados.h — connecting to a Ceph cluster, shared by the rados store
 * and the rados account directory (built only with HAVE_RADOS).
 *
 * Trust boundary: the location string is operator configuration. */
#ifndef SEALMAIL_STORE_RADOS_H
#define SEALMAIL_STORE_RADOS_H

#include "lib/lib.h"

#include <rados/librados.h>

/* Connects as id= with the ceph config conf= of LOCATION
 * ("pool=P,conf=C,id=I[,namespace=N]") and opens P's I/O context in
 * namespace N. WHAT ("store", "directory") starts every error message.
 * On failure nothing stays open. */
int store_rados_connect(const char *location, const char *what, rados_t *cluster_r,
			rados_ioctx_t *io_r, const char **error_r) WARN_UNUSED;

#endif

/* net-cert.h — self-signed certificate generation (for `sealmail init`). */
#ifndef SEALMAIL_NET_CERT_H
#define SEALMAIL_NET_CERT_H

#include "lib/lib.h"

/* Writes a new P-256 key (0600) and a 10-year self-signed certificate for
 * HOSTNAME, localhost, 127.0.0.1 and ::1. Refuses to overwrite files. */
int net_cert_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
			const char **error_r) WARN_UNUSED;

#endif

/* daemon.h — `sealmail serve`: the long-running server process.
 *
 * Trust boundary: runs the network-facing protocol servers (SMTP now, IMAP
 * beside it) over one event loop. It binds the listeners, may drop root
 * privileges to [server] user, opens the region router and turns signals
 * into actions: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the TLS
 * certificate and key. */
#ifndef SEALMAIL_DAEMON_H
#define SEALMAIL_DAEMON_H

#include "lib/config.h"
#include "lib/lib.h"

/* Serves until SIGTERM or SIGINT and a graceful stop. Returns 0 after a
 * clean stop, -1 with *error_r if the server could not start. */
int daemon_run(const struct config *cfg, const char **error_r) WARN_UNUSED;

#endif

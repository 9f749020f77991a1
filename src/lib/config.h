/* config.h — sealmail.conf: a small INI dialect, parsed by a table.
 *
 * Trust boundary: the file is operator input; it is validated completely and
 * every error names the file, the line and the key. Relative paths are
 * resolved against the directory holding the file. */
#ifndef SEALMAIL_CONFIG_H
#define SEALMAIL_CONFIG_H

#include "lib/lib.h"

#define CONFIG_REGIONS_MAX 16

struct config_region {
	char *name;           /* [region NAME] */
	char jurisdiction[3]; /* ISO 3166-1 alpha-2, upper case */
	char *store;          /* URI with paths made absolute: "fs:/abs/path" */
	char *referral_host;  /* imap host for LOGIN-REFERRALS, may be NULL */
};

struct config {
	char *path; /* the file read */
	char *dir;  /* its directory */

	/* [server] */
	char *hostname;
	char **domains;       /* NULL-terminated */
	char **serve_regions; /* NULL-terminated; empty = all */
	char *keys_dir;       /* default DIR/keys */
	char *directory;      /* account directory, default DIR/directory.sqlite */
	char *user;           /* drop privileges to this user when root */
	char *log_level;
	uint64_t core_dumps; /* 1: leave core dumps and ptrace as the system has them */

	/* [tls] */
	char *tls_cert;
	char *tls_key;

	/* [smtp] */
	char *smtp_listen; /* host:port, "" to disable */
	uint64_t smtp_max_message_size;
	uint64_t smtp_max_recipients;
	uint64_t smtp_max_line;         /* text line in DATA, CRLF included */
	uint64_t smtp_max_command_line; /* command line, CRLF included */
	uint64_t smtp_max_connections;
	uint64_t smtp_max_connections_per_ip;
	uint64_t smtp_max_errors;
	uint64_t smtp_timeout_command; /* seconds */
	uint64_t smtp_timeout_data;    /* seconds */
	uint64_t smtp_unknown_user_delay_ms;
	uint64_t smtp_shutdown_grace;          /* seconds */
	uint64_t smtp_max_commands_per_second; /* per session, 0 = unlimited */

	/* [imap] */
	char *imap_listen;
	char *imap_listen_tls;
	uint64_t imap_max_line;
	uint64_t imap_max_literal;
	uint64_t imap_max_connections;
	uint64_t imap_max_connections_per_ip;
	uint64_t imap_max_unauth_commands;
	uint64_t imap_timeout_idle;   /* seconds, authenticated idle */
	uint64_t imap_timeout_unauth; /* seconds */
	uint64_t imap_auth_fail_delay_ms;
	uint64_t imap_auth_fail_lockout;       /* failures in the window that lock out, 0 = never */
	uint64_t imap_auth_fail_window;        /* seconds a failure is remembered */
	uint64_t imap_max_commands_per_second; /* per session, 0 = unlimited */
	uint64_t imap_idle_poll;               /* seconds between IDLE polls, 0 = by the store */

	/* [store] */
	uint64_t store_epoch_seconds; /* delivery epoch length */
	char *store_record_cipher;    /* auto, xchacha20poly1305, aes256gcm */

	/* [log] (transparency log) */
	char *tlog_dir;
	char *tlog_origin;
	char *tlog_key;

	/* [legal] */
	char *legal_policy;
	uint64_t legal_notify_interval; /* seconds between owner-notice sweeps */

	struct config_region regions[CONFIG_REGIONS_MAX];
	size_t region_count;
};

/* Reads and validates PATH. On error returns -1 and *error_r is a malloc'd
 * message of the form "PATH:LINE: key 'KEY': problem". */
int config_load(const char *path, struct config **cfg_r, char **error_r) WARN_UNUSED;
/* Parses TEXT as if read from PATH (for tests and the fuzzer). */
int config_parse(const char *path, const char *text, size_t len, struct config **cfg_r,
		 char **error_r) WARN_UNUSED;
const struct config_region *config_region_find(const struct config *cfg, const char *name);
void config_free(struct config **cfg);

#endif

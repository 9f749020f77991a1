/* cli.h — the sealmail command line: one file per command group.
 *
 * Trust boundary: run by the operator (or a local MTA for `deliver`). Secrets
 * (passwords, recovery codes) are read from a tty without echo or from stdin
 * with --password-stdin, and never logged. */
#ifndef SEALMAIL_CLI_H
#define SEALMAIL_CLI_H

#include "lib/config.h"
#include "lib/lib.h"

/* sysexits.h codes used by the CLI. */
#define CLI_EX_OK        0
#define CLI_EX_USAGE     64
#define CLI_EX_DATAERR   65
#define CLI_EX_NOUSER    67
#define CLI_EX_SOFTWARE  70
#define CLI_EX_CANTCREAT 73
#define CLI_EX_IOERR     74
#define CLI_EX_TEMPFAIL  75
#define CLI_EX_NOPERM    77
#define CLI_EX_CONFIG    78

struct cli {
	const char *config_path; /* -c FILE, $SEALMAIL_CONF, ./sealmail.conf */
	struct config *config;   /* loaded by cli_config() */
};

/* Loads the config once; prints the error and returns NULL on failure. */
struct config *cli_config(struct cli *cli);
/* Reads a secret: from stdin (one line) if FROM_STDIN, else from the tty
 * without echo after printing PROMPT. Returns malloc'd string or NULL. */
char *cli_read_secret(const char *prompt, int from_stdin);
void cli_secret_free(char **secret);
/* Prints "sealmail: " + message to stderr. */
void cli_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

struct router;
struct tlog;
/* Opens the configured regions and the transparency log for a command that
 * changes or reads accounts. Prints the problem and returns a sysexits code
 * on failure, 0 on success. */
int cli_open(struct cli *cli, struct router **router_r, struct tlog **tlog_r);
void cli_close(struct router **router, struct tlog **tlog);
/* Looks ADDRESS up; prints "no such account" etc. Returns 0 or an exit code. */
struct account;
int cli_find_account(struct router *router, const char *address, struct account **acct_r);
/* True if argv holds FLAG; removes it. */
int cli_take_flag(int *argc, char **argv, const char *flag);
/* Value of "--NAME VALUE" in argv, removed from it; NULL if absent. */
const char *cli_take_option(int *argc, char **argv, const char *name);

/* Entry points: argv[0] is the command name ("user", "deliver", ...). */
int cli_init_main(struct cli *cli, int argc, char **argv);
int cli_user_main(struct cli *cli, int argc, char **argv);
int cli_deliver_main(struct cli *cli, int argc, char **argv);
int cli_export_main(struct cli *cli, int argc, char **argv);
int cli_serve_main(struct cli *cli, int argc, char **argv);
int cli_log_main(struct cli *cli, int argc, char **argv);
int cli_legal_main(struct cli *cli, int argc, char **argv);
int cli_report_main(struct cli *cli, int argc, char **argv);

#endif

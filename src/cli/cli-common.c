/* cli-common.c — shared plumbing of CLI commands: opening the stores and the
 * log, account look-ups, argument helpers.
 *
 * Trust boundary: operator input only. */
#include "cli/cli.h"

#include "crypto/seal.h"
#include "mime/mime.h"
#include "region/region.h"
#include "tlog/tlog.h"

#include <stdlib.h>
#include <string.h>

int cli_open(struct cli *cli, struct router **router_r, struct tlog **tlog_r)
{
	const struct config *cfg = cli_config(cli);
	const char *error = NULL;

	*router_r = NULL;
	if (tlog_r != NULL)
		*tlog_r = NULL;
	if (cfg == NULL)
		return CLI_EX_CONFIG;
	if (seal_init() < 0) {
		cli_error("cannot initialise libsodium");
		return CLI_EX_SOFTWARE;
	}
	mime_init();
	if (router_open(cfg, router_r, &error) < 0) {
		cli_error("%s", error);
		return CLI_EX_TEMPFAIL;
	}
	if (tlog_r != NULL) {
		if (tlog_open(cfg->tlog_dir, cfg->tlog_origin, cfg->tlog_key, tlog_r, &error) < 0) {
			cli_error("transparency log: %s", error);
			router_close(router_r);
			return CLI_EX_TEMPFAIL;
		}
		router_set_tlog(*router_r, *tlog_r);
	}
	return 0;
}

void cli_close(struct router **router, struct tlog **tlog)
{
	router_close(router);
	if (tlog != NULL)
		tlog_close(tlog);
}

int cli_find_account(struct router *router, const char *address, struct account **acct_r)
{
	const char *error = NULL;
	int r = router_account_find(router, address, acct_r, &error);

	if (r < 0) {
		cli_error("%s", error);
		return CLI_EX_TEMPFAIL;
	}
	if (r == 0) {
		cli_error("no such account: %s", address);
		return CLI_EX_NOUSER;
	}
	return 0;
}

static void cli_remove_args(int *argc, char **argv, int at, int n)
{
	memmove(&argv[at], &argv[at + n], (size_t)(*argc - at - n + 1) * sizeof(char *));
	*argc -= n;
}

int cli_take_flag(int *argc, char **argv, const char *flag)
{
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], flag) == 0) {
			cli_remove_args(argc, argv, i, 1);
			return 1;
		}
	}
	return 0;
}

const char *cli_take_option(int *argc, char **argv, const char *name)
{
	const char *value;

	for (int i = 1; i + 1 < *argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			value = argv[i + 1];
			cli_remove_args(argc, argv, i, 2);
			return value;
		}
	}
	return NULL;
}

/* cli-serve.c — `sealmail serve [--foreground]`: runs the daemon.
 *
 * Trust boundary: started by the operator (or a service manager). It always
 * stays in the foreground and logs to stderr; a service manager is expected
 * to supervise it. */
#include "cli/cli.h"
#include "daemon/daemon.h"

#include <stdio.h>
#include <string.h>

static void cli_serve_usage(FILE *out)
{
	fprintf(out, "usage: sealmail [-c FILE] serve [--foreground]\n"
		     "  Accepts mail over SMTP (and, when built, IMAP) until SIGTERM.\n"
		     "  SIGHUP reloads the TLS certificate and key. Logs go to stderr.\n");
}

int cli_serve_main(struct cli *cli, int argc, char **argv)
{
	struct config *cfg;
	const char *error = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cli_serve_usage(stdout);
			return CLI_EX_OK;
		}
		cli_error("serve: unknown argument '%s'", argv[i]);
		cli_serve_usage(stderr);
		return CLI_EX_USAGE;
	}
	cfg = cli_config(cli);
	if (cfg == NULL)
		return CLI_EX_CONFIG;
	if (daemon_run(cfg, &error) < 0) {
		cli_error("serve: %s", error != NULL ? error : "cannot start");
		return CLI_EX_TEMPFAIL;
	}
	return CLI_EX_OK;
}

/* cli-deliver.c — `sealmail deliver ADDRESS... < MESSAGE`, a local delivery
 * agent for an MTA (as dovecot-lda is for Postfix).
 *
 * Trust boundary: the message on stdin is untrusted. It is sealed as it is
 * read and stored in each recipient's home region; exit codes follow
 * sysexits.h so the MTA bounces (64-67) or retries (75). Like SMTP delivery
 * it only adds sealed mail and reads nothing stored, so it is not logged as
 * operator access (a log entry per delivery would publish each account's
 * mail traffic). */
#include "cli/cli.h"

#include "region/region.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_DELIVER_READ_BYTES 65536

int cli_deliver_main(struct cli *cli, int argc, char **argv)
{
	struct router *router = NULL;
	struct account **accts;
	struct delivery *d = NULL;
	const char *error = NULL;
	uint8_t *chunk = NULL;
	int ret, n = argc - 1;

	if (n < 1) {
		cli_error("usage: sealmail deliver ADDRESS... < MESSAGE");
		return CLI_EX_USAGE;
	}
	ret = cli_open(cli, &router, NULL);
	if (ret != 0)
		return ret == CLI_EX_CONFIG ? CLI_EX_TEMPFAIL : ret;
	accts = xcalloc((size_t)n, sizeof(*accts));
	/* Every recipient must exist before a byte is stored. */
	for (int i = 0; i < n; i++) {
		ret = cli_find_account(router, argv[i + 1], &accts[i]);
		if (ret != 0)
			goto out;
	}
	if (delivery_begin(router, cli->config->smtp_max_message_size, &d, &error) < 0)
		goto tempfail;
	for (int i = 0; i < n; i++)
		if (delivery_add_recipient(d, accts[i], &error) < 0)
			goto tempfail;
	/* Reading stdin waits whenever sealing falls behind: memory stays
	 * bounded whatever the message's size. */
	delivery_set_pacing(d, NULL, NULL);
	chunk = xmalloc(CLI_DELIVER_READ_BYTES);
	for (;;) {
		ssize_t got = read(STDIN_FILENO, chunk, CLI_DELIVER_READ_BYTES);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			error = strerror(errno);
			goto tempfail;
		}
		if (got == 0)
			break;
		if (delivery_write(d, chunk, (size_t)got, &error) < 0) {
			if (strcmp(error, "message too large") == 0) {
				cli_error("message larger than [smtp] max_message_size");
				ret = CLI_EX_DATAERR;
				goto out;
			}
			goto tempfail;
		}
	}
	if (delivery_commit_wait(&d, (int64_t)time(NULL), &error) < 0)
		goto tempfail;
	ret = CLI_EX_OK;
	goto out;
tempfail:
	cli_error("delivery failed: %s", error ? error : "unknown error");
	ret = CLI_EX_TEMPFAIL;
out:
	if (chunk != NULL) {
		mem_wipe(chunk, CLI_DELIVER_READ_BYTES);
		free(chunk);
	}
	delivery_abort(&d);
	for (int i = 0; i < n; i++)
		router_account_free(&accts[i]);
	free(accts);
	cli_close(&router, NULL);
	return ret;
}

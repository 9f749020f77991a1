/* cli-main.c — `sealmail COMMAND ...`: global options and dispatch.
 *
 * Trust boundary: operator input. Secrets are read without echo from the tty
 * or, with --password-stdin, one per line from standard input. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define CLI_SECRET_MAX 1024

static const struct {
	const char *name;
	int (*main)(struct cli *cli, int argc, char **argv);
	const char *usage;
} cli_commands[] = {
    {"init", cli_init_main, "init DIR [--domain D] [--hostname H]"},
    {"user", cli_user_main,
     "user add ADDRESS --region R [--password-stdin] | list | show ADDRESS |\n"
     "                passwd ADDRESS [--password-stdin] | recover ADDRESS [--password-stdin] |\n"
     "                delete ADDRESS"},
    {"deliver", cli_deliver_main, "deliver ADDRESS... < MESSAGE"},
    {"export", cli_export_main, "export ADDRESS [--password-stdin] --out DIR"},
    {"serve", cli_serve_main, "serve"},
    {"log", cli_log_main,
     "log key | checkpoint | show [--from N] [--json] | prove-inclusion INDEX [--size N] |\n"
     "               prove-consistency OLD NEW | verify"},
    {"legal", cli_legal_main,
     "legal file --authority A --jurisdiction CC --instrument I --reference REF\n"
     "                 --account ADDRESS... --scope content|non-content "
     "[--nondisclosure-until DATE] |\n"
     "                 list | show ID [--json] | decide ID | reject ID --reason TEXT |\n"
     "                 export ID --out DIR | notify [--as-of DATE] | verify-bundle DIR |\n"
     "                 open-bundle DIR --account ADDRESS [--password-stdin] --out DIR"},
    {"report", cli_report_main,
     "report [--from DATE] [--to DATE] [--format json|html] [--out FILE]"},
};

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sealmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct config *cli_config(struct cli *cli)
{
	char *error = NULL;

	if (cli->config != NULL)
		return cli->config;
	if (config_load(cli->config_path, &cli->config, &error) < 0) {
		cli_error("%s", error);
		free(error);
		return NULL;
	}
	return cli->config;
}

static char *cli_read_line(FILE *in)
{
	char *line = xmalloc(CLI_SECRET_MAX + 2);
	size_t len;

	if (fgets(line, CLI_SECRET_MAX + 2, in) == NULL) {
		free(line);
		return NULL;
	}
	len = strlen(line);
	if (len > CLI_SECRET_MAX) {
		mem_wipe(line, CLI_SECRET_MAX + 2);
		free(line);
		cli_error("secret longer than %d bytes", CLI_SECRET_MAX);
		return NULL;
	}
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	return line;
}

char *cli_read_secret(const char *prompt, int from_stdin)
{
	struct termios old, quiet;
	FILE *tty;
	char *line;

	if (from_stdin)
		return cli_read_line(stdin);
	tty = fopen("/dev/tty", "r+");
	if (tty == NULL) {
		cli_error("no terminal to ask for a secret on; use --password-stdin");
		return NULL;
	}
	fputs(prompt, tty);
	fflush(tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	line = cli_read_line(tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	return line;
}

void cli_secret_free(char **secret)
{
	if (*secret == NULL)
		return;
	mem_wipe(*secret, strlen(*secret));
	free(*secret);
	*secret = NULL;
}

static void cli_usage(FILE *out)
{
	fputs("usage: sealmail [-c FILE] COMMAND ...\n\ncommands:\n", out);
	for (size_t i = 0; i < N_ELEMENTS(cli_commands); i++)
		fprintf(out, "  sealmail %s\n", cli_commands[i].usage);
	fputs("\nThe configuration file is -c FILE, else $SEALMAIL_CONF, else ./sealmail.conf.\n",
	      out);
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	const char *env = getenv("SEALMAIL_CONF");
	int i = 1, ret;

	/* Everything sealmail creates (databases and their WAL/SHM files, keys,
	 * exports) is for this user only. */
	umask(077);
	cli.config_path = env != NULL && env[0] != '\0' ? env : "sealmail.conf";
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cli.config_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cli_usage(stdout);
			return CLI_EX_OK;
		} else {
			cli_error("unknown option %s", argv[i]);
			cli_usage(stderr);
			return CLI_EX_USAGE;
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return CLI_EX_USAGE;
	}
	for (size_t c = 0; c < N_ELEMENTS(cli_commands); c++) {
		if (strcmp(cli_commands[c].name, argv[i]) != 0)
			continue;
		/* Sub-commands also accept -c after the command name. */
		for (int j = i + 1; j + 1 < argc; j++) {
			if (strcmp(argv[j], "-c") == 0) {
				cli.config_path = argv[j + 1];
				memmove(&argv[j], &argv[j + 2],
					(size_t)(argc - j - 2) * sizeof(char *));
				argc -= 2;
				break;
			}
		}
		ret = cli_commands[c].main(&cli, argc - i, argv + i);
		config_free(&cli.config);
		return ret;
	}
	cli_error("unknown command '%s'", argv[i]);
	cli_usage(stderr);
	return CLI_EX_USAGE;
}

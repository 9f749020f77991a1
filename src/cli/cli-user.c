/* cli-user.c — `sealmail user add|list|show|passwd|recover|move|delete`.
 *
 * Trust boundary: passwords and recovery codes pass through memory only and
 * are wiped after use. `user list` shows addresses: it opens the directory's
 * sealed address list with the server's directory key. */
#include "cli/cli.h"

#include "legal/legal.h"
#include "region/region.h"
#include "tlog/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Asks for a new password twice on a tty, once with --password-stdin. */
static char *cli_user_new_password(int from_stdin)
{
	char *pw = cli_read_secret("New password: ", from_stdin), *again;

	if (pw == NULL || from_stdin)
		return pw;
	again = cli_read_secret("Repeat the new password: ", 0);
	if (again == NULL || strcmp(pw, again) != 0) {
		cli_error("the passwords do not match");
		cli_secret_free(&pw);
	}
	cli_secret_free(&again);
	return pw;
}

static void cli_user_print_code(const char *code)
{
	printf("Recovery code (shown once; keep it offline, it can reset the password):\n"
	       "  %s\n",
	       code);
}

static int cli_user_add(struct router *router, int argc, char **argv)
{
	const char *region = cli_take_option(&argc, argv, "--region");
	int from_stdin = cli_take_flag(&argc, argv, "--password-stdin");
	char code[64], *pw;
	const char *error = NULL;
	int ret;

	if (argc != 2 || region == NULL) {
		cli_error("usage: sealmail user add ADDRESS --region R [--password-stdin]");
		return CLI_EX_USAGE;
	}
	if (router_region(router, region) == NULL) {
		cli_error("no region named '%s' in the configuration", region);
		return CLI_EX_USAGE;
	}
	pw = cli_user_new_password(from_stdin);
	if (pw == NULL)
		return CLI_EX_DATAERR;
	ret = router_account_create(router, argv[1], region, pw, code, sizeof(code), &error);
	cli_secret_free(&pw);
	if (ret < 0) {
		cli_error("%s: %s", argv[1], error);
		return strcmp(error, "account already exists") == 0 ? CLI_EX_CANTCREAT
								    : CLI_EX_DATAERR;
	}
	printf("Created %s in region %s (%s).\n", argv[1], region,
	       router_region(router, region)->jurisdiction);
	cli_user_print_code(code);
	mem_wipe(code, sizeof(code));
	return CLI_EX_OK;
}

static int cli_user_list_one(void *ctx, const char *address, const struct region *region)
{
	(void)ctx;
	printf("%s\t%s\t%s\n", address, region->name, region->jurisdiction);
	return 0;
}

static int cli_user_list(struct router *router)
{
	const char *error = NULL;

	if (router_account_list(router, cli_user_list_one, NULL, &error) < 0) {
		cli_error("%s", error);
		return CLI_EX_TEMPFAIL;
	}
	return CLI_EX_OK;
}

static int cli_user_show(struct router *router, const char *address)
{
	struct account *acct = NULL;
	const struct store_backend *b;
	uint64_t messages = 0, bytes = 0;
	const char *error = NULL;
	char created[32];
	struct tm tm;
	time_t t;
	int ret;

	ret = cli_find_account(router, address, &acct);
	if (ret != 0)
		return ret;
	b = router_store(router, acct)->backend;
	if (b->account_usage(router_store(router, acct), acct->st.id, &messages, &bytes, &error) <
	    0) {
		cli_error("%s", error);
		router_account_free(&acct);
		return CLI_EX_TEMPFAIL;
	}
	t = (time_t)acct->st.created;
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("address:      %s\n"
	       "region:       %s\n"
	       "jurisdiction: %s\n"
	       "created:      %s\n"
	       "messages:     %llu\n"
	       "stored bytes: %llu (sealed)\n"
	       "log tag:      ",
	       acct->address, acct->region->name, acct->region->jurisdiction, created,
	       (unsigned long long)messages, (unsigned long long)bytes);
	for (size_t i = 0; i < STORE_TAG_BYTES; i++)
		printf("%02x", acct->st.tag[i]);
	printf("\n              (entries about this account in the transparency log carry "
	       "this tag)\n");
	router_account_free(&acct);
	return CLI_EX_OK;
}

static int cli_user_passwd(struct router *router, int argc, char **argv, int recover)
{
	int from_stdin = cli_take_flag(&argc, argv, "--password-stdin");
	char *old = NULL, *pw = NULL, code[64];
	struct account *acct = NULL;
	const char *error = NULL;
	int ret;

	if (argc != 2) {
		cli_error("usage: sealmail user %s ADDRESS [--password-stdin]",
			  recover ? "recover" : "passwd");
		return CLI_EX_USAGE;
	}
	ret = cli_find_account(router, argv[1], &acct);
	if (ret != 0)
		return ret;
	old = cli_read_secret(recover ? "Recovery code: " : "Current password: ", from_stdin);
	if (old == NULL) {
		ret = CLI_EX_DATAERR;
		goto out;
	}
	pw = cli_user_new_password(from_stdin);
	if (pw == NULL) {
		ret = CLI_EX_DATAERR;
		goto out;
	}
	if (recover)
		ret = router_account_recover(router, acct, old, pw, code, sizeof(code), &error);
	else
		ret = router_account_passwd(router, acct, old, pw, &error);
	if (ret < 0) {
		cli_error("%s: %s", argv[1], error);
		ret = CLI_EX_NOPERM;
		goto out;
	}
	printf("Password of %s changed; stored mail was not touched.\n", acct->address);
	if (recover) {
		printf("The recovery code you used is no longer valid.\n");
		cli_user_print_code(code);
		mem_wipe(code, sizeof(code));
	}
	ret = CLI_EX_OK;
out:
	cli_secret_free(&old);
	cli_secret_free(&pw);
	router_account_free(&acct);
	return ret;
}

/* 0 when no preservation request holds ACCT, else an exit code; WHAT is
 * what the hold forbids ("deleted", "moved"). */
static int cli_user_check_hold(struct cli *cli, struct router *router, struct tlog *tlog,
			       const struct account *acct, const char *what)
{
	struct legal *legal = NULL;
	const char *error = NULL;
	char id[LEGAL_ID_MAX];
	int held;

	if (legal_open(cli->config, router, tlog, &legal, &error) < 0) {
		cli_error("%s", error);
		return CLI_EX_TEMPFAIL;
	}
	held = legal_account_held(legal, acct, id, &error);
	legal_close(&legal);
	if (held < 0) {
		cli_error("%s", error);
		return CLI_EX_TEMPFAIL;
	}
	if (held == 0)
		return 0;
	cli_error("%s is held by preservation request %s and cannot be %s; "
		  "when the hold ends: sealmail legal release %s",
		  acct->address, id, what, id);
	return CLI_EX_DATAERR;
}

static int cli_user_delete(struct cli *cli, struct router *router, struct tlog *tlog,
			   const char *address)
{
	struct account *acct = NULL;
	const char *error = NULL;
	int ret;

	ret = cli_find_account(router, address, &acct);
	if (ret != 0)
		return ret;
	ret = cli_user_check_hold(cli, router, tlog, acct, "deleted");
	if (ret != 0) {
		router_account_free(&acct);
		return ret;
	}
	if (router_account_delete(router, acct, &error) < 0) {
		cli_error("%s: %s", address, error);
		ret = CLI_EX_TEMPFAIL;
	} else {
		printf("Deleted %s and all of its stored mail.\n", acct->address);
	}
	router_account_free(&acct);
	return ret;
}

static int cli_user_move(struct cli *cli, struct router *router, struct tlog *tlog, int argc,
			 char **argv)
{
	const char *region = cli_take_option(&argc, argv, "--region");
	const struct region *from;
	struct account *acct = NULL;
	const char *error = NULL;
	int ret;

	if (argc != 2 || region == NULL) {
		cli_error("usage: sealmail user move ADDRESS --region R");
		return CLI_EX_USAGE;
	}
	if (router_region(router, region) == NULL) {
		cli_error("no region named '%s' in the configuration", region);
		return CLI_EX_USAGE;
	}
	ret = cli_find_account(router, argv[1], &acct);
	if (ret != 0)
		return ret;
	from = acct->region;
	if (strcmp(from->name, region) == 0) {
		cli_error("%s is already in region %s", acct->address, region);
		ret = CLI_EX_DATAERR;
		goto out;
	}
	ret = cli_user_check_hold(cli, router, tlog, acct, "moved");
	if (ret != 0)
		goto out;
	if (router_account_move(router, acct, region, &error) < 0) {
		cli_error("%s: %s", acct->address, error);
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	printf("Moved %s from region %s (%s) to region %s (%s); nothing of it is left in %s.\n",
	       acct->address, from->name, from->jurisdiction, acct->region->name,
	       acct->region->jurisdiction, from->name);
	ret = CLI_EX_OK;
out:
	router_account_free(&acct);
	return ret;
}

int cli_user_main(struct cli *cli, int argc, char **argv)
{
	struct router *router = NULL;
	struct tlog *tlog = NULL;
	const char *sub = argc > 1 ? argv[1] : "";
	int ret;

	if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "passwd") != 0 && strcmp(sub, "recover") != 0 && strcmp(sub, "move") != 0 &&
	    strcmp(sub, "delete") != 0) {
		cli_error("usage: sealmail user add|list|show|passwd|recover|move|delete ...");
		return CLI_EX_USAGE;
	}
	ret = cli_open(cli, &router, &tlog);
	if (ret != 0)
		return ret;
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0) {
		ret = cli_user_add(router, argc, argv);
	} else if (strcmp(sub, "list") == 0) {
		ret = cli_user_list(router);
	} else if (strcmp(sub, "passwd") == 0 || strcmp(sub, "recover") == 0) {
		ret = cli_user_passwd(router, argc, argv, strcmp(sub, "recover") == 0);
	} else if (strcmp(sub, "move") == 0) {
		ret = cli_user_move(cli, router, tlog, argc, argv);
	} else if (argc != 2) {
		cli_error("usage: sealmail user %s ADDRESS", sub);
		ret = CLI_EX_USAGE;
	} else if (strcmp(sub, "show") == 0) {
		ret = cli_user_show(router, argv[1]);
	} else {
		ret = cli_user_delete(cli, router, tlog, argv[1]);
	}
	cli_close(&router, &tlog);
	return ret;
}

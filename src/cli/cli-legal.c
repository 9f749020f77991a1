/* cli-legal.c — `sealmail legal ...` (requests, decisions, exports, notices,
 * bundles) and `sealmail report` (the transparency report).
 *
 * Trust boundary: run by the operator, who types in what an authority sent.
 * `legal list/show` print the addresses a request names (opened with the
 * server's legal key); nothing else here prints or logs them. `legal
 * open-bundle` is the owner's command: it needs the account's password and
 * writes plaintext only to the folder given with --out. `report` reads the
 * public log only. */
#include "cli/cli.h"

#include "crypto/seal.h"
#include "legal/legal.h"
#include "region/region.h"
#include "tlog/tlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char cli_legal_usage[] =
    "usage: sealmail legal file --authority A --jurisdiction CC\n"
    "           --instrument warrant|subpoena|court-order|preservation --reference REF\n"
    "           --account ADDRESS... --scope content|non-content [--nondisclosure-until DATE]\n"
    "       sealmail legal list | show ID [--json] | decide ID | reject ID --reason TEXT\n"
    "       sealmail legal export ID --out DIR | notify [--as-of DATE [--force]] | release ID\n"
    "       sealmail legal verify-bundle DIR\n"
    "       sealmail legal open-bundle DIR --account ADDRESS [--password-stdin] --out DIR";

static int cli_legal_open(struct cli *cli, struct router **router, struct tlog **log,
			  struct legal **legal)
{
	const char *error = NULL;
	int ret = cli_open(cli, router, log);

	if (ret != 0)
		return ret;
	if (legal_open(cli->config, *router, *log, legal, &error) < 0) {
		cli_error("%s", error);
		cli_close(router, log);
		return CLI_EX_TEMPFAIL;
	}
	return 0;
}

/* --account takes one or more addresses (and may be repeated). */
static int cli_legal_file(struct legal *legal, int argc, char **argv)
{
	struct legal_filing f;
	const char **addrs = xcalloc((size_t)argc + 1, sizeof(*addrs));
	const char *instrument = NULL, *scope = NULL, *nd = NULL, *error = NULL, **slot;
	char id[LEGAL_ID_MAX];
	int ret = CLI_EX_USAGE;

	memset(&f, 0, sizeof(f));
	f.addresses = addrs;
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i];

		if (strcmp(opt, "--account") == 0) {
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
				addrs[f.address_count++] = argv[++i];
			continue;
		}
		slot = strcmp(opt, "--authority") == 0             ? &f.authority
		       : strcmp(opt, "--jurisdiction") == 0        ? &f.jurisdiction
		       : strcmp(opt, "--instrument") == 0          ? &instrument
		       : strcmp(opt, "--reference") == 0           ? &f.reference
		       : strcmp(opt, "--scope") == 0               ? &scope
		       : strcmp(opt, "--nondisclosure-until") == 0 ? &nd
								   : NULL;
		if (slot == NULL || i + 1 >= argc || *slot != NULL) {
			cli_error("legal file: unexpected or repeated argument '%s'", opt);
			goto out;
		}
		*slot = argv[++i];
	}
	if (f.authority == NULL || f.jurisdiction == NULL || instrument == NULL ||
	    f.reference == NULL || scope == NULL || f.address_count == 0) {
		cli_error("%s", cli_legal_usage);
		goto out;
	}
	if (legal_instrument_parse(instrument, &f.instrument) < 0 ||
	    legal_scope_parse(scope, &f.scope) < 0) {
		cli_error("--instrument is warrant, subpoena, court-order or preservation; "
			  "--scope is content or non-content");
		goto out;
	}
	if (nd != NULL && legal_date_parse(nd, 1, &f.nondisclosure_ends) < 0) {
		cli_error("--nondisclosure-until takes YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
		goto out;
	}
	if (legal_file(legal, &f, id, &error) < 0) {
		cli_error("legal file: %s", error);
		ret = CLI_EX_DATAERR;
		goto out;
	}
	printf("%s\n", id);
	ret = CLI_EX_OK;
out:
	free(addrs);
	return ret;
}

static int cli_legal_list_one(void *ctx, const struct legal_request *r)
{
	char when[LEGAL_TIME_MAX];

	(void)ctx;
	legal_time_format(r->received, when);
	printf("%s\t%s\t%s\t%s\t%s\t%zu account%s\t%s\n", r->id, when, r->jurisdiction,
	       legal_instrument_name(r->instrument), legal_scope_name(r->scope), r->account_count,
	       r->account_count == 1 ? "" : "s", r->status);
	return 0;
}

static void cli_legal_show_json(const struct legal_request *r)
{
	struct buf b;
	char when[LEGAL_TIME_MAX];

	buf_init(&b);
	if (buf_printf(&b, "{\"id\":\"%s\",\"received_entry\":%llu,", r->id,
		       (unsigned long long)r->index) < 0)
		log_fatal("out of memory");
	legal_time_format(r->received, when);
	{
		const char *f[] = {"authority",
				   r->authority,
				   "jurisdiction",
				   r->jurisdiction,
				   "instrument",
				   legal_instrument_name(r->instrument),
				   "reference",
				   r->reference,
				   "scope",
				   legal_scope_name(r->scope),
				   "status",
				   r->status,
				   "received",
				   when,
				   NULL};
		struct buf obj;
		const char *error;

		buf_init(&obj);
		if (tlog_json_encode(f, &obj, &error) < 0 ||
		    buf_append(&b, obj.data + 1, obj.len - 2) < 0)
			log_fatal("cannot encode the request");
		buf_free(&obj);
	}
	legal_time_format(r->nondisclosure_ends, when);
	if (buf_printf(&b, ",\"nondisclosure_ends\":%s%s%s,\"accounts\":[",
		       r->nondisclosure_ends ? "\"" : "", r->nondisclosure_ends ? when : "null",
		       r->nondisclosure_ends ? "\"" : "") < 0)
		log_fatal("out of memory");
	for (size_t i = 0; i < r->account_count; i++) {
		const struct legal_account_info *a = &r->accounts[i];
		const char *f[] = {"address",
				   a->address,
				   "tag",
				   a->tag,
				   "region",
				   a->region,
				   "data_jurisdiction",
				   a->data_jurisdiction,
				   "decision",
				   legal_decision_name(a->decision),
				   "reason",
				   a->reason,
				   "channel",
				   a->channel,
				   "explanation",
				   a->explanation,
				   "notice",
				   a->notice,
				   NULL};
		const char *error;

		if ((i > 0 && buf_append(&b, ",", 1) < 0) || tlog_json_encode(f, &b, &error) < 0)
			log_fatal("cannot encode the request");
		b.len--; /* reopen the object for the numbers */
		if (buf_printf(&b, ",\"position\":%d,\"decided_entry\":%lld,\"notice_entry\":%lld}",
			       a->position, (long long)a->decided_index,
			       (long long)a->notice_index) < 0)
			log_fatal("out of memory");
	}
	if (buf_append_str(&b, "],\"exports\":[") < 0)
		log_fatal("out of memory");
	for (size_t i = 0; i < r->export_count; i++) {
		legal_time_format(r->exports[i].created, when);
		if (buf_printf(&b,
			       "%s{\"entry\":%llu,\"created\":\"%s\",\"manifest_sha256\":\"%s\"}",
			       i > 0 ? "," : "", (unsigned long long)r->exports[i].log_index, when,
			       r->exports[i].manifest_sha256) < 0)
			log_fatal("out of memory");
	}
	if (buf_append_str(&b, "]}\n") < 0)
		log_fatal("out of memory");
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

static void cli_legal_show_text(const struct legal_request *r)
{
	char when[LEGAL_TIME_MAX];

	legal_time_format(r->received, when);
	printf("request:        %s (log entry %llu)\n"
	       "received:       %s\n"
	       "authority:      %s\n"
	       "jurisdiction:   %s\n"
	       "instrument:     %s\n"
	       "reference:      %s\n"
	       "scope:          %s\n",
	       r->id, (unsigned long long)r->index, when, r->authority, r->jurisdiction,
	       legal_instrument_name(r->instrument), r->reference, legal_scope_name(r->scope));
	legal_time_format(r->nondisclosure_ends, when);
	printf("non-disclosure: %s%s\n", r->nondisclosure_ends ? "ends " : "none",
	       r->nondisclosure_ends ? when : "");
	printf("status:         %s\n", r->status);
	if (r->instrument == LEGAL_PRESERVATION && strcmp(r->status, "decided") == 0) {
		if (r->released_index >= 0)
			printf("hold:           released, log entry %lld\n",
			       (long long)r->released_index);
		else
			printf("hold:           accepted accounts cannot be deleted until "
			       "`sealmail legal release %s`\n",
			       r->id);
	}
	if (r->reject_reason != NULL)
		printf("operator's reason: %s\n", r->reject_reason);
	for (size_t i = 0; i < r->account_count; i++) {
		const struct legal_account_info *a = &r->accounts[i];

		printf("account %d:      %s\n", a->position, a->address);
		if (a->decision == LEGAL_UNDECIDED)
			continue;
		printf("  decision:     %s (%s), log entry %lld\n",
		       legal_decision_name(a->decision), a->reason, (long long)a->decided_index);
		if (a->region[0] != '\0')
			printf("  region:       %s (%s), log tag %s\n", a->region,
			       a->data_jurisdiction, a->tag);
		printf("  why:          %s\n", a->explanation);
		if (a->channel[0] != '\0')
			printf("  channel:      %s\n", a->channel);
		printf("  owner notice: %s", a->notice);
		if (a->notice_index >= 0)
			printf(", log entry %lld", (long long)a->notice_index);
		putchar('\n');
	}
	for (size_t i = 0; i < r->export_count; i++) {
		legal_time_format(r->exports[i].created, when);
		printf("export:         %s, log entry %llu, manifest sha256 %s\n", when,
		       (unsigned long long)r->exports[i].log_index, r->exports[i].manifest_sha256);
	}
}

static int cli_legal_show(struct legal *legal, int argc, char **argv, const char *sub)
{
	int as_json = cli_take_flag(&argc, argv, "--json");
	struct legal_request *r = NULL;
	const char *error = NULL;
	int found;

	if (argc != 3) {
		cli_error("usage: sealmail legal %s ID%s", sub,
			  strcmp(sub, "show") == 0 ? " [--json]" : "");
		return CLI_EX_USAGE;
	}
	found = legal_request_get(legal, argv[2], &r, &error);
	if (found <= 0) {
		cli_error("%s", found < 0 ? error : str_tfmt("no request %s", argv[2]));
		return found < 0 ? CLI_EX_TEMPFAIL : CLI_EX_DATAERR;
	}
	if (as_json)
		cli_legal_show_json(r);
	else
		cli_legal_show_text(r);
	legal_request_free(&r);
	return CLI_EX_OK;
}

static int cli_legal_release(struct legal *legal, int argc, char **argv)
{
	const char *error = NULL;
	uint64_t index;

	if (argc != 3) {
		cli_error("usage: sealmail legal release ID");
		return CLI_EX_USAGE;
	}
	if (legal_release(legal, argv[2], &index, &error) < 0) {
		cli_error("%s", error);
		return CLI_EX_DATAERR;
	}
	printf("%s released (log entry %llu): its accounts are no longer held.\n", argv[2],
	       (unsigned long long)index);
	return CLI_EX_OK;
}

static int cli_legal_decide(struct legal *legal, int argc, char **argv, int reject)
{
	const char *reason = reject ? cli_take_option(&argc, argv, "--reason") : NULL;
	const char *error = NULL;
	int r;

	if (argc != 3 || (reject && reason == NULL)) {
		cli_error("usage: sealmail legal %s",
			  reject ? "reject ID --reason TEXT" : "decide ID");
		return CLI_EX_USAGE;
	}
	r = reject ? legal_reject(legal, argv[2], reason, &error)
		   : legal_decide(legal, argv[2], &error);
	if (r < 0) {
		cli_error("legal %s: %s", reject ? "reject" : "decide", error);
		return CLI_EX_DATAERR;
	}
	return cli_legal_show(legal, 3, (char *[]){argv[0], "show", argv[2], NULL}, "show");
}

static int cli_legal_export(struct legal *legal, int argc, char **argv)
{
	const char *out = cli_take_option(&argc, argv, "--out");
	struct legal_export_result res;
	const char *error = NULL;

	if (argc != 3 || out == NULL) {
		cli_error("usage: sealmail legal export ID --out DIR");
		return CLI_EX_USAGE;
	}
	if (legal_export(legal, argv[2], out, &res, &error) < 0) {
		cli_error("legal export: %s", error);
		return CLI_EX_DATAERR;
	}
	printf("Exported %s to %s: %u account%s, %llu messages, %llu bytes (sealed)\n"
	       "log entry %llu, manifest sha256 %s\n",
	       argv[2], out, res.accounts, res.accounts == 1 ? "" : "s",
	       (unsigned long long)res.records, (unsigned long long)res.bytes,
	       (unsigned long long)res.log_index, res.manifest_sha256);
	return CLI_EX_OK;
}

static int cli_legal_notify(struct legal *legal, int argc, char **argv)
{
	const char *as_of_arg = cli_take_option(&argc, argv, "--as-of");
	int force = cli_take_flag(&argc, argv, "--force");
	int64_t now = (int64_t)time(NULL), as_of = now;
	const char *error = NULL;
	unsigned released = 0;
	int r;

	if (argc != 2 || (as_of_arg != NULL && legal_date_parse(as_of_arg, 0, &as_of) < 0)) {
		cli_error("usage: sealmail legal notify [--as-of YYYY-MM-DD [--force]]");
		return CLI_EX_USAGE;
	}
	/* A date to come would tell owners before their non-disclosure order
	 * ends: only on purpose. */
	if (as_of > now && !force) {
		cli_error("legal notify: --as-of %s is in the future and would release notices "
			  "whose non-disclosure order has not ended; add --force to do that anyway "
			  "(the log records the real time of release)",
			  as_of_arg);
		return CLI_EX_USAGE;
	}
	r = legal_notify(legal, as_of, &released, &error);
	printf("%u notice%s delivered\n", released, released == 1 ? "" : "s");
	if (r < 0) {
		cli_error("legal notify: %s", error);
		return CLI_EX_TEMPFAIL;
	}
	return CLI_EX_OK;
}

static int cli_legal_bundle(struct router *router, struct tlog *log, int argc, char **argv,
			    int open)
{
	const char *address = cli_take_option(&argc, argv, "--account");
	const char *out = cli_take_option(&argc, argv, "--out");
	int from_stdin = cli_take_flag(&argc, argv, "--password-stdin");
	struct seal_keypair *kp = NULL;
	struct account *acct = NULL;
	char *vkey = tlog_verifier_key(log), *pw = NULL, tag[LEGAL_TAG_HEX_MAX];
	const char *error = NULL;
	unsigned opened = 0;
	int ret = CLI_EX_USAGE;

	if (argc != 3 || (open && (address == NULL || out == NULL))) {
		cli_error("%s", cli_legal_usage);
		goto out;
	}
	ret = CLI_EX_DATAERR;
	if (legal_bundle_verify(argv[2], vkey, &error) < 0) {
		cli_error("%s: %s", argv[2], error);
		goto out;
	}
	if (!open) {
		printf("ok: signed by this server's log key, logged, every file as listed\n");
		ret = CLI_EX_OK;
		goto out;
	}
	ret = cli_find_account(router, address, &acct);
	if (ret != 0)
		goto out;
	pw = cli_read_secret("Password: ", from_stdin);
	if (pw == NULL) {
		ret = CLI_EX_DATAERR;
		goto out;
	}
	if (router_account_unlock(router, acct, pw, &kp, &error) < 0) {
		cli_error("%s: %s", address, error);
		ret = CLI_EX_NOPERM;
		goto out;
	}
	for (size_t i = 0; i < STORE_TAG_BYTES; i++)
		snprintf(tag + 2 * i, 3, "%02x", acct->st.tag[i]);
	if (legal_bundle_open(argv[2], tag, kp, out, &opened, &error) < 0) {
		cli_error("%s", error);
		ret = CLI_EX_DATAERR;
		goto out;
	}
	printf("Opened %u message%s of %s into %s\n", opened, opened == 1 ? "" : "s", address, out);
	ret = CLI_EX_OK;
out:
	seal_keypair_free(&kp);
	cli_secret_free(&pw);
	router_account_free(&acct);
	free(vkey);
	return ret;
}

int cli_legal_main(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "", *error = NULL;
	struct router *router = NULL;
	struct tlog *log = NULL;
	struct legal *legal = NULL;
	int ret;

	if (strcmp(sub, "verify-bundle") == 0 || strcmp(sub, "open-bundle") == 0) {
		ret = cli_open(cli, &router, &log);
		if (ret != 0)
			return ret;
		ret = cli_legal_bundle(router, log, argc, argv, strcmp(sub, "open-bundle") == 0);
		cli_close(&router, &log);
		return ret;
	}
	if (strcmp(sub, "file") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "decide") != 0 && strcmp(sub, "reject") != 0 &&
	    strcmp(sub, "export") != 0 && strcmp(sub, "notify") != 0 &&
	    strcmp(sub, "release") != 0) {
		cli_error("%s", cli_legal_usage);
		return CLI_EX_USAGE;
	}
	ret = cli_legal_open(cli, &router, &log, &legal);
	if (ret != 0)
		return ret;
	if (strcmp(sub, "file") == 0) {
		ret = cli_legal_file(legal, argc, argv);
	} else if (strcmp(sub, "list") == 0) {
		ret = CLI_EX_OK;
		if (argc != 2) {
			cli_error("usage: sealmail legal list");
			ret = CLI_EX_USAGE;
		} else if (legal_request_list(legal, cli_legal_list_one, NULL, &error) < 0) {
			cli_error("%s", error);
			ret = CLI_EX_TEMPFAIL;
		}
	} else if (strcmp(sub, "show") == 0) {
		ret = cli_legal_show(legal, argc, argv, sub);
	} else if (strcmp(sub, "decide") == 0 || strcmp(sub, "reject") == 0) {
		ret = cli_legal_decide(legal, argc, argv, strcmp(sub, "reject") == 0);
	} else if (strcmp(sub, "export") == 0) {
		ret = cli_legal_export(legal, argc, argv);
	} else if (strcmp(sub, "release") == 0) {
		ret = cli_legal_release(legal, argc, argv);
	} else {
		ret = cli_legal_notify(legal, argc, argv);
	}
	legal_close(&legal);
	cli_close(&router, &log);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("writing output: %s", strerror(errno));
		return ret == CLI_EX_OK ? CLI_EX_IOERR : ret;
	}
	return ret;
}

int cli_report_main(struct cli *cli, int argc, char **argv)
{
	const char *from_arg = cli_take_option(&argc, argv, "--from");
	const char *to_arg = cli_take_option(&argc, argv, "--to");
	const char *format = cli_take_option(&argc, argv, "--format");
	const char *out = cli_take_option(&argc, argv, "--out");
	const struct config *cfg;
	struct legal_report *rep = NULL;
	struct tlog *log = NULL;
	int64_t from = 0, to = (int64_t)time(NULL) / 86400 * 86400 + 86400;
	const char *error = NULL;
	struct buf b;
	int ret = CLI_EX_OK;

	if (format == NULL)
		format = "json";
	if (argc != 1 || (strcmp(format, "json") != 0 && strcmp(format, "html") != 0) ||
	    (from_arg != NULL && legal_date_parse(from_arg, 0, &from) < 0) ||
	    (to_arg != NULL && legal_date_parse(to_arg, 1, &to) < 0) || to <= from) {
		cli_error("usage: sealmail report [--from DATE] [--to DATE] [--format json|html] "
			  "[--out FILE]\n  DATE is YYYY-MM-DD (UTC); --to includes the whole day");
		return CLI_EX_USAGE;
	}
	cfg = cli_config(cli);
	if (cfg == NULL)
		return CLI_EX_CONFIG;
	if (seal_init() < 0) {
		cli_error("cannot initialise libsodium");
		return CLI_EX_SOFTWARE;
	}
	if (tlog_open(cfg->tlog_dir, cfg->tlog_origin, cfg->tlog_key, &log, &error) < 0) {
		cli_error("transparency log: %s", error);
		return CLI_EX_TEMPFAIL;
	}
	if (legal_report_compute(log, from, to, &rep, &error) < 0) {
		cli_error("report: %s", error);
		tlog_close(&log);
		return CLI_EX_DATAERR;
	}
	buf_init(&b);
	if (strcmp(format, "json") == 0)
		legal_report_json(rep, &b);
	else
		legal_report_html(rep, &b);
	if (out != NULL) {
		if (fs_write_atomic(out, b.data, b.len, 0644) < 0) {
			cli_error("cannot write %s: %s", out, strerror(errno));
			ret = CLI_EX_CANTCREAT;
		}
	} else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
		cli_error("writing output: %s", strerror(errno));
		ret = CLI_EX_IOERR;
	}
	buf_free(&b);
	legal_report_free(&rep);
	tlog_close(&log);
	return ret;
}

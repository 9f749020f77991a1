/* cli-log.c — `sealmail log ...`: the transparency log for operators and for
 * anyone who audits it (verifier key, checkpoints, entries, proofs, verify).
 *
 * Trust boundary: operator input; everything printed is public log data.
 * Proofs are printed as JSON with standard base64 hashes:
 *   prove-inclusion   {"index":I,"size":N,"leaf_hash":"..","root":"..","proof":[..]}
 *   prove-consistency {"old_size":M,"new_size":N,"old_root":"..","new_root":"..",
 *                      "proof":[..]}
 * `log show --json` prints each entry's exact stored bytes, one per line
 * (canonical JSON has no raw newlines), so that its leaf hash can be
 * recomputed from the output. */
#include "cli/cli.h"

#include "crypto/seal.h"
#include "tlog/tlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cli_log_usage[] =
    "usage: sealmail log key | checkpoint [--size N] | show [--from N] [--json] |\n"
    "       prove-inclusion INDEX [--size N] | prove-consistency OLD NEW |\n"
    "       verify [--checkpoint FILE]";

static int parse_u64(const char *s, uint64_t *v_r)
{
	unsigned long long v;
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT64_MAX)
		return -1;
	*v_r = v;
	return 0;
}

static void print_hash(const char *name, const uint8_t hash[TLOG_HASH_BYTES])
{
	char *b64 = seal_base64_encode(hash, TLOG_HASH_BYTES);

	printf("\"%s\":\"%s\"", name, b64);
	free(b64);
}

static void print_proof(const struct tlog_proof *proof)
{
	size_t i;

	fputs("\"proof\":[", stdout);
	for (i = 0; i < proof->count; i++) {
		char *b64 = seal_base64_encode(proof->hash[i], TLOG_HASH_BYTES);

		printf("%s\"%s\"", i > 0 ? "," : "", b64);
		free(b64);
	}
	fputs("]", stdout);
}

/* Prints a value bare if it is plain, else quoted with C-style escapes. */
static void print_value(const char *v)
{
	const unsigned char *p;

	if (v[0] != '\0' && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789._:@/+=-") == strlen(v)) {
		fputs(v, stdout);
		return;
	}
	putchar('"');
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static int show_entry(void *ctx, uint64_t index, const uint8_t *json, size_t len)
{
	const int *as_json = ctx;
	const char *type, *time, *error;
	char **fields = NULL;
	size_t i;

	if (*as_json) {
		fwrite(json, 1, len, stdout);
		putchar('\n');
		return ferror(stdout) ? -1 : 0;
	}
	if (tlog_json_decode(json, len, &fields, &error) < 0) {
		printf("%llu  (unreadable entry: %s)\n", (unsigned long long)index, error);
		return 0;
	}
	type = tlog_json_field(fields, "type");
	time = tlog_json_field(fields, "time");
	printf("%llu  %s  %s", (unsigned long long)index, time != NULL ? time : "-",
	       type != NULL ? type : "-");
	for (i = 0; fields[i] != NULL; i += 2) {
		if (strcmp(fields[i], "type") == 0 || strcmp(fields[i], "time") == 0)
			continue;
		printf("  %s=", fields[i]);
		print_value(fields[i + 1]);
	}
	putchar('\n');
	tlog_json_fields_free(&fields);
	return ferror(stdout) ? -1 : 0;
}

static int cmd_show(struct tlog *log, int argc, char **argv)
{
	const char *from_arg = cli_take_option(&argc, argv, "--from");
	int as_json = cli_take_flag(&argc, argv, "--json");
	const char *error = "write error";
	uint64_t from = 0;

	if (argc != 2 || (from_arg != NULL && parse_u64(from_arg, &from) < 0)) {
		cli_error("usage: sealmail log show [--from N] [--json]");
		return CLI_EX_USAGE;
	}
	if (tlog_foreach(log, from, show_entry, &as_json, &error) != 0) {
		cli_error("%s", error);
		return CLI_EX_IOERR;
	}
	return CLI_EX_OK;
}

static int cmd_checkpoint(struct tlog *log, int argc, char **argv)
{
	const char *size_arg = cli_take_option(&argc, argv, "--size");
	const char *error;
	struct buf note;
	uint64_t size = 0;
	int ret;

	if (argc != 2 || (size_arg != NULL && parse_u64(size_arg, &size) < 0)) {
		cli_error("usage: sealmail log checkpoint [--size N]");
		return CLI_EX_USAGE;
	}
	buf_init(&note);
	if (size_arg != NULL)
		ret = tlog_checkpoint_at(log, size, &note, &error);
	else
		ret = tlog_checkpoint(log, &note, &error);
	if (ret < 0) {
		cli_error("%s", error);
		buf_free(&note);
		return CLI_EX_DATAERR;
	}
	fwrite(note.data, 1, note.len, stdout);
	buf_free(&note);
	return CLI_EX_OK;
}

static int cmd_prove_inclusion(struct tlog *log, int argc, char **argv)
{
	const char *size_arg = cli_take_option(&argc, argv, "--size");
	uint8_t leaf[TLOG_HASH_BYTES], root[TLOG_HASH_BYTES];
	struct tlog_proof proof;
	uint64_t index, size;
	const char *error;

	if (argc != 3 || parse_u64(argv[2], &index) < 0 ||
	    (size_arg != NULL && parse_u64(size_arg, &size) < 0)) {
		cli_error("usage: sealmail log prove-inclusion INDEX [--size N]");
		return CLI_EX_USAGE;
	}
	if (size_arg == NULL)
		size = tlog_size(log);
	if (tlog_prove_inclusion(log, index, size, leaf, root, &proof, &error) < 0) {
		cli_error("%s", error);
		return CLI_EX_DATAERR;
	}
	printf("{\"index\":%llu,\"size\":%llu,", (unsigned long long)index,
	       (unsigned long long)size);
	print_hash("leaf_hash", leaf);
	putchar(',');
	print_hash("root", root);
	putchar(',');
	print_proof(&proof);
	puts("}");
	return CLI_EX_OK;
}

static int cmd_prove_consistency(struct tlog *log, int argc, char **argv)
{
	uint8_t old_root[TLOG_HASH_BYTES], new_root[TLOG_HASH_BYTES];
	struct tlog_proof proof;
	uint64_t old_size, new_size;
	const char *error;
	int ret;

	if (argc != 4 || parse_u64(argv[2], &old_size) < 0 || parse_u64(argv[3], &new_size) < 0) {
		cli_error("usage: sealmail log prove-consistency OLD NEW");
		return CLI_EX_USAGE;
	}
	ret = tlog_prove_consistency(log, old_size, new_size, old_root, new_root, &proof, &error);
	if (ret < 0) {
		cli_error("%s", error);
		return CLI_EX_DATAERR;
	}
	printf("{\"old_size\":%llu,\"new_size\":%llu,", (unsigned long long)old_size,
	       (unsigned long long)new_size);
	print_hash("old_root", old_root);
	putchar(',');
	print_hash("new_root", new_root);
	putchar(',');
	print_proof(&proof);
	puts("}");
	return CLI_EX_OK;
}

static int cmd_key(struct tlog *log, int argc, char **argv)
{
	char *vkey;

	if (argc != 2) {
		cli_error("usage: sealmail log key");
		return CLI_EX_USAGE;
	}
	vkey = tlog_verifier_key(log);
	puts(vkey);
	free(vkey);
	return CLI_EX_OK;
}

static int cmd_verify(struct tlog *log, int argc, char **argv)
{
	const char *path = cli_take_option(&argc, argv, "--checkpoint");
	const char *error;
	uint8_t *note = NULL;
	size_t len = 0;
	int r;

	if (argc != 2) {
		cli_error("usage: sealmail log verify [--checkpoint FILE]");
		return CLI_EX_USAGE;
	}
	if (path != NULL && fs_read_all(path, &note, &len) < 0) {
		cli_error("cannot read %s: %s", path, strerror(errno));
		return CLI_EX_IOERR;
	}
	r = path != NULL
		? tlog_verify_published(log, note != NULL ? note : (const uint8_t *)"", len, &error)
		: tlog_verify(log, &error);
	free(note);
	if (r < 0) {
		cli_error("log verification failed: %s", error);
		return CLI_EX_DATAERR;
	}
	puts("ok");
	return CLI_EX_OK;
}

static const struct {
	const char *name;
	int (*run)(struct tlog *log, int argc, char **argv);
} cli_log_commands[] = {
    {"key", cmd_key},
    {"checkpoint", cmd_checkpoint},
    {"show", cmd_show},
    {"prove-inclusion", cmd_prove_inclusion},
    {"prove-consistency", cmd_prove_consistency},
    {"verify", cmd_verify},
};

int cli_log_main(struct cli *cli, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "", *error;
	const struct config *cfg;
	struct tlog *log = NULL;
	size_t i;
	int ret;

	for (i = 0; i < N_ELEMENTS(cli_log_commands); i++) {
		if (strcmp(sub, cli_log_commands[i].name) == 0)
			break;
	}
	if (i == N_ELEMENTS(cli_log_commands)) {
		cli_error("%s", cli_log_usage);
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
	ret = cli_log_commands[i].run(log, argc, argv);
	tlog_close(&log);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("writing output: %s", strerror(errno));
		return ret == CLI_EX_OK ? CLI_EX_IOERR : ret;
	}
	return ret;
}

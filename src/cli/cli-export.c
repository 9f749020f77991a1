/* cli-export.c — `sealmail export ADDRESS --out DIR`: the owner's own copy of
 * all their mail as a Maildir++ tree.
 *
 * Trust boundary: needs the owner's password; the unlocked key stays in
 * sodium_malloc'd memory and plaintext goes only to the owner's chosen
 * folder, written through tmp/ and renamed into cur/ (Maildir delivery).
 * The operator runs it outside the server, so before the account's stored
 * data is touched the access is in the transparency log (operator.access,
 * naming the account by its tag only). */
#include "cli/cli.h"

#include "crypto/seal.h"
#include "region/region.h"
#include "tlog/tlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct cli_export {
	struct store *store;
	struct seal_opener *opener;
	const char *folder; /* Maildir folder path */
	unsigned long count;
	const char *error;
	int fd;
};

static int cli_export_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct cli_export *ex = ctx;

	return fs_write_all(ex->fd, data, len);
}

static int cli_export_feed(void *ctx, const uint8_t *data, size_t len)
{
	struct seal_reader *r = ctx;
	const char *error;

	return seal_reader_write(r, data, len, &error);
}

static void cli_export_flags(uint32_t flags, char out[8])
{
	size_t n = 0;

	/* Maildir info letters, in ASCII order. */
	if (flags & STORE_FLAG_DRAFT)
		out[n++] = 'D';
	if (flags & STORE_FLAG_FLAGGED)
		out[n++] = 'F';
	if (flags & STORE_FLAG_ANSWERED)
		out[n++] = 'R';
	if (flags & STORE_FLAG_SEEN)
		out[n++] = 'S';
	if (flags & STORE_FLAG_DELETED)
		out[n++] = 'T';
	out[n] = '\0';
}

static int cli_export_message(void *ctx, const struct store_message *msg)
{
	struct cli_export *ex = ctx;
	struct seal_reader *reader = NULL;
	char name[128], flags[8], *tmp, *cur;
	size_t path_len;
	struct timeval times[2];
	const char *error = NULL;
	int ret = -1;

	cli_export_flags(msg->flags, flags);
	snprintf(name, sizeof(name), "%lld.U%u.sealmail,S=%llu", (long long)msg->internal_date,
		 msg->uid, (unsigned long long)msg->size);
	path_len = strlen(ex->folder) + sizeof(name) + 16;
	tmp = xmalloc(path_len);
	cur = xmalloc(path_len);
	snprintf(tmp, path_len, "%s/tmp/%s", ex->folder, name);
	snprintf(cur, path_len, "%s/cur/%s:2,%s", ex->folder, name, flags);
	ex->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ex->fd < 0) {
		ex->error = str_tfmt("cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (seal_reader_begin(ex->opener, cli_export_sink, ex, &reader) < 0 ||
	    ex->store->backend->record_read(ex->store, msg->id, cli_export_feed, reader, &error) <
		0 ||
	    seal_reader_finish(reader, &error) < 0) {
		ex->error = str_tfmt("message %u cannot be opened: %s", msg->uid,
				     error ? error : "wrong key");
		goto out;
	}
	if (fsync(ex->fd) < 0) {
		ex->error = str_tfmt("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	times[0].tv_sec = times[1].tv_sec = (time_t)msg->internal_date;
	times[0].tv_usec = times[1].tv_usec = 0;
	futimes(ex->fd, times);
	if (rename(tmp, cur) < 0) {
		ex->error = str_tfmt("cannot rename into %s: %s", cur, strerror(errno));
		goto out;
	}
	ex->count++;
	ret = 0;
out:
	seal_reader_free(&reader);
	if (ex->fd >= 0)
		close(ex->fd);
	ex->fd = -1;
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	free(cur);
	return ret < 0 ? 1 : 0;
}

/* Appends operator.access for ACCT; the export may start only if it is on
 * disk. */
static int cli_export_log(struct tlog *tlog, const struct account *acct)
{
	char tag[2 * STORE_TAG_BYTES + 1];
	const char *fields[] = {"account", tag,      "region", acct->region->name,
				"what",    "export", NULL};
	const char *error = NULL;
	uint64_t index;

	for (size_t i = 0; i < STORE_TAG_BYTES; i++)
		snprintf(tag + 2 * i, 3, "%02x", acct->st.tag[i]);
	if (tlog_append(tlog, "operator.access", fields, &index, &error) < 0) {
		cli_error("the access cannot be logged, so nothing is exported: %s", error);
		return -1;
	}
	return 0;
}

/* The Maildir++ folder of a mailbox: the root for INBOX, ".Name" otherwise
 * ("/" in names becomes the "." hierarchy separator). */
static char *cli_export_folder(const char *out, const char *name)
{
	size_t len = strlen(out) + strlen(name) + 3;
	char *path = xmalloc(len), *p;

	if (name[0] == '\0') {
		snprintf(path, len, "%s", out);
		return path;
	}
	snprintf(path, len, "%s/.%s", out, name);
	for (p = path + strlen(out) + 2; *p != '\0'; p++)
		if (*p == '/')
			*p = '.';
	return path;
}

static int cli_export_mailbox(struct cli_export *ex, const char *out,
			      const struct store_mailbox *box)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	uint8_t *name = NULL;
	size_t name_len = 0;
	char *folder, *sub, *clean;
	const char *error = NULL;
	int ret = -1;

	if (box->role != STORE_ROLE_INBOX &&
	    seal_blob_open(ex->opener, box->name_sealed.data, box->name_sealed.len, &name,
			   &name_len, &error) < 0) {
		cli_error("a mailbox name cannot be opened: %s", error);
		return -1;
	}
	clean = xmalloc(name_len + 1);
	for (size_t i = 0; i < name_len; i++)
		clean[i] = name[i] == '\0' || name[i] == '.' ? '_' : (char)name[i];
	clean[name_len] = '\0';
	free(name);
	folder = cli_export_folder(out, box->role == STORE_ROLE_INBOX ? "" : clean);
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		sub = fs_path_join(folder, subdirs[i]);
		if (fs_mkdir_p(sub, 0700) < 0) {
			cli_error("cannot create %s: %s", sub, strerror(errno));
			free(sub);
			goto out;
		}
		free(sub);
	}
	if (box->role != STORE_ROLE_INBOX) {
		sub = fs_path_join(folder, "maildirfolder");
		if (fs_write_atomic(sub, "", 0, 0600) < 0)
			cli_error("cannot create %s", sub);
		free(sub);
	}
	ex->folder = folder;
	ex->error = NULL;
	if (ex->store->backend->message_list(ex->store, box->id, 1, cli_export_message, ex,
					     &error) < 0 ||
	    ex->error != NULL) {
		cli_error("%s", ex->error ? ex->error : error);
		goto out;
	}
	ret = 0;
out:
	free(folder);
	free(clean);
	return ret;
}

int cli_export_main(struct cli *cli, int argc, char **argv)
{
	int from_stdin = cli_take_flag(&argc, argv, "--password-stdin");
	const char *out = cli_take_option(&argc, argv, "--out");
	struct router *router = NULL;
	struct tlog *tlog = NULL;
	struct account *acct = NULL;
	struct seal_keypair *kp = NULL;
	struct store_mailbox *boxes = NULL;
	size_t count = 0;
	struct cli_export ex;
	const char *error = NULL;
	char *pw = NULL;
	int ret;

	memset(&ex, 0, sizeof(ex));
	ex.fd = -1;
	if (argc != 2 || out == NULL) {
		cli_error("usage: sealmail export ADDRESS [--password-stdin] --out DIR");
		return CLI_EX_USAGE;
	}
	ret = cli_open(cli, &router, &tlog);
	if (ret != 0)
		return ret;
	ret = cli_find_account(router, argv[1], &acct);
	if (ret != 0)
		goto out;
	if (cli_export_log(tlog, acct) < 0) {
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	pw = cli_read_secret("Password: ", from_stdin);
	if (pw == NULL) {
		ret = CLI_EX_DATAERR;
		goto out;
	}
	if (router_account_unlock(router, acct, pw, &kp, &error) < 0) {
		cli_error("%s: %s", argv[1], error);
		ret = CLI_EX_NOPERM;
		goto out;
	}
	ex.store = router_store(router, acct);
	if (seal_opener_new(kp, &ex.opener) < 0 ||
	    ex.store->backend->mailbox_list(ex.store, acct->st.id, &boxes, &count, &error) < 0) {
		cli_error("%s", error ? error : "cannot open the account");
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	if (fs_mkdir_p(out, 0700) < 0) {
		cli_error("cannot create %s: %s", out, strerror(errno));
		ret = CLI_EX_CANTCREAT;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		if (cli_export_mailbox(&ex, out, &boxes[i]) < 0) {
			ret = CLI_EX_IOERR;
			goto out;
		}
	}
	printf("Exported %lu messages in %zu mailboxes to %s\n", ex.count, count, out);
	ret = CLI_EX_OK;
out:
	store_mailboxes_free(&boxes, count);
	seal_opener_free(&ex.opener);
	seal_keypair_free(&kp);
	cli_secret_free(&pw);
	router_account_free(&acct);
	cli_close(&router, &tlog);
	return ret;
}

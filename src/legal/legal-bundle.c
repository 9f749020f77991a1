/* legal-bundle.c — checking an export bundle, and its owner's way to open it.
 *
 * Trust boundary: a bundle is a folder that may have travelled; every byte is
 * checked against the signed manifest, the manifest against the log entry,
 * and the entry against a checkpoint signed by the log key. Opening needs
 * the account's unlocked key: records are opened with seal_opener and
 * seal_reader exactly as the server opens them for the owner, and plaintext
 * goes only to the folder the owner names. */
#include "legal/legal-private.h"

#include "tlog/tlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUNDLE_READ_BYTES 65536
#define BUNDLE_DEPTH_MAX  4

struct bundle_check {
	const char *root;
	const char *manifest;
	size_t files;
	const char **error_r;
};

static char *bundle_read(const char *dir, const char *name, size_t *len_r, const char **error_r)
{
	char *path = fs_path_join(dir, name);
	uint8_t *data = NULL;

	if (fs_read_all(path, &data, len_r) < 0) {
		*error_r = str_tfmt("cannot read %s: %s", path, strerror(errno));
		data = NULL;
	}
	free(path);
	return (char *)data;
}

/* SHA-256 and size of a file, streamed. */
static int bundle_hash_file(const char *path, uint8_t hash[32], uint64_t *size_r)
{
	struct seal_sha256_state st;
	uint8_t *chunk;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	chunk = xmalloc(BUNDLE_READ_BYTES);
	seal_sha256_init(&st);
	*size_r = 0;
	while ((n = read(fd, chunk, BUNDLE_READ_BYTES)) > 0) {
		seal_sha256_update(&st, chunk, (size_t)n);
		*size_r += (uint64_t)n;
	}
	seal_sha256_final(&st, hash);
	free(chunk);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Every file below REL must be listed in the manifest with its size and hash. */
static int bundle_check_tree(struct bundle_check *c, const char *rel, int depth)
{
	char *dir = rel[0] != '\0' ? fs_path_join(c->root, rel) : xstrdup(c->root);
	struct dirent *de;
	DIR *d = opendir(dir);
	int ret = 0;

	if (d == NULL || depth > BUNDLE_DEPTH_MAX) {
		*c->error_r = str_tfmt("cannot read %s", dir);
		if (d != NULL)
			closedir(d);
		free(dir);
		return -1;
	}
	while (ret == 0 && (de = readdir(d)) != NULL) {
		char sub[512], *path, hex[LEGAL_HASH_HEX_MAX], want[700];
		uint8_t hash[32];
		uint64_t size;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		if (depth == 0 &&
		    (strcmp(sub, "manifest.json") == 0 || strcmp(sub, "manifest.sig") == 0 ||
		     strcmp(sub, "log.json") == 0))
			continue;
		path = fs_path_join(c->root, sub);
		if (lstat(path, &st) < 0) {
			ret = -1;
		} else if (S_ISDIR(st.st_mode)) {
			ret = bundle_check_tree(c, sub, depth + 1);
		} else if (!S_ISREG(st.st_mode) || bundle_hash_file(path, hash, &size) < 0) {
			*c->error_r = str_tfmt("%s: not a readable file", sub);
			ret = -1;
		} else {
			legal_hex(hash, sizeof(hash), hex);
			snprintf(want, sizeof(want),
				 "{\"path\":\"%s\",\"size\":%llu,\"sha256\":\"%s\"}", sub,
				 (unsigned long long)size, hex);
			if (strstr(c->manifest, want) == NULL) {
				*c->error_r = str_tfmt("%s: not in the manifest, or changed", sub);
				ret = -1;
			}
			c->files++;
		}
		free(path);
	}
	closedir(d);
	free(dir);
	return ret;
}

static size_t bundle_count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static int bundle_proof_parse(const char *text, struct tlog_proof *proof)
{
	char *copy = xstrdup(text), *tok, *save = NULL;
	int ret = 0;

	proof->count = 0;
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		uint8_t *h = NULL;
		size_t len = 0;

		if (proof->count == TLOG_PROOF_MAX || seal_base64_decode(tok, &h, &len) < 0 ||
		    len != TLOG_HASH_BYTES) {
			free(h);
			ret = -1;
			break;
		}
		memcpy(proof->hash[proof->count++], h, TLOG_HASH_BYTES);
		free(h);
	}
	free(copy);
	return ret;
}

/* log.json: the entry is in the tree of a checkpoint signed by (NAME, PK).
 * Returns the entry's manifest_sha256 in HEX_R. */
static int bundle_check_log(const char *dir, const char *vkey, const char *name,
			    const uint8_t pk[32], char hex_r[LEGAL_HASH_HEX_MAX],
			    const char **error_r)
{
	char **f = NULL, **entry = NULL, *text;
	const char *v, *error = "log.json is malformed";
	uint8_t root[TLOG_HASH_BYTES], leaf[TLOG_HASH_BYTES];
	struct tlog_proof proof;
	uint64_t size = 0;
	unsigned long long index, fsize;
	size_t len;
	int ret = -1;

	text = bundle_read(dir, "log.json", &len, error_r);
	if (text == NULL)
		return -1;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (tlog_json_decode_doc(text, len, &f, &error) < 0)
		goto out;
	error = "log.json is malformed";
	v = tlog_json_field(f, "verifier_key");
	if (v == NULL || strcmp(v, vkey) != 0) {
		error = "the bundle was made by another log than this server's";
		goto out;
	}
	v = tlog_json_field(f, "checkpoint");
	if (v == NULL || tlog_checkpoint_open(v, strlen(v), name, pk, &size, root, &error) < 0)
		goto out;
	v = tlog_json_field(f, "entry");
	if (v == NULL || tlog_json_field(f, "proof") == NULL ||
	    tlog_json_field(f, "index") == NULL || tlog_json_field(f, "size") == NULL ||
	    sscanf(tlog_json_field(f, "index"), "%llu", &index) != 1 ||
	    sscanf(tlog_json_field(f, "size"), "%llu", &fsize) != 1 || fsize != size ||
	    bundle_proof_parse(tlog_json_field(f, "proof"), &proof) < 0)
		goto out;
	tlog_leaf_hash(v, strlen(v), leaf);
	if (tlog_verify_inclusion(leaf, index, size, &proof, root) < 0) {
		error = "the export's log entry is not in the signed checkpoint";
		goto out;
	}
	if (tlog_json_decode(v, strlen(v), &entry, &error) < 0)
		goto out;
	error = "the log entry is not a legal.exported entry";
	if (tlog_json_field(entry, "type") == NULL ||
	    strcmp(tlog_json_field(entry, "type"), "legal.exported") != 0 ||
	    tlog_json_field(entry, "manifest_sha256") == NULL ||
	    strlen(tlog_json_field(entry, "manifest_sha256")) != LEGAL_HASH_HEX_MAX - 1)
		goto out;
	memcpy(hex_r, tlog_json_field(entry, "manifest_sha256"), LEGAL_HASH_HEX_MAX);
	ret = 0;
out:
	if (ret < 0)
		*error_r = str_tfmt("log.json: %s", error);
	tlog_json_fields_free(&f);
	tlog_json_fields_free(&entry);
	free(text);
	return ret;
}

int legal_bundle_verify(const char *dir, const char *verifier_key, const char **error_r)
{
	struct bundle_check c = {.root = dir, .error_r = error_r};
	char *name = NULL, *manifest = NULL, *sig_text = NULL, want[LEGAL_HASH_HEX_MAX];
	char have[LEGAL_HASH_HEX_MAX];
	uint8_t pk[32], hash[32], *sig = NULL;
	size_t len, sig_len = 0;
	int ret = -1;

	if (tlog_note_parse_verifier(verifier_key, &name, pk, error_r) < 0)
		return -1;
	if (bundle_check_log(dir, verifier_key, name, pk, want, error_r) < 0)
		goto out;
	manifest = bundle_read(dir, "manifest.json", &len, error_r);
	if (manifest == NULL)
		goto out;
	seal_sha256(manifest, len, hash);
	legal_hex(hash, sizeof(hash), have);
	if (strcmp(have, want) != 0) {
		*error_r = "manifest.json is not the manifest the log entry names";
		goto out;
	}
	sig_text = bundle_read(dir, "manifest.sig", &sig_len, error_r);
	if (sig_text == NULL)
		goto out;
	sig_text[strcspn(sig_text, "\r\n")] = '\0';
	if (seal_base64_decode(sig_text, &sig, &sig_len) < 0 || sig_len != SEAL_SIGN_BYTES ||
	    seal_sign_verify(pk, manifest, len, sig) < 0) {
		*error_r = "manifest.sig is not the log key's signature of manifest.json";
		goto out;
	}
	c.manifest = manifest;
	if (bundle_check_tree(&c, "", 0) < 0)
		goto out;
	if (c.files != bundle_count(manifest, "{\"path\":\"")) {
		*error_r = "a file the manifest lists is missing";
		goto out;
	}
	ret = 0;
out:
	free(name);
	free(manifest);
	free(sig_text);
	free(sig);
	return ret;
}

struct bundle_out {
	int fd;
};

static int bundle_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct bundle_out *o = ctx;

	return fs_write_all(o->fd, data, len);
}

/* Opens records/NAME.smr (and checks NAME.meta opens too) into OUT/NAME.eml. */
static int bundle_open_record(struct seal_opener *o, const char *records, const char *name,
			      const char *out_dir, const char **error_r)
{
	char base[256], file[300], why[300] = "", *in_path, *out_path, *meta = NULL;
	struct seal_reader *r = NULL;
	struct bundle_out out = {.fd = -1};
	uint8_t *chunk = xmalloc(BUNDLE_READ_BYTES), *plain = NULL;
	const char *err = NULL;
	size_t len = 0, plain_len;
	ssize_t n = 0;
	int in, ret = -1;

	snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - 4), name);
	in_path = fs_path_join(records, name);
	snprintf(file, sizeof(file), "%s.eml", base);
	out_path = fs_path_join(out_dir, file);
	in = open(in_path, O_RDONLY | O_CLOEXEC);
	out.fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (in < 0 || out.fd < 0) {
		snprintf(why, sizeof(why), "cannot read it or create %s: %s", out_path,
			 strerror(errno));
		goto out;
	}
	if (seal_reader_begin(o, bundle_sink, &out, &r) < 0) {
		snprintf(why, sizeof(why), "cannot start a reader");
		goto out;
	}
	while ((n = read(in, chunk, BUNDLE_READ_BYTES)) > 0)
		if (seal_reader_write(r, chunk, (size_t)n, &err) < 0)
			break;
	if (n < 0) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
		goto out;
	}
	if (n > 0 || seal_reader_finish(r, &err) < 0) {
		snprintf(why, sizeof(why), "does not open with this key (%s)",
			 err != NULL ? err : "wrong key");
		goto out;
	}
	snprintf(file, sizeof(file), "%s.meta", base);
	meta = bundle_read(records, file, &len, &err);
	if (meta == NULL ||
	    seal_blob_open(o, (const uint8_t *)meta, len, &plain, &plain_len, &err) < 0) {
		snprintf(why, sizeof(why), "its metadata part %s",
			 meta ? "does not open" : "is missing");
		goto out;
	}
	mem_wipe(plain, plain_len);
	free(plain);
	ret = 0;
out:
	if (ret < 0) {
		*error_r = str_tfmt("%s: %s", name, why);
		if (out.fd >= 0)
			unlink(out_path);
	}
	free(meta);
	seal_reader_free(&r);
	if (in >= 0)
		close(in);
	if (out.fd >= 0)
		close(out.fd);
	mem_wipe(chunk, BUNDLE_READ_BYTES);
	free(chunk);
	free(in_path);
	free(out_path);
	return ret;
}

static int bundle_smr_filter(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return len > 4 && len < 200 && strcmp(de->d_name + len - 4, ".smr") == 0;
}

int legal_bundle_open(const char *dir, const char *tag_hex, const struct seal_keypair *kp,
		      const char *out_dir, unsigned *opened_r, const char **error_r)
{
	char rel[128], *records, *acct;
	struct seal_opener *o = NULL;
	struct dirent **list = NULL;
	struct stat st;
	int n = -1, ret = -1;

	*opened_r = 0;
	snprintf(rel, sizeof(rel), "accounts/%s", tag_hex);
	acct = fs_path_join(dir, rel);
	snprintf(rel, sizeof(rel), "accounts/%s/records", tag_hex);
	records = fs_path_join(dir, rel);
	if (stat(acct, &st) < 0) {
		*error_r = "the bundle holds nothing of this account";
		goto out;
	}
	if (stat(records, &st) < 0) {
		*error_r = "the bundle holds index metadata only (non-content): nothing sealed";
		goto out;
	}
	if (fs_mkdir_p(out_dir, 0700) < 0) {
		*error_r = str_tfmt("cannot create %s: %s", out_dir, strerror(errno));
		goto out;
	}
	if (seal_opener_new(kp, &o) < 0) {
		*error_r = "cannot start an opener";
		goto out;
	}
	n = scandir(records, &list, bundle_smr_filter, alphasort);
	if (n < 0) {
		*error_r = str_tfmt("cannot read %s: %s", records, strerror(errno));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (bundle_open_record(o, records, list[i]->d_name, out_dir, error_r) < 0)
			goto out;
		(*opened_r)++;
	}
	ret = 0;
out:
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	seal_opener_free(&o);
	free(records);
	free(acct);
	return ret;
}

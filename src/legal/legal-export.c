/* legal-export.c — the bundle handed to an authority for an accepted request.
 *
 * Trust boundary: reads each accepted account's store through the router and
 * copies out only what the store holds: sealed records and sealed metadata
 * parts (content scope), and the plaintext index fields (UIDs, flags, dates,
 * sizes). Nothing here holds a key that opens a record. The bundle names an
 * account by its log tag and its position in the request, never by address.
 *
 * Order of events: every file is listed and hashed first (pass 1), the
 * manifest's hash goes into the legal.exported log entry, and only then are
 * the files written (pass 2, checked against pass 1) into OUT.partial, which
 * is renamed to OUT once complete, signed and proven. So no bundle exists
 * without its log entry. Layout: docs/legal.md. */
#include "legal/legal-private.h"

#include "region/region.h"
#include "tlog/tlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct export_msg {
	struct store_message m;
	uint8_t record_hash[32];
	uint64_t record_len;
};

struct export_account {
	const struct legal_account_info *info;
	struct account *acct;
	struct store *store;
	struct store_mailbox *boxes;
	size_t box_count;
	struct export_msg *msgs;
	size_t count, cap;
	struct buf index;
};

struct export_job {
	struct legal *legal;
	const struct legal_request *req;
	struct export_account *accts;
	size_t acct_count;
	struct buf manifest;
	uint64_t records, bytes;
};

struct export_hash_ctx {
	struct seal_sha256_state sha;
	uint64_t len;
	int fd; /* -1: hash only */
};

static const char *export_role(enum store_role role)
{
	static const char *const roles[] = {"other", "inbox", "sent",   "drafts",
					    "trash", "junk",  "archive"};

	return (size_t)role < N_ELEMENTS(roles) ? roles[role] : "other";
}

static int export_collect_msg(void *ctx, const struct store_message *msg)
{
	struct export_account *ea = ctx;
	struct export_msg *em;

	if (ea->count == ea->cap) {
		size_t cap = ea->cap ? ea->cap * 2 : 64;
		struct export_msg *bigger = xcalloc(cap, sizeof(*bigger));

		if (ea->msgs != NULL)
			memcpy(bigger, ea->msgs, ea->count * sizeof(*bigger));
		free(ea->msgs);
		ea->msgs = bigger;
		ea->cap = cap;
	}
	em = &ea->msgs[ea->count++];
	store_message_init(&em->m);
	em->m.id = msg->id;
	em->m.mailbox_id = msg->mailbox_id;
	em->m.uid = msg->uid;
	em->m.flags = msg->flags;
	em->m.modseq = msg->modseq;
	em->m.internal_date = msg->internal_date;
	em->m.size = msg->size;
	em->m.record_size = msg->record_size;
	if (buf_append(&em->m.meta, msg->meta.data, msg->meta.len) < 0)
		log_fatal("out of memory");
	return 0;
}

static int export_hash_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct export_hash_ctx *h = ctx;

	seal_sha256_update(&h->sha, data, len);
	h->len += len;
	return h->fd >= 0 ? fs_write_all(h->fd, data, len) : 0;
}

static void export_file_entry(struct buf *b, int first, const char *path, uint64_t size,
			      const uint8_t hash[32])
{
	char hex[LEGAL_HASH_HEX_MAX];

	legal_hex(hash, 32, hex);
	legal_putf(b, "%s\n    {\"path\":\"%s\",\"size\":%llu,\"sha256\":\"%s\"}", first ? "" : ",",
		   path, (unsigned long long)size, hex);
}

static void export_flags_json(struct buf *b, uint32_t flags)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{STORE_FLAG_SEEN, "\\\\Seen"},
		     {STORE_FLAG_ANSWERED, "\\\\Answered"},
		     {STORE_FLAG_FLAGGED, "\\\\Flagged"},
		     {STORE_FLAG_DELETED, "\\\\Deleted"},
		     {STORE_FLAG_DRAFT, "\\\\Draft"}};
	int first = 1;

	legal_put(b, "[");
	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		if (!(flags & names[i].bit))
			continue;
		legal_putf(b, "%s\"%s\"", first ? "" : ",", names[i].name);
		first = 0;
	}
	legal_put(b, "]");
}

/* Pass 1 for one account: its mailboxes and messages, record hashes, and
 * index.json in memory; appends the account's entry to the manifest. */
static int export_collect(struct export_job *ex, struct export_account *ea, int first,
			  const char **error_r)
{
	const struct store_backend *b = ea->store->backend;
	int content = ex->req->scope == LEGAL_SCOPE_CONTENT;
	char path[160], when[LEGAL_TIME_MAX];
	uint8_t hash[32];
	size_t m = 0;

	if (b->mailbox_list(ea->store, ea->acct->st.id, &ea->boxes, &ea->box_count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < ea->box_count; i++)
		if (b->message_list(ea->store, ea->boxes[i].id, 1, export_collect_msg, ea,
				    error_r) < 0)
			return -1;
	legal_putf(&ea->index,
		   "{\"format\":\"sealmail-legal-index/1\",\"account\":\"%s\","
		   "\"scope\":\"%s\",\"mailboxes\":[",
		   ea->info->tag, legal_scope_name(ex->req->scope));
	for (size_t i = 0; i < ea->box_count; i++) {
		const struct store_mailbox *box = &ea->boxes[i];
		int first_msg = 1;

		legal_putf(&ea->index,
			   "%s\n {\"id\":%llu,\"role\":\"%s\",\"uidvalidity\":%u,\"uidnext\":%u,"
			   "\"messages\":[",
			   i > 0 ? "," : "", (unsigned long long)box->id, export_role(box->role),
			   box->uidvalidity, box->uidnext);
		for (; m < ea->count && ea->msgs[m].m.mailbox_id == box->id; m++) {
			struct export_msg *em = &ea->msgs[m];

			legal_time_format(em->m.internal_date, when);
			legal_putf(&ea->index,
				   "%s\n  {\"uid\":%u,\"internal_date\":\"%s\",\"size\":%llu,"
				   "\"modseq\":%llu,\"flags\":",
				   first_msg ? "" : ",", em->m.uid, when,
				   (unsigned long long)em->m.size,
				   (unsigned long long)em->m.modseq);
			export_flags_json(&ea->index, em->m.flags);
			if (content)
				legal_putf(&ea->index,
					   ",\"record\":\"records/%llu-%u.smr\","
					   "\"meta\":\"records/%llu-%u.meta\"",
					   (unsigned long long)box->id, em->m.uid,
					   (unsigned long long)box->id, em->m.uid);
			legal_put(&ea->index, "}");
			first_msg = 0;
		}
		legal_put(&ea->index, "]}");
	}
	legal_put(&ea->index, "\n]}\n");
	if (m != ea->count) {
		*error_r = "the mailbox listing changed during the export; try again";
		return -1;
	}
	legal_putf(&ex->manifest,
		   "%s\n  {\"position\":%d,\"account\":\"%s\",\"region\":\"%s\","
		   "\"data_jurisdiction\":\"%s\",\"decided_entry\":%lld,\"messages\":%zu,"
		   "\"files\":[",
		   first ? "" : ",", ea->info->position, ea->info->tag, ea->info->region,
		   ea->info->data_jurisdiction, (long long)ea->info->decided_index, ea->count);
	seal_sha256(ea->index.data, ea->index.len, hash);
	snprintf(path, sizeof(path), "accounts/%s/index.json", ea->info->tag);
	export_file_entry(&ex->manifest, 1, path, ea->index.len, hash);
	ex->bytes += ea->index.len;
	for (size_t i = 0; content && i < ea->count; i++) {
		struct export_msg *em = &ea->msgs[i];
		struct export_hash_ctx h = {.fd = -1};

		seal_sha256_init(&h.sha);
		if (b->record_read(ea->store, em->m.id, export_hash_sink, &h, error_r) < 0)
			return -1;
		seal_sha256_final(&h.sha, em->record_hash);
		em->record_len = h.len;
		snprintf(path, sizeof(path), "accounts/%s/records/%llu-%u.smr", ea->info->tag,
			 (unsigned long long)em->m.mailbox_id, em->m.uid);
		export_file_entry(&ex->manifest, 0, path, h.len, em->record_hash);
		seal_sha256(em->m.meta.data, em->m.meta.len, hash);
		snprintf(path, sizeof(path), "accounts/%s/records/%llu-%u.meta", ea->info->tag,
			 (unsigned long long)em->m.mailbox_id, em->m.uid);
		export_file_entry(&ex->manifest, 0, path, em->m.meta.len, hash);
		ex->bytes += h.len + em->m.meta.len;
	}
	legal_put(&ex->manifest, "\n  ]}");
	ex->records += ea->count;
	return 0;
}

static void export_manifest_head(struct export_job *ex)
{
	const struct legal_request *req = ex->req;
	char when[LEGAL_TIME_MAX], *vkey = tlog_verifier_key(ex->legal->log);
	struct buf *b = &ex->manifest;

	legal_put(b, "{\n  \"format\": \"sealmail-legal-export/1\",\n  \"request\": ");
	legal_put_json(b, req->id);
	legal_time_format(req->received, when);
	legal_put(b, ",\n  \"received\": ");
	legal_put_json(b, when);
	legal_put(b, ",\n  \"authority\": ");
	legal_put_json(b, req->authority);
	legal_put(b, ",\n  \"jurisdiction\": ");
	legal_put_json(b, req->jurisdiction);
	legal_putf(b, ",\n  \"instrument\": \"%s\",\n  \"reference\": ",
		   legal_instrument_name(req->instrument));
	legal_put_json(b, req->reference);
	legal_time_format((int64_t)time(NULL), when);
	legal_putf(b, ",\n  \"scope\": \"%s\",\n  \"created\": \"%s\",\n  \"log_origin\": ",
		   legal_scope_name(req->scope), when);
	legal_put_json(b, tlog_origin(ex->legal->log));
	legal_put(b, ",\n  \"verifier_key\": ");
	legal_put_json(b, vkey);
	legal_put(b, ",\n  \"sealed\": \"records are sealed to each account's own key; the "
		     "operator cannot open them\",\n  \"accounts\": [");
	free(vkey);
}

static int export_write_file(const char *path, const void *data, size_t len, const char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct export_hash_ctx h = {.fd = fd};

	if (fd < 0) {
		*error_r = str_tfmt("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	seal_sha256_init(&h.sha);
	if (export_hash_sink(&h, data, len) < 0 || fsync(fd) < 0) {
		*error_r = str_tfmt("cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int export_mkdir(const char *base, const char *rel, const char **error_r)
{
	char *path = fs_path_join(base, rel);
	int ret = mkdir(path, 0700);

	if (ret < 0)
		*error_r = str_tfmt("cannot create %s: %s", path, strerror(errno));
	free(path);
	return ret;
}

/* Pass 2 for one account: writes index.json and, for content, every sealed
 * record and metadata part, each checked against its pass-1 hash. */
static int export_write_account(struct export_job *ex, const char *dir, struct export_account *ea,
				const char **error_r)
{
	char rel[200], *path;
	int ret;

	snprintf(rel, sizeof(rel), "accounts/%s", ea->info->tag);
	if (export_mkdir(dir, rel, error_r) < 0)
		return -1;
	snprintf(rel, sizeof(rel), "accounts/%s/index.json", ea->info->tag);
	path = fs_path_join(dir, rel);
	ret = export_write_file(path, ea->index.data, ea->index.len, error_r);
	free(path);
	if (ret < 0 || ex->req->scope != LEGAL_SCOPE_CONTENT)
		return ret;
	snprintf(rel, sizeof(rel), "accounts/%s/records", ea->info->tag);
	if (export_mkdir(dir, rel, error_r) < 0)
		return -1;
	for (size_t i = 0; i < ea->count; i++) {
		struct export_msg *em = &ea->msgs[i];
		struct export_hash_ctx h;
		uint8_t hash[32];

		snprintf(rel, sizeof(rel), "accounts/%s/records/%llu-%u.smr", ea->info->tag,
			 (unsigned long long)em->m.mailbox_id, em->m.uid);
		path = fs_path_join(dir, rel);
		h.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		h.len = 0;
		seal_sha256_init(&h.sha);
		if (h.fd < 0) {
			*error_r = str_tfmt("cannot create %s: %s", path, strerror(errno));
			ret = -1;
		} else {
			ret = ea->store->backend->record_read(ea->store, em->m.id, export_hash_sink,
							      &h, error_r);
			if (ret == 0 && fsync(h.fd) < 0) {
				*error_r = str_tfmt("cannot write %s: %s", path, strerror(errno));
				ret = -1;
			}
			close(h.fd);
		}
		seal_sha256_final(&h.sha, hash);
		if (ret == 0 && (h.len != em->record_len || memcmp(hash, em->record_hash, 32))) {
			*error_r = "a record changed while it was exported";
			ret = -1;
		}
		if (ret == 0) {
			free(path);
			snprintf(rel, sizeof(rel), "accounts/%s/records/%llu-%u.meta",
				 ea->info->tag, (unsigned long long)em->m.mailbox_id, em->m.uid);
			path = fs_path_join(dir, rel);
			ret = export_write_file(path, em->m.meta.data, em->m.meta.len, error_r);
		}
		free(path);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* manifest.sig (the log key's Ed25519 signature) and log.json (the
 * legal.exported entry, its inclusion proof and the signed checkpoint). */
static int export_seal_bundle(struct export_job *ex, const char *dir, uint64_t index,
			      const char **error_r)
{
	uint8_t *sk = NULL, sig[SEAL_SIGN_BYTES], leaf[TLOG_HASH_BYTES], root[TLOG_HASH_BYTES];
	struct buf entry, note, proof, out;
	struct tlog_proof p;
	char *b64, *path = NULL, *vkey = NULL;
	char *leaf64 = NULL, *root64 = NULL;
	uint64_t size = tlog_size(ex->legal->log);
	size_t sk_len = 0;
	int ret = -1;

	buf_init(&entry);
	buf_init(&note);
	buf_init(&proof);
	buf_init(&out);
	if (fs_read_all(ex->legal->cfg->tlog_key, &sk, &sk_len) < 0 ||
	    sk_len != SEAL_SIGN_SK_BYTES) {
		*error_r = "cannot read the log signing key";
		goto out;
	}
	seal_sign(sk, ex->manifest.data, ex->manifest.len, sig);
	b64 = seal_base64_encode(sig, sizeof(sig));
	legal_putf(&out, "%s\n", b64);
	free(b64);
	path = fs_path_join(dir, "manifest.sig");
	if (export_write_file(path, out.data, out.len, error_r) < 0)
		goto out;
	if (tlog_entry(ex->legal->log, index, &entry, error_r) < 0 ||
	    tlog_prove_inclusion(ex->legal->log, index, size, leaf, root, &p, error_r) < 0 ||
	    tlog_checkpoint_at(ex->legal->log, size, &note, error_r) < 0)
		goto out;
	/* As `sealmail log prove-inclusion` prints it, with the entry, the
	 * checkpoint and the verifier key beside. */
	for (size_t i = 0; i < p.count; i++) {
		b64 = seal_base64_encode(p.hash[i], TLOG_HASH_BYTES);
		legal_putf(&proof, "%s\"%s\"", i > 0 ? "," : "", b64);
		free(b64);
	}
	leaf64 = seal_base64_encode(leaf, sizeof(leaf));
	root64 = seal_base64_encode(root, sizeof(root));
	vkey = tlog_verifier_key(ex->legal->log);
	buf_reset(&out);
	legal_put(&out, "{\"checkpoint\":");
	legal_put_json(&out, buf_cstr(&note));
	legal_put(&out, ",\"entry\":");
	legal_put_json(&out, buf_cstr(&entry));
	legal_putf(&out, ",\"index\":%llu,\"leaf_hash\":\"%s\",\"proof\":[%s],\"root\":\"%s\"",
		   (unsigned long long)index, leaf64, buf_cstr(&proof), root64);
	legal_putf(&out, ",\"size\":%llu,\"verifier_key\":", (unsigned long long)size);
	legal_put_json(&out, vkey);
	legal_put(&out, "}\n");
	free(path);
	path = fs_path_join(dir, "log.json");
	ret = export_write_file(path, out.data, out.len, error_r);
out:
	if (sk != NULL) {
		mem_wipe(sk, sk_len);
		free(sk);
	}
	mem_wipe(sig, sizeof(sig));
	free(path);
	free(vkey);
	free(leaf64);
	free(root64);
	buf_free(&entry);
	buf_free(&note);
	buf_free(&proof);
	buf_free(&out);
	return ret;
}

/* Logs the export (the manifest's hash), then writes the bundle. */
static int export_run(struct export_job *ex, const char *out_dir, struct legal_export_result *res,
		      const char **error_r)
{
	struct legal *legal = ex->legal;
	const struct legal_request *req = ex->req;
	size_t out_len = strlen(out_dir);
	char *partial = xmalloc(out_len + sizeof(".partial")), num_accts[24], num_recs[24];
	char num_bytes[24];
	uint8_t hash[32];
	uint64_t index;
	int ret = -1;

	memcpy(partial, out_dir, out_len);
	memcpy(partial + out_len, ".partial", sizeof(".partial"));
	if (access(out_dir, F_OK) == 0 || access(partial, F_OK) == 0) {
		*error_r = str_tfmt("%s or %s exists; choose a new folder", out_dir, partial);
		goto out;
	}
	export_manifest_head(ex);
	for (size_t i = 0; i < ex->acct_count; i++)
		if (export_collect(ex, &ex->accts[i], i == 0, error_r) < 0)
			goto out;
	legal_put(&ex->manifest, "\n  ]\n}\n");
	seal_sha256(ex->manifest.data, ex->manifest.len, hash);
	legal_hex(hash, sizeof(hash), res->manifest_sha256);
	snprintf(num_accts, sizeof(num_accts), "%zu", ex->acct_count);
	snprintf(num_recs, sizeof(num_recs), "%llu", (unsigned long long)ex->records);
	snprintf(num_bytes, sizeof(num_bytes), "%llu", (unsigned long long)ex->bytes);
	{
		const char *fields[] = {"request",
					req->id,
					"jurisdiction",
					req->jurisdiction,
					"scope",
					legal_scope_name(req->scope),
					"accounts",
					num_accts,
					"records",
					num_recs,
					"bytes",
					num_bytes,
					"manifest_sha256",
					res->manifest_sha256,
					NULL};

		if (tlog_append(legal->log, "legal.exported", fields, &index, error_r) < 0)
			goto out;
	}
	if (legal_db_add_export(legal, req->index, index, res->manifest_sha256, error_r) < 0)
		goto out;
	if (fs_mkdir_p(partial, 0700) < 0) {
		*error_r = str_tfmt("cannot create %s: %s", partial, strerror(errno));
		goto out;
	}
	if (export_mkdir(partial, "accounts", error_r) < 0)
		goto cleanup;
	{
		char *path = fs_path_join(partial, "manifest.json");
		int r = export_write_file(path, ex->manifest.data, ex->manifest.len, error_r);

		free(path);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < ex->acct_count; i++)
		if (export_write_account(ex, partial, &ex->accts[i], error_r) < 0)
			goto cleanup;
	if (export_seal_bundle(ex, partial, index, error_r) < 0)
		goto cleanup;
	if (renameat2(AT_FDCWD, partial, AT_FDCWD, out_dir, RENAME_NOREPLACE) < 0 ||
	    fs_fsync_parent(out_dir) < 0) {
		*error_r =
		    str_tfmt("cannot rename %s to %s: %s", partial, out_dir, strerror(errno));
		goto cleanup;
	}
	res->log_index = index;
	res->accounts = (unsigned)ex->acct_count;
	res->records = ex->records;
	res->bytes = ex->bytes;
	ret = 0;
	goto out;
cleanup:
	if (fs_remove_tree(partial) < 0)
		log_warn("legal: cannot remove %s", partial);
out:
	free(partial);
	return ret;
}

int legal_export(struct legal *legal, const char *id, const char *out_dir,
		 struct legal_export_result *res, const char **error_r)
{
	struct legal_request *req = NULL;
	struct export_job ex;
	int r, ret = -1;

	memset(&ex, 0, sizeof(ex));
	memset(res, 0, sizeof(*res));
	buf_init(&ex.manifest);
	ex.legal = legal;
	if (legal->log == NULL || legal->router == NULL) {
		*error_r = "the transparency log is not open";
		return -1;
	}
	if (legal_lock(legal, error_r) < 0)
		return -1;
	r = legal_request_get(legal, id, &req, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = str_tfmt("no request %s", id);
		goto out;
	}
	ex.req = req;
	if (strcmp(req->status, "decided") != 0) {
		*error_r = str_tfmt("%s is %s; only a decided request can be exported", req->id,
				    req->status);
		goto out;
	}
	if (req->instrument == LEGAL_PRESERVATION) {
		*error_r = "a preservation request discloses nothing; it has no export";
		goto out;
	}
	ex.accts = xcalloc(req->account_count, sizeof(*ex.accts));
	for (size_t i = 0; i < req->account_count; i++) {
		const struct legal_account_info *a = &req->accounts[i];
		struct export_account *ea = &ex.accts[ex.acct_count];
		char tag[LEGAL_TAG_HEX_MAX] = "";

		if (a->decision != LEGAL_ACCEPTED)
			continue;
		r = router_account_find(legal->router, a->address, &ea->acct, error_r);
		if (r < 0)
			goto out;
		if (r > 0)
			legal_hex(ea->acct->st.tag, STORE_TAG_BYTES, tag);
		if (r == 0 || strcmp(tag, a->tag) != 0) {
			/* Deleted since the decision: there is nothing left to hand over. */
			router_account_free(&ea->acct);
			continue;
		}
		ea->info = a;
		ea->store = router_store(legal->router, ea->acct);
		buf_init(&ea->index);
		ex.acct_count++;
	}
	if (ex.acct_count == 0) {
		*error_r = str_tfmt("%s has no accepted account with data to export", req->id);
		goto out;
	}
	ret = export_run(&ex, out_dir, res, error_r);
out:
	legal_unlock(legal);
	for (size_t i = 0; ex.accts != NULL && i < req->account_count; i++) {
		struct export_account *ea = &ex.accts[i];

		for (size_t m = 0; m < ea->count; m++)
			store_message_clear(&ea->msgs[m].m);
		free(ea->msgs);
		store_mailboxes_free(&ea->boxes, ea->box_count);
		buf_free(&ea->index);
		router_account_free(&ea->acct);
	}
	free(ex.accts);
	buf_free(&ex.manifest);
	legal_request_free(&req);
	return ret;
}

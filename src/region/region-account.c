/* region-account.c — account life cycle: create, find, unlock, re-key,
 * recover, delete.
 *
 * Trust boundary: receives passwords and recovery codes in memory only; they
 * go straight to Argon2id (crypto/) and are never stored or logged. Every
 * change is appended to the transparency log, naming the account only by its
 * random tag. */
#include "region/region-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
	enum store_role role;
	const char *name;
} router_standard_mailboxes[] = {
    {STORE_ROLE_SENT, "Sent"}, {STORE_ROLE_DRAFTS, "Drafts"},   {STORE_ROLE_TRASH, "Trash"},
    {STORE_ROLE_JUNK, "Junk"}, {STORE_ROLE_ARCHIVE, "Archive"},
};

static void router_tag_hex(const struct store_account *st, char hex[2 * STORE_TAG_BYTES + 1])
{
	for (size_t i = 0; i < STORE_TAG_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", st->tag[i]);
}

static int router_domain_served(const struct config *cfg, const char *address)
{
	const char *domain = strrchr(address, '@') + 1;

	if (cfg->domains == NULL || cfg->domains[0] == NULL)
		return 1;
	for (char **d = cfg->domains; *d != NULL; d++)
		if (strcasecmp(*d, domain) == 0)
			return 1;
	return 0;
}

int router_account_find(struct router *router, const char *address, struct account **acct_r,
			const char **error_r)
{
	uint8_t hash[SEAL_HASH_BYTES];
	const struct region *region;
	struct account *acct;
	char *norm;
	int ret;

	norm = router_address_normalize(address);
	if (norm == NULL)
		return 0;
	router_addr_hash(router, norm, hash);
	ret = router_directory_get(router, hash, &region, error_r);
	if (ret <= 0) {
		free(norm);
		return ret;
	}
	acct = xcalloc(1, sizeof(*acct));
	acct->address = norm;
	acct->region = region;
	store_account_init(&acct->st);
	ret = region->store->backend->account_get(region->store, hash, &acct->st, error_r);
	if (ret == 0) {
		*error_r = str_tfmt("directory lists the account in region %s, but its store has "
				    "no such account",
				    region->name);
		ret = -1;
	}
	if (ret < 0) {
		router_account_free(&acct);
		return -1;
	}
	*acct_r = acct;
	return 1;
}

int router_account_find_inbox(struct router *router, const struct account *acct,
			      uint64_t *inbox_id_r, const char **error_r)
{
	struct store *store = router_store(router, acct);
	struct store_mailbox inbox;
	int r;

	memset(&inbox, 0, sizeof(inbox));
	r = store->backend->mailbox_get_role(store, acct->st.id, STORE_ROLE_INBOX, &inbox, error_r);
	if (r == 0)
		*error_r = "the account has no INBOX";
	if (r > 0)
		*inbox_id_r = inbox.id;
	store_mailbox_clear(&inbox);
	return r > 0 ? 0 : -1;
}

void router_account_free(struct account **acctp)
{
	struct account *acct = *acctp;

	if (acct == NULL)
		return;
	*acctp = NULL;
	free(acct->address);
	store_account_clear(&acct->st);
	free(acct);
}

static int router_wrap(const struct seal_keypair *kp, const char *secret, struct buf *out,
		       const char **error_r)
{
	struct seal_kdf_params params;
	uint8_t *blob;
	size_t len;

	seal_kdf_params_default(&params);
	if (seal_key_wrap(kp, secret, strlen(secret), &params, &blob, &len, error_r) < 0)
		return -1;
	buf_reset(out);
	if (buf_append(out, blob, len) < 0)
		log_fatal("out of memory");
	free(blob);
	return 0;
}

/* The address, sealed under the directory key for the operator's list. */
static int router_seal_address(struct router *router, const char *address, struct buf *out,
			       const char **error_r)
{
	uint8_t *sealed;
	size_t len;

	if (seal_secretbox_encrypt(router->box_key, address, strlen(address), &sealed, &len) < 0) {
		*error_r = "cannot seal the address";
		return -1;
	}
	buf_reset(out);
	if (buf_append(out, sealed, len) < 0)
		log_fatal("out of memory");
	free(sealed);
	return 0;
}

static int router_create_mailboxes(struct router *router, const struct region *region,
				   const struct store_account *st, const char **error_r)
{
	const struct store_backend *b = region->store->backend;
	struct seal_sender *sender = NULL;
	int ret = -1;

	if (b->mailbox_create(region->store, st->id, STORE_ROLE_INBOX, NULL, NULL, error_r) < 0)
		return -1;
	if (seal_sender_new(st->pk, &sender) < 0) {
		*error_r = "cannot start a sealing epoch";
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(router_standard_mailboxes); i++) {
		const char *name = router_standard_mailboxes[i].name;
		struct buf sealed;
		uint8_t *blob;
		size_t len;
		int r;

		if (seal_blob_seal(sender, name, strlen(name), &blob, &len, error_r) < 0)
			goto out;
		buf_init(&sealed);
		if (buf_append(&sealed, blob, len) < 0)
			log_fatal("out of memory");
		free(blob);
		r = b->mailbox_create(region->store, st->id, router_standard_mailboxes[i].role,
				      &sealed, NULL, error_r);
		buf_free(&sealed);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	seal_sender_free(&sender);
	return ret;
}

int router_account_create(struct router *router, const char *address, const char *region_name,
			  const char *password, char *code_r, size_t code_size,
			  const char **error_r)
{
	const struct region *region = router_region(router, region_name), *existing;
	char code[SEAL_RECOVERY_CODE_MAX], tag[2 * STORE_TAG_BYTES + 1];
	struct seal_keypair *kp = NULL;
	struct store_account st;
	struct store *store;
	char *norm;
	int ret = -1, r;

	store_account_init(&st);
	norm = router_address_normalize(address);
	if (norm == NULL) {
		*error_r = "not a valid mail address";
		goto out;
	}
	if (region == NULL) {
		*error_r = str_tfmt("no region named '%s' in the configuration", region_name);
		goto out;
	}
	if (!router_domain_served(router->cfg, norm)) {
		*error_r = "the address's domain is not one of [server] domains";
		goto out;
	}
	if (password[0] == '\0') {
		*error_r = "the password must not be empty";
		goto out;
	}
	router_addr_hash(router, norm, st.addr_hash);
	r = router_directory_get(router, st.addr_hash, &existing, error_r);
	if (r != 0) {
		if (r > 0)
			*error_r = "account already exists";
		goto out;
	}
	store = region->store;
	/* A leftover of an interrupted creation: not in the directory, so it
	 * never received mail. Remove it before starting again. */
	{
		struct store_account old;

		store_account_init(&old);
		r = store->backend->account_get(store, st.addr_hash, &old, error_r);
		if (r > 0)
			r = store->backend->account_delete(store, old.id, error_r);
		store_account_clear(&old);
		if (r < 0)
			goto out;
	}

	if (seal_keypair_generate(&kp) < 0) {
		*error_r = "cannot generate a key pair";
		goto out;
	}
	memcpy(st.pk, seal_keypair_public(kp), SEAL_PK_BYTES);
	seal_random(st.tag, STORE_TAG_BYTES);
	st.created = time(NULL);
	seal_recovery_code_generate(code);
	if (router_wrap(kp, password, &st.wrapped_password, error_r) < 0 ||
	    router_wrap(kp, code, &st.wrapped_recovery, error_r) < 0 ||
	    router_seal_address(router, norm, &st.address_sealed, error_r) < 0)
		goto out;
	if (store->backend->account_create(store, &st, error_r) < 0)
		goto out;
	if (router_create_mailboxes(router, region, &st, error_r) < 0)
		goto undo;
	router_tag_hex(&st, tag);
	{
		const char *fields[] = {
		    "account", tag, "region", region->name, "jurisdiction", region->jurisdiction,
		    NULL};

		if (router_log_event(router, "account.created", fields, error_r) < 0)
			goto undo;
	}
	/* The directory entry makes the account live: last. */
	if (router_directory_put(router, st.addr_hash, region, error_r) < 0)
		goto undo;
	snprintf(code_r, code_size, "%s", code);
	ret = 0;
	goto out;
undo : {
	const char *ignored;

	if (store->backend->account_delete(store, st.id, &ignored) < 0)
		log_warn("could not remove a half-created account: %s", ignored);
}
out:
	mem_wipe(code, sizeof(code));
	seal_keypair_free(&kp);
	store_account_clear(&st);
	free(norm);
	return ret;
}

int router_account_delete(struct router *router, struct account *acct, const char **error_r)
{
	struct store *store = router_store(router, acct);
	char tag[2 * STORE_TAG_BYTES + 1];
	const char *fields[] = {"account", tag, "region", acct->region->name, NULL};

	router_tag_hex(&acct->st, tag);
	/* Logged before it takes effect. */
	if (router_log_event(router, "account.deleted", fields, error_r) < 0)
		return -1;
	if (router_directory_delete(router, acct->st.addr_hash, error_r) < 0)
		return -1;
	return store->backend->account_delete(store, acct->st.id, error_r);
}

int router_account_unlock(struct router *router, struct account *acct, const char *password,
			  struct seal_keypair **kp_r, const char **error_r)
{
	(void)router;
	return seal_key_unwrap(acct->st.wrapped_password.data, acct->st.wrapped_password.len,
			       password, strlen(password), acct->st.pk, kp_r, error_r);
}

static int router_rewrap(struct router *router, struct account *acct, const struct seal_keypair *kp,
			 const char *password, const char *code, const char *event,
			 const char **error_r)
{
	struct store *store = router_store(router, acct);
	struct buf pw, rc;
	char tag[2 * STORE_TAG_BYTES + 1];
	const char *fields[] = {"account", tag, NULL};
	int ret = -1;

	if (password[0] == '\0') {
		*error_r = "the password must not be empty";
		return -1;
	}
	buf_init(&pw);
	buf_init(&rc);
	if (router_wrap(kp, password, &pw, error_r) < 0)
		goto out;
	if (code != NULL) {
		if (router_wrap(kp, code, &rc, error_r) < 0)
			goto out;
	} else if (buf_append(&rc, acct->st.wrapped_recovery.data, acct->st.wrapped_recovery.len) <
		   0) {
		log_fatal("out of memory");
	}
	router_tag_hex(&acct->st, tag);
	if (router_log_event(router, event, fields, error_r) < 0)
		goto out;
	if (store->backend->account_set_wrapped(store, acct->st.id, &pw, &rc, error_r) < 0)
		goto out;
	buf_reset(&acct->st.wrapped_password);
	buf_reset(&acct->st.wrapped_recovery);
	if (buf_append(&acct->st.wrapped_password, pw.data, pw.len) < 0 ||
	    buf_append(&acct->st.wrapped_recovery, rc.data, rc.len) < 0)
		log_fatal("out of memory");
	ret = 0;
out:
	buf_free(&pw);
	buf_free(&rc);
	return ret;
}

int router_account_passwd(struct router *router, struct account *acct, const char *old_password,
			  const char *new_password, const char **error_r)
{
	struct seal_keypair *kp = NULL;
	int ret;

	if (router_account_unlock(router, acct, old_password, &kp, error_r) < 0)
		return -1;
	ret = router_rewrap(router, acct, kp, new_password, NULL, "account.password_changed",
			    error_r);
	seal_keypair_free(&kp);
	return ret;
}

int router_account_recover(struct router *router, struct account *acct, const char *code,
			   const char *new_password, char *new_code_r, size_t new_code_size,
			   const char **error_r)
{
	char norm[SEAL_RECOVERY_CODE_MAX], fresh[SEAL_RECOVERY_CODE_MAX];
	struct seal_keypair *kp = NULL;
	int ret = -1;

	if (seal_recovery_code_normalize(code, norm) < 0) {
		*error_r = "that is not a recovery code";
		return -1;
	}
	if (seal_key_unwrap(acct->st.wrapped_recovery.data, acct->st.wrapped_recovery.len, norm,
			    strlen(norm), acct->st.pk, &kp, error_r) < 0) {
		*error_r = "wrong recovery code";
		goto out;
	}
	/* A recovery code is single-use: a new one replaces it. */
	seal_recovery_code_generate(fresh);
	if (router_rewrap(router, acct, kp, new_password, fresh, "account.recovered", error_r) < 0)
		goto out;
	snprintf(new_code_r, new_code_size, "%s", fresh);
	ret = 0;
out:
	mem_wipe(norm, sizeof(norm));
	mem_wipe(fresh, sizeof(fresh));
	seal_keypair_free(&kp);
	return ret;
}

/* ---- moving an account to another region ------------------------------------ */

struct router_move {
	struct store *src, *dst;
	uint64_t dst_mailbox;
	uint32_t uidvalidity;
	struct store_record_writer *w;
	const char *error;
};

/* One mailbox of the account as it is copied: SRC's id, its copy's id, and
 * the UIDs copied so far (below UIDNEXT). */
struct router_move_box {
	uint64_t src_id, dst_id;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
};

static int router_move_bytes(void *ctx, const uint8_t *data, size_t len)
{
	struct router_move *m = ctx;

	return m->dst->backend->record_write(m->w, data, len, &m->error);
}

/* Copies one sealed record with its index fields and UID; 1 stops the walk. */
static int router_move_message(void *ctx, const struct store_message *msg)
{
	struct router_move *m = ctx;
	const struct store_backend *b = m->dst->backend;
	struct store_message copy = *msg;
	const char *error = NULL;
	uint32_t uid;

	if (b->mailbox_set_uids(m->dst, m->dst_mailbox, m->uidvalidity, msg->uid, 0, &m->error) <
		0 ||
	    b->record_begin(m->dst, &m->w, &m->error) < 0)
		return 1;
	if (m->src->backend->record_read(m->src, msg->id, router_move_bytes, m, &error) < 0) {
		b->record_abort(&m->w);
		if (m->error == NULL)
			m->error = error;
		return 1;
	}
	copy.mailbox_id = m->dst_mailbox;
	if (store_record_commit_wait(m->dst, &m->w, &copy, &uid, &m->error) < 0)
		return 1;
	if (uid != msg->uid) {
		m->error = str_tfmt("message UID %u was stored as %u", msg->uid, uid);
		return 1;
	}
	return 0;
}

/* Copies the messages of BOX from UID_MIN on, then its UID counters. */
static int router_move_messages(struct router_move *m, struct router_move_box *box,
				uint32_t uid_min, const char **error_r)
{
	const char *error = NULL;

	m->dst_mailbox = box->dst_id;
	m->uidvalidity = box->uidvalidity;
	m->error = NULL;
	if (m->src->backend->message_list(m->src, box->src_id, uid_min, router_move_message, m,
					  &error) < 0 ||
	    m->error != NULL) {
		*error_r = m->error != NULL ? m->error : error;
		return -1;
	}
	return m->dst->backend->mailbox_set_uids(m->dst, box->dst_id, box->uidvalidity,
						 box->uidnext, box->highestmodseq, error_r);
}

/* Creates the account and copies of its mailboxes in M->dst; *BOXES_R gets
 * one router_move_box per mailbox. */
static int router_move_copy(struct router_move *m, const struct store_account *st,
			    uint64_t *dst_id_r, struct router_move_box **boxes_r, size_t *count_r,
			    const char **error_r)
{
	const struct store_backend *sb = m->src->backend, *db = m->dst->backend;
	struct store_mailbox *boxes = NULL;
	struct router_move_box *moved;
	struct store_account copy;
	size_t count = 0;
	int ret = -1;

	store_account_init(&copy);
	memcpy(copy.addr_hash, st->addr_hash, sizeof(copy.addr_hash));
	memcpy(copy.tag, st->tag, sizeof(copy.tag));
	memcpy(copy.pk, st->pk, sizeof(copy.pk));
	copy.created = st->created;
	if (buf_append(&copy.wrapped_password, st->wrapped_password.data,
		       st->wrapped_password.len) < 0 ||
	    buf_append(&copy.wrapped_recovery, st->wrapped_recovery.data,
		       st->wrapped_recovery.len) < 0 ||
	    buf_append(&copy.address_sealed, st->address_sealed.data, st->address_sealed.len) < 0)
		log_fatal("out of memory");
	if (db->account_create(m->dst, &copy, error_r) < 0)
		goto out;
	*dst_id_r = copy.id;
	if (sb->mailbox_list(m->src, st->id, &boxes, &count, error_r) < 0)
		goto out;
	moved = xcalloc(count + 1, sizeof(*moved));
	*boxes_r = moved;
	for (size_t i = 0; i < count; i++) {
		const struct store_mailbox *b = &boxes[i];
		struct store_mailbox created;
		uint64_t id;
		int r;

		memset(&created, 0, sizeof(created));
		buf_init(&created.name_sealed);
		r = db->mailbox_create(m->dst, copy.id, b->role,
				       b->name_sealed.len > 0 ? &b->name_sealed : NULL, &created,
				       error_r);
		id = created.id;
		store_mailbox_clear(&created);
		if (r < 0 || (!b->subscribed &&
			      db->mailbox_update(m->dst, copy.id, id, NULL, 0, error_r) < 0))
			goto out;
		moved[i] = (struct router_move_box){b->id, id, b->uidvalidity, b->uidnext,
						    b->highestmodseq};
		*count_r = i + 1;
		if (router_move_messages(m, &moved[i], 1, error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	store_mailboxes_free(&boxes, count);
	store_account_clear(&copy);
	return ret;
}

/* After the directory switch: what was delivered to the old region while
 * the copy ran. */
static int router_move_catch_up(struct router_move *m, const struct store_account *st,
				struct router_move_box *boxes, size_t count, const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		struct store_mailbox now;
		uint32_t from = boxes[i].uidnext;
		int r;

		memset(&now, 0, sizeof(now));
		buf_init(&now.name_sealed);
		r = m->src->backend->mailbox_get(m->src, st->id, boxes[i].src_id, &now, error_r);
		if (r > 0) {
			boxes[i].uidnext = now.uidnext;
			boxes[i].highestmodseq = now.highestmodseq;
		}
		store_mailbox_clear(&now);
		if (r < 0 || (r > 0 && router_move_messages(m, &boxes[i], from, error_r) < 0))
			return -1;
	}
	return 0;
}

int router_account_move(struct router *router, struct account *acct, const char *region_name,
			const char **error_r)
{
	const struct region *from = acct->region, *to = router_region(router, region_name);
	char tag[2 * STORE_TAG_BYTES + 1];
	struct router_move m = {.src = from->store};
	struct router_move_box *boxes = NULL;
	struct store_account old;
	uint64_t dst_id = 0;
	size_t count = 0;
	const char *ignored;
	int r, ret = -1;

	if (to == NULL) {
		*error_r = str_tfmt("no region named '%s' in the configuration", region_name);
		return -1;
	}
	if (to == from) {
		*error_r = str_tfmt("the account is already in region %s", to->name);
		return -1;
	}
	m.dst = to->store;
	if (m.dst->backend->mailbox_set_uids == NULL) {
		*error_r = str_tfmt("the %s store of region %s cannot take a moved account",
				    m.dst->backend->scheme, to->name);
		return -1;
	}
	router_tag_hex(&acct->st, tag);
	{
		const char *fields[] = {"account",
					tag,
					"from",
					from->name,
					"from_jurisdiction",
					from->jurisdiction,
					"to",
					to->name,
					"to_jurisdiction",
					to->jurisdiction,
					NULL};

		/* Logged before a byte reaches the new region. */
		if (router_log_event(router, "account.moved", fields, error_r) < 0)
			return -1;
	}
	/* A leftover of an interrupted move: the directory does not point at
	 * it, so nothing reached it but the copy. */
	store_account_init(&old);
	r = m.dst->backend->account_get(m.dst, acct->st.addr_hash, &old, error_r);
	if (r > 0)
		r = m.dst->backend->account_delete(m.dst, old.id, error_r);
	store_account_clear(&old);
	if (r < 0)
		return -1;

	if (router_move_copy(&m, &acct->st, &dst_id, &boxes, &count, error_r) < 0 ||
	    router_directory_move(router, acct->st.addr_hash, from, to, error_r) < 0) {
		if (dst_id != 0 && m.dst->backend->account_delete(m.dst, dst_id, &ignored) < 0)
			log_warn("could not remove the partial copy of a moved account: %s",
				 ignored);
		goto out;
	}
	/* The account lives in TO from here on. */
	if (router_move_catch_up(&m, &acct->st, boxes, count, error_r) < 0) {
		*error_r = str_tfmt("the account now lives in region %s, but mail that arrived "
				    "during the move could not be copied, so its old copy in "
				    "region %s was kept: %s",
				    to->name, from->name, *error_r);
		goto switched;
	}
	if (from->store->backend->account_delete(from->store, acct->st.id, error_r) < 0) {
		*error_r = str_tfmt("the account now lives in region %s, but its old copy in "
				    "region %s could not be removed: %s",
				    to->name, from->name, *error_r);
		goto switched;
	}
	ret = 0;
switched:
	acct->region = to;
	acct->st.id = dst_id;
out:
	free(boxes);
	return ret;
}

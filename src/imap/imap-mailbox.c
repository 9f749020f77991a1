/* imap-mailbox.c — the account's mailbox names and the selected mailbox:
 * the sealed-name table, name encoding, flags, sequence sets against the
 * view, and the sync that reports other sessions' changes.
 *
 * Trust boundary: mailbox names are opened with the session's key into
 * memory only; new names are sealed to the account's public key before they
 * reach the store. A name from the client is only looked up in this table,
 * never used as a path. The view holds plaintext index fields only. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void imap_boxes_free(struct imap_session *s)
{
	for (size_t i = 0; i < s->box_count; i++)
		free(s->boxes[i].name);
	free(s->boxes);
	s->boxes = NULL;
	s->box_count = 0;
}

int imap_boxes_load(struct imap_session *s, const char **error_r)
{
	struct store_mailbox *boxes = NULL;
	size_t count = 0;

	if (s->store->backend->mailbox_list(s->store, s->acct->st.id, &boxes, &count, error_r) < 0)
		return -1;
	imap_boxes_free(s);
	s->boxes = xcalloc(count ? count : 1, sizeof(*s->boxes));
	for (size_t i = 0; i < count; i++) {
		struct imap_mbox *b = &s->boxes[s->box_count];
		uint8_t *plain = NULL;
		size_t len = 0;
		const char *error;

		if (boxes[i].role == STORE_ROLE_INBOX) {
			b->name = xstrdup("INBOX");
		} else if (boxes[i].name_sealed.len == 0 ||
			   seal_blob_open(s->opener, boxes[i].name_sealed.data,
					  boxes[i].name_sealed.len, &plain, &len, &error) < 0) {
			imap_session_log(s, LOG_WARN, "mailbox %llu: name cannot be opened",
					 (unsigned long long)boxes[i].id);
			continue;
		} else {
			b->name = xmalloc(len + 1);
			memcpy(b->name, plain, len);
			b->name[len] = '\0';
			mem_wipe(plain, len);
			free(plain);
			if (strlen(b->name) != len) {
				free(b->name);
				continue;
			}
		}
		b->id = boxes[i].id;
		b->role = boxes[i].role;
		b->subscribed = boxes[i].subscribed;
		b->messages = boxes[i].messages;
		b->uidnext = boxes[i].uidnext;
		b->uidvalidity = boxes[i].uidvalidity;
		b->highestmodseq = boxes[i].highestmodseq;
		s->box_count++;
	}
	store_mailboxes_free(&boxes, count);
	return 0;
}

struct imap_mbox *imap_box_find(struct imap_session *s, const char *name)
{
	for (size_t i = 0; i < s->box_count; i++)
		if (strcmp(s->boxes[i].name, name) == 0)
			return &s->boxes[i];
	return NULL;
}

int imap_name_in(struct imap_session *s, const struct imap_arg *arg, char **name_r,
		 const char **error_r)
{
	const char *raw = imap_arg_string(arg);
	struct buf utf8;
	int ret;

	if (raw == NULL) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	buf_init(&utf8);
	if (s->utf8) {
		if (buf_append_str(&utf8, raw) < 0)
			log_fatal("out of memory");
	} else if (imap_utf7_to_utf8(raw, &utf8) < 0) {
		buf_free(&utf8);
		*error_r = "Mailbox name is not valid modified UTF-7";
		return -1;
	}
	ret = imap_mailbox_name_check(buf_cstr(&utf8), name_r, error_r);
	buf_free(&utf8);
	return ret;
}

void imap_quote(struct buf *out, const char *str, size_t len)
{
	int literal = 0;

	for (size_t i = 0; i < len; i++)
		if (str[i] == '\r' || str[i] == '\n' || str[i] == '\0')
			literal = 1;
	if (literal) {
		if (buf_printf(out, "{%zu}\r\n", len) < 0 || buf_append(out, str, len) < 0)
			log_fatal("out of memory");
		return;
	}
	if (buf_append(out, "\"", 1) < 0)
		log_fatal("out of memory");
	for (size_t i = 0; i < len; i++) {
		if ((str[i] == '"' || str[i] == '\\') && buf_append(out, "\\", 1) < 0)
			log_fatal("out of memory");
		if (buf_append(out, &str[i], 1) < 0)
			log_fatal("out of memory");
	}
	if (buf_append(out, "\"", 1) < 0)
		log_fatal("out of memory");
}

void imap_name_out(struct imap_session *s, const char *name, struct buf *out)
{
	struct buf enc;

	buf_init(&enc);
	if (s->utf8 || imap_utf8_to_utf7(name, &enc) < 0) {
		buf_reset(&enc);
		if (buf_append_str(&enc, name) < 0)
			log_fatal("out of memory");
	}
	imap_quote(out, (const char *)buf_cstr(&enc), enc.len);
	buf_free(&enc);
}

int imap_box_seal_name(struct imap_session *s, const char *name, struct buf *out,
		       const char **error_r)
{
	struct seal_sender *sender = NULL;
	uint8_t *sealed;
	size_t len;
	int ret = -1;

	if (seal_sender_new(s->acct->st.pk, &sender) < 0) {
		*error_r = "cannot start a sealing epoch";
		return -1;
	}
	if (seal_blob_seal(sender, name, strlen(name), &sealed, &len, error_r) == 0) {
		buf_reset(out);
		if (buf_append(out, sealed, len) < 0)
			log_fatal("out of memory");
		free(sealed);
		ret = 0;
	}
	seal_sender_free(&sender);
	return ret;
}

/* ---- flags ----------------------------------------------------------------- */

static const struct {
	uint32_t bit;
	const char *name;
} imap_flag_names[] = {
    {STORE_FLAG_SEEN, "\\Seen"},       {STORE_FLAG_ANSWERED, "\\Answered"},
    {STORE_FLAG_FLAGGED, "\\Flagged"}, {STORE_FLAG_DELETED, "\\Deleted"},
    {STORE_FLAG_DRAFT, "\\Draft"},
};

void imap_flags_format(uint32_t flags, const char *keywords, struct buf *out)
{
	int first = 1, ret = 0;

	for (size_t i = 0; i < N_ELEMENTS(imap_flag_names); i++) {
		if (!(flags & imap_flag_names[i].bit))
			continue;
		if (!first)
			ret |= buf_append(out, " ", 1);
		ret |= buf_append_str(out, imap_flag_names[i].name);
		first = 0;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			ret |= buf_append(out, " ", 1);
		ret |= buf_append_str(out, keywords);
	}
	if (ret != 0)
		log_fatal("out of memory");
}

static int imap_flag_one(const struct imap_arg *a, uint32_t *flags, struct buf *kw,
			 const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid flag";
		return -1;
	}
	if (a->str[0] == '\\') {
		for (size_t i = 0; i < N_ELEMENTS(imap_flag_names); i++) {
			if (strcasecmp(a->str, imap_flag_names[i].name) == 0) {
				*flags |= imap_flag_names[i].bit;
				return 0;
			}
		}
		if (strcasecmp(a->str, "\\Recent") == 0)
			return 0;
		*error_r = "Invalid system flag";
		return -1;
	}
	for (const char *p = a->str; *p != '\0'; p++) {
		if (strchr("()[]{%*\"\\]", *p) != NULL) {
			*error_r = "Invalid keyword";
			return -1;
		}
	}
	if (strlen(a->str) > 100) {
		*error_r = "Keyword too long";
		return -1;
	}
	if (buf_printf(kw, "%s%s", kw->len ? " " : "", a->str) < 0)
		log_fatal("out of memory");
	return 0;
}

int imap_flags_parse(const struct imap_arg *arg, uint32_t *flags_r, char **keywords_r,
		     const char **error_r)
{
	struct buf kw;

	buf_init(&kw);
	*flags_r = 0;
	*keywords_r = NULL;
	if (arg->type == IMAP_ARG_LIST) {
		if (arg->count > 100) {
			*error_r = "Too many flags";
			return -1;
		}
		for (size_t i = 0; i < arg->count; i++) {
			if (imap_flag_one(&arg->list[i], flags_r, &kw, error_r) < 0) {
				buf_free(&kw);
				return -1;
			}
		}
	} else if (imap_flag_one(arg, flags_r, &kw, error_r) < 0) {
		buf_free(&kw);
		return -1;
	}
	if (kw.len > 0)
		*keywords_r = (char *)buf_cstr(&kw);
	else
		buf_free(&kw);
	return 0;
}

/* store.c — backend dispatch and the helpers shared by every backend.
 *
 * Trust boundary: none beyond store.h's: only sealed bytes pass through. */
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char store_error_gone[] = "store: no such message";

static const struct store_backend *const store_backends[] = {
    &store_backend_fs,
#ifdef HAVE_RADOS
    &store_backend_rados,
#endif
};

int store_open(const char *uri, struct store **store_r, const char **error_r)
{
	const char *colon = strchr(uri, ':');

	if (colon == NULL) {
		*error_r = "store URI has no scheme";
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(store_backends); i++) {
		const struct store_backend *b = store_backends[i];

		if (strlen(b->scheme) == (size_t)(colon - uri) &&
		    strncmp(b->scheme, uri, (size_t)(colon - uri)) == 0)
			return b->open(colon + 1, store_r, error_r);
	}
	*error_r =
	    str_tfmt("store type '%.*s' is not built into this sealmail", (int)(colon - uri), uri);
	return -1;
}

void store_close(struct store **store)
{
	if (*store != NULL)
		(*store)->backend->close(store);
}

const struct store_backend *store_backend_of(const struct store *s)
{
	return s->backend;
}

static void store_wait_done(void *ctx, int result, uint32_t uid, const char *error)
{
	waiter_finish(ctx, result, uid, error);
}

int store_record_commit_wait(struct store *s, struct store_record_writer **w,
			     const struct store_message *msg, uint32_t *uid_r, const char **error_r)
{
	struct waiter wait;

	waiter_init(&wait);
	s->backend->record_commit(w, msg, store_wait_done, &wait);
	return waiter_wait(&wait, uid_r, error_r) < 0 ? -1 : 0;
}

void store_account_init(struct store_account *a)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->wrapped_password);
	buf_init(&a->wrapped_recovery);
	buf_init(&a->address_sealed);
}

void store_account_clear(struct store_account *a)
{
	buf_free(&a->wrapped_password);
	buf_free(&a->wrapped_recovery);
	buf_free(&a->address_sealed);
	memset(a, 0, sizeof(*a));
}

void store_mailbox_clear(struct store_mailbox *b)
{
	buf_free(&b->name_sealed);
	memset(b, 0, sizeof(*b));
}

void store_mailboxes_free(struct store_mailbox **boxes, size_t count)
{
	if (*boxes == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_mailbox_clear(&(*boxes)[i]);
	free(*boxes);
	*boxes = NULL;
}

void store_message_init(struct store_message *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->meta);
}

void store_message_clear(struct store_message *m)
{
	free(m->keywords);
	buf_free(&m->meta);
	memset(m, 0, sizeof(*m));
}

int store_keywords_has(const char *list, const char *kw, size_t len)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n == len && strncasecmp(p, kw, n) == 0)
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static void store_keywords_add(struct buf *out, const char *p, size_t n)
{
	if (buf_append(out, " ", out->len ? 1 : 0) < 0 || buf_append(out, p, n) < 0)
		log_fatal("out of memory");
}

char *store_keywords_apply(const char *list, const char *kws, enum store_flag_mode mode)
{
	struct buf out;
	const char *p;

	buf_init(&out);
	for (p = mode != STORE_FLAGS_SET ? list : NULL; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n > 0 && !(mode == STORE_FLAGS_REMOVE && store_keywords_has(kws, p, n)))
			store_keywords_add(&out, p, n);
		p += n;
		while (*p == ' ')
			p++;
	}
	for (p = mode != STORE_FLAGS_REMOVE ? kws : NULL; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n > 0 && !store_keywords_has(buf_cstr(&out), p, n))
			store_keywords_add(&out, p, n);
		p += n;
		while (*p == ' ')
			p++;
	}
	if (out.len == 0) {
		buf_free(&out);
		return NULL;
	}
	return (char *)buf_cstr(&out);
}

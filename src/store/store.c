/* store.c — backend dispatch and the helpers shared by every backend.
 *
 * Trust boundary: none beyond store.h's: only sealed bytes pass through. */
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct store_backend *const store_backends[] = {
	&store_backend_fs,
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
	*error_r = str_tfmt("store type '%.*s' is not built into this sealmail", (int)(colon - uri),
			    uri);
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

struct store_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	int result;
	uint32_t uid;
	char error[256];
};

static void store_wait_done(void *ctx, int result, uint32_t uid, const char *error)
{
	struct store_wait *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->result = result;
	w->uid = uid;
	if (error != NULL)
		snprintf(w->error, sizeof(w->error), "%s", error);
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int store_record_commit_wait(struct store *s, struct store_record_writer **w,
			     const struct store_message *msg, uint32_t *uid_r, const char **error_r)
{
	struct store_wait wait;

	memset(&wait, 0, sizeof(wait));
	pthread_mutex_init(&wait.lock, NULL);
	pthread_cond_init(&wait.cond, NULL);
	s->backend->record_commit(w, msg, store_wait_done, &wait);
	pthread_mutex_lock(&wait.lock);
	while (!wait.done)
		pthread_cond_wait(&wait.cond, &wait.lock);
	pthread_mutex_unlock(&wait.lock);
	pthread_mutex_destroy(&wait.lock);
	pthread_cond_destroy(&wait.cond);
	if (wait.result < 0) {
		*error_r = str_tfmt("%s", wait.error);
		return -1;
	}
	if (uid_r != NULL)
		*uid_r = wait.uid;
	return 0;
}

void store_account_init(struct store_account *a)
{
	memset(a, 0, sizeof(*a));
	buf_init(&a->wrapped_password);
	buf_init(&a->wrapped_recovery);
}

void store_account_clear(struct store_account *a)
{
	buf_free(&a->wrapped_password);
	buf_free(&a->wrapped_recovery);
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

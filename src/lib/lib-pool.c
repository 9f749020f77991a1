/* lib-pool.c — a small fixed pool of worker threads, and the waiter that
 * lets a thread block on a result computed elsewhere.
 *
 * Trust boundary: none; jobs carry their own data. */
#include "lib/lib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct pool_job {
	struct pool_job *next;
	void (*fn)(void *ctx);
	void *ctx;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *head, *tail;
	int stopping;
	char name[16]; /* the threads' name, for top -H and ps -L */
	int nice;
	unsigned count;
	unsigned idle;   /* threads waiting for a job */
	unsigned queued; /* jobs waiting for a thread */
	pthread_t threads[];
};

static void *pool_main(void *arg)
{
	struct pool *p = arg;
	struct pool_job *job;

	pthread_setname_np(pthread_self(), p->name);
	/* Per thread on Linux, inherited from the creating thread; raising
	 * it needs no privilege. */
	if (p->nice > 0) {
		int nice = getpriority(PRIO_PROCESS, (id_t)gettid()) + p->nice;

		if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice < 19 ? nice : 19) < 0)
			log_warn("%s: cannot lower the priority of a worker thread: %s", p->name,
				 strerror(errno));
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		if (p->head == NULL)
			break;
		job = p->head;
		p->queued--;
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		job->fn(job->ctx);
		free(job);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *pool_new(unsigned threads, const char *name, int nice)
{
	struct pool *p = xcalloc(1, sizeof(*p) + threads * sizeof(pthread_t));

	snprintf(p->name, sizeof(p->name), "%s", name);
	p->nice = nice;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (p->count = 0; p->count < threads; p->count++)
		if (pthread_create(&p->threads[p->count], NULL, pool_main, p) != 0)
			log_fatal("cannot start a worker thread");
	return p;
}

void pool_submit(struct pool *p, void (*fn)(void *ctx), void *ctx)
{
	struct pool_job *job = xmalloc(sizeof(*job));

	job->next = NULL;
	job->fn = fn;
	job->ctx = ctx;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned pool_idle(struct pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->idle > p->queued ? p->idle - p->queued : 0;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void pool_free(struct pool **pp)
{
	struct pool *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->count; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
}

void waiter_finish(struct waiter *w, int result, uint32_t value, const char *error)
{
	pthread_mutex_lock(&w->lock);
	w->result = result;
	w->value = value;
	if (error != NULL)
		snprintf(w->error, sizeof(w->error), "%s", error);
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int waiter_wait(struct waiter *w, uint32_t *value_r, const char **error_r)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	if (value_r != NULL)
		*value_r = w->value;
	if (w->result < 0)
		*error_r = str_tfmt("%s", w->error[0] ? w->error : "failed");
	return w->result;
}

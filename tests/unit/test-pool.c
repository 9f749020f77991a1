/* test-pool.c — the worker pool: jobs, and pool_parallel() sharing one
 * piece of work between its caller and the pool's idle threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/lib.h"

#define ITEMS 1000

struct par_ctx {
	atomic_uint runs[ITEMS];
	atomic_uint by_worker[4];
	pthread_t caller;
	atomic_uint off_caller; /* items worker 0 ran on another thread */
};

static void par_item(void *ctx, size_t i, unsigned worker)
{
	struct par_ctx *c = ctx;

	atomic_fetch_add(&c->runs[i], 1);
	if (worker < 4)
		atomic_fetch_add(&c->by_worker[worker], 1);
	if (worker == 0 && !pthread_equal(pthread_self(), c->caller))
		atomic_fetch_add(&c->off_caller, 1);
	if (i % 50 == 0)
		usleep(200); /* give the helpers time to join in */
}

/* Every item runs exactly once; the caller is worker 0 and works on its
 * own thread; helpers are numbered from 1 and do take a share. */
static void test_parallel_each_item_once(void **state)
{
	struct pool *p = pool_new(2);
	struct par_ctx *c = calloc(1, sizeof(*c));
	unsigned total = 0;

	c->caller = pthread_self();
	pool_parallel(p, 2, ITEMS, par_item, c);
	for (size_t i = 0; i < ITEMS; i++)
		assert_int_equal(atomic_load(&c->runs[i]), 1);
	for (unsigned w = 0; w < 3; w++)
		total += atomic_load(&c->by_worker[w]);
	assert_int_equal(total, ITEMS);
	assert_int_equal(atomic_load(&c->by_worker[3]), 0);
	assert_true(atomic_load(&c->by_worker[0]) > 0);
	assert_true(atomic_load(&c->by_worker[1]) + atomic_load(&c->by_worker[2]) > 0);
	assert_int_equal(atomic_load(&c->off_caller), 0);
	free(c);
	pool_free(&p);
}

struct busy {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int release;
	atomic_uint started;
};

static void busy_job(void *ctx)
{
	struct busy *b = ctx;

	atomic_fetch_add(&b->started, 1);
	pthread_mutex_lock(&b->lock);
	while (!b->release)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

struct nested {
	struct pool *p;
	struct par_ctx *c;
	atomic_int done;
};

static void nested_job(void *ctx)
{
	struct nested *n = ctx;

	/* From a pool thread, with the other thread busy: the caller does it
	 * all, and does not wait for help that cannot come. */
	n->c->caller = pthread_self();
	pool_parallel(n->p, 1, ITEMS, par_item, n->c);
	atomic_store(&n->done, 1);
}

static void test_parallel_busy_pool_never_waits(void **state)
{
	struct pool *p = pool_new(2);
	struct busy b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	struct nested n = {p, calloc(1, sizeof(struct par_ctx)), 0};

	pool_submit(p, busy_job, &b);
	for (int i = 0; i < 5000 && (atomic_load(&b.started) == 0 || pool_idle(p) != 1); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&b.started), 1);
	assert_int_equal(pool_idle(p), 1);
	pool_submit(p, nested_job, &n);
	for (int i = 0; i < 5000 && !atomic_load(&n.done); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&n.done), 1);
	for (size_t i = 0; i < ITEMS; i++)
		assert_int_equal(atomic_load(&n.c->runs[i]), 1);
	assert_int_equal(atomic_load(&n.c->by_worker[0]), ITEMS);
	pthread_mutex_lock(&b.lock);
	b.release = 1;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	pool_free(&p); /* the helper job, if still queued, finds no work */
	free(n.c);
}

static void test_parallel_small(void **state)
{
	struct pool *p = pool_new(2);
	struct par_ctx *c = calloc(1, sizeof(*c));

	c->caller = pthread_self();
	pool_parallel(p, 2, 0, par_item, c);
	pool_parallel(p, 2, 1, par_item, c);
	assert_int_equal(atomic_load(&c->runs[0]), 1);
	assert_int_equal(atomic_load(&c->by_worker[0]), 1);
	free(c);
	pool_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parallel_each_item_once),
	    cmocka_unit_test(test_parallel_busy_pool_never_waits),
	    cmocka_unit_test(test_parallel_small),
	};

	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}

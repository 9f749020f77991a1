/* test-pool.c — the worker pool: every job runs once, pool_idle() counts
 * the threads that no queued job will take (FETCH opens batches ahead only
 * while it is above zero), and the threads carry the pool's name and
 * priority. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/lib.h"

#define JOBS 1000

struct count {
	atomic_uint runs[JOBS];
	atomic_uint total;
};

struct count_job {
	struct count *c;
	size_t i;
};

static void count_job(void *ctx)
{
	struct count_job *j = ctx;

	atomic_fetch_add(&j->c->runs[j->i], 1);
	atomic_fetch_add(&j->c->total, 1);
}

/* Every job runs exactly once, also those still queued when the pool is
 * freed. */
static void test_each_job_once(void **state)
{
	struct pool *p = pool_new(2, "test", 0);
	struct count *c = calloc(1, sizeof(*c));
	struct count_job *jobs = calloc(JOBS, sizeof(*jobs));

	for (size_t i = 0; i < JOBS; i++) {
		jobs[i] = (struct count_job){c, i};
		pool_submit(p, count_job, &jobs[i]);
	}
	pool_free(&p);
	assert_null(p);
	assert_int_equal(atomic_load(&c->total), JOBS);
	for (size_t i = 0; i < JOBS; i++)
		assert_int_equal(atomic_load(&c->runs[i]), 1);
	free(jobs);
	free(c);
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

/* Waits (up to 5 s) until the pool reports WANT idle threads. */
static unsigned idle_becomes(struct pool *p, unsigned want)
{
	for (int i = 0; i < 5000 && pool_idle(p) != want; i++)
		usleep(1000);
	return pool_idle(p);
}

static void test_idle_counts_busy_threads_and_queued_jobs(void **state)
{
	struct pool *p = pool_new(3, "test", 0);
	struct busy b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

	assert_int_equal(idle_becomes(p, 3), 3);
	pool_submit(p, busy_job, &b);
	assert_int_equal(idle_becomes(p, 2), 2);
	pool_submit(p, busy_job, &b);
	pool_submit(p, busy_job, &b);
	/* Two more: both threads taken (or about to be). */
	assert_int_equal(pool_idle(p), 0);
	for (int i = 0; i < 5000 && atomic_load(&b.started) < 3; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&b.started), 3);
	/* A fourth job waits in the queue: still none idle. */
	pool_submit(p, busy_job, &b);
	assert_int_equal(pool_idle(p), 0);
	pthread_mutex_lock(&b.lock);
	b.release = 1;
	pthread_cond_broadcast(&b.cond);
	pthread_mutex_unlock(&b.lock);
	assert_int_equal(idle_becomes(p, 3), 3);
	assert_int_equal(atomic_load(&b.started), 4);
	pool_free(&p);
}

struct identity {
	char name[16];
	int nice;
	int main_nice;
};

static void identity_job(void *ctx)
{
	struct identity *id = ctx;

	prctl(PR_GET_NAME, id->name);
	id->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
}

/* A pool's threads have its name and its nice value, and the thread that
 * made the pool keeps its own. */
static void test_threads_named_and_niced(void **state)
{
	struct pool *p = pool_new(1, "sealmail-test-xyz", 7);
	struct identity id = {{0}, -100, 0};

	id.main_nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	pool_submit(p, identity_job, &id);
	pool_free(&p);
	assert_string_equal(id.name, "sealmail-test-x"); /* 15 bytes */
	assert_int_equal(id.nice, id.main_nice + 7 > 19 ? 19 : id.main_nice + 7);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), id.main_nice);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_job_once),
	    cmocka_unit_test(test_idle_counts_busy_threads_and_queued_jobs),
	    cmocka_unit_test(test_threads_named_and_niced),
	};

	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}

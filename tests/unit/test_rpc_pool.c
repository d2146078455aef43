/* Tests for the limit and queue of blocking gRPC handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "deadline.h"
#include "rpc_pool.h"

/* Polling interval while waiting for another thread, in microseconds. */
#define POLL_US  1000
#define MAX_JOBS 16
/* How long a stop that ought to wait is given to return wrongly, in us. */
#define STOP_GRACE_US 50000
/* Deadline given to cj_pool_stop_until while a job is still blocked, ms. */
#define STOP_DEADLINE_MS 50

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int started;
static int finished;
static int order[MAX_JOBS];
static pthread_t ran_on[MAX_JOBS];
static int order_len;

static void reset(bool open)
{
    pthread_mutex_lock(&lock);
    gate_open = open;
    started = 0;
    finished = 0;
    order_len = 0;
    pthread_mutex_unlock(&lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&lock);
    gate_open = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static int count_of(const int *counter)
{
    pthread_mutex_lock(&lock);
    int n = *counter;
    pthread_mutex_unlock(&lock);
    return n;
}

static void wait_started(int count)
{
    while (count_of(&started) < count) {
        usleep(POLL_US);
    }
}

/* Waits at the gate, then records its number and its thread. */
static void gated_job(void *arg)
{
    int number = (int)(intptr_t)arg;

    pthread_mutex_lock(&lock);
    started++;
    while (!gate_open) {
        pthread_cond_wait(&cond, &lock);
    }
    ran_on[number] = pthread_self();
    order[order_len++] = number;
    finished++;
    pthread_mutex_unlock(&lock);
}

struct runner {
    pthread_t thread;
    struct cj_pool *pool;
    intptr_t number;
    enum cj_status status;
};

/* Admits a job and runs it when admitted to run here, as the server does. */
static enum cj_status pool_run(struct cj_pool *pool, intptr_t number)
{
    switch (cj_pool_admit(pool, gated_job, (void *)number)) {
    case CJ_POOL_RUN_HERE:
        cj_pool_run_here(pool, gated_job, (void *)number);
        return CJ_OK;
    case CJ_POOL_QUEUED:
        return CJ_OK;
    case CJ_POOL_REJECTED:
        break;
    }
    return CJ_ERR_UNAVAILABLE;
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    r->status = pool_run(r->pool, r->number);
    return NULL;
}

static void runner_start(struct runner *r, struct cj_pool *pool,
                         intptr_t number)
{
    r->pool = pool;
    r->number = number;
    r->status = CJ_ERR_INTERNAL;
    assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
}

static void test_create_rejects_zero_sizes(void **state)
{
    (void)state;
    struct cj_pool *pool = (struct cj_pool *)1;
    assert_int_equal(cj_pool_create(0, 4, &pool), CJ_ERR_INVALID);
    assert_null(pool);
    assert_int_equal(cj_pool_create(2, 0, &pool), CJ_ERR_INVALID);
    assert_null(pool);
}

static void test_pool_runs_job_on_caller(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;

    reset(true);
    assert_int_equal(cj_pool_create(1, 4, &pool), CJ_OK);
    assert_int_equal(pool_run(pool, 0), CJ_OK);
    /* It returned after the job ran, on this thread. */
    assert_int_equal(count_of(&finished), 1);
    assert_true(pthread_equal(ran_on[0], pthread_self()));
    cj_pool_destroy(pool);
}

static void test_pool_queued_jobs_run_in_order(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;
    struct runner runner;

    reset(false);
    assert_int_equal(cj_pool_create(1, 8, &pool), CJ_OK);
    runner_start(&runner, pool, 0);
    wait_started(1);
    for (intptr_t i = 1; i < 6; i++) {
        /* The limit is taken: each returns at once, queued. */
        assert_int_equal(pool_run(pool, i), CJ_OK);
    }
    assert_int_equal(cj_pool_queued(pool), 5);
    assert_int_equal(count_of(&started), 1);

    open_gate();
    pthread_join(runner.thread, NULL);
    assert_int_equal(runner.status, CJ_OK);
    assert_int_equal(count_of(&finished), 6);
    assert_int_equal(cj_pool_queued(pool), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(order[i], i);
        assert_true(pthread_equal(ran_on[i], runner.thread));
    }
    cj_pool_destroy(pool);
}

static void test_pool_limit_bounds_running(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;
    struct runner runners[4];

    reset(false);
    assert_int_equal(cj_pool_create(2, 8, &pool), CJ_OK);
    for (intptr_t i = 0; i < 4; i++) {
        runner_start(&runners[i], pool, i);
    }
    /* Two run and wait at the gate; the other two threads queued theirs. */
    while (cj_pool_queued(pool) < 2) {
        usleep(POLL_US);
    }
    wait_started(2);
    assert_int_equal(count_of(&started), 2);

    open_gate();
    for (int i = 0; i < 4; i++) {
        pthread_join(runners[i].thread, NULL);
        assert_int_equal(runners[i].status, CJ_OK);
    }
    assert_int_equal(count_of(&finished), 4);
    cj_pool_destroy(pool);
}

static void test_full_queue_rejects_job(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;
    struct runner runner;

    reset(false);
    assert_int_equal(cj_pool_create(1, 2, &pool), CJ_OK);
    runner_start(&runner, pool, 0);
    wait_started(1);
    assert_int_equal(pool_run(pool, 1), CJ_OK);
    assert_int_equal(pool_run(pool, 2), CJ_OK);
    assert_int_equal(cj_pool_queued(pool), 2);
    assert_int_equal(pool_run(pool, 3), CJ_ERR_UNAVAILABLE);

    open_gate();
    pthread_join(runner.thread, NULL);
    assert_int_equal(count_of(&finished), 3);
    cj_pool_destroy(pool);
}

struct stopper {
    pthread_t thread;
    struct cj_pool *pool;
    bool done;
};

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    cj_pool_stop(s->pool);
    pthread_mutex_lock(&lock);
    s->done = true;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void test_pool_stop_waits_then_rejects(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;
    struct runner runner;
    struct stopper stopper = {.done = false};

    reset(false);
    assert_int_equal(cj_pool_create(1, 8, &pool), CJ_OK);
    runner_start(&runner, pool, 0);
    wait_started(1);
    for (intptr_t i = 1; i < 4; i++) {
        assert_int_equal(pool_run(pool, i), CJ_OK);
    }
    stopper.pool = pool;
    assert_int_equal(
        pthread_create(&stopper.thread, NULL, stopper_main, &stopper), 0);
    /* Give a wrong stop the time to return before the queued jobs ran. */
    usleep(STOP_GRACE_US);
    pthread_mutex_lock(&lock);
    bool stopped_early = stopper.done;
    pthread_mutex_unlock(&lock);
    assert_false(stopped_early);
    assert_int_equal(count_of(&finished), 0);

    open_gate();
    pthread_join(stopper.thread, NULL);
    assert_true(stopper.done);
    assert_int_equal(count_of(&finished), 4);
    assert_int_equal(cj_pool_queued(pool), 0);
    assert_int_equal(pool_run(pool, 9), CJ_ERR_UNAVAILABLE);
    pthread_join(runner.thread, NULL);
    cj_pool_stop(pool); /* a second stop is harmless */
    cj_pool_destroy(pool);
    cj_pool_destroy(NULL);
}

static void test_stop_until_times_out_on_running_job(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;
    struct runner runner;
    struct timespec deadline;

    reset(false);
    assert_int_equal(cj_pool_create(1, 8, &pool), CJ_OK);
    runner_start(&runner, pool, 0);
    wait_started(1);
    assert_int_equal(pool_run(pool, 1), CJ_OK);

    cj_deadline_after_ms(CLOCK_MONOTONIC, STOP_DEADLINE_MS, &deadline);
    assert_false(cj_pool_stop_until(pool, &deadline));
    /* The timed-out stop still rejects new jobs and leaves queued ones. */
    assert_int_equal(pool_run(pool, 9), CJ_ERR_UNAVAILABLE);
    assert_int_equal(cj_pool_queued(pool), 1);
    assert_int_equal(count_of(&finished), 0);

    open_gate();
    cj_deadline_after_ms(CLOCK_MONOTONIC, STOP_DEADLINE_MS, &deadline);
    pthread_join(runner.thread, NULL);
    assert_true(cj_pool_stop_until(pool, &deadline));
    assert_int_equal(count_of(&finished), 2);
    cj_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_zero_sizes),
        cmocka_unit_test(test_pool_runs_job_on_caller),
        cmocka_unit_test(test_pool_queued_jobs_run_in_order),
        cmocka_unit_test(test_pool_limit_bounds_running),
        cmocka_unit_test(test_full_queue_rejects_job),
        cmocka_unit_test(test_pool_stop_waits_then_rejects),
        cmocka_unit_test(test_stop_until_times_out_on_running_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

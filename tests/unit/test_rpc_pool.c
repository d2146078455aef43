/* Tests for the bounded worker pool of blocking gRPC handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "rpc_pool.h"

/* Polling interval while waiting for a worker, in microseconds. */
#define POLL_US 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int started;
static int finished;
static int order[16];
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

/* Waits at the gate, then records its number. */
static void gated_job(void *arg)
{
    pthread_mutex_lock(&lock);
    started++;
    while (!gate_open) {
        pthread_cond_wait(&cond, &lock);
    }
    order[order_len++] = (int)(intptr_t)arg;
    finished++;
    pthread_mutex_unlock(&lock);
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

static void test_jobs_run_in_submission_order(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;

    reset(true);
    assert_int_equal(cj_pool_create(1, 8, &pool), CJ_OK);
    for (intptr_t i = 0; i < 8; i++) {
        assert_int_equal(cj_pool_submit(pool, gated_job, (void *)i), CJ_OK);
    }
    cj_pool_stop(pool);
    assert_int_equal(count_of(&finished), 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(order[i], i);
    }
    cj_pool_destroy(pool);
}

static void test_full_queue_rejects_job(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;

    reset(false);
    assert_int_equal(cj_pool_create(1, 2, &pool), CJ_OK);
    assert_int_equal(cj_pool_submit(pool, gated_job, (void *)0), CJ_OK);
    while (count_of(&started) < 1) {
        usleep(POLL_US); /* job 0 keeps the worker at the gate */
    }
    assert_int_equal(cj_pool_submit(pool, gated_job, (void *)1), CJ_OK);
    assert_int_equal(cj_pool_submit(pool, gated_job, (void *)2), CJ_OK);
    assert_int_equal(cj_pool_queued(pool), 2);
    assert_int_equal(cj_pool_submit(pool, gated_job, (void *)3),
                     CJ_ERR_UNAVAILABLE);

    open_gate();
    cj_pool_stop(pool);
    assert_int_equal(count_of(&finished), 3);
    cj_pool_destroy(pool);
}

static void test_stop_drains_queue_then_rejects(void **state)
{
    (void)state;
    struct cj_pool *pool = NULL;

    reset(false);
    assert_int_equal(cj_pool_create(2, 8, &pool), CJ_OK);
    for (intptr_t i = 0; i < 6; i++) {
        assert_int_equal(cj_pool_submit(pool, gated_job, (void *)i), CJ_OK);
    }
    open_gate();
    cj_pool_stop(pool);
    assert_int_equal(count_of(&finished), 6);
    assert_int_equal(cj_pool_queued(pool), 0);
    assert_int_equal(cj_pool_submit(pool, gated_job, (void *)9),
                     CJ_ERR_UNAVAILABLE);
    cj_pool_stop(pool); /* a second stop is harmless */
    cj_pool_destroy(pool);
    cj_pool_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rejects_zero_sizes),
        cmocka_unit_test(test_jobs_run_in_submission_order),
        cmocka_unit_test(test_full_queue_rejects_job),
        cmocka_unit_test(test_stop_drains_queue_then_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

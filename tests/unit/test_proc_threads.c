/* Tests for counting this process's threads and waiting for detached
 * ones to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "deadline.h"
#include "proc_threads.h"

/* Long enough that a wait returning at once would still see the thread. */
#define DETACHED_LIFE_MS 200
#define WAIT_LIMIT_MS    5000
#define SHORT_WAIT_MS    50

static void *sleep_then_end(void *arg)
{
    (void)arg;
    const struct timespec life = {.tv_sec = 0,
                                  .tv_nsec = DETACHED_LIFE_MS * CJ_NS_PER_MS};
    nanosleep(&life, NULL);
    return NULL;
}

/* Blocks until the test writes to the pipe whose read end is arg. */
static void *wait_on_pipe(void *arg)
{
    char byte;
    (void)read(*(int *)arg, &byte, 1);
    return NULL;
}

static void test_count_sees_a_new_thread(void **state)
{
    (void)state;
    int fds[2];
    pthread_t thread;

    assert_int_equal(cj_proc_thread_count(), 1);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pthread_create(&thread, NULL, wait_on_pipe, &fds[0]), 0);
    assert_int_equal(cj_proc_thread_count(), 2);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(cj_proc_thread_count(), 1);
    close(fds[0]);
    close(fds[1]);
}

static void test_wait_returns_once_detached_thread_ends(void **state)
{
    (void)state;
    pthread_t thread;
    pthread_attr_t attr;

    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), 0);
    assert_int_equal(pthread_create(&thread, &attr, sleep_then_end, NULL), 0);
    pthread_attr_destroy(&attr);

    int64_t started_ms = cj_monotonic_ms();
    assert_true(cj_proc_wait_alone(WAIT_LIMIT_MS));
    assert_int_equal(cj_proc_thread_count(), 1);
    /* It waited for the thread rather than for its whole limit. */
    assert_true(cj_monotonic_ms() - started_ms < WAIT_LIMIT_MS);
}

static void test_wait_gives_up_at_its_limit(void **state)
{
    (void)state;
    int fds[2];
    pthread_t thread;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pthread_create(&thread, NULL, wait_on_pipe, &fds[0]), 0);
    int64_t started_ms = cj_monotonic_ms();
    assert_false(cj_proc_wait_alone(SHORT_WAIT_MS));
    assert_true(cj_monotonic_ms() - started_ms >= SHORT_WAIT_MS);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(pthread_join(thread, NULL), 0);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_sees_a_new_thread),
        cmocka_unit_test(test_wait_returns_once_detached_thread_ends),
        cmocka_unit_test(test_wait_gives_up_at_its_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

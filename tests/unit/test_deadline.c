/* Tests for common/deadline.c: deadline arithmetic on both clocks, timed
 * waits on a monotonic condition variable, and the monotonic milliseconds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deadline.h"

/* A wait that must time out, in ms. */
#define TEST_WAIT_MS 20

static int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * CJ_NS_PER_S + ts->tv_nsec;
}

/* Checks that the deadline lies ms after a reading taken just before it
 * and before one taken just after it, and that tv_nsec is normalized. */
static void check_deadline(clockid_t clock_id, int64_t ms)
{
    struct timespec before;
    struct timespec deadline;
    struct timespec after;

    clock_gettime(clock_id, &before);
    cj_deadline_after_ms(clock_id, ms, &deadline);
    clock_gettime(clock_id, &after);

    assert_true(deadline.tv_nsec >= 0);
    assert_true(deadline.tv_nsec < CJ_NS_PER_S);
    assert_true(timespec_ns(&deadline) >=
                timespec_ns(&before) + ms * CJ_NS_PER_MS);
    assert_true(timespec_ns(&deadline) <=
                timespec_ns(&after) + ms * CJ_NS_PER_MS);
}

static void test_deadline_monotonic_adds_ms(void **state)
{
    /* 999 and 1999 carry into tv_sec unless tv_nsec is below 1 ms. */
    static const int64_t cases_ms[] = {0, 1, 999, 1000, 1001, 1999, 60000};

    (void)state;
    for (size_t i = 0; i < sizeof(cases_ms) / sizeof(cases_ms[0]); i++) {
        check_deadline(CLOCK_MONOTONIC, cases_ms[i]);
    }
}

static void test_deadline_realtime_adds_ms(void **state)
{
    static const int64_t cases_ms[] = {0, 500, 999, 2500};

    (void)state;
    for (size_t i = 0; i < sizeof(cases_ms) / sizeof(cases_ms[0]); i++) {
        check_deadline(CLOCK_REALTIME, cases_ms[i]);
    }
}

static void test_cond_monotonic_wait_times_out(void **state)
{
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    struct timespec deadline;
    struct timespec now;
    int rc;

    (void)state;
    assert_int_equal(cj_cond_init_monotonic(&cond), CJ_OK);
    cj_deadline_after_ms(CLOCK_MONOTONIC, TEST_WAIT_MS, &deadline);
    pthread_mutex_lock(&mutex);
    do {
        rc = pthread_cond_timedwait(&cond, &mutex, &deadline);
    } while (rc == 0);
    pthread_mutex_unlock(&mutex);
    clock_gettime(CLOCK_MONOTONIC, &now);

    /* A condition variable on CLOCK_REALTIME would read this deadline as
     * decades ago and return at once, before the monotonic deadline. */
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(timespec_ns(&now) >= timespec_ns(&deadline));
    assert_int_equal(pthread_cond_destroy(&cond), 0);
}

static void test_monotonic_ms_matches_clock(void **state)
{
    struct timespec before;
    struct timespec after;
    int64_t ms;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &before);
    ms = cj_monotonic_ms();
    clock_gettime(CLOCK_MONOTONIC, &after);

    assert_true(ms >= timespec_ns(&before) / CJ_NS_PER_MS);
    assert_true(ms <= timespec_ns(&after) / CJ_NS_PER_MS);
    assert_true(cj_monotonic_ms() >= ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_monotonic_adds_ms),
        cmocka_unit_test(test_deadline_realtime_adds_ms),
        cmocka_unit_test(test_cond_monotonic_wait_times_out),
        cmocka_unit_test(test_monotonic_ms_matches_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

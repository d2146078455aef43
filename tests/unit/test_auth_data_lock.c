/* Tests for the in-process class locks of PutData: one holder per key,
 * bounded and timed waits, and entries freed once unused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "auth_data_lock.h"

#define USER_A "00000000-0000-4000-8000-00000000000a"
#define USER_B "00000000-0000-4000-8000-00000000000b"
/* A wait that outlasts every test step, in ms. */
#define TEST_LONG_WAIT_MS 5000
/* A wait that leaves 50 ms after the reply margin, in ms. */
#define TEST_SHORT_WAIT_MS (AUTH_DATA_LOCK_REPLY_MARGIN_MS + 50)
#define TEST_THREADS       6
#define TEST_ROUNDS        100
/* Polls of a condition another thread sets, 1 ms apart. */
#define TEST_POLLS_MAX 5000

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Polls until `waiting` PUTs wait; returns whether they did in time. */
static int wait_for_waiters(struct auth_data_locks *locks, unsigned waiting)
{
    unsigned entries = 0;
    unsigned now = 0;

    for (int i = 0; i < TEST_POLLS_MAX; i++) {
        auth_data_locks_read(locks, &entries, &now);
        if (now == waiting) {
            return 1;
        }
        sleep_ms(1);
    }
    return 0;
}

static void test_data_lock_free_key_taken_and_freed(void **state)
{
    struct auth_data_locks locks;
    struct auth_data_lock_entry *a = NULL;
    struct auth_data_lock_entry *b = NULL;
    struct auth_data_lock_entry *c = NULL;
    const char *reason = NULL;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    assert_int_equal(
        auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC, 0, &a, &reason),
        CJ_OK);
    assert_non_null(a);
    assert_null(reason);
    /* Another user, and another class of the same user, do not wait. */
    assert_int_equal(
        auth_data_lock_enter(&locks, USER_B, AUTH_DATA_PUBLIC, 0, &b, &reason),
        CJ_OK);
    assert_int_equal(
        auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PRIVATE, 0, &c, &reason),
        CJ_OK);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 3);
    assert_int_equal(waiting, 0);
    auth_data_lock_leave(&locks, a);
    auth_data_lock_leave(&locks, b);
    auth_data_lock_leave(&locks, c);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    auth_data_lock_leave(&locks, NULL);
    auth_data_locks_destroy(&locks);
}

static void test_data_lock_rejects_when_deadline_too_close(void **state)
{
    struct auth_data_locks locks;
    struct auth_data_lock_entry *held = NULL;
    struct auth_data_lock_entry *second = NULL;
    const char *reason = NULL;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC, 0,
                                          &held, &reason),
                     CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC,
                                          AUTH_DATA_LOCK_REPLY_MARGIN_MS,
                                          &second, &reason),
                     CJ_ERR_UNAVAILABLE);
    assert_null(second);
    assert_string_equal(reason, AUTH_DATA_LOCK_SHED_DEADLINE);
    auth_data_lock_leave(&locks, held);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    auth_data_locks_destroy(&locks);
}

static void test_data_lock_wait_runs_out(void **state)
{
    struct auth_data_locks locks;
    struct auth_data_lock_entry *held = NULL;
    struct auth_data_lock_entry *second = NULL;
    const char *reason = NULL;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PRIVATE, 0,
                                          &held, &reason),
                     CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PRIVATE,
                                          TEST_SHORT_WAIT_MS, &second, &reason),
                     CJ_ERR_UNAVAILABLE);
    assert_string_equal(reason, AUTH_DATA_LOCK_SHED_DEADLINE);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 1);
    assert_int_equal(waiting, 0);
    /* The holder's leave frees the entry the timed-out waiter left. */
    auth_data_lock_leave(&locks, held);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    auth_data_locks_destroy(&locks);
}

/* Threads that take USER_A's public lock `rounds` times each and count
 * how often two of them held it at once. */
struct waiter_arg {
    struct auth_data_locks *locks;
    atomic_int *inside;
    atomic_int *overlaps; /* times two holders were inside */
    atomic_int *failures;
    int rounds;
};

static void *waiter_main(void *arg)
{
    struct waiter_arg *w = arg;
    struct auth_data_lock_entry *entry = NULL;
    const char *reason = NULL;

    for (int i = 0; i < w->rounds; i++) {
        int now;

        if (auth_data_lock_enter(w->locks, USER_A, AUTH_DATA_PUBLIC,
                                 TEST_LONG_WAIT_MS, &entry, &reason) != CJ_OK) {
            atomic_fetch_add(w->failures, 1);
            continue;
        }
        now = atomic_fetch_add(w->inside, 1) + 1;
        if (now > 1) {
            atomic_fetch_add(w->overlaps, 1);
        }
        atomic_fetch_sub(w->inside, 1);
        auth_data_lock_leave(w->locks, entry);
    }
    return NULL;
}

static void test_data_lock_bounds_waiters(void **state)
{
    struct auth_data_locks locks;
    struct auth_data_lock_entry *held = NULL;
    struct auth_data_lock_entry *extra = NULL;
    pthread_t threads[AUTH_DATA_LOCK_WAITERS_MAX];
    struct waiter_arg arg;
    atomic_int inside = 0;
    atomic_int overlaps = 0;
    atomic_int failures = 0;
    const char *reason = NULL;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC, 0,
                                          &held, &reason),
                     CJ_OK);
    arg = (struct waiter_arg){&locks, &inside, &overlaps, &failures, 1};
    for (int i = 0; i < AUTH_DATA_LOCK_WAITERS_MAX; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, waiter_main, &arg),
                         0);
    }
    assert_true(wait_for_waiters(&locks, AUTH_DATA_LOCK_WAITERS_MAX));
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC,
                                          TEST_LONG_WAIT_MS, &extra, &reason),
                     CJ_ERR_UNAVAILABLE);
    assert_string_equal(reason, AUTH_DATA_LOCK_SHED_BUSY);
    auth_data_lock_leave(&locks, held);
    for (int i = 0; i < AUTH_DATA_LOCK_WAITERS_MAX; i++) {
        pthread_join(threads[i], NULL);
    }
    assert_int_equal(atomic_load(&failures), 0);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    assert_int_equal(waiting, 0);
    auth_data_locks_destroy(&locks);
}

/* Checks the total bound: with two keys held and a bound of one waiter, a
 * PUT for the second key is rejected while another waits for the first. */
static void test_data_lock_bounds_total_waiters(void **state)
{
    struct auth_data_locks locks;
    struct auth_data_lock_entry *held_a = NULL;
    struct auth_data_lock_entry *held_b = NULL;
    struct auth_data_lock_entry *extra = NULL;
    pthread_t thread;
    struct waiter_arg arg;
    atomic_int inside = 0;
    atomic_int overlaps = 0;
    atomic_int failures = 0;
    const char *reason = NULL;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    locks.waiting_max = 1;
    assert_int_equal(auth_data_lock_enter(&locks, USER_A, AUTH_DATA_PUBLIC, 0,
                                          &held_a, &reason),
                     CJ_OK);
    assert_int_equal(auth_data_lock_enter(&locks, USER_B, AUTH_DATA_PUBLIC, 0,
                                          &held_b, &reason),
                     CJ_OK);
    arg = (struct waiter_arg){&locks, &inside, &overlaps, &failures, 1};
    assert_int_equal(pthread_create(&thread, NULL, waiter_main, &arg), 0);
    assert_true(wait_for_waiters(&locks, 1));
    assert_int_equal(auth_data_lock_enter(&locks, USER_B, AUTH_DATA_PUBLIC,
                                          TEST_LONG_WAIT_MS, &extra, &reason),
                     CJ_ERR_UNAVAILABLE);
    assert_null(extra);
    assert_string_equal(reason, AUTH_DATA_LOCK_SHED_BUSY);
    auth_data_lock_leave(&locks, held_a);
    pthread_join(thread, NULL);
    assert_int_equal(atomic_load(&failures), 0);
    auth_data_lock_leave(&locks, held_b);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    assert_int_equal(waiting, 0);
    auth_data_locks_destroy(&locks);
}

static void test_data_lock_admits_one_holder(void **state)
{
    struct auth_data_locks locks;
    pthread_t threads[TEST_THREADS];
    struct waiter_arg arg;
    atomic_int inside = 0;
    atomic_int overlaps = 0;
    atomic_int failures = 0;
    unsigned entries = 0;
    unsigned waiting = 0;

    (void)state;
    assert_int_equal(auth_data_locks_init(&locks), CJ_OK);
    arg =
        (struct waiter_arg){&locks, &inside, &overlaps, &failures, TEST_ROUNDS};
    for (int i = 0; i < TEST_THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, waiter_main, &arg),
                         0);
    }
    for (int i = 0; i < TEST_THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&overlaps), 0);
    auth_data_locks_read(&locks, &entries, &waiting);
    assert_int_equal(entries, 0);
    assert_int_equal(waiting, 0);
    auth_data_locks_destroy(&locks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_lock_free_key_taken_and_freed),
        cmocka_unit_test(test_data_lock_rejects_when_deadline_too_close),
        cmocka_unit_test(test_data_lock_wait_runs_out),
        cmocka_unit_test(test_data_lock_bounds_waiters),
        cmocka_unit_test(test_data_lock_bounds_total_waiters),
        cmocka_unit_test(test_data_lock_admits_one_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

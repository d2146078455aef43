/* Tests for the password gate: slot bound, waiter bound, timed waits,
 * callers that are gone, and the Retry-After of a rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "auth_password_gate.h"

#define TEST_SLOTS          2
#define TEST_THREADS        8
#define TEST_ROUNDS         200
#define TEST_SHORT_WAIT_MS  20
#define TEST_LONG_WAIT_MS   2000
#define TEST_THREAD_WAIT_MS 5000
#define TEST_HOLD_MS        30
#define US_PER_MS           1000
/* A wait budget left after the reply margin, in ms. */
#define TEST_WAIT_MS 50
/* A slow average hold time, in ms. */
#define TEST_SLOW_HOLD_MS 1000

/* Returns the monotonic clock in ms. */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_gate_refuses_when_waiters_full(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot first;
    struct auth_password_slot second;
    struct auth_password_slot third;
    unsigned running = 0;
    unsigned peak = 0;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, TEST_SLOTS, 0), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &first), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &second), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, TEST_LONG_WAIT_MS, &third),
                     CJ_ERR_UNAVAILABLE);
    assert_string_equal(third.shed_reason, AUTH_PASSWORD_SHED_LINE_FULL);
    /* Nothing measured yet: the rejection still names a wait. */
    assert_int_equal(third.retry_after_s, AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, TEST_SLOTS);
    assert_int_equal(peak, TEST_SLOTS);
    auth_password_gate_leave(&gate, &first);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &third), CJ_OK);
    assert_int_equal(third.retry_after_s, 0);
    auth_password_gate_leave(&gate, &second);
    auth_password_gate_leave(&gate, &third);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, 0);
    auth_password_gate_destroy(&gate);
}

static void test_gate_sheds_wait_past_deadline(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot held;
    struct auth_password_slot other;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, 1, 1), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &held), CJ_OK);
    /* Less time than the reply margin: no wait could end in time. */
    assert_int_equal(
        auth_password_gate_enter(&gate, TEST_SHORT_WAIT_MS, &other),
        CJ_ERR_UNAVAILABLE);
    assert_string_equal(other.shed_reason, AUTH_PASSWORD_SHED_DEADLINE);
    assert_int_equal(other.retry_after_s, AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S);
    /* A deadline already past is shed as well. */
    assert_int_equal(auth_password_gate_enter(&gate, -1, &other),
                     CJ_ERR_UNAVAILABLE);
    /* A wait that runs out is shed before the deadline, not at it. */
    int64_t started = now_ms();
    assert_int_equal(
        auth_password_gate_enter(
            &gate, AUTH_PASSWORD_GATE_REPLY_MARGIN_MS + TEST_WAIT_MS, &other),
        CJ_ERR_UNAVAILABLE);
    assert_true(now_ms() - started <
                AUTH_PASSWORD_GATE_REPLY_MARGIN_MS + TEST_WAIT_MS);
    assert_string_equal(other.shed_reason, AUTH_PASSWORD_SHED_DEADLINE);
    auth_password_gate_leave(&gate, &held);
    auth_password_gate_destroy(&gate);
}

static void test_gate_sheds_line_slower_than_deadline(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot held;
    struct auth_password_slot other;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, 1, 4), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &held), CJ_OK);
    /* Each hold takes a second: a caller with two seconds left cannot
     * get the slot and still hash before its deadline. */
    gate.hold_avg_us = TEST_SLOW_HOLD_MS * US_PER_MS;
    int64_t started = now_ms();
    assert_int_equal(
        auth_password_gate_enter(&gate, 2 * TEST_SLOW_HOLD_MS, &other),
        CJ_ERR_UNAVAILABLE);
    /* Shed at once, without waiting. */
    assert_true(now_ms() - started < TEST_SLOW_HOLD_MS);
    assert_string_equal(other.shed_reason, AUTH_PASSWORD_SHED_DEADLINE);
    assert_true(other.retry_after_s >= 1);
    auth_password_gate_leave(&gate, &held);
    auth_password_gate_destroy(&gate);
}

struct worker_args {
    struct auth_password_gate *gate;
    atomic_uint inside;
    atomic_uint most_inside;
    atomic_uint entered;
};

static void *worker(void *arg)
{
    struct worker_args *w = arg;
    struct auth_password_slot slot;

    for (int i = 0; i < TEST_ROUNDS; i++) {
        if (auth_password_gate_enter(w->gate, TEST_THREAD_WAIT_MS, &slot) !=
            CJ_OK) {
            continue;
        }
        unsigned now = atomic_fetch_add(&w->inside, 1) + 1;
        unsigned seen = atomic_load(&w->most_inside);
        while (now > seen &&
               !atomic_compare_exchange_weak(&w->most_inside, &seen, now)) {
        }
        atomic_fetch_add(&w->entered, 1);
        atomic_fetch_sub(&w->inside, 1);
        auth_password_gate_leave(w->gate, &slot);
    }
    return NULL;
}

static void test_gate_never_admits_more_than_its_slots(void **state)
{
    struct auth_password_gate gate;
    struct worker_args w = {.gate = &gate};
    pthread_t threads[TEST_THREADS];
    unsigned running = 0;
    unsigned peak = 0;

    (void)state;
    assert_int_equal(
        auth_password_gate_init(&gate, TEST_SLOTS, TEST_THREADS - TEST_SLOTS),
        CJ_OK);
    for (int i = 0; i < TEST_THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &w), 0);
    }
    for (int i = 0; i < TEST_THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    assert_true(atomic_load(&w.most_inside) <= TEST_SLOTS);
    /* Every thread could wait, so every round got in. */
    assert_int_equal(atomic_load(&w.entered), TEST_THREADS * TEST_ROUNDS);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, 0);
    assert_true(peak >= 1 && peak <= TEST_SLOTS);
    auth_password_gate_destroy(&gate);
}

static void test_retry_after_covers_the_line(void **state)
{
    static const struct {
        unsigned queued;
        unsigned slots;
        int64_t hold_avg_us;
        long long expected_s;
    } cases[] = {
        /* Nothing measured yet. */
        {34, 2, 0, AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S},
        /* 17 rounds of 26 ms: 0.44 s, rounded up to the minimum. */
        {34, 2, 26000, 1},
        /* 10 rounds of 250 ms: exactly 2.5 s, rounded up. */
        {20, 2, 250000, 3},
        /* A partial round counts whole: 3 callers on 2 slots, 1 s each. */
        {3, 2, 1000000, 2},
        /* 1000 rounds of 2 s: kept at the maximum. */
        {1000, 1, 2000000, AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S},
        /* A hold time large enough to overflow a naive product. */
        {4, 1, INT64_MAX / 2, AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S},
        /* Zero slots is read as one. */
        {2, 0, 1000000, 2},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(auth_password_gate_retry_after_s(cases[i].queued,
                                                          cases[i].slots,
                                                          cases[i].hold_avg_us),
                         cases[i].expected_s);
    }
}

static void sleep_ms(long ms)
{
    struct timespec pause = {.tv_sec = ms / 1000,
                             .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&pause, NULL);
}

static bool flag_gone(const void *arg)
{
    return atomic_load((const atomic_bool *)arg);
}

static void test_gate_sheds_gone_caller_at_once(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot slot;
    atomic_bool gone = true;
    unsigned running = 0;
    unsigned peak = 0;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, TEST_SLOTS, 1), CJ_OK);
    assert_int_equal(auth_password_gate_enter_unless_gone(
                         &gate, TEST_LONG_WAIT_MS, flag_gone, &gone, &slot),
                     CJ_ERR_UNAVAILABLE);
    assert_string_equal(slot.shed_reason, AUTH_PASSWORD_SHED_CANCELLED);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, 0);
    auth_password_gate_destroy(&gate);
}

/* A waiter that enters a full gate with its own gone flag. */
struct gone_waiter {
    struct auth_password_gate *gate;
    atomic_bool gone;
    struct auth_password_slot slot;
    enum cj_status rc;
    int64_t waited_ms;
};

static void *gone_waiter_run(void *arg)
{
    struct gone_waiter *w = arg;
    int64_t started = now_ms();

    w->rc = auth_password_gate_enter_unless_gone(w->gate, TEST_LONG_WAIT_MS,
                                                 flag_gone, &w->gone, &w->slot);
    w->waited_ms = now_ms() - started;
    if (w->rc == CJ_OK) {
        auth_password_gate_leave(w->gate, &w->slot);
    }
    return NULL;
}

static void test_gate_sheds_waiter_once_gone(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot held;
    struct gone_waiter w;
    pthread_t thread;

    (void)state;
    memset(&w, 0, sizeof(w));
    w.gate = &gate;
    atomic_init(&w.gone, false);
    assert_int_equal(auth_password_gate_init(&gate, 1, 1), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &held), CJ_OK);
    assert_int_equal(pthread_create(&thread, NULL, gone_waiter_run, &w), 0);
    sleep_ms(TEST_HOLD_MS);
    atomic_store(&w.gone, true);
    /* The freed slot wakes the waiter. Its caller is gone, so it leaves
     * without the slot, long before its budget of TEST_LONG_WAIT_MS. */
    auth_password_gate_leave(&gate, &held);
    pthread_join(thread, NULL);
    assert_int_equal(w.rc, CJ_ERR_UNAVAILABLE);
    assert_string_equal(w.slot.shed_reason, AUTH_PASSWORD_SHED_CANCELLED);
    assert_true(w.waited_ms < TEST_LONG_WAIT_MS / 2);
    assert_int_equal(gate.waiting, 0);
    assert_int_equal(gate.running, 0);
    auth_password_gate_destroy(&gate);
}

static void test_gate_gone_waiter_passes_slot_on(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot held;
    struct gone_waiter leaving;
    struct gone_waiter staying;
    pthread_t threads[2];

    (void)state;
    memset(&leaving, 0, sizeof(leaving));
    memset(&staying, 0, sizeof(staying));
    leaving.gate = &gate;
    staying.gate = &gate;
    atomic_init(&leaving.gone, false);
    atomic_init(&staying.gone, false);
    assert_int_equal(auth_password_gate_init(&gate, 1, 2), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &held), CJ_OK);
    assert_int_equal(
        pthread_create(&threads[0], NULL, gone_waiter_run, &leaving), 0);
    assert_int_equal(
        pthread_create(&threads[1], NULL, gone_waiter_run, &staying), 0);
    sleep_ms(TEST_HOLD_MS);
    /* Whichever waiter the freed slot's signal wakes, the one still
     * waiting gets the slot well within its budget. */
    atomic_store(&leaving.gone, true);
    auth_password_gate_leave(&gate, &held);
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    assert_int_equal(staying.rc, CJ_OK);
    assert_true(staying.waited_ms < TEST_LONG_WAIT_MS / 2);
    assert_int_equal(gate.waiting, 0);
    assert_int_equal(gate.running, 0);
    auth_password_gate_destroy(&gate);
}

static void test_gate_measures_hold_time(void **state)
{
    struct auth_password_gate gate;
    struct auth_password_slot slot;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, 1, 0), CJ_OK);
    assert_int_equal(gate.hold_avg_us, 0);
    assert_int_equal(auth_password_gate_enter(&gate, 0, &slot), CJ_OK);
    sleep_ms(TEST_HOLD_MS);
    auth_password_gate_leave(&gate, &slot);
    /* The first sample is taken as it is, and a sleep lasts at least as
     * long as requested. */
    assert_true(gate.hold_avg_us >= TEST_HOLD_MS * US_PER_MS);
    assert_true(gate.hold_avg_us <
                AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S * 1000LL * US_PER_MS);
    auth_password_gate_destroy(&gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_refuses_when_waiters_full),
        cmocka_unit_test(test_gate_sheds_wait_past_deadline),
        cmocka_unit_test(test_gate_sheds_line_slower_than_deadline),
        cmocka_unit_test(test_gate_never_admits_more_than_its_slots),
        cmocka_unit_test(test_retry_after_covers_the_line),
        cmocka_unit_test(test_gate_measures_hold_time),
        cmocka_unit_test(test_gate_sheds_gone_caller_at_once),
        cmocka_unit_test(test_gate_sheds_waiter_once_gone),
        cmocka_unit_test(test_gate_gone_waiter_passes_slot_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the password gate: slot bound, waiter bound, timed waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "auth_password_gate.h"

#define TEST_SLOTS          2
#define TEST_THREADS        8
#define TEST_ROUNDS         200
#define TEST_SHORT_WAIT_MS  20
#define TEST_THREAD_WAIT_MS 5000

static void test_gate_refuses_when_waiters_full(void **state)
{
    struct auth_password_gate gate;
    unsigned running = 0;
    unsigned peak = 0;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, TEST_SLOTS, 0), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, TEST_SHORT_WAIT_MS),
                     CJ_ERR_UNAVAILABLE);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, TEST_SLOTS);
    assert_int_equal(peak, TEST_SLOTS);
    auth_password_gate_leave(&gate);
    assert_int_equal(auth_password_gate_enter(&gate, 0), CJ_OK);
    auth_password_gate_leave(&gate);
    auth_password_gate_leave(&gate);
    auth_password_gate_read(&gate, &running, &peak);
    assert_int_equal(running, 0);
    auth_password_gate_destroy(&gate);
}

static void test_gate_wait_ends_at_its_deadline(void **state)
{
    struct auth_password_gate gate;

    (void)state;
    assert_int_equal(auth_password_gate_init(&gate, 1, 1), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, 0), CJ_OK);
    assert_int_equal(auth_password_gate_enter(&gate, TEST_SHORT_WAIT_MS),
                     CJ_ERR_TIMEOUT);
    /* A deadline already past refuses without waiting. */
    assert_int_equal(auth_password_gate_enter(&gate, -1), CJ_ERR_TIMEOUT);
    auth_password_gate_leave(&gate);
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

    for (int i = 0; i < TEST_ROUNDS; i++) {
        if (auth_password_gate_enter(w->gate, TEST_THREAD_WAIT_MS) != CJ_OK) {
            continue;
        }
        unsigned now = atomic_fetch_add(&w->inside, 1) + 1;
        unsigned seen = atomic_load(&w->most_inside);
        while (now > seen &&
               !atomic_compare_exchange_weak(&w->most_inside, &seen, now)) {
        }
        atomic_fetch_add(&w->entered, 1);
        atomic_fetch_sub(&w->inside, 1);
        auth_password_gate_leave(w->gate);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_refuses_when_waiters_full),
        cmocka_unit_test(test_gate_wait_ends_at_its_deadline),
        cmocka_unit_test(test_gate_never_admits_more_than_its_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

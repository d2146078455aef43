/* Tests for common/slot_pool.c: which slot take returns, timeouts when all
 * are taken, and a waiting taker that gets a slot given back. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "slot_pool.h"

#define TEST_SLOTS 4
/* A waiting taker's timeout, far longer than the test needs. */
#define TEST_LONG_WAIT_MS 10000

/* The owner of the test pools: which slots count as open. */
struct test_owner {
    bool open[TEST_SLOTS];
};

static bool test_is_open(const void *owner, unsigned index)
{
    const struct test_owner *o = owner;
    return o->open[index];
}

static void test_init_rejects_zero_slots(void **state)
{
    struct test_owner owner = {0};
    struct cj_slot_pool pool;

    (void)state;
    assert_int_equal(cj_slot_pool_init(&pool, 0, test_is_open, &owner),
                     CJ_ERR_INVALID);
}

static void test_take_prefers_open_slot(void **state)
{
    struct test_owner owner = {.open = {false, false, true, false}};
    struct cj_slot_pool pool;
    unsigned slot = 99;

    (void)state;
    assert_int_equal(cj_slot_pool_init(&pool, TEST_SLOTS, test_is_open, &owner),
                     CJ_OK);
    assert_int_equal(cj_slot_pool_take(&pool, 0, &slot), CJ_OK);
    assert_int_equal(slot, 2);
    cj_slot_pool_give_back(&pool, slot);
    cj_slot_pool_destroy(&pool);
}

static void test_take_falls_back_to_first_free(void **state)
{
    struct test_owner owner = {0};
    struct cj_slot_pool pool;
    unsigned first = 99;
    unsigned second = 99;

    (void)state;
    assert_int_equal(cj_slot_pool_init(&pool, TEST_SLOTS, test_is_open, &owner),
                     CJ_OK);
    assert_int_equal(cj_slot_pool_take(&pool, 0, &first), CJ_OK);
    assert_int_equal(first, 0);
    assert_int_equal(cj_slot_pool_take(&pool, 0, &second), CJ_OK);
    assert_int_equal(second, 1);
    cj_slot_pool_give_back(&pool, first);
    cj_slot_pool_give_back(&pool, second);
    cj_slot_pool_destroy(&pool);
}

static void test_take_times_out_when_all_taken(void **state)
{
    struct test_owner owner = {.open = {true, true, true, true}};
    struct cj_slot_pool pool;
    bool seen[TEST_SLOTS] = {false};
    unsigned slot = 99;

    (void)state;
    assert_int_equal(cj_slot_pool_init(&pool, TEST_SLOTS, test_is_open, &owner),
                     CJ_OK);
    for (unsigned i = 0; i < TEST_SLOTS; i++) {
        assert_int_equal(cj_slot_pool_take(&pool, 0, &slot), CJ_OK);
        assert_true(slot < TEST_SLOTS);
        assert_false(seen[slot]);
        seen[slot] = true;
    }
    assert_int_equal(cj_slot_pool_take(&pool, 0, &slot), CJ_ERR_TIMEOUT);
    assert_int_equal(cj_slot_pool_take(&pool, 10, &slot), CJ_ERR_TIMEOUT);
    for (unsigned i = 0; i < TEST_SLOTS; i++) {
        cj_slot_pool_give_back(&pool, i);
    }
    cj_slot_pool_destroy(&pool);
}

struct test_waiter {
    struct cj_slot_pool *pool;
    enum cj_status status;
    unsigned slot;
};

static void *test_wait_for_slot(void *arg)
{
    struct test_waiter *w = arg;
    w->status = cj_slot_pool_take(w->pool, TEST_LONG_WAIT_MS, &w->slot);
    return NULL;
}

static void test_waiter_gets_given_back_slot(void **state)
{
    struct test_owner owner = {0};
    struct cj_slot_pool pool;
    struct test_waiter waiter = {.pool = &pool, .status = CJ_ERR_INTERNAL};
    pthread_t thread;
    unsigned slot = 99;

    (void)state;
    assert_int_equal(cj_slot_pool_init(&pool, 1, test_is_open, &owner), CJ_OK);
    assert_int_equal(cj_slot_pool_take(&pool, 0, &slot), CJ_OK);
    assert_int_equal(pthread_create(&thread, NULL, test_wait_for_slot, &waiter),
                     0);
    cj_slot_pool_give_back(&pool, slot);
    assert_int_equal(pthread_join(thread, NULL), 0);

    assert_int_equal(waiter.status, CJ_OK);
    assert_int_equal(waiter.slot, 0);
    cj_slot_pool_give_back(&pool, waiter.slot);
    cj_slot_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_zero_slots),
        cmocka_unit_test(test_take_prefers_open_slot),
        cmocka_unit_test(test_take_falls_back_to_first_free),
        cmocka_unit_test(test_take_times_out_when_all_taken),
        cmocka_unit_test(test_waiter_gets_given_back_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests for the leased rate-limit batches. The Redis script call
 * (gw_ratelimit_take_many) is replaced at link time (-Wl,--wrap=) by a
 * double that keeps one bucket per client IP as a plain count of requests
 * left; the script itself is tested against Redis in test_gw_redis.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "gw_rate_lease.h"
#include "gw_wraps.h"

#define TEST_CLIENTS_MAX 4
/* Retry-After that the double returns with a rejection, in seconds. */
#define TEST_RETRY_AFTER_SECONDS 7
/* Threads and requests per thread of the concurrent test. */
#define TEST_THREADS             8
#define TEST_REQUESTS_PER_THREAD 500

struct test_bucket {
    const char *client_ip;
    unsigned left;
};

static struct test_bucket buckets[TEST_CLIENTS_MAX];
static size_t bucket_count;
static enum cj_status redis_status; /* a failure the double returns */
static unsigned redis_calls;
static unsigned largest_count;
/* The lease table calls the double from many threads at once. */
static pthread_mutex_t double_lock = PTHREAD_MUTEX_INITIALIZER;

static struct test_bucket *bucket_for(const char *client_ip)
{
    for (size_t i = 0; i < bucket_count; i++) {
        if (strcmp(buckets[i].client_ip, client_ip) == 0) {
            return &buckets[i];
        }
    }
    fail_msg("no bucket for client %s", client_ip);
    return NULL;
}

enum cj_status
__wrap_gw_ratelimit_take_many(struct gw_redis *redis, const char *bucket,
                              const char *client_ip, unsigned per_minute,
                              unsigned burst, unsigned max_count,
                              unsigned *granted, unsigned *retry_after_s)
{
    struct test_bucket *b;
    enum cj_status status = CJ_OK;

    pthread_mutex_lock(&double_lock);
    b = bucket_for(client_ip);
    (void)redis;
    (void)bucket;
    (void)per_minute;
    (void)burst;
    redis_calls++;
    if (max_count > largest_count) {
        largest_count = max_count;
    }
    *granted = 0;
    *retry_after_s = 0;
    if (redis_status != CJ_OK) {
        status = redis_status;
    } else if (b->left == 0) {
        *retry_after_s = TEST_RETRY_AFTER_SECONDS;
        status = CJ_ERR_RATE_LIMITED;
    } else {
        *granted = max_count < b->left ? max_count : b->left;
        b->left -= *granted;
    }
    pthread_mutex_unlock(&double_lock);
    return status;
}

static int setup(void **state)
{
    memset(buckets, 0, sizeof(buckets));
    bucket_count = 0;
    redis_status = CJ_OK;
    redis_calls = 0;
    largest_count = 0;
    *state = gw_rate_leases_new();
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    gw_rate_leases_free(*state);
    return 0;
}

static void add_client(const char *client_ip, unsigned left)
{
    assert_true(bucket_count < TEST_CLIENTS_MAX);
    buckets[bucket_count].client_ip = client_ip;
    buckets[bucket_count].left = left;
    bucket_count++;
}

/* Sends `count` requests as fast as possible; returns how many passed. */
static unsigned take_many_times(struct gw_rate_leases *leases,
                                const char *client_ip, unsigned burst,
                                unsigned count)
{
    unsigned admitted = 0;
    unsigned retry_after = 0;

    for (unsigned i = 0; i < count; i++) {
        if (gw_rate_leases_take(leases, NULL, "api", client_ip, 60, burst,
                                &retry_after) == CJ_OK) {
            admitted++;
        }
    }
    return admitted;
}

static void test_first_request_leases_one(void **state)
{
    unsigned retry_after = 99;

    add_client("192.0.2.1", 100);
    assert_int_equal(gw_rate_leases_take(*state, NULL, "api", "192.0.2.1", 60,
                                         1000, &retry_after),
                     CJ_OK);
    assert_int_equal(redis_calls, 1);
    assert_int_equal(largest_count, 1);
    assert_int_equal(retry_after, 0);
    assert_int_equal(buckets[0].left, 99);
}

static void test_fast_client_batches_grow(void **state)
{
    unsigned held_max = GW_RATE_LEASE_BATCH_MAX +
                        GW_RATE_LEASE_BATCH_MAX / GW_RATE_LEASE_REFILL_DIVISOR;

    add_client("192.0.2.1", 1000);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 200), 200);
    assert_int_equal(largest_count, GW_RATE_LEASE_BATCH_MAX);
    /* Batches of 1, 2, 4 and 8, then batches of 16 for the rest. */
    assert_true(redis_calls <= 4 + 200 / 16 + 1);
    /* Redis counted every admitted request, plus what the table holds. */
    assert_true(1000 - buckets[0].left >= 200);
    assert_true(1000 - buckets[0].left <= 200 + held_max);
}

static void test_batch_capped_by_burst(void **state)
{
    add_client("192.0.2.1", 1000);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 8, 50), 50);
    assert_int_equal(largest_count, 8 / GW_RATE_LEASE_BURST_DIVISOR);
}

static void test_admits_only_what_redis_grants(void **state)
{
    unsigned retry_after = 0;

    add_client("192.0.2.1", 20);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 100), 20);
    assert_int_equal(buckets[0].left, 0);
    /* A rejected client stays rejected, with Redis's Retry-After. */
    assert_int_equal(gw_rate_leases_take(*state, NULL, "api", "192.0.2.1", 60,
                                         1000, &retry_after),
                     CJ_ERR_RATE_LIMITED);
    assert_int_equal(retry_after, TEST_RETRY_AFTER_SECONDS);
}

static void test_clients_have_separate_leases(void **state)
{
    add_client("192.0.2.1", 1000);
    add_client("192.0.2.2", 3);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 40), 40);
    assert_int_equal(take_many_times(*state, "192.0.2.2", 1000, 10), 3);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 10), 10);
}

static void test_redis_failure_fails_closed(void **state)
{
    unsigned retry_after = 0;

    add_client("192.0.2.1", 1000);
    redis_status = CJ_ERR_UNAVAILABLE;
    assert_int_equal(gw_rate_leases_take(*state, NULL, "api", "192.0.2.1", 60,
                                         1000, &retry_after),
                     CJ_ERR_UNAVAILABLE);
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 5), 0);
}

static void test_unspent_lease_expires(void **state)
{
    unsigned retry_after = 0;

    add_client("192.0.2.1", 1000);
    /* 1 + 2 + 4 + 8 + 16 = 31 leased and 20 spent, so 11 are left. */
    assert_int_equal(take_many_times(*state, "192.0.2.1", 1000, 20), 20);
    redis_status = CJ_ERR_UNAVAILABLE;
    assert_int_equal(gw_rate_leases_take(*state, NULL, "api", "192.0.2.1", 60,
                                         1000, &retry_after),
                     CJ_OK);
    usleep((GW_RATE_LEASE_TTL_MS + 200) * 1000);
    assert_int_equal(gw_rate_leases_take(*state, NULL, "api", "192.0.2.1", 60,
                                         1000, &retry_after),
                     CJ_ERR_UNAVAILABLE);
}

struct test_worker {
    struct gw_rate_leases *leases;
    unsigned admitted;
};

static void *run_worker(void *arg)
{
    struct test_worker *worker = arg;

    worker->admitted = take_many_times(worker->leases, "192.0.2.1", 100000,
                                       TEST_REQUESTS_PER_THREAD);
    return NULL;
}

/* Runs TEST_THREADS threads of TEST_REQUESTS_PER_THREAD requests each for
 * one client; returns how many passed in all. */
static unsigned take_from_threads(struct gw_rate_leases *leases)
{
    pthread_t threads[TEST_THREADS];
    struct test_worker workers[TEST_THREADS];
    unsigned admitted = 0;

    for (size_t i = 0; i < TEST_THREADS; i++) {
        workers[i].leases = leases;
        workers[i].admitted = 0;
        assert_int_equal(
            pthread_create(&threads[i], NULL, run_worker, &workers[i]), 0);
    }
    for (size_t i = 0; i < TEST_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        admitted += workers[i].admitted;
    }
    return admitted;
}

static void test_threads_admit_exactly_the_budget(void **state)
{
    add_client("192.0.2.1", 1000);
    assert_int_equal(take_from_threads(*state), 1000);
    assert_int_equal(buckets[0].left, 0);
}

static void test_threads_share_batches(void **state)
{
    unsigned total = TEST_THREADS * TEST_REQUESTS_PER_THREAD;
    unsigned held_max = GW_RATE_LEASE_BATCH_MAX +
                        GW_RATE_LEASE_BATCH_MAX / GW_RATE_LEASE_REFILL_DIVISOR;

    add_client("192.0.2.1", 100000);
    assert_int_equal(take_from_threads(*state), total);
    assert_true(100000 - buckets[0].left >= total);
    assert_true(100000 - buckets[0].left <= total + held_max);
    /* Waiting for another thread's refill, not one call per request. */
    assert_true(redis_calls < total / 2);
}

static void test_without_table_each_request_calls_redis(void **state)
{
    (void)state;
    add_client("192.0.2.1", 1000);
    assert_int_equal(take_many_times(NULL, "192.0.2.1", 1000, 10), 10);
    assert_int_equal(redis_calls, 10);
    assert_int_equal(largest_count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_request_leases_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fast_client_batches_grow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_capped_by_burst, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admits_only_what_redis_grants,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_have_separate_leases,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_failure_fails_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unspent_lease_expires, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threads_admit_exactly_the_budget,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_batches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_without_table_each_request_calls_redis, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the load generator's histogram and loopback checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>

#include "bench_hist.h"
#include "bench_loopback.h"

static void test_hist_small_values_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < BENCH_HIST_EXACT_LIMIT; v++) {
        assert_int_equal(bench_hist_index(v), v);
        assert_int_equal(bench_hist_bucket_upper(bench_hist_index(v)), v);
    }
}

static void test_hist_bucket_bounds_value(void **state)
{
    (void)state;
    /* Every value lies in its bucket, within 1/64 of the upper edge. */
    for (uint64_t v = 100; v < UINT64_C(1) << 50; v = v * 3 / 2 + 7) {
        size_t i = bench_hist_index(v);
        uint64_t upper = bench_hist_bucket_upper(i);

        assert_true(i < BENCH_HIST_BUCKETS);
        assert_true(upper >= v);
        assert_true((double)(upper - v) <= (double)v / 64.0 + 1.0);
        if (i > 0) {
            assert_true(bench_hist_bucket_upper(i - 1) < v);
        }
    }
    assert_true(bench_hist_index(UINT64_MAX) < BENCH_HIST_BUCKETS);
}

static void test_hist_percentiles_of_uniform(void **state)
{
    struct bench_hist *h = malloc(sizeof(*h));

    (void)state;
    assert_non_null(h);
    bench_hist_init(h);
    /* 1..10000 microseconds, in nanoseconds. */
    for (uint64_t us = 1; us <= 10000; us++)
        bench_hist_record(h, us * 1000);
    assert_int_equal(h->total, 10000);
    assert_int_equal(h->min_ns, 1000);
    assert_int_equal(h->max_ns, 10000000);
    uint64_t p50 = bench_hist_percentile(h, 50);
    uint64_t p99 = bench_hist_percentile(h, 99);
    assert_true(p50 >= 5000000 && p50 <= 5000000 + 5000000 / 64);
    assert_true(p99 >= 9900000 && p99 <= 9900000 + 9900000 / 64);
    assert_int_equal(bench_hist_percentile(h, 100), 10000000);
    assert_int_equal(bench_hist_percentile(h, 0), 1000);
    free(h);
}

static void test_hist_merge_adds_counts(void **state)
{
    struct bench_hist *a = malloc(sizeof(*a));
    struct bench_hist *b = malloc(sizeof(*b));

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    bench_hist_init(a);
    bench_hist_init(b);
    bench_hist_record(a, 10);
    bench_hist_record(b, 1000000);
    bench_hist_record(b, 20);
    bench_hist_merge(a, b);
    assert_int_equal(a->total, 3);
    assert_int_equal(a->min_ns, 10);
    assert_int_equal(a->max_ns, 1000000);
    assert_int_equal(bench_hist_percentile(a, 50), 20);
    free(a);
    free(b);
}

static void test_hist_empty_percentile_zero(void **state)
{
    struct bench_hist *h = malloc(sizeof(*h));

    (void)state;
    assert_non_null(h);
    bench_hist_init(h);
    assert_int_equal(bench_hist_percentile(h, 99), 0);
    free(h);
}

static void test_url_loopback_only(void **state)
{
    (void)state;
    assert_true(bench_url_is_loopback("http://127.0.0.1:8080"));
    assert_true(bench_url_is_loopback("http://127.9.9.9/x"));
    assert_true(bench_url_is_loopback("http://localhost:80/"));
    assert_true(bench_url_is_loopback("http://[::1]:8080/path"));
    assert_false(bench_url_is_loopback("http://192.0.2.1:8080"));
    assert_false(bench_url_is_loopback("https://127.0.0.1:8443"));
    assert_false(bench_url_is_loopback("http://127.0.0.1.example.com/"));
    assert_false(bench_url_is_loopback("http://127.0.0.1@192.0.2.1/"));
    assert_false(bench_url_is_loopback("http://[2001:db8::1]:80/"));
    assert_false(bench_url_is_loopback("ftp://127.0.0.1/"));
}

static void test_grpc_target_loopback_only(void **state)
{
    (void)state;
    assert_true(bench_grpc_target_is_loopback("127.0.0.1:50051"));
    assert_true(bench_grpc_target_is_loopback("localhost:50051"));
    assert_true(bench_grpc_target_is_loopback("[::1]:50051"));
    assert_true(
        bench_grpc_target_is_loopback("127.0.0.1:50051,127.0.0.2:50051"));
    assert_false(
        bench_grpc_target_is_loopback("127.0.0.1:50051,192.0.2.1:50051"));
    assert_false(bench_grpc_target_is_loopback("auth.example:50051"));
    assert_false(bench_grpc_target_is_loopback(""));
}

static void test_pg_dsn_loopback_only(void **state)
{
    (void)state;
    assert_true(bench_pg_dsn_is_loopback("host=127.0.0.1 port=5432"));
    assert_true(bench_pg_dsn_is_loopback("host=/var/run/postgresql"));
    assert_true(bench_pg_dsn_is_loopback("hostaddr=::1 dbname=x"));
    assert_false(bench_pg_dsn_is_loopback("host=192.0.2.1"));
    assert_false(bench_pg_dsn_is_loopback("host=127.0.0.1,db.example"));
    assert_false(bench_pg_dsn_is_loopback("dbname=x"));
    assert_false(bench_pg_dsn_is_loopback("postgresql://192.0.2.1/x"));
    assert_true(bench_pg_dsn_is_loopback("postgresql://127.0.0.1:5432/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_small_values_exact),
        cmocka_unit_test(test_hist_bucket_bounds_value),
        cmocka_unit_test(test_hist_percentiles_of_uniform),
        cmocka_unit_test(test_hist_merge_adds_counts),
        cmocka_unit_test(test_hist_empty_percentile_zero),
        cmocka_unit_test(test_url_loopback_only),
        cmocka_unit_test(test_grpc_target_loopback_only),
        cmocka_unit_test(test_pg_dsn_loopback_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

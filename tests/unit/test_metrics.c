/* Tests for the Prometheus registry and its text format. The /metrics
 * server is tested in test_metrics_http.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static void test_render_counter_and_gauge(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    assert_non_null(reg);
    struct cj_metric *c = cj_metrics_counter(reg, "cerrojo_requests_total",
                                             "Requests handled.", NULL, 0);
    struct cj_metric *g =
        cj_metrics_gauge(reg, "cerrojo_clock_offset_seconds",
                         "Offset to the store clock.", NULL, 0);
    assert_non_null(c);
    assert_non_null(g);
    cj_counter_inc(c);
    cj_counter_add(cj_metric_series(c, NULL), 2);
    cj_gauge_set(cj_metric_series(g, NULL), 0.25);
    cj_gauge_add(cj_metric_series(g, NULL), -1.0);

    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(text);
    assert_string_equal(text, "# HELP cerrojo_requests_total Requests "
                              "handled.\n"
                              "# TYPE cerrojo_requests_total counter\n"
                              "cerrojo_requests_total 3\n"
                              "# HELP cerrojo_clock_offset_seconds Offset "
                              "to the store clock.\n"
                              "# TYPE cerrojo_clock_offset_seconds gauge\n"
                              "cerrojo_clock_offset_seconds -0.75\n");
    free(text);
    cj_metrics_free(reg);
}

static void test_render_histogram_cumulative(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    const double bounds[] = {0.005, 0.1, 1};
    const char *labels[] = {"method"};
    struct cj_metric *h = cj_metrics_histogram(
        reg, "cerrojo_rpc_seconds", "RPC latency.", labels, 1, bounds, 3);
    assert_non_null(h);
    const char *wrap[] = {"Wrap"};
    struct cj_series *s = cj_metric_series(h, wrap);
    cj_histogram_observe(s, 0.00390625);
    cj_histogram_observe(s, 0.0625);
    cj_histogram_observe(s, 0.5);
    cj_histogram_observe(s, 30);

    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(text);
    assert_string_equal(
        text, "# HELP cerrojo_rpc_seconds RPC latency.\n"
              "# TYPE cerrojo_rpc_seconds histogram\n"
              "cerrojo_rpc_seconds_bucket{method=\"Wrap\",le=\"0.005\"} 1\n"
              "cerrojo_rpc_seconds_bucket{method=\"Wrap\",le=\"0.1\"} 2\n"
              "cerrojo_rpc_seconds_bucket{method=\"Wrap\",le=\"1\"} 3\n"
              "cerrojo_rpc_seconds_bucket{method=\"Wrap\",le=\"+Inf\"} 4\n"
              "cerrojo_rpc_seconds_sum{method=\"Wrap\"} 30.56640625\n"
              "cerrojo_rpc_seconds_count{method=\"Wrap\"} 4\n");
    free(text);
    cj_metrics_free(reg);
}

static void test_label_values_and_help_escaped(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    const char *labels[] = {"route"};
    struct cj_metric *c =
        cj_metrics_counter(reg, "x_total", "a\\b\nc", labels, 1);
    const char *odd[] = {"a\"b\\c\nd"};
    cj_counter_inc(NULL);
    cj_counter_add(cj_metric_series(c, odd), 1);
    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(strstr(text, "# HELP x_total a\\\\b\\nc\n"));
    assert_non_null(strstr(text, "x_total{route=\"a\\\"b\\\\c\\nd\"} 1\n"));
    free(text);
    cj_metrics_free(reg);
}

static void test_series_beyond_limit_go_to_overflow(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    const char *labels[] = {"code"};
    struct cj_metric *c =
        cj_metrics_counter(reg, "codes_total", "Codes.", labels, 1);
    char value[32];
    const char *values[] = {value};
    for (int i = 0; i < CJ_METRICS_MAX_SERIES + 10; i++) {
        snprintf(value, sizeof(value), "v%d", i);
        cj_counter_add(cj_metric_series(c, values), 1);
    }
    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(strstr(text, "codes_total{code=\"v0\"} 1\n"));
    snprintf(value, sizeof(value), "codes_total{code=\"v%d\"} 1\n",
             CJ_METRICS_MAX_SERIES - 1);
    assert_non_null(strstr(text, value));
    snprintf(value, sizeof(value), "code=\"v%d\"", CJ_METRICS_MAX_SERIES);
    assert_null(strstr(text, value));
    assert_non_null(strstr(text, "codes_total{code=\"other\"} 10\n"));
    free(text);
    cj_metrics_free(reg);
}

static void test_registration_rejects_bad_input(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    const char *bad_label[] = {"le"};
    const char *dash_label[] = {"a-b"};
    const double unsorted[] = {1, 0.5};
    assert_null(cj_metrics_counter(reg, "9starts_with_digit", "", NULL, 0));
    assert_null(cj_metrics_counter(reg, "has-dash", "", NULL, 0));
    assert_null(cj_metrics_counter(reg, "ok_total", "", dash_label, 1));
    assert_null(cj_metrics_histogram(reg, "h", "", bad_label, 1,
                                     (const double[]){1}, 1));
    assert_null(cj_metrics_histogram(reg, "h", "", NULL, 0, unsorted, 2));
    assert_non_null(cj_metrics_counter(reg, "dup_total", "", NULL, 0));
    assert_null(cj_metrics_gauge(reg, "dup_total", "", NULL, 0));
    cj_metrics_free(reg);
}

static void test_update_of_wrong_kind_is_ignored(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metric *c = cj_metrics_counter(reg, "c_total", "", NULL, 0);
    cj_gauge_set(cj_metric_series(c, NULL), 5);
    cj_histogram_observe(cj_metric_series(c, NULL), 5);
    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(strstr(text, "c_total 0\n"));
    free(text);
    cj_metrics_free(reg);
}

#define THREADS         4
#define ADDS_PER_THREAD 100000

static void *add_many(void *arg)
{
    struct cj_metric *c = arg;
    const char *values[] = {"x"};
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        cj_counter_add(cj_metric_series(c, values), 1);
    }
    return NULL;
}

static void test_concurrent_adds_are_not_lost(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    const char *labels[] = {"k"};
    struct cj_metric *c = cj_metrics_counter(reg, "n_total", "", labels, 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, add_many, c), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    char expected[64];
    snprintf(expected, sizeof(expected), "n_total{k=\"x\"} %d\n",
             THREADS * ADDS_PER_THREAD);
    char *text = cj_metrics_render(reg, NULL);
    assert_non_null(strstr(text, expected));
    free(text);
    cj_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counter_and_gauge),
        cmocka_unit_test(test_render_histogram_cumulative),
        cmocka_unit_test(test_label_values_and_help_escaped),
        cmocka_unit_test(test_series_beyond_limit_go_to_overflow),
        cmocka_unit_test(test_registration_rejects_bad_input),
        cmocka_unit_test(test_update_of_wrong_kind_is_ignored),
        cmocka_unit_test(test_concurrent_adds_are_not_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

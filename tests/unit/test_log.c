/* Tests for the JSON-lines logger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static json_t *format_and_parse(const char *event, const char *rid,
                                const struct cj_log_field *fields)
{
    char buf[1024];
    size_t n = cj_log_format(buf, sizeof(buf), CJ_LOG_WARN, event, rid, fields);
    assert_true(n < sizeof(buf));
    assert_int_equal(buf[n - 1], '\n');
    json_error_t err;
    json_t *obj = json_loads(buf, 0, &err);
    assert_non_null(obj);
    return obj;
}

static void test_line_has_standard_keys(void **state)
{
    (void)state;
    cj_log_init("kms", CJ_LOG_INFO);
    json_t *obj = format_and_parse(
        "kms.started", "req-1",
        (const struct cj_log_field[]){CJ_F_STR("addr", "127.0.0.1:50052"),
                                      CJ_F_INT("workers", 4),
                                      CJ_F_BOOL("tls", true), CJ_F_END});
    assert_string_equal(json_string_value(json_object_get(obj, "level")),
                        "warn");
    assert_string_equal(json_string_value(json_object_get(obj, "service")),
                        "kms");
    assert_string_equal(json_string_value(json_object_get(obj, "event")),
                        "kms.started");
    assert_string_equal(json_string_value(json_object_get(obj, "request_id")),
                        "req-1");
    assert_string_equal(json_string_value(json_object_get(obj, "addr")),
                        "127.0.0.1:50052");
    assert_int_equal(json_integer_value(json_object_get(obj, "workers")), 4);
    assert_true(json_is_true(json_object_get(obj, "tls")));
    assert_non_null(json_object_get(obj, "ts"));
    json_decref(obj);
}

static void test_control_characters_are_escaped(void **state)
{
    (void)state;
    json_t *obj =
        format_and_parse("x.y", NULL,
                         (const struct cj_log_field[]){
                             CJ_F_STR("v", "a\"b\\c\nd\x01"), CJ_F_END});
    assert_string_equal(json_string_value(json_object_get(obj, "v")),
                        "a\"b\\c\nd\x01");
    assert_null(json_object_get(obj, "request_id"));
    json_decref(obj);
}

static void test_short_buffer_reports_needed_length(void **state)
{
    (void)state;
    char small[16];
    char big[1024];
    const struct cj_log_field none[] = {CJ_F_END};
    size_t need =
        cj_log_format(small, sizeof(small), CJ_LOG_INFO, "a.b", NULL, none);
    size_t got =
        cj_log_format(big, sizeof(big), CJ_LOG_INFO, "a.b", NULL, none);
    assert_true(need > sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(need, got);
}

static void test_level_filter_and_parse(void **state)
{
    (void)state;
    enum cj_log_level level;
    assert_true(cj_log_level_parse("error", &level));
    assert_int_equal(level, CJ_LOG_ERROR);
    assert_false(cj_log_level_parse("loud", &level));
    cj_log_init("t", CJ_LOG_WARN);
    assert_false(cj_log_enabled(CJ_LOG_INFO));
    assert_true(cj_log_enabled(CJ_LOG_ERROR));
}

/* Interval the limiter tests pass with their injected clock, in ms. */
#define TEST_INTERVAL_MS 10000

static void test_limit_logs_first_then_once_per_interval(void **state)
{
    (void)state;
    struct cj_log_limit limit = CJ_LOG_LIMIT_INIT;
    long long suppressed = -1;
    const long long start_ms = 5000;

    assert_true(
        cj_log_limit_hit(&limit, start_ms, TEST_INTERVAL_MS, &suppressed));
    assert_int_equal(suppressed, 0);
    for (long long i = 1; i <= 9; i++) {
        assert_false(cj_log_limit_hit(&limit, start_ms + i * 1000,
                                      TEST_INTERVAL_MS, &suppressed));
    }
    /* One millisecond short of the interval is still suppressed. */
    assert_false(cj_log_limit_hit(&limit, start_ms + TEST_INTERVAL_MS - 1,
                                  TEST_INTERVAL_MS, &suppressed));
    assert_true(cj_log_limit_hit(&limit, start_ms + TEST_INTERVAL_MS,
                                 TEST_INTERVAL_MS, &suppressed));
    assert_int_equal(suppressed, 10);
    assert_false(cj_log_limit_hit(&limit, start_ms + TEST_INTERVAL_MS + 1,
                                  TEST_INTERVAL_MS, &suppressed));
    assert_true(cj_log_limit_hit(&limit, start_ms + 2 * TEST_INTERVAL_MS,
                                 TEST_INTERVAL_MS, &suppressed));
    assert_int_equal(suppressed, 1);
}

static void test_limit_clear_reports_failures_once(void **state)
{
    (void)state;
    struct cj_log_limit limit = CJ_LOG_LIMIT_INIT;
    long long suppressed = 0;
    long long failures = -1;

    for (int i = 0; i < 5; i++) {
        (void)cj_log_limit_hit(&limit, 100, TEST_INTERVAL_MS, &suppressed);
    }
    assert_true(cj_log_limit_clear(&limit, &failures));
    assert_int_equal(failures, 5);
    assert_false(cj_log_limit_clear(&limit, &failures));
    assert_int_equal(failures, 0);
    /* A new streak logs its first failure at once, within the interval. */
    assert_true(cj_log_limit_hit(&limit, 200, TEST_INTERVAL_MS, &suppressed));
    assert_int_equal(suppressed, 0);
}

static void test_limit_clear_without_failure_is_silent(void **state)
{
    (void)state;
    struct cj_log_limit limit = CJ_LOG_LIMIT_INIT;
    long long failures = -1;

    assert_false(cj_log_limit_clear(&limit, &failures));
    assert_int_equal(failures, 0);
}

/* Reads what the logger wrote to the temporary file f, from the start. */
static size_t read_log(FILE *f, char *buf, size_t size)
{
    size_t n;

    rewind(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    return n;
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;

    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n')
            lines++;
    }
    return lines;
}

static void test_limited_macros_write_two_lines(void **state)
{
    (void)state;
    static struct cj_log_limit limit = CJ_LOG_LIMIT_INIT;
    const int repeats = 100;
    char text[4096];
    FILE *f = tmpfile();

    assert_non_null(f);
    cj_log_init("t", CJ_LOG_INFO);
    cj_log_set_fd(fileno(f));
    /* 100 failures take far less than the 10 s interval. */
    for (int i = 0; i < repeats; i++) {
        cj_log_limited(&limit, CJ_LOG_WARN, "t.connect_failed", NULL,
                       CJ_F_INT("attempt", i));
    }
    cj_log_recovered(&limit, "t.connect_recovered", NULL);
    cj_log_recovered(&limit, "t.connect_recovered", NULL);
    cj_log_set_fd(2);
    read_log(f, text, sizeof(text));
    fclose(f);

    assert_int_equal(count_lines(text), 2);
    char *second = strchr(text, '\n') + 1;
    second[-1] = '\0';
    json_t *first_line = json_loads(text, 0, NULL);
    json_t *second_line = json_loads(second, 0, NULL);
    assert_non_null(first_line);
    assert_non_null(second_line);
    assert_string_equal(json_string_value(json_object_get(first_line, "event")),
                        "t.connect_failed");
    assert_int_equal(json_integer_value(json_object_get(first_line, "attempt")),
                     0);
    assert_int_equal(
        json_integer_value(json_object_get(first_line, "suppressed_repeats")),
        0);
    assert_string_equal(
        json_string_value(json_object_get(second_line, "event")),
        "t.connect_recovered");
    assert_string_equal(
        json_string_value(json_object_get(second_line, "level")), "info");
    assert_int_equal(
        json_integer_value(json_object_get(second_line, "failures")), repeats);
    json_decref(first_line);
    json_decref(second_line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_standard_keys),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_short_buffer_reports_needed_length),
        cmocka_unit_test(test_level_filter_and_parse),
        cmocka_unit_test(test_limit_logs_first_then_once_per_interval),
        cmocka_unit_test(test_limit_clear_reports_failures_once),
        cmocka_unit_test(test_limit_clear_without_failure_is_silent),
        cmocka_unit_test(test_limited_macros_write_two_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

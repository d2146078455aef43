/* Tests for the JSON-lines logger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_standard_keys),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_short_buffer_reports_needed_length),
        cmocka_unit_test(test_level_filter_and_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

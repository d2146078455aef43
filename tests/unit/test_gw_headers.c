/* Tests for CORS origin matching and the request-header parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "gw_headers.h"

static void test_origin_list_accepts_serialized_origins(void **state)
{
    struct gw_origin_list list;

    (void)state;
    assert_int_equal(gw_origin_list_parse("https://app.example, "
                                          "http://localhost:3000",
                                          &list),
                     CJ_OK);
    assert_int_equal(list.count, 2);
    assert_int_equal(gw_origin_list_parse("", &list), CJ_OK);
    assert_int_equal(list.count, 0);
    assert_int_equal(gw_origin_list_parse(NULL, &list), CJ_OK);
}

static void test_origin_list_rejects_wildcards_and_junk(void **state)
{
    static const char *const bad[] = {
        "*",
        "null",
        "https://app.example/",
        "https://app.example/path",
        "ftp://app.example",
        "https://APP.example",
        "https://user@app.example",
        "https://app.example:",
        "https://app.example:80a",
        "https://*.example",
        "app.example",
    };
    struct gw_origin_list list;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_origin_list_parse(bad[i], &list) == CJ_OK) {
            fail_msg("origin list \"%s\" accepted", bad[i]);
        }
    }
}

static void test_origin_matching_is_exact(void **state)
{
    struct gw_origin_list list;
    static const char *const refused[] = {
        "null",
        "https://app.example.evil.example",
        "https://evilapp.example",
        "http://app.example",
        "https://app.example:443",
        "https://APP.example",
        "https://app.example/",
        "https://app.exampl",
        "",
    };

    (void)state;
    assert_int_equal(gw_origin_list_parse("https://app.example", &list), CJ_OK);
    assert_true(gw_origin_allowed(&list, "https://app.example"));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (gw_origin_allowed(&list, refused[i])) {
            fail_msg("origin \"%s\" allowed", refused[i]);
        }
    }
    assert_false(gw_origin_allowed(&list, NULL));
}

static void test_empty_origin_list_allows_nothing(void **state)
{
    struct gw_origin_list list;

    (void)state;
    assert_int_equal(gw_origin_list_parse(NULL, &list), CJ_OK);
    assert_false(gw_origin_allowed(&list, "https://app.example"));
    assert_false(gw_origin_allowed(&list, "null"));
}

static void test_accept_encoding_gzip_detection(void **state)
{
    (void)state;
    assert_true(gw_accepts_gzip("gzip"));
    assert_true(gw_accepts_gzip("br, gzip;q=0.5"));
    assert_true(gw_accepts_gzip("deflate, GZIP"));
    assert_false(gw_accepts_gzip("gzip;q=0"));
    assert_false(gw_accepts_gzip("gzip; q=0.0"));
    assert_false(gw_accepts_gzip("x-gzip2, deflate"));
    assert_false(gw_accepts_gzip("identity"));
    assert_false(gw_accepts_gzip(NULL));
}

static void test_content_type_must_be_json(void **state)
{
    (void)state;
    assert_true(gw_content_type_is_json("application/json"));
    assert_true(gw_content_type_is_json("application/json; charset=utf-8"));
    assert_true(gw_content_type_is_json("Application/JSON;charset=UTF-8"));
    assert_false(gw_content_type_is_json("application/jsonx"));
    assert_false(gw_content_type_is_json("application/json; charset=latin1"));
    assert_false(gw_content_type_is_json("text/plain"));
    assert_false(gw_content_type_is_json("application/x-www-form-urlencoded"));
    assert_false(gw_content_type_is_json(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_list_accepts_serialized_origins),
        cmocka_unit_test(test_origin_list_rejects_wildcards_and_junk),
        cmocka_unit_test(test_origin_matching_is_exact),
        cmocka_unit_test(test_empty_origin_list_allows_nothing),
        cmocka_unit_test(test_accept_encoding_gzip_detection),
        cmocka_unit_test(test_content_type_must_be_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

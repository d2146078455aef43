/* Tests for the shared envelope parts: reasons, the sealed plaintext
 * codec, timestamp and argument checks, the header form and the strict
 * JSON parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envelope.h"

static void test_reason_names_are_distinct(void **state)
{
    (void)state;
    for (int a = CJ_SEAL_OK; a <= CJ_SEAL_INTERNAL; a++) {
        assert_string_not_equal(cj_seal_reason_name(a), "unknown");
        for (int b = a + 1; b <= CJ_SEAL_INTERNAL; b++) {
            assert_string_not_equal(cj_seal_reason_name(a),
                                    cj_seal_reason_name(b));
        }
    }
    assert_string_equal(cj_seal_reason_name((enum cj_seal_reason)999),
                        "unknown");
}

static void test_reason_status_classes(void **state)
{
    (void)state;
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_OK), CJ_OK);
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_AUTH_FAILED), CJ_ERR_CRYPTO);
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_LOW_ORDER_SHARE),
                     CJ_ERR_CRYPTO);
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_TOO_LARGE),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_BAD_BASE64), CJ_ERR_INVALID);
    assert_int_equal(cj_seal_reason_status(CJ_SEAL_NO_MEMORY), CJ_ERR_NOMEM);
}

static void test_plaintext_round_trip_with_token(void **state)
{
    (void)state;
    struct cj_seal_plaintext in = {
        .ts_ms = 1733300000123ULL,
        .token = (const uint8_t *)"tok",
        .token_len = 3,
        .body = (const uint8_t *)"{\"a\":1}",
        .body_len = 7,
    };
    struct cj_seal_plaintext out;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    uint8_t *buf = NULL;
    size_t len = 0;

    assert_int_equal(cj_seal_plaintext_encode(&in, &buf, &len), CJ_OK);
    assert_int_equal(len, 10 + 3 + 7);
    /* ts_ms is big-endian in the first 8 bytes, then u16 token length. */
    assert_int_equal(buf[0], 0x00);
    assert_int_equal(buf[7], (uint8_t)(1733300000123ULL & 0xff));
    assert_int_equal(buf[8], 0);
    assert_int_equal(buf[9], 3);
    assert_int_equal(cj_seal_plaintext_decode(buf, len, &out, &why), CJ_OK);
    assert_int_equal(why, CJ_SEAL_OK);
    assert_int_equal(out.ts_ms, in.ts_ms);
    assert_int_equal(out.token_len, 3);
    assert_memory_equal(out.token, "tok", 3);
    assert_int_equal(out.body_len, 7);
    assert_memory_equal(out.body, "{\"a\":1}", 7);
    free(buf);
}

static void test_plaintext_without_token_or_body(void **state)
{
    (void)state;
    struct cj_seal_plaintext in = {.ts_ms = 5};
    struct cj_seal_plaintext out;
    uint8_t *buf = NULL;
    size_t len = 0;

    assert_int_equal(cj_seal_plaintext_encode(&in, &buf, &len), CJ_OK);
    assert_int_equal(len, 10);
    assert_int_equal(cj_seal_plaintext_decode(buf, len, &out, NULL), CJ_OK);
    assert_null(out.token);
    assert_null(out.body);
    assert_int_equal(out.body_len, 0);
    free(buf);
}

static void test_plaintext_decode_rejects_truncation(void **state)
{
    (void)state;
    uint8_t buf[12] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 'a', 'b'};
    struct cj_seal_plaintext out;
    enum cj_seal_reason why = CJ_SEAL_OK;

    /* The token length (3) runs past the end. */
    assert_int_equal(cj_seal_plaintext_decode(buf, sizeof(buf), &out, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_PLAINTEXT);
    assert_int_equal(cj_seal_plaintext_decode(buf, 9, &out, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_PLAINTEXT);
}

static void test_plaintext_encode_rejects_oversize(void **state)
{
    (void)state;
    static uint8_t token[CJ_SEAL_MAX_TOKEN_LEN + 1];
    struct cj_seal_plaintext in = {.token = token, .token_len = sizeof(token)};
    uint8_t *buf = NULL;
    size_t len = 0;

    assert_int_equal(cj_seal_plaintext_encode(&in, &buf, &len),
                     CJ_ERR_TOO_LARGE);
    assert_null(buf);
    in.token_len = 0;
    in.body = token;
    in.body_len = CJ_SEAL_MAX_PLAINTEXT_LEN;
    assert_int_equal(cj_seal_plaintext_encode(&in, &buf, &len),
                     CJ_ERR_TOO_LARGE);
}

static void test_timestamp_window_is_inclusive(void **state)
{
    (void)state;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    assert_int_equal(cj_seal_check_timestamp(1000, 61000, 60000, &why), CJ_OK);
    assert_int_equal(cj_seal_check_timestamp(121000, 61000, 60000, &why),
                     CJ_OK);
    assert_int_equal(cj_seal_check_timestamp(999, 61000, 60000, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_STALE_TIMESTAMP);
    assert_int_equal(cj_seal_check_timestamp(121001, 61000, 60000, &why),
                     CJ_ERR_INVALID);
}

static void test_method_and_path_checks(void **state)
{
    (void)state;
    assert_true(cj_seal_method_valid("POST"));
    assert_false(cj_seal_method_valid("post"));
    assert_false(cj_seal_method_valid(""));
    assert_false(cj_seal_method_valid(NULL));
    assert_false(cj_seal_method_valid("ABCDEFGHIJKLMNOPQ"));
    assert_true(cj_seal_path_valid("/v1/me/data/private"));
    assert_false(cj_seal_path_valid("v1/me"));
    assert_false(cj_seal_path_valid("/v1/ me"));
    assert_false(cj_seal_path_valid("/v1/\n"));
    assert_false(cj_seal_path_valid(""));
}

static void test_header_form_round_trip(void **state)
{
    (void)state;
    static const char json[] = "{\"v\":1,\"ct\":\"AAAA\"}";
    char *value = NULL, *back = NULL;
    size_t back_len = 0;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;

    assert_int_equal(cj_seal_header_encode(json, strlen(json), &value), CJ_OK);
    assert_null(strchr(value, '='));
    assert_int_equal(
        cj_seal_header_decode(value, strlen(value), &back, &back_len, &why),
        CJ_OK);
    assert_int_equal(back_len, strlen(json));
    assert_string_equal(back, json);
    free(value);
    free(back);
}

static void test_header_decode_rejects_bad_input(void **state)
{
    (void)state;
    static char big[CJ_SEAL_MAX_HEADER_LEN + 2];
    char *json = NULL;
    size_t len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;

    assert_int_equal(cj_seal_header_decode("eyJ2Ijox=", 9, &json, &len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_BASE64);
    assert_int_equal(cj_seal_header_decode("ab+c", 4, &json, &len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_BASE64);
    assert_int_equal(cj_seal_header_decode("", 0, &json, &len, &why),
                     CJ_ERR_INVALID);
    memset(big, 'A', sizeof(big) - 1);
    assert_int_equal(
        cj_seal_header_decode(big, sizeof(big) - 1, &json, &len, &why),
        CJ_ERR_TOO_LARGE);
    assert_int_equal(why, CJ_SEAL_TOO_LARGE);
    assert_null(json);
}

/* Parses text against the fields {"n": uint 0..10, "b": 2..3 bytes}. */
static enum cj_seal_reason parse_sample(const char *text)
{
    struct cj_envelope_field fields[] = {
        {.name = "n", .type = CJ_ENVELOPE_FIELD_UINT, .max = 10},
        {.name = "b", .type = CJ_ENVELOPE_FIELD_BASE64, .min = 2, .max = 3},
    };
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    enum cj_status st = cj_envelope_parse(text, strlen(text), fields, 2, &why);
    assert_int_equal(st, cj_seal_reason_status(why));
    if (st == CJ_OK) {
        assert_int_equal(fields[0].number, 7);
        assert_int_equal(fields[1].bytes_len, 3);
        assert_memory_equal(fields[1].bytes, "\x01\x02\x03", 3);
    } else {
        assert_null(fields[1].bytes);
    }
    cj_envelope_fields_clear(fields, 2);
    return why;
}

static void test_parser_rejection_table(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum cj_seal_reason want;
    } cases[] = {
        {"{\"n\":7,\"b\":\"AQID\"}", CJ_SEAL_OK},
        {" {\"b\":\"AQID\",\"n\":7}\r\n\t ", CJ_SEAL_OK},
        {"", CJ_SEAL_BAD_JSON},
        {"{", CJ_SEAL_BAD_JSON},
        {"nonsense", CJ_SEAL_BAD_JSON},
        {"7", CJ_SEAL_BAD_JSON},
        {"[7]", CJ_SEAL_NOT_OBJECT},
        {"{\"n\":7,\"b\":\"AQID\"}x", CJ_SEAL_TRAILING_DATA},
        {"{\"n\":7,\"b\":\"AQID\"}{}", CJ_SEAL_TRAILING_DATA},
        {"{\"n\":7,\"n\":7,\"b\":\"AQID\"}", CJ_SEAL_DUPLICATE_FIELD},
        {"{\"n\":7}", CJ_SEAL_MISSING_FIELD},
        {"{\"n\":7,\"b\":\"AQID\",\"x\":1}", CJ_SEAL_UNKNOWN_FIELD},
        {"{\"n\":\"7\",\"b\":\"AQID\"}", CJ_SEAL_WRONG_TYPE},
        {"{\"n\":null,\"b\":\"AQID\"}", CJ_SEAL_WRONG_TYPE},
        {"{\"n\":7,\"b\":3}", CJ_SEAL_WRONG_TYPE},
        {"{\"n\":7.0,\"b\":\"AQID\"}", CJ_SEAL_NOT_INTEGER},
        {"{\"n\":7e0,\"b\":\"AQID\"}", CJ_SEAL_NOT_INTEGER},
        {"{\"n\":-1,\"b\":\"AQID\"}", CJ_SEAL_OUT_OF_RANGE},
        {"{\"n\":11,\"b\":\"AQID\"}", CJ_SEAL_OUT_OF_RANGE},
        {"{\"n\":99999999999999999999999,\"b\":\"AQID\"}",
         CJ_SEAL_OUT_OF_RANGE},
        {"{\"n\":7,\"b\":\"AQI=\"}", CJ_SEAL_BAD_BASE64},
        {"{\"n\":7,\"b\":\"AQ+D\"}", CJ_SEAL_BAD_BASE64},
        {"{\"n\":7,\"b\":\"AQ D\"}", CJ_SEAL_BAD_BASE64},
        /* Valid once the space is dropped, so only the alphabet check can
         * reject these. */
        {"{\"n\":7,\"b\":\"AQ ID\"}", CJ_SEAL_BAD_BASE64},
        {"{\"n\":7,\"b\":\" AQID\"}", CJ_SEAL_BAD_BASE64},
        {"{\"n\":7,\"b\":\"AQID \"}", CJ_SEAL_BAD_BASE64},
        /* "AQJ" leaves non-zero bits after the last byte: non-canonical. */
        {"{\"n\":7,\"b\":\"AQJ\"}", CJ_SEAL_BAD_BASE64},
        {"{\"n\":7,\"b\":\"AQ\"}", CJ_SEAL_BAD_LENGTH},
        {"{\"n\":7,\"b\":\"AQIDBA\"}", CJ_SEAL_BAD_LENGTH},
        {"{\"n\":7,\"b\":\"AQIDBAUGBwgJCgsMDQ4P\"}", CJ_SEAL_BAD_LENGTH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum cj_seal_reason got = parse_sample(cases[i].text);
        if (got != cases[i].want) {
            fail_msg("case %zu (%s): got %s, expected %s", i, cases[i].text,
                     cj_seal_reason_name(got),
                     cj_seal_reason_name(cases[i].want));
        }
    }
}

static void test_parser_rejects_oversize_and_nul(void **state)
{
    (void)state;
    struct cj_envelope_field fields[] = {
        {.name = "n", .type = CJ_ENVELOPE_FIELD_UINT, .max = 10},
    };
    enum cj_seal_reason why = CJ_SEAL_OK;
    size_t big_len = CJ_SEAL_MAX_ENVELOPE_LEN + 1;
    char *big = malloc(big_len);
    static const char with_nul[] = "{\"n\":7}\0";

    assert_non_null(big);
    memset(big, ' ', big_len);
    assert_int_equal(cj_envelope_parse(big, big_len, fields, 1, &why),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(why, CJ_SEAL_TOO_LARGE);
    free(big);
    assert_int_equal(
        cj_envelope_parse(with_nul, sizeof(with_nul) - 1, fields, 1, &why),
        CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_TRAILING_DATA);
    assert_int_equal(
        cj_envelope_parse("{\"n\":\"\\u0000\"}", 14, fields, 1, &why),
        CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_JSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names_are_distinct),
        cmocka_unit_test(test_reason_status_classes),
        cmocka_unit_test(test_plaintext_round_trip_with_token),
        cmocka_unit_test(test_plaintext_without_token_or_body),
        cmocka_unit_test(test_plaintext_decode_rejects_truncation),
        cmocka_unit_test(test_plaintext_encode_rejects_oversize),
        cmocka_unit_test(test_timestamp_window_is_inclusive),
        cmocka_unit_test(test_method_and_path_checks),
        cmocka_unit_test(test_header_form_round_trip),
        cmocka_unit_test(test_header_decode_rejects_bad_input),
        cmocka_unit_test(test_parser_rejection_table),
        cmocka_unit_test(test_parser_rejects_oversize_and_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

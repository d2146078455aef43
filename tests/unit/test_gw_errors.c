/* Tests for the gateway's error classes and the gRPC-to-HTTP mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gw_errors.h"

static void test_grpc_codes_map_to_http_statuses(void **state)
{
    static const struct {
        grpc_status_code code;
        unsigned http;
        const char *client_code;
    } cases[] = {
        {GRPC_STATUS_OK, 200, "ok"},
        {GRPC_STATUS_INVALID_ARGUMENT, 400, "invalid_request"},
        {GRPC_STATUS_OUT_OF_RANGE, 400, "invalid_request"},
        {GRPC_STATUS_UNAUTHENTICATED, 401, "invalid_token"},
        {GRPC_STATUS_PERMISSION_DENIED, 403, "forbidden"},
        {GRPC_STATUS_NOT_FOUND, 404, "not_found"},
        {GRPC_STATUS_ALREADY_EXISTS, 409, "conflict"},
        {GRPC_STATUS_ABORTED, 409, "replayed"},
        {GRPC_STATUS_RESOURCE_EXHAUSTED, 429, "rate_limited"},
        {GRPC_STATUS_FAILED_PRECONDITION, 503, "unavailable"},
        {GRPC_STATUS_UNAVAILABLE, 503, "unavailable"},
        {GRPC_STATUS_DEADLINE_EXCEEDED, 503, "unavailable"},
        {GRPC_STATUS_CANCELLED, 503, "unavailable"},
        {GRPC_STATUS_UNIMPLEMENTED, 500, "internal"},
        {GRPC_STATUS_INTERNAL, 500, "internal"},
        {GRPC_STATUS_UNKNOWN, 500, "internal"},
        {GRPC_STATUS_DATA_LOSS, 500, "internal"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum gw_error e = gw_error_from_grpc(cases[i].code, GW_OK);

        assert_int_equal(gw_error_http_status(e), cases[i].http);
        assert_string_equal(gw_error_code(e), cases[i].client_code);
    }
}

static void test_unauthenticated_takes_route_class(void **state)
{
    (void)state;
    assert_int_equal(gw_error_from_grpc(GRPC_STATUS_UNAUTHENTICATED,
                                        GW_ERR_INVALID_CREDENTIALS),
                     GW_ERR_INVALID_CREDENTIALS);
    assert_int_equal(gw_error_from_grpc(GRPC_STATUS_UNAUTHENTICATED,
                                        GW_ERR_DECRYPTION_FAILED),
                     GW_ERR_DECRYPTION_FAILED);
    assert_int_equal(gw_error_http_status(GW_ERR_INVALID_CREDENTIALS), 401);
}

static void test_cj_status_goes_through_grpc(void **state)
{
    (void)state;
    assert_int_equal(gw_error_from_status(CJ_ERR_PRECONDITION, GW_OK),
                     GW_ERR_UNAVAILABLE);
    assert_int_equal(gw_error_from_status(CJ_ERR_REPLAYED, GW_OK),
                     GW_ERR_REPLAYED);
    assert_int_equal(gw_error_from_status(CJ_ERR_TOO_LARGE, GW_OK),
                     GW_ERR_INVALID_REQUEST);
    assert_int_equal(gw_error_from_status(CJ_ERR_NOMEM, GW_OK),
                     GW_ERR_INTERNAL);
}

static void test_every_class_has_code_and_status(void **state)
{
    (void)state;
    for (int e = GW_ERR_INVALID_REQUEST; e < GW_ERR_COUNT; e++) {
        assert_true(gw_error_http_status(e) >= 400);
        assert_non_null(gw_error_code(e));
        assert_true(strlen(gw_error_default_message(e)) > 0);
        for (int f = e + 1; f < GW_ERR_COUNT; f++) {
            assert_string_not_equal(gw_error_code(e), gw_error_code(f));
        }
    }
    assert_int_equal(gw_error_http_status((enum gw_error)999), 500);
}

static void test_retry_after_only_for_429_and_503(void **state)
{
    (void)state;
    for (int e = GW_OK; e < GW_ERR_COUNT; e++) {
        unsigned s = gw_error_http_status(e);

        assert_int_equal(gw_error_needs_retry_after(e), s == 429 || s == 503);
    }
}

static void test_error_body_has_the_one_shape(void **state)
{
    char *text =
        gw_error_body_new(GW_ERR_PAYLOAD_TOO_LARGE, "too \"big\"", "req-1");
    json_t *root;
    json_t *error;

    (void)state;
    assert_non_null(text);
    root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), 1);
    error = json_object_get(root, "error");
    assert_int_equal(json_object_size(error), 3);
    assert_string_equal(json_string_value(json_object_get(error, "code")),
                        "payload_too_large");
    assert_string_equal(json_string_value(json_object_get(error, "message")),
                        "too \"big\"");
    assert_string_equal(json_string_value(json_object_get(error, "request_id")),
                        "req-1");
    json_decref(root);
    free(text);
}

static void test_error_body_takes_an_integer_member(void **state)
{
    char *text = gw_error_body_new(GW_ERR_REPLAYED, "stale", "req-2");
    char *original;
    json_t *root;
    json_t *error;

    (void)state;
    assert_non_null(text);
    assert_true(
        gw_error_body_add_int(&text, "server_time_ms", 1764979200123LL));
    root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), 1);
    error = json_object_get(root, "error");
    assert_int_equal(json_object_size(error), 4);
    assert_true(json_integer_value(json_object_get(error, "server_time_ms")) ==
                1764979200123LL);
    assert_string_equal(json_string_value(json_object_get(error, "code")),
                        "replayed");
    json_decref(root);
    free(text);

    /* A body that is not the error shape stays as it was. */
    text = strdup("[1]");
    assert_non_null(text);
    original = text;
    assert_false(gw_error_body_add_int(&text, "server_time_ms", 1));
    assert_ptr_equal(text, original);
    assert_string_equal(text, "[1]");
    free(text);
    text = NULL;
    assert_false(gw_error_body_add_int(&text, "server_time_ms", 1));
}

static void test_backend_message_passes_for_rule_errors(void **state)
{
    const char *detail = "The password is too short.";

    (void)state;
    assert_ptr_equal(
        gw_error_backend_message(GRPC_STATUS_INVALID_ARGUMENT, detail), detail);
    assert_ptr_equal(
        gw_error_backend_message(GRPC_STATUS_ALREADY_EXISTS, detail), detail);
}

static void test_backend_message_generic_for_other_codes(void **state)
{
    static const grpc_status_code codes[] = {
        GRPC_STATUS_UNAUTHENTICATED,    GRPC_STATUS_PERMISSION_DENIED,
        GRPC_STATUS_NOT_FOUND,          GRPC_STATUS_ABORTED,
        GRPC_STATUS_RESOURCE_EXHAUSTED, GRPC_STATUS_FAILED_PRECONDITION,
        GRPC_STATUS_UNAVAILABLE,        GRPC_STATUS_DEADLINE_EXCEEDED,
        GRPC_STATUS_INTERNAL,           GRPC_STATUS_UNKNOWN,
        GRPC_STATUS_OUT_OF_RANGE,       GRPC_STATUS_DATA_LOSS,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_null(gw_error_backend_message(codes[i], "wrong password"));
    }
}

static void test_backend_message_empty_is_generic(void **state)
{
    (void)state;
    assert_null(gw_error_backend_message(GRPC_STATUS_INVALID_ARGUMENT, ""));
    assert_null(gw_error_backend_message(GRPC_STATUS_INVALID_ARGUMENT, NULL));
}

static void test_error_body_replaces_invalid_utf8_message(void **state)
{
    /* A message cut inside a two-byte character. */
    char *text = gw_error_body_new(GW_ERR_INVALID_REQUEST, "caf\xc3", NULL);
    json_t *root;
    json_t *error;

    (void)state;
    assert_non_null(text);
    root = json_loads(text, 0, NULL);
    assert_non_null(root);
    error = json_object_get(root, "error");
    assert_string_equal(json_string_value(json_object_get(error, "message")),
                        gw_error_default_message(GW_ERR_INVALID_REQUEST));
    json_decref(root);
    free(text);
}

static void test_busy_message_needs_retry_after(void **state)
{
    (void)state;
    assert_non_null(gw_error_busy_message(GRPC_STATUS_UNAVAILABLE, 2));
    assert_non_null(
        strstr(gw_error_busy_message(GRPC_STATUS_UNAVAILABLE, 2), "busy"));
    assert_null(gw_error_busy_message(GRPC_STATUS_UNAVAILABLE, 0));
    assert_null(gw_error_busy_message(GRPC_STATUS_DEADLINE_EXCEEDED, 2));
    assert_null(gw_error_busy_message(GRPC_STATUS_RESOURCE_EXHAUSTED, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_message_needs_retry_after),
        cmocka_unit_test(test_grpc_codes_map_to_http_statuses),
        cmocka_unit_test(test_unauthenticated_takes_route_class),
        cmocka_unit_test(test_cj_status_goes_through_grpc),
        cmocka_unit_test(test_every_class_has_code_and_status),
        cmocka_unit_test(test_retry_after_only_for_429_and_503),
        cmocka_unit_test(test_error_body_has_the_one_shape),
        cmocka_unit_test(test_error_body_takes_an_integer_member),
        cmocka_unit_test(test_backend_message_passes_for_rule_errors),
        cmocka_unit_test(test_backend_message_generic_for_other_codes),
        cmocka_unit_test(test_backend_message_empty_is_generic),
        cmocka_unit_test(test_error_body_replaces_invalid_utf8_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

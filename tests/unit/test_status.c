/* Tests for the status type and its single mapping to gRPC codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "status.h"

static void test_ok_maps_to_grpc_ok(void **state)
{
    (void)state;
    assert_int_equal(cj_status_to_grpc(CJ_OK), GRPC_STATUS_OK);
}

static void test_each_status_has_a_distinct_name(void **state)
{
    (void)state;
    for (int a = CJ_OK; a <= CJ_ERR_INTERNAL; a++) {
        assert_string_not_equal(cj_status_name(a), "unknown");
        for (int b = a + 1; b <= CJ_ERR_INTERNAL; b++)
            assert_string_not_equal(cj_status_name(a), cj_status_name(b));
    }
    assert_string_equal(cj_status_name((enum cj_status)999), "unknown");
}

static void test_client_classes_map_to_expected_codes(void **state)
{
    (void)state;
    assert_int_equal(cj_status_to_grpc(CJ_ERR_INVALID),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_PERMISSION),
                     GRPC_STATUS_PERMISSION_DENIED);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_CRYPTO),
                     GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_RATE_LIMITED),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_PRECONDITION),
                     GRPC_STATUS_FAILED_PRECONDITION);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_UNAVAILABLE),
                     GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(cj_status_to_grpc(CJ_ERR_UNIMPLEMENTED),
                     GRPC_STATUS_UNIMPLEMENTED);
}

static void test_grpc_round_trip_keeps_class(void **state)
{
    (void)state;
    const enum cj_status round_trip[] = {
        CJ_OK,
        CJ_ERR_INVALID,
        CJ_ERR_NOT_FOUND,
        CJ_ERR_EXISTS,
        CJ_ERR_PERMISSION,
        CJ_ERR_UNAUTHENTICATED,
        CJ_ERR_REPLAYED,
        CJ_ERR_RATE_LIMITED,
        CJ_ERR_PRECONDITION,
        CJ_ERR_UNAVAILABLE,
        CJ_ERR_TIMEOUT,
        CJ_ERR_UNIMPLEMENTED,
        CJ_ERR_INTERNAL,
    };
    for (size_t i = 0; i < sizeof(round_trip) / sizeof(round_trip[0]); i++)
        assert_int_equal(cj_status_from_grpc(cj_status_to_grpc(round_trip[i])),
                         round_trip[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_maps_to_grpc_ok),
        cmocka_unit_test(test_each_status_has_a_distinct_name),
        cmocka_unit_test(test_client_classes_map_to_expected_codes),
        cmocka_unit_test(test_grpc_round_trip_keeps_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

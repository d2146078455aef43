/* Tests for CERROJO_METRICS_HOST, which moves every metrics port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "metrics.h"
#include "rpc_service.h"

static void test_metrics_host_overrides_address(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *srv = NULL;

    assert_non_null(reg);
    /* Loopback rather than 0.0.0.0, so that the test listens on no
     * outside interface. */
    setenv(CJ_METRICS_HOST_ENV, "127.0.0.1", 1);
    /* The given address is invalid, so only the override can succeed. */
    assert_int_equal(cj_metrics_server_start(reg, "not-an-ip", 0, &srv), CJ_OK);
    assert_non_null(srv);
    assert_true(cj_metrics_server_port(srv) > 0);
    cj_metrics_server_stop(srv);
    unsetenv(CJ_METRICS_HOST_ENV);
    cj_metrics_free(reg);
}

static void test_invalid_metrics_host_is_rejected(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *srv = NULL;

    assert_non_null(reg);
    setenv(CJ_METRICS_HOST_ENV, "everywhere", 1);
    assert_int_equal(cj_metrics_server_start(reg, "127.0.0.1", 0, &srv),
                     CJ_ERR_INVALID);
    assert_null(srv);
    unsetenv(CJ_METRICS_HOST_ENV);
    cj_metrics_free(reg);
}

static void test_default_address_without_override(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *srv = NULL;

    assert_non_null(reg);
    unsetenv(CJ_METRICS_HOST_ENV);
    assert_int_equal(cj_metrics_server_start(reg, "not-an-ip", 0, &srv),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_metrics_server_start(reg, "127.0.0.1", 0, &srv), CJ_OK);
    cj_metrics_server_stop(srv);
    cj_metrics_free(reg);
}

static void test_host_check_names_variable(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";

    setenv(CJ_METRICS_HOST_ENV, "999.1.1.1", 1);
    assert_int_equal(cj_metrics_host_check(err, sizeof(err)), CJ_ERR_INVALID);
    assert_string_equal(err, "CERROJO_METRICS_HOST: expected an IPv4 literal "
                             "such as 0.0.0.0 or 127.0.0.1, got '999.1.1.1'");

    setenv(CJ_METRICS_HOST_ENV, "0.0.0.0", 1);
    assert_int_equal(cj_metrics_host_check(err, sizeof(err)), CJ_OK);
    setenv(CJ_METRICS_HOST_ENV, "", 1);
    assert_int_equal(cj_metrics_host_check(err, sizeof(err)), CJ_OK);
    unsetenv(CJ_METRICS_HOST_ENV);
    assert_int_equal(cj_metrics_host_check(err, sizeof(err)), CJ_OK);
}

static void test_metrics_port_equal_to_listen_port(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char listen[] = "127.0.0.1:50052";
    char any_port[] = "127.0.0.1:0";
    struct cj_rpc_settings grpc = {.listen = listen};

    unsetenv(CJ_METRICS_HOST_ENV);
    assert_int_equal(cj_rpc_settings_check_metrics(&grpc, 50052, "CERROJO_KMS",
                                                   err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_string_equal(err, "CERROJO_KMS_METRICS_PORT and CERROJO_KMS_LISTEN "
                             "both use port 50052; give the metrics server "
                             "another port");

    assert_int_equal(cj_rpc_settings_check_metrics(&grpc, 9092, "CERROJO_KMS",
                                                   err, sizeof(err)),
                     CJ_OK);
    /* Port 0 picks a free port, so it cannot clash. */
    assert_int_equal(cj_rpc_settings_check_metrics(&grpc, 0, "CERROJO_KMS", err,
                                                   sizeof(err)),
                     CJ_OK);
    grpc.listen = any_port;
    assert_int_equal(cj_rpc_settings_check_metrics(&grpc, 0, "CERROJO_KMS", err,
                                                   sizeof(err)),
                     CJ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_host_overrides_address),
        cmocka_unit_test(test_invalid_metrics_host_is_rejected),
        cmocka_unit_test(test_default_address_without_override),
        cmocka_unit_test(test_host_check_names_variable),
        cmocka_unit_test(test_metrics_port_equal_to_listen_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

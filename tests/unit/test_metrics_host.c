/* Tests for CERROJO_METRICS_HOST, which moves every metrics port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "metrics.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_host_overrides_address),
        cmocka_unit_test(test_invalid_metrics_host_is_rejected),
        cmocka_unit_test(test_default_address_without_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

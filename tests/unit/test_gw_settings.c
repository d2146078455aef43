/* Tests for the gateway's settings: the benchmark route setting and the
 * checks of network settings that could never work as meant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gw_settings.h"

static int clear_env(void **state)
{
    (void)state;
    unsetenv("CERROJO_PROFILE");
    unsetenv("CERROJO_GATEWAY_BENCH_ROUTE");
    unsetenv("CERROJO_GATEWAY_TRUSTED_PROXIES");
    unsetenv("CERROJO_TLS_CA");
    unsetenv("CERROJO_GATEWAY_TLS_CERT");
    unsetenv("CERROJO_GATEWAY_TLS_KEY");
    unsetenv("CERROJO_GATEWAY_CORS_ORIGINS");
    unsetenv("CERROJO_GATEWAY_PORT");
    unsetenv("CERROJO_GATEWAY_ADMIN_PORT");
    setenv("CERROJO_GRPC_PLAINTEXT", "true", 1);
    return 0;
}

static void test_bench_route_off_by_default(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
    assert_false(s.bench_route);
}

static void test_bench_route_enabled_in_dev(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_BENCH_ROUTE", "true", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
    assert_true(s.bench_route);
}

static void test_bench_route_rejects_bad_value(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_BENCH_ROUTE", "maybe", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CERROJO_GATEWAY_BENCH_ROUTE"));
}

static void test_bench_route_rejected_outside_dev(void **state)
{
    static const char *const profiles[] = {"stage", "prod"};
    struct gw_settings s;

    (void)state;
    setenv("CERROJO_GRPC_PLAINTEXT", "false", 1);
    setenv("CERROJO_TLS_CA", "/nonexistent/ca.pem", 1);
    setenv("CERROJO_GATEWAY_TLS_CERT", "/nonexistent/gateway.pem", 1);
    setenv("CERROJO_GATEWAY_TLS_KEY", "/nonexistent/gateway.key", 1);
    setenv("CERROJO_GATEWAY_TRUSTED_PROXIES", "", 1);
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
        char err[256] = "";

        setenv("CERROJO_PROFILE", profiles[i], 1);
        setenv("CERROJO_GATEWAY_BENCH_ROUTE", "false", 1);
        assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
        setenv("CERROJO_GATEWAY_BENCH_ROUTE", "true", 1);
        assert_int_equal(gw_settings_load(&s, err, sizeof(err)),
                         CJ_ERR_INVALID);
        assert_non_null(strstr(err, "CERROJO_GATEWAY_BENCH_ROUTE"));
    }
}

static void test_trusted_proxies_covering_all_rejected(void **state)
{
    static const char *const bad[] = {"0.0.0.0/0", "::/0",
                                      "10.0.0.1, 0.0.0.0/0"};
    struct gw_settings s;
    char err_ok[256] = "";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";

        setenv("CERROJO_GATEWAY_TRUSTED_PROXIES", bad[i], 1);
        assert_int_equal(gw_settings_load(&s, err, sizeof(err)),
                         CJ_ERR_INVALID);
        assert_non_null(strstr(err, "CERROJO_GATEWAY_TRUSTED_PROXIES"));
        assert_non_null(strstr(err, "/0"));
    }
    setenv("CERROJO_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, ::1", 1);
    assert_int_equal(gw_settings_load(&s, err_ok, sizeof(err_ok)), CJ_OK);
    assert_int_equal(s.trusted_proxies.count, 2);
}

static void test_cors_origin_with_default_port_rejected(void **state)
{
    struct gw_settings s;
    char err[512] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_CORS_ORIGINS", "https://app.example:443", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CERROJO_GATEWAY_CORS_ORIGINS"));
    assert_non_null(strstr(err, "default port"));
}

static void test_equal_api_and_admin_ports_rejected(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_PORT", "22850", 1);
    setenv("CERROJO_GATEWAY_ADMIN_PORT", "22850", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CERROJO_GATEWAY_ADMIN_PORT"));
    assert_non_null(strstr(err, "22850"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bench_route_off_by_default, clear_env),
        cmocka_unit_test_setup(test_bench_route_enabled_in_dev, clear_env),
        cmocka_unit_test_setup(test_bench_route_rejects_bad_value, clear_env),
        cmocka_unit_test_setup(test_trusted_proxies_covering_all_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_cors_origin_with_default_port_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_equal_api_and_admin_ports_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_bench_route_rejected_outside_dev,
                               clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

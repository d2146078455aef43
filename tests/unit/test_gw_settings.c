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
    unsetenv("CERROJO_REDIS_ADDR");
    unsetenv("CERROJO_KMS_ADDR");
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

static void test_trusted_proxies_short_prefix_rejected(void **state)
{
    /* Each list, its offending entry and the bound the error names. Two
     * halves trust every address as /0 does. */
    static const struct {
        const char *list;
        const char *entry;
        const char *bound;
    } bad[] = {
        {"0.0.0.0/0", "'0.0.0.0/0'", "/8"},
        {"::/0", "'::/0'", "/32"},
        {"10.0.0.1, 0.0.0.0/0", "'0.0.0.0/0'", "/8"},
        {"0.0.0.0/1, 128.0.0.0/1", "'0.0.0.0/1'", "/8"},
        {"10.0.0.0/8, 128.0.0.0/1", "'128.0.0.0/1'", "/8"},
        {"::/1, 8000::/1", "'::/1'", "/32"},
        {"8.0.0.0/7", "'8.0.0.0/7'", "/8"},
        {"fc00::/6", "'fc00::/6'", "/32"},
        {"2a00::/7", "'2a00::/7'", "/32"},
        {"2400::/7", "'2400::/7'", "/32"},
        {"2000::/16", "'2000::/16'", "/32"},
        {"2001:db8::/31", "'2001:db8::/31'", "/32"},
        {"fe00::/7", "'fe00::/7'", "/32"},
        {"fd00::/8, 2a00::/7", "'2a00::/7'", "/32"},
        {"::ffff:0:0/96", "'::ffff:0:0/96'", "/8"},
        {"::ffff:128.0.0.0/97", "'::ffff:128.0.0.0/97'", "/8"},
        {"::ffff:8.0.0.0/103", "'::ffff:8.0.0.0/103'", "/8"},
    };
    struct gw_settings s;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";

        setenv("CERROJO_GATEWAY_TRUSTED_PROXIES", bad[i].list, 1);
        if (gw_settings_load(&s, err, sizeof(err)) != CJ_ERR_INVALID) {
            fail_msg("trusted proxies \"%s\" accepted", bad[i].list);
        }
        assert_non_null(strstr(err, "CERROJO_GATEWAY_TRUSTED_PROXIES"));
        assert_non_null(strstr(err, bad[i].entry));
        assert_non_null(strstr(err, bad[i].bound));
    }
}

static void test_trusted_proxies_v6_short_names_range(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_TRUSTED_PROXIES", "2a00::/7", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "fc00::/7"));
}

static void test_trusted_proxies_bound_prefixes_accepted(void **state)
{
    struct gw_settings s;
    char err[256] = "";

    (void)state;
    setenv("CERROJO_GATEWAY_TRUSTED_PROXIES",
           "10.0.0.0/8, fc00::/7, ::ffff:11.0.0.0/104, ::1, fd00::/8, "
           "fd12::/16, 2001:db8::/32",
           1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
    assert_int_equal(s.trusted_proxies.count, 7);
    assert_true(gw_cidr_list_contains_ip(&s.trusted_proxies, "11.2.3.4"));
    assert_true(gw_cidr_list_contains_ip(&s.trusted_proxies, "fd00::1"));
    assert_true(gw_cidr_list_contains_ip(&s.trusted_proxies, "2001:db8::1"));
    assert_false(gw_cidr_list_contains_ip(&s.trusted_proxies, "2a00::1"));
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

static void test_malformed_redis_addr_rejected(void **state)
{
    static const char *const bad[] = {"garbage",     ":6379",       "redis:0",
                                      "redis:65536", "redis:63x79", "redis:"};
    struct gw_settings s;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        setenv("CERROJO_REDIS_ADDR", bad[i], 1);
        if (gw_settings_load(&s, err, sizeof(err)) != CJ_ERR_INVALID) {
            fail_msg("CERROJO_REDIS_ADDR=%s accepted", bad[i]);
        }
        assert_non_null(strstr(err, "CERROJO_REDIS_ADDR"));
        assert_non_null(strstr(err, bad[i]));
    }
    setenv("CERROJO_REDIS_ADDR", "redis.internal:6379", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
}

static void test_backend_addr_needs_valid_port(void **state)
{
    /* gRPC would dial port 443 for an address without a port. */
    static const char *const bad[] = {
        "127.0.0.1",       "kms",       "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:50x52", "::1:50052", "[::1]",       ":50052"};
    struct gw_settings s;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        setenv("CERROJO_KMS_ADDR", bad[i], 1);
        if (gw_settings_load(&s, err, sizeof(err)) != CJ_ERR_INVALID) {
            fail_msg("CERROJO_KMS_ADDR=%s accepted", bad[i]);
        }
        assert_non_null(strstr(err, "CERROJO_KMS_ADDR"));
    }
    setenv("CERROJO_KMS_ADDR", "[::1]:50052,[::2]:50052", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
    setenv("CERROJO_KMS_ADDR", "cerrojo-kms.cerrojo.svc:50052", 1);
    assert_int_equal(gw_settings_load(&s, err, sizeof(err)), CJ_OK);
    unsetenv("CERROJO_KMS_ADDR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bench_route_off_by_default, clear_env),
        cmocka_unit_test_setup(test_bench_route_enabled_in_dev, clear_env),
        cmocka_unit_test_setup(test_bench_route_rejects_bad_value, clear_env),
        cmocka_unit_test_setup(test_trusted_proxies_short_prefix_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_trusted_proxies_v6_short_names_range,
                               clear_env),
        cmocka_unit_test_setup(test_trusted_proxies_bound_prefixes_accepted,
                               clear_env),
        cmocka_unit_test_setup(test_cors_origin_with_default_port_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_equal_api_and_admin_ports_rejected,
                               clear_env),
        cmocka_unit_test_setup(test_bench_route_rejected_outside_dev,
                               clear_env),
        cmocka_unit_test_setup(test_malformed_redis_addr_rejected, clear_env),
        cmocka_unit_test_setup(test_backend_addr_needs_valid_port, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the route table and method handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "gw_limits.h"
#include "gw_routes.h"

static void test_every_design_route_is_in_the_table(void **state)
{
    static const struct {
        const char *path;
        enum gw_method method;
    } routes[] = {
        {"/v1/keys", GW_METHOD_GET},
        {"/.well-known/jwks.json", GW_METHOD_GET},
        {"/v1/handshake", GW_METHOD_POST},
        {"/v1/register", GW_METHOD_POST},
        {"/v1/login", GW_METHOD_POST},
        {"/v1/refresh", GW_METHOD_POST},
        {"/v1/logout", GW_METHOD_POST},
        {"/v1/me", GW_METHOD_GET},
        {"/v1/me/data/public", GW_METHOD_GET},
        {"/v1/me/data/public", GW_METHOD_PUT},
        {"/v1/me/data/private", GW_METHOD_GET},
        {"/v1/me/data/private", GW_METHOD_PUT},
        {"/v1/me/data/protected", GW_METHOD_GET},
        {"/v1/me/data/protected", GW_METHOD_PUT},
        {"/healthz", GW_METHOD_GET},
        {"/readyz", GW_METHOD_GET},
        {"/openapi.json", GW_METHOD_GET},
    };
    unsigned allowed;

    (void)state;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (gw_route_find(routes[i].path, routes[i].method, &allowed) == NULL) {
            fail_msg("%s is missing", routes[i].path);
        }
    }
}

static void test_protected_data_is_stateful_only(void **state)
{
    unsigned allowed;
    const struct gw_route *r =
        gw_route_find("/v1/me/data/protected", GW_METHOD_GET, &allowed);

    (void)state;
    assert_int_equal(r->modes, GW_MODE_STATEFUL);
    r = gw_route_find("/v1/me/data/private", GW_METHOD_PUT, &allowed);
    assert_int_equal(r->modes, GW_MODE_STATELESS | GW_MODE_STATEFUL);
    assert_string_equal(r->path_field, "class");
    r = gw_route_find("/v1/handshake", GW_METHOD_POST, &allowed);
    assert_int_equal(r->modes, GW_MODE_STATELESS);
    assert_int_equal(r->body_bytes_max, GW_BODY_BYTES_HANDSHAKE);
}

static void test_unknown_path_has_no_methods(void **state)
{
    unsigned allowed = 99;

    (void)state;
    assert_null(gw_route_find("/v1/nope", GW_METHOD_GET, &allowed));
    assert_int_equal(allowed, 0);
    assert_null(gw_route_find("/v1/login/", GW_METHOD_POST, &allowed));
    assert_int_equal(allowed, 0);
}

static void test_wrong_method_reports_allowed_set(void **state)
{
    unsigned allowed;
    char text[64];

    (void)state;
    assert_null(gw_route_find("/v1/login", GW_METHOD_GET, &allowed));
    assert_int_equal(allowed, GW_METHOD_POST | GW_METHOD_OPTIONS);
    gw_methods_format(allowed, text, sizeof(text));
    assert_string_equal(text, "POST, OPTIONS");
    assert_null(gw_route_find("/v1/me/data/public", GW_METHOD_POST, &allowed));
    gw_methods_format(allowed, text, sizeof(text));
    assert_string_equal(text, "GET, PUT, OPTIONS");
}

static void test_head_only_on_plain_get_routes(void **state)
{
    unsigned allowed;

    (void)state;
    assert_non_null(gw_route_find("/healthz", GW_METHOD_HEAD, &allowed));
    assert_null(gw_route_find("/v1/me", GW_METHOD_HEAD, &allowed));
}

static void test_method_parse_refuses_other_verbs(void **state)
{
    (void)state;
    assert_int_equal(gw_method_parse("GET"), GW_METHOD_GET);
    assert_int_equal(gw_method_parse("PUT"), GW_METHOD_PUT);
    assert_int_equal(gw_method_parse("TRACE"), GW_METHOD_NONE);
    assert_int_equal(gw_method_parse("CONNECT"), GW_METHOD_NONE);
    assert_int_equal(gw_method_parse("DELETE"), GW_METHOD_NONE);
    assert_int_equal(gw_method_parse("get"), GW_METHOD_NONE);
}

static void test_sealed_routes_have_rpc_descriptors(void **state)
{
    size_t count;
    const struct gw_route *routes = gw_routes_all(&count);

    (void)state;
    for (size_t i = 0; i < count; i++) {
        if (routes[i].handler != GW_HANDLER_RPC &&
            routes[i].handler != GW_HANDLER_JWKS) {
            continue;
        }
        assert_non_null(routes[i].rpc.path);
        assert_non_null(routes[i].rpc.request);
        assert_non_null(routes[i].rpc.response);
        assert_int_not_equal(routes[i].rpc.backend, GW_BACKEND_NONE);
        /* Request messages hold no identity: no user_id member. */
        assert_null(protobuf_c_message_descriptor_get_field_by_name(
            routes[i].rpc.request, "user_id"));
        if (routes[i].method == GW_METHOD_POST ||
            routes[i].method == GW_METHOD_PUT) {
            assert_true(routes[i].body_bytes_max > 0);
            assert_true(routes[i].body_bytes_max <= GW_BODY_BYTES_MAX);
        } else {
            assert_int_equal(routes[i].body_bytes_max, 0);
        }
    }
}

static void test_bench_route_only_when_enabled(void **state)
{
    unsigned allowed = 0;
    const struct gw_route *r;

    (void)state;
    gw_routes_enable_bench(false);
    r = gw_route_find("/v1/bench/ping", GW_METHOD_GET, &allowed);
    assert_null(r);
    assert_int_equal(allowed, 0);

    gw_routes_enable_bench(true);
    r = gw_route_find("/v1/bench/ping", GW_METHOD_GET, &allowed);
    assert_non_null(r);
    assert_int_equal(r->modes, GW_MODE_PLAIN);
    assert_int_equal(r->rpc.backend, GW_BACKEND_AUTH);
    assert_string_equal(r->rpc.path, "/grpc.health.v1.Health/Check");

    gw_routes_enable_bench(false);
    assert_null(gw_route_find("/v1/bench/ping", GW_METHOD_GET, &allowed));
}

static void test_server_methods_span_routes(void **state)
{
    char text[64];

    (void)state;
    assert_int_equal(gw_routes_methods(), GW_METHOD_GET | GW_METHOD_HEAD |
                                              GW_METHOD_POST | GW_METHOD_PUT |
                                              GW_METHOD_OPTIONS);
    gw_methods_format(gw_routes_methods(), text, sizeof(text));
    assert_string_equal(text, "GET, HEAD, POST, PUT, OPTIONS");
}

static void test_target_path_of_each_form(void **state)
{
    (void)state;
    assert_string_equal(gw_route_target_path("/v1/me"), "/v1/me");
    assert_string_equal(gw_route_target_path("http://127.0.0.1:8080/v1/me"),
                        "/v1/me");
    assert_string_equal(gw_route_target_path("HTTPS://gw.example/v1/keys"),
                        "/v1/keys");
    assert_string_equal(gw_route_target_path("http://gw.example"), "/");
    /* Escapes stay as sent, so the path matches no route. */
    assert_string_equal(gw_route_target_path("http://x/v1%2fme"), "/v1%2fme");
    assert_null(gw_route_target_path("*"));
    assert_null(gw_route_target_path("v1/me"));
    assert_null(gw_route_target_path("ftp://x/v1/me"));
    assert_null(gw_route_target_path("http:/v1/me"));
    assert_null(gw_route_target_path("http:///v1/me"));
    assert_null(gw_route_target_path("http://user@x/v1/me"));
    assert_null(gw_route_target_path(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_design_route_is_in_the_table),
        cmocka_unit_test(test_protected_data_is_stateful_only),
        cmocka_unit_test(test_unknown_path_has_no_methods),
        cmocka_unit_test(test_wrong_method_reports_allowed_set),
        cmocka_unit_test(test_head_only_on_plain_get_routes),
        cmocka_unit_test(test_method_parse_refuses_other_verbs),
        cmocka_unit_test(test_sealed_routes_have_rpc_descriptors),
        cmocka_unit_test(test_bench_route_only_when_enabled),
        cmocka_unit_test(test_server_methods_span_routes),
        cmocka_unit_test(test_target_path_of_each_form),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

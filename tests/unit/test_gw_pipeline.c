/* Tests for the pipeline's header and body checks (limits, media type,
 * CORS preflight, modes) without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closed_port_helper.h"
#include "gw_pipeline.h"

struct fixture {
    struct closed_port backend_port;
    struct gw_settings settings;
    struct gw_context ctx;
    struct gw_request req;
    struct gw_reply reply;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || gw_origin_list_parse("https://app.example",
                                          &f->settings.cors_origins) != CJ_OK) {
        return -1;
    }
    /* Every backend is at a port that refuses connections, so every
     * backend call fails fast. */
    if (closed_port_hold(&f->backend_port) != 0) {
        return -1;
    }
    f->settings.grpc_plaintext = true;
    f->settings.rpc_deadline_ms = 500;
    snprintf(f->settings.kms_addr, sizeof(f->settings.kms_addr), "127.0.0.1:%d",
             f->backend_port.port);
    snprintf(f->settings.session_addr, sizeof(f->settings.session_addr),
             "127.0.0.1:%d", f->backend_port.port);
    snprintf(f->settings.auth_addr, sizeof(f->settings.auth_addr),
             "127.0.0.1:%d", f->backend_port.port);
    f->ctx.settings = &f->settings;
    f->ctx.backends = gw_backends_new(&f->settings);
    strcpy(f->req.request_id, "test-request");
    strcpy(f->req.client_ip, "127.0.0.1");
    f->req.rejection = GW_REJECT_COUNT;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    gw_reply_clear(&f->reply);
    gw_backends_free(f->ctx.backends);
    closed_port_release(&f->backend_port);
    free(f);
    return 0;
}

static void post_json(struct fixture *f, const char *path, size_t length)
{
    f->req.method = GW_METHOD_POST;
    f->req.path = path;
    f->req.content_type = "application/json";
    f->req.has_content_length = true;
    f->req.content_length = length;
}

static void test_unknown_path_gets_404(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/v2/keys";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 404);
    assert_non_null(strstr(f->reply.body, "\"not_found\""));
    assert_non_null(strstr(f->reply.body, "test-request"));
}

static void test_trace_gets_405_with_allow(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_NONE;
    f->req.path = "/v1/login";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 405);
    assert_int_equal(f->reply.allow, GW_METHOD_POST | GW_METHOD_OPTIONS);
}

static void test_content_length_over_limit_gets_413(void **state)
{
    struct fixture *f = *state;

    post_json(f, "/v1/handshake", GW_BODY_BYTES_HANDSHAKE + 1);
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 413);
    assert_int_equal(f->req.rejection, GW_REJECT_BODY_TOO_LARGE);
}

static void test_body_at_limit_is_read(void **state)
{
    struct fixture *f = *state;

    post_json(f, "/v1/handshake", GW_BODY_BYTES_HANDSHAKE);
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_false(f->reply.ready);
}

static void test_discarded_body_gets_413_at_the_end(void **state)
{
    struct fixture *f = *state;

    post_json(f, "/v1/login", 0);
    f->req.has_content_length = false;
    f->req.chunked = true;
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    f->req.body_discarded = 10;
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 413);
}

static void test_non_json_content_type_gets_415(void **state)
{
    struct fixture *f = *state;

    post_json(f, "/v1/login", 10);
    f->req.content_type = "text/plain";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 415);
}

static void test_compressed_body_on_sealed_route_gets_415(void **state)
{
    struct fixture *f = *state;

    post_json(f, "/v1/login", 10);
    f->req.content_encoding = "gzip";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 415);
}

static void test_body_on_get_route_gets_400(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.has_content_length = true;
    f->req.content_length = 5;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 400);
}

static void test_preflight_from_configured_origin(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_OPTIONS;
    f->req.path = "/v1/login";
    f->req.origin = "https://app.example";
    f->req.cors_request_method = "POST";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 204);
    assert_true(f->reply.cors_preflight);
}

static void test_preflight_from_other_origin_gets_403(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_OPTIONS;
    f->req.path = "/v1/login";
    f->req.origin = "null";
    f->req.cors_request_method = "POST";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 403);
    assert_false(f->reply.cors_preflight);
}

static void test_request_from_other_origin_gets_403(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.origin = "https://app.example.evil.example";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 403);
}

static void test_deep_envelope_gets_400(void **state)
{
    struct fixture *f = *state;
    char body[64];

    memset(body, '[', sizeof(body));
    post_json(f, "/v1/login", sizeof(body));
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    f->req.body = (unsigned char *)body;
    f->req.body_len = sizeof(body);
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(f->req.rejection, GW_REJECT_JSON_TOO_DEEP);
}

static void test_protected_data_without_session_gets_400(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/v1/me/data/protected";
    f->req.seal_header = "x";
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(f->req.rejection, GW_REJECT_MODE);
}

static void test_readyz_is_503_while_dependencies_unknown(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/readyz";
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 503);
    assert_non_null(strstr(f->reply.body, "\"kms\""));
    assert_non_null(strstr(f->reply.body, "\"redis\""));
}

static void test_connection_over_limit_gets_429_and_close(void **state)
{
    struct fixture *f = *state;

    /* Health probes too: the whole connection is over the limit. */
    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.over_connection_limit = true;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 429);
    assert_non_null(strstr(f->reply.body, "\"rate_limited\""));
    assert_non_null(strstr(f->reply.body, "connections"));
    assert_int_equal(f->reply.retry_after,
                     GW_CONNECTION_LIMIT_RETRY_AFTER_SECONDS);
    assert_true(f->reply.close_connection);
    assert_int_equal(f->req.rejection, GW_REJECT_CONNECTION_LIMIT);
}

static void test_connection_under_limit_is_served(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 200);
    assert_false(f->reply.close_connection);
}

static void test_long_request_target_gets_414(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.uri_bytes = GW_URI_BYTES_MAX + 1;
    f->req.head_bytes = GW_URI_BYTES_MAX + 64;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 414);
    assert_non_null(strstr(f->reply.body, "\"uri_too_long\""));
    assert_true(f->reply.close_connection);
    assert_int_equal(f->req.rejection, GW_REJECT_URI_TOO_LONG);
}

static void test_large_head_gets_431(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.uri_bytes = 8;
    f->req.head_bytes = GW_HEAD_BYTES_MAX + 1;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 431);
    assert_non_null(strstr(f->reply.body, "\"headers_too_large\""));
    assert_true(f->reply.close_connection);
    assert_int_equal(f->req.rejection, GW_REJECT_HEADERS_TOO_LARGE);
}

static void test_ambiguous_framing_gets_400_and_close(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.framing_problem = "The request has more than one Host header.";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "\"invalid_request\""));
    assert_non_null(strstr(f->reply.body, "more than one Host"));
    assert_true(f->reply.close_connection);
    assert_int_equal(f->req.rejection, GW_REJECT_FRAMING);
}

static void test_repeated_session_gets_400_kept_open(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/v1/me";
    f->req.repeated_header_problem =
        "The request has more than one Cerrojo-Session header.";
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "\"invalid_request\""));
    assert_non_null(strstr(f->reply.body, "more than one Cerrojo-Session"));
    assert_false(f->reply.close_connection);
    assert_int_equal(f->req.rejection, GW_REJECT_HEADER_REPEATED);
}

static void test_unroutable_target_gets_400(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_OPTIONS;
    f->req.path = NULL;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "\"invalid_request\""));
    assert_non_null(strstr(f->reply.body, "request target"));
    assert_int_equal(f->req.rejection, GW_REJECT_REQUEST_TARGET);
    assert_null(f->req.route);
}

static void test_options_asterisk_gets_204_with_allow(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_OPTIONS;
    f->req.path = NULL;
    f->req.asterisk_target = true;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 204);
    assert_null(f->reply.body);
    assert_int_equal(f->reply.allow, gw_routes_methods());
    assert_false(f->req.rejected);
    assert_null(f->req.route);
}

static void test_get_asterisk_gets_400(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = NULL;
    f->req.asterisk_target = true;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "request target"));
    assert_int_equal(f->req.rejection, GW_REJECT_REQUEST_TARGET);
}

static void test_head_at_limits_is_served(void **state)
{
    struct fixture *f = *state;

    f->req.method = GW_METHOD_GET;
    f->req.path = "/healthz";
    f->req.uri_bytes = GW_URI_BYTES_MAX;
    f->req.head_bytes = GW_HEAD_BYTES_MAX;
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    assert_int_equal(f->reply.status, 200);
}

#define PIPELINE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        PIPELINE_TEST(test_unknown_path_gets_404),
        PIPELINE_TEST(test_trace_gets_405_with_allow),
        PIPELINE_TEST(test_content_length_over_limit_gets_413),
        PIPELINE_TEST(test_body_at_limit_is_read),
        PIPELINE_TEST(test_discarded_body_gets_413_at_the_end),
        PIPELINE_TEST(test_non_json_content_type_gets_415),
        PIPELINE_TEST(test_compressed_body_on_sealed_route_gets_415),
        PIPELINE_TEST(test_body_on_get_route_gets_400),
        PIPELINE_TEST(test_preflight_from_configured_origin),
        PIPELINE_TEST(test_preflight_from_other_origin_gets_403),
        PIPELINE_TEST(test_request_from_other_origin_gets_403),
        PIPELINE_TEST(test_deep_envelope_gets_400),
        PIPELINE_TEST(test_protected_data_without_session_gets_400),
        PIPELINE_TEST(test_readyz_is_503_while_dependencies_unknown),
        PIPELINE_TEST(test_connection_over_limit_gets_429_and_close),
        PIPELINE_TEST(test_connection_under_limit_is_served),
        PIPELINE_TEST(test_long_request_target_gets_414),
        PIPELINE_TEST(test_large_head_gets_431),
        PIPELINE_TEST(test_head_at_limits_is_served),
        PIPELINE_TEST(test_ambiguous_framing_gets_400_and_close),
        PIPELINE_TEST(test_repeated_session_gets_400_kept_open),
        PIPELINE_TEST(test_unroutable_target_gets_400),
        PIPELINE_TEST(test_options_asterisk_gets_204_with_allow),
        PIPELINE_TEST(test_get_asterisk_gets_400),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

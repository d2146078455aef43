/* Tests for the HTTP/1.x request head parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http_head.h"

/* Parses head, a C string without the final empty line. */
static int parse(const char *head, struct cj_http_request *req)
{
    memset(req, 0, sizeof(*req));
    return cj_http_parse_head(head, strlen(head), req);
}

static void assert_path(const struct cj_http_request *req, const char *path)
{
    assert_int_equal(req->path_len, strlen(path));
    assert_memory_equal(req->path, path, req->path_len);
}

static void test_parse_get_http11(void **state)
{
    (void)state;
    struct cj_http_request req;

    assert_int_equal(parse("GET /metrics?name=x HTTP/1.1\r\n"
                           "Host: localhost:9092\r\n"
                           "Accept: text/plain\r\n",
                           &req),
                     0);
    assert_int_equal(req.method, CJ_HTTP_METHOD_GET);
    assert_path(&req, "/metrics");
    assert_true(req.http11);
    assert_true(req.has_host);
    assert_false(req.connection_close);
    assert_false(req.connection_keep_alive);
}

static void test_parse_methods(void **state)
{
    (void)state;
    struct cj_http_request req;

    assert_int_equal(parse("HEAD / HTTP/1.0\r\n", &req), 0);
    assert_int_equal(req.method, CJ_HTTP_METHOD_HEAD);
    assert_false(req.http11);
    assert_path(&req, "/");
    /* Methods are case-sensitive (RFC 9110 section 9.1). */
    assert_int_equal(parse("get / HTTP/1.0\r\n", &req), 0);
    assert_int_equal(req.method, CJ_HTTP_METHOD_OTHER);
    assert_int_equal(parse("OPTIONS / HTTP/1.0\r\n", &req), 0);
    assert_int_equal(req.method, CJ_HTTP_METHOD_OTHER);
}

static void test_parse_connection_options(void **state)
{
    (void)state;
    struct cj_http_request req;

    assert_int_equal(
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n", &req), 0);
    assert_true(req.connection_keep_alive);
    assert_false(req.connection_close);
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nHost: a\r\nconnection: TE ,\tclose\r\n", &req),
        0);
    assert_true(req.connection_close);
    assert_false(req.connection_keep_alive);
}

static void test_parse_rejects_malformed(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "",
        "hello\r\n",
        "GET /metrics\r\n",
        "GET  /metrics HTTP/1.0\r\n",
        "GET /metrics  HTTP/1.0\r\n",
        "GET metrics HTTP/1.0\r\n",
        "GET ftp://x/metrics HTTP/1.0\r\n",
        "GET http:/x/metrics HTTP/1.0\r\n",
        "GET http:///metrics HTTP/1.0\r\n",
        "GET http://user@x/metrics HTTP/1.0\r\n",
        "GET http://:9092/metrics HTTP/1.0\r\n",
        "GET http://x#f/metrics HTTP/1.0\r\n",
        "GET http://x\"y/metrics HTTP/1.0\r\n",
        "GET * HTTP/1.0\r\n",
        "GET /a\x7f HTTP/1.0\r\n",
        "GET /metrics HTTP/2.0\r\n",
        "GET /metrics http/1.0\r\n",
        "GET /metrics HTTP/1.0\r\r\n",
        "GET /metrics HTTP/1.0\rHost: x\n",
        "GET /metrics HTTP/1.0",
        "G(T /metrics HTTP/1.0\r\n",
        "GET /metrics HTTP/1.1\r\n",
        "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
        "GET /metrics HTTP/1.0\r\nno colon here\r\n",
        "GET /metrics HTTP/1.0\r\nBad Name: x\r\n",
        "GET /metrics HTTP/1.0\r\nName : x\r\n",
        "GET /metrics HTTP/1.0\r\n: x\r\n",
        "GET /metrics HTTP/1.0\r\nA: b\r\n folded\r\n",
        "GET /metrics HTTP/1.0\r\nA: b\x01\r\n",
        "GET /metrics HTTP/1.0\r\nA: b\rc\r\n",
        "GET /metrics HTTP/1.0\r\nContent-Length: -1\r\n",
        "GET /metrics HTTP/1.0\r\nContent-Length: \r\n",
        "GET /metrics HTTP/1.0\r\nContent-Length: 0, 0\r\n",
    };
    struct cj_http_request req;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        int status = parse(heads[i], &req);
        if (status != 400) {
            print_error("head %zu returned %d\n", i, status);
        }
        assert_int_equal(status, 400);
    }
}

static void test_parse_absolute_form_path(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        const char *path;
    } cases[] = {
        {"GET http://x/metrics HTTP/1.0\r\n", "/metrics"},
        {"GET HTTP://localhost:9092/metrics?a=b HTTP/1.0\r\n", "/metrics"},
        {"GET https://x/metrics HTTP/1.0\r\n", "/metrics"},
        {"GET http://x/other/metrics HTTP/1.0\r\n", "/other/metrics"},
        {"GET http://x HTTP/1.0\r\n", "/"},
        {"GET http://x?a=b HTTP/1.0\r\n", "/"},
        {"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n", "/metrics"},
        {"GET http://[::1]:9092/metrics HTTP/1.0\r\n", "/metrics"},
        {"GET http://a-b.example_c~d%41!$&'()*+,;=/metrics HTTP/1.0\r\n",
         "/metrics"},
    };
    struct cj_http_request req;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = parse(cases[i].head, &req);
        if (status != 0) {
            print_error("head %zu returned %d\n", i, status);
        }
        assert_int_equal(status, 0);
        assert_path(&req, cases[i].path);
    }
}

static void test_target_path_by_form(void **state)
{
    (void)state;
    /* Each target and its path, or NULL when the target is rejected. */
    static const struct {
        const char *target;
        const char *path;
    } cases[] = {
        {"/v1/me?x=1", "/v1/me?x=1"},
        {"/", "/"},
        {"hTTpS://x:1/v1/me", "/v1/me"},
        {"http://x?x=1", "/"},
        {"http://x", "/"},
        {"", NULL},
        {"*", NULL},
        {"v1/me", NULL},
        {"ftp://x/v1/me", NULL},
        {"http://", NULL},
        {"http://@x/v1/me", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *target = cases[i].target;
        const char *path = NULL;
        size_t path_len = 0;
        bool ok = cj_http_target_path(target, strlen(target), &path, &path_len);

        if (ok != (cases[i].path != NULL)) {
            print_error("target \"%s\" %s\n", target,
                        ok ? "accepted" : "rejected");
        }
        assert_int_equal(ok, cases[i].path != NULL);
        if (ok) {
            assert_int_equal(path_len, strlen(cases[i].path));
            assert_memory_equal(path, cases[i].path, path_len);
        }
    }
}

static void test_parse_accepts_bare_lf(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "GET /metrics HTTP/1.1\nHost: x\n",
        "GET /metrics HTTP/1.1\r\nHost: x\n",
        "GET /metrics HTTP/1.1\nHost: x\r\n",
    };
    struct cj_http_request req;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        assert_int_equal(parse(heads[i], &req), 0);
        assert_int_equal(req.method, CJ_HTTP_METHOD_GET);
        assert_path(&req, "/metrics");
        assert_true(req.http11);
        assert_true(req.has_host);
    }
}

/* Checks cj_http_find_head_end on buf: expected_end is its result, and
 * expected_head the head length it reports when expected_end is not 0. */
static void assert_head_end(const char *buf, size_t expected_end,
                            size_t expected_head)
{
    size_t head_len = 0;
    size_t end = cj_http_find_head_end(buf, strlen(buf), &head_len);
    if (end != expected_end) {
        print_error("head end of \"%s\" is %zu\n", buf, end);
    }
    assert_int_equal(end, expected_end);
    if (expected_end != 0) {
        assert_int_equal(head_len, expected_head);
    }
}

static void test_find_head_end_line_endings(void **state)
{
    (void)state;
    /* "GET / HTTP/1.0" is 14 bytes. */
    assert_head_end("GET / HTTP/1.0\r\n\r\n", 18, 16);
    assert_head_end("GET / HTTP/1.0\n\n", 16, 15);
    assert_head_end("GET / HTTP/1.0\r\n\n", 17, 16);
    assert_head_end("GET / HTTP/1.0\n\r\n", 17, 15);
    assert_head_end("GET / HTTP/1.0\n\nGET", 16, 15);
    assert_head_end("GET / HTTP/1.0\nA: b\n\n", 21, 20);
}

static void test_find_head_end_incomplete(void **state)
{
    (void)state;
    assert_head_end("", 0, 0);
    assert_head_end("GET / HTTP/1.0", 0, 0);
    assert_head_end("GET / HTTP/1.0\r\n", 0, 0);
    assert_head_end("GET / HTTP/1.0\r\n\r", 0, 0);
    assert_head_end("GET / HTTP/1.0\n", 0, 0);
    assert_head_end("GET / HTTP/1.0\nA: b\r\n", 0, 0);
}

static void test_parse_nul_in_head_rejected(void **state)
{
    (void)state;
    static const char head[] = "GET /metrics HTTP/1.0\r\nA: b\0c\r\n";
    struct cj_http_request req = {0};

    assert_int_equal(cj_http_parse_head(head, sizeof(head) - 1, &req), 400);
}

static void test_parse_body_gets_413(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n",
        "POST /metrics HTTP/1.0\r\nContent-Length: 00010\r\n",
        "POST /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n",
    };
    struct cj_http_request req;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        assert_int_equal(parse(heads[i], &req), 413);
    }
    assert_int_equal(
        parse("POST /metrics HTTP/1.0\r\nContent-Length: 000\r\n", &req), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_get_http11),
        cmocka_unit_test(test_parse_methods),
        cmocka_unit_test(test_parse_connection_options),
        cmocka_unit_test(test_parse_rejects_malformed),
        cmocka_unit_test(test_parse_absolute_form_path),
        cmocka_unit_test(test_target_path_by_form),
        cmocka_unit_test(test_parse_accepts_bare_lf),
        cmocka_unit_test(test_find_head_end_line_endings),
        cmocka_unit_test(test_find_head_end_incomplete),
        cmocka_unit_test(test_parse_nul_in_head_rejected),
        cmocka_unit_test(test_parse_body_gets_413),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

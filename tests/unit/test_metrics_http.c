/* Tests for the /metrics HTTP server over real loopback sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"

/*
 * Seconds a test waits on a read before it fails. It only keeps a broken
 * server from hanging the test, because every expected response comes much
 * sooner.
 */
#define TEST_READ_GUARD_S 10
/* Timeout given to the server in the timeout test, in milliseconds. */
#define TEST_SHORT_TIMEOUT_MS 500
#define TEST_RESPONSE_MAX     65536
/* Slow reader test: minimum size of the rendered registry in bytes, the
 * client's receive buffer in bytes, and the requests it sends. */
#define TEST_LARGE_BODY_BYTES   (256 * 1024)
#define TEST_SMALL_RCVBUF_BYTES 4096
#define TEST_SLOW_REQUESTS      64
/*
 * Server timeout in the slow reader test, in milliseconds. Rendering the
 * large registry can hold the server's loop for hundreds of milliseconds
 * under a sanitizer on a loaded machine, and a shorter timeout could then
 * close the other client's connection before it is served.
 */
#define TEST_SLOW_TIMEOUT_MS 3000
/* Bytes read to check a status line. */
#define TEST_STATUS_LINE_MAX 32

struct fixture {
    struct cj_metrics *reg;
    struct cj_metrics_server *server;
    uint16_t port;
};

/* Starts a server with options (NULL for the defaults) on a free port. */
static void fixture_start(struct fixture *f,
                          const struct cj_metrics_server_options *options)
{
    f->reg = cj_metrics_new();
    assert_non_null(f->reg);
    cj_counter_inc(
        cj_metrics_counter(f->reg, "served_total", "Served.", NULL, 0));
    assert_int_equal(cj_metrics_server_start_options(f->reg, "127.0.0.1", 0,
                                                     options, &f->server),
                     CJ_OK);
    f->port = cj_metrics_server_port(f->server);
    assert_true(f->port != 0);
}

static void fixture_stop(struct fixture *f)
{
    cj_metrics_server_stop(f->server);
    cj_metrics_free(f->reg);
}

/* Connects to 127.0.0.1:port, with a receive buffer of rcvbuf bytes unless
 * rcvbuf is 0. */
static int connect_with_rcvbuf(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* Before connect, so that the advertised window follows it. */
    if (rcvbuf > 0) {
        assert_int_equal(
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    }
    struct timeval guard = {.tv_sec = TEST_READ_GUARD_S};
    assert_int_equal(
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard)), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static int connect_to(uint16_t port)
{
    return connect_with_rcvbuf(port, 0);
}

static void send_text(int fd, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until the peer closes; returns what came, NUL-terminated. */
static char *read_to_end(int fd)
{
    char *buf = calloc(1, TEST_RESPONSE_MAX);
    size_t len = 0;
    ssize_t r;
    assert_non_null(buf);
    while ((r = recv(fd, buf + len, TEST_RESPONSE_MAX - len - 1, 0)) > 0) {
        len += (size_t)r;
    }
    /* A reset after the response still counts as the end. */
    assert_true(r == 0 || errno == ECONNRESET);
    return buf;
}

/* Sends one raw request on a new connection; returns the whole response. */
static char *http_request(uint16_t port, const char *request)
{
    int fd = connect_to(port);
    send_text(fd, request);
    char *response = read_to_end(fd);
    close(fd);
    return response;
}

/* Sends GET /metrics on a new connection. Returns true on a 200 response,
 * false when the connection was closed without one. */
static bool try_get_metrics(uint16_t port)
{
    static const char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char response[TEST_STATUS_LINE_MAX + 1] = "";
    size_t len = 0;
    ssize_t r = 1;
    int fd = connect_to(port);
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) > 0) {
        while (len < TEST_STATUS_LINE_MAX && r > 0) {
            r = recv(fd, response + len, TEST_STATUS_LINE_MAX - len, 0);
            len += r > 0 ? (size_t)r : 0;
        }
    }
    close(fd);
    return strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0;
}

/* Returns the value of Content-Length in a response head, or -1. */
static long content_length(const char *head)
{
    const char *field = strstr(head, "\r\nContent-Length: ");
    return field != NULL ? strtol(field + 18, NULL, 10) : -1;
}

/*
 * Reads exactly one response from a connection that stays open: the head,
 * then Content-Length bytes of body unless has_body is false (a reply to
 * HEAD). Returns it NUL-terminated.
 */
static char *read_one_response(int fd, bool has_body)
{
    char *buf = calloc(1, TEST_RESPONSE_MAX);
    size_t len = 0;
    size_t want = 0;
    assert_non_null(buf);
    for (;;) {
        const char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL && want == 0) {
            long body = has_body ? content_length(buf) : 0;
            assert_true(body >= 0);
            want = (size_t)(end - buf) + 4 + (size_t)body;
        }
        if (want != 0 && len >= want) {
            break;
        }
        /* One byte at a time, so nothing of a next response is taken. */
        ssize_t r = recv(fd, buf + len, 1, 0);
        assert_int_equal(r, 1);
        len++;
    }
    assert_int_equal(len, want);
    return buf;
}

/* Asserts that the server has closed fd: the next read returns end of file
 * or a reset. */
static void assert_closed(int fd)
{
    char byte;
    ssize_t r = recv(fd, &byte, 1, 0);
    assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
}

static void test_get_serves_metrics(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);

    char *ok = http_request(f.port, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(ok, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(ok, "text/plain; version=0.0.4"));
    assert_non_null(strstr(ok, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(ok, "\r\n\r\n# HELP served_total Served.\n"));
    assert_non_null(strstr(ok, "served_total 1\n"));
    const char *body = strstr(ok, "\r\n\r\n") + 4;
    assert_int_equal(content_length(ok), (long)strlen(body));
    free(ok);

    char *query = http_request(f.port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(query, " 200 OK\r\n"));
    free(query);
    fixture_stop(&f);
}

static void test_other_path_is_not_found(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const char *const paths[] = {"/", "/metrics/", "/metricsx", "/other"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char request[64];
        snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\n\r\n", paths[i]);
        char *response = http_request(f.port, request);
        assert_non_null(strstr(response, "HTTP/1.1 404 Not Found\r\n"));
        assert_null(strstr(response, "served_total"));
        free(response);
    }
    fixture_stop(&f);
}

static void test_other_method_gets_405_allow(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const char *const requests[] = {
        "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        "DELETE /metrics HTTP/1.0\r\n\r\n",
        "get /metrics HTTP/1.0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        char *response = http_request(f.port, requests[i]);
        assert_non_null(strstr(response, "HTTP/1.1 405 Method Not Allowed"));
        assert_non_null(strstr(response, "\r\nAllow: GET, HEAD\r\n"));
        free(response);
    }
    fixture_stop(&f);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    char *get = http_request(f.port, "GET /metrics HTTP/1.0\r\n\r\n");
    char *head = http_request(f.port, "HEAD /metrics HTTP/1.0\r\n\r\n");

    assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
    const char *end = strstr(head, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end, "\r\n\r\n");
    /* The fields describe the body a GET would get. */
    assert_true(content_length(head) > 0);
    assert_int_equal(content_length(head), content_length(get));
    free(get);
    free(head);
    fixture_stop(&f);
}

static void test_keep_alive_serves_two_requests(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    int fd = connect_to(f.port);

    send_text(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    char *first = read_one_response(fd, true);
    assert_non_null(strstr(first, " 200 OK\r\n"));
    assert_non_null(strstr(first, "\r\nConnection: keep-alive\r\n"));
    assert_non_null(strstr(first, "served_total 1\n"));
    free(first);

    send_text(fd, "GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n");
    char *second = read_one_response(fd, true);
    assert_non_null(strstr(second, " 404 Not Found\r\n"));
    free(second);

    send_text(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
                  "Connection: close\r\n\r\n");
    char *last = read_one_response(fd, true);
    assert_non_null(strstr(last, " 200 OK\r\n"));
    assert_non_null(strstr(last, "\r\nConnection: close\r\n"));
    free(last);
    assert_closed(fd);
    close(fd);
    fixture_stop(&f);
}

static void test_bare_lf_request_served(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    int fd = connect_to(f.port);

    /* A server that needs CRLF would wait for more input until its
     * timeout and then close, so the read would fail. */
    send_text(fd, "GET /metrics HTTP/1.1\nHost: x\n\n");
    char *first = read_one_response(fd, true);
    assert_non_null(strstr(first, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(first, "served_total 1\n"));
    free(first);

    /* Mixed line endings and an empty line before the request line, then
     * a second request in the same send. */
    send_text(fd, "\nGET /metrics HTTP/1.1\r\nHost: x\n\r\n"
                  "GET /nothing HTTP/1.1\nHost: x\r\n\n");
    char *second = read_one_response(fd, true);
    assert_non_null(strstr(second, "HTTP/1.1 200 OK\r\n"));
    free(second);
    char *third = read_one_response(fd, true);
    assert_non_null(strstr(third, "HTTP/1.1 404 Not Found\r\n"));
    free(third);
    close(fd);
    fixture_stop(&f);
}

static void test_absolute_form_routes_by_path(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);

    char *ok = http_request(f.port, "GET http://127.0.0.1/metrics HTTP/1.1\r\n"
                                    "Host: 127.0.0.1\r\n"
                                    "Connection: close\r\n\r\n");
    assert_non_null(strstr(ok, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(ok, "served_total 1\n"));
    free(ok);

    char *missing = http_request(f.port, "GET http://x/other HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(missing, "HTTP/1.1 404 Not Found\r\n"));
    free(missing);
    fixture_stop(&f);
}

static void test_http10_keep_alive_on_request(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    int fd = connect_to(f.port);

    for (int i = 0; i < 2; i++) {
        send_text(fd, "HEAD /metrics HTTP/1.0\r\n"
                      "Connection: Keep-Alive\r\n\r\n");
        char *response = read_one_response(fd, false);
        assert_non_null(strstr(response, " 200 OK\r\n"));
        assert_non_null(strstr(response, "\r\nConnection: keep-alive\r\n"));
        free(response);
    }
    close(fd);
    fixture_stop(&f);
}

static void test_pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    int fd = connect_to(f.port);

    /* Both heads go in one send, with an empty line between them. */
    send_text(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
                  "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    char *first = read_one_response(fd, true);
    char *second = read_one_response(fd, true);
    assert_non_null(strstr(first, " 404 Not Found\r\n"));
    assert_non_null(strstr(second, " 200 OK\r\n"));
    free(first);
    free(second);
    close(fd);
    fixture_stop(&f);
}

static void test_oversized_head_gets_431(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    size_t filler = CJ_METRICS_HTTP_HEAD_MAX_BYTES + 1024;
    char *request = malloc(filler + 64);
    assert_non_null(request);
    int n = snprintf(request, 64, "GET /metrics HTTP/1.1\r\nX-Filler: ");
    memset(request + n, 'a', filler);
    strcpy(request + n + filler, "\r\n\r\n");

    char *response = http_request(f.port, request);
    assert_non_null(
        strstr(response, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_non_null(strstr(response, "\r\nConnection: close\r\n"));
    assert_null(strstr(response, "served_total"));
    free(response);
    free(request);
    fixture_stop(&f);
}

static void test_malformed_request_gets_400(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const char *const requests[] = {
        "hello\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "GET  /metrics HTTP/1.0\r\n\r\n",
        "GET metrics HTTP/1.0\r\n\r\n",
        "GET /metrics HTTP/2.0\r\n\r\n",
        "GET /metrics http/1.0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n\r\n", /* HTTP/1.1 without Host */
        "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nno colon here\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nBad Name: x\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nA: b\r\n folded\r\n\r\n",
        "GET /metrics HTTP/1.0\rA: b\r\n\r\n", /* bare CR */
        "GET /metrics HTTP/1.0\r\nA: b\x01\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nContent-Length: -1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        char *response = http_request(f.port, requests[i]);
        if (strstr(response, "HTTP/1.1 400 Bad Request\r\n") == NULL) {
            print_error("request %zu: %s\n", i, response);
        }
        assert_non_null(strstr(response, "HTTP/1.1 400 Bad Request\r\n"));
        assert_non_null(strstr(response, "\r\nConnection: close\r\n"));
        free(response);
    }
    fixture_stop(&f);
}

static void test_request_body_rejected(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    const char *const requests[] = {
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "POST /metrics HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /metrics HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        char *response = http_request(f.port, requests[i]);
        assert_non_null(strstr(response, "HTTP/1.1 413 Content Too Large\r\n"));
        assert_non_null(strstr(response, "\r\nConnection: close\r\n"));
        assert_null(strstr(response, "served_total"));
        free(response);
    }
    fixture_stop(&f);
}

/* Connection limit in the tests of a full connection table. */
#define TEST_SMALL_LIMIT 2

static void test_full_of_silent_closes_oldest(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_metrics_server_options options = {.connection_limit =
                                                    TEST_SMALL_LIMIT};
    fixture_start(&f, &options);
    /* Connections that never send a byte. The server accepts them in the
     * order they were made, so open[0] is idle the longest. */
    int open[TEST_SMALL_LIMIT];
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        open[i] = connect_to(f.port);
    }

    assert_true(try_get_metrics(f.port));
    assert_closed(open[0]);
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        close(open[i]);
    }
    fixture_stop(&f);
}

static void test_full_of_keep_alive_closes_oldest(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_metrics_server_options options = {.connection_limit =
                                                    TEST_SMALL_LIMIT};
    fixture_start(&f, &options);
    /* Each connection has its response and stays open for the next
     * request. */
    int open[TEST_SMALL_LIMIT];
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        open[i] = connect_to(f.port);
        send_text(open[i], "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        free(read_one_response(open[i], false));
    }

    assert_true(try_get_metrics(f.port));
    assert_closed(open[0]);
    /* The connection idle for a shorter time is still served. */
    send_text(open[1], "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    char *response = read_one_response(open[1], false);
    assert_non_null(strstr(response, "HTTP/1.1 200 OK\r\n"));
    free(response);
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        close(open[i]);
    }
    fixture_stop(&f);
}

static void test_full_mid_request_rejects_new(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_metrics_server_options options = {.connection_limit =
                                                    TEST_SMALL_LIMIT};
    fixture_start(&f, &options);
    /* Every connection has sent part of a request head. */
    int open[TEST_SMALL_LIMIT];
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        open[i] = connect_to(f.port);
        send_text(open[i], "GET /metrics HTTP/1.1\r\nHost:");
    }

    int extra = connect_to(f.port);
    assert_closed(extra);
    close(extra);

    /* The requests in progress were kept and complete. */
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        send_text(open[i], " x\r\n\r\n");
        char *response = read_one_response(open[i], true);
        assert_non_null(strstr(response, "HTTP/1.1 200 OK\r\n"));
        free(response);
    }

    /* Now that they wait between requests, a new client is served. */
    assert_true(try_get_metrics(f.port));
    for (int i = 0; i < TEST_SMALL_LIMIT; i++) {
        close(open[i]);
    }
    fixture_stop(&f);
}

static void test_stop_with_connection_open(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, NULL);
    int idle = connect_to(f.port);
    int partial = connect_to(f.port);
    send_text(partial, "GET /metrics HTTP/1.1\r\nHost:");
    send_text(idle, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    free(read_one_response(idle, false));

    /* Returns although both connections are open, and closes them. */
    fixture_stop(&f);
    assert_closed(idle);
    assert_closed(partial);
    close(idle);
    close(partial);
}

static void test_timeout_closes_idle_connection(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_metrics_server_options options = {.timeout_ms =
                                                    TEST_SHORT_TIMEOUT_MS};
    fixture_start(&f, &options);
    int served = connect_to(f.port);
    send_text(served, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    free(read_one_response(served, false));
    int silent = connect_to(f.port);
    int partial = connect_to(f.port);
    send_text(partial, "GET /metrics HTTP/1.1\r\n");

    /* Each read blocks until the server closes, well before the guard. */
    assert_closed(silent);
    assert_closed(partial);
    assert_closed(served);
    close(silent);
    close(partial);
    close(served);
    fixture_stop(&f);
}

/* Adds histogram families until the rendered registry is at least
 * TEST_LARGE_BODY_BYTES long; returns its length. */
static size_t grow_registry(struct cj_metrics *reg)
{
    static const double bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
    const char *labels[] = {"route"};
    size_t len = 0;

    for (int family = 0; len < TEST_LARGE_BODY_BYTES; family++) {
        char name[32];
        snprintf(name, sizeof(name), "large_%d_seconds", family);
        struct cj_metric *h =
            cj_metrics_histogram(reg, name, "Large.", labels, 1, bounds, 8);
        assert_non_null(h);
        for (int i = 0; i < CJ_METRICS_MAX_SERIES; i++) {
            char route[32];
            const char *values[] = {route};
            snprintf(route, sizeof(route), "/a/long/route/number/%d", i);
            cj_histogram_observe(cj_metric_series(h, values), i);
        }
        char *text = cj_metrics_render(reg, &len);
        assert_non_null(text);
        free(text);
    }
    return len;
}

static void test_slow_reader_does_not_block(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_metrics_server_options options = {.timeout_ms =
                                                    TEST_SLOW_TIMEOUT_MS};
    fixture_start(&f, &options);
    size_t body_len = grow_registry(f.reg);

    /* A client that asks for many responses and reads none: the server's
     * send buffer fills and its writes would block. */
    int slow = connect_with_rcvbuf(f.port, TEST_SMALL_RCVBUF_BYTES);
    for (int i = 0; i < TEST_SLOW_REQUESTS; i++) {
        send_text(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    }

    /* Other clients are still served meanwhile. */
    char *response = http_request(f.port, "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(response, " 200 OK\r\n"));
    free(response);

    /* Past its deadline the slow connection is closed with responses still
     * unsent. */
    usleep(TEST_SLOW_TIMEOUT_MS * 2 * 1000);
    char chunk[4096];
    size_t received = 0;
    ssize_t r;
    while ((r = recv(slow, chunk, sizeof(chunk), 0)) > 0) {
        received += (size_t)r;
    }
    assert_true(r == 0 || errno == ECONNRESET);
    assert_true(received < body_len * TEST_SLOW_REQUESTS);
    close(slow);
    fixture_stop(&f);
}

/* Tries for the port to come free, 50 times 100 ms apart. */
#define TEST_BIND_TRIES    50
#define TEST_BIND_PAUSE_US (100 * 1000)

/* Listens on a free loopback port, as a process being replaced would. */
static int hold_free_port(uint16_t *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Returns whether 127.0.0.1:port accepts a connection now. */
static bool port_accepts(uint16_t port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    assert_true(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

/* Releases a held port after a pause, as a process being replaced does
 * when its shutdown ends. */
struct port_release {
    pthread_t thread;
    int fd;
};

/* Pause before the port is released, in microseconds. */
#define TEST_RELEASE_AFTER_US (300 * 1000)

static void *release_port_later(void *arg)
{
    struct port_release *release = arg;

    usleep(TEST_RELEASE_AFTER_US);
    close(release->fd);
    return NULL;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_busy_port_taken_once_free(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *server = NULL;
    struct port_release release;
    uint16_t port = 0;
    bool served = false;

    assert_non_null(reg);
    release.fd = hold_free_port(&port);
    assert_int_equal(
        pthread_create(&release.thread, NULL, release_port_later, &release), 0);
    /* The start waits for the port, so it serves once it returns. */
    assert_int_equal(cj_metrics_server_start(reg, "127.0.0.1", port, &server),
                     CJ_OK);
    pthread_join(release.thread, NULL);
    for (int i = 0; i < TEST_BIND_TRIES && !served; i++) {
        served = port_accepts(port) && try_get_metrics(port);
        if (!served) {
            usleep(TEST_BIND_PAUSE_US);
        }
    }
    assert_true(served);
    cj_metrics_server_stop(server);
    cj_metrics_free(reg);
}

static void test_busy_port_fails_after_bind_wait(void **state)
{
    (void)state;
    struct cj_metrics_server_options options = {.bind_wait_ms = 300};
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *server = NULL;
    uint16_t port = 0;
    int holder = hold_free_port(&port);
    long long started_ms = now_ms();

    assert_non_null(reg);
    assert_int_equal(cj_metrics_server_start_options(reg, "127.0.0.1", port,
                                                     &options, &server),
                     CJ_ERR_UNAVAILABLE);
    assert_null(server);
    /* It waited for the process being replaced before giving up. */
    assert_true(now_ms() - started_ms >= options.bind_wait_ms);
    close(holder);
    cj_metrics_free(reg);
}

static void test_server_rejects_bad_address(void **state)
{
    (void)state;
    struct cj_metrics *reg = cj_metrics_new();
    struct cj_metrics_server *srv = NULL;
    assert_int_equal(cj_metrics_server_start(reg, "localhost", 0, &srv),
                     CJ_ERR_INVALID);
    assert_null(srv);
    cj_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_serves_metrics),
        cmocka_unit_test(test_other_path_is_not_found),
        cmocka_unit_test(test_other_method_gets_405_allow),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_keep_alive_serves_two_requests),
        cmocka_unit_test(test_bare_lf_request_served),
        cmocka_unit_test(test_absolute_form_routes_by_path),
        cmocka_unit_test(test_http10_keep_alive_on_request),
        cmocka_unit_test(test_pipelined_requests_answered_in_order),
        cmocka_unit_test(test_oversized_head_gets_431),
        cmocka_unit_test(test_malformed_request_gets_400),
        cmocka_unit_test(test_request_body_rejected),
        cmocka_unit_test(test_full_of_silent_closes_oldest),
        cmocka_unit_test(test_full_of_keep_alive_closes_oldest),
        cmocka_unit_test(test_full_mid_request_rejects_new),
        cmocka_unit_test(test_stop_with_connection_open),
        cmocka_unit_test(test_timeout_closes_idle_connection),
        cmocka_unit_test(test_slow_reader_does_not_block),
        cmocka_unit_test(test_busy_port_taken_once_free),
        cmocka_unit_test(test_busy_port_fails_after_bind_wait),
        cmocka_unit_test(test_server_rejects_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

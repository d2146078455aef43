/*
 * In-process tests of the gRPC server framework with the C client helper:
 * handler results and errors, caller context, the worker pool limits,
 * deadlines, health status, round-robin and graceful shutdown. Servers run
 * in plaintext on free loopback ports; TLS is covered by the integration
 * tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_internal.h"
#include "rpc_message.h"
#include "rpc_server.h"

/* Timeout of the calls that are expected to succeed, in milliseconds. */
#define CALL_TIMEOUT_MS 10000
/* Deadline of the call that must expire while queued, in milliseconds. */
#define SHORT_DEADLINE_MS 300
/* Shutdown grace of the overrun test, in milliseconds. */
#define SHORT_GRACE_MS 100
/* Graces the hook test waits for the hook before it fails. */
#define HOOK_WAIT_GRACES 20
/* Bytes of a test's captured log read back. */
#define LOG_READ_MAX 65536
/* Polling interval while waiting for server-side state, in microseconds. */
#define POLL_US 2000
/* Calls tried before round-robin must have used both servers. */
#define ROUND_ROBIN_MAX_CALLS 200

/* Shared by the handlers: a gate that holds blocking calls. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;
static int slow_entered;

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static int slow_entered_count(void)
{
    pthread_mutex_lock(&gate_lock);
    int n = slow_entered;
    pthread_mutex_unlock(&gate_lock);
    return n;
}

static ProtobufCMessage *text_response(const char *text)
{
    Cerrojo__V1__GetJwksResponse *resp = malloc(sizeof(*resp));
    cerrojo__v1__get_jwks_response__init(resp);
    resp->jwks_json = strdup(text);
    return &resp->base;
}

/* Replies "<server tag>|<event>|<user id>|<request id>". */
static enum cj_status echo(struct cj_rpc_call *call,
                           const ProtobufCMessage *request,
                           ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__RecordAuditRequest *req =
        (const Cerrojo__V1__RecordAuditRequest *)request;
    char text[512];
    snprintf(text, sizeof(text), "%s|%s|%s|%s", (const char *)state, req->event,
             cj_rpc_call_caller(call)->user_id, cj_rpc_call_request_id(call));
    *response = text_response(text);
    return CJ_OK;
}

static enum cj_status slow(struct cj_rpc_call *call,
                           const ProtobufCMessage *request,
                           ProtobufCMessage **response, void *state)
{
    (void)call;
    (void)request;
    (void)state;
    pthread_mutex_lock(&gate_lock);
    slow_entered++;
    while (!gate_open) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
    *response = text_response("slow done");
    return CJ_OK;
}

static enum cj_status fail_not_found(struct cj_rpc_call *call,
                                     const ProtobufCMessage *request,
                                     ProtobufCMessage **response, void *state)
{
    (void)request;
    (void)response;
    (void)state;
    cj_rpc_call_set_error(call, "thing '%s' not found", "x");
    return CJ_ERR_NOT_FOUND;
}

/* Rejects with RESOURCE_EXHAUSTED and a retry-after of the event's number
 * of seconds. */
static enum cj_status throttled(struct cj_rpc_call *call,
                                const ProtobufCMessage *request,
                                ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__RecordAuditRequest *req =
        (const Cerrojo__V1__RecordAuditRequest *)request;

    (void)response;
    (void)state;
    cj_rpc_call_set_retry_after(call, strtoll(req->event, NULL, 10));
    cj_rpc_call_set_error(call, "too many attempts");
    return CJ_ERR_RATE_LIMITED;
}

/* Sets a retry-after but succeeds: the value must not be sent. */
static enum cj_status retry_after_on_ok(struct cj_rpc_call *call,
                                        const ProtobufCMessage *request,
                                        ProtobufCMessage **response,
                                        void *state)
{
    (void)request;
    (void)state;
    cj_rpc_call_set_retry_after(call, 7);
    *response = text_response("fine");
    return CJ_OK;
}

static enum cj_status no_response(struct cj_rpc_call *call,
                                  const ProtobufCMessage *request,
                                  ProtobufCMessage **response, void *state)
{
    (void)call;
    (void)request;
    (void)response;
    (void)state;
    return CJ_OK;
}

#define TEST_METHOD(name, fn, is_blocking)                                     \
    {                                                                          \
        .path = "/test.Echo/" name,                                            \
        .request = &cerrojo__v1__record_audit_request__descriptor,             \
        .response = &cerrojo__v1__get_jwks_response__descriptor,               \
        .handler = (fn), .blocking = (is_blocking),                            \
        .allowed = {CJ_RPC_ANY_PLATFORM},                                      \
    }

static const struct cj_rpc_method test_methods[] = {
    TEST_METHOD("Echo", echo, false),
    TEST_METHOD("Slow", slow, true),
    TEST_METHOD("Fail", fail_not_found, false),
    TEST_METHOD("NoResponse", no_response, true),
    TEST_METHOD("Throttled", throttled, false),
    TEST_METHOD("RetryAfterOnOk", retry_after_on_ok, false),
};

struct fixture {
    struct cj_rpc_service service;
    struct cj_rpc_server *server;
    struct cj_rpc_client *client;
    char target[64];
};

/* Shutdown grace of the next fixture's server; 0 keeps the default. */
static int64_t fixture_grace_ms;
/* on_grace_expired hook of the next fixture's server, or NULL. */
static void (*fixture_grace_hook)(void *arg);

static void fixture_start_threads(struct fixture *f, const char *tag,
                                  size_t cq_threads, size_t worker_threads,
                                  size_t worker_queue)
{
    struct cj_rpc_server_options options = {
        .listen = "127.0.0.1:0",
        .plaintext = true,
        .shutdown_grace_ms = fixture_grace_ms,
        .on_grace_expired = fixture_grace_hook,
        .cq_threads = cq_threads,
        .worker_threads = worker_threads,
        .worker_queue = worker_queue,
    };
    f->service = (struct cj_rpc_service){
        .name = "test.Echo",
        .methods = test_methods,
        .n_methods = sizeof(test_methods) / sizeof(test_methods[0]),
        .state = (void *)tag,
    };
    assert_int_equal(cj_rpc_server_create(&f->service, &options, &f->server),
                     CJ_OK);
    assert_int_equal(cj_rpc_server_start(f->server), CJ_OK);
    snprintf(f->target, sizeof(f->target), "127.0.0.1:%d",
             cj_rpc_server_port(f->server));
    struct cj_rpc_client_options client_options = {
        .targets = f->target,
        .plaintext = true,
    };
    assert_int_equal(cj_rpc_client_create(&client_options, &f->client), CJ_OK);
}

static void fixture_start(struct fixture *f, const char *tag,
                          size_t worker_threads, size_t worker_queue)
{
    fixture_start_threads(f, tag, 0, worker_threads, worker_queue);
}

static void fixture_stop(struct fixture *f)
{
    cj_rpc_client_destroy(f->client);
    cj_rpc_server_destroy(f->server);
}

/* Calls a test method with `event`; returns the status, fills text. */
static enum cj_status call_text(struct cj_rpc_client *client, const char *name,
                                const struct cj_caller_context *caller,
                                int64_t timeout_ms, char *text, size_t size,
                                char *error)
{
    Cerrojo__V1__RecordAuditRequest req =
        CERROJO__V1__RECORD_AUDIT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char path[64];

    req.event = (char *)"ev";
    snprintf(path, sizeof(path), "/test.Echo/%s", name);
    enum cj_status st = cj_rpc_client_call(
        client, path, &req.base, &cerrojo__v1__get_jwks_response__descriptor,
        caller, timeout_ms, &resp, NULL, error);
    if (st == CJ_OK && text != NULL) {
        snprintf(text, size, "%s",
                 ((Cerrojo__V1__GetJwksResponse *)resp)->jwks_json);
    }
    cj_rpc_message_free(resp);
    return st;
}

static void test_echo_carries_caller_context(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_caller_context caller;
    char text[512];
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    fixture_start(&f, "A", 2, 8);
    memset(&caller, 0, sizeof(caller));
    snprintf(caller.user_id, sizeof(caller.user_id), "u-9");
    snprintf(caller.request_id, sizeof(caller.request_id), "r-9");
    caller.channel = CJ_CHANNEL_STATEFUL;
    assert_int_equal(call_text(f.client, "Echo", &caller, CALL_TIMEOUT_MS, text,
                               sizeof(text), error),
                     CJ_OK);
    assert_string_equal(text, "A|ev|u-9|r-9");

    /* Without a caller context the framework makes up a request id. */
    assert_int_equal(call_text(f.client, "Echo", NULL, CALL_TIMEOUT_MS, text,
                               sizeof(text), error),
                     CJ_OK);
    assert_int_equal(strlen(text), strlen("A|ev||") + 32);
    fixture_stop(&f);
}

static void test_handler_error_reaches_client(void **state)
{
    (void)state;
    struct fixture f;
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    Cerrojo__V1__RecordAuditRequest req =
        CERROJO__V1__RECORD_AUDIT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int code = -1;

    fixture_start(&f, "A", 2, 8);
    assert_int_equal(
        cj_rpc_client_call(f.client, "/test.Echo/Fail", &req.base,
                           &cerrojo__v1__get_jwks_response__descriptor, NULL,
                           CALL_TIMEOUT_MS, &resp, &code, error),
        CJ_ERR_NOT_FOUND);
    assert_null(resp);
    assert_int_equal(code, GRPC_STATUS_NOT_FOUND);
    assert_string_equal(error, "thing 'x' not found");
    fixture_stop(&f);
}

/* Calls Throttled with `seconds` as the event; returns the result. */
static void call_throttled(struct fixture *f, const char *seconds,
                           struct cj_rpc_call_result *result)
{
    Cerrojo__V1__RecordAuditRequest req =
        CERROJO__V1__RECORD_AUDIT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;

    req.event = (char *)seconds;
    assert_int_equal(
        cj_rpc_client_call_result(f->client, "/test.Echo/Throttled", &req.base,
                                  &cerrojo__v1__get_jwks_response__descriptor,
                                  NULL, CALL_TIMEOUT_MS, &resp, result),
        CJ_ERR_RATE_LIMITED);
    assert_null(resp);
}

static void test_retry_after_reaches_client(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_rpc_call_result result;

    fixture_start(&f, "A", 2, 8);
    call_throttled(&f, "42", &result);
    assert_int_equal(result.grpc_code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(result.error, "too many attempts");
    assert_int_equal(result.retry_after_s, 42);

    call_throttled(&f, "999999999", &result);
    assert_int_equal(result.retry_after_s, CJ_RETRY_AFTER_MAX_S);

    /* 0 sends no trailer. */
    call_throttled(&f, "0", &result);
    assert_int_equal(result.retry_after_s, 0);
    assert_string_equal(result.error, "too many attempts");
    fixture_stop(&f);
}

static void test_retry_after_not_sent_on_ok(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_rpc_call_result result;
    Cerrojo__V1__RecordAuditRequest req =
        CERROJO__V1__RECORD_AUDIT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;

    fixture_start(&f, "A", 2, 8);
    assert_int_equal(cj_rpc_client_call_result(
                         f.client, "/test.Echo/RetryAfterOnOk", &req.base,
                         &cerrojo__v1__get_jwks_response__descriptor, NULL,
                         CALL_TIMEOUT_MS, &resp, &result),
                     CJ_OK);
    assert_non_null(resp);
    assert_int_equal(result.grpc_code, GRPC_STATUS_OK);
    assert_int_equal(result.retry_after_s, 0);
    cj_rpc_message_free(resp);
    fixture_stop(&f);
}

static void test_retry_after_parse_accepts_only_decimal(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t seconds;
    } cases[] = {
        {"1", 1},  {"30", 30},   {"86400", CJ_RETRY_AFTER_MAX_S},
        {"", 0},   {"0", 0},     {"030", 0},
        {"-5", 0}, {"+5", 0},    {" 5", 0},
        {"5s", 0}, {"86401", 0}, {"1000000", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            cj_rpc_retry_after_parse(cases[i].text, strlen(cases[i].text)),
            cases[i].seconds);
    }
}

static void test_missing_response_is_internal(void **state)
{
    (void)state;
    struct fixture f;
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    fixture_start(&f, "A", 2, 8);
    assert_int_equal(call_text(f.client, "NoResponse", NULL, CALL_TIMEOUT_MS,
                               NULL, 0, error),
                     CJ_ERR_INTERNAL);
    assert_string_equal(error, "/test.Echo/NoResponse returned no response");
    fixture_stop(&f);
}

static void test_unknown_method_unimplemented(void **state)
{
    (void)state;
    struct fixture f;
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    fixture_start(&f, "A", 2, 8);
    assert_int_equal(
        call_text(f.client, "Nope", NULL, CALL_TIMEOUT_MS, NULL, 0, error),
        CJ_ERR_UNIMPLEMENTED);
    assert_string_equal(error, "method /test.Echo/Nope is not implemented by "
                               "test.Echo");
    fixture_stop(&f);
}

struct slow_call {
    struct cj_rpc_client *client;
    int64_t timeout_ms;
    enum cj_status status;
    pthread_t thread;
};

static void *slow_call_main(void *arg)
{
    struct slow_call *c = arg;
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    c->status =
        call_text(c->client, "Slow", NULL, c->timeout_ms, NULL, 0, error);
    return NULL;
}

static void slow_call_start(struct slow_call *c, struct cj_rpc_client *client)
{
    c->client = client;
    c->timeout_ms = CALL_TIMEOUT_MS;
    c->status = CJ_ERR_INTERNAL;
    assert_int_equal(pthread_create(&c->thread, NULL, slow_call_main, c), 0);
}

static void wait_entered(int count)
{
    while (slow_entered_count() < count) {
        usleep(POLL_US);
    }
}

static void wait_queued(struct cj_rpc_server *server, size_t count)
{
    while (cj_pool_queued(server->pool) < count) {
        usleep(POLL_US);
    }
}

static void test_full_worker_queue_is_unavailable(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call running;
    struct slow_call queued;
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    slow_entered = 0;
    gate_set(false);
    fixture_start(&f, "A", 1, 1);
    slow_call_start(&running, f.client);
    wait_entered(1);
    slow_call_start(&queued, f.client);
    wait_queued(f.server, 1);

    assert_int_equal(
        call_text(f.client, "Slow", NULL, CALL_TIMEOUT_MS, NULL, 0, error),
        CJ_ERR_UNAVAILABLE);
    assert_non_null(strstr(error, "worker queue full"));

    gate_set(true);
    pthread_join(running.thread, NULL);
    pthread_join(queued.thread, NULL);
    assert_int_equal(running.status, CJ_OK);
    assert_int_equal(queued.status, CJ_OK);
    assert_int_equal(slow_entered_count(), 2);
    fixture_stop(&f);
}

/*
 * Blocking handlers run on the queue thread that received the call, so
 * with one polling thread, every call after the first depends on a spare
 * thread taking over the polling. Both blocking calls held at once and a
 * non-blocking call beside them must all be served.
 */
static void test_spare_threads_poll_while_handlers_block(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call held[2];
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    char text[64];

    slow_entered = 0;
    gate_set(false);
    fixture_start_threads(&f, "A", 1, 2, 4);
    slow_call_start(&held[0], f.client);
    slow_call_start(&held[1], f.client);
    wait_entered(2);
    assert_int_equal(call_text(f.client, "Echo", NULL, CALL_TIMEOUT_MS, text,
                               sizeof(text), error),
                     CJ_OK);
    assert_int_equal(cj_pool_queued(f.server->pool), 0);

    gate_set(true);
    for (int i = 0; i < 2; i++) {
        pthread_join(held[i].thread, NULL);
        assert_int_equal(held[i].status, CJ_OK);
    }
    fixture_stop(&f);
}

static void test_expired_call_skips_handler(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call running;
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    slow_entered = 0;
    gate_set(false);
    fixture_start(&f, "A", 1, 4);
    slow_call_start(&running, f.client);
    wait_entered(1);

    /* Queued behind the held call until its deadline passes. */
    assert_int_equal(
        call_text(f.client, "Slow", NULL, SHORT_DEADLINE_MS, NULL, 0, error),
        CJ_ERR_TIMEOUT);
    /* The server's deadline lags the client's by the request's transit
     * time; wait that long again so that it has surely passed too. */
    usleep(SHORT_DEADLINE_MS * 1000);
    gate_set(true);
    pthread_join(running.thread, NULL);
    assert_int_equal(running.status, CJ_OK);

    /* One worker runs jobs in order: once this call returns, the expired
     * one has been dequeued, and it must not have reached the handler. */
    assert_int_equal(
        call_text(f.client, "Slow", NULL, CALL_TIMEOUT_MS, NULL, 0, error),
        CJ_OK);
    assert_int_equal(slow_entered_count(), 2);
    fixture_stop(&f);
}

static void test_health_status_can_change(void **state)
{
    (void)state;
    struct fixture f;
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    Grpc__Health__V1__HealthCheckRequest req =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;

    fixture_start(&f, "A", 2, 8);
    assert_int_equal(cj_rpc_health_set(f.server, "", CJ_RPC_HEALTH_NOT_SERVING),
                     CJ_OK);
    assert_int_equal(
        cj_rpc_client_call(f.client, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor,
                           NULL, CALL_TIMEOUT_MS, &resp, NULL, error),
        CJ_OK);
    assert_int_equal(
        ((Grpc__Health__V1__HealthCheckResponse *)resp)->status,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    cj_rpc_message_free(resp);

    /* The service's own name keeps its own status. */
    req.service = (char *)"test.Echo";
    assert_int_equal(
        cj_rpc_client_call(f.client, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor,
                           NULL, CALL_TIMEOUT_MS, &resp, NULL, error),
        CJ_OK);
    assert_int_equal(
        ((Grpc__Health__V1__HealthCheckResponse *)resp)->status,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    cj_rpc_message_free(resp);
    fixture_stop(&f);
}

/* Periodic checks repeat the same status, and only a change is logged. */
static void test_health_repeat_not_logged(void **state)
{
    (void)state;
    struct fixture f;
    char path[] = "/tmp/cj-test-health-log-XXXXXX";
    char text[LOG_READ_MAX + 1];
    int fd = mkstemp(path);
    ssize_t n;
    int lines = 0;

    assert_true(fd >= 0);
    unlink(path);
    fixture_start(&f, "A", 2, 8);
    cj_log_set_fd(fd);
    assert_int_equal(cj_rpc_health_set(f.server, "", CJ_RPC_HEALTH_SERVING),
                     CJ_OK);
    assert_int_equal(cj_rpc_health_set(f.server, "", CJ_RPC_HEALTH_NOT_SERVING),
                     CJ_OK);
    assert_int_equal(cj_rpc_health_set(f.server, "", CJ_RPC_HEALTH_NOT_SERVING),
                     CJ_OK);
    assert_int_equal(cj_rpc_health_set(f.server, "", CJ_RPC_HEALTH_SERVING),
                     CJ_OK);
    cj_log_set_fd(STDERR_FILENO);
    n = pread(fd, text, LOG_READ_MAX, 0);
    close(fd);
    assert_true(n > 0);
    text[n] = '\0';
    for (const char *p = text; (p = strstr(p, "\"rpc.health_set\"")) != NULL;
         p++) {
        lines++;
    }
    /* SERVING -> NOT_SERVING and back: two changes, two lines. */
    assert_int_equal(lines, 2);
    fixture_stop(&f);
}

static void test_round_robin_uses_every_address(void **state)
{
    (void)state;
    struct fixture a;
    struct fixture b;
    struct cj_rpc_client *client = NULL;
    char targets[160];
    char text[512];
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    bool seen_a = false;
    bool seen_b = false;

    fixture_start(&a, "A", 2, 8);
    fixture_start(&b, "B", 2, 8);
    snprintf(targets, sizeof(targets), "%s,%s", a.target, b.target);
    struct cj_rpc_client_options options = {.targets = targets,
                                            .plaintext = true};
    assert_int_equal(cj_rpc_client_create(&options, &client), CJ_OK);
    for (int i = 0; i < ROUND_ROBIN_MAX_CALLS && !(seen_a && seen_b); i++) {
        assert_int_equal(call_text(client, "Echo", NULL, CALL_TIMEOUT_MS, text,
                                   sizeof(text), error),
                         CJ_OK);
        seen_a = seen_a || text[0] == 'A';
        seen_b = seen_b || text[0] == 'B';
    }
    assert_true(seen_a);
    assert_true(seen_b);
    cj_rpc_client_destroy(client);
    fixture_stop(&a);
    fixture_stop(&b);
}

static void test_client_rejects_bad_targets(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",       "127.0.0.1", "localhost:1,localhost:2", "127.0.0.1:1,[::1]:2",
        "[::1:5", ":50051",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cj_rpc_client *client = NULL;
        struct cj_rpc_client_options options = {.targets = bad[i],
                                                .plaintext = true};
        assert_int_equal(cj_rpc_client_create(&options, &client),
                         CJ_ERR_INVALID);
        assert_null(client);
    }
}

static void test_client_without_server_unavailable(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_rpc_client *client = NULL;
    char target[64];
    char error[CJ_RPC_CLIENT_ERROR_MAX];

    /* A port that was just free: nothing listens there any more. */
    fixture_start(&f, "A", 2, 8);
    snprintf(target, sizeof(target), "%s", f.target);
    fixture_stop(&f);
    struct cj_rpc_client_options options = {.targets = target,
                                            .plaintext = true};
    assert_int_equal(cj_rpc_client_create(&options, &client), CJ_OK);
    assert_int_equal(
        call_text(client, "Echo", NULL, CALL_TIMEOUT_MS, NULL, 0, error),
        CJ_ERR_UNAVAILABLE);
    cj_rpc_client_destroy(client);
}

struct shutdown_call {
    struct cj_rpc_server *server;
    pthread_t thread;
};

static void *shutdown_main(void *arg)
{
    struct shutdown_call *s = arg;
    cj_rpc_server_shutdown(s->server);
    return NULL;
}

static void test_shutdown_lets_call_in_flight_finish(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call running;
    struct shutdown_call stopper;

    slow_entered = 0;
    gate_set(false);
    fixture_start(&f, "A", 1, 4);
    slow_call_start(&running, f.client);
    wait_entered(1);

    stopper.server = f.server;
    assert_int_equal(
        pthread_create(&stopper.thread, NULL, shutdown_main, &stopper), 0);
    while (cj_rpc_accepting(f.server)) {
        usleep(POLL_US);
    }
    gate_set(true);
    pthread_join(stopper.thread, NULL);
    pthread_join(running.thread, NULL);
    assert_int_equal(running.status, CJ_OK);
    fixture_stop(&f);
}

/*
 * Runs a shutdown with its log written to a temporary file and returns
 * whether rpc.shutdown_done reported graceful (fails when it is absent).
 */
static bool shutdown_logged_graceful(struct fixture *f, int64_t overrun_ms)
{
    char path[] = "/tmp/cj-test-shutdown-log-XXXXXX";
    char text[LOG_READ_MAX + 1];
    struct shutdown_call stopper = {.server = f->server};
    int fd = mkstemp(path);
    ssize_t n;

    assert_true(fd >= 0);
    unlink(path);
    cj_log_set_fd(fd);
    assert_int_equal(
        pthread_create(&stopper.thread, NULL, shutdown_main, &stopper), 0);
    while (cj_rpc_accepting(f->server)) {
        usleep(POLL_US);
    }
    usleep((useconds_t)overrun_ms * 1000);
    gate_set(true);
    pthread_join(stopper.thread, NULL);
    cj_log_set_fd(STDERR_FILENO);
    n = pread(fd, text, LOG_READ_MAX, 0);
    close(fd);
    assert_true(n > 0);
    text[n] = '\0';
    const char *done = strstr(text, "\"rpc.shutdown_done\"");
    assert_non_null(done);
    return strstr(done, "\"graceful\":true") != NULL;
}

static void test_shutdown_within_grace_logged_graceful(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call running;

    slow_entered = 0;
    gate_set(false);
    fixture_start(&f, "A", 1, 4);
    slow_call_start(&running, f.client);
    wait_entered(1);
    assert_true(shutdown_logged_graceful(&f, 0));
    pthread_join(running.thread, NULL);
    assert_int_equal(running.status, CJ_OK);
    fixture_stop(&f);
}

/*
 * A client that gave up ends its call for gRPC, but the handler still
 * keeps its thread: a shutdown that waits for it past the grace must not be
 * logged as graceful.
 */
static void test_shutdown_overrun_logged_not_graceful(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call abandoned;

    slow_entered = 0;
    gate_set(false);
    fixture_grace_ms = SHORT_GRACE_MS;
    fixture_start(&f, "A", 1, 4);
    fixture_grace_ms = 0;
    slow_call_start(&abandoned, f.client);
    abandoned.timeout_ms = SHORT_DEADLINE_MS;
    wait_entered(1);
    pthread_join(abandoned.thread, NULL);
    assert_int_equal(abandoned.status, CJ_ERR_TIMEOUT);
    assert_false(shutdown_logged_graceful(&f, 2 * SHORT_GRACE_MS));
    fixture_stop(&f);
}

/* Times test_hook_opens_gate ran, read under gate_lock. */
static int grace_hook_runs;

/* Ends the blocked handlers, as a service's hook ends their store waits. */
static void test_hook_opens_gate(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate_lock);
    grace_hook_runs++;
    pthread_mutex_unlock(&gate_lock);
    gate_set(true);
}

static int grace_hook_run_count(void)
{
    pthread_mutex_lock(&gate_lock);
    int n = grace_hook_runs;
    pthread_mutex_unlock(&gate_lock);
    return n;
}

/*
 * The client gave up and closed its connection, so gRPC finishes its
 * shutdown at once while the handler still blocks: the hook must still run
 * when the grace ends, and the shutdown must not wait for the handler.
 */
static void test_shutdown_hook_runs_after_client_left(void **state)
{
    (void)state;
    struct fixture f;
    struct slow_call abandoned = {.timeout_ms = SHORT_DEADLINE_MS,
                                  .status = CJ_ERR_INTERNAL};
    struct shutdown_call stopper;

    slow_entered = 0;
    grace_hook_runs = 0;
    gate_set(false);
    fixture_grace_ms = SHORT_GRACE_MS;
    fixture_grace_hook = test_hook_opens_gate;
    fixture_start(&f, "A", 1, 4);
    fixture_grace_ms = 0;
    fixture_grace_hook = NULL;
    abandoned.client = f.client;
    assert_int_equal(
        pthread_create(&abandoned.thread, NULL, slow_call_main, &abandoned), 0);
    wait_entered(1);
    pthread_join(abandoned.thread, NULL);
    assert_int_equal(abandoned.status, CJ_ERR_TIMEOUT);
    cj_rpc_client_destroy(f.client);
    f.client = NULL;

    stopper.server = f.server;
    assert_int_equal(
        pthread_create(&stopper.thread, NULL, shutdown_main, &stopper), 0);
    int64_t waited_ms = 0;
    while (grace_hook_run_count() == 0 &&
           waited_ms < HOOK_WAIT_GRACES * SHORT_GRACE_MS) {
        usleep(POLL_US);
        waited_ms += POLL_US / 1000;
    }
    int runs = grace_hook_run_count();
    /* Frees a shutdown that never ran the hook, so the test can fail. */
    gate_set(true);
    pthread_join(stopper.thread, NULL);
    assert_int_equal(runs, 1);
    assert_int_equal(grace_hook_run_count(), 1);
    fixture_stop(&f);
}

static void test_invalid_method_table_rejected(void **state)
{
    (void)state;
    static const struct cj_rpc_method bad_methods[] = {{
        .path = "test.Echo/NoSlash",
        .request = &cerrojo__v1__record_audit_request__descriptor,
        .response = &cerrojo__v1__get_jwks_response__descriptor,
        .handler = echo,
    }};
    struct cj_rpc_service service = {
        .name = "test.Echo", .methods = bad_methods, .n_methods = 1};
    struct cj_rpc_server_options options = {.listen = "127.0.0.1:0",
                                            .plaintext = true};
    struct cj_rpc_server *server = NULL;

    assert_int_equal(cj_rpc_server_create(&service, &options, &server),
                     CJ_ERR_INVALID);
    assert_null(server);

    /* TLS without its files is rejected too. */
    service.methods = test_methods;
    options.plaintext = false;
    assert_int_equal(cj_rpc_server_create(&service, &options, &server),
                     CJ_ERR_INVALID);
    assert_null(server);
}

static void test_port_in_use_fails_to_bind(void **state)
{
    (void)state;
    struct fixture f;
    struct cj_rpc_server *second = NULL;

    fixture_start(&f, "A", 2, 8);
    struct cj_rpc_server_options options = {.listen = f.target,
                                            .plaintext = true};
    assert_int_equal(cj_rpc_server_create(&f.service, &options, &second),
                     CJ_ERR_UNAVAILABLE);
    assert_null(second);
    fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_carries_caller_context),
        cmocka_unit_test(test_handler_error_reaches_client),
        cmocka_unit_test(test_retry_after_reaches_client),
        cmocka_unit_test(test_retry_after_not_sent_on_ok),
        cmocka_unit_test(test_retry_after_parse_accepts_only_decimal),
        cmocka_unit_test(test_missing_response_is_internal),
        cmocka_unit_test(test_unknown_method_unimplemented),
        cmocka_unit_test(test_full_worker_queue_is_unavailable),
        cmocka_unit_test(test_spare_threads_poll_while_handlers_block),
        cmocka_unit_test(test_expired_call_skips_handler),
        cmocka_unit_test(test_health_status_can_change),
        cmocka_unit_test(test_health_repeat_not_logged),
        cmocka_unit_test(test_round_robin_uses_every_address),
        cmocka_unit_test(test_client_rejects_bad_targets),
        cmocka_unit_test(test_client_without_server_unavailable),
        cmocka_unit_test(test_shutdown_lets_call_in_flight_finish),
        cmocka_unit_test(test_shutdown_within_grace_logged_graceful),
        cmocka_unit_test(test_shutdown_overrun_logged_not_graceful),
        cmocka_unit_test(test_shutdown_hook_runs_after_client_left),
        cmocka_unit_test(test_invalid_method_table_rejected),
        cmocka_unit_test(test_port_in_use_fails_to_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests for the client library's handling of its state file around calls
 * that fail: a failed login must leave the stored session and tokens as
 * they were, a locked state file is not opened, and a call that needs
 * tokens fails before it sends anything when there are none. A stateful
 * request that gets no sealed response leaves the saved epoch key as it
 * was, but its sequence number stays used. Handshake, logout, the clock
 * check of stateful requests and the gateway URL's canonical form are
 * covered too. The server is a small HTTP responder on 127.0.0.1 that
 * sends one fixed error status and code to every request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "temp_dir_helper.h"

#include <sodium.h>

#include "cjc_client.h"
#include "cjc_http.h"
#include "cjc_state.h"

/* How long the responder waits in poll() before it checks its stop flag. */
#define TEST_POLL_INTERVAL_MS 50
/* Maximum connections one responder serves, so its thread always ends. */
#define TEST_MAX_CONNECTIONS 16
/* Maximum size of the request head that the responder reads, in bytes. */
#define TEST_REQUEST_MAX 8192
/* Maximum size of a state file that the tests compare, in bytes. */
#define TEST_STATE_MAX 4096
/* Lock wait for tests that expect a timeout, in milliseconds. */
#define TEST_LOCK_WAIT_MS 50

struct responder {
    int listen_fd;
    int port;
    int status;          /* HTTP status sent to every request */
    const char *code;    /* error code sent with it */
    const char *message; /* error message sent with it; NULL for a fixed one */
    const char *date;    /* Date header value; NULL for none */
    atomic_bool stop;
    int served;
    pthread_t thread;
};

static char dir[] = "/tmp/cjc_client_XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    return temp_dir_make(dir);
}

static int teardown(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

/* Binds a TCP socket to a free port on 127.0.0.1 and returns the port. */
static int bind_loopback(int *fd_out)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *fd_out = fd;
    return ntohs(addr.sin_port);
}

/* Reads a request head and sends r's error with Connection: close. */
static void answer(int fd, const struct responder *r)
{
    char request[TEST_REQUEST_MAX];
    char body[256];
    char date[96] = "";
    char response[640];
    size_t used = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    while (used < sizeof(request) - 1 &&
           poll(&p, 1, TEST_POLL_INTERVAL_MS * 10) == 1) {
        ssize_t n = read(fd, request + used, sizeof(request) - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        request[used] = '\0';
        if (strstr(request, "\r\n\r\n") != NULL)
            break;
    }
    snprintf(body, sizeof(body),
             "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", r->code,
             r->message != NULL ? r->message : "fixed test error");
    if (r->date != NULL)
        snprintf(date, sizeof(date), "Date: %s\r\n", r->date);
    int len = snprintf(response, sizeof(response),
                       "HTTP/1.1 %d Test\r\nContent-Type: application/json\r\n"
                       "Retry-After: 5\r\n%sContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       r->status, date, strlen(body), body);
    if (write(fd, response, (size_t)len) != len)
        fprintf(stderr, "responder: short write\n");
}

static void *respond_loop(void *arg)
{
    struct responder *r = arg;
    struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};

    while (!atomic_load(&r->stop) && r->served < TEST_MAX_CONNECTIONS) {
        if (poll(&p, 1, TEST_POLL_INTERVAL_MS) != 1)
            continue;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        answer(fd, r);
        close(fd);
        r->served++;
    }
    return NULL;
}

/* Starts a responder that sends status with code, message (NULL for a
 * fixed one) and a Date header of date (NULL for none) to every request. */
static void responder_start_message(struct responder *r, int status,
                                    const char *code, const char *message,
                                    const char *date)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->code = code;
    r->message = message;
    r->date = date;
    r->port = bind_loopback(&r->listen_fd);
    assert_int_equal(listen(r->listen_fd, 8), 0);
    assert_int_equal(pthread_create(&r->thread, NULL, respond_loop, r), 0);
}

/* Starts a responder that sends status with code to every request. */
static void responder_start_code(struct responder *r, int status,
                                 const char *code)
{
    responder_start_message(r, status, code, NULL, NULL);
}

static void responder_start(struct responder *r, int status)
{
    responder_start_code(r, status, "test_error");
}

static void responder_stop(struct responder *r)
{
    atomic_store(&r->stop, true);
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    close(r->listen_fd);
}

/* Writes a logged-in state file for url and stores its path in path. */
static void write_logged_in_state(const char *url, const char *name, char *path,
                                  size_t size)
{
    char err[256];
    json_t *st = json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:I},s:{s:s,s:s,s:I,s:i,s:i,s:i}}", "url", url,
        "tokens", "access_token", "access-token-value", "refresh_token",
        "refresh-token-value", "user_id", "user-1", "access_expires_at_ms",
        (json_int_t)4102444800000, "session", "id", "AAAAAAAAAAAAAAAAAAAAAA",
        "epoch_key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "created_at_ms", (json_int_t)1767225600000, "epoch_seconds", 900,
        "epoch", 0, "seq", 3);

    assert_non_null(st);
    snprintf(path, size, "%s/%s.json", dir, name);
    assert_int_equal(cjc_state_save(path, st, err, sizeof(err)), CJ_OK);
    json_decref(st);
}

/* Reads a whole small file into buf as a string and returns its length. */
static size_t read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/*
 * Logs in through a client on url with state_path and checks that the
 * call fails with want_rc and that the state file is byte for byte the
 * one from before.
 */
static void check_failed_login_keeps_state(const char *url,
                                           const char *state_path,
                                           enum cjc_mode mode,
                                           enum cj_status want_rc,
                                           long want_http_status)
{
    struct cjc_client_options opts = {.url = url, .state_path = state_path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    json_t *out = NULL;
    size_t before_len = read_file(state_path, before, sizeof(before));

    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_equal(
        cjc_login(client, "user5", "wrong password", mode, &out, &err),
        want_rc);
    assert_null(out);
    assert_int_equal(err.http_status, want_http_status);
    assert_true(cjc_client_has_session(client));
    cjc_client_close(client);

    size_t after_len = read_file(state_path, after, sizeof(after));
    assert_int_equal(after_len, before_len);
    assert_string_equal(after, before);
}

/* Serves `http_status` to every login in both modes and checks that each
 * failed login leaves the saved state as it was. */
static void check_answer_keeps_tokens(int http_status, enum cj_status want,
                                      const char *name)
{
    struct responder r;
    char url[64], path[256];

    responder_start(&r, http_status);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_logged_in_state(url, name, path, sizeof(path));
    check_failed_login_keeps_state(url, path, CJC_MODE_STATELESS, want,
                                   http_status);
    check_failed_login_keeps_state(url, path, CJC_MODE_STATEFUL, want,
                                   http_status);
    responder_stop(&r);
    assert_true(r.served >= 2);
}

static void test_login_rejected_keeps_tokens(void **state)
{
    (void)state;
    check_answer_keeps_tokens(401, CJ_ERR_UNAUTHENTICATED, "rejected");
}

static void test_login_unavailable_keeps_tokens(void **state)
{
    (void)state;
    check_answer_keeps_tokens(503, CJ_ERR_UNAVAILABLE, "unavailable");
}

static void test_login_unreachable_keeps_tokens(void **state)
{
    (void)state;
    char url[64], path[256];
    int fd;
    /* Bound but not listening: a connection is refused at once. */
    int port = bind_loopback(&fd);
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;
    json_t *before = NULL, *after = NULL;
    char errbuf[256];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    write_logged_in_state(url, "unreachable", path, sizeof(path));
    assert_int_equal(cjc_state_load(path, &before, errbuf, sizeof(errbuf)),
                     CJ_OK);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_not_equal(
        cjc_login(client, "user5", "password", CJC_MODE_STATELESS, &out, &err),
        CJ_OK);
    assert_int_equal(err.http_status, 0);
    cjc_client_close(client);
    close(fd);
    assert_int_equal(cjc_state_load(path, &after, errbuf, sizeof(errbuf)),
                     CJ_OK);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void test_open_rejects_malformed_pin(void **state)
{
    (void)state;
    char path[256];
    struct cjc_client_options opts = {
        .url = "http://127.0.0.1:1", .state_path = path, .n_pins = 1};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};

    snprintf(path, sizeof(path), "%s/pin.json", dir);
    opts.pins[0] = "not base64!";
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_ERR_INVALID);
    assert_null(client);
    assert_non_null(strstr(err.message, "invalid pin 'not base64!'"));
}

static void test_open_times_out_on_locked_state(void **state)
{
    (void)state;
    char path[256], lockerr[256];
    struct cjc_client_options opts = {.url = "http://127.0.0.1:1",
                                      .state_path = path,
                                      .lock_wait_ms = TEST_LOCK_WAIT_MS};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    int holder_fd = -1;

    snprintf(path, sizeof(path), "%s/busy.json", dir);
    assert_int_equal(cjc_state_lock(path, TEST_LOCK_WAIT_MS, &holder_fd,
                                    lockerr, sizeof(lockerr)),
                     CJ_OK);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_ERR_TIMEOUT);
    assert_null(client);
    assert_non_null(strstr(err.message, "another cerrojo command is using"));
    assert_non_null(strstr(err.message, path));

    /* Once the holder ends, the next client opens. */
    cjc_state_unlock(holder_fd);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    cjc_client_close(client);
}

/* Checks that a call that needs tokens failed as not logged in. */
static void check_not_logged_in(enum cj_status rc, const struct cjc_error *err)
{
    assert_int_equal(rc, CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(err->http_status, 0);
    assert_non_null(
        strstr(err->message, "not logged in; run 'cerrojo login' first"));
}

/* Runs every call that needs tokens on a client without any. */
static void check_calls_need_login(struct cjc_client *client)
{
    struct cjc_error err = {0};
    json_t *out = NULL;
    json_t *fields = json_pack("{s:s}", "k", "v");

    assert_non_null(fields);
    check_not_logged_in(cjc_me(client, &out, &err), &err);
    assert_null(out);
    check_not_logged_in(cjc_data_get(client, "private", &out, &err), &err);
    assert_null(out);
    check_not_logged_in(cjc_data_put(client, "private", fields, &out, &err),
                        &err);
    assert_null(out);
    assert_int_equal(cjc_refresh(client, &out, &err), CJ_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(err.message, "run 'cerrojo login' first"));
    assert_null(out);
    check_not_logged_in(cjc_logout(client, false, &err), &err);
    json_decref(fields);
}

static void test_no_login_unreachable_server(void **state)
{
    (void)state;
    char url[64], path[256];
    int fd;
    /* Bound but not listening: a connection would be refused at once. */
    int port = bind_loopback(&fd);
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(path, sizeof(path), "%s/no-login.json", dir);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    check_calls_need_login(client);
    cjc_client_close(client);
    close(fd);
}

static void test_no_login_sends_no_request(void **state)
{
    (void)state;
    struct responder r;
    char url[64], path[256];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};

    responder_start(&r, 500);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    snprintf(path, sizeof(path), "%s/no-request.json", dir);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    check_calls_need_login(client);
    cjc_client_close(client);
    responder_stop(&r);
    assert_int_equal(r.served, 0);
}

/* Epoch length of the stateful test session, in seconds. */
#define TEST_EPOCH_SECONDS 900
/* Epochs that have passed since the test session was created. */
#define TEST_EPOCHS_PASSED 3

/* How far ahead of the clock the session of the clock test was created,
 * in milliseconds. */
#define TEST_CLOCK_BEHIND_MS 60000

static json_int_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Writes a stateful state file whose session was created at created_ms,
 * with epoch 0 saved and sequence number 3. */
static void write_session_state(const char *url, const char *name,
                                json_int_t created_ms, char *path, size_t size)
{
    char err[256];
    json_t *st = json_pack(
        "{s:s,s:i,s:{s:s,s:s,s:I,s:i,s:i,s:i}}", "url", url, "clock_offset_ms",
        0, "session", "id", "AAAAAAAAAAAAAAAAAAAAAA", "epoch_key",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "created_at_ms",
        created_ms, "epoch_seconds", TEST_EPOCH_SECONDS, "epoch", 0, "seq", 3);

    assert_non_null(st);
    snprintf(path, size, "%s/%s.json", dir, name);
    assert_int_equal(cjc_state_save(path, st, err, sizeof(err)), CJ_OK);
    json_decref(st);
}

/* Writes a stateful state file whose saved epoch 0 is TEST_EPOCHS_PASSED
 * epochs behind the clock, with sequence number 3. */
static void write_stateful_state(const char *url, const char *name, char *path,
                                 size_t size)
{
    json_int_t created_ms =
        now_ms() - (json_int_t)TEST_EPOCHS_PASSED * TEST_EPOCH_SECONDS * 1000 -
        1000;

    write_session_state(url, name, created_ms, path, size);
}

/* Loads the saved session of the state file at path, which may be a
 * symbolic link. The path is resolved first, as the client does, because
 * cjc_state_load rejects a link. */
static json_t *saved_session(const char *path)
{
    char err[256], resolved[PATH_MAX];
    json_t *st = NULL;

    assert_int_equal(cjc_state_resolve_path(path, resolved, sizeof(resolved),
                                            err, sizeof(err)),
                     CJ_OK);
    assert_int_equal(cjc_state_load(resolved, &st, err, sizeof(err)), CJ_OK);
    json_t *session = json_incref(json_object_get(st, "session"));
    json_decref(st);
    assert_non_null(session);
    return session;
}

/* Sends `me` on the stateful session, which gets a plain 503 from the
 * responder, and returns the session saved in the file before close. */
static json_t *stateful_me_unanswered(const char *url, const char *path,
                                      bool save_before_send)
{
    struct cjc_client_options opts = {
        .url = url, .state_path = path, .save_before_send = save_before_send};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;

    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_equal(cjc_me(client, &out, &err), CJ_ERR_UNAVAILABLE);
    assert_null(out);
    json_t *before_close = saved_session(path);
    cjc_client_close(client);
    return before_close;
}

static void test_unanswered_request_keeps_epoch(void **state)
{
    struct responder r;
    char url[64], path[256];
    (void)state;

    responder_start(&r, 503);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_stateful_state(url, "epoch", path, sizeof(path));

    /* With save_before_send the sequence number is on disk before the
     * request goes out. */
    json_t *s = stateful_me_unanswered(url, path, true);
    assert_int_equal(json_integer_value(json_object_get(s, "seq")), 4);
    assert_int_equal(json_integer_value(json_object_get(s, "epoch")), 0);
    json_decref(s);

    /* Without it the file changes only at close. */
    s = stateful_me_unanswered(url, path, false);
    assert_int_equal(json_integer_value(json_object_get(s, "seq")), 4);
    json_decref(s);

    /* No response opened under epoch 3, so the saved key stays at epoch 0,
     * and no sequence number was used twice. */
    s = saved_session(path);
    assert_int_equal(json_integer_value(json_object_get(s, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(s, "epoch")), 0);
    assert_string_equal(json_string_value(json_object_get(s, "epoch_key")),
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    json_decref(s);
    responder_stop(&r);
    assert_int_equal(r.served, 2);
}

static void test_state_link_save_updates_target(void **state)
{
    struct responder r;
    char url[64], path[256], link_path[300], link_lock[310];
    struct stat st;
    (void)state;

    responder_start(&r, 503);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_stateful_state(url, "link-target", path, sizeof(path));
    snprintf(link_path, sizeof(link_path), "%s/link.json", dir);
    assert_int_equal(symlink(path, link_path), 0);

    json_t *s = stateful_me_unanswered(url, link_path, true);
    json_decref(s);
    responder_stop(&r);

    /* The link still names the target, which got the used sequence
     * number, and the lock was taken beside the target. */
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    s = saved_session(path);
    assert_int_equal(json_integer_value(json_object_get(s, "seq")), 4);
    json_decref(s);
    snprintf(link_lock, sizeof(link_lock), "%s.lock", link_path);
    assert_int_equal(lstat(link_lock, &st), -1);
}

static void test_open_rejects_folder_state(void **state)
{
    char path[256], lock_path[300];
    struct cjc_client_options opts = {.url = "http://127.0.0.1:1",
                                      .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    struct stat st;
    (void)state;

    snprintf(path, sizeof(path), "%s/folder-state", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_ERR_INVALID);
    assert_null(client);
    assert_non_null(strstr(err.message, "is a folder; name a file"));
    assert_null(strstr(err.message, "chmod"));
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    assert_int_equal(lstat(lock_path, &st), -1);
}

/* Sets member of the session (or of the state when session is false) in
 * the state file at path to value, which the call takes. */
static void damage_state(const char *path, bool session, const char *member,
                         json_t *value)
{
    char err[256];
    json_t *st = NULL;

    assert_int_equal(cjc_state_load(path, &st, err, sizeof(err)), CJ_OK);
    json_object_set_new(session ? json_object_get(st, "session") : st, member,
                        value);
    assert_int_equal(cjc_state_save(path, st, err, sizeof(err)), CJ_OK);
    json_decref(st);
}

static void test_open_rejects_invalid_session_values(void **state)
{
    const struct {
        bool session;
        const char *member;
        json_t *value;
        const char *want;
    } cases[] = {
        {true, "created_at_ms", json_integer(0),
         "has an invalid session (created_at_ms)"},
        {false, "clock_offset_ms", json_integer(INT64_C(1) << 62),
         "has an invalid clock offset (clock_offset_ms)"},
        {false, "clock_offset_ms", json_integer(-(INT64_C(1) << 62)),
         "has an invalid clock offset (clock_offset_ms)"},
        {true, "id", json_string("../../etc"), "has an invalid session (id)"},
        {true, "id", json_string("AAAAAAAAAAAAAAAAAAAAAAA"),
         "has an invalid session (id)"},
        {true, "seq", json_integer((INT64_C(1) << 53) - 1),
         "has an invalid session (seq)"},
    };
    char url[64], path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    (void)state;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", 8080);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_stateful_state(url, "damaged", path, sizeof(path));
        damage_state(path, cases[i].session, cases[i].member, cases[i].value);
        read_file(path, before, sizeof(before));

        opts.replace_other_login = false;
        assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_ERR_INVALID);
        assert_null(client);
        assert_non_null(strstr(err.message, path));
        assert_non_null(strstr(err.message, cases[i].want));
        assert_non_null(strstr(err.message, "run 'cerrojo login'"));
        assert_null(strstr(err.message, "clock and run"));

        /* A login replaces the session, so it opens the file, which stays
         * as it was until a login succeeds. */
        opts.replace_other_login = true;
        assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
        assert_false(cjc_client_has_session(client));
        cjc_client_close(client);
        read_file(path, after, sizeof(after));
        assert_string_equal(after, before);
    }
}

/* The gateway's message for a request timestamp outside its window. */
#define TEST_STALE_MESSAGE                                                     \
    "The request timestamp is outside the accepted window; check the clock "   \
    "offset."

/* Sends `me` on a stateful session to a responder that rejects its
 * timestamp with a Date header of date, and returns the message. */
static void me_with_stale_timestamp(const char *name, const char *date,
                                    char *message, size_t size)
{
    struct responder r;
    char url[64], path[256];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;

    responder_start_message(&r, 409, "replayed", TEST_STALE_MESSAGE, date);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_stateful_state(url, name, path, sizeof(path));
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_not_equal(cjc_me(client, &out, &err), CJ_OK);
    assert_null(out);
    assert_int_equal(err.http_status, 409);
    assert_string_equal(err.code, "replayed");
    cjc_client_close(client);
    responder_stop(&r);
    snprintf(message, size, "%s", err.message);
}

static void test_plain_stale_timestamp_no_advice(void **state)
{
    char message[512];
    (void)state;

    /* The gateway seals a stale timestamp's 409, and the Date header is
     * unauthenticated, so a plain 409 gets no clock advice. */
    time_t hour_ago = time(NULL) - 3600;
    char date[64];
    struct tm tm;
    gmtime_r(&hour_ago, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    me_with_stale_timestamp("stale-date", date, message, sizeof(message));
    assert_null(strstr(message, "this machine's clock"));
    assert_null(strstr(message, "Correct the system clock"));
    assert_non_null(strstr(message, "unsealed response: "));
    assert_non_null(strstr(message, "timestamp"));
}

static void test_replayed_request_message_kept(void **state)
{
    struct responder r;
    char url[64], path[256];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;
    (void)state;

    /* A replay that is not about the clock keeps the server's message. */
    responder_start_message(&r, 409, "replayed",
                            "The sealed request was already used or is too "
                            "old.",
                            NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_stateful_state(url, "replayed", path, sizeof(path));
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_not_equal(cjc_me(client, &out, &err), CJ_OK);
    assert_non_null(strstr(err.message, "was already used"));
    assert_null(strstr(err.message, "this machine's clock"));
    cjc_client_close(client);
    responder_stop(&r);
}

/* Checks that a failed call left the state file byte for byte as it was
 * and that the responder got no request. */
static void check_state_unchanged(const char *path, const char *before,
                                  struct responder *r)
{
    char after[TEST_STATE_MAX];

    read_file(path, after, sizeof(after));
    assert_string_equal(after, before);
    responder_stop(r);
    assert_int_equal(r->served, 0);
}

static void test_handshake_rejected_with_login(void **state)
{
    struct responder r;
    char url[64], path[256], before[TEST_STATE_MAX];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;
    (void)state;

    responder_start(&r, 500);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_logged_in_state(url, "handshake-login", path, sizeof(path));
    read_file(path, before, sizeof(before));
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_equal(cjc_handshake(client, &out, &err), CJ_ERR_PRECONDITION);
    assert_null(out);
    assert_non_null(strstr(err.message, "contains a login"));
    assert_non_null(strstr(err.message, "Run 'cerrojo logout'"));
    assert_non_null(strstr(err.message, "'cerrojo login'"));
    cjc_client_close(client);
    check_state_unchanged(path, before, &r);
}

static void test_clock_behind_session_named(void **state)
{
    struct responder r;
    char url[64], path[256], before[TEST_STATE_MAX];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *out = NULL;
    (void)state;

    responder_start(&r, 500);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_session_state(url, "clock-behind", now_ms() + TEST_CLOCK_BEHIND_MS,
                        path, sizeof(path));
    read_file(path, before, sizeof(before));
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_equal(cjc_me(client, &out, &err), CJ_ERR_INVALID);
    assert_null(out);
    assert_non_null(strstr(err.message, "the system clock is "));
    assert_non_null(strstr(err.message, " s behind the session's creation"));
    assert_non_null(strstr(err.message, "Correct the system clock"));
    assert_null(strstr(err.message, "handshake"));
    cjc_client_close(client);
    check_state_unchanged(path, before, &r);
}

/* Adds the tokens of a login to the state file at path. */
static void add_tokens(const char *path)
{
    char err[256];
    json_t *st = NULL;

    assert_int_equal(cjc_state_load(path, &st, err, sizeof(err)), CJ_OK);
    json_object_set_new(
        st, "tokens",
        json_pack("{s:s,s:s,s:s,s:I}", "access_token", "access-token-value",
                  "refresh_token", "refresh-token-value", "user_id", "user-1",
                  "access_expires_at_ms", (json_int_t)4102444800000));
    assert_int_equal(cjc_state_save(path, st, err, sizeof(err)), CJ_OK);
    json_decref(st);
}

static void test_logout_rejected_session_goes_stateless(void **state)
{
    struct responder r;
    char url[64], path[256], errbuf[256];
    struct cjc_client_options opts = {.url = url, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *st = NULL;
    (void)state;

    /* Every request gets a plain 401 invalid_token, as a session that the
     * server no longer has does. */
    responder_start_code(&r, 401, "invalid_token");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
    write_stateful_state(url, "logout-stateless", path, sizeof(path));
    add_tokens(path);
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_int_equal(cjc_logout(client, false, &err), CJ_ERR_UNAUTHENTICATED);
    cjc_client_close(client);
    responder_stop(&r);

    /* After the stateful logout, the client fetched the key list for a
     * stateless one. The plain 401 to that started no refresh and no
     * logout with the refresh token alone, because it may be forged. */
    assert_int_equal(r.served, 2);
    assert_false(err.sealed);
    assert_non_null(strstr(err.message, "came unsealed"));
    assert_non_null(strstr(err.message, "Run the command again"));
    /* The failed logout leaves the session and tokens in the state. */
    assert_int_equal(cjc_state_load(path, &st, errbuf, sizeof(errbuf)), CJ_OK);
    assert_non_null(json_object_get(st, "session"));
    assert_non_null(json_object_get(st, "tokens"));
    json_decref(st);
}

/* Checks that url normalizes to want. */
static void check_url(const char *url, const char *want)
{
    char out[CJC_URL_MAX];

    assert_int_equal(cjc_url_normalize(url, out, sizeof(out)), CJ_OK);
    assert_string_equal(out, want);
}

static void test_url_normalized_forms(void **state)
{
    char out[CJC_URL_MAX];
    (void)state;

    check_url("http://127.0.0.1:8080", "http://127.0.0.1:8080");
    check_url("http://127.0.0.1:8080/", "http://127.0.0.1:8080");
    check_url("HTTP://LocalHost:8080//", "http://localhost:8080");
    check_url("http://gw.example:80/", "http://gw.example");
    check_url("https://GW.example:443", "https://gw.example");
    check_url("https://gw.example:80", "https://gw.example:80");
    check_url("http://[::1]:8080/", "http://[::1]:8080");

    assert_int_equal(cjc_url_normalize("ftp://gw.example", out, sizeof(out)),
                     CJ_ERR_INVALID);
    assert_int_equal(cjc_url_normalize("gw.example:8080", out, sizeof(out)),
                     CJ_ERR_INVALID);
    assert_int_equal(
        cjc_url_normalize("http://gw.example/?a=1", out, sizeof(out)),
        CJ_ERR_INVALID);
    assert_int_equal(
        cjc_url_normalize("http://u:p@gw.example", out, sizeof(out)),
        CJ_ERR_INVALID);
    assert_int_equal(
        cjc_url_normalize("http://gw.example:8080/v1", out, sizeof(out)),
        CJ_ERR_INVALID);
    assert_int_equal(
        cjc_url_normalize("http://gw.example/api/", out, sizeof(out)),
        CJ_ERR_INVALID);
    assert_int_equal(cjc_url_normalize("http://gw.example:8080", out, 8),
                     CJ_ERR_TOO_LARGE);
}

static void test_open_accepts_other_url_spelling(void **state)
{
    char url[64], other[64], path[256], errbuf[256];
    struct cjc_client_options opts = {.url = other, .state_path = path};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_t *st = NULL;
    (void)state;

    /* The stored URL is compared in canonical form too, since a client
     * without the normalization stored --url as it was given. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", 8080);
    snprintf(other, sizeof(other), "HTTP://127.0.0.1:%d", 8080);
    write_logged_in_state(url, "url-spelling", path, sizeof(path));
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    cjc_client_close(client);
    assert_int_equal(cjc_state_load(path, &st, errbuf, sizeof(errbuf)), CJ_OK);
    assert_non_null(json_object_get(st, "tokens"));
    json_decref(st);

    /* Another port is another gateway. */
    snprintf(other, sizeof(other), "http://127.0.0.1:%d", 8081);
    assert_int_equal(cjc_client_open(&opts, &client, &err),
                     CJ_ERR_PRECONDITION);
    assert_non_null(strstr(err.message, "holds a login at "));
}

static void test_handshake_other_url_keeps_login(void **state)
{
    char path[256], session_path[256];
    struct cjc_client_options opts = {.url = "http://127.0.0.1:8081",
                                      .state_path = path,
                                      .replace_other_session = true};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    (void)state;

    /* A login at another URL stays, because a handshake binds no user. */
    write_logged_in_state("http://127.0.0.1:8080", "handshake-url", path,
                          sizeof(path));
    assert_int_equal(cjc_client_open(&opts, &client, &err),
                     CJ_ERR_PRECONDITION);
    assert_null(client);
    assert_non_null(strstr(err.message, "holds a login at "));

    /* A session without tokens is replaced. */
    write_stateful_state("http://127.0.0.1:8080", "handshake-session",
                         session_path, sizeof(session_path));
    opts.state_path = session_path;
    assert_int_equal(cjc_client_open(&opts, &client, &err), CJ_OK);
    assert_false(cjc_client_has_session(client));
    cjc_client_close(client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_rejected_keeps_tokens),
        cmocka_unit_test(test_login_unavailable_keeps_tokens),
        cmocka_unit_test(test_login_unreachable_keeps_tokens),
        cmocka_unit_test(test_open_rejects_malformed_pin),
        cmocka_unit_test(test_open_times_out_on_locked_state),
        cmocka_unit_test(test_no_login_unreachable_server),
        cmocka_unit_test(test_no_login_sends_no_request),
        cmocka_unit_test(test_unanswered_request_keeps_epoch),
        cmocka_unit_test(test_state_link_save_updates_target),
        cmocka_unit_test(test_open_rejects_folder_state),
        cmocka_unit_test(test_open_rejects_invalid_session_values),
        cmocka_unit_test(test_plain_stale_timestamp_no_advice),
        cmocka_unit_test(test_replayed_request_message_kept),
        cmocka_unit_test(test_handshake_rejected_with_login),
        cmocka_unit_test(test_clock_behind_session_named),
        cmocka_unit_test(test_logout_rejected_session_goes_stateless),
        cmocka_unit_test(test_url_normalized_forms),
        cmocka_unit_test(test_open_accepts_other_url_spelling),
        cmocka_unit_test(test_handshake_other_url_keeps_login),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Tests that the client library trusts only sealed responses on sealed
 * routes. A plain 2xx is rejected and stores nothing. A plain 401
 * invalid_token starts no refresh, while a sealed one still does. A login
 * or refresh whose sealed response lacks the session or the tokens leaves
 * the state file as it was, and so does a sealed error sent with status
 * 200. Plain 401s cannot turn `logout --all` into a logout of one login,
 * and plain error text reaches the caller without control characters. A
 * sealed stale-timestamp response that carries the server's clock sets the
 * stored offset and sends the request once more; a plain one does not. The
 * server is a fake gateway on 127.0.0.1. It
 * serves a signed key list and responds to every other request from a
 * script, either plain or sealed under the request's keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "temp_dir_helper.h"

#include <sodium.h>

#include "aead.h"
#include "cjc_client.h"
#include "cjc_state.h"
#include "envelope_stateless.h"
#include "jwk.h"
#include "jws.h"
#include "seal_pad.h"
#include "x25519.h"

/* How long the server waits in poll() before it checks its stop flag. */
#define FAKE_POLL_INTERVAL_MS 50
/* Maximum connections one server accepts, so its thread always ends. */
#define FAKE_MAX_CONNECTIONS 16
/* Maximum size of a request, head and body, in bytes. */
#define FAKE_REQUEST_MAX 16384
/* Maximum scripted responses per test. */
#define FAKE_MAX_RESPONSES 4
/* Maximum size of a state file that the tests compare, in bytes. */
#define TEST_STATE_MAX 4096
/* Key id of the fake server's HPKE key in its key list. */
#define FAKE_KEY_ID 7
/* A token expiry far in the future (2100-01-01), in Unix milliseconds, so
 * that the client never refreshes before a call. */
#define TEST_FAR_EXPIRY_MS INT64_C(4102444800000)

/* A response to one request other than GET /v1/keys. */
struct scripted_response {
    int status;
    const char *body;
    bool sealed; /* sealed under the request's keys, as the gateway does */
};

struct fake_gateway {
    int listen_fd;
    int port;
    uint8_t secret_key[CJ_HPKE_SK_LEN];
    char *keys_body; /* body of GET /v1/keys */
    struct scripted_response responses[FAKE_MAX_RESPONSES];
    size_t n_responses;
    size_t next_response;
    int refresh_requests; /* requests to POST /v1/refresh */
    /* Plaintext length in the "ct" of the last scripted request's body, or
     * 0 when it had none: the ct length less the AEAD tag. */
    size_t last_plaintext_len;
    /* ts_ms of the last request given a sealed response (its first 8 bytes of
     * plaintext, big-endian), or 0. */
    uint64_t last_ts_ms;
    atomic_bool stop;
    int served;
    pthread_t thread;
};

static char dir[] = "/tmp/cjc_sealed_XXXXXX";

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

/* Builds the body of GET /v1/keys: one active AES-256-GCM key, in a list
 * signed with a fresh Ed25519 key the way kms signs it. */
static char *signed_key_list(const uint8_t public_key[CJ_HPKE_PK_LEN])
{
    struct cj_jwk *signer = NULL;
    char *signer_json = NULL;
    char *key_text = cj_base64url_encode(public_key, CJ_HPKE_PK_LEN);
    char *payload = NULL;
    char *jws = NULL;
    char *body = NULL;
    json_t *doc;

    assert_non_null(key_text);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &signer), CJ_OK);
    assert_int_equal(cj_jwk_to_json(signer, &signer_json), CJ_OK);
    doc = json_pack(
        "{s:I,s:I,s:o,s:[{s:i,s:i,s:i,s:i,s:s,s:s}]}", "iat",
        (json_int_t)time(NULL), "exp", (json_int_t)(time(NULL) + 3600),
        "signer", json_loads(signer_json, 0, NULL), "keys", "key_id",
        FAKE_KEY_ID, "kem_id", 0x20, "kdf_id", 1, "aead_id",
        CJ_HPKE_AEAD_AES_256_GCM, "public_key", key_text, "state", "active");
    assert_non_null(doc);
    payload = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(cj_jws_sign(signer, "cerrojo-keys+jws",
                                 (const unsigned char *)payload,
                                 strlen(payload), &jws),
                     CJ_OK);
    json_decref(doc);
    doc = json_pack("{s:s}", "key_list_jws", jws);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    free(jws);
    free(payload);
    free(signer_json);
    free(key_text);
    cj_jwk_free(signer);
    return body;
}

/* Reads one request into buf: the head, then Content-Length bytes of
 * body. Returns the offset of the body, or 0 when the head is incomplete. */
static size_t read_request(int fd, char *buf, size_t size)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t used = 0;
    size_t body_at = 0;
    size_t body_len = 0;

    while (used < size - 1 && poll(&p, 1, FAKE_POLL_INTERVAL_MS * 10) == 1) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        if (body_at == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            char *length = strcasestr(buf, "\r\nContent-Length:");
            if (end == NULL)
                continue;
            body_at = (size_t)(end - buf) + 4;
            if (length != NULL && length < end)
                body_len = strtoul(length + 17, NULL, 10);
        }
        if (used >= body_at + body_len)
            break;
    }
    return body_at;
}

/* Seals body under the keys of the stateless request in envelope, as the
 * gateway does after it opened the request. Returns a new string. */
static char *seal_for_request(struct fake_gateway *g, const char *method,
                              const char *path, const char *envelope,
                              const char *body)
{
    struct cj_stateless_request req = {0};
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len = 0;
    uint8_t *aad = NULL, *plain = NULL;
    size_t aad_len = 0, plain_len = 0;
    char *sealed = NULL;
    size_t sealed_len = 0;

    assert_int_equal(
        cj_stateless_parse_request(envelope, strlen(envelope), &req, &why),
        CJ_OK);
    assert_int_equal(cj_stateless_build_aad(method, path, &aad, &aad_len),
                     CJ_OK);
    assert_int_equal(cj_stateless_open(&req.header, g->secret_key, req.enc,
                                       sizeof(req.enc), aad, aad_len, req.ct,
                                       req.ct_len, &plain, &plain_len, secret,
                                       &secret_len, &why),
                     CJ_OK);
    g->last_ts_ms = 0;
    for (size_t i = 0; i < sizeof(uint64_t) && i < plain_len; i++)
        g->last_ts_ms = (g->last_ts_ms << 8) | plain[i];
    assert_int_equal(cj_stateless_seal_response(
                         req.header.suite.aead_id, secret, secret_len, req.enc,
                         sizeof(req.enc), (const uint8_t *)body, strlen(body),
                         &sealed, &sealed_len),
                     CJ_OK);
    sodium_memzero(plain, plain_len);
    free(plain);
    free(aad);
    cj_stateless_request_clear(&req);
    return sealed;
}

/* Returns the plaintext length sealed in the "ct" member of a request
 * envelope (JSON text), or 0 when the text has no such member. */
static size_t sealed_plaintext_len(const char *envelope)
{
    json_t *doc = json_loads(envelope, 0, NULL);
    const char *ct = json_string_value(json_object_get(doc, "ct"));
    size_t bytes = ct != NULL ? strlen(ct) * 6 / 8 : 0;

    json_decref(doc);
    return bytes > CJ_AEAD_TAG_LEN ? bytes - CJ_AEAD_TAG_LEN : 0;
}

/* Responds to one connection with the key list or the next scripted
 * response. */
static void respond(int fd, struct fake_gateway *g)
{
    char request[FAKE_REQUEST_MAX];
    char method[16] = "", path[128] = "";
    char head[256];
    size_t body_at = read_request(fd, request, sizeof(request));
    char *sealed = NULL;
    const char *body = "{\"error\":{\"code\":\"internal\"}}";
    int status = 500;

    if (body_at > 0 && sscanf(request, "%15s %127s", method, path) == 2 &&
        strcmp(method, "GET") == 0 && strcmp(path, "/v1/keys") == 0) {
        status = 200;
        body = g->keys_body;
    } else if (body_at > 0 && g->next_response < g->n_responses) {
        const struct scripted_response *a = &g->responses[g->next_response++];

        if (strcmp(path, "/v1/refresh") == 0)
            g->refresh_requests++;
        g->last_plaintext_len = sealed_plaintext_len(request + body_at);
        status = a->status;
        body = a->body;
        if (a->sealed) {
            sealed = seal_for_request(g, method, path, request + body_at, body);
            body = sealed;
        }
    }
    int len = snprintf(head, sizeof(head),
                       "HTTP/1.1 %d Test\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                       status, strlen(body));
    if (write(fd, head, (size_t)len) != len ||
        write(fd, body, strlen(body)) != (ssize_t)strlen(body))
        fprintf(stderr, "fake gateway: short write\n");
    free(sealed);
}

static void *serve_loop(void *arg)
{
    struct fake_gateway *g = arg;
    struct pollfd p = {.fd = g->listen_fd, .events = POLLIN};

    while (!atomic_load(&g->stop) && g->served < FAKE_MAX_CONNECTIONS) {
        if (poll(&p, 1, FAKE_POLL_INTERVAL_MS) != 1)
            continue;
        int fd = accept(g->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        respond(fd, g);
        close(fd);
        g->served++;
    }
    return NULL;
}

/* Starts a fake gateway on a free port of 127.0.0.1 that sends responses,
 * in order, to the requests other than the key list. */
static void fake_start(struct fake_gateway *g,
                       const struct scripted_response *responses, size_t n)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    uint8_t public_key[CJ_HPKE_PK_LEN];

    assert_true(n <= FAKE_MAX_RESPONSES);
    memset(g, 0, sizeof(*g));
    memcpy(g->responses, responses, n * sizeof(*responses));
    g->n_responses = n;
    assert_int_equal(cj_x25519_keygen(g->secret_key, public_key), CJ_OK);
    g->keys_body = signed_key_list(public_key);
    assert_non_null(g->keys_body);
    g->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(g->listen_fd >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(g->listen_fd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(getsockname(g->listen_fd, (struct sockaddr *)&addr, &len),
                     0);
    g->port = ntohs(addr.sin_port);
    assert_int_equal(listen(g->listen_fd, 8), 0);
    assert_int_equal(pthread_create(&g->thread, NULL, serve_loop, g), 0);
}

static void fake_stop(struct fake_gateway *g)
{
    atomic_store(&g->stop, true);
    assert_int_equal(pthread_join(g->thread, NULL), 0);
    close(g->listen_fd);
    free(g->keys_body);
    sodium_memzero(g->secret_key, sizeof(g->secret_key));
}

/* Writes a state file with tokens, and a session when stateful, for the
 * fake gateway g, and stores its path in path. */
static void write_state(const struct fake_gateway *g, const char *name,
                        bool stateful, char *path, size_t size)
{
    char url[64], err[256];
    json_t *st;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", g->port);
    st = json_pack("{s:s,s:{s:s,s:s,s:s,s:I}}", "url", url, "tokens",
                   "access_token", "stored-access-token", "refresh_token",
                   "stored-refresh-token", "user_id", "user-1",
                   "access_expires_at_ms", (json_int_t)TEST_FAR_EXPIRY_MS);
    assert_non_null(st);
    if (stateful)
        json_object_set_new(
            st, "session",
            json_pack("{s:s,s:s,s:I,s:i,s:i,s:i}", "id",
                      "AAAAAAAAAAAAAAAAAAAAAA", "epoch_key",
                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                      "created_at_ms", (json_int_t)time(NULL) * 1000,
                      "epoch_seconds", 900, "epoch", 0, "seq", 3));
    snprintf(path, size, "%s/%s.json", dir, name);
    assert_int_equal(cjc_state_save(path, st, err, sizeof(err)), CJ_OK);
    json_decref(st);
}

/* Reads a whole small file into buf as a string. */
static void read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
}

static void open_client(const struct fake_gateway *g, const char *path,
                        struct cjc_client **client, struct cjc_error *err)
{
    char url[64];
    struct cjc_client_options opts = {.url = url, .state_path = path};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", g->port);
    assert_int_equal(cjc_client_open(&opts, client, err), CJ_OK);
}

/* A TokenSet of other tokens, as a forged login or refresh would carry. */
#define OTHER_TOKEN_SET                                                        \
    "{\"access_token\":\"other-access-token\",\"refresh_token\":"              \
    "\"other-refresh-token\",\"user_id\":\"other-user\",\"expires_in\":900}"
#define INVALID_TOKEN_ERROR                                                    \
    "{\"error\":{\"code\":\"invalid_token\",\"message\":\"The access token "   \
    "is invalid.\"}}"

/* Logs in with mode against response and checks that the call fails with
 * want_rc and leaves the state file byte for byte as it was. */
static void check_login_keeps_state(const struct scripted_response *response,
                                    enum cjc_mode mode, enum cj_status want_rc,
                                    const char *name)
{
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    json_t *out = NULL;

    fake_start(&g, response, 1);
    write_state(&g, name, false, path, sizeof(path));
    read_file(path, before, sizeof(before));
    open_client(&g, path, &client, &err);
    assert_int_equal(cjc_login(client, "user5", "password", mode, &out, &err),
                     want_rc);
    assert_null(out);
    cjc_client_close(client);
    fake_stop(&g);
    read_file(path, after, sizeof(after));
    assert_string_equal(after, before);
}

static void test_plain_login_success_rejected(void **state)
{
    const struct scripted_response plain = {200, OTHER_TOKEN_SET, false};
    (void)state;

    check_login_keeps_state(&plain, CJC_MODE_STATELESS, CJ_ERR_CRYPTO,
                            "plain-login-stateless");
    check_login_keeps_state(&plain, CJC_MODE_STATEFUL, CJ_ERR_CRYPTO,
                            "plain-login-stateful");
}

static void test_plain_success_error_names_code(void **state)
{
    const struct scripted_response plain = {200, OTHER_TOKEN_SET, false};
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char path[256];
    json_t *out = NULL;
    (void)state;

    fake_start(&g, &plain, 1);
    write_state(&g, "plain-refresh", false, path, sizeof(path));
    open_client(&g, path, &client, &err);
    assert_int_equal(cjc_refresh(client, &out, &err), CJ_ERR_CRYPTO);
    cjc_client_close(client);
    fake_stop(&g);
    assert_string_equal(err.code, "unsealed_response");
    assert_int_equal(err.http_status, 200);
    assert_non_null(strstr(err.message, "between this client and the gateway"));
}

static void test_login_without_session_keeps_state(void **state)
{
    const struct scripted_response sealed = {200, OTHER_TOKEN_SET, true};
    (void)state;

    check_login_keeps_state(&sealed, CJC_MODE_STATEFUL, CJ_ERR_INVALID,
                            "no-session");
}

static void test_login_without_tokens_keeps_state(void **state)
{
    /* A sealed error that something in between sent on with status 200. */
    const struct scripted_response sealed = {200, INVALID_TOKEN_ERROR, true};
    (void)state;

    check_login_keeps_state(&sealed, CJC_MODE_STATELESS, CJ_ERR_INVALID,
                            "no-tokens");
}

/* Plaintext length of the last request that put_data sent. */
static size_t last_plaintext_len;
/* Timestamp of the last request that put_data got a sealed response to. */
static uint64_t last_ts_ms;

/* Sends a data put against responses and returns the number of refreshes
 * that the client sent. before receives the state file from before the
 * call, and *rc and err the call's result. */
static int put_data(const struct scripted_response *responses, size_t n,
                    bool stateful, const char *path_name, char *path,
                    size_t path_size, char *before, enum cj_status *rc,
                    struct cjc_error *err)
{
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    json_t *fields = json_pack("{s:s}", "phone", "+34 600 000 000");
    json_t *out = NULL;

    fake_start(&g, responses, n);
    write_state(&g, path_name, stateful, path, path_size);
    read_file(path, before, TEST_STATE_MAX);
    open_client(&g, path, &client, err);
    *rc = cjc_data_put(client, "private", fields, &out, err);
    json_decref(out);
    json_decref(fields);
    cjc_client_close(client);
    fake_stop(&g);
    last_plaintext_len = g.last_plaintext_len;
    last_ts_ms = g.last_ts_ms;
    return g.refresh_requests;
}

static void test_plain_invalid_token_no_refresh(void **state)
{
    const struct scripted_response responses[] = {
        {401, INVALID_TOKEN_ERROR, false},
        {200, OTHER_TOKEN_SET, false},
        {200, "{\"class\":\"private\",\"fields\":{}}", false},
    };
    struct cjc_error err = {0};
    enum cj_status rc;
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    assert_int_equal(put_data(responses, 3, false, "plain-401", path,
                              sizeof(path), before, &rc, &err),
                     0);
    assert_int_equal(rc, CJ_ERR_UNAUTHENTICATED);
    assert_false(err.sealed);
    assert_string_equal(err.code, "invalid_token");
    assert_non_null(strstr(err.message, "not refreshed"));
    read_file(path, after, sizeof(after));
    assert_string_equal(after, before);
}

static void test_sealed_invalid_token_refreshes(void **state)
{
    const struct scripted_response responses[] = {
        {401, INVALID_TOKEN_ERROR, true},
        {200, OTHER_TOKEN_SET, true},
        {200, "{\"class\":\"private\",\"fields\":{}}", true},
    };
    struct cjc_error err = {0};
    enum cj_status rc;
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    assert_int_equal(put_data(responses, 3, false, "sealed-401", path,
                              sizeof(path), before, &rc, &err),
                     1);
    assert_int_equal(rc, CJ_OK);
    read_file(path, after, sizeof(after));
    assert_non_null(strstr(after, "other-access-token"));
}

/* A session ends by lifetime, by a logout of all devices or by the limit
 * of sessions per user, and the gateway rejects each the same plain way. */
static void test_plain_session_rejection_lists_causes(void **state)
{
    const struct scripted_response plain = {401, INVALID_TOKEN_ERROR, false};
    struct cjc_error err = {0};
    enum cj_status rc;
    char path[256], before[TEST_STATE_MAX];
    (void)state;

    put_data(&plain, 1, true, "plain-401-stateful", path, sizeof(path), before,
             &rc, &err);
    assert_int_equal(rc, CJ_ERR_UNAUTHENTICATED);
    assert_string_equal(err.code, "invalid_token");
    assert_non_null(strstr(err.message, "unsealed response: "));
    assert_non_null(strstr(err.message, "idle too long"));
    assert_non_null(strstr(err.message, "total lifetime"));
    assert_non_null(strstr(err.message, "a logout of all devices"));
    assert_non_null(strstr(err.message, "sessions per user"));
    assert_non_null(strstr(err.message, "could have forged it"));
    assert_non_null(strstr(err.message, "Run 'cerrojo login'"));
}

static void test_plain_success_stateful_rejected(void **state)
{
    const struct scripted_response plain = {
        200, "{\"class\":\"private\",\"fields\":{}}", false};
    struct cjc_error err = {0};
    enum cj_status rc;
    char path[256], before[TEST_STATE_MAX], errbuf[256];
    json_t *st = NULL;
    (void)state;

    assert_int_equal(put_data(&plain, 1, true, "plain-stateful", path,
                              sizeof(path), before, &rc, &err),
                     0);
    assert_int_equal(rc, CJ_ERR_CRYPTO);
    assert_string_equal(err.code, "unsealed_response");
    /* Only the sequence number moved, because the request was sent. */
    assert_int_equal(cjc_state_load(path, &st, errbuf, sizeof(errbuf)), CJ_OK);
    json_t *session = json_object_get(st, "session");
    assert_string_equal(
        json_string_value(json_object_get(session, "epoch_key")),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(json_integer_value(json_object_get(session, "seq")), 4);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(st, "tokens"), "access_token")),
                        "stored-access-token");
    json_decref(st);
}

static void test_plain_logout_keeps_login(void **state)
{
    const struct scripted_response plain = {200, "{}", false};
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    fake_start(&g, &plain, 1);
    write_state(&g, "plain-logout", false, path, sizeof(path));
    read_file(path, before, sizeof(before));
    open_client(&g, path, &client, &err);
    assert_int_equal(cjc_logout(client, true, &err), CJ_ERR_CRYPTO);
    cjc_client_close(client);
    fake_stop(&g);
    assert_string_equal(err.code, "unsealed_response");
    read_file(path, after, sizeof(after));
    assert_string_equal(after, before);
}

/* Logs out (with all) against responses from a state file that has a
 * session when stateful, and returns the call's result. before and after
 * receive the state file from before and after the call. */
static enum cj_status logout_against(const struct scripted_response *responses,
                                     size_t n, bool stateful, const char *name,
                                     char *before, char *after,
                                     struct cjc_error *err)
{
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    char path[256];
    enum cj_status rc;

    fake_start(&g, responses, n);
    write_state(&g, name, stateful, path, sizeof(path));
    read_file(path, before, TEST_STATE_MAX);
    open_client(&g, path, &client, err);
    rc = cjc_logout(client, true, err);
    cjc_client_close(client);
    fake_stop(&g);
    read_file(path, after, TEST_STATE_MAX);
    return rc;
}

static void test_sealed_error_as_200_fails(void **state)
{
    /* A genuine sealed error that something in between sent on with 200. */
    const struct scripted_response sealed = {
        200,
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"The auth "
        "service is unavailable.\"}}",
        true};
    struct cjc_error err = {0};
    char before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    assert_int_equal(logout_against(&sealed, 1, false, "sealed-error-200",
                                    before, after, &err),
                     CJ_ERR_INVALID);
    assert_true(err.sealed);
    assert_int_equal(err.http_status, 200);
    assert_string_equal(err.code, "unavailable");
    assert_string_equal(after, before);
}

static void test_forged_401s_keep_logout_all(void **state)
{
    /* Two plain 401s, then a success for a logout of this login only. */
    const struct scripted_response responses[] = {
        {401, INVALID_TOKEN_ERROR, false},
        {401, INVALID_TOKEN_ERROR, false},
        {200, "{}", true},
    };
    struct cjc_error err = {0};
    char before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    assert_int_equal(
        logout_against(responses, 3, true, "forged-401s", before, after, &err),
        CJ_ERR_UNAUTHENTICATED);
    assert_false(err.sealed);
    assert_non_null(strstr(after, "stored-refresh-token"));
    assert_non_null(strstr(after, "\"session\""));
}

static void test_sealed_401_logs_out_refresh_only(void **state)
{
    /* A session that the server no longer has: its rejection is plain,
     * but the rejections of its tokens over the stateless channel, first
     * of the access token and then of the refresh, are sealed. */
    const struct scripted_response responses[] = {
        {401, INVALID_TOKEN_ERROR, false},
        {401, INVALID_TOKEN_ERROR, true},
        {401, INVALID_TOKEN_ERROR, true},
        {200, "{}", true},
    };
    struct cjc_error err = {0};
    char before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    (void)state;

    assert_int_equal(
        logout_against(responses, 4, true, "sealed-401", before, after, &err),
        CJ_ERR_PRECONDITION);
    assert_null(strstr(after, "stored-refresh-token"));
    assert_non_null(strstr(err.message, "Other devices stay logged in"));
}

static void test_plain_error_text_sanitized(void **state)
{
    const struct scripted_response plain = {
        400,
        "{\"error\":{\"code\":\"bad\\u001b[2J\",\"message\":\"\\u001b[2J"
        "\\u001b[31mYour account is locked\\u0007\\u009b1m\"}}",
        false};
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX];
    enum cj_status rc;
    (void)state;

    put_data(&plain, 1, false, "plain-escape", path, sizeof(path), before, &rc,
             &err);
    assert_int_equal(rc, CJ_ERR_INVALID);
    assert_null(strchr(err.message, 0x1b));
    assert_null(strchr(err.message, 0x07));
    assert_null(strstr(err.message, "\xc2\x9b"));
    assert_null(strchr(err.code, 0x1b));
    assert_non_null(strstr(err.message, "unsealed response: "));
    assert_non_null(strstr(err.message, "?[31mYour account is locked"));
}

static void test_sealed_stale_timestamp_names_clock(void **state)
{
    const struct scripted_response sealed = {
        409,
        "{\"error\":{\"code\":\"replayed\",\"message\":\"The request "
        "timestamp is outside the accepted window.\"}}",
        true};
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX];
    enum cj_status rc;
    (void)state;

    put_data(&sealed, 1, false, "sealed-409", path, sizeof(path), before, &rc,
             &err);
    assert_int_equal(rc, CJ_ERR_INVALID);
    assert_true(err.sealed);
    assert_non_null(strstr(err.message, "this machine's clock"));
    assert_non_null(strstr(err.message, "Correct the system clock"));
}

/* Milliseconds since the Unix epoch on this machine's clock. */
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How far ahead of this machine the fake server's clock runs, and the
 * slack allowed for the time a test takes, in milliseconds. */
#define TEST_SERVER_AHEAD_MS INT64_C(300000)
#define TEST_CLOCK_SLACK_MS  INT64_C(10000)

/* Writes into buf the gateway's sealed 409 for a stale timestamp, with
 * the server's clock TEST_SERVER_AHEAD_MS ahead of this machine's. */
static void stale_error_with_time(char *buf, size_t size)
{
    snprintf(buf, size,
             "{\"error\":{\"code\":\"replayed\",\"message\":\"The request "
             "timestamp is outside the accepted window.\",\"server_time_ms\":"
             "%lld}}",
             (long long)(now_ms() + TEST_SERVER_AHEAD_MS));
}

/* Returns the clock_offset_ms of a state file's text, or 0 without one. */
static long long stored_offset(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    long long offset =
        json_integer_value(json_object_get(doc, "clock_offset_ms"));

    json_decref(doc);
    return offset;
}

static void test_sealed_stale_timestamp_measures_clock_again(void **state)
{
    char stale[512];
    struct scripted_response responses[] = {
        {409, stale, true},
        {200, "{\"class\":\"private\",\"fields\":{}}", true},
    };
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    enum cj_status rc;
    long long offset;
    (void)state;

    stale_error_with_time(stale, sizeof(stale));
    put_data(responses, 2, false, "sealed-409-time", path, sizeof(path), before,
             &rc, &err);
    assert_int_equal(rc, CJ_OK);
    read_file(path, after, sizeof(after));
    offset = stored_offset(after);
    assert_true(offset > TEST_SERVER_AHEAD_MS - TEST_CLOCK_SLACK_MS);
    assert_true(offset < TEST_SERVER_AHEAD_MS + TEST_CLOCK_SLACK_MS);
    /* The request was sent again with a timestamp on the server's clock. */
    assert_true((int64_t)last_ts_ms >
                now_ms() + TEST_SERVER_AHEAD_MS - TEST_CLOCK_SLACK_MS);
}

static void test_stale_timestamp_sent_again_once(void **state)
{
    char stale[512];
    struct scripted_response responses[] = {
        {409, stale, true},
        {409, stale, true},
        {200, "{\"class\":\"private\",\"fields\":{}}", true},
    };
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX];
    enum cj_status rc;
    (void)state;

    stale_error_with_time(stale, sizeof(stale));
    put_data(responses, 3, false, "sealed-409-twice", path, sizeof(path),
             before, &rc, &err);
    assert_int_equal(rc, CJ_ERR_INVALID);
    assert_true(err.sealed);
    assert_non_null(strstr(err.message, "Correct the system clock"));
}

static void test_plain_stale_time_changes_no_offset(void **state)
{
    char stale[512];
    struct scripted_response responses[] = {
        {409, stale, false},
        {200, "{\"class\":\"private\",\"fields\":{}}", true},
    };
    struct cjc_error err = {0};
    char path[256], before[TEST_STATE_MAX], after[TEST_STATE_MAX];
    enum cj_status rc;
    (void)state;

    stale_error_with_time(stale, sizeof(stale));
    put_data(responses, 2, false, "plain-409-time", path, sizeof(path), before,
             &rc, &err);
    assert_int_equal(rc, CJ_ERR_INVALID);
    assert_false(err.sealed);
    read_file(path, after, sizeof(after));
    assert_string_equal(after, before);
}

static void test_stateful_request_padded_to_block(void **state)
{
    const struct scripted_response plain = {401, INVALID_TOKEN_ERROR, false};
    struct cjc_error err = {0};
    enum cj_status rc;
    char path[256], before[TEST_STATE_MAX];
    (void)state;

    /* The 10-byte plaintext header (timestamp and token length) counts
     * toward the block, as in stateless mode. */
    put_data(&plain, 1, true, "stateful-padded", path, sizeof(path), before,
             &rc, &err);
    assert_int_equal(rc, CJ_ERR_UNAUTHENTICATED);
    assert_true(last_plaintext_len > 0);
    assert_int_equal(last_plaintext_len % CJ_SEAL_PAD_BLOCK_LEN, 0);
}

/* A SessionInfo response for a new session. */
#define SESSION_INFO                                                           \
    "{\"session_id\":\"BBBBBBBBBBBBBBBBBBBBBB\",\"created_at_ms\":"            \
    "1700000000000,\"epoch_seconds\":900}"

/* Asserts that a result printed by the CLI has no session id, and that
 * the state file at path keeps it. */
static void check_session_id_only_in_state(const json_t *printed,
                                           const char *path)
{
    char saved[TEST_STATE_MAX];
    json_t *st;

    assert_null(json_object_get(printed, "session_id"));
    read_file(path, saved, sizeof(saved));
    st = json_loads(saved, 0, NULL);
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(st, "session"), "id")),
                        "BBBBBBBBBBBBBBBBBBBBBB");
    json_decref(st);
}

static void test_stateful_login_hides_session_id(void **state)
{
    const struct scripted_response sealed = {
        200,
        "{\"access_token\":\"other-access-token\",\"refresh_token\":"
        "\"other-refresh-token\",\"user_id\":\"other-user\","
        "\"expires_in\":900,\"session\":" SESSION_INFO "}",
        true};
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char path[256];
    json_t *out = NULL;
    (void)state;

    fake_start(&g, &sealed, 1);
    write_state(&g, "login-session-id", false, path, sizeof(path));
    open_client(&g, path, &client, &err);
    assert_int_equal(
        cjc_login(client, "user5", "password", CJC_MODE_STATEFUL, &out, &err),
        CJ_OK);
    cjc_client_close(client);
    fake_stop(&g);
    assert_non_null(out);
    assert_null(json_object_get(out, "access_token"));
    assert_true(json_is_object(json_object_get(out, "session")));
    assert_non_null(
        json_object_get(json_object_get(out, "session"), "epoch_seconds"));
    check_session_id_only_in_state(json_object_get(out, "session"), path);
    json_decref(out);
}

static void test_handshake_hides_session_id(void **state)
{
    const struct scripted_response sealed = {200, SESSION_INFO, true};
    struct fake_gateway g;
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    char path[256];
    json_t *out = NULL;
    (void)state;

    fake_start(&g, &sealed, 1);
    snprintf(path, sizeof(path), "%s/handshake-session-id.json", dir);
    open_client(&g, path, &client, &err);
    assert_int_equal(cjc_handshake(client, &out, &err), CJ_OK);
    cjc_client_close(client);
    fake_stop(&g);
    assert_non_null(out);
    assert_non_null(json_object_get(out, "epoch_seconds"));
    check_session_id_only_in_state(out, path);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_login_success_rejected),
        cmocka_unit_test(test_plain_success_error_names_code),
        cmocka_unit_test(test_login_without_session_keeps_state),
        cmocka_unit_test(test_login_without_tokens_keeps_state),
        cmocka_unit_test(test_plain_invalid_token_no_refresh),
        cmocka_unit_test(test_sealed_invalid_token_refreshes),
        cmocka_unit_test(test_plain_session_rejection_lists_causes),
        cmocka_unit_test(test_plain_success_stateful_rejected),
        cmocka_unit_test(test_plain_logout_keeps_login),
        cmocka_unit_test(test_sealed_error_as_200_fails),
        cmocka_unit_test(test_forged_401s_keep_logout_all),
        cmocka_unit_test(test_sealed_401_logs_out_refresh_only),
        cmocka_unit_test(test_plain_error_text_sanitized),
        cmocka_unit_test(test_sealed_stale_timestamp_names_clock),
        cmocka_unit_test(test_sealed_stale_timestamp_measures_clock_again),
        cmocka_unit_test(test_stale_timestamp_sent_again_once),
        cmocka_unit_test(test_plain_stale_time_changes_no_offset),
        cmocka_unit_test(test_stateful_request_padded_to_block),
        cmocka_unit_test(test_stateful_login_hides_session_id),
        cmocka_unit_test(test_handshake_hides_session_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

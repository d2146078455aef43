/*
 * Tests for the sealed-route pipeline: a client seals real envelopes with
 * the common envelope code, and the backends are replaced at link time
 * (-Wl,--wrap= of gw_backend_call, gw_replay_record and
 * gw_ratelimit_take_many) by doubles that open them with the same code, as
 * kms and session do. Redis itself is tested in test_gw_redis.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "cerrojo/v1/session.pb-c.h"
#include "envelope_stateful.h"
#include "envelope_stateless.h"
#include "gw_audit.h"
#include "gw_jwks.h"
#include "gw_pipeline.h"
#include "gw_redis.h"
#include "gw_wraps.h"
#include "jwt.h"
#include "seal_pad.h"

#define TEST_SESSION_ID "c2Vzc2lvbi1pZC0xMjM0NQ"
#define TEST_USER_ID    "user-1"

/* ---- what the doubles hold and saw ---- */

static uint8_t hpke_sk[CJ_HPKE_SK_LEN];
static uint8_t hpke_pk[CJ_HPKE_PK_LEN];
static uint8_t c2s_key[CJ_RATCHET_KEY_LEN];
static uint8_t response_key[CJ_RATCHET_KEY_LEN];
static struct cj_jwk *signing_key;
static char *jwks_json;

static struct {
    char rpc[64];
    char user_id[64];
    char session_id[64];
    char token_id[64];
    char channel[16];
    char login[64];
    char login_long[4096];
    int data_class;
    int calls;
} seen;
static bool revoked;
/* What the RecordAudit double received. */
static char audit_event[64];
static char audit_detail[256];
static int audit_calls;
/* The Login double returns the login name as the token, to make a long
 * response. */
static bool echo_login;
/* The path the stateful double opens requests for. */
static const char *stateful_path;
/* The method the OpenRequest double opens a stateful request with. */
static const char *stateful_method;
static grpc_status_code is_revoked_code;
/* The Login double rejects as auth's throttle does, with this trailer. */
static bool login_throttled;
static unsigned login_retry_after_s;
/* What the rate-limit double returns. */
static enum cj_status ratelimit_status;
/* What the rate-limit double returns for the session bucket, the
 * Retry-After it gives with a rejection, and how many times it was called. */
static enum cj_status session_status;
static unsigned session_retry_after_s;
static int session_takes;
/* How many times the double was called for the handshake bucket. */
static int handshake_takes;
static const char *bound_user;
/* A status the OpenRequest double returns before anything else, or OK. */
static grpc_status_code open_request_code;
/* Encapsulated keys recorded by the replay double. */
/* Room for every enc that the whole group records. */
#define REPLAY_SEEN_MAX 64
static uint8_t replay_seen[REPLAY_SEEN_MAX][CJ_HPKE_ENC_LEN];
static size_t replay_count;

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = calloc(1, desc->sizeof_message);

    desc->message_init(m);
    return m;
}

static void set_bytes(ProtobufCBinaryData *dst, const void *src, size_t len)
{
    dst->data = malloc(len > 0 ? len : 1);
    memcpy(dst->data, src, len);
    dst->len = len;
}

static grpc_status_code open_sealed(const ProtobufCMessage *message,
                                    ProtobufCMessage **out)
{
    const Cerrojo__V1__OpenSealedRequest *req =
        (const Cerrojo__V1__OpenSealedRequest *)message;
    struct cj_stateless_header hdr = {.version = (uint8_t)req->version,
                                      .key_id = (uint8_t)req->key_id,
                                      .suite = {(uint16_t)req->kem_id,
                                                (uint16_t)req->kdf_id,
                                                (uint16_t)req->aead_id}};
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len = 0;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    enum cj_seal_reason why;
    Cerrojo__V1__OpenSealedResponse *resp;

    if (cj_stateless_open(&hdr, hpke_sk, req->enc.data, req->enc.len,
                          req->aad.data, req->aad.len, req->ciphertext.data,
                          req->ciphertext.len, &pt, &pt_len, secret,
                          &secret_len, &why) != CJ_OK) {
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    resp = (Cerrojo__V1__OpenSealedResponse *)new_message(
        &cerrojo__v1__open_sealed_response__descriptor);
    set_bytes(&resp->plaintext, pt, pt_len);
    set_bytes(&resp->response_secret, secret, secret_len);
    free(pt);
    *out = &resp->base;
    return GRPC_STATUS_OK;
}

static grpc_status_code open_request(const ProtobufCMessage *message,
                                     ProtobufCMessage **out)
{
    const Cerrojo__V1__OpenRequestRequest *req =
        (const Cerrojo__V1__OpenRequestRequest *)message;
    struct cj_stateful_request sreq = {.version = 1,
                                       .epoch = (uint32_t)req->epoch,
                                       .seq = req->sequence,
                                       .ct = req->ciphertext.data,
                                       .ct_len = req->ciphertext.len};
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    enum cj_seal_reason why;
    Cerrojo__V1__OpenRequestResponse *resp;

    if (open_request_code != GRPC_STATUS_OK) {
        return open_request_code;
    }
    /* Mirrors cerrojo-session, which rejects an id not of the issued form
     * as an invalid argument and a well-formed id of no session as not
     * found. */
    if (strlen(req->session_id) != CJ_SESSION_ID_LEN) {
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (strcmp(req->session_id, TEST_SESSION_ID) != 0) {
        return GRPC_STATUS_NOT_FOUND;
    }
    if (cj_stateful_open_request(c2s_key, (const uint8_t *)req->session_id,
                                 strlen(req->session_id), &sreq,
                                 stateful_method, stateful_path, &pt, &pt_len,
                                 &why) != CJ_OK) {
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    resp = (Cerrojo__V1__OpenRequestResponse *)new_message(
        &cerrojo__v1__open_request_response__descriptor);
    set_bytes(&resp->plaintext, pt, pt_len);
    set_bytes(&resp->response_key, response_key, sizeof(response_key));
    resp->user_id = strdup(bound_user != NULL ? bound_user : "");
    free(pt);
    *out = &resp->base;
    return GRPC_STATUS_OK;
}

static void remember_caller(const char *path, const struct gw_caller *caller)
{
    snprintf(seen.rpc, sizeof(seen.rpc), "%s", path);
    snprintf(seen.user_id, sizeof(seen.user_id), "%s",
             caller->user_id ? caller->user_id : "");
    snprintf(seen.session_id, sizeof(seen.session_id), "%s",
             caller->session_id ? caller->session_id : "");
    snprintf(seen.token_id, sizeof(seen.token_id), "%s",
             caller->token_id ? caller->token_id : "");
    snprintf(seen.channel, sizeof(seen.channel), "%s",
             caller->channel ? caller->channel : "");
    seen.calls++;
}

grpc_status_code __wrap_gw_backend_call(struct gw_backends *backends,
                                        const struct gw_rpc *rpc,
                                        const struct gw_caller *caller,
                                        const ProtobufCMessage *request,
                                        ProtobufCMessage **response,
                                        char *detail, size_t detail_size,
                                        unsigned *retry_after_s);

grpc_status_code __wrap_gw_backend_call(struct gw_backends *backends,
                                        const struct gw_rpc *rpc,
                                        const struct gw_caller *caller,
                                        const ProtobufCMessage *request,
                                        ProtobufCMessage **response,
                                        char *detail, size_t detail_size,
                                        unsigned *retry_after_s)
{
    const char *path = rpc->path;

    (void)backends;
    (void)detail_size;
    detail[0] = '\0';
    *response = NULL;
    if (retry_after_s != NULL) {
        *retry_after_s = 0;
    }
    if (strcmp(path, "/cerrojo.v1.Kms/OpenSealed") == 0) {
        return open_sealed(request, response);
    }
    if (strcmp(path, "/cerrojo.v1.Session/OpenRequest") == 0) {
        return open_request(request, response);
    }
    if (strcmp(path, "/cerrojo.v1.Kms/GetJwks") == 0) {
        Cerrojo__V1__GetJwksResponse *r =
            (Cerrojo__V1__GetJwksResponse *)new_message(
                &cerrojo__v1__get_jwks_response__descriptor);
        r->jwks_json = strdup(jwks_json);
        r->max_age_seconds = 300;
        *response = &r->base;
        return GRPC_STATUS_OK;
    }
    if (strcmp(path, "/cerrojo.v1.Session/IsRevoked") == 0) {
        Cerrojo__V1__IsRevokedResponse *r;

        if (is_revoked_code != GRPC_STATUS_OK) {
            return is_revoked_code;
        }
        r = (Cerrojo__V1__IsRevokedResponse *)new_message(
            &cerrojo__v1__is_revoked_response__descriptor);
        r->revoked = revoked;
        *response = &r->base;
        return GRPC_STATUS_OK;
    }
    if (strcmp(path, "/cerrojo.v1.Auth/RecordAudit") == 0) {
        const Cerrojo__V1__RecordAuditRequest *a =
            (const Cerrojo__V1__RecordAuditRequest *)request;

        /* Runs on the audit thread: the test reads these after stop. */
        snprintf(audit_event, sizeof(audit_event), "%s", a->event);
        snprintf(audit_detail, sizeof(audit_detail), "%s", a->detail_json);
        __atomic_add_fetch(&audit_calls, 1, __ATOMIC_SEQ_CST);
        *response =
            new_message(&cerrojo__v1__record_audit_response__descriptor);
        return GRPC_STATUS_OK;
    }
    remember_caller(path, caller);
    if (strcmp(path, "/cerrojo.v1.Auth/Login") == 0 && login_throttled) {
        if (retry_after_s != NULL) {
            *retry_after_s = login_retry_after_s;
        }
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    if (strcmp(path, "/cerrojo.v1.Auth/Login") == 0) {
        Cerrojo__V1__TokenSet *t = (Cerrojo__V1__TokenSet *)new_message(
            &cerrojo__v1__token_set__descriptor);

        snprintf(seen.login, sizeof(seen.login), "%s",
                 ((const Cerrojo__V1__LoginRequest *)request)->login);
        snprintf(seen.login_long, sizeof(seen.login_long), "%s",
                 ((const Cerrojo__V1__LoginRequest *)request)->login);
        t->access_token =
            strdup(echo_login ? seen.login_long : "issued.access.token");
        *response = &t->base;
        return GRPC_STATUS_OK;
    }
    if (strcmp(path, "/cerrojo.v1.Auth/GetData") == 0 ||
        strcmp(path, "/cerrojo.v1.Auth/PutData") == 0) {
        Cerrojo__V1__UserData *d = (Cerrojo__V1__UserData *)new_message(
            &cerrojo__v1__user_data__descriptor);

        seen.data_class =
            ((const Cerrojo__V1__GetDataRequest *)request)->class_;
        d->class_ = seen.data_class;
        *response = &d->base;
        return GRPC_STATUS_OK;
    }
    if (strcmp(path, "/cerrojo.v1.Auth/GetProfile") == 0) {
        Cerrojo__V1__Profile *p = (Cerrojo__V1__Profile *)new_message(
            &cerrojo__v1__profile__descriptor);

        p->user_id = strdup(caller->user_id ? caller->user_id : "");
        *response = &p->base;
        return GRPC_STATUS_OK;
    }
    return GRPC_STATUS_UNIMPLEMENTED;
}

enum cj_status __wrap_gw_replay_record(struct gw_redis *redis,
                                       const uint8_t *enc, size_t enc_len,
                                       unsigned ttl_seconds);

enum cj_status __wrap_gw_replay_record(struct gw_redis *redis,
                                       const uint8_t *enc, size_t enc_len,
                                       unsigned ttl_seconds)
{
    (void)redis;
    assert_int_equal(enc_len, CJ_HPKE_ENC_LEN);
    /* Twice the ±60 s window plus the 60 s leeway. */
    assert_int_equal(ttl_seconds, 180);
    for (size_t i = 0; i < replay_count; i++) {
        if (memcmp(replay_seen[i], enc, enc_len) == 0) {
            return CJ_ERR_REPLAYED;
        }
    }
    assert_true(replay_count < REPLAY_SEEN_MAX);
    memcpy(replay_seen[replay_count++], enc, enc_len);
    return CJ_OK;
}

enum cj_status
__wrap_gw_ratelimit_take_many(struct gw_redis *redis, const char *bucket,
                              const char *client_ip, unsigned per_minute,
                              unsigned burst, unsigned max_count,
                              unsigned *granted, unsigned *retry_after_s)
{
    (void)redis;
    (void)client_ip;
    (void)per_minute;
    (void)burst;
    if (strcmp(bucket, "handshake") == 0) {
        handshake_takes++;
    }
    if (strcmp(bucket, "session") == 0) {
        session_takes++;
        *granted = session_status == CJ_OK ? max_count : 0;
        *retry_after_s = session_status == CJ_OK ? 0 : session_retry_after_s;
        return session_status;
    }
    *granted = ratelimit_status == CJ_OK ? max_count : 0;
    *retry_after_s = 0;
    return ratelimit_status;
}

/* ---- fixture ---- */

struct fixture {
    struct gw_settings settings;
    struct gw_context ctx;
    struct gw_request req;
    struct gw_reply reply;
    struct cj_stateless_client client;
    char *envelope;
    size_t envelope_len;
};

static int group_setup(void **state)
{
    static const uint8_t ikm[32] = {7};
    const struct cj_jwk *keys[1];

    (void)state;
    if (cj_hpke_derive_key_pair(hpke_sk, hpke_pk, ikm, sizeof(ikm)) != CJ_OK ||
        cj_jwk_generate(CJ_JWK_ALG_EDDSA, &signing_key) != CJ_OK) {
        return -1;
    }
    keys[0] = signing_key;
    if (cj_jwks_to_json(keys, 1, &jwks_json) != CJ_OK) {
        return -1;
    }
    randombytes_buf(c2s_key, sizeof(c2s_key));
    randombytes_buf(response_key, sizeof(response_key));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cj_jwk_free(signing_key);
    free(jwks_json);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->settings.timestamp_window_seconds = 60;
    f->settings.clock_leeway_seconds = 60;
    f->settings.jwks_refresh_seconds = 300;
    strcpy(f->settings.jwt_issuer, "https://cerrojo.test");
    strcpy(f->settings.jwt_audience, "cerrojo");
    f->ctx.settings = &f->settings;
    f->ctx.jwks = gw_jwks_cache_new(NULL, 300);
    /* Any non-NULL pool: the replay double never touches it. */
    f->ctx.redis = (struct gw_redis *)f;
    strcpy(f->req.request_id, "req-sealed");
    strcpy(f->req.client_ip, "198.51.100.7");
    f->req.rejection = GW_REJECT_COUNT;
    memset(&seen, 0, sizeof(seen));
    revoked = false;
    echo_login = false;
    is_revoked_code = GRPC_STATUS_OK;
    login_throttled = false;
    login_retry_after_s = 0;
    ratelimit_status = CJ_OK;
    stateful_method = "GET";
    session_status = CJ_OK;
    session_retry_after_s = 0;
    session_takes = 0;
    handshake_takes = 0;
    bound_user = TEST_USER_ID;
    open_request_code = GRPC_STATUS_OK;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    gw_reply_clear(&f->reply);
    gw_jwks_cache_free(f->ctx.jwks);
    cj_stateless_client_wipe(&f->client);
    free(f->envelope);
    free(f);
    return 0;
}

static uint64_t now_ms(void)
{
    return (uint64_t)time(NULL) * 1000;
}

/* Seals `body` (and `token`) for method and path with timestamp ts_ms. */
static void seal_stateless(struct fixture *f, const char *method,
                           const char *path, const char *body,
                           const char *token, uint64_t ts_ms)
{
    struct cj_stateless_header hdr = {.version = 1,
                                      .key_id = 1,
                                      .suite = {CJ_HPKE_KEM_X25519_SHA256,
                                                CJ_HPKE_KDF_HKDF_SHA256,
                                                CJ_HPKE_AEAD_AES_256_GCM}};
    struct cj_seal_plaintext pt = {.ts_ms = ts_ms,
                                   .token = (const uint8_t *)token,
                                   .token_len = token ? strlen(token) : 0,
                                   .body = (const uint8_t *)body,
                                   .body_len = strlen(body)};

    free(f->envelope);
    cj_stateless_client_wipe(&f->client);
    assert_int_equal(cj_stateless_seal_request(&hdr, hpke_pk, method, path, &pt,
                                               &f->envelope, &f->envelope_len,
                                               &f->client),
                     CJ_OK);
}

/* Runs the pipeline for a request whose body or Cerrojo-Seal header is the
 * current envelope. */
static void run(struct fixture *f, enum gw_method method, const char *path)
{
    char *header = NULL;

    gw_reply_clear(&f->reply);
    memset(&f->reply, 0, sizeof(f->reply));
    f->req.method = method;
    f->req.path = path;
    f->req.rejected = false;
    if (method == GW_METHOD_GET) {
        assert_int_equal(
            cj_seal_header_encode(f->envelope, f->envelope_len, &header),
            CJ_OK);
        f->req.seal_header = header;
        f->req.body = NULL;
        f->req.body_len = 0;
    } else {
        f->req.content_type = "application/json";
        f->req.has_content_length = true;
        f->req.content_length = f->envelope_len;
        f->req.body = (unsigned char *)f->envelope;
        f->req.body_len = f->envelope_len;
        f->req.seal_header = NULL;
    }
    assert_true(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    gw_pipeline_finish(&f->ctx, &f->req, &f->reply);
    free(header);
    f->req.seal_header = NULL;
}

/* Opens the sealed stateless response into a NUL-terminated string. */
static char *open_stateless_reply(struct fixture *f)
{
    uint8_t *body = NULL;
    size_t len = 0;
    enum cj_seal_reason why;
    char *text;

    assert_true(f->reply.sealed);
    assert_int_equal(cj_stateless_open_response(&f->client, f->reply.body,
                                                f->reply.body_len, &body, &len,
                                                &why),
                     CJ_OK);
    text = malloc(len + 1);
    memcpy(text, body, len);
    text[len] = '\0';
    free(body);
    return text;
}

static char *make_token(const char *issuer, const char *sub)
{
    struct cj_jwt_claims claims;
    char *token = NULL;

    assert_int_equal(cj_jwt_claims_init(&claims, issuer, "cerrojo", sub,
                                        "sid-1", (int64_t)time(NULL), 900),
                     CJ_OK);
    assert_int_equal(cj_jwt_sign(signing_key, &claims, &token), CJ_OK);
    return token;
}

/* ---- tests ---- */

static void test_stateless_login_round_trip(void **state)
{
    struct fixture *f = *state;
    char *answer;

    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    assert_string_equal(seen.login, "ana");
    assert_string_equal(seen.channel, "stateless");
    assert_string_equal(seen.user_id, "");
    /* The wire body is an envelope, never the token in clear. */
    assert_null(strstr(f->reply.body, "issued.access.token"));
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"access_token\":\"issued.access.token\""));
    free(answer);
}

static void test_throttled_login_keeps_auths_retry_after(void **state)
{
    struct fixture *f = *state;
    char *answer;

    login_throttled = true;
    login_retry_after_s = 37;
    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 429);
    assert_int_equal(f->reply.retry_after, 37);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"rate_limited\""));
    free(answer);
}

static void test_throttled_login_without_trailer_uses_default(void **state)
{
    struct fixture *f = *state;

    login_throttled = true;
    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 429);
    /* 0 lets the HTTP layer send GW_RETRY_AFTER_SECONDS. */
    assert_int_equal(f->reply.retry_after, 0);
}

static void test_rate_limit_without_redis_is_503(void **state)
{
    struct fixture *f = *state;

    ratelimit_status = CJ_ERR_UNAVAILABLE;
    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    gw_reply_clear(&f->reply);
    memset(&f->reply, 0, sizeof(f->reply));
    f->req.method = GW_METHOD_POST;
    f->req.path = "/v1/login";
    f->req.content_type = "application/json";
    f->req.has_content_length = true;
    f->req.content_length = f->envelope_len;
    assert_false(gw_pipeline_begin(&f->ctx, &f->req, &f->reply));
    assert_int_equal(f->reply.status, 503);
    assert_int_equal(f->req.rejection, GW_REJECT_BACKEND_UNAVAILABLE);
    assert_non_null(strstr(f->reply.body, "\"unavailable\""));
    assert_int_equal(seen.calls, 0);
}

static void test_replayed_envelope_is_rejected_sealed(void **state)
{
    struct fixture *f = *state;
    char *answer;

    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    seen.calls = 0;
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 409);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"replayed\""));
    free(answer);
}

/* now_ms() counts whole seconds, so a clock read after it may be up to
 * this many milliseconds later. */
#define TEST_NOW_GRAIN_MS 1000

/* Checks that the opened body of a stale-timestamp 409 carries the
 * gateway's clock in error.server_time_ms, read between before_ms and
 * after_ms (both from now_ms()). */
static void check_server_time(const char *opened, size_t len,
                              uint64_t before_ms, uint64_t after_ms)
{
    json_t *doc = json_loadb(opened, len, 0, NULL);
    json_t *error = json_object_get(doc, "error");
    json_int_t server_ms =
        json_integer_value(json_object_get(error, "server_time_ms"));

    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(error, "code")),
                        "replayed");
    assert_true((uint64_t)server_ms >= before_ms);
    assert_true((uint64_t)server_ms < after_ms + TEST_NOW_GRAIN_MS);
    json_decref(doc);
}

static void test_stale_timestamp_is_rejected_sealed(void **state)
{
    struct fixture *f = *state;
    char *answer;
    uint64_t before_ms = now_ms();

    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms() - 61 * 1000);
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 409);
    assert_int_equal(f->req.rejection, GW_REJECT_TIMESTAMP);
    answer = open_stateless_reply(f);
    check_server_time(answer, strlen(answer), before_ms, now_ms());
    free(answer);
}

static void test_envelope_for_other_path_fails_plain(void **state)
{
    struct fixture *f = *state;

    seal_stateless(f, "POST", "/v1/register", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 400);
    assert_false(f->reply.sealed);
    assert_non_null(strstr(f->reply.body, "\"decryption_failed\""));
    assert_int_equal(seen.calls, 0);
}

static void test_tampered_ciphertext_fails_plain(void **state)
{
    struct fixture *f = *state;
    char *ct;

    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    ct = strstr(f->envelope, "\"ct\":\"");
    assert_non_null(ct);
    ct[6] = ct[6] == 'A' ? 'B' : 'A';
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(f->req.rejection, GW_REJECT_DECRYPTION_FAILED);
}

static void test_unknown_member_in_plaintext_is_400_sealed(void **state)
{
    struct fixture *f = *state;
    char *answer;

    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"a\",\"user_id\":\"x\"}", NULL, now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"invalid_request\""));
    free(answer);
}

static void test_stateless_get_with_token_names_user(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    char *answer;

    seal_stateless(f, "GET", "/v1/me", "", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
    assert_string_equal(seen.user_id, TEST_USER_ID);
    assert_string_equal(seen.session_id, "sid-1");
    assert_true(strlen(seen.token_id) > 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"user_id\":\"" TEST_USER_ID "\""));
    free(answer);
    free(token);
}

static void test_token_on_userless_route_is_400(void **state)
{
    static const char *const paths[] = {"/v1/handshake", "/v1/register",
                                        "/v1/login", "/v1/refresh"};
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *answer;

        seal_stateless(f, "POST", paths[i], "{}", token, now_ms());
        run(f, GW_METHOD_POST, paths[i]);
        assert_int_equal(f->reply.status, 400);
        assert_int_equal(seen.calls, 0);
        assert_int_equal(f->req.rejection, GW_REJECT_MODE);
        answer = open_stateless_reply(f);
        assert_non_null(strstr(answer, "\"invalid_request\""));
        assert_non_null(strstr(answer, "takes no access token"));
        free(answer);
    }
    free(token);
}

static void test_missing_token_is_401_sealed(void **state)
{
    struct fixture *f = *state;
    char *answer;

    seal_stateless(f, "GET", "/v1/me", "", NULL, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 401);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"invalid_token\""));
    free(answer);
}

static void test_wrong_issuer_token_is_401(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://evil.test", TEST_USER_ID);

    seal_stateless(f, "GET", "/v1/me", "", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 401);
    assert_int_equal(seen.calls, 0);
    free(token);
}

static void test_revoked_token_is_401(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);

    revoked = true;
    seal_stateless(f, "GET", "/v1/me", "", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 401);
    assert_int_equal(seen.calls, 0);
    free(token);
}

static void test_unloaded_revocation_cache_is_503(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    char *answer;

    is_revoked_code = GRPC_STATUS_FAILED_PRECONDITION;
    seal_stateless(f, "GET", "/v1/me", "", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 503);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"unavailable\""));
    free(answer);
    free(token);
}

static void test_data_route_sets_class_from_path(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);

    seal_stateless(f, "PUT", "/v1/me/data/private",
                   "{\"fields\":{\"city\":\"Lima\"}}", token, now_ms());
    run(f, GW_METHOD_PUT, "/v1/me/data/private");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(seen.data_class,
                     CERROJO__V1__DATA_CLASS__DATA_CLASS_PRIVATE);
    free(token);
}

static void test_large_sealed_reply_gzips_then_opens(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    char body[4096];
    uint8_t plain[16384] = {0};
    z_stream z = {0};
    char *answer;

    /* A long login name comes back in the TokenSet's access token. */
    memset(body, 0, sizeof(body));
    strcpy(body, "{\"login\":\"");
    memset(body + strlen(body), 'n', 3000);
    strcat(body, "\"}");
    echo_login = true;
    seal_stateless(f, "POST", "/v1/login", body, NULL, now_ms());
    f->req.accepts_gzip = true;
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    gw_reply_compress(&f->req, &f->reply);
    assert_true(f->reply.gzipped);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)f->reply.body;
    z.avail_in = (uInt)f->reply.body_len;
    z.next_out = plain;
    z.avail_out = sizeof(plain);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    inflateEnd(&z);
    free(f->reply.body);
    f->reply.body = malloc(z.total_out);
    memcpy(f->reply.body, plain, z.total_out);
    f->reply.body_len = z.total_out;
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "nnnnnnnnnn"));
    free(answer);
    free(token);
}

static void test_replay_is_sent_to_audit(void **state)
{
    struct fixture *f = *state;

    audit_calls = 0;
    f->ctx.audit = gw_audit_start(NULL);
    assert_non_null(f->ctx.audit);
    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 409);
    /* The response did not wait for the audit; give the thread 2 s. */
    for (int i = 0;
         i < 200 && __atomic_load_n(&audit_calls, __ATOMIC_SEQ_CST) == 0; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};

        nanosleep(&pause, NULL);
    }
    gw_audit_stop(f->ctx.audit);
    f->ctx.audit = NULL;
    assert_int_equal(audit_calls, 1);
    assert_string_equal(audit_event, "gateway.replayed");
    assert_non_null(strstr(audit_detail, "\"client_ip\":\"198.51.100.7\""));
    assert_non_null(strstr(audit_detail, "\"route\":\"/v1/login\""));
}

static void test_class_in_json_is_rejected(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    char *answer;

    seal_stateless(f, "PUT", "/v1/me/data/private",
                   "{\"class\":\"public\",\"fields\":{}}", token, now_ms());
    run(f, GW_METHOD_PUT, "/v1/me/data/private");
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"class\\\" is set by the request path"));
    assert_null(strstr(answer, "cerrojo.v1"));
    free(answer);
    free(token);
}

static void test_sealed_get_with_empty_object_is_served(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);

    /* The project's client seals {} when a route takes no body. */
    seal_stateless(f, "GET", "/v1/me", " { } ", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(seen.calls, 1);
    free(token);
}

static void test_sealed_get_with_blank_body_is_served(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);

    /* Another client may pad a GET's empty body with whitespace alone. */
    seal_stateless(f, "GET", "/v1/me", "   \t\r\n   ", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(seen.calls, 1);
    free(token);
}

static void test_sealed_get_with_body_is_400(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    char *answer;

    seal_stateless(f, "GET", "/v1/me", "{\"a\":\"b\"}", token, now_ms());
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 400);
    assert_int_equal(seen.calls, 0);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "This route takes no request body."));
    assert_null(strstr(answer, "cerrojo.v1"));
    free(answer);
    free(token);
}

/* Seals a stateful GET for `path` under the test session at timestamp ts_ms,
 * with `token` (may be NULL) in the plaintext. */
static void seal_stateful_at(struct fixture *f, const char *path, uint64_t seq,
                             const char *token, uint64_t ts_ms)
{
    struct cj_seal_plaintext pt = {.ts_ms = ts_ms,
                                   .token = (const uint8_t *)token,
                                   .token_len = token ? strlen(token) : 0};

    stateful_path = path;
    free(f->envelope);
    assert_int_equal(
        cj_stateful_seal_request(c2s_key, (const uint8_t *)TEST_SESSION_ID,
                                 strlen(TEST_SESSION_ID), 0, seq, "GET", path,
                                 &pt, &f->envelope, &f->envelope_len),
        CJ_OK);
    f->req.session_header = TEST_SESSION_ID;
}

/* Seals a stateful GET for `path` under the test session, with `token`
 * (may be NULL) in the plaintext. */
static void seal_stateful_with_token(struct fixture *f, const char *path,
                                     uint64_t seq, const char *token)
{
    seal_stateful_at(f, path, seq, token, now_ms());
}

/* Seals a stateful GET for `path` under the test session. */
static void seal_stateful(struct fixture *f, const char *path, uint64_t seq)
{
    seal_stateful_with_token(f, path, seq, NULL);
}

/* Runs a stateful GET sealed at ts_ms and checks that the gateway rejects
 * it as replayed, sealed under the response key, before any backend call. */
static void check_stateful_stale(struct fixture *f, uint64_t seq,
                                 uint64_t ts_ms)
{
    uint8_t *body = NULL;
    size_t len = 0;
    enum cj_seal_reason why;
    uint64_t before_ms = now_ms();

    seen.calls = 0;
    seal_stateful_at(f, "/v1/me", seq, NULL, ts_ms);
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 409);
    assert_true(f->reply.sealed);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(f->req.rejection, GW_REJECT_TIMESTAMP);
    assert_int_equal(cj_stateful_open_response(
                         response_key, (const uint8_t *)TEST_SESSION_ID,
                         strlen(TEST_SESSION_ID), 0, seq, f->reply.body,
                         f->reply.body_len, &body, &len, &why),
                     CJ_OK);
    check_server_time((const char *)body, len, before_ms, now_ms());
    free(body);
}

static void test_stateful_old_timestamp_is_rejected(void **state)
{
    check_stateful_stale(*state, 5, now_ms() - 61 * 1000);
}

static void test_stateful_future_timestamp_is_rejected(void **state)
{
    check_stateful_stale(*state, 6, now_ms() + 61 * 1000);
}

static void test_stateful_timestamp_in_window_is_served(void **state)
{
    struct fixture *f = *state;

    seal_stateful_at(f, "/v1/me", 7, NULL, now_ms() - 50 * 1000);
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
}

static void test_stateful_stale_timestamp_is_audited(void **state)
{
    struct fixture *f = *state;

    audit_calls = 0;
    f->ctx.audit = gw_audit_start(NULL);
    assert_non_null(f->ctx.audit);
    check_stateful_stale(f, 8, 1);
    /* The response did not wait for the audit; give the thread 2 s. */
    for (int i = 0;
         i < 200 && __atomic_load_n(&audit_calls, __ATOMIC_SEQ_CST) == 0; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};

        nanosleep(&pause, NULL);
    }
    gw_audit_stop(f->ctx.audit);
    f->ctx.audit = NULL;
    assert_int_equal(audit_calls, 1);
    assert_string_equal(audit_event, "gateway.stale_timestamp");
    assert_non_null(strstr(audit_detail, "\"route\":\"/v1/me\""));
}

static void test_stateful_protected_read_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t *body = NULL;
    size_t len = 0;
    enum cj_seal_reason why;

    seal_stateful(f, "/v1/me/data/protected", 1);
    run(f, GW_METHOD_GET, "/v1/me/data/protected");
    assert_int_equal(f->reply.status, 200);
    assert_string_equal(seen.user_id, TEST_USER_ID);
    assert_string_equal(seen.session_id, TEST_SESSION_ID);
    assert_string_equal(seen.channel, "stateful");
    assert_int_equal(seen.data_class,
                     CERROJO__V1__DATA_CLASS__DATA_CLASS_PROTECTED);
    assert_int_equal(cj_stateful_open_response(
                         response_key, (const uint8_t *)TEST_SESSION_ID,
                         strlen(TEST_SESSION_ID), 0, 1, f->reply.body,
                         f->reply.body_len, &body, &len, &why),
                     CJ_OK);
    assert_non_null(strstr((const char *)body, "\"protected\""));
    free(body);
}

static void test_stateful_unbound_session_is_401(void **state)
{
    struct fixture *f = *state;

    bound_user = NULL;
    seal_stateful(f, "/v1/me", 2);
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 401);
    assert_true(f->reply.sealed);
    assert_string_equal(seen.rpc, "");
}

static void test_stateful_request_with_token_is_400(void **state)
{
    struct fixture *f = *state;
    char *token = make_token("https://cerrojo.test", TEST_USER_ID);
    uint8_t *body = NULL;
    size_t len = 0;
    enum cj_seal_reason why;

    seal_stateful_with_token(f, "/v1/me", 4, token);
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 400);
    assert_true(f->reply.sealed);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(f->req.rejection, GW_REJECT_MODE);
    assert_int_equal(cj_stateful_open_response(
                         response_key, (const uint8_t *)TEST_SESSION_ID,
                         strlen(TEST_SESSION_ID), 0, 4, f->reply.body,
                         f->reply.body_len, &body, &len, &why),
                     CJ_OK);
    assert_non_null(strstr((const char *)body, "\"invalid_request\""));
    assert_non_null(strstr((const char *)body, "stateful mode"));
    free(body);
    free(token);
}

static void test_stateful_unknown_session_is_401_plain(void **state)
{
    struct fixture *f = *state;

    seal_stateful(f, "/v1/me", 3);
    /* Well-formed (22 base64url characters) but no session's id. */
    f->req.session_header = "b3RoZXItc2Vzc2lvbi1pZA";
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 401);
    assert_false(f->reply.sealed);
    assert_non_null(strstr(f->reply.body, "\"invalid_token\""));
    assert_non_null(strstr(f->reply.body, "unknown or has expired"));
    assert_non_null(strstr(f->reply.body, "handshake"));
    assert_int_equal(f->req.rejection, GW_REJECT_TOKEN);
}

static void test_session_id_of_wrong_length_is_400(void **state)
{
    /* Base64url characters, inside and outside the 16 to 64 that the
     * stateful additional data accepts, but not the 22 of an issued id. */
    static const char *const ids[] = {
        "x",
        "xxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        seal_stateful(f, "/v1/me", 4);
        f->req.session_header = ids[i];
        run(f, GW_METHOD_GET, "/v1/me");
        if (f->reply.status != 400) {
            fail_msg("id of %zu characters got %u", strlen(ids[i]),
                     f->reply.status);
        }
        assert_non_null(strstr(f->reply.body, "\"invalid_request\""));
        assert_non_null(strstr(f->reply.body, "Cerrojo-Session"));
        assert_non_null(strstr(f->reply.body, "22-character"));
        assert_string_equal(seen.rpc, "");
        gw_reply_clear(&f->reply);
        memset(&f->reply, 0, sizeof(f->reply));
    }
}

static void test_session_id_with_other_character_is_400(void **state)
{
    struct fixture *f = *state;

    seal_stateful(f, "/v1/me", 5);
    f->req.session_header = "c2Vzc2lvbi1pZC0xMjM0N+";
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "Cerrojo-Session"));
}

static void test_stateful_seal_failure_hints_handshake(void **state)
{
    struct fixture *f = *state;
    char *ct;

    /* A tampered byte, so the tag does not verify. */
    seal_stateful(f, "/v1/me", 6);
    ct = strstr(f->envelope, "\"ct\":\"");
    assert_non_null(ct);
    ct[6] = ct[6] == 'A' ? 'B' : 'A';
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 400);
    assert_false(f->reply.sealed);
    assert_non_null(strstr(f->reply.body, "\"decryption_failed\""));
    assert_non_null(strstr(f->reply.body, "handshake"));
    assert_null(strstr(f->reply.body, "/v1/keys"));
    assert_int_equal(f->req.rejection, GW_REJECT_DECRYPTION_FAILED);
}

static void test_stateless_seal_failures_share_key_hint(void **state)
{
    struct fixture *f = *state;
    char *first;
    const char *message;
    char *ct;

    /* Two different causes: the wrong path, then a tampered byte. */
    seal_stateless(f, "POST", "/v1/register", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, "\"decryption_failed\""));
    message = strstr(f->reply.body, "\"message\"");
    assert_non_null(message);
    assert_non_null(strstr(message, "GET /v1/keys"));
    assert_non_null(strstr(message, "rotated or been retired"));
    first =
        strndup(message, (size_t)(strstr(message, "\"request_id\"") - message));

    seal_stateless(f, "POST", "/v1/login", "{\"login\":\"ana\"}", NULL,
                   now_ms());
    ct = strstr(f->envelope, "\"ct\":\"");
    assert_non_null(ct);
    ct[6] = ct[6] == 'A' ? 'B' : 'A';
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 400);
    assert_non_null(strstr(f->reply.body, first));
    free(first);
}

static void test_stateful_check_mismatch_is_500(void **state)
{
    struct fixture *f = *state;
    FILE *log_file = tmpfile();
    char log_text[4096] = "";
    size_t log_len;

    assert_non_null(log_file);
    cj_log_set_fd(fileno(log_file));
    open_request_code = GRPC_STATUS_INVALID_ARGUMENT;
    seal_stateful(f, "/v1/me", 7);
    run(f, GW_METHOD_GET, "/v1/me");
    cj_log_set_fd(STDERR_FILENO);
    rewind(log_file);
    log_len = fread(log_text, 1, sizeof(log_text) - 1, log_file);
    log_text[log_len] = '\0';
    fclose(log_file);

    assert_int_equal(f->reply.status, 500);
    assert_false(f->reply.sealed);
    assert_non_null(strstr(f->reply.body, "\"internal\""));
    assert_null(strstr(f->reply.body, "invalid_request"));
    assert_null(strstr(f->reply.body, "decryption_failed"));
    assert_non_null(strstr(log_text, "\"level\":\"warn\""));
    assert_non_null(strstr(log_text, "gateway.session_check_mismatch"));
    assert_null(strstr(log_text, TEST_SESSION_ID));
}

/* A login body with a client_secret of 32 bytes 0x01 (base64url). */
#define LOGIN_WITH_SECRET                                                      \
    "{\"login\":\"ana\",\"password\":\"pw-123456789\",\"client_secret\":"      \
    "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}"

/* Checks that an opened response is padded JSON: its length is a whole
 * number of blocks and the spaces do not keep it from parsing. */
static void check_padded_json(const char *answer, size_t len)
{
    json_t *parsed = json_loadb(answer, len, JSON_REJECT_DUPLICATES, NULL);

    assert_int_equal(len % CJ_SEAL_PAD_BLOCK_LEN, 0);
    assert_int_equal(answer[len - 1], ' ');
    assert_non_null(parsed);
    json_decref(parsed);
}

static void test_stateless_reply_is_padded(void **state)
{
    struct fixture *f = *state;
    char *answer;

    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    answer = open_stateless_reply(f);
    check_padded_json(answer, strlen(answer));
    free(answer);
}

static void test_sealed_error_reply_is_padded(void **state)
{
    struct fixture *f = *state;
    char *answer;

    login_throttled = true;
    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 429);
    answer = open_stateless_reply(f);
    check_padded_json(answer, strlen(answer));
    free(answer);
}

static void test_stateful_reply_is_padded(void **state)
{
    struct fixture *f = *state;
    uint8_t *body = NULL;
    size_t len = 0;
    enum cj_seal_reason why;

    seal_stateful(f, "/v1/me", 9);
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(cj_stateful_open_response(
                         response_key, (const uint8_t *)TEST_SESSION_ID,
                         strlen(TEST_SESSION_ID), 0, 9, f->reply.body,
                         f->reply.body_len, &body, &len, &why),
                     CJ_OK);
    check_padded_json((const char *)body, len);
    assert_non_null(strstr((const char *)body, TEST_USER_ID));
    free(body);
}

static void test_padded_stateless_body_is_served(void **state)
{
    struct fixture *f = *state;
    char body[CJ_SEAL_PAD_BLOCK_LEN + 1];

    /* The project's client pads with spaces after the JSON object. */
    memset(body, ' ', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    memcpy(body, "{\"login\":\"ana\"}", 15);
    seal_stateless(f, "POST", "/v1/login", body, NULL, now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    assert_string_equal(seen.login, "ana");
}

static void test_padded_stateful_get_is_served(void **state)
{
    struct fixture *f = *state;
    char body[CJ_SEAL_PAD_BLOCK_LEN - CJ_SEAL_PLAINTEXT_HEADER_LEN + 1];
    struct cj_seal_plaintext pt = {.ts_ms = now_ms(),
                                   .body = (const uint8_t *)body,
                                   .body_len = sizeof(body) - 1};

    memset(body, ' ', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    memcpy(body, "{}", 2);
    stateful_path = "/v1/me";
    free(f->envelope);
    assert_int_equal(
        cj_stateful_seal_request(c2s_key, (const uint8_t *)TEST_SESSION_ID,
                                 strlen(TEST_SESSION_ID), 0, 10, "GET",
                                 "/v1/me", &pt, &f->envelope, &f->envelope_len),
        CJ_OK);
    f->req.session_header = TEST_SESSION_ID;
    run(f, GW_METHOD_GET, "/v1/me");
    assert_int_equal(f->reply.status, 200);
    assert_string_equal(seen.user_id, TEST_USER_ID);
}

/* Runs a request with the log sent to a temporary file, and copies the
 * log into `log_text`. */
static void run_capturing_log(struct fixture *f, enum gw_method method,
                              const char *path, char *log_text, size_t log_size)
{
    FILE *log_file = tmpfile();
    size_t log_len;

    assert_non_null(log_file);
    cj_log_set_fd(fileno(log_file));
    run(f, method, path);
    cj_log_set_fd(STDERR_FILENO);
    rewind(log_file);
    log_len = fread(log_text, 1, log_size - 1, log_file);
    log_text[log_len] = '\0';
    fclose(log_file);
}

/* Returns the value of cerrojo_gateway_rate_limited_total for `bucket`. */
static unsigned long long rate_limited_count(const char *bucket)
{
    char series[128];
    char *text = gw_metrics_render();
    const char *found;
    unsigned long long count = 0;

    assert_non_null(text);
    snprintf(series, sizeof(series),
             "cerrojo_gateway_rate_limited_total{bucket=\"%s\"} ", bucket);
    found = strstr(text, series);
    assert_non_null(found);
    count = strtoull(found + strlen(series), NULL, 10);
    free(text);
    return count;
}

static void test_login_with_secret_spends_session(void **state)
{
    struct fixture *f = *state;

    seal_stateless(f, "POST", "/v1/login", LOGIN_WITH_SECRET, NULL, now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(session_takes, 1);
    assert_string_equal(seen.login, "ana");
}

static void test_login_with_secret_skips_handshake(void **state)
{
    struct fixture *f = *state;

    seal_stateless(f, "POST", "/v1/login", LOGIN_WITH_SECRET, NULL, now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(handshake_takes, 0);
}

static void test_login_over_session_limit_is_429(void **state)
{
    struct fixture *f = *state;
    char log_text[4096];
    unsigned long long before = rate_limited_count("session");
    unsigned long long handshake_before = rate_limited_count("handshake");
    char *answer;

    session_status = CJ_ERR_RATE_LIMITED;
    session_retry_after_s = 42;
    seal_stateless(f, "POST", "/v1/login", LOGIN_WITH_SECRET, NULL, now_ms());
    run_capturing_log(f, GW_METHOD_POST, "/v1/login", log_text,
                      sizeof(log_text));
    assert_int_equal(f->reply.status, 429);
    assert_int_equal(f->reply.retry_after, 42);
    assert_int_equal(f->req.rejection, GW_REJECT_RATE_LIMITED);
    /* Auth was not called, so no session was opened. */
    assert_string_equal(seen.login, "");
    assert_true(f->reply.sealed);
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"rate_limited\""));
    assert_non_null(strstr(answer, "open a session"));
    assert_non_null(strstr(answer, "--stateless"));
    free(answer);
    assert_non_null(strstr(log_text, "per-IP session rate limit"));
    assert_int_equal(rate_limited_count("session"), before + 1);
    assert_int_equal(rate_limited_count("handshake"), handshake_before);
}

static void test_register_over_session_limit_is_429(void **state)
{
    struct fixture *f = *state;

    session_status = CJ_ERR_RATE_LIMITED;
    session_retry_after_s = 7;
    seal_stateless(f, "POST", "/v1/register",
                   "{\"username\":\"ana\",\"email\":\"ana@example.com\","
                   "\"password\":\"pw-123456789\",\"client_secret\":"
                   "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}",
                   NULL, now_ms());
    run(f, GW_METHOD_POST, "/v1/register");
    assert_int_equal(f->reply.status, 429);
    assert_int_equal(f->reply.retry_after, 7);
    assert_int_equal(seen.calls, 0);
}

static void test_login_without_secret_skips_session(void **state)
{
    struct fixture *f = *state;

    session_status = CJ_ERR_RATE_LIMITED;
    seal_stateless(f, "POST", "/v1/login",
                   "{\"login\":\"ana\",\"password\":\"pw-123456789\"}", NULL,
                   now_ms());
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_equal(f->reply.status, 200);
    assert_int_equal(session_takes, 0);
}

/* Secrets that auth rejects with 400 reach auth before any bucket is
 * spent, even when the session bucket is empty. */
static void test_invalid_secret_skips_session(void **state)
{
    static const char *const bodies[] = {
        /* 16 bytes: auth accepts only 32. */
        "{\"login\":\"ana\",\"password\":\"pw-123456789\",\"client_secret\":"
        "\"AQEBAQEBAQEBAQEBAQEBAQ\"}",
        /* 32 zero bytes. */
        "{\"login\":\"ana\",\"password\":\"pw-123456789\",\"client_secret\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        session_status = CJ_ERR_RATE_LIMITED;
        session_takes = 0;
        memset(&seen, 0, sizeof(seen));
        seal_stateless(f, "POST", "/v1/login", bodies[i], NULL, now_ms());
        run(f, GW_METHOD_POST, "/v1/login");
        assert_int_not_equal(f->reply.status, 429);
        assert_int_equal(session_takes, 0);
        assert_string_equal(seen.login, "ana");
    }
}

static void test_stateful_login_with_secret_skips_session(void **state)
{
    struct fixture *f = *state;
    struct cj_seal_plaintext pt = {.ts_ms = now_ms(),
                                   .body = (const uint8_t *)LOGIN_WITH_SECRET,
                                   .body_len = strlen(LOGIN_WITH_SECRET)};

    session_status = CJ_ERR_RATE_LIMITED;
    stateful_method = "POST";
    stateful_path = "/v1/login";
    free(f->envelope);
    assert_int_equal(cj_stateful_seal_request(
                         c2s_key, (const uint8_t *)TEST_SESSION_ID,
                         strlen(TEST_SESSION_ID), 0, 10, "POST", "/v1/login",
                         &pt, &f->envelope, &f->envelope_len),
                     CJ_OK);
    f->req.session_header = TEST_SESSION_ID;
    run(f, GW_METHOD_POST, "/v1/login");
    assert_int_not_equal(f->reply.status, 429);
    assert_int_equal(session_takes, 0);
    /* The request reached auth, which rejects it with 400. */
    assert_string_equal(seen.login, "ana");
}

static void test_session_bucket_down_is_503_sealed(void **state)
{
    struct fixture *f = *state;
    char log_text[4096];
    char *answer;

    session_status = CJ_ERR_NOMEM;
    seal_stateless(f, "POST", "/v1/login", LOGIN_WITH_SECRET, NULL, now_ms());
    run_capturing_log(f, GW_METHOD_POST, "/v1/login", log_text,
                      sizeof(log_text));
    assert_int_equal(f->reply.status, 503);
    assert_string_equal(seen.login, "");
    answer = open_stateless_reply(f);
    assert_non_null(strstr(answer, "\"unavailable\""));
    free(answer);
    assert_non_null(strstr(log_text, "gateway.rate_limit_unavailable"));
    assert_non_null(strstr(log_text, "\"bucket\":\"session\""));
    assert_non_null(strstr(log_text, cj_status_name(CJ_ERR_NOMEM)));
    assert_null(strstr(log_text, "Redis unavailable"));
}

#define SEALED_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SEALED_TEST(test_stateless_login_round_trip),
        SEALED_TEST(test_throttled_login_keeps_auths_retry_after),
        SEALED_TEST(test_throttled_login_without_trailer_uses_default),
        SEALED_TEST(test_rate_limit_without_redis_is_503),
        SEALED_TEST(test_replayed_envelope_is_rejected_sealed),
        SEALED_TEST(test_stale_timestamp_is_rejected_sealed),
        SEALED_TEST(test_envelope_for_other_path_fails_plain),
        SEALED_TEST(test_tampered_ciphertext_fails_plain),
        SEALED_TEST(test_unknown_member_in_plaintext_is_400_sealed),
        SEALED_TEST(test_stateless_get_with_token_names_user),
        SEALED_TEST(test_token_on_userless_route_is_400),
        SEALED_TEST(test_missing_token_is_401_sealed),
        SEALED_TEST(test_wrong_issuer_token_is_401),
        SEALED_TEST(test_revoked_token_is_401),
        SEALED_TEST(test_unloaded_revocation_cache_is_503),
        SEALED_TEST(test_data_route_sets_class_from_path),
        SEALED_TEST(test_class_in_json_is_rejected),
        SEALED_TEST(test_sealed_get_with_blank_body_is_served),
        SEALED_TEST(test_sealed_get_with_empty_object_is_served),
        SEALED_TEST(test_sealed_get_with_body_is_400),
        SEALED_TEST(test_replay_is_sent_to_audit),
        SEALED_TEST(test_stateful_old_timestamp_is_rejected),
        SEALED_TEST(test_stateful_future_timestamp_is_rejected),
        SEALED_TEST(test_stateful_timestamp_in_window_is_served),
        SEALED_TEST(test_stateful_stale_timestamp_is_audited),
        SEALED_TEST(test_large_sealed_reply_gzips_then_opens),
        SEALED_TEST(test_stateful_protected_read_round_trip),
        SEALED_TEST(test_stateful_unbound_session_is_401),
        SEALED_TEST(test_stateful_request_with_token_is_400),
        SEALED_TEST(test_stateful_unknown_session_is_401_plain),
        SEALED_TEST(test_session_id_of_wrong_length_is_400),
        SEALED_TEST(test_session_id_with_other_character_is_400),
        SEALED_TEST(test_stateful_seal_failure_hints_handshake),
        SEALED_TEST(test_stateless_seal_failures_share_key_hint),
        SEALED_TEST(test_stateful_check_mismatch_is_500),
        SEALED_TEST(test_stateless_reply_is_padded),
        SEALED_TEST(test_sealed_error_reply_is_padded),
        SEALED_TEST(test_stateful_reply_is_padded),
        SEALED_TEST(test_padded_stateless_body_is_served),
        SEALED_TEST(test_padded_stateful_get_is_served),
        SEALED_TEST(test_login_with_secret_spends_session),
        SEALED_TEST(test_login_with_secret_skips_handshake),
        SEALED_TEST(test_login_over_session_limit_is_429),
        SEALED_TEST(test_register_over_session_limit_is_429),
        SEALED_TEST(test_login_without_secret_skips_session),
        SEALED_TEST(test_invalid_secret_skips_session),
        SEALED_TEST(test_stateful_login_with_secret_skips_session),
        SEALED_TEST(test_session_bucket_down_is_503_sealed),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

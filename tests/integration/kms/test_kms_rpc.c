/*
 * cerrojo-kms as a process, called over mutual TLS with the development
 * certificates: a round trip of every RPC, the access rule of every RPC,
 * DecryptKey failures as a caller sees them, Python grpcio against the C
 * client, a stage-profile start with a generated root key, the messages
 * of failed lifecycle commands, an HPKE rotation seen by two replicas, and
 * the on-demand reload of a replica that missed a rotation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "cerrojo/v1/kms.pb-c.h"
#include "crypto_util.h"
#include "envelope_stateless.h"
#include "jwt.h"
#include "kms_itest.h"
#include "kms_service.h"
#include "kms_store.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_message.h"

#define ROOT_KEY "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
/* A second root key (0xA0..0xBF) that opens none of the stored keys. */
#define OTHER_ROOT_KEY  "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="
#define KMS_BIN         CJ_BIN_DIR "/cerrojo-kms"
#define START_WAIT_MS   60000
#define CALL_TIMEOUT_MS 10000
#define PYTHON          "/usr/bin/python3"

static struct kms_itest_db db;
static char tmp[64];
static char certs[128];
static char address[64];
static pid_t server_pid = -1;

enum caller { AUTH = 0, GATEWAY, SESSION, OTHER_CA, N_CALLERS };
static const char *const caller_files[N_CALLERS] = {"auth", "gateway",
                                                    "session", "other"};
static struct cj_rpc_client *clients[N_CALLERS];

static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    close(fd);
    return ntohs(addr.sin_port);
}

/*
 * Runs the kms binary with `argv` and the environment `env` (NULL ended),
 * output to log_path. Returns the child's pid.
 */
static pid_t spawn_kms(char *const argv[], char *const env[],
                       const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(KMS_BIN, argv, env);
        _exit(127);
    }
    return pid;
}

/* Fills env with the settings every kms process of this test shares. With
 * metrics_port 0 the metrics server takes a free port. */
static void base_env(char store[][600], char *env[], size_t *n,
                     const char *profile, const char *listen, int metrics_port)
{
    size_t i = 0;
    snprintf(store[i++], 600, "CERROJO_ENV_FILE=/dev/null");
    snprintf(store[i++], 600, "CERROJO_PROFILE=%s", profile);
    snprintf(store[i++], 600, "CERROJO_KMS_LISTEN=%s", listen);
    snprintf(store[i++], 600, "CERROJO_TLS_CA=%s/ca.pem", certs);
    snprintf(store[i++], 600, "CERROJO_KMS_TLS_CERT=%s/kms.pem", certs);
    snprintf(store[i++], 600, "CERROJO_KMS_TLS_KEY=%s/kms.key", certs);
    snprintf(store[i++], 600, "CERROJO_KMS_DATABASE_URL=%s", db.kms_dsn);
    snprintf(store[i++], 600, "CERROJO_LOG_LEVEL=warn");
    snprintf(store[i++], 600, "CERROJO_KMS_METRICS_PORT=%d", metrics_port);
    for (size_t k = 0; k < i; k++)
        env[k] = store[k];
    env[i] = NULL;
    *n = i;
}

static enum cj_status call(enum caller who, const char *method,
                           const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *resp_type,
                           ProtobufCMessage **resp)
{
    char path[128];
    char error[CJ_RPC_CLIENT_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "/cerrojo.v1.Kms/%s", method);
    *resp = NULL;
    return cj_rpc_client_call(clients[who], path, req, resp_type, NULL,
                              CALL_TIMEOUT_MS, resp, NULL, error);
}

/* Whether something accepts TCP connections on listen (host:port). */
static bool port_open(const char *listen)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    int port = atoi(strchr(listen, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    bool open =
        fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (fd >= 0)
        close(fd);
    return open;
}

static bool server_ready(void)
{
    Cerrojo__V1__GetJwksRequest req = CERROJO__V1__GET_JWKS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    enum cj_status st =
        call(AUTH, "GetJwks", &req.base,
             &cerrojo__v1__get_jwks_response__descriptor, &resp);
    cj_rpc_message_free(resp);
    return st == CJ_OK;
}

static int group_setup(void **state)
{
    (void)state;
    char cmd[512];
    char log_path[160];

    if (!kms_itest_db_create(&db, "kms_rpc"))
        return -1;
    snprintf(tmp, sizeof(tmp), "/tmp/cj-kms-rpc-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(certs, sizeof(certs), "%s/certs", tmp);
    snprintf(cmd, sizeof(cmd), "%s/scripts/dev-certs.sh %s >/dev/null",
             CJ_SOURCE_DIR, certs);
    if (system(cmd) != 0)
        return -1;
    snprintf(address, sizeof(address), "127.0.0.1:%d", free_port());

    char store[16][600];
    char *env[17];
    size_t n = 0;
    base_env(store, env, &n, "dev", address, 0);
    snprintf(store[n], 600, "CERROJO_KMS_ROOT_KEY=%s", ROOT_KEY);
    env[n] = store[n];
    env[++n] = NULL;
    char *argv[] = {"cerrojo-kms", "serve", NULL};
    snprintf(log_path, sizeof(log_path), "%s/kms.log", tmp);
    server_pid = spawn_kms(argv, env, log_path);

    /* Clients are made once the port accepts connections, so that their
     * channels never start in reconnect backoff. */
    for (int waited = 0; waited < START_WAIT_MS && !port_open(address);
         waited += 100)
        usleep(100 * 1000);
    for (int i = 0; i < N_CALLERS; i++) {
        char cert[192];
        char key[192];
        char ca[192];
        snprintf(cert, sizeof(cert), "%s/%s.pem", certs, caller_files[i]);
        snprintf(key, sizeof(key), "%s/%s.key", certs, caller_files[i]);
        snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
        struct cj_rpc_client_options opts = {.targets = address,
                                             .tls_ca_file = ca,
                                             .tls_cert_file = cert,
                                             .tls_key_file = key};
        if (cj_rpc_client_create(&opts, &clients[i]) != CJ_OK)
            return -1;
    }
    for (int waited = 0; waited < START_WAIT_MS; waited += 100) {
        if (server_ready())
            return 0;
        usleep(100 * 1000);
    }
    snprintf(cmd, sizeof(cmd), "cat %s >&2", log_path);
    (void)system(cmd);
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    int status = 0;

    for (int i = 0; i < N_CALLERS; i++)
        cj_rpc_client_destroy(clients[i]);
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, &status, 0);
    }
    /* A clean exit also means no sanitizer report in a sanitized build. */
    bool clean =
        server_pid <= 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!clean) {
        fprintf(stderr,
                "cerrojo-kms did not exit cleanly (status %d); its "
                "log follows\n",
                status);
        snprintf(cmd, sizeof(cmd), "cat %s/kms.log >&2", tmp);
        (void)system(cmd);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    (void)system(cmd);
    kms_itest_db_drop(&db);
    return clean ? 0 : -1;
}

static Cerrojo__V1__CreateUserKeyResponse *create_key(const char *user)
{
    Cerrojo__V1__CreateUserKeyRequest req =
        CERROJO__V1__CREATE_USER_KEY_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;

    req.user_id = (char *)user;
    assert_int_equal(call(AUTH, "CreateUserKey", &req.base,
                          &cerrojo__v1__create_user_key_response__descriptor,
                          &resp),
                     CJ_OK);
    return (Cerrojo__V1__CreateUserKeyResponse *)resp;
}

static enum cj_status decrypt(const char *user, const uint8_t *wrapped,
                              size_t len, Cerrojo__V1__DecryptKeyResponse **out)
{
    Cerrojo__V1__DecryptKeyRequest req = CERROJO__V1__DECRYPT_KEY_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;

    req.user_id = (char *)user;
    req.wrapped_key.data = (uint8_t *)wrapped;
    req.wrapped_key.len = len;
    enum cj_status st =
        call(AUTH, "DecryptKey", &req.base,
             &cerrojo__v1__decrypt_key_response__descriptor, &resp);
    *out = (Cerrojo__V1__DecryptKeyResponse *)resp;
    return st;
}

static void test_data_key_round_trip(void **state)
{
    (void)state;
    Cerrojo__V1__CreateUserKeyResponse *created = create_key("rpc-user");
    Cerrojo__V1__DecryptKeyResponse *opened = NULL;

    assert_int_equal(created->data_key.len, 32);
    assert_int_equal(created->wrapped_key.len, 65);
    assert_int_equal(created->kek_version, 1);
    assert_int_equal(decrypt("rpc-user", created->wrapped_key.data,
                             created->wrapped_key.len, &opened),
                     CJ_OK);
    assert_memory_equal(opened->data_key.data, created->data_key.data, 32);
    assert_int_equal(opened->kek_version, 1);

    Cerrojo__V1__RewrapKeyRequest req = CERROJO__V1__REWRAP_KEY_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    req.user_id = "rpc-user";
    req.wrapped_key = created->wrapped_key;
    assert_int_equal(call(AUTH, "RewrapKey", &req.base,
                          &cerrojo__v1__rewrap_key_response__descriptor, &resp),
                     CJ_OK);
    Cerrojo__V1__RewrapKeyResponse *rewrapped =
        (Cerrojo__V1__RewrapKeyResponse *)resp;
    assert_false(rewrapped->changed);
    assert_int_equal(rewrapped->kek_version, 1);
    assert_memory_equal(rewrapped->wrapped_key.data, created->wrapped_key.data,
                        65);

    cj_rpc_message_free(resp);
    cj_rpc_message_free(&opened->base);
    cj_rpc_message_free(&created->base);
}

static void test_decrypt_failures_look_alike(void **state)
{
    (void)state;
    Cerrojo__V1__CreateUserKeyResponse *created = create_key("victim");
    Cerrojo__V1__DecryptKeyResponse *opened = NULL;
    uint8_t bad[65];

    memcpy(bad, created->wrapped_key.data, sizeof(bad));
    /* Another user's id. */
    assert_int_equal(decrypt("intruder", bad, sizeof(bad), &opened),
                     CJ_ERR_UNAUTHENTICATED);
    /* A flipped byte. */
    bad[30] ^= 0x01;
    assert_int_equal(decrypt("victim", bad, sizeof(bad), &opened),
                     CJ_ERR_UNAUTHENTICATED);
    bad[30] ^= 0x01;
    /* A truncated input. */
    assert_int_equal(decrypt("victim", bad, 40, &opened),
                     CJ_ERR_UNAUTHENTICATED);
    /* An unknown KEK version. */
    bad[1] = 0x7f;
    assert_int_equal(decrypt("victim", bad, sizeof(bad), &opened),
                     CJ_ERR_UNAUTHENTICATED);
    assert_null(opened);
    cj_rpc_message_free(&created->base);
}

static void test_sign_token_verifies_with_jwks(void **state)
{
    (void)state;
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    ProtobufCMessage *jwks_resp = NULL;
    int64_t now = (int64_t)time(NULL);

    req.user_id = "rpc-user";
    req.session_id = "sess-1";
    req.token_id = "jti-rpc";
    req.issuer = "https://cerrojo.test";
    req.audience = "cerrojo";
    req.issued_at = now;
    req.expires_at = now + 900;
    assert_int_equal(call(AUTH, "SignToken", &req.base,
                          &cerrojo__v1__sign_token_response__descriptor, &resp),
                     CJ_OK);
    Cerrojo__V1__SignTokenResponse *signed_token =
        (Cerrojo__V1__SignTokenResponse *)resp;
    assert_string_equal(signed_token->alg, "RS256");

    Cerrojo__V1__GetJwksRequest jreq = CERROJO__V1__GET_JWKS_REQUEST__INIT;
    assert_int_equal(call(GATEWAY, "GetJwks", &jreq.base,
                          &cerrojo__v1__get_jwks_response__descriptor,
                          &jwks_resp),
                     CJ_OK);
    Cerrojo__V1__GetJwksResponse *jwks =
        (Cerrojo__V1__GetJwksResponse *)jwks_resp;
    assert_true(jwks->max_age_seconds > 0);
    struct cj_jwks *set = NULL;
    assert_int_equal(
        cj_jwks_parse(jwks->jwks_json, strlen(jwks->jwks_json), &set), CJ_OK);
    assert_non_null(cj_jwks_find(set, signed_token->kid));

    struct cj_jwt_verify_config config;
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason;
    cj_jwt_verify_config_init(&config, "https://cerrojo.test", "cerrojo");
    assert_int_equal(cj_jwt_verify(set, &config, now, signed_token->token,
                                   strlen(signed_token->token), &claims,
                                   &reason),
                     CJ_OK);
    assert_string_equal(claims.sub, "rpc-user");
    assert_string_equal(claims.sid, "sess-1");
    assert_string_equal(claims.jti, "jti-rpc");
    assert_int_equal(claims.exp, now + 900);

    /* A lifetime beyond the configured maximum is refused. */
    req.expires_at = now + 30 * 86400;
    cj_rpc_message_free(resp);
    assert_int_equal(call(AUTH, "SignToken", &req.base,
                          &cerrojo__v1__sign_token_response__descriptor, &resp),
                     CJ_ERR_INVALID);

    cj_jwks_free(set);
    cj_rpc_message_free(jwks_resp);
}

/* The body of every request that these tests seal. */
static const uint8_t login_body[] = "{\"username\":\"ana\"}";

/*
 * A login request sealed to one HPKE key, with the OpenSealed request that
 * carries it. The request points into parsed and aad, so the struct must
 * not be copied or moved before sealed_login_clear.
 */
struct sealed_login {
    char *envelope;
    uint8_t *aad;
    size_t aad_len;
    struct cj_stateless_request parsed;
    struct cj_stateless_client client;
    Cerrojo__V1__OpenSealedRequest req;
};

/* Seals login_body as POST /v1/login to key, as a client would, and fills
 * the OpenSealed request for it. */
static void seal_login(const Cerrojo__V1__HpkePublicKey *key,
                       struct sealed_login *out)
{
    struct cj_seal_plaintext pt = {.ts_ms = 1700000000000ULL,
                                   .body = login_body,
                                   .body_len = sizeof(login_body) - 1};
    struct cj_stateless_header hdr = {
        .version = 1,
        .key_id = (uint8_t)key->key_id,
        .suite = {.kem_id = (uint16_t)key->kem_id,
                  .kdf_id = (uint16_t)key->kdf_id,
                  .aead_id = (uint16_t)key->aead_id}};
    enum cj_seal_reason reason;
    size_t envelope_len = 0;

    out->envelope = NULL;
    out->aad = NULL;
    out->aad_len = 0;
    assert_int_equal(cj_stateless_seal_request(
                         &hdr, key->public_key.data, "POST", "/v1/login", &pt,
                         &out->envelope, &envelope_len, &out->client),
                     CJ_OK);
    assert_int_equal(cj_stateless_parse_request(out->envelope, envelope_len,
                                                &out->parsed, &reason),
                     CJ_OK);
    assert_int_equal(
        cj_stateless_build_aad("POST", "/v1/login", &out->aad, &out->aad_len),
        CJ_OK);

    Cerrojo__V1__OpenSealedRequest *req = &out->req;
    *req =
        (Cerrojo__V1__OpenSealedRequest)CERROJO__V1__OPEN_SEALED_REQUEST__INIT;
    req->version = 1;
    req->key_id = key->key_id;
    req->kem_id = key->kem_id;
    req->kdf_id = key->kdf_id;
    req->aead_id = key->aead_id;
    req->enc.data = out->parsed.enc;
    req->enc.len = sizeof(out->parsed.enc);
    req->aad.data = out->aad;
    req->aad.len = out->aad_len;
    req->ciphertext.data = out->parsed.ct;
    req->ciphertext.len = out->parsed.ct_len;
}

static void sealed_login_clear(struct sealed_login *s)
{
    free(s->aad);
    free(s->envelope);
    cj_stateless_request_clear(&s->parsed);
    cj_stateless_client_wipe(&s->client);
}

static void test_open_sealed_round_trip(void **state)
{
    (void)state;
    Cerrojo__V1__ListPublicKeysRequest lreq =
        CERROJO__V1__LIST_PUBLIC_KEYS_REQUEST__INIT;
    ProtobufCMessage *lresp = NULL;
    struct sealed_login sealed;
    enum cj_seal_reason reason;

    assert_int_equal(call(GATEWAY, "ListPublicKeys", &lreq.base,
                          &cerrojo__v1__list_public_keys_response__descriptor,
                          &lresp),
                     CJ_OK);
    Cerrojo__V1__ListPublicKeysResponse *list =
        (Cerrojo__V1__ListPublicKeysResponse *)lresp;
    assert_true(list->n_keys >= 1);
    assert_int_equal(list->n_signer_fingerprints, 1);
    assert_non_null(strchr(list->key_list_jws, '.'));
    Cerrojo__V1__HpkePublicKey *key = list->keys[0];
    assert_int_equal(key->public_key.len, 32);

    seal_login(key, &sealed);
    ProtobufCMessage *oresp = NULL;
    assert_int_equal(call(GATEWAY, "OpenSealed", &sealed.req.base,
                          &cerrojo__v1__open_sealed_response__descriptor,
                          &oresp),
                     CJ_OK);
    Cerrojo__V1__OpenSealedResponse *opened =
        (Cerrojo__V1__OpenSealedResponse *)oresp;
    struct cj_seal_plaintext got;
    assert_int_equal(cj_seal_plaintext_decode(opened->plaintext.data,
                                              opened->plaintext.len, &got,
                                              &reason),
                     CJ_OK);
    assert_int_equal(got.body_len, sizeof(login_body) - 1);
    assert_memory_equal(got.body, login_body, got.body_len);
    assert_int_equal(opened->response_secret.len, sealed.client.secret_len);
    assert_memory_equal(opened->response_secret.data, sealed.client.secret,
                        sealed.client.secret_len);

    /* Another path in the AAD does not open. */
    sealed.aad[sealed.aad_len - 1] ^= 0x01;
    cj_rpc_message_free(oresp);
    assert_int_equal(call(GATEWAY, "OpenSealed", &sealed.req.base,
                          &cerrojo__v1__open_sealed_response__descriptor,
                          &oresp),
                     CJ_ERR_UNAUTHENTICATED);

    sealed_login_clear(&sealed);
    cj_rpc_message_free(lresp);
}

/* One RPC and an identity its access rule does not name. */
struct refusal {
    const char *method;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    enum caller who;
};

static void test_access_rules_refuse_unnamed_callers(void **state)
{
    (void)state;
    const struct refusal cases[] = {
        {"CreateUserKey", &cerrojo__v1__create_user_key_request__descriptor,
         &cerrojo__v1__create_user_key_response__descriptor, GATEWAY},
        {"CreateUserKey", &cerrojo__v1__create_user_key_request__descriptor,
         &cerrojo__v1__create_user_key_response__descriptor, SESSION},
        {"DecryptKey", &cerrojo__v1__decrypt_key_request__descriptor,
         &cerrojo__v1__decrypt_key_response__descriptor, GATEWAY},
        {"RewrapKey", &cerrojo__v1__rewrap_key_request__descriptor,
         &cerrojo__v1__rewrap_key_response__descriptor, GATEWAY},
        {"ForgetUserKey", &cerrojo__v1__forget_user_key_request__descriptor,
         &cerrojo__v1__forget_user_key_response__descriptor, GATEWAY},
        {"ListOldKeyUsers",
         &cerrojo__v1__list_old_key_users_request__descriptor,
         &cerrojo__v1__list_old_key_users_response__descriptor, GATEWAY},
        {"SignToken", &cerrojo__v1__sign_token_request__descriptor,
         &cerrojo__v1__sign_token_response__descriptor, GATEWAY},
        {"SignToken", &cerrojo__v1__sign_token_request__descriptor,
         &cerrojo__v1__sign_token_response__descriptor, SESSION},
        {"GetJwks", &cerrojo__v1__get_jwks_request__descriptor,
         &cerrojo__v1__get_jwks_response__descriptor, SESSION},
        {"OpenSealed", &cerrojo__v1__open_sealed_request__descriptor,
         &cerrojo__v1__open_sealed_response__descriptor, AUTH},
        {"ListPublicKeys", &cerrojo__v1__list_public_keys_request__descriptor,
         &cerrojo__v1__list_public_keys_response__descriptor, AUTH},
        {"ListPublicKeys", &cerrojo__v1__list_public_keys_request__descriptor,
         &cerrojo__v1__list_public_keys_response__descriptor, SESSION},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ProtobufCMessage *req = calloc(1, cases[i].request->sizeof_message);
        assert_non_null(req);
        protobuf_c_message_init(cases[i].request, req);
        ProtobufCMessage *resp = NULL;
        enum cj_status st =
            call(cases[i].who, cases[i].method, req, cases[i].response, &resp);
        if (st != CJ_ERR_PERMISSION)
            fail_msg("%s by %s: expected permission denied, got %s",
                     cases[i].method, caller_files[cases[i].who],
                     cj_status_name(st));
        assert_null(resp);
        free(req);
    }

    /* A certificate from another CA does not get through TLS at all. */
    Cerrojo__V1__GetJwksRequest jreq = CERROJO__V1__GET_JWKS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    assert_int_not_equal(call(OTHER_CA, "GetJwks", &jreq.base,
                              &cerrojo__v1__get_jwks_response__descriptor,
                              &resp),
                         CJ_OK);
    assert_null(resp);
}

static void hex(const uint8_t *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", bytes[i]);
}

static void unhex(const char *text, uint8_t *out, size_t len)
{
    assert_int_equal(strlen(text), 2 * len);
    for (size_t i = 0; i < len; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(text + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void test_python_client_matches_c_client(void **state)
{
    (void)state;
    char cmd[2048];
    char stubs[128];
    char wrapped_hex[131];
    char output[4096];

    snprintf(stubs, sizeof(stubs), "%s/py", tmp);
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s && protoc -I %s/proto --python_out=%s "
             "--grpc_python_out=%s "
             "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "
             "%s/proto/cerrojo/v1/kms.proto",
             stubs, CJ_SOURCE_DIR, stubs, stubs, CJ_SOURCE_DIR);
    assert_int_equal(system(cmd), 0);

    Cerrojo__V1__CreateUserKeyResponse *created = create_key("c-user");
    hex(created->wrapped_key.data, created->wrapped_key.len, wrapped_hex);
    snprintf(cmd, sizeof(cmd),
             PYTHON " %s/tests/integration/kms/kms_python_client.py %s %s %s "
                    "c-user %s",
             CJ_SOURCE_DIR, stubs, address, certs, wrapped_hex);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(output, 1, sizeof(output) - 1, p);
    output[n] = '\0';
    assert_int_equal(pclose(p), 0);

    json_error_t err;
    json_t *doc = json_loads(output, 0, &err);
    assert_non_null(doc);
    /* Python unwrapped the C client's key to the same bytes. */
    uint8_t c_key_seen_by_python[32];
    unhex(json_string_value(json_object_get(doc, "c_data_key")),
          c_key_seen_by_python, 32);
    assert_memory_equal(c_key_seen_by_python, created->data_key.data, 32);
    assert_int_equal(json_integer_value(json_object_get(doc, "c_kek_version")),
                     created->kek_version);
    assert_string_equal(json_string_value(json_object_get(doc, "other_user")),
                        "UNAUTHENTICATED");

    /* The C client unwraps Python's key to what Python was given. */
    uint8_t py_key[32];
    uint8_t py_wrapped[65];
    unhex(json_string_value(json_object_get(doc, "data_key")), py_key, 32);
    unhex(json_string_value(json_object_get(doc, "wrapped_key")), py_wrapped,
          65);
    Cerrojo__V1__DecryptKeyResponse *opened = NULL;
    assert_int_equal(decrypt("py-user", py_wrapped, 65, &opened), CJ_OK);
    assert_memory_equal(opened->data_key.data, py_key, 32);

    json_decref(doc);
    cj_rpc_message_free(&opened->base);
    cj_rpc_message_free(&created->base);
}

/* Runs the binary with argv in `profile` plus one extra setting (may be
 * NULL); returns the exit status and leaves its output in log. */
static int run_kms(char *const argv[], const char *profile, const char *extra,
                   char *log, size_t log_size)
{
    char store[16][600];
    char *env[17];
    size_t n = 0;
    char log_path[160];
    int status = 0;

    base_env(store, env, &n, profile, address, 0);
    if (extra != NULL) {
        snprintf(store[n], 600, "%s", extra);
        env[n] = store[n];
        env[++n] = NULL;
    }
    snprintf(log_path, sizeof(log_path), "%s/command.log", tmp);
    pid_t pid = spawn_kms(argv, env, log_path);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    size_t len = fread(log, 1, log_size - 1, f);
    log[len] = '\0';
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `cerrojo-kms serve` in the stage profile with one extra setting. */
static int run_stage(const char *extra, char *log, size_t log_size)
{
    char *argv[] = {"cerrojo-kms", "serve", NULL};

    return run_kms(argv, "stage", extra, log, log_size);
}

/* Runs one lifecycle command with the test's root key in the dev profile. */
static int run_command(const char *command, const char *argument, char *log,
                       size_t log_size)
{
    char *argv[] = {"cerrojo-kms", (char *)command, (char *)argument, NULL};

    return run_kms(argv, "dev", "CERROJO_KMS_ROOT_KEY=" ROOT_KEY, log,
                   log_size);
}

static void test_stage_rejects_generated_root_key(void **state)
{
    (void)state;
    char key_file[160];
    char setting[300];
    char log[4096];

    snprintf(key_file, sizeof(key_file), "%s/generated-root-key", tmp);
    FILE *f = fopen(key_file, "w");
    assert_non_null(f);
    fprintf(f, "generated:%s\n", ROOT_KEY);
    fclose(f);
    /* Owner only, so that stage rejects the key and not the file mode. */
    assert_int_equal(chmod(key_file, 0600), 0);
    snprintf(setting, sizeof(setting), "CERROJO_KMS_ROOT_KEY_FILE=%s",
             key_file);
    assert_int_equal(run_stage(setting, log, sizeof(log)), 2);
    assert_non_null(strstr(log, "CERROJO_KMS_ROOT_KEY_FILE"));
    assert_non_null(strstr(log, "generated"));

    /* A key file that other users can read is rejected for its mode. */
    assert_int_equal(chmod(key_file, 0644), 0);
    assert_int_equal(run_stage(setting, log, sizeof(log)), 2);
    assert_non_null(strstr(log, "CERROJO_KMS_ROOT_KEY_FILE: "));
    assert_non_null(strstr(log, "other users can read this key file"));
    assert_non_null(strstr(log, "chmod 600"));

    /* Without any root key, stage generates none. */
    assert_int_equal(run_stage(NULL, log, sizeof(log)), 2);
    assert_non_null(strstr(log, "CERROJO_KMS_ROOT_KEY_FILE"));
}

static void test_commands_explain_failures(void **state)
{
    (void)state;
    char log[4096];

    assert_int_equal(
        run_command("rewrap-root", "/nonexistent", log, sizeof(log)), 2);
    assert_non_null(strstr(log, "cannot read the root key file /nonexistent "
                                "(missing"));

    /* Without a next signing key, both commands name the step before. */
    assert_int_equal(run_command("retire", "signing", log, sizeof(log)), 1);
    assert_non_null(strstr(log, "no next signing key is waiting"));
    assert_non_null(strstr(log, "rotate signing"));
    assert_int_equal(run_command("promote", NULL, log, sizeof(log)), 1);
    assert_non_null(strstr(log, "no next signing key is waiting"));

    /* A promote that is not due names the time at which it will be. */
    assert_int_equal(run_command("rotate", "signing", log, sizeof(log)), 0);
    assert_int_equal(run_command("promote", NULL, log, sizeof(log)), 3);
    assert_non_null(strstr(log, "not due yet"));
    assert_non_null(strstr(log, "promoted from 20"));
    assert_int_equal(run_command("retire", "signing", log, sizeof(log)), 0);

    /* Ending no HPKE window succeeds but logs no security event. */
    assert_int_equal(run_command("retire", "hpke", log, sizeof(log)), 0);
    assert_non_null(strstr(log, "nothing changed"));
    assert_null(strstr(log, "kms.key_retired"));

    /* A stale root key is named as the cause, by a command and at start. */
    char *rotate[] = {"cerrojo-kms", "rotate", "kek", NULL};
    char *serve[] = {"cerrojo-kms", "serve", NULL};
    assert_int_equal(run_kms(rotate, "dev",
                             "CERROJO_KMS_ROOT_KEY=" OTHER_ROOT_KEY, log,
                             sizeof(log)),
                     1);
    assert_non_null(strstr(log, "point CERROJO_KMS_ROOT_KEY_FILE"));
    assert_int_equal(run_kms(serve, "dev",
                             "CERROJO_KMS_ROOT_KEY=" OTHER_ROOT_KEY, log,
                             sizeof(log)),
                     1);
    assert_non_null(strstr(log, "point CERROJO_KMS_ROOT_KEY_FILE"));
    assert_null(strstr(log, "is Postgres up"));
}

/* Two kms processes that reload every second, for the rotation test. */
#define REPLICAS           2
#define REPLICA_RELOAD     "CERROJO_KMS_RELOAD_INTERVAL=1"
#define REPLICA_POLL_MS    100
#define REPLICA_WAIT_POLLS 100
#define REPLICA_STAGGER_MS 500

struct replica {
    pid_t pid;
    char address[64];
    int metrics_port;
    struct cj_rpc_client *client;
};

static struct replica replicas[REPLICAS];

static ProtobufCMessage *replica_call(struct replica *r, const char *method,
                                      const ProtobufCMessage *req,
                                      const ProtobufCMessageDescriptor *type,
                                      enum cj_status *st)
{
    char path[128];
    char error[CJ_RPC_CLIENT_ERROR_MAX] = "";
    ProtobufCMessage *resp = NULL;

    snprintf(path, sizeof(path), "/cerrojo.v1.Kms/%s", method);
    *st = cj_rpc_client_call(r->client, path, req, type, NULL, CALL_TIMEOUT_MS,
                             &resp, NULL, error);
    return resp;
}

static Cerrojo__V1__ListPublicKeysResponse *replica_list(struct replica *r)
{
    Cerrojo__V1__ListPublicKeysRequest req =
        CERROJO__V1__LIST_PUBLIC_KEYS_REQUEST__INIT;
    enum cj_status st = CJ_ERR_INTERNAL;
    ProtobufCMessage *resp =
        replica_call(r, "ListPublicKeys", &req.base,
                     &cerrojo__v1__list_public_keys_response__descriptor, &st);

    if (st != CJ_OK) {
        cj_rpc_message_free(resp);
        return NULL;
    }
    return (Cerrojo__V1__ListPublicKeysResponse *)resp;
}

/* Starts one kms process on free ports with the reload setting `reload`,
 * as the gateway's client. */
static void replica_start(struct replica *r, const char *reload)
{
    char store[16][600];
    char *env[17];
    size_t n = 0;
    char log_path[160];
    char cert[192];
    char key[192];
    char ca[192];

    snprintf(r->address, sizeof(r->address), "127.0.0.1:%d", free_port());
    r->metrics_port = free_port();
    base_env(store, env, &n, "dev", r->address, r->metrics_port);
    snprintf(store[n], 600, "CERROJO_KMS_ROOT_KEY=%s", ROOT_KEY);
    env[n] = store[n];
    env[++n] = NULL;
    snprintf(store[n], 600, "%s", reload);
    env[n] = store[n];
    env[++n] = NULL;
    char *argv[] = {"cerrojo-kms", "serve", NULL};
    snprintf(log_path, sizeof(log_path), "%s/replica-%d.log", tmp,
             (int)(r - replicas));
    r->pid = spawn_kms(argv, env, log_path);
    assert_true(r->pid > 0);

    snprintf(cert, sizeof(cert), "%s/%s.pem", certs, caller_files[GATEWAY]);
    snprintf(key, sizeof(key), "%s/%s.key", certs, caller_files[GATEWAY]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
    for (int waited = 0; waited < START_WAIT_MS && !port_open(r->address);
         waited += REPLICA_POLL_MS)
        usleep(REPLICA_POLL_MS * 1000);
    struct cj_rpc_client_options opts = {.targets = r->address,
                                         .tls_ca_file = ca,
                                         .tls_cert_file = cert,
                                         .tls_key_file = key};
    assert_int_equal(cj_rpc_client_create(&opts, &r->client), CJ_OK);
    Cerrojo__V1__ListPublicKeysResponse *list = NULL;
    for (int waited = 0; waited < START_WAIT_MS && list == NULL;
         waited += REPLICA_POLL_MS) {
        list = replica_list(r);
        if (list == NULL)
            usleep(REPLICA_POLL_MS * 1000);
    }
    assert_non_null(list);
    cj_rpc_message_free(&list->base);
}

/* Stops the replicas; fails unless each exits cleanly, which in a
 * sanitized build also means no sanitizer report. */
static int replicas_stop(void **state)
{
    (void)state;
    int failed = 0;

    for (int i = 0; i < REPLICAS; i++) {
        int status = 0;

        cj_rpc_client_destroy(replicas[i].client);
        replicas[i].client = NULL;
        if (replicas[i].pid <= 0)
            continue;
        kill(replicas[i].pid, SIGTERM);
        waitpid(replicas[i].pid, &status, 0);
        replicas[i].pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char cmd[160];

            fprintf(stderr, "kms replica %d did not exit cleanly (status %d)\n",
                    i, status);
            snprintf(cmd, sizeof(cmd), "cat %s/replica-%d.log >&2", tmp, i);
            (void)system(cmd);
            failed = -1;
        }
    }
    return failed;
}

/* Seals a request to key and returns the status of OpenSealed on r. */
static enum cj_status replica_open(struct replica *r,
                                   const Cerrojo__V1__HpkePublicKey *key)
{
    struct sealed_login sealed;
    enum cj_status st = CJ_ERR_INTERNAL;

    seal_login(key, &sealed);
    ProtobufCMessage *resp =
        replica_call(r, "OpenSealed", &sealed.req.base,
                     &cerrojo__v1__open_sealed_response__descriptor, &st);

    cj_rpc_message_free(resp);
    sealed_login_clear(&sealed);
    return st;
}

/* Returns the entry that list names as active, or NULL. */
static const Cerrojo__V1__HpkePublicKey *
active_entry(const Cerrojo__V1__ListPublicKeysResponse *list)
{
    for (size_t i = 0; i < list->n_keys; i++) {
        if (strcmp(list->keys[i]->state, "active") == 0)
            return list->keys[i];
    }
    return NULL;
}

/*
 * Two kms processes on one database reload at different moments. After
 * `rotate hpke`, whenever either one lists the new key as active, the
 * other must already open requests sealed to it.
 */
static void test_replicas_list_key_others_open(void **state)
{
    (void)state;
    char log[4096];
    bool listed[REPLICAS] = {false, false};

    replica_start(&replicas[0], REPLICA_RELOAD);
    usleep(REPLICA_STAGGER_MS * 1000);
    replica_start(&replicas[1], REPLICA_RELOAD);
    Cerrojo__V1__ListPublicKeysResponse *before = replica_list(&replicas[0]);
    assert_non_null(before);
    const Cerrojo__V1__HpkePublicKey *old_key = active_entry(before);
    assert_non_null(old_key);
    uint32_t old_key_id = old_key->key_id;
    cj_rpc_message_free(&before->base);

    assert_int_equal(run_command("rotate", "hpke", log, sizeof(log)), 0);
    for (int poll = 0; poll < REPLICA_WAIT_POLLS && !(listed[0] && listed[1]);
         poll++) {
        for (int i = 0; i < REPLICAS; i++) {
            Cerrojo__V1__ListPublicKeysResponse *list =
                replica_list(&replicas[i]);
            assert_non_null(list);
            const Cerrojo__V1__HpkePublicKey *key = active_entry(list);
            assert_non_null(key);
            if (key->key_id != old_key_id) {
                listed[i] = true;
                assert_int_equal(replica_open(&replicas[1 - i], key), CJ_OK);
            }
            cj_rpc_message_free(&list->base);
        }
        usleep(REPLICA_POLL_MS * 1000);
    }
    assert_true(listed[0]);
    assert_true(listed[1]);
}

/*
 * A reload interval that no test lasts, so that a replica loads a change of
 * the key set only through an on-demand reload.
 */
#define SLOW_RELOAD "CERROJO_KMS_RELOAD_INTERVAL=3600"
/* Polls of the metrics port while the replica's metrics server starts. */
#define METRICS_WAIT_POLLS 50
/* Bytes read at most from a metrics page or a replica log. */
#define PAGE_READ_MAX    65536
#define ON_DEMAND_METRIC "cerrojo_kms_on_demand_reloads_total"
/* Opens naming an unknown key id in the burst test. */
#define UNKNOWN_KEY_BURST 40

/* Sends one GET /metrics to the replica and returns the socket, or -1. */
static int metrics_request(const struct replica *r)
{
    static const char request[] = "GET /metrics HTTP/1.1\r\n"
                                  "Host: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n";
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)r->metrics_port)};
    struct timeval guard = {.tv_sec = CALL_TIMEOUT_MS / 1000};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard)) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        write(fd, request, sizeof(request) - 1) !=
            (ssize_t)(sizeof(request) - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Returns the value of the unlabelled series `name` on the replica's
 * metrics page. Fails the test when the page or the series is missing. */
static double replica_metric(const struct replica *r, const char *name)
{
    static char page[PAGE_READ_MAX];
    char needle[128];
    size_t len = 0;
    int fd = -1;

    for (int poll = 0; poll < METRICS_WAIT_POLLS && fd < 0; poll++) {
        fd = metrics_request(r);
        if (fd < 0)
            usleep(REPLICA_POLL_MS * 1000);
    }
    assert_true(fd >= 0);
    for (ssize_t got = 1; got > 0 && len < sizeof(page) - 1; len += (size_t)got)
        got = read(fd, page + len, sizeof(page) - 1 - len);
    close(fd);
    page[len] = '\0';
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *line = strstr(page, needle);
    if (line == NULL)
        fail_msg("metric %s missing from the metrics page", name);
    return strtod(line + strlen(needle), NULL);
}

/* Reads every live key from the test database as the kms role. */
static void load_stored_keys(struct kms_key_rows *rows)
{
    struct cj_db_pool *pool = NULL;
    struct cj_db_conn *conn = NULL;

    memset(rows, 0, sizeof(*rows));
    assert_int_equal(kms_itest_connect(db.kms_dsn, &pool, &conn), CJ_OK);
    assert_int_equal(kms_store_load(conn, rows), CJ_OK);
    cj_db_release(conn);
    cj_db_pool_free(pool);
}

/* Fills entry with a stored HPKE key, as ListPublicKeys would list it with
 * its preferred AEAD. The entry borrows the row's public key. */
static void entry_from_row(const struct kms_hpke_row *row,
                           Cerrojo__V1__HpkePublicKey *entry)
{
    *entry = (Cerrojo__V1__HpkePublicKey)CERROJO__V1__HPKE_PUBLIC_KEY__INIT;
    entry->key_id = row->key_id;
    entry->kem_id = row->kem_id;
    entry->kdf_id = row->kdf_id;
    entry->aead_id = row->aead_ids[0];
    entry->public_key.data = (uint8_t *)row->public_key;
    entry->public_key.len = sizeof(row->public_key);
}

/* Whether the replica's log contains text. */
static bool replica_log_contains(const struct replica *r, const char *text)
{
    static char log[PAGE_READ_MAX];
    char path[160];

    snprintf(path, sizeof(path), "%s/replica-%d.log", tmp, (int)(r - replicas));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t len = fread(log, 1, sizeof(log) - 1, f);
    log[len] = '\0';
    fclose(f);
    return strstr(log, text) != NULL;
}

/*
 * A replica that reloads once an hour misses `rotate hpke`. The first
 * request sealed to the new key reloads the key set on demand and opens.
 */
static void test_open_reloads_for_new_key(void **state)
{
    (void)state;
    struct replica *r = &replicas[0];
    struct kms_key_rows rows;
    Cerrojo__V1__HpkePublicKey entry;
    char log[4096];

    replica_start(r, SLOW_RELOAD);
    double before = replica_metric(r, ON_DEMAND_METRIC);
    assert_int_equal(run_command("rotate", "hpke", log, sizeof(log)), 0);
    load_stored_keys(&rows);
    assert_true(rows.n_hpke >= 1);
    assert_int_equal(rows.hpke[0].state, KMS_STATE_ACTIVE);
    entry_from_row(&rows.hpke[0], &entry);

    assert_int_equal(replica_open(r, &entry), CJ_OK);
    assert_true(replica_metric(r, ON_DEMAND_METRIC) == before + 1);
    /* The key set now contains the key: the next open needs no reload. */
    assert_int_equal(replica_open(r, &entry), CJ_OK);
    assert_true(replica_metric(r, ON_DEMAND_METRIC) == before + 1);
    kms_key_rows_free(&rows);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns a key id that no stored HPKE key has. */
static uint8_t unused_key_id(const struct kms_key_rows *rows)
{
    for (int id = UINT8_MAX; id >= 0; id--) {
        bool used = false;
        for (size_t i = 0; i < rows->n_hpke; i++)
            used = used || rows->hpke[i].key_id == id;
        if (!used)
            return (uint8_t)id;
    }
    fail_msg("every HPKE key id is in use");
    return 0;
}

/*
 * A burst of opens naming a key id that no key has reloads the key set at
 * most once per KMS_RELOAD_ON_DEMAND_MIN_MS, and each open fails as an
 * unknown key id always has. The next interval allows one more reload.
 */
static void test_unknown_key_burst_reloads_once(void **state)
{
    (void)state;
    struct replica *r = &replicas[0];
    struct kms_key_rows rows;
    Cerrojo__V1__HpkePublicKey entry;

    replica_start(r, SLOW_RELOAD);
    load_stored_keys(&rows);
    assert_true(rows.n_hpke >= 1);
    entry_from_row(&rows.hpke[0], &entry);
    entry.key_id = unused_key_id(&rows);
    double before = replica_metric(r, ON_DEMAND_METRIC);

    int64_t start_ms = monotonic_ms();
    for (int i = 0; i < UNKNOWN_KEY_BURST; i++)
        assert_int_equal(replica_open(r, &entry), CJ_ERR_UNAUTHENTICATED);
    int64_t elapsed_ms = monotonic_ms() - start_ms;

    double reloads = replica_metric(r, ON_DEMAND_METRIC) - before;
    double allowed = 1.0 + (double)(elapsed_ms / KMS_RELOAD_ON_DEMAND_MIN_MS);
    if (reloads < 1.0 || reloads > allowed)
        fail_msg("%d opens in %lld ms caused %.0f on-demand reloads; "
                 "expected 1 to %.0f",
                 UNKNOWN_KEY_BURST, (long long)elapsed_ms, reloads, allowed);
    assert_true(replica_log_contains(r, "\"reason\":\"unknown_key_id\""));
    assert_true(replica_log_contains(r, "\"reload\":\"reloaded\""));

    /* Once the interval has passed, the next unknown key id reloads again. */
    usleep((KMS_RELOAD_ON_DEMAND_MIN_MS + REPLICA_POLL_MS) * 1000);
    double after_burst = replica_metric(r, ON_DEMAND_METRIC);
    assert_int_equal(replica_open(r, &entry), CJ_ERR_UNAUTHENTICATED);
    assert_true(replica_metric(r, ON_DEMAND_METRIC) == after_burst + 1);
    kms_key_rows_free(&rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_key_round_trip),
        cmocka_unit_test(test_decrypt_failures_look_alike),
        cmocka_unit_test(test_sign_token_verifies_with_jwks),
        cmocka_unit_test(test_open_sealed_round_trip),
        cmocka_unit_test(test_access_rules_refuse_unnamed_callers),
        cmocka_unit_test(test_python_client_matches_c_client),
        cmocka_unit_test(test_stage_rejects_generated_root_key),
        cmocka_unit_test(test_commands_explain_failures),
        cmocka_unit_test_teardown(test_replicas_list_key_others_open,
                                  replicas_stop),
        cmocka_unit_test_teardown(test_open_reloads_for_new_key, replicas_stop),
        cmocka_unit_test_teardown(test_unknown_key_burst_reloads_once,
                                  replicas_stop),
    };

    cj_log_init("kms-test", CJ_LOG_ERROR);
    if (cj_crypto_init() != CJ_OK)
        return 1;
    (void)itest_require_env("test_kms_rpc", "CERROJO_TEST_PG_ADMIN_DSN");
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

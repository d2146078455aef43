/*
 * Mutual TLS between the framework's server and client in one process,
 * with certificates from scripts/dev-certs.sh: identities reach handlers,
 * access rules hold, the caller context counts only from the gateway, and
 * the client can insist on the server's identity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "rpc_client.h"
#include "rpc_message.h"
#include "rpc_server.h"

#define CALL_TIMEOUT_MS 10000
#define PATH_MAX_LEN    512

/* Shorter than PATH_MAX_LEN so that every file name below fits. */
static char certs[PATH_MAX_LEN / 2];

/* Replies "<peer identity>|<caller user id>". */
static enum cj_status whoami(struct cj_rpc_call *call,
                             const ProtobufCMessage *request,
                             ProtobufCMessage **response, void *state)
{
    (void)request;
    (void)state;
    char text[256];
    Cerrojo__V1__GetJwksResponse *resp = malloc(sizeof(*resp));
    if (resp == NULL) {
        return CJ_ERR_NOMEM;
    }
    cerrojo__v1__get_jwks_response__init(resp);
    snprintf(text, sizeof(text), "%s|%s", cj_rpc_call_identity(call),
             cj_rpc_call_caller(call)->user_id);
    resp->jwks_json = strdup(text);
    *response = &resp->base;
    return CJ_OK;
}

static const struct cj_rpc_method methods[] = {
    {.path = "/test.Tls/AnyPlatform",
     .request = &cerrojo__v1__get_jwks_request__descriptor,
     .response = &cerrojo__v1__get_jwks_response__descriptor,
     .handler = whoami,
     .allowed = {CJ_RPC_ANY_PLATFORM}},
    {.path = "/test.Tls/AuthOnly",
     .request = &cerrojo__v1__get_jwks_request__descriptor,
     .response = &cerrojo__v1__get_jwks_response__descriptor,
     .handler = whoami,
     .allowed = {CJ_RPC_ID_AUTH}},
};

static const struct cj_rpc_service service = {
    .name = "test.Tls",
    .methods = methods,
    .n_methods = sizeof(methods) / sizeof(methods[0]),
};

static void cert_path(char *out, const char *name, const char *ext)
{
    int n = snprintf(out, PATH_MAX_LEN, "%.200s/%.32s.%.3s", certs, name, ext);
    assert_true(n > 0 && n < PATH_MAX_LEN);
}

static int group_setup(void **state)
{
    (void)state;
    char command[PATH_MAX_LEN * 2];
    char dir_template[] = "/tmp/cerrojo-rpc-tls-XXXXXX";

    if (mkdtemp(dir_template) == NULL) {
        return -1;
    }
    snprintf(certs, sizeof(certs), "%s/certs", dir_template);
    snprintf(command, sizeof(command),
             "'%s/scripts/dev-certs.sh' '%s' > /dev/null", CJ_SOURCE_DIR,
             certs);
    return system(command) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char command[PATH_MAX_LEN * 2];
    char *slash = strrchr(certs, '/');
    if (slash != NULL) {
        *slash = '\0'; /* remove the whole temporary folder */
        snprintf(command, sizeof(command), "rm -rf '%s'", certs);
        return system(command) == 0 ? 0 : -1;
    }
    return 0;
}

struct tls_server {
    struct cj_rpc_server *server;
    char target[64];
    char ca[PATH_MAX_LEN];
    char cert[PATH_MAX_LEN];
    char key[PATH_MAX_LEN];
};

static void server_start(struct tls_server *s, const char *identity)
{
    cert_path(s->ca, "ca", "pem");
    cert_path(s->cert, identity, "pem");
    cert_path(s->key, identity, "key");
    struct cj_rpc_server_options options = {.listen = "127.0.0.1:0",
                                            .tls_ca_file = s->ca,
                                            .tls_cert_file = s->cert,
                                            .tls_key_file = s->key};
    assert_int_equal(cj_rpc_server_create(&service, &options, &s->server),
                     CJ_OK);
    assert_int_equal(cj_rpc_server_start(s->server), CJ_OK);
    snprintf(s->target, sizeof(s->target), "127.0.0.1:%d",
             cj_rpc_server_port(s->server));
}

/*
 * Calls `method` on `target` as `identity`, requiring the server to be
 * `expected_server` when not NULL. Writes the reply text or the error.
 */
static enum cj_status call_as(const char *target, const char *identity,
                              const char *expected_server, const char *method,
                              const struct cj_caller_context *caller,
                              char *text, size_t size)
{
    char ca[PATH_MAX_LEN];
    char cert[PATH_MAX_LEN];
    char key[PATH_MAX_LEN];
    char path[64];
    struct cj_rpc_client *client = NULL;
    ProtobufCMessage *resp = NULL;
    Cerrojo__V1__GetJwksRequest req = CERROJO__V1__GET_JWKS_REQUEST__INIT;

    cert_path(ca, "ca", "pem");
    cert_path(cert, identity, "pem");
    cert_path(key, identity, "key");
    struct cj_rpc_client_options options = {
        .targets = target,
        .tls_ca_file = ca,
        .tls_cert_file = cert,
        .tls_key_file = key,
        .expected_server_identity = expected_server,
    };
    assert_int_equal(cj_rpc_client_create(&options, &client), CJ_OK);
    snprintf(path, sizeof(path), "/test.Tls/%s", method);
    enum cj_status st = cj_rpc_client_call(
        client, path, &req.base, &cerrojo__v1__get_jwks_response__descriptor,
        caller, CALL_TIMEOUT_MS, &resp, NULL, text);
    if (st == CJ_OK) {
        snprintf(text, size, "%s",
                 ((Cerrojo__V1__GetJwksResponse *)resp)->jwks_json);
    }
    cj_rpc_message_free(resp);
    cj_rpc_client_destroy(client);
    return st;
}

static void test_identity_reaches_handler(void **state)
{
    (void)state;
    struct tls_server s;
    char text[CJ_RPC_CLIENT_ERROR_MAX];

    server_start(&s, "kms");
    assert_int_equal(call_as(s.target, "platform-service", NULL, "AnyPlatform",
                             NULL, text, sizeof(text)),
                     CJ_OK);
    assert_string_equal(text, "platform-service|");
    cj_rpc_server_destroy(s.server);
}

static void test_access_rule_enforced(void **state)
{
    (void)state;
    struct tls_server s;
    char text[CJ_RPC_CLIENT_ERROR_MAX];

    server_start(&s, "kms");
    assert_int_equal(
        call_as(s.target, "auth", NULL, "AuthOnly", NULL, text, sizeof(text)),
        CJ_OK);
    assert_string_equal(text, "auth|");
    assert_int_equal(call_as(s.target, "gateway", NULL, "AuthOnly", NULL, text,
                             sizeof(text)),
                     CJ_ERR_PERMISSION);
    assert_string_equal(text,
                        "caller 'gateway' may not call /test.Tls/AuthOnly");
    cj_rpc_server_destroy(s.server);
}

static void test_caller_context_only_from_gateway(void **state)
{
    (void)state;
    struct tls_server s;
    struct cj_caller_context caller;
    char text[CJ_RPC_CLIENT_ERROR_MAX];

    memset(&caller, 0, sizeof(caller));
    snprintf(caller.user_id, sizeof(caller.user_id), "user-5");
    server_start(&s, "kms");
    assert_int_equal(call_as(s.target, "gateway", NULL, "AnyPlatform", &caller,
                             text, sizeof(text)),
                     CJ_OK);
    assert_string_equal(text, "gateway|user-5");
    assert_int_equal(call_as(s.target, "auth", NULL, "AnyPlatform", &caller,
                             text, sizeof(text)),
                     CJ_OK);
    assert_string_equal(text, "auth|");
    cj_rpc_server_destroy(s.server);
}

static void test_client_checks_server_identity(void **state)
{
    (void)state;
    struct tls_server s;
    char text[CJ_RPC_CLIENT_ERROR_MAX];

    server_start(&s, "kms");
    assert_int_equal(
        call_as(s.target, "auth", "kms", "AuthOnly", NULL, text, sizeof(text)),
        CJ_OK);
    assert_int_equal(call_as(s.target, "auth", "session", "AuthOnly", NULL,
                             text, sizeof(text)),
                     CJ_ERR_UNAVAILABLE);
    cj_rpc_server_destroy(s.server);
}

static void test_foreign_ca_rejected(void **state)
{
    (void)state;
    struct tls_server s;
    char text[CJ_RPC_CLIENT_ERROR_MAX];

    server_start(&s, "kms");
    /* other.pem claims CN=gateway but another CA signed it. */
    assert_int_equal(call_as(s.target, "other", NULL, "AnyPlatform", NULL, text,
                             sizeof(text)),
                     CJ_ERR_UNAVAILABLE);
    cj_rpc_server_destroy(s.server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_reaches_handler),
        cmocka_unit_test(test_access_rule_enforced),
        cmocka_unit_test(test_caller_context_only_from_gateway),
        cmocka_unit_test(test_client_checks_server_identity),
        cmocka_unit_test(test_foreign_ca_rejected),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * The method table of cerrojo.v1.Kms: every RPC with its message types and
 * access rule. Handlers not built yet answer UNIMPLEMENTED.
 */
#include "kms_rpc.h"

#include <string.h>

#include "cerrojo/v1/kms.pb-c.h"

/* Answers UNIMPLEMENTED for a method whose handler is not built yet. */
static enum cj_status kms_not_implemented(struct cj_rpc_call *call,
                                          const ProtobufCMessage *request,
                                          ProtobufCMessage **response,
                                          void *state)
{
    (void)request;
    (void)response;
    (void)state;
    const char *method = strrchr(cj_rpc_call_path(call), '/');
    cj_rpc_call_set_error(call, "kms %s is not implemented yet",
                          method != NULL ? method + 1 : "method");
    return CJ_ERR_UNIMPLEMENTED;
}

/*
 * Every method may block (Postgres, Redis, Argon2), so all run on the
 * worker pool; a handler proven never to block may clear the flag.
 */
#define KMS_METHOD(name, req, resp, ...)                                       \
    {                                                                          \
        .path = "/cerrojo.v1.Kms/" name, .request = &(req),                    \
        .response = &(resp), .handler = kms_not_implemented, .blocking = true, \
        .allowed = {__VA_ARGS__},                                              \
    }

static const struct cj_rpc_method kms_methods[] = {
    KMS_METHOD(
        "CreateUserKey", cerrojo__v1__create_user_key_request__descriptor,
        cerrojo__v1__create_user_key_response__descriptor, CJ_RPC_ID_AUTH),
    KMS_METHOD("DecryptKey", cerrojo__v1__decrypt_key_request__descriptor,
               cerrojo__v1__decrypt_key_response__descriptor, CJ_RPC_ID_AUTH),
    KMS_METHOD("RewrapKey", cerrojo__v1__rewrap_key_request__descriptor,
               cerrojo__v1__rewrap_key_response__descriptor, CJ_RPC_ID_AUTH),
    KMS_METHOD("SignToken", cerrojo__v1__sign_token_request__descriptor,
               cerrojo__v1__sign_token_response__descriptor, CJ_RPC_ID_AUTH),
    KMS_METHOD("GetJwks", cerrojo__v1__get_jwks_request__descriptor,
               cerrojo__v1__get_jwks_response__descriptor, CJ_RPC_ID_AUTH,
               CJ_RPC_ID_GATEWAY),
    KMS_METHOD("OpenSealed", cerrojo__v1__open_sealed_request__descriptor,
               cerrojo__v1__open_sealed_response__descriptor,
               CJ_RPC_ID_GATEWAY),
    KMS_METHOD(
        "ListPublicKeys", cerrojo__v1__list_public_keys_request__descriptor,
        cerrojo__v1__list_public_keys_response__descriptor, CJ_RPC_ID_GATEWAY),
};

const struct cj_rpc_service kms_rpc_service = {
    .name = "cerrojo.v1.Kms",
    .methods = kms_methods,
    .n_methods = sizeof(kms_methods) / sizeof(kms_methods[0]),
    .state = NULL,
};

/*
 * The method table of cerrojo.v1.Auth: every RPC with its message types and
 * access rule. Handlers not built yet answer UNIMPLEMENTED.
 */
#include "auth_rpc.h"

#include <string.h>

#include "cerrojo/v1/auth.pb-c.h"

/* Answers UNIMPLEMENTED for a method whose handler is not built yet. */
static enum cj_status auth_not_implemented(struct cj_rpc_call *call,
                                           const ProtobufCMessage *request,
                                           ProtobufCMessage **response,
                                           void *state)
{
    (void)request;
    (void)response;
    (void)state;
    const char *method = strrchr(cj_rpc_call_path(call), '/');
    cj_rpc_call_set_error(call, "auth %s is not implemented yet",
                          method != NULL ? method + 1 : "method");
    return CJ_ERR_UNIMPLEMENTED;
}

/*
 * Every method may block (Postgres, Redis, Argon2), so all run on the
 * worker pool; a handler proven never to block may clear the flag.
 */
#define AUTH_METHOD(name, req, resp, ...)                                      \
    {                                                                          \
        .path = "/cerrojo.v1.Auth/" name, .request = &(req),                   \
        .response = &(resp), .handler = auth_not_implemented,                  \
        .blocking = true, .allowed = {__VA_ARGS__},                            \
    }

static const struct cj_rpc_method auth_methods[] = {
    AUTH_METHOD("Register", cerrojo__v1__register_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Login", cerrojo__v1__login_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Refresh", cerrojo__v1__refresh_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Logout", cerrojo__v1__logout_request__descriptor,
                cerrojo__v1__logout_response__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("GetProfile", cerrojo__v1__get_profile_request__descriptor,
                cerrojo__v1__profile__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("GetData", cerrojo__v1__get_data_request__descriptor,
                cerrojo__v1__user_data__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("PutData", cerrojo__v1__put_data_request__descriptor,
                cerrojo__v1__user_data__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("RecordAudit", cerrojo__v1__record_audit_request__descriptor,
                cerrojo__v1__record_audit_response__descriptor,
                CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Introspect", cerrojo__v1__introspect_request__descriptor,
                cerrojo__v1__introspect_response__descriptor,
                CJ_RPC_ANY_PLATFORM),
};

const struct cj_rpc_service auth_rpc_service = {
    .name = "cerrojo.v1.Auth",
    .methods = auth_methods,
    .n_methods = sizeof(auth_methods) / sizeof(auth_methods[0]),
    .state = NULL,
};

/*
 * The method table of cerrojo.v1.Session: every RPC with its message types and
 * access rule. Handlers not built yet answer UNIMPLEMENTED.
 */
#include "sess_rpc.h"

#include <string.h>

#include "cerrojo/v1/session.pb-c.h"

/* Answers UNIMPLEMENTED for a method whose handler is not built yet. */
static enum cj_status sess_not_implemented(struct cj_rpc_call *call,
                                           const ProtobufCMessage *request,
                                           ProtobufCMessage **response,
                                           void *state)
{
    (void)request;
    (void)response;
    (void)state;
    const char *method = strrchr(cj_rpc_call_path(call), '/');
    cj_rpc_call_set_error(call, "session %s is not implemented yet",
                          method != NULL ? method + 1 : "method");
    return CJ_ERR_UNIMPLEMENTED;
}

/*
 * Every method may block (Postgres, Redis, Argon2), so all run on the
 * worker pool; a handler proven never to block may clear the flag.
 */
#define SESS_METHOD(name, req, resp, ...)                                      \
    {                                                                          \
        .path = "/cerrojo.v1.Session/" name, .request = &(req),                \
        .response = &(resp), .handler = sess_not_implemented,                  \
        .blocking = true, .allowed = {__VA_ARGS__},                            \
    }

static const struct cj_rpc_method sess_methods[] = {
    SESS_METHOD("CreateSession",
                cerrojo__v1__create_session_request__descriptor,
                cerrojo__v1__session_info__descriptor, CJ_RPC_ID_GATEWAY,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("OpenRequest", cerrojo__v1__open_request_request__descriptor,
                cerrojo__v1__open_request_response__descriptor,
                CJ_RPC_ID_GATEWAY),
    SESS_METHOD("BindUser", cerrojo__v1__bind_user_request__descriptor,
                cerrojo__v1__bind_user_response__descriptor, CJ_RPC_ID_AUTH),
    SESS_METHOD(
        "DeleteSession", cerrojo__v1__delete_session_request__descriptor,
        cerrojo__v1__delete_session_response__descriptor, CJ_RPC_ID_AUTH),
    SESS_METHOD("DeleteUserSessions",
                cerrojo__v1__delete_user_sessions_request__descriptor,
                cerrojo__v1__delete_user_sessions_response__descriptor,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("RevokeToken", cerrojo__v1__revoke_token_request__descriptor,
                cerrojo__v1__revoke_token_response__descriptor, CJ_RPC_ID_AUTH),
    SESS_METHOD("RevokeUser", cerrojo__v1__revoke_user_request__descriptor,
                cerrojo__v1__revoke_user_response__descriptor, CJ_RPC_ID_AUTH),
    SESS_METHOD("IsRevoked", cerrojo__v1__is_revoked_request__descriptor,
                cerrojo__v1__is_revoked_response__descriptor, CJ_RPC_ID_GATEWAY,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("GetRevocationCacheStatus",
                cerrojo__v1__get_revocation_cache_status_request__descriptor,
                cerrojo__v1__get_revocation_cache_status_response__descriptor,
                CJ_RPC_ID_AUTH),
    SESS_METHOD(
        "LoadRevocations", cerrojo__v1__load_revocations_request__descriptor,
        cerrojo__v1__load_revocations_response__descriptor, CJ_RPC_ID_AUTH),
};

const struct cj_rpc_service sess_rpc_service = {
    .name = "cerrojo.v1.Session",
    .methods = sess_methods,
    .n_methods = sizeof(sess_methods) / sizeof(sess_methods[0]),
    .state = NULL,
};

/*
 * The method table of cerrojo.v1.Auth: every RPC with its message types,
 * access rule and handler. Handlers adapt the framework's call to the
 * flows (auth_flows.h) and pass their message on. The status becomes a
 * gRPC code in cj_status_to_grpc, the one mapping of cerrojo.
 */
#include "auth_rpc.h"

#include <string.h>

#include "auth_flows.h"
#include "cerrojo/v1/auth.pb-c.h"
#include "deadline.h"
#include "log.h"

/* Runs a flow with the call's caller context and reports its message. */
#define AUTH_HANDLER(fn, flow, req_type, resp_type)                            \
    static enum cj_status fn(struct cj_rpc_call *call,                         \
                             const ProtobufCMessage *request,                  \
                             ProtobufCMessage **response, void *state)         \
    {                                                                          \
        struct auth_call ac;                                                   \
        resp_type *reply = NULL;                                               \
        enum cj_status rc;                                                     \
                                                                               \
        call_init(call, &ac);                                                  \
        rc = flow(state, &ac, (const req_type *)request, &reply);              \
        *response = (ProtobufCMessage *)reply;                                 \
        call_finish(call, &ac, rc);                                            \
        return rc;                                                             \
    }

static void call_init(struct cj_rpc_call *call, struct auth_call *ac)
{
    int64_t remaining;

    memset(ac, 0, sizeof(*ac));
    ac->caller = cj_rpc_call_caller(call);
    ac->request_id = cj_rpc_call_request_id(call);
    ac->rpc_call = call;
    remaining = cj_rpc_call_remaining_ms(call);
    if (remaining != INT64_MAX) {
        ac->deadline_ms = cj_monotonic_ms() + remaining;
    }
}

static void call_finish(struct cj_rpc_call *call, const struct auth_call *ac,
                        enum cj_status rc)
{
    /* During an outage every call fails alike, so log at most one per 10 s. */
    static struct cj_log_limit failed_limit = CJ_LOG_LIMIT_INIT;

    if (rc == CJ_OK) {
        cj_log_recovered(&failed_limit, "auth.calls_recovered", ac->request_id);
        return;
    }
    if (ac->error[0] != '\0') {
        cj_rpc_call_set_error(call, "%s", ac->error);
    }
    /* The throttle's wait, or the password gate's when its line is full,
     * reaches the gateway's Retry-After header. */
    if ((rc == CJ_ERR_RATE_LIMITED || rc == CJ_ERR_UNAVAILABLE) &&
        ac->retry_after_s > 0) {
        cj_rpc_call_set_retry_after(call, ac->retry_after_s);
    }
    if (rc == CJ_ERR_INTERNAL || rc == CJ_ERR_NOMEM ||
        rc == CJ_ERR_UNAVAILABLE || rc == CJ_ERR_TIMEOUT) {
        cj_log_limited(&failed_limit, CJ_LOG_ERROR, "auth.call_failed",
                       ac->request_id,
                       CJ_F_STR("method", cj_rpc_call_path(call)),
                       CJ_F_STR("status", cj_status_name(rc)));
    }
}

/* GetProfile takes no input; this adapter gives it the common shape. */
static enum cj_status get_profile(struct auth_service *svc,
                                  struct auth_call *call,
                                  const Cerrojo__V1__GetProfileRequest *req,
                                  Cerrojo__V1__Profile **out)
{
    (void)req;
    return auth_get_profile(svc, call, out);
}

AUTH_HANDLER(handle_register, auth_register, Cerrojo__V1__RegisterRequest,
             Cerrojo__V1__TokenSet)
AUTH_HANDLER(handle_login, auth_login, Cerrojo__V1__LoginRequest,
             Cerrojo__V1__TokenSet)
AUTH_HANDLER(handle_refresh, auth_refresh, Cerrojo__V1__RefreshRequest,
             Cerrojo__V1__TokenSet)
AUTH_HANDLER(handle_logout, auth_logout, Cerrojo__V1__LogoutRequest,
             Cerrojo__V1__LogoutResponse)
AUTH_HANDLER(handle_get_profile, get_profile, Cerrojo__V1__GetProfileRequest,
             Cerrojo__V1__Profile)
AUTH_HANDLER(handle_get_data, auth_get_data, Cerrojo__V1__GetDataRequest,
             Cerrojo__V1__UserData)
AUTH_HANDLER(handle_put_data, auth_put_data, Cerrojo__V1__PutDataRequest,
             Cerrojo__V1__UserData)
AUTH_HANDLER(handle_record_audit, auth_record_audit,
             Cerrojo__V1__RecordAuditRequest, Cerrojo__V1__RecordAuditResponse)
AUTH_HANDLER(handle_introspect, auth_introspect, Cerrojo__V1__IntrospectRequest,
             Cerrojo__V1__IntrospectResponse)

/* Every method may block (Postgres, Redis, Argon2, calls to kms and
 * session), so all run on the framework's bounded worker pool. */
#define AUTH_METHOD(name, fn, req, resp, ...)                                  \
    {                                                                          \
        .path = "/cerrojo.v1.Auth/" name, .request = &(req),                   \
        .response = &(resp), .handler = (fn), .blocking = true,                \
        .allowed = {__VA_ARGS__},                                              \
    }

static const struct cj_rpc_method auth_methods[] = {
    AUTH_METHOD("Register", handle_register,
                cerrojo__v1__register_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Login", handle_login, cerrojo__v1__login_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Refresh", handle_refresh,
                cerrojo__v1__refresh_request__descriptor,
                cerrojo__v1__token_set__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Logout", handle_logout,
                cerrojo__v1__logout_request__descriptor,
                cerrojo__v1__logout_response__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("GetProfile", handle_get_profile,
                cerrojo__v1__get_profile_request__descriptor,
                cerrojo__v1__profile__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("GetData", handle_get_data,
                cerrojo__v1__get_data_request__descriptor,
                cerrojo__v1__user_data__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("PutData", handle_put_data,
                cerrojo__v1__put_data_request__descriptor,
                cerrojo__v1__user_data__descriptor, CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("RecordAudit", handle_record_audit,
                cerrojo__v1__record_audit_request__descriptor,
                cerrojo__v1__record_audit_response__descriptor,
                CJ_RPC_ID_GATEWAY),
    AUTH_METHOD("Introspect", handle_introspect,
                cerrojo__v1__introspect_request__descriptor,
                cerrojo__v1__introspect_response__descriptor,
                CJ_RPC_ANY_PLATFORM),
};

void auth_rpc_service_init(struct auth_service *svc, struct cj_rpc_service *out)
{
    memset(out, 0, sizeof(*out));
    out->name = "cerrojo.v1.Auth";
    out->methods = auth_methods;
    out->n_methods = sizeof(auth_methods) / sizeof(auth_methods[0]);
    out->state = svc;
}

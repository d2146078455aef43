/*
 * Token verification for stateless requests: signature and claims against
 * the JWKS (RFC 8725 rules, in jwt.h), then session's IsRevoked.
 */
#include "gw_auth.h"

#include <string.h>

#include "cerrojo/v1/session.pb-c.h"
#include "gw_json.h"
#include "gw_jwks.h"
#include "log.h"

/* Room for a backend's status message in the log. */
#define GW_AUTH_DETAIL_CHARS 256

static const struct gw_rpc gw_is_revoked_rpc = {
    GW_BACKEND_SESSION, "/cerrojo.v1.Session/IsRevoked",
    &cerrojo__v1__is_revoked_request__descriptor,
    &cerrojo__v1__is_revoked_response__descriptor};

static enum gw_error gw_auth_check_revoked(const struct gw_context *ctx,
                                           const char *request_id,
                                           const struct cj_jwt_claims *claims,
                                           const char **reason)
{
    Cerrojo__V1__IsRevokedRequest request =
        CERROJO__V1__IS_REVOKED_REQUEST__INIT;
    struct gw_caller caller = {.request_id = request_id};
    ProtobufCMessage *response = NULL;
    char detail[GW_AUTH_DETAIL_CHARS] = "";
    enum gw_error error = GW_ERR_UNAVAILABLE;
    grpc_status_code code;

    request.token_id = (char *)claims->jti;
    request.user_id = (char *)claims->sub;
    request.issued_at = claims->iat;
    request.session_id = (char *)claims->sid;
    code =
        gw_backend_call(ctx->backends, &gw_is_revoked_rpc, &caller,
                        &request.base, &response, detail, sizeof(detail), NULL);
    if (code != GRPC_STATUS_OK) {
        /* FAILED_PRECONDITION (cache not loaded) maps to unavailable too:
         * an unknown revocation state never lets a token through. */
        error = gw_error_from_grpc(code, GW_ERR_INVALID_TOKEN);
        if (error != GW_ERR_UNAVAILABLE) {
            error = GW_ERR_INTERNAL;
        }
        *reason = code == GRPC_STATUS_FAILED_PRECONDITION
                      ? "revocation cache not loaded"
                      : "revocation check failed";
        cj_log(CJ_LOG_WARN, "gateway.revocation_check_failed", request_id,
               CJ_F_INT("grpc_status", code), CJ_F_STR("detail", detail));
        goto out;
    }
    if (((Cerrojo__V1__IsRevokedResponse *)response)->revoked) {
        *reason = "token revoked";
        error = GW_ERR_INVALID_TOKEN;
        goto out;
    }
    error = GW_OK;

out:
    gw_json_message_free(response);
    return error;
}

enum gw_error gw_auth_verify_token(const struct gw_context *ctx,
                                   const char *request_id, const char *token,
                                   size_t token_len,
                                   struct cj_jwt_claims *claims,
                                   const char **reason)
{
    struct cj_jwt_verify_config config;
    enum cj_jose_reason jose = CJ_JOSE_OK;
    enum cj_status status;

    cj_jwt_verify_config_init(&config, ctx->settings->jwt_issuer,
                              ctx->settings->jwt_audience);
    config.leeway_s = ctx->settings->clock_leeway_seconds;
    status =
        gw_jwks_verify(ctx->jwks, &config, token, token_len, claims, &jose);
    if (status == CJ_ERR_UNAVAILABLE) {
        *reason = "no JWKS from kms";
        return GW_ERR_UNAVAILABLE;
    }
    if (status != CJ_OK) {
        *reason = cj_jose_reason_name(jose);
        return GW_ERR_INVALID_TOKEN;
    }
    return gw_auth_check_revoked(ctx, request_id, claims, reason);
}

/* Unary calls from auth to kms and session, with logging of failures. */
#include "auth_remote.h"

#include <stdlib.h>
#include <string.h>

#include "auth_revocations.h"
#include "crypto_util.h"
#include "log.h"
#include "rpc_message.h"

#define KMS_PATH(m)     "/cerrojo.v1.Kms/" m
#define SESSION_PATH(m) "/cerrojo.v1.Session/" m

/* While kms or session is down, every request that needs it fails here. */
static struct cj_log_limit unreachable_limit = CJ_LOG_LIMIT_INIT;

/*
 * Sends one call. The request id travels in the caller context so that
 * kms and session log under the same id; no other caller field is sent,
 * since these RPCs name their user in the request.
 */
static enum cj_status call_logged(struct auth_service *svc,
                                  struct cj_rpc_client *client,
                                  const char *path, const char *request_id,
                                  const ProtobufCMessage *request,
                                  const ProtobufCMessageDescriptor *type,
                                  ProtobufCMessage **response, bool log)
{
    struct cj_caller_context ctx;
    char error[CJ_RPC_CLIENT_ERROR_MAX] = "";
    int code = 0;
    enum cj_status rc;

    memset(&ctx, 0, sizeof(ctx));
    if (request_id != NULL &&
        strlen(request_id) <= CJ_CALLER_REQUEST_ID_MAX_LEN) {
        strcpy(ctx.request_id, request_id);
    }
    rc = cj_rpc_client_call(client, path, request, type, &ctx,
                            svc->cfg.rpc_timeout_ms, response, &code, error);
    if (rc == CJ_OK) {
        cj_log_recovered(&unreachable_limit, "auth.remote_call_recovered",
                         request_id);
    } else if (log && (rc == CJ_ERR_UNAVAILABLE || rc == CJ_ERR_TIMEOUT)) {
        cj_log_limited(&unreachable_limit, CJ_LOG_WARN,
                       "auth.remote_call_failed", request_id,
                       CJ_F_STR("method", path),
                       CJ_F_STR("status", cj_status_name(rc)),
                       CJ_F_INT("grpc_code", code), CJ_F_STR("message", error));
    } else if (log) {
        cj_log(CJ_LOG_WARN, "auth.remote_call_failed", request_id,
               CJ_F_STR("method", path), CJ_F_STR("status", cj_status_name(rc)),
               CJ_F_INT("grpc_code", code), CJ_F_STR("message", error));
    }
    return rc;
}

enum cj_status auth_remote_call_error(struct auth_call *call,
                                      enum auth_remote_service service,
                                      enum cj_status rc)
{
    const char *service_name = service == AUTH_REMOTE_KMS
                                   ? "the key service (kms)"
                                   : "the session service";

    if (rc == CJ_OK) {
        return CJ_OK;
    }
    if (call->error[0] == '\0') {
        if (rc == CJ_ERR_UNAVAILABLE) {
            auth_call_error(call, "%s is unavailable; retry later",
                            service_name);
        } else if (rc == CJ_ERR_TIMEOUT) {
            auth_call_error(call, "%s timed out; retry later", service_name);
        } else {
            auth_call_error(call, "the call to %s failed: %s", service_name,
                            cj_status_name(rc));
        }
    }
    /* Another status from a backend is this service's fault, not the
     * client's: its own code (a 400, say) would mislead the client. */
    return rc == CJ_ERR_UNAVAILABLE || rc == CJ_ERR_TIMEOUT ? rc
                                                            : CJ_ERR_INTERNAL;
}

static enum cj_status
call(struct auth_service *svc, struct cj_rpc_client *client, const char *path,
     const char *request_id, const ProtobufCMessage *request,
     const ProtobufCMessageDescriptor *type, ProtobufCMessage **response)
{
    return call_logged(svc, client, path, request_id, request, type, response,
                       true);
}

enum cj_status auth_kms_create_user_key(struct auth_service *svc,
                                        const char *request_id,
                                        const char *user_id,
                                        unsigned char *wrapped,
                                        size_t wrapped_max, size_t *wrapped_len,
                                        uint32_t *kek_version)
{
    Cerrojo__V1__CreateUserKeyRequest req =
        CERROJO__V1__CREATE_USER_KEY_REQUEST__INIT;
    Cerrojo__V1__CreateUserKeyResponse *resp = NULL;
    enum cj_status rc;

    req.user_id = (char *)user_id;
    rc = call(svc, svc->kms, KMS_PATH("CreateUserKey"), request_id, &req.base,
              &cerrojo__v1__create_user_key_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    if (resp->wrapped_key.len == 0 || resp->wrapped_key.len > wrapped_max ||
        resp->kek_version == 0) {
        rc = CJ_ERR_INTERNAL;
    } else {
        memcpy(wrapped, resp->wrapped_key.data, resp->wrapped_key.len);
        *wrapped_len = resp->wrapped_key.len;
        *kek_version = resp->kek_version;
    }
    /* The plaintext key is not needed at registration. */
    if (resp->data_key.data != NULL) {
        cj_wipe(resp->data_key.data, resp->data_key.len);
    }
    cj_rpc_message_free(&resp->base);
    return rc;
}

enum cj_status auth_kms_decrypt_key(struct auth_service *svc,
                                    const char *request_id, const char *user_id,
                                    const unsigned char *wrapped,
                                    size_t wrapped_len,
                                    uint8_t key[AUTH_USER_KEY_SIZE])
{
    Cerrojo__V1__DecryptKeyRequest req = CERROJO__V1__DECRYPT_KEY_REQUEST__INIT;
    Cerrojo__V1__DecryptKeyResponse *resp = NULL;
    enum cj_status rc;

    req.user_id = (char *)user_id;
    req.wrapped_key.data = (uint8_t *)wrapped;
    req.wrapped_key.len = wrapped_len;
    rc = call(svc, svc->kms, KMS_PATH("DecryptKey"), request_id, &req.base,
              &cerrojo__v1__decrypt_key_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    if (resp->data_key.len != AUTH_USER_KEY_SIZE) {
        rc = CJ_ERR_INTERNAL;
    } else {
        memcpy(key, resp->data_key.data, AUTH_USER_KEY_SIZE);
    }
    if (resp->data_key.data != NULL) {
        cj_wipe(resp->data_key.data, resp->data_key.len);
    }
    cj_rpc_message_free(&resp->base);
    return rc;
}

enum cj_status auth_kms_rewrap_key(struct auth_service *svc,
                                   const char *request_id, const char *user_id,
                                   const unsigned char *wrapped,
                                   size_t wrapped_len, unsigned char *out,
                                   size_t out_max, size_t *out_len,
                                   uint32_t *kek_version, bool *changed)
{
    Cerrojo__V1__RewrapKeyRequest req = CERROJO__V1__REWRAP_KEY_REQUEST__INIT;
    Cerrojo__V1__RewrapKeyResponse *resp = NULL;
    enum cj_status rc;

    req.user_id = (char *)user_id;
    req.wrapped_key.data = (uint8_t *)wrapped;
    req.wrapped_key.len = wrapped_len;
    rc = call(svc, svc->kms, KMS_PATH("RewrapKey"), request_id, &req.base,
              &cerrojo__v1__rewrap_key_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    if (resp->wrapped_key.len == 0 || resp->wrapped_key.len > out_max) {
        rc = CJ_ERR_INTERNAL;
    } else {
        memcpy(out, resp->wrapped_key.data, resp->wrapped_key.len);
        *out_len = resp->wrapped_key.len;
        *kek_version = resp->kek_version;
        *changed = resp->changed;
    }
    cj_rpc_message_free(&resp->base);
    return rc;
}

enum cj_status auth_kms_forget_user_key(struct auth_service *svc,
                                        const char *request_id,
                                        const char *user_id, bool *forgotten)
{
    Cerrojo__V1__ForgetUserKeyRequest req =
        CERROJO__V1__FORGET_USER_KEY_REQUEST__INIT;
    Cerrojo__V1__ForgetUserKeyResponse *resp = NULL;
    enum cj_status rc;

    *forgotten = false;
    req.user_id = (char *)user_id;
    rc = call(svc, svc->kms, KMS_PATH("ForgetUserKey"), request_id, &req.base,
              &cerrojo__v1__forget_user_key_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    *forgotten = resp->forgotten;
    cj_rpc_message_free(&resp->base);
    return CJ_OK;
}

enum cj_status
auth_kms_list_old_key_users(struct auth_service *svc, const char *after_user_id,
                            unsigned max_users,
                            Cerrojo__V1__ListOldKeyUsersResponse **out)
{
    Cerrojo__V1__ListOldKeyUsersRequest req =
        CERROJO__V1__LIST_OLD_KEY_USERS_REQUEST__INIT;

    req.after_user_id = (char *)after_user_id;
    req.max_users = max_users;
    return call(svc, svc->kms, KMS_PATH("ListOldKeyUsers"), NULL, &req.base,
                &cerrojo__v1__list_old_key_users_response__descriptor,
                (ProtobufCMessage **)out);
}

enum cj_status auth_kms_sign_token(struct auth_service *svc,
                                   const char *request_id, const char *user_id,
                                   const char *session_id, const char *token_id,
                                   int64_t issued_at, int64_t expires_at,
                                   char **token)
{
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    Cerrojo__V1__SignTokenResponse *resp = NULL;
    enum cj_status rc;

    *token = NULL;
    req.user_id = (char *)user_id;
    req.session_id = (char *)(session_id != NULL ? session_id : "");
    req.token_id = (char *)token_id;
    req.issuer = svc->cfg.issuer;
    req.audience = svc->cfg.audience;
    req.issued_at = issued_at;
    req.expires_at = expires_at;
    rc = call(svc, svc->kms, KMS_PATH("SignToken"), request_id, &req.base,
              &cerrojo__v1__sign_token_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    if (resp->token == NULL || resp->token[0] == '\0') {
        rc = CJ_ERR_INTERNAL;
    } else {
        /* Steal the string so that it is not copied again. */
        *token = resp->token;
        resp->token = (char *)protobuf_c_empty_string;
    }
    cj_rpc_message_free(&resp->base);
    return rc;
}

enum cj_status auth_kms_get_jwks(struct auth_service *svc,
                                 const char *request_id, char **jwks_json,
                                 uint32_t *max_age_s)
{
    Cerrojo__V1__GetJwksRequest req = CERROJO__V1__GET_JWKS_REQUEST__INIT;
    Cerrojo__V1__GetJwksResponse *resp = NULL;
    enum cj_status rc;

    *jwks_json = NULL;
    rc = call(svc, svc->kms, KMS_PATH("GetJwks"), request_id, &req.base,
              &cerrojo__v1__get_jwks_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    *jwks_json = strdup(resp->jwks_json != NULL ? resp->jwks_json : "");
    *max_age_s = resp->max_age_seconds;
    cj_rpc_message_free(&resp->base);
    return *jwks_json != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

enum cj_status auth_session_create(struct auth_service *svc,
                                   const char *request_id,
                                   const uint8_t *client_secret,
                                   size_t secret_len,
                                   Cerrojo__V1__SessionInfo **info)
{
    Cerrojo__V1__CreateSessionRequest req =
        CERROJO__V1__CREATE_SESSION_REQUEST__INIT;

    *info = NULL;
    req.client_secret.data = (uint8_t *)client_secret;
    req.client_secret.len = secret_len;
    return call(svc, svc->session, SESSION_PATH("CreateSession"), request_id,
                &req.base, &cerrojo__v1__session_info__descriptor,
                (ProtobufCMessage **)info);
}

enum cj_status auth_session_bind(struct auth_service *svc,
                                 const char *request_id, const char *session_id,
                                 const char *user_id,
                                 Cerrojo__V1__SessionInfo **info,
                                 uint32_t *evicted)
{
    Cerrojo__V1__BindUserRequest req = CERROJO__V1__BIND_USER_REQUEST__INIT;
    Cerrojo__V1__BindUserResponse *resp = NULL;
    enum cj_status rc;

    if (info != NULL) {
        *info = NULL;
    }
    *evicted = 0;
    req.session_id = (char *)session_id;
    req.user_id = (char *)user_id;
    /* The clock that sets the user's revocation time (a logout of all
     * devices) sets the bind time too, so session compares the two
     * without the skew of its own clock. */
    req.bound_at_ms = auth_now_ms(svc);
    rc = call(svc, svc->session, SESSION_PATH("BindUser"), request_id,
              &req.base, &cerrojo__v1__bind_user_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    if (info != NULL && resp->session != NULL) {
        *info = resp->session;
        resp->session = NULL;
    }
    *evicted = resp->evicted_sessions;
    cj_rpc_message_free(&resp->base);
    return CJ_OK;
}

/* Calls a session method whose response carries nothing auth needs. */
static enum cj_status call_session(struct auth_service *svc, const char *path,
                                   const char *request_id,
                                   const ProtobufCMessage *request,
                                   const ProtobufCMessageDescriptor *type)
{
    ProtobufCMessage *resp = NULL;
    enum cj_status rc =
        call(svc, svc->session, path, request_id, request, type, &resp);

    if (resp != NULL) {
        cj_rpc_message_free(resp);
    }
    return rc;
}

enum cj_status auth_session_delete(struct auth_service *svc,
                                   const char *request_id,
                                   const char *session_id)
{
    Cerrojo__V1__DeleteSessionRequest req =
        CERROJO__V1__DELETE_SESSION_REQUEST__INIT;

    req.session_id = (char *)session_id;
    return call_session(svc, SESSION_PATH("DeleteSession"), request_id,
                        &req.base,
                        &cerrojo__v1__delete_session_response__descriptor);
}

enum cj_status auth_session_delete_user(struct auth_service *svc,
                                        const char *request_id,
                                        const char *user_id)
{
    Cerrojo__V1__DeleteUserSessionsRequest req =
        CERROJO__V1__DELETE_USER_SESSIONS_REQUEST__INIT;

    req.user_id = (char *)user_id;
    return call_session(
        svc, SESSION_PATH("DeleteUserSessions"), request_id, &req.base,
        &cerrojo__v1__delete_user_sessions_response__descriptor);
}

/*
 * Passes rc through. A revocation that session stored is marked confirmed
 * in auth.revocations, so the watcher does not send it again. One that
 * session did not store is already committed there, so session's cache is
 * marked stale, its loaded marker is deleted, and the watcher reloads it.
 */
static enum cj_status revocation_sent(struct auth_service *svc,
                                      const char *request_id,
                                      enum auth_revocation_kind kind,
                                      const char *subject, int64_t revoked_at,
                                      enum cj_status rc)
{
    static const char *const reasons[] = {
        [AUTH_REVOKED_TOKEN] = "revoke_token_failed",
        [AUTH_REVOKED_SESSION] = "delete_session_failed",
        [AUTH_REVOKED_USER] = "revoke_user_failed",
    };

    if (rc == CJ_OK) {
        auth_revocations_confirm(svc, request_id, kind, subject, revoked_at);
    } else {
        auth_revocations_mark_stale(svc, request_id, reasons[kind]);
    }
    return rc;
}

enum cj_status auth_session_revoke_token(struct auth_service *svc,
                                         const char *request_id,
                                         const char *token_id,
                                         int64_t expires_at)
{
    Cerrojo__V1__RevokeTokenRequest req =
        CERROJO__V1__REVOKE_TOKEN_REQUEST__INIT;

    req.token_id = (char *)token_id;
    req.expires_at = expires_at;
    return revocation_sent(
        svc, request_id, AUTH_REVOKED_TOKEN, token_id, 0,
        call_session(svc, SESSION_PATH("RevokeToken"), request_id, &req.base,
                     &cerrojo__v1__revoke_token_response__descriptor));
}

enum cj_status auth_session_revoke_user(struct auth_service *svc,
                                        const char *request_id,
                                        const char *user_id, int64_t revoked_at,
                                        int64_t entry_expires_at_ms)
{
    Cerrojo__V1__RevokeUserRequest req = CERROJO__V1__REVOKE_USER_REQUEST__INIT;

    req.user_id = (char *)user_id;
    req.revoked_at = revoked_at;
    req.entry_expires_at_ms = entry_expires_at_ms;
    return revocation_sent(
        svc, request_id, AUTH_REVOKED_USER, user_id, revoked_at,
        call_session(svc, SESSION_PATH("RevokeUser"), request_id, &req.base,
                     &cerrojo__v1__revoke_user_response__descriptor));
}

enum cj_status auth_session_delete_revoked(struct auth_service *svc,
                                           const char *request_id,
                                           const char *session_id)
{
    return revocation_sent(svc, request_id, AUTH_REVOKED_SESSION, session_id, 0,
                           auth_session_delete(svc, request_id, session_id));
}

enum cj_status auth_session_is_revoked(struct auth_service *svc,
                                       const char *request_id,
                                       const char *token_id,
                                       const char *user_id, int64_t issued_at,
                                       const char *session_id, bool *revoked)
{
    Cerrojo__V1__IsRevokedRequest req = CERROJO__V1__IS_REVOKED_REQUEST__INIT;
    Cerrojo__V1__IsRevokedResponse *resp = NULL;
    enum cj_status rc;

    *revoked = true;
    req.token_id = (char *)token_id;
    req.user_id = (char *)user_id;
    req.issued_at = issued_at;
    req.session_id = (char *)(session_id != NULL ? session_id : "");
    rc = call(svc, svc->session, SESSION_PATH("IsRevoked"), request_id,
              &req.base, &cerrojo__v1__is_revoked_response__descriptor,
              (ProtobufCMessage **)&resp);
    if (rc != CJ_OK) {
        return rc;
    }
    *revoked = resp->revoked;
    cj_rpc_message_free(&resp->base);
    return CJ_OK;
}

enum cj_status auth_session_cache_loaded(struct auth_service *svc,
                                         const char *request_id, bool *loaded)
{
    Cerrojo__V1__GetRevocationCacheStatusRequest req =
        CERROJO__V1__GET_REVOCATION_CACHE_STATUS_REQUEST__INIT;
    Cerrojo__V1__GetRevocationCacheStatusResponse *resp = NULL;
    enum cj_status rc;

    *loaded = false;
    /* Polled every few seconds: the watcher logs changes, not each miss. */
    rc = call_logged(
        svc, svc->session, SESSION_PATH("GetRevocationCacheStatus"), request_id,
        &req.base,
        &cerrojo__v1__get_revocation_cache_status_response__descriptor,
        (ProtobufCMessage **)&resp, false);
    if (rc != CJ_OK) {
        return rc;
    }
    *loaded = resp->loaded;
    cj_rpc_message_free(&resp->base);
    return CJ_OK;
}

enum cj_status
auth_session_load(struct auth_service *svc, const char *request_id,
                  const Cerrojo__V1__LoadRevocationsRequest *batch)
{
    return call_session(svc, SESSION_PATH("LoadRevocations"), request_id,
                        &batch->base,
                        &cerrojo__v1__load_revocations_response__descriptor);
}

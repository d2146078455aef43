/*
 * Calls from auth to kms and session. Each wrapper sends one unary call
 * with the configured deadline and the caller's request id, logs a failure
 * with the method and status, and returns the mapped status. Responses
 * are new protobuf-c messages; free them with cj_rpc_message_free.
 */
#ifndef AUTH_REMOTE_H
#define AUTH_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_service.h"
#include "cerrojo/v1/common.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "cerrojo/v1/session.pb-c.h"

/* Size of a session's data key from kms. */
#define AUTH_USER_KEY_SIZE 32

/* Service that auth calls, named in the message of a failed call. */
enum auth_remote_service {
    AUTH_REMOTE_KMS,
    AUTH_REMOTE_SESSION,
};

/*
 * Sets the call's message, unless one is set, to name the service whose
 * call failed with rc and how it failed. Returns the status for the
 * caller: rc for unavailable and timed out, CJ_ERR_INTERNAL for any other
 * failure, CJ_OK for CJ_OK. The message contains the service and the
 * status only, never a request field.
 */
enum cj_status auth_remote_call_error(struct auth_call *call,
                                      enum auth_remote_service service,
                                      enum cj_status rc);

/* kms CreateUserKey: the wrapped key only; the plaintext key is wiped. */
CJ_WARN_UNUSED enum cj_status
auth_kms_create_user_key(struct auth_service *svc, const char *request_id,
                         const char *user_id, unsigned char *wrapped,
                         size_t wrapped_max, size_t *wrapped_len,
                         uint32_t *kek_version);

/* kms DecryptKey into key (AUTH_USER_KEY_SIZE bytes; the caller wipes). */
CJ_WARN_UNUSED enum cj_status
auth_kms_decrypt_key(struct auth_service *svc, const char *request_id,
                     const char *user_id, const unsigned char *wrapped,
                     size_t wrapped_len, uint8_t key[AUTH_USER_KEY_SIZE]);

/* kms RewrapKey. */
CJ_WARN_UNUSED enum cj_status
auth_kms_rewrap_key(struct auth_service *svc, const char *request_id,
                    const char *user_id, const unsigned char *wrapped,
                    size_t wrapped_len, unsigned char *out, size_t out_max,
                    size_t *out_len, uint32_t *kek_version, bool *changed);

/* kms ForgetUserKey; *forgotten is false when kms had no record. */
CJ_WARN_UNUSED enum cj_status auth_kms_forget_user_key(struct auth_service *svc,
                                                       const char *request_id,
                                                       const char *user_id,
                                                       bool *forgotten);

/* kms ListOldKeyUsers; free *out with cj_rpc_message_free. */
CJ_WARN_UNUSED enum cj_status
auth_kms_list_old_key_users(struct auth_service *svc, const char *after_user_id,
                            unsigned max_users,
                            Cerrojo__V1__ListOldKeyUsersResponse **out);

/* kms SignToken; *token is a new string the caller frees. */
CJ_WARN_UNUSED enum cj_status
auth_kms_sign_token(struct auth_service *svc, const char *request_id,
                    const char *user_id, const char *session_id,
                    const char *token_id, int64_t issued_at, int64_t expires_at,
                    char **token);

/* kms GetJwks; *jwks_json is a new string the caller frees. */
CJ_WARN_UNUSED enum cj_status auth_kms_get_jwks(struct auth_service *svc,
                                                const char *request_id,
                                                char **jwks_json,
                                                uint32_t *max_age_s);

/* session CreateSession; *info is a new SessionInfo. */
CJ_WARN_UNUSED enum cj_status
auth_session_create(struct auth_service *svc, const char *request_id,
                    const uint8_t *client_secret, size_t secret_len,
                    Cerrojo__V1__SessionInfo **info);

/* Calls session BindUser with auth_now_ms as the bind time. *info (may be
 * NULL) receives the updated SessionInfo. *evicted receives the number of
 * the user's other sessions that the bind ended, which is 0 on error and
 * from a session service that does not report it. */
CJ_WARN_UNUSED enum cj_status
auth_session_bind(struct auth_service *svc, const char *request_id,
                  const char *session_id, const char *user_id,
                  Cerrojo__V1__SessionInfo **info, uint32_t *evicted);

/* session DeleteSession. */
CJ_WARN_UNUSED enum cj_status auth_session_delete(struct auth_service *svc,
                                                  const char *request_id,
                                                  const char *session_id);

/* session DeleteSession for a session whose revocation auth.revocations
 * records. DeleteSession stores that revocation in session's cache, so the
 * row is then marked confirmed. On failure the cache is marked stale. */
CJ_WARN_UNUSED enum cj_status
auth_session_delete_revoked(struct auth_service *svc, const char *request_id,
                            const char *session_id);

/* session DeleteUserSessions. */
CJ_WARN_UNUSED enum cj_status auth_session_delete_user(struct auth_service *svc,
                                                       const char *request_id,
                                                       const char *user_id);

/* session RevokeToken; on success the token's row in auth.revocations is
 * marked confirmed, on failure session's cache is marked stale. */
CJ_WARN_UNUSED enum cj_status
auth_session_revoke_token(struct auth_service *svc, const char *request_id,
                          const char *token_id, int64_t expires_at);

/* session RevokeUser (revoked_at in Unix seconds, entry_expires_at_ms the
 * Unix ms until which session must keep the entry); on success the user's
 * row is marked confirmed up to that second, on failure session's cache is
 * marked stale. */
CJ_WARN_UNUSED enum cj_status
auth_session_revoke_user(struct auth_service *svc, const char *request_id,
                         const char *user_id, int64_t revoked_at,
                         int64_t entry_expires_at_ms);

/*
 * session IsRevoked. CJ_ERR_PRECONDITION when the cache is not loaded;
 * the caller must then fail closed.
 */
CJ_WARN_UNUSED enum cj_status
auth_session_is_revoked(struct auth_service *svc, const char *request_id,
                        const char *token_id, const char *user_id,
                        int64_t issued_at, const char *session_id,
                        bool *revoked);

/* session GetRevocationCacheStatus; a failure is returned, not logged. */
CJ_WARN_UNUSED enum cj_status
auth_session_cache_loaded(struct auth_service *svc, const char *request_id,
                          bool *loaded);

/* session LoadRevocations with one batch. */
CJ_WARN_UNUSED enum cj_status
auth_session_load(struct auth_service *svc, const char *request_id,
                  const Cerrojo__V1__LoadRevocationsRequest *batch);

#endif

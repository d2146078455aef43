/*
 * Issuing tokens for register, login and refresh: the access token signed
 * by kms, a new refresh token row, and the TokenSet reply that carries
 * them.
 */
#ifndef AUTH_TOKENS_H
#define AUTH_TOKENS_H

#include <stdint.h>

#include "auth_ids.h"
#include "auth_service.h"
#include "auth_store.h"
#include "cerrojo/v1/common.pb-c.h"

/* A signed access token. */
struct auth_access_token {
    char jti[AUTH_UUID_TEXT_SIZE];
    char *token;        /* compact JWS, malloc; wiped and freed by clear */
    int64_t issued_at;  /* Unix seconds */
    int64_t expires_at; /* Unix seconds */
};

/* A new refresh token: its text for the client and its row. */
struct auth_new_refresh {
    char text[AUTH_REFRESH_TOKEN_TEXT_SIZE];
    struct auth_refresh_row row;
};

/*
 * Signs an access token for user_id through kms, naming session_id as
 * `sid` when not empty. On failure sets the call's message, unless one is
 * set, to name kms. Free with auth_access_token_clear.
 */
CJ_WARN_UNUSED enum cj_status
auth_access_token_sign(struct auth_service *svc, struct auth_call *call,
                       const char *user_id, const char *session_id,
                       struct auth_access_token *out);

/* Wipes and frees the token text. */
void auth_access_token_clear(struct auth_access_token *token);

/*
 * Makes a refresh token. family_id NULL starts a new family whose absolute
 * expiry is now plus the family lifetime; otherwise the token joins that
 * family and never outlives family_expires_at_ms. The row's id is the jti
 * of the access token issued with it, so revoking a family can revoke its
 * access tokens too. Make the row after signing, so that the row's
 * issued_at is not earlier than the token's iat.
 */
void auth_new_refresh_make(struct auth_service *svc,
                           const struct auth_access_token *access,
                           const char *user_id, const char *session_id,
                           const char *family_id, int64_t family_expires_at_ms,
                           int64_t now_ms, struct auth_new_refresh *out);

/* Wipes the token text. */
void auth_new_refresh_clear(struct auth_new_refresh *refresh);

/*
 * Builds the reply. Takes ownership of access->token and of session (may
 * be NULL), so both are freed with the reply.
 */
CJ_WARN_UNUSED enum cj_status
auth_token_set_new(struct auth_service *svc, struct auth_access_token *access,
                   const struct auth_new_refresh *refresh,
                   Cerrojo__V1__SessionInfo *session, const char *user_id,
                   Cerrojo__V1__TokenSet **out);

#endif

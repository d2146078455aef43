/* Access tokens through kms SignToken, refresh rows, TokenSet replies. */
#include "auth_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_refresh.h"
#include "auth_remote.h"
#include "crypto_util.h"
#include "rpc_message.h"

enum cj_status auth_access_token_sign(struct auth_service *svc,
                                      struct auth_call *call,
                                      const char *user_id,
                                      const char *session_id,
                                      struct auth_access_token *out)
{
    enum cj_status rc;

    memset(out, 0, sizeof(*out));
    auth_uuid_new(out->jti);
    out->issued_at = auth_now_ms(svc) / 1000;
    out->expires_at = out->issued_at + svc->cfg.access_ttl_s;
    rc = auth_kms_sign_token(svc, call->request_id, user_id, session_id,
                             out->jti, out->issued_at, out->expires_at,
                             &out->token);
    rc = auth_remote_call_error(call, AUTH_REMOTE_KMS, rc);
    return rc;
}

void auth_access_token_clear(struct auth_access_token *token)
{
    if (token->token != NULL) {
        cj_wipe(token->token, strlen(token->token));
        free(token->token);
        token->token = NULL;
    }
}

void auth_new_refresh_make(struct auth_service *svc,
                           const struct auth_access_token *access,
                           const char *user_id, const char *session_id,
                           const char *family_id, int64_t family_expires_at_ms,
                           int64_t now_ms, struct auth_new_refresh *out)
{
    struct auth_refresh_row *row = &out->row;
    int64_t family_end;

    memset(out, 0, sizeof(*out));
    auth_refresh_token_new(out->text, row->token_hash);
    snprintf(row->id, sizeof(row->id), "%s", access->jti);
    if (family_id == NULL) {
        auth_uuid_new(row->family_id);
        family_end = now_ms + svc->cfg.family_ttl_s * 1000;
    } else {
        snprintf(row->family_id, sizeof(row->family_id), "%s", family_id);
        family_end = family_expires_at_ms;
    }
    snprintf(row->user_id, sizeof(row->user_id), "%s", user_id);
    snprintf(row->session_id, sizeof(row->session_id), "%s",
             session_id != NULL ? session_id : "");
    row->issued_at_ms = now_ms;
    row->family_expires_at_ms = family_end;
    row->expires_at_ms = auth_refresh_successor_expiry(
        now_ms, svc->cfg.refresh_ttl_s * 1000, family_end);
}

void auth_new_refresh_clear(struct auth_new_refresh *refresh)
{
    cj_wipe(refresh->text, sizeof(refresh->text));
}

enum cj_status auth_token_set_new(struct auth_service *svc,
                                  struct auth_access_token *access,
                                  const struct auth_new_refresh *refresh,
                                  Cerrojo__V1__SessionInfo *session,
                                  const char *user_id,
                                  Cerrojo__V1__TokenSet **out)
{
    Cerrojo__V1__TokenSet *set = malloc(sizeof(*set));

    *out = NULL;
    if (set == NULL) {
        if (session != NULL) {
            cj_rpc_message_free(&session->base);
        }
        return CJ_ERR_NOMEM;
    }
    cerrojo__v1__token_set__init(set);
    set->session = session;
    set->access_token = access->token;
    access->token = NULL;
    set->token_type = strdup("Bearer");
    set->expires_in = (uint32_t)svc->cfg.access_ttl_s;
    set->refresh_token = strdup(refresh->text);
    set->refresh_expires_at_ms = refresh->row.expires_at_ms;
    set->user_id = strdup(user_id);
    if (set->token_type == NULL || set->refresh_token == NULL ||
        set->user_id == NULL) {
        cj_rpc_message_free(&set->base);
        return CJ_ERR_NOMEM;
    }
    *out = set;
    return CJ_OK;
}

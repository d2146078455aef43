/* SignToken and GetJwks: claims checks, signing, last-token bookkeeping. */
#include "kms_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "log.h"

int64_t kms_token_expiry_step(int64_t exp)
{
    int64_t rest = exp % KMS_TOKEN_EXPIRY_STEP_S;
    return rest == 0 ? exp : exp + (KMS_TOKEN_EXPIRY_STEP_S - rest);
}

static bool claim_valid(const char *value, bool may_be_empty)
{
    size_t len = value != NULL ? strlen(value) : 0;
    return (may_be_empty || len > 0) && len <= CJ_JWT_CLAIM_MAX_BYTES;
}

static enum cj_status check_request(const struct kms_service *svc,
                                    const struct kms_token_request *req)
{
    int64_t now = kms_now();

    if (!claim_valid(req->user_id, false) ||
        !claim_valid(req->token_id, false) ||
        !claim_valid(req->issuer, false) ||
        !claim_valid(req->audience, false) ||
        !claim_valid(req->session_id, true))
        return CJ_ERR_INVALID;
    if (req->issued_at <= 0 || req->expires_at <= req->issued_at ||
        req->expires_at > CJ_JWT_TIME_MAX_S)
        return CJ_ERR_INVALID;
    if (req->expires_at - req->issued_at > svc->cfg.token_lifetime_max_s ||
        req->expires_at <= now ||
        req->expires_at >
            now + svc->cfg.token_lifetime_max_s + svc->cfg.leeway_s)
        return CJ_ERR_INVALID;
    return CJ_OK;
}

/*
 * Raises the key's recorded last-token expiry to cover exp. Writes only
 * when exp passes what this process already wrote; concurrent callers may
 * both write, which GREATEST in the statement makes harmless.
 */
static enum cj_status note_expiry(struct kms_service *svc,
                                  struct kms_signing_key *key, int64_t exp,
                                  const char *request_id)
{
    int64_t step = kms_token_expiry_step(exp);
    struct cj_db_conn *conn = NULL;

    if (step <= atomic_load(&key->noted_expiry))
        return CJ_OK;
    enum cj_status st = cj_db_acquire(svc->pool, -1, &conn);
    if (st == CJ_OK)
        st = kms_store_note_token_expiry(conn, key->kid, step);
    cj_db_release(conn);
    if (st != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "kms.note_token_expiry_failed", request_id,
               CJ_F_STR("kid", key->kid),
               CJ_F_STR("status", cj_status_name(st)));
        return CJ_ERR_UNAVAILABLE;
    }
    int64_t seen = atomic_load(&key->noted_expiry);
    while (seen < step &&
           !atomic_compare_exchange_weak(&key->noted_expiry, &seen, step)) {
    }
    return CJ_OK;
}

enum cj_status kms_sign_token(struct kms_service *svc,
                              const struct kms_token_request *req,
                              const char *request_id, char **token,
                              char kid[KMS_KID_MAX + 1], const char **alg)
{
    struct kms_keyring *ring = NULL;
    struct cj_jwt_claims claims;
    enum cj_status st = check_request(svc, req);

    *token = NULL;
    if (st != CJ_OK)
        goto out;
    st = CJ_ERR_UNAVAILABLE;
    ring = kms_service_keys(svc);
    struct kms_signing_key *key =
        ring != NULL ? kms_keyring_active_signing(ring) : NULL;
    if (key == NULL)
        goto out;

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.iss, sizeof(claims.iss), "%s", req->issuer);
    snprintf(claims.aud, sizeof(claims.aud), "%s", req->audience);
    snprintf(claims.sub, sizeof(claims.sub), "%s", req->user_id);
    snprintf(claims.sid, sizeof(claims.sid), "%s", req->session_id);
    snprintf(claims.jti, sizeof(claims.jti), "%s", req->token_id);
    claims.iat = req->issued_at;
    claims.nbf = req->issued_at;
    claims.exp = req->expires_at;

    /* Recorded first: a token must never outlive its key's publication. */
    st = note_expiry(svc, key, req->expires_at, request_id);
    if (st != CJ_OK)
        goto out;
    st = cj_jwt_sign(key->jwk, &claims, token);
    if (st != CJ_OK)
        goto out;
    cj_counter_add(svc->metrics.tokens_signed, 1);
    snprintf(kid, KMS_KID_MAX + 1, "%s", key->kid);
    *alg = cj_jwk_alg_name(cj_jwk_get_alg(key->jwk));
out:
    kms_keyring_unref(ring);
    return st;
}

enum cj_status kms_get_jwks(struct kms_service *svc, char **jwks_json)
{
    struct kms_keyring *ring = kms_service_keys(svc);
    enum cj_status st = CJ_ERR_UNAVAILABLE;

    *jwks_json = NULL;
    if (ring != NULL && ring->jwks_json != NULL) {
        *jwks_json = strdup(ring->jwks_json);
        st = *jwks_json != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    kms_keyring_unref(ring);
    return st;
}

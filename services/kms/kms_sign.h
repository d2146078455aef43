/*
 * Access-token signing (SignToken) and the JWKS (GetJwks) over the current
 * key set. Signing records the token's expiry for its key before the token
 * is returned, so a retired key stays published until that token expires.
 */
#ifndef KMS_SIGN_H
#define KMS_SIGN_H

#include <stdint.h>

#include "kms_service.h"

/* Token expiries are recorded rounded up to this step, in seconds, so a
 * busy key costs one database write per step and replica. */
#define KMS_TOKEN_EXPIRY_STEP_S 60

/* The claims SignToken takes from auth; strings are borrowed. */
struct kms_token_request {
    const char *user_id;    /* sub */
    const char *session_id; /* sid; "" for none */
    const char *token_id;   /* jti */
    const char *issuer;
    const char *audience;
    int64_t issued_at; /* iat and nbf, Unix seconds */
    int64_t expires_at;
};

/* Returns the expiry recorded for a token expiring at exp (rounded up). */
int64_t kms_token_expiry_step(int64_t exp);

/*
 * Signs an access token with the active key. *token is a new string
 * (free it); kid and alg get the key's (alg is static). CJ_ERR_INVALID for
 * missing claims, exp <= iat, a lifetime over cfg.token_lifetime_max_s or
 * an exp already past; CJ_ERR_UNAVAILABLE when the expiry cannot be
 * recorded or no key is active.
 */
CJ_WARN_UNUSED enum cj_status
kms_sign_token(struct kms_service *svc, const struct kms_token_request *req,
               const char *request_id, char **token, char kid[KMS_KID_MAX + 1],
               const char **alg);

/* Copies the cached JWKS into a new string *jwks_json (free it). */
CJ_WARN_UNUSED enum cj_status kms_get_jwks(struct kms_service *svc,
                                           char **jwks_json);

#endif

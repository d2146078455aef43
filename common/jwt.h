/*
 * Access tokens: JWTs (RFC 7519) with header typ "at+jwt" (RFC 9068),
 * signed with a jwk.h key and verified against a JWK Set under the rules
 * of RFC 8725: only RS256, ES256 and EdDSA, each tied to its key, explicit
 * typing, issuer and audience checks, time claims with a bounded leeway.
 */
#ifndef CJ_JWT_H
#define CJ_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "jose.h"
#include "jwk.h"
#include "status.h"

#define CJ_JWT_TYP                "at+jwt"
#define CJ_JWT_LEEWAY_DEFAULT_S   60
#define CJ_JWT_LEEWAY_MAX_S       3600 /* larger leeways are config errors */
#define CJ_JWT_LIFETIME_DEFAULT_S 900  /* 15 minutes */
/* Time claims must lie in [0, this]: 9999-12-31T23:59:59Z in seconds. */
#define CJ_JWT_TIME_MAX_S 253402300799LL
/* Maximum length of iss, aud, sub, sid or jti, in bytes. */
#define CJ_JWT_CLAIM_MAX_BYTES 255
/* Random bytes in a jti made by cj_jwt_claims_init (128 bits). */
#define CJ_JWT_JTI_RANDOM_BYTES 16

/*
 * The claims of an access token. Strings are NUL-terminated; an empty sid
 * means the token has none (a stateless login). Times are seconds since
 * the Unix epoch; a verified token without nbf gets nbf = iat.
 */
struct cj_jwt_claims {
    char iss[CJ_JWT_CLAIM_MAX_BYTES + 1];
    char aud[CJ_JWT_CLAIM_MAX_BYTES + 1];
    char sub[CJ_JWT_CLAIM_MAX_BYTES + 1];
    char sid[CJ_JWT_CLAIM_MAX_BYTES + 1];
    char jti[CJ_JWT_CLAIM_MAX_BYTES + 1];
    int64_t iat;
    int64_t nbf;
    int64_t exp;
};

/* Verifier settings. Strings are borrowed for the call. */
struct cj_jwt_verify_config {
    const char *issuer;   /* iss must equal it */
    const char *audience; /* aud must equal it or be an array holding it */
    int64_t leeway_s;     /* 0 to CJ_JWT_LEEWAY_MAX_S */
};

/*
 * Fills claims for a new token: iat = nbf = now_s, exp = now_s +
 * lifetime_s, a random jti (base64url of CJ_JWT_JTI_RANDOM_BYTES). sid may
 * be NULL. CJ_ERR_INVALID for an empty or too long string or a lifetime
 * that is not positive or overflows the time range.
 */
CJ_WARN_UNUSED enum cj_status
cj_jwt_claims_init(struct cj_jwt_claims *claims, const char *iss,
                   const char *aud, const char *sub, const char *sid,
                   int64_t now_s, int64_t lifetime_s);

/*
 * Signs claims with key into a new compact token *out (malloc; the caller
 * frees). Header: alg of the key, typ "at+jwt", kid of the key. Claims are
 * checked first (non-empty iss, aud, sub, jti; times in range and
 * iat <= nbf < exp), CJ_ERR_INVALID otherwise.
 */
CJ_WARN_UNUSED enum cj_status cj_jwt_sign(const struct cj_jwk *key,
                                          const struct cj_jwt_claims *claims,
                                          char **out);

/* Sets issuer and audience (borrowed) and the default leeway. */
void cj_jwt_verify_config_init(struct cj_jwt_verify_config *config,
                               const char *issuer, const char *audience);

/*
 * Validates a verifier configuration: non-empty issuer and audience of at
 * most CJ_JWT_CLAIM_MAX_BYTES, leeway in [0, CJ_JWT_LEEWAY_MAX_S].
 * CJ_ERR_INVALID otherwise. Call it when loading configuration.
 */
CJ_WARN_UNUSED enum cj_status
cj_jwt_verify_config_check(const struct cj_jwt_verify_config *config);

/*
 * Verifies an access token against keys at time now_s (seconds since the
 * epoch). Order: cj_jws_decode rules, typ "at+jwt" (or
 * "application/at+jwt", case-insensitive), kid present and in keys, alg
 * equal to that key's, signature, then the payload: a JSON object without
 * duplicate members; iss, aud, sub, jti strings (sid optional); iat, exp
 * (nbf optional) integers in [0, CJ_JWT_TIME_MAX_S]; iss and aud match
 * config; exp > iat, nbf <= exp; now_s < exp + leeway, now_s >= nbf -
 * leeway, iat <= now_s + leeway. Returns CJ_OK and fills *claims, or the
 * status of cj_jose_reason_status(*reason). A bad config gives
 * CJ_ERR_INVALID with CJ_JOSE_CONFIG.
 */
CJ_WARN_UNUSED enum cj_status
cj_jwt_verify(const struct cj_jwks *keys,
              const struct cj_jwt_verify_config *config, int64_t now_s,
              const char *token, size_t token_len, struct cj_jwt_claims *claims,
              enum cj_jose_reason *reason);

#endif

/*
 * The gateway's copy of kms's JWK set: fetched with GetJwks, refreshed
 * when older than the refresh period (5 minutes by default, shorter when
 * kms says so) and on an unknown kid, at most once per second, so that a
 * flood of tokens with made-up kids cannot hammer kms.
 */
#ifndef GW_JWKS_H
#define GW_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_backend.h"
#include "jwt.h"
#include "status.h"

/* Least time between two fetches from kms, in milliseconds. */
#define GW_JWKS_FETCH_INTERVAL_MS 1000

struct gw_jwks_cache;

/* Creates an empty cache that fetches through `backends`. NULL when out of
 * memory. */
struct gw_jwks_cache *gw_jwks_cache_new(struct gw_backends *backends,
                                        unsigned refresh_seconds);

void gw_jwks_cache_free(struct gw_jwks_cache *cache);

/*
 * Verifies an access token against the cached set, fetching it first when
 * it is empty or stale, and once more when the token's kid is unknown.
 * Returns CJ_OK with *claims filled, CJ_ERR_UNAVAILABLE when kms could not
 * provide a set, or the verifier's status with *reason for the log.
 */
CJ_WARN_UNUSED enum cj_status
gw_jwks_verify(struct gw_jwks_cache *cache,
               const struct cj_jwt_verify_config *config, const char *token,
               size_t token_len, struct cj_jwt_claims *claims,
               enum cj_jose_reason *reason);

/*
 * Copies the cached JWK Set JSON (fetching when stale) into a new string
 * (*json, freed by the caller) with the max-age kms allows. Returns
 * CJ_ERR_UNAVAILABLE when kms could not provide one.
 */
CJ_WARN_UNUSED enum cj_status gw_jwks_json(struct gw_jwks_cache *cache,
                                           char **json, unsigned *max_age);

#endif

/*
 * The gateway's copy of kms's JWK set: fetched with GetJwks, refreshed by
 * a background thread every refresh period (5 minutes by default, shorter
 * when kms's max-age is), by a request that finds it older than that, and
 * on an unknown kid. Fetches start at most once per second, so that a
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
/* Wait of the refresh thread after a failed fetch, in milliseconds (the
 * refresh period instead when that is shorter). */
#define GW_JWKS_RETRY_MS 5000

struct gw_jwks_cache;

/* Creates an empty cache that fetches through `backends`. NULL when out of
 * memory. */
struct gw_jwks_cache *gw_jwks_cache_new(struct gw_backends *backends,
                                        unsigned refresh_seconds);

/* Stops the refresh thread if it runs and frees the cache. Accepts NULL. */
void gw_jwks_cache_free(struct gw_jwks_cache *cache);

/*
 * Starts the thread that fetches the set at once and then whenever it
 * reaches the refresh period (every GW_JWKS_RETRY_MS after a failure).
 * Returns CJ_ERR_INTERNAL when the thread cannot be created.
 */
CJ_WARN_UNUSED enum cj_status
gw_jwks_start_refresh(struct gw_jwks_cache *cache);

/* Stops the refresh thread and waits for it, at most one fetch (bounded
 * by the backend deadline). Safe to call when it never started. */
void gw_jwks_stop_refresh(struct gw_jwks_cache *cache);

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

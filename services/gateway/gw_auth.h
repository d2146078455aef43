/*
 * Authentication of stateless requests: the access token carried inside
 * the sealed plaintext is verified locally against the JWKS copy, then
 * checked with session's IsRevoked. A revocation cache that is not loaded
 * fails closed (503), never as a success.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>

#include "gw_context.h"
#include "gw_errors.h"
#include "jwt.h"

/*
 * Verifies `token` and its revocation state. Returns GW_OK with *claims
 * filled, GW_ERR_INVALID_TOKEN for a bad, expired or revoked token, or
 * GW_ERR_UNAVAILABLE when kms or session does not reply (or the revocation
 * cache is not loaded). `reason` receives a fixed text for the log.
 */
enum gw_error gw_auth_verify_token(const struct gw_context *ctx,
                                   const char *request_id, const char *token,
                                   size_t token_len,
                                   struct cj_jwt_claims *claims,
                                   const char **reason);

#endif

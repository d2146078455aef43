/*
 * Pieces shared by the JOSE layers (jwk.c, jws.c, jwt.c): the reason codes
 * a token verifier reports, the named size limits, and base64url without
 * padding (RFC 7515 section 2) on top of libsodium.
 */
#ifndef CJ_JOSE_H
#define CJ_JOSE_H

#include <stddef.h>

#include "status.h"

/* Largest compact JWS or JWT accepted, in bytes, checked before decoding. */
#define CJ_JOSE_TOKEN_MAX_BYTES 8192

/*
 * Reason a token or key was rejected. Each reason is for logs only (see
 * cj_jose_reason_name). Callers reply to clients with the one class that
 * cj_jose_reason_status returns.
 */
enum cj_jose_reason {
    CJ_JOSE_OK = 0,
    CJ_JOSE_TOO_LARGE,          /* over CJ_JOSE_TOKEN_MAX_BYTES */
    CJ_JOSE_BAD_SEGMENTS,       /* not exactly three '.'-separated parts */
    CJ_JOSE_BAD_BASE64,         /* a part is not canonical base64url */
    CJ_JOSE_BAD_HEADER_JSON,    /* header is not a JSON object */
    CJ_JOSE_DUPLICATE_MEMBER,   /* a JSON member name repeats */
    CJ_JOSE_ALG_MISSING,        /* header has no string "alg" */
    CJ_JOSE_ALG_NONE,           /* "alg": "none" (RFC 8725 section 3.1) */
    CJ_JOSE_ALG_HMAC,           /* HS256, HS384, HS512 */
    CJ_JOSE_ALG_UNSUPPORTED,    /* any other alg: PS384, ES512, ... */
    CJ_JOSE_ALG_MISMATCH,       /* alg differs from the key's alg */
    CJ_JOSE_KID_MISSING,        /* verifying against a set needs a kid */
    CJ_JOSE_KID_UNKNOWN,        /* no key in the set has this kid */
    CJ_JOSE_HEADER_KEY,         /* jwk, jku, x5u, x5c or x5t in header */
    CJ_JOSE_HEADER_CRIT,        /* a crit header (no extension known) */
    CJ_JOSE_HEADER_MEMBER_TYPE, /* kid or typ is not a string */
    CJ_JOSE_TYP,                /* typ is not "at+jwt" */
    CJ_JOSE_BAD_SIGNATURE,      /* signature does not verify */
    CJ_JOSE_BAD_PAYLOAD_JSON,   /* payload is not a JSON object */
    CJ_JOSE_CLAIM_MISSING,      /* a required claim is absent */
    CJ_JOSE_CLAIM_TYPE,         /* a claim has the wrong JSON type */
    CJ_JOSE_CLAIM_TOO_LONG,     /* a string claim over its limit */
    CJ_JOSE_TIME_RANGE,         /* time claim not an integer in range */
    CJ_JOSE_TIME_ORDER,         /* exp <= iat, or nbf > exp */
    CJ_JOSE_EXPIRED,            /* now >= exp + leeway */
    CJ_JOSE_NOT_YET_VALID,      /* now < nbf - leeway */
    CJ_JOSE_ISSUED_IN_FUTURE,   /* iat > now + leeway */
    CJ_JOSE_ISSUER,             /* iss is not the configured issuer */
    CJ_JOSE_AUDIENCE,           /* aud does not contain our audience */
    CJ_JOSE_CONFIG,             /* the verifier's configuration is wrong */
    CJ_JOSE_NOMEM,              /* allocation failed */
    CJ_JOSE_INTERNAL,           /* an unexpected library failure */
};

/* Returns a stable snake_case name of the reason for logs ("alg_none"). */
const char *cj_jose_reason_name(enum cj_jose_reason reason);

/*
 * Maps a reason to the status callers return: CJ_ERR_UNAUTHENTICATED
 * (client class invalid_token) for every rejection of the token itself,
 * CJ_ERR_INVALID for CJ_JOSE_CONFIG, CJ_ERR_NOMEM and CJ_ERR_INTERNAL for
 * the last two, CJ_OK for CJ_JOSE_OK.
 */
enum cj_status cj_jose_reason_status(enum cj_jose_reason reason);

/*
 * Encodes len bytes as base64url without padding into a new NUL-terminated
 * string *out (malloc; the caller frees).
 */
CJ_WARN_UNUSED enum cj_status cj_jose_b64url_encode(const unsigned char *in,
                                                    size_t len, char **out);

/*
 * Decodes base64url without padding. Rejects padding, characters outside
 * the alphabet and non-canonical trailing bits (CJ_ERR_INVALID). *out is a
 * new buffer of *out_len bytes (malloc; the caller frees), never NULL on
 * success, even for empty input.
 */
CJ_WARN_UNUSED enum cj_status cj_jose_b64url_decode(const char *in, size_t len,
                                                    unsigned char **out,
                                                    size_t *out_len);

#endif

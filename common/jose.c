/*
 * Reason names and their client class for the JOSE verifiers, and
 * base64url without padding through libsodium (which rejects
 * non-canonical input).
 */
#include "jose.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

static const char *const reason_names[] = {
    [CJ_JOSE_OK] = "ok",
    [CJ_JOSE_TOO_LARGE] = "too_large",
    [CJ_JOSE_BAD_SEGMENTS] = "bad_segments",
    [CJ_JOSE_BAD_BASE64] = "bad_base64",
    [CJ_JOSE_BAD_HEADER_JSON] = "bad_header_json",
    [CJ_JOSE_DUPLICATE_MEMBER] = "duplicate_member",
    [CJ_JOSE_ALG_MISSING] = "alg_missing",
    [CJ_JOSE_ALG_NONE] = "alg_none",
    [CJ_JOSE_ALG_HMAC] = "alg_hmac",
    [CJ_JOSE_ALG_UNSUPPORTED] = "alg_unsupported",
    [CJ_JOSE_ALG_MISMATCH] = "alg_mismatch",
    [CJ_JOSE_KID_MISSING] = "kid_missing",
    [CJ_JOSE_KID_UNKNOWN] = "kid_unknown",
    [CJ_JOSE_HEADER_KEY] = "header_key",
    [CJ_JOSE_HEADER_CRIT] = "header_crit",
    [CJ_JOSE_HEADER_MEMBER_TYPE] = "header_member_type",
    [CJ_JOSE_TYP] = "typ",
    [CJ_JOSE_BAD_SIGNATURE] = "bad_signature",
    [CJ_JOSE_BAD_PAYLOAD_JSON] = "bad_payload_json",
    [CJ_JOSE_CLAIM_MISSING] = "claim_missing",
    [CJ_JOSE_CLAIM_TYPE] = "claim_type",
    [CJ_JOSE_CLAIM_TOO_LONG] = "claim_too_long",
    [CJ_JOSE_TIME_RANGE] = "time_range",
    [CJ_JOSE_TIME_ORDER] = "time_order",
    [CJ_JOSE_EXPIRED] = "expired",
    [CJ_JOSE_NOT_YET_VALID] = "not_yet_valid",
    [CJ_JOSE_ISSUED_IN_FUTURE] = "issued_in_future",
    [CJ_JOSE_ISSUER] = "issuer",
    [CJ_JOSE_AUDIENCE] = "audience",
    [CJ_JOSE_CONFIG] = "config",
    [CJ_JOSE_NOMEM] = "nomem",
    [CJ_JOSE_INTERNAL] = "internal",
};

const char *cj_jose_reason_name(enum cj_jose_reason reason)
{
    if ((size_t)reason >= sizeof(reason_names) / sizeof(reason_names[0]) ||
        reason_names[reason] == NULL) {
        return "unknown";
    }
    return reason_names[reason];
}

enum cj_status cj_jose_reason_status(enum cj_jose_reason reason)
{
    switch (reason) {
    case CJ_JOSE_OK:
        return CJ_OK;
    case CJ_JOSE_CONFIG:
        return CJ_ERR_INVALID;
    case CJ_JOSE_NOMEM:
        return CJ_ERR_NOMEM;
    case CJ_JOSE_INTERNAL:
        return CJ_ERR_INTERNAL;
    default:
        return CJ_ERR_UNAUTHENTICATED;
    }
}

enum cj_status cj_jose_b64url_encode(const unsigned char *in, size_t len,
                                     char **out)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t size;
    char *text;

    *out = NULL;
    if (len > SIZE_MAX / 2) {
        return CJ_ERR_TOO_LARGE;
    }
    size = sodium_base64_ENCODED_LEN(len, variant);
    text = malloc(size);
    if (text == NULL) {
        return CJ_ERR_NOMEM;
    }
    sodium_bin2base64(text, size, in, len, variant);
    *out = text;
    return CJ_OK;
}

enum cj_status cj_jose_b64url_decode(const char *in, size_t len,
                                     unsigned char **out, size_t *out_len)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    /* Three bytes per four characters, plus one so the buffer is never 0. */
    size_t cap = len / 4 * 3 + 3;
    unsigned char *bin;
    const char *end = NULL;
    size_t bin_len = 0;

    *out = NULL;
    *out_len = 0;
    bin = malloc(cap);
    if (bin == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (sodium_base642bin(bin, cap, in, len, NULL, &bin_len, &end, variant) !=
            0 ||
        end != in + len) {
        free(bin);
        return CJ_ERR_INVALID;
    }
    *out = bin;
    *out_len = bin_len;
    return CJ_OK;
}

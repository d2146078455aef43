/*
 * Access tokens (RFC 7519 with the RFC 9068 profile): building and signing
 * the claims, and verifying a token against a JWK Set with the rules of
 * RFC 8725. Each rejection has its own reason for logs.
 */
#include "jwt.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto_util.h"
#include "jws.h"

/* RFC 9068 section 4 also allows the full media type. */
#define JWT_TYP_MEDIA_TYPE "application/at+jwt"

/* Copies a string claim; false when empty or over the claim limit. */
static bool copy_claim(char dst[CJ_JWT_CLAIM_MAX_BYTES + 1], const char *src)
{
    size_t len;

    if (src == NULL) {
        return false;
    }
    len = strnlen(src, CJ_JWT_CLAIM_MAX_BYTES + 1);
    if (len == 0 || len > CJ_JWT_CLAIM_MAX_BYTES) {
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

static bool time_in_range(int64_t t)
{
    return t >= 0 && t <= CJ_JWT_TIME_MAX_S;
}

enum cj_status cj_jwt_claims_init(struct cj_jwt_claims *claims, const char *iss,
                                  const char *aud, const char *sub,
                                  const char *sid, int64_t now_s,
                                  int64_t lifetime_s)
{
    unsigned char jti[CJ_JWT_JTI_RANDOM_BYTES];

    memset(claims, 0, sizeof(*claims));
    if (!copy_claim(claims->iss, iss) || !copy_claim(claims->aud, aud) ||
        !copy_claim(claims->sub, sub) ||
        (sid != NULL && !copy_claim(claims->sid, sid))) {
        return CJ_ERR_INVALID;
    }
    if (!time_in_range(now_s) || lifetime_s <= 0 ||
        lifetime_s > CJ_JWT_TIME_MAX_S - now_s) {
        return CJ_ERR_INVALID;
    }
    claims->iat = now_s;
    claims->nbf = now_s;
    claims->exp = now_s + lifetime_s;
    cj_random_bytes(jti, sizeof(jti));
    sodium_bin2base64(claims->jti, sizeof(claims->jti), jti, sizeof(jti),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return CJ_OK;
}

static bool claim_string_ok(const char *value, bool optional)
{
    size_t len = strnlen(value, CJ_JWT_CLAIM_MAX_BYTES + 1);

    return len <= CJ_JWT_CLAIM_MAX_BYTES && (optional || len > 0);
}

static bool claims_are_signable(const struct cj_jwt_claims *c)
{
    return claim_string_ok(c->iss, false) && claim_string_ok(c->aud, false) &&
           claim_string_ok(c->sub, false) && claim_string_ok(c->jti, false) &&
           claim_string_ok(c->sid, true) && time_in_range(c->iat) &&
           time_in_range(c->nbf) && time_in_range(c->exp) && c->iat <= c->nbf &&
           c->nbf < c->exp;
}

static json_t *claims_to_object(const struct cj_jwt_claims *c)
{
    json_t *obj = json_object();
    int rc;

    if (obj == NULL) {
        return NULL;
    }
    rc = json_object_set_new(obj, "iss", json_string(c->iss));
    rc |= json_object_set_new(obj, "aud", json_string(c->aud));
    rc |= json_object_set_new(obj, "sub", json_string(c->sub));
    if (c->sid[0] != '\0') {
        rc |= json_object_set_new(obj, "sid", json_string(c->sid));
    }
    rc |= json_object_set_new(obj, "iat", json_integer(c->iat));
    rc |= json_object_set_new(obj, "nbf", json_integer(c->nbf));
    rc |= json_object_set_new(obj, "exp", json_integer(c->exp));
    rc |= json_object_set_new(obj, "jti", json_string(c->jti));
    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

enum cj_status cj_jwt_sign(const struct cj_jwk *key,
                           const struct cj_jwt_claims *claims, char **out)
{
    enum cj_status status = CJ_ERR_NOMEM;
    json_t *payload = NULL;
    char *text = NULL;

    *out = NULL;
    if (!claims_are_signable(claims)) {
        return CJ_ERR_INVALID;
    }
    payload = claims_to_object(claims);
    if (payload == NULL) {
        goto out;
    }
    text = json_dumps(payload, JSON_COMPACT);
    if (text == NULL) {
        goto out;
    }
    status = cj_jws_sign(key, CJ_JWT_TYP, (const unsigned char *)text,
                         strlen(text), out);
out:
    free(text);
    json_decref(payload);
    return status;
}

void cj_jwt_verify_config_init(struct cj_jwt_verify_config *config,
                               const char *issuer, const char *audience)
{
    config->issuer = issuer;
    config->audience = audience;
    config->leeway_s = CJ_JWT_LEEWAY_DEFAULT_S;
}

enum cj_status
cj_jwt_verify_config_check(const struct cj_jwt_verify_config *config)
{
    char scratch[CJ_JWT_CLAIM_MAX_BYTES + 1];

    if (!copy_claim(scratch, config->issuer) ||
        !copy_claim(scratch, config->audience)) {
        return CJ_ERR_INVALID;
    }
    if (config->leeway_s < 0 || config->leeway_s > CJ_JWT_LEEWAY_MAX_S) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/* RFC 7515 section 4.1.9: media type names compare case-insensitively. */
static bool typ_is_access_token(const char *typ)
{
    return typ != NULL && (strcasecmp(typ, CJ_JWT_TYP) == 0 ||
                           strcasecmp(typ, JWT_TYP_MEDIA_TYPE) == 0);
}

/* Reads a string claim into dst. */
static enum cj_jose_reason read_string(json_t *payload, const char *name,
                                       bool required,
                                       char dst[CJ_JWT_CLAIM_MAX_BYTES + 1])
{
    json_t *value = json_object_get(payload, name);
    size_t len;

    dst[0] = '\0';
    if (value == NULL) {
        return required ? CJ_JOSE_CLAIM_MISSING : CJ_JOSE_OK;
    }
    if (!json_is_string(value)) {
        return CJ_JOSE_CLAIM_TYPE;
    }
    len = json_string_length(value);
    if (len == 0 || strlen(json_string_value(value)) != len) {
        return CJ_JOSE_CLAIM_TYPE; /* empty or with an embedded NUL */
    }
    if (len > CJ_JWT_CLAIM_MAX_BYTES) {
        return CJ_JOSE_CLAIM_TOO_LONG;
    }
    memcpy(dst, json_string_value(value), len + 1);
    return CJ_JOSE_OK;
}

/*
 * Reads a NumericDate. RFC 7519 allows fractions, but our tokens carry
 * whole seconds, so a real number is rejected as out of range.
 */
static enum cj_jose_reason read_time(json_t *payload, const char *name,
                                     bool required, int64_t *out)
{
    json_t *value = json_object_get(payload, name);

    *out = -1;
    if (value == NULL) {
        return required ? CJ_JOSE_CLAIM_MISSING : CJ_JOSE_OK;
    }
    if (!json_is_integer(value) || !time_in_range(json_integer_value(value))) {
        return CJ_JOSE_TIME_RANGE;
    }
    *out = json_integer_value(value);
    return CJ_JOSE_OK;
}

/* aud is one string or an array of strings (RFC 7519 section 4.1.3). */
static enum cj_jose_reason check_audience(json_t *payload, const char *audience,
                                          char dst[CJ_JWT_CLAIM_MAX_BYTES + 1])
{
    json_t *aud = json_object_get(payload, "aud");
    json_t *item;
    size_t i;
    bool found = false;

    if (aud == NULL) {
        return CJ_JOSE_CLAIM_MISSING;
    }
    if (json_is_string(aud)) {
        if (strcmp(json_string_value(aud), audience) != 0 ||
            json_string_length(aud) != strlen(audience)) {
            return CJ_JOSE_AUDIENCE;
        }
    } else if (json_is_array(aud)) {
        json_array_foreach(aud, i, item)
        {
            if (!json_is_string(item)) {
                return CJ_JOSE_CLAIM_TYPE;
            }
            if (strcmp(json_string_value(item), audience) == 0 &&
                json_string_length(item) == strlen(audience)) {
                found = true;
            }
        }
        if (!found) {
            return CJ_JOSE_AUDIENCE;
        }
    } else {
        return CJ_JOSE_CLAIM_TYPE;
    }
    snprintf(dst, CJ_JWT_CLAIM_MAX_BYTES + 1, "%s", audience);
    return CJ_JOSE_OK;
}

static enum cj_jose_reason read_claims(json_t *payload,
                                       const struct cj_jwt_verify_config *cfg,
                                       struct cj_jwt_claims *c)
{
    enum cj_jose_reason r;

    r = read_string(payload, "iss", true, c->iss);
    if (r == CJ_JOSE_OK) {
        r = read_string(payload, "sub", true, c->sub);
    }
    if (r == CJ_JOSE_OK) {
        r = read_string(payload, "jti", true, c->jti);
    }
    if (r == CJ_JOSE_OK) {
        r = read_string(payload, "sid", false, c->sid);
    }
    if (r == CJ_JOSE_OK) {
        r = read_time(payload, "iat", true, &c->iat);
    }
    if (r == CJ_JOSE_OK) {
        r = read_time(payload, "exp", true, &c->exp);
    }
    if (r == CJ_JOSE_OK) {
        r = read_time(payload, "nbf", false, &c->nbf);
    }
    if (r == CJ_JOSE_OK && c->nbf < 0) {
        c->nbf = c->iat; /* without nbf the token is valid from iat */
    }
    if (r == CJ_JOSE_OK && strcmp(c->iss, cfg->issuer) != 0) {
        r = CJ_JOSE_ISSUER;
    }
    if (r == CJ_JOSE_OK) {
        r = check_audience(payload, cfg->audience, c->aud);
    }
    return r;
}

static enum cj_jose_reason check_times(const struct cj_jwt_claims *c,
                                       int64_t now, int64_t leeway)
{
    if (c->exp <= c->iat || c->nbf > c->exp) {
        return CJ_JOSE_TIME_ORDER;
    }
    /* All values are in [0, CJ_JWT_TIME_MAX_S] and leeway is at most an
     * hour, so none of these sums overflows. */
    if (now >= c->exp + leeway) {
        return CJ_JOSE_EXPIRED;
    }
    if (now + leeway < c->nbf) {
        return CJ_JOSE_NOT_YET_VALID;
    }
    if (c->iat > now + leeway) {
        return CJ_JOSE_ISSUED_IN_FUTURE;
    }
    return CJ_JOSE_OK;
}

static enum cj_jose_reason parse_payload(const struct cj_jws_decoded *jws,
                                         json_t **out)
{
    json_error_t error;

    *out = json_loadb((const char *)jws->payload, jws->payload_len,
                      JSON_REJECT_DUPLICATES, &error);
    if (*out == NULL) {
        return json_error_code(&error) == json_error_duplicate_key
                   ? CJ_JOSE_DUPLICATE_MEMBER
                   : CJ_JOSE_BAD_PAYLOAD_JSON;
    }
    if (!json_is_object(*out)) {
        return CJ_JOSE_BAD_PAYLOAD_JSON;
    }
    return CJ_JOSE_OK;
}

/* Chooses the key by kid and checks alg and signature. */
static enum cj_jose_reason check_jws(const struct cj_jwks *keys,
                                     const struct cj_jws_decoded *jws)
{
    const struct cj_jwk *key;
    enum cj_jose_reason reason = CJ_JOSE_OK;

    if (!typ_is_access_token(jws->typ)) {
        return CJ_JOSE_TYP;
    }
    if (jws->kid == NULL) {
        return CJ_JOSE_KID_MISSING;
    }
    key = cj_jwks_find(keys, jws->kid);
    if (key == NULL) {
        return CJ_JOSE_KID_UNKNOWN;
    }
    if (cj_jws_check_signature(jws, key, &reason) != CJ_OK) {
        return reason;
    }
    return CJ_JOSE_OK;
}

enum cj_status cj_jwt_verify(const struct cj_jwks *keys,
                             const struct cj_jwt_verify_config *config,
                             int64_t now_s, const char *token, size_t token_len,
                             struct cj_jwt_claims *claims,
                             enum cj_jose_reason *reason)
{
    struct cj_jws_decoded jws;
    struct cj_jwt_claims c;
    json_t *payload = NULL;

    memset(&jws, 0, sizeof(jws));
    memset(claims, 0, sizeof(*claims));
    memset(&c, 0, sizeof(c));
    if (cj_jwt_verify_config_check(config) != CJ_OK || !time_in_range(now_s)) {
        *reason = CJ_JOSE_CONFIG;
        goto out;
    }
    if (cj_jws_decode(token, token_len, &jws, reason) != CJ_OK) {
        goto out;
    }
    *reason = check_jws(keys, &jws);
    if (*reason == CJ_JOSE_OK) {
        *reason = parse_payload(&jws, &payload);
    }
    if (*reason == CJ_JOSE_OK) {
        *reason = read_claims(payload, config, &c);
    }
    if (*reason == CJ_JOSE_OK) {
        *reason = check_times(&c, now_s, config->leeway_s);
    }
    if (*reason == CJ_JOSE_OK) {
        *claims = c;
    }
out:
    json_decref(payload);
    cj_jws_decoded_clear(&jws);
    return cj_jose_reason_status(*reason);
}

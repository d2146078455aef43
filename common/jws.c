/*
 * JWS compact serialization (RFC 7515) for RS256, ES256 and EdDSA: raw
 * signatures through OpenSSL 3.0 (RSA, ECDSA) and libsodium (Ed25519),
 * the ECDSA DER <-> r || s conversion of RFC 7518 section 3.4, and the
 * decoding rules every token must pass before any key is chosen.
 */
#include "jws.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jwk_internal.h"

#define P256_SCALAR_BYTES 32
#define DER_TAG_SEQUENCE  0x30
#define DER_TAG_INTEGER   0x02
/* Short-form DER lengths are below 128. */
#define DER_SHORT_LEN_MAX 127

/* Header members that carry or point to key material (RFC 8725 3.10). */
static const char *const key_header_members[] = {"jwk", "jku", "x5u",
                                                 "x5c", "x5t", "x5t#S256"};

/* Signs or verifies with OpenSSL's one-shot digest API and SHA-256. */
static enum cj_status evp_sign(EVP_PKEY *pkey, const unsigned char *msg,
                               size_t msg_len, unsigned char *sig,
                               size_t *sig_len)
{
    enum cj_status status = CJ_ERR_INTERNAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = (size_t)EVP_PKEY_get_size(pkey);

    if (ctx == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (len == 0 || len > *sig_len) {
        goto out;
    }
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &len, msg, msg_len) != 1) {
        goto out;
    }
    *sig_len = len;
    status = CJ_OK;
out:
    EVP_MD_CTX_free(ctx);
    return status;
}

static enum cj_status evp_verify(EVP_PKEY *pkey, const unsigned char *msg,
                                 size_t msg_len, const unsigned char *sig,
                                 size_t sig_len)
{
    enum cj_status status = CJ_ERR_CRYPTO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1) {
        status = CJ_OK;
    }
    EVP_MD_CTX_free(ctx);
    return status;
}

/* Reads one DER INTEGER that must be a positive value of 1..32 bytes. */
static bool der_read_scalar(const unsigned char **cursor,
                            const unsigned char *end,
                            unsigned char out[P256_SCALAR_BYTES])
{
    const unsigned char *p = *cursor;
    size_t len;

    if (end - p < 2 || p[0] != DER_TAG_INTEGER || p[1] > DER_SHORT_LEN_MAX) {
        return false;
    }
    len = p[1];
    p += 2;
    if (len == 0 || (size_t)(end - p) < len || (p[0] & 0x80) != 0) {
        return false; /* empty, truncated or negative */
    }
    if (p[0] == 0 && (len == 1 || (p[1] & 0x80) == 0)) {
        /* A leading zero is allowed only before a high bit; zero itself
         * is not a valid r or s. */
        return false;
    }
    if (p[0] == 0) {
        p++;
        len--;
    }
    if (len > P256_SCALAR_BYTES) {
        return false;
    }
    memset(out, 0, P256_SCALAR_BYTES);
    memcpy(out + P256_SCALAR_BYTES - len, p, len);
    *cursor = p + len;
    return true;
}

enum cj_status
cj_jws_es256_der_to_raw(const unsigned char *der, size_t der_len,
                        unsigned char raw[CJ_JWS_ES256_SIG_BYTES])
{
    const unsigned char *end = der + der_len;
    const unsigned char *p = der;

    if (der_len < 2 || der_len > CJ_JWS_ES256_DER_MAX_BYTES ||
        der[0] != DER_TAG_SEQUENCE || der[1] != der_len - 2) {
        return CJ_ERR_INVALID;
    }
    p += 2;
    if (!der_read_scalar(&p, end, raw) ||
        !der_read_scalar(&p, end, raw + P256_SCALAR_BYTES) || p != end) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/* Writes one scalar as a minimal DER INTEGER; returns bytes written or 0. */
static size_t der_write_scalar(const unsigned char *scalar, unsigned char *out)
{
    size_t skip = 0;
    size_t len;
    size_t pad;

    while (skip < P256_SCALAR_BYTES && scalar[skip] == 0) {
        skip++;
    }
    if (skip == P256_SCALAR_BYTES) {
        return 0;
    }
    len = P256_SCALAR_BYTES - skip;
    pad = (scalar[skip] & 0x80) != 0 ? 1 : 0;
    out[0] = DER_TAG_INTEGER;
    out[1] = (unsigned char)(len + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, scalar + skip, len);
    return 2 + pad + len;
}

enum cj_status
cj_jws_es256_raw_to_der(const unsigned char *raw, size_t raw_len,
                        unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES],
                        size_t *der_len)
{
    size_t r_len;
    size_t s_len;

    if (raw_len != CJ_JWS_ES256_SIG_BYTES) {
        return CJ_ERR_INVALID;
    }
    r_len = der_write_scalar(raw, der + 2);
    if (r_len == 0) {
        return CJ_ERR_INVALID;
    }
    s_len = der_write_scalar(raw + P256_SCALAR_BYTES, der + 2 + r_len);
    if (s_len == 0) {
        return CJ_ERR_INVALID;
    }
    der[0] = DER_TAG_SEQUENCE;
    der[1] = (unsigned char)(r_len + s_len);
    *der_len = 2 + r_len + s_len;
    return CJ_OK;
}

enum cj_status cj_jws_sign_raw(const struct cj_jwk *key,
                               const unsigned char *msg, size_t msg_len,
                               unsigned char *sig, size_t *sig_len)
{
    enum cj_status status;
    unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES];
    size_t der_len = sizeof(der);
    unsigned long long ed_len = 0;

    *sig_len = 0;
    if (!key->has_private) {
        return CJ_ERR_INVALID;
    }
    switch (key->alg) {
    case CJ_JWK_ALG_RS256:
        *sig_len = CJ_JWS_SIG_MAX_BYTES;
        status = evp_sign(key->pkey, msg, msg_len, sig, sig_len);
        break;
    case CJ_JWK_ALG_ES256:
        status = evp_sign(key->pkey, msg, msg_len, der, &der_len);
        if (status == CJ_OK) {
            status = cj_jws_es256_der_to_raw(der, der_len, sig);
            *sig_len = CJ_JWS_ES256_SIG_BYTES;
        }
        break;
    case CJ_JWK_ALG_EDDSA:
        status =
            crypto_sign_detached(sig, &ed_len, msg, msg_len, key->ed_sk) == 0
                ? CJ_OK
                : CJ_ERR_INTERNAL;
        *sig_len = (size_t)ed_len;
        break;
    default:
        status = CJ_ERR_INVALID;
        break;
    }
    if (status != CJ_OK) {
        *sig_len = 0;
    }
    return status;
}

enum cj_status cj_jws_verify_raw(const struct cj_jwk *key,
                                 const unsigned char *msg, size_t msg_len,
                                 const unsigned char *sig, size_t sig_len)
{
    unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES];
    size_t der_len;

    switch (key->alg) {
    case CJ_JWK_ALG_RS256:
        /* RFC 8017 section 8.2.2: the signature is exactly k bytes. */
        if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey)) {
            return CJ_ERR_CRYPTO;
        }
        return evp_verify(key->pkey, msg, msg_len, sig, sig_len);
    case CJ_JWK_ALG_ES256:
        if (cj_jws_es256_raw_to_der(sig, sig_len, der, &der_len) != CJ_OK) {
            return CJ_ERR_CRYPTO;
        }
        return evp_verify(key->pkey, msg, msg_len, der, der_len);
    case CJ_JWK_ALG_EDDSA:
        if (sig_len != crypto_sign_BYTES ||
            crypto_sign_verify_detached(sig, msg, msg_len, key->ed_pk) != 0) {
            return CJ_ERR_CRYPTO;
        }
        return CJ_OK;
    }
    return CJ_ERR_CRYPTO;
}

/* Returns the reason a header alg is refused, or CJ_JOSE_OK. */
static enum cj_jose_reason classify_alg(const char *alg)
{
    enum cj_jwk_alg known;

    if (cj_jwk_alg_parse(alg, &known)) {
        return CJ_JOSE_OK;
    }
    if (strcasecmp(alg, "none") == 0) {
        return CJ_JOSE_ALG_NONE;
    }
    if (strcmp(alg, "HS256") == 0 || strcmp(alg, "HS384") == 0 ||
        strcmp(alg, "HS512") == 0) {
        return CJ_JOSE_ALG_HMAC;
    }
    return CJ_JOSE_ALG_UNSUPPORTED;
}

/* Reads an optional string member without embedded NUL. */
static bool optional_string(json_t *header, const char *name, const char **out)
{
    json_t *value = json_object_get(header, name);

    *out = NULL;
    if (value == NULL) {
        return true;
    }
    if (!json_is_string(value) ||
        strlen(json_string_value(value)) != json_string_length(value)) {
        return false;
    }
    *out = json_string_value(value);
    return true;
}

/* Applies the header rules of cj_jws_decode to a parsed header. */
static enum cj_jose_reason check_header(json_t *header,
                                        struct cj_jws_decoded *out)
{
    enum cj_jose_reason reason;
    const char *alg;

    if (!optional_string(header, "alg", &alg)) {
        return CJ_JOSE_HEADER_MEMBER_TYPE;
    }
    if (alg == NULL) {
        return CJ_JOSE_ALG_MISSING;
    }
    reason = classify_alg(alg);
    if (reason != CJ_JOSE_OK) {
        return reason;
    }
    for (size_t i = 0;
         i < sizeof(key_header_members) / sizeof(key_header_members[0]); i++) {
        if (json_object_get(header, key_header_members[i]) != NULL) {
            return CJ_JOSE_HEADER_KEY;
        }
    }
    /* RFC 7515 section 4.1.11: we understand no extension, so any crit
     * makes the token invalid. */
    if (json_object_get(header, "crit") != NULL) {
        return CJ_JOSE_HEADER_CRIT;
    }
    if (!optional_string(header, "kid", &out->kid) ||
        !optional_string(header, "typ", &out->typ)) {
        return CJ_JOSE_HEADER_MEMBER_TYPE;
    }
    out->alg = alg;
    return CJ_JOSE_OK;
}

static enum cj_jose_reason decode_part(const char *text, size_t len,
                                       unsigned char **out, size_t *out_len)
{
    unsigned char *bytes;
    unsigned char *grown;
    enum cj_status status = cj_jose_b64url_decode(text, len, &bytes, out_len);

    if (status == CJ_ERR_NOMEM) {
        return CJ_JOSE_NOMEM;
    }
    if (status != CJ_OK) {
        return CJ_JOSE_BAD_BASE64;
    }
    /* Keep a NUL after the bytes so JSON text can be read in place. */
    grown = realloc(bytes, *out_len + 1);
    if (grown == NULL) {
        free(bytes);
        return CJ_JOSE_NOMEM;
    }
    grown[*out_len] = '\0';
    *out = grown;
    return CJ_JOSE_OK;
}

static enum cj_jose_reason parse_header(const unsigned char *text, size_t len,
                                        json_t **out)
{
    json_error_t error;

    *out = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &error);
    if (*out == NULL) {
        return json_error_code(&error) == json_error_duplicate_key
                   ? CJ_JOSE_DUPLICATE_MEMBER
                   : CJ_JOSE_BAD_HEADER_JSON;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return CJ_JOSE_BAD_HEADER_JSON;
    }
    return CJ_JOSE_OK;
}

void cj_jws_decoded_clear(struct cj_jws_decoded *jws)
{
    json_decref(jws->header);
    free(jws->payload);
    free(jws->sig);
    memset(jws, 0, sizeof(*jws));
}

enum cj_status cj_jws_decode(const char *token, size_t token_len,
                             struct cj_jws_decoded *out,
                             enum cj_jose_reason *reason)
{
    const char *dot1;
    const char *dot2;
    const char *end = token + token_len;
    unsigned char *header_text = NULL;
    size_t header_len = 0;

    memset(out, 0, sizeof(*out));
    *reason = CJ_JOSE_BAD_SEGMENTS;
    if (token_len > CJ_JOSE_TOKEN_MAX_BYTES) {
        *reason = CJ_JOSE_TOO_LARGE;
        goto out;
    }
    dot1 = memchr(token, '.', token_len);
    dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1))) {
        goto out;
    }
    *reason =
        decode_part(token, (size_t)(dot1 - token), &header_text, &header_len);
    if (*reason != CJ_JOSE_OK) {
        goto out;
    }
    *reason = parse_header(header_text, header_len, &out->header);
    if (*reason == CJ_JOSE_OK) {
        *reason = check_header(out->header, out);
    }
    if (*reason == CJ_JOSE_OK) {
        *reason = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1),
                              &out->payload, &out->payload_len);
    }
    if (*reason == CJ_JOSE_OK) {
        *reason = decode_part(dot2 + 1, (size_t)(end - dot2 - 1), &out->sig,
                              &out->sig_len);
    }
    out->signing_input = token;
    out->signing_input_len = (size_t)(dot2 - token);
out:
    free(header_text);
    if (*reason != CJ_JOSE_OK) {
        cj_jws_decoded_clear(out);
    }
    return cj_jose_reason_status(*reason);
}

enum cj_status cj_jws_check_signature(const struct cj_jws_decoded *jws,
                                      const struct cj_jwk *key,
                                      enum cj_jose_reason *reason)
{
    enum cj_status status;

    if (strcmp(jws->alg, cj_jwk_alg_name(key->alg)) != 0) {
        *reason = CJ_JOSE_ALG_MISMATCH;
        return cj_jose_reason_status(*reason);
    }
    status = cj_jws_verify_raw(key, (const unsigned char *)jws->signing_input,
                               jws->signing_input_len, jws->sig, jws->sig_len);
    if (status == CJ_ERR_NOMEM) {
        *reason = CJ_JOSE_NOMEM;
    } else if (status != CJ_OK) {
        *reason = CJ_JOSE_BAD_SIGNATURE;
    } else {
        *reason = CJ_JOSE_OK;
    }
    return cj_jose_reason_status(*reason);
}

enum cj_status cj_jws_verify(const struct cj_jwk *key, const char *token,
                             size_t token_len, unsigned char **payload,
                             size_t *payload_len, enum cj_jose_reason *reason)
{
    struct cj_jws_decoded jws;
    enum cj_status status;

    *payload = NULL;
    *payload_len = 0;
    status = cj_jws_decode(token, token_len, &jws, reason);
    if (status != CJ_OK) {
        return status;
    }
    status = cj_jws_check_signature(&jws, key, reason);
    if (status == CJ_OK) {
        *payload = jws.payload;
        *payload_len = jws.payload_len;
        jws.payload = NULL;
    }
    cj_jws_decoded_clear(&jws);
    return status;
}

/* Checks that a caller-made header names the key's algorithm. */
static enum cj_status header_names_alg(const struct cj_jwk *key,
                                       const char *header_json,
                                       size_t header_len)
{
    json_t *header;
    const char *alg;
    enum cj_status status = CJ_ERR_INVALID;

    header = json_loadb(header_json, header_len, JSON_REJECT_DUPLICATES, NULL);
    alg = json_string_value(json_object_get(header, "alg"));
    if (alg != NULL && strcmp(alg, cj_jwk_alg_name(key->alg)) == 0) {
        status = CJ_OK;
    }
    json_decref(header);
    return status;
}

enum cj_status cj_jws_sign_compact(const struct cj_jwk *key,
                                   const char *header_json, size_t header_len,
                                   const unsigned char *payload,
                                   size_t payload_len, char **out)
{
    enum cj_status status;
    char *header_b64 = NULL;
    char *payload_b64 = NULL;
    char *sig_b64 = NULL;
    char *input = NULL;
    unsigned char sig[CJ_JWS_SIG_MAX_BYTES];
    size_t sig_len = 0;
    size_t input_len;
    int len;

    *out = NULL;
    status = header_names_alg(key, header_json, header_len);
    if (status != CJ_OK) {
        goto out;
    }
    status = cj_jose_b64url_encode((const unsigned char *)header_json,
                                   header_len, &header_b64);
    if (status == CJ_OK) {
        status = cj_jose_b64url_encode(payload, payload_len, &payload_b64);
    }
    if (status != CJ_OK) {
        goto out;
    }
    len = asprintf(&input, "%s.%s", header_b64, payload_b64);
    if (len < 0) {
        input = NULL;
        status = CJ_ERR_NOMEM;
        goto out;
    }
    input_len = (size_t)len;
    status = cj_jws_sign_raw(key, (const unsigned char *)input, input_len, sig,
                             &sig_len);
    if (status == CJ_OK) {
        status = cj_jose_b64url_encode(sig, sig_len, &sig_b64);
    }
    if (status != CJ_OK) {
        goto out;
    }
    if (asprintf(out, "%s.%s", input, sig_b64) < 0) {
        *out = NULL;
        status = CJ_ERR_NOMEM;
    }
out:
    free(header_b64);
    free(payload_b64);
    free(sig_b64);
    free(input);
    return status;
}

enum cj_status cj_jws_sign(const struct cj_jwk *key, const char *typ,
                           const unsigned char *payload, size_t payload_len,
                           char **out)
{
    enum cj_status status = CJ_ERR_NOMEM;
    json_t *header = json_object();
    char *text = NULL;
    int rc;

    *out = NULL;
    if (header == NULL) {
        goto out;
    }
    rc = json_object_set_new(header, "alg",
                             json_string(cj_jwk_alg_name(key->alg)));
    if (typ != NULL) {
        rc |= json_object_set_new(header, "typ", json_string(typ));
    }
    rc |= json_object_set_new(header, "kid", json_string(key->kid));
    if (rc != 0) {
        goto out;
    }
    text = json_dumps(header, JSON_COMPACT);
    if (text == NULL) {
        goto out;
    }
    status =
        cj_jws_sign_compact(key, text, strlen(text), payload, payload_len, out);
out:
    free(text);
    json_decref(header);
    return status;
}

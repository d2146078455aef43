/*
 * Key objects of jwk.h: generation, private bytes for storage (PKCS#8 DER
 * or an Ed25519 seed), the public JWK and JWK Set, and RFC 7638
 * thumbprints. Parsing JWKs from JSON lives in jwks.c.
 */
#include "jwk.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto_util.h"
#include "jose.h"
#include "jwk_internal.h"

#define P256_COORD_BYTES 32
/* OpenSSL's name for the P-256 group (RFC 7518 "P-256"). */
#define P256_GROUP_NAME "prime256v1"

/* The public members of a key as base64url strings (malloc). */
struct public_members {
    char *n; /* RSA modulus */
    char *e; /* RSA exponent */
    char *x; /* EC or OKP x */
    char *y; /* EC y */
};

const char *cj_jwk_alg_name(enum cj_jwk_alg alg)
{
    switch (alg) {
    case CJ_JWK_ALG_RS256:
        return "RS256";
    case CJ_JWK_ALG_ES256:
        return "ES256";
    case CJ_JWK_ALG_EDDSA:
        return "EdDSA";
    }
    return NULL;
}

bool cj_jwk_alg_parse(const char *name, enum cj_jwk_alg *out)
{
    if (name == NULL) {
        return false;
    }
    if (strcmp(name, "RS256") == 0) {
        *out = CJ_JWK_ALG_RS256;
    } else if (strcmp(name, "ES256") == 0) {
        *out = CJ_JWK_ALG_ES256;
    } else if (strcmp(name, "EdDSA") == 0) {
        *out = CJ_JWK_ALG_EDDSA;
    } else {
        return false;
    }
    return true;
}

/* Allocates a key; NULL also when libsodium cannot start, since
 * sodium_malloc needs it started. */
static struct cj_jwk *jwk_alloc(enum cj_jwk_alg alg)
{
    struct cj_jwk *key;

    if (cj_crypto_init() != CJ_OK) {
        return NULL;
    }
    key = calloc(1, sizeof(*key));

    if (key != NULL) {
        key->alg = alg;
    }
    return key;
}

void cj_jwk_free(struct cj_jwk *key)
{
    if (key == NULL) {
        return;
    }
    EVP_PKEY_free(key->pkey);
    if (key->ed_sk != NULL) {
        sodium_free(key->ed_sk); /* wipes before freeing */
    }
    free(key);
}

enum cj_jwk_alg cj_jwk_get_alg(const struct cj_jwk *key)
{
    return key->alg;
}

const char *cj_jwk_get_kid(const struct cj_jwk *key)
{
    return key->kid;
}

bool cj_jwk_has_private(const struct cj_jwk *key)
{
    return key->has_private;
}

static bool kid_is_valid(const char *kid)
{
    size_t len = strnlen(kid, CJ_JWK_KID_MAX_BYTES + 1);

    if (len == 0 || len > CJ_JWK_KID_MAX_BYTES) {
        return false;
    }
    /* Printable ASCII without space: kid values are logged and compared. */
    for (size_t i = 0; i < len; i++) {
        if (kid[i] < 0x21 || kid[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

enum cj_status cj_jwk_set_kid(struct cj_jwk *key, const char *kid)
{
    if (kid == NULL || !kid_is_valid(kid)) {
        return CJ_ERR_INVALID;
    }
    snprintf(key->kid, sizeof(key->kid), "%s", kid);
    return CJ_OK;
}

static void public_members_clear(struct public_members *m)
{
    free(m->n);
    free(m->e);
    free(m->x);
    free(m->y);
    memset(m, 0, sizeof(*m));
}

/* Encodes a big number, big-endian with no leading zero (Base64urlUInt). */
static enum cj_status bn_member(const EVP_PKEY *pkey, const char *param,
                                size_t pad_to, char **out)
{
    enum cj_status status = CJ_ERR_INTERNAL;
    BIGNUM *bn = NULL;
    unsigned char *bytes = NULL;
    int len;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
        goto out;
    }
    len = pad_to > 0 ? (int)pad_to : BN_num_bytes(bn);
    bytes = malloc(len > 0 ? (size_t)len : 1);
    if (bytes == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    if (BN_bn2binpad(bn, bytes, len) != len) {
        goto out;
    }
    status = cj_jose_b64url_encode(bytes, (size_t)len, out);
out:
    free(bytes);
    BN_free(bn);
    return status;
}

static enum cj_status public_members_get(const struct cj_jwk *key,
                                         struct public_members *m)
{
    enum cj_status status = CJ_ERR_INTERNAL;

    memset(m, 0, sizeof(*m));
    switch (key->alg) {
    case CJ_JWK_ALG_RS256:
        status = bn_member(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0, &m->n);
        if (status == CJ_OK) {
            status = bn_member(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0, &m->e);
        }
        break;
    case CJ_JWK_ALG_ES256:
        /* RFC 7518 section 6.2.1.2: coordinates are always full length. */
        status = bn_member(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X,
                           P256_COORD_BYTES, &m->x);
        if (status == CJ_OK) {
            status = bn_member(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y,
                               P256_COORD_BYTES, &m->y);
        }
        break;
    case CJ_JWK_ALG_EDDSA:
        status = cj_jose_b64url_encode(key->ed_pk, sizeof(key->ed_pk), &m->x);
        break;
    }
    if (status != CJ_OK) {
        public_members_clear(m);
    }
    return status;
}

enum cj_status cj_jwk_thumbprint(const struct cj_jwk *key,
                                 char out[CJ_JWK_THUMBPRINT_LEN + 1])
{
    enum cj_status status;
    struct public_members m;
    char *canonical = NULL;
    int len = -1;
    unsigned char digest[crypto_hash_sha256_BYTES];

    status = public_members_get(key, &m);
    if (status != CJ_OK) {
        return status;
    }
    /*
     * RFC 7638 section 3.2: only the required members, names sorted, no
     * whitespace. Base64url values need no JSON escaping.
     */
    switch (key->alg) {
    case CJ_JWK_ALG_RS256:
        len = asprintf(&canonical,
                       "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", m.e, m.n);
        break;
    case CJ_JWK_ALG_ES256:
        len = asprintf(&canonical,
                       "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
                       "\"y\":\"%s\"}",
                       m.x, m.y);
        break;
    case CJ_JWK_ALG_EDDSA:
        len =
            asprintf(&canonical,
                     "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", m.x);
        break;
    }
    public_members_clear(&m);
    if (len < 0) {
        return CJ_ERR_NOMEM;
    }
    crypto_hash_sha256(digest, (const unsigned char *)canonical, (size_t)len);
    free(canonical);
    sodium_bin2base64(out, CJ_JWK_THUMBPRINT_LEN + 1, digest, sizeof(digest),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return CJ_OK;
}

/* Sets the kid of a new key to its thumbprint. */
static enum cj_status set_thumbprint_kid(struct cj_jwk *key)
{
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];
    enum cj_status status = cj_jwk_thumbprint(key, thumbprint);

    if (status == CJ_OK) {
        memcpy(key->kid, thumbprint, sizeof(thumbprint));
    }
    return status;
}

static enum cj_status ed25519_from_seed(struct cj_jwk *key,
                                        const unsigned char *seed)
{
    key->ed_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (key->ed_sk == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (crypto_sign_seed_keypair(key->ed_pk, key->ed_sk, seed) != 0) {
        return CJ_ERR_INTERNAL;
    }
    key->has_private = true;
    return CJ_OK;
}

enum cj_status cj_jwk_generate(enum cj_jwk_alg alg, struct cj_jwk **out)
{
    enum cj_status status = CJ_ERR_INTERNAL;
    struct cj_jwk *key = NULL;
    unsigned char seed[CJ_JWK_ED25519_SEED_BYTES];

    *out = NULL;
    if (cj_jwk_alg_name(alg) == NULL) {
        return CJ_ERR_INVALID;
    }
    key = jwk_alloc(alg);
    if (key == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    switch (alg) {
    case CJ_JWK_ALG_RS256:
        key->pkey = EVP_RSA_gen(CJ_JWK_RSA_DEFAULT_BITS);
        status = key->pkey != NULL ? CJ_OK : CJ_ERR_INTERNAL;
        break;
    case CJ_JWK_ALG_ES256:
        key->pkey = EVP_EC_gen(P256_GROUP_NAME);
        status = key->pkey != NULL ? CJ_OK : CJ_ERR_INTERNAL;
        break;
    case CJ_JWK_ALG_EDDSA:
        cj_random_bytes(seed, sizeof(seed));
        status = ed25519_from_seed(key, seed);
        break;
    }
    if (status != CJ_OK) {
        goto out;
    }
    key->has_private = true;
    status = set_thumbprint_kid(key);
out:
    sodium_memzero(seed, sizeof(seed));
    if (status == CJ_OK) {
        *out = key;
    } else {
        cj_jwk_free(key);
    }
    return status;
}

void cj_jwk_private_bytes_free(unsigned char *bytes, size_t len)
{
    if (bytes == NULL) {
        return;
    }
    sodium_memzero(bytes, len);
    free(bytes);
}

static enum cj_status export_pkcs8(EVP_PKEY *pkey, unsigned char **out,
                                   size_t *out_len)
{
    enum cj_status status = CJ_ERR_INTERNAL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *der = NULL;
    unsigned char *cursor;
    int len;

    p8 = EVP_PKEY2PKCS8(pkey);
    if (p8 == NULL) {
        goto out;
    }
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (len <= 0) {
        goto out;
    }
    der = malloc((size_t)len);
    if (der == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    cursor = der;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &cursor) != len) {
        goto out;
    }
    *out = der;
    *out_len = (size_t)len;
    der = NULL;
    status = CJ_OK;
out:
    if (der != NULL) {
        cj_jwk_private_bytes_free(der, (size_t)len);
    }
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets */
    return status;
}

enum cj_status cj_jwk_export_private(const struct cj_jwk *key,
                                     unsigned char **out, size_t *out_len)
{
    unsigned char *seed;

    *out = NULL;
    *out_len = 0;
    if (!key->has_private) {
        return CJ_ERR_INVALID;
    }
    if (key->alg != CJ_JWK_ALG_EDDSA) {
        return export_pkcs8(key->pkey, out, out_len);
    }
    seed = malloc(CJ_JWK_ED25519_SEED_BYTES);
    if (seed == NULL) {
        return CJ_ERR_NOMEM;
    }
    crypto_sign_ed25519_sk_to_seed(seed, key->ed_sk);
    *out = seed;
    *out_len = CJ_JWK_ED25519_SEED_BYTES;
    return CJ_OK;
}

/* Checks that an OpenSSL key is of the type and size alg requires. */
static bool pkey_fits_alg(EVP_PKEY *pkey, enum cj_jwk_alg alg)
{
    char group[64];
    int bits;

    if (alg == CJ_JWK_ALG_RS256) {
        bits = EVP_PKEY_get_bits(pkey);
        return EVP_PKEY_is_a(pkey, "RSA") && bits >= CJ_JWK_RSA_MIN_BITS &&
               bits <= CJ_JWK_RSA_MAX_BITS;
    }
    if (alg == CJ_JWK_ALG_ES256) {
        return EVP_PKEY_is_a(pkey, "EC") &&
               EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) == 1 &&
               strcmp(group, P256_GROUP_NAME) == 0;
    }
    return false;
}

static enum cj_status import_pkcs8(struct cj_jwk *key, const unsigned char *in,
                                   size_t len)
{
    enum cj_status status = CJ_ERR_INVALID;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    const unsigned char *cursor = in;

    if (len > CJ_JWK_PRIVATE_MAX_BYTES) {
        goto out;
    }
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &cursor, (long)len);
    if (p8 == NULL || cursor != in + len) {
        goto out;
    }
    key->pkey = EVP_PKCS82PKEY(p8);
    if (key->pkey == NULL || !pkey_fits_alg(key->pkey, key->alg)) {
        goto out;
    }
    key->has_private = true;
    status = CJ_OK;
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    return status;
}

enum cj_status cj_jwk_import_private(enum cj_jwk_alg alg,
                                     const unsigned char *in, size_t len,
                                     struct cj_jwk **out)
{
    enum cj_status status = CJ_ERR_INVALID;
    struct cj_jwk *key = NULL;

    *out = NULL;
    if (cj_jwk_alg_name(alg) == NULL) {
        goto out;
    }
    key = jwk_alloc(alg);
    if (key == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    if (alg == CJ_JWK_ALG_EDDSA) {
        status = len == CJ_JWK_ED25519_SEED_BYTES ? ed25519_from_seed(key, in)
                                                  : CJ_ERR_INVALID;
    } else {
        status = import_pkcs8(key, in, len);
    }
    if (status == CJ_OK) {
        status = set_thumbprint_kid(key);
    }
out:
    if (status == CJ_OK) {
        *out = key;
    } else {
        cj_jwk_free(key);
    }
    return status;
}

/* Builds the public JWK object (a new reference). */
static enum cj_status jwk_to_object(const struct cj_jwk *key, json_t **out)
{
    enum cj_status status;
    struct public_members m;
    json_t *obj = NULL;
    int rc = 0;

    *out = NULL;
    status = public_members_get(key, &m);
    if (status != CJ_OK) {
        return status;
    }
    obj = json_object();
    if (obj == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    switch (key->alg) {
    case CJ_JWK_ALG_RS256:
        rc |= json_object_set_new(obj, "kty", json_string("RSA"));
        rc |= json_object_set_new(obj, "n", json_string(m.n));
        rc |= json_object_set_new(obj, "e", json_string(m.e));
        break;
    case CJ_JWK_ALG_ES256:
        rc |= json_object_set_new(obj, "kty", json_string("EC"));
        rc |= json_object_set_new(obj, "crv", json_string("P-256"));
        rc |= json_object_set_new(obj, "x", json_string(m.x));
        rc |= json_object_set_new(obj, "y", json_string(m.y));
        break;
    case CJ_JWK_ALG_EDDSA:
        rc |= json_object_set_new(obj, "kty", json_string("OKP"));
        rc |= json_object_set_new(obj, "crv", json_string("Ed25519"));
        rc |= json_object_set_new(obj, "x", json_string(m.x));
        break;
    }
    rc |= json_object_set_new(obj, "use", json_string("sig"));
    rc |=
        json_object_set_new(obj, "alg", json_string(cj_jwk_alg_name(key->alg)));
    rc |= json_object_set_new(obj, "kid", json_string(key->kid));
    if (rc != 0) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    *out = obj;
    obj = NULL;
out:
    json_decref(obj);
    public_members_clear(&m);
    return status;
}

static enum cj_status dump_json(json_t *value, char **out)
{
    *out = json_dumps(value, JSON_COMPACT);
    return *out != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

enum cj_status cj_jwk_to_json(const struct cj_jwk *key, char **out)
{
    json_t *obj = NULL;
    enum cj_status status;

    *out = NULL;
    status = jwk_to_object(key, &obj);
    if (status == CJ_OK) {
        status = dump_json(obj, out);
    }
    json_decref(obj);
    return status;
}

enum cj_status cj_jwks_to_json(const struct cj_jwk *const *keys, size_t count,
                               char **out)
{
    enum cj_status status = CJ_ERR_NOMEM;
    json_t *set = NULL;
    json_t *array = NULL;
    json_t *obj;

    *out = NULL;
    if (count > CJ_JWKS_MAX_KEYS) {
        return CJ_ERR_TOO_LARGE;
    }
    set = json_object();
    array = json_array();
    if (set == NULL || array == NULL) {
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        status = jwk_to_object(keys[i], &obj);
        if (status != CJ_OK) {
            goto out;
        }
        if (json_array_append_new(array, obj) != 0) {
            status = CJ_ERR_NOMEM;
            goto out;
        }
    }
    if (json_object_set(set, "keys", array) != 0) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    status = dump_json(set, out);
out:
    json_decref(array);
    json_decref(set);
    return status;
}

/*
 * Public JWKs and JWK Sets from JSON (RFC 7517, RFC 7518 section 6) into
 * the key objects of jwk.h, with the strict rules a verifier needs: exact
 * lengths, minimal integers, no private members, usage for signatures.
 */
#include "jwk.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

#include "crypto_util.h"
#include "jose.h"
#include "jwk_internal.h"

#define P256_COORD_BYTES 32
#define P256_GROUP_NAME  "prime256v1"
/* Uncompressed SEC 1 point: 0x04 || x || y. */
#define P256_POINT_BYTES (1 + 2 * P256_COORD_BYTES)
/* Largest RSA public exponent accepted, in bytes (2^64 - 1). */
#define RSA_E_MAX_BYTES 8

/* The generator behind ROCA moduli (CVE-2017-15361), and the small primes
 * whose residues identify them. */
#define ROCA_GENERATOR 65537
static const unsigned int roca_primes[] = {
    3,   5,   7,   11,  13,  17,  19,  23,  29,  31,  37,  41,  43,
    47,  53,  59,  61,  67,  71,  73,  79,  83,  89,  97,  101, 103,
    107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167};

struct cj_jwks {
    size_t count;
    struct cj_jwk *keys[CJ_JWKS_MAX_KEYS];
};

/* Members that only a private JWK has (RFC 7518 sections 6.2.2, 6.3.2). */
static const char *const private_members[] = {"d",  "p",  "q",   "dp",
                                              "dq", "qi", "oth", "k"};

/* Decodes a base64url member into *out; CJ_ERR_INVALID when absent. */
static enum cj_status b64_member(json_t *obj, const char *name,
                                 unsigned char **out, size_t *out_len)
{
    json_t *value = json_object_get(obj, name);

    *out = NULL;
    *out_len = 0;
    if (!json_is_string(value)) {
        return CJ_ERR_INVALID;
    }
    return cj_jose_b64url_decode(json_string_value(value),
                                 json_string_length(value), out, out_len);
}

/* Checks "use" and "key_ops" (RFC 7517 sections 4.2, 4.3). */
static enum cj_status check_usage(json_t *obj)
{
    json_t *use = json_object_get(obj, "use");
    json_t *ops = json_object_get(obj, "key_ops");
    json_t *op;
    size_t i;
    bool verify = false;

    if (use != NULL) {
        if (!json_is_string(use)) {
            return CJ_ERR_INVALID;
        }
        if (strcmp(json_string_value(use), "sig") != 0) {
            return CJ_ERR_UNIMPLEMENTED;
        }
    }
    if (ops == NULL) {
        return CJ_OK;
    }
    if (!json_is_array(ops)) {
        return CJ_ERR_INVALID;
    }
    json_array_foreach(ops, i, op)
    {
        if (!json_is_string(op)) {
            return CJ_ERR_INVALID;
        }
        if (strcmp(json_string_value(op), "verify") == 0) {
            verify = true;
        }
    }
    return verify ? CJ_OK : CJ_ERR_UNIMPLEMENTED;
}

/*
 * Decides the key's alg from kty, crv and the optional "alg" member.
 * CJ_ERR_UNIMPLEMENTED for a key type this verifier does not use.
 */
static enum cj_status pick_alg(json_t *obj, enum cj_jwk_alg *alg)
{
    const char *kty = json_string_value(json_object_get(obj, "kty"));
    json_t *crv_value = json_object_get(obj, "crv");
    json_t *alg_value = json_object_get(obj, "alg");
    const char *crv = json_string_value(crv_value);
    enum cj_jwk_alg named;

    if (kty == NULL || (crv_value != NULL && crv == NULL) ||
        (alg_value != NULL && !json_is_string(alg_value))) {
        return CJ_ERR_INVALID;
    }
    if (strcmp(kty, "RSA") == 0) {
        *alg = CJ_JWK_ALG_RS256;
    } else if (strcmp(kty, "EC") == 0) {
        if (crv == NULL) {
            return CJ_ERR_INVALID;
        }
        if (strcmp(crv, "P-256") != 0) {
            return CJ_ERR_UNIMPLEMENTED;
        }
        *alg = CJ_JWK_ALG_ES256;
    } else if (strcmp(kty, "OKP") == 0) {
        if (crv == NULL) {
            return CJ_ERR_INVALID;
        }
        if (strcmp(crv, "Ed25519") != 0) {
            return CJ_ERR_UNIMPLEMENTED;
        }
        *alg = CJ_JWK_ALG_EDDSA;
    } else {
        return CJ_ERR_UNIMPLEMENTED;
    }
    if (alg_value != NULL &&
        (!cj_jwk_alg_parse(json_string_value(alg_value), &named) ||
         named != *alg)) {
        /* RS384, PS256, ...: a key for another algorithm. */
        return CJ_ERR_UNIMPLEMENTED;
    }
    return CJ_OK;
}

static enum cj_status pkey_from_params(const char *type, OSSL_PARAM_BLD *bld,
                                       EVP_PKEY **out)
{
    enum cj_status status = CJ_ERR_INVALID;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;

    if (params == NULL || ctx == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(*out);
        *out = NULL;
        goto out;
    }
    status = CJ_OK;
out:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return status;
}

/* True when r is a power of ROCA_GENERATOR modulo the prime p. */
static bool in_generator_subgroup(BN_ULONG r, unsigned int p)
{
    unsigned long x = 1;

    for (unsigned int k = 0; k < p; k++) {
        if (x == r) {
            return true;
        }
        x = x * (ROCA_GENERATOR % p) % p;
        if (x == 1) {
            break; /* the powers started to repeat */
        }
    }
    return false;
}

/*
 * Detects moduli from the Infineon library flaw known as ROCA
 * (CVE-2017-15361): their primes are built from powers of 65537, so the
 * modulus modulo each small prime falls in the subgroup 65537 generates.
 * A random modulus passes all these tests with negligible probability.
 */
static bool rsa_modulus_is_roca(const BIGNUM *n)
{
    for (size_t i = 0; i < sizeof(roca_primes) / sizeof(roca_primes[0]); i++) {
        BN_ULONG r = BN_mod_word(n, roca_primes[i]);

        if (r == (BN_ULONG)-1 || !in_generator_subgroup(r, roca_primes[i])) {
            return false;
        }
    }
    return true;
}

static enum cj_status rsa_from_object(json_t *obj, struct cj_jwk *key)
{
    enum cj_status status;
    unsigned char *n = NULL;
    unsigned char *e = NULL;
    size_t n_len;
    size_t e_len;
    BIGNUM *bn_n = NULL;
    BIGNUM *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    int bits;

    status = b64_member(obj, "n", &n, &n_len);
    if (status == CJ_OK) {
        status = b64_member(obj, "e", &e, &e_len);
    }
    if (status != CJ_OK) {
        goto out;
    }
    status = CJ_ERR_INVALID;
    /* Base64urlUInt is minimal: no leading zero octet (RFC 7518 2). */
    if (n_len == 0 || n[0] == 0 || e_len == 0 || e[0] == 0 ||
        e_len > RSA_E_MAX_BYTES || (e[e_len - 1] & 1) == 0) {
        goto out;
    }
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    bits = BN_num_bits(bn_n);
    if (bits < CJ_JWK_RSA_MIN_BITS || bits > CJ_JWK_RSA_MAX_BITS ||
        BN_is_one(bn_e) || rsa_modulus_is_roca(bn_n)) {
        goto out;
    }
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    status = pkey_from_params("RSA", bld, &key->pkey);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return status;
}

static enum cj_status ec_from_object(json_t *obj, struct cj_jwk *key)
{
    enum cj_status status;
    unsigned char *x = NULL;
    unsigned char *y = NULL;
    size_t x_len;
    size_t y_len;
    unsigned char point[P256_POINT_BYTES];
    OSSL_PARAM_BLD *bld = NULL;

    status = b64_member(obj, "x", &x, &x_len);
    if (status == CJ_OK) {
        status = b64_member(obj, "y", &y, &y_len);
    }
    if (status != CJ_OK) {
        goto out;
    }
    status = CJ_ERR_INVALID;
    if (x_len != P256_COORD_BYTES || y_len != P256_COORD_BYTES) {
        goto out;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, P256_COORD_BYTES);
    memcpy(point + 1 + P256_COORD_BYTES, y, P256_COORD_BYTES);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        P256_GROUP_NAME, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                         sizeof(point)) != 1) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    /* Rejects a point that is not on the curve. */
    status = pkey_from_params("EC", bld, &key->pkey);
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return status;
}

static enum cj_status okp_from_object(json_t *obj, struct cj_jwk *key)
{
    unsigned char *x = NULL;
    size_t x_len;
    enum cj_status status = b64_member(obj, "x", &x, &x_len);

    if (status == CJ_OK) {
        if (x_len == sizeof(key->ed_pk)) {
            memcpy(key->ed_pk, x, x_len);
        } else {
            status = CJ_ERR_INVALID;
        }
    }
    free(x);
    return status;
}

static enum cj_status jwk_from_object(json_t *obj, struct cj_jwk **out)
{
    enum cj_status status;
    enum cj_jwk_alg alg;
    struct cj_jwk *key = NULL;
    json_t *kid;

    *out = NULL;
    if (!json_is_object(obj)) {
        return CJ_ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]);
         i++) {
        if (json_object_get(obj, private_members[i]) != NULL) {
            return CJ_ERR_INVALID;
        }
    }
    status = pick_alg(obj, &alg);
    if (status == CJ_OK) {
        status = check_usage(obj);
    }
    if (status != CJ_OK) {
        return status;
    }
    if (cj_crypto_init() != CJ_OK) {
        return CJ_ERR_INTERNAL;
    }
    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        return CJ_ERR_NOMEM;
    }
    key->alg = alg;
    if (alg == CJ_JWK_ALG_RS256) {
        status = rsa_from_object(obj, key);
    } else if (alg == CJ_JWK_ALG_ES256) {
        status = ec_from_object(obj, key);
    } else {
        status = okp_from_object(obj, key);
    }
    if (status != CJ_OK) {
        goto out;
    }
    kid = json_object_get(obj, "kid");
    if (kid == NULL) {
        status = cj_jwk_thumbprint(key, key->kid);
    } else if (json_is_string(kid) &&
               strlen(json_string_value(kid)) == json_string_length(kid)) {
        status = cj_jwk_set_kid(key, json_string_value(kid));
    } else {
        status = CJ_ERR_INVALID;
    }
out:
    if (status == CJ_OK) {
        *out = key;
    } else {
        cj_jwk_free(key);
    }
    return status;
}

enum cj_status cj_jwk_from_json(const char *json, size_t len,
                                struct cj_jwk **out)
{
    json_t *obj;
    enum cj_status status;

    *out = NULL;
    if (len > CJ_JWK_JSON_MAX_BYTES) {
        return CJ_ERR_TOO_LARGE;
    }
    obj = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (obj == NULL) {
        return CJ_ERR_INVALID;
    }
    status = jwk_from_object(obj, out);
    json_decref(obj);
    return status;
}

void cj_jwks_free(struct cj_jwks *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->count; i++) {
        cj_jwk_free(set->keys[i]);
    }
    free(set);
}

size_t cj_jwks_count(const struct cj_jwks *set)
{
    return set->count;
}

const struct cj_jwk *cj_jwks_find(const struct cj_jwks *set, const char *kid)
{
    if (kid == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->keys[i]->kid, kid) == 0) {
            return set->keys[i];
        }
    }
    return NULL;
}

enum cj_status cj_jwks_parse(const char *json, size_t len, struct cj_jwks **out)
{
    enum cj_status status = CJ_ERR_INVALID;
    struct cj_jwks *set = NULL;
    json_t *root = NULL;
    json_t *keys;
    json_t *item;
    struct cj_jwk *key;
    size_t i;

    *out = NULL;
    if (len > CJ_JWKS_JSON_MAX_BYTES) {
        return CJ_ERR_TOO_LARGE;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    keys = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(keys)) {
        goto out;
    }
    if (json_array_size(keys) > CJ_JWKS_MAX_KEYS) {
        status = CJ_ERR_TOO_LARGE;
        goto out;
    }
    set = calloc(1, sizeof(*set));
    if (set == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    json_array_foreach(keys, i, item)
    {
        status = jwk_from_object(item, &key);
        if (status == CJ_ERR_UNIMPLEMENTED) {
            continue; /* RFC 7517 section 5: ignore keys we cannot use */
        }
        if (status != CJ_OK) {
            goto out;
        }
        if (cj_jwks_find(set, key->kid) != NULL) {
            cj_jwk_free(key);
            status = CJ_ERR_INVALID;
            goto out;
        }
        set->keys[set->count++] = key;
    }
    status = CJ_OK;
out:
    json_decref(root);
    if (status == CJ_OK) {
        *out = set;
    } else {
        cj_jwks_free(set);
    }
    return status;
}

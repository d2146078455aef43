/*
 * Tests for JWS compact serialization: the RFC 7520 and RFC 8037 examples
 * byte for byte, Wycheproof verification vectors, the ES256 DER
 * conversion and every header rule of cj_jws_decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>

#include "jose.h"
#include "jose_helper.h"
#include "jwk.h"
#include "jws.h"
#include "hmac.h"
#include "vectors_helper.h"

/* RFC 8037 appendix A.1 (the RFC 8032 section 7.1 TEST 1 key) and A.4. */
static const char ED25519_SEED_HEX[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char ED25519_PUBLIC_JWK[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char ED25519_COMPACT[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7"
    "sVvpAr_MuM0KAg";

struct wycheproof_count {
    size_t tests;
    size_t mismatches;
    size_t skipped;
};

static struct cj_jwk *import_seed_hex(const char *hex)
{
    size_t len = 0;
    unsigned char *seed = hex_decode(hex, &len);
    struct cj_jwk *key = NULL;

    assert_non_null(seed);
    assert_int_equal(cj_jwk_import_private(CJ_JWK_ALG_EDDSA, seed, len, &key),
                     CJ_OK);
    free(seed);
    return key;
}

static struct cj_jwk *public_from_json(const char *json)
{
    struct cj_jwk *key = NULL;

    assert_int_equal(cj_jwk_from_json(json, strlen(json), &key), CJ_OK);
    return key;
}

static enum cj_jose_reason decode_reason(const char *token)
{
    struct cj_jws_decoded jws;
    enum cj_jose_reason reason = CJ_JOSE_OK;
    enum cj_status status = cj_jws_decode(token, strlen(token), &jws, &reason);

    if (status == CJ_OK) {
        cj_jws_decoded_clear(&jws);
    } else {
        assert_null(jws.header);
        assert_int_equal(status, CJ_ERR_UNAUTHENTICATED);
    }
    return reason;
}

static enum cj_jose_reason header_reason(const char *header)
{
    char *token = unsigned_token(header, "{}", "AAAA");
    enum cj_jose_reason reason = decode_reason(token);

    free(token);
    return reason;
}

static void test_ed25519_rfc8037_signs_byte_for_byte(void **state)
{
    static const char header[] = "{\"alg\":\"EdDSA\"}";
    static const char payload[] = "Example of Ed25519 signing";
    struct cj_jwk *key = import_seed_hex(ED25519_SEED_HEX);
    struct cj_jwk *pub = public_from_json(ED25519_PUBLIC_JWK);
    char *token = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;
    enum cj_jose_reason reason;

    (void)state;
    assert_int_equal(cj_jws_sign_compact(key, header, strlen(header),
                                         (const unsigned char *)payload,
                                         strlen(payload), &token),
                     CJ_OK);
    assert_string_equal(token, ED25519_COMPACT);
    assert_int_equal(
        cj_jws_verify(pub, token, strlen(token), &out, &out_len, &reason),
        CJ_OK);
    assert_int_equal(reason, CJ_JOSE_OK);
    assert_int_equal(out_len, strlen(payload));
    assert_memory_equal(out, payload, out_len);
    free(out);
    free(token);
    cj_jwk_free(pub);
    cj_jwk_free(key);
}

static void test_ed25519_rfc8037_vector_file_verifies(void **state)
{
    bool have = vectors_available("test_jws rfc8037");
    json_t *root;
    json_t *signing;
    char *jwk_text;
    struct cj_jwk *key;
    struct cj_jwk *pub;
    const char *header;
    const char *payload;
    char *token = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;
    enum cj_jose_reason reason;

    (void)state;
    if (!have) {
        skip();
    }
    root = load_vector_file("jose/rfc8037-ed25519.json");
    assert_non_null(root);
    signing = json_object_get(root, "signing");
    key = import_seed_hex(json_string_value(
        json_object_get(json_object_get(root, "private_key"), "d_hex")));
    jwk_text = json_dumps(
        json_object_get(json_object_get(root, "public_key"), "jwk"), 0);
    pub = public_from_json(jwk_text);
    header =
        json_string_value(json_object_get(signing, "protected_header_json"));
    payload = json_string_value(json_object_get(signing, "payload"));
    assert_int_equal(cj_jws_sign_compact(key, header, strlen(header),
                                         (const unsigned char *)payload,
                                         strlen(payload), &token),
                     CJ_OK);
    assert_string_equal(token,
                        json_string_value(json_object_get(signing, "compact")));
    assert_int_equal(
        cj_jws_verify(pub, token, strlen(token), &out, &out_len, &reason),
        CJ_OK);
    assert_memory_equal(out, payload, out_len);
    printf("rfc8037 ed25519: signature reproduced byte for byte, verified\n");
    free(out);
    free(token);
    free(jwk_text);
    cj_jwk_free(pub);
    cj_jwk_free(key);
    json_decref(root);
}

static BIGNUM *jwk_bn(json_t *jwk, const char *name)
{
    json_t *value = json_object_get(jwk, name);
    unsigned char *bytes = NULL;
    size_t len = 0;
    BIGNUM *bn;

    assert_true(json_is_string(value));
    assert_int_equal(cj_jose_b64url_decode(json_string_value(value),
                                           json_string_length(value), &bytes,
                                           &len),
                     CJ_OK);
    bn = BN_bin2bn(bytes, (int)len, NULL);
    assert_non_null(bn);
    free(bytes);
    return bn;
}

/*
 * Turns an RSA private JWK into PKCS#8 DER with OpenSSL, so that the key
 * enters cerrojo the way kms stores keys.
 */
static unsigned char *rsa_jwk_to_pkcs8(json_t *jwk, int *len)
{
    static const char *const members[] = {"n", "e",  "d",  "p",
                                          "q", "dp", "dq", "qi"};
    static const char *const params[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bns[8];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *ossl_params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    PKCS8_PRIV_KEY_INFO *p8;
    unsigned char *der = NULL;

    assert_non_null(bld);
    for (size_t i = 0; i < 8; i++) {
        bns[i] = jwk_bn(jwk, members[i]);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, params[i], bns[i]), 1);
    }
    ossl_params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(ossl_params);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, ossl_params), 1);
    p8 = EVP_PKEY2PKCS8(pkey);
    assert_non_null(p8);
    *len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(*len > 0);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(ossl_params);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < 8; i++) {
        BN_clear_free(bns[i]);
    }
    return der;
}

static char *public_jwk_text(json_t *jwk)
{
    json_t *copy = json_deep_copy(jwk);
    char *text;
    const char *private_names[] = {"d", "p", "q", "dp", "dq", "qi"};

    for (size_t i = 0; i < 6; i++) {
        json_object_del(copy, private_names[i]);
    }
    text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return text;
}

static void test_rs256_rfc7520_signs_byte_for_byte(void **state)
{
    bool have = vectors_available("test_jws rfc7520");
    json_t *root;
    json_t *input;
    json_t *jwk;
    unsigned char *der;
    int der_len = 0;
    struct cj_jwk *key = NULL;
    struct cj_jwk *pub;
    char *pub_text;
    unsigned char *header = NULL;
    size_t header_len = 0;
    const char *protected_b64;
    const char *payload;
    const char *expected;
    char *token = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;
    enum cj_jose_reason reason;

    (void)state;
    if (!have) {
        skip();
    }
    root = load_vector_file("jose/rfc7520/4_1.rsa_v15_signature.json");
    assert_non_null(root);
    input = json_object_get(root, "input");
    jwk = json_object_get(input, "key");
    der = rsa_jwk_to_pkcs8(jwk, &der_len);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_RS256, der, (size_t)der_len, &key),
        CJ_OK);
    OPENSSL_free(der);
    assert_int_equal(
        cj_jwk_set_kid(key, json_string_value(json_object_get(jwk, "kid"))),
        CJ_OK);
    protected_b64 = json_string_value(
        json_object_get(json_object_get(root, "signing"), "protected_b64u"));
    assert_int_equal(cj_jose_b64url_decode(protected_b64, strlen(protected_b64),
                                           &header, &header_len),
                     CJ_OK);
    payload = json_string_value(json_object_get(input, "payload"));
    assert_int_equal(cj_jws_sign_compact(key, (const char *)header, header_len,
                                         (const unsigned char *)payload,
                                         strlen(payload), &token),
                     CJ_OK);
    expected = json_string_value(
        json_object_get(json_object_get(root, "output"), "compact"));
    assert_string_equal(token, expected);

    pub_text = public_jwk_text(jwk);
    pub = public_from_json(pub_text);
    assert_string_equal(cj_jwk_get_kid(pub), "bilbo.baggins@hobbiton.example");
    assert_int_equal(
        cj_jws_verify(pub, expected, strlen(expected), &out, &out_len, &reason),
        CJ_OK);
    assert_memory_equal(out, payload, out_len);
    printf("rfc7520 4.1 rs256: signature reproduced byte for byte, "
           "verified\n");
    free(out);
    free(pub_text);
    free(header);
    free(token);
    cj_jwk_free(pub);
    cj_jwk_free(key);
    json_decref(root);
}

static void test_hs256_rfc7520_mac_matches_and_is_rejected(void **state)
{
    bool have = vectors_available("test_jws rfc7520 hs256");
    json_t *root;
    const char *k;
    const char *compact;
    const char *last_dot;
    unsigned char *key = NULL;
    size_t key_len = 0;
    unsigned char mac[32];
    char *mac_b64 = NULL;

    (void)state;
    if (!have) {
        skip();
    }
    root = load_vector_file(
        "jose/rfc7520/4_4.hmac-sha2_integrity_protection.json");
    assert_non_null(root);
    k = json_string_value(json_object_get(
        json_object_get(json_object_get(root, "input"), "key"), "k"));
    compact = json_string_value(
        json_object_get(json_object_get(root, "output"), "compact"));
    assert_int_equal(cj_jose_b64url_decode(k, strlen(k), &key, &key_len),
                     CJ_OK);
    last_dot = strrchr(compact, '.');
    /* HS256 is checked with the HMAC primitive only: tokens never use it. */
    assert_int_equal(cj_hmac_sha256(mac, key, key_len,
                                    (const unsigned char *)compact,
                                    (size_t)(last_dot - compact)),
                     CJ_OK);
    assert_int_equal(cj_jose_b64url_encode(mac, sizeof(mac), &mac_b64), CJ_OK);
    assert_string_equal(mac_b64, last_dot + 1);
    assert_int_equal(decode_reason(compact), CJ_JOSE_ALG_HMAC);
    printf("rfc7520 4.4 hs256: mac reproduced, token rejected as alg_hmac\n");
    free(mac_b64);
    free(key);
    json_decref(root);
}

static void test_ps384_and_es512_examples_are_rejected(void **state)
{
    bool have = vectors_available("test_jws rfc7520 ps384/es512");
    const char *files[] = {"jose/rfc7520/4_2.rsa-pss_signature.json",
                           "jose/rfc7520/4_3.ecdsa_signature.json"};

    (void)state;
    if (!have) {
        skip();
    }
    for (size_t i = 0; i < 2; i++) {
        json_t *root = load_vector_file(files[i]);
        const char *compact;

        assert_non_null(root);
        compact = json_string_value(
            json_object_get(json_object_get(root, "output"), "compact"));
        assert_int_equal(decode_reason(compact), CJ_JOSE_ALG_UNSUPPORTED);
        json_decref(root);
    }
}

/* Compares one Wycheproof result with ours; acceptable matches both. */
static void wycheproof_tally(struct wycheproof_count *count,
                             const char *expected, bool ours_valid,
                             const char *file, const char *tc_id)
{
    bool want_valid = strcmp(expected, "valid") == 0;

    count->tests++;
    if (strcmp(expected, "acceptable") == 0) {
        return;
    }
    if (want_valid != ours_valid) {
        count->mismatches++;
        fprintf(stderr, "wycheproof %s: tcId %s expected %s, got %s\n", file,
                tc_id, expected, ours_valid ? "valid" : "invalid");
    }
}

static const char *tc_id_text(json_t *test, char buf[32])
{
    snprintf(buf, 32, "%lld",
             (long long)json_integer_value(json_object_get(test, "tcId")));
    return buf;
}

/*
 * Returns a group's public key as JWK text (malloc): its JWK member, or
 * for the few P-256 groups without one, a JWK built from the uncompressed
 * point. NULL when neither exists.
 */
static char *group_jwk_text(json_t *group, const char *jwk_member)
{
    json_t *jwk = json_object_get(group, jwk_member);
    const char *point_hex = json_string_value(
        json_object_get(json_object_get(group, "publicKey"), "uncompressed"));
    unsigned char *point;
    size_t len = 0;
    char *x = NULL;
    char *y = NULL;
    char *text = NULL;

    if (jwk != NULL) {
        return json_dumps(jwk, JSON_COMPACT);
    }
    if (point_hex == NULL) {
        return NULL;
    }
    point = hex_decode(point_hex, &len);
    assert_non_null(point);
    assert_int_equal(len, 65);
    assert_int_equal(cj_jose_b64url_encode(point + 1, 32, &x), CJ_OK);
    assert_int_equal(cj_jose_b64url_encode(point + 33, 32, &y), CJ_OK);
    assert_true(asprintf(&text,
                         "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                         "\"y\":\"%s\"}",
                         x, y) > 0);
    free(point);
    free(x);
    free(y);
    return text;
}

/* Runs a Wycheproof raw-signature file whose groups carry a JWK. */
static void run_wycheproof_raw(const char *file, const char *jwk_member,
                               const char *label)
{
    bool have = vectors_available(label);
    json_t *root;
    json_t *group;
    json_t *test;
    size_t gi;
    size_t ti;
    struct wycheproof_count count = {0};

    if (!have) {
        skip();
    }
    root = load_vector_file(file);
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        char *jwk_text = group_jwk_text(group, jwk_member);
        struct cj_jwk *key = NULL;

        if (jwk_text == NULL ||
            cj_jwk_from_json(jwk_text, strlen(jwk_text), &key) != CJ_OK) {
            key = NULL; /* every test of the group must then be invalid */
        }
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            size_t msg_len = 0;
            size_t sig_len = 0;
            unsigned char *msg = hex_decode(
                json_string_value(json_object_get(test, "msg")), &msg_len);
            unsigned char *sig = hex_decode(
                json_string_value(json_object_get(test, "sig")), &sig_len);
            bool ours =
                key != NULL && msg != NULL && sig != NULL &&
                cj_jws_verify_raw(key, msg, msg_len, sig, sig_len) == CJ_OK;
            char id[32];

            wycheproof_tally(&count,
                             json_string_value(json_object_get(test, "result")),
                             ours, file, tc_id_text(test, id));
            free(msg);
            free(sig);
        }
        cj_jwk_free(key);
        free(jwk_text);
    }
    printf("wycheproof %s: %zu tests, %zu mismatches\n", label, count.tests,
           count.mismatches);
    assert_true(count.tests > 0);
    assert_int_equal(count.mismatches, 0);
    json_decref(root);
}

static void test_wycheproof_rsa_2048_sha256(void **state)
{
    (void)state;
    run_wycheproof_raw("wycheproof/rsa_signature_2048_sha256_test.json",
                       "keyJwk", "rsa_signature_2048_sha256");
}

static void test_wycheproof_ecdsa_p256_p1363(void **state)
{
    (void)state;
    run_wycheproof_raw("wycheproof/ecdsa_secp256r1_sha256_p1363_test.json",
                       "publicKeyJwk", "ecdsa_secp256r1_sha256_p1363");
}

static void test_wycheproof_ed25519(void **state)
{
    (void)state;
    run_wycheproof_raw("wycheproof/ed25519_test.json", "publicKeyJwk",
                       "ed25519");
}

/*
 * A json_web_signature group applies when its public key is of a type this
 * verifier supports: RSA, EC P-256 or OKP Ed25519, with no alg or one of
 * RS256, ES256, EdDSA.
 */
static bool jws_group_applies(json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    json_t *alg_value = json_object_get(jwk, "alg");
    enum cj_jwk_alg alg;

    if (kty == NULL) {
        /* Keys without kty (the wrong-use cases) are rejected by us. */
        return json_object_get(jwk, "n") != NULL ||
               json_object_get(jwk, "x") != NULL;
    }
    if (alg_value != NULL &&
        !cj_jwk_alg_parse(json_string_value(alg_value), &alg)) {
        return false;
    }
    return strcmp(kty, "RSA") == 0 ||
           (strcmp(kty, "EC") == 0 && crv != NULL &&
            strcmp(crv, "P-256") == 0) ||
           (strcmp(kty, "OKP") == 0 && crv != NULL &&
            strcmp(crv, "Ed25519") == 0);
}

static bool jws_verifies(const struct cj_jwk *key, const char *token)
{
    unsigned char *payload = NULL;
    size_t payload_len = 0;
    enum cj_jose_reason reason;
    bool ok = cj_jws_verify(key, token, strlen(token), &payload, &payload_len,
                            &reason) == CJ_OK;

    free(payload);
    return ok;
}

static void test_wycheproof_json_web_signature(void **state)
{
    bool have = vectors_available("json_web_signature");
    const char *file = "wycheproof/json_web_signature_test.json";
    json_t *root;
    json_t *group;
    json_t *test;
    size_t gi;
    size_t ti;
    struct wycheproof_count count = {0};

    (void)state;
    if (!have) {
        skip();
    }
    root = load_vector_file(file);
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        json_t *jwk = json_object_get(group, "public");
        char *jwk_text;
        struct cj_jwk *key = NULL;

        if (jwk == NULL || !jws_group_applies(jwk)) {
            count.skipped += json_array_size(json_object_get(group, "tests"));
            continue;
        }
        jwk_text = json_dumps(jwk, JSON_COMPACT);
        if (cj_jwk_from_json(jwk_text, strlen(jwk_text), &key) != CJ_OK) {
            key = NULL;
        }
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            const char *token = json_string_value(json_object_get(test, "jws"));
            char id[32];

            wycheproof_tally(&count,
                             json_string_value(json_object_get(test, "result")),
                             key != NULL && jws_verifies(key, token), file,
                             tc_id_text(test, id));
        }
        cj_jwk_free(key);
        free(jwk_text);
    }
    printf("wycheproof json_web_signature: %zu tests, %zu mismatches "
           "(%zu not applicable: HMAC, PS*, RS384/512, ES512 keys)\n",
           count.tests, count.mismatches, count.skipped);
    assert_true(count.tests > 0);
    assert_int_equal(count.mismatches, 0);
    json_decref(root);
}

/* Verifies a compact JWS against a set, picking the key by kid. */
static bool jws_verifies_with_set(const struct cj_jwks *set, const char *token)
{
    struct cj_jws_decoded jws;
    enum cj_jose_reason reason;
    const struct cj_jwk *key;
    bool ok = false;

    if (cj_jws_decode(token, strlen(token), &jws, &reason) != CJ_OK) {
        return false;
    }
    key = cj_jwks_find(set, jws.kid);
    if (key != NULL) {
        ok = cj_jws_check_signature(&jws, key, &reason) == CJ_OK;
    }
    cj_jws_decoded_clear(&jws);
    return ok;
}

/*
 * json_web_key groups apply when they carry a public key set; groups with
 * only symmetric (private) sets test HMAC, which cerrojo never accepts.
 */
static void test_wycheproof_json_web_key(void **state)
{
    bool have = vectors_available("json_web_key");
    const char *file = "wycheproof/json_web_key_test.json";
    json_t *root;
    json_t *group;
    json_t *test;
    size_t gi;
    size_t ti;
    struct wycheproof_count count = {0};

    (void)state;
    if (!have) {
        skip();
    }
    root = load_vector_file(file);
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        json_t *public_set = json_object_get(group, "public");
        char *text;
        struct cj_jwks *set = NULL;

        if (public_set == NULL) {
            count.skipped += json_array_size(json_object_get(group, "tests"));
            continue;
        }
        text = json_dumps(public_set, JSON_COMPACT);
        if (cj_jwks_parse(text, strlen(text), &set) != CJ_OK) {
            set = NULL;
        }
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            const char *token = json_string_value(json_object_get(test, "jws"));
            char id[32];

            wycheproof_tally(&count,
                             json_string_value(json_object_get(test, "result")),
                             set != NULL && jws_verifies_with_set(set, token),
                             file, tc_id_text(test, id));
        }
        cj_jwks_free(set);
        free(text);
    }
    printf("wycheproof json_web_key: %zu tests, %zu mismatches "
           "(%zu not applicable: symmetric key sets)\n",
           count.tests, count.mismatches, count.skipped);
    assert_true(count.tests > 0);
    assert_int_equal(count.mismatches, 0);
    json_decref(root);
}

#define SHARED_KEY_THREADS 4
#define SHARED_KEY_ROUNDS  25

/* Signs and verifies with one shared key; returns arg on a failure. */
static void *sign_verify_rounds(void *arg)
{
    const struct cj_jwk *key = arg;

    for (int i = 0; i < SHARED_KEY_ROUNDS; i++) {
        char *token = NULL;
        unsigned char *out = NULL;
        size_t out_len = 0;
        enum cj_jose_reason reason;
        bool ok = cj_jws_sign(key, NULL, (const unsigned char *)"t", 1,
                              &token) == CJ_OK &&
                  cj_jws_verify(key, token, strlen(token), &out, &out_len,
                                &reason) == CJ_OK &&
                  out_len == 1;

        free(out);
        free(token);
        if (!ok) {
            return arg;
        }
    }
    return NULL;
}

static void test_shared_key_works_across_threads(void **state)
{
    const enum cj_jwk_alg algs[] = {CJ_JWK_ALG_RS256, CJ_JWK_ALG_ES256,
                                    CJ_JWK_ALG_EDDSA};

    (void)state;
    for (size_t a = 0; a < 3; a++) {
        struct cj_jwk *key = NULL;
        pthread_t threads[SHARED_KEY_THREADS];
        void *result;

        assert_int_equal(cj_jwk_generate(algs[a], &key), CJ_OK);
        for (int i = 0; i < SHARED_KEY_THREADS; i++) {
            assert_int_equal(
                pthread_create(&threads[i], NULL, sign_verify_rounds, key), 0);
        }
        for (int i = 0; i < SHARED_KEY_THREADS; i++) {
            assert_int_equal(pthread_join(threads[i], &result), 0);
            assert_null(result);
        }
        cj_jwk_free(key);
    }
}

static void test_sign_verify_round_trip_each_alg(void **state)
{
    const enum cj_jwk_alg algs[] = {CJ_JWK_ALG_RS256, CJ_JWK_ALG_ES256,
                                    CJ_JWK_ALG_EDDSA};
    static const char payload[] = "{\"hello\":\"world\"}";

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cj_jwk *key = NULL;
        char *token = NULL;
        unsigned char *out = NULL;
        size_t out_len = 0;
        enum cj_jose_reason reason;

        assert_int_equal(cj_jwk_generate(algs[i], &key), CJ_OK);
        assert_int_equal(cj_jws_sign(key, "JOSE",
                                     (const unsigned char *)payload,
                                     strlen(payload), &token),
                         CJ_OK);
        assert_int_equal(
            cj_jws_verify(key, token, strlen(token), &out, &out_len, &reason),
            CJ_OK);
        assert_int_equal(out_len, strlen(payload));
        assert_memory_equal(out, payload, out_len);
        free(out);
        /* Flip one payload character: the signature no longer holds. */
        token[strchr(token, '.') - token + 1] ^= 0x01;
        assert_int_equal(
            cj_jws_verify(key, token, strlen(token), &out, &out_len, &reason),
            CJ_ERR_UNAUTHENTICATED);
        assert_true(reason == CJ_JOSE_BAD_SIGNATURE ||
                    reason == CJ_JOSE_BAD_BASE64);
        assert_null(out);
        free(token);
        cj_jwk_free(key);
    }
}

static void test_verify_rejects_key_of_other_alg(void **state)
{
    struct cj_jwk *ec = NULL;
    struct cj_jwk *ed = NULL;
    char *token = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;
    enum cj_jose_reason reason;

    (void)state;
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_ES256, &ec), CJ_OK);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &ed), CJ_OK);
    assert_int_equal(
        cj_jws_sign(ec, NULL, (const unsigned char *)"x", 1, &token), CJ_OK);
    assert_int_equal(
        cj_jws_verify(ed, token, strlen(token), &out, &out_len, &reason),
        CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(reason, CJ_JOSE_ALG_MISMATCH);
    free(token);
    cj_jwk_free(ec);
    cj_jwk_free(ed);
}

static void test_sign_compact_rejects_header_of_other_alg(void **state)
{
    static const char header[] = "{\"alg\":\"RS256\"}";
    struct cj_jwk *ed = import_seed_hex(ED25519_SEED_HEX);
    char *token = NULL;

    (void)state;
    assert_int_equal(cj_jws_sign_compact(ed, header, strlen(header),
                                         (const unsigned char *)"x", 1, &token),
                     CJ_ERR_INVALID);
    assert_null(token);
    cj_jwk_free(ed);
}

static void test_sign_raw_needs_private_key(void **state)
{
    struct cj_jwk *pub = public_from_json(ED25519_PUBLIC_JWK);
    unsigned char sig[CJ_JWS_SIG_MAX_BYTES];
    size_t sig_len = 1;

    (void)state;
    assert_int_equal(
        cj_jws_sign_raw(pub, (const unsigned char *)"x", 1, sig, &sig_len),
        CJ_ERR_INVALID);
    assert_int_equal(sig_len, 0);
    cj_jwk_free(pub);
}

static void test_es256_der_round_trip_is_minimal(void **state)
{
    unsigned char raw[64];
    unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES];
    unsigned char back[64];
    size_t der_len = 0;

    (void)state;
    /* r has its high bit set (needs a 0x00 pad); s has leading zeros. */
    memset(raw, 0, sizeof(raw));
    memset(raw, 0xff, 32);
    raw[63] = 0x05;
    assert_int_equal(cj_jws_es256_raw_to_der(raw, 64, der, &der_len), CJ_OK);
    assert_int_equal(der_len, 2 + 2 + 33 + 2 + 1);
    assert_int_equal(der[3], 33);
    assert_int_equal(der[4], 0x00);
    assert_int_equal(der[der_len - 2], 1);
    assert_int_equal(cj_jws_es256_der_to_raw(der, der_len, back), CJ_OK);
    assert_memory_equal(raw, back, 64);
}

static void test_es256_der_rejects_non_canonical_forms(void **state)
{
    /* SEQUENCE { INTEGER 1, INTEGER 1 } is the canonical base. */
    const unsigned char ok[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    const unsigned char padded[] = {0x30, 0x07, 0x02, 0x02, 0x00,
                                    0x01, 0x02, 0x01, 0x01};
    const unsigned char negative[] = {0x30, 0x06, 0x02, 0x01,
                                      0x81, 0x02, 0x01, 0x01};
    const unsigned char zero[] = {0x30, 0x06, 0x02, 0x01,
                                  0x00, 0x02, 0x01, 0x01};
    const unsigned char trailing[] = {0x30, 0x06, 0x02, 0x01, 0x01,
                                      0x02, 0x01, 0x01, 0x00};
    const unsigned char bad_seq_len[] = {0x30, 0x07, 0x02, 0x01,
                                         0x01, 0x02, 0x01, 0x01};
    const unsigned char long_form[] = {0x30, 0x81, 0x06, 0x02, 0x01,
                                       0x01, 0x02, 0x01, 0x01};
    const unsigned char wrong_tag[] = {0x30, 0x06, 0x03, 0x01,
                                       0x01, 0x02, 0x01, 0x01};
    unsigned char raw[64];

    (void)state;
    assert_int_equal(cj_jws_es256_der_to_raw(ok, sizeof(ok), raw), CJ_OK);
    assert_int_equal(raw[31], 1);
    assert_int_equal(raw[63], 1);
    assert_int_equal(cj_jws_es256_der_to_raw(padded, sizeof(padded), raw),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_der_to_raw(negative, sizeof(negative), raw),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_der_to_raw(zero, sizeof(zero), raw),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_der_to_raw(trailing, sizeof(trailing), raw),
                     CJ_ERR_INVALID);
    assert_int_equal(
        cj_jws_es256_der_to_raw(bad_seq_len, sizeof(bad_seq_len), raw),
        CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_der_to_raw(long_form, sizeof(long_form), raw),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_der_to_raw(wrong_tag, sizeof(wrong_tag), raw),
                     CJ_ERR_INVALID);
}

static void test_es256_raw_rejects_wrong_length_and_zero(void **state)
{
    unsigned char raw[65];
    unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES];
    size_t der_len = 0;
    struct cj_jwk *key = NULL;

    (void)state;
    memset(raw, 0x11, sizeof(raw));
    assert_int_equal(cj_jws_es256_raw_to_der(raw, 63, der, &der_len),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jws_es256_raw_to_der(raw, 65, der, &der_len),
                     CJ_ERR_INVALID);
    memset(raw, 0, 32);
    assert_int_equal(cj_jws_es256_raw_to_der(raw, 64, der, &der_len),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_ES256, &key), CJ_OK);
    assert_int_equal(
        cj_jws_verify_raw(key, (const unsigned char *)"m", 1, raw, 65),
        CJ_ERR_CRYPTO);
    assert_int_equal(
        cj_jws_verify_raw(key, (const unsigned char *)"m", 1, raw, 64),
        CJ_ERR_CRYPTO);
    cj_jwk_free(key);
}

static void test_decode_rejects_oversize_token(void **state)
{
    size_t len = CJ_JOSE_TOKEN_MAX_BYTES + 1;
    char *token = malloc(len + 1);
    struct cj_jws_decoded jws;
    enum cj_jose_reason reason;

    (void)state;
    memset(token, 'A', len);
    token[10] = '.';
    token[20] = '.';
    token[len] = '\0';
    assert_int_equal(cj_jws_decode(token, len, &jws, &reason),
                     CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(reason, CJ_JOSE_TOO_LARGE);
    free(token);
}

static void test_decode_rejects_wrong_segment_count(void **state)
{
    (void)state;
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9.e30"),
                     CJ_JOSE_BAD_SEGMENTS);
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9.e30.AAAA.AAAA"),
                     CJ_JOSE_BAD_SEGMENTS);
    assert_int_equal(decode_reason(""), CJ_JOSE_BAD_SEGMENTS);
    assert_int_equal(decode_reason("no-dots-at-all"), CJ_JOSE_BAD_SEGMENTS);
}

static void test_decode_rejects_bad_base64url(void **state)
{
    (void)state;
    /* Padding, standard-alphabet characters and non-canonical bits. */
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9=.e30.AAAA"),
                     CJ_JOSE_BAD_BASE64);
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9.e3+/.AAAA"),
                     CJ_JOSE_BAD_BASE64);
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9.e31.AAAA"),
                     CJ_JOSE_BAD_BASE64);
    assert_int_equal(decode_reason("eyJhbGciOiJFZERTQSJ9.e30.A"),
                     CJ_JOSE_BAD_BASE64);
}

static void test_decode_rejects_bad_header_json(void **state)
{
    (void)state;
    assert_int_equal(header_reason("[\"alg\",\"EdDSA\"]"),
                     CJ_JOSE_BAD_HEADER_JSON);
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\""),
                     CJ_JOSE_BAD_HEADER_JSON);
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}"),
                     CJ_JOSE_DUPLICATE_MEMBER);
}

static void test_decode_rejects_each_forbidden_alg(void **state)
{
    (void)state;
    assert_int_equal(header_reason("{}"), CJ_JOSE_ALG_MISSING);
    assert_int_equal(header_reason("{\"alg\":7}"), CJ_JOSE_HEADER_MEMBER_TYPE);
    assert_int_equal(header_reason("{\"alg\":\"none\"}"), CJ_JOSE_ALG_NONE);
    assert_int_equal(header_reason("{\"alg\":\"NoNe\"}"), CJ_JOSE_ALG_NONE);
    assert_int_equal(header_reason("{\"alg\":\"HS256\"}"), CJ_JOSE_ALG_HMAC);
    assert_int_equal(header_reason("{\"alg\":\"HS512\"}"), CJ_JOSE_ALG_HMAC);
    assert_int_equal(header_reason("{\"alg\":\"PS384\"}"),
                     CJ_JOSE_ALG_UNSUPPORTED);
    assert_int_equal(header_reason("{\"alg\":\"ES512\"}"),
                     CJ_JOSE_ALG_UNSUPPORTED);
    assert_int_equal(header_reason("{\"alg\":\"rs256\"}"),
                     CJ_JOSE_ALG_UNSUPPORTED);
    assert_int_equal(header_reason("{\"alg\":\"Ed25519\"}"),
                     CJ_JOSE_ALG_UNSUPPORTED);
}

static void test_decode_rejects_key_material_in_header(void **state)
{
    const char *headers[] = {
        "{\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\"}}",
        "{\"alg\":\"EdDSA\",\"jku\":\"https://example.com/jwks\"}",
        "{\"alg\":\"EdDSA\",\"x5u\":\"https://example.com/cert\"}",
        "{\"alg\":\"EdDSA\",\"x5c\":[\"MIIB\"]}",
        "{\"alg\":\"EdDSA\",\"x5t\":\"AAAA\"}",
        "{\"alg\":\"EdDSA\",\"x5t#S256\":\"AAAA\"}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        assert_int_equal(header_reason(headers[i]), CJ_JOSE_HEADER_KEY);
    }
}

static void test_decode_rejects_crit_and_bad_member_types(void **state)
{
    (void)state;
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}"),
                     CJ_JOSE_HEADER_CRIT);
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"crit\":[]}"),
                     CJ_JOSE_HEADER_CRIT);
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"kid\":5}"),
                     CJ_JOSE_HEADER_MEMBER_TYPE);
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"typ\":null}"),
                     CJ_JOSE_HEADER_MEMBER_TYPE);
    /* jansson refuses \u0000 unless asked, so the JSON itself fails. */
    assert_int_equal(header_reason("{\"alg\":\"EdDSA\",\"kid\":\"a\\u0000b\"}"),
                     CJ_JOSE_BAD_HEADER_JSON);
}

static void test_decode_accepts_good_header_fields(void **state)
{
    char *token = unsigned_token(
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}", "{}", "AAAA");
    struct cj_jws_decoded jws;
    enum cj_jose_reason reason;

    (void)state;
    assert_int_equal(cj_jws_decode(token, strlen(token), &jws, &reason), CJ_OK);
    assert_string_equal(jws.alg, "ES256");
    assert_string_equal(jws.kid, "k1");
    assert_string_equal(jws.typ, "at+jwt");
    assert_int_equal(jws.payload_len, 2);
    assert_string_equal((const char *)jws.payload, "{}");
    assert_int_equal(jws.sig_len, 3);
    assert_int_equal(jws.signing_input_len, strrchr(token, '.') - token);
    cj_jws_decoded_clear(&jws);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_rfc8037_signs_byte_for_byte),
        cmocka_unit_test(test_ed25519_rfc8037_vector_file_verifies),
        cmocka_unit_test(test_rs256_rfc7520_signs_byte_for_byte),
        cmocka_unit_test(test_hs256_rfc7520_mac_matches_and_is_rejected),
        cmocka_unit_test(test_ps384_and_es512_examples_are_rejected),
        cmocka_unit_test(test_wycheproof_rsa_2048_sha256),
        cmocka_unit_test(test_wycheproof_ecdsa_p256_p1363),
        cmocka_unit_test(test_wycheproof_ed25519),
        cmocka_unit_test(test_wycheproof_json_web_signature),
        cmocka_unit_test(test_wycheproof_json_web_key),
        cmocka_unit_test(test_sign_verify_round_trip_each_alg),
        cmocka_unit_test(test_shared_key_works_across_threads),
        cmocka_unit_test(test_verify_rejects_key_of_other_alg),
        cmocka_unit_test(test_sign_compact_rejects_header_of_other_alg),
        cmocka_unit_test(test_sign_raw_needs_private_key),
        cmocka_unit_test(test_es256_der_round_trip_is_minimal),
        cmocka_unit_test(test_es256_der_rejects_non_canonical_forms),
        cmocka_unit_test(test_es256_raw_rejects_wrong_length_and_zero),
        cmocka_unit_test(test_decode_rejects_oversize_token),
        cmocka_unit_test(test_decode_rejects_wrong_segment_count),
        cmocka_unit_test(test_decode_rejects_bad_base64url),
        cmocka_unit_test(test_decode_rejects_bad_header_json),
        cmocka_unit_test(test_decode_rejects_each_forbidden_alg),
        cmocka_unit_test(test_decode_rejects_key_material_in_header),
        cmocka_unit_test(test_decode_rejects_crit_and_bad_member_types),
        cmocka_unit_test(test_decode_accepts_good_header_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests for key objects and their formats: RFC 7638 thumbprints as known
 * answers, private-key export and import, public JWK parsing rules and JWK
 * Sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "jose.h"
#include "jwk.h"
#include "jws.h"
#include "vectors_helper.h"

/* RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1. */
static const char RFC7638_N[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aP"
    "FFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl9"
    "3lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
    "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3"
    "XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char RFC7638_THUMBPRINT[] =
    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
/* RFC 8037 appendix A.2 and A.3. */
static const char RFC8037_X[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char RFC8037_THUMBPRINT[] =
    "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/* A P-256 public key (from RFC 7517 appendix A.1). */
static const char P256_X[] = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
static const char P256_Y[] = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";

/* A 2048-bit RSA modulus p * q with the ROCA fingerprint (CVE-2017-15361),
 * generated for this test. Each prime is k * M + (65537^a mod M) for random
 * k and a, where M is the product of the odd primes 3 to 167. */
static const char ROCA_N[] =
    "hxQToCCtPsO9Kf28ONi3v1nRgp-yAxW5w88pBloH9KFDZkmShc8m2q2YqTDO1ptw"
    "MpflgAB3JIJur9M2mxVW7AIKxDfcVbkr-vrogQawhocgnnggfvy-4YThtIMf1P-Y"
    "G6nblNROImHcDCjw1l1uVu4X7vAN_85DJYNeZKl1vHeND31LQI3I7ufndJ1-XfPB"
    "MeucxvztReSiNwR8bvR9xj5yfWXldgfzxuWQ2J3y82Wd0CbOaP3BJG9S1DTHOPuR"
    "Zwtf_aRibo723jkJxDHYkXJiV2H4Sz-cR325qC0bYW9tp2SB3f-9wxM-MpIbxm5O"
    "4RAI0SyeVG0QmvpftP22nw";

static enum cj_status parse_jwk(const char *json, struct cj_jwk **key)
{
    return cj_jwk_from_json(json, strlen(json), key);
}

static enum cj_status parse_fmt(struct cj_jwk **key, const char *fmt, ...)
{
    char *json = NULL;
    va_list ap;
    enum cj_status status;

    va_start(ap, fmt);
    assert_true(vasprintf(&json, fmt, ap) > 0);
    va_end(ap);
    status = parse_jwk(json, key);
    free(json);
    return status;
}

static void test_thumbprint_matches_rfc7638_example(void **state)
{
    struct cj_jwk *key = NULL;
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];

    (void)state;
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\","
                               "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}",
                               RFC7638_N),
                     CJ_OK);
    assert_int_equal(cj_jwk_thumbprint(key, thumbprint), CJ_OK);
    assert_string_equal(thumbprint, RFC7638_THUMBPRINT);
    assert_string_equal(cj_jwk_get_kid(key), "2011-04-29");
    assert_int_equal(cj_jwk_get_alg(key), CJ_JWK_ALG_RS256);
    assert_false(cj_jwk_has_private(key));
    cj_jwk_free(key);
}

static void test_thumbprint_matches_rfc8037_example(void **state)
{
    struct cj_jwk *key = NULL;
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];

    (void)state;
    assert_int_equal(
        parse_fmt(&key, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
                  RFC8037_X),
        CJ_OK);
    assert_int_equal(cj_jwk_thumbprint(key, thumbprint), CJ_OK);
    assert_string_equal(thumbprint, RFC8037_THUMBPRINT);
    /* Without a kid member the kid is the thumbprint. */
    assert_string_equal(cj_jwk_get_kid(key), RFC8037_THUMBPRINT);
    assert_int_equal(cj_jwk_get_alg(key), CJ_JWK_ALG_EDDSA);
    cj_jwk_free(key);
}

static void test_thumbprints_from_vector_files(void **state)
{
    json_t *rfc7517;
    json_t *rfc8037;
    char *set_text;
    struct cj_jwks *set = NULL;
    const struct cj_jwk *rsa;
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];
    char *okp_text;
    struct cj_jwk *okp = NULL;
    json_t *tp;

    (void)state;
    if (!vectors_available("test_jwk thumbprints")) {
        skip();
    }
    rfc7517 = load_vector_file("jose/rfc7517-appendix-a-b.json");
    rfc8037 = load_vector_file("jose/rfc8037-ed25519.json");
    assert_non_null(rfc7517);
    assert_non_null(rfc8037);
    set_text = json_dumps(json_object_get(rfc7517, "A.1_public_jwk_set"), 0);
    assert_int_equal(cj_jwks_parse(set_text, strlen(set_text), &set), CJ_OK);
    /* The EC key of A.1 is an encryption key ("use":"enc"): skipped. */
    assert_int_equal(cj_jwks_count(set), 1);
    assert_null(cj_jwks_find(set, "1"));
    rsa = cj_jwks_find(set, "2011-04-29");
    assert_non_null(rsa);
    assert_int_equal(cj_jwk_thumbprint(rsa, thumbprint), CJ_OK);
    assert_string_equal(thumbprint, RFC7638_THUMBPRINT);

    okp_text = json_dumps(
        json_object_get(json_object_get(rfc8037, "public_key"), "jwk"), 0);
    assert_int_equal(parse_jwk(okp_text, &okp), CJ_OK);
    assert_int_equal(cj_jwk_thumbprint(okp, thumbprint), CJ_OK);
    tp = json_object_get(rfc8037, "thumbprint");
    assert_string_equal(thumbprint,
                        json_string_value(json_object_get(tp, "b64u")));
    printf("rfc7638 and rfc8037 thumbprints: 2 known answers match\n");
    cj_jwk_free(okp);
    free(okp_text);
    cj_jwks_free(set);
    free(set_text);
    json_decref(rfc7517);
    json_decref(rfc8037);
}

static void test_private_bytes_round_trip_each_alg(void **state)
{
    const enum cj_jwk_alg algs[] = {CJ_JWK_ALG_RS256, CJ_JWK_ALG_ES256,
                                    CJ_JWK_ALG_EDDSA};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cj_jwk *key = NULL;
        struct cj_jwk *back = NULL;
        struct cj_jwk *pub = NULL;
        unsigned char *bytes = NULL;
        size_t len = 0;
        char *jwk = NULL;
        char *token = NULL;
        unsigned char *payload = NULL;
        size_t payload_len = 0;
        enum cj_jose_reason reason;

        assert_int_equal(cj_jwk_generate(algs[i], &key), CJ_OK);
        assert_true(cj_jwk_has_private(key));
        assert_int_equal(strlen(cj_jwk_get_kid(key)), CJ_JWK_THUMBPRINT_LEN);
        assert_int_equal(cj_jwk_export_private(key, &bytes, &len), CJ_OK);
        if (algs[i] == CJ_JWK_ALG_EDDSA) {
            assert_int_equal(len, CJ_JWK_ED25519_SEED_BYTES);
        } else {
            assert_int_equal(bytes[0], 0x30); /* a DER SEQUENCE */
        }
        assert_int_equal(cj_jwk_import_private(algs[i], bytes, len, &back),
                         CJ_OK);
        assert_string_equal(cj_jwk_get_kid(back), cj_jwk_get_kid(key));
        /* Sign with the imported key, verify with the original's JWK. */
        assert_int_equal(cj_jwk_to_json(key, &jwk), CJ_OK);
        assert_int_equal(parse_jwk(jwk, &pub), CJ_OK);
        assert_string_equal(cj_jwk_get_kid(pub), cj_jwk_get_kid(key));
        assert_int_equal(
            cj_jws_sign(back, NULL, (const unsigned char *)"hi", 2, &token),
            CJ_OK);
        assert_int_equal(cj_jws_verify(pub, token, strlen(token), &payload,
                                       &payload_len, &reason),
                         CJ_OK);
        free(payload);
        free(token);
        free(jwk);
        cj_jwk_private_bytes_free(bytes, len);
        cj_jwk_free(pub);
        cj_jwk_free(back);
        cj_jwk_free(key);
    }
}

static void test_import_private_rejects_wrong_alg_and_bytes(void **state)
{
    struct cj_jwk *rsa = NULL;
    struct cj_jwk *ec = NULL;
    struct cj_jwk *out = NULL;
    unsigned char *rsa_der = NULL;
    unsigned char *ec_der = NULL;
    unsigned char *longer;
    size_t rsa_len = 0;
    size_t ec_len = 0;
    unsigned char seed[CJ_JWK_ED25519_SEED_BYTES + 1] = {0};

    (void)state;
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_RS256, &rsa), CJ_OK);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_ES256, &ec), CJ_OK);
    assert_int_equal(cj_jwk_export_private(rsa, &rsa_der, &rsa_len), CJ_OK);
    assert_int_equal(cj_jwk_export_private(ec, &ec_der, &ec_len), CJ_OK);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_ES256, rsa_der, rsa_len, &out),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_RS256, ec_der, ec_len, &out),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_EDDSA, ec_der, ec_len, &out),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_EDDSA, seed, sizeof(seed), &out),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_ES256, ec_der, ec_len - 1, &out),
        CJ_ERR_INVALID);
    longer = calloc(1, ec_len + 1);
    memcpy(longer, ec_der, ec_len);
    assert_int_equal(
        cj_jwk_import_private(CJ_JWK_ALG_ES256, longer, ec_len + 1, &out),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwk_import_private((enum cj_jwk_alg)99, ec_der, ec_len, &out),
        CJ_ERR_INVALID);
    assert_null(out);
    free(longer);
    cj_jwk_private_bytes_free(rsa_der, rsa_len);
    cj_jwk_private_bytes_free(ec_der, ec_len);
    cj_jwk_free(rsa);
    cj_jwk_free(ec);
}

static void test_export_private_needs_private_key(void **state)
{
    struct cj_jwk *pub = NULL;
    unsigned char *bytes = (unsigned char *)"x";
    size_t len = 1;

    (void)state;
    assert_int_equal(
        parse_fmt(&pub, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
                  RFC8037_X),
        CJ_OK);
    assert_int_equal(cj_jwk_export_private(pub, &bytes, &len), CJ_ERR_INVALID);
    assert_null(bytes);
    assert_int_equal(len, 0);
    cj_jwk_free(pub);
}

static void test_public_jwk_has_no_private_members(void **state)
{
    const enum cj_jwk_alg algs[] = {CJ_JWK_ALG_RS256, CJ_JWK_ALG_ES256,
                                    CJ_JWK_ALG_EDDSA};
    const char *forbidden[] = {"d", "p", "q", "dp", "dq", "qi"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cj_jwk *key = NULL;
        char *text = NULL;
        json_t *obj;

        assert_int_equal(cj_jwk_generate(algs[i], &key), CJ_OK);
        assert_int_equal(cj_jwk_to_json(key, &text), CJ_OK);
        obj = json_loads(text, 0, NULL);
        assert_non_null(obj);
        for (size_t j = 0; j < 6; j++) {
            assert_null(json_object_get(obj, forbidden[j]));
        }
        assert_string_equal(json_string_value(json_object_get(obj, "use")),
                            "sig");
        assert_string_equal(json_string_value(json_object_get(obj, "alg")),
                            cj_jwk_alg_name(algs[i]));
        assert_string_equal(json_string_value(json_object_get(obj, "kid")),
                            cj_jwk_get_kid(key));
        json_decref(obj);
        free(text);
        cj_jwk_free(key);
    }
}

static void test_from_json_rejects_private_members(void **state)
{
    struct cj_jwk *key = NULL;

    (void)state;
    assert_int_equal(
        parse_fmt(&key,
                  "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
                  "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\"}",
                  RFC8037_X),
        CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\","
                               "\"p\":\"AQAB\"}",
                               RFC7638_N),
                     CJ_ERR_INVALID);
    /* "k" is the secret value of a symmetric key (RFC 7518 section
     * 6.4.1), so a JWK with it is rejected like one with "d". */
    assert_int_equal(
        parse_fmt(&key,
                  "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
                  "\"k\":\"GawgguFyGrWKav7AX4VKUg\"}",
                  RFC8037_X),
        CJ_ERR_INVALID);
    assert_null(key);
}

static void test_from_json_rejects_bad_rsa_keys(void **state)
{
    struct cj_jwk *key = NULL;
    char short_n[172];

    (void)state;
    /* 1024 bits: the first 128 bytes of the example modulus. */
    memcpy(short_n, RFC7638_N, 171);
    short_n[171] = '\0';
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}",
                               short_n),
                     CJ_ERR_INVALID);
    /* A leading zero octet makes the encoding non-minimal. */
    assert_int_equal(
        parse_fmt(&key, "{\"kty\":\"RSA\",\"n\":\"AA%s\",\"e\":\"AQAB\"}",
                  RFC7638_N),
        CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAA\"}",
                               RFC7638_N),
                     CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQ\"}",
                               RFC7638_N),
                     CJ_ERR_INVALID);
    assert_int_equal(
        parse_fmt(&key, "{\"kty\":\"RSA\",\"n\":\"%s\"}", RFC7638_N),
        CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s=\",\"e\":\"AQAB\"}",
                               RFC7638_N),
                     CJ_ERR_INVALID);
    assert_null(key);
}

static void test_from_json_rejects_roca_modulus(void **state)
{
    struct cj_jwk *key = NULL;

    (void)state;
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}",
                               ROCA_N),
                     CJ_ERR_INVALID);
    assert_null(key);
}

/* Wycheproof's json_web_key_test.json has a ROCA key in the group whose
 * comment is "jws_rsa_roca_key". */
static void test_from_json_rejects_wycheproof_roca_key(void **state)
{
    json_t *root;
    const json_t *group;
    size_t i;
    size_t found = 0;

    (void)state;
    if (!vectors_available("test_jwk wycheproof roca")) {
        skip();
    }
    root = load_vector_file("wycheproof/json_web_key_test.json");
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), i, group)
    {
        const char *comment =
            json_string_value(json_object_get(group, "comment"));
        json_t *keys;
        char *text;
        struct cj_jwk *key = NULL;

        if (comment == NULL || strcmp(comment, "jws_rsa_roca_key") != 0) {
            continue;
        }
        keys = json_object_get(json_object_get(group, "public"), "keys");
        text = json_dumps(json_array_get(keys, 0), JSON_COMPACT);
        assert_non_null(text);
        assert_int_equal(parse_jwk(text, &key), CJ_ERR_INVALID);
        assert_null(key);
        free(text);
        found++;
    }
    assert_int_equal(found, 1);
    json_decref(root);
}

static void test_from_json_rejects_bad_curve_points(void **state)
{
    struct cj_jwk *key = NULL;
    char bad_y[sizeof(P256_Y)];

    (void)state;
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                               "\"y\":\"%s\"}",
                               P256_X, P256_Y),
                     CJ_OK);
    cj_jwk_free(key);
    key = NULL;
    /* One changed character moves the point off the curve. */
    memcpy(bad_y, P256_Y, sizeof(bad_y));
    bad_y[5] = bad_y[5] == 'A' ? 'B' : 'A';
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                               "\"y\":\"%s\"}",
                               P256_X, bad_y),
                     CJ_ERR_INVALID);
    /* 31-byte coordinate. */
    assert_int_equal(
        parse_fmt(&key,
                  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%.41s\","
                  "\"y\":\"%s\"}",
                  P256_X, P256_Y),
        CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                               P256_X, P256_Y),
                     CJ_ERR_INVALID);
    assert_int_equal(
        parse_fmt(&key, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%.42s\"}",
                  RFC8037_X),
        CJ_ERR_INVALID);
    assert_null(key);
}

static void test_from_json_reports_unusable_keys(void **state)
{
    struct cj_jwk *key = NULL;

    (void)state;
    assert_int_equal(parse_jwk("{\"kty\":\"oct\",\"kid\":\"h\"}", &key),
                     CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\","
                               "\"y\":\"%s\"}",
                               P256_X, P256_Y),
                     CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(
        parse_fmt(&key,
                  "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"alg\":"
                  "\"PS256\"}",
                  RFC7638_N),
        CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"alg\":\"ES256\"}",
                               RFC8037_X),
                     CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"use\":\"enc\"}",
                               RFC8037_X),
                     CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"key_ops\":[\"sign\"]}",
                               RFC8037_X),
                     CJ_ERR_UNIMPLEMENTED);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"key_ops\":[\"sign\",\"verify\"]}",
                               RFC8037_X),
                     CJ_OK);
    cj_jwk_free(key);
}

static void test_from_json_rejects_bad_kid_and_json(void **state)
{
    struct cj_jwk *key = NULL;
    char long_kid[CJ_JWK_KID_MAX_BYTES + 2];

    (void)state;
    memset(long_kid, 'k', sizeof(long_kid) - 1);
    long_kid[sizeof(long_kid) - 1] = '\0';
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"kid\":\"%s\"}",
                               RFC8037_X, long_kid),
                     CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"kid\":7}",
                               RFC8037_X),
                     CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"kid\":\"a b\"}",
                               RFC8037_X),
                     CJ_ERR_INVALID);
    assert_int_equal(parse_fmt(&key,
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                               "\"%s\",\"x\":\"%s\"}",
                               RFC8037_X, RFC8037_X),
                     CJ_ERR_INVALID);
    assert_int_equal(parse_jwk("[]", &key), CJ_ERR_INVALID);
    assert_int_equal(parse_jwk("{\"kty\":5}", &key), CJ_ERR_INVALID);
    assert_null(key);
}

static void test_set_kid_validates(void **state)
{
    struct cj_jwk *key = NULL;
    char long_kid[CJ_JWK_KID_MAX_BYTES + 2];

    (void)state;
    memset(long_kid, 'k', sizeof(long_kid) - 1);
    long_kid[sizeof(long_kid) - 1] = '\0';
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &key), CJ_OK);
    assert_int_equal(cj_jwk_set_kid(key, "signing-2026-12"), CJ_OK);
    assert_string_equal(cj_jwk_get_kid(key), "signing-2026-12");
    assert_int_equal(cj_jwk_set_kid(key, ""), CJ_ERR_INVALID);
    assert_int_equal(cj_jwk_set_kid(key, long_kid), CJ_ERR_INVALID);
    assert_int_equal(cj_jwk_set_kid(key, "tab\there"), CJ_ERR_INVALID);
    assert_int_equal(cj_jwk_set_kid(key, NULL), CJ_ERR_INVALID);
    assert_string_equal(cj_jwk_get_kid(key), "signing-2026-12");
    cj_jwk_free(key);
}

static void test_jwks_round_trip_and_lookup(void **state)
{
    struct cj_jwk *keys[3] = {NULL, NULL, NULL};
    const enum cj_jwk_alg algs[] = {CJ_JWK_ALG_RS256, CJ_JWK_ALG_ES256,
                                    CJ_JWK_ALG_EDDSA};
    struct cj_jwks *set = NULL;
    char *text = NULL;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cj_jwk_generate(algs[i], &keys[i]), CJ_OK);
    }
    assert_int_equal(
        cj_jwks_to_json((const struct cj_jwk *const *)keys, 3, &text), CJ_OK);
    assert_int_equal(cj_jwks_parse(text, strlen(text), &set), CJ_OK);
    assert_int_equal(cj_jwks_count(set), 3);
    for (size_t i = 0; i < 3; i++) {
        const struct cj_jwk *found = cj_jwks_find(set, cj_jwk_get_kid(keys[i]));

        assert_non_null(found);
        assert_int_equal(cj_jwk_get_alg(found), algs[i]);
        assert_false(cj_jwk_has_private(found));
    }
    assert_null(cj_jwks_find(set, "no-such-kid"));
    assert_null(cj_jwks_find(set, NULL));
    cj_jwks_free(set);
    free(text);
    for (size_t i = 0; i < 3; i++) {
        cj_jwk_free(keys[i]);
    }
}

static void test_jwks_parse_rejects_bad_sets(void **state)
{
    struct cj_jwks *set = NULL;
    struct cj_jwk *key = NULL;
    char *one = NULL;
    char *text = NULL;
    json_t *many;

    (void)state;
    assert_int_equal(cj_jwks_parse("[]", 2, &set), CJ_ERR_INVALID);
    assert_int_equal(cj_jwks_parse("{\"keys\":{}}", 11, &set), CJ_ERR_INVALID);
    assert_int_equal(cj_jwks_parse("{\"keys\":[1]}", 12, &set), CJ_ERR_INVALID);
    assert_int_equal(cj_jwks_parse("{\"keys\":[],\"keys\":[]}", 21, &set),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &key), CJ_OK);
    assert_int_equal(cj_jwk_to_json(key, &one), CJ_OK);
    /* The same kid twice. */
    assert_true(asprintf(&text, "{\"keys\":[%s,%s]}", one, one) > 0);
    assert_int_equal(cj_jwks_parse(text, strlen(text), &set), CJ_ERR_INVALID);
    free(text);
    /* More keys than CJ_JWKS_MAX_KEYS. */
    many = json_array();
    for (int i = 0; i <= CJ_JWKS_MAX_KEYS; i++) {
        json_array_append_new(many, json_pack("{s:s}", "kty", "oct"));
    }
    many = json_pack("{s:o}", "keys", many);
    text = json_dumps(many, 0);
    json_decref(many);
    assert_int_equal(cj_jwks_parse(text, strlen(text), &set), CJ_ERR_TOO_LARGE);
    assert_null(set);
    /* An empty set is valid. */
    assert_int_equal(cj_jwks_parse("{\"keys\":[]}", 11, &set), CJ_OK);
    assert_int_equal(cj_jwks_count(set), 0);
    cj_jwks_free(set);
    free(text);
    free(one);
    cj_jwk_free(key);
}

static void test_alg_names_parse_exactly(void **state)
{
    enum cj_jwk_alg alg;

    (void)state;
    assert_true(cj_jwk_alg_parse("RS256", &alg));
    assert_int_equal(alg, CJ_JWK_ALG_RS256);
    assert_true(cj_jwk_alg_parse("EdDSA", &alg));
    assert_int_equal(alg, CJ_JWK_ALG_EDDSA);
    assert_false(cj_jwk_alg_parse("eddsa", &alg));
    assert_false(cj_jwk_alg_parse("HS256", &alg));
    assert_false(cj_jwk_alg_parse(NULL, &alg));
    assert_string_equal(cj_jwk_alg_name(CJ_JWK_ALG_ES256), "ES256");
    assert_null(cj_jwk_alg_name((enum cj_jwk_alg)0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thumbprint_matches_rfc7638_example),
        cmocka_unit_test(test_thumbprint_matches_rfc8037_example),
        cmocka_unit_test(test_thumbprints_from_vector_files),
        cmocka_unit_test(test_private_bytes_round_trip_each_alg),
        cmocka_unit_test(test_import_private_rejects_wrong_alg_and_bytes),
        cmocka_unit_test(test_export_private_needs_private_key),
        cmocka_unit_test(test_public_jwk_has_no_private_members),
        cmocka_unit_test(test_from_json_rejects_private_members),
        cmocka_unit_test(test_from_json_rejects_roca_modulus),
        cmocka_unit_test(test_from_json_rejects_wycheproof_roca_key),
        cmocka_unit_test(test_from_json_rejects_bad_rsa_keys),
        cmocka_unit_test(test_from_json_rejects_bad_curve_points),
        cmocka_unit_test(test_from_json_reports_unusable_keys),
        cmocka_unit_test(test_from_json_rejects_bad_kid_and_json),
        cmocka_unit_test(test_set_kid_validates),
        cmocka_unit_test(test_jwks_round_trip_and_lookup),
        cmocka_unit_test(test_jwks_parse_rejects_bad_sets),
        cmocka_unit_test(test_alg_names_parse_exactly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

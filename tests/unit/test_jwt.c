/*
 * Tests for access tokens: signing, and one test per rejection path of the
 * verifier, each checking its own reason code and the one client-facing
 * status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "hmac.h"
#include "jose.h"
#include "jose_helper.h"
#include "jwk.h"
#include "jws.h"
#include "jwt.h"
#include "vectors_helper.h"

#define NOW      1700000000LL /* 2023-11-14T22:13:20Z */
#define ISSUER   "https://auth.cerrojo.test"
#define AUDIENCE "cerrojo-gateway"

struct fixture {
    struct cj_jwk *ed;
    struct cj_jwk *ec;
    struct cj_jwk *rsa;
    struct cj_jwk *stranger; /* not in the set */
    struct cj_jwks *set;
    struct cj_jwt_verify_config config;
};

static struct fixture fx;

static int setup(void **state)
{
    const struct cj_jwk *keys[3];
    char *json = NULL;

    (void)state;
    if (cj_jwk_generate(CJ_JWK_ALG_EDDSA, &fx.ed) != CJ_OK ||
        cj_jwk_generate(CJ_JWK_ALG_ES256, &fx.ec) != CJ_OK ||
        cj_jwk_generate(CJ_JWK_ALG_RS256, &fx.rsa) != CJ_OK ||
        cj_jwk_generate(CJ_JWK_ALG_EDDSA, &fx.stranger) != CJ_OK) {
        return -1;
    }
    keys[0] = fx.ed;
    keys[1] = fx.ec;
    keys[2] = fx.rsa;
    if (cj_jwks_to_json(keys, 3, &json) != CJ_OK ||
        cj_jwks_parse(json, strlen(json), &fx.set) != CJ_OK) {
        free(json);
        return -1;
    }
    free(json);
    cj_jwt_verify_config_init(&fx.config, ISSUER, AUDIENCE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cj_jwks_free(fx.set);
    cj_jwk_free(fx.ed);
    cj_jwk_free(fx.ec);
    cj_jwk_free(fx.rsa);
    cj_jwk_free(fx.stranger);
    return 0;
}

static void make_claims(struct cj_jwt_claims *claims)
{
    assert_int_equal(cj_jwt_claims_init(claims, ISSUER, AUDIENCE, "user-42",
                                        "session-7", NOW,
                                        CJ_JWT_LIFETIME_DEFAULT_S),
                     CJ_OK);
}

/* Verifies at now_s and returns the reason; checks the status class. */
static enum cj_jose_reason verify_at(const char *token, int64_t now_s)
{
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason = CJ_JOSE_INTERNAL;
    enum cj_status status = cj_jwt_verify(fx.set, &fx.config, now_s, token,
                                          strlen(token), &claims, &reason);

    assert_int_equal(status, cj_jose_reason_status(reason));
    if (reason != CJ_JOSE_OK) {
        assert_string_equal(claims.sub, "");
    }
    return reason;
}

static enum cj_jose_reason verify_now(const char *token)
{
    return verify_at(token, NOW);
}

/* Header naming key's alg and kid, plus extra members (a JSON fragment). */
static char *header_for(const struct cj_jwk *key, const char *extra)
{
    char *header = NULL;

    assert_true(asprintf(&header, "{\"alg\":\"%s\",\"kid\":\"%s\"%s%s}",
                         cj_jwk_alg_name(cj_jwk_get_alg(key)),
                         cj_jwk_get_kid(key), extra[0] != '\0' ? "," : "",
                         extra) > 0);
    return header;
}

static char *sign_raw_parts(const struct cj_jwk *key, const char *header,
                            const char *payload)
{
    char *token = NULL;

    assert_int_equal(cj_jws_sign_compact(key, header, strlen(header),
                                         (const unsigned char *)payload,
                                         strlen(payload), &token),
                     CJ_OK);
    return token;
}

/* Signs payload with ed under the typ "at+jwt" header plus extra. */
static char *sign_payload(const char *payload, const char *extra_header)
{
    char extra[512];
    char *header;
    char *token;

    snprintf(extra, sizeof(extra), "\"typ\":\"at+jwt\"%s%s",
             extra_header[0] != '\0' ? "," : "", extra_header);
    header = header_for(fx.ed, extra);
    token = sign_raw_parts(fx.ed, header, payload);
    free(header);
    return token;
}

/* A valid payload with one claim replaced (or dropped when value NULL). */
static char *payload_with(const char *name, const char *value)
{
    json_t *obj = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", ISSUER, "aud",
        AUDIENCE, "sub", "user-42", "sid", "session-7", "iat", (json_int_t)NOW,
        "nbf", (json_int_t)NOW, "exp",
        (json_int_t)(NOW + CJ_JWT_LIFETIME_DEFAULT_S), "jti", "jti-1");
    char *text;

    assert_non_null(obj);
    if (value == NULL) {
        json_object_del(obj, name);
    } else {
        json_t *parsed = json_loads(value, JSON_DECODE_ANY, NULL);

        assert_non_null(parsed);
        json_object_set_new(obj, name, parsed);
    }
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

static enum cj_jose_reason claim_reason(const char *name, const char *value)
{
    char *payload = payload_with(name, value);
    char *token = sign_payload(payload, "");
    enum cj_jose_reason reason = verify_now(token);

    free(token);
    free(payload);
    return reason;
}

/*
 * Signs header and payload with cj_jws_sign_raw, for headers that
 * cj_jws_sign_compact refuses to sign (duplicate members).
 */
static char *sign_by_hand(const struct cj_jwk *key, const char *header,
                          const char *payload)
{
    char *h = b64url_text(header);
    char *p = b64url_text(payload);
    char *input = NULL;
    char *sig_b64 = NULL;
    char *token = NULL;
    unsigned char sig[CJ_JWS_SIG_MAX_BYTES];
    size_t sig_len = 0;

    assert_true(asprintf(&input, "%s.%s", h, p) > 0);
    assert_int_equal(cj_jws_sign_raw(key, (const unsigned char *)input,
                                     strlen(input), sig, &sig_len),
                     CJ_OK);
    assert_int_equal(cj_jose_b64url_encode(sig, sig_len, &sig_b64), CJ_OK);
    assert_true(asprintf(&token, "%s.%s", input, sig_b64) > 0);
    free(sig_b64);
    free(input);
    free(h);
    free(p);
    return token;
}

static void test_verify_accepts_token_of_each_alg(void **state)
{
    const struct cj_jwk *keys[] = {fx.ed, fx.ec, fx.rsa};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cj_jwt_claims in;
        struct cj_jwt_claims out;
        enum cj_jose_reason reason;
        char *token = NULL;

        make_claims(&in);
        assert_int_equal(cj_jwt_sign(keys[i], &in, &token), CJ_OK);
        assert_int_equal(cj_jwt_verify(fx.set, &fx.config, NOW, token,
                                       strlen(token), &out, &reason),
                         CJ_OK);
        assert_int_equal(reason, CJ_JOSE_OK);
        assert_string_equal(out.iss, ISSUER);
        assert_string_equal(out.aud, AUDIENCE);
        assert_string_equal(out.sub, "user-42");
        assert_string_equal(out.sid, "session-7");
        assert_string_equal(out.jti, in.jti);
        assert_int_equal(out.iat, NOW);
        assert_int_equal(out.nbf, NOW);
        assert_int_equal(out.exp, NOW + CJ_JWT_LIFETIME_DEFAULT_S);
        free(token);
    }
}

static void test_sign_writes_at_jwt_header_and_kid(void **state)
{
    struct cj_jwt_claims claims;
    struct cj_jws_decoded jws;
    enum cj_jose_reason reason;
    char *token = NULL;

    (void)state;
    make_claims(&claims);
    claims.sid[0] = '\0';
    assert_int_equal(cj_jwt_sign(fx.ec, &claims, &token), CJ_OK);
    assert_int_equal(cj_jws_decode(token, strlen(token), &jws, &reason), CJ_OK);
    assert_string_equal(jws.alg, "ES256");
    assert_string_equal(jws.typ, "at+jwt");
    assert_string_equal(jws.kid, cj_jwk_get_kid(fx.ec));
    /* A token without a session carries no sid member at all. */
    assert_null(strstr((const char *)jws.payload, "\"sid\""));
    cj_jws_decoded_clear(&jws);
    free(token);
}

static void test_claims_init_rejects_bad_input(void **state)
{
    struct cj_jwt_claims c;
    char long_sub[CJ_JWT_CLAIM_MAX_BYTES + 2];

    (void)state;
    memset(long_sub, 'a', sizeof(long_sub) - 1);
    long_sub[sizeof(long_sub) - 1] = '\0';
    assert_int_equal(cj_jwt_claims_init(&c, "", AUDIENCE, "u", NULL, NOW, 60),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_jwt_claims_init(&c, ISSUER, NULL, "u", NULL, NOW, 60),
                     CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwt_claims_init(&c, ISSUER, AUDIENCE, long_sub, NULL, NOW, 60),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwt_claims_init(&c, ISSUER, AUDIENCE, "u", NULL, NOW, 0),
        CJ_ERR_INVALID);
    assert_int_equal(cj_jwt_claims_init(&c, ISSUER, AUDIENCE, "u", NULL,
                                        CJ_JWT_TIME_MAX_S, 60),
                     CJ_ERR_INVALID);
    assert_int_equal(
        cj_jwt_claims_init(&c, ISSUER, AUDIENCE, "u", NULL, -1, 60),
        CJ_ERR_INVALID);
}

static void test_sign_rejects_inconsistent_claims(void **state)
{
    struct cj_jwt_claims c;
    char *token = NULL;

    (void)state;
    make_claims(&c);
    c.exp = c.iat;
    assert_int_equal(cj_jwt_sign(fx.ed, &c, &token), CJ_ERR_INVALID);
    make_claims(&c);
    c.jti[0] = '\0';
    assert_int_equal(cj_jwt_sign(fx.ed, &c, &token), CJ_ERR_INVALID);
    make_claims(&c);
    c.nbf = c.iat - 1;
    assert_int_equal(cj_jwt_sign(fx.ed, &c, &token), CJ_ERR_INVALID);
    assert_null(token);
}

static void test_config_check_rejects_bad_leeway_and_names(void **state)
{
    struct cj_jwt_verify_config cfg;

    (void)state;
    cj_jwt_verify_config_init(&cfg, ISSUER, AUDIENCE);
    assert_int_equal(cfg.leeway_s, CJ_JWT_LEEWAY_DEFAULT_S);
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_OK);
    cfg.leeway_s = -1;
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_ERR_INVALID);
    cfg.leeway_s = CJ_JWT_LEEWAY_MAX_S + 1;
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_ERR_INVALID);
    cfg.leeway_s = CJ_JWT_LEEWAY_MAX_S;
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_OK);
    cfg.issuer = "";
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_ERR_INVALID);
    cfg.issuer = ISSUER;
    cfg.audience = NULL;
    assert_int_equal(cj_jwt_verify_config_check(&cfg), CJ_ERR_INVALID);
}

static void test_verify_rejects_bad_config(void **state)
{
    struct cj_jwt_verify_config saved = fx.config;
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason;
    char *token = NULL;

    (void)state;
    make_claims(&claims);
    assert_int_equal(cj_jwt_sign(fx.ed, &claims, &token), CJ_OK);
    fx.config.leeway_s = 7200;
    assert_int_equal(cj_jwt_verify(fx.set, &fx.config, NOW, token,
                                   strlen(token), &claims, &reason),
                     CJ_ERR_INVALID);
    assert_int_equal(reason, CJ_JOSE_CONFIG);
    fx.config = saved;
    free(token);
}

static void test_verify_rejects_oversize_token(void **state)
{
    char *payload = payload_with(
        "pad",
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"");
    json_t *obj = json_loads(payload, 0, NULL);
    char *big;
    char *token;
    char filler[CJ_JOSE_TOKEN_MAX_BYTES];

    (void)state;
    memset(filler, 'x', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    json_object_set_new(obj, "pad", json_string(filler));
    big = json_dumps(obj, JSON_COMPACT);
    token = sign_payload(big, "");
    assert_int_equal(verify_now(token), CJ_JOSE_TOO_LARGE);
    free(token);
    free(big);
    free(payload);
    json_decref(obj);
}

static void test_verify_rejects_malformed_compact_form(void **state)
{
    (void)state;
    assert_int_equal(verify_now("abc.def"), CJ_JOSE_BAD_SEGMENTS);
    assert_int_equal(verify_now("a.b.c.d"), CJ_JOSE_BAD_SEGMENTS);
    assert_int_equal(verify_now("e30=.e30.AAAA"), CJ_JOSE_BAD_BASE64);
    assert_int_equal(verify_now("eyJhbGciOiJFZERTQSJ9.e3 0.AAAA"),
                     CJ_JOSE_BAD_BASE64);
}

static void test_verify_rejects_alg_none(void **state)
{
    char *header = NULL;
    char *payload = payload_with("sub", "\"user-42\"");
    char *token;

    (void)state;
    assert_true(asprintf(&header,
                         "{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                         cj_jwk_get_kid(fx.ed)) > 0);
    token = unsigned_token(header, payload, "");
    assert_int_equal(verify_now(token), CJ_JOSE_ALG_NONE);
    free(token);
    free(header);
    free(payload);
}

/*
 * The classic confusion attack: an HS256 token whose MAC key is the
 * public key the verifier holds. It must fail on the alg alone.
 */
static void test_verify_rejects_hs256_keyed_with_public_key(void **state)
{
    char *header = NULL;
    char *payload = payload_with("sub", "\"user-42\"");
    char *jwk = NULL;
    char *h;
    char *p;
    char *input = NULL;
    char *token = NULL;
    char *mac_b64 = NULL;
    unsigned char mac[CJ_HMAC_SHA256_LEN];

    (void)state;
    assert_true(
        asprintf(&header,
                 "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                 cj_jwk_get_kid(fx.rsa)) > 0);
    assert_int_equal(cj_jwk_to_json(fx.rsa, &jwk), CJ_OK);
    h = b64url_text(header);
    p = b64url_text(payload);
    assert_true(asprintf(&input, "%s.%s", h, p) > 0);
    assert_int_equal(cj_hmac_sha256(mac, (const unsigned char *)jwk,
                                    strlen(jwk), (const unsigned char *)input,
                                    strlen(input)),
                     CJ_OK);
    assert_int_equal(cj_jose_b64url_encode(mac, sizeof(mac), &mac_b64), CJ_OK);
    assert_true(asprintf(&token, "%s.%s", input, mac_b64) > 0);
    assert_int_equal(verify_now(token), CJ_JOSE_ALG_HMAC);
    free(token);
    free(mac_b64);
    free(input);
    free(h);
    free(p);
    free(jwk);
    free(header);
    free(payload);
}

static void test_verify_rejects_other_algs(void **state)
{
    const char *algs[] = {"PS384", "ES512",   "RS512",
                          "PS256", "Ed25519", "ES256K"};
    char *payload = payload_with("sub", "\"user-42\"");

    (void)state;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char *header = NULL;
        char *token;

        assert_true(asprintf(&header,
                             "{\"alg\":\"%s\",\"typ\":\"at+jwt\","
                             "\"kid\":\"%s\"}",
                             algs[i], cj_jwk_get_kid(fx.rsa)) > 0);
        token = unsigned_token(header, payload, "AAAA");
        assert_int_equal(verify_now(token), CJ_JOSE_ALG_UNSUPPORTED);
        free(token);
        free(header);
    }
    free(payload);
}

static void test_verify_rejects_rfc7520_hs256_ps384_es512(void **state)
{
    const char *files[] = {
        "jose/rfc7520/4_4.hmac-sha2_integrity_protection.json",
        "jose/rfc7520/4_2.rsa-pss_signature.json",
        "jose/rfc7520/4_3.ecdsa_signature.json"};
    const enum cj_jose_reason expected[] = {
        CJ_JOSE_ALG_HMAC, CJ_JOSE_ALG_UNSUPPORTED, CJ_JOSE_ALG_UNSUPPORTED};

    (void)state;
    if (!vectors_available("test_jwt rfc7520")) {
        skip();
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *root = load_vector_file(files[i]);
        const char *compact;

        assert_non_null(root);
        compact = json_string_value(
            json_object_get(json_object_get(root, "output"), "compact"));
        assert_int_equal(verify_now(compact), expected[i]);
        json_decref(root);
    }
    printf("rfc7520 hs256, ps384, es512: all three rejected by the JWT "
           "verifier\n");
}

static void test_verify_rejects_unknown_and_missing_kid(void **state)
{
    struct cj_jwt_claims claims;
    char *token = NULL;
    char *payload = payload_with("sub", "\"user-42\"");
    char *no_kid;

    (void)state;
    make_claims(&claims);
    assert_int_equal(cj_jwt_sign(fx.stranger, &claims, &token), CJ_OK);
    assert_int_equal(verify_now(token), CJ_JOSE_KID_UNKNOWN);
    free(token);
    no_kid = strdup("{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\"}");
    token = sign_raw_parts(fx.ed, no_kid, payload);
    assert_int_equal(verify_now(token), CJ_JOSE_KID_MISSING);
    free(token);
    free(no_kid);
    free(payload);
}

/* An ES256 signature presented under the kid of the Ed25519 key. */
static void test_verify_rejects_alg_not_matching_key(void **state)
{
    char *header = NULL;
    char *payload = payload_with("sub", "\"user-42\"");
    char *token;

    (void)state;
    assert_true(
        asprintf(&header,
                 "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                 cj_jwk_get_kid(fx.ed)) > 0);
    token = sign_raw_parts(fx.ec, header, payload);
    assert_int_equal(verify_now(token), CJ_JOSE_ALG_MISMATCH);
    free(token);
    free(header);
    free(payload);
}

static void test_verify_rejects_signature_of_other_key(void **state)
{
    char *header = header_for(fx.ed, "\"typ\":\"at+jwt\"");
    char *payload = payload_with("sub", "\"user-42\"");
    char *forged;

    (void)state;
    /* Same kid and alg, but signed by a key outside the set. */
    forged = sign_raw_parts(fx.stranger, header, payload);
    assert_int_equal(verify_now(forged), CJ_JOSE_BAD_SIGNATURE);
    free(forged);
    free(header);
    free(payload);
}

static void test_verify_rejects_key_material_and_crit(void **state)
{
    const char *extras[] = {"\"jwk\":{\"kty\":\"OKP\"}",
                            "\"jku\":\"https://x\"", "\"x5u\":\"https://x\"",
                            "\"x5c\":[\"MIIB\"]"};
    char *payload = payload_with("sub", "\"user-42\"");
    char *token;

    (void)state;
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        token = sign_payload(payload, extras[i]);
        assert_int_equal(verify_now(token), CJ_JOSE_HEADER_KEY);
        free(token);
    }
    token = sign_payload(payload, "\"crit\":[\"exp\"],\"exp\":1");
    assert_int_equal(verify_now(token), CJ_JOSE_HEADER_CRIT);
    free(token);
    free(payload);
}

static void test_verify_checks_typ(void **state)
{
    char *payload = payload_with("sub", "\"user-42\"");
    const char *bad[] = {"\"typ\":\"JWT\"", "\"typ\":\"at+jwt2\"", ""};
    const char *good[] = {"\"typ\":\"AT+JWT\"",
                          "\"typ\":\"application/at+jwt\""};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char *header = header_for(fx.ed, bad[i]);
        char *token = sign_raw_parts(fx.ed, header, payload);

        assert_int_equal(verify_now(token), CJ_JOSE_TYP);
        free(token);
        free(header);
    }
    for (size_t i = 0; i < 2; i++) {
        char *header = header_for(fx.ed, good[i]);
        char *token = sign_raw_parts(fx.ed, header, payload);

        assert_int_equal(verify_now(token), CJ_JOSE_OK);
        free(token);
        free(header);
    }
    free(payload);
}

static void test_verify_rejects_duplicate_members(void **state)
{
    char *payload = payload_with("sub", "\"user-42\"");
    char *dup_payload = NULL;
    char *header = NULL;
    char *token;

    (void)state;
    /* Header: typ twice, the second one valid. */
    assert_true(asprintf(&header,
                         "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JWT\","
                         "\"typ\":\"at+jwt\"}",
                         cj_jwk_get_kid(fx.ed)) > 0);
    token = sign_by_hand(fx.ed, header, payload);
    assert_int_equal(verify_now(token), CJ_JOSE_DUPLICATE_MEMBER);
    free(token);
    free(header);

    /* Payload: sub twice. */
    dup_payload = strdup(payload);
    dup_payload[strlen(dup_payload) - 1] = '\0';
    {
        char *twice = NULL;

        assert_true(asprintf(&twice, "%s,\"sub\":\"admin\"}", dup_payload) > 0);
        token = sign_payload(twice, "");
        assert_int_equal(verify_now(token), CJ_JOSE_DUPLICATE_MEMBER);
        free(token);
        free(twice);
    }
    free(dup_payload);
    free(payload);
}

static void test_verify_rejects_payload_that_is_not_object(void **state)
{
    const char *payloads[] = {"[1,2]", "\"text\"", "{\"sub\":", "null"};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        char *token = sign_payload(payloads[i], "");

        assert_int_equal(verify_now(token), CJ_JOSE_BAD_PAYLOAD_JSON);
        free(token);
    }
}

static void test_verify_rejects_missing_claims(void **state)
{
    const char *required[] = {"iss", "aud", "sub", "iat", "exp", "jti"};

    (void)state;
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(claim_reason(required[i], NULL),
                         CJ_JOSE_CLAIM_MISSING);
    }
    /* sid and nbf are optional. */
    assert_int_equal(claim_reason("sid", NULL), CJ_JOSE_OK);
    assert_int_equal(claim_reason("nbf", NULL), CJ_JOSE_OK);
}

static void test_verify_rejects_wrong_claim_types(void **state)
{
    char long_value[CJ_JWT_CLAIM_MAX_BYTES + 4];

    (void)state;
    assert_int_equal(claim_reason("sub", "42"), CJ_JOSE_CLAIM_TYPE);
    assert_int_equal(claim_reason("iss", "[\"" ISSUER "\"]"),
                     CJ_JOSE_CLAIM_TYPE);
    assert_int_equal(claim_reason("jti", "\"\""), CJ_JOSE_CLAIM_TYPE);
    assert_int_equal(claim_reason("sid", "{}"), CJ_JOSE_CLAIM_TYPE);
    assert_int_equal(claim_reason("aud", "7"), CJ_JOSE_CLAIM_TYPE);
    assert_int_equal(claim_reason("aud", "[\"" AUDIENCE "\", 7]"),
                     CJ_JOSE_CLAIM_TYPE);
    long_value[0] = '"';
    memset(long_value + 1, 'a', CJ_JWT_CLAIM_MAX_BYTES + 1);
    long_value[CJ_JWT_CLAIM_MAX_BYTES + 2] = '"';
    long_value[CJ_JWT_CLAIM_MAX_BYTES + 3] = '\0';
    assert_int_equal(claim_reason("sub", long_value), CJ_JOSE_CLAIM_TOO_LONG);
}

static void test_verify_rejects_non_integer_time_claims(void **state)
{
    const char *times[] = {"iat", "exp", "nbf"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(claim_reason(times[i], "1700000000.5"),
                         CJ_JOSE_TIME_RANGE);
        assert_int_equal(claim_reason(times[i], "\"1700000000\""),
                         CJ_JOSE_TIME_RANGE);
        assert_int_equal(claim_reason(times[i], "-1"), CJ_JOSE_TIME_RANGE);
        assert_int_equal(claim_reason(times[i], "253402300800"),
                         CJ_JOSE_TIME_RANGE);
        assert_int_equal(claim_reason(times[i], "true"), CJ_JOSE_TIME_RANGE);
    }
}

static void test_verify_rejects_time_order(void **state)
{
    (void)state;
    assert_int_equal(claim_reason("exp", "1700000000"), CJ_JOSE_TIME_ORDER);
    assert_int_equal(claim_reason("exp", "1699999999"), CJ_JOSE_TIME_ORDER);
    assert_int_equal(claim_reason("nbf", "1700000901"), CJ_JOSE_TIME_ORDER);
}

static void test_verify_rejects_wrong_issuer_and_audience(void **state)
{
    (void)state;
    assert_int_equal(claim_reason("iss", "\"https://evil.test\""),
                     CJ_JOSE_ISSUER);
    assert_int_equal(claim_reason("iss", "\"" ISSUER "/\""), CJ_JOSE_ISSUER);
    assert_int_equal(claim_reason("aud", "\"other-service\""),
                     CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "[\"a\",\"b\"]"), CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "[]"), CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "[\"a\",\"" AUDIENCE "\"]"),
                     CJ_JOSE_OK);
}

/* The audience must equal the configured one, not start it or extend it. */
static void test_verify_rejects_prefix_audience(void **state)
{
    (void)state;
    assert_string_equal(AUDIENCE, "cerrojo-gateway");
    assert_int_equal(claim_reason("aud", "\"cerrojo-gatewa\""),
                     CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "\"cerrojo\""), CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "\"\""), CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "\"cerrojo-gateway-admin\""),
                     CJ_JOSE_AUDIENCE);
    assert_int_equal(claim_reason("aud", "\"cerrojo-gatewayx\""),
                     CJ_JOSE_AUDIENCE);
    assert_int_equal(
        claim_reason("aud", "[\"cerrojo-gatewa\",\"cerrojo-gateway-admin\"]"),
        CJ_JOSE_AUDIENCE);
}

static void test_verify_applies_leeway_to_exp_nbf_iat(void **state)
{
    const int64_t exp = NOW + CJ_JWT_LIFETIME_DEFAULT_S;
    const int64_t leeway = CJ_JWT_LEEWAY_DEFAULT_S;
    struct cj_jwt_claims claims;
    char *token = NULL;

    (void)state;
    make_claims(&claims);
    assert_int_equal(cj_jwt_sign(fx.ed, &claims, &token), CJ_OK);
    assert_int_equal(verify_at(token, exp + leeway - 1), CJ_JOSE_OK);
    assert_int_equal(verify_at(token, exp + leeway), CJ_JOSE_EXPIRED);
    /* Before nbf (= iat here), within and beyond the leeway. */
    assert_int_equal(verify_at(token, NOW - leeway), CJ_JOSE_OK);
    assert_int_equal(verify_at(token, NOW - leeway - 1), CJ_JOSE_NOT_YET_VALID);
    free(token);

    /* iat in the future with no nbf: caught by the iat rule. */
    {
        char *payload = payload_with("nbf", NULL);
        char *signed_token = sign_payload(payload, "");

        assert_int_equal(verify_at(signed_token, NOW - leeway - 1),
                         CJ_JOSE_NOT_YET_VALID);
        free(signed_token);
        free(payload);
    }
    /* nbf earlier than a future iat: only the iat rule catches it. */
    {
        char *payload = payload_with("nbf", "1600000000");
        char *signed_token = sign_payload(payload, "");

        assert_int_equal(verify_at(signed_token, NOW - leeway - 1),
                         CJ_JOSE_ISSUED_IN_FUTURE);
        free(signed_token);
        free(payload);
    }
    /* Zero leeway is allowed and strict. */
    fx.config.leeway_s = 0;
    make_claims(&claims);
    assert_int_equal(cj_jwt_sign(fx.ed, &claims, &token), CJ_OK);
    assert_int_equal(verify_at(token, exp), CJ_JOSE_EXPIRED);
    assert_int_equal(verify_at(token, exp - 1), CJ_JOSE_OK);
    fx.config.leeway_s = CJ_JWT_LEEWAY_DEFAULT_S;
    free(token);
}

static void test_every_token_reason_maps_to_unauthenticated(void **state)
{
    (void)state;
    for (int r = CJ_JOSE_TOO_LARGE; r < CJ_JOSE_CONFIG; r++) {
        assert_int_equal(cj_jose_reason_status((enum cj_jose_reason)r),
                         CJ_ERR_UNAUTHENTICATED);
        assert_string_not_equal(cj_jose_reason_name((enum cj_jose_reason)r),
                                "unknown");
    }
    assert_int_equal(cj_jose_reason_status(CJ_JOSE_OK), CJ_OK);
    assert_int_equal(cj_jose_reason_status(CJ_JOSE_CONFIG), CJ_ERR_INVALID);
    assert_int_equal(cj_jose_reason_status(CJ_JOSE_NOMEM), CJ_ERR_NOMEM);
    assert_int_equal(cj_jose_reason_status(CJ_JOSE_INTERNAL), CJ_ERR_INTERNAL);
    assert_string_equal(cj_jose_reason_name((enum cj_jose_reason)999),
                        "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_accepts_token_of_each_alg),
        cmocka_unit_test(test_sign_writes_at_jwt_header_and_kid),
        cmocka_unit_test(test_claims_init_rejects_bad_input),
        cmocka_unit_test(test_sign_rejects_inconsistent_claims),
        cmocka_unit_test(test_config_check_rejects_bad_leeway_and_names),
        cmocka_unit_test(test_verify_rejects_bad_config),
        cmocka_unit_test(test_verify_rejects_oversize_token),
        cmocka_unit_test(test_verify_rejects_malformed_compact_form),
        cmocka_unit_test(test_verify_rejects_alg_none),
        cmocka_unit_test(test_verify_rejects_hs256_keyed_with_public_key),
        cmocka_unit_test(test_verify_rejects_other_algs),
        cmocka_unit_test(test_verify_rejects_rfc7520_hs256_ps384_es512),
        cmocka_unit_test(test_verify_rejects_unknown_and_missing_kid),
        cmocka_unit_test(test_verify_rejects_alg_not_matching_key),
        cmocka_unit_test(test_verify_rejects_signature_of_other_key),
        cmocka_unit_test(test_verify_rejects_key_material_and_crit),
        cmocka_unit_test(test_verify_checks_typ),
        cmocka_unit_test(test_verify_rejects_duplicate_members),
        cmocka_unit_test(test_verify_rejects_payload_that_is_not_object),
        cmocka_unit_test(test_verify_rejects_missing_claims),
        cmocka_unit_test(test_verify_rejects_wrong_claim_types),
        cmocka_unit_test(test_verify_rejects_non_integer_time_claims),
        cmocka_unit_test(test_verify_rejects_time_order),
        cmocka_unit_test(test_verify_rejects_wrong_issuer_and_audience),
        cmocka_unit_test(test_verify_rejects_prefix_audience),
        cmocka_unit_test(test_verify_applies_leeway_to_exp_nbf_iat),
        cmocka_unit_test(test_every_token_reason_maps_to_unauthenticated),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

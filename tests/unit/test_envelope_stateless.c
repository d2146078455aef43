/* Tests for stateless envelopes: round trips for each AEAD, the kms-style
 * open from parsed fields, the GET header form, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "envelope_stateless.h"
#include "vectors_helper.h"
#include "x25519.h"

struct fixture {
    uint8_t sk[32];
    uint8_t pk[32];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || cj_x25519_keygen(f->sk, f->pk) != CJ_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static struct cj_stateless_header header_for(uint16_t aead_id)
{
    struct cj_stateless_header hdr = {
        .version = CJ_ENVELOPE_VERSION,
        .key_id = 7,
        .suite = {CJ_HPKE_KEM_X25519_SHA256, CJ_HPKE_KDF_HKDF_SHA256, aead_id},
    };
    return hdr;
}

static const struct cj_seal_plaintext SAMPLE_PT = {
    .ts_ms = 1733300000000ULL,
    .token = (const uint8_t *)"eyJ.token.sig",
    .token_len = 13,
    .body = (const uint8_t *)"{\"login\":\"ana\"}",
    .body_len = 15,
};

/* Opens envelope as the gateway and kms do, for method and path. */
static enum cj_seal_reason server_open(const struct fixture *f,
                                       const char *envelope, size_t len,
                                       const char *method, const char *path,
                                       uint8_t **pt, size_t *pt_len,
                                       uint8_t secret[32], size_t *secret_len,
                                       struct cj_stateless_request *req)
{
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    uint8_t *aad = NULL;
    size_t aad_len = 0;

    if (cj_stateless_parse_request(envelope, len, req, &why) != CJ_OK) {
        return why;
    }
    assert_int_equal(cj_stateless_build_aad(method, path, &aad, &aad_len),
                     CJ_OK);
    enum cj_status st = cj_stateless_open(
        &req->header, f->sk, req->enc, sizeof(req->enc), aad, aad_len, req->ct,
        req->ct_len, pt, pt_len, secret, secret_len, &why);
    assert_int_equal(st, cj_seal_reason_status(why));
    free(aad);
    return why;
}

static void test_round_trip_each_aead(void **state)
{
    struct fixture *f = *state;
    static const uint16_t aeads[] = {CJ_HPKE_AEAD_AES_128_GCM,
                                     CJ_HPKE_AEAD_AES_256_GCM,
                                     CJ_HPKE_AEAD_CHACHA20};
    for (size_t i = 0; i < 3; i++) {
        struct cj_stateless_header hdr = header_for(aeads[i]);
        struct cj_stateless_client client;
        struct cj_stateless_request req;
        struct cj_seal_plaintext got;
        char *env = NULL, *resp = NULL;
        size_t env_len = 0, resp_len = 0, pt_len = 0, secret_len = 0;
        size_t body_len = 0;
        uint8_t *pt = NULL, *body = NULL, secret[32];
        enum cj_seal_reason why = CJ_SEAL_INTERNAL;

        assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "POST",
                                                   "/v1/login", &SAMPLE_PT,
                                                   &env, &env_len, &client),
                         CJ_OK);
        assert_int_equal(strlen(env), env_len);
        assert_int_equal(server_open(f, env, env_len, "POST", "/v1/login", &pt,
                                     &pt_len, secret, &secret_len, &req),
                         CJ_SEAL_OK);
        assert_int_equal(req.header.key_id, 7);
        assert_int_equal(req.header.suite.aead_id, aeads[i]);
        assert_int_equal(secret_len, client.secret_len);
        assert_memory_equal(secret, client.secret, secret_len);
        assert_int_equal(cj_seal_plaintext_decode(pt, pt_len, &got, &why),
                         CJ_OK);
        assert_int_equal(got.ts_ms, SAMPLE_PT.ts_ms);
        assert_memory_equal(got.token, SAMPLE_PT.token, SAMPLE_PT.token_len);
        assert_memory_equal(got.body, SAMPLE_PT.body, SAMPLE_PT.body_len);

        assert_int_equal(cj_stateless_seal_response(
                             aeads[i], secret, secret_len, req.enc, 32,
                             (const uint8_t *)"ok", 2, &resp, &resp_len),
                         CJ_OK);
        assert_int_equal(cj_stateless_open_response(&client, resp, resp_len,
                                                    &body, &body_len, &why),
                         CJ_OK);
        assert_int_equal(body_len, 2);
        assert_memory_equal(body, "ok", 2);

        cj_stateless_client_wipe(&client);
        cj_stateless_request_clear(&req);
        free(env);
        free(resp);
        free(pt);
        free(body);
    }
}

static void test_get_request_through_header_form(void **state)
{
    struct fixture *f = *state;
    struct cj_stateless_header hdr = header_for(CJ_HPKE_AEAD_AES_256_GCM);
    struct cj_seal_plaintext get = {
        .ts_ms = 1, .token = SAMPLE_PT.token, .token_len = SAMPLE_PT.token_len};
    struct cj_stateless_client client;
    struct cj_stateless_request req;
    char *env = NULL, *value = NULL, *json = NULL;
    size_t env_len = 0, json_len = 0, pt_len = 0, secret_len = 0;
    uint8_t *pt = NULL, secret[32];
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;

    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "GET", "/v1/me",
                                               &get, &env, &env_len, &client),
                     CJ_OK);
    assert_int_equal(cj_seal_header_encode(env, env_len, &value), CJ_OK);
    assert_true(strlen(value) <= CJ_SEAL_MAX_HEADER_LEN);
    assert_int_equal(
        cj_seal_header_decode(value, strlen(value), &json, &json_len, &why),
        CJ_OK);
    assert_int_equal(server_open(f, json, json_len, "GET", "/v1/me", &pt,
                                 &pt_len, secret, &secret_len, &req),
                     CJ_SEAL_OK);
    assert_int_equal(pt_len, 10 + SAMPLE_PT.token_len);
    cj_stateless_client_wipe(&client);
    cj_stateless_request_clear(&req);
    free(env);
    free(value);
    free(json);
    free(pt);
}

/* Seals a sample request and returns the envelope's enc and ct texts. */
static void sample_fields(const struct fixture *f, char enc[64], char ct[4096])
{
    struct cj_stateless_header hdr = header_for(CJ_HPKE_AEAD_AES_256_GCM);
    struct cj_stateless_client client;
    char *env = NULL;
    size_t env_len = 0;
    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "POST", "/v1/login",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_OK);
    assert_int_equal(sscanf(env,
                            "{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":"
                            "\"%63[^\"]\",\"ct\":\"%4095[^\"]\"}",
                            enc, ct),
                     2);
    cj_stateless_client_wipe(&client);
    free(env);
}

static void test_parse_rejection_table(void **state)
{
    struct fixture *f = *state;
    char enc[64], ct[4096], text[8192], zero_enc[64];
    struct cj_stateless_request req;
    static const uint8_t zeros[32];
    char *zero_text = cj_base64url_encode(zeros, 32);
    const struct {
        const char *format; /* %s: enc, then ct */
        enum cj_seal_reason want;
    } cases[] = {
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_OK},
        {"{\"v\":2,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_UNKNOWN_VERSION},
        {"{\"v\":0,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_UNKNOWN_VERSION},
        {"{\"v\":1,\"kid\":7,\"kdf\":2,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_UNKNOWN_SUITE},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":4,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_UNKNOWN_SUITE},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":65535,\"enc\":\"%s\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_UNKNOWN_SUITE},
        {"{\"v\":1,\"kid\":256,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_OUT_OF_RANGE},
        {"{\"v\":1,\"kid\":-1,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%"
         "s\"}",
         CJ_SEAL_OUT_OF_RANGE},
        {"{\"v\":1.5,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_NOT_INTEGER},
        {"{\"v\":\"1\",\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_WRONG_TYPE},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%s\","
         "\"kem\":32}",
         CJ_SEAL_UNKNOWN_FIELD},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"enc\":\"%s\",\"ct\":\"%s\"}",
         CJ_SEAL_MISSING_FIELD},
        {"{\"v\":1,\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\","
         "\"ct\":\"%s\"}",
         CJ_SEAL_DUPLICATE_FIELD},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":\"%s\"}"
         "garbage",
         CJ_SEAL_TRAILING_DATA},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s=\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_BAD_BASE64},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%.40s\",\"ct\":"
         "\"%s\"}",
         CJ_SEAL_BAD_LENGTH},
        {"{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":\"%s\",\"ct\":"
         "\"%.20s\"}",
         CJ_SEAL_BAD_LENGTH},
    };

    assert_non_null(zero_text);
    sample_fields(f, enc, ct);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum cj_seal_reason why = CJ_SEAL_INTERNAL;
        snprintf(text, sizeof(text), cases[i].format, enc, ct);
        enum cj_status st =
            cj_stateless_parse_request(text, strlen(text), &req, &why);
        assert_int_equal(st, cj_seal_reason_status(why));
        if (why != cases[i].want) {
            fail_msg("case %zu: got %s, expected %s", i,
                     cj_seal_reason_name(why),
                     cj_seal_reason_name(cases[i].want));
        }
        if (why != CJ_SEAL_OK) {
            assert_null(req.ct);
        }
        cj_stateless_request_clear(&req);
    }

    /* An all-zero share is a low-order point. */
    snprintf(zero_enc, sizeof(zero_enc), "%s", zero_text);
    snprintf(text, sizeof(text), cases[0].format, zero_enc, ct);
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    assert_int_equal(cj_stateless_parse_request(text, strlen(text), &req, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_LOW_ORDER_SHARE);
    free(zero_text);
}

static void test_open_rejects_changed_binding(void **state)
{
    struct fixture *f = *state;
    struct cj_stateless_header hdr = header_for(CJ_HPKE_AEAD_AES_256_GCM);
    struct cj_stateless_client client;
    struct cj_stateless_request req;
    char *env = NULL;
    size_t env_len = 0, pt_len = 0, secret_len = 0, aad_len = 0;
    uint8_t *pt = NULL, *aad = NULL, secret[32];
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;

    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "POST", "/v1/login",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_OK);
    /* Another path or method in the AAD. */
    assert_int_equal(server_open(f, env, env_len, "POST", "/v1/register", &pt,
                                 &pt_len, secret, &secret_len, &req),
                     CJ_SEAL_AUTH_FAILED);
    assert_null(pt);
    assert_int_equal(secret_len, 0);
    cj_stateless_request_clear(&req);
    assert_int_equal(server_open(f, env, env_len, "PUT", "/v1/login", &pt,
                                 &pt_len, secret, &secret_len, &req),
                     CJ_SEAL_AUTH_FAILED);

    assert_int_equal(
        cj_stateless_build_aad("POST", "/v1/login", &aad, &aad_len), CJ_OK);
    /* Another key id or AEAD in the header changes the HPKE info. */
    struct cj_stateless_header other = req.header;
    other.key_id = 8;
    assert_int_equal(cj_stateless_open(&other, f->sk, req.enc, 32, aad, aad_len,
                                       req.ct, req.ct_len, &pt, &pt_len, secret,
                                       &secret_len, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_AUTH_FAILED);
    other = req.header;
    other.suite.aead_id = CJ_HPKE_AEAD_CHACHA20;
    assert_int_equal(cj_stateless_open(&other, f->sk, req.enc, 32, aad, aad_len,
                                       req.ct, req.ct_len, &pt, &pt_len, secret,
                                       &secret_len, &why),
                     CJ_ERR_CRYPTO);
    /* A truncated or altered tag. */
    assert_int_equal(cj_stateless_open(&req.header, f->sk, req.enc, 32, aad,
                                       aad_len, req.ct, req.ct_len - 1, &pt,
                                       &pt_len, secret, &secret_len, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_AUTH_FAILED);
    req.ct[req.ct_len - 1] ^= 0x80;
    assert_int_equal(cj_stateless_open(&req.header, f->sk, req.enc, 32, aad,
                                       aad_len, req.ct, req.ct_len, &pt,
                                       &pt_len, secret, &secret_len, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_AUTH_FAILED);
    /* A wrong enc length and a low-order enc passed from kms fields. */
    assert_int_equal(cj_stateless_open(&req.header, f->sk, req.enc, 31, aad,
                                       aad_len, req.ct, req.ct_len, &pt,
                                       &pt_len, secret, &secret_len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_LENGTH);
    memset(req.enc, 0, 32);
    req.enc[0] = 1;
    assert_int_equal(cj_stateless_open(&req.header, f->sk, req.enc, 32, aad,
                                       aad_len, req.ct, req.ct_len, &pt,
                                       &pt_len, secret, &secret_len, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_LOW_ORDER_SHARE);
    other = req.header;
    other.version = 9;
    assert_int_equal(cj_stateless_open(&other, f->sk, req.enc, 32, aad, aad_len,
                                       req.ct, req.ct_len, &pt, &pt_len, secret,
                                       &secret_len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_UNKNOWN_VERSION);

    cj_stateless_client_wipe(&client);
    cj_stateless_request_clear(&req);
    free(env);
    free(aad);
}

static void test_open_response_rejections(void **state)
{
    (void)state;
    struct cj_stateless_client client = {.aead_id = CJ_HPKE_AEAD_AES_256_GCM,
                                         .secret_len = 32};
    char *resp = NULL, text[512], nonce[64], ct[256];
    size_t resp_len = 0, body_len = 0;
    uint8_t *body = NULL;
    enum cj_seal_reason why = CJ_SEAL_OK;

    cj_random_bytes(client.secret, 32);
    cj_random_bytes(client.enc, 32);
    assert_int_equal(cj_stateless_seal_response(
                         client.aead_id, client.secret, 32, client.enc, 32,
                         (const uint8_t *)"body", 4, &resp, &resp_len),
                     CJ_OK);
    assert_int_equal(sscanf(resp,
                            "{\"v\":1,\"nonce\":\"%63[^\"]\",\"ct\":\"%255[^"
                            "\"]\"}",
                            nonce, ct),
                     2);
    /* A nonce of the wrong length (16 bytes for AES-256-GCM's 32). */
    snprintf(text, sizeof(text),
             "{\"v\":1,\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"ct\":\"%s\"}",
             ct);
    assert_int_equal(cj_stateless_open_response(&client, text, strlen(text),
                                                &body, &body_len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_BAD_LENGTH);
    snprintf(text, sizeof(text), "{\"v\":3,\"nonce\":\"%s\",\"ct\":\"%s\"}",
             nonce, ct);
    assert_int_equal(cj_stateless_open_response(&client, text, strlen(text),
                                                &body, &body_len, &why),
                     CJ_ERR_INVALID);
    assert_int_equal(why, CJ_SEAL_UNKNOWN_VERSION);
    /* Another secret: the tag fails. */
    client.secret[0] ^= 1;
    assert_int_equal(cj_stateless_open_response(&client, resp, resp_len, &body,
                                                &body_len, &why),
                     CJ_ERR_CRYPTO);
    assert_int_equal(why, CJ_SEAL_AUTH_FAILED);
    assert_null(body);
    client.secret[0] ^= 1;
    assert_int_equal(cj_stateless_open_response(&client, resp, resp_len, &body,
                                                &body_len, &why),
                     CJ_OK);
    free(body);
    free(resp);
}

static void test_seal_rejects_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct cj_stateless_header hdr = header_for(CJ_HPKE_AEAD_AES_256_GCM);
    struct cj_stateless_client client;
    char *env = NULL;
    size_t env_len = 0;
    uint8_t low[32] = {0};

    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "post", "/v1/x",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "POST", "v1/x",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_stateless_seal_request(&hdr, low, "POST", "/v1/x",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_ERR_CRYPTO);
    hdr.suite.aead_id = CJ_HPKE_AEAD_EXPORT_ONLY;
    assert_int_equal(cj_stateless_seal_request(&hdr, f->pk, "POST", "/v1/x",
                                               &SAMPLE_PT, &env, &env_len,
                                               &client),
                     CJ_ERR_INVALID);
    assert_null(env);
}

/* The worked example of docs/protocol.md: fixed keys and nonce give the
 * documented envelopes byte for byte (values recomputed independently by
 * docs/protocol_example.py). */
static void test_documented_example_matches(void **state)
{
    (void)state;
    static const char want_request[] =
        "{\"v\":1,\"kid\":7,\"kdf\":1,\"aead\":2,\"enc\":"
        "\"D6poTtKIZ7l_Smot7l34zpdOdrcBjj8iocTPJnhXDyA\",\"ct\":"
        "\"SkzTLKsiD8r5U_IvR7fzpa47Jx9Wu4C6s2zJt7k9iGU85nZlZ7WOWuE\"}";
    static const char want_response[] =
        "{\"v\":1,\"nonce\":\"MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM\","
        "\"ct\":\"AACDq9H241TmOzMByF68yB4IK1C4wT-Rx4OI\"}";
    static const char want_secret[] =
        "6711292712e4d58a9281fb429fe1f1703c4b5abcf0b5bea8e7a359986f19e315";
    uint8_t sk_r[32], pk_r[32], sk_e[32], nonce[32], secret[32];
    struct cj_stateless_header hdr = header_for(CJ_HPKE_AEAD_AES_256_GCM);
    struct cj_seal_plaintext pt = {.ts_ms = 1764806400000ULL,
                                   .body =
                                       (const uint8_t *)"{\"login\":\"ana\"}",
                                   .body_len = 15};
    struct cj_stateless_client client;
    char *env = NULL, *resp = NULL;
    size_t env_len = 0, resp_len = 0;

    memset(sk_r, 0x11, sizeof(sk_r));
    memset(sk_e, 0x22, sizeof(sk_e));
    memset(nonce, 0x33, sizeof(nonce));
    hex_to(secret, 32, want_secret);
    assert_int_equal(cj_x25519_public(pk_r, sk_r), CJ_OK);
    assert_int_equal(cj_stateless_seal_request_with_ephemeral(
                         &hdr, pk_r, sk_e, "POST", "/v1/login", &pt, &env,
                         &env_len, &client),
                     CJ_OK);
    assert_string_equal(env, want_request);
    assert_int_equal(client.secret_len, 32);
    assert_memory_equal(client.secret, secret, 32);
    assert_int_equal(
        cj_stateless_seal_response_with_nonce(
            CJ_HPKE_AEAD_AES_256_GCM, client.secret, 32, client.enc, 32, nonce,
            (const uint8_t *)"{\"ok\":true}", 11, &resp, &resp_len),
        CJ_OK);
    assert_string_equal(resp, want_response);
    cj_stateless_client_wipe(&client);
    free(env);
    free(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example_matches),
        cmocka_unit_test_setup_teardown(test_round_trip_each_aead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_request_through_header_form,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_rejection_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_changed_binding,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_response_rejections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_seal_rejects_bad_arguments, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

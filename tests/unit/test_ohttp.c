/*
 * Tests for RFC 9458 encapsulation: the Appendix A request is opened with
 * the published server key and the published response is reproduced byte
 * for byte, plus round trips and rejections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "ohttp.h"
#include "vectors_helper.h"
#include "x25519.h"

static const struct cj_hpke_suite SUITE_AES128 = {CJ_HPKE_KEM_X25519_SHA256,
                                                  CJ_HPKE_KDF_HKDF_SHA256,
                                                  CJ_HPKE_AEAD_AES_128_GCM};

static void assert_field_equal(const json_t *obj, const char *key,
                               const uint8_t *got, size_t got_len)
{
    size_t len = 0;
    uint8_t *want = json_hex(obj, key, &len);
    if (!bytes_equal(got, got_len, want, len)) {
        fail_msg("field %s differs from the published value", key);
    }
    free(want);
}

static void test_response_derivation_builtin_known_answer(void **state)
{
    (void)state;
    /* RFC 9458 Appendix A response values, kept here so they run without
     * the vectors folder. */
    uint8_t secret[16], enc[32], rn[16], key[16], nonce[12], want_key[16],
        want_nonce[12], ct[3 + 16], want_ct[3 + 16];
    hex_to(secret, 16, "62d87a6ba569ee81014c2641f52bea36");
    hex_to(enc, 32,
           "4b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472");
    hex_to(rn, 16, "c789e7151fcba46158ca84b04464910d");
    hex_to(want_key, 16, "5d0172a080e428b16d298c4ea0db620d");
    hex_to(want_nonce, 12, "f6bf1aeb88d6df87007fa263");
    hex_to(want_ct, sizeof(want_ct), "86f9013e404feea014e7be4a441f234f857fbd");
    assert_int_equal(cj_ohttp_response_keys(CJ_HPKE_AEAD_AES_128_GCM, secret,
                                            16, enc, 32, rn, key, nonce),
                     CJ_OK);
    assert_memory_equal(key, want_key, 16);
    assert_memory_equal(nonce, want_nonce, 12);
    assert_int_equal(
        cj_ohttp_seal_response(CJ_HPKE_AEAD_AES_128_GCM, secret, 16, enc, 32,
                               rn, (const uint8_t *)"\x01\x40\xc8", 3, ct),
        CJ_OK);
    assert_memory_equal(ct, want_ct, sizeof(ct));
}

static void test_rfc9458_appendix_a_request_and_response(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], enc[32], hdr[7], info[64], secret[32];
    uint8_t key[32], nonce[12], response_nonce[32];
    size_t info_len, secret_len, pt_len, len;
    uint8_t *pt = NULL;
    struct cj_hpke_ctx ctx;

    if (!vectors_available("ohttp rfc9458")) {
        return;
    }
    json_t *v = load_vector_file("ohttp/rfc9458-appendix-a.json");
    assert_non_null(v);
    const json_t *derived = json_object_get(v, "derived");
    uint8_t key_id = (uint8_t)json_integer_value(json_object_get(v, "key_id"));
    struct cj_hpke_suite suite = {
        (uint16_t)json_integer_value(json_object_get(v, "kem_id")),
        (uint16_t)json_integer_value(json_object_get(v, "kdf_id")),
        (uint16_t)json_integer_value(json_object_get(v, "aead_id"))};

    /* Key configuration: the public key sits at bytes 3..35. */
    hex_to(sk_r, 32, json_string_value(json_object_get(v, "skR")));
    assert_int_equal(cj_x25519_public(pk_r, sk_r), CJ_OK);
    assert_field_equal(derived, "pkR", pk_r, 32);
    uint8_t *config = json_hex(v, "key_config", &len);
    assert_true(len >= 35);
    assert_memory_equal(config + 3, pk_r, 32);
    free(config);

    /* Header and info of section 4.3. */
    cj_ohttp_build_header(hdr, key_id, &suite);
    assert_field_equal(derived, "hdr", hdr, sizeof(hdr));
    assert_int_equal(cj_ohttp_build_info(CJ_OHTTP_REQUEST_LABEL, hdr,
                                         sizeof(hdr), info, sizeof(info),
                                         &info_len),
                     CJ_OK);
    assert_field_equal(v, "info", info, info_len);

    /* Open the published encapsulated request. */
    uint8_t *enc_request = json_hex(v, "enc_request", &len);
    assert_int_equal(cj_ohttp_open_request(key_id, &suite, sk_r, enc_request,
                                           len, &pt, &pt_len, &ctx, enc),
                     CJ_OK);
    assert_field_equal(v, "request", pt, pt_len);
    assert_field_equal(derived, "enc", enc, 32);
    free(pt);

    /* Reproduce the published encapsulated response (section 4.4). */
    assert_int_equal(cj_ohttp_export_secret(&ctx, CJ_OHTTP_RESPONSE_LABEL,
                                            secret, &secret_len),
                     CJ_OK);
    assert_field_equal(v, "secret", secret, secret_len);
    hex_to(response_nonce, cj_ohttp_response_nonce_len(suite.aead_id),
           json_string_value(json_object_get(derived, "response_nonce")));
    assert_int_equal(cj_ohttp_response_keys(suite.aead_id, secret, secret_len,
                                            enc, 32, response_nonce, key,
                                            nonce),
                     CJ_OK);
    assert_field_equal(v, "aead_key", key, 16);
    assert_field_equal(v, "aead_nonce", nonce, 12);

    size_t response_len = 0, want_len = 0;
    uint8_t *response = json_hex(v, "response", &response_len);
    uint8_t *want = json_hex(v, "enc_response", &want_len);
    size_t nonce_len = cj_ohttp_response_nonce_len(suite.aead_id);
    uint8_t *sealed = malloc(nonce_len + response_len + 16);
    assert_non_null(sealed);
    memcpy(sealed, response_nonce, nonce_len);
    assert_int_equal(cj_ohttp_seal_response(suite.aead_id, secret, secret_len,
                                            enc, 32, response_nonce, response,
                                            response_len, sealed + nonce_len),
                     CJ_OK);
    assert_true(
        bytes_equal(sealed, nonce_len + response_len + 16, want, want_len));
    printf("ohttp rfc9458 appendix A: request opened, response reproduced "
           "(%zu bytes), 0 mismatches\n",
           want_len);

    /* The client opens the published response. */
    uint8_t back[16];
    assert_true(response_len <= sizeof(back));
    assert_int_equal(cj_ohttp_open_response(suite.aead_id, secret, secret_len,
                                            enc, 32, want, want + nonce_len,
                                            want_len - nonce_len, back),
                     CJ_OK);
    assert_memory_equal(back, response, response_len);

    cj_hpke_ctx_wipe(&ctx);
    free(enc_request);
    free(response);
    free(want);
    free(sealed);
    json_decref(v);
}

static void test_open_request_rejects_wrong_header_and_tag(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], hdr[7], info[64], msg[7 + 32 + 3 + 16];
    uint8_t enc[32];
    size_t info_len, pt_len;
    uint8_t *pt = NULL;
    struct cj_hpke_ctx s, r;

    assert_int_equal(cj_x25519_keygen(sk_r, pk_r), CJ_OK);
    cj_ohttp_build_header(hdr, 7, &SUITE_AES128);
    assert_int_equal(cj_ohttp_build_info(CJ_OHTTP_REQUEST_LABEL, hdr, 7, info,
                                         sizeof(info), &info_len),
                     CJ_OK);
    assert_int_equal(
        cj_hpke_setup_base_s(&s, enc, &SUITE_AES128, pk_r, info, info_len),
        CJ_OK);
    memcpy(msg, hdr, 7);
    memcpy(msg + 7, enc, 32);
    assert_int_equal(
        cj_hpke_seal(&s, NULL, 0, (const uint8_t *)"GET", 3, msg + 39), CJ_OK);

    assert_int_equal(cj_ohttp_open_request(8, &SUITE_AES128, sk_r, msg,
                                           sizeof(msg), &pt, &pt_len, &r, enc),
                     CJ_ERR_NOT_FOUND);
    assert_int_equal(cj_ohttp_open_request(7, &SUITE_AES128, sk_r, msg, 50, &pt,
                                           &pt_len, &r, enc),
                     CJ_ERR_INVALID);
    msg[sizeof(msg) - 1] ^= 1;
    assert_int_equal(cj_ohttp_open_request(7, &SUITE_AES128, sk_r, msg,
                                           sizeof(msg), &pt, &pt_len, &r, enc),
                     CJ_ERR_CRYPTO);
    assert_null(pt);
    msg[sizeof(msg) - 1] ^= 1;
    assert_int_equal(cj_ohttp_open_request(7, &SUITE_AES128, sk_r, msg,
                                           sizeof(msg), &pt, &pt_len, &r, enc),
                     CJ_OK);
    assert_int_equal(pt_len, 3);
    assert_memory_equal(pt, "GET", 3);
    free(pt);
    cj_hpke_ctx_wipe(&s);
    cj_hpke_ctx_wipe(&r);
}

static void test_response_round_trip_and_tamper(void **state)
{
    (void)state;
    uint8_t secret[32] = {1, 2, 3}, enc[32] = {4}, rn[32], ct[4 + 16], pt[4];
    static const uint16_t aeads[] = {CJ_HPKE_AEAD_AES_128_GCM,
                                     CJ_HPKE_AEAD_AES_256_GCM,
                                     CJ_HPKE_AEAD_CHACHA20};
    for (size_t i = 0; i < 3; i++) {
        size_t n = cj_ohttp_response_nonce_len(aeads[i]);
        cj_random_bytes(rn, n);
        assert_int_equal(cj_ohttp_seal_response(aeads[i], secret, n, enc, 32,
                                                rn, (const uint8_t *)"body", 4,
                                                ct),
                         CJ_OK);
        assert_int_equal(cj_ohttp_open_response(aeads[i], secret, n, enc, 32,
                                                rn, ct, sizeof(ct), pt),
                         CJ_OK);
        assert_memory_equal(pt, "body", 4);
        rn[0] ^= 1;
        assert_int_equal(cj_ohttp_open_response(aeads[i], secret, n, enc, 32,
                                                rn, ct, sizeof(ct), pt),
                         CJ_ERR_CRYPTO);
    }
    assert_int_equal(cj_ohttp_response_nonce_len(CJ_HPKE_AEAD_AES_128_GCM), 16);
    assert_int_equal(cj_ohttp_response_nonce_len(CJ_HPKE_AEAD_AES_256_GCM), 32);
    assert_int_equal(cj_ohttp_response_nonce_len(CJ_HPKE_AEAD_EXPORT_ONLY), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_derivation_builtin_known_answer),
        cmocka_unit_test(test_rfc9458_appendix_a_request_and_response),
        cmocka_unit_test(test_open_request_rejects_wrong_header_and_tag),
        cmocka_unit_test(test_response_round_trip_and_tamper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for AEAD seal and open: RFC 8439 and Wycheproof known answers,
 * Wycheproof's aes_gcm (and chacha20_poly1305 when present), and the
 * rejection paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "aead.h"
#include "crypto_util.h"
#include "vectors_helper.h"

/* RFC 8439 2.8.2, the AEAD_CHACHA20_POLY1305 example. */
#define RFC8439_PT                                                             \
    "Ladies and Gentlemen of the class of '99: If I could offer you only one " \
    "tip for the future, sunscreen would be it."
#define RFC8439_CT                                                             \
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"         \
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"         \
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"         \
    "3ff4def08e4b7a9de576d26586cec64b6116"                                     \
    "1ae10b594f09e26a7e902ecbd0600691"

static void test_chacha20_poly1305_rfc8439_example(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], aad[12];
    size_t pt_len = strlen(RFC8439_PT), want_len = 0;
    uint8_t *want = hex_decode(RFC8439_CT, &want_len);
    uint8_t *ct = malloc(pt_len + 16);
    uint8_t *back = malloc(pt_len);
    for (size_t i = 0; i < 32; i++) {
        key[i] = (uint8_t)(0x80 + i);
    }
    hex_to(nonce, 12, "070000004041424344454647");
    hex_to(aad, 12, "50515253c0c1c2c3c4c5c6c7");
    assert_int_equal(want_len, pt_len + 16);
    assert_int_equal(cj_aead_seal(CJ_AEAD_CHACHA20_POLY1305, key, 32, nonce,
                                  aad, sizeof(aad), (const uint8_t *)RFC8439_PT,
                                  pt_len, ct),
                     CJ_OK);
    assert_memory_equal(ct, want, want_len);
    assert_int_equal(cj_aead_open(CJ_AEAD_CHACHA20_POLY1305, key, 32, nonce,
                                  aad, sizeof(aad), ct, want_len, back),
                     CJ_OK);
    assert_memory_equal(back, RFC8439_PT, pt_len);
    free(want);
    free(ct);
    free(back);
}

static void test_aes_128_gcm_known_answer(void **state)
{
    (void)state;
    /* Wycheproof aes_gcm tcId 1 (a known-answer case). */
    uint8_t key[16], nonce[12], pt[16], ct[32], want[32];
    hex_to(key, 16, "5b9604fe14eadba931b0ccf34843dab9");
    hex_to(nonce, 12, "028318abc1824029138141a2");
    hex_to(pt, 16, "001d0c231287c1182784554ca3a21908");
    hex_to(want, 32,
           "26073cc1d851beff176384dc9896d5ff0a3ea7a5487cb5f7d70fb6c58d038554");
    assert_int_equal(cj_aead_seal(CJ_AEAD_AES_128_GCM, key, 16, nonce, NULL, 0,
                                  pt, sizeof(pt), ct),
                     CJ_OK);
    assert_memory_equal(ct, want, 32);
}

static void test_open_rejects_tampering_leaves_output(void **state)
{
    (void)state;
    static const enum cj_aead_alg algs[] = {
        CJ_AEAD_AES_128_GCM, CJ_AEAD_AES_256_GCM, CJ_AEAD_CHACHA20_POLY1305};
    uint8_t key[32] = {7}, nonce[12] = {9}, ct[4 + 16], out[4];
    for (size_t a = 0; a < 3; a++) {
        size_t klen = cj_aead_key_len(algs[a]);
        assert_int_equal(cj_aead_seal(algs[a], key, klen, nonce,
                                      (const uint8_t *)"ad", 2,
                                      (const uint8_t *)"data", 4, ct),
                         CJ_OK);
        /* Flip each byte of ciphertext and tag in turn. */
        for (size_t i = 0; i < sizeof(ct); i++) {
            memset(out, 0xee, sizeof(out));
            ct[i] ^= 0x01;
            assert_int_equal(cj_aead_open(algs[a], key, klen, nonce,
                                          (const uint8_t *)"ad", 2, ct,
                                          sizeof(ct), out),
                             CJ_ERR_CRYPTO);
            assert_memory_equal(out, "\xee\xee\xee\xee", 4);
            ct[i] ^= 0x01;
        }
        assert_int_equal(cj_aead_open(algs[a], key, klen, nonce,
                                      (const uint8_t *)"AD", 2, ct, sizeof(ct),
                                      out),
                         CJ_ERR_CRYPTO);
        assert_int_equal(cj_aead_open(algs[a], key, klen, nonce,
                                      (const uint8_t *)"ad", 2, ct,
                                      sizeof(ct) - 1, out),
                         CJ_ERR_CRYPTO);
        assert_int_equal(cj_aead_open(algs[a], key, klen, nonce,
                                      (const uint8_t *)"ad", 2, ct, sizeof(ct),
                                      out),
                         CJ_OK);
        assert_memory_equal(out, "data", 4);
    }
}

static void test_rejects_bad_key_length_and_short_input(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, nonce[12] = {0}, ct[16] = {0}, out[1];
    assert_int_equal(
        cj_aead_seal(CJ_AEAD_AES_128_GCM, key, 32, nonce, NULL, 0, NULL, 0, ct),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_aead_seal((enum cj_aead_alg)9, key, 32, nonce, NULL, 0, NULL, 0, ct),
        CJ_ERR_INVALID);
    assert_int_equal(
        cj_aead_open(CJ_AEAD_AES_256_GCM, key, 32, nonce, NULL, 0, ct, 15, out),
        CJ_ERR_INVALID);
    assert_int_equal(cj_aead_key_len((enum cj_aead_alg)0), 0);
}

static void test_empty_plaintext_round_trip(void **state)
{
    (void)state;
    uint8_t key[32] = {3}, nonce[12] = {4}, ct[16];
    assert_int_equal(
        cj_aead_seal(CJ_AEAD_AES_256_GCM, key, 32, nonce, NULL, 0, NULL, 0, ct),
        CJ_OK);
    assert_int_equal(cj_aead_open(CJ_AEAD_AES_256_GCM, key, 32, nonce, NULL, 0,
                                  ct, sizeof(ct), NULL),
                     CJ_OK);
}

struct wycheproof_counts {
    size_t total;
    size_t run;
    size_t skipped;
    size_t mismatches;
};

/* Runs one Wycheproof AEAD test through seal and open, comparing the
 * outcome with its expected result. */
static void run_aead_case(enum cj_aead_alg alg, const json_t *tc,
                          struct wycheproof_counts *counts)
{
    size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
    uint8_t *key = json_hex(tc, "key", &key_len);
    uint8_t *iv = json_hex(tc, "iv", &iv_len);
    uint8_t *aad = json_hex(tc, "aad", &aad_len);
    uint8_t *msg = json_hex(tc, "msg", &msg_len);
    uint8_t *ct = json_hex(tc, "ct", &ct_len);
    uint8_t *tag = json_hex(tc, "tag", &tag_len);
    const char *result = json_string_value(json_object_get(tc, "result"));
    uint8_t *sealed = malloc(ct_len + tag_len + 16);
    uint8_t *opened = malloc(ct_len + 1);

    assert_non_null(sealed);
    assert_non_null(opened);
    memcpy(sealed, ct, ct_len);
    memcpy(sealed + ct_len, tag, tag_len);
    bool open_ok = tag_len == CJ_AEAD_TAG_LEN &&
                   cj_aead_open(alg, key, key_len, iv, aad, aad_len, sealed,
                                ct_len + tag_len, opened) == CJ_OK &&
                   bytes_equal(opened, ct_len, msg, msg_len);
    bool expect_ok = strcmp(result, "invalid") != 0;
    bool mismatch = open_ok != expect_ok;
    if (expect_ok) {
        /* A valid case must also seal to the same bytes. */
        uint8_t *again = malloc(msg_len + CJ_AEAD_TAG_LEN);
        assert_non_null(again);
        mismatch = mismatch ||
                   cj_aead_seal(alg, key, key_len, iv, aad, aad_len, msg,
                                msg_len, again) != CJ_OK ||
                   !bytes_equal(again, msg_len + CJ_AEAD_TAG_LEN, sealed,
                                ct_len + tag_len);
        free(again);
    }
    if (mismatch && strcmp(result, "acceptable") != 0) {
        fprintf(stderr, "aead tcId %lld: mismatch, expected %s\n",
                json_integer_value(json_object_get(tc, "tcId")), result);
        counts->mismatches++;
    }
    counts->run++;
    free(key);
    free(iv);
    free(aad);
    free(msg);
    free(ct);
    free(tag);
    free(sealed);
    free(opened);
}

/* Runs a Wycheproof AEAD file; returns false when the file is absent. */
static bool run_aead_file(const char *relpath, const char *name,
                          enum cj_aead_alg alg_128, enum cj_aead_alg alg_256)
{
    struct wycheproof_counts counts = {0};
    size_t gi, ti;
    const json_t *group, *tc;
    json_t *root = load_vector_file(relpath);

    if (root == NULL) {
        return false;
    }
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        json_int_t key_bits =
            json_integer_value(json_object_get(group, "keySize"));
        json_int_t iv_bits =
            json_integer_value(json_object_get(group, "ivSize"));
        json_int_t tag_bits =
            json_integer_value(json_object_get(group, "tagSize"));
        /* The API offers 128- and 256-bit keys, 96-bit nonces and 128-bit
         * tags only; other groups cannot be expressed through it. */
        bool supported = (key_bits == 128 || key_bits == 256) &&
                         iv_bits == 96 && tag_bits == 128;
        enum cj_aead_alg alg = key_bits == 128 ? alg_128 : alg_256;
        json_array_foreach(json_object_get(group, "tests"), ti, tc)
        {
            counts.total++;
            if (!supported || (key_bits == 128 && alg_128 == 0)) {
                counts.skipped++;
                continue;
            }
            run_aead_case(alg, tc, &counts);
        }
    }
    printf("wycheproof %s: %zu tests, %zu run, %zu skipped (key, nonce or "
           "tag size outside the API), %zu mismatches\n",
           name, counts.total, counts.run, counts.skipped, counts.mismatches);
    assert_int_equal(counts.total, (size_t)json_integer_value(
                                       json_object_get(root, "numberOfTests")));
    assert_true(counts.run > 0);
    assert_int_equal(counts.mismatches, 0);
    json_decref(root);
    return true;
}

static void test_wycheproof_aes_gcm(void **state)
{
    (void)state;
    if (!vectors_available("wycheproof aes_gcm")) {
        return;
    }
    assert_true(run_aead_file("wycheproof/aes_gcm_test.json", "aes_gcm",
                              CJ_AEAD_AES_128_GCM, CJ_AEAD_AES_256_GCM));
}

static void test_wycheproof_chacha20_poly1305(void **state)
{
    (void)state;
    if (!vectors_available("wycheproof chacha20_poly1305")) {
        return;
    }
    if (!run_aead_file("wycheproof/chacha20_poly1305_test.json",
                       "chacha20_poly1305", (enum cj_aead_alg)0,
                       CJ_AEAD_CHACHA20_POLY1305)) {
        printf("*** wycheproof chacha20_poly1305: SKIPPED, "
               "chacha20_poly1305_test.json is not in the vectors folder; "
               "ChaCha20-Poly1305 is covered by RFC 8439 and the HPKE "
               "vectors ***\n");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chacha20_poly1305_rfc8439_example),
        cmocka_unit_test(test_aes_128_gcm_known_answer),
        cmocka_unit_test(test_open_rejects_tampering_leaves_output),
        cmocka_unit_test(test_rejects_bad_key_length_and_short_input),
        cmocka_unit_test(test_empty_plaintext_round_trip),
        cmocka_unit_test(test_wycheproof_aes_gcm),
        cmocka_unit_test(test_wycheproof_chacha20_poly1305),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

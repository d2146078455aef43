/*
 * Tests for HPKE (RFC 9180): every X25519 entry of the published RFC 9180
 * vectors (all encryptions and exports), built-in known answers, round
 * trips, and the rejection paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "hpke.h"
#include "vectors_helper.h"

/* RFC 9180 A.1.1 (base mode, AES-128-GCM) and A.3.2 (PSK mode,
 * ChaCha20-Poly1305) values, kept here so they run without the vectors. */
#define KAT_INFO "4f6465206f6e2061204772656369616e2055726e"
#define KAT_PT   "4265617574792069732074727574682c20747275746820626561757479"
#define KAT_BASE_IKM_E                                                         \
    "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"
#define KAT_BASE_IKM_R                                                         \
    "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"
#define KAT_BASE_SK_R                                                          \
    "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"
#define KAT_BASE_PK_R                                                          \
    "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
#define KAT_BASE_ENC                                                           \
    "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
#define KAT_BASE_KEY   "4531685d41d65f03dc48f6b8302c05b0"
#define KAT_BASE_NONCE "56d890e5accaaf011cff4b7d"
#define KAT_BASE_AAD0  "436f756e742d30"
#define KAT_BASE_CT0                                                           \
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac" \
    "83d07bea87e13c512a"
#define KAT_BASE_EXPORT                                                        \
    "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"
#define KAT_PSK_IKM_E                                                          \
    "35706a0b09fb26fb45c39c2f5079c709c7cf98e43afa973f14d88ece7e29c2e3"
#define KAT_PSK_IKM_R                                                          \
    "26b923eade72941c8a85b09986cdfa3f1296852261adedc52d58d2930269812b"
#define KAT_PSK                                                                \
    "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82"
#define KAT_PSK_ID "456e6e796e20447572696e206172616e204d6f726961"
#define KAT_PSK_ENC                                                            \
    "2261299c3f40a9afc133b969a97f05e95be2c514e54f3de26cbe5644ac735b04"
#define KAT_PSK_AAD1 "436f756e742d31"
#define KAT_PSK_CT1                                                            \
    "5c3cabae2f0b3e124d8d864c116fd8f20f3f56fda988c3573b40b09997fd6c769e77c8ed" \
    "a6cda4f947f5b704a8"

static const struct cj_hpke_suite SUITE_AES128 = {CJ_HPKE_KEM_X25519_SHA256,
                                                  CJ_HPKE_KDF_HKDF_SHA256,
                                                  CJ_HPKE_AEAD_AES_128_GCM};
static const struct cj_hpke_suite SUITE_CHACHA = {
    CJ_HPKE_KEM_X25519_SHA256, CJ_HPKE_KDF_HKDF_SHA256, CJ_HPKE_AEAD_CHACHA20};

static void assert_hex_equal(const uint8_t *got, size_t len, const char *hex)
{
    size_t want_len = 0;
    uint8_t *want = hex_decode(hex, &want_len);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(want);
}

static void test_base_mode_matches_builtin_known_answer(void **state)
{
    (void)state;
    uint8_t ikm_e[32], ikm_r[32], sk_e[32], pk_e[32], sk_r[32], pk_r[32];
    uint8_t info[20], pt[29], aad[7], ct[29 + 16], back[29], out[32];
    uint8_t enc[32];
    struct cj_hpke_ctx sender, recipient;

    hex_to(ikm_e, 32, KAT_BASE_IKM_E);
    hex_to(ikm_r, 32, KAT_BASE_IKM_R);
    hex_to(info, sizeof(info), KAT_INFO);
    hex_to(pt, sizeof(pt), KAT_PT);
    hex_to(aad, sizeof(aad), KAT_BASE_AAD0);
    assert_int_equal(cj_hpke_derive_key_pair(sk_e, pk_e, ikm_e, 32), CJ_OK);
    assert_int_equal(cj_hpke_derive_key_pair(sk_r, pk_r, ikm_r, 32), CJ_OK);
    assert_hex_equal(sk_r, 32, KAT_BASE_SK_R);
    assert_hex_equal(pk_r, 32, KAT_BASE_PK_R);
    assert_hex_equal(pk_e, 32, KAT_BASE_ENC);

    assert_int_equal(cj_hpke_setup_s_with_ephemeral(
                         &sender, enc, &SUITE_AES128, CJ_HPKE_MODE_BASE, pk_r,
                         sk_e, info, sizeof(info), NULL, 0, NULL, 0),
                     CJ_OK);
    assert_hex_equal(enc, 32, KAT_BASE_ENC);
    assert_hex_equal(sender.key, sender.key_len, KAT_BASE_KEY);
    assert_hex_equal(sender.base_nonce, 12, KAT_BASE_NONCE);
    assert_int_equal(
        cj_hpke_seal(&sender, aad, sizeof(aad), pt, sizeof(pt), ct), CJ_OK);
    assert_hex_equal(ct, sizeof(ct), KAT_BASE_CT0);
    assert_int_equal(cj_hpke_export(&sender, NULL, 0, out, 32), CJ_OK);
    assert_hex_equal(out, 32, KAT_BASE_EXPORT);

    assert_int_equal(cj_hpke_setup_base_r(&recipient, &SUITE_AES128, enc, sk_r,
                                          info, sizeof(info)),
                     CJ_OK);
    assert_int_equal(
        cj_hpke_open(&recipient, aad, sizeof(aad), ct, sizeof(ct), back),
        CJ_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    cj_hpke_ctx_wipe(&sender);
    cj_hpke_ctx_wipe(&recipient);
}

static void test_psk_mode_matches_builtin_known_answer(void **state)
{
    (void)state;
    uint8_t ikm_e[32], ikm_r[32], sk_e[32], pk_e[32], sk_r[32], pk_r[32];
    uint8_t info[20], pt[29], aad[7], ct[29 + 16], back[29], psk[32],
        psk_id[22], enc[32];
    struct cj_hpke_ctx sender, recipient;

    hex_to(ikm_e, 32, KAT_PSK_IKM_E);
    hex_to(ikm_r, 32, KAT_PSK_IKM_R);
    hex_to(info, sizeof(info), KAT_INFO);
    hex_to(pt, sizeof(pt), KAT_PT);
    hex_to(aad, sizeof(aad), KAT_PSK_AAD1);
    hex_to(psk, sizeof(psk), KAT_PSK);
    hex_to(psk_id, sizeof(psk_id), KAT_PSK_ID);
    assert_int_equal(cj_hpke_derive_key_pair(sk_e, pk_e, ikm_e, 32), CJ_OK);
    assert_int_equal(cj_hpke_derive_key_pair(sk_r, pk_r, ikm_r, 32), CJ_OK);
    assert_int_equal(cj_hpke_setup_s_with_ephemeral(
                         &sender, enc, &SUITE_CHACHA, CJ_HPKE_MODE_PSK, pk_r,
                         sk_e, info, sizeof(info), psk, sizeof(psk), psk_id,
                         sizeof(psk_id)),
                     CJ_OK);
    assert_hex_equal(enc, 32, KAT_PSK_ENC);
    /* The published ciphertext is the second one, sequence number 1. */
    sender.seq = 1;
    assert_int_equal(
        cj_hpke_seal(&sender, aad, sizeof(aad), pt, sizeof(pt), ct), CJ_OK);
    assert_hex_equal(ct, sizeof(ct), KAT_PSK_CT1);

    assert_int_equal(cj_hpke_setup_psk_r(&recipient, &SUITE_CHACHA, enc, sk_r,
                                         info, sizeof(info), psk, sizeof(psk),
                                         psk_id, sizeof(psk_id)),
                     CJ_OK);
    recipient.seq = 1;
    assert_int_equal(
        cj_hpke_open(&recipient, aad, sizeof(aad), ct, sizeof(ct), back),
        CJ_OK);
    assert_memory_equal(back, pt, sizeof(pt));
    cj_hpke_ctx_wipe(&sender);
    cj_hpke_ctx_wipe(&recipient);
}

struct vector_counts {
    size_t entries;
    size_t encryptions;
    size_t exports;
};

/* Checks every encryption of one entry with both contexts, in sequence. */
static void check_encryptions(const json_t *entry, struct cj_hpke_ctx *sender,
                              struct cj_hpke_ctx *recipient,
                              struct vector_counts *counts)
{
    const json_t *encs = json_object_get(entry, "encryptions");
    size_t i;
    const json_t *item;

    assert_true(json_is_array(encs));
    json_array_foreach(encs, i, item)
    {
        size_t aad_len, ct_len, pt_len, nonce_len;
        uint8_t *aad = json_hex(item, "aad", &aad_len);
        uint8_t *want_ct = json_hex(item, "ct", &ct_len);
        uint8_t *pt = json_hex(item, "pt", &pt_len);
        uint8_t *want_nonce = json_hex(item, "nonce", &nonce_len);
        uint8_t nonce[CJ_HPKE_NONCE_LEN];
        uint8_t *ct = malloc(pt_len + CJ_HPKE_TAG_LEN);
        uint8_t *back = malloc(pt_len + 1);

        assert_non_null(ct);
        assert_non_null(back);
        assert_int_equal(sender->seq, i);
        cj_hpke_current_nonce(sender, nonce);
        assert_true(bytes_equal(nonce, sizeof(nonce), want_nonce, nonce_len));
        assert_int_equal(cj_hpke_seal(sender, aad, aad_len, pt, pt_len, ct),
                         CJ_OK);
        assert_true(bytes_equal(ct, pt_len + CJ_HPKE_TAG_LEN, want_ct, ct_len));
        assert_int_equal(
            cj_hpke_open(recipient, aad, aad_len, want_ct, ct_len, back),
            CJ_OK);
        assert_true(bytes_equal(back, pt_len, pt, pt_len));
        counts->encryptions++;
        free(aad);
        free(want_ct);
        free(pt);
        free(want_nonce);
        free(ct);
        free(back);
    }
}

/* Checks every export of one entry from both contexts. */
static void check_exports(const json_t *entry, const struct cj_hpke_ctx *s,
                          const struct cj_hpke_ctx *r,
                          struct vector_counts *counts)
{
    const json_t *exports = json_object_get(entry, "exports");
    size_t i;
    const json_t *item;

    assert_true(json_array_size(exports) > 0);
    json_array_foreach(exports, i, item)
    {
        size_t ctx_len, want_len;
        uint8_t *exp_ctx = json_hex(item, "exporter_context", &ctx_len);
        uint8_t *want = json_hex(item, "exported_value", &want_len);
        size_t len = (size_t)json_integer_value(json_object_get(item, "L"));
        uint8_t *got = malloc(len);

        assert_non_null(got);
        assert_int_equal(len, want_len);
        assert_int_equal(cj_hpke_export(s, exp_ctx, ctx_len, got, len), CJ_OK);
        assert_memory_equal(got, want, len);
        assert_int_equal(cj_hpke_export(r, exp_ctx, ctx_len, got, len), CJ_OK);
        assert_memory_equal(got, want, len);
        counts->exports++;
        free(exp_ctx);
        free(want);
        free(got);
    }
}

/* Runs one RFC 9180 entry: key derivation, both setups, key schedule
 * outputs, all encryptions and all exports. */
static void check_entry(const json_t *entry, struct vector_counts *counts)
{
    struct cj_hpke_suite suite = {
        (uint16_t)json_integer_value(json_object_get(entry, "kem_id")),
        (uint16_t)json_integer_value(json_object_get(entry, "kdf_id")),
        (uint16_t)json_integer_value(json_object_get(entry, "aead_id"))};
    uint8_t mode = (uint8_t)json_integer_value(json_object_get(entry, "mode"));
    size_t len, info_len, psk_len = 0, psk_id_len = 0;
    uint8_t sk_e[32], pk_e[32], sk_r[32], pk_r[32], enc[32];
    uint8_t *ikm, *want, *info, *psk = NULL, *psk_id = NULL;
    struct cj_hpke_ctx sender, recipient;

    ikm = json_hex(entry, "ikmE", &len);
    assert_int_equal(cj_hpke_derive_key_pair(sk_e, pk_e, ikm, len), CJ_OK);
    free(ikm);
    ikm = json_hex(entry, "ikmR", &len);
    assert_int_equal(cj_hpke_derive_key_pair(sk_r, pk_r, ikm, len), CJ_OK);
    free(ikm);
    assert_hex_equal(sk_e, 32,
                     json_string_value(json_object_get(entry, "skEm")));
    assert_hex_equal(pk_e, 32,
                     json_string_value(json_object_get(entry, "pkEm")));
    assert_hex_equal(sk_r, 32,
                     json_string_value(json_object_get(entry, "skRm")));
    assert_hex_equal(pk_r, 32,
                     json_string_value(json_object_get(entry, "pkRm")));

    info = json_hex(entry, "info", &info_len);
    if (mode == CJ_HPKE_MODE_PSK) {
        psk = json_hex(entry, "psk", &psk_len);
        psk_id = json_hex(entry, "psk_id", &psk_id_len);
    }
    assert_int_equal(cj_hpke_setup_s_with_ephemeral(
                         &sender, enc, &suite, mode, pk_r, sk_e, info, info_len,
                         psk, psk_len, psk_id, psk_id_len),
                     CJ_OK);
    assert_hex_equal(enc, 32, json_string_value(json_object_get(entry, "enc")));
    if (mode == CJ_HPKE_MODE_PSK) {
        assert_int_equal(cj_hpke_setup_psk_r(&recipient, &suite, enc, sk_r,
                                             info, info_len, psk, psk_len,
                                             psk_id, psk_id_len),
                         CJ_OK);
    } else {
        assert_int_equal(
            cj_hpke_setup_base_r(&recipient, &suite, enc, sk_r, info, info_len),
            CJ_OK);
    }
    want = json_hex(entry, "key", &len);
    assert_true(bytes_equal(sender.key, sender.key_len, want, len));
    assert_true(bytes_equal(recipient.key, recipient.key_len, want, len));
    free(want);
    if (sender.key_len > 0) {
        assert_hex_equal(
            sender.base_nonce, 12,
            json_string_value(json_object_get(entry, "base_nonce")));
        assert_memory_equal(recipient.base_nonce, sender.base_nonce, 12);
    }
    assert_hex_equal(
        sender.exporter_secret, 32,
        json_string_value(json_object_get(entry, "exporter_secret")));
    assert_memory_equal(recipient.exporter_secret, sender.exporter_secret, 32);

    check_encryptions(entry, &sender, &recipient, counts);
    check_exports(entry, &sender, &recipient, counts);
    counts->entries++;
    cj_hpke_ctx_wipe(&sender);
    cj_hpke_ctx_wipe(&recipient);
    free(info);
    free(psk);
    free(psk_id);
}

static void test_rfc9180_vectors_all_x25519_entries(void **state)
{
    (void)state;
    struct vector_counts counts = {0};
    size_t i, x25519_entries = 0;
    const json_t *entry;

    if (!vectors_available("hpke rfc9180")) {
        return;
    }
    json_t *root = load_vector_file("hpke/rfc9180.json");
    assert_non_null(root);
    json_array_foreach(root, i, entry)
    {
        if (json_integer_value(json_object_get(entry, "kem_id")) !=
                CJ_HPKE_KEM_X25519_SHA256 ||
            json_integer_value(json_object_get(entry, "kdf_id")) !=
                CJ_HPKE_KDF_HKDF_SHA256) {
            continue;
        }
        x25519_entries++;
        check_entry(entry, &counts);
    }
    printf("hpke rfc9180: %zu entries, %zu encryptions, %zu exports, "
           "0 mismatches\n",
           counts.entries, counts.encryptions, counts.exports);
    /* The file holds 8 X25519 entries: modes base and psk for each of the
     * four AEAD ids; 6 of them have 257 encryptions, all have 3 exports. */
    assert_int_equal(x25519_entries, 8);
    assert_int_equal(counts.encryptions, 6 * 257);
    assert_int_equal(counts.exports, 8 * 3);
    json_decref(root);
}

static void make_pair(uint8_t sk[32], uint8_t pk[32])
{
    assert_int_equal(
        cj_hpke_derive_key_pair(sk, pk,
                                (const uint8_t *)"0123456789abcdef"
                                                 "0123456789abcdef",
                                32),
        CJ_OK);
}

static void test_round_trip_each_aead(void **state)
{
    (void)state;
    static const uint16_t aeads[] = {CJ_HPKE_AEAD_AES_128_GCM,
                                     CJ_HPKE_AEAD_AES_256_GCM,
                                     CJ_HPKE_AEAD_CHACHA20};
    uint8_t sk_r[32], pk_r[32], enc[32], ct[5 + 16], back[5];
    make_pair(sk_r, pk_r);
    for (size_t i = 0; i < sizeof(aeads) / sizeof(aeads[0]); i++) {
        struct cj_hpke_suite suite = {CJ_HPKE_KEM_X25519_SHA256,
                                      CJ_HPKE_KDF_HKDF_SHA256, aeads[i]};
        struct cj_hpke_ctx s, r;
        assert_int_equal(cj_hpke_setup_base_s(&s, enc, &suite, pk_r,
                                              (const uint8_t *)"i", 1),
                         CJ_OK);
        assert_int_equal(cj_hpke_setup_base_r(&r, &suite, enc, sk_r,
                                              (const uint8_t *)"i", 1),
                         CJ_OK);
        for (int round = 0; round < 3; round++) {
            assert_int_equal(
                cj_hpke_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct),
                CJ_OK);
            assert_int_equal(cj_hpke_open(&r, NULL, 0, ct, sizeof(ct), back),
                             CJ_OK);
            assert_memory_equal(back, "hello", 5);
        }
        cj_hpke_ctx_wipe(&s);
        cj_hpke_ctx_wipe(&r);
    }
}

static void test_open_rejects_tampered_tag_and_keeps_seq(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], enc[32], ct[5 + 16], back[5] = {0};
    struct cj_hpke_ctx s, r;
    make_pair(sk_r, pk_r);
    assert_int_equal(
        cj_hpke_setup_base_s(&s, enc, &SUITE_AES128, pk_r, NULL, 0), CJ_OK);
    assert_int_equal(
        cj_hpke_setup_base_r(&r, &SUITE_AES128, enc, sk_r, NULL, 0), CJ_OK);
    assert_int_equal(cj_hpke_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct),
                     CJ_OK);
    ct[sizeof(ct) - 1] ^= 0x01;
    assert_int_equal(cj_hpke_open(&r, NULL, 0, ct, sizeof(ct), back),
                     CJ_ERR_CRYPTO);
    assert_int_equal(r.seq, 0);
    assert_true(cj_ct_is_zero(back, sizeof(back)));
    ct[sizeof(ct) - 1] ^= 0x01;
    assert_int_equal(
        cj_hpke_open(&r, (const uint8_t *)"x", 1, ct, sizeof(ct), back),
        CJ_ERR_CRYPTO);
    assert_int_equal(cj_hpke_open(&r, NULL, 0, ct, 15, back), CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_open(&r, NULL, 0, ct, sizeof(ct), back), CJ_OK);
    assert_int_equal(r.seq, 1);
    cj_hpke_ctx_wipe(&s);
    cj_hpke_ctx_wipe(&r);
}

static void test_setup_rejects_low_order_points(void **state)
{
    (void)state;
    /* u = 0, u = 1 and a point of order 8 (RFC 7748 low-order points). */
    static const char *low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    };
    uint8_t sk_r[32], pk_r[32], bad[32], enc[32];
    struct cj_hpke_ctx ctx;
    make_pair(sk_r, pk_r);
    for (size_t i = 0; i < 3; i++) {
        hex_to(bad, 32, low_order[i]);
        assert_int_equal(
            cj_hpke_setup_base_r(&ctx, &SUITE_AES128, bad, sk_r, NULL, 0),
            CJ_ERR_CRYPTO);
        assert_int_equal(
            cj_hpke_setup_base_s(&ctx, enc, &SUITE_AES128, bad, NULL, 0),
            CJ_ERR_CRYPTO);
    }
}

static void test_setup_rejects_bad_suite_and_psk_inputs(void **state)
{
    (void)state;
    uint8_t sk_r[32], pk_r[32], enc[32], psk[32] = {1};
    struct cj_hpke_ctx ctx;
    struct cj_hpke_suite bad_aead = SUITE_AES128;
    struct cj_hpke_suite bad_kem = SUITE_AES128;
    struct cj_hpke_suite bad_kdf = SUITE_AES128;
    bad_aead.aead_id = 0x0004;
    bad_kem.kem_id = 0x0010;
    bad_kdf.kdf_id = 0x0002;
    make_pair(sk_r, pk_r);
    assert_int_equal(cj_hpke_setup_base_s(&ctx, enc, &bad_aead, pk_r, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_setup_base_s(&ctx, enc, &bad_kem, pk_r, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_setup_base_r(&ctx, &bad_kdf, pk_r, sk_r, NULL, 0),
                     CJ_ERR_INVALID);
    /* PSK mode needs a PSK of at least 32 bytes and a non-empty id. */
    assert_int_equal(cj_hpke_setup_psk_s(&ctx, enc, &SUITE_AES128, pk_r, NULL,
                                         0, psk, 31, (const uint8_t *)"id", 2),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_setup_psk_s(&ctx, enc, &SUITE_AES128, pk_r, NULL,
                                         0, psk, 32, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_setup_psk_s(&ctx, enc, &SUITE_AES128, pk_r, NULL,
                                         0, psk, 32, (const uint8_t *)"id", 2),
                     CJ_OK);
    cj_hpke_ctx_wipe(&ctx);
    /* Base mode with a PSK is a caller error (RFC 9180 VerifyPSKInputs). */
    assert_int_equal(cj_hpke_setup_s_with_ephemeral(
                         &ctx, enc, &SUITE_AES128, CJ_HPKE_MODE_BASE, pk_r,
                         sk_r, NULL, 0, psk, 32, (const uint8_t *)"id", 2),
                     CJ_ERR_INVALID);
}

static void test_roles_and_export_only_are_enforced(void **state)
{
    (void)state;
    struct cj_hpke_suite export_only = SUITE_AES128;
    uint8_t sk_r[32], pk_r[32], enc[32], ct[1 + 16], out[32], big[1];
    struct cj_hpke_ctx s, r;
    export_only.aead_id = CJ_HPKE_AEAD_EXPORT_ONLY;
    make_pair(sk_r, pk_r);

    assert_int_equal(
        cj_hpke_setup_base_s(&s, enc, &SUITE_AES128, pk_r, NULL, 0), CJ_OK);
    assert_int_equal(
        cj_hpke_setup_base_r(&r, &SUITE_AES128, enc, sk_r, NULL, 0), CJ_OK);
    assert_int_equal(cj_hpke_seal(&r, NULL, 0, (const uint8_t *)"x", 1, ct),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_seal(&s, NULL, 0, (const uint8_t *)"x", 1, ct),
                     CJ_OK);
    assert_int_equal(cj_hpke_open(&s, NULL, 0, ct, sizeof(ct), big),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_export(&s, NULL, 0, out, 0), CJ_ERR_INVALID);
    cj_hpke_ctx_wipe(&s);
    cj_hpke_ctx_wipe(&r);

    assert_int_equal(cj_hpke_setup_base_s(&s, enc, &export_only, pk_r, NULL, 0),
                     CJ_OK);
    assert_int_equal(cj_hpke_seal(&s, NULL, 0, (const uint8_t *)"x", 1, ct),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hpke_export(&s, (const uint8_t *)"c", 1, out, 32),
                     CJ_OK);
    cj_hpke_ctx_wipe(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_mode_matches_builtin_known_answer),
        cmocka_unit_test(test_psk_mode_matches_builtin_known_answer),
        cmocka_unit_test(test_rfc9180_vectors_all_x25519_entries),
        cmocka_unit_test(test_round_trip_each_aead),
        cmocka_unit_test(test_open_rejects_tampered_tag_and_keeps_seq),
        cmocka_unit_test(test_setup_rejects_low_order_points),
        cmocka_unit_test(test_setup_rejects_bad_suite_and_psk_inputs),
        cmocka_unit_test(test_roles_and_export_only_are_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

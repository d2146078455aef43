/* Tests for X25519: RFC 7748 known answers, Wycheproof's x25519 file, and
 * the rejection of low-order peer keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "vectors_helper.h"
#include "x25519.h"

static void test_rfc7748_scalar_mult_example(void **state)
{
    (void)state;
    uint8_t scalar[32], u[32], out[32], want[32];
    /* RFC 7748 5.2, first example. */
    hex_to(scalar, 32,
           "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    hex_to(u, 32,
           "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    hex_to(want, 32,
           "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    assert_int_equal(cj_x25519_dh(out, scalar, u), CJ_OK);
    assert_memory_equal(out, want, 32);
}

static void test_rfc7748_diffie_hellman_example(void **state)
{
    (void)state;
    uint8_t a_sk[32], b_sk[32], a_pk[32], b_pk[32], want[32], s1[32], s2[32];
    /* RFC 7748 6.1. */
    hex_to(a_sk, 32,
           "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    hex_to(b_sk, 32,
           "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    assert_int_equal(cj_x25519_public(a_pk, a_sk), CJ_OK);
    assert_int_equal(cj_x25519_public(b_pk, b_sk), CJ_OK);
    hex_to(want, 32,
           "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert_memory_equal(a_pk, want, 32);
    hex_to(want, 32,
           "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    assert_memory_equal(b_pk, want, 32);
    hex_to(want, 32,
           "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_int_equal(cj_x25519_dh(s1, a_sk, b_pk), CJ_OK);
    assert_int_equal(cj_x25519_dh(s2, b_sk, a_pk), CJ_OK);
    assert_memory_equal(s1, want, 32);
    assert_memory_equal(s2, want, 32);
}

static void test_keygen_pairs_agree(void **state)
{
    (void)state;
    uint8_t a_sk[32], a_pk[32], b_sk[32], b_pk[32], s1[32], s2[32];
    assert_int_equal(cj_x25519_keygen(a_sk, a_pk), CJ_OK);
    assert_int_equal(cj_x25519_keygen(b_sk, b_pk), CJ_OK);
    assert_memory_not_equal(a_pk, b_pk, 32);
    assert_false(cj_x25519_is_low_order(a_pk));
    assert_int_equal(cj_x25519_dh(s1, a_sk, b_pk), CJ_OK);
    assert_int_equal(cj_x25519_dh(s2, b_sk, a_pk), CJ_OK);
    assert_memory_equal(s1, s2, 32);
}

static void test_dh_rejects_low_order_points(void **state)
{
    (void)state;
    static const char *low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    uint8_t sk[32], pk[32], peer[32], out[32];
    assert_int_equal(cj_x25519_keygen(sk, pk), CJ_OK);
    for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
        hex_to(peer, 32, low_order[i]);
        memset(out, 0xaa, sizeof(out));
        assert_true(cj_x25519_is_low_order(peer));
        peer[31] |= 0x80;
        assert_true(cj_x25519_is_low_order(peer));
        assert_int_equal(cj_x25519_dh(out, sk, peer), CJ_ERR_CRYPTO);
        assert_true(cj_ct_is_zero(out, sizeof(out)));
    }
}

static void test_wycheproof_x25519(void **state)
{
    (void)state;
    size_t gi, ti, total = 0, mismatches = 0, zero_rejected = 0;
    const json_t *group, *tc;

    if (!vectors_available("wycheproof x25519")) {
        return;
    }
    json_t *root = load_vector_file("wycheproof/x25519_test.json");
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        json_array_foreach(json_object_get(group, "tests"), ti, tc)
        {
            uint8_t pub[32], priv[32], want[32], got[32];
            const char *result =
                json_string_value(json_object_get(tc, "result"));
            hex_to(pub, 32, json_string_value(json_object_get(tc, "public")));
            hex_to(priv, 32, json_string_value(json_object_get(tc, "private")));
            hex_to(want, 32, json_string_value(json_object_get(tc, "shared")));
            enum cj_status st = cj_x25519_dh(got, priv, pub);
            bool zero = cj_ct_is_zero(want, 32);
            bool mismatch;
            if (zero) {
                /* cerrojo's policy: an all-zero secret is always rejected. */
                mismatch = st != CJ_ERR_CRYPTO;
                zero_rejected += st == CJ_ERR_CRYPTO;
            } else if (strcmp(result, "invalid") == 0) {
                mismatch = st == CJ_OK && memcmp(got, want, 32) == 0;
            } else {
                /* valid and acceptable non-zero cases must match. */
                mismatch = st != CJ_OK || memcmp(got, want, 32) != 0;
            }
            if (mismatch) {
                fprintf(stderr, "x25519 tcId %lld: mismatch (%s)\n",
                        json_integer_value(json_object_get(tc, "tcId")),
                        result);
                mismatches++;
            }
            total++;
        }
    }
    printf("wycheproof x25519: %zu tests, %zu mismatches (%zu all-zero "
           "shared secrets rejected)\n",
           total, mismatches, zero_rejected);
    assert_int_equal(total, (size_t)json_integer_value(
                                json_object_get(root, "numberOfTests")));
    assert_true(zero_rejected > 0);
    assert_int_equal(mismatches, 0);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7748_scalar_mult_example),
        cmocka_unit_test(test_rfc7748_diffie_hellman_example),
        cmocka_unit_test(test_keygen_pairs_agree),
        cmocka_unit_test(test_dh_rejects_low_order_points),
        cmocka_unit_test(test_wycheproof_x25519),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

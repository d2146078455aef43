/* Tests for HKDF-SHA256: RFC 5869 known answers and Wycheproof's
 * hkdf_sha256 file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hkdf.h"
#include "vectors_helper.h"

static void test_rfc5869_case1_matches(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], prk[32], want_prk[32], okm[42],
        want_okm[42];
    memset(ikm, 0x0b, sizeof(ikm));
    for (size_t i = 0; i < sizeof(salt); i++) {
        salt[i] = (uint8_t)i;
    }
    for (size_t i = 0; i < sizeof(info); i++) {
        info[i] = (uint8_t)(0xf0 + i);
    }
    hex_to(want_prk, 32,
           "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    hex_to(want_okm, 42,
           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
           "34007208d5b887185865");
    assert_int_equal(cj_hkdf_extract(prk, salt, sizeof(salt), ikm, sizeof(ikm)),
                     CJ_OK);
    assert_memory_equal(prk, want_prk, 32);
    assert_int_equal(
        cj_hkdf_expand(okm, sizeof(okm), prk, 32, info, sizeof(info)), CJ_OK);
    assert_memory_equal(okm, want_okm, 42);
    memset(okm, 0, sizeof(okm));
    assert_int_equal(cj_hkdf(okm, sizeof(okm), salt, sizeof(salt), ikm,
                             sizeof(ikm), info, sizeof(info)),
                     CJ_OK);
    assert_memory_equal(okm, want_okm, 42);
}

static void test_rfc5869_case3_empty_salt_and_info(void **state)
{
    (void)state;
    uint8_t ikm[22], prk[32], want_prk[32], okm[42], want_okm[42];
    memset(ikm, 0x0b, sizeof(ikm));
    hex_to(want_prk, 32,
           "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
    hex_to(want_okm, 42,
           "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
           "9d201395faa4b61a96c8");
    assert_int_equal(cj_hkdf_extract(prk, NULL, 0, ikm, sizeof(ikm)), CJ_OK);
    assert_memory_equal(prk, want_prk, 32);
    assert_int_equal(cj_hkdf_expand(okm, sizeof(okm), prk, 32, NULL, 0), CJ_OK);
    assert_memory_equal(okm, want_okm, 42);
}

static void test_expand_rejects_bad_lengths(void **state)
{
    (void)state;
    uint8_t prk[32] = {1}, out[1];
    static uint8_t big[CJ_HKDF_SHA256_MAX_OKM_LEN + 1];
    assert_int_equal(cj_hkdf_expand(out, 0, prk, 32, NULL, 0), CJ_ERR_INVALID);
    assert_int_equal(cj_hkdf_expand(big, sizeof(big), prk, 32, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hkdf_expand(out, 1, prk, 31, NULL, 0), CJ_ERR_INVALID);
    assert_int_equal(cj_hkdf_expand(big, sizeof(big) - 1, prk, 32, NULL, 0),
                     CJ_OK);
}

static void test_wycheproof_hkdf_sha256(void **state)
{
    (void)state;
    size_t gi, ti, total = 0, mismatches = 0;
    const json_t *group, *tc;

    if (!vectors_available("wycheproof hkdf_sha256")) {
        return;
    }
    json_t *root = load_vector_file("wycheproof/hkdf_sha256_test.json");
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        json_array_foreach(json_object_get(group, "tests"), ti, tc)
        {
            size_t ikm_len, salt_len, info_len, okm_len;
            uint8_t *ikm = json_hex(tc, "ikm", &ikm_len);
            uint8_t *salt = json_hex(tc, "salt", &salt_len);
            uint8_t *info = json_hex(tc, "info", &info_len);
            uint8_t *want = json_hex(tc, "okm", &okm_len);
            size_t size =
                (size_t)json_integer_value(json_object_get(tc, "size"));
            const char *result =
                json_string_value(json_object_get(tc, "result"));
            uint8_t *okm = malloc(size + 1);
            assert_non_null(okm);

            enum cj_status st = cj_hkdf(okm, size, salt, salt_len, ikm, ikm_len,
                                        info, info_len);
            bool ok = st == CJ_OK && bytes_equal(okm, size, want, okm_len);
            bool expect_ok = strcmp(result, "invalid") != 0;
            if (ok != expect_ok && strcmp(result, "acceptable") != 0) {
                fprintf(stderr, "hkdf tcId %lld: got %s, expected %s\n",
                        json_integer_value(json_object_get(tc, "tcId")),
                        ok ? "valid" : "invalid", result);
                mismatches++;
            }
            total++;
            free(ikm);
            free(salt);
            free(info);
            free(want);
            free(okm);
        }
    }
    printf("wycheproof hkdf_sha256: %zu tests, %zu mismatches\n", total,
           mismatches);
    assert_int_equal(total, (size_t)json_integer_value(
                                json_object_get(root, "numberOfTests")));
    assert_int_equal(mismatches, 0);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869_case1_matches),
        cmocka_unit_test(test_rfc5869_case3_empty_salt_and_info),
        cmocka_unit_test(test_expand_rejects_bad_lengths),
        cmocka_unit_test(test_wycheproof_hkdf_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

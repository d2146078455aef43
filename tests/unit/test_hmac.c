/* Tests for HMAC-SHA256: RFC 4231 known answers and Wycheproof's
 * hmac_sha256 file, including truncated tags, which verify rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hmac.h"
#include "vectors_helper.h"

static void test_rfc4231_case2_matches(void **state)
{
    (void)state;
    uint8_t tag[32], want[32];
    static const char msg[] = "what do ya want for nothing?";
    hex_to(want, 32,
           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(cj_hmac_sha256(tag, (const uint8_t *)"Jefe", 4,
                                    (const uint8_t *)msg, strlen(msg)),
                     CJ_OK);
    assert_memory_equal(tag, want, 32);
}

static void test_rfc4231_case1_matches(void **state)
{
    (void)state;
    uint8_t key[20], tag[32], want[32];
    memset(key, 0x0b, sizeof(key));
    hex_to(want, 32,
           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_int_equal(
        cj_hmac_sha256(tag, key, sizeof(key), (const uint8_t *)"Hi There", 8),
        CJ_OK);
    assert_memory_equal(tag, want, 32);
}

static void test_verify_rejects_altered_tag(void **state)
{
    (void)state;
    uint8_t tag[32];
    assert_int_equal(
        cj_hmac_sha256(tag, (const uint8_t *)"k", 1, (const uint8_t *)"m", 1),
        CJ_OK);
    assert_int_equal(cj_hmac_sha256_verify(tag, 32, (const uint8_t *)"k", 1,
                                           (const uint8_t *)"m", 1),
                     CJ_OK);
    tag[31] ^= 1;
    assert_int_equal(cj_hmac_sha256_verify(tag, 32, (const uint8_t *)"k", 1,
                                           (const uint8_t *)"m", 1),
                     CJ_ERR_CRYPTO);
    assert_int_equal(cj_hmac_sha256_verify(tag, 0, (const uint8_t *)"k", 1,
                                           (const uint8_t *)"m", 1),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_hmac_sha256_verify(tag, 33, (const uint8_t *)"k", 1,
                                           (const uint8_t *)"m", 1),
                     CJ_ERR_INVALID);
}

static void test_verify_rejects_truncated_tag(void **state)
{
    (void)state;
    uint8_t tag[CJ_HMAC_SHA256_LEN];

    assert_int_equal(
        cj_hmac_sha256(tag, (const uint8_t *)"k", 1, (const uint8_t *)"m", 1),
        CJ_OK);
    /* Each prefix is the correct truncated HMAC, so only the length check
     * can reject it. */
    for (size_t len = 1; len < CJ_HMAC_SHA256_LEN; len++) {
        assert_int_equal(cj_hmac_sha256_verify(tag, len, (const uint8_t *)"k",
                                               1, (const uint8_t *)"m", 1),
                         CJ_ERR_INVALID);
    }
}

/* Checks one Wycheproof case: a full tag through cj_hmac_sha256_verify, a
 * truncated one against the prefix of the computed HMAC. */
static bool wycheproof_tag_matches(const uint8_t *tag, size_t tag_len,
                                   size_t group_tag_len, const uint8_t *key,
                                   size_t key_len, const uint8_t *msg,
                                   size_t msg_len)
{
    uint8_t full[CJ_HMAC_SHA256_LEN];

    if (tag_len != group_tag_len) {
        return false;
    }
    if (tag_len == CJ_HMAC_SHA256_LEN) {
        return cj_hmac_sha256_verify(tag, tag_len, key, key_len, msg,
                                     msg_len) == CJ_OK;
    }
    assert_int_equal(
        cj_hmac_sha256_verify(tag, tag_len, key, key_len, msg, msg_len),
        CJ_ERR_INVALID);
    assert_int_equal(cj_hmac_sha256(full, key, key_len, msg, msg_len), CJ_OK);
    return memcmp(full, tag, tag_len) == 0;
}

static void test_wycheproof_hmac_sha256(void **state)
{
    (void)state;
    size_t gi, ti, total = 0, mismatches = 0;
    const json_t *group, *tc;

    if (!vectors_available("wycheproof hmac_sha256")) {
        return;
    }
    json_t *root = load_vector_file("wycheproof/hmac_sha256_test.json");
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, group)
    {
        size_t tag_bits =
            (size_t)json_integer_value(json_object_get(group, "tagSize"));
        json_array_foreach(json_object_get(group, "tests"), ti, tc)
        {
            size_t key_len, msg_len, tag_len;
            uint8_t *key = json_hex(tc, "key", &key_len);
            uint8_t *msg = json_hex(tc, "msg", &msg_len);
            uint8_t *tag = json_hex(tc, "tag", &tag_len);
            const char *result =
                json_string_value(json_object_get(tc, "result"));

            /* A tag of another length than the group's is a mismatch. */
            bool ok = wycheproof_tag_matches(tag, tag_len, tag_bits / 8, key,
                                             key_len, msg, msg_len);
            bool expect_ok = strcmp(result, "invalid") != 0;
            if (ok != expect_ok && strcmp(result, "acceptable") != 0) {
                fprintf(stderr, "hmac tcId %lld: got %s, expected %s\n",
                        json_integer_value(json_object_get(tc, "tcId")),
                        ok ? "valid" : "invalid", result);
                mismatches++;
            }
            total++;
            free(key);
            free(msg);
            free(tag);
        }
    }
    printf("wycheproof hmac_sha256: %zu tests, %zu mismatches\n", total,
           mismatches);
    assert_int_equal(total, (size_t)json_integer_value(
                                json_object_get(root, "numberOfTests")));
    assert_int_equal(mismatches, 0);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231_case2_matches),
        cmocka_unit_test(test_rfc4231_case1_matches),
        cmocka_unit_test(test_verify_rejects_altered_tag),
        cmocka_unit_test(test_verify_rejects_truncated_tag),
        cmocka_unit_test(test_wycheproof_hmac_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

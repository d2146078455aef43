/* Tests for kms wrap formats: data keys bound to a user and KEK version,
 * stored keys bound to a label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "kms_wrap.h"

static unsigned char kek[KMS_WRAP_KEY_BYTES];
static unsigned char data_key[KMS_DATA_KEY_BYTES];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(kek, sizeof(kek));
    randombytes_buf(data_key, sizeof(data_key));
    return 0;
}

static void wrap_for(const char *user, uint32_t version, unsigned char *out)
{
    assert_int_equal(kms_wrap_data_key(kek, version, user, data_key, out),
                     CJ_OK);
}

static void test_data_key_round_trip(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;

    wrap_for("user-1", 7, wrapped);
    assert_int_equal(wrapped[0], KMS_WRAP_FORMAT);
    assert_int_equal(
        kms_wrapped_data_key_version(wrapped, sizeof(wrapped), &version),
        CJ_OK);
    assert_int_equal(version, 7);
    assert_int_equal(
        kms_unwrap_data_key(kek, 7, "user-1", wrapped, sizeof(wrapped), opened),
        CJ_OK);
    assert_memory_equal(opened, data_key, sizeof(opened));
}

static void test_header_carries_version_big_endian(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];

    wrap_for("u", 0x01020304, wrapped);
    assert_int_equal(wrapped[1], 0x01);
    assert_int_equal(wrapped[2], 0x02);
    assert_int_equal(wrapped[3], 0x03);
    assert_int_equal(wrapped[4], 0x04);
}

static void test_two_wraps_differ(void **state)
{
    (void)state;
    unsigned char a[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char b[KMS_WRAPPED_DATA_KEY_BYTES];

    wrap_for("user-1", 1, a);
    wrap_for("user-1", 1, b);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void test_unwrap_rejects_other_user(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];

    wrap_for("user-1", 1, wrapped);
    memset(opened, 0xAA, sizeof(opened));
    assert_int_equal(
        kms_unwrap_data_key(kek, 1, "user-2", wrapped, sizeof(wrapped), opened),
        CJ_ERR_CRYPTO);
    unsigned char zero[KMS_DATA_KEY_BYTES] = {0};
    assert_memory_equal(opened, zero, sizeof(zero));
}

static void test_unwrap_rejects_each_flipped_byte(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];

    wrap_for("user-1", 1, wrapped);
    for (size_t i = 0; i < sizeof(wrapped); i++) {
        wrapped[i] ^= 0x01;
        assert_int_not_equal(kms_unwrap_data_key(kek, 1, "user-1", wrapped,
                                                 sizeof(wrapped), opened),
                             CJ_OK);
        wrapped[i] ^= 0x01;
    }
}

static void test_unwrap_rejects_truncated_input(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;

    wrap_for("user-1", 1, wrapped);
    assert_int_equal(kms_unwrap_data_key(kek, 1, "user-1", wrapped,
                                         sizeof(wrapped) - 1, opened),
                     CJ_ERR_INVALID);
    assert_int_equal(kms_wrapped_data_key_version(wrapped, 4, &version),
                     CJ_ERR_INVALID);
    assert_int_equal(kms_wrapped_data_key_version(NULL, 0, &version),
                     CJ_ERR_INVALID);
}

static void test_unwrap_rejects_wrong_kek(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    unsigned char other[KMS_WRAP_KEY_BYTES];

    wrap_for("user-1", 1, wrapped);
    randombytes_buf(other, sizeof(other));
    assert_int_equal(kms_unwrap_data_key(other, 1, "user-1", wrapped,
                                         sizeof(wrapped), opened),
                     CJ_ERR_CRYPTO);
    /* A KEK of another version than the header names is not even tried. */
    assert_int_equal(
        kms_unwrap_data_key(kek, 2, "user-1", wrapped, sizeof(wrapped), opened),
        CJ_ERR_INVALID);
}

static void test_wrap_rejects_bad_user_id(void **state)
{
    (void)state;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    char long_id[KMS_USER_ID_MAX + 2];

    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(kms_wrap_data_key(kek, 1, "", data_key, wrapped),
                     CJ_ERR_INVALID);
    assert_int_equal(kms_wrap_data_key(kek, 1, long_id, data_key, wrapped),
                     CJ_ERR_INVALID);
    assert_int_equal(kms_wrap_data_key(kek, 0, "u", data_key, wrapped),
                     CJ_ERR_INVALID);
}

static void test_stored_round_trip(void **state)
{
    (void)state;
    const unsigned char secret[] = "a private key in PKCS#8";
    unsigned char wrapped[sizeof(secret) + KMS_STORED_OVERHEAD];
    unsigned char *plain = NULL;
    size_t plain_len = 0;

    assert_int_equal(kms_stored_wrap_len(sizeof(secret)), sizeof(wrapped));
    assert_int_equal(
        kms_wrap_stored(kek, "signing/abc", secret, sizeof(secret), wrapped),
        CJ_OK);
    assert_int_equal(kms_unwrap_stored(kek, "signing/abc", wrapped,
                                       sizeof(wrapped), &plain, &plain_len),
                     CJ_OK);
    assert_int_equal(plain_len, sizeof(secret));
    assert_memory_equal(plain, secret, sizeof(secret));
    sodium_free(plain);
}

static void test_stored_rejects_other_label(void **state)
{
    (void)state;
    const unsigned char secret[32] = {1, 2, 3};
    unsigned char wrapped[sizeof(secret) + KMS_STORED_OVERHEAD];
    unsigned char *plain = NULL;
    size_t plain_len = 0;

    assert_int_equal(
        kms_wrap_stored(kek, "kek/1", secret, sizeof(secret), wrapped), CJ_OK);
    assert_int_equal(kms_unwrap_stored(kek, "kek/2", wrapped, sizeof(wrapped),
                                       &plain, &plain_len),
                     CJ_ERR_CRYPTO);
    assert_null(plain);
}

static void test_stored_rejects_other_root_and_tamper(void **state)
{
    (void)state;
    const unsigned char secret[32] = {9};
    unsigned char wrapped[sizeof(secret) + KMS_STORED_OVERHEAD];
    unsigned char other[KMS_WRAP_KEY_BYTES];
    unsigned char *plain = NULL;
    size_t plain_len = 0;

    randombytes_buf(other, sizeof(other));
    assert_int_equal(
        kms_wrap_stored(kek, "kek/1", secret, sizeof(secret), wrapped), CJ_OK);
    assert_int_equal(kms_unwrap_stored(other, "kek/1", wrapped, sizeof(wrapped),
                                       &plain, &plain_len),
                     CJ_ERR_CRYPTO);
    wrapped[sizeof(wrapped) - 1] ^= 0x80;
    assert_int_equal(kms_unwrap_stored(kek, "kek/1", wrapped, sizeof(wrapped),
                                       &plain, &plain_len),
                     CJ_ERR_CRYPTO);
    assert_int_equal(kms_unwrap_stored(kek, "kek/1", wrapped,
                                       KMS_STORED_OVERHEAD, &plain, &plain_len),
                     CJ_ERR_INVALID);
    assert_null(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_key_round_trip),
        cmocka_unit_test(test_header_carries_version_big_endian),
        cmocka_unit_test(test_two_wraps_differ),
        cmocka_unit_test(test_unwrap_rejects_other_user),
        cmocka_unit_test(test_unwrap_rejects_each_flipped_byte),
        cmocka_unit_test(test_unwrap_rejects_truncated_input),
        cmocka_unit_test(test_unwrap_rejects_wrong_kek),
        cmocka_unit_test(test_wrap_rejects_bad_user_id),
        cmocka_unit_test(test_stored_round_trip),
        cmocka_unit_test(test_stored_rejects_other_label),
        cmocka_unit_test(test_stored_rejects_other_root_and_tamper),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

/* Tests for the encryption of private and protected data fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "auth_data_crypto.h"

#define USER_A "11111111-1111-4111-8111-111111111111"
#define USER_B "22222222-2222-4222-8222-222222222222"

static const uint8_t key_a[AUTH_DATA_KEY_SIZE] = {1, 2, 3, 4, 5};
static const uint8_t key_b[AUTH_DATA_KEY_SIZE] = {9, 8, 7, 6, 5};
static const char value[] = "+34 600 000 000";

struct sealed {
    uint8_t nonce[CJ_AEAD_NONCE_LEN];
    uint8_t ct[sizeof(value) - 1 + CJ_AEAD_TAG_LEN];
};

static struct sealed seal_a(void)
{
    struct sealed s;

    assert_int_equal(auth_data_seal(key_a, USER_A, AUTH_DATA_PRIVATE, "phone",
                                    (const uint8_t *)value, sizeof(value) - 1,
                                    s.nonce, s.ct),
                     CJ_OK);
    return s;
}

static enum cj_status open_with(const uint8_t *key, const char *user,
                                enum auth_data_class cls, const char *field,
                                const struct sealed *s, uint8_t *out)
{
    return auth_data_open(key, user, cls, field, s->nonce, sizeof(s->nonce),
                          s->ct, sizeof(s->ct), out);
}

static void test_data_round_trip(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(
        open_with(key_a, USER_A, AUTH_DATA_PRIVATE, "phone", &s, out), CJ_OK);
    assert_memory_equal(out, value, sizeof(out));
}

static void test_data_other_user_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(
        open_with(key_a, USER_B, AUTH_DATA_PRIVATE, "phone", &s, out),
        CJ_ERR_CRYPTO);
}

static void test_data_other_class_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(
        open_with(key_a, USER_A, AUTH_DATA_PROTECTED, "phone", &s, out),
        CJ_ERR_CRYPTO);
}

static void test_data_other_field_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(
        open_with(key_a, USER_A, AUTH_DATA_PRIVATE, "phone2", &s, out),
        CJ_ERR_CRYPTO);
}

static void test_data_other_key_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(
        open_with(key_b, USER_A, AUTH_DATA_PRIVATE, "phone", &s, out),
        CJ_ERR_CRYPTO);
}

static void test_data_tampered_ciphertext_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    s.ct[0] ^= 1;
    assert_int_equal(
        open_with(key_a, USER_A, AUTH_DATA_PRIVATE, "phone", &s, out),
        CJ_ERR_CRYPTO);
}

static void test_data_nonces_are_fresh(void **state)
{
    struct sealed a = seal_a();
    struct sealed b = seal_a();

    (void)state;
    assert_memory_not_equal(a.nonce, b.nonce, sizeof(a.nonce));
}

static void test_data_short_input_fails(void **state)
{
    struct sealed s = seal_a();
    uint8_t out[sizeof(value) - 1];

    (void)state;
    assert_int_equal(auth_data_open(key_a, USER_A, AUTH_DATA_PRIVATE, "phone",
                                    s.nonce, 11, s.ct, sizeof(s.ct), out),
                     CJ_ERR_CRYPTO);
    assert_int_equal(auth_data_open(key_a, USER_A, AUTH_DATA_PRIVATE, "phone",
                                    s.nonce, sizeof(s.nonce), s.ct, 15, out),
                     CJ_ERR_CRYPTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_round_trip),
        cmocka_unit_test(test_data_other_user_fails),
        cmocka_unit_test(test_data_other_class_fails),
        cmocka_unit_test(test_data_other_field_fails),
        cmocka_unit_test(test_data_other_key_fails),
        cmocka_unit_test(test_data_tampered_ciphertext_fails),
        cmocka_unit_test(test_data_nonces_are_fresh),
        cmocka_unit_test(test_data_short_input_fails),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

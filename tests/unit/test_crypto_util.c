/* Tests for the crypto utilities: init, random bytes, constant-time
 * comparison, wiping and guarded secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto_util.h"

/* Runs first, because OpenSSL decides once per process whether to load its
 * error strings. */
static void test_openssl_error_strings_skipped(void **state)
{
    (void)state;
    char text[256];

    assert_int_equal(cj_openssl_skip_error_strings(), CJ_OK);
    /* The first error a thread records would otherwise load the strings. */
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    unsigned long code = ERR_peek_last_error();
    assert_int_equal(ERR_GET_REASON(code), EVP_R_BAD_DECRYPT);
    assert_null(ERR_reason_error_string(code));
    /* Without strings the code still shows in numbers. */
    ERR_error_string_n(code, text, sizeof(text));
    assert_non_null(strstr(text, "error:"));
    assert_null(strstr(text, "bad decrypt"));
    ERR_clear_error();
}

static void test_init_is_idempotent(void **state)
{
    (void)state;
    assert_int_equal(cj_crypto_init(), CJ_OK);
    assert_int_equal(cj_crypto_init(), CJ_OK);
}

static void test_random_bytes_differ_between_calls(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0};
    cj_random_bytes(a, sizeof(a));
    cj_random_bytes(b, sizeof(b));
    /* Two equal 256-bit draws, or an all-zero one, mean a broken source. */
    assert_memory_not_equal(a, b, sizeof(a));
    assert_false(cj_ct_is_zero(a, sizeof(a)));
}

static void test_ct_equal_detects_any_difference(void **state)
{
    (void)state;
    uint8_t a[40], b[40];
    memset(a, 0x5a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(cj_ct_equal(a, b, sizeof(a)));
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x80;
        assert_false(cj_ct_equal(a, b, sizeof(a)));
        b[i] ^= 0x80;
    }
    assert_true(cj_ct_equal(a, b, 0));
}

static void test_ct_is_zero_checks_every_byte(void **state)
{
    (void)state;
    uint8_t buf[33] = {0};
    assert_true(cj_ct_is_zero(buf, sizeof(buf)));
    buf[32] = 1;
    assert_false(cj_ct_is_zero(buf, sizeof(buf)));
}

static void test_wipe_zeroes_buffer_and_accepts_null(void **state)
{
    (void)state;
    uint8_t buf[16];
    memset(buf, 0xff, sizeof(buf));
    cj_wipe(buf, sizeof(buf));
    assert_true(cj_ct_is_zero(buf, sizeof(buf)));
    cj_wipe(NULL, 10);
}

static void test_secret_new_copies_and_frees(void **state)
{
    (void)state;
    struct cj_secret *s = cj_secret_new(32);
    assert_non_null(s);
    assert_int_equal(s->len, 32);
    assert_true(cj_ct_is_zero(s->bytes, s->len));
    cj_secret_free(s);

    s = cj_secret_from("key material", 12);
    assert_non_null(s);
    assert_memory_equal(s->bytes, "key material", 12);
    cj_secret_free(s);
    cj_secret_free(NULL);
    assert_null(cj_secret_new(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_error_strings_skipped),
        cmocka_unit_test(test_init_is_idempotent),
        cmocka_unit_test(test_random_bytes_differ_between_calls),
        cmocka_unit_test(test_ct_equal_detects_any_difference),
        cmocka_unit_test(test_ct_is_zero_checks_every_byte),
        cmocka_unit_test(test_wipe_zeroes_buffer_and_accepts_null),
        cmocka_unit_test(test_secret_new_copies_and_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the pure parts of kms token signing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kms_sign.h"

static void test_expiry_step_rounds_up_to_minute(void **state)
{
    (void)state;
    assert_int_equal(kms_token_expiry_step(1700000001), 1700000040);
    assert_int_equal(kms_token_expiry_step(1700000039), 1700000040);
    assert_int_equal(kms_token_expiry_step(1700000041), 1700000100);
}

static void test_expiry_step_keeps_exact_minute(void **state)
{
    (void)state;
    assert_int_equal(kms_token_expiry_step(1700000040), 1700000040);
    assert_int_equal(kms_token_expiry_step(0), 0);
}

static void test_expiry_step_never_lowers(void **state)
{
    (void)state;
    for (int64_t exp = 1700000000; exp < 1700000000 + 3 * 60; exp++) {
        int64_t step = kms_token_expiry_step(exp);
        assert_true(step >= exp);
        assert_true(step - exp < KMS_TOKEN_EXPIRY_STEP_S);
        assert_int_equal(step % KMS_TOKEN_EXPIRY_STEP_S, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expiry_step_rounds_up_to_minute),
        cmocka_unit_test(test_expiry_step_keeps_exact_minute),
        cmocka_unit_test(test_expiry_step_never_lowers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

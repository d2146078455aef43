/* Tests for the refresh-token rotation decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "auth_refresh.h"

#define HOUR_MS  (3600LL * 1000)
#define DAY_MS   (24 * HOUR_MS)
#define NOW_MS   1700000000000LL
#define GRACE_MS (30LL * 1000)

static struct auth_refresh_row live_token(void)
{
    struct auth_refresh_row row;

    memset(&row, 0, sizeof(row));
    row.issued_at_ms = NOW_MS - HOUR_MS;
    row.expires_at_ms = NOW_MS + 29 * DAY_MS;
    row.family_expires_at_ms = NOW_MS + 80 * DAY_MS;
    return row;
}

static void test_live_token_rotates(void **state)
{
    struct auth_refresh_row token = live_token();

    (void)state;
    assert_int_equal(auth_refresh_decide(&token, NULL, NOW_MS, 0, 0),
                     AUTH_REFRESH_ROTATE);
}

static void test_expired_token_is_expired(void **state)
{
    struct auth_refresh_row token = live_token();

    (void)state;
    token.expires_at_ms = NOW_MS;
    assert_int_equal(auth_refresh_decide(&token, NULL, NOW_MS, 0, 0),
                     AUTH_REFRESH_EXPIRED);
}

static void test_family_expiry_ends_token(void **state)
{
    struct auth_refresh_row token = live_token();

    (void)state;
    token.family_expires_at_ms = NOW_MS - 1;
    assert_int_equal(auth_refresh_decide(&token, NULL, NOW_MS, 0, 0),
                     AUTH_REFRESH_EXPIRED);
}

static void test_used_token_without_grace_is_reuse(void **state)
{
    struct auth_refresh_row token = live_token();
    struct auth_refresh_row successor = live_token();

    (void)state;
    token.used_at_ms = NOW_MS - 1000;
    assert_int_equal(auth_refresh_decide(&token, &successor, NOW_MS, 0, 0),
                     AUTH_REFRESH_REUSE);
}

static void test_used_token_within_grace_retries(void **state)
{
    struct auth_refresh_row token = live_token();
    struct auth_refresh_row successor = live_token();

    (void)state;
    token.used_at_ms = NOW_MS - 1000;
    assert_int_equal(
        auth_refresh_decide(&token, &successor, NOW_MS, GRACE_MS, 0),
        AUTH_REFRESH_GRACE_RETRY);
}

static void test_used_token_after_grace_is_reuse(void **state)
{
    struct auth_refresh_row token = live_token();
    struct auth_refresh_row successor = live_token();

    (void)state;
    token.used_at_ms = NOW_MS - GRACE_MS - 1;
    assert_int_equal(
        auth_refresh_decide(&token, &successor, NOW_MS, GRACE_MS, 0),
        AUTH_REFRESH_REUSE);
}

static void test_grace_needs_unused_successor(void **state)
{
    struct auth_refresh_row token = live_token();
    struct auth_refresh_row successor = live_token();

    (void)state;
    token.used_at_ms = NOW_MS - 1000;
    successor.used_at_ms = NOW_MS - 500;
    assert_int_equal(
        auth_refresh_decide(&token, &successor, NOW_MS, GRACE_MS, 0),
        AUTH_REFRESH_REUSE);
    successor.used_at_ms = 0;
    successor.revoked_at_ms = NOW_MS - 500;
    assert_int_equal(
        auth_refresh_decide(&token, &successor, NOW_MS, GRACE_MS, 0),
        AUTH_REFRESH_REUSE);
    assert_int_equal(auth_refresh_decide(&token, NULL, NOW_MS, GRACE_MS, 0),
                     AUTH_REFRESH_REUSE);
}

static void test_revoked_token_is_reuse(void **state)
{
    struct auth_refresh_row token = live_token();

    (void)state;
    token.revoked_at_ms = NOW_MS - 1000;
    assert_int_equal(auth_refresh_decide(&token, NULL, NOW_MS, GRACE_MS, 0),
                     AUTH_REFRESH_REUSE);
}

static void test_user_revocation_covers_older_tokens(void **state)
{
    struct auth_refresh_row token = live_token();

    (void)state;
    assert_int_equal(
        auth_refresh_decide(&token, NULL, NOW_MS, 0, token.issued_at_ms + 1),
        AUTH_REFRESH_REUSE);
    assert_int_equal(
        auth_refresh_decide(&token, NULL, NOW_MS, 0, token.issued_at_ms - 1),
        AUTH_REFRESH_ROTATE);
}

static void test_successor_expiry_capped_by_family(void **state)
{
    (void)state;
    assert_int_equal(auth_refresh_successor_expiry(NOW_MS, 30 * DAY_MS,
                                                   NOW_MS + 90 * DAY_MS),
                     NOW_MS + 30 * DAY_MS);
    assert_int_equal(
        auth_refresh_successor_expiry(NOW_MS, 30 * DAY_MS, NOW_MS + 5 * DAY_MS),
        NOW_MS + 5 * DAY_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_token_rotates),
        cmocka_unit_test(test_expired_token_is_expired),
        cmocka_unit_test(test_family_expiry_ends_token),
        cmocka_unit_test(test_used_token_without_grace_is_reuse),
        cmocka_unit_test(test_used_token_within_grace_retries),
        cmocka_unit_test(test_used_token_after_grace_is_reuse),
        cmocka_unit_test(test_grace_needs_unused_successor),
        cmocka_unit_test(test_revoked_token_is_reuse),
        cmocka_unit_test(test_user_revocation_covers_older_tokens),
        cmocka_unit_test(test_successor_expiry_capped_by_family),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

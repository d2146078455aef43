/* Tests for the login throttle's delay schedule, keys and marker cut-off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "auth_throttle.h"

static const struct auth_throttle_policy policy = {
    .free_attempts = 5,
    .base_delay_ms = 1000,
    .max_delay_ms = 15 * 60 * 1000,
    .streak_ttl_ms = 3600 * 1000,
};

static void test_delay_zero_before_free_attempts(void **state)
{
    (void)state;
    for (long long attempt = 1; attempt < policy.free_attempts; attempt++) {
        assert_int_equal(auth_throttle_delay_ms(&policy, attempt), 0);
    }
}

static void test_delay_doubles_after_free_attempts(void **state)
{
    (void)state;
    assert_int_equal(auth_throttle_delay_ms(&policy, 5), 1000);
    assert_int_equal(auth_throttle_delay_ms(&policy, 6), 2000);
    assert_int_equal(auth_throttle_delay_ms(&policy, 7), 4000);
}

static void test_delay_capped_at_max(void **state)
{
    (void)state;
    assert_int_equal(auth_throttle_delay_ms(&policy, 15), policy.max_delay_ms);
    assert_int_equal(auth_throttle_delay_ms(&policy, 1000000),
                     policy.max_delay_ms);
}

static void test_key_by_user_id(void **state)
{
    char key[AUTH_THROTTLE_KEY_SIZE];

    (void)state;
    auth_throttle_key("11111111-1111-4111-8111-111111111111", "alice", key);
    assert_string_equal(key,
                        "cerrojo:login:u:11111111-1111-4111-8111-111111111111");
}

static void test_key_by_name_hides_name(void **state)
{
    char key[AUTH_THROTTLE_KEY_SIZE];
    char other[AUTH_THROTTLE_KEY_SIZE];

    (void)state;
    auth_throttle_key(NULL, "alice@example.com", key);
    auth_throttle_key("", "bob@example.com", other);
    assert_int_equal(strncmp(key, "cerrojo:login:n:", 16), 0);
    assert_int_equal(strlen(key), 16 + 64);
    assert_null(strstr(key, "alice"));
    assert_string_not_equal(key, other);
}

static void test_keys_split_by_address(void **state)
{
    static const char user[] = "11111111-1111-4111-8111-111111111111";
    struct auth_throttle_keys first;
    struct auth_throttle_keys second;

    (void)state;
    auth_throttle_keys(user, "alice", "203.0.113.9", &first);
    auth_throttle_keys(user, "alice", "198.51.100.20", &second);
    assert_string_equal(first.account, second.account);
    assert_string_not_equal(first.source, second.source);
    assert_int_equal(
        strncmp(first.source, first.account, strlen(first.account)), 0);
    assert_int_equal(strlen(first.source),
                     strlen(first.account) + 1 + AUTH_THROTTLE_SOURCE_HEX);
    assert_null(strstr(first.source, "203.0.113.9"));
}

static void test_known_marker_per_address(void **state)
{
    static const char user[] = "11111111-1111-4111-8111-111111111111";
    struct auth_throttle_keys first;
    struct auth_throttle_keys second;
    struct auth_throttle_keys none;

    (void)state;
    auth_throttle_keys(user, "alice", "203.0.113.9", &first);
    auth_throttle_keys(user, "alice", "198.51.100.20", &second);
    auth_throttle_keys(user, "alice", NULL, &none);
    assert_string_not_equal(first.known, second.known);
    assert_string_not_equal(first.known, first.source);
    assert_int_equal(strncmp(first.known, first.account, strlen(first.account)),
                     0);
    assert_null(strstr(first.known, "203.0.113.9"));
    assert_true(first.has_address);
    assert_false(none.has_address);
}

static void test_marker_valid_from_revocation(void **state)
{
    (void)state;
    /* Without a revocation every marker counts, even the "1" that older
     * versions wrote. */
    assert_int_equal(auth_throttle_marker_valid_from_ms(0), 0);
    /* A marker from the revocation's second is stale, like a token whose
     * iat is in that second. */
    assert_int_equal(auth_throttle_marker_valid_from_ms(1700000000123LL),
                     1700000001000LL);
    assert_int_equal(auth_throttle_marker_valid_from_ms(1700000000000LL),
                     1700000001000LL);
    assert_int_equal(auth_throttle_marker_valid_from_ms(1700000000999LL),
                     1700000001000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_zero_before_free_attempts),
        cmocka_unit_test(test_delay_doubles_after_free_attempts),
        cmocka_unit_test(test_delay_capped_at_max),
        cmocka_unit_test(test_key_by_user_id),
        cmocka_unit_test(test_key_by_name_hides_name),
        cmocka_unit_test(test_keys_split_by_address),
        cmocka_unit_test(test_known_marker_per_address),
        cmocka_unit_test(test_marker_valid_from_revocation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

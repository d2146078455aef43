/* Tests for the login throttle's delay schedule, keys, address groups and
 * marker cut-off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/sha.h>

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

static const uint8_t secret[AUTH_THROTTLE_SECRET_BYTES] = {
    0x6b, 0x1f, 0x02, 0x9d, 0x44, 0xe0, 0x71, 0x3a, 0x58, 0xc2, 0x0e,
    0x97, 0x25, 0xbd, 0x66, 0x13, 0xf4, 0x89, 0x3c, 0xa7, 0x50, 0x0b,
    0xde, 0x32, 0x7e, 0x91, 0x48, 0xc5, 0x2a, 0x6f, 0x04, 0xb8,
};

static void make_keys(const uint8_t *key, const char *name, const char *ip,
                      struct auth_throttle_keys *out)
{
    assert_int_equal(auth_throttle_keys(key, name, ip, out), CJ_OK);
}

/* Lower-case hex of SHA-256(text), the form older builds put in keys. */
static void sha256_hex(const char *text, char hex[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)text, strlen(text), digest);
    for (size_t i = 0; i < sizeof(digest); i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
}

static void test_key_by_typed_name(void **state)
{
    struct auth_throttle_keys username;
    struct auth_throttle_keys again;
    struct auth_throttle_keys email;

    (void)state;
    make_keys(secret, "bob1", "203.0.113.9", &username);
    make_keys(secret, "bob1", "203.0.113.9", &again);
    make_keys(secret, "bob.smith@example.com", "203.0.113.9", &email);
    assert_int_equal(strncmp(username.account, "cerrojo:login:i:", 16), 0);
    assert_int_equal(strlen(username.account), 16 + 64);
    assert_string_equal(username.account, again.account);
    /* A username and an email have their own streaks, whichever account
     * they name. */
    assert_string_not_equal(username.account, email.account);
    assert_string_not_equal(username.source, email.source);
    assert_string_not_equal(username.known, email.known);
    assert_string_equal(username.address, email.address);
}

static void test_keys_hide_plain_sha256(void **state)
{
    static const char name[] = "alice@example.com";
    static const char ip[] = "203.0.113.9";
    char name_hex[2 * SHA256_DIGEST_LENGTH + 1];
    char ip_hex[2 * SHA256_DIGEST_LENGTH + 1];
    char ip_prefix[AUTH_THROTTLE_SOURCE_HEX + 1];
    struct auth_throttle_keys keys;
    const char *all[4];

    (void)state;
    make_keys(secret, name, ip, &keys);
    sha256_hex(name, name_hex);
    sha256_hex(ip, ip_hex);
    memcpy(ip_prefix, ip_hex, AUTH_THROTTLE_SOURCE_HEX);
    ip_prefix[AUTH_THROTTLE_SOURCE_HEX] = '\0';
    all[0] = keys.account;
    all[1] = keys.source;
    all[2] = keys.known;
    all[3] = keys.address;
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
        assert_null(strstr(all[i], name_hex));
        assert_null(strstr(all[i], ip_prefix));
        assert_null(strstr(all[i], "alice"));
        assert_null(strstr(all[i], ip));
    }
}

static void test_keys_depend_on_secret(void **state)
{
    uint8_t other_secret[AUTH_THROTTLE_SECRET_BYTES];
    struct auth_throttle_keys first;
    struct auth_throttle_keys second;

    (void)state;
    memcpy(other_secret, secret, sizeof(other_secret));
    other_secret[0] ^= 1;
    make_keys(secret, "alice", "203.0.113.9", &first);
    make_keys(other_secret, "alice", "203.0.113.9", &second);
    assert_string_not_equal(first.account, second.account);
    assert_string_not_equal(first.address, second.address);
    assert_string_not_equal(first.source, second.source);
}

static void test_keys_split_by_address(void **state)
{
    struct auth_throttle_keys first;
    struct auth_throttle_keys second;

    (void)state;
    make_keys(secret, "alice", "203.0.113.9", &first);
    make_keys(secret, "alice", "198.51.100.20", &second);
    assert_string_equal(first.account, second.account);
    assert_string_not_equal(first.source, second.source);
    assert_string_not_equal(first.address, second.address);
    assert_int_equal(
        strncmp(first.source, first.account, strlen(first.account)), 0);
    assert_int_equal(strlen(first.source),
                     strlen(first.account) + 1 + AUTH_THROTTLE_SOURCE_HEX);
    assert_int_equal(strncmp(first.address, "cerrojo:login:a:", 16), 0);
    assert_int_equal(strlen(first.address), 16 + 64);
    /* The address's streak is the same whichever name is typed. */
    make_keys(secret, "bob", "203.0.113.9", &second);
    assert_string_equal(first.address, second.address);
}

static void test_known_marker_per_address(void **state)
{
    struct auth_throttle_keys first;
    struct auth_throttle_keys second;
    struct auth_throttle_keys none;

    (void)state;
    make_keys(secret, "alice", "203.0.113.9", &first);
    make_keys(secret, "alice", "198.51.100.20", &second);
    make_keys(secret, "alice", NULL, &none);
    assert_string_not_equal(first.known, second.known);
    assert_string_not_equal(first.known, first.source);
    assert_int_equal(strncmp(first.known, first.account, strlen(first.account)),
                     0);
    assert_true(first.has_address);
    assert_false(none.has_address);
}

static void test_address_group_ipv6_by_64(void **state)
{
    char group[AUTH_THROTTLE_ADDRESS_GROUP_SIZE];
    struct auth_throttle_keys first;
    struct auth_throttle_keys same_block;
    struct auth_throttle_keys other_block;

    (void)state;
    auth_throttle_address_group("2001:db8:1:2:aaaa:bbbb:cccc:dddd", group,
                                sizeof(group));
    assert_string_equal(group, "2001:db8:1:2::/64");
    make_keys(secret, "alice", "2001:db8:1:2::1", &first);
    make_keys(secret, "alice", "2001:db8:1:2:ffff::9", &same_block);
    make_keys(secret, "alice", "2001:db8:1:3::1", &other_block);
    assert_string_equal(first.address, same_block.address);
    assert_string_equal(first.source, same_block.source);
    assert_string_not_equal(first.address, other_block.address);
}

static void test_address_group_ipv4_forms(void **state)
{
    char group[AUTH_THROTTLE_ADDRESS_GROUP_SIZE];

    (void)state;
    auth_throttle_address_group("203.0.113.9", group, sizeof(group));
    assert_string_equal(group, "203.0.113.9");
    auth_throttle_address_group("::ffff:203.0.113.9", group, sizeof(group));
    assert_string_equal(group, "203.0.113.9");
    /* Text that is no address is counted as it is. */
    auth_throttle_address_group("unix-socket", group, sizeof(group));
    assert_string_equal(group, "unix-socket");
    auth_throttle_address_group("", group, sizeof(group));
    assert_string_equal(group, "");
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
        cmocka_unit_test(test_key_by_typed_name),
        cmocka_unit_test(test_keys_hide_plain_sha256),
        cmocka_unit_test(test_keys_depend_on_secret),
        cmocka_unit_test(test_keys_split_by_address),
        cmocka_unit_test(test_known_marker_per_address),
        cmocka_unit_test(test_address_group_ipv6_by_64),
        cmocka_unit_test(test_address_group_ipv4_forms),
        cmocka_unit_test(test_marker_valid_from_revocation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

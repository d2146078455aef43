/* Tests for UUIDs, refresh tokens and session id hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "auth_ids.h"

static void test_uuid_new_is_valid_v4(void **state)
{
    char a[AUTH_UUID_TEXT_SIZE];
    char b[AUTH_UUID_TEXT_SIZE];

    (void)state;
    auth_uuid_new(a);
    auth_uuid_new(b);
    assert_true(auth_uuid_valid(a));
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
}

static void test_uuid_valid_rejects_bad_forms(void **state)
{
    (void)state;
    assert_true(auth_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
    assert_false(auth_uuid_valid("123E4567-e89b-42d3-a456-426614174000"));
    assert_false(auth_uuid_valid("123e4567e89b-42d3-a456-4266141740000"));
    assert_false(auth_uuid_valid("123e4567-e89b-42d3-a456-42661417400"));
    assert_false(auth_uuid_valid("123e4567-e89b-42d3-a456-42661417400g"));
    assert_false(auth_uuid_valid("' OR 1=1 --"));
    assert_false(auth_uuid_valid(NULL));
}

static void test_refresh_token_hash_matches_issued(void **state)
{
    char text[AUTH_REFRESH_TOKEN_TEXT_SIZE];
    uint8_t issued[AUTH_TOKEN_HASH_SIZE];
    uint8_t presented[AUTH_TOKEN_HASH_SIZE];

    (void)state;
    auth_refresh_token_new(text, issued);
    assert_int_equal(strlen(text), 43);
    assert_int_equal(auth_refresh_token_hash(text, strlen(text), presented),
                     CJ_OK);
    assert_memory_equal(issued, presented, sizeof(issued));
}

static void test_session_id_hash_is_sha256_hex(void **state)
{
    char hash[AUTH_SESSION_HASH_TEXT_SIZE];

    (void)state;
    /* Computed with: printf %s c2Vzc2lvbi1pZC0xMjM0NQ | sha256sum */
    auth_session_id_hash("c2Vzc2lvbi1pZC0xMjM0NQ", hash);
    assert_string_equal(
        hash,
        "af01fc04dc06af6c027744faf2ee6bd87edec8f87f82f50c70c6d71488d8676c");
}

static void test_refresh_tokens_differ(void **state)
{
    char a[AUTH_REFRESH_TOKEN_TEXT_SIZE];
    char b[AUTH_REFRESH_TOKEN_TEXT_SIZE];
    uint8_t ha[AUTH_TOKEN_HASH_SIZE];
    uint8_t hb[AUTH_TOKEN_HASH_SIZE];

    (void)state;
    auth_refresh_token_new(a, ha);
    auth_refresh_token_new(b, hb);
    assert_string_not_equal(a, b);
    assert_memory_not_equal(ha, hb, sizeof(ha));
}

static void test_refresh_token_hash_rejects_malformed(void **state)
{
    char text[AUTH_REFRESH_TOKEN_TEXT_SIZE];
    uint8_t hash[AUTH_TOKEN_HASH_SIZE];

    (void)state;
    auth_refresh_token_new(text, hash);
    assert_int_equal(auth_refresh_token_hash(text, 42, hash),
                     CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(auth_refresh_token_hash("", 0, hash),
                     CJ_ERR_UNAUTHENTICATED);
    text[5] = '+';
    assert_int_equal(auth_refresh_token_hash(text, strlen(text), hash),
                     CJ_ERR_UNAUTHENTICATED);
    /* The last character of 43 carries 2 unused bits that must be zero. */
    memcpy(text, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", 44);
    assert_int_equal(auth_refresh_token_hash(text, strlen(text), hash),
                     CJ_ERR_UNAUTHENTICATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_new_is_valid_v4),
        cmocka_unit_test(test_uuid_valid_rejects_bad_forms),
        cmocka_unit_test(test_refresh_token_hash_matches_issued),
        cmocka_unit_test(test_refresh_tokens_differ),
        cmocka_unit_test(test_session_id_hash_is_sha256_hex),
        cmocka_unit_test(test_refresh_token_hash_rejects_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

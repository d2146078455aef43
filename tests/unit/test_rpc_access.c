/* Tests for access-rule matching and identity validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "rpc_access.h"

static void test_listed_identity_is_allowed(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {CJ_RPC_ID_AUTH, CJ_RPC_ID_GATEWAY};
    assert_true(cj_rpc_access_allowed(rule, "auth"));
    assert_true(cj_rpc_access_allowed(rule, "gateway"));
}

static void test_unlisted_identity_is_denied(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {CJ_RPC_ID_AUTH};
    assert_false(cj_rpc_access_allowed(rule, "gateway"));
    assert_false(cj_rpc_access_allowed(rule, "kms"));
    assert_false(cj_rpc_access_allowed(rule, "platform-service"));
}

static void test_match_is_exact_not_prefix(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {CJ_RPC_ID_AUTH};
    assert_false(cj_rpc_access_allowed(rule, "auth2"));
    assert_false(cj_rpc_access_allowed(rule, "aut"));
    assert_false(cj_rpc_access_allowed(rule, "AUTH"));
}

static void test_any_platform_allows_every_identity(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {CJ_RPC_ANY_PLATFORM};
    assert_true(cj_rpc_access_allowed(rule, "platform-service"));
    assert_true(cj_rpc_access_allowed(rule, "gateway"));
}

static void test_empty_identity_is_denied_even_for_any(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {CJ_RPC_ANY_PLATFORM};
    assert_false(cj_rpc_access_allowed(rule, ""));
    assert_false(cj_rpc_access_allowed(rule, NULL));
}

static void test_empty_rule_denies_everyone(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {NULL};
    assert_false(cj_rpc_access_allowed(rule, "auth"));
    assert_false(cj_rpc_access_allowed(rule, "gateway"));
}

static void test_full_rule_checks_last_entry(void **state)
{
    (void)state;
    const char *rule[CJ_RPC_ALLOWED_MAX] = {"a", "b", "c", "d"};
    assert_true(cj_rpc_access_allowed(rule, "d"));
    assert_false(cj_rpc_access_allowed(rule, "e"));
}

static void test_identity_charset(void **state)
{
    (void)state;
    assert_true(cj_rpc_identity_valid("gateway", 7));
    assert_true(cj_rpc_identity_valid("platform-service", 16));
    assert_true(cj_rpc_identity_valid("svc.example-1", 13));
    assert_false(cj_rpc_identity_valid("Gateway", 7));
    assert_false(cj_rpc_identity_valid("-gateway", 8));
    assert_false(cj_rpc_identity_valid("gate way", 8));
    assert_false(cj_rpc_identity_valid("gate\0way", 8));
    assert_false(cj_rpc_identity_valid("*", 1));
    assert_false(cj_rpc_identity_valid("", 0));
}

static void test_identity_length_limit(void **state)
{
    (void)state;
    char name[CJ_RPC_IDENTITY_MAX_LEN + 2];
    memset(name, 'a', sizeof(name));
    assert_true(cj_rpc_identity_valid(name, CJ_RPC_IDENTITY_MAX_LEN));
    assert_false(cj_rpc_identity_valid(name, CJ_RPC_IDENTITY_MAX_LEN + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_identity_is_allowed),
        cmocka_unit_test(test_unlisted_identity_is_denied),
        cmocka_unit_test(test_match_is_exact_not_prefix),
        cmocka_unit_test(test_any_platform_allows_every_identity),
        cmocka_unit_test(test_empty_identity_is_denied_even_for_any),
        cmocka_unit_test(test_empty_rule_denies_everyone),
        cmocka_unit_test(test_full_rule_checks_last_entry),
        cmocka_unit_test(test_identity_charset),
        cmocka_unit_test(test_identity_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

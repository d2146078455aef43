/* Tests for caller-context parsing, validation and metadata building. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rpc_caller.h"

#define MAX_ITEMS 16

/* A metadata array over static strings; nothing needs releasing. */
struct md_fixture {
    grpc_metadata items[MAX_ITEMS];
    grpc_metadata_array array;
};

static void md_init(struct md_fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->array.metadata = f->items;
    f->array.capacity = MAX_ITEMS;
}

static void md_add(struct md_fixture *f, const char *key, const char *value)
{
    grpc_metadata *m = &f->items[f->array.count++];
    m->key = grpc_slice_from_static_string(key);
    m->value = grpc_slice_from_static_string(value);
}

static void md_add_bytes(struct md_fixture *f, const char *key,
                         const char *value, size_t len)
{
    grpc_metadata *m = &f->items[f->array.count++];
    m->key = grpc_slice_from_static_string(key);
    m->value = grpc_slice_from_static_buffer(value, len);
}

static void test_full_context_parses(void **state)
{
    (void)state;
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    md_init(&f);
    md_add(&f, CJ_MD_USER_ID, "0f8b1c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b");
    md_add(&f, CJ_MD_SESSION_ID, "s_AbC-123");
    md_add(&f, CJ_MD_TOKEN_ID, "tok.42");
    md_add(&f, CJ_MD_TOKEN_EXPIRES_AT, "1767225600");
    md_add(&f, CJ_MD_CHANNEL, "stateful");
    md_add(&f, CJ_MD_CLIENT_IP, "2001:db8::1");
    md_add(&f, CJ_MD_USER_AGENT, "cerrojo/0.1 (linux)");
    md_add(&f, CJ_MD_REQUEST_ID, "req-1");
    md_add(&f, "user-agent", "grpc-c/29.0.0"); /* not ours: ignored */

    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error), CJ_OK);
    assert_string_equal(ctx.user_id, "0f8b1c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_string_equal(ctx.session_id, "s_AbC-123");
    assert_string_equal(ctx.token_id, "tok.42");
    assert_int_equal(ctx.token_expires_at, 1767225600);
    assert_int_equal(ctx.channel, CJ_CHANNEL_STATEFUL);
    assert_string_equal(ctx.client_ip, "2001:db8::1");
    assert_string_equal(ctx.user_agent, "cerrojo/0.1 (linux)");
    assert_string_equal(ctx.request_id, "req-1");
}

static void test_absent_keys_leave_fields_empty(void **state)
{
    (void)state;
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    md_init(&f);
    md_add(&f, CJ_MD_CHANNEL, "stateless");
    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error), CJ_OK);
    assert_int_equal(ctx.channel, CJ_CHANNEL_STATELESS);
    assert_string_equal(ctx.user_id, "");
    assert_string_equal(ctx.request_id, "");
    assert_int_equal(ctx.token_expires_at, 0);
}

/* Expects `value` under `key` to be rejected with a message naming key. */
static void expect_rejected(const char *key, const char *value, size_t len)
{
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    md_init(&f);
    md_add(&f, CJ_MD_REQUEST_ID, "req-ok");
    md_add_bytes(&f, key, value, len);
    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(error, key));
    /* A rejected context is left empty, not half filled. */
    assert_string_equal(ctx.request_id, "");
}

static void test_malformed_values_are_rejected(void **state)
{
    (void)state;
    expect_rejected(CJ_MD_USER_ID, "", 0);
    expect_rejected(CJ_MD_USER_ID, "user id", 7);
    expect_rejected(CJ_MD_USER_ID, "user/1", 6);
    expect_rejected(CJ_MD_SESSION_ID, "a\0b", 3);
    expect_rejected(CJ_MD_TOKEN_EXPIRES_AT, "-5", 2);
    expect_rejected(CJ_MD_TOKEN_EXPIRES_AT, "0", 1);
    expect_rejected(CJ_MD_TOKEN_EXPIRES_AT, "012", 3);
    expect_rejected(CJ_MD_TOKEN_EXPIRES_AT, "12a", 3);
    expect_rejected(CJ_MD_TOKEN_EXPIRES_AT, "1234567890123456789", 19);
    expect_rejected(CJ_MD_CHANNEL, "Stateful", 8);
    expect_rejected(CJ_MD_CHANNEL, "both", 4);
    expect_rejected(CJ_MD_CLIENT_IP, "localhost", 9);
    expect_rejected(CJ_MD_CLIENT_IP, "256.1.1.1", 9);
    expect_rejected(CJ_MD_CLIENT_IP, "10.0.0.1 ", 9);
    expect_rejected(CJ_MD_USER_AGENT, "tab\there", 8);
    expect_rejected(CJ_MD_USER_AGENT, "caf\xc3\xa9", 5);
    expect_rejected(CJ_MD_REQUEST_ID, "req 1", 5);
}

static void test_length_limits_are_enforced(void **state)
{
    (void)state;
    char id[CJ_CALLER_ID_MAX_LEN + 2];
    char agent[CJ_CALLER_USER_AGENT_MAX_LEN + 2];
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    memset(id, 'a', sizeof(id));
    memset(agent, 'x', sizeof(agent));
    md_init(&f);
    md_add_bytes(&f, CJ_MD_USER_ID, id, CJ_CALLER_ID_MAX_LEN);
    md_add_bytes(&f, CJ_MD_USER_AGENT, agent, CJ_CALLER_USER_AGENT_MAX_LEN);
    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error), CJ_OK);
    assert_int_equal(strlen(ctx.user_id), CJ_CALLER_ID_MAX_LEN);

    expect_rejected(CJ_MD_USER_ID, id, CJ_CALLER_ID_MAX_LEN + 1);
    expect_rejected(CJ_MD_USER_AGENT, agent, CJ_CALLER_USER_AGENT_MAX_LEN + 1);
    expect_rejected(CJ_MD_REQUEST_ID, id, CJ_CALLER_REQUEST_ID_MAX_LEN + 1);
}

static void test_repeated_key_is_rejected(void **state)
{
    (void)state;
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    md_init(&f);
    md_add(&f, CJ_MD_USER_ID, "u1");
    md_add(&f, CJ_MD_USER_ID, "u2");
    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(error, "more than once"));
    assert_string_equal(ctx.user_id, "");
}

static void test_error_never_echoes_value(void **state)
{
    (void)state;
    struct md_fixture f;
    struct cj_caller_context ctx;
    char error[CJ_CALLER_ERROR_MAX];

    md_init(&f);
    md_add(&f, CJ_MD_SESSION_ID, "secret session!");
    assert_int_equal(cj_caller_context_parse(&f.array, &ctx, error),
                     CJ_ERR_INVALID);
    assert_null(strstr(error, "secret"));
}

static void test_metadata_round_trips(void **state)
{
    (void)state;
    struct cj_caller_context in;
    struct cj_caller_context out;
    struct cj_caller_metadata md;
    grpc_metadata_array array;
    char error[CJ_CALLER_ERROR_MAX];

    memset(&in, 0, sizeof(in));
    snprintf(in.user_id, sizeof(in.user_id), "user-7");
    snprintf(in.token_id, sizeof(in.token_id), "jti_9");
    in.token_expires_at = 1767225600;
    in.channel = CJ_CHANNEL_STATELESS;
    snprintf(in.client_ip, sizeof(in.client_ip), "192.0.2.10");
    snprintf(in.request_id, sizeof(in.request_id), "r-1");

    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_OK);
    assert_int_equal(md.count, 6); /* session id and user agent are empty */
    array.count = md.count;
    array.capacity = md.count;
    array.metadata = md.items;
    assert_int_equal(cj_caller_context_parse(&array, &out, error), CJ_OK);
    assert_memory_equal(&in, &out, sizeof(in));
    cj_caller_metadata_release(&md);
    assert_int_equal(md.count, 0);
}

static void test_metadata_build_rejects_invalid_field(void **state)
{
    (void)state;
    struct cj_caller_context in;
    struct cj_caller_metadata md;
    char error[CJ_CALLER_ERROR_MAX];

    memset(&in, 0, sizeof(in));
    snprintf(in.user_id, sizeof(in.user_id), "ok");
    snprintf(in.client_ip, sizeof(in.client_ip), "not-an-ip");
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_CLIENT_IP));
    assert_int_equal(md.count, 0);
}

static void test_metadata_build_checks_expiry(void **state)
{
    (void)state;
    struct cj_caller_context in;
    struct cj_caller_metadata md;
    char error[CJ_CALLER_ERROR_MAX];

    memset(&in, 0, sizeof(in));
    in.token_expires_at = -5;
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_TOKEN_EXPIRES_AT));
    assert_int_equal(md.count, 0);

    /* INT64_MAX has 19 digits, one more than the limit. */
    in.token_expires_at = INT64_MAX;
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_TOKEN_EXPIRES_AT));

    in.token_expires_at = 999999999999999999LL; /* 18 digits */
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_OK);
    assert_int_equal(md.count, 1);
    assert_int_equal(
        grpc_slice_str_cmp(md.items[0].value, "999999999999999999"), 0);
    cj_caller_metadata_release(&md);

    in.token_expires_at = 7;
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_OK);
    assert_int_equal(grpc_slice_str_cmp(md.items[0].value, "7"), 0);
    cj_caller_metadata_release(&md);
}

static void test_metadata_build_checks_text_fields(void **state)
{
    (void)state;
    struct cj_caller_context in;
    struct cj_caller_metadata md;
    char error[CJ_CALLER_ERROR_MAX];

    memset(&in, 0, sizeof(in));
    snprintf(in.user_id, sizeof(in.user_id), "user 7");
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_USER_ID));

    memset(&in, 0, sizeof(in));
    snprintf(in.user_agent, sizeof(in.user_agent), "agent\x01");
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_USER_AGENT));

    /* A client IP that fills its whole array without a terminator is cut
     * at the maximum length, like every text field, and then fails. */
    memset(&in, 0, sizeof(in));
    memset(in.client_ip, '1', sizeof(in.client_ip));
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_ERR_INVALID);
    assert_non_null(strstr(error, CJ_MD_CLIENT_IP));

    memset(&in, 0, sizeof(in));
    snprintf(in.client_ip, sizeof(in.client_ip), "2001:db8::1");
    snprintf(in.user_agent, sizeof(in.user_agent), "curl/8.0 (x86_64)");
    in.channel = CJ_CHANNEL_STATEFUL;
    assert_int_equal(cj_caller_metadata_build(&in, &md, error), CJ_OK);
    assert_int_equal(md.count, 3);
    assert_int_equal(grpc_slice_str_cmp(md.items[0].value, "stateful"), 0);
    assert_int_equal(grpc_slice_str_cmp(md.items[1].value, "2001:db8::1"), 0);
    assert_int_equal(grpc_slice_str_cmp(md.items[2].value, "curl/8.0 (x86_64)"),
                     0);
    cj_caller_metadata_release(&md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_context_parses),
        cmocka_unit_test(test_absent_keys_leave_fields_empty),
        cmocka_unit_test(test_malformed_values_are_rejected),
        cmocka_unit_test(test_length_limits_are_enforced),
        cmocka_unit_test(test_repeated_key_is_rejected),
        cmocka_unit_test(test_error_never_echoes_value),
        cmocka_unit_test(test_metadata_round_trips),
        cmocka_unit_test(test_metadata_build_rejects_invalid_field),
        cmocka_unit_test(test_metadata_build_checks_expiry),
        cmocka_unit_test(test_metadata_build_checks_text_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests for the gateway's Redis namespaces (anti-replay records and GCRA
 * rate limits) against the real Redis that scripts/test.sh starts
 * (CERROJO_TEST_REDIS_HOST and CERROJO_TEST_REDIS_PORT).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "closed_port_helper.h"
#include "gw_rate_lease.h"
#include "gw_redis.h"
#include "itest.h"
#include "redis.h"

static const char *redis_host;
static const char *redis_port;

static int setup(void **state)
{
    char addr[300];
    struct gw_redis *redis = NULL;

    snprintf(addr, sizeof(addr), "%s:%s", redis_host, redis_port);
    if (gw_redis_new(addr, &redis) != CJ_OK) {
        return -1;
    }
    *state = redis;
    return 0;
}

static int teardown(void **state)
{
    gw_redis_free(*state);
    return 0;
}

static void test_replay_record_rejects_second_use(void **state)
{
    struct gw_redis *redis = *state;
    uint8_t enc[32];

    randombytes_buf(enc, sizeof(enc));
    assert_int_equal(gw_redis_probe(redis), GW_DEP_UP);
    assert_int_equal(gw_replay_record(redis, enc, sizeof(enc), 180), CJ_OK);
    assert_int_equal(gw_replay_record(redis, enc, sizeof(enc), 180),
                     CJ_ERR_REPLAYED);
    enc[0] ^= 1;
    assert_int_equal(gw_replay_record(redis, enc, sizeof(enc), 180), CJ_OK);
}

static void test_rate_limit_allows_burst_then_refuses(void **state)
{
    struct gw_redis *redis = *state;
    unsigned char random[8];
    char ip[64];
    unsigned retry_after = 0;

    /* A fresh bucket per run: a documentation address plus random bits. */
    randombytes_buf(random, sizeof(random));
    snprintf(ip, sizeof(ip), "2001:db8::%02x%02x:%02x%02x", random[0],
             random[1], random[2], random[3]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            gw_ratelimit_take(redis, "test", ip, 6, 3, &retry_after), CJ_OK);
    }
    assert_int_equal(gw_ratelimit_take(redis, "test", ip, 6, 3, &retry_after),
                     CJ_ERR_RATE_LIMITED);
    /* 6 a minute: the next slot opens within 10 s. */
    assert_true(retry_after >= 1);
    assert_true(retry_after <= 10);
    /* Another client's bucket is untouched. */
    ip[0] = '3';
    assert_int_equal(gw_ratelimit_take(redis, "test", ip, 6, 3, &retry_after),
                     CJ_OK);
}

/* Fills `ip` with a fresh documentation address, so that earlier runs
 * against the same Redis do not count. */
static void fresh_client_ip(char *ip, size_t size)
{
    unsigned char random[4];

    randombytes_buf(random, sizeof(random));
    snprintf(ip, size, "2001:db8::%02x%02x:%02x%02x", random[0], random[1],
             random[2], random[3]);
}

static void test_rate_limit_take_many_grants_what_fits(void **state)
{
    struct gw_redis *redis = *state;
    char ip[64];
    unsigned granted = 0;
    unsigned retry_after = 0;

    fresh_client_ip(ip, sizeof(ip));
    assert_int_equal(gw_ratelimit_take_many(redis, "test", ip, 6, 5, 3,
                                            &granted, &retry_after),
                     CJ_OK);
    assert_int_equal(granted, 3);
    /* Only 2 of the burst of 5 are left. */
    assert_int_equal(gw_ratelimit_take_many(redis, "test", ip, 6, 5, 3,
                                            &granted, &retry_after),
                     CJ_OK);
    assert_int_equal(granted, 2);
    assert_int_equal(gw_ratelimit_take_many(redis, "test", ip, 6, 5, 3,
                                            &granted, &retry_after),
                     CJ_ERR_RATE_LIMITED);
    assert_int_equal(granted, 0);
    assert_true(retry_after >= 1);
    assert_true(retry_after <= 10);
}

/* Two lease tables stand for two gateway replicas sharing one bucket. */
static void test_leases_of_two_gateways_share_the_burst(void **state)
{
    struct gw_redis *redis = *state;
    struct gw_rate_leases *first = gw_rate_leases_new();
    struct gw_rate_leases *second = gw_rate_leases_new();
    char ip[64];
    unsigned admitted = 0;
    unsigned retry_after = 0;

    assert_non_null(first);
    assert_non_null(second);
    fresh_client_ip(ip, sizeof(ip));
    for (int i = 0; i < 60; i++) {
        struct gw_rate_leases *leases = i % 3 == 0 ? second : first;

        if (gw_rate_leases_take(leases, redis, "test", ip, 6, 40,
                                &retry_after) == CJ_OK) {
            admitted++;
        }
    }
    /* 6 a minute: at most one more slot opens while the loop runs. */
    assert_true(admitted >= 40);
    assert_true(admitted <= 41);
    assert_int_equal(
        gw_rate_leases_take(first, redis, "test", ip, 6, 40, &retry_after),
        CJ_ERR_RATE_LIMITED);
    assert_true(retry_after >= 1);
    gw_rate_leases_free(first);
    gw_rate_leases_free(second);
}

static void test_clock_offset_of_local_redis_is_small(void **state)
{
    struct gw_redis *redis = *state;
    long long offset = 1LL << 40;

    assert_int_equal(gw_redis_clock_offset(redis, &offset), CJ_OK);
    /* Same host, same clock: within a second either way. */
    assert_true(offset > -1000);
    assert_true(offset < 1000);
    /* 0 means no bound: the probe only reports reachability. */
    gw_redis_set_clock_offset_max(redis, 0);
    assert_int_equal(gw_redis_probe(redis), GW_DEP_UP);
}

static void test_unreachable_redis_is_unavailable(void **state)
{
    struct gw_redis *down = NULL;
    struct closed_port closed;
    char addr[32];
    uint8_t enc[32] = {0};
    unsigned retry_after;

    (void)state;
    assert_int_equal(closed_port_hold(&closed), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed.port);
    assert_int_equal(gw_redis_new(addr, &down), CJ_OK);
    assert_int_equal(gw_redis_probe(down), GW_DEP_DOWN);
    assert_int_equal(gw_replay_record(down, enc, sizeof(enc), 180),
                     CJ_ERR_UNAVAILABLE);
    assert_int_not_equal(
        gw_ratelimit_take(down, "t", "192.0.2.1", 60, 1, &retry_after), CJ_OK);
    gw_redis_free(down);
    closed_port_release(&closed);
}

/* Runs CONFIG with `args` on the test Redis and copies a string reply (the
 * value of CONFIG GET) into out. Returns the status. */
static enum cj_status redis_config(struct cj_redis_pool *pool,
                                   const char *const *args, int argc, char *out,
                                   size_t out_size)
{
    const char *argv[4] = {"CONFIG"};
    size_t argvlen[4] = {6};
    redisReply *reply = NULL;
    enum cj_status status;

    for (int i = 0; i < argc; i++) {
        argv[i + 1] = args[i];
        argvlen[i + 1] = strlen(args[i]);
    }
    status = cj_redis_command(pool, argc + 1, argv, argvlen, &reply);
    if (status == CJ_OK && out != NULL) {
        bool pair = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                    reply->element[1]->type == REDIS_REPLY_STRING;
        snprintf(out, out_size, "%s", pair ? reply->element[1]->str : "");
    }
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return status;
}

/*
 * Sets maxmemory to 1 byte with noeviction, so that Redis rejects every
 * write with an OOM error reply and still replies to TIME, and restores
 * both settings before checking. scripts/test.sh runs ctest without -j, so
 * no other test sees the refused writes.
 */
static void test_write_refusing_redis_not_ready(void **state)
{
    struct gw_redis *redis = *state;
    struct cj_redis_pool *admin = NULL;
    struct cj_redis_options options = {
        .host = redis_host,
        .port = atoi(redis_port),
        .pool_size = 1,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = 1000,
        .acquire_timeout_ms = 1000,
    };
    char policy[64] = "";
    char memory[64] = "";
    const char *get_policy[] = {"GET", "maxmemory-policy"};
    const char *get_memory[] = {"GET", "maxmemory"};
    const char *set_noeviction[] = {"SET", "maxmemory-policy", "noeviction"};
    const char *set_one_byte[] = {"SET", "maxmemory", "1"};
    unsigned retry_after;
    char last_error[256];

    gw_redis_set_clock_offset_max(redis, 0);
    assert_int_equal(cj_redis_pool_new(&options, &admin), CJ_OK);
    assert_int_equal(redis_config(admin, get_policy, 2, policy, sizeof(policy)),
                     CJ_OK);
    assert_int_equal(redis_config(admin, get_memory, 2, memory, sizeof(memory)),
                     CJ_OK);
    assert_int_equal(redis_config(admin, set_noeviction, 3, NULL, 0), CJ_OK);
    assert_int_equal(redis_config(admin, set_one_byte, 3, NULL, 0), CJ_OK);

    enum gw_dependency_state refused = gw_redis_probe(redis);
    enum cj_status take =
        gw_ratelimit_take(redis, "t", "192.0.2.9", 60, 1, &retry_after);
    snprintf(last_error, sizeof(last_error), "%s", cj_redis_last_error());

    const char *restore_policy[] = {"SET", "maxmemory-policy", policy};
    const char *restore_memory[] = {"SET", "maxmemory", memory};
    assert_int_equal(redis_config(admin, restore_memory, 3, NULL, 0), CJ_OK);
    assert_int_equal(redis_config(admin, restore_policy, 3, NULL, 0), CJ_OK);
    cj_redis_pool_free(admin);

    assert_int_equal(refused, GW_DEP_WRITE_REFUSED);
    assert_int_equal(take, CJ_ERR_UNAVAILABLE);
    assert_non_null(strstr(last_error, "OOM"));
    assert_int_equal(gw_redis_probe(redis), GW_DEP_UP);
}

static void test_redis_address_must_have_port(void **state)
{
    struct gw_redis *redis = NULL;

    (void)state;
    assert_int_equal(gw_redis_new("127.0.0.1", &redis), CJ_ERR_INVALID);
    assert_int_equal(gw_redis_new("127.0.0.1:0", &redis), CJ_ERR_INVALID);
    assert_int_equal(gw_redis_new(":6379", &redis), CJ_ERR_INVALID);
    assert_null(redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_record_rejects_second_use),
        cmocka_unit_test(test_rate_limit_allows_burst_then_refuses),
        cmocka_unit_test(test_rate_limit_take_many_grants_what_fits),
        cmocka_unit_test(test_leases_of_two_gateways_share_the_burst),
        cmocka_unit_test(test_clock_offset_of_local_redis_is_small),
        cmocka_unit_test(test_write_refusing_redis_not_ready),
        cmocka_unit_test(test_unreachable_redis_is_unavailable),
        cmocka_unit_test(test_redis_address_must_have_port),
    };

    redis_host = itest_require_env("test_gw_redis", "CERROJO_TEST_REDIS_HOST");
    redis_port = itest_require_env("test_gw_redis", "CERROJO_TEST_REDIS_PORT");
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Tests for the Redis pool against real Redis servers, one restarted here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "log.h"
#include "redis.h"

static const char *redis_host;
static int redis_port;
static char prefix[64]; /* per-run key prefix */

static struct cj_redis_pool *new_pool_at(const char *host, int port,
                                         unsigned size)
{
    struct cj_redis_options o = {.host = host,
                                 .port = port,
                                 .pool_size = size,
                                 .connect_timeout_ms = 1000,
                                 .command_timeout_ms = 2000,
                                 .acquire_timeout_ms = 2000};
    struct cj_redis_pool *p = NULL;
    assert_int_equal(cj_redis_pool_new(&o, &p), CJ_OK);
    return p;
}

static struct cj_redis_pool *new_pool(unsigned size)
{
    return new_pool_at(redis_host, redis_port, size);
}

/* Runs a command of NUL-terminated words. */
static enum cj_status run(struct cj_redis_pool *p, redisReply **reply, int argc,
                          const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    return cj_redis_command(p, argc, argv, lens, reply);
}

static void test_binary_value_round_trips(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(2);
    char key[96];
    snprintf(key, sizeof(key), "%s:bin", prefix);
    const char value[] = {'a', '\0', 'b', '\xff'};
    const char *set[] = {"SET", key, value};
    const size_t set_len[] = {3, strlen(key), sizeof(value)};
    redisReply *r = NULL;
    assert_int_equal(cj_redis_command(p, 3, set, set_len, &r), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    const char *get[] = {"GET", key};
    assert_int_equal(run(p, &r, 2, get), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof(value));
    assert_memory_equal(r->str, value, sizeof(value));
    freeReplyObject(r);
    cj_redis_pool_free(p);
}

static void test_error_reply_maps_to_internal(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    char key[96];
    snprintf(key, sizeof(key), "%s:str", prefix);
    const char *set[] = {"SET", key, "x"};
    redisReply *r = NULL;
    assert_int_equal(run(p, &r, 3, set), CJ_OK);
    freeReplyObject(r);
    const char *lpush[] = {"LPUSH", key, "y"};
    assert_int_equal(run(p, &r, 3, lpush), CJ_ERR_INTERNAL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
    assert_non_null(strstr(cj_redis_last_error(), "WRONGTYPE"));
    cj_redis_pool_free(p);
}

static const char *INCR_SCRIPT =
    "return redis.call('INCRBY', KEYS[1], ARGV[1])";

static void test_script_loads_after_flush(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    struct cj_redis_script script;
    cj_redis_script_init(&script, INCR_SCRIPT);
    assert_int_equal(strlen(script.sha1), 40);

    redisReply *r = NULL;
    const char *flush[] = {"SCRIPT", "FLUSH"};
    assert_int_equal(run(p, &r, 2, flush), CJ_OK);
    freeReplyObject(r);

    char key[96];
    snprintf(key, sizeof(key), "%s:counter", prefix);
    const char *argv[] = {key, "5"};
    const size_t lens[] = {strlen(key), 1};
    assert_int_equal(cj_redis_eval(p, &script, 1, 2, argv, lens, &r), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 5);
    freeReplyObject(r);
    assert_int_equal(cj_redis_eval(p, &script, 1, 2, argv, lens, &r), CJ_OK);
    assert_int_equal(r->integer, 10);
    freeReplyObject(r);

    const char *exists[] = {"SCRIPT", "EXISTS", script.sha1};
    assert_int_equal(run(p, &r, 3, exists), CJ_OK);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);
    cj_redis_pool_free(p);
}

static void test_script_error_maps_to_internal(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    struct cj_redis_script script;
    cj_redis_script_init(&script, "return redis.error_reply('REPLAYED')");
    redisReply *r = NULL;
    assert_int_equal(cj_redis_eval(p, &script, 0, 0, NULL, NULL, &r),
                     CJ_ERR_INTERNAL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    /* Redis 7 prefixes "ERR " to an error without its own code. */
    assert_non_null(strstr(r->str, "REPLAYED"));
    freeReplyObject(r);
    cj_redis_pool_free(p);
}

static void test_killed_connection_reopens(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    struct cj_redis_pool *killer = new_pool(1);
    redisReply *r = NULL;
    const char *id[] = {"CLIENT", "ID"};
    assert_int_equal(run(p, &r, 2, id), CJ_OK);
    char first[32];
    snprintf(first, sizeof(first), "%lld", r->integer);
    freeReplyObject(r);

    const char *kill[] = {"CLIENT", "KILL", "ID", first};
    assert_int_equal(run(killer, &r, 4, kill), CJ_OK);
    freeReplyObject(r);
    usleep(100 * 1000);

    assert_int_equal(run(p, &r, 2, id), CJ_OK);
    char second[32];
    snprintf(second, sizeof(second), "%lld", r->integer);
    freeReplyObject(r);
    assert_string_not_equal(first, second);
    cj_redis_pool_free(killer);
    cj_redis_pool_free(p);
}

static void test_open_multi_drops_connection(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    struct cj_redis_conn *c = NULL;
    assert_int_equal(cj_redis_acquire(p, -1, &c), CJ_OK);
    const char *id[] = {"CLIENT", "ID"};
    const size_t id_len[] = {6, 2};
    redisReply *r = NULL;
    assert_int_equal(cj_redis_conn_command(c, 2, id, id_len, &r), CJ_OK);
    long long first = r->integer;
    freeReplyObject(r);
    const char *multi[] = {"MULTI"};
    const size_t multi_len[] = {5};
    assert_int_equal(cj_redis_conn_command(c, 1, multi, multi_len, &r), CJ_OK);
    freeReplyObject(r);
    cj_redis_release(c);

    /* A fresh connection, not one stuck queueing commands. */
    assert_int_equal(run(p, &r, 2, id), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer != first);
    freeReplyObject(r);
    cj_redis_pool_free(p);
}

static void test_acquire_times_out_when_pool_busy(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    struct cj_redis_conn *held = NULL;
    struct cj_redis_conn *other = NULL;
    assert_int_equal(cj_redis_acquire(p, -1, &held), CJ_OK);
    assert_int_equal(cj_redis_acquire(p, 100, &other), CJ_ERR_TIMEOUT);
    cj_redis_release(held);
    assert_int_equal(cj_redis_acquire(p, 100, &other), CJ_OK);
    cj_redis_release(other);
    cj_redis_pool_free(p);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void redis_script(const char *action, const char *dir, int port)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/scripts/redis.sh %s %s %d >/dev/null",
             CJ_SOURCE_DIR, action, dir, port);
    assert_int_equal(system(cmd), 0);
}

static void test_reconnects_after_redis_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/cj-itest-redis-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int port = free_port();
    redis_script("start", dir, port);

    struct cj_redis_pool *p = new_pool_at("127.0.0.1", port, 1);
    redisReply *r = NULL;
    const char *set[] = {"SET", "k", "before"};
    assert_int_equal(run(p, &r, 3, set), CJ_OK);
    freeReplyObject(r);

    redis_script("stop", dir, port);
    const char *get[] = {"GET", "k"};
    assert_int_equal(run(p, &r, 2, get), CJ_ERR_UNAVAILABLE);
    assert_null(r);
    char expected[64];
    snprintf(expected, sizeof(expected), "Redis at 127.0.0.1:%d", port);
    assert_non_null(strstr(cj_redis_last_error(), expected));

    redis_script("start", dir, port);
    /* Append-only persistence kept the value across the restart. */
    assert_int_equal(run(p, &r, 2, get), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "before");
    freeReplyObject(r);
    cj_redis_pool_free(p);
    redis_script("stop", dir, port);

    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
}

static void test_unreachable_redis_is_unavailable(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool_at("127.0.0.1", 1, 1);
    redisReply *r = NULL;
    const char *ping[] = {"PING"};
    assert_int_equal(run(p, &r, 1, ping), CJ_ERR_UNAVAILABLE);
    assert_null(r);
    assert_non_null(strstr(cj_redis_last_error(),
                           "cannot connect to Redis at 127.0.0.1:1"));
    cj_redis_pool_free(p);
}

/* Counts the lines of text that contain needle. */
static int count_lines_with(const char *text, const char *needle)
{
    int count = 0;

    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        const char *hit = strstr(line, needle);
        if (hit != NULL && hit < line + len)
            count++;
        line += len + (end != NULL ? 1 : 0);
    }
    return count;
}

static void test_outage_logs_first_failure_and_recovery(void **state)
{
    (void)state;
    /* Bound but not listening, so every connect is refused at once. */
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);
    int closed_fd = socket(AF_INET, SOCK_STREAM, 0);
    const int attempts = 20;
    const char *ping[] = {"PING"};
    redisReply *r = NULL;
    char text[16384];

    assert_true(closed_fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(closed_fd, (struct sockaddr *)&addr, sizeof(addr)),
                     0);
    assert_int_equal(
        getsockname(closed_fd, (struct sockaddr *)&addr, &addr_len), 0);

    /* A success first ends any streak that earlier tests left open. */
    struct cj_redis_pool *good = new_pool(1);
    assert_int_equal(run(good, &r, 1, ping), CJ_OK);
    freeReplyObject(r);
    r = NULL;
    cj_redis_pool_free(good);

    FILE *log_file = tmpfile();
    assert_non_null(log_file);
    cj_log_init("test_redis", CJ_LOG_INFO);
    cj_log_set_fd(fileno(log_file));
    struct cj_redis_pool *down =
        new_pool_at("127.0.0.1", ntohs(addr.sin_port), 1);
    for (int i = 0; i < attempts; i++)
        assert_int_equal(run(down, &r, 1, ping), CJ_ERR_UNAVAILABLE);
    cj_redis_pool_free(down);
    good = new_pool(1);
    assert_int_equal(run(good, &r, 1, ping), CJ_OK);
    freeReplyObject(r);
    cj_redis_pool_free(good);
    cj_log_set_fd(2);
    close(closed_fd);

    rewind(log_file);
    size_t n = fread(text, 1, sizeof(text) - 1, log_file);
    text[n] = '\0';
    fclose(log_file);
    assert_int_equal(count_lines_with(text, "\"redis.connect_failed\""), 1);
    assert_int_equal(count_lines_with(text, "\"suppressed_repeats\":0"), 1);
    assert_int_equal(count_lines_with(text, "\"redis.connect_recovered\""), 1);
    char failures[32];
    snprintf(failures, sizeof(failures), "\"failures\":%d", attempts);
    assert_int_equal(count_lines_with(text, failures), 1);
}

static int cleanup_keys(void **state)
{
    (void)state;
    struct cj_redis_pool *p = new_pool(1);
    const char *suffixes[] = {"bin", "str", "counter"};
    for (size_t i = 0; i < 3; i++) {
        char key[96];
        snprintf(key, sizeof(key), "%s:%s", prefix, suffixes[i]);
        const char *del[] = {"DEL", key};
        redisReply *r = NULL;
        assert_int_equal(run(p, &r, 2, del), CJ_OK);
        freeReplyObject(r);
    }
    cj_redis_pool_free(p);
    return 0;
}

int main(void)
{
    redis_host = itest_require_env("test_redis", "CERROJO_TEST_REDIS_HOST");
    redis_port =
        atoi(itest_require_env("test_redis", "CERROJO_TEST_REDIS_PORT"));
    snprintf(prefix, sizeof(prefix), "cjtest:%d", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_value_round_trips),
        cmocka_unit_test(test_error_reply_maps_to_internal),
        cmocka_unit_test(test_script_loads_after_flush),
        cmocka_unit_test(test_script_error_maps_to_internal),
        cmocka_unit_test(test_killed_connection_reopens),
        cmocka_unit_test(test_open_multi_drops_connection),
        cmocka_unit_test(test_acquire_times_out_when_pool_busy),
        cmocka_unit_test(test_reconnects_after_redis_restart),
        cmocka_unit_test(test_unreachable_redis_is_unavailable),
        cmocka_unit_test(test_outage_logs_first_failure_and_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup_keys);
}

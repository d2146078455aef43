/* Tests for the Redis pool against real Redis servers, one restarted here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "closed_port_helper.h"
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

/* Command timeout of the close test: long enough that a command it ends
 * early cannot have ended by timing out. */
#define CLOSE_TEST_COMMAND_TIMEOUT_MS 20000
/* Maximum wait for the blocked command to show up in CLIENT LIST. */
#define CLOSE_TEST_BLOCK_WAIT_MS 5000
#define CLOSE_TEST_POLL_MS       50

struct blocked_command {
    struct cj_redis_pool *pool;
    const char *client_name;
    const char *list_key;
    enum cj_status name_status;
    enum cj_status status;
    redisReply *reply;
    long long elapsed_ms;
    char error[256];
};

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Names its connection, then waits in BLPOP with no server-side timeout,
 * so only the command timeout or cj_redis_pool_close can end the wait. */
static void *run_blocked_command(void *arg)
{
    struct blocked_command *b = arg;
    struct cj_redis_conn *conn = NULL;
    redisReply *r = NULL;

    b->name_status = cj_redis_acquire(b->pool, -1, &conn);
    if (b->name_status != CJ_OK) {
        return NULL;
    }
    const char *setname[] = {"CLIENT", "SETNAME", b->client_name};
    const size_t setname_len[] = {6, 7, strlen(b->client_name)};
    b->name_status = cj_redis_conn_command(conn, 3, setname, setname_len, &r);
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (b->name_status == CJ_OK) {
        const char *blpop[] = {"BLPOP", b->list_key, "0"};
        const size_t blpop_len[] = {5, strlen(b->list_key), 1};
        long long start = monotonic_ms();
        b->status = cj_redis_conn_command(conn, 3, blpop, blpop_len, &b->reply);
        b->elapsed_ms = monotonic_ms() - start;
        snprintf(b->error, sizeof(b->error), "%s", cj_redis_last_error());
    }
    cj_redis_release(conn);
    return NULL;
}

/* Returns whether CLIENT LIST shows the named client blocked in BLPOP. */
static bool client_is_blocked(struct cj_redis_pool *observer, const char *name)
{
    const char *list[] = {"CLIENT", "LIST"};
    redisReply *r = NULL;
    char needle[128];
    bool blocked = false;

    if (run(observer, &r, 2, list) == CJ_OK && r->type == REDIS_REPLY_STRING) {
        snprintf(needle, sizeof(needle), "name=%s ", name);
        const char *line = strstr(r->str, needle);
        const char *end = line != NULL ? strchr(line, '\n') : NULL;
        const char *cmd = line != NULL ? strstr(line, "cmd=blpop") : NULL;
        blocked = cmd != NULL && (end == NULL || cmd < end);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return blocked;
}

static void test_pool_close_ends_waiting_command(void **state)
{
    (void)state;
    struct cj_redis_options o = {.host = redis_host,
                                 .port = redis_port,
                                 .pool_size = 2,
                                 .connect_timeout_ms = 1000,
                                 .command_timeout_ms =
                                     CLOSE_TEST_COMMAND_TIMEOUT_MS,
                                 .acquire_timeout_ms = 2000};
    struct cj_redis_pool *p = NULL;
    struct cj_redis_pool *observer = new_pool(1);
    struct blocked_command b = {0};
    char name[96];
    char key[96];
    pthread_t thread;

    assert_int_equal(cj_redis_pool_new(&o, &p), CJ_OK);
    snprintf(name, sizeof(name), "cjtest-close-%d", (int)getpid());
    snprintf(key, sizeof(key), "%s:never-pushed", prefix);
    b.pool = p;
    b.client_name = name;
    b.list_key = key;
    assert_false(cj_redis_pool_closing(p));
    assert_int_equal(pthread_create(&thread, NULL, run_blocked_command, &b), 0);

    bool blocked = false;
    for (int waited = 0; waited < CLOSE_TEST_BLOCK_WAIT_MS && !blocked;
         waited += CLOSE_TEST_POLL_MS) {
        usleep(CLOSE_TEST_POLL_MS * 1000);
        blocked = client_is_blocked(observer, name);
    }
    cj_redis_pool_close(p);
    assert_int_equal(pthread_join(thread, NULL), 0);

    assert_true(blocked);
    assert_true(cj_redis_pool_closing(p));
    assert_int_equal(b.name_status, CJ_OK);
    assert_int_equal(b.status, CJ_ERR_UNAVAILABLE);
    assert_null(b.reply);
    assert_non_null(strstr(b.error, "closed for shutdown"));
    /* Far under the command timeout, so the close ended the wait. */
    assert_true(b.elapsed_ms < CLOSE_TEST_COMMAND_TIMEOUT_MS / 2);

    /* The closed pool lends nothing more. */
    struct cj_redis_conn *c = NULL;
    assert_int_equal(cj_redis_acquire(p, 100, &c), CJ_ERR_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(cj_redis_last_error(), "closed for shutdown"));
    redisReply *r = NULL;
    const char *ping[] = {"PING"};
    assert_int_equal(run(p, &r, 1, ping), CJ_ERR_UNAVAILABLE);
    assert_null(r);
    cj_redis_pool_free(p);
    cj_redis_pool_free(observer);
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
    struct closed_port closed;

    assert_int_equal(closed_port_hold(&closed), 0);
    int port = closed.port;
    struct cj_redis_pool *p = new_pool_at("127.0.0.1", port, 1);
    redisReply *r = NULL;
    const char *ping[] = {"PING"};
    char expected[64];

    snprintf(expected, sizeof(expected),
             "cannot connect to Redis at 127.0.0.1:%d", port);
    assert_int_equal(run(p, &r, 1, ping), CJ_ERR_UNAVAILABLE);
    assert_null(r);
    assert_non_null(strstr(cj_redis_last_error(), expected));
    cj_redis_pool_free(p);
    closed_port_release(&closed);
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
    /* Every connect to the held port is refused at once. */
    struct closed_port closed;
    const int attempts = 20;
    const char *ping[] = {"PING"};
    redisReply *r = NULL;
    char text[16384];

    assert_int_equal(closed_port_hold(&closed), 0);

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
    struct cj_redis_pool *down = new_pool_at("127.0.0.1", closed.port, 1);
    for (int i = 0; i < attempts; i++)
        assert_int_equal(run(down, &r, 1, ping), CJ_ERR_UNAVAILABLE);
    cj_redis_pool_free(down);
    good = new_pool(1);
    assert_int_equal(run(good, &r, 1, ping), CJ_OK);
    freeReplyObject(r);
    cj_redis_pool_free(good);
    cj_log_set_fd(2);
    closed_port_release(&closed);

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
        cmocka_unit_test(test_pool_close_ends_waiting_command),
        cmocka_unit_test(test_reconnects_after_redis_restart),
        cmocka_unit_test(test_unreachable_redis_is_unavailable),
        cmocka_unit_test(test_outage_logs_first_failure_and_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup_keys);
}

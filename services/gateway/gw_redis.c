/*
 * Anti-replay records and rate limits in Redis through the common pool.
 */
#include "gw_redis.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_metrics.h"
#include "log.h"
#include "redis.h"

/* Clock offset above which Redis is not ready unless configured, in ms. */
#define GW_REDIS_CLOCK_OFFSET_MAX_MS_DEFAULT 5000
/* Room for a key: the prefix, a bucket name, an IPv6 address. */
#define GW_REDIS_KEY_SIZE 160
/* Room for "host" of a host:port setting. */
#define GW_REDIS_HOST_SIZE 256
/* Connections in the pool: one per concurrent request at most. */
#define GW_REDIS_POOL_SIZE 16
/* Per-command and acquire timeouts, in milliseconds: a slow Redis costs a
 * request this much before it fails closed. */
#define GW_REDIS_TIMEOUT_MS 500

/*
 * GCRA (generic cell rate algorithm). KEYS[1] is the bucket, ARGV[1] the
 * emission interval T in ms (a minute divided by the rate), ARGV[2] the
 * burst and ARGV[3] the max count of requests to take. The stored value is
 * the theoretical arrival time (TAT) in ms. A request fits when the new
 * TAT is at most burst * T ahead of now, so floor((now + burst * T - TAT)
 * / T) requests fit at once. The script takes as many as fit, up to
 * ARGV[3], and returns {count, 0}. When none fits, it returns {0, the wait
 * in ms until one does}. Redis's own clock is used so that every gateway
 * replica agrees.
 */
static const char gw_gcra_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local interval = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local max_count = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local room = math.floor((now + burst * interval - tat) / interval)\n"
    "if room < 1 then return {0, tat + interval - burst * interval - now} "
    "end\n"
    "local count = math.min(room, max_count)\n"
    "local new_tat = tat + count * interval\n"
    "redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)\n"
    "return {count, 0}\n";

struct gw_redis {
    struct cj_redis_pool *pool;
    struct cj_redis_script gcra;
    long long clock_offset_max_ms; /* 0: never not-ready for the clock */
    bool clock_warned;             /* touched by the probe thread only */
    bool write_refused;            /* touched by the probe thread only */
};

static enum cj_status gw_redis_parse_addr(const char *addr, char *host,
                                          size_t host_size, int *port)
{
    const char *colon = strrchr(addr, ':');
    char *end = NULL;
    long value;

    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= host_size) {
        return CJ_ERR_INVALID;
    }
    errno = 0;
    value = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || value < 1 || value > 65535) {
        return CJ_ERR_INVALID;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)value;
    return CJ_OK;
}

bool gw_redis_addr_valid(const char *addr)
{
    char host[GW_REDIS_HOST_SIZE];
    int port;

    return gw_redis_parse_addr(addr, host, sizeof(host), &port) == CJ_OK;
}

enum cj_status gw_redis_new(const char *addr, struct gw_redis **out)
{
    char host[GW_REDIS_HOST_SIZE];
    struct cj_redis_options options = {
        .host = host,
        .pool_size = GW_REDIS_POOL_SIZE,
        .connect_timeout_ms = GW_REDIS_TIMEOUT_MS,
        .command_timeout_ms = GW_REDIS_TIMEOUT_MS,
        .acquire_timeout_ms = GW_REDIS_TIMEOUT_MS,
    };
    struct gw_redis *redis = NULL;
    enum cj_status status;

    *out = NULL;
    status = gw_redis_parse_addr(addr, host, sizeof(host), &options.port);
    if (status != CJ_OK) {
        return status;
    }
    redis = calloc(1, sizeof(*redis));
    if (redis == NULL) {
        return CJ_ERR_NOMEM;
    }
    status = cj_redis_pool_new(&options, &redis->pool);
    if (status != CJ_OK) {
        free(redis);
        return status;
    }
    cj_redis_script_init(&redis->gcra, gw_gcra_lua);
    redis->clock_offset_max_ms = GW_REDIS_CLOCK_OFFSET_MAX_MS_DEFAULT;
    *out = redis;
    return CJ_OK;
}

void gw_redis_free(struct gw_redis *redis)
{
    if (redis == NULL) {
        return;
    }
    cj_redis_pool_free(redis->pool);
    free(redis);
}

void gw_redis_set_clock_offset_max(struct gw_redis *redis, long long max_ms)
{
    redis->clock_offset_max_ms = max_ms;
}

static long long gw_wall_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

enum cj_status gw_redis_clock_offset(struct gw_redis *redis,
                                     long long *offset_ms)
{
    const char *argv[] = {"TIME"};
    size_t argvlen[] = {4};
    redisReply *reply = NULL;
    long long before = gw_wall_ms();
    long long after;
    long long redis_ms;
    enum cj_status status =
        cj_redis_command(redis->pool, 1, argv, argvlen, &reply);

    after = gw_wall_ms();
    if (status != CJ_OK) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        status = CJ_ERR_INTERNAL;
        goto out;
    }
    redis_ms = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
               strtoll(reply->element[1]->str, NULL, 10) / 1000;
    *offset_ms = redis_ms - (before + after) / 2;

out:
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return status;
}

/* Lifetime of the key the readiness probe writes, in milliseconds. */
#define GW_REDIS_PROBE_TTL_MS "10000"

/*
 * Writes GW_REDIS_PROBE_KEY. Returns true when Redis accepted the write or
 * did not reply at all (the TIME probe reports that), and false on an
 * error reply, whose text it logs once per run of refused writes.
 */
static bool gw_redis_write_accepted(struct gw_redis *redis)
{
    const char *argv[] = {"SET", GW_REDIS_PROBE_KEY, "1", "PX",
                          GW_REDIS_PROBE_TTL_MS};
    size_t argvlen[5];
    redisReply *reply = NULL;
    bool refused;

    for (size_t i = 0; i < 5; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    /* Only an error reply shows that Redis is reachable but rejects
     * writes, which the status alone does not tell apart. */
    enum cj_status status =
        cj_redis_command(redis->pool, 5, argv, argvlen, &reply);
    refused =
        status != CJ_OK && reply != NULL && reply->type == REDIS_REPLY_ERROR;
    if (refused && !redis->write_refused) {
        cj_log(CJ_LOG_WARN, "gateway.redis_write_refused", NULL,
               CJ_F_STR("error", reply->str));
    }
    redis->write_refused = refused;
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return !refused;
}

enum gw_dependency_state gw_redis_probe(void *arg)
{
    struct gw_redis *redis = arg;
    long long offset = 0;
    long long magnitude;
    bool above_warning;

    if (gw_redis_clock_offset(redis, &offset) != CJ_OK) {
        return GW_DEP_DOWN;
    }
    gw_metrics_set_redis_clock_offset_ms(offset);
    magnitude = offset < 0 ? -offset : offset;
    /* Warn once per excursion above the warning level, not every probe. */
    above_warning = magnitude > GW_REDIS_CLOCK_WARN_MS;
    if (above_warning && !redis->clock_warned) {
        cj_log(CJ_LOG_WARN, "gateway.redis_clock_offset", NULL,
               CJ_F_INT("offset_ms", offset),
               CJ_F_INT("not_ready_above_ms", redis->clock_offset_max_ms));
    }
    redis->clock_warned = above_warning;
    if (redis->clock_offset_max_ms > 0 &&
        magnitude > redis->clock_offset_max_ms) {
        return GW_DEP_CLOCK_SKEW;
    }
    if (!gw_redis_write_accepted(redis)) {
        return GW_DEP_WRITE_REFUSED;
    }
    return GW_DEP_UP;
}

enum cj_status gw_replay_record(struct gw_redis *redis, const uint8_t *enc,
                                size_t enc_len, unsigned ttl_seconds)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char key[GW_REDIS_KEY_SIZE];
    char ttl[16];
    const char *argv[6];
    size_t argvlen[6];
    redisReply *reply = NULL;
    enum cj_status status;
    size_t prefix = sizeof(GW_REPLAY_KEY_PREFIX) - 1;

    crypto_hash_sha256(digest, enc, enc_len);
    memcpy(key, GW_REPLAY_KEY_PREFIX, prefix);
    sodium_bin2hex(key + prefix, sizeof(key) - prefix, digest, sizeof(digest));
    snprintf(ttl, sizeof(ttl), "%u", ttl_seconds);
    argv[0] = "SET";
    argv[1] = key;
    argv[2] = "1";
    argv[3] = "NX";
    argv[4] = "EX";
    argv[5] = ttl;
    for (size_t i = 0; i < 6; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    status = cj_redis_command(redis->pool, 6, argv, argvlen, &reply);
    if (status == CJ_OK) {
        /* SET NX returns OK when it wrote and nil when the key existed. */
        status = reply->type == REDIS_REPLY_NIL ? CJ_ERR_REPLAYED : CJ_OK;
    }
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return status;
}

enum cj_status gw_ratelimit_take(struct gw_redis *redis, const char *bucket,
                                 const char *client_ip, unsigned per_minute,
                                 unsigned burst, unsigned *retry_after_s)
{
    unsigned granted = 0;

    return gw_ratelimit_take_many(redis, bucket, client_ip, per_minute, burst,
                                  1, &granted, retry_after_s);
}

enum cj_status gw_ratelimit_take_many(struct gw_redis *redis,
                                      const char *bucket, const char *client_ip,
                                      unsigned per_minute, unsigned burst,
                                      unsigned max_count, unsigned *granted,
                                      unsigned *retry_after_s)
{
    char key[GW_REDIS_KEY_SIZE];
    char interval[16];
    char burst_text[16];
    char count_text[16];
    const char *argv[4] = {key, interval, burst_text, count_text};
    size_t argvlen[4];
    redisReply *reply = NULL;
    enum cj_status status;
    unsigned interval_ms = per_minute > 0 ? 60000u / per_minute : 60000u;
    long long count;

    *granted = 0;
    *retry_after_s = 0;
    snprintf(key, sizeof(key), "%s%s:%s", GW_RATELIMIT_KEY_PREFIX, bucket,
             client_ip);
    snprintf(interval, sizeof(interval), "%u",
             interval_ms > 0 ? interval_ms : 1);
    snprintf(burst_text, sizeof(burst_text), "%u", burst > 0 ? burst : 1);
    if (max_count == 0) {
        max_count = 1;
    }
    snprintf(count_text, sizeof(count_text), "%u", max_count);
    for (size_t i = 0; i < 4; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    status =
        cj_redis_eval(redis->pool, &redis->gcra, 1, 4, argv, argvlen, &reply);
    if (status != CJ_OK) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        status = CJ_ERR_INTERNAL;
        goto out;
    }
    count = reply->element[0]->integer;
    if (count < 0 || count > (long long)max_count) {
        status = CJ_ERR_INTERNAL;
        goto out;
    }
    if (count == 0) {
        long long wait_ms = reply->element[1]->integer;

        *retry_after_s = (unsigned)((wait_ms + 999) / 1000);
        if (*retry_after_s == 0) {
            *retry_after_s = 1;
        }
        status = CJ_ERR_RATE_LIMITED;
        goto out;
    }
    *granted = (unsigned)count;

out:
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return status;
}

/* Login attempt reservation in Redis, one Lua script per attempt. */
#include "auth_throttle.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

/*
 * KEYS[1] the account key. ARGV: free attempts, base delay ms, max delay
 * ms, streak TTL ms. Uses the Redis clock, so that replicas of auth with
 * skewed clocks agree. Returns {1, 0} when admitted, {0, wait_ms} when not.
 * Hash fields: n, attempts in the streak; next, earliest next attempt (ms).
 */
static const char reserve_source[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local v = redis.call('HMGET', KEYS[1], 'n', 'next')\n"
    "local n = tonumber(v[1]) or 0\n"
    "local next_at = tonumber(v[2]) or 0\n"
    "if now < next_at then return {0, next_at - now} end\n"
    "n = n + 1\n"
    "local free = tonumber(ARGV[1])\n"
    "local delay = 0\n"
    "if n >= free then\n"
    "  delay = tonumber(ARGV[2]) * 2 ^ math.min(n - free, 40)\n"
    "  delay = math.min(delay, tonumber(ARGV[3]))\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'n', n, 'next', now + delay)\n"
    "redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), delay))\n"
    "return {1, 0}\n";

static struct cj_redis_script reserve_script;
static pthread_once_t reserve_once = PTHREAD_ONCE_INIT;

static void reserve_script_init(void)
{
    cj_redis_script_init(&reserve_script, reserve_source);
}

long long auth_throttle_delay_ms(const struct auth_throttle_policy *policy,
                                 long long attempt)
{
    long long delay;
    long long doublings;

    if (attempt < policy->free_attempts) {
        return 0;
    }
    doublings = attempt - policy->free_attempts;
    delay = policy->base_delay_ms;
    for (long long i = 0; i < doublings && delay < policy->max_delay_ms; i++) {
        delay *= 2;
    }
    return delay < policy->max_delay_ms ? delay : policy->max_delay_ms;
}

void auth_throttle_key(const char *user_id, const char *login_norm,
                       char out[AUTH_THROTTLE_KEY_SIZE])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];

    if (user_id != NULL && user_id[0] != '\0') {
        snprintf(out, AUTH_THROTTLE_KEY_SIZE, "%su:%s",
                 AUTH_THROTTLE_KEY_PREFIX, user_id);
        return;
    }
    SHA256((const unsigned char *)login_norm, strlen(login_norm), digest);
    for (size_t i = 0; i < sizeof(digest); i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    snprintf(out, AUTH_THROTTLE_KEY_SIZE, "%sn:%s", AUTH_THROTTLE_KEY_PREFIX,
             hex);
}

enum cj_status auth_throttle_reserve(struct cj_redis_pool *redis,
                                     const struct auth_throttle_policy *policy,
                                     const char *key, bool *admitted,
                                     long long *retry_after_s)
{
    char free_text[24];
    char base_text[24];
    char max_text[24];
    char ttl_text[24];
    const char *argv[5];
    size_t argvlen[5];
    redisReply *reply = NULL;
    enum cj_status rc;

    *admitted = false;
    *retry_after_s = 0;
    pthread_once(&reserve_once, reserve_script_init);
    snprintf(free_text, sizeof(free_text), "%lld", policy->free_attempts);
    snprintf(base_text, sizeof(base_text), "%lld", policy->base_delay_ms);
    snprintf(max_text, sizeof(max_text), "%lld", policy->max_delay_ms);
    snprintf(ttl_text, sizeof(ttl_text), "%lld", policy->streak_ttl_ms);
    argv[0] = key;
    argv[1] = free_text;
    argv[2] = base_text;
    argv[3] = max_text;
    argv[4] = ttl_text;
    for (int i = 0; i < 5; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    rc = cj_redis_eval(redis, &reserve_script, 1, 5, argv, argvlen, &reply);
    if (rc != CJ_OK) {
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        rc = CJ_ERR_INTERNAL;
        goto out;
    }
    *admitted = reply->element[0]->integer == 1;
    if (!*admitted) {
        long long wait_ms = reply->element[1]->integer;

        *retry_after_s = wait_ms <= 0 ? 1 : (wait_ms + 999) / 1000;
    }
out:
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return rc;
}

enum cj_status auth_throttle_reset(struct cj_redis_pool *redis, const char *key)
{
    const char *argv[] = {"DEL", key};
    size_t argvlen[] = {3, strlen(key)};
    redisReply *reply = NULL;
    enum cj_status rc = cj_redis_command(redis, 2, argv, argvlen, &reply);

    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return rc;
}

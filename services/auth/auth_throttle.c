/* Login attempt reservation in Redis, one Lua script per attempt. */
#include "auth_throttle.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

/*
 * KEYS[1] the per-address key, KEYS[2] the account key, KEYS[3] the
 * marker of an address the account logged in from. ARGV: free attempts
 * per address, free attempts per account, base delay ms, max delay ms,
 * streak TTL ms, whether markers count (1 or 0), how far the account's
 * count may grow past its baseline before a marked address waits on the
 * account too, and the earliest creation time (Unix ms) of a marker that
 * counts. A marker's value is its creation time. Markers written before
 * that hold "1", which reads as 1 ms, so they count until the user's next
 * logout of all devices. Every attempt counts in both streaks. A
 * marked address skips the account's wait below that bound, so that guesses
 * from many other addresses cannot keep the owner out. A guesser who shares the
 * owner's address still adds to the account's count and meets its wait at
 * the bound. The baseline (field kb) is the count at the last successful
 * login, so a slow guesser cannot use up the bound of an owner who keeps
 * logging in.
 * Uses the Redis clock, so that replicas of auth with skewed clocks agree.
 * Returns {1, 0} when admitted, {0, wait_ms} when a streak must wait.
 * Hash fields: n, attempts in the streak; next, earliest next attempt
 * (ms).
 */
static const char reserve_source[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local marked = ARGV[6] == '1' and tonumber(redis.call('GET', KEYS[3]))\n"
    "local known = marked and marked >= tonumber(ARGV[8])\n"
    "local n = {}\n"
    "local wait = 0\n"
    "for i = 1, 2 do\n"
    "  local v = redis.call('HMGET', KEYS[i], 'n', 'next', 'kb')\n"
    "  n[i] = tonumber(v[1]) or 0\n"
    "  local grown = n[i] - (tonumber(v[3]) or 0)\n"
    "  if i == 1 or not known or grown >= tonumber(ARGV[7]) then\n"
    "    wait = math.max(wait, (tonumber(v[2]) or 0) - now)\n"
    "  end\n"
    "end\n"
    "if wait > 0 then return {0, wait} end\n"
    "for i = 1, 2 do\n"
    "  local count = n[i] + 1\n"
    "  local free = tonumber(ARGV[i])\n"
    "  local delay = 0\n"
    "  if count >= free then\n"
    "    delay = tonumber(ARGV[3]) * 2 ^ math.min(count - free, 40)\n"
    "    delay = math.min(delay, tonumber(ARGV[4]))\n"
    "  end\n"
    "  redis.call('HSET', KEYS[i], 'n', count, 'next', now + delay)\n"
    "  redis.call('PEXPIRE', KEYS[i], math.max(tonumber(ARGV[5]), delay))\n"
    "end\n"
    "return {1, 0}\n";

/*
 * KEYS as for the reservation. ARGV: the marker's TTL ms (0: no marker) and
 * its value, the login's time in Unix ms.
 * Ends the per-address streak, marks the address as known, takes the
 * successful attempt back out of the account's count, which keeps the
 * failures of other addresses, and moves the known addresses' baseline to
 * that count. Deleting the account's streak would let a guesser go on
 * after each login of the owner.
 */
static const char reset_source[] =
    "redis.call('DEL', KEYS[1])\n"
    "local n = tonumber(redis.call('HGET', KEYS[2], 'n'))\n"
    "if n then\n"
    "  n = math.max(n - 1, 0)\n"
    "  redis.call('HSET', KEYS[2], 'n', n, 'kb', n)\n"
    "end\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[1])\n"
    "end\n"
    "return 1\n";

/* Keys, and keys plus arguments, of the reservation script. */
#define RESERVE_KEYS 3
#define RESERVE_ARGS 11
#define RESET_ARGS   5

static struct cj_redis_script reserve_script;
static struct cj_redis_script reset_script;
static pthread_once_t reserve_once = PTHREAD_ONCE_INIT;

static void reserve_script_init(void)
{
    cj_redis_script_init(&reserve_script, reserve_source);
    cj_redis_script_init(&reset_script, reset_source);
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

int64_t auth_throttle_marker_valid_from_ms(int64_t sessions_revoked_at_ms)
{
    if (sessions_revoked_at_ms <= 0) {
        return 0;
    }
    return (sessions_revoked_at_ms / 1000 + 1) * 1000;
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

void auth_throttle_keys(const char *user_id, const char *login_norm,
                        const char *client_ip, struct auth_throttle_keys *out)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[AUTH_THROTTLE_SOURCE_HEX + 1];
    const char *ip = client_ip != NULL ? client_ip : "";

    auth_throttle_key(user_id, login_norm, out->account);
    SHA256((const unsigned char *)ip, strlen(ip), digest);
    for (size_t i = 0; i < AUTH_THROTTLE_SOURCE_HEX / 2; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    snprintf(out->source, sizeof(out->source), "%s:%s", out->account, hex);
    snprintf(out->known, sizeof(out->known), "%s:k:%s", out->account, hex);
    out->has_address = ip[0] != '\0';
}

enum cj_status auth_throttle_reserve(struct cj_redis_pool *redis,
                                     const struct auth_throttle_policy *policy,
                                     const struct auth_throttle_keys *keys,
                                     int64_t sessions_revoked_at_ms,
                                     bool *admitted, long long *retry_after_s)
{
    char free_text[24];
    char account_free_text[24];
    char base_text[24];
    char max_text[24];
    char ttl_text[24];
    char known_wait_text[24];
    char valid_from_text[24];
    const char *argv[RESERVE_ARGS];
    size_t argvlen[RESERVE_ARGS];
    redisReply *reply = NULL;
    enum cj_status rc;

    *admitted = false;
    *retry_after_s = 0;
    pthread_once(&reserve_once, reserve_script_init);
    snprintf(free_text, sizeof(free_text), "%lld", policy->free_attempts);
    snprintf(account_free_text, sizeof(account_free_text), "%lld",
             policy->account_free_attempts);
    snprintf(base_text, sizeof(base_text), "%lld", policy->base_delay_ms);
    snprintf(max_text, sizeof(max_text), "%lld", policy->max_delay_ms);
    snprintf(ttl_text, sizeof(ttl_text), "%lld", policy->streak_ttl_ms);
    snprintf(known_wait_text, sizeof(known_wait_text), "%lld",
             policy->account_free_attempts *
                 AUTH_LOGIN_KNOWN_ADDRESS_ACCOUNT_FACTOR);
    snprintf(
        valid_from_text, sizeof(valid_from_text), "%lld",
        (long long)auth_throttle_marker_valid_from_ms(sessions_revoked_at_ms));
    argv[0] = keys->source;
    argv[1] = keys->account;
    argv[2] = keys->known;
    argv[3] = free_text;
    argv[4] = account_free_text;
    argv[5] = base_text;
    argv[6] = max_text;
    argv[7] = ttl_text;
    /* With markers off, markers written before exempt no address. */
    argv[8] = policy->known_address_ttl_ms > 0 ? "1" : "0";
    argv[9] = known_wait_text;
    argv[10] = valid_from_text;
    for (int i = 0; i < RESERVE_ARGS; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    rc = cj_redis_eval(redis, &reserve_script, RESERVE_KEYS, RESERVE_ARGS, argv,
                       argvlen, &reply);
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

enum cj_status auth_throttle_reset(struct cj_redis_pool *redis,
                                   const struct auth_throttle_policy *policy,
                                   const struct auth_throttle_keys *keys,
                                   int64_t now_ms)
{
    char ttl_text[24];
    char now_text[24];
    const char *argv[RESET_ARGS];
    size_t argvlen[RESET_ARGS];
    redisReply *reply = NULL;
    enum cj_status rc;

    pthread_once(&reserve_once, reserve_script_init);
    snprintf(ttl_text, sizeof(ttl_text), "%lld",
             keys->has_address ? policy->known_address_ttl_ms : 0);
    snprintf(now_text, sizeof(now_text), "%lld", (long long)now_ms);
    argv[0] = keys->source;
    argv[1] = keys->account;
    argv[2] = keys->known;
    argv[3] = ttl_text;
    argv[4] = now_text;
    for (int i = 0; i < RESET_ARGS; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    rc = cj_redis_eval(redis, &reset_script, RESERVE_KEYS, RESET_ARGS, argv,
                       argvlen, &reply);

    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return rc;
}

/* Login attempt reservation in Redis, one Lua script per attempt. */
#include "auth_throttle.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth_names.h"
#include "crypto_util.h"
#include "hmac.h"

/*
 * KEYS[1] the key of the name from this address, KEYS[2] the name's key,
 * KEYS[3] the marker of an address that logged in with the name, and
 * KEYS[4], when the address is known, the address's key. ARGV[1] to [5]:
 * free attempts per name and address, free attempts per name, base delay
 * ms, max delay ms and streak TTL ms. ARGV[6] is whether markers count (1
 * or 0), ARGV[7] how far the name's count may grow past its baseline
 * before a marked address waits on the name too, ARGV[8] the earliest
 * creation time (Unix ms) of a marker that counts, and ARGV[9] the free
 * attempts per address. A marker's value is its creation time. Markers
 * written before that hold "1", which reads as 1 ms, so they count until
 * the user's next logout of all devices. Every attempt counts
 * in every streak. A marked address skips the address's wait, and the
 * name's wait below that bound, so that guesses from many other addresses
 * (or sprayed over many names from its own) cannot keep the owner out. A
 * guesser who shares the owner's address still adds to the name's count
 * and meets its wait at the bound. The baseline (field kb) is the count at
 * the last successful login, so a slow guesser cannot use up the bound of
 * an owner who keeps logging in.
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
    "local streaks = {KEYS[1], KEYS[2], KEYS[4]}\n"
    "local free = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[9])}\n"
    "local n = {}\n"
    "local wait = 0\n"
    "for i = 1, #streaks do\n"
    "  local v = redis.call('HMGET', streaks[i], 'n', 'next', 'kb')\n"
    "  n[i] = tonumber(v[1]) or 0\n"
    "  local grown = n[i] - (tonumber(v[3]) or 0)\n"
    "  local exempt = known and (i == 3 or\n"
    "    (i == 2 and grown < tonumber(ARGV[7])))\n"
    "  if not exempt then\n"
    "    wait = math.max(wait, (tonumber(v[2]) or 0) - now)\n"
    "  end\n"
    "end\n"
    "if wait > 0 then return {0, wait} end\n"
    "for i = 1, #streaks do\n"
    "  local count = n[i] + 1\n"
    "  local delay = 0\n"
    "  if count >= free[i] then\n"
    "    delay = tonumber(ARGV[3]) * 2 ^ math.min(count - free[i], 40)\n"
    "    delay = math.min(delay, tonumber(ARGV[4]))\n"
    "  end\n"
    "  redis.call('HSET', streaks[i], 'n', count, 'next', now + delay)\n"
    "  redis.call('PEXPIRE', streaks[i], math.max(tonumber(ARGV[5]), delay))\n"
    "end\n"
    "return {1, 0}\n";

/*
 * KEYS as for the reservation. ARGV: the marker's TTL ms (0: no marker) and
 * its value, the login's time in Unix ms.
 * Ends the streak of the name from this address and marks the address as
 * known. Takes the successful attempt back out of the name's and the
 * address's counts, which keeps the failures counted there, and moves the
 * known addresses' baseline to the name's count. Deleting the name's
 * streak would let a guesser go on after each login of the owner, and
 * deleting the address's would let a sprayer go on after each login to an
 * account of its own.
 */
static const char reset_source[] =
    "redis.call('DEL', KEYS[1])\n"
    "local n = tonumber(redis.call('HGET', KEYS[2], 'n'))\n"
    "if n then\n"
    "  n = math.max(n - 1, 0)\n"
    "  redis.call('HSET', KEYS[2], 'n', n, 'kb', n)\n"
    "end\n"
    "if KEYS[4] then\n"
    "  local a = tonumber(redis.call('HGET', KEYS[4], 'n'))\n"
    "  if a then redis.call('HSET', KEYS[4], 'n', math.max(a - 1, 0)) end\n"
    "end\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[1])\n"
    "end\n"
    "return 1\n";

/* Keys without and with the address's streak, and keys plus arguments. */
#define SCRIPT_KEYS         3
#define SCRIPT_KEYS_ADDRESS 4
#define RESERVE_ARGS        (SCRIPT_KEYS_ADDRESS + 9)
#define RESET_ARGS          (SCRIPT_KEYS_ADDRESS + 2)
/* Domain tags of the HMAC inputs, so a name never maps to an address. */
#define NAME_TAG    "name:"
#define ADDRESS_TAG "address:"
#define TAG_MAX     sizeof(ADDRESS_TAG)
/* An IPv6 address counts by its first 8 bytes (/64); an IPv4-mapped one
 * (::ffff:a.b.c.d) by the IPv4 address in its last 4. */
#define IPV6_PREFIX_BYTES  8
#define IPV4_MAPPED_OFFSET 4

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

void auth_throttle_address_group(const char *client_ip, char *out, size_t size)
{
    struct in_addr v4;
    struct in6_addr v6;
    char text[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET, client_ip, &v4) == 1) {
        inet_ntop(AF_INET, &v4, text, sizeof(text));
        snprintf(out, size, "%s", text);
        return;
    }
    if (inet_pton(AF_INET6, client_ip, &v6) != 1) {
        snprintf(out, size, "%s", client_ip);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        memcpy(&v4, &v6.s6_addr[IPV6_PREFIX_BYTES + IPV4_MAPPED_OFFSET],
               sizeof(v4));
        inet_ntop(AF_INET, &v4, text, sizeof(text));
        snprintf(out, size, "%s", text);
        return;
    }
    memset(&v6.s6_addr[IPV6_PREFIX_BYTES], 0,
           sizeof(v6.s6_addr) - IPV6_PREFIX_BYTES);
    inet_ntop(AF_INET6, &v6, text, sizeof(text));
    snprintf(out, size, "%s/%d", text, IPV6_PREFIX_BYTES * 8);
}

/* Writes the first hex_len hex digits of HMAC-SHA-256(secret, tag value). */
static enum cj_status hmac_hex(const uint8_t *secret, const char *tag,
                               const char *value, char *hex, size_t hex_len)
{
    uint8_t digest[CJ_HMAC_SHA256_LEN];
    char message[TAG_MAX + AUTH_NAME_BUF_BYTES];
    size_t tag_len = strlen(tag);
    size_t value_len = strlen(value);
    enum cj_status rc;

    if (tag_len + value_len > sizeof(message)) {
        return CJ_ERR_INVALID;
    }
    memcpy(message, tag, tag_len);
    memcpy(message + tag_len, value, value_len);
    rc = cj_hmac_sha256(digest, secret, AUTH_THROTTLE_SECRET_BYTES,
                        (const uint8_t *)message, tag_len + value_len);
    cj_wipe(message, sizeof(message));
    if (rc != CJ_OK) {
        return rc;
    }
    for (size_t i = 0; i < hex_len / 2; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    hex[hex_len] = '\0';
    return CJ_OK;
}

enum cj_status
auth_throttle_keys(const uint8_t secret[AUTH_THROTTLE_SECRET_BYTES],
                   const char *login_norm, const char *client_ip,
                   struct auth_throttle_keys *out)
{
    char group[AUTH_THROTTLE_ADDRESS_GROUP_SIZE];
    char name_hex[2 * CJ_HMAC_SHA256_LEN + 1];
    char address_hex[2 * CJ_HMAC_SHA256_LEN + 1];
    const char *ip = client_ip != NULL ? client_ip : "";
    enum cj_status rc;

    auth_throttle_address_group(ip, group, sizeof(group));
    rc = hmac_hex(secret, NAME_TAG, login_norm, name_hex, sizeof(name_hex) - 1);
    if (rc == CJ_OK) {
        rc = hmac_hex(secret, ADDRESS_TAG, group, address_hex,
                      sizeof(address_hex) - 1);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    snprintf(out->account, sizeof(out->account), "%si:%s",
             AUTH_THROTTLE_KEY_PREFIX, name_hex);
    snprintf(out->address, sizeof(out->address), "%sa:%s",
             AUTH_THROTTLE_KEY_PREFIX, address_hex);
    snprintf(out->source, sizeof(out->source), "%s:%.*s", out->account,
             AUTH_THROTTLE_SOURCE_HEX, address_hex);
    snprintf(out->known, sizeof(out->known), "%s:k:%.*s", out->account,
             AUTH_THROTTLE_SOURCE_HEX, address_hex);
    out->has_address = ip[0] != '\0';
    return CJ_OK;
}

/* Puts the script's keys at the start of argv; returns how many. */
static int put_keys(const struct auth_throttle_keys *keys, const char **argv)
{
    argv[0] = keys->source;
    argv[1] = keys->account;
    argv[2] = keys->known;
    if (!keys->has_address) {
        return SCRIPT_KEYS;
    }
    argv[3] = keys->address;
    return SCRIPT_KEYS_ADDRESS;
}

enum cj_status auth_throttle_reserve(struct cj_redis_pool *redis,
                                     const struct auth_throttle_policy *policy,
                                     const struct auth_throttle_keys *keys,
                                     int64_t sessions_revoked_at_ms,
                                     bool *admitted, long long *retry_after_s)
{
    char free_text[24];
    char account_free_text[24];
    char address_free_text[24];
    char base_text[24];
    char max_text[24];
    char ttl_text[24];
    char known_wait_text[24];
    char valid_from_text[24];
    const char *argv[RESERVE_ARGS];
    size_t argvlen[RESERVE_ARGS];
    redisReply *reply = NULL;
    int nkeys = put_keys(keys, argv);
    int argc = nkeys;
    enum cj_status rc;

    *admitted = false;
    *retry_after_s = 0;
    pthread_once(&reserve_once, reserve_script_init);
    snprintf(free_text, sizeof(free_text), "%lld", policy->free_attempts);
    snprintf(account_free_text, sizeof(account_free_text), "%lld",
             policy->account_free_attempts);
    snprintf(address_free_text, sizeof(address_free_text), "%lld",
             policy->address_free_attempts);
    snprintf(base_text, sizeof(base_text), "%lld", policy->base_delay_ms);
    snprintf(max_text, sizeof(max_text), "%lld", policy->max_delay_ms);
    snprintf(ttl_text, sizeof(ttl_text), "%lld", policy->streak_ttl_ms);
    snprintf(known_wait_text, sizeof(known_wait_text), "%lld",
             policy->account_free_attempts *
                 AUTH_LOGIN_KNOWN_ADDRESS_ACCOUNT_FACTOR);
    snprintf(
        valid_from_text, sizeof(valid_from_text), "%lld",
        (long long)auth_throttle_marker_valid_from_ms(sessions_revoked_at_ms));
    argv[argc++] = free_text;
    argv[argc++] = account_free_text;
    argv[argc++] = base_text;
    argv[argc++] = max_text;
    argv[argc++] = ttl_text;
    /* With markers off, markers written before exempt no address. */
    argv[argc++] = policy->known_address_ttl_ms > 0 ? "1" : "0";
    argv[argc++] = known_wait_text;
    argv[argc++] = valid_from_text;
    argv[argc++] = address_free_text;
    for (int i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    rc = cj_redis_eval(redis, &reserve_script, nkeys, argc, argv, argvlen,
                       &reply);
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
    int nkeys = put_keys(keys, argv);
    int argc = nkeys;
    enum cj_status rc;

    pthread_once(&reserve_once, reserve_script_init);
    snprintf(ttl_text, sizeof(ttl_text), "%lld",
             keys->has_address ? policy->known_address_ttl_ms : 0);
    snprintf(now_text, sizeof(now_text), "%lld", (long long)now_ms);
    argv[argc++] = ttl_text;
    argv[argc++] = now_text;
    for (int i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    rc =
        cj_redis_eval(redis, &reset_script, nkeys, argc, argv, argvlen, &reply);

    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return rc;
}

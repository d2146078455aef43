/*
 * Login throttling in Redis (namespace cerrojo:login:). An attempt is
 * reserved atomically, before any password work, by a Lua script; each
 * reservation counts as a failure until the login succeeds. Two streaks
 * count: one per account and client address, and one per account. After
 * free_attempts attempts in a row from one address, that address waits
 * between attempts, doubling from the base delay up to the maximum. The
 * account as a whole waits the same way only after account_free_attempts,
 * which takes guesses from many addresses. So one guesser cannot keep the
 * owner, who logs in from elsewhere, out.
 */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "status.h"

#define AUTH_THROTTLE_KEY_PREFIX "cerrojo:login:"
/* "cerrojo:login:" + "n:" + 64 hex digits + NUL. */
#define AUTH_THROTTLE_KEY_SIZE 96
/* Hex digits of the address hash in a per-address key. */
#define AUTH_THROTTLE_SOURCE_HEX 32
/* An account key, ":" and the address hash. */
#define AUTH_THROTTLE_SOURCE_KEY_SIZE                                          \
    (AUTH_THROTTLE_KEY_SIZE + 1 + AUTH_THROTTLE_SOURCE_HEX)
/* The known-address marker: the account key, ":k:" and the address hash. */
#define AUTH_THROTTLE_KNOWN_KEY_SIZE (AUTH_THROTTLE_SOURCE_KEY_SIZE + 2)

/* Defaults of the configuration settings below. */
#define AUTH_LOGIN_FREE_ATTEMPTS_DEFAULT         5
#define AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS_DEFAULT 50
#define AUTH_LOGIN_BASE_DELAY_MS_DEFAULT         1000
#define AUTH_LOGIN_MAX_DELAY_MS_DEFAULT          (15 * 60 * 1000)
/* A streak of failures is forgotten after this long without attempts. */
#define AUTH_LOGIN_STREAK_TTL_MS_DEFAULT (60 * 60 * 1000)
/* A known address waits on the account's streak too once that streak has
 * grown by this many times the account's free attempts since the last
 * successful login. */
#define AUTH_LOGIN_KNOWN_ADDRESS_ACCOUNT_FACTOR 4

struct auth_throttle_policy {
    long long free_attempts;         /* per address, before any delay */
    long long account_free_attempts; /* per account, from any address */
    long long base_delay_ms; /* first delay; doubles per attempt after */
    long long max_delay_ms;  /* cap of the delay */
    long long streak_ttl_ms; /* idle time after which a streak resets */
    /* How long an address the account logged in from stays known; 0 turns
     * the exemption off. */
    long long known_address_ttl_ms;
};

/* The streaks one login attempt counts in, and its address's marker. */
struct auth_throttle_keys {
    char source[AUTH_THROTTLE_SOURCE_KEY_SIZE]; /* account from one address */
    char account[AUTH_THROTTLE_KEY_SIZE];       /* the account */
    char known[AUTH_THROTTLE_KNOWN_KEY_SIZE];   /* address marker */
    bool has_address; /* the caller named a client address */
};

/*
 * Builds the key for an account: by user id when the user exists,
 * otherwise by the SHA-256 of the normalized login name, so both cases
 * behave alike and no name is stored in clear.
 */
void auth_throttle_key(const char *user_id, const char *login_norm,
                       char out[AUTH_THROTTLE_KEY_SIZE]);

/*
 * Builds the keys of an attempt. The per-address key and the marker append
 * a SHA-256 prefix of client_ip ("" when unknown, which then counts as one
 * address and is never marked known), so that no address is stored in
 * clear.
 */
void auth_throttle_keys(const char *user_id, const char *login_norm,
                        const char *client_ip, struct auth_throttle_keys *out);

/*
 * Returns the earliest creation time (Unix ms) of a marker that counts
 * after a logout of all devices at sessions_revoked_at_ms (0: none). A
 * marker from the revocation's second is stale too, because a token whose
 * iat (whole seconds) is in that second is revoked as well.
 * NOTE: the marker's time comes from the replica that took the login and
 * the revocation's from the one that took the logout. Both are on
 * Postgres's timeline (auth_now_ms), so a marker made up to the sum of
 * their offset measurement errors (half a round trip to Postgres each)
 * before the logout can still count.
 */
int64_t auth_throttle_marker_valid_from_ms(int64_t sessions_revoked_at_ms);

/*
 * Reserves one attempt in both streaks. An address the account logged in
 * from before skips the account's wait until the account's count has grown
 * by AUTH_LOGIN_KNOWN_ADDRESS_ACCOUNT_FACTOR times its free attempts since
 * the last successful login. A marker made before or in the second of the
 * user's latest logout of all devices (sessions_revoked_at_ms, Unix ms, 0
 * for none) does not count, so a revocation also ends the exemption of
 * every address logged in from until then.
 * *admitted is false when a streak must wait, with *retry_after_s the
 * whole seconds until the later of them allows a try (at least 1). Redis
 * errors come back as CJ_ERR_UNAVAILABLE: the caller fails the login
 * rather than skip the throttle.
 */
CJ_WARN_UNUSED enum cj_status auth_throttle_reserve(
    struct cj_redis_pool *redis, const struct auth_throttle_policy *policy,
    const struct auth_throttle_keys *keys, int64_t sessions_revoked_at_ms,
    bool *admitted, long long *retry_after_s);

/*
 * After a successful login: ends the per-address streak, marks the
 * address as known for policy->known_address_ttl_ms, and takes the attempt
 * back out of the account's count, keeping other addresses' failures and
 * any wait they set. The marker stores now_ms, auth's clock at the login,
 * because the revocation time it is compared with comes from auth's clock
 * too, not from Redis's.
 */
CJ_WARN_UNUSED enum cj_status
auth_throttle_reset(struct cj_redis_pool *redis,
                    const struct auth_throttle_policy *policy,
                    const struct auth_throttle_keys *keys, int64_t now_ms);

/*
 * The delay that the attempt number `attempt` (1-based) of a streak puts
 * before the next one; exposed for tests.
 */
long long auth_throttle_delay_ms(const struct auth_throttle_policy *policy,
                                 long long attempt);

#endif

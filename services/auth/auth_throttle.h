/*
 * Per-account login throttling in Redis (namespace cerrojo:login:). An
 * attempt is reserved atomically, before any password work, by a Lua
 * script; each reservation counts as a failure until the login succeeds.
 * After AUTH_LOGIN_FREE_ATTEMPTS attempts in a row the account waits
 * between attempts, doubling from the base delay up to the maximum, so
 * guessing slows down but the owner is never locked out for good.
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

/* Defaults of the configuration settings below. */
#define AUTH_LOGIN_FREE_ATTEMPTS_DEFAULT 5
#define AUTH_LOGIN_BASE_DELAY_MS_DEFAULT 1000
#define AUTH_LOGIN_MAX_DELAY_MS_DEFAULT  (15 * 60 * 1000)
/* A streak of failures is forgotten after this long without attempts. */
#define AUTH_LOGIN_STREAK_TTL_MS_DEFAULT (60 * 60 * 1000)

struct auth_throttle_policy {
    long long free_attempts; /* attempts in a row before any delay */
    long long base_delay_ms; /* first delay; doubles per attempt after */
    long long max_delay_ms;  /* cap of the delay */
    long long streak_ttl_ms; /* idle time after which a streak resets */
};

/*
 * Builds the key for an account: by user id when the user exists,
 * otherwise by the SHA-256 of the normalized login name, so both cases
 * behave alike and no name is stored in clear.
 */
void auth_throttle_key(const char *user_id, const char *login_norm,
                       char out[AUTH_THROTTLE_KEY_SIZE]);

/*
 * Reserves one attempt. *admitted is false when the account must wait,
 * with *retry_after_s the whole seconds until it may try again (at least
 * 1). Redis errors come back as CJ_ERR_UNAVAILABLE: the caller fails the
 * login rather than skip the throttle.
 */
CJ_WARN_UNUSED enum cj_status auth_throttle_reserve(
    struct cj_redis_pool *redis, const struct auth_throttle_policy *policy,
    const char *key, bool *admitted, long long *retry_after_s);

/* Ends the streak after a successful login. */
CJ_WARN_UNUSED enum cj_status auth_throttle_reset(struct cj_redis_pool *redis,
                                                  const char *key);

/*
 * The delay that the attempt number `attempt` (1-based) of a streak puts
 * before the next one; exposed for tests.
 */
long long auth_throttle_delay_ms(const struct auth_throttle_policy *policy,
                                 long long attempt);

#endif

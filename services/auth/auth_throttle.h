/*
 * Login throttling in Redis (namespace cerrojo:login:). An attempt is
 * reserved atomically, before any password work, by a Lua script; each
 * reservation counts as a failure until the login succeeds. Three streaks
 * count: one per typed login name and client address, one per typed login
 * name, and one per client address across all names. After free_attempts
 * attempts in a row on one name from one address, that address waits
 * between attempts on the name, doubling from the base delay up to the
 * maximum. The name as a whole waits the same way only after
 * account_free_attempts, which takes guesses from many addresses. So one
 * guesser cannot keep the owner, who logs in from elsewhere, out. An
 * address waits on every name after address_free_attempts attempts across
 * all names, which slows password spraying and affects no other address.
 *
 * The streaks of a name are keyed on the name as typed, in the folded form
 * that login resolves (auth_login_normalize), never on the account it
 * resolves to. So an account's username and email have separate streaks,
 * and an unknown name is throttled exactly like a known one. So no throttle
 * response depends on whether the name exists or which identifier of an
 * account was typed. The trade-off: a guesser who alternates an account's
 * username and email gets up to twice the attempts of one name.
 *
 * Key names carry HMAC-SHA-256 values of the name and of the address under
 * a secret kept in Postgres (auth.login_throttle_key), not in Redis, so a
 * Redis dump reveals neither, not even to a table of their hashes. IPv6
 * addresses count per /64, the block one host usually controls.
 */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "status.h"

#define AUTH_THROTTLE_KEY_PREFIX "cerrojo:login:"
/* Bytes of the HMAC-SHA-256 key that names the Redis keys. */
#define AUTH_THROTTLE_SECRET_BYTES 32
/* "cerrojo:login:" + "i:" or "a:" + 64 hex digits + NUL. */
#define AUTH_THROTTLE_KEY_SIZE 96
/* Hex digits of the address HMAC in a per-name-and-address key. */
#define AUTH_THROTTLE_SOURCE_HEX 32
/* A name key, ":" and the address HMAC. */
#define AUTH_THROTTLE_SOURCE_KEY_SIZE                                          \
    (AUTH_THROTTLE_KEY_SIZE + 1 + AUTH_THROTTLE_SOURCE_HEX)
/* The known-address marker: the name key, ":k:" and the address HMAC. */
#define AUTH_THROTTLE_KNOWN_KEY_SIZE (AUTH_THROTTLE_SOURCE_KEY_SIZE + 2)
/* An IPv6 /64 prefix in text ("2001:db8:1:2::/64") and its NUL. */
#define AUTH_THROTTLE_ADDRESS_GROUP_SIZE 64

/* Defaults of the configuration settings below. */
#define AUTH_LOGIN_FREE_ATTEMPTS_DEFAULT         5
#define AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS_DEFAULT 50
/* NOTE: an address's streak resets only after the streak TTL without
 * attempts, so a busy shared address (an office NAT) keeps counting the
 * failures of all its users. Addresses known for the typed name skip its
 * wait, but a user new there waits once the count passes this. */
#define AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS_DEFAULT 20
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
    long long account_free_attempts; /* per name, from any address */
    long long address_free_attempts; /* per address, across all names */
    long long base_delay_ms; /* first delay; doubles per attempt after */
    long long max_delay_ms;  /* cap of the delay */
    long long streak_ttl_ms; /* idle time after which a streak resets */
    /* How long an address the account logged in from stays known; 0 turns
     * the exemption off. */
    long long known_address_ttl_ms;
};

/* The streaks one login attempt counts in, and its address's marker. */
struct auth_throttle_keys {
    char source[AUTH_THROTTLE_SOURCE_KEY_SIZE]; /* name from one address */
    char account[AUTH_THROTTLE_KEY_SIZE];       /* the name */
    char known[AUTH_THROTTLE_KNOWN_KEY_SIZE];   /* address marker */
    char address[AUTH_THROTTLE_KEY_SIZE];       /* address, all names */
    bool has_address; /* the caller named a client address */
};

/*
 * Writes the form of client_ip that the throttle counts by: an IPv4
 * address (also one written IPv4-mapped) as is, an IPv6 address as its /64
 * prefix, and text that is neither unchanged (truncated to size).
 */
void auth_throttle_address_group(const char *client_ip, char *out, size_t size);

/*
 * Builds the keys of an attempt on login_norm, the typed name in folded
 * form, from client_ip. Keys carry HMAC-SHA-256 values under secret: the
 * whole value for a name or an address, its first AUTH_THROTTLE_SOURCE_HEX
 * hex digits after a name key. client_ip NULL or "" (unknown) counts as
 * one address for the per-name streaks, is never marked known, and has no
 * per-address streak, because every such caller would share it. Returns
 * CJ_ERR_INVALID when a value does not fit, and the HMAC's error.
 */
CJ_WARN_UNUSED enum cj_status
auth_throttle_keys(const uint8_t secret[AUTH_THROTTLE_SECRET_BYTES],
                   const char *login_norm, const char *client_ip,
                   struct auth_throttle_keys *out);

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
 * Reserves one attempt in every streak of keys. An address that logged in
 * with this name before skips the per-address wait, and skips the name's
 * wait until the name's count has grown by
 * AUTH_LOGIN_KNOWN_ADDRESS_ACCOUNT_FACTOR times its free attempts since
 * the last successful login. A marker made before or in the second of the
 * user's latest logout of all devices (sessions_revoked_at_ms, Unix ms, 0
 * for none or an unknown name) does not count, so a revocation also ends
 * the exemption of every address logged in from until then. Only a
 * login with the password makes a marker, so the exemptions reveal
 * nothing to a guesser.
 * *admitted is false when a streak must wait, with *retry_after_s the
 * whole seconds until the latest of them allows a try (at least 1). Redis
 * errors come back as CJ_ERR_UNAVAILABLE: the caller fails the login
 * rather than skip the throttle.
 */
CJ_WARN_UNUSED enum cj_status auth_throttle_reserve(
    struct cj_redis_pool *redis, const struct auth_throttle_policy *policy,
    const struct auth_throttle_keys *keys, int64_t sessions_revoked_at_ms,
    bool *admitted, long long *retry_after_s);

/*
 * After a successful login: ends the streak of the name from this address,
 * marks the address as known for the name for policy->known_address_ttl_ms,
 * and takes the attempt back out of the name's and the address's counts,
 * keeping the failures counted there and any wait they set. The marker
 * stores now_ms, auth's clock at the login, because the revocation time it
 * is compared with comes from auth's clock too, not from Redis's.
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

/*
 * The gateway's Redis namespaces: cerrojo:replay: (stateless anti-replay,
 * one key per encapsulated key seen) and cerrojo:rl: (per-IP rate limits,
 * GCRA in one Lua script so that the check and the update are atomic).
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_backend.h"
#include "status.h"

#define GW_REPLAY_KEY_PREFIX    "cerrojo:replay:"
#define GW_RATELIMIT_KEY_PREFIX "cerrojo:rl:"

struct gw_redis;

/* True when `addr` has the "host:port" form that gw_redis_new() accepts:
 * a non-empty host and a port from 1 to 65535. */
bool gw_redis_addr_valid(const char *addr);

/* Creates the pool for "host:port" (connections open lazily). Returns
 * CJ_ERR_INVALID for a malformed address. */
CJ_WARN_UNUSED enum cj_status gw_redis_new(const char *addr,
                                           struct gw_redis **out);

void gw_redis_free(struct gw_redis *redis);

/* Offset of Redis's clock above which a warning is logged, in ms. */
#define GW_REDIS_CLOCK_WARN_MS 1000

/* Sets the clock offset above which Redis counts as not ready (the
 * replay TTLs and rate limits run on Redis's clock). */
void gw_redis_set_clock_offset_max(struct gw_redis *redis, long long max_ms);

/*
 * Measures Redis's clock (TIME) against this one, halfway through the
 * round trip. Returns CJ_OK with *offset_ms = Redis minus local, or the
 * Redis failure.
 */
CJ_WARN_UNUSED enum cj_status gw_redis_clock_offset(struct gw_redis *redis,
                                                    long long *offset_ms);

/* Key that the readiness probe writes, under the rate-limit prefix so that
 * an ACL that lets the gateway write its limits lets it write the probe. */
#define GW_REDIS_PROBE_KEY GW_RATELIMIT_KEY_PREFIX "readyz-probe"

/*
 * The readiness probe (a gw_redis_probe_fn): returns GW_DEP_UP,
 * GW_DEP_DOWN, GW_DEP_CLOCK_SKEW or GW_DEP_WRITE_REFUSED. The last means
 * that Redis replies to TIME but rejects a SET of GW_REDIS_PROBE_KEY with
 * an error reply (maxmemory with noeviction, a read-only replica). The rate
 * limits and replay records then fail every request. Exports the offset
 * as a metric, warns when it passes GW_REDIS_CLOCK_WARN_MS, and logs
 * gateway.redis_write_refused with Redis's error reply when writes start
 * failing.
 */
enum gw_dependency_state gw_redis_probe(void *redis);

/*
 * Records an encapsulated key (SET NX with a TTL of ttl_seconds) under
 * cerrojo:replay:<hex SHA-256 of enc>. Returns CJ_OK the first time,
 * CJ_ERR_REPLAYED when the key was already recorded, CJ_ERR_UNAVAILABLE or
 * CJ_ERR_TIMEOUT when Redis does not reply (the caller fails closed).
 */
CJ_WARN_UNUSED enum cj_status gw_replay_record(struct gw_redis *redis,
                                               const uint8_t *enc,
                                               size_t enc_len,
                                               unsigned ttl_seconds);

/*
 * Takes one request from the bucket cerrojo:rl:<bucket>:<client_ip>, which
 * allows `per_minute` requests a minute on average and `burst` at once.
 * Returns CJ_OK when allowed, CJ_ERR_RATE_LIMITED with *retry_after_s (at
 * least 1) when not, or the Redis failure.
 */
CJ_WARN_UNUSED enum cj_status
gw_ratelimit_take(struct gw_redis *redis, const char *bucket,
                  const char *client_ip, unsigned per_minute, unsigned burst,
                  unsigned *retry_after_s);

/*
 * Takes as many requests as fit now, up to max_count (0 counts as 1), from
 * the same bucket in one script call. Returns CJ_OK with *granted in 1 to
 * max_count, CJ_ERR_RATE_LIMITED with *granted = 0 and *retry_after_s (at
 * least 1) when none fits, or the Redis failure.
 */
CJ_WARN_UNUSED enum cj_status
gw_ratelimit_take_many(struct gw_redis *redis, const char *bucket,
                       const char *client_ip, unsigned per_minute,
                       unsigned burst, unsigned max_count, unsigned *granted,
                       unsigned *retry_after_s);

#endif

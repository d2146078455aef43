/*
 * Local leases on the per-IP rate limits: a gateway takes a small batch of
 * requests from a client's Redis bucket in one script call and admits the
 * client's next requests from that batch without a round trip.
 */
#ifndef GW_RATE_LEASE_H
#define GW_RATE_LEASE_H

#include "gw_redis.h"
#include "status.h"

/*
 * Largest batch one gateway leases from one bucket. Redis counts requests
 * when they are leased, so the leases never exceed the limit. A leased
 * request may be spent later, though, and a gateway holds at most
 * GW_RATE_LEASE_BATCH_MAX + GW_RATE_LEASE_BATCH_MAX /
 * GW_RATE_LEASE_REFILL_DIVISOR requests of a client at once (20). Within any
 * time window a client therefore gets at most that many requests per gateway
 * replica above the bucket's own limit.
 */
#define GW_RATE_LEASE_BATCH_MAX 16
/* A batch is at most the bucket's burst divided by this (and at least 1),
 * so that one replica cannot hold a small burst while the others reject
 * the same client. */
#define GW_RATE_LEASE_BURST_DIVISOR 4
/* The next batch doubles when the last one was spent (down to a quarter)
 * within this many ms of being leased, and halves otherwise. A client that
 * sends requests slowly therefore takes them from Redis one at a time. */
#define GW_RATE_LEASE_GROW_MS 100
/* A batch spent that fast is refilled once a quarter of it (this divisor)
 * is left, by the request that takes it there, so that the client's other
 * requests rarely wait for Redis. */
#define GW_RATE_LEASE_REFILL_DIVISOR 4
/* Leased requests not spent within this many ms of the last lease are
 * dropped and not given back, so a client that pauses loses at most what
 * the gateway held for it. Requests leased before Redis became unreachable
 * are admitted for at most this long. */
#define GW_RATE_LEASE_TTL_MS 1000
/* Clients (bucket and IP) with a lease at once. A client whose slot is
 * taken by another loses its leased requests and leases again. */
#define GW_RATE_LEASE_SLOTS 1024

struct gw_rate_leases;

/* Creates an empty lease table, or returns NULL when out of memory. */
struct gw_rate_leases *gw_rate_leases_new(void);

void gw_rate_leases_free(struct gw_rate_leases *leases);

/*
 * Admits one request of `client_ip` in `bucket` (see gw_ratelimit_take),
 * from a leased batch when one is left and otherwise by leasing a new
 * batch from Redis. Returns CJ_OK, CJ_ERR_RATE_LIMITED with
 * *retry_after_s, or the Redis failure, on which the caller fails closed.
 * With leases NULL, every request goes to Redis. Thread-safe.
 */
CJ_WARN_UNUSED enum cj_status
gw_rate_leases_take(struct gw_rate_leases *leases, struct gw_redis *redis,
                    const char *bucket, const char *client_ip,
                    unsigned per_minute, unsigned burst,
                    unsigned *retry_after_s);

#endif

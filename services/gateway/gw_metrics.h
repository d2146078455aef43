/*
 * The gateway's Prometheus metrics: requests by route, method and status,
 * latency histograms by route, and rejections by reason. A small local
 * registry of fixed-size atomic counters, so recording never allocates or
 * locks.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>

/* Reason the gateway rejected a request itself, not a backend. */
enum gw_rejection {
    GW_REJECT_NOT_FOUND = 0,
    GW_REJECT_METHOD,
    GW_REJECT_BODY_TOO_LARGE,
    GW_REJECT_MEDIA_TYPE,
    GW_REJECT_JSON_INVALID,
    GW_REJECT_JSON_TOO_DEEP,
    GW_REJECT_CORS_ORIGIN,
    GW_REJECT_RATE_LIMITED,
    GW_REJECT_REPLAYED,
    GW_REJECT_DECRYPTION_FAILED,
    GW_REJECT_TIMESTAMP,
    GW_REJECT_TOKEN,
    GW_REJECT_MODE,
    GW_REJECT_BACKEND_UNAVAILABLE,
    GW_REJECT_CONNECTION_LIMIT,
    GW_REJECT_URI_TOO_LONG,
    GW_REJECT_HEADERS_TOO_LARGE,
    GW_REJECT_FRAMING,
    GW_REJECT_REQUEST_TARGET,
    GW_REJECT_HEADER_REPEATED,
    GW_REJECT_COUNT
};

/* Records one finished request. `route_index` is the route's index in the
 * table, or a value >= the route count for an unmatched path. */
void gw_metrics_record_request(size_t route_index, unsigned method_bit,
                               unsigned http_status, double seconds);

void gw_metrics_record_rejection(enum gw_rejection reason);

/* The per-IP rate-limit buckets, each a label value of
 * cerrojo_gateway_rate_limited_total. */
enum gw_rate_bucket {
    GW_RATE_BUCKET_API = 0,
    GW_RATE_BUCKET_HANDSHAKE,
    GW_RATE_BUCKET_SESSION,
    GW_RATE_BUCKET_REGISTER,
    GW_RATE_BUCKET_COUNT
};

/* Records one request rejected with 429 by the bucket's limit. */
void gw_metrics_record_rate_limited(enum gw_rate_bucket bucket);

/* Returns the bucket's name ("api", "handshake", "session", "register"), which
 * is also its key prefix in Redis, or "unknown" for a value out of range. */
const char *gw_rate_bucket_name(enum gw_rate_bucket bucket);

/* Records the last measured offset of Redis's clock from ours, in ms. */
void gw_metrics_set_redis_clock_offset_ms(long long offset_ms);

/* Renders every metric in the Prometheus text format (version 0.0.4) into
 * a new malloc'd string the caller frees; NULL when out of memory. */
char *gw_metrics_render(void);

/* The label value of a rejection reason ("body_too_large"); "none" for
 * GW_REJECT_COUNT, which marks an error that is not a rejection (a
 * backend's error). */
const char *gw_rejection_name(enum gw_rejection reason);

#endif

/*
 * Fixed-size counters and histograms indexed by route, method and status,
 * rendered in the Prometheus text format for the admin port.
 */
#include "gw_metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_routes.h"

/* Routes in the table plus one slot for unmatched paths. */
#define GW_METRICS_ROUTES_MAX 32
/* The statuses the gateway sends, each with its own series. */
static const unsigned gw_metrics_statuses[] = {
    200, 204, 400, 401, 403, 404, 405, 409, 413,
    414, 415, 429, 431, 500, 501, 503, 0 /* any other */};
#define GW_METRICS_STATUS_COUNT                                                \
    (sizeof(gw_metrics_statuses) / sizeof(gw_metrics_statuses[0]))
/* Methods: GET, HEAD, POST, PUT, OPTIONS, other. */
#define GW_METRICS_METHOD_COUNT 6
/* Latency bucket bounds in seconds; the last bucket is +Inf. */
static const double gw_metrics_buckets[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0};
#define GW_METRICS_BUCKET_COUNT                                                \
    (sizeof(gw_metrics_buckets) / sizeof(gw_metrics_buckets[0]))
/* Initial size of the rendered text; it grows as needed. */
#define GW_METRICS_TEXT_BYTES_INITIAL (16 * 1024)

static uint64_t gw_requests[GW_METRICS_ROUTES_MAX][GW_METRICS_METHOD_COUNT]
                           [GW_METRICS_STATUS_COUNT];
static uint64_t gw_latency_buckets[GW_METRICS_ROUTES_MAX]
                                  [GW_METRICS_BUCKET_COUNT + 1];
/* Sum of latencies in microseconds, so it can be an atomic integer. */
static uint64_t gw_latency_sum_us[GW_METRICS_ROUTES_MAX];
static uint64_t gw_rejections[GW_REJECT_COUNT];
static uint64_t gw_rate_limited[GW_RATE_BUCKET_COUNT];
static long long gw_redis_clock_offset_ms;

static const char *const gw_rejection_names[GW_REJECT_COUNT] = {
    [GW_REJECT_NOT_FOUND] = "not_found",
    [GW_REJECT_METHOD] = "method_not_allowed",
    [GW_REJECT_BODY_TOO_LARGE] = "body_too_large",
    [GW_REJECT_MEDIA_TYPE] = "unsupported_media_type",
    [GW_REJECT_JSON_INVALID] = "json_invalid",
    [GW_REJECT_JSON_TOO_DEEP] = "json_too_deep",
    [GW_REJECT_CORS_ORIGIN] = "cors_origin",
    [GW_REJECT_RATE_LIMITED] = "rate_limited",
    [GW_REJECT_REPLAYED] = "replayed",
    [GW_REJECT_DECRYPTION_FAILED] = "decryption_failed",
    [GW_REJECT_TIMESTAMP] = "timestamp_out_of_window",
    [GW_REJECT_TOKEN] = "invalid_token",
    [GW_REJECT_MODE] = "mode_not_accepted",
    [GW_REJECT_BACKEND_UNAVAILABLE] = "backend_unavailable",
    [GW_REJECT_CONNECTION_LIMIT] = "connection_limit",
    [GW_REJECT_URI_TOO_LONG] = "uri_too_long",
    [GW_REJECT_HEADERS_TOO_LARGE] = "headers_too_large",
    [GW_REJECT_FRAMING] = "framing_invalid",
    [GW_REJECT_REQUEST_TARGET] = "request_target_invalid",
    [GW_REJECT_HEADER_REPEATED] = "header_repeated",
};

static const char *const gw_rate_bucket_names[GW_RATE_BUCKET_COUNT] = {
    [GW_RATE_BUCKET_API] = "api",
    [GW_RATE_BUCKET_HANDSHAKE] = "handshake",
    [GW_RATE_BUCKET_SESSION] = "session",
    [GW_RATE_BUCKET_REGISTER] = "register",
};

static const char *const gw_method_names[GW_METRICS_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "OPTIONS", "other"};

const char *gw_rejection_name(enum gw_rejection reason)
{
    if ((unsigned)reason >= GW_REJECT_COUNT) {
        return "none";
    }
    return gw_rejection_names[reason];
}

const char *gw_rate_bucket_name(enum gw_rate_bucket bucket)
{
    if ((unsigned)bucket >= GW_RATE_BUCKET_COUNT) {
        return "unknown";
    }
    return gw_rate_bucket_names[bucket];
}

void gw_metrics_record_rate_limited(enum gw_rate_bucket bucket)
{
    if ((unsigned)bucket < GW_RATE_BUCKET_COUNT) {
        __atomic_fetch_add(&gw_rate_limited[bucket], 1, __ATOMIC_RELAXED);
    }
}

static size_t gw_metrics_route_slot(size_t route_index)
{
    size_t count;

    gw_routes_all(&count);
    if (route_index >= count || route_index >= GW_METRICS_ROUTES_MAX - 1) {
        return GW_METRICS_ROUTES_MAX - 1;
    }
    return route_index;
}

static size_t gw_metrics_method_slot(unsigned method_bit)
{
    for (size_t i = 0; i < GW_METRICS_METHOD_COUNT - 1; i++) {
        if (method_bit == (1u << i)) {
            return i;
        }
    }
    return GW_METRICS_METHOD_COUNT - 1;
}

static size_t gw_metrics_status_slot(unsigned status)
{
    for (size_t i = 0; i < GW_METRICS_STATUS_COUNT - 1; i++) {
        if (gw_metrics_statuses[i] == status) {
            return i;
        }
    }
    return GW_METRICS_STATUS_COUNT - 1;
}

void gw_metrics_record_request(size_t route_index, unsigned method_bit,
                               unsigned http_status, double seconds)
{
    size_t route = gw_metrics_route_slot(route_index);
    size_t bucket = GW_METRICS_BUCKET_COUNT;

    __atomic_fetch_add(&gw_requests[route][gw_metrics_method_slot(method_bit)]
                                   [gw_metrics_status_slot(http_status)],
                       1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < GW_METRICS_BUCKET_COUNT; i++) {
        if (seconds <= gw_metrics_buckets[i]) {
            bucket = i;
            break;
        }
    }
    __atomic_fetch_add(&gw_latency_buckets[route][bucket], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&gw_latency_sum_us[route],
                       (uint64_t)(seconds > 0 ? seconds * 1e6 : 0),
                       __ATOMIC_RELAXED);
}

void gw_metrics_set_redis_clock_offset_ms(long long offset_ms)
{
    __atomic_store_n(&gw_redis_clock_offset_ms, offset_ms, __ATOMIC_RELAXED);
}

void gw_metrics_record_rejection(enum gw_rejection reason)
{
    if ((unsigned)reason < GW_REJECT_COUNT) {
        __atomic_fetch_add(&gw_rejections[reason], 1, __ATOMIC_RELAXED);
    }
}

/* A growing text buffer; `failed` latches on the first allocation error. */
struct gw_text {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

static void gw_text_printf(struct gw_text *t, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void gw_text_printf(struct gw_text *t, const char *format, ...)
{
    va_list args;
    int n;

    if (t->failed) {
        return;
    }
    for (;;) {
        va_start(args, format);
        n = vsnprintf(t->data + t->len, t->cap - t->len, format, args);
        va_end(args);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        char *grown = realloc(t->data, t->cap * 2 + (size_t)n);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->cap = t->cap * 2 + (size_t)n;
    }
}

static const char *gw_metrics_route_label(size_t slot)
{
    size_t count;
    const struct gw_route *routes = gw_routes_all(&count);

    return slot < count ? routes[slot].path : "unmatched";
}

static void gw_metrics_render_requests(struct gw_text *t)
{
    gw_text_printf(t, "# HELP cerrojo_gateway_requests_total HTTP requests "
                      "by route, method and status.\n"
                      "# TYPE cerrojo_gateway_requests_total counter\n");
    for (size_t r = 0; r < GW_METRICS_ROUTES_MAX; r++) {
        for (size_t m = 0; m < GW_METRICS_METHOD_COUNT; m++) {
            for (size_t s = 0; s < GW_METRICS_STATUS_COUNT; s++) {
                uint64_t v =
                    __atomic_load_n(&gw_requests[r][m][s], __ATOMIC_RELAXED);
                char status[16];

                if (v == 0) {
                    continue;
                }
                if (gw_metrics_statuses[s] == 0) {
                    snprintf(status, sizeof(status), "other");
                } else {
                    snprintf(status, sizeof(status), "%u",
                             gw_metrics_statuses[s]);
                }
                gw_text_printf(t,
                               "cerrojo_gateway_requests_total{route=\"%s\","
                               "method=\"%s\",status=\"%s\"} %llu\n",
                               gw_metrics_route_label(r), gw_method_names[m],
                               status, (unsigned long long)v);
            }
        }
    }
}

/* Renders one counter family with a series per label value. */
static void gw_metrics_render_counters(struct gw_text *t, const char *name,
                                       const char *help, const char *label,
                                       const char *const *values,
                                       uint64_t *counters, size_t count)
{
    gw_text_printf(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < count; i++) {
        gw_text_printf(t, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                       (unsigned long long)__atomic_load_n(&counters[i],
                                                           __ATOMIC_RELAXED));
    }
}

static void gw_metrics_render_latency(struct gw_text *t)
{
    gw_text_printf(t, "# HELP cerrojo_gateway_request_duration_seconds "
                      "Time from the request line to the response.\n"
                      "# TYPE cerrojo_gateway_request_duration_seconds "
                      "histogram\n");
    for (size_t r = 0; r < GW_METRICS_ROUTES_MAX; r++) {
        uint64_t cumulative = 0;
        const char *route = gw_metrics_route_label(r);

        for (size_t b = 0; b <= GW_METRICS_BUCKET_COUNT; b++) {
            cumulative +=
                __atomic_load_n(&gw_latency_buckets[r][b], __ATOMIC_RELAXED);
        }
        if (cumulative == 0) {
            continue;
        }
        cumulative = 0;
        for (size_t b = 0; b <= GW_METRICS_BUCKET_COUNT; b++) {
            cumulative +=
                __atomic_load_n(&gw_latency_buckets[r][b], __ATOMIC_RELAXED);
            if (b < GW_METRICS_BUCKET_COUNT) {
                gw_text_printf(t,
                               "cerrojo_gateway_request_duration_seconds_"
                               "bucket{route=\"%s\",le=\"%g\"} %llu\n",
                               route, gw_metrics_buckets[b],
                               (unsigned long long)cumulative);
            } else {
                gw_text_printf(t,
                               "cerrojo_gateway_request_duration_seconds_"
                               "bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                               route, (unsigned long long)cumulative);
            }
        }
        gw_text_printf(
            t,
            "cerrojo_gateway_request_duration_seconds_sum{route=\"%s\"} "
            "%.6f\n"
            "cerrojo_gateway_request_duration_seconds_count{route=\"%s\"} "
            "%llu\n",
            route,
            (double)__atomic_load_n(&gw_latency_sum_us[r], __ATOMIC_RELAXED) /
                1e6,
            route, (unsigned long long)cumulative);
    }
}

char *gw_metrics_render(void)
{
    struct gw_text t = {.cap = GW_METRICS_TEXT_BYTES_INITIAL};

    t.data = malloc(t.cap);
    if (t.data == NULL) {
        return NULL;
    }
    t.data[0] = '\0';
    gw_metrics_render_requests(&t);
    gw_metrics_render_latency(&t);
    gw_metrics_render_counters(&t, "cerrojo_gateway_rejections_total",
                               "Requests the gateway rejected, by reason.",
                               "reason", gw_rejection_names, gw_rejections,
                               GW_REJECT_COUNT);
    gw_metrics_render_counters(
        &t, "cerrojo_gateway_rate_limited_total",
        "Requests rejected with 429 by a per-IP bucket, by bucket.", "bucket",
        gw_rate_bucket_names, gw_rate_limited, GW_RATE_BUCKET_COUNT);
    gw_text_printf(
        &t,
        "# HELP cerrojo_gateway_redis_clock_offset_seconds "
        "Redis's clock minus the gateway's, at the last probe.\n"
        "# TYPE cerrojo_gateway_redis_clock_offset_seconds gauge\n"
        "cerrojo_gateway_redis_clock_offset_seconds %.3f\n",
        (double)__atomic_load_n(&gw_redis_clock_offset_ms, __ATOMIC_RELAXED) /
            1000.0);
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

/*
 * Everything a request handler shares with the others: settings, the
 * backends and the files served from memory. Built once at start,
 * read-only afterwards (the backends synchronise themselves).
 */
#ifndef GW_CONTEXT_H
#define GW_CONTEXT_H

#include <stddef.h>

#include "gw_backend.h"
#include "gw_settings.h"

struct gw_audit;
struct gw_jwks_cache;
struct gw_rate_leases;
struct gw_redis;

struct gw_context {
    const struct gw_settings *settings;
    struct gw_backends *backends;
    struct gw_jwks_cache *jwks;
    struct gw_redis *redis;        /* NULL: replay checks fail closed (503) */
    struct gw_rate_leases *leases; /* NULL: no leases, Redis per request */
    struct gw_audit *audit;        /* NULL: rejections are only logged */
    char *openapi;                 /* the OpenAPI file, or NULL when absent */
    size_t openapi_len;
};

#endif

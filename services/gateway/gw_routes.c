/*
 * The route table of the gateway's HTTP API and its lookup. Every route of
 * the API is one entry here; the request pipeline (gw_pipeline.c) reads
 * only this table to decide modes, limits and the RPC to call.
 */
#include "gw_routes.h"

#include <stdio.h>
#include <string.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/common.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "cerrojo/v1/session.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "gw_limits.h"
#include "http_head.h"

#define GW_SEALED (GW_MODE_STATELESS | GW_MODE_STATEFUL)

#define GW_AUTH_RPC(name, req, resp)                                           \
    {                                                                          \
        GW_BACKEND_AUTH, "/cerrojo.v1.Auth/" name,                             \
            &cerrojo__v1__##req##__descriptor,                                 \
            &cerrojo__v1__##resp##__descriptor                                 \
    }

static const struct gw_route gw_route_table[] = {
    {.path = "/v1/keys",
     .method = GW_METHOD_GET,
     .modes = GW_MODE_PLAIN,
     .rpc = {GW_BACKEND_KMS, "/cerrojo.v1.Kms/ListPublicKeys",
             &cerrojo__v1__list_public_keys_request__descriptor,
             &cerrojo__v1__list_public_keys_response__descriptor}},
    {.path = "/.well-known/jwks.json",
     .method = GW_METHOD_GET,
     .handler = GW_HANDLER_JWKS,
     .modes = GW_MODE_PLAIN,
     .rpc = {GW_BACKEND_KMS, "/cerrojo.v1.Kms/GetJwks",
             &cerrojo__v1__get_jwks_request__descriptor,
             &cerrojo__v1__get_jwks_response__descriptor}},
    {.path = "/v1/handshake",
     .method = GW_METHOD_POST,
     .modes = GW_MODE_STATELESS,
     .body_bytes_max = GW_BODY_BYTES_HANDSHAKE,
     .rpc = {GW_BACKEND_SESSION, "/cerrojo.v1.Session/CreateSession",
             &cerrojo__v1__create_session_request__descriptor,
             &cerrojo__v1__session_info__descriptor},
     .token_response = true},
    {.path = "/v1/register",
     .method = GW_METHOD_POST,
     .modes = GW_SEALED,
     .body_bytes_max = GW_BODY_BYTES_DEFAULT,
     .rpc = GW_AUTH_RPC("Register", register_request, token_set),
     .unauthenticated_as = GW_ERR_INVALID_CREDENTIALS,
     .token_response = true,
     .opens_session = true},
    {.path = "/v1/login",
     .method = GW_METHOD_POST,
     .modes = GW_SEALED,
     .body_bytes_max = GW_BODY_BYTES_DEFAULT,
     .rpc = GW_AUTH_RPC("Login", login_request, token_set),
     .unauthenticated_as = GW_ERR_INVALID_CREDENTIALS,
     .token_response = true,
     .opens_session = true},
    {.path = "/v1/refresh",
     .method = GW_METHOD_POST,
     .modes = GW_SEALED,
     .body_bytes_max = GW_BODY_BYTES_DEFAULT,
     .rpc = GW_AUTH_RPC("Refresh", refresh_request, token_set),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .token_response = true},
    {.path = "/v1/logout",
     .method = GW_METHOD_POST,
     .modes = GW_SEALED,
     .user = GW_USER_OPTIONAL,
     .body_bytes_max = GW_BODY_BYTES_DEFAULT,
     .rpc = GW_AUTH_RPC("Logout", logout_request, logout_response),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .token_response = true},
    {.path = "/v1/me",
     .method = GW_METHOD_GET,
     .modes = GW_SEALED,
     .user = GW_USER_REQUIRED,
     .rpc = GW_AUTH_RPC("GetProfile", get_profile_request, profile),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN},
    {.path = "/v1/me/data/public",
     .method = GW_METHOD_GET,
     .modes = GW_SEALED,
     .user = GW_USER_REQUIRED,
     .rpc = GW_AUTH_RPC("GetData", get_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PUBLIC},
    {.path = "/v1/me/data/public",
     .method = GW_METHOD_PUT,
     .modes = GW_SEALED,
     .user = GW_USER_REQUIRED,
     .body_bytes_max = GW_BODY_BYTES_DATA_PUT,
     .rpc = GW_AUTH_RPC("PutData", put_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PUBLIC},
    {.path = "/v1/me/data/private",
     .method = GW_METHOD_GET,
     .modes = GW_SEALED,
     .user = GW_USER_REQUIRED,
     .rpc = GW_AUTH_RPC("GetData", get_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PRIVATE},
    {.path = "/v1/me/data/private",
     .method = GW_METHOD_PUT,
     .modes = GW_SEALED,
     .user = GW_USER_REQUIRED,
     .body_bytes_max = GW_BODY_BYTES_DATA_PUT,
     .rpc = GW_AUTH_RPC("PutData", put_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PRIVATE},
    {.path = "/v1/me/data/protected",
     .method = GW_METHOD_GET,
     .modes = GW_MODE_STATEFUL,
     .user = GW_USER_REQUIRED,
     .rpc = GW_AUTH_RPC("GetData", get_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PROTECTED},
    {.path = "/v1/me/data/protected",
     .method = GW_METHOD_PUT,
     .modes = GW_MODE_STATEFUL,
     .user = GW_USER_REQUIRED,
     .body_bytes_max = GW_BODY_BYTES_DATA_PUT,
     .rpc = GW_AUTH_RPC("PutData", put_data_request, user_data),
     .unauthenticated_as = GW_ERR_INVALID_TOKEN,
     .path_field = "class",
     .path_field_value = CERROJO__V1__DATA_CLASS__DATA_CLASS_PROTECTED},
    {.path = "/healthz",
     .method = GW_METHOD_GET,
     .handler = GW_HANDLER_HEALTHZ,
     .modes = GW_MODE_PLAIN},
    {.path = "/readyz",
     .method = GW_METHOD_GET,
     .handler = GW_HANDLER_READYZ,
     .modes = GW_MODE_PLAIN},
    {.path = "/openapi.json",
     .method = GW_METHOD_GET,
     .handler = GW_HANDLER_OPENAPI,
     .modes = GW_MODE_PLAIN},
    /* The cost of the request path without crypto or storage: rate limit,
     * one trivial gRPC call to auth, JSON reply. For `make bench` only. */
    {.path = "/v1/bench/ping",
     .method = GW_METHOD_GET,
     .modes = GW_MODE_PLAIN,
     .rpc = {GW_BACKEND_AUTH, "/grpc.health.v1.Health/Check",
             &grpc__health__v1__health_check_request__descriptor,
             &grpc__health__v1__health_check_response__descriptor},
     .bench_only = true},
};

#define GW_ROUTE_COUNT (sizeof(gw_route_table) / sizeof(gw_route_table[0]))

/* Set once at start, before the HTTP server runs; read-only afterwards. */
static bool gw_bench_routes_enabled;

void gw_routes_enable_bench(bool enabled)
{
    gw_bench_routes_enabled = enabled;
}

/* Returns the methods that a table entry serves, HEAD included for a
 * plain GET, or 0 for a benchmark route while those are off. */
static unsigned gw_route_methods(const struct gw_route *route)
{
    unsigned methods = route->method;

    if (route->bench_only && !gw_bench_routes_enabled) {
        return 0;
    }
    if (route->method == GW_METHOD_GET && route->modes == GW_MODE_PLAIN) {
        methods |= GW_METHOD_HEAD;
    }
    return methods;
}

const struct gw_route *gw_route_find(const char *path, enum gw_method method,
                                     unsigned *allowed)
{
    const struct gw_route *found = NULL;
    unsigned mask = 0;

    for (size_t i = 0; i < GW_ROUTE_COUNT; i++) {
        const struct gw_route *route = &gw_route_table[i];
        unsigned route_methods = gw_route_methods(route);

        if (route_methods == 0 || strcmp(route->path, path) != 0) {
            continue;
        }
        mask |= route_methods | GW_METHOD_OPTIONS;
        if ((route_methods & method) && method != GW_METHOD_OPTIONS) {
            found = route;
        }
    }
    *allowed = mask;
    return found;
}

unsigned gw_routes_methods(void)
{
    unsigned mask = GW_METHOD_OPTIONS;

    for (size_t i = 0; i < GW_ROUTE_COUNT; i++) {
        mask |= gw_route_methods(&gw_route_table[i]);
    }
    return mask;
}

const char *gw_route_target_path(const char *target)
{
    const char *path = NULL;
    size_t path_len = 0;

    /* The path runs to the end of the target, because libmicrohttpd has
     * cut the query off at the first "?". */
    if (!cj_http_target_path(target, strlen(target), &path, &path_len)) {
        return NULL;
    }
    return path;
}

enum gw_method gw_method_parse(const char *name)
{
    static const struct {
        const char *name;
        enum gw_method method;
    } methods[] = {
        {"GET", GW_METHOD_GET},         {"HEAD", GW_METHOD_HEAD},
        {"POST", GW_METHOD_POST},       {"PUT", GW_METHOD_PUT},
        {"OPTIONS", GW_METHOD_OPTIONS},
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, name) == 0) {
            return methods[i].method;
        }
    }
    return GW_METHOD_NONE;
}

void gw_methods_format(unsigned methods, char *buf, size_t size)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT",
                                        "OPTIONS"};
    size_t used = 0;

    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int n;

        if (!(methods & (1u << i))) {
            continue;
        }
        n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                     names[i]);
        if (n < 0 || (size_t)n >= size - used) {
            return;
        }
        used += (size_t)n;
    }
}

const struct gw_route *gw_routes_all(size_t *count)
{
    *count = GW_ROUTE_COUNT;
    return gw_route_table;
}

size_t gw_route_index(const struct gw_route *route)
{
    return (size_t)(route - gw_route_table);
}

const char *gw_backend_name(enum gw_backend backend)
{
    switch (backend) {
    case GW_BACKEND_KMS:
        return "kms";
    case GW_BACKEND_SESSION:
        return "session";
    case GW_BACKEND_AUTH:
        return "auth";
    case GW_BACKEND_NONE:
    case GW_BACKEND_COUNT:
        break;
    }
    return "none";
}

/*
 * The route table: per route and method, the sealing modes it accepts,
 * whether it needs a user, its body limit, and the backend RPC it calls
 * with the protobuf-c descriptors of the request and the response. Adding
 * a route that maps JSON to one RPC is one table entry.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw_errors.h"

/* HTTP methods as bits, so a route's allowed set is a mask. */
enum gw_method {
    GW_METHOD_NONE = 0,
    GW_METHOD_GET = 1u << 0,
    GW_METHOD_HEAD = 1u << 1,
    GW_METHOD_POST = 1u << 2,
    GW_METHOD_PUT = 1u << 3,
    GW_METHOD_OPTIONS = 1u << 4,
};

/* Sealing modes a route accepts, as bits. */
enum gw_mode {
    GW_MODE_PLAIN = 1u << 0,
    GW_MODE_STATELESS = 1u << 1,
    GW_MODE_STATEFUL = 1u << 2,
};

/* The backend services the gateway calls. */
enum gw_backend {
    GW_BACKEND_NONE = 0,
    GW_BACKEND_KMS,
    GW_BACKEND_SESSION,
    GW_BACKEND_AUTH,
    GW_BACKEND_COUNT
};

/* Whether a route needs an authenticated user. */
enum gw_user_rule {
    GW_USER_NONE = 0, /* no user; a token in the plaintext gets 400 */
    GW_USER_OPTIONAL, /* verified and passed on when present */
    GW_USER_REQUIRED, /* 401 invalid_token without one */
};

/* What serves the route: a backend RPC, or the gateway itself. */
enum gw_handler {
    GW_HANDLER_RPC = 0,
    GW_HANDLER_HEALTHZ,
    GW_HANDLER_READYZ,
    GW_HANDLER_OPENAPI,
    GW_HANDLER_JWKS,
};

/* One backend RPC with the descriptors of its messages. */
struct gw_rpc {
    enum gw_backend backend;
    const char *path; /* full gRPC method path, "/cerrojo.v1.Auth/Login" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
};

/* One route and method. */
struct gw_route {
    const char *path;
    enum gw_method method;
    enum gw_handler handler;
    unsigned modes; /* enum gw_mode bits */
    enum gw_user_rule user;
    size_t body_bytes_max; /* 0: the route takes no body */
    struct gw_rpc rpc;
    /* The class a backend's UNAUTHENTICATED stands for on this route. */
    enum gw_error unauthenticated_as;
    /* An enum field the route sets from its path (the data class); the
     * client may not name it in JSON. NULL for none. */
    const char *path_field;
    int path_field_value;
    /* The response carries tokens: Cache-Control: no-store. Every sealed
     * response gets no-store too. */
    bool token_response;
    /* A request that carries a valid client_secret opens a session
     * (register and login), so it spends a token of the session bucket. */
    bool opens_session;
    /* Served only after gw_routes_enable_bench(true); unknown (404)
     * otherwise. */
    bool bench_only;
};

/*
 * Enables the benchmark-only routes (GET /v1/bench/ping, which makes one
 * trivial gRPC call to auth). Called once at start from the
 * CERROJO_GATEWAY_BENCH_ROUTE setting, which only the dev profile accepts.
 */
void gw_routes_enable_bench(bool enabled);

/* Looks up (path, method). Returns the route, or NULL with *allowed set to
 * the methods the path accepts (0 when the path is unknown: 404). HEAD is
 * answered by a plain GET route. OPTIONS is never a table entry. */
const struct gw_route *gw_route_find(const char *path, enum gw_method method,
                                     unsigned *allowed);

/* Returns the methods that any route serves, OPTIONS included. This is the
 * Allow set of "OPTIONS *", a request about the server as a whole. */
unsigned gw_routes_methods(void);

/*
 * Returns the path that routes a request target, given as libmicrohttpd
 * 0.9.75 passes it with the query cut off and escapes kept. An origin-form
 * target ("/v1/me") is its own path. An absolute-form http or https URI
 * gives the path after its authority ("http://127.0.0.1:8080/v1/me" gives
 * "/v1/me"), or "/" when there is none. Returns NULL for any other form,
 * the asterisk form "*" included. The result points into `target` or at a
 * static "/".
 */
const char *gw_route_target_path(const char *target);

/* Parses an HTTP method name (case-sensitive, RFC 9110 section 9.1);
 * GW_METHOD_NONE for any other method, TRACE and CONNECT included. */
enum gw_method gw_method_parse(const char *name);

/* Writes an Allow header value ("GET, HEAD, OPTIONS") for a method mask. */
void gw_methods_format(unsigned methods, char *buf, size_t size);

/* The table, for metrics and documentation tests. */
const struct gw_route *gw_routes_all(size_t *count);

/* Index of a route in the table (for per-route metrics). */
size_t gw_route_index(const struct gw_route *route);

/* The name of a backend, for logs, metrics and /readyz ("kms"). */
const char *gw_backend_name(enum gw_backend backend);

#endif

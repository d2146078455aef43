/*
 * The request pipeline: header checks before the body is read, then the
 * route's handler. Every response, success or error, leaves here as a
 * struct gw_reply; the HTTP layer only adds the common headers.
 */
#include "gw_pipeline.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw_audit.h"
#include "gw_json.h"
#include "gw_jwks.h"
#include "gw_rate_lease.h"
#include "gw_redis.h"
#include "gw_sealed.h"
#include "log.h"
#include "redis.h"

/* Room for a backend's status message in the log. */
#define GW_DETAIL_CHARS 256
/* Minimum time between two warnings that the rate limiter cannot reach
 * Redis, in seconds. */
#define GW_RATE_LIMIT_WARNING_SECONDS 10
/* Client message of the register bucket's 429. */
#define GW_MSG_REGISTER_RATE_LIMITED                                           \
    "Too many registrations from this address; retry later."

void gw_reply_json(struct gw_reply *reply, unsigned status, char *body)
{
    gw_reply_clear(reply);
    reply->status = status;
    reply->body = body;
    reply->body_len = body != NULL ? strlen(body) : 0;
    reply->content_type = "application/json";
    reply->ready = true;
}

void gw_reply_clear(struct gw_reply *reply)
{
    free(reply->body);
    reply->body = NULL;
    reply->body_len = 0;
}

void gw_reply_error(struct gw_request *req, struct gw_reply *reply,
                    enum gw_error error, const char *message,
                    enum gw_rejection reason, const char *log_reason)
{
    char *body = gw_error_body_new(error, message, req->request_id);

    gw_reply_json(reply, gw_error_http_status(error), body);
    if (body == NULL) {
        reply->status = 500;
    }
    req->rejected = true;
    req->rejection = reason;
    gw_metrics_record_rejection(reason);
    cj_log(error == GW_ERR_INTERNAL ? CJ_LOG_ERROR : CJ_LOG_INFO,
           "gateway.request_rejected", req->request_id,
           CJ_F_STR("code", gw_error_code(error)),
           CJ_F_STR("reason", gw_rejection_name(reason)),
           CJ_F_STR("detail", log_reason != NULL ? log_reason : ""));
}

/* ---- checks on the headers ---- */

static bool gw_begin_preflight(const struct gw_context *ctx,
                               struct gw_request *req, struct gw_reply *reply)
{
    enum gw_method requested;

    reply->allow = req->allowed_methods;
    if (req->origin == NULL || req->cors_request_method == NULL) {
        /* A plain OPTIONS: list the methods. */
        gw_reply_json(reply, 204, NULL);
        return false;
    }
    if (!gw_origin_allowed(&ctx->settings->cors_origins, req->origin)) {
        gw_reply_error(req, reply, GW_ERR_FORBIDDEN,
                       "The origin is not allowed.", GW_REJECT_CORS_ORIGIN,
                       "preflight from an origin not configured");
        return false;
    }
    requested = gw_method_parse(req->cors_request_method);
    if (requested == GW_METHOD_NONE ||
        !(req->allowed_methods & (unsigned)requested)) {
        gw_reply_error(req, reply, GW_ERR_METHOD_NOT_ALLOWED, NULL,
                       GW_REJECT_METHOD, "preflight for a method not allowed");
        return false;
    }
    gw_reply_json(reply, 204, NULL);
    reply->cors_preflight = true;
    return false;
}

/* Rejects a session or a seal on a plain route. Such a route is not
 * sealed, so serving the request would let the client believe that it went
 * over a channel that the route does not have. */
static bool gw_begin_plain_mode(struct gw_request *req, struct gw_reply *reply)
{
    if (req->route->modes != GW_MODE_PLAIN) {
        return true;
    }
    if (req->session_header != NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "This route is not sealed and does not accept the "
                       "Cerrojo-Session header.",
                       GW_REJECT_MODE, "session header on a plain route");
        return false;
    }
    if (req->seal_header != NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "This route is not sealed and does not accept the "
                       "Cerrojo-Seal header.",
                       GW_REJECT_MODE, "seal header on a plain route");
        return false;
    }
    return true;
}

static bool gw_begin_body(struct gw_request *req, struct gw_reply *reply)
{
    size_t limit = req->route->body_bytes_max;

    if (limit == 0) {
        if ((req->has_content_length && req->content_length > 0) ||
            req->chunked) {
            gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                           "This route takes no request body.",
                           GW_REJECT_JSON_INVALID, "body on a GET route");
            return false;
        }
        return true;
    }
    /* Sealed routes take sealed JSON envelopes only: a compressed body
     * would be decompressed before the size limit could apply, and
     * compression under encryption leaks through length. */
    if (req->content_encoding != NULL &&
        strcasecmp(req->content_encoding, "identity") != 0) {
        gw_reply_error(req, reply, GW_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Encoding is not accepted on this route.",
                       GW_REJECT_MEDIA_TYPE, "request with Content-Encoding");
        return false;
    }
    if (!gw_content_type_is_json(req->content_type)) {
        gw_reply_error(req, reply, GW_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Type must be application/json.",
                       GW_REJECT_MEDIA_TYPE, "content type is not JSON");
        return false;
    }
    if (req->has_content_length && req->content_length > limit) {
        char message[GW_JSON_ERROR_CHARS];

        snprintf(message, sizeof(message),
                 "The request body is larger than %zu bytes.", limit);
        gw_reply_error(req, reply, GW_ERR_PAYLOAD_TOO_LARGE, message,
                       GW_REJECT_BODY_TOO_LARGE,
                       "Content-Length over the route's limit");
        return false;
    }
    return true;
}

enum cj_status gw_rate_limit_take(const struct gw_context *ctx,
                                  const struct gw_request *req,
                                  enum gw_rate_bucket bucket,
                                  unsigned *retry_after_s)
{
    const struct gw_settings *s = ctx->settings;
    unsigned per_minute = s->rate_per_minute;
    unsigned burst = s->rate_burst;

    *retry_after_s = 0;
    if (ctx->redis == NULL) {
        return CJ_OK;
    }
    if (bucket == GW_RATE_BUCKET_HANDSHAKE) {
        per_minute = s->handshake_rate_per_minute;
        burst = s->handshake_rate_burst;
    } else if (bucket == GW_RATE_BUCKET_SESSION) {
        per_minute = s->session_rate_per_minute;
        burst = s->session_rate_burst;
    } else if (bucket == GW_RATE_BUCKET_REGISTER) {
        per_minute = s->register_rate_per_minute;
        burst = s->register_rate_burst;
    }
    return gw_rate_leases_take(ctx->leases, ctx->redis,
                               gw_rate_bucket_name(bucket), req->client_ip,
                               per_minute, burst, retry_after_s);
}

void gw_rate_limit_warn_unavailable(const struct gw_request *req,
                                    enum gw_rate_bucket bucket,
                                    enum cj_status status)
{
    static int64_t last_warning_s[GW_RATE_BUCKET_COUNT];
    int64_t now_s = (int64_t)time(NULL);

    if ((unsigned)bucket >= GW_RATE_BUCKET_COUNT ||
        now_s - __atomic_load_n(&last_warning_s[bucket], __ATOMIC_RELAXED) <
            GW_RATE_LIMIT_WARNING_SECONDS) {
        return;
    }
    __atomic_store_n(&last_warning_s[bucket], now_s, __ATOMIC_RELAXED);
    cj_log(CJ_LOG_WARN, "gateway.rate_limit_unavailable", req->request_id,
           CJ_F_STR("bucket", gw_rate_bucket_name(bucket)),
           CJ_F_STR("status", cj_status_name(status)),
           CJ_F_STR("error", cj_redis_last_error()));
}

/* Returns the log detail of a 429 from the bucket. */
static const char *gw_rate_limit_detail(enum gw_rate_bucket bucket)
{
    switch (bucket) {
    case GW_RATE_BUCKET_HANDSHAKE:
        return "per-IP handshake rate limit";
    case GW_RATE_BUCKET_REGISTER:
        return "per-IP registration rate limit";
    default:
        return "per-IP rate limit";
    }
}

/* Returns the client message of a 429 from the bucket, or NULL for the
 * generic one. The register bucket names its limit, as the session
 * bucket's message does, so that a client knows which requests to slow. */
static const char *gw_rate_limit_message(enum gw_rate_bucket bucket)
{
    if (bucket == GW_RATE_BUCKET_REGISTER) {
        return GW_MSG_REGISTER_RATE_LIMITED;
    }
    return NULL;
}

/* Returns the bucket that a route spends before its body is read. */
static enum gw_rate_bucket gw_route_rate_bucket(const struct gw_route *route)
{
    if (strcmp(route->path, "/v1/handshake") == 0) {
        return GW_RATE_BUCKET_HANDSHAKE;
    }
    if (strcmp(route->path, "/v1/register") == 0) {
        return GW_RATE_BUCKET_REGISTER;
    }
    return GW_RATE_BUCKET_API;
}

/* Takes one request from the client IP's bucket (api, handshake or
 * register), from a leased batch when one is left. Leases can
 * admit a little over the limit, within the bound in gw_rate_lease.h.
 * Health probes are never limited. When Redis does not reply, the request
 * fails closed with 503 and Retry-After, as the replay check does: an
 * unreachable limiter must not lift the limit. */
static bool gw_begin_rate_limit(const struct gw_context *ctx,
                                struct gw_request *req, struct gw_reply *reply)
{
    enum gw_rate_bucket bucket = gw_route_rate_bucket(req->route);
    char detail[GW_JSON_ERROR_CHARS];
    unsigned retry_after = 0;
    enum cj_status status;

    if (ctx->redis == NULL || req->route->handler == GW_HANDLER_HEALTHZ ||
        req->route->handler == GW_HANDLER_READYZ) {
        return true;
    }
    status = gw_rate_limit_take(ctx, req, bucket, &retry_after);
    if (status == CJ_OK) {
        return true;
    }
    if (status == CJ_ERR_RATE_LIMITED) {
        gw_audit_record(ctx->audit, "gateway.rate_limited", req->route->path,
                        req->client_ip, req->request_id);
        gw_metrics_record_rate_limited(bucket);
        gw_reply_error(req, reply, GW_ERR_RATE_LIMITED,
                       gw_rate_limit_message(bucket), GW_REJECT_RATE_LIMITED,
                       gw_rate_limit_detail(bucket));
        reply->retry_after = retry_after;
        return false;
    }
    gw_rate_limit_warn_unavailable(req, bucket, status);
    snprintf(detail, sizeof(detail), "%s rate limit check failed: %s",
             gw_rate_bucket_name(bucket), cj_status_name(status));
    gw_reply_error(req, reply, GW_ERR_UNAVAILABLE, NULL,
                   GW_REJECT_BACKEND_UNAVAILABLE, detail);
    return false;
}

/* Rejects every request of a connection over the per-IP connection limit,
 * health probes included, and closes the connection after the response, so
 * that the client's other connections keep their threads. 429 rather than
 * 503: the gateway is serving other clients, and only this address must
 * slow down. A load balancer that counts 503s as an unhealthy instance
 * would otherwise take the gateway out of service for one noisy client. */
static void gw_begin_connection_limit(struct gw_request *req,
                                      struct gw_reply *reply)
{
    char message[GW_JSON_ERROR_CHARS];

    snprintf(message, sizeof(message),
             "Too many open connections from this address (at most %d).",
             GW_CONNECTIONS_PER_IP_MAX);
    gw_reply_error(req, reply, GW_ERR_RATE_LIMITED, message,
                   GW_REJECT_CONNECTION_LIMIT, "per-IP connection limit");
    reply->retry_after = GW_CONNECTION_LIMIT_RETRY_AFTER_SECONDS;
    reply->close_connection = true;
}

/* Rejects a request target over GW_URI_BYTES_MAX with 414 and a head over
 * GW_HEAD_BYTES_MAX with 431, and closes the connection after the
 * response. MHD passes on heads that fit in GW_CONNECTION_MEMORY_BYTES, so
 * these limits are the gateway's own and get the usual error shape. */
static bool gw_begin_head_size(struct gw_request *req, struct gw_reply *reply)
{
    char message[GW_JSON_ERROR_CHARS];

    if (req->uri_bytes > GW_URI_BYTES_MAX) {
        snprintf(message, sizeof(message),
                 "The request target is longer than %d bytes.",
                 GW_URI_BYTES_MAX);
        gw_reply_error(req, reply, GW_ERR_URI_TOO_LONG, message,
                       GW_REJECT_URI_TOO_LONG, "request target too long");
        reply->close_connection = true;
        return false;
    }
    if (req->head_bytes > GW_HEAD_BYTES_MAX) {
        snprintf(message, sizeof(message),
                 "The request line and headers are larger than %d bytes.",
                 GW_HEAD_BYTES_MAX);
        gw_reply_error(req, reply, GW_ERR_HEADERS_TOO_LARGE, message,
                       GW_REJECT_HEADERS_TOO_LARGE, "request head too large");
        reply->close_connection = true;
        return false;
    }
    return true;
}

bool gw_pipeline_begin(const struct gw_context *ctx, struct gw_request *req,
                       struct gw_reply *reply)
{
    if (req->path != NULL) {
        req->route =
            gw_route_find(req->path, req->method, &req->allowed_methods);
    }
    if (req->framing_problem != NULL) {
        /* Where this request ends is unclear, so nothing after it on the
         * connection can be trusted to be a request of its own. */
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST, req->framing_problem,
                       GW_REJECT_FRAMING, "ambiguous request framing");
        reply->close_connection = true;
        return false;
    }
    if (req->over_connection_limit) {
        gw_begin_connection_limit(req, reply);
        return false;
    }
    if (!gw_begin_head_size(req, reply)) {
        return false;
    }
    if (req->repeated_header_problem != NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       req->repeated_header_problem, GW_REJECT_HEADER_REPEATED,
                       req->repeated_header_problem);
        return false;
    }
    if (req->path == NULL && req->asterisk_target &&
        req->method == GW_METHOD_OPTIONS) {
        /* A server-wide OPTIONS, such as a health probe, gets every method
         * that some route serves. */
        reply->allow = gw_routes_methods();
        gw_reply_json(reply, 204, NULL);
        return false;
    }
    if (req->path == NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "The request target must be a path such as /v1/me or "
                       "an absolute http or https URI.",
                       GW_REJECT_REQUEST_TARGET,
                       "request target in neither origin nor absolute form");
        return false;
    }
    if (req->allowed_methods == 0) {
        gw_reply_error(req, reply, GW_ERR_NOT_FOUND, NULL, GW_REJECT_NOT_FOUND,
                       "no route for the path");
        return false;
    }
    if (req->method == GW_METHOD_OPTIONS) {
        return gw_begin_preflight(ctx, req, reply);
    }
    if (req->route == NULL) {
        reply->allow = req->allowed_methods;
        gw_reply_error(req, reply, GW_ERR_METHOD_NOT_ALLOWED, NULL,
                       GW_REJECT_METHOD, "method not allowed on the route");
        return false;
    }
    if (!gw_begin_rate_limit(ctx, req, reply)) {
        return false;
    }
    /* Browsers enforce CORS on reads only; a request from an origin that
     * was never configured is refused outright. */
    if (req->origin != NULL &&
        !gw_origin_allowed(&ctx->settings->cors_origins, req->origin)) {
        gw_reply_error(req, reply, GW_ERR_FORBIDDEN,
                       "The origin is not allowed.", GW_REJECT_CORS_ORIGIN,
                       "request from an origin not configured");
        return false;
    }
    if (!gw_begin_plain_mode(req, reply)) {
        return false;
    }
    return gw_begin_body(req, reply);
}

/* ---- handlers ---- */

static void gw_handle_healthz(struct gw_request *req, struct gw_reply *reply)
{
    (void)req;
    gw_reply_json(reply, 200, strdup("{\"status\":\"ok\"}"));
    reply->cache_control = "no-store";
}

static void gw_handle_readyz(const struct gw_context *ctx,
                             struct gw_request *req, struct gw_reply *reply)
{
    static const char *const deps[] = {"kms", "session", "auth", "redis"};
    json_t *root = json_object();
    json_t *states = json_object();
    bool ready = true;

    for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
        const char *state = gw_backends_state(ctx->backends, deps[i]);

        ready = ready && strcmp(state, "up") == 0;
        json_object_set_new(states, deps[i], json_string(state));
    }
    json_object_set_new(root, "status",
                        json_string(ready ? "ready" : "not_ready"));
    json_object_set_new(root, "dependencies", states);
    gw_reply_json(reply, ready ? 200 : 503, json_dumps(root, JSON_COMPACT));
    json_decref(root);
    if (reply->body == NULL) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "out of memory rendering readiness");
    }
}

static void gw_handle_openapi(const struct gw_context *ctx,
                              struct gw_request *req, struct gw_reply *reply)
{
    char *copy;

    if (ctx->openapi == NULL) {
        gw_reply_error(req, reply, GW_ERR_NOT_FOUND,
                       "No API description is installed.", GW_REJECT_NOT_FOUND,
                       "OpenAPI file absent at start");
        return;
    }
    copy = malloc(ctx->openapi_len + 1);
    if (copy == NULL) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "out of memory copying the OpenAPI file");
        return;
    }
    memcpy(copy, ctx->openapi, ctx->openapi_len + 1);
    gw_reply_json(reply, 200, copy);
    reply->cache_control = "no-cache";
}

/* Sets the response for a backend failure: the route's error class, with the
 * status message for the client only where gw_error_backend_message allows. */
static void gw_reply_backend_error(struct gw_request *req,
                                   struct gw_reply *reply,
                                   grpc_status_code code, const char *detail,
                                   unsigned retry_after_s)
{
    enum gw_error error =
        gw_error_from_grpc(code, req->route->unauthenticated_as);
    enum gw_rejection reason = GW_REJECT_COUNT;
    const char *message = gw_error_busy_message(code, retry_after_s);

    if (error == GW_ERR_UNAVAILABLE) {
        reason = GW_REJECT_BACKEND_UNAVAILABLE;
    } else if (error == GW_ERR_RATE_LIMITED) {
        reason = GW_REJECT_RATE_LIMITED;
    }
    cj_log(CJ_LOG_INFO, "gateway.backend_failed", req->request_id,
           CJ_F_STR("rpc", req->route->rpc.path), CJ_F_INT("grpc_status", code),
           CJ_F_STR("detail", detail));
    if (message == NULL) {
        message = gw_error_backend_message(code, detail);
    }
    gw_reply_error(req, reply, error, message, reason, "backend call failed");
}

/* Serves kms's JWK set from the cache, cacheable for as long as kms allows
 * but no longer than GW_JWKS_MAX_AGE_SECONDS, so verifiers follow a
 * rotation. */
static void gw_handle_jwks(const struct gw_context *ctx, struct gw_request *req,
                           struct gw_reply *reply)
{
    char *json = NULL;
    unsigned max_age = 0;
    enum cj_status status = gw_jwks_json(ctx->jwks, &json, &max_age);

    if (status != CJ_OK) {
        gw_reply_error(
            req, reply,
            status == CJ_ERR_NOMEM ? GW_ERR_INTERNAL : GW_ERR_UNAVAILABLE, NULL,
            GW_REJECT_BACKEND_UNAVAILABLE, "no JWK set from kms");
        return;
    }
    if (max_age > GW_JWKS_MAX_AGE_SECONDS) {
        max_age = GW_JWKS_MAX_AGE_SECONDS;
    }
    gw_reply_json(reply, 200, json);
    reply->content_type = "application/jwk-set+json";
    snprintf(reply->cache_control_buf, sizeof(reply->cache_control_buf),
             "public, max-age=%u", max_age);
    reply->cache_control = reply->cache_control_buf;
}

/* Calls a plain route's RPC with an empty request and renders the response. */
static void gw_handle_plain_rpc(const struct gw_context *ctx,
                                struct gw_request *req, struct gw_reply *reply)
{
    const struct gw_rpc *rpc = &req->route->rpc;
    ProtobufCMessage *request = NULL;
    ProtobufCMessage *response = NULL;
    json_t *json = NULL;
    char detail[GW_DETAIL_CHARS] = "";
    struct gw_caller caller = {.client_ip = req->client_ip,
                               .user_agent = req->user_agent,
                               .request_id = req->request_id};
    grpc_status_code code;
    unsigned retry_after_s = 0;

    request = calloc(1, rpc->request->sizeof_message);
    if (request == NULL) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "out of memory");
        goto out;
    }
    rpc->request->message_init(request);
    code = gw_backend_call(ctx->backends, rpc, &caller, request, &response,
                           detail, sizeof(detail), &retry_after_s);
    if (code != GRPC_STATUS_OK) {
        gw_reply_backend_error(req, reply, code, detail, retry_after_s);
        /* The backend's own wait when it sent one; 0 leaves the gateway's
         * default Retry-After. */
        reply->retry_after = retry_after_s;
        goto out;
    }
    json = gw_json_from_message(response);
    gw_reply_json(reply, 200, json ? json_dumps(json, JSON_COMPACT) : NULL);
    if (reply->body == NULL) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "backend answer not representable as JSON");
        goto out;
    }
    reply->cache_control = "no-cache";

out:
    json_decref(json);
    gw_json_message_free(request);
    gw_json_message_free(response);
}

void gw_pipeline_finish(const struct gw_context *ctx, struct gw_request *req,
                        struct gw_reply *reply)
{
    if (req->body_discarded > 0) {
        char message[GW_JSON_ERROR_CHARS];

        snprintf(message, sizeof(message),
                 "The request body is larger than %zu bytes.",
                 req->route->body_bytes_max);
        gw_reply_error(req, reply, GW_ERR_PAYLOAD_TOO_LARGE, message,
                       GW_REJECT_BODY_TOO_LARGE, "body over the route's limit");
        return;
    }
    switch (req->route->handler) {
    case GW_HANDLER_HEALTHZ:
        gw_handle_healthz(req, reply);
        return;
    case GW_HANDLER_READYZ:
        gw_handle_readyz(ctx, req, reply);
        return;
    case GW_HANDLER_OPENAPI:
        gw_handle_openapi(ctx, req, reply);
        return;
    case GW_HANDLER_JWKS:
        gw_handle_jwks(ctx, req, reply);
        return;
    case GW_HANDLER_RPC:
        break;
    }
    if (req->route->modes == GW_MODE_PLAIN) {
        gw_handle_plain_rpc(ctx, req, reply);
        return;
    }
    gw_sealed_handle(ctx, req, reply);
}

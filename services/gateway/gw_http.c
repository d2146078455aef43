/*
 * The HTTP servers on libmicrohttpd: the public API and the admin port
 * (/metrics). MHD runs one thread per connection under an internal polling
 * thread, because backend RPCs block until their deadline: a slow backend
 * then holds only its own connection's thread, and GW_CONNECTIONS_MAX
 * bounds the threads. This file owns connection limits, header extraction,
 * body accumulation, the common response headers and the access log.
 */
#include "gw_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_conn_count.h"
#include "gw_headers.h"
#include "gw_pipeline.h"
#include "log.h"

/* Bytes of an over-limit chunked body read and dropped before the
 * connection is closed instead of sent a 413 response.
 * NOTE: the 413 cannot go out earlier, because libmicrohttpd 0.9.75
 * refuses MHD_queue_response while a request body is still arriving. */
#define GW_BODY_DISCARD_BYTES_MAX (256 * 1024)
/* Room for a line of MHD's own error log. */
#define GW_MHD_LOG_CHARS 512
/* Room for the joined X-Forwarded-For values. */
#define GW_FORWARDED_CHARS 1024

/* Bits of a connection's MHD socket context, stored in the pointer itself
 * so that a connection costs no allocation. */
#define GW_CONN_COUNTED    ((uintptr_t)1) /* counted in gw_http.conn_count */
#define GW_CONN_OVER_LIMIT ((uintptr_t)2) /* over GW_CONNECTIONS_PER_IP_MAX */

struct gw_http {
    const struct gw_context *ctx;
    struct MHD_Daemon *api;
    struct MHD_Daemon *admin;
    /* Open API connections per client IP address; NULL behind trusted
     * proxies, where no per-IP limit applies. */
    struct gw_conn_count *conn_count;
};

/* Per-request state, MHD's con_cls. */
struct gw_http_request {
    struct gw_request req;
    struct gw_reply reply;
    bool answered;
};

static double gw_elapsed_seconds(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void gw_mhd_log(void *cls, const char *format, va_list args)
{
    char line[GW_MHD_LOG_CHARS];

    (void)cls;
    vsnprintf(line, sizeof(line), format, args);
    line[strcspn(line, "\n")] = '\0';
    cj_log(CJ_LOG_WARN, "gateway.http_server", NULL, CJ_F_STR("detail", line));
}

/* ---- reading the request ---- */

struct gw_forwarded {
    char text[GW_FORWARDED_CHARS];
    size_t len;
};

static enum MHD_Result gw_collect_forwarded(void *cls, enum MHD_ValueKind kind,
                                            const char *key, const char *value)
{
    struct gw_forwarded *fw = cls;
    size_t len;

    (void)kind;
    if (strcasecmp(key, "X-Forwarded-For") != 0 || value == NULL) {
        return MHD_YES;
    }
    len = strlen(value);
    if (fw->len + len + 2 >= sizeof(fw->text)) {
        return MHD_NO;
    }
    if (fw->len > 0) {
        fw->text[fw->len++] = ',';
    }
    memcpy(fw->text + fw->len, value, len + 1);
    fw->len += len;
    return MHD_YES;
}

static void gw_read_addresses(const struct gw_context *ctx,
                              struct MHD_Connection *conn,
                              struct gw_request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    bool trusted;
    const char *id;

    gw_sockaddr_format(info ? info->client_addr : NULL, req->peer_ip,
                       sizeof(req->peer_ip));
    trusted =
        gw_cidr_list_contains_ip(&ctx->settings->trusted_proxies, req->peer_ip);
    gw_copy_text(req->client_ip, sizeof(req->client_ip), req->peer_ip);
    if (trusted) {
        struct gw_forwarded fw = {.len = 0};

        fw.text[0] = '\0';
        MHD_get_connection_values(conn, MHD_HEADER_KIND, gw_collect_forwarded,
                                  &fw);
        gw_client_ip(&ctx->settings->trusted_proxies, req->peer_ip,
                     fw.len > 0 ? fw.text : NULL, req->client_ip,
                     sizeof(req->client_ip));
    }
    /* A request id is taken only from a proxy we trust to have set it. */
    id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (trusted && gw_request_id_valid(id)) {
        gw_copy_text(req->request_id, sizeof(req->request_id), id);
    } else {
        gw_request_id_generate(req->request_id, sizeof(req->request_id));
    }
}

/* Copies the User-Agent as printable ASCII, truncated, for the services'
 * caller context (never logged). */
static void gw_read_user_agent(struct MHD_Connection *conn,
                               struct gw_request *req)
{
    const char *ua =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    size_t n = 0;

    for (; ua != NULL && ua[n] != '\0' && n < GW_USER_AGENT_CHARS_MAX; n++) {
        unsigned char c = (unsigned char)ua[n];

        req->user_agent[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    req->user_agent[n] = '\0';
}

/* A running total of value sizes, for MHD_get_connection_values(). */
struct gw_value_bytes {
    size_t total;
    size_t per_value; /* separators counted for each value */
};

static enum MHD_Result gw_add_value_bytes(void *cls, enum MHD_ValueKind kind,
                                          const char *key, const char *value)
{
    struct gw_value_bytes *bytes = cls;

    (void)kind;
    bytes->total +=
        strlen(key) + (value != NULL ? strlen(value) : 0) + bytes->per_value;
    return MHD_YES;
}

/* Measures the request target (path plus query arguments, each with "="
 * and "&") and the whole head (request line plus each header with ": "
 * and CRLF), as MHD split them with escapes left as sent, for the checks of
 * gw_pipeline_begin(). */
static void gw_measure_head(struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version,
                            struct gw_request *req)
{
    struct gw_value_bytes query = {.total = 0, .per_value = 2};
    struct gw_value_bytes headers = {.total = 0, .per_value = 4};

    (void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND,
                                    gw_add_value_bytes, &query);
    (void)MHD_get_connection_values(conn, MHD_HEADER_KIND, gw_add_value_bytes,
                                    &headers);
    req->uri_bytes = strlen(url) + query.total;
    /* "METHOD SP target SP version CRLF" */
    req->head_bytes = strlen(method) + 1 + req->uri_bytes + 1 +
                      strlen(version) + 2 + headers.total;
}

static enum MHD_Result gw_add_framing_header(void *cls, enum MHD_ValueKind kind,
                                             const char *key, size_t key_size,
                                             const char *value,
                                             size_t value_size)
{
    (void)kind;
    gw_framing_add(cls, key, key_size, value, value_size);
    return MHD_YES;
}

static void gw_read_headers(struct MHD_Connection *conn, struct gw_request *req)
{
    const char *length;
    const char *transfer;
    struct gw_framing framing = {0};

    req->origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    req->content_type =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    req->content_encoding =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    req->session_header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cerrojo-Session");
    req->seal_header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cerrojo-Seal");
    req->cors_request_method = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    req->accepts_gzip = gw_accepts_gzip(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    length =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (length != NULL) {
        /* MHD has already rejected a malformed Content-Length. */
        req->has_content_length = true;
        req->content_length = strtoull(length, NULL, 10);
    }
    transfer =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    req->chunked = transfer != NULL && strcasestr(transfer, "chunked") != NULL;
    (void)MHD_get_connection_values_n(conn, MHD_HEADER_KIND,
                                      gw_add_framing_header, &framing);
    req->framing_problem = gw_framing_problem(&framing);
    req->repeated_header_problem = gw_repeated_header_problem(&framing);
}

/* Tells whether the connection was opened over the per-IP limit, as
 * gw_api_connection_notify() recorded. */
static bool gw_connection_over_limit(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL &&
           ((uintptr_t)info->socket_context & GW_CONN_OVER_LIMIT) != 0;
}

static struct gw_http_request *
gw_request_new(const struct gw_context *ctx, struct MHD_Connection *conn,
               const char *url, const char *method, const char *version)
{
    struct gw_http_request *hr = calloc(1, sizeof(*hr));

    if (hr == NULL) {
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &hr->req.started);
    hr->req.path = gw_route_target_path(url);
    hr->req.asterisk_target = strcmp(url, "*") == 0;
    hr->req.method = gw_method_parse(method);
    hr->req.rejection = GW_REJECT_COUNT;
    gw_read_addresses(ctx, conn, &hr->req);
    gw_read_user_agent(conn, &hr->req);
    gw_read_headers(conn, &hr->req);
    gw_measure_head(conn, url, method, version, &hr->req);
    hr->req.over_connection_limit = gw_connection_over_limit(conn);
    return hr;
}

/* Appends upload data up to the route's limit; beyond it, counts and drops
 * bytes so that 413 can be sent without buffering the rest. Returns false
 * when the connection should be closed instead. */
static bool gw_accumulate(struct gw_request *req, const char *data, size_t size)
{
    size_t limit = req->route->body_bytes_max;

    if (req->body_discarded > 0 || req->body_len + size > limit) {
        req->body_discarded += size;
        return req->body_discarded <= GW_BODY_DISCARD_BYTES_MAX;
    }
    if (req->body == NULL) {
        req->body = malloc(limit);
        if (req->body == NULL) {
            return false;
        }
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    return true;
}

/* Logs a request cut by the body deadline, at most one line per
 * CJ_LOG_REPEAT_INTERVAL_MS, so that many slow clients cannot flood the
 * log. */
static void gw_log_body_deadline(const struct gw_request *req)
{
    static struct cj_log_limit limit = CJ_LOG_LIMIT_INIT;

    cj_log_limited(&limit, CJ_LOG_WARN, "gateway.body_deadline_exceeded",
                   req->request_id,
                   CJ_F_INT("deadline_s", GW_BODY_DEADLINE_SECONDS),
                   CJ_F_STR("client_ip", req->client_ip));
}

/*
 * Returns true when GW_BODY_DEADLINE_SECONDS have passed since the first
 * call of the access handler for this request. Otherwise shortens MHD's idle
 * timeout of this connection to the time left, so that a client that stops
 * sending is also dropped at the deadline and not GW_CONNECTION_IDLE_SECONDS
 * after its last byte. gw_send() restores the idle timeout for the next
 * request.
 */
static bool gw_body_deadline_passed(struct MHD_Connection *conn,
                                    const struct gw_request *req)
{
    double elapsed = gw_elapsed_seconds(&req->started);
    unsigned left_s;

    if (elapsed >= GW_BODY_DEADLINE_SECONDS) {
        return true;
    }
    /* Rounded up: MHD counts whole seconds and 0 would mean no timeout. */
    left_s = (unsigned)(GW_BODY_DEADLINE_SECONDS - elapsed) + 1;
    if (left_s < GW_CONNECTION_IDLE_SECONDS) {
        (void)MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                        left_s);
    }
    return false;
}

/* ---- writing the response ---- */

static bool gw_add_headers(const struct gw_context *ctx,
                           const struct gw_request *req,
                           const struct gw_reply *reply,
                           struct MHD_Response *response)
{
    char allow[64];
    char number[16];
    bool ok = gw_headers_add_security(response);

    ok = ok && MHD_add_response_header(response, "X-Request-Id",
                                       req->request_id) == MHD_YES;
    ok = ok &&
         MHD_add_response_header(response, "Cache-Control",
                                 reply->cache_control ? reply->cache_control
                                                      : "no-store") == MHD_YES;
    if (reply->content_type != NULL && reply->body_len > 0) {
        ok = ok && MHD_add_response_header(response, "Content-Type",
                                           reply->content_type) == MHD_YES;
    }
    if (reply->allow != 0) {
        gw_methods_format(reply->allow, allow, sizeof(allow));
        ok = ok && MHD_add_response_header(response, "Allow", allow) == MHD_YES;
    }
    if (reply->status == 429 || reply->status == 503) {
        snprintf(number, sizeof(number), "%u",
                 reply->retry_after > 0 ? reply->retry_after
                                        : GW_RETRY_AFTER_SECONDS);
        ok = ok && MHD_add_response_header(response, "Retry-After", number) ==
                       MHD_YES;
    }
    if (reply->gzipped) {
        ok = ok && MHD_add_response_header(response, "Content-Encoding",
                                           "gzip") == MHD_YES;
    }
    /* Every response varies by Origin, not only those that echo it: the
     * same request gets the CORS headers from a configured origin, none
     * without an Origin, and 403 from any other origin. A shared cache
     * must not serve one of these for another. */
    ok = ok && MHD_add_response_header(response, "Vary",
                                       reply->sealed ? "Accept-Encoding, Origin"
                                                     : "Origin") == MHD_YES;
    if (reply->close_connection) {
        /* libmicrohttpd closes the connection after a response that
         * carries this header. */
        ok = ok && MHD_add_response_header(response, "Connection", "close") ==
                       MHD_YES;
    }
    if (req->origin != NULL &&
        gw_origin_allowed(&ctx->settings->cors_origins, req->origin)) {
        ok = ok && gw_headers_add_cors(response, req->origin);
        if (reply->cors_preflight) {
            gw_methods_format(reply->allow, allow, sizeof(allow));
            snprintf(number, sizeof(number), "%d", GW_CORS_MAX_AGE_SECONDS);
            ok = ok &&
                 MHD_add_response_header(response,
                                         "Access-Control-Allow-Methods",
                                         allow) == MHD_YES &&
                 MHD_add_response_header(response,
                                         "Access-Control-Allow-Headers",
                                         GW_CORS_ALLOW_HEADERS) == MHD_YES &&
                 MHD_add_response_header(response, "Access-Control-Max-Age",
                                         number) == MHD_YES;
        }
    }
    return ok;
}

static enum MHD_Result gw_send(const struct gw_context *ctx,
                               struct MHD_Connection *conn,
                               struct gw_http_request *hr)
{
    struct gw_reply *reply = &hr->reply;
    struct MHD_Response *response;
    enum MHD_Result result;

    gw_reply_compress(&hr->req, reply);
    response = MHD_create_response_from_buffer(reply->body_len, reply->body,
                                               MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        return MHD_NO;
    }
    reply->body = NULL; /* MHD frees it with the response */
    if (!gw_add_headers(ctx, &hr->req, reply, response)) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    hr->req.status = reply->status;
    hr->answered = true;
    (void)MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                    (unsigned)GW_CONNECTION_IDLE_SECONDS);
    result = MHD_queue_response(conn, reply->status, response);
    MHD_destroy_response(response);
    return result;
}

/* ---- MHD callbacks ---- */

static enum MHD_Result gw_api_access(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_data_size, void **con_cls)
{
    const struct gw_context *ctx = cls;
    struct gw_http_request *hr = *con_cls;

    if (hr == NULL) {
        hr = gw_request_new(ctx, conn, url, method, version);
        if (hr == NULL) {
            return MHD_NO;
        }
        *con_cls = hr;
        if (gw_pipeline_begin(ctx, &hr->req, &hr->reply)) {
            (void)gw_body_deadline_passed(conn, &hr->req);
            return MHD_YES;
        }
        /* A response queued before the body is read makes MHD close the
         * connection; without a body, wait for the next call and keep the
         * connection alive, unless the reply closes it anyway. */
        if (hr->reply.close_connection || hr->req.chunked ||
            (hr->req.has_content_length && hr->req.content_length > 0)) {
            return gw_send(ctx, conn, hr);
        }
        return MHD_YES;
    }
    if (hr->reply.ready && !hr->answered && *upload_data_size == 0) {
        return gw_send(ctx, conn, hr);
    }
    /* NOTE: no 408 here, because libmicrohttpd 0.9.75 refuses
     * MHD_queue_response while the body is still arriving, so closing the
     * connection is the only way to end a request whose body is late. */
    if (*upload_data_size > 0 && gw_body_deadline_passed(conn, &hr->req)) {
        gw_log_body_deadline(&hr->req);
        return MHD_NO;
    }
    if (hr->answered || hr->reply.ready) {
        /* Data after an early response: drop it. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        bool keep = gw_accumulate(&hr->req, upload_data, *upload_data_size);

        *upload_data_size = 0;
        return keep ? MHD_YES : MHD_NO;
    }
    gw_pipeline_finish(ctx, &hr->req, &hr->reply);
    return gw_send(ctx, conn, hr);
}

/* NOTE: responses MHD 0.9.75 sends by itself (414 or 431 for a head over
 * GW_CONNECTION_MEMORY_BYTES, 400 for a malformed request line) come
 * before the access handler and without this callback, so they have no
 * access-log line, request id, error shape or security headers, and MHD
 * offers no hook to change them. */
static void gw_api_completed(void *cls, struct MHD_Connection *conn,
                             void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct gw_http_request *hr = *con_cls;
    const struct gw_request *req;
    double seconds;
    char method[16];

    (void)cls;
    (void)conn;
    if (hr == NULL) {
        return;
    }
    req = &hr->req;
    seconds = gw_elapsed_seconds(&req->started);
    /* While a body arrives the idle timeout is shortened to the time left
     * to the body deadline, so a timeout before any response is a cut by
     * that deadline (a late chunk is logged where it is rejected). */
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && !hr->answered &&
        (req->chunked ||
         (req->has_content_length && req->content_length > 0))) {
        gw_log_body_deadline(req);
    }
    gw_methods_format(req->method, method, sizeof(method));
    gw_metrics_record_request(req->route ? gw_route_index(req->route)
                                         : (size_t)-1,
                              req->method, req->status, seconds);
    /* Only fixed names reach the log: the route template, never the raw
     * path; a known method name or "other". */
    cj_log(CJ_LOG_INFO, "gateway.request", req->request_id,
           CJ_F_STR("method", method[0] ? method : "other"),
           CJ_F_STR("route", req->route ? req->route->path : "unmatched"),
           CJ_F_INT("status", req->status),
           CJ_F_DOUBLE("duration_ms", seconds * 1000.0),
           CJ_F_STR("client_ip", req->client_ip),
           CJ_F_BOOL("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK));
    if (hr->req.body != NULL) {
        /* The body is a sealed envelope, but wipe it like any input. */
        explicit_bzero(hr->req.body, hr->req.body_len);
        free(hr->req.body);
    }
    gw_reply_clear(&hr->reply);
    free(hr);
    *con_cls = NULL;
}

/* Counts the API's open connections per client IP address and marks a
 * connection opened while its address already had GW_CONNECTIONS_PER_IP_MAX
 * open, so that gw_pipeline_begin() rejects its requests with 429. MHD
 * calls this in its polling thread at the start and in the connection's
 * thread at the close. */
static void gw_api_connection_notify(void *cls, struct MHD_Connection *conn,
                                     void **socket_context,
                                     enum MHD_ConnectionNotificationCode code)
{
    struct gw_http *http = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *addr = info != NULL ? info->client_addr : NULL;
    uintptr_t flags = (uintptr_t)*socket_context;
    unsigned open;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if ((flags & GW_CONN_COUNTED) != 0) {
            gw_conn_count_close(http->conn_count, addr);
        }
        *socket_context = NULL;
        return;
    }
    open = gw_conn_count_open(http->conn_count, addr);
    flags = 0;
    if (open > 0) {
        flags |= GW_CONN_COUNTED;
    }
    if (open > GW_CONNECTIONS_PER_IP_MAX) {
        flags |= GW_CONN_OVER_LIMIT;
    }
    *socket_context = (void *)flags;
}

static enum MHD_Result gw_admin_access(void *cls, struct MHD_Connection *conn,
                                       const char *url, const char *method,
                                       const char *version,
                                       const char *upload_data,
                                       size_t *upload_data_size, void **con_cls)
{
    struct MHD_Response *response;
    enum MHD_Result result;
    char *text = NULL;
    const char *path;
    unsigned status = 404;
    static const char not_found[] = "not found\n";

    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    path = gw_route_target_path(url);
    if (strcmp(method, "GET") == 0 && path != NULL &&
        strcmp(path, "/metrics") == 0) {
        text = gw_metrics_render();
        status = text != NULL ? 200 : 500;
    }
    if (text != NULL) {
        response = MHD_create_response_from_buffer(strlen(text), text,
                                                   MHD_RESPMEM_MUST_FREE);
    } else {
        response = MHD_create_response_from_buffer(
            sizeof(not_found) - 1, (void *)not_found, MHD_RESPMEM_PERSISTENT);
    }
    if (response == NULL) {
        free(text);
        return MHD_NO;
    }
    if (!gw_headers_add_security(response) ||
        MHD_add_response_header(response, "Content-Type",
                                status == 200 ? "text/plain; version=0.0.4"
                                              : "text/plain") != MHD_YES) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    result = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return result;
}

/* ---- start and stop ---- */

/* Leaves the path and query arguments as sent, where MHD would decode
 * "%HH" escapes by default. Routes are then matched, and sealed requests
 * bound, on the path exactly as sent, so "/v1%2flogin" or "/v1/login%00"
 * match no route. A proxy rule on an origin-form target matches the path
 * that the gateway routes. For an absolute-form target the gateway routes
 * the path inside the URI, which a rule on the whole raw target does not
 * see, so a front proxy must match that path or rewrite to origin form. */
static size_t gw_keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static bool gw_sockaddr_build(const char *host, uint16_t port,
                              struct sockaddr_storage *out, bool *ipv6)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *ipv6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *ipv6 = true;
        return true;
    }
    return false;
}

static struct MHD_Daemon *gw_daemon_start(struct gw_http *http, uint16_t port,
                                          bool admin)
{
    const struct gw_context *ctx = http->ctx;
    /* Behind trusted proxies every client shares the proxies' addresses,
     * so a per-peer connection limit would throttle everyone at once. The
     * API counts connections itself up to GW_CONNECTIONS_PER_IP_MAX, and
     * MHD's limit is only the hard ceiling above that. The admin port
     * keeps MHD's limit alone. */
    bool count_api = !admin && http->conn_count != NULL;
    unsigned per_ip = ctx->settings->trusted_proxies.count > 0 ? 0
                      : count_api ? (unsigned)GW_CONNECTIONS_PER_IP_HARD_MAX
                                  : (unsigned)GW_CONNECTIONS_PER_IP_MAX;
    struct sockaddr_storage addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG;
    bool ipv6;

    if (!gw_sockaddr_build(ctx->settings->http_host, port, &addr, &ipv6)) {
        return NULL;
    }
    if (ipv6) {
        flags |= MHD_USE_IPv6;
    }
    /* NOTE: libmicrohttpd 0.9.75 has no deadline for the request line and
     * headers. Its idle timeout restarts on every byte, so a client that
     * trickles header bytes keeps a connection and its thread until it
     * stops. GW_BODY_DEADLINE_SECONDS covers only the body. Where the port
     * is reachable by untrusted clients, run the gateway behind a proxy
     * that buffers whole requests and enforces a header timeout. */
    return MHD_start_daemon(
        flags, port, NULL, NULL, admin ? gw_admin_access : gw_api_access,
        (void *)ctx, MHD_OPTION_EXTERNAL_LOGGER, gw_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)GW_CONNECTIONS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)GW_CONNECTION_IDLE_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)GW_CONNECTION_MEMORY_BYTES,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_UNESCAPE_CALLBACK,
        gw_keep_escaped, NULL, MHD_OPTION_NOTIFY_COMPLETED,
        admin ? NULL : gw_api_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        count_api ? gw_api_connection_notify : NULL, (void *)http,
        MHD_OPTION_END);
}

struct gw_http *gw_http_start(const struct gw_context *ctx)
{
    struct gw_http *http = calloc(1, sizeof(*http));

    if (http == NULL) {
        return NULL;
    }
    http->ctx = ctx;
    if (ctx->settings->trusted_proxies.count == 0) {
        http->conn_count = gw_conn_count_new();
        if (http->conn_count == NULL) {
            gw_http_stop(http);
            return NULL;
        }
    }
    http->api = gw_daemon_start(http, ctx->settings->http_port, false);
    if (http->api == NULL) {
        cj_log(CJ_LOG_ERROR, "gateway.listen_failed", NULL,
               CJ_F_STR("host", ctx->settings->http_host),
               CJ_F_INT("port", ctx->settings->http_port));
        gw_http_stop(http);
        return NULL;
    }
    http->admin = gw_daemon_start(http, ctx->settings->admin_port, true);
    if (http->admin == NULL) {
        cj_log(CJ_LOG_ERROR, "gateway.listen_failed", NULL,
               CJ_F_STR("host", ctx->settings->http_host),
               CJ_F_INT("port", ctx->settings->admin_port));
        gw_http_stop(http);
        return NULL;
    }
    return http;
}

void gw_http_stop(struct gw_http *http)
{
    if (http == NULL) {
        return;
    }
    if (http->api != NULL) {
        MHD_stop_daemon(http->api);
    }
    if (http->admin != NULL) {
        MHD_stop_daemon(http->admin);
    }
    gw_conn_count_free(http->conn_count);
    free(http);
}

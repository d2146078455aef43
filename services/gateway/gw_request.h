/*
 * The state of one HTTP request as the pipeline reads it (no MHD types),
 * and the reply the pipeline hands back to the HTTP layer.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gw_errors.h"
#include "gw_limits.h"
#include "gw_metrics.h"
#include "gw_net.h"
#include "gw_routes.h"

/* Largest Cerrojo-Session or Cerrojo-Seal header value kept, in bytes. */
#define GW_SEAL_HEADER_BYTES_MAX 8192

/* The request: copied header values, the route and the body. */
struct gw_request {
    char request_id[GW_REQUEST_ID_SIZE];
    char peer_ip[GW_IP_CHARS];
    char client_ip[GW_IP_CHARS];
    char user_agent[GW_USER_AGENT_CHARS_MAX + 1];
    struct timespec started; /* CLOCK_MONOTONIC */

    enum gw_method method;
    /* The path that routes the request (gw_route_target_path()), borrowed
     * from MHD for the request's lifetime; NULL when the target is neither
     * a path nor an absolute http or https URI. */
    const char *path;
    /* The target is "*", the asterisk form that RFC 9112 section 3.2.4
     * allows only for a server-wide OPTIONS. */
    bool asterisk_target;
    const struct gw_route *route;
    unsigned allowed_methods;

    /* Header values the pipeline needs; NULL when absent. */
    const char *origin;
    const char *content_type;
    const char *content_encoding;
    const char *session_header;      /* Cerrojo-Session */
    const char *seal_header;         /* Cerrojo-Seal, for sealed GET requests */
    const char *cors_request_method; /* Access-Control-Request-Method */
    bool has_content_length;
    unsigned long long content_length;
    bool chunked;
    bool accepts_gzip;
    /* The client message of gw_framing_problem(), or NULL when the
     * request's framing headers are unambiguous. */
    const char *framing_problem;
    /* The client message of gw_repeated_header_problem(), or NULL. */
    const char *repeated_header_problem;
    /* Sizes of the request head as GW_URI_BYTES_MAX and GW_HEAD_BYTES_MAX
     * count them. */
    size_t uri_bytes;
    size_t head_bytes;
    /* The connection was opened while its client IP address already had
     * GW_CONNECTIONS_PER_IP_MAX connections open. */
    bool over_connection_limit;

    /* The body, accumulated up to the route's limit. */
    unsigned char *body;
    size_t body_len;
    size_t body_discarded; /* bytes over the limit, read and dropped */

    /* Set when the response is queued; for the access log. */
    unsigned status;
    bool rejected;
    enum gw_rejection rejection;
};

/* The response to send. The HTTP layer adds the common headers. */
struct gw_reply {
    unsigned status;
    char *body; /* malloc'd; the HTTP layer takes it */
    size_t body_len;
    const char *content_type;
    const char *cache_control; /* NULL for no-store */
    char cache_control_buf[64];
    unsigned allow;        /* methods for Allow, 0 for none */
    unsigned retry_after;  /* seconds for 429 and 503; 0: the default */
    bool cors_preflight;   /* send the CORS preflight headers */
    bool sealed;           /* a sealed envelope: may be gzipped */
    bool gzipped;          /* body is gzip: send Content-Encoding: gzip */
    bool close_connection; /* send Connection: close and close after it */
    bool ready;            /* the pipeline has decided the response */
};

/* Sets `reply` to the error shape for `error` with `message` (NULL for the
 * class's default), records the rejection reason and logs `log_reason`
 * (never input) keyed by the request id. */
void gw_reply_error(struct gw_request *req, struct gw_reply *reply,
                    enum gw_error error, const char *message,
                    enum gw_rejection reason, const char *log_reason);

/* Sets `reply` to a JSON body that the reply now owns. */
void gw_reply_json(struct gw_reply *reply, unsigned status, char *body);

/* Replaces a sealed reply's body by its gzip form when the client accepts
 * gzip and the body is at least GW_GZIP_THRESHOLD_BYTES; sets gzipped.
 * Plain replies are never compressed. */
void gw_reply_compress(const struct gw_request *req, struct gw_reply *reply);

/* Frees the body of a reply that was not sent. */
void gw_reply_clear(struct gw_reply *reply);

#endif

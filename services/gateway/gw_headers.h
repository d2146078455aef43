/*
 * Response headers every answer carries (security headers) and the CORS
 * policy: only configured origins, matched exactly, are ever answered.
 */
#ifndef GW_HEADERS_H
#define GW_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_limits.h"
#include "status.h"

struct MHD_Response;

/* Configured CORS origins, each "scheme://host[:port]" in lower case. */
struct gw_origin_list {
    char items[GW_CORS_ORIGINS_MAX][GW_ORIGIN_CHARS_MAX + 1];
    size_t count;
};

/*
 * Parses a comma-separated origin list. Each entry must be an http or
 * https origin in its serialized form (lower case, no path, no trailing
 * slash, no userinfo, no default port such as :443 for https, because
 * browsers omit it); "*" and "null" are rejected, since a wildcard
 * cannot be combined with a list and "null" is sent by sandboxed and file
 * documents that anyone can create. An empty or NULL text gives an empty
 * list (no cross-origin access).
 */
CJ_WARN_UNUSED enum cj_status gw_origin_list_parse(const char *text,
                                                   struct gw_origin_list *out);

/* True when `origin` (the request's Origin header) equals a configured
 * origin byte for byte. */
bool gw_origin_allowed(const struct gw_origin_list *list, const char *origin);

/* The request headers a cross-origin client may send, for preflight. */
#define GW_CORS_ALLOW_HEADERS                                                  \
    "Content-Type, Cerrojo-Session, Cerrojo-Seal, X-Request-Id"
/* The response headers a cross-origin client may read. */
#define GW_CORS_EXPOSE_HEADERS "Retry-After, X-Request-Id"

/*
 * Adds the security headers to a response: HSTS, nosniff, frame denial
 * (X-Frame-Options and CSP frame-ancestors), a CSP that loads nothing, and
 * Referrer-Policy no-referrer. Returns false when MHD refused a header.
 */
bool gw_headers_add_security(struct MHD_Response *response);

/* Adds the CORS answer headers for an allowed origin (never "*", never
 * credentials). The caller adds Vary: Origin to every response. */
bool gw_headers_add_cors(struct MHD_Response *response, const char *origin);

/* True when Accept-Encoding names gzip with a non-zero q value. */
bool gw_accepts_gzip(const char *accept_encoding);

/* True when Content-Type is application/json, with an optional charset
 * parameter that must be utf-8. */
bool gw_content_type_is_json(const char *content_type);

/*
 * The header fields that decide where a request ends, counted over every
 * header line, and whether any line is malformed. libmicrohttpd 0.9.75
 * frames a request by its first Content-Length line and passes any other
 * on, and it keeps a line with whitespace before the colon under a name
 * that ends in that whitespace, so the gateway checks both itself. Start
 * from all zeros and feed each header line to gw_framing_add().
 */
struct gw_framing {
    unsigned content_length_count;
    bool content_length_conflict; /* two Content-Length values differ */
    /* a Content-Length value is not decimal digits alone */
    bool content_length_invalid;
    /* a name is Content-Length or Transfer-Encoding with more after it:
     * libmicrohttpd 0.9.75 appends a line folded under such a header
     * (obs-fold, "Content-Length:" then " 34") to its name, and the
     * header then frames nothing while a proxy may unfold it */
    bool framing_name_folded;
    const char *content_length; /* the first value, borrowed */
    unsigned host_count;
    unsigned transfer_encoding_count;
    const char *transfer_encoding; /* the first value, borrowed */
    bool name_invalid;             /* a name is empty or not a token */
    bool value_invalid;            /* a value contains CR, LF or NUL */
    /* Lines of the headers that must appear at most once, because
     * MHD_lookup_connection_value() returns the first line while a proxy in
     * front may act on the last. */
    unsigned session_count; /* Cerrojo-Session */
    unsigned seal_count;    /* Cerrojo-Seal */
    /* Content-Type may repeat with one value, as Content-Length may, but
     * two values would let the gateway and a proxy disagree on the media
     * type. */
    const char *content_type;   /* the first value, borrowed */
    bool content_type_conflict; /* two Content-Type values differ */
};

/*
 * Counts one header line; `value` must outlive `framing`. The lengths are
 * the ones MHD_get_connection_values_n() reports, so a CR inside a value is
 * seen here.
 * TODO: libmicrohttpd 0.9.75 ends a value at a NUL and drops the rest of the
 * line, so that NUL is never seen here. It also appends an obs-fold line to
 * the previous name, so a fold under a header other than the two framing
 * ones (X-A: then " b") passes as a header of another name.
 */
void gw_framing_add(struct gw_framing *framing, const char *name,
                    size_t name_len, const char *value, size_t value_len);

/*
 * Returns the client message for a request whose framing a proxy in front
 * could read differently (RFC 9112 sections 3.2, 5.1, 6.1 and 6.3), or NULL
 * when the framing is unambiguous. A line is malformed when its name is not
 * an RFC 9110 token, which covers whitespace before the colon, or its value
 * contains CR, LF or NUL. Ambiguous are Content-Length lines that differ,
 * Content-Length with Transfer-Encoding, more than one Host line, and a
 * Transfer-Encoding other than a single "chunked", which is the only coding
 * the gateway decodes.
 */
const char *gw_framing_problem(const struct gw_framing *framing);

/*
 * Returns the client message for a request with more than one
 * Cerrojo-Session or Cerrojo-Seal line, or with Content-Type lines of
 * different values, or NULL when none of these occurs. The request's end is
 * still clear, so the connection may stay open.
 */
const char *gw_repeated_header_problem(const struct gw_framing *framing);

#endif

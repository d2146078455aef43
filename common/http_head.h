/*
 * A parser for HTTP/1.0 and 1.1 request heads (RFC 9112): the request line
 * and the few header fields that decide how a small server responds.
 */
#ifndef CJ_HTTP_HEAD_H
#define CJ_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

enum cj_http_method {
    CJ_HTTP_METHOD_GET,
    CJ_HTTP_METHOD_HEAD,
    CJ_HTTP_METHOD_OTHER,
};

/* The parts of a request head that decide the response. */
struct cj_http_request {
    enum cj_http_method method;
    /* The path of the request target, without any query, pointing into the
     * parsed head (or to a static "/" for an absolute-form target without
     * a path). */
    const char *path;
    size_t path_len;
    bool http11;
    bool has_host;
    /* The Connection field named close or keep-alive. */
    bool connection_close;
    bool connection_keep_alive;
};

/*
 * Parses a request head of len bytes: the request line and the field
 * lines, each ending in CRLF or a bare LF, without the empty line after
 * them. req must be zeroed. Returns 0, or the status to reply with before
 * closing: 400 for a malformed head (including HTTP/1.1 without exactly one
 * Host), 413 when the request announces a body (Content-Length over 0 or any
 * Transfer-Encoding). On 400 or 413, the fields of req may be partly set.
 */
CJ_WARN_UNUSED int cj_http_parse_head(const char *head, size_t len,
                                      struct cj_http_request *req);

/*
 * Finds the path of a request target of len bytes (RFC 9112 section 3.2).
 * An origin-form target ("/path?query") is its own path. An absolute-form
 * "http://" or "https://" URI (scheme in any case) gives what follows its
 * authority, or "/" when that is empty or only a query. Returns false for
 * any other target, the asterisk form "*" included, and for an empty host
 * or userinfo. On success *path and *path_len cover the path and any
 * query, pointing into target or at a static "/".
 */
CJ_WARN_UNUSED bool cj_http_target_path(const char *target, size_t len,
                                        const char **path, size_t *path_len);

/*
 * Finds the empty line that ends a request head at the start of buf, where
 * each line ends in CRLF or a bare LF and the first line is not empty.
 * Returns the bytes up to and including the empty line, with *head_len set
 * to the bytes before it, or 0 when the head is not complete in len bytes.
 */
size_t cj_http_find_head_end(const char *buf, size_t len, size_t *head_len);

#endif

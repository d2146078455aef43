/*
 * HTTP/1.1 transport of the client library, on libcurl. One handle per
 * client keeps its connection alive across requests.
 */
#ifndef CJC_HTTP_H
#define CJC_HTTP_H

#include <stddef.h>

#include "status.h"

/* Upper bound of a response body the client accepts, in bytes. */
#define CJC_HTTP_MAX_RESPONSE (4u * 1024u * 1024u)
/* Whole-request timeout, in milliseconds. */
#define CJC_HTTP_TIMEOUT_MS 15000L

struct cjc_http;

/* A request header, "Name: value". */
struct cjc_http_header {
    const char *name;
    const char *value;
};

/* A response; the body is owned by the response and freed with it. */
struct cjc_http_response {
    long status;
    char *body;
    size_t body_len;
    long retry_after_seconds; /* -1 when absent */
    /* The server's time from the Date header, in Unix seconds; -1 when
     * absent or unreadable. */
    long long date_seconds;
    char content_type[128];
};

/* Maximum length of a gateway URL, in bytes, the terminating NUL included. */
#define CJC_URL_MAX 1024

/*
 * Writes the canonical form of a gateway URL into out, so that two
 * spellings of one gateway compare equal. The scheme and host are in lower
 * case. A port that is the scheme's default (80 for http, 443 for https)
 * is dropped, and so are trailing slashes.
 * Accepts only http and https URLs without user name, path, query or
 * fragment, because the gateway serves its routes at the root.
 * Returns CJ_ERR_INVALID for any other URL, and CJ_ERR_TOO_LARGE when the
 * result does not fit in outlen.
 */
CJ_WARN_UNUSED enum cj_status cjc_url_normalize(const char *url, char *out,
                                                size_t outlen);

/* Creates a transport for base_url ("http://127.0.0.1:8080"). */
CJ_WARN_UNUSED enum cj_status cjc_http_new(const char *base_url,
                                           struct cjc_http **out);

void cjc_http_free(struct cjc_http *http);

/*
 * Sends method path with the given headers and body (body may be NULL for
 * none) and fills resp. On failure resp is left empty and err holds a
 * one-line reason such as "connection refused".
 */
CJ_WARN_UNUSED enum cj_status
cjc_http_request(struct cjc_http *http, const char *method, const char *path,
                 const struct cjc_http_header *headers, size_t n_headers,
                 const void *body, size_t body_len,
                 struct cjc_http_response *resp, char *err, size_t errlen);

/* Frees the body of a response and resets it. Accepts NULL. */
void cjc_http_response_clear(struct cjc_http_response *resp);

#endif

/*
 * Request head parsing for HTTP/1.0 and 1.1 (RFC 9112 sections 3 and 5):
 * the request line and the header fields that decide a response. The
 * /metrics listener (metrics_http.c) uses it.
 */
#include "http_head.h"

#include <string.h>
#include <strings.h>

struct span {
    const char *p;
    size_t n;
};

static bool span_is(struct span s, const char *literal)
{
    return s.n == strlen(literal) && memcmp(s.p, literal, s.n) == 0;
}

static bool span_is_nocase(struct span s, const char *literal)
{
    return s.n == strlen(literal) && strncasecmp(s.p, literal, s.n) == 0;
}

/* A token character (RFC 9110 section 5.6.2). */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(struct span s)
{
    if (s.n == 0) {
        return false;
    }
    for (size_t i = 0; i < s.n; i++) {
        if (!is_tchar((unsigned char)s.p[i])) {
            return false;
        }
    }
    return true;
}

static struct span trim_whitespace(struct span s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t')) {
        s.n--;
    }
    return s;
}

/* Splits s at the first sep: *head gets what precedes it, s what follows.
 * Returns false, with *head the whole of s, when sep does not occur. */
static bool span_split(struct span *s, char sep, struct span *head)
{
    const char *at = memchr(s->p, sep, s->n);
    if (at == NULL) {
        *head = *s;
        s->p += s->n;
        s->n = 0;
        return false;
    }
    *head = (struct span){s->p, (size_t)(at - s->p)};
    s->n -= head->n + 1;
    s->p = at + 1;
    return true;
}

/* Removes prefix from the start of s, ignoring case. Returns false, with s
 * unchanged, when s does not start with it. */
static bool span_skip_prefix_nocase(struct span *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s->n < n || strncasecmp(s->p, prefix, n) != 0) {
        return false;
    }
    s->p += n;
    s->n -= n;
    return true;
}

/* A character allowed in the authority of an http or https URI (RFC 3986
 * section 3.2): unreserved, sub-delims, "%" of a pct-encoded octet, ":"
 * before the port and the brackets of an IP literal. "@" is left out
 * because userinfo is an error (RFC 9110 section 4.2.4). */
static bool is_authority_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=%:[]", c) != NULL);
}

/*
 * Reduces an absolute-form target "http://authority/path?query" (RFC 9112
 * section 3.2.2, which a server must accept) to its path and query, with
 * "/" for an empty path. Returns false for another scheme, an empty host
 * (RFC 9110 section 4.2.1) or an authority with userinfo or another
 * character outside RFC 3986's authority syntax.
 */
static bool strip_absolute_form(struct span *target)
{
    if (!span_skip_prefix_nocase(target, "http://") &&
        !span_skip_prefix_nocase(target, "https://")) {
        return false;
    }
    size_t authority_len = 0;
    while (authority_len < target->n && target->p[authority_len] != '/' &&
           target->p[authority_len] != '?') {
        if (!is_authority_char((unsigned char)target->p[authority_len])) {
            return false;
        }
        authority_len++;
    }
    if (authority_len == 0 || target->p[0] == ':') {
        return false;
    }
    target->p += authority_len;
    target->n -= authority_len;
    if (target->n == 0 || target->p[0] == '?') {
        static const char root[] = "/";
        *target = (struct span){root, 1};
    }
    return true;
}

bool cj_http_target_path(const char *target, size_t len, const char **path,
                         size_t *path_len)
{
    struct span rest = {target, len};

    if (len == 0 || (target[0] != '/' && !strip_absolute_form(&rest))) {
        return false;
    }
    *path = rest.p;
    *path_len = rest.n;
    return true;
}

/* Parses "METHOD SP request-target SP HTTP-version". Returns 0 or 400. */
static int parse_request_line(struct span line, struct cj_http_request *req)
{
    struct span method;
    struct span target;
    struct span path;

    if (!span_split(&line, ' ', &method) || !span_split(&line, ' ', &target) ||
        !is_token(method) || target.n == 0) {
        return 400;
    }
    for (size_t i = 0; i < target.n; i++) {
        unsigned char c = (unsigned char)target.p[i];
        if (c <= ' ' || c >= 0x7f) {
            return 400;
        }
    }
    if (!cj_http_target_path(target.p, target.n, &target.p, &target.n)) {
        return 400;
    }
    if (span_is(line, "HTTP/1.1")) {
        req->http11 = true;
    } else if (!span_is(line, "HTTP/1.0")) {
        return 400;
    }
    req->method = span_is(method, "GET")    ? CJ_HTTP_METHOD_GET
                  : span_is(method, "HEAD") ? CJ_HTTP_METHOD_HEAD
                                            : CJ_HTTP_METHOD_OTHER;
    /* The query, if any, does not select anything. */
    span_split(&target, '?', &path);
    req->path = path.p;
    req->path_len = path.n;
    return 0;
}

/* Reads the comma-separated options of a Connection field. */
static void parse_connection(struct span value, struct cj_http_request *req)
{
    while (value.n > 0) {
        struct span option;
        span_split(&value, ',', &option);
        option = trim_whitespace(option);
        if (span_is_nocase(option, "close")) {
            req->connection_close = true;
        } else if (span_is_nocase(option, "keep-alive")) {
            req->connection_keep_alive = true;
        }
    }
}

/* Checks a Content-Length value (1*DIGIT). Returns 0 for a length of 0 and
 * 413 for any other, because no server here reads a body. */
static int check_content_length(struct span value)
{
    bool zero = true;
    for (size_t i = 0; i < value.n; i++) {
        if (value.p[i] < '0' || value.p[i] > '9') {
            return 400;
        }
        zero = zero && value.p[i] == '0';
    }
    if (value.n == 0) {
        return 400;
    }
    return zero ? 0 : 413;
}

/* Parses one "name: value" line. Returns 0, 400 or 413. */
static int parse_field_line(struct span line, struct cj_http_request *req)
{
    struct span name;
    /* A line that starts with white space continues the previous field
     * (obs-fold), which RFC 9112 section 5.2 lets a server reject. */
    if (!span_split(&line, ':', &name) || !is_token(name)) {
        return 400;
    }
    struct span value = trim_whitespace(line);
    for (size_t i = 0; i < value.n; i++) {
        unsigned char c = (unsigned char)value.p[i];
        if ((c < ' ' && c != '\t') || c == 0x7f) {
            return 400;
        }
    }
    if (span_is_nocase(name, "host")) {
        /* RFC 9112 section 3.2: more than one Host is a bad request. */
        if (req->has_host) {
            return 400;
        }
        req->has_host = true;
    } else if (span_is_nocase(name, "content-length")) {
        return check_content_length(value);
    } else if (span_is_nocase(name, "transfer-encoding")) {
        return 413;
    } else if (span_is_nocase(name, "connection")) {
        parse_connection(value, req);
    }
    return 0;
}

int cj_http_parse_head(const char *head, size_t len,
                       struct cj_http_request *req)
{
    struct span rest = {head, len};
    struct span line;
    bool first = true;

    while (rest.n > 0) {
        /* RFC 9112 section 2.2 lets a recipient take a bare LF as a line
         * terminator. A CR anywhere else in a line fails the checks of the
         * request line and field values. */
        if (!span_split(&rest, '\n', &line)) {
            return 400;
        }
        if (line.n > 0 && line.p[line.n - 1] == '\r') {
            line.n--;
        }
        int status =
            first ? parse_request_line(line, req) : parse_field_line(line, req);
        if (status != 0) {
            return status;
        }
        first = false;
    }
    /* RFC 9112 section 3.2: an HTTP/1.1 request must carry Host. */
    if (first || (req->http11 && !req->has_host)) {
        return 400;
    }
    return 0;
}

size_t cj_http_find_head_end(const char *buf, size_t len, size_t *head_len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        /* An empty line follows the line that ends at i. */
        if (i + 1 < len && buf[i + 1] == '\n') {
            *head_len = i + 1;
            return i + 2;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            *head_len = i + 1;
            return i + 3;
        }
    }
    return 0;
}

/*
 * Security headers, CORS origin matching and the header parsing the
 * request checks need (Content-Type, Accept-Encoding, the framing
 * headers).
 */
#include "gw_headers.h"

#include <ctype.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 allows at most three decimals in a qvalue. */
#define GW_QVALUE_DECIMALS 3

/* Two years; the HSTS preload list needs at least one. */
#define GW_HSTS_VALUE "max-age=63072000; includeSubDomains"
/* The API serves JSON only: nothing may load, embed or submit. */
#define GW_CSP_VALUE                                                           \
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "            \
    "form-action 'none'"

/* True when the port text of an origin is what a browser sends in Origin:
 * decimal without leading zeros, at most 65535, and not the scheme's
 * default port, which browsers omit (RFC 6454 section 6.1). */
static bool gw_origin_port_valid(const char *port, unsigned default_port)
{
    unsigned long value;

    if (port[0] == '0' || strlen(port) > 5) {
        return false;
    }
    value = strtoul(port, NULL, 10);
    return value <= 65535 && value != default_port;
}

static bool gw_origin_valid(const char *origin, size_t len)
{
    const char *host;
    const char *p;
    bool port = false;
    unsigned default_port;

    if (strncmp(origin, "https://", 8) == 0) {
        host = origin + 8;
        default_port = 443;
    } else if (strncmp(origin, "http://", 7) == 0) {
        host = origin + 7;
        default_port = 80;
    } else {
        return false;
    }
    if (*host == '\0' || len > GW_ORIGIN_CHARS_MAX) {
        return false;
    }
    for (p = host; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == ':') {
            if (port || p == host || p[1] == '\0' ||
                !gw_origin_port_valid(p + 1, default_port)) {
                return false;
            }
            port = true;
        } else if (port) {
            if (!isdigit(c)) {
                return false;
            }
        } else if (!(islower(c) || isdigit(c) || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

enum cj_status gw_origin_list_parse(const char *text,
                                    struct gw_origin_list *out)
{
    const char *p = text;

    memset(out, 0, sizeof(*out));
    if (text == NULL) {
        return CJ_OK;
    }
    while (*p != '\0') {
        size_t len;
        const char *comma;

        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        comma = strchr(p, ',');
        len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len > GW_ORIGIN_CHARS_MAX || out->count >= GW_CORS_ORIGINS_MAX) {
            return CJ_ERR_INVALID;
        }
        memcpy(out->items[out->count], p, len);
        out->items[out->count][len] = '\0';
        if (!gw_origin_valid(out->items[out->count], len)) {
            return CJ_ERR_INVALID;
        }
        out->count++;
        p += len;
    }
    return CJ_OK;
}

bool gw_origin_allowed(const struct gw_origin_list *list, const char *origin)
{
    if (origin == NULL || strlen(origin) > GW_ORIGIN_CHARS_MAX ||
        strcmp(origin, "null") == 0) {
        return false;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i], origin) == 0) {
            return true;
        }
    }
    return false;
}

bool gw_headers_add_security(struct MHD_Response *response)
{
    return MHD_add_response_header(response, "Strict-Transport-Security",
                                   GW_HSTS_VALUE) == MHD_YES &&
           MHD_add_response_header(response, "X-Content-Type-Options",
                                   "nosniff") == MHD_YES &&
           MHD_add_response_header(response, "X-Frame-Options", "DENY") ==
               MHD_YES &&
           MHD_add_response_header(response, "Content-Security-Policy",
                                   GW_CSP_VALUE) == MHD_YES &&
           MHD_add_response_header(response, "Referrer-Policy",
                                   "no-referrer") == MHD_YES;
}

bool gw_headers_add_cors(struct MHD_Response *response, const char *origin)
{
    return MHD_add_response_header(response, "Access-Control-Allow-Origin",
                                   origin) == MHD_YES &&
           MHD_add_response_header(response, "Access-Control-Expose-Headers",
                                   GW_CORS_EXPOSE_HEADERS) == MHD_YES;
}

/* Moves *p past spaces and tabs. */
static void gw_skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t') {
        (*p)++;
    }
}

/* Whether the qvalue at p (RFC 9110: "0" or "1" with up to three
 * decimals, "1" only as 1.000) is above zero. Anything else, strtod's
 * "nan", "inf" and exponents included, counts as zero, so a malformed
 * preference never gets a compressed body. */
static bool gw_qvalue_positive(const char *p)
{
    bool positive = false;
    int digits = 0;

    if (*p != '0' && *p != '1') {
        return false;
    }
    positive = *p == '1';
    p++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9' && digits < GW_QVALUE_DECIMALS) {
            if (*p != '0') {
                if (positive) {
                    return false; /* above 1 */
                }
                positive = true;
            }
            p++;
            digits++;
        }
    }
    gw_skip_space(&p);
    return (*p == '\0' || *p == ',' || *p == ';') && positive;
}

bool gw_accepts_gzip(const char *accept_encoding)
{
    const char *p = accept_encoding;

    if (p == NULL) {
        return false;
    }
    while (*p != '\0') {
        const char *token;
        size_t token_len;
        bool zero_q = false;

        gw_skip_space(&p);
        token = p;
        while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ') {
            p++;
        }
        token_len = (size_t)(p - token);
        /* Parameters: only q matters; q=0, 0.0... or a malformed q means
         * refused. */
        while (*p != '\0' && *p != ',') {
            if (*p == ';') {
                p++;
                gw_skip_space(&p);
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    zero_q = !gw_qvalue_positive(p + 2);
                }
            } else {
                p++;
            }
        }
        if (token_len == 4 && strncasecmp(token, "gzip", 4) == 0 && !zero_q) {
            return true;
        }
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

bool gw_content_type_is_json(const char *content_type)
{
    static const char json[] = "application/json";
    const char *p;

    if (content_type == NULL ||
        strncasecmp(content_type, json, sizeof(json) - 1) != 0) {
        return false;
    }
    p = content_type + sizeof(json) - 1;
    gw_skip_space(&p);
    if (*p == '\0') {
        return true;
    }
    if (*p != ';') {
        return false;
    }
    p++;
    gw_skip_space(&p);
    if (strncasecmp(p, "charset=", 8) != 0) {
        return false;
    }
    p += 8;
    if (strncasecmp(p, "utf-8", 5) == 0 ||
        strncasecmp(p, "\"utf-8\"", 7) == 0) {
        p += p[0] == '"' ? 7 : 5;
        gw_skip_space(&p);
        return *p == '\0';
    }
    return false;
}

/* True for a tchar of RFC 9110 section 5.6.2, the bytes a field name may
 * contain. */
static bool gw_is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool gw_is_token(const char *text, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!gw_is_token_char((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}

/* RFC 9110 section 5.5 lets a recipient reject or replace CR, LF and NUL
 * in a field value, and the gateway rejects them. */
static bool gw_value_has_line_control(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') {
            return true;
        }
    }
    return false;
}

/* True when value, spaces and tabs around it aside, is one or more
 * decimal digits: the Content-Length grammar of RFC 9110 section 8.6. */
static bool gw_is_decimal(const char *value, size_t len)
{
    size_t start = 0;
    size_t end = len;
    size_t i;

    while (start < end && (value[start] == ' ' || value[start] == '\t')) {
        start++;
    }
    while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) {
        end--;
    }
    if (start == end) {
        return false;
    }
    for (i = start; i < end; i++) {
        if (value[i] < '0' || value[i] > '9') {
            return false;
        }
    }
    return true;
}

/* True when name starts with field, in any case, and goes on past it. */
static bool gw_name_extends(const char *name, size_t name_len,
                            const char *field)
{
    size_t field_len = strlen(field);

    return name_len > field_len && strncasecmp(name, field, field_len) == 0;
}

void gw_framing_add(struct gw_framing *framing, const char *name,
                    size_t name_len, const char *value, size_t value_len)
{
    if (value == NULL) {
        value = "";
        value_len = 0;
    }
    if (name == NULL || !gw_is_token(name, name_len)) {
        framing->name_invalid = true;
        return;
    }
    if (gw_value_has_line_control(value, value_len)) {
        framing->value_invalid = true;
    }
    if (gw_name_extends(name, name_len, "Content-Length") ||
        gw_name_extends(name, name_len, "Transfer-Encoding")) {
        framing->framing_name_folded = true;
    }
    if (strcasecmp(name, "Content-Length") == 0) {
        if (!gw_is_decimal(value, value_len)) {
            framing->content_length_invalid = true;
        }
        if (framing->content_length_count == 0) {
            framing->content_length = value;
        } else if (strcmp(framing->content_length, value) != 0) {
            framing->content_length_conflict = true;
        }
        framing->content_length_count++;
    } else if (strcasecmp(name, "Host") == 0) {
        framing->host_count++;
    } else if (strcasecmp(name, "Cerrojo-Session") == 0) {
        framing->session_count++;
    } else if (strcasecmp(name, "Cerrojo-Seal") == 0) {
        framing->seal_count++;
    } else if (strcasecmp(name, "Content-Type") == 0) {
        /* Media type and charset names are case-insensitive (RFC 9110
         * section 8.3), so only a difference beyond case conflicts. */
        if (framing->content_type == NULL) {
            framing->content_type = value;
        } else if (strcasecmp(framing->content_type, value) != 0) {
            framing->content_type_conflict = true;
        }
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (framing->transfer_encoding_count == 0) {
            framing->transfer_encoding = value;
        }
        framing->transfer_encoding_count++;
    }
}

/* True when `value` is "chunked" in any case, with optional spaces or tabs
 * around it. */
static bool gw_is_chunked(const char *value)
{
    const char *p = value;
    static const char chunked[] = "chunked";

    gw_skip_space(&p);
    if (strncasecmp(p, chunked, sizeof(chunked) - 1) != 0) {
        return false;
    }
    p += sizeof(chunked) - 1;
    gw_skip_space(&p);
    return *p == '\0';
}

const char *gw_framing_problem(const struct gw_framing *framing)
{
    if (framing->name_invalid) {
        return "A header name is empty or contains a character other than "
               "letters, digits and !#$%&'*+-.^_`|~, such as a space before "
               "the colon.";
    }
    if (framing->value_invalid) {
        return "A header value contains CR, LF or NUL.";
    }
    if (framing->framing_name_folded) {
        return "A Content-Length or Transfer-Encoding header continues on "
               "the next line (obs-fold); send each header on one line.";
    }
    if (framing->content_length_invalid) {
        return "Content-Length must be a decimal number.";
    }
    if (framing->content_length_conflict) {
        return "The request has Content-Length headers with different values.";
    }
    if (framing->host_count > 1) {
        return "The request has more than one Host header.";
    }
    if (framing->transfer_encoding_count == 0) {
        return NULL;
    }
    if (framing->content_length_count > 0) {
        return "The request has both Content-Length and Transfer-Encoding.";
    }
    if (framing->transfer_encoding_count > 1 ||
        !gw_is_chunked(framing->transfer_encoding)) {
        return "Transfer-Encoding must be chunked alone; no other transfer "
               "coding is accepted.";
    }
    return NULL;
}

const char *gw_repeated_header_problem(const struct gw_framing *framing)
{
    if (framing->session_count > 1) {
        return "The request has more than one Cerrojo-Session header; send "
               "the session id once.";
    }
    if (framing->seal_count > 1) {
        return "The request has more than one Cerrojo-Seal header; send the "
               "sealed envelope once.";
    }
    if (framing->content_type_conflict) {
        return "The request has Content-Type headers with different values; "
               "send one Content-Type: application/json.";
    }
    return NULL;
}

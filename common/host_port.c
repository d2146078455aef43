/* Parsing of host:port and [IPv6]:port addresses. */
#include "host_port.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

/* Digits of the largest port, 65535. */
#define CJ_HOST_PORT_DIGITS_MAX 5

static bool is_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Parses the decimal port after the host's colon. */
static enum cj_host_port_error parse_port(const char *text,
                                          bool allow_port_zero, uint16_t *port)
{
    size_t len = strlen(text);
    unsigned long value = 0;

    if (len == 0) {
        return CJ_HOST_PORT_MISSING_PORT;
    }
    if (len > CJ_HOST_PORT_DIGITS_MAX) {
        return CJ_HOST_PORT_INVALID_PORT;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i])) {
            return CJ_HOST_PORT_INVALID_PORT;
        }
        value = value * 10 + (unsigned long)(text[i] - '0');
    }
    if (value > CJ_HOST_PORT_MAX) {
        return CJ_HOST_PORT_INVALID_PORT;
    }
    if (value == 0 && !allow_port_zero) {
        return CJ_HOST_PORT_PORT_ZERO;
    }
    *port = (uint16_t)value;
    return CJ_HOST_PORT_OK;
}

/* Parses "[v6]:port"; text starts at the '['. */
static enum cj_host_port_error parse_bracketed(const char *text,
                                               bool allow_port_zero,
                                               struct cj_host_port *out)
{
    unsigned char address[sizeof(struct in6_addr)];
    const char *end = strchr(text, ']');
    size_t host_len;

    if (end == NULL) {
        return CJ_HOST_PORT_INVALID_IPV6;
    }
    host_len = (size_t)(end - text - 1);
    if (host_len == 0) {
        return CJ_HOST_PORT_EMPTY_HOST;
    }
    if (host_len >= sizeof(out->host)) {
        return CJ_HOST_PORT_TOO_LONG;
    }
    memcpy(out->host, text + 1, host_len);
    out->host[host_len] = '\0';
    if (inet_pton(AF_INET6, out->host, address) != 1) {
        return CJ_HOST_PORT_INVALID_IPV6;
    }
    if (end[1] != ':') {
        return end[1] == '\0' ? CJ_HOST_PORT_MISSING_PORT
                              : CJ_HOST_PORT_INVALID_IPV6;
    }
    out->ipv6 = true;
    return parse_port(end + 2, allow_port_zero, &out->port);
}

enum cj_host_port_error cj_host_port_parse(const char *text,
                                           bool allow_port_zero,
                                           struct cj_host_port *out)
{
    struct cj_host_port scratch;
    const char *colon;
    size_t host_len;

    if (out == NULL) {
        out = &scratch;
    }
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0') {
        return CJ_HOST_PORT_EMPTY_HOST;
    }
    if (text[0] == '[') {
        return parse_bracketed(text, allow_port_zero, out);
    }
    colon = strchr(text, ':');
    if (colon == NULL) {
        return CJ_HOST_PORT_MISSING_PORT;
    }
    /* A second colon means an IPv6 address without its brackets, where
     * the port cannot be distinguished from the last group. */
    if (strchr(colon + 1, ':') != NULL) {
        return CJ_HOST_PORT_UNBRACKETED_IPV6;
    }
    host_len = (size_t)(colon - text);
    if (host_len == 0) {
        return CJ_HOST_PORT_EMPTY_HOST;
    }
    if (host_len >= sizeof(out->host)) {
        return CJ_HOST_PORT_TOO_LONG;
    }
    for (size_t i = 0; i < host_len; i++) {
        if (!is_host_char(text[i])) {
            return CJ_HOST_PORT_INVALID_HOST;
        }
    }
    memcpy(out->host, text, host_len);
    out->host[host_len] = '\0';
    return parse_port(colon + 1, allow_port_zero, &out->port);
}

const char *cj_host_port_error_text(enum cj_host_port_error error)
{
    switch (error) {
    case CJ_HOST_PORT_OK:
        return "valid";
    case CJ_HOST_PORT_MISSING_PORT:
        return "the port is missing";
    case CJ_HOST_PORT_EMPTY_HOST:
        return "the host is empty";
    case CJ_HOST_PORT_INVALID_HOST:
        return "the host may contain only letters, digits, '.', '-' and '_'";
    case CJ_HOST_PORT_UNBRACKETED_IPV6:
        return "an IPv6 address must be written in brackets, as [::1]:50052";
    case CJ_HOST_PORT_INVALID_IPV6:
        return "the text in brackets is not an IPv6 address followed by :port";
    case CJ_HOST_PORT_INVALID_PORT:
        return "the port is not a decimal number up to 65535";
    case CJ_HOST_PORT_PORT_ZERO:
        return "port 0 is not allowed here";
    case CJ_HOST_PORT_TOO_LONG:
        return "the host is longer than 255 characters";
    }
    return "invalid address";
}

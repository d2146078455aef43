/*
 * Checks of "host:port" and "[IPv6]:port" addresses, the forms that gRPC
 * accepts as listen addresses and targets. gRPC itself fills in port 443
 * when the port is missing, so a setting without one would bind or dial
 * the HTTPS port instead of failing.
 */
#ifndef CJ_HOST_PORT_H
#define CJ_HOST_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest TCP port number. */
#define CJ_HOST_PORT_MAX 65535

/* Reason an address was rejected, or CJ_HOST_PORT_OK for an accepted one. */
enum cj_host_port_error {
    CJ_HOST_PORT_OK = 0,
    CJ_HOST_PORT_MISSING_PORT,
    CJ_HOST_PORT_EMPTY_HOST,
    CJ_HOST_PORT_INVALID_HOST,
    CJ_HOST_PORT_UNBRACKETED_IPV6,
    CJ_HOST_PORT_INVALID_IPV6,
    CJ_HOST_PORT_INVALID_PORT,
    CJ_HOST_PORT_PORT_ZERO,
    CJ_HOST_PORT_TOO_LONG,
};

/* The parts of an accepted address. */
struct cj_host_port {
    char host[256]; /* without the brackets of an IPv6 address */
    bool ipv6;      /* the host was written in brackets */
    uint16_t port;
};

/*
 * Parses `text` as host:port or [IPv6]:port. The host is a name or an
 * IPv4 address made of letters, digits, '.', '-' and '_', or an IPv6
 * address in brackets. The port is 1 to 65535 in decimal, or 0 too when
 * allow_port_zero is set (a listen address, where 0 picks a free port).
 * `out` may be NULL.
 */
enum cj_host_port_error cj_host_port_parse(const char *text,
                                           bool allow_port_zero,
                                           struct cj_host_port *out);

/* Returns a short reason for an error, such as "the port is missing". */
const char *cj_host_port_error_text(enum cj_host_port_error error);

#endif

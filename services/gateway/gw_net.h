/*
 * Addresses and ids at the edge: trusted-proxy CIDR lists, the client IP
 * (from X-Forwarded-For only behind a trusted proxy), and request ids
 * (taken from a trusted proxy when valid, generated otherwise).
 */
#ifndef GW_NET_H
#define GW_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gw_limits.h"
#include "status.h"

/* Maximum size of the text form of an address (IPv6), with the NUL. */
#define GW_IP_CHARS INET6_ADDRSTRLEN

/* Room for a request id with the NUL. */
#define GW_REQUEST_ID_SIZE (GW_REQUEST_ID_CHARS_MAX + 1)

/* Maximum size of one "address/prefix" entry of a CIDR list, with the NUL. */
#define GW_CIDR_TEXT_SIZE 64

/* Room for gw_cidr_list_parse()'s reason, which quotes one entry. */
#define GW_CIDR_ERROR_SIZE (GW_CIDR_TEXT_SIZE + 128)

/* One network: an IPv4 or IPv6 prefix. IPv4 is stored as itself, never
 * as an IPv4-mapped IPv6 address: "::ffff:10.0.0.0/104" is stored as
 * 10.0.0.0/8 with v4_mapped set. */
struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix_bits;         /* counted in the bits of `family` */
    bool v4_mapped;               /* written as an IPv4-mapped IPv6 prefix */
    char text[GW_CIDR_TEXT_SIZE]; /* the entry as written, for messages */
};

struct gw_cidr_list {
    struct gw_cidr items[GW_TRUSTED_PROXIES_MAX];
    size_t count;
};

/*
 * Parses a comma-separated list such as "127.0.0.1/32, 10.0.0.0/8, ::1"
 * (a bare address is a host route). An empty or NULL text gives an empty
 * list. An IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/96 to /128) becomes the
 * IPv4 prefix of its last 32 bits. Returns CJ_ERR_INVALID on a malformed
 * entry, host bits set beyond the prefix, or more than
 * GW_TRUSTED_PROXIES_MAX entries, and then writes the reason, naming the
 * entry, to `err` unless it is NULL.
 */
CJ_WARN_UNUSED enum cj_status gw_cidr_list_parse(const char *text,
                                                 struct gw_cidr_list *out,
                                                 char *err, size_t err_size);

/* Returns the first network of `list` whose prefix is shorter than
 * `v4_bits_min` (IPv4, mapped ones included) or `v6_bits_min` (IPv6), or
 * NULL when there is none. An IPv6 network inside the unique-local range
 * fc00::/7 never counts as short. */
const struct gw_cidr *gw_cidr_list_find_short(const struct gw_cidr_list *list,
                                              unsigned v4_bits_min,
                                              unsigned v6_bits_min);

/* True when the textual address `ip` is inside any network of the list. */
bool gw_cidr_list_contains_ip(const struct gw_cidr_list *list, const char *ip);

/* Writes the text form of a socket address (IPv4-mapped IPv6 as IPv4);
 * "unknown" when it has another family. */
void gw_sockaddr_format(const struct sockaddr *sa, char *out, size_t size);

/*
 * Decides the client IP. When `peer_ip` is a trusted proxy and
 * `forwarded_for` (every X-Forwarded-For value joined by commas, may be
 * NULL) is present, walks the list from the right past trusted proxies and
 * takes the first address that is not one, or the leftmost valid one. An
 * entry may carry a port ("a.b.c.d:port", "[addr]:port"), which is dropped.
 * An invalid entry stops the walk at the hop that sent it. Otherwise the
 * peer itself.
 */
void gw_client_ip(const struct gw_cidr_list *trusted, const char *peer_ip,
                  const char *forwarded_for, char *out, size_t size);

/* True for 1 to GW_REQUEST_ID_CHARS_MAX characters of [A-Za-z0-9._-]. */
bool gw_request_id_valid(const char *id);

/* Copies `src` into `dst` of `size` bytes (size > 0), truncated to size - 1
 * bytes and NUL-terminated, as snprintf(dst, size, "%s", src) would, without
 * parsing a format on every request. */
void gw_copy_text(char *dst, size_t size, const char *src);

/* Writes a new random request id (base64url of 16 random bytes). */
void gw_request_id_generate(char *out, size_t size);

#endif

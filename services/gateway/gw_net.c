/*
 * Trusted-proxy matching, client-IP selection and request ids.
 */
#include "gw_net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The IPv4-mapped range is ::ffff:0:0/96, so a mapped prefix of n bits is
 * the IPv4 prefix of n - 96 bits. */
#define GW_V4_MAPPED_PREFIX_BITS 96

/* The unique-local IPv6 range fc00::/7 (RFC 4193): its length, and the
 * first byte of its addresses under a mask that keeps those 7 bits. */
#define GW_UNIQUE_LOCAL_PREFIX_BITS 7
#define GW_UNIQUE_LOCAL_MASK        0xfeu
#define GW_UNIQUE_LOCAL_FIRST_BYTE  0xfcu

static bool gw_ip_parse(const char *text, int *family, unsigned char *addr)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};

    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, addr) == 1) {
        if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(addr, addr + 12, 4);
            *family = AF_INET;
        } else {
            *family = AF_INET6;
        }
        return true;
    }
    return false;
}

static bool gw_prefix_matches(const unsigned char *a, const unsigned char *b,
                              unsigned bits)
{
    unsigned whole = bits / 8;
    unsigned rest = bits % 8;

    if (memcmp(a, b, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    return ((a[whole] ^ b[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

/* Parses the prefix length after the slash of a CIDR entry, which must be
 * decimal digits only and at most `max_bits`. */
static bool gw_prefix_bits_parse(const char *text, unsigned max_bits,
                                 unsigned *out)
{
    char *end = NULL;
    unsigned long bits;

    if (!isdigit((unsigned char)text[0])) {
        return false;
    }
    errno = 0;
    bits = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || bits > max_bits) {
        return false;
    }
    *out = (unsigned)bits;
    return true;
}

/* Writes the reason an entry is invalid to `err`, when there is one. */
#define GW_CIDR_ERROR(err, err_size, ...)                                      \
    do {                                                                       \
        if ((err) != NULL && (err_size) > 0) {                                 \
            snprintf((err), (err_size), __VA_ARGS__);                          \
        }                                                                      \
    } while (0)

/* Parses the prefix length of `out`'s entry after its slash into
 * out->prefix_bits, counted in the bits of out->family. */
static enum cj_status gw_cidr_parse_prefix(const char *bits_text,
                                           struct gw_cidr *out, char *err,
                                           size_t err_size)
{
    unsigned max_bits = out->family == AF_INET ? 32 : 128;
    unsigned bits;

    if (out->v4_mapped) {
        /* Below /96 the mapped range's 0xffff lies in the host bits. */
        if (!gw_prefix_bits_parse(bits_text, 128, &bits) ||
            bits < GW_V4_MAPPED_PREFIX_BITS) {
            GW_CIDR_ERROR(err, err_size,
                          "'%s' is an IPv4-mapped IPv6 prefix with a length "
                          "other than %d to 128",
                          out->text, GW_V4_MAPPED_PREFIX_BITS);
            return CJ_ERR_INVALID;
        }
        out->prefix_bits = bits - GW_V4_MAPPED_PREFIX_BITS;
        return CJ_OK;
    }
    if (!gw_prefix_bits_parse(bits_text, max_bits, &bits)) {
        GW_CIDR_ERROR(err, err_size,
                      "'%s' has a prefix length other than 0 to %u", out->text,
                      max_bits);
        return CJ_ERR_INVALID;
    }
    out->prefix_bits = bits;
    return CJ_OK;
}

static enum cj_status gw_cidr_parse_one(const char *text, struct gw_cidr *out,
                                        char *err, size_t err_size)
{
    char buf[GW_CIDR_TEXT_SIZE];
    char *slash;
    unsigned max_bits;
    unsigned char masked[16];

    if (strlen(text) >= sizeof(buf) || text[0] == '\0') {
        GW_CIDR_ERROR(err, err_size,
                      "an entry is empty or longer than %zu characters",
                      sizeof(buf) - 1);
        return CJ_ERR_INVALID;
    }
    memset(out, 0, sizeof(*out));
    strcpy(out->text, text);
    strcpy(buf, text);
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    if (!gw_ip_parse(buf, &out->family, out->addr)) {
        GW_CIDR_ERROR(err, err_size,
                      "'%s' is not an IPv4 or IPv6 address with an optional "
                      "/prefix length",
                      text);
        return CJ_ERR_INVALID;
    }
    max_bits = out->family == AF_INET ? 32 : 128;
    out->prefix_bits = max_bits;
    /* gw_ip_parse() turns ::ffff:a.b.c.d into IPv4, so a colon left in an
     * IPv4 entry means the prefix length counts 128 bits. */
    out->v4_mapped = out->family == AF_INET && strchr(buf, ':') != NULL;
    if (slash != NULL &&
        gw_cidr_parse_prefix(slash + 1, out, err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    /* Host bits beyond the prefix are a typo more often than intent. */
    memcpy(masked, out->addr, sizeof(masked));
    for (unsigned i = out->prefix_bits; i < max_bits; i++) {
        masked[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    }
    if (memcmp(masked, out->addr, max_bits / 8) != 0) {
        GW_CIDR_ERROR(err, err_size,
                      "'%s' sets address bits after its prefix, which a "
                      "network address leaves zero",
                      text);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

enum cj_status gw_cidr_list_parse(const char *text, struct gw_cidr_list *out,
                                  char *err, size_t err_size)
{
    const char *p = text;

    memset(out, 0, sizeof(*out));
    if (text == NULL) {
        return CJ_OK;
    }
    while (*p != '\0') {
        char entry[GW_CIDR_TEXT_SIZE];
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
        if (len >= sizeof(entry)) {
            GW_CIDR_ERROR(err, err_size,
                          "entry %zu is longer than %zu characters",
                          out->count + 1, sizeof(entry) - 1);
            return CJ_ERR_INVALID;
        }
        if (out->count >= GW_TRUSTED_PROXIES_MAX) {
            GW_CIDR_ERROR(err, err_size, "more than %d entries",
                          GW_TRUSTED_PROXIES_MAX);
            return CJ_ERR_INVALID;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        if (gw_cidr_parse_one(entry, &out->items[out->count], err, err_size) !=
            CJ_OK) {
            return CJ_ERR_INVALID;
        }
        out->count++;
        p += len;
    }
    return CJ_OK;
}

/* True for an IPv6 network inside fc00::/7: a prefix of 7 bits or more
 * whose first 7 bits are those of fc00::. */
static bool gw_cidr_unique_local(const struct gw_cidr *net)
{
    return net->family == AF_INET6 &&
           net->prefix_bits >= GW_UNIQUE_LOCAL_PREFIX_BITS &&
           (net->addr[0] & GW_UNIQUE_LOCAL_MASK) == GW_UNIQUE_LOCAL_FIRST_BYTE;
}

const struct gw_cidr *gw_cidr_list_find_short(const struct gw_cidr_list *list,
                                              unsigned v4_bits_min,
                                              unsigned v6_bits_min)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct gw_cidr *net = &list->items[i];
        unsigned bits_min = net->family == AF_INET ? v4_bits_min : v6_bits_min;

        if (net->prefix_bits < bits_min && !gw_cidr_unique_local(net)) {
            return net;
        }
    }
    return NULL;
}

bool gw_cidr_list_contains_ip(const struct gw_cidr_list *list, const char *ip)
{
    unsigned char addr[16];
    int family;

    if (ip == NULL || !gw_ip_parse(ip, &family, addr)) {
        return false;
    }
    for (size_t i = 0; i < list->count; i++) {
        const struct gw_cidr *net = &list->items[i];

        if (net->family == family &&
            gw_prefix_matches(net->addr, addr, net->prefix_bits)) {
            return true;
        }
    }
    return false;
}

void gw_copy_text(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

void gw_sockaddr_format(const struct sockaddr *sa, char *out, size_t size)
{
    char text[GW_IP_CHARS];
    unsigned char addr[16];
    int family;

    gw_copy_text(out, size, "unknown");
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

        if (inet_ntop(AF_INET, &in4->sin_addr, text, sizeof(text))) {
            gw_copy_text(out, size, text);
        }
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) &&
            gw_ip_parse(text, &family, addr) &&
            inet_ntop(family, addr, text, sizeof(text))) {
            gw_copy_text(out, size, text);
        }
    }
}

/* Copies the entry of `list` that ends just before `end` into `out`, trimmed;
 * returns where that entry starts. */
static const char *gw_forwarded_previous(const char *list, const char *end,
                                         char *out, size_t size)
{
    const char *start = end;
    const char *a;
    const char *b;
    size_t len;

    while (start > list && start[-1] != ',') {
        start--;
    }
    a = start;
    b = end;
    while (a < b && (*a == ' ' || *a == '\t')) {
        a++;
    }
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
        b--;
    }
    len = (size_t)(b - a);
    if (len >= size) {
        len = 0;
    }
    memcpy(out, a, len);
    out[len] = '\0';
    return start;
}

/* Removes a port from an X-Forwarded-For entry in place: "a.b.c.d:port"
 * becomes "a.b.c.d" and "[addr]:port" or "[addr]" becomes "addr". Some
 * proxies (Azure Application Gateway among them) append the client's port.
 * An entry of another form is left as it is for gw_ip_parse() to judge. */
static void gw_forwarded_strip_port(char *entry)
{
    char *colon;
    char *close;

    if (entry[0] == '[') {
        close = strchr(entry, ']');
        if (close == NULL ||
            (close[1] != '\0' &&
             (close[1] != ':' || close[2] == '\0' ||
              strspn(close + 2, "0123456789") != strlen(close + 2)))) {
            return;
        }
        *close = '\0';
        memmove(entry, entry + 1, strlen(entry + 1) + 1);
        return;
    }
    colon = strchr(entry, ':');
    /* One colon only: an IPv6 address without brackets has several. */
    if (colon == NULL || strchr(colon + 1, ':') != NULL || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        return;
    }
    *colon = '\0';
}

void gw_client_ip(const struct gw_cidr_list *trusted, const char *peer_ip,
                  const char *forwarded_for, char *out, size_t size)
{
    char current[GW_IP_CHARS];
    const char *end;

    snprintf(current, sizeof(current), "%s", peer_ip);
    if (forwarded_for != NULL) {
        end = forwarded_for + strlen(forwarded_for);
        for (int hop = 0; hop < GW_FORWARDED_HOPS_MAX &&
                          gw_cidr_list_contains_ip(trusted, current);
             hop++) {
            char entry[GW_IP_CHARS];
            unsigned char addr[16];
            int family;
            const char *start;

            if (end <= forwarded_for) {
                break;
            }
            start =
                gw_forwarded_previous(forwarded_for, end, entry, sizeof(entry));
            gw_forwarded_strip_port(entry);
            if (!gw_ip_parse(entry, &family, addr) ||
                inet_ntop(family, addr, current, sizeof(current)) == NULL) {
                break;
            }
            end = start > forwarded_for ? start - 1 : forwarded_for;
        }
    }
    snprintf(out, size, "%s", current);
}

bool gw_request_id_valid(const char *id)
{
    size_t len;

    if (id == NULL) {
        return false;
    }
    len = strlen(id);
    if (len == 0 || len > GW_REQUEST_ID_CHARS_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];

        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

/*
 * Request ids come from a ChaCha20 keystream per thread, keyed from the
 * system's random source at the thread's first id and with a counter as
 * the nonce, so that an id costs no system call. Ids are sent to clients,
 * so the key only keeps them unpredictable. It is wiped when its thread
 * exits, except for the main thread's at process exit.
 */
struct gw_request_id_stream {
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
    uint64_t counter;
};

static pthread_key_t gw_request_id_tls;
static pthread_once_t gw_request_id_once = PTHREAD_ONCE_INIT;
static bool gw_request_id_tls_ready;

static void gw_request_id_stream_free(void *arg)
{
    struct gw_request_id_stream *stream = arg;

    sodium_memzero(stream, sizeof(*stream));
    free(stream);
}

static void gw_request_id_tls_init(void)
{
    gw_request_id_tls_ready =
        pthread_key_create(&gw_request_id_tls, gw_request_id_stream_free) == 0;
}

/* Returns this thread's stream, creating it on first use, or NULL when
 * thread-local storage or memory is unavailable. */
static struct gw_request_id_stream *gw_request_id_stream_get(void)
{
    struct gw_request_id_stream *stream;

    pthread_once(&gw_request_id_once, gw_request_id_tls_init);
    if (!gw_request_id_tls_ready) {
        return NULL;
    }
    stream = pthread_getspecific(gw_request_id_tls);
    if (stream != NULL) {
        return stream;
    }
    stream = malloc(sizeof(*stream));
    if (stream == NULL) {
        return NULL;
    }
    randombytes_buf(stream->key, sizeof(stream->key));
    stream->counter = 0;
    if (pthread_setspecific(gw_request_id_tls, stream) != 0) {
        gw_request_id_stream_free(stream);
        return NULL;
    }
    return stream;
}

void gw_request_id_generate(char *out, size_t size)
{
    unsigned char random[GW_REQUEST_ID_RANDOM_BYTES];
    unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    struct gw_request_id_stream *stream = gw_request_id_stream_get();

    if (stream != NULL) {
        uint64_t counter = stream->counter++;

        for (size_t i = 0; i < sizeof(nonce) && i < sizeof(counter); i++) {
            nonce[i] = (unsigned char)(counter >> (8 * i));
        }
        crypto_stream_chacha20(random, sizeof(random), nonce, stream->key);
    } else {
        randombytes_buf(random, sizeof(random));
    }
    sodium_bin2base64(out, size, random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

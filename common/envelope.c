/*
 * Shared envelope parts: rejection reasons, the sealed plaintext codec,
 * timestamp and argument checks, the Cerrojo-Seal header form, and the
 * strict JSON envelope parser (jansson for the syntax, libsodium for
 * base64url).
 */
#include "envelope.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto_util.h"

static const char *const reason_names[] = {
    [CJ_SEAL_OK] = "ok",
    [CJ_SEAL_TOO_LARGE] = "too_large",
    [CJ_SEAL_BAD_JSON] = "bad_json",
    [CJ_SEAL_DUPLICATE_FIELD] = "duplicate_field",
    [CJ_SEAL_TRAILING_DATA] = "trailing_data",
    [CJ_SEAL_NOT_OBJECT] = "not_object",
    [CJ_SEAL_MISSING_FIELD] = "missing_field",
    [CJ_SEAL_UNKNOWN_FIELD] = "unknown_field",
    [CJ_SEAL_WRONG_TYPE] = "wrong_type",
    [CJ_SEAL_NOT_INTEGER] = "not_integer",
    [CJ_SEAL_OUT_OF_RANGE] = "out_of_range",
    [CJ_SEAL_UNKNOWN_VERSION] = "unknown_version",
    [CJ_SEAL_UNKNOWN_SUITE] = "unknown_suite",
    [CJ_SEAL_BAD_BASE64] = "bad_base64",
    [CJ_SEAL_BAD_LENGTH] = "bad_length",
    [CJ_SEAL_LOW_ORDER_SHARE] = "low_order_share",
    [CJ_SEAL_AUTH_FAILED] = "auth_failed",
    [CJ_SEAL_BAD_PLAINTEXT] = "bad_plaintext",
    [CJ_SEAL_STALE_TIMESTAMP] = "stale_timestamp",
    [CJ_SEAL_BAD_ARGUMENT] = "bad_argument",
    [CJ_SEAL_NO_MEMORY] = "no_memory",
    [CJ_SEAL_INTERNAL] = "internal",
};

const char *cj_seal_reason_name(enum cj_seal_reason reason)
{
    if ((size_t)reason >= sizeof(reason_names) / sizeof(reason_names[0])) {
        return "unknown";
    }
    return reason_names[reason];
}

enum cj_status cj_seal_reason_status(enum cj_seal_reason reason)
{
    switch (reason) {
    case CJ_SEAL_OK:
        return CJ_OK;
    case CJ_SEAL_AUTH_FAILED:
    case CJ_SEAL_LOW_ORDER_SHARE:
        return CJ_ERR_CRYPTO;
    case CJ_SEAL_TOO_LARGE:
        return CJ_ERR_TOO_LARGE;
    case CJ_SEAL_NO_MEMORY:
        return CJ_ERR_NOMEM;
    case CJ_SEAL_INTERNAL:
        return CJ_ERR_INTERNAL;
    default:
        return CJ_ERR_INVALID;
    }
}

enum cj_status cj_seal_fail(enum cj_seal_reason *out,
                            enum cj_seal_reason reason)
{
    if (out != NULL) {
        *out = reason;
    }
    return cj_seal_reason_status(reason);
}

void cj_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void cj_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    }
}

void cj_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}

void cj_put_u16_string(uint8_t **p, const char *text, size_t len)
{
    cj_put_u16(*p, (uint16_t)len);
    memcpy(*p + 2, text, len);
    *p += 2 + len;
}

enum cj_status cj_seal_plaintext_encode(const struct cj_seal_plaintext *pt,
                                        uint8_t **out, size_t *out_len)
{
    uint8_t *buf;
    size_t len;

    *out = NULL;
    *out_len = 0;
    if (pt->token_len > CJ_SEAL_MAX_TOKEN_LEN ||
        pt->body_len > CJ_SEAL_MAX_PLAINTEXT_LEN) {
        return CJ_ERR_TOO_LARGE;
    }
    if ((pt->token_len > 0 && pt->token == NULL) ||
        (pt->body_len > 0 && pt->body == NULL)) {
        return CJ_ERR_INVALID;
    }
    len = CJ_SEAL_PLAINTEXT_HEADER_LEN + pt->token_len + pt->body_len;
    if (len > CJ_SEAL_MAX_PLAINTEXT_LEN) {
        return CJ_ERR_TOO_LARGE;
    }
    buf = malloc(len);
    if (buf == NULL) {
        return CJ_ERR_NOMEM;
    }
    cj_put_u64(buf, pt->ts_ms);
    cj_put_u16(buf + 8, (uint16_t)pt->token_len);
    if (pt->token_len > 0) {
        memcpy(buf + CJ_SEAL_PLAINTEXT_HEADER_LEN, pt->token, pt->token_len);
    }
    if (pt->body_len > 0) {
        memcpy(buf + CJ_SEAL_PLAINTEXT_HEADER_LEN + pt->token_len, pt->body,
               pt->body_len);
    }
    *out = buf;
    *out_len = len;
    return CJ_OK;
}

enum cj_status cj_seal_plaintext_decode(const uint8_t *buf, size_t len,
                                        struct cj_seal_plaintext *pt,
                                        enum cj_seal_reason *reason)
{
    size_t token_len;

    memset(pt, 0, sizeof(*pt));
    if (buf == NULL || len < CJ_SEAL_PLAINTEXT_HEADER_LEN) {
        return cj_seal_fail(reason, CJ_SEAL_BAD_PLAINTEXT);
    }
    if (len > CJ_SEAL_MAX_PLAINTEXT_LEN) {
        return cj_seal_fail(reason, CJ_SEAL_TOO_LARGE);
    }
    token_len = (size_t)buf[8] << 8 | buf[9];
    if (token_len > CJ_SEAL_MAX_TOKEN_LEN ||
        token_len > len - CJ_SEAL_PLAINTEXT_HEADER_LEN) {
        return cj_seal_fail(reason, CJ_SEAL_BAD_PLAINTEXT);
    }
    for (int i = 0; i < 8; i++) {
        pt->ts_ms = pt->ts_ms << 8 | buf[i];
    }
    pt->token_len = token_len;
    pt->token = token_len > 0 ? buf + CJ_SEAL_PLAINTEXT_HEADER_LEN : NULL;
    pt->body_len = len - CJ_SEAL_PLAINTEXT_HEADER_LEN - token_len;
    pt->body = pt->body_len > 0 ? buf + CJ_SEAL_PLAINTEXT_HEADER_LEN + token_len
                                : NULL;
    return cj_seal_fail(reason, CJ_SEAL_OK);
}

enum cj_status cj_seal_check_timestamp(uint64_t ts_ms, uint64_t now_ms,
                                       uint64_t window_ms,
                                       enum cj_seal_reason *reason)
{
    uint64_t skew = ts_ms > now_ms ? ts_ms - now_ms : now_ms - ts_ms;
    return cj_seal_fail(reason, skew <= window_ms ? CJ_SEAL_OK
                                                  : CJ_SEAL_STALE_TIMESTAMP);
}

bool cj_seal_method_valid(const char *method)
{
    size_t len =
        method == NULL ? 0 : strnlen(method, CJ_SEAL_MAX_METHOD_LEN + 1);
    if (len == 0 || len > CJ_SEAL_MAX_METHOD_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (method[i] < 'A' || method[i] > 'Z') {
            return false;
        }
    }
    return true;
}

bool cj_seal_path_valid(const char *path)
{
    size_t len = path == NULL ? 0 : strnlen(path, CJ_SEAL_MAX_PATH_LEN + 1);
    if (len == 0 || len > CJ_SEAL_MAX_PATH_LEN || path[0] != '/') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

char *cj_envelope_format(size_t *len, const char *format, ...)
{
    va_list args;
    int needed;
    char *out;

    va_start(args, format);
    needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (needed < 0) {
        return NULL;
    }
    out = malloc((size_t)needed + 1);
    if (out == NULL) {
        return NULL;
    }
    va_start(args, format);
    vsnprintf(out, (size_t)needed + 1, format, args);
    va_end(args);
    *len = (size_t)needed;
    return out;
}

char *cj_base64url_encode(const uint8_t *bytes, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(
        len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    sodium_bin2base64(out, cap, bytes, len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

enum cj_status cj_envelope_format_response(const uint8_t *nonce,
                                           size_t nonce_len, const uint8_t *ct,
                                           size_t ct_len, char **envelope,
                                           size_t *envelope_len)
{
    char *nonce_text = cj_base64url_encode(nonce, nonce_len);
    char *ct_text = cj_base64url_encode(ct, ct_len);
    enum cj_status result = CJ_ERR_NOMEM;

    if (nonce_text != NULL && ct_text != NULL) {
        *envelope = cj_envelope_format(
            envelope_len, "{\"v\":%u,\"nonce\":\"%s\",\"ct\":\"%s\"}",
            (unsigned)CJ_ENVELOPE_VERSION, nonce_text, ct_text);
        if (*envelope != NULL) {
            result = CJ_OK;
        }
    }
    free(nonce_text);
    free(ct_text);
    return result;
}

/* Decodes canonical base64url without padding into a new buffer of at most
 * max_len bytes. Returns a reason. */
static enum cj_seal_reason base64url_decode(const char *text, size_t text_len,
                                            size_t max_len, uint8_t **out,
                                            size_t *out_len)
{
    /* Every 4 characters carry 3 bytes and a tail of 2 or 3 carries 1 or
     * 2, so this leaves at least one spare byte for a terminating NUL. */
    size_t cap = text_len / 4 * 3 + 3;
    size_t len = 0;
    uint8_t *buf;

    *out = NULL;
    *out_len = 0;
    if (text_len / 4 * 3 > max_len + 3) {
        return CJ_SEAL_BAD_LENGTH;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        return CJ_SEAL_NO_MEMORY;
    }
    /* With b64_end NULL, libsodium fails on any character outside the
     * alphabet, on padding, and on non-zero leftover bits. */
    if (sodium_base642bin(buf, cap, text, text_len, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return CJ_SEAL_BAD_BASE64;
    }
    if (len > max_len) {
        cj_wipe(buf, len);
        free(buf);
        return CJ_SEAL_BAD_LENGTH;
    }
    *out = buf;
    *out_len = len;
    return CJ_SEAL_OK;
}

enum cj_status cj_seal_header_encode(const char *json, size_t json_len,
                                     char **value)
{
    *value = NULL;
    if (json == NULL || json_len == 0) {
        return CJ_ERR_INVALID;
    }
    if (sodium_base64_ENCODED_LEN(json_len,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) >
        CJ_SEAL_MAX_HEADER_LEN + 1) {
        return CJ_ERR_TOO_LARGE;
    }
    *value = cj_base64url_encode((const uint8_t *)json, json_len);
    return *value == NULL ? CJ_ERR_NOMEM : CJ_OK;
}

enum cj_status cj_seal_header_decode(const char *value, size_t value_len,
                                     char **json, size_t *json_len,
                                     enum cj_seal_reason *reason)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    enum cj_seal_reason why;

    *json = NULL;
    *json_len = 0;
    if (value == NULL || value_len == 0) {
        return cj_seal_fail(reason, CJ_SEAL_BAD_BASE64);
    }
    if (value_len > CJ_SEAL_MAX_HEADER_LEN) {
        return cj_seal_fail(reason, CJ_SEAL_TOO_LARGE);
    }
    why = base64url_decode(value, value_len, CJ_SEAL_MAX_HEADER_LEN, &bytes,
                           &len);
    if (why != CJ_SEAL_OK) {
        return cj_seal_fail(reason, why);
    }
    /* base64url_decode leaves at least one spare byte for the NUL. */
    bytes[len] = '\0';
    *json = (char *)bytes;
    *json_len = len;
    return cj_seal_fail(reason, CJ_SEAL_OK);
}

void cj_envelope_fields_clear(struct cj_envelope_field *fields,
                              size_t field_count)
{
    for (size_t i = 0; i < field_count; i++) {
        if (fields[i].bytes != NULL) {
            cj_wipe(fields[i].bytes, fields[i].bytes_len);
            free(fields[i].bytes);
            fields[i].bytes = NULL;
        }
        fields[i].bytes_len = 0;
    }
}

/* Maps a jansson load error to a reason. */
static enum cj_seal_reason json_error_reason(const json_error_t *err)
{
    switch (json_error_code(err)) {
    case json_error_duplicate_key:
        return CJ_SEAL_DUPLICATE_FIELD;
    case json_error_numeric_overflow:
        return CJ_SEAL_OUT_OF_RANGE;
    case json_error_wrong_type:
        return CJ_SEAL_NOT_OBJECT;
    case json_error_out_of_memory:
        return CJ_SEAL_NO_MEMORY;
    case json_error_end_of_input_expected:
        return CJ_SEAL_TRAILING_DATA;
    default:
        return CJ_SEAL_BAD_JSON;
    }
}

/* Reads one member value into its field description. */
static enum cj_seal_reason read_field(struct cj_envelope_field *field,
                                      json_t *value)
{
    if (field->type == CJ_ENVELOPE_FIELD_UINT) {
        if (json_is_real(value)) {
            return CJ_SEAL_NOT_INTEGER;
        }
        if (!json_is_integer(value)) {
            return CJ_SEAL_WRONG_TYPE;
        }
        json_int_t n = json_integer_value(value);
        if (n < 0 || (uint64_t)n < field->min || (uint64_t)n > field->max) {
            return CJ_SEAL_OUT_OF_RANGE;
        }
        field->number = (uint64_t)n;
        return CJ_SEAL_OK;
    }
    if (!json_is_string(value)) {
        return CJ_SEAL_WRONG_TYPE;
    }
    enum cj_seal_reason why =
        base64url_decode(json_string_value(value), json_string_length(value),
                         field->max, &field->bytes, &field->bytes_len);
    if (why == CJ_SEAL_OK && field->bytes_len < field->min) {
        why = CJ_SEAL_BAD_LENGTH;
    }
    return why;
}

/* Returns true when every byte of buf is JSON whitespace. */
static bool only_whitespace(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' &&
            buf[i] != '\r') {
            return false;
        }
    }
    return true;
}

enum cj_status cj_envelope_parse(const char *json, size_t json_len,
                                 struct cj_envelope_field *fields,
                                 size_t field_count,
                                 enum cj_seal_reason *reason)
{
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    json_error_t err;
    json_t *root = NULL;
    const char *key;
    json_t *value;

    for (size_t i = 0; i < field_count; i++) {
        fields[i].present = false;
        fields[i].bytes = NULL;
        fields[i].bytes_len = 0;
        fields[i].number = 0;
    }
    if (json == NULL || json_len == 0) {
        why = CJ_SEAL_BAD_JSON;
        goto out;
    }
    if (json_len > CJ_SEAL_MAX_ENVELOPE_LEN) {
        why = CJ_SEAL_TOO_LARGE;
        goto out;
    }
    /* The end-of-input check is ours, so that trailing bytes get their own
     * reason; duplicates are rejected so no member can be shadowed. */
    root = json_loadb(json, json_len,
                      JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &err);
    if (root == NULL) {
        why = json_error_reason(&err);
        goto out;
    }
    if (err.position < 0 || (size_t)err.position > json_len ||
        !only_whitespace(json + err.position, json_len - err.position)) {
        why = CJ_SEAL_TRAILING_DATA;
        goto out;
    }
    if (!json_is_object(root)) {
        why = CJ_SEAL_NOT_OBJECT;
        goto out;
    }
    json_object_foreach(root, key, value)
    {
        struct cj_envelope_field *field = NULL;
        for (size_t i = 0; i < field_count; i++) {
            if (strcmp(fields[i].name, key) == 0) {
                field = &fields[i];
                break;
            }
        }
        if (field == NULL) {
            why = CJ_SEAL_UNKNOWN_FIELD;
            goto out;
        }
        why = read_field(field, value);
        if (why != CJ_SEAL_OK) {
            goto out;
        }
        field->present = true;
    }
    for (size_t i = 0; i < field_count; i++) {
        if (!fields[i].present) {
            why = CJ_SEAL_MISSING_FIELD;
            goto out;
        }
    }
    why = CJ_SEAL_OK;
out:
    if (why != CJ_SEAL_OK) {
        cj_envelope_fields_clear(fields, field_count);
    }
    json_decref(root);
    return cj_seal_fail(reason, why);
}

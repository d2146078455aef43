/*
 * The generic JSON <-> protobuf-c converter: walks the message descriptors,
 * so it knows no message of cerrojo by name. The mapping rules are listed
 * in gw_json.h.
 */
#include "gw_json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_limits.h"

/* Longest enum value name the converter handles, in bytes. */
#define GW_JSON_ENUM_NAME_CHARS 128

/* Decimal digits of the largest 64-bit integer, with sign. */
#define GW_JSON_INT64_CHARS 21

static void gw_json_error(char *err, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void gw_json_error(char *err, size_t size, const char *format, ...)
{
    va_list args;

    if (err == NULL || size == 0) {
        return;
    }
    va_start(args, format);
    vsnprintf(err, size, format, args);
    va_end(args);
}

enum cj_status gw_json_check_depth(const char *text, size_t len,
                                   size_t depth_max)
{
    size_t depth = 0;
    bool in_string = false;
    bool escaped = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > depth_max) {
                return CJ_ERR_TOO_LARGE;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return CJ_OK;
}

/* Returns the client message format, with line and column, for a failed
 * parse. A \u0000 escape is valid JSON, so it gets its own message. */
static const char *gw_json_parse_message(const json_error_t *parse_error)
{
    switch (json_error_code(parse_error)) {
    case json_error_duplicate_key:
        return "duplicate member at line %d, column %d";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL (\\u0000) is not allowed in a string, at line %d, "
               "column %d";
    default:
        return "invalid JSON at line %d, column %d";
    }
}

enum cj_status gw_json_parse_object(const char *text, size_t len, json_t **out,
                                    char *err, size_t err_size)
{
    json_error_t parse_error;
    json_t *root = NULL;

    *out = NULL;
    if (gw_json_check_depth(text, len, GW_JSON_DEPTH_MAX) != CJ_OK) {
        gw_json_error(err, err_size, "JSON nesting is deeper than %d levels",
                      GW_JSON_DEPTH_MAX);
        return CJ_ERR_TOO_LARGE;
    }
    /* jansson rejects NUL inside strings unless JSON_ALLOW_NUL is given. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &parse_error);
    if (root == NULL) {
        /* parse_error.text may quote the input: report the position only. */
        gw_json_error(err, err_size, gw_json_parse_message(&parse_error),
                      parse_error.line, parse_error.column);
        return CJ_ERR_INVALID;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        gw_json_error(err, err_size, "the JSON body must be an object");
        return CJ_ERR_INVALID;
    }
    *out = root;
    return CJ_OK;
}

/* ---- enum names ---- */

/* Writes the UPPER_SNAKE form of a CamelCase type name plus "_". */
static void gw_json_enum_prefix(const char *type_name, char *buf, size_t size)
{
    size_t n = 0;
    size_t len = strlen(type_name);

    for (size_t i = 0; i < len && n + 2 < size; i++) {
        unsigned char c = (unsigned char)type_name[i];
        bool upper = isupper(c) != 0;

        if (upper && i > 0) {
            unsigned char prev = (unsigned char)type_name[i - 1];
            unsigned char next = (unsigned char)type_name[i + 1];
            bool boundary = islower(prev) || isdigit(prev) ||
                            (isupper(prev) && islower(next));
            if (boundary && n + 3 < size) {
                buf[n++] = '_';
            }
        }
        buf[n++] = (char)toupper(c);
    }
    buf[n++] = '_';
    buf[n] = '\0';
}

void gw_json_enum_name(const ProtobufCEnumDescriptor *desc,
                       const ProtobufCEnumValue *value, char *buf, size_t size)
{
    char prefix[GW_JSON_ENUM_NAME_CHARS];
    const char *name = value->name;
    size_t n = 0;

    gw_json_enum_prefix(desc->short_name, prefix, sizeof(prefix));
    if (strncmp(name, prefix, strlen(prefix)) == 0 &&
        name[strlen(prefix)] != '\0') {
        name += strlen(prefix);
    }
    for (; name[n] != '\0' && n + 1 < size; n++) {
        buf[n] = (char)tolower((unsigned char)name[n]);
    }
    buf[n] = '\0';
}

static const ProtobufCEnumValue *
gw_json_enum_find(const ProtobufCEnumDescriptor *desc, const char *text)
{
    char name[GW_JSON_ENUM_NAME_CHARS];

    for (unsigned i = 0; i < desc->n_values; i++) {
        gw_json_enum_name(desc, &desc->values[i], name, sizeof(name));
        if (strcmp(name, text) == 0) {
            return &desc->values[i];
        }
    }
    return NULL;
}

/* ---- field shapes ---- */

static bool gw_json_is_map_entry(const ProtobufCFieldDescriptor *field)
{
    const ProtobufCMessageDescriptor *entry;
    size_t name_len;

    if (field->type != PROTOBUF_C_TYPE_MESSAGE ||
        field->label != PROTOBUF_C_LABEL_REPEATED) {
        return false;
    }
    entry = field->descriptor;
    name_len = strlen(entry->name);
    return entry->n_fields == 2 && name_len > 5 &&
           strcmp(entry->name + name_len - 5, "Entry") == 0 &&
           entry->fields[0].id == 1 &&
           strcmp(entry->fields[0].name, "key") == 0 &&
           entry->fields[1].id == 2 &&
           strcmp(entry->fields[1].name, "value") == 0;
}

static size_t gw_json_element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static void *gw_json_member_ptr(void *message, unsigned offset)
{
    return (char *)message + offset;
}

static const void *gw_json_member_cptr(const void *message, unsigned offset)
{
    return (const char *)message + offset;
}

/* ---- JSON to protobuf ---- */

static enum cj_status
gw_json_to_message_at(const json_t *object,
                      const ProtobufCMessageDescriptor *desc,
                      const char *excluded_field, size_t depth,
                      ProtobufCMessage **out, char *err, size_t err_size);

/* Reads a JSON integer, or a decimal string when `allow_string`. */
static bool gw_json_read_signed(const json_t *value, bool allow_string,
                                long long min, long long max, long long *out)
{
    long long v;

    if (json_is_integer(value)) {
        v = json_integer_value(value);
    } else if (allow_string && json_is_string(value)) {
        const char *text = json_string_value(value);
        char *end = NULL;

        if (json_string_length(value) == 0 ||
            json_string_length(value) >= GW_JSON_INT64_CHARS ||
            !(isdigit((unsigned char)text[0]) || text[0] == '-')) {
            return false;
        }
        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno != 0 || *end != '\0') {
            return false;
        }
    } else {
        return false;
    }
    if (v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool gw_json_read_unsigned(const json_t *value, bool allow_string,
                                  unsigned long long max,
                                  unsigned long long *out)
{
    unsigned long long v;

    if (json_is_integer(value)) {
        if (json_integer_value(value) < 0) {
            return false;
        }
        v = (unsigned long long)json_integer_value(value);
    } else if (allow_string && json_is_string(value)) {
        const char *text = json_string_value(value);
        char *end = NULL;

        if (json_string_length(value) == 0 ||
            json_string_length(value) >= GW_JSON_INT64_CHARS ||
            !isdigit((unsigned char)text[0])) {
            return false;
        }
        errno = 0;
        v = strtoull(text, &end, 10);
        if (errno != 0 || *end != '\0') {
            return false;
        }
    } else {
        return false;
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

static enum cj_status gw_json_read_string(const json_t *value, char **out)
{
    size_t len;
    char *copy;

    if (!json_is_string(value)) {
        return CJ_ERR_INVALID;
    }
    len = json_string_length(value);
    if (len > GW_JSON_STRING_BYTES_MAX) {
        return CJ_ERR_TOO_LARGE;
    }
    /* A protobuf-c string is NUL-terminated; an inner NUL would cut it. */
    if (memchr(json_string_value(value), '\0', len) != NULL) {
        return CJ_ERR_INVALID;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        return CJ_ERR_NOMEM;
    }
    memcpy(copy, json_string_value(value), len + 1);
    *out = copy;
    return CJ_OK;
}

static enum cj_status gw_json_read_bytes(const json_t *value,
                                         ProtobufCBinaryData *out)
{
    size_t text_len;
    size_t cap;
    size_t bin_len = 0;
    const char *end = NULL;
    unsigned char *bin;

    if (!json_is_string(value)) {
        return CJ_ERR_INVALID;
    }
    text_len = json_string_length(value);
    cap = text_len / 4 * 3 + 3;
    if (cap > GW_JSON_STRING_BYTES_MAX + 3) {
        return CJ_ERR_TOO_LARGE;
    }
    bin = malloc(cap);
    if (bin == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (sodium_base642bin(bin, cap, json_string_value(value), text_len, NULL,
                          &bin_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != json_string_value(value) + text_len) {
        free(bin);
        return CJ_ERR_INVALID;
    }
    if (bin_len == 0) {
        free(bin);
        bin = NULL;
    }
    out->data = bin;
    out->len = bin_len;
    return CJ_OK;
}

/*
 * Stores one JSON value of a singular (non-repeated) kind at dst, a
 * location of the field's C type. Messages are allocated here.
 */
static enum cj_status gw_json_read_value(const ProtobufCFieldDescriptor *field,
                                         const json_t *value, size_t depth,
                                         void *dst, char *err, size_t err_size)
{
    long long s;
    unsigned long long u;
    enum cj_status status = CJ_ERR_INVALID;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!gw_json_read_signed(value, false, INT32_MIN, INT32_MAX, &s)) {
            goto type_error;
        }
        *(int32_t *)dst = (int32_t)s;
        return CJ_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!gw_json_read_signed(value, true, INT64_MIN, INT64_MAX, &s)) {
            goto type_error;
        }
        *(int64_t *)dst = (int64_t)s;
        return CJ_OK;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!gw_json_read_unsigned(value, false, UINT32_MAX, &u)) {
            goto type_error;
        }
        *(uint32_t *)dst = (uint32_t)u;
        return CJ_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!gw_json_read_unsigned(value, true, UINT64_MAX, &u)) {
            goto type_error;
        }
        *(uint64_t *)dst = (uint64_t)u;
        return CJ_OK;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(value)) {
            goto type_error;
        }
        *(float *)dst = (float)json_number_value(value);
        return CJ_OK;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(value)) {
            goto type_error;
        }
        *(double *)dst = json_number_value(value);
        return CJ_OK;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(value)) {
            goto type_error;
        }
        *(protobuf_c_boolean *)dst = json_is_true(value);
        return CJ_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev;

        if (!json_is_string(value)) {
            goto type_error;
        }
        ev = gw_json_enum_find(field->descriptor, json_string_value(value));
        if (ev == NULL) {
            gw_json_error(err, err_size, "member \"%s\" has an unknown value",
                          field->name);
            return CJ_ERR_INVALID;
        }
        *(int32_t *)dst = ev->value;
        return CJ_OK;
    }
    case PROTOBUF_C_TYPE_STRING:
        status = gw_json_read_string(value, (char **)dst);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        status = gw_json_read_bytes(value, (ProtobufCBinaryData *)dst);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!json_is_object(value)) {
            goto type_error;
        }
        return gw_json_to_message_at(value, field->descriptor, NULL, depth + 1,
                                     (ProtobufCMessage **)dst, err, err_size);
    }
    if (status == CJ_ERR_TOO_LARGE) {
        gw_json_error(err, err_size, "member \"%s\" is longer than %d bytes",
                      field->name, GW_JSON_STRING_BYTES_MAX);
    } else if (status == CJ_ERR_INVALID) {
        goto type_error;
    }
    return status;

type_error:
    gw_json_error(err, err_size, "member \"%s\" has the wrong type or range",
                  field->name);
    return CJ_ERR_INVALID;
}

/*
 * Rewrites the error of a scalar map value, which names the entry's
 * "value" member, to name the map the client sent. The key is left out
 * because it may be long or not valid UTF-8.
 */
static void gw_json_map_value_error(const ProtobufCFieldDescriptor *field,
                                    const ProtobufCFieldDescriptor *value_field,
                                    enum cj_status status, char *err,
                                    size_t err_size)
{
    if (value_field->type == PROTOBUF_C_TYPE_MESSAGE) {
        return;
    }
    if (status == CJ_ERR_TOO_LARGE) {
        gw_json_error(err, err_size,
                      "a value in member \"%s\" is longer than %d bytes",
                      field->name, GW_JSON_STRING_BYTES_MAX);
    } else if (status == CJ_ERR_INVALID) {
        gw_json_error(err, err_size,
                      "a value in member \"%s\" has the wrong type or range",
                      field->name);
    }
}

static enum cj_status gw_json_read_map(const ProtobufCFieldDescriptor *field,
                                       const json_t *value, size_t depth,
                                       void *message, char *err,
                                       size_t err_size)
{
    const ProtobufCMessageDescriptor *entry_desc = field->descriptor;
    const ProtobufCFieldDescriptor *key_field = &entry_desc->fields[0];
    const ProtobufCFieldDescriptor *value_field = &entry_desc->fields[1];
    size_t *count = gw_json_member_ptr(message, field->quantifier_offset);
    ProtobufCMessage ***entries = gw_json_member_ptr(message, field->offset);
    const char *key;
    json_t *item;

    if (!json_is_object(value)) {
        gw_json_error(err, err_size, "member \"%s\" must be an object",
                      field->name);
        return CJ_ERR_INVALID;
    }
    if (key_field->type != PROTOBUF_C_TYPE_STRING) {
        gw_json_error(err, err_size, "member \"%s\" is not supported",
                      field->name);
        return CJ_ERR_INTERNAL;
    }
    if (json_object_size(value) > GW_JSON_MEMBERS_MAX) {
        gw_json_error(err, err_size, "member \"%s\" has more than %d entries",
                      field->name, GW_JSON_MEMBERS_MAX);
        return CJ_ERR_TOO_LARGE;
    }
    if (json_object_size(value) == 0) {
        return CJ_OK;
    }
    *entries = calloc(json_object_size(value), sizeof(**entries));
    if (*entries == NULL) {
        return CJ_ERR_NOMEM;
    }
    /* The fields are a child object: entry messages sit one level down. */
    json_object_foreach((json_t *)value, key, item)
    {
        ProtobufCMessage *entry = calloc(1, entry_desc->sizeof_message);
        json_t *key_json;
        enum cj_status status;

        if (entry == NULL) {
            return CJ_ERR_NOMEM;
        }
        entry_desc->message_init(entry);
        (*entries)[(*count)++] = entry;
        key_json = json_string(key);
        if (key_json == NULL) {
            return CJ_ERR_NOMEM;
        }
        status = gw_json_read_string(
            key_json, gw_json_member_ptr(entry, key_field->offset));
        json_decref(key_json);
        if (status != CJ_OK) {
            gw_json_error(err, err_size, "member \"%s\" has an invalid key",
                          field->name);
            return status;
        }
        if (json_is_null(item)) {
            gw_json_error(err, err_size, "member \"%s\" has a null value",
                          field->name);
            return CJ_ERR_INVALID;
        }
        status = gw_json_read_value(
            value_field, item, depth + 1,
            gw_json_member_ptr(entry, value_field->offset), err, err_size);
        if (status != CJ_OK) {
            gw_json_map_value_error(field, value_field, status, err, err_size);
            return status;
        }
    }
    return CJ_OK;
}

static enum cj_status
gw_json_read_repeated(const ProtobufCFieldDescriptor *field,
                      const json_t *value, size_t depth, void *message,
                      char *err, size_t err_size)
{
    size_t *count = gw_json_member_ptr(message, field->quantifier_offset);
    void **array = gw_json_member_ptr(message, field->offset);
    size_t element_size = gw_json_element_size(field->type);
    size_t n = json_array_size(value);

    if (!json_is_array(value)) {
        gw_json_error(err, err_size, "member \"%s\" must be an array",
                      field->name);
        return CJ_ERR_INVALID;
    }
    if (n > GW_JSON_MEMBERS_MAX) {
        gw_json_error(err, err_size, "member \"%s\" has more than %d elements",
                      field->name, GW_JSON_MEMBERS_MAX);
        return CJ_ERR_TOO_LARGE;
    }
    if (n == 0) {
        return CJ_OK;
    }
    *array = calloc(n, element_size);
    if (*array == NULL) {
        return CJ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(value, i);
        enum cj_status status;

        if (json_is_null(item)) {
            gw_json_error(err, err_size, "member \"%s\" has a null element",
                          field->name);
            return CJ_ERR_INVALID;
        }
        status = gw_json_read_value(field, item, depth + 1,
                                    (char *)*array + i * element_size, err,
                                    err_size);
        /* Count the element even on failure: it may own memory to free. */
        (*count)++;
        if (status != CJ_OK) {
            return status;
        }
    }
    return CJ_OK;
}

static enum cj_status gw_json_read_field(const ProtobufCFieldDescriptor *field,
                                         const json_t *value, size_t depth,
                                         ProtobufCMessage *message, char *err,
                                         size_t err_size)
{
    enum cj_status status;

    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        if (gw_json_is_map_entry(field)) {
            return gw_json_read_map(field, value, depth, message, err,
                                    err_size);
        }
        return gw_json_read_repeated(field, value, depth, message, err,
                                     err_size);
    }
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = gw_json_member_ptr(message, field->quantifier_offset);

        if (*which != 0) {
            gw_json_error(err, err_size,
                          "member \"%s\" conflicts with another member of "
                          "its group",
                          field->name);
            return CJ_ERR_INVALID;
        }
        *which = field->id;
    }
    status = gw_json_read_value(field, value, depth,
                                gw_json_member_ptr(message, field->offset), err,
                                err_size);
    if (status == CJ_OK && field->label == PROTOBUF_C_LABEL_OPTIONAL &&
        field->quantifier_offset != 0 &&
        !(field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        field->type != PROTOBUF_C_TYPE_MESSAGE &&
        field->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)gw_json_member_ptr(message,
                                                  field->quantifier_offset) = 1;
    }
    return status;
}

static enum cj_status
gw_json_to_message_at(const json_t *object,
                      const ProtobufCMessageDescriptor *desc,
                      const char *excluded_field, size_t depth,
                      ProtobufCMessage **out, char *err, size_t err_size)
{
    ProtobufCMessage *message = NULL;
    enum cj_status status = CJ_ERR_INVALID;
    const char *key;
    json_t *value;

    *out = NULL;
    if (depth > GW_JSON_DEPTH_MAX) {
        gw_json_error(err, err_size, "JSON nesting is deeper than %d levels",
                      GW_JSON_DEPTH_MAX);
        return CJ_ERR_TOO_LARGE;
    }
    if (json_object_size(object) > GW_JSON_MEMBERS_MAX) {
        gw_json_error(err, err_size, "an object has more than %d members",
                      GW_JSON_MEMBERS_MAX);
        return CJ_ERR_TOO_LARGE;
    }
    message = calloc(1, desc->sizeof_message);
    if (message == NULL) {
        return CJ_ERR_NOMEM;
    }
    desc->message_init(message);

    json_object_foreach((json_t *)object, key, value)
    {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);

        /* The member name is input, so the message names only where it
         * was found, never the member or the protobuf type. */
        if (excluded_field != NULL && strcmp(key, excluded_field) == 0) {
            gw_json_error(err, err_size,
                          "\"%s\" is set by the request path and must not "
                          "appear in the body",
                          excluded_field);
            status = CJ_ERR_INVALID;
            goto out;
        }
        if (field == NULL) {
            gw_json_error(err, err_size,
                          depth <= 1 ? "the body has a member that this "
                                       "route does not accept"
                                     : "a nested object has a member that "
                                       "this route does not accept");
            status = CJ_ERR_INVALID;
            goto out;
        }
        if (json_is_null(value)) {
            continue;
        }
        status =
            gw_json_read_field(field, value, depth, message, err, err_size);
        if (status != CJ_OK) {
            goto out;
        }
    }
    status = CJ_OK;

out:
    if (status != CJ_OK) {
        gw_json_message_free(message);
        message = NULL;
    }
    *out = message;
    return status;
}

enum cj_status gw_json_to_message(const json_t *object,
                                  const ProtobufCMessageDescriptor *desc,
                                  const char *excluded_field,
                                  ProtobufCMessage **out, char *err,
                                  size_t err_size)
{
    if (!json_is_object(object)) {
        *out = NULL;
        gw_json_error(err, err_size, "the JSON body must be an object");
        return CJ_ERR_INVALID;
    }
    /* The outermost object is depth 1, as in gw_json_check_depth(). */
    return gw_json_to_message_at(object, desc, excluded_field, 1, out, err,
                                 err_size);
}

/* ---- protobuf to JSON ---- */

static json_t *gw_json_write_value(const ProtobufCFieldDescriptor *field,
                                   const void *src)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)src);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)src);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)src);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)src;
        char text[GW_JSON_INT64_CHARS + 1];

        if (v <= (uint64_t)INT64_MAX) {
            return json_integer((json_int_t)v);
        }
        snprintf(text, sizeof(text), "%" PRIu64, v);
        return json_string(text);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)src);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)src);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            field->descriptor, *(const int32_t *)src);
        char name[GW_JSON_ENUM_NAME_CHARS];

        if (ev == NULL) {
            return NULL;
        }
        gw_json_enum_name(field->descriptor, ev, name, sizeof(name));
        return json_string(name);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = *(char *const *)src;

        return json_string(text == NULL ? "" : text);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bin = src;
        size_t size = sodium_base64_encoded_len(
            bin->len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *text = malloc(size);
        json_t *result;

        if (text == NULL) {
            return NULL;
        }
        sodium_bin2base64(text, size, bin->data, bin->len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        result = json_string(text);
        free(text);
        return result;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return gw_json_from_message(*(ProtobufCMessage *const *)src);
    }
    return NULL;
}

static json_t *gw_json_write_map(const ProtobufCFieldDescriptor *field,
                                 const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *entry_desc = field->descriptor;
    size_t count =
        *(const size_t *)gw_json_member_cptr(message, field->quantifier_offset);
    ProtobufCMessage *const *entries =
        *(ProtobufCMessage *const *const *)gw_json_member_cptr(message,
                                                               field->offset);
    json_t *object = json_object();

    if (object == NULL ||
        entry_desc->fields[0].type != PROTOBUF_C_TYPE_STRING) {
        json_decref(object);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const char *key = *(char *const *)gw_json_member_cptr(
            entries[i], entry_desc->fields[0].offset);
        json_t *value = gw_json_write_value(
            &entry_desc->fields[1],
            gw_json_member_cptr(entries[i], entry_desc->fields[1].offset));

        if (value == NULL || key == NULL ||
            json_object_set_new(object, key, value) != 0) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

static json_t *gw_json_write_repeated(const ProtobufCFieldDescriptor *field,
                                      const ProtobufCMessage *message)
{
    size_t count =
        *(const size_t *)gw_json_member_cptr(message, field->quantifier_offset);
    const char *array =
        *(const char *const *)gw_json_member_cptr(message, field->offset);
    size_t element_size = gw_json_element_size(field->type);
    json_t *result = json_array();

    if (result == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *value = gw_json_write_value(field, array + i * element_size);

        if (value == NULL || json_array_append_new(result, value) != 0) {
            json_decref(result);
            return NULL;
        }
    }
    return result;
}

/* True when the field holds nothing to write (see the rules in the header). */
static bool gw_json_field_absent(const ProtobufCFieldDescriptor *field,
                                 const ProtobufCMessage *message)
{
    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        return false;
    }
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *)gw_json_member_cptr(
                   message, field->quantifier_offset) != field->id;
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
        return *(ProtobufCMessage *const *)gw_json_member_cptr(
                   message, field->offset) == NULL;
    }
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL &&
        field->quantifier_offset != 0 &&
        field->type != PROTOBUF_C_TYPE_STRING) {
        return !*(const protobuf_c_boolean *)gw_json_member_cptr(
            message, field->quantifier_offset);
    }
    return false;
}

json_t *gw_json_from_message(const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *desc;
    json_t *object;

    if (message == NULL) {
        return NULL;
    }
    desc = message->descriptor;
    object = json_object();
    if (object == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        json_t *value;

        if (gw_json_field_absent(field, message)) {
            continue;
        }
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            value = gw_json_is_map_entry(field)
                        ? gw_json_write_map(field, message)
                        : gw_json_write_repeated(field, message);
        } else {
            value = gw_json_write_value(
                field, gw_json_member_cptr(message, field->offset));
        }
        if (value == NULL ||
            json_object_set_new(object, field->name, value) != 0) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

/* ---- wiping free ---- */

static void gw_json_wipe_value(const ProtobufCFieldDescriptor *field, void *src)
{
    if (field->type == PROTOBUF_C_TYPE_STRING) {
        char *text = *(char **)src;

        /* The default value is a shared constant, never a copy of input. */
        if (text != NULL && text != field->default_value &&
            text != protobuf_c_empty_string) {
            sodium_memzero(text, strlen(text));
        }
    } else if (field->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData *bin = src;

        if (bin->data != NULL) {
            sodium_memzero(bin->data, bin->len);
        }
    }
}

static void gw_json_wipe(ProtobufCMessage *message);

static void gw_json_wipe_field(const ProtobufCFieldDescriptor *field,
                               ProtobufCMessage *message)
{
    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t count =
            *(size_t *)gw_json_member_ptr(message, field->quantifier_offset);
        char *array = *(char **)gw_json_member_ptr(message, field->offset);
        size_t element_size = gw_json_element_size(field->type);

        for (size_t i = 0; array != NULL && i < count; i++) {
            if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
                gw_json_wipe(*(ProtobufCMessage **)(array + i * element_size));
            } else {
                gw_json_wipe_value(field, array + i * element_size);
            }
        }
        return;
    }
    if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(uint32_t *)gw_json_member_ptr(message, field->quantifier_offset) !=
            field->id) {
        return;
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
        gw_json_wipe(
            *(ProtobufCMessage **)gw_json_member_ptr(message, field->offset));
        return;
    }
    gw_json_wipe_value(field, gw_json_member_ptr(message, field->offset));
}

static void gw_json_wipe(ProtobufCMessage *message)
{
    if (message == NULL) {
        return;
    }
    for (unsigned i = 0; i < message->descriptor->n_fields; i++) {
        gw_json_wipe_field(&message->descriptor->fields[i], message);
    }
}

void gw_json_message_free(ProtobufCMessage *message)
{
    if (message == NULL) {
        return;
    }
    gw_json_wipe(message);
    protobuf_c_message_free_unpacked(message, NULL);
}

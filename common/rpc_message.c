/* Byte buffer and protobuf-c conversions, and message wiping. */
#include "rpc_message.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <sodium.h>

/* Protobuf wire types (the low 3 bits of a field key). */
#define CJ_WIRE_VARINT           0
#define CJ_WIRE_FIXED64          1
#define CJ_WIRE_LENGTH_DELIMITED 2
#define CJ_WIRE_FIXED32          5
/* Nesting depth of messages that the NUL scan follows. No cerrojo message
 * nests that deep, so deeper bytes are rejected. */
#define CJ_RPC_MESSAGE_MAX_DEPTH 32

/* Copies every slice of `buffer` into one malloc'ed block of *len bytes. */
static enum cj_status buffer_flatten(grpc_byte_buffer *buffer, size_t max_bytes,
                                     uint8_t **out, size_t *len)
{
    enum cj_status result = CJ_ERR_INVALID;
    grpc_byte_buffer_reader reader;
    grpc_slice slice;
    size_t total = grpc_byte_buffer_length(buffer);
    uint8_t *data = NULL;
    size_t pos = 0;
    bool reader_open = false;

    if (total > max_bytes) {
        result = CJ_ERR_TOO_LARGE;
        goto out;
    }
    data = malloc(total > 0 ? total : 1);
    if (data == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    if (!grpc_byte_buffer_reader_init(&reader, buffer)) {
        goto out;
    }
    reader_open = true;
    while (grpc_byte_buffer_reader_next(&reader, &slice) != 0) {
        size_t n = GRPC_SLICE_LENGTH(slice);
        if (n > total - pos) {
            grpc_slice_unref(slice);
            goto out;
        }
        memcpy(data + pos, GRPC_SLICE_START_PTR(slice), n);
        pos += n;
        grpc_slice_unref(slice);
    }
    *out = data;
    *len = pos;
    data = NULL;
    result = CJ_OK;
out:
    if (reader_open) {
        grpc_byte_buffer_reader_destroy(&reader);
    }
    if (data != NULL) {
        sodium_memzero(data, total);
        free(data);
    }
    return result;
}

/* Reads a base-128 varint at *p, before end, and moves *p past it. */
static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t value = 0;

    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *out = value;
            return true;
        }
    }
    return false;
}

enum wire_scan { WIRE_CLEAN, WIRE_NUL, WIRE_TOO_DEEP, WIRE_MALFORMED };

/*
 * Walks the serialized `descriptor` message in [p, end) and looks for a
 * NUL byte in its string fields, nested messages included. Malformed bytes
 * are left to protobuf-c to reject.
 */
static enum wire_scan wire_scan_strings(const ProtobufCMessageDescriptor *d,
                                        const uint8_t *p, const uint8_t *end,
                                        unsigned depth, const char **field)
{
    while (p < end) {
        uint64_t key;
        uint64_t value;
        const ProtobufCFieldDescriptor *f = NULL;

        if (!wire_varint(&p, end, &key)) {
            return WIRE_MALFORMED;
        }
        if ((key >> 3) <= UINT32_MAX) {
            f = protobuf_c_message_descriptor_get_field(d,
                                                        (unsigned)(key >> 3));
        }
        switch (key & 7) {
        case CJ_WIRE_VARINT:
            if (!wire_varint(&p, end, &value)) {
                return WIRE_MALFORMED;
            }
            break;
        case CJ_WIRE_FIXED64:
        case CJ_WIRE_FIXED32: {
            size_t width = (key & 7) == CJ_WIRE_FIXED64 ? 8 : 4;
            if ((size_t)(end - p) < width) {
                return WIRE_MALFORMED;
            }
            p += width;
            break;
        }
        case CJ_WIRE_LENGTH_DELIMITED:
            if (!wire_varint(&p, end, &value) || value > (uint64_t)(end - p)) {
                return WIRE_MALFORMED;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
                memchr(p, '\0', (size_t)value) != NULL) {
                *field = f->name;
                return WIRE_NUL;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth >= CJ_RPC_MESSAGE_MAX_DEPTH) {
                    return WIRE_TOO_DEEP;
                }
                enum wire_scan nested = wire_scan_strings(
                    f->descriptor, p, p + value, depth + 1, field);
                if (nested != WIRE_CLEAN) {
                    /* The caller knows the request's own fields, not the
                     * entries of a map or nested message. */
                    *field = f->name;
                    return nested;
                }
            }
            p += value;
            break;
        default: /* groups, long deprecated: protobuf-c decides */
            return WIRE_MALFORMED;
        }
    }
    return WIRE_CLEAN;
}

/*
 * Unpacks len bytes at data, unless a string field contains a NUL byte.
 * protobuf-c keeps strings as C strings, so every check after it would see
 * the value cut at the NUL while the caller sent more.
 */
static enum cj_status unpack_flat(const ProtobufCMessageDescriptor *descriptor,
                                  const uint8_t *data, size_t len,
                                  ProtobufCMessage **out,
                                  const char **nul_field)
{
    const char *field = NULL;
    enum wire_scan scan =
        wire_scan_strings(descriptor, data, data + len, 0, &field);

    if (scan == WIRE_NUL && nul_field != NULL) {
        *nul_field = field;
    }
    if (scan == WIRE_NUL || scan == WIRE_TOO_DEEP) {
        return CJ_ERR_INVALID;
    }
    *out = protobuf_c_message_unpack(descriptor, NULL, len, data);
    return *out != NULL ? CJ_OK : CJ_ERR_INVALID;
}

enum cj_status cj_rpc_message_unpack(
    grpc_byte_buffer *buffer, const ProtobufCMessageDescriptor *descriptor,
    size_t max_bytes, ProtobufCMessage **out, const char **nul_field)
{
    enum cj_status result;
    uint8_t *data = NULL;
    size_t len = 0;

    *out = NULL;
    if (nul_field != NULL) {
        *nul_field = NULL;
    }
    /* One uncompressed slice, the usual case for a small message, is
     * parsed in place, which saves a malloc, a copy and a wipe. */
    if (buffer->type == GRPC_BB_RAW &&
        buffer->data.raw.compression == GRPC_COMPRESS_NONE &&
        buffer->data.raw.slice_buffer.count == 1) {
        const grpc_slice *slice = &buffer->data.raw.slice_buffer.slices[0];
        if (GRPC_SLICE_LENGTH(*slice) > max_bytes) {
            return CJ_ERR_TOO_LARGE;
        }
        return unpack_flat(descriptor, GRPC_SLICE_START_PTR(*slice),
                           GRPC_SLICE_LENGTH(*slice), out, nul_field);
    }
    result = buffer_flatten(buffer, max_bytes, &data, &len);
    if (result != CJ_OK) {
        goto out;
    }
    result = unpack_flat(descriptor, data, len, out, nul_field);
out:
    if (data != NULL) {
        sodium_memzero(data, len);
        free(data);
    }
    return result;
}

static void wipe_and_free(void *data, size_t len)
{
    sodium_memzero(data, len);
    free(data);
}

enum cj_status cj_rpc_message_pack(const ProtobufCMessage *message,
                                   size_t max_bytes, grpc_byte_buffer **out)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *data;

    *out = NULL;
    if (len > max_bytes) {
        return CJ_ERR_TOO_LARGE;
    }
    data = malloc(len > 0 ? len : 1);
    if (data == NULL) {
        return CJ_ERR_NOMEM;
    }
    protobuf_c_message_pack(message, data);
    /* The slice owns data from here and wipes it when gRPC drops it. */
    grpc_slice slice = grpc_slice_new_with_len(data, len, wipe_and_free);
    *out = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return CJ_OK;
}

/* Wipes one value of a string, bytes or message field at `member`. */
static void wipe_value(const ProtobufCFieldDescriptor *field, void *member)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *text = *(char **)member;
        /* protobuf-c points unset strings at a shared read-only "". */
        if (text != NULL && text[0] != '\0') {
            sodium_memzero(text, strlen(text));
        }
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bytes = member;
        if (bytes->data != NULL && bytes->len > 0) {
            sodium_memzero(bytes->data, bytes->len);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        cj_rpc_message_wipe(*(ProtobufCMessage **)member);
        break;
    default:
        break;
    }
}

/* Returns whether a oneof member `field` is the one currently set. */
static bool oneof_member_set(const ProtobufCMessage *message,
                             const ProtobufCFieldDescriptor *field)
{
    const uint32_t *which =
        (const uint32_t *)(const void *)((const char *)message +
                                         field->quantifier_offset);
    return *which == field->id;
}

void cj_rpc_message_wipe(ProtobufCMessage *message)
{
    if (message == NULL) {
        return;
    }
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        char *member = (char *)message + field->offset;
        if (field->type != PROTOBUF_C_TYPE_STRING &&
            field->type != PROTOBUF_C_TYPE_BYTES &&
            field->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
            !oneof_member_set(message, field)) {
            continue;
        }
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count =
                *(size_t *)(void *)((char *)message + field->quantifier_offset);
            char *array = *(char **)(void *)member;
            size_t step = field->type == PROTOBUF_C_TYPE_BYTES
                              ? sizeof(ProtobufCBinaryData)
                              : sizeof(void *);
            for (size_t k = 0; array != NULL && k < count; k++) {
                wipe_value(field, array + k * step);
            }
        } else {
            wipe_value(field, member);
        }
    }
}

void cj_rpc_message_free(ProtobufCMessage *message)
{
    if (message == NULL) {
        return;
    }
    cj_rpc_message_wipe(message);
    protobuf_c_message_free_unpacked(message, NULL);
}

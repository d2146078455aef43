/* Byte buffer and protobuf-c conversions, and message wiping. */
#include "rpc_message.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <sodium.h>

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

enum cj_status
cj_rpc_message_unpack(grpc_byte_buffer *buffer,
                      const ProtobufCMessageDescriptor *descriptor,
                      size_t max_bytes, ProtobufCMessage **out)
{
    enum cj_status result;
    uint8_t *data = NULL;
    size_t len = 0;

    *out = NULL;
    /* One uncompressed slice, the usual case for a small message, is
     * parsed in place, which saves a malloc, a copy and a wipe. */
    if (buffer->type == GRPC_BB_RAW &&
        buffer->data.raw.compression == GRPC_COMPRESS_NONE &&
        buffer->data.raw.slice_buffer.count == 1) {
        const grpc_slice *slice = &buffer->data.raw.slice_buffer.slices[0];
        if (GRPC_SLICE_LENGTH(*slice) > max_bytes) {
            return CJ_ERR_TOO_LARGE;
        }
        *out = protobuf_c_message_unpack(descriptor, NULL,
                                         GRPC_SLICE_LENGTH(*slice),
                                         GRPC_SLICE_START_PTR(*slice));
        return *out != NULL ? CJ_OK : CJ_ERR_INVALID;
    }
    result = buffer_flatten(buffer, max_bytes, &data, &len);
    if (result != CJ_OK) {
        goto out;
    }
    *out = protobuf_c_message_unpack(descriptor, NULL, len, data);
    result = *out != NULL ? CJ_OK : CJ_ERR_INVALID;
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

/*
 * Conversions between gRPC byte buffers and protobuf-c messages, shared by
 * the server and the client, and wiping of a message's string and bytes
 * fields before it is freed.
 */
#ifndef CJ_RPC_MESSAGE_H
#define CJ_RPC_MESSAGE_H

#include <stddef.h>

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

#include "status.h"

/*
 * Unpacks `buffer` as a `descriptor` message into *out (free it with
 * cj_rpc_message_free). Returns CJ_ERR_TOO_LARGE above `max_bytes`,
 * CJ_ERR_INVALID when the bytes do not parse or a string field, in any
 * nested message, contains a NUL byte. In that last case *nul_field (when
 * nul_field is not NULL) names the message's own field that contains it,
 * and it is NULL otherwise. The
 * flat copy of the bytes is wiped before it is freed.
 */
CJ_WARN_UNUSED enum cj_status cj_rpc_message_unpack(
    grpc_byte_buffer *buffer, const ProtobufCMessageDescriptor *descriptor,
    size_t max_bytes, ProtobufCMessage **out, const char **nul_field);

/*
 * Packs `message` into a new byte buffer (*out, owned by the caller until
 * handed to gRPC). The packed bytes are wiped when gRPC releases them.
 * Returns CJ_ERR_TOO_LARGE above `max_bytes`.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_message_pack(const ProtobufCMessage *message, size_t max_bytes,
                    grpc_byte_buffer **out);

/*
 * Overwrites with zeros every string and bytes field of `message`, sub-
 * messages and repeated fields included. Accepts NULL.
 */
void cj_rpc_message_wipe(ProtobufCMessage *message);

/* Wipes, then frees with protobuf_c_message_free_unpacked; accepts NULL. */
void cj_rpc_message_free(ProtobufCMessage *message);

#endif

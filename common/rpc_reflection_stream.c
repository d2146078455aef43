/*
 * The ServerReflectionInfo bidirectional stream, served on the v1alpha and
 * v1 paths by one state machine: read a request, send its response together
 * with the next read, and finish with OK once the client half-closes.
 */
#include "rpc_internal.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>

#include "log.h"

/* Largest reflection request accepted, in bytes. */
#define CJ_REFL_REQUEST_MAX_BYTES (64 * 1024)

enum refl_phase {
    REFL_REQUESTED, /* waiting for a call */
    REFL_READING,   /* a batch with RECV_MESSAGE in flight */
    REFL_FINISHING, /* the final status batch in flight */
};

struct refl_stream {
    struct cj_rpc_tag tag;
    struct cj_rpc_server *server;
    int version_index; /* 0 v1alpha, 1 v1 */
    enum refl_phase phase;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *received;
    grpc_byte_buffer *sending;
    grpc_slice status_details;
    bool status_details_set;
    int cancelled;
};

static void stream_free(struct refl_stream *s)
{
    struct cj_rpc_server *server = s->server;

    if (s->received != NULL) {
        grpc_byte_buffer_destroy(s->received);
    }
    if (s->sending != NULL) {
        grpc_byte_buffer_destroy(s->sending);
    }
    if (s->status_details_set) {
        grpc_slice_unref(s->status_details);
    }
    grpc_metadata_array_destroy(&s->request_md);
    if (s->call != NULL) {
        grpc_call_unref(s->call);
    }
    free(s);
    cj_rpc_live_remove(server);
}

static void stream_finish(struct refl_stream *s, grpc_status_code code,
                          const char *message)
{
    grpc_op ops[2];

    memset(ops, 0, sizeof(ops));
    s->phase = REFL_FINISHING;
    s->status_details = grpc_slice_from_copied_string(message);
    s->status_details_set = true;
    ops[0].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[0].data.send_status_from_server.status = code;
    ops[0].data.send_status_from_server.status_details = &s->status_details;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &s->cancelled;
    if (grpc_call_start_batch(s->call, ops, 2, &s->tag, NULL) != GRPC_CALL_OK) {
        stream_free(s);
    }
}

/* Turns the received request into s->sending; false when it is invalid. */
static bool stream_answer(struct refl_stream *s)
{
    grpc_byte_buffer_reader reader;
    grpc_slice request;
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    bool ok = false;

    if (grpc_byte_buffer_length(s->received) > CJ_REFL_REQUEST_MAX_BYTES ||
        !grpc_byte_buffer_reader_init(&reader, s->received)) {
        return false;
    }
    request = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    if (cj_rpc_reflection_answer(
            s->server->reflection, GRPC_SLICE_START_PTR(request),
            GRPC_SLICE_LENGTH(request), &answer, &answer_len) == CJ_OK) {
        grpc_slice slice = grpc_slice_new(answer, answer_len, free);
        s->sending = grpc_raw_byte_buffer_create(&slice, 1);
        grpc_slice_unref(slice);
        ok = true;
    }
    grpc_slice_unref(request);
    return ok;
}

/* Starts a batch of the given ops plus RECV_MESSAGE. */
static void stream_read(struct refl_stream *s, grpc_op *ops, size_t n)
{
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &s->received;
    n++;
    s->phase = REFL_READING;
    if (grpc_call_start_batch(s->call, ops, n, &s->tag, NULL) != GRPC_CALL_OK) {
        stream_free(s);
    }
}

static void on_read(struct refl_stream *s, bool ok)
{
    grpc_op ops[2];

    memset(ops, 0, sizeof(ops));
    if (s->sending != NULL) {
        grpc_byte_buffer_destroy(s->sending);
        s->sending = NULL;
    }
    if (!ok) {
        stream_free(s); /* cancelled or failed; no status can be sent */
        return;
    }
    if (s->received == NULL) {
        stream_finish(s, GRPC_STATUS_OK, "");
        return;
    }
    bool answered = stream_answer(s);
    grpc_byte_buffer_destroy(s->received);
    s->received = NULL;
    if (!answered) {
        stream_finish(s, GRPC_STATUS_INVALID_ARGUMENT,
                      "request is not a valid ServerReflectionRequest");
        return;
    }
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = s->sending;
    stream_read(s, ops, 1);
}

static void on_stream_event(struct cj_rpc_tag *tag, bool ok)
{
    struct refl_stream *s = (struct refl_stream *)(void *)tag;
    struct cj_rpc_server *server = s->server;
    char identity[CJ_RPC_IDENTITY_MAX_LEN + 1];
    grpc_op ops[2];

    switch (s->phase) {
    case REFL_REQUESTED:
        if (!ok) {
            stream_free(s);
            return;
        }
        if (cj_rpc_accepting(server)) {
            cj_rpc_reflection_post(server, s->version_index);
        }
        if (!server->plaintext &&
            cj_rpc_peer_identity(s->call, identity) != CJ_OK) {
            s->phase = REFL_FINISHING;
            s->status_details_set = true;
            if (!cj_rpc_send_status_only(
                    s->call, GRPC_STATUS_UNAUTHENTICATED,
                    "no valid client certificate for server reflection",
                    &s->status_details, &s->cancelled, &s->tag)) {
                stream_free(s);
            }
            return;
        }
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        stream_read(s, ops, 1);
        return;
    case REFL_READING:
        on_read(s, ok);
        return;
    case REFL_FINISHING:
        stream_free(s);
        return;
    }
}

void cj_rpc_reflection_post(struct cj_rpc_server *server, int version_index)
{
    struct refl_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return;
    }
    s->tag.complete = on_stream_event;
    s->server = server;
    s->version_index = version_index;
    s->phase = REFL_REQUESTED;
    grpc_metadata_array_init(&s->request_md);
    cj_rpc_live_add(server);
    if (grpc_server_request_registered_call(
            server->server, server->reflection_handles[version_index], &s->call,
            &s->deadline, &s->request_md, NULL, server->cq, server->cq,
            &s->tag) != GRPC_CALL_OK) {
        stream_free(s);
    }
}

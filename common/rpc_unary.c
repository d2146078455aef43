/*
 * One unary call from request slot to reply: access check, deadline,
 * caller context, request unpacking, the handler (on a queue thread, under
 * the worker limit when it blocks) and the single reply batch. Also replies
 * UNIMPLEMENTED to calls of unregistered methods.
 *
 * A registered call receives its close (RECV_CLOSE_ON_SERVER) in a batch of
 * its own, started when the call arrives, so that a client's cancellation
 * is seen while the handler waits or runs. The call struct then has two
 * owners, that batch and the reply, and the last of them to complete
 * frees it.
 */
#include "rpc_internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "rpc_message.h"

struct cj_rpc_call {
    struct cj_rpc_tag tag;
    struct cj_rpc_server *server;
    struct cj_rpc_entry *entry; /* NULL for an unregistered method */

    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *request_payload;
    grpc_call_details details; /* unregistered methods only */

    char identity[CJ_RPC_IDENTITY_MAX_LEN + 1];
    struct cj_caller_context caller;
    char request_id[CJ_CALLER_REQUEST_ID_MAX_LEN + 1];
    char error[CJ_RPC_ERROR_MAX_LEN + 1];
    char unregistered_path[256];
    ProtobufCMessage *request;

    grpc_byte_buffer *response_payload;
    grpc_slice status_details;
    bool status_details_set;
    /* Decimal seconds for CJ_MD_RETRY_AFTER; "" when none is sent. The
     * trailer's slices point here, so it lives as long as the call. */
    char retry_after[24];
    grpc_metadata trailer;
    int cancelled; /* written by the core when the close completes */

    struct cj_rpc_tag close_tag;
    bool close_posted;       /* the close batch started on arrival */
    atomic_bool client_gone; /* the close completed as cancelled */
    atomic_int refs;         /* the reply, plus the close batch if posted */
};

const char *cj_rpc_call_path(const struct cj_rpc_call *call)
{
    return call->entry != NULL ? call->entry->method->path
                               : call->unregistered_path;
}

const char *cj_rpc_call_identity(const struct cj_rpc_call *call)
{
    return call->identity;
}

const struct cj_caller_context *
cj_rpc_call_caller(const struct cj_rpc_call *call)
{
    return &call->caller;
}

static void request_id_generate(char out[CJ_CALLER_REQUEST_ID_MAX_LEN + 1])
{
    unsigned char random_bytes[CJ_RPC_REQUEST_ID_BYTES];
    randombytes_buf(random_bytes, sizeof(random_bytes));
    sodium_bin2hex(out, CJ_CALLER_REQUEST_ID_MAX_LEN + 1, random_bytes,
                   sizeof(random_bytes));
}

/*
 * Returns the call's request id, generating one on first use when the
 * caller gave none. Most calls never log, so generating it lazily saves a
 * getrandom() system call on each of them.
 */
static const char *call_request_id(struct cj_rpc_call *call)
{
    if (call->request_id[0] == '\0') {
        request_id_generate(call->request_id);
    }
    return call->request_id;
}

const char *cj_rpc_call_request_id(const struct cj_rpc_call *call)
{
    /* Every call struct is allocated writable, and handlers get a const view.
     */
    return call_request_id((struct cj_rpc_call *)call);
}

int64_t cj_rpc_call_remaining_ms(const struct cj_rpc_call *call)
{
    if (gpr_time_cmp(call->deadline,
                     gpr_inf_future(call->deadline.clock_type)) == 0) {
        return INT64_MAX;
    }
    gpr_timespec left =
        gpr_time_sub(call->deadline, gpr_now(call->deadline.clock_type));
    int64_t ms = gpr_time_to_millis(left);
    return ms > 0 ? ms : 0;
}

void cj_rpc_call_set_error(struct cj_rpc_call *call, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vsnprintf(call->error, sizeof(call->error), format, ap);
    va_end(ap);
}

void cj_rpc_call_set_retry_after(struct cj_rpc_call *call, int64_t seconds)
{
    if (seconds <= 0) {
        call->retry_after[0] = '\0';
        return;
    }
    if (seconds > CJ_RETRY_AFTER_MAX_S) {
        seconds = CJ_RETRY_AFTER_MAX_S;
    }
    snprintf(call->retry_after, sizeof(call->retry_after), "%lld",
             (long long)seconds);
}

static void call_free(struct cj_rpc_call *call)
{
    struct cj_rpc_server *server = call->server;

    cj_rpc_message_free(call->request);
    if (call->request_payload != NULL) {
        grpc_byte_buffer_destroy(call->request_payload);
    }
    if (call->response_payload != NULL) {
        grpc_byte_buffer_destroy(call->response_payload);
    }
    if (call->status_details_set) {
        grpc_slice_unref(call->status_details);
    }
    grpc_metadata_array_destroy(&call->request_md);
    if (call->entry == NULL) {
        grpc_call_details_destroy(&call->details);
    }
    if (call->call != NULL) {
        grpc_call_unref(call->call);
    }
    sodium_memzero(&call->caller, sizeof(call->caller));
    free(call);
    cj_rpc_live_remove(server);
}

/* Drops one owner; the last one frees the call. */
static void call_release(struct cj_rpc_call *call)
{
    if (atomic_fetch_sub(&call->refs, 1) == 1) {
        call_free(call);
    }
}

static void on_reply_sent(struct cj_rpc_tag *tag, bool ok)
{
    (void)ok; /* the call is over either way; nothing to retry */
    call_release((struct cj_rpc_call *)(void *)tag);
}

static void on_call_closed(struct cj_rpc_tag *tag, bool ok)
{
    struct cj_rpc_call *call =
        CJ_CONTAINER_OF(tag, struct cj_rpc_call, close_tag);

    /* The core sets `cancelled` when the call ended before its status was
     * sent: the client cancelled, its deadline passed, or the connection
     * broke. A failed batch means the call is gone too. */
    if (!ok || call->cancelled != 0) {
        atomic_store(&call->client_gone, true);
    }
    call_release(call);
}

/*
 * Starts receiving the call's close in a batch of its own. The second
 * reference is taken before the batch starts, because for a call already
 * cancelled it can complete on another queue thread at once. When the
 * batch cannot start, the reply receives the close instead.
 */
static void call_watch_close(struct cj_rpc_call *call)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &call->cancelled;
    call->close_tag.complete = on_call_closed;
    atomic_store(&call->refs, 2);
    call->close_posted = true;
    if (grpc_call_start_batch(call->call, &op, 1, &call->close_tag, NULL) !=
        GRPC_CALL_OK) {
        atomic_store(&call->refs, 1);
        call->close_posted = false;
    }
}

bool cj_rpc_call_cancelled(const struct cj_rpc_call *call)
{
    return atomic_load(&call->client_gone);
}

/*
 * Sends the reply: the response (when status is CJ_OK and one is packed)
 * and the status with call->error or a default message.
 */
static void call_reply(struct cj_rpc_call *call, enum cj_status status)
{
    grpc_op ops[4];
    size_t n = 0;
    grpc_status_code code = cj_status_to_grpc(status);

    if (code != GRPC_STATUS_OK && call->error[0] == '\0') {
        cj_rpc_call_set_error(call, "%s failed: %s", cj_rpc_call_path(call),
                              cj_status_name(status));
    }
    memset(ops, 0, sizeof(ops));
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (code == GRPC_STATUS_OK && call->response_payload != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = call->response_payload;
        n++;
    }
    call->status_details = grpc_slice_from_copied_string(call->error);
    call->status_details_set = true;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details =
        code != GRPC_STATUS_OK ? &call->status_details : NULL;
    if (code != GRPC_STATUS_OK && call->retry_after[0] != '\0') {
        call->trailer.key = grpc_slice_from_static_string(CJ_MD_RETRY_AFTER);
        call->trailer.value = grpc_slice_from_static_string(call->retry_after);
        ops[n].data.send_status_from_server.trailing_metadata_count = 1;
        ops[n].data.send_status_from_server.trailing_metadata = &call->trailer;
    }
    n++;
    if (!call->close_posted) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n].data.recv_close_on_server.cancelled = &call->cancelled;
        n++;
    }

    call->tag.complete = on_reply_sent;
    if (grpc_call_start_batch(call->call, ops, n, &call->tag, NULL) !=
        GRPC_CALL_OK) {
        cj_log(CJ_LOG_ERROR, "rpc.reply_failed", call_request_id(call),
               CJ_F_STR("method", cj_rpc_call_path(call)));
        /* Cancelling ends the call, so a close batch in flight completes
         * and drops its reference. */
        grpc_call_cancel(call->call, NULL);
        call_release(call);
    }
}

/* Runs the handler and replies, on a completion-queue thread. */
static void call_run_handler(struct cj_rpc_call *call)
{
    const struct cj_rpc_method *method = call->entry->method;
    ProtobufCMessage *response = NULL;
    enum cj_status status;

    if (cj_rpc_deadline_passed(call->deadline)) {
        cj_rpc_call_set_error(call, "deadline passed before %s ran",
                              method->path);
        call_reply(call, CJ_ERR_TIMEOUT);
        return;
    }
    if (cj_rpc_call_cancelled(call)) {
        /* No client reads this reply, so its code only has to end the
         * call, and cj_status has no code for a cancelled call. */
        cj_rpc_call_set_error(call, "call ended by the client before %s ran",
                              method->path);
        call_reply(call, CJ_ERR_TIMEOUT);
        return;
    }
    status =
        method->handler(call, call->request, &response, call->entry->state);
    if (status == CJ_OK && response == NULL) {
        cj_log(CJ_LOG_ERROR, "rpc.handler_no_response", call_request_id(call),
               CJ_F_STR("method", method->path));
        cj_rpc_call_set_error(call, "%s returned no response", method->path);
        status = CJ_ERR_INTERNAL;
    }
    if (status == CJ_OK && response->descriptor != method->response) {
        cj_log(CJ_LOG_ERROR, "rpc.handler_wrong_type", call_request_id(call),
               CJ_F_STR("method", method->path));
        cj_rpc_call_set_error(call, "%s returned the wrong message type",
                              method->path);
        status = CJ_ERR_INTERNAL;
    }
    if (status == CJ_OK) {
        status = cj_rpc_message_pack(response, call->server->max_message_bytes,
                                     &call->response_payload);
        if (status == CJ_ERR_TOO_LARGE) {
            cj_rpc_call_set_error(call, "response of %s exceeds %zu bytes",
                                  method->path,
                                  call->server->max_message_bytes);
            status = CJ_ERR_INTERNAL;
        }
    }
    cj_rpc_message_free(response);
    call_reply(call, status);
}

static void pool_job(void *arg)
{
    call_run_handler(arg);
}

/*
 * Establishes who calls and whether they may: identity, access rule, caller
 * context. Returns the status to reply with when the call must stop here.
 */
static enum cj_status call_admit(struct cj_rpc_call *call)
{
    const struct cj_rpc_method *method = call->entry->method;
    struct cj_rpc_server *server = call->server;
    char context_error[CJ_CALLER_ERROR_MAX];
    bool trusted_caller = server->plaintext;

    if (!server->plaintext) {
        if (cj_rpc_peer_identity(call->call, call->identity) != CJ_OK) {
            cj_rpc_log_rejection(&server->unauthenticated_log,
                                 "rpc.unauthenticated", call_request_id(call),
                                 NULL, method->path);
            cj_rpc_call_set_error(call, "no valid client certificate for %s",
                                  method->path);
            return CJ_ERR_UNAUTHENTICATED;
        }
        if (!cj_rpc_access_allowed(method->allowed, call->identity)) {
            cj_rpc_log_rejection(&server->permission_denied_log,
                                 "rpc.permission_denied", call_request_id(call),
                                 call->identity, method->path);
            cj_rpc_call_set_error(call, "caller '%s' may not call %s",
                                  call->identity, method->path);
            return CJ_ERR_PERMISSION;
        }
        trusted_caller = strcmp(call->identity, CJ_RPC_ID_GATEWAY) == 0;
    }
    if (trusted_caller &&
        cj_caller_context_parse(&call->request_md, &call->caller,
                                context_error) != CJ_OK) {
        cj_rpc_call_set_error(call, "%s", context_error);
        return CJ_ERR_INVALID;
    }
    if (call->caller.request_id[0] != '\0') {
        memcpy(call->request_id, call->caller.request_id,
               sizeof(call->request_id));
    }
    if (cj_rpc_deadline_passed(call->deadline)) {
        cj_rpc_call_set_error(call, "deadline passed before %s started",
                              method->path);
        return CJ_ERR_TIMEOUT;
    }
    return CJ_OK;
}

static enum cj_status call_unpack(struct cj_rpc_call *call)
{
    const struct cj_rpc_method *method = call->entry->method;
    const char *nul_field = NULL;
    enum cj_status status;

    if (call->request_payload == NULL) {
        cj_rpc_call_set_error(call, "%s received no request message",
                              method->path);
        return CJ_ERR_INVALID;
    }
    status = cj_rpc_message_unpack(call->request_payload, method->request,
                                   call->server->max_message_bytes,
                                   &call->request, &nul_field);
    if (status == CJ_ERR_INVALID && nul_field != NULL) {
        cj_rpc_call_set_error(call,
                              "field %s of the %s request contains a "
                              "NUL byte",
                              nul_field, method->path);
    } else if (status == CJ_ERR_INVALID) {
        cj_rpc_call_set_error(call, "request is not a valid %s request",
                              method->path);
    } else if (status == CJ_ERR_TOO_LARGE) {
        cj_rpc_call_set_error(call, "request exceeds %zu bytes",
                              call->server->max_message_bytes);
    }
    return status;
}

/*
 * Logs a rejection for a full worker queue at most once per
 * CJ_RPC_QUEUE_FULL_LOG_INTERVAL_MS, with the count since the last log, so
 * that an overload does not also flood the logs.
 */
static void log_queue_full(struct cj_rpc_server *server,
                           struct cj_rpc_call *call)
{
    int64_t now_ms = gpr_time_to_millis(gpr_now(GPR_CLOCK_MONOTONIC));
    uint64_t rejected = 0;

    pthread_mutex_lock(&server->lock);
    server->queue_full_unlogged++;
    if (server->queue_full_logged_ms == 0 ||
        now_ms - server->queue_full_logged_ms >=
            CJ_RPC_QUEUE_FULL_LOG_INTERVAL_MS) {
        rejected = server->queue_full_unlogged;
        server->queue_full_unlogged = 0;
        server->queue_full_logged_ms = now_ms;
    }
    pthread_mutex_unlock(&server->lock);
    if (rejected > 0) {
        cj_log(CJ_LOG_WARN, "rpc.worker_queue_full", call_request_id(call),
               CJ_F_STR("method", call->entry->method->path),
               CJ_F_INT("rejected", rejected));
    }
}

static void on_unary_requested(struct cj_rpc_tag *tag, bool ok)
{
    struct cj_rpc_call *call = (struct cj_rpc_call *)(void *)tag;
    struct cj_rpc_server *server = call->server;
    enum cj_status status;

    if (!ok) {
        call_free(call); /* the server is shutting down */
        return;
    }
    if (cj_rpc_accepting(server)) {
        cj_rpc_unary_post(server, call->entry);
    }
    call_watch_close(call);
    status = call_admit(call);
    if (status == CJ_OK) {
        status = call_unpack(call);
    }
    if (status != CJ_OK) {
        call_reply(call, status);
        return;
    }
    if (!call->entry->method->blocking) {
        call_run_handler(call);
        return;
    }
    switch (cj_pool_admit(server->pool, pool_job, call)) {
    case CJ_POOL_RUN_HERE:
        cj_rpc_thread_busy(server);
        cj_pool_run_here(server->pool, pool_job, call);
        cj_rpc_thread_idle(server);
        break;
    case CJ_POOL_QUEUED:
        break;
    case CJ_POOL_REJECTED:
        log_queue_full(server, call);
        cj_rpc_call_set_error(call,
                              "server busy: worker queue full for %s, "
                              "retry later",
                              call->entry->method->path);
        call_reply(call, CJ_ERR_UNAVAILABLE);
        break;
    }
}

void cj_rpc_unary_post(struct cj_rpc_server *server, struct cj_rpc_entry *entry)
{
    struct cj_rpc_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        cj_log(CJ_LOG_ERROR, "rpc.slot_alloc_failed", NULL,
               CJ_F_STR("method", entry->method->path));
        return;
    }
    call->tag.complete = on_unary_requested;
    call->server = server;
    call->entry = entry;
    atomic_init(&call->refs, 1);
    atomic_init(&call->client_gone, false);
    grpc_metadata_array_init(&call->request_md);
    cj_rpc_live_add(server);
    grpc_call_error err = grpc_server_request_registered_call(
        server->server, entry->handle, &call->call, &call->deadline,
        &call->request_md, &call->request_payload, server->cq, server->cq,
        &call->tag);
    if (err != GRPC_CALL_OK) {
        cj_log(CJ_LOG_ERROR, "rpc.slot_post_failed", NULL,
               CJ_F_STR("method", entry->method->path), CJ_F_INT("error", err));
        call_free(call);
    }
}

static void on_unregistered_requested(struct cj_rpc_tag *tag, bool ok)
{
    struct cj_rpc_call *call = (struct cj_rpc_call *)(void *)tag;
    struct cj_rpc_server *server = call->server;

    if (!ok) {
        call_free(call);
        return;
    }
    if (cj_rpc_accepting(server)) {
        cj_rpc_unregistered_post(server);
    }
    snprintf(call->unregistered_path, sizeof(call->unregistered_path), "%.*s",
             (int)GRPC_SLICE_LENGTH(call->details.method),
             (const char *)GRPC_SLICE_START_PTR(call->details.method));
    cj_log(CJ_LOG_INFO, "rpc.unknown_method", call_request_id(call),
           CJ_F_STR("method", call->unregistered_path));
    cj_rpc_call_set_error(call, "method %s is not implemented by %s",
                          call->unregistered_path, server->service->name);
    call_reply(call, CJ_ERR_UNIMPLEMENTED);
}

void cj_rpc_unregistered_post(struct cj_rpc_server *server)
{
    struct cj_rpc_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return;
    }
    call->tag.complete = on_unregistered_requested;
    call->server = server;
    atomic_init(&call->refs, 1);
    atomic_init(&call->client_gone, false);
    grpc_metadata_array_init(&call->request_md);
    grpc_call_details_init(&call->details);
    cj_rpc_live_add(server);
    if (grpc_server_request_call(server->server, &call->call, &call->details,
                                 &call->request_md, server->cq, server->cq,
                                 &call->tag) != GRPC_CALL_OK) {
        call_free(call);
    }
}

bool cj_rpc_send_status_only(grpc_call *call, grpc_status_code code,
                             const char *message, grpc_slice *details,
                             int *cancelled, struct cj_rpc_tag *tag)
{
    grpc_op ops[3];

    memset(ops, 0, sizeof(ops));
    *details = grpc_slice_from_copied_string(message);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = code;
    ops[1].data.send_status_from_server.status_details = details;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = cancelled;
    return grpc_call_start_batch(call, ops, 3, tag, NULL) == GRPC_CALL_OK;
}

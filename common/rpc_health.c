/*
 * The standard health service, grpc.health.v1.Health: Check as a built-in
 * unary method, and Watch streams that send the current status and then
 * every change until the client cancels or the server stops.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "rpc_message.h"

#define STATUS_SERVICE_UNKNOWN                                                 \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
#define STATUS_NOT_SERVING                                                     \
    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

/* Maximum length of a health service name in a request, in bytes. */
#define CJ_RPC_HEALTH_NAME_MAX_LEN 127

/* Status of `name`, or SERVICE_UNKNOWN; caller holds server->lock. */
static int status_locked(const struct cj_rpc_server *server, const char *name)
{
    for (size_t i = 0; i < server->n_health; i++) {
        if (strcmp(server->health[i].name, name) == 0) {
            return server->health[i].status;
        }
    }
    return STATUS_SERVICE_UNKNOWN;
}

static enum cj_status health_check(struct cj_rpc_call *call,
                                   const ProtobufCMessage *request,
                                   ProtobufCMessage **response, void *state)
{
    struct cj_rpc_server *server = state;
    const Grpc__Health__V1__HealthCheckRequest *req =
        (const Grpc__Health__V1__HealthCheckRequest *)request;
    Grpc__Health__V1__HealthCheckResponse *resp;

    pthread_mutex_lock(&server->lock);
    int status = status_locked(server, req->service);
    pthread_mutex_unlock(&server->lock);
    if (status == STATUS_SERVICE_UNKNOWN) {
        cj_rpc_call_set_error(call, "unknown service '%.*s' in health check",
                              CJ_RPC_HEALTH_NAME_MAX_LEN, req->service);
        return CJ_ERR_NOT_FOUND;
    }
    resp = malloc(sizeof(*resp));
    if (resp == NULL) {
        return CJ_ERR_NOMEM;
    }
    grpc__health__v1__health_check_response__init(resp);
    resp->status = status;
    *response = &resp->base;
    return CJ_OK;
}

const struct cj_rpc_method cj_rpc_health_check_method = {
    .path = "/grpc.health.v1.Health/Check",
    .request = &grpc__health__v1__health_check_request__descriptor,
    .response = &grpc__health__v1__health_check_response__descriptor,
    .handler = health_check,
    .blocking = false,
    .allowed = {CJ_RPC_ANY_PLATFORM},
};

void cj_rpc_health_init(struct cj_rpc_server *server)
{
    server->n_health = 2;
    server->health[0].name[0] = '\0';
    server->health[0].status = CJ_RPC_HEALTH_SERVING;
    snprintf(server->health[1].name, sizeof(server->health[1].name), "%s",
             server->service->name);
    server->health[1].status = CJ_RPC_HEALTH_SERVING;
}

/*
 * One Watch stream. At most one send batch is in flight (send_tag); the
 * receive-close batch (close_tag) completes when the call ends for any
 * reason. refs counts the batches in flight; the last one frees.
 */
struct cj_rpc_watch {
    struct cj_rpc_tag request_tag;
    struct cj_rpc_tag send_tag;
    struct cj_rpc_tag close_tag;
    struct cj_rpc_server *server;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *request_payload;
    grpc_byte_buffer *send_payload;
    grpc_slice status_details;
    bool status_details_set;
    int cancelled;

    char name[CJ_RPC_HEALTH_NAME_MAX_LEN + 1];
    int last_sent; /* -1 before the first message */
    bool send_in_flight;
    bool metadata_sent;
    bool status_sent;
    bool closed;
    bool listed; /* in server->watches */
    int refs;
    struct cj_rpc_watch *next;
};

static void watch_free(struct cj_rpc_watch *w)
{
    struct cj_rpc_server *server = w->server;

    if (w->request_payload != NULL) {
        grpc_byte_buffer_destroy(w->request_payload);
    }
    if (w->send_payload != NULL) {
        grpc_byte_buffer_destroy(w->send_payload);
    }
    if (w->status_details_set) {
        grpc_slice_unref(w->status_details);
    }
    grpc_metadata_array_destroy(&w->request_md);
    if (w->call != NULL) {
        grpc_call_unref(w->call);
    }
    free(w);
    cj_rpc_live_remove(server);
}

static void watch_unlist_locked(struct cj_rpc_watch *w)
{
    struct cj_rpc_watch **p = &w->server->watches;
    while (*p != NULL && *p != w) {
        p = &(*p)->next;
    }
    if (*p == w) {
        *p = w->next;
    }
    w->listed = false;
}

/*
 * Starts the next send when none is in flight: a message when the status
 * differs from the last one sent, else the final status once the server is
 * stopping. Caller holds server->lock.
 */
static void watch_push_locked(struct cj_rpc_watch *w)
{
    grpc_op ops[2];
    size_t n = 0;
    bool finishing = false;

    if (w->send_in_flight || w->closed || w->status_sent) {
        return;
    }
    memset(ops, 0, sizeof(ops));
    if (!w->metadata_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    }
    int status = status_locked(w->server, w->name);
    if (status != w->last_sent) {
        Grpc__Health__V1__HealthCheckResponse resp =
            GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = status;
        if (w->send_payload != NULL) {
            grpc_byte_buffer_destroy(w->send_payload);
            w->send_payload = NULL;
        }
        if (cj_rpc_message_pack(&resp.base, w->server->max_message_bytes,
                                &w->send_payload) != CJ_OK) {
            return;
        }
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = w->send_payload;
        n++;
    } else if (w->server->shutting_down) {
        if (!w->status_details_set) {
            w->status_details = grpc_slice_from_static_string(
                "server is shutting down; reconnect to another replica");
            w->status_details_set = true;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
        ops[n].data.send_status_from_server.status_details = &w->status_details;
        n++;
        finishing = true;
    } else {
        return; /* nothing new to say */
    }
    if (grpc_call_start_batch(w->call, ops, n, &w->send_tag, NULL) !=
        GRPC_CALL_OK) {
        w->closed = true; /* the call is unusable; the close batch frees */
        return;
    }
    w->metadata_sent = true;
    w->last_sent = status;
    w->status_sent = finishing;
    w->send_in_flight = true;
    w->refs++;
}

/* Drops one batch reference; frees after unlocking when it was the last. */
static void watch_release(struct cj_rpc_watch *w)
{
    struct cj_rpc_server *server = w->server;
    pthread_mutex_lock(&server->lock);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&server->lock);
    if (last) {
        watch_free(w);
    }
}

static void on_watch_sent(struct cj_rpc_tag *tag, bool ok)
{
    struct cj_rpc_watch *w =
        CJ_CONTAINER_OF(tag, struct cj_rpc_watch, send_tag);

    pthread_mutex_lock(&w->server->lock);
    w->send_in_flight = false;
    if (ok) {
        watch_push_locked(w);
    } else {
        w->closed = true;
    }
    pthread_mutex_unlock(&w->server->lock);
    watch_release(w);
}

static void on_watch_closed(struct cj_rpc_tag *tag, bool ok)
{
    (void)ok;
    struct cj_rpc_watch *w =
        CJ_CONTAINER_OF(tag, struct cj_rpc_watch, close_tag);

    pthread_mutex_lock(&w->server->lock);
    w->closed = true;
    if (w->listed) {
        watch_unlist_locked(w);
    }
    pthread_mutex_unlock(&w->server->lock);
    watch_release(w);
}

static void on_watch_rejected(struct cj_rpc_tag *tag, bool ok)
{
    (void)ok;
    watch_free(CJ_CONTAINER_OF(tag, struct cj_rpc_watch, close_tag));
}

/* Sends an error status and frees the watch once that completes. */
static void watch_reject(struct cj_rpc_watch *w, grpc_status_code code,
                         const char *message)
{
    w->status_details_set = true;
    if (!cj_rpc_send_status_only(w->call, code, message, &w->status_details,
                                 &w->cancelled, &w->close_tag)) {
        watch_free(w);
    }
}

/* Reads the requested service name; false when the request is invalid. */
static bool watch_read_request(struct cj_rpc_watch *w)
{
    ProtobufCMessage *msg = NULL;
    bool valid = false;

    if (w->request_payload == NULL ||
        cj_rpc_message_unpack(
            w->request_payload,
            &grpc__health__v1__health_check_request__descriptor,
            w->server->max_message_bytes, &msg, NULL) != CJ_OK) {
        return false;
    }
    const char *name = ((Grpc__Health__V1__HealthCheckRequest *)msg)->service;
    if (strlen(name) <= CJ_RPC_HEALTH_NAME_MAX_LEN) {
        snprintf(w->name, sizeof(w->name), "%s", name);
        valid = true;
    }
    cj_rpc_message_free(msg);
    return valid;
}

static void on_watch_requested(struct cj_rpc_tag *tag, bool ok)
{
    struct cj_rpc_watch *w =
        CJ_CONTAINER_OF(tag, struct cj_rpc_watch, request_tag);
    struct cj_rpc_server *server = w->server;
    char identity[CJ_RPC_IDENTITY_MAX_LEN + 1];
    grpc_op op;

    if (!ok) {
        watch_free(w);
        return;
    }
    if (cj_rpc_accepting(server)) {
        cj_rpc_health_watch_post(server);
    }
    if (!server->plaintext &&
        cj_rpc_peer_identity(w->call, identity) != CJ_OK) {
        watch_reject(w, GRPC_STATUS_UNAUTHENTICATED,
                     "no valid client certificate for health Watch");
        return;
    }
    if (!watch_read_request(w)) {
        watch_reject(
            w, GRPC_STATUS_INVALID_ARGUMENT,
            "request is not a valid grpc.health.v1.HealthCheckRequest");
        return;
    }

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &w->cancelled;
    w->close_tag.complete = on_watch_closed;
    /*
     * For a call the client has already cancelled, the close batch can
     * complete on another queue thread as soon as it starts. Its handler
     * takes the lock, so the reference and the list entry are set up under
     * the lock before the batch starts; completions only queue events, so
     * starting a batch while holding the lock cannot deadlock.
     */
    pthread_mutex_lock(&server->lock);
    w->refs = 1;
    if (grpc_call_start_batch(w->call, &op, 1, &w->close_tag, NULL) !=
        GRPC_CALL_OK) {
        pthread_mutex_unlock(&server->lock);
        watch_free(w);
        return;
    }
    w->next = server->watches;
    server->watches = w;
    w->listed = true;
    watch_push_locked(w);
    pthread_mutex_unlock(&server->lock);
}

void cj_rpc_health_watch_post(struct cj_rpc_server *server)
{
    struct cj_rpc_watch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return;
    }
    w->server = server;
    w->last_sent = -1;
    w->request_tag.complete = on_watch_requested;
    w->send_tag.complete = on_watch_sent;
    w->close_tag.complete = on_watch_rejected;
    grpc_metadata_array_init(&w->request_md);
    cj_rpc_live_add(server);
    if (grpc_server_request_registered_call(
            server->server, server->health_watch_handle, &w->call, &w->deadline,
            &w->request_md, &w->request_payload, server->cq, server->cq,
            &w->request_tag) != GRPC_CALL_OK) {
        watch_free(w);
    }
}

/* Notifies every watch of a change; caller holds server->lock. */
static void watches_push_locked(struct cj_rpc_server *server)
{
    for (struct cj_rpc_watch *w = server->watches; w != NULL; w = w->next) {
        watch_push_locked(w);
    }
}

enum cj_status cj_rpc_health_set(struct cj_rpc_server *server, const char *name,
                                 enum cj_rpc_health_status status)
{
    enum cj_status result = CJ_ERR_TOO_LARGE;
    bool changed = false;
    size_t i;

    if (strlen(name) > CJ_RPC_HEALTH_NAME_MAX_LEN) {
        return CJ_ERR_INVALID;
    }
    pthread_mutex_lock(&server->lock);
    for (i = 0; i < server->n_health; i++) {
        if (strcmp(server->health[i].name, name) == 0) {
            break;
        }
    }
    if (i == server->n_health && i < CJ_RPC_HEALTH_MAX_NAMES) {
        snprintf(server->health[i].name, sizeof(server->health[i].name), "%s",
                 name);
        server->n_health++;
        changed = true;
    }
    if (i < server->n_health) {
        changed = changed || server->health[i].status != (int)status;
        server->health[i].status = (int)status;
        if (changed && !server->shutting_down) {
            watches_push_locked(server);
        }
        result = CJ_OK;
    }
    pthread_mutex_unlock(&server->lock);
    /* Callers repeat the status on every periodic check, so only a change
     * is logged: an outage then costs one line, not one per check. */
    if (changed) {
        cj_log(CJ_LOG_INFO, "rpc.health_set", NULL, CJ_F_STR("name", name),
               CJ_F_STR("status", status == CJ_RPC_HEALTH_SERVING
                                      ? "SERVING"
                                      : "NOT_SERVING"));
    }
    return result;
}

void cj_rpc_health_stop(struct cj_rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    for (size_t i = 0; i < server->n_health; i++) {
        server->health[i].status = STATUS_NOT_SERVING;
    }
    watches_push_locked(server);
    pthread_mutex_unlock(&server->lock);
}

/*
 * The gRPC server framework on the gRPC C core. A service declares a table
 * of unary methods with their protobuf-c types, handlers and access rules.
 * The framework serves them with health checking, server reflection,
 * mutual TLS, caller context, deadlines and graceful shutdown.
 */
#ifndef CJ_RPC_SERVER_H
#define CJ_RPC_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc_access.h"
#include "rpc_caller.h"
#include "status.h"

/* Defaults of struct cj_rpc_server_options, used where a field is 0. */
#define CJ_RPC_DEFAULT_MAX_MESSAGE_BYTES (1024 * 1024)
#define CJ_RPC_DEFAULT_CQ_THREADS        2
#define CJ_RPC_DEFAULT_WORKER_THREADS    4
#define CJ_RPC_DEFAULT_WORKER_QUEUE      256
#define CJ_RPC_DEFAULT_SLOTS_PER_METHOD  4
#define CJ_RPC_DEFAULT_SHUTDOWN_GRACE_MS 5000

/* Maximum length of the error message sent with a status, in bytes. */
#define CJ_RPC_ERROR_MAX_LEN 255

/* Maximum number of names the health service tracks. */
#define CJ_RPC_HEALTH_MAX_NAMES 8

/* One unary call in progress; owned by the framework. */
struct cj_rpc_call;

/*
 * Handles one unary call. `request` is the unpacked request, owned by the
 * framework and freed (after its string and bytes fields are wiped) when
 * the handler returns. On CJ_OK the handler sets *response to a message of
 * the method's response type, allocated with malloc together with every
 * string, bytes buffer and sub-message it points to (the layout
 * protobuf_c_message_unpack produces). The framework packs it, wipes its
 * string and bytes fields and frees it with protobuf_c_message_free_unpacked.
 * On an error status the handler leaves *response NULL (a non-NULL one is
 * freed unsent) and may explain with cj_rpc_call_set_error().
 * `service_state` is struct cj_rpc_service.state.
 */
typedef enum cj_status (*cj_rpc_handler)(struct cj_rpc_call *call,
                                         const ProtobufCMessage *request,
                                         ProtobufCMessage **response,
                                         void *service_state);

/* One unary method. */
struct cj_rpc_method {
    const char *path; /* "/cerrojo.v1.Kms/SignToken" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    cj_rpc_handler handler;
    /*
     * True when the handler blocks (Postgres, Redis, Argon2): at most
     * worker_threads such handlers run at once, each on the thread that
     * received its call while a spare thread takes over polling, and
     * further calls wait in the worker queue.
     */
    bool blocking;
    /* Identities that may call it; see cj_rpc_access_allowed(). */
    const char *allowed[CJ_RPC_ALLOWED_MAX];
};

/* A service: its methods and the state passed to their handlers. */
struct cj_rpc_service {
    const char *name; /* full name, "cerrojo.v1.Kms", for health and lists */
    const struct cj_rpc_method *methods;
    size_t n_methods;
    void *state;
};

/* Server settings; strings are copied by cj_rpc_server_create. */
struct cj_rpc_server_options {
    const char *listen; /* "127.0.0.1:50052"; port 0 picks a free one */
    /*
     * Plaintext (dev only): no TLS, every caller counts as trusted, so
     * access rules are not enforced and the caller context is accepted
     * from anyone. A warning is logged at start.
     */
    bool plaintext;
    const char *tls_ca_file;   /* PEM of the platform CA */
    const char *tls_cert_file; /* PEM of this service's certificate */
    const char *tls_key_file;  /* PEM of its private key */
    size_t max_message_bytes;  /* per request and response */
    size_t cq_threads; /* threads polling the completion queue, at most */
    /* Blocking handlers run at once; each adds a spare queue thread. */
    size_t worker_threads;
    size_t worker_queue;     /* waiting blocking calls before UNAVAILABLE */
    size_t slots_per_method; /* calls accepted ahead, per method */
    int64_t shutdown_grace_ms;
    /*
     * Hook called once per shutdown, on the thread shutting down, when the
     * grace period ends while handlers still run, or NULL. gRPC can cancel
     * a call but not a handler that waits on a database, so the service
     * ends that work here (with cj_db_pool_cancel, for one).
     */
    void (*on_grace_expired)(void *arg);
    void *on_grace_expired_arg;
};

struct cj_rpc_server;

/*
 * Creates a server for `service` (which must outlive it), binds the listen
 * address and registers every method, the health service and reflection.
 * Calls grpc_init(). Returns CJ_ERR_INVALID on a bad table or option,
 * CJ_ERR_UNAVAILABLE when the address cannot be bound or a TLS file cannot
 * be read. Free with cj_rpc_server_destroy.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_server_create(const struct cj_rpc_service *service,
                     const struct cj_rpc_server_options *options,
                     struct cj_rpc_server **out);

/* Returns the bound TCP port. */
int cj_rpc_server_port(const struct cj_rpc_server *server);

/* Starts serving: posts request slots and starts the threads. */
CJ_WARN_UNUSED enum cj_status cj_rpc_server_start(struct cj_rpc_server *server);

/*
 * Stops gracefully: new calls are rejected, calls in flight get until the
 * grace period to finish and are then cancelled, health watches end with
 * UNAVAILABLE. Returns when every thread has stopped. Safe to call twice.
 */
void cj_rpc_server_shutdown(struct cj_rpc_server *server);

/* Shuts down if needed, frees the server and calls grpc_shutdown. */
void cj_rpc_server_destroy(struct cj_rpc_server *server);

enum cj_rpc_health_status {
    CJ_RPC_HEALTH_SERVING = 1, /* values of grpc.health.v1 */
    CJ_RPC_HEALTH_NOT_SERVING = 2,
};

/*
 * Sets the health status of `name` ("" for the whole server, or a service
 * name). Only a change of status notifies watchers and logs rpc.health_set,
 * so callers may repeat the current status. Both "" and the service's own
 * name start as SERVING. Returns CJ_ERR_TOO_LARGE when CJ_RPC_HEALTH_MAX_NAMES
 * names are already tracked.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_health_set(struct cj_rpc_server *server, const char *name,
                  enum cj_rpc_health_status status);

/* --- What a handler may ask about its call ----------------------------- */

/* The method path, "/cerrojo.v1.Kms/SignToken". */
const char *cj_rpc_call_path(const struct cj_rpc_call *call);

/* The peer's certificate CN; "" in plaintext mode. */
const char *cj_rpc_call_identity(const struct cj_rpc_call *call);

/*
 * The caller context; every field empty unless the peer is the gateway
 * (or the server runs in plaintext mode).
 */
const struct cj_caller_context *
cj_rpc_call_caller(const struct cj_rpc_call *call);

/*
 * The request id for logs: the caller context's, or one generated for this
 * call when the caller gave none.
 */
const char *cj_rpc_call_request_id(const struct cj_rpc_call *call);

/* Milliseconds left until the client's deadline; INT64_MAX when none. */
int64_t cj_rpc_call_remaining_ms(const struct cj_rpc_call *call);

/*
 * Returns whether the call ended before its reply: the client cancelled
 * it, its deadline passed or its connection broke. No client reads the
 * reply of such a call. The check is one atomic load, so a handler may
 * make it before each costly or lasting step. A queue thread sets the
 * flag when the core reports the close, so it becomes true only after
 * that report, not at the moment the client cancels.
 */
bool cj_rpc_call_cancelled(const struct cj_rpc_call *call);

/*
 * Sets the message sent with an error status, printf-style, cut at
 * CJ_RPC_ERROR_MAX_LEN bytes. It reaches the client: name the value that
 * failed, never a secret.
 */
void cj_rpc_call_set_error(struct cj_rpc_call *call, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Attaches a retry-after value to the call's error status, sent as the
 * trailing metadata CJ_MD_RETRY_AFTER. `seconds` is clamped to
 * 1..CJ_RETRY_AFTER_MAX_S; a value of 0 or less removes it. It is ignored
 * when the handler returns CJ_OK.
 */
void cj_rpc_call_set_retry_after(struct cj_rpc_call *call, int64_t seconds);

/* --- Running a service process ----------------------------------------- */

/*
 * Blocks SIGTERM and SIGINT in the calling thread and fills `set` with
 * them. Call it first in main, before grpc_init() or any thread starts, so
 * that every thread inherits the mask and only cj_rpc_server_wait_signal
 * receives them.
 */
void cj_rpc_signals_block(sigset_t *set);

/* Waits for a signal of `set`; returns its number. */
int cj_rpc_server_wait_signal(const sigset_t *set);

#endif

/*
 * Internal structures of the gRPC server framework, shared by its files
 * (server lifecycle, unary calls, health, reflection, TLS). Not for
 * services: they use rpc_server.h.
 */
#ifndef CJ_RPC_INTERNAL_H
#define CJ_RPC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "rpc_core_log.h"
#include "rpc_pool.h"
#include "rpc_server.h"

/* Minimum interval between two rpc.worker_queue_full logs, in ms. */
#define CJ_RPC_QUEUE_FULL_LOG_INTERVAL_MS 1000

/*
 * Maximum streams one HTTP/2 connection may have open at once. gRPC core
 * keeps about 10 KB for each stream whose request has not arrived yet, so
 * without a cap one connection could hold any amount of memory. gRPC
 * clients queue calls past the cap instead of opening them, and libgrpc
 * 1.51 closes a connection whose peer opens more. The clients of this
 * project make synchronous calls, one per thread, and their channels to
 * one address share a connection. The gateway has at most
 * GW_CONNECTIONS_MAX (512) request threads and the bench at most
 * BENCH_CONNECTIONS_MAX (1024) workers, so neither needs more streams.
 */
#define CJ_RPC_MAX_CONCURRENT_STREAMS 1024

/*
 * Time a new connection has to finish its TLS handshake, in ms. gRPC's
 * default of 120 s lets a peer without a certificate hold a descriptor
 * that long per connection. A handshake on a loaded node takes
 * milliseconds, so 5 s leaves a wide margin.
 */
#define CJ_RPC_HANDSHAKE_TIMEOUT_MS 5000

/* Length of a generated request id: 16 random bytes in hex. */
#define CJ_RPC_REQUEST_ID_BYTES 16

/*
 * The tag of every completion-queue operation. The queue threads call
 * `complete` with the operation's outcome; it is the first member of each
 * per-call struct, or reached with container_of.
 */
struct cj_rpc_tag {
    void (*complete)(struct cj_rpc_tag *tag, bool ok);
};

#define CJ_CONTAINER_OF(ptr, type, member)                                     \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A unary method as registered: a service's or a built-in one. */
struct cj_rpc_entry {
    const struct cj_rpc_method *method;
    void *state;  /* passed to the handler */
    void *handle; /* from grpc_server_register_method */
};

struct cj_rpc_health_entry {
    char name[128];
    int status; /* Grpc__Health__V1__HealthCheckResponse__ServingStatus */
};

struct cj_rpc_watch;
struct cj_rpc_reflection;

/*
 * The completion-queue threads: up to max_polling poll the queue, the rest
 * are spares for the threads that blocking handlers hold. Guarded by lock.
 */
struct cj_rpc_threads {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a token was granted, or closing */
    pthread_t *ids;
    size_t n;        /* threads started */
    size_t to_start; /* threads to start */
    size_t max_polling;
    size_t polling; /* in or on their way back to the queue */
    size_t parked;
    size_t tokens; /* wake-ups granted to parked threads, not yet taken */
    bool closing;
};

struct cj_rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    struct cj_rpc_threads threads;
    struct cj_pool *pool;
    const struct cj_rpc_service *service;

    bool plaintext;
    char *listen;
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    size_t max_message_bytes;
    size_t slots_per_method;
    int64_t shutdown_grace_ms;
    void (*on_grace_expired)(void *arg);
    void *on_grace_expired_arg;
    bool grace_expired_ran; /* the shutting-down thread only */
    int port;

    struct cj_rpc_entry *entries; /* service methods, then built-ins */
    size_t n_entries;
    void *health_watch_handle;
    void *reflection_handles[2]; /* v1alpha, v1 */
    struct cj_rpc_reflection *reflection;

    /* Everything below is guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on live_calls, shutdown_done */
    bool started;
    bool shutting_down;
    bool shutdown_done; /* the server's shutdown tag completed */
    bool stopped;       /* cj_rpc_server_shutdown finished */
    size_t live_calls;  /* per-call structs allocated, slots included */
    struct cj_rpc_health_entry health[CJ_RPC_HEALTH_MAX_NAMES];
    size_t n_health;
    struct cj_rpc_watch *watches;
    int64_t queue_full_logged_ms; /* monotonic time of the last such log */
    uint64_t queue_full_unlogged; /* rejections since then */
    /* Limiters of rpc.unauthenticated and rpc.permission_denied. */
    struct cj_log_limit unauthenticated_log;
    struct cj_log_limit permission_denied_log;

    struct cj_rpc_tag shutdown_tag;
};

void cj_rpc_threads_init(struct cj_rpc_threads *threads);
/* At most `polling` threads poll; `spares` more stand by for them. */
void cj_rpc_threads_size(struct cj_rpc_threads *threads, size_t polling,
                         size_t spares);
CJ_WARN_UNUSED enum cj_status
cj_rpc_threads_start(struct cj_rpc_server *server);
/* Call after the queue is shut down: wakes the spares and joins all. */
void cj_rpc_threads_join(struct cj_rpc_server *server);
void cj_rpc_threads_destroy(struct cj_rpc_threads *threads);

/*
 * Called around a blocking handler on a queue thread. busy wakes a spare
 * when no thread would be left polling. idle returns the thread to
 * polling, or parks it when enough threads poll.
 */
void cj_rpc_thread_busy(struct cj_rpc_server *server);
void cj_rpc_thread_idle(struct cj_rpc_server *server);

/* Counts a per-call struct in or out; the last one out wakes shutdown. */
void cj_rpc_live_add(struct cj_rpc_server *server);
void cj_rpc_live_remove(struct cj_rpc_server *server);

/* Returns whether slots should be posted again (false once stopping). */
bool cj_rpc_accepting(struct cj_rpc_server *server);

/* Posts one request slot for unary entry `entry`. */
void cj_rpc_unary_post(struct cj_rpc_server *server,
                       struct cj_rpc_entry *entry);

/* Posts one request slot for calls to unregistered methods. */
void cj_rpc_unregistered_post(struct cj_rpc_server *server);

/*
 * Reads the peer's certificate CN into identity (CJ_RPC_IDENTITY_MAX_LEN
 * + 1 bytes). Returns CJ_ERR_UNAUTHENTICATED when the call has no verified
 * certificate or its CN is not a valid identity.
 */
CJ_WARN_UNUSED enum cj_status cj_rpc_peer_identity(grpc_call *call,
                                                   char *identity);

/* Builds the server credentials from the TLS files of `server`. */
CJ_WARN_UNUSED enum cj_status
cj_rpc_server_credentials(const struct cj_rpc_server *server,
                          grpc_server_credentials **out);

/*
 * Reads a whole PEM file into a NUL-terminated sodium_malloc'ed string
 * (free it with sodium_free). Returns CJ_ERR_UNAVAILABLE when it cannot be
 * read, CJ_ERR_TOO_LARGE above the PEM size limit.
 */
CJ_WARN_UNUSED enum cj_status cj_rpc_read_pem(const char *path, char **out);

/* Built-in health service: the Check method entry and Watch streams. */
extern const struct cj_rpc_method cj_rpc_health_check_method;
#define CJ_RPC_HEALTH_WATCH_PATH "/grpc.health.v1.Health/Watch"
void cj_rpc_health_init(struct cj_rpc_server *server);
void cj_rpc_health_watch_post(struct cj_rpc_server *server);
/* Marks everything NOT_SERVING and ends every watch; call when stopping. */
void cj_rpc_health_stop(struct cj_rpc_server *server);

/* Built-in server reflection (both paths share one handler). */
#define CJ_RPC_REFLECTION_V1ALPHA_PATH                                         \
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define CJ_RPC_REFLECTION_V1_PATH                                              \
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
CJ_WARN_UNUSED enum cj_status
cj_rpc_reflection_create(const char *service_name,
                         struct cj_rpc_reflection **out);
void cj_rpc_reflection_destroy(struct cj_rpc_reflection *reflection);
/* Posts one reflection slot: version_index 0 is v1alpha, 1 is v1. */
void cj_rpc_reflection_post(struct cj_rpc_server *server, int version_index);

/*
 * Builds the serialized ServerReflectionResponse to one serialized
 * ServerReflectionRequest (*out, malloc'ed, *out_len bytes). Returns
 * CJ_ERR_INVALID when the request does not parse.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_reflection_answer(const struct cj_rpc_reflection *reflection,
                         const uint8_t *request, size_t request_len,
                         uint8_t **out, size_t *out_len);

/*
 * Starts the whole response to a call that sent no initial metadata yet:
 * initial metadata, `code` with `message`, and receiving the close.
 * *details keeps the message slice until the batch completes (unref it
 * then). Returns false when the batch could not start: no completion will
 * arrive then.
 */
bool cj_rpc_send_status_only(grpc_call *call, grpc_status_code code,
                             const char *message, grpc_slice *details,
                             int *cancelled, struct cj_rpc_tag *tag);

/* Returns whether `deadline` (from the server call) has passed. */
bool cj_rpc_deadline_passed(gpr_timespec deadline);

#endif

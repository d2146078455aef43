/*
 * Calls to the backend services (kms, session, auth) over gRPC with the
 * caller's context as metadata, and their readiness for /readyz.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "gw_routes.h"
#include "gw_settings.h"
#include "status.h"

/* The caller's context, sent as the fixed cerrojo-* metadata. Every value
 * comes from the gateway's own checks, never from a client header. NULL
 * or 0 members are not sent. */
struct gw_caller {
    const char *user_id;
    const char *session_id;
    const char *token_id;
    long long token_expires_at; /* Unix seconds */
    const char *channel;        /* "stateless" or "stateful" */
    const char *client_ip;
    const char *user_agent;
    const char *request_id;
};

struct gw_backends;

/* The state of one dependency as /readyz reports it. */
enum gw_dependency_state {
    GW_DEP_UNKNOWN = 0, /* not probed yet */
    GW_DEP_UP,
    GW_DEP_DOWN,
    GW_DEP_CLOCK_SKEW,    /* reachable, but its clock is too far from ours */
    GW_DEP_WRITE_REFUSED, /* Redis replies but rejects writes (OOM, replica) */
};

/* Probes Redis from the probe thread; returns its state. */
typedef enum gw_dependency_state (*gw_redis_probe_fn)(void *arg);

/* Creates the backend clients from the settings (they connect lazily).
 * Returns NULL, after logging why, when a client cannot be created. */
struct gw_backends *gw_backends_new(const struct gw_settings *settings);

/* Names the function the probe thread uses for Redis's readiness. Call
 * before gw_backends_start_probes(). */
void gw_backends_set_redis_probe(struct gw_backends *backends,
                                 gw_redis_probe_fn probe, void *arg);

/* Starts the thread that probes each dependency every few seconds. */
CJ_WARN_UNUSED enum cj_status
gw_backends_start_probes(struct gw_backends *backends);

/* Stops the probe thread and frees the clients. Accepts NULL. */
void gw_backends_free(struct gw_backends *backends);

/*
 * Calls `rpc` with `request` and the caller's context, waiting at most the
 * configured deadline. On GRPC_STATUS_OK *response is a new message of
 * rpc->response (free it with gw_json_message_free()); otherwise it is
 * NULL. `detail` gets the status message for the log, never for clients.
 * `retry_after_s` (may be NULL) gets the seconds the backend asked the
 * client to wait (its CJ_MD_RETRY_AFTER trailer), or 0 when it sent none.
 */
grpc_status_code gw_backend_call(struct gw_backends *backends,
                                 const struct gw_rpc *rpc,
                                 const struct gw_caller *caller,
                                 const ProtobufCMessage *request,
                                 ProtobufCMessage **response, char *detail,
                                 size_t detail_size, unsigned *retry_after_s);

/* Returns the state of a dependency for /readyz: "up", "down",
 * "clock_skew" or "unknown". A backend last seen down is probed again with
 * a short Health/Check first, so a stale mark is not reported. `name` is
 * "kms", "session", "auth" or "redis". */
const char *gw_backends_state(struct gw_backends *backends, const char *name);

#endif

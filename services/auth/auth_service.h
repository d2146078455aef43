/*
 * The state of one cerrojo-auth process, shared by every handler, and the
 * per-call context the flows take. Flows (auth_register.c, auth_login.c,
 * ...) take an auth_call and fill its error message; auth_rpc.c turns
 * their status into the gRPC reply.
 */
#ifndef AUTH_SERVICE_H
#define AUTH_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth_config.h"
#include "auth_data_lock.h"
#include "auth_password_gate.h"
#include "auth_throttle.h"
#include "config.h"
#include "db.h"
#include "db_clock.h"
#include "jwk.h"
#include "metrics.h"
#include "password.h"
#include "password_policy.h"
#include "redis.h"
#include "rpc_caller.h"
#include "rpc_client.h"
#include "rpc_server.h"
#include "status.h"

/* Size of the message a flow may return to the client, in bytes. */
#define AUTH_ERROR_MAX 256

/* Counters exported on the metrics port. */
struct auth_metrics {
    struct cj_metric *password_verifications; /* Argon2 verifications */
    struct cj_metric *logins;                 /* label result */
    struct cj_metric *registrations;          /* label result */
    struct cj_metric *refreshes;              /* label result */
    struct cj_metric *throttled;              /* logins refused by throttle */
    struct cj_metric *cache_reloads;          /* revocation-cache reloads */
    struct cj_metric *revocations_resent;     /* unconfirmed rows resent */
    struct cj_metric *unconfirmed_rows;       /* rows session never stored */
    struct cj_metric *cache_stale;            /* 1 until a reload succeeds */
    struct cj_metric *clock_offset;           /* Postgres minus us, seconds */
    struct cj_metric *postgres_up;            /* 1 when the last check ran */
    struct cj_metric *password_in_flight;     /* Argon2 operations now */
    struct cj_metric *password_in_flight_max; /* highest since start */
    struct cj_metric *password_refused;       /* label reason: busy, timeout */
    struct cj_metric *data_write_waiting;     /* PUTs waiting for a class */
    struct cj_metric *data_write_refused;     /* label reason: busy, deadline */
};

/*
 * The JWKS from kms, cached for Introspect. Verifications share the set
 * under the read lock. Only a refetch, which replaces and frees the set,
 * takes the write lock.
 */
struct auth_jwks_cache {
    pthread_rwlock_t lock;  /* writer-preferring, so refetches get in */
    struct cj_jwks *keys;   /* NULL until fetched */
    int64_t fetched_at_ms;  /* monotonic */
    int64_t max_age_ms;     /* from kms */
    int64_t last_forced_ms; /* last refetch for an unknown kid */
};

struct auth_service {
    struct auth_config cfg;
    enum cj_profile profile;
    struct cj_db_pool *db;
    struct cj_redis_pool *redis;
    struct cj_rpc_client *kms;
    struct cj_rpc_client *session;
    struct cj_password_hasher *hasher;
    struct cj_password_policy password_policy;
    struct auth_password_gate password_gate; /* bounds Argon2 work */
    bool password_gate_ready;
    struct auth_data_locks data_locks; /* orders PUTs of one user's class */
    bool data_locks_ready;
    struct auth_throttle_policy throttle;
    /* The throttle's HMAC key from auth.login_throttle_key, read by the
     * first login that needs it (auth_login.c), under throttle_key_lock. */
    pthread_mutex_t throttle_key_lock;
    atomic_bool throttle_key_ready;
    uint8_t throttle_key[AUTH_THROTTLE_SECRET_BYTES];
    struct cj_metrics *metrics;
    struct auth_metrics m;
    struct auth_jwks_cache jwks;
    /* The running gRPC server, for its health status; NULL in jobs. */
    struct cj_rpc_server *server;
    atomic_bool serving;
    /* State of auth_clock_check, which serve runs once before the watcher
     * thread starts, and only the watcher thread runs after that. */
    int64_t clock_warned_at_ms;
    struct cj_db_clock_check clock_check;
    /* Postgres's clock minus this host's, in ms, from the last check that
     * reached Postgres (0 before it); auth_now_ms adds it. */
    _Atomic int64_t clock_offset_ms;
    bool schema_missing; /* the last check found migrations missing */
    /* Set when session missed a revocation; the watcher reloads its cache. */
    atomic_bool revocations_stale;
    /* Background threads (revocation-cache watcher, cleanup). */
    atomic_bool stopping;
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
};

/* Call context a flow reads, and the error it reports back. */
struct auth_call {
    const struct cj_caller_context *caller; /* never NULL */
    const char *request_id;                 /* never NULL */
    char error[AUTH_ERROR_MAX];             /* message for the client */
    /* Seconds until a retry, sent with CJ_ERR_RATE_LIMITED (throttle) and
     * CJ_ERR_UNAVAILABLE (password gate or data class lock); 0: none. */
    long long retry_after_s;
    int64_t deadline_ms; /* monotonic ms of the client's deadline; 0: none */
    /* The gRPC call, to see a cancellation; NULL outside a gRPC handler. */
    const struct cj_rpc_call *rpc_call;
};

/* Sets call->error, printf-style. */
void auth_call_error(struct auth_call *call, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Returns milliseconds since the Unix epoch on Postgres's timeline: this
 * host's wall clock plus svc->clock_offset_ms. Every time that auth writes
 * into tokens, revocations, refresh rows and session binds comes from
 * here, so replicas whose host clocks differ still agree to within their
 * offset measurement errors (see auth_clock_check).
 */
int64_t auth_now_ms(const struct auth_service *svc);

/* Returns whether gRPC has ended the call: the client cancelled it, its
 * deadline passed or its connection broke. */
bool auth_call_cancelled(const struct auth_call *call);

/*
 * Returns whether the call was cancelled or its deadline is less than
 * AUTH_COMMIT_MARGIN_MS away, so that its reply would not reach the
 * caller. A write committed then would persist although the caller
 * received an error or nothing.
 */
bool auth_call_caller_gone(const struct auth_call *call);

/* Borrows a database connection with the pool's default wait; logs why
 * when it fails. */
CJ_WARN_UNUSED enum cj_status auth_db_acquire(struct auth_service *svc,
                                              const char *request_id,
                                              struct cj_db_conn **out);

/*
 * Borrows a connection like auth_db_acquire for a call, and on failure
 * sets the call's message, unless one is set, to name the database.
 */
CJ_WARN_UNUSED enum cj_status auth_db_acquire_for(struct auth_service *svc,
                                                  struct auth_call *call,
                                                  struct cj_db_conn **out);

/* Rolls back an open transaction after a failure, ignoring errors. */
void auth_db_abort(struct cj_db_conn *conn);

/*
 * Takes a password-gate slot before one Argon2 operation, waiting at most
 * until the call's deadline. CJ_ERR_UNAVAILABLE when the line of waiters
 * is full, the deadline would pass first or the call is cancelled, with
 * call->retry_after_s set. Each is counted and leaves no slot held. On CJ_OK
 * call auth_password_end with the same slot.
 */
CJ_WARN_UNUSED enum cj_status
auth_password_begin(struct auth_service *svc, struct auth_call *call,
                    struct auth_password_slot *slot);

/* Gives the slot back and updates the in-flight gauge. */
void auth_password_end(struct auth_service *svc,
                       const struct auth_password_slot *slot);

/* Counts one Argon2 verification in the metrics. */
void auth_metrics_count_verification(struct auth_service *svc);

/* Adds one to a counter with one label value. */
void auth_metrics_inc(struct cj_metric *metric, const char *label);

#endif

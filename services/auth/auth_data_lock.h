/*
 * In-process locks on one data class of one user. A PutData takes its
 * class's lock here before it borrows a Postgres connection, so that the
 * PUTs of one user to one class that this process serves wait here without
 * a connection. At most one of them at a time then holds a connection
 * while it waits for the Postgres advisory lock, which orders it with the
 * PUTs that other auth replicas serve.
 */
#ifndef AUTH_DATA_LOCK_H
#define AUTH_DATA_LOCK_H

#include <pthread.h>
#include <stdint.h>

#include "auth_store.h"
#include "metrics.h"
#include "status.h"

/* Maximum wait for a class lock when the call has no deadline, in ms. */
#define AUTH_DATA_LOCK_WAIT_MAX_MS 10000
/* Time a PUT needs after it gets the lock (a connection, kms, the
 * transaction and the reply), in ms: a waiter gives up this long before
 * its deadline, so that its rejection still reaches the caller. */
#define AUTH_DATA_LOCK_REPLY_MARGIN_MS 500
/* Max PUTs waiting for one class lock at once. Each waiter occupies a gRPC
 * worker, so further ones are rejected before one user's burst can occupy
 * every worker. */
#define AUTH_DATA_LOCK_WAITERS_MAX 8
/* Divisor of the gRPC worker count that gives the max PUTs waiting for any
 * class lock together, and the min of that bound. It stops a few users who
 * burst to each of their classes from taking every worker. */
#define AUTH_DATA_LOCK_WORKER_SHARE 4
#define AUTH_DATA_LOCK_WAITING_MIN  2
/* Retry-After sent with a rejection, in seconds. */
#define AUTH_DATA_LOCK_RETRY_AFTER_S 1

/* Rejection reasons, as the metric label and the log field give them. */
#define AUTH_DATA_LOCK_SHED_BUSY     "busy"
#define AUTH_DATA_LOCK_SHED_DEADLINE "deadline"

struct auth_data_lock_entry;

/*
 * The table of class locks. An entry exists only while a PUT holds its
 * lock or waits for it, so the table never has more entries than PUTs in
 * progress, which the gRPC worker count bounds.
 */
struct auth_data_locks {
    pthread_mutex_t mutex;
    struct auth_data_lock_entry *entries; /* singly linked */
    unsigned entry_count;
    unsigned waiting;                /* PUTs waiting for any class lock */
    unsigned waiting_max;            /* bound of `waiting`; 0: none */
    struct cj_series *waiting_gauge; /* set to `waiting`; may be NULL */
};

/* CJ_ERR_INTERNAL when the mutex cannot be made. */
CJ_WARN_UNUSED enum cj_status
auth_data_locks_init(struct auth_data_locks *locks);

/* Every lock must have been left. */
void auth_data_locks_destroy(struct auth_data_locks *locks);

/*
 * Takes the lock on one class of one user. A free lock is taken at once.
 * Otherwise the caller, whose deadline is wait_ms away (capped at
 * AUTH_DATA_LOCK_WAIT_MAX_MS), waits until
 * AUTH_DATA_LOCK_REPLY_MARGIN_MS before that deadline. It gets
 * CJ_ERR_UNAVAILABLE, with *shed_reason set to an AUTH_DATA_LOCK_SHED_*,
 * when AUTH_DATA_LOCK_WAITERS_MAX PUTs already wait for this lock, when
 * waiting_max PUTs already wait for any lock, or when its wait runs out;
 * CJ_ERR_NOMEM when no entry can be made. On CJ_OK, *out is the entry to pass
 * to auth_data_lock_leave.
 */
CJ_WARN_UNUSED enum cj_status
auth_data_lock_enter(struct auth_data_locks *locks, const char *user_id,
                     enum auth_data_class cls, int64_t wait_ms,
                     struct auth_data_lock_entry **out,
                     const char **shed_reason);

/* Gives the lock back and frees its entry when no one waits for it. */
void auth_data_lock_leave(struct auth_data_locks *locks,
                          struct auth_data_lock_entry *entry);

/* Current entries and waiters, read under the mutex. */
void auth_data_locks_read(struct auth_data_locks *locks, unsigned *entries,
                          unsigned *waiting);

#endif

/*
 * The password gate: a counting semaphore that bounds how many Argon2
 * operations (hash, verification, dummy verification, rehash) auth runs at
 * once, and how many handlers may wait for one, so that password work can
 * never hold every gRPC worker thread or more than slots x Argon2 memory.
 */
#ifndef AUTH_PASSWORD_GATE_H
#define AUTH_PASSWORD_GATE_H

#include <pthread.h>
#include <stdint.h>

#include "status.h"

/* Longest wait for a slot when the call has no deadline, in ms. */
#define AUTH_PASSWORD_GATE_WAIT_MAX_MS 10000

struct auth_password_gate {
    pthread_mutex_t lock;
    pthread_cond_t freed;  /* signalled when a slot is given back */
    unsigned slots;        /* Argon2 operations allowed at once */
    unsigned max_waiting;  /* handlers allowed to wait for a slot */
    unsigned running;      /* slots taken now */
    unsigned waiting;      /* handlers waiting now */
    unsigned running_peak; /* highest `running` since start */
};

/* slots >= 1. CJ_ERR_INTERNAL when the lock cannot be made. */
CJ_WARN_UNUSED enum cj_status
auth_password_gate_init(struct auth_password_gate *gate, unsigned slots,
                        unsigned max_waiting);

void auth_password_gate_destroy(struct auth_password_gate *gate);

/*
 * Takes one slot, waiting at most wait_ms (capped at
 * AUTH_PASSWORD_GATE_WAIT_MAX_MS). CJ_ERR_UNAVAILABLE at once when
 * max_waiting handlers already wait; CJ_ERR_TIMEOUT when the wait ends
 * without a slot. On CJ_OK the caller must call auth_password_gate_leave.
 */
CJ_WARN_UNUSED enum cj_status
auth_password_gate_enter(struct auth_password_gate *gate, int64_t wait_ms);

void auth_password_gate_leave(struct auth_password_gate *gate);

/* Current slots taken, and the highest count seen, read under the lock. */
void auth_password_gate_read(struct auth_password_gate *gate, unsigned *running,
                             unsigned *running_peak);

#endif

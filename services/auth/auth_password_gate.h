/*
 * The password gate: a counting semaphore that bounds how many Argon2
 * operations (hash, verification, dummy verification, rehash) auth runs at
 * once, and how many handlers may wait for one, so that password work can
 * never hold every gRPC worker thread or more than slots x Argon2 memory.
 */
#ifndef AUTH_PASSWORD_GATE_H
#define AUTH_PASSWORD_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "status.h"

/* Longest wait for a slot when the call has no deadline, in ms. */
#define AUTH_PASSWORD_GATE_WAIT_MAX_MS 10000
/* Bounds of the Retry-After sent with a rejection, in seconds. */
#define AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S 1
#define AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S 60
/* Time a caller needs after its hash (store writes, signing, the reply),
 * in ms: a wait that would leave less before the deadline is shed. */
#define AUTH_PASSWORD_GATE_REPLY_MARGIN_MS 250
/* Weight of a new sample in the moving average of hold times, as 1/N. */
#define AUTH_PASSWORD_GATE_HOLD_AVG_WEIGHT 8
struct auth_password_gate {
    pthread_mutex_t lock;
    pthread_cond_t freed;  /* signalled when a slot is given back */
    unsigned slots;        /* Argon2 operations allowed at once */
    unsigned max_waiting;  /* handlers allowed to wait for a slot */
    unsigned running;      /* slots taken now */
    unsigned waiting;      /* handlers waiting now */
    unsigned running_peak; /* highest `running` since start */
    int64_t hold_avg_us;   /* moving average of slot hold time; 0: none yet */
};

/* Shed reasons, as the metric label and the log field give them. */
#define AUTH_PASSWORD_SHED_LINE_FULL "busy"
#define AUTH_PASSWORD_SHED_DEADLINE  "deadline"
#define AUTH_PASSWORD_SHED_CANCELLED "cancelled"

/* Returns whether the caller behind a gate entry has gone (cancelled). */
typedef bool (*auth_password_gone_fn)(const void *arg);

/* One caller's pass through the gate. */
struct auth_password_slot {
    int64_t entered_us;      /* monotonic time the slot was taken, in us */
    long long retry_after_s; /* after a rejection: seconds until a retry */
    const char *shed_reason; /* after a rejection: an AUTH_PASSWORD_SHED_* */
};

/* slots >= 1. CJ_ERR_INTERNAL when the lock cannot be made. */
CJ_WARN_UNUSED enum cj_status
auth_password_gate_init(struct auth_password_gate *gate, unsigned slots,
                        unsigned max_waiting);

void auth_password_gate_destroy(struct auth_password_gate *gate);

/*
 * Takes one slot. A free slot is taken at once. Otherwise the caller, whose
 * deadline is wait_ms away (capped at AUTH_PASSWORD_GATE_WAIT_MAX_MS),
 * waits in line only while a slot would still leave it one average hold
 * time and AUTH_PASSWORD_GATE_REPLY_MARGIN_MS before the deadline. It gets
 * CJ_ERR_UNAVAILABLE, with slot->retry_after_s set from the line length
 * and the measured hold time, when max_waiting handlers already wait, when
 * the callers ahead would take longer than that, or when its wait runs
 * out. On CJ_OK the caller must call auth_password_gate_leave with the
 * same slot.
 */
CJ_WARN_UNUSED enum cj_status
auth_password_gate_enter(struct auth_password_gate *gate, int64_t wait_ms,
                         struct auth_password_slot *slot);

/*
 * Takes one slot like auth_password_gate_enter, but sheds the caller with
 * AUTH_PASSWORD_SHED_CANCELLED when gone(arg) returns true: at once, or
 * when a freed slot wakes it in line, before it takes that slot. A waiter
 * that leaves passes the freed slot on to the next one. gone may be NULL.
 * Waiters wake only for a freed slot or the end of their budget. Waking
 * them on a timer to check gone() let a waiter that woke take a slot
 * before the one signalled for it. In a login flood that raised the p99
 * wait fourfold and let some callers run out of budget.
 */
CJ_WARN_UNUSED enum cj_status auth_password_gate_enter_unless_gone(
    struct auth_password_gate *gate, int64_t wait_ms,
    auth_password_gone_fn gone, const void *gone_arg,
    struct auth_password_slot *slot);

/* Gives the slot back and adds its hold time to the moving average. */
void auth_password_gate_leave(struct auth_password_gate *gate,
                              const struct auth_password_slot *slot);

/*
 * Computes the seconds a rejected caller should wait: the time `slots`
 * parallel slots take to serve `queued` callers (those running and waiting)
 * at hold_avg_us each, rounded up and kept within
 * AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S..AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S.
 * A hold time of 0 (nothing measured yet) gives the minimum.
 */
long long auth_password_gate_retry_after_s(unsigned queued, unsigned slots,
                                           int64_t hold_avg_us);

/* Current slots taken, and the highest count seen, read under the lock. */
void auth_password_gate_read(struct auth_password_gate *gate, unsigned *running,
                             unsigned *running_peak);

#endif

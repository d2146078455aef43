/* The password gate: slots for Argon2 work and a bounded line of waiters. */
#include "auth_password_gate.h"

#include <errno.h>
#include <time.h>

#define NS_PER_MS  1000000LL
#define NS_PER_SEC 1000000000LL

enum cj_status auth_password_gate_init(struct auth_password_gate *gate,
                                       unsigned slots, unsigned max_waiting)
{
    pthread_condattr_t attr;
    enum cj_status rc = CJ_ERR_INTERNAL;

    gate->slots = slots > 0 ? slots : 1;
    gate->max_waiting = max_waiting;
    gate->running = 0;
    gate->waiting = 0;
    gate->running_peak = 0;
    if (pthread_mutex_init(&gate->lock, NULL) != 0) {
        return CJ_ERR_INTERNAL;
    }
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&gate->lock);
        return CJ_ERR_INTERNAL;
    }
    /* Waits are measured on the monotonic clock, immune to clock steps. */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(&gate->freed, &attr) == 0) {
        rc = CJ_OK;
    }
    pthread_condattr_destroy(&attr);
    if (rc != CJ_OK) {
        pthread_mutex_destroy(&gate->lock);
    }
    return rc;
}

void auth_password_gate_destroy(struct auth_password_gate *gate)
{
    pthread_cond_destroy(&gate->freed);
    pthread_mutex_destroy(&gate->lock);
}

static void deadline_after(int64_t wait_ms, struct timespec *out)
{
    int64_t ns;

    clock_gettime(CLOCK_MONOTONIC, out);
    ns = (int64_t)out->tv_nsec + wait_ms * NS_PER_MS;
    out->tv_sec += (time_t)(ns / NS_PER_SEC);
    out->tv_nsec = (long)(ns % NS_PER_SEC);
}

enum cj_status auth_password_gate_enter(struct auth_password_gate *gate,
                                        int64_t wait_ms)
{
    struct timespec until;
    enum cj_status rc = CJ_OK;
    int err = 0;

    if (wait_ms > AUTH_PASSWORD_GATE_WAIT_MAX_MS) {
        wait_ms = AUTH_PASSWORD_GATE_WAIT_MAX_MS;
    }
    if (wait_ms < 0) {
        wait_ms = 0;
    }
    deadline_after(wait_ms, &until);
    pthread_mutex_lock(&gate->lock);
    if (gate->running >= gate->slots) {
        if (gate->waiting >= gate->max_waiting) {
            rc = CJ_ERR_UNAVAILABLE;
            goto out;
        }
        gate->waiting++;
        while (gate->running >= gate->slots && err != ETIMEDOUT) {
            err = pthread_cond_timedwait(&gate->freed, &gate->lock, &until);
        }
        gate->waiting--;
        if (gate->running >= gate->slots) {
            rc = CJ_ERR_TIMEOUT;
            goto out;
        }
    }
    gate->running++;
    if (gate->running > gate->running_peak) {
        gate->running_peak = gate->running;
    }
out:
    pthread_mutex_unlock(&gate->lock);
    return rc;
}

void auth_password_gate_leave(struct auth_password_gate *gate)
{
    pthread_mutex_lock(&gate->lock);
    if (gate->running > 0) {
        gate->running--;
    }
    pthread_cond_signal(&gate->freed);
    pthread_mutex_unlock(&gate->lock);
}

void auth_password_gate_read(struct auth_password_gate *gate, unsigned *running,
                             unsigned *running_peak)
{
    pthread_mutex_lock(&gate->lock);
    *running = gate->running;
    *running_peak = gate->running_peak;
    pthread_mutex_unlock(&gate->lock);
}

/* The password gate: slots for Argon2 work and a bounded line of waiters. */
#include "auth_password_gate.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "deadline.h"

#define NS_PER_US         1000LL
#define MS_PER_US_DIVISOR 1000LL
#define US_PER_SEC        1000000LL

enum cj_status auth_password_gate_init(struct auth_password_gate *gate,
                                       unsigned slots, unsigned max_waiting)
{
    gate->slots = slots > 0 ? slots : 1;
    gate->max_waiting = max_waiting;
    gate->running = 0;
    gate->waiting = 0;
    gate->running_peak = 0;
    gate->hold_avg_us = 0;
    if (pthread_mutex_init(&gate->lock, NULL) != 0) {
        return CJ_ERR_INTERNAL;
    }
    if (cj_cond_init_monotonic(&gate->freed) != CJ_OK) {
        pthread_mutex_destroy(&gate->lock);
        return CJ_ERR_INTERNAL;
    }
    return CJ_OK;
}

void auth_password_gate_destroy(struct auth_password_gate *gate)
{
    pthread_cond_destroy(&gate->freed);
    pthread_mutex_destroy(&gate->lock);
}

static int64_t monotonic_us(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * US_PER_SEC + now.tv_nsec / NS_PER_US;
}

long long auth_password_gate_retry_after_s(unsigned queued, unsigned slots,
                                           int64_t hold_avg_us)
{
    long long rounds;
    long long seconds;

    if (slots == 0) {
        slots = 1;
    }
    if (hold_avg_us <= 0) {
        return AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S;
    }
    /* Each round serves `slots` callers; a partial round still takes a
     * whole hold time. */
    rounds = ((long long)queued + slots - 1) / slots;
    if (rounds >
        AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S * US_PER_SEC / hold_avg_us) {
        return AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S;
    }
    seconds = (rounds * hold_avg_us + US_PER_SEC - 1) / US_PER_SEC;
    if (seconds < AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S) {
        seconds = AUTH_PASSWORD_GATE_RETRY_AFTER_MIN_S;
    }
    if (seconds > AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S) {
        seconds = AUTH_PASSWORD_GATE_RETRY_AFTER_MAX_S;
    }
    return seconds;
}

/* Returns the longest wait, in ms, that still leaves a caller whose
 * deadline is wait_ms away the time of one hash and the reply after it. */
static int64_t wait_budget_ms(const struct auth_password_gate *gate,
                              int64_t wait_ms)
{
    return wait_ms - gate->hold_avg_us / MS_PER_US_DIVISOR -
           AUTH_PASSWORD_GATE_REPLY_MARGIN_MS;
}

/* Returns true when the callers ahead of this one would take longer than
 * budget_ms: each round of `slots` of them takes about the average hold time.
 */
static bool line_too_slow(const struct auth_password_gate *gate,
                          int64_t budget_ms)
{
    int64_t rounds = (gate->waiting + gate->slots) / gate->slots;

    return gate->hold_avg_us > 0 &&
           rounds * gate->hold_avg_us / MS_PER_US_DIVISOR > budget_ms;
}

/* Sheds the caller with a Retry-After that covers the line. Call with the
 * lock held. */
static enum cj_status shed(const struct auth_password_gate *gate,
                           struct auth_password_slot *slot, const char *reason)
{
    slot->shed_reason = reason;
    slot->retry_after_s = auth_password_gate_retry_after_s(
        gate->running + gate->waiting, gate->slots, gate->hold_avg_us);
    return CJ_ERR_UNAVAILABLE;
}

/*
 * Waits in line until a slot is free, the wait budget runs out or the
 * caller is gone; true when a slot is free. Call with the lock held.
 */
static bool wait_for_slot(struct auth_password_gate *gate, int64_t budget_ms,
                          auth_password_gone_fn gone, const void *gone_arg,
                          bool *gone_seen)
{
    int64_t end_ms = cj_monotonic_ms() + budget_ms;
    struct timespec until;
    int64_t left_ms;

    gate->waiting++;
    while (gate->running >= gate->slots) {
        left_ms = end_ms - cj_monotonic_ms();
        if (left_ms <= 0) {
            break;
        }
        cj_deadline_after_ms(CLOCK_MONOTONIC, left_ms, &until);
        (void)pthread_cond_timedwait(&gate->freed, &gate->lock, &until);
        if (gone != NULL && gone(gone_arg)) {
            *gone_seen = true;
            break;
        }
    }
    gate->waiting--;
    if (*gone_seen && gate->running < gate->slots) {
        /* This waiter may have taken the one signal of a freed slot. */
        pthread_cond_signal(&gate->freed);
    }
    return !*gone_seen && gate->running < gate->slots;
}

enum cj_status auth_password_gate_enter(struct auth_password_gate *gate,
                                        int64_t wait_ms,
                                        struct auth_password_slot *slot)
{
    return auth_password_gate_enter_unless_gone(gate, wait_ms, NULL, NULL,
                                                slot);
}

enum cj_status auth_password_gate_enter_unless_gone(
    struct auth_password_gate *gate, int64_t wait_ms,
    auth_password_gone_fn gone, const void *gone_arg,
    struct auth_password_slot *slot)
{
    enum cj_status rc = CJ_OK;
    bool gone_seen = false;
    int64_t budget_ms;

    if (wait_ms > AUTH_PASSWORD_GATE_WAIT_MAX_MS) {
        wait_ms = AUTH_PASSWORD_GATE_WAIT_MAX_MS;
    }
    slot->entered_us = 0;
    slot->retry_after_s = 0;
    slot->shed_reason = NULL;
    pthread_mutex_lock(&gate->lock);
    if (gone != NULL && gone(gone_arg)) {
        rc = shed(gate, slot, AUTH_PASSWORD_SHED_CANCELLED);
        goto out;
    }
    if (gate->running >= gate->slots) {
        /* A caller that could not get its reply before its deadline is
         * rejected at once with a Retry-After, instead of timing out in
         * the line: a timed-out call looks to the gateway like an outage. */
        budget_ms = wait_budget_ms(gate, wait_ms);
        if (gate->waiting >= gate->max_waiting) {
            rc = shed(gate, slot, AUTH_PASSWORD_SHED_LINE_FULL);
            goto out;
        }
        if (budget_ms <= 0 || line_too_slow(gate, budget_ms)) {
            rc = shed(gate, slot, AUTH_PASSWORD_SHED_DEADLINE);
            goto out;
        }
        if (!wait_for_slot(gate, budget_ms, gone, gone_arg, &gone_seen)) {
            rc = shed(gate, slot,
                      gone_seen ? AUTH_PASSWORD_SHED_CANCELLED
                                : AUTH_PASSWORD_SHED_DEADLINE);
            goto out;
        }
    }
    gate->running++;
    if (gate->running > gate->running_peak) {
        gate->running_peak = gate->running;
    }
    slot->entered_us = monotonic_us();
out:
    pthread_mutex_unlock(&gate->lock);
    return rc;
}

void auth_password_gate_leave(struct auth_password_gate *gate,
                              const struct auth_password_slot *slot)
{
    int64_t held_us = monotonic_us() - slot->entered_us;

    if (held_us < 1) {
        held_us = 1;
    }
    pthread_mutex_lock(&gate->lock);
    if (gate->hold_avg_us == 0) {
        gate->hold_avg_us = held_us;
    } else {
        gate->hold_avg_us +=
            (held_us - gate->hold_avg_us) / AUTH_PASSWORD_GATE_HOLD_AVG_WEIGHT;
    }
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

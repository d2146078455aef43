/*
 * The periodic worker of cerrojo-session: epoch advances for idle
 * sessions, cleanup of expired state, the revocation marker's lifetime, and
 * readiness reports (Redis reachable, clocks close enough).
 */
#ifndef SESS_WORKER_H
#define SESS_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "sess_service.h"

struct sess_worker;

/* Counts of one worker pass. */
struct sess_worker_stats {
    bool ran; /* false when another replica held the lock */
    uint32_t advanced;
    uint32_t expired;
};

/* Called from the worker thread when the service stops or starts being
 * ready: Redis unreachable, or its clock too far from this one. */
typedef void (*sess_worker_redis_state_fn)(bool up, void *arg);

/* Returns the pass interval for these settings: a quarter epoch, kept
 * within 250 ms and 5 s. */
int64_t sess_worker_interval_ms(const struct sess_settings *s);

/*
 * Runs one pass at now_ms if this caller gets the lock: advances or drops
 * keys of every due session and extends the loaded marker.
 */
enum cj_status sess_worker_pass(const struct sess_service *svc, int64_t now_ms,
                                struct sess_worker_stats *stats) CJ_WARN_UNUSED;

/* Starts the worker thread; svc must outlive it. on_state may be NULL. */
enum cj_status sess_worker_start(const struct sess_service *svc,
                                 sess_worker_redis_state_fn on_state, void *arg,
                                 struct sess_worker **out) CJ_WARN_UNUSED;

/* Stops and joins the thread, then frees; NULL-safe. */
void sess_worker_stop(struct sess_worker *w);

#endif

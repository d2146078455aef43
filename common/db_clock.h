/*
 * One reading of Postgres's clock through a service's pool, for the
 * service's periodic clock check. It logs, once per change, when the pool
 * has no free connection and when Postgres is unreachable.
 */
#ifndef CJ_DB_CLOCK_H
#define CJ_DB_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

/* Event names a service logs its clock check under, e.g. "kms.*". */
struct cj_db_clock_events {
    const char *pool_busy;   /* WARN: no connection came free in time */
    const char *pool_free;   /* INFO: a check got a connection again */
    const char *unreachable; /* ERROR with "status": connect or query failed */
    const char *reachable;   /* INFO: the query ran again, or NULL */
};

/*
 * Log state of one service's check, so that only changes are logged.
 * Zero it to start. Only one thread at a time may run the check.
 */
struct cj_db_clock_check {
    bool pool_busy_logged;
    bool unreachable_logged;
};

/* Outcome of one check. */
enum cj_db_clock_result {
    /* The query ran; the offset is set. */
    CJ_DB_CLOCK_MEASURED,
    /*
     * Handlers hold every connection (a long lock, a burst) while Postgres
     * itself may be fine, so the caller leaves its health as it is.
     */
    CJ_DB_CLOCK_POOL_BUSY,
    /* The connection or the query failed. */
    CJ_DB_CLOCK_UNREACHABLE,
    /* A shutdown cancelled the check, so Postgres is not at fault. */
    CJ_DB_CLOCK_CANCELLED,
};

/*
 * Reads Postgres's clock_timestamp() through pool with the pool's acquire
 * timeout and logs each change of check's state under events. On
 * CJ_DB_CLOCK_MEASURED *offset_ms receives Postgres's clock minus this
 * host's, in milliseconds. The host's clock is read just before and after
 * the query, so that a wait for a connection does not count as offset.
 */
enum cj_db_clock_result
cj_db_clock_read(struct cj_db_clock_check *check,
                 const struct cj_db_clock_events *events,
                 struct cj_db_pool *pool, int64_t *offset_ms);

#endif

/* Reading Postgres's clock for a service's clock check, with its logs. */
#include "db_clock.h"

#include <stdlib.h>
#include <time.h>

#include "log.h"

static int64_t wall_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the clock query on conn and stores the result in *db_ms, in Unix
 * milliseconds. */
static enum cj_status query_clock_ms(struct cj_db_conn *conn, int64_t *db_ms)
{
    static const char sql[] =
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";
    PGresult *res = NULL;
    char *end = NULL;
    enum cj_status rc = cj_db_query(conn, sql, NULL, 0, false, &res);

    if (rc != CJ_OK) {
        return rc;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        rc = CJ_ERR_INTERNAL;
    } else {
        *db_ms = strtoll(PQgetvalue(res, 0, 0), &end, 10);
        rc = end != NULL && *end == '\0' ? CJ_OK : CJ_ERR_INTERNAL;
    }
    PQclear(res);
    return rc;
}

/* Logs the start and the end of a spell with no free connection. */
static void note_pool_busy(struct cj_db_clock_check *check,
                           const struct cj_db_clock_events *events,
                           bool pool_busy)
{
    if (pool_busy == check->pool_busy_logged) {
        return;
    }
    check->pool_busy_logged = pool_busy;
    if (pool_busy) {
        cj_log(CJ_LOG_WARN, events->pool_busy, NULL);
    } else {
        cj_log(CJ_LOG_INFO, events->pool_free, NULL);
    }
}

/* Logs the start of an outage with its status, and its end when events
 * has a reachable event. */
static void note_reachable(struct cj_db_clock_check *check,
                           const struct cj_db_clock_events *events,
                           enum cj_status rc)
{
    bool unreachable = rc != CJ_OK;

    if (unreachable == check->unreachable_logged) {
        return;
    }
    check->unreachable_logged = unreachable;
    if (unreachable) {
        cj_log(CJ_LOG_ERROR, events->unreachable, NULL,
               CJ_F_STR("status", cj_status_name(rc)));
    } else if (events->reachable != NULL) {
        cj_log(CJ_LOG_INFO, events->reachable, NULL);
    }
}

enum cj_db_clock_result
cj_db_clock_read(struct cj_db_clock_check *check,
                 const struct cj_db_clock_events *events,
                 struct cj_db_pool *pool, int64_t *offset_ms)
{
    struct cj_db_conn *conn = NULL;
    int64_t db_ms = 0;
    int64_t before_ms;
    int64_t after_ms;
    enum cj_status rc = cj_db_acquire(pool, -1, &conn);

    note_pool_busy(check, events, rc == CJ_ERR_TIMEOUT);
    if (rc == CJ_ERR_TIMEOUT) {
        return CJ_DB_CLOCK_POOL_BUSY;
    }
    before_ms = wall_clock_ms();
    if (rc == CJ_OK) {
        rc = query_clock_ms(conn, &db_ms);
    }
    after_ms = wall_clock_ms();
    cj_db_release(conn);
    if (rc != CJ_OK && cj_db_pool_closing(pool)) {
        return CJ_DB_CLOCK_CANCELLED;
    }
    note_reachable(check, events, rc);
    if (rc != CJ_OK) {
        return CJ_DB_CLOCK_UNREACHABLE;
    }
    /* The query ran somewhere between before_ms and after_ms. */
    *offset_ms = db_ms - (before_ms + after_ms) / 2;
    return CJ_DB_CLOCK_MEASURED;
}

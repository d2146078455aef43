/* The clock comparison with Postgres and the health status it drives. */
#include "auth_clock.h"

#include <stdlib.h>

#include "log.h"
#include "rpc_server.h"

#define AUTH_RPC_SERVICE_NAME "cerrojo.v1.Auth"

/*
 * Reads Postgres's clock, and this host's just before and after the query
 * (*before_ms, *after_ms), so that a wait for a connection does not count
 * as clock offset. Sets *pool_busy when no pooled connection came free
 * within the pool's acquire timeout: every connection is in use, and
 * Postgres itself may be reachable.
 */
static enum cj_status postgres_clock_ms(struct auth_service *svc, int64_t *out,
                                        int64_t *before_ms, int64_t *after_ms,
                                        bool *pool_busy)
{
    static const char sql[] =
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";
    struct cj_db_conn *conn = NULL;
    PGresult *res = NULL;
    enum cj_status rc = cj_db_acquire(svc->db, -1, &conn);

    *pool_busy = rc == CJ_ERR_TIMEOUT;
    *before_ms = auth_now_ms();
    if (rc == CJ_OK) {
        rc = cj_db_query(conn, sql, NULL, 0, false, &res);
    }
    *after_ms = auth_now_ms();
    if (rc == CJ_OK) {
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    cj_db_release(conn);
    return rc;
}

static void set_health(struct auth_service *svc, bool serving)
{
    enum cj_rpc_health_status status =
        serving ? CJ_RPC_HEALTH_SERVING : CJ_RPC_HEALTH_NOT_SERVING;
    bool was = atomic_exchange(&svc->serving, serving);

    if (svc->server == NULL || was == serving) {
        return;
    }
    if (cj_rpc_health_set(svc->server, "", status) != CJ_OK ||
        cj_rpc_health_set(svc->server, AUTH_RPC_SERVICE_NAME, status) !=
            CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.health_update_failed", NULL);
        return;
    }
    cj_log(serving ? CJ_LOG_INFO : CJ_LOG_WARN, "auth.health_changed", NULL,
           CJ_F_BOOL("serving", serving));
}

void auth_clock_check(struct auth_service *svc)
{
    int64_t before = 0;
    int64_t after = 0;
    int64_t db_ms = 0;
    bool pool_busy = false;
    enum cj_status rc =
        postgres_clock_ms(svc, &db_ms, &before, &after, &pool_busy);
    int64_t offset;
    int64_t magnitude;

    /* Handlers hold every connection (a long lock, a burst) while
     * Postgres itself may be fine, so health stays as it is until a check
     * gets a connection. Only the start and the end are logged. */
    if (pool_busy != svc->pool_busy_logged) {
        svc->pool_busy_logged = pool_busy;
        cj_log(pool_busy ? CJ_LOG_WARN : CJ_LOG_INFO,
               pool_busy ? "auth.postgres_pool_busy"
                         : "auth.postgres_pool_free",
               NULL);
    }
    /* A shutdown cancelled the check, so Postgres itself is not at fault. */
    if (pool_busy || (rc != CJ_OK && cj_db_pool_closing(svc->db))) {
        return;
    }
    cj_gauge_set(cj_metric_series(svc->m.postgres_up, NULL),
                 rc == CJ_OK ? 1 : 0);
    if (rc != CJ_OK) {
        /* Logged when it starts; set_health logs the recovery. */
        if (atomic_load(&svc->serving)) {
            cj_log(CJ_LOG_ERROR, "auth.postgres_unreachable", NULL,
                   CJ_F_STR("status", cj_status_name(rc)));
        }
        set_health(svc, false);
        return;
    }
    /* The query ran somewhere between before and after. */
    offset = db_ms - (before + after) / 2;
    magnitude = offset < 0 ? -offset : offset;
    cj_gauge_set(cj_metric_series(svc->m.clock_offset, NULL),
                 (double)offset / 1000.0);
    if (magnitude > AUTH_CLOCK_WARN_MS &&
        after - svc->clock_warned_at_ms >= AUTH_CLOCK_WARN_EVERY_MS) {
        svc->clock_warned_at_ms = after;
        cj_log(CJ_LOG_WARN, "auth.clock_offset", NULL,
               CJ_F_INT("offset_ms", offset));
    }
    set_health(svc, magnitude <= svc->cfg.clock_max_offset_s * 1000);
}

/* The clock comparison with Postgres and the health status it drives. */
#include "auth_clock.h"

#include "auth_schema.h"
#include "db_clock.h"
#include "log.h"
#include "rpc_server.h"

#define AUTH_RPC_SERVICE_NAME "cerrojo.v1.Auth"

static const struct cj_db_clock_events clock_events = {
    .pool_busy = "auth.postgres_pool_busy",
    .pool_free = "auth.postgres_pool_free",
    .unreachable = "auth.postgres_unreachable",
    /* set_health logs the recovery as auth.health_changed. */
    .reachable = NULL,
};

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

/*
 * Returns whether the auth migrations of this build are applied, and logs
 * each change of that result. A check that cannot run (pool busy, Postgres
 * gone since the clock query) keeps the previous result, because the clock
 * check already decides on reachability.
 */
static bool schema_ready(struct auth_service *svc)
{
    static struct cj_log_limit check_failed = CJ_LOG_LIMIT_INIT;
    char missing[AUTH_SCHEMA_MISSING_MAX];
    enum cj_status rc = auth_schema_check(svc, missing, sizeof(missing));

    if (rc == CJ_ERR_PRECONDITION && !svc->schema_missing) {
        cj_log(CJ_LOG_ERROR, "auth.schema_missing", NULL,
               CJ_F_STR("schema", "auth"), CJ_F_STR("missing", missing),
               CJ_F_STR("action", "run cerrojo-migrate up"));
        svc->schema_missing = true;
    } else if (rc == CJ_OK && svc->schema_missing) {
        cj_log(CJ_LOG_INFO, "auth.schema_ready", NULL,
               CJ_F_STR("schema", "auth"));
        svc->schema_missing = false;
    } else if (rc != CJ_OK && rc != CJ_ERR_PRECONDITION) {
        cj_log_limited(&check_failed, CJ_LOG_WARN, "auth.schema_check_failed",
                       NULL, CJ_F_STR("status", cj_status_name(rc)),
                       CJ_F_STR("error", missing));
    }
    if (rc == CJ_OK || rc == CJ_ERR_PRECONDITION) {
        long long failures = 0;
        (void)cj_log_limit_clear(&check_failed, &failures);
    }
    return !svc->schema_missing;
}

void auth_clock_check(struct auth_service *svc)
{
    int64_t offset = 0;
    int64_t magnitude;
    int64_t now_ms;
    enum cj_db_clock_result result =
        cj_db_clock_read(&svc->clock_check, &clock_events, svc->db, &offset);

    /* A busy pool or a shutdown leaves the health as it is. */
    if (result == CJ_DB_CLOCK_POOL_BUSY || result == CJ_DB_CLOCK_CANCELLED) {
        return;
    }
    cj_gauge_set(cj_metric_series(svc->m.postgres_up, NULL),
                 result == CJ_DB_CLOCK_MEASURED ? 1 : 0);
    if (result != CJ_DB_CLOCK_MEASURED) {
        set_health(svc, false);
        return;
    }
    /*
     * cj_db_clock_read compares Postgres's clock with the midpoint of the
     * host's readings around the query, so the stored offset is off by at
     * most half that round trip (plus up to 1 ms of rounding), whichever way
     * the delay splits. The host clock's drift until the next check adds to it.
     */
    atomic_store_explicit(&svc->clock_offset_ms, offset, memory_order_relaxed);
    magnitude = offset < 0 ? -offset : offset;
    now_ms = auth_now_ms(svc);
    cj_gauge_set(cj_metric_series(svc->m.clock_offset, NULL),
                 (double)offset / 1000.0);
    if (magnitude > AUTH_CLOCK_WARN_MS &&
        now_ms - svc->clock_warned_at_ms >= AUTH_CLOCK_WARN_EVERY_MS) {
        svc->clock_warned_at_ms = now_ms;
        cj_log(CJ_LOG_WARN, "auth.clock_offset", NULL,
               CJ_F_INT("offset_ms", offset));
    }
    set_health(svc, schema_ready(svc) &&
                        magnitude <= svc->cfg.clock_max_offset_s * 1000);
}

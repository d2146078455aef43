/* Helpers every flow uses: errors for the client, clocks, connections. */
#include "auth_service.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

void auth_call_error(struct auth_call *call, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vsnprintf(call->error, sizeof(call->error), format, args);
    va_end(args);
}

int64_t auth_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t auth_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum cj_status auth_db_acquire(struct auth_service *svc, const char *request_id,
                               struct cj_db_conn **out)
{
    enum cj_status rc = cj_db_acquire(svc->db, -1, out);

    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.db_unavailable", request_id,
               CJ_F_STR("status", cj_status_name(rc)));
    }
    return rc;
}

void auth_db_abort(struct cj_db_conn *conn)
{
    enum cj_status rc = cj_db_rollback(conn);

    /* cj_db_release rolls back too, so a failure here changes nothing. */
    (void)rc;
}

void auth_metrics_count_verification(struct auth_service *svc)
{
    cj_counter_inc(svc->m.password_verifications);
}

void auth_metrics_inc(struct cj_metric *metric, const char *label)
{
    const char *values[] = {label};

    if (metric != NULL) {
        cj_counter_add(cj_metric_series(metric, values), 1);
    }
}

/* Helpers every flow uses: errors for the client, clocks, connections. */
#include "auth_service.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "deadline.h"
#include "log.h"

void auth_call_error(struct auth_call *call, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vsnprintf(call->error, sizeof(call->error), format, args);
    va_end(args);
}

bool auth_call_cancelled(const struct auth_call *call)
{
    return call->rpc_call != NULL && cj_rpc_call_cancelled(call->rpc_call);
}

bool auth_call_caller_gone(const struct auth_call *call)
{
    if (auth_call_cancelled(call)) {
        return true;
    }
    return call->deadline_ms != 0 &&
           cj_monotonic_ms() + AUTH_COMMIT_MARGIN_MS >= call->deadline_ms;
}

static bool password_caller_gone(const void *arg)
{
    return auth_call_cancelled(arg);
}

int64_t auth_now_ms(const struct auth_service *svc)
{
    struct timespec ts;
    int64_t offset_ms =
        atomic_load_explicit(&svc->clock_offset_ms, memory_order_relaxed);

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + offset_ms;
}

enum cj_status auth_db_acquire(struct auth_service *svc, const char *request_id,
                               struct cj_db_conn **out)
{
    static struct cj_log_limit unavailable_limit = CJ_LOG_LIMIT_INIT;
    enum cj_status rc = cj_db_acquire(svc->db, -1, out);

    /* One line per request would flood the log during an outage. A
     * shutdown's cancel is no outage. */
    if (rc != CJ_OK && cj_db_pool_closing(svc->db)) {
        return rc;
    }
    if (rc != CJ_OK) {
        cj_log_limited(&unavailable_limit, CJ_LOG_ERROR, "auth.db_unavailable",
                       request_id, CJ_F_STR("status", cj_status_name(rc)));
    } else {
        cj_log_recovered(&unavailable_limit, "auth.db_recovered", request_id);
    }
    return rc;
}

enum cj_status auth_db_acquire_for(struct auth_service *svc,
                                   struct auth_call *call,
                                   struct cj_db_conn **out)
{
    enum cj_status rc = auth_db_acquire(svc, call->request_id, out);

    if (rc != CJ_OK && call->error[0] == '\0') {
        auth_call_error(call,
                        "the auth database (Postgres) is %s; retry "
                        "later",
                        rc == CJ_ERR_TIMEOUT ? "busy" : "unavailable");
    }
    return rc;
}

void auth_db_abort(struct cj_db_conn *conn)
{
    enum cj_status rc = cj_db_rollback(conn);

    /* cj_db_release rolls back too, so a failure here changes nothing. */
    (void)rc;
}

enum cj_status auth_password_begin(struct auth_service *svc,
                                   struct auth_call *call,
                                   struct auth_password_slot *slot)
{
    int64_t wait_ms = AUTH_PASSWORD_GATE_WAIT_MAX_MS;
    unsigned running = 0;
    unsigned peak = 0;
    enum cj_status rc;

    if (call->deadline_ms != 0) {
        wait_ms = call->deadline_ms - cj_monotonic_ms();
    }
    rc = auth_password_gate_enter_unless_gone(&svc->password_gate, wait_ms,
                                              password_caller_gone, call, slot);
    if (rc != CJ_OK) {
        call->retry_after_s = slot->retry_after_s;
        auth_metrics_inc(svc->m.password_refused, slot->shed_reason);
        cj_log(CJ_LOG_WARN, "auth.password_gate_refused", call->request_id,
               CJ_F_STR("status", cj_status_name(rc)),
               CJ_F_STR("reason", slot->shed_reason),
               CJ_F_INT("retry_after_s", slot->retry_after_s));
        return rc;
    }
    auth_password_gate_read(&svc->password_gate, &running, &peak);
    cj_gauge_set(cj_metric_series(svc->m.password_in_flight, NULL),
                 (double)running);
    cj_gauge_set(cj_metric_series(svc->m.password_in_flight_max, NULL),
                 (double)peak);
    return CJ_OK;
}

void auth_password_end(struct auth_service *svc,
                       const struct auth_password_slot *slot)
{
    unsigned running = 0;
    unsigned peak = 0;

    auth_password_gate_leave(&svc->password_gate, slot);
    auth_password_gate_read(&svc->password_gate, &running, &peak);
    cj_gauge_set(cj_metric_series(svc->m.password_in_flight, NULL),
                 (double)running);
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

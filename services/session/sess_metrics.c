/* Registration of the session service's metric families. */
#include "sess_metrics.h"

#include <string.h>

static struct cj_series *counter(struct cj_metrics *reg, const char *name,
                                 const char *help)
{
    struct cj_metric *m = cj_metrics_counter(reg, name, help, NULL, 0);

    return m != NULL ? cj_metric_series(m, NULL) : NULL;
}

static struct cj_series *gauge(struct cj_metrics *reg, const char *name,
                               const char *help)
{
    struct cj_metric *m = cj_metrics_gauge(reg, name, help, NULL, 0);

    return m != NULL ? cj_metric_series(m, NULL) : NULL;
}

enum cj_status sess_metrics_register(struct cj_metrics *reg,
                                     struct sess_metrics *m)
{
    static const char *const result_label[] = {"result"};
    static const char *const ok[] = {"ok"};
    static const char *const failed[] = {"failed"};
    static const char *const replayed[] = {"replayed"};
    static const char *const cache_not_loaded[] = {"cache_not_loaded"};
    struct cj_metric *opens;

    memset(m, 0, sizeof(*m));
    m->created =
        counter(reg, "cerrojo_session_created_total", "Sessions created.");
    opens = cj_metrics_counter(reg, "cerrojo_session_open_requests_total",
                               "OpenRequest calls by result.", result_label, 1);
    if (opens != NULL) {
        m->open_ok = cj_metric_series(opens, ok);
        m->open_failed = cj_metric_series(opens, failed);
        m->open_replayed = cj_metric_series(opens, replayed);
        m->open_cache_not_loaded = cj_metric_series(opens, cache_not_loaded);
    }
    m->advances = counter(reg, "cerrojo_session_epoch_advances_total",
                          "Epoch advances written, by requests or the "
                          "worker.");
    m->evicted = counter(reg, "cerrojo_session_evicted_total",
                         "Sessions ended because their user held more than "
                         "CERROJO_SESSION_MAX_PER_USER bound sessions.");
    m->redis_up = gauge(reg, "cerrojo_session_redis_up",
                        "1 while Redis replies to PING.");
    m->clock_offset_seconds =
        gauge(reg, "cerrojo_session_clock_offset_seconds",
              "Redis clock minus this service's clock, in seconds.");
    if (m->created == NULL || m->open_ok == NULL || m->open_failed == NULL ||
        m->open_replayed == NULL || m->open_cache_not_loaded == NULL ||
        m->advances == NULL || m->evicted == NULL || m->redis_up == NULL ||
        m->clock_offset_seconds == NULL) {
        return CJ_ERR_NOMEM;
    }
    return CJ_OK;
}

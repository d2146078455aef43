/*
 * Prometheus metrics of cerrojo-session. Every series pointer may be NULL
 * (no registry), and the update functions of common/metrics.h ignore a
 * NULL series, so callers update without checking.
 */
#ifndef SESS_METRICS_H
#define SESS_METRICS_H

#include "metrics.h"
#include "status.h"

/* Series updated by the core and the worker. */
struct sess_metrics {
    struct cj_series *created;
    struct cj_series *open_ok;
    struct cj_series *open_failed;   /* bad tag, key or epoch */
    struct cj_series *open_replayed; /* sequence already seen or too old */
    /* bound session refused while the revocation cache is not loaded */
    struct cj_series *open_cache_not_loaded;
    struct cj_series *advances;
    struct cj_series *evicted; /* ended by the per-user session limit */
    struct cj_series *redis_up;
    struct cj_series *clock_offset_seconds;
};

/* Registers the families in reg and fills m. CJ_ERR_NOMEM on failure. */
enum cj_status sess_metrics_register(struct cj_metrics *reg,
                                     struct sess_metrics *m) CJ_WARN_UNUSED;

#endif

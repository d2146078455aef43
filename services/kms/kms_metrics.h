/* The Prometheus metrics of cerrojo-kms; no label carries an id or key. */
#ifndef KMS_METRICS_H
#define KMS_METRICS_H

#include "metrics.h"
#include "status.h"

/* Series of the kms families; every pointer stays valid while the registry
 * lives, and a NULL one (no registry) ignores updates. */
struct kms_metrics {
    struct cj_series *data_keys_created;
    struct cj_series *unwrap_failed;
    struct cj_series *tokens_signed;
    struct cj_series *sealed_opened;
    struct cj_series *sealed_failed;
    struct cj_series *reload_failed;
    struct cj_series *on_demand_reloads;
    struct cj_series *postgres_up;
    struct cj_series *clock_offset_seconds;
};

/* Registers the families in reg and fills m; CJ_ERR_NOMEM on failure. */
CJ_WARN_UNUSED enum cj_status kms_metrics_register(struct cj_metrics *reg,
                                                   struct kms_metrics *m);

#endif

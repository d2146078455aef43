/* Registration of the kms metric families. */
#include "kms_metrics.h"

#include <stdbool.h>
#include <string.h>

static struct cj_series *family(struct cj_metrics *reg, bool is_counter,
                                const char *name, const char *help)
{
    struct cj_metric *m = is_counter
                              ? cj_metrics_counter(reg, name, help, NULL, 0)
                              : cj_metrics_gauge(reg, name, help, NULL, 0);

    return m != NULL ? cj_metric_series(m, NULL) : NULL;
}

enum cj_status kms_metrics_register(struct cj_metrics *reg,
                                    struct kms_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->data_keys_created =
        family(reg, true, "cerrojo_kms_data_keys_created_total",
               "Data keys made by CreateUserKey.");
    m->unwrap_failed =
        family(reg, true, "cerrojo_kms_unwrap_failures_total",
               "DecryptKey and RewrapKey inputs that did not open.");
    m->tokens_signed = family(reg, true, "cerrojo_kms_tokens_signed_total",
                              "Access tokens signed.");
    m->sealed_opened = family(reg, true, "cerrojo_kms_sealed_opened_total",
                              "Sealed requests opened.");
    m->sealed_failed = family(reg, true, "cerrojo_kms_sealed_failures_total",
                              "Sealed requests that did not open.");
    m->reload_failed = family(reg, true, "cerrojo_kms_reload_failures_total",
                              "Key-set reloads from Postgres that failed.");
    m->on_demand_reloads =
        family(reg, true, "cerrojo_kms_on_demand_reloads_total",
               "Key-set reloads started by a sealed request that named an "
               "unknown key id.");
    m->postgres_up = family(reg, false, "cerrojo_kms_postgres_up",
                            "1 while the last query to Postgres succeeded.");
    m->clock_offset_seconds =
        family(reg, false, "cerrojo_kms_clock_offset_seconds",
               "Postgres clock minus this service's clock, in seconds.");
    if (m->data_keys_created == NULL || m->unwrap_failed == NULL ||
        m->tokens_signed == NULL || m->sealed_opened == NULL ||
        m->sealed_failed == NULL || m->reload_failed == NULL ||
        m->on_demand_reloads == NULL || m->postgres_up == NULL ||
        m->clock_offset_seconds == NULL)
        return CJ_ERR_NOMEM;
    return CJ_OK;
}

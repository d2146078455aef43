/*
 * Start-up and the shared key set of cerrojo-kms. A reload that fails
 * keeps the previous key set in service and logs the failure.
 */
#include "kms_service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "crypto_util.h"
#include "deadline.h"
#include "log.h"

/* Name of the generated development root key under CERROJO_KMS_VAR_DIR. */
#define KMS_DEV_ROOT_KEY_NAME "kms-root-key"

int64_t kms_now(void)
{
    return (int64_t)time(NULL);
}

int64_t kms_hpke_publish_after_s(const struct kms_config *cfg)
{
    return KMS_HPKE_PUBLISH_RELOADS * (int64_t)cfg->reload_s;
}

int64_t kms_hpke_accept_s(const struct kms_config *cfg)
{
    int64_t needed = kms_hpke_publish_after_s(cfg) +
                     (int64_t)cfg->key_list_lifetime_s +
                     (int64_t)cfg->clock_max_offset_s;

    return cfg->hpke_accept_s > needed ? (int64_t)cfg->hpke_accept_s : needed;
}

/*
 * Logs kms.hpke_accept_raised when kms_hpke_accept_s raises the configured
 * acceptance window: a warning when the operator set the variable, and
 * info for the default, which the default key-list lifetime always raises.
 * A warning at every start with the defaults would teach operators to
 * ignore it.
 */
static void log_hpke_accept_raised(const struct kms_config *cfg)
{
    int64_t effective = kms_hpke_accept_s(cfg);
    bool configured = getenv(KMS_HPKE_ACCEPT_VAR) != NULL;

    if (effective == (int64_t)cfg->hpke_accept_s)
        return;
    cj_log(configured ? CJ_LOG_WARN : CJ_LOG_INFO, "kms.hpke_accept_raised",
           NULL, CJ_F_STR("variable", KMS_HPKE_ACCEPT_VAR),
           CJ_F_INT("configured_s", cfg->hpke_accept_s),
           CJ_F_INT("effective_s", effective),
           CJ_F_BOOL("default", !configured),
           CJ_F_INT("key_list_lifetime_s", cfg->key_list_lifetime_s),
           CJ_F_INT("publish_after_s", kms_hpke_publish_after_s(cfg)),
           CJ_F_INT("clock_max_offset_s", cfg->clock_max_offset_s));
}

static enum cj_status load_root(struct kms_service *svc, char *err,
                                size_t err_size)
{
    char path[4096];
    bool dev = svc->profile == CJ_PROFILE_DEV;
    const char *var_dir = svc->cfg.var_dir != NULL ? svc->cfg.var_dir : "var";

    snprintf(path, sizeof(path), "%s/%s", var_dir, KMS_DEV_ROOT_KEY_NAME);
    if (dev && svc->cfg.root_key_file == NULL && svc->cfg.root_key == NULL &&
        mkdir(var_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_size,
                 "CERROJO_KMS_VAR_DIR: cannot create %s for the generated "
                 "development root key",
                 var_dir);
        return CJ_ERR_UNAVAILABLE;
    }
    struct kms_root_key_source src = {
        .file_path = svc->cfg.root_key_file,
        .value = svc->cfg.root_key,
        .allow_generated = dev,
        .profile = svc->profile,
        .generated_path = path,
    };
    return kms_root_key_load(&src, &svc->root, err, err_size);
}

static enum cj_status check_signing_alg(struct kms_service *svc, char *err,
                                        size_t err_size)
{
    if (cj_jwk_alg_parse(svc->cfg.signing_alg, &svc->lifecycle.signing_alg))
        return CJ_OK;
    snprintf(err, err_size,
             "CERROJO_KMS_SIGNING_ALG: expected RS256, ES256 or EdDSA, got "
             "'%s'",
             svc->cfg.signing_alg);
    return CJ_ERR_INVALID;
}

enum cj_status kms_service_init(struct kms_service *svc,
                                enum cj_profile profile, struct kms_config *cfg,
                                char *err, size_t err_size)
{
    static const uint16_t aeads[] = KMS_HPKE_AEADS;
    enum cj_status st;

    memset(svc, 0, sizeof(*svc));
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->wake, NULL);
    pthread_mutex_init(&svc->reload_lock, NULL);
    /* The gRPC server starts with every health status at SERVING. */
    svc->serving = true;
    svc->profile = profile;
    svc->cfg = *cfg; /* svc owns the strings from here on */
    memset(cfg, 0, sizeof(*cfg));
    st = check_signing_alg(svc, err, err_size);
    if (st != CJ_OK)
        return st;
    st = load_root(svc, err, err_size);
    /* The key now lives in sodium_malloc memory only. */
    if (svc->cfg.root_key != NULL)
        cj_wipe(svc->cfg.root_key, strlen(svc->cfg.root_key));
    if (st != CJ_OK)
        return st;

    struct cj_db_options db = {
        .dsn = svc->cfg.database_url,
        .pool_size = (unsigned)svc->cfg.db_pool_size,
        .connect_timeout_s = CJ_DB_DEFAULT_CONNECT_TIMEOUT_S,
        .statement_timeout_ms = CJ_DB_DEFAULT_STATEMENT_TIMEOUT_MS,
        .acquire_timeout_ms = CJ_DB_DEFAULT_ACQUIRE_TIMEOUT_MS,
        .application_name = "cerrojo-kms",
    };
    st = cj_db_pool_new(&db, &svc->pool);
    if (st != CJ_OK) {
        snprintf(err, err_size, "%s",
                 "CERROJO_KMS_DATABASE_URL: not a valid libpq URI");
        return st;
    }

    svc->registry = cj_metrics_new();
    if (svc->registry == NULL ||
        kms_metrics_register(svc->registry, &svc->metrics) != CJ_OK) {
        snprintf(err, err_size, "%s", "cannot register the kms metrics");
        return CJ_ERR_NOMEM;
    }
    memcpy(svc->hpke_aead_ids, aeads, sizeof(aeads));
    svc->lifecycle = (struct kms_lifecycle){
        .pool = svc->pool,
        .root = svc->root,
        .signing_alg = svc->lifecycle.signing_alg,
        .hpke_aead_ids = svc->hpke_aead_ids,
        .n_hpke_aead_ids = sizeof(aeads) / sizeof(aeads[0]),
        .promote_after_s = svc->cfg.promote_after_s,
        .hpke_accept_s = kms_hpke_accept_s(&svc->cfg),
        .hpke_destroy_s = svc->cfg.hpke_destroy_s,
        .leeway_s = svc->cfg.leeway_s,
        .settle_s = svc->cfg.settle_s,
    };
    log_hpke_accept_raised(&svc->cfg);
    return CJ_OK;
}

/* Reloads as kms_service_reload does. The caller holds reload_lock. */
static enum cj_status reload_locked(struct kms_service *svc)
{
    struct cj_db_conn *conn = NULL;
    struct kms_key_rows rows = {0};
    struct kms_keyring *ring = NULL;
    struct kms_keyring *old = NULL;
    char failed[KMS_LABEL_MAX + 1] = "";
    enum cj_status st = cj_db_acquire(svc->pool, -1, &conn);

    if (st != CJ_OK)
        goto out;
    st = kms_store_load(conn, &rows);
    cj_db_release(conn);
    if (st != CJ_OK)
        goto out;
    st = kms_keyring_build(&rows, svc->root->bytes, kms_now(),
                           svc->cfg.leeway_s, &ring, failed);
    if (st != CJ_OK)
        goto out;
    pthread_mutex_lock(&svc->lock);
    old = svc->ring;
    svc->ring = ring;
    pthread_mutex_unlock(&svc->lock);
    kms_keyring_unref(old);
out:
    kms_key_rows_free(&rows);
    if (st != CJ_OK)
        cj_counter_add(svc->metrics.reload_failed, 1);
    if (st != CJ_OK)
        cj_log(CJ_LOG_ERROR, "kms.reload_failed", NULL,
               CJ_F_STR("status", cj_status_name(st)), CJ_F_STR("key", failed));
    return st;
}

enum cj_status kms_service_reload(struct kms_service *svc)
{
    pthread_mutex_lock(&svc->reload_lock);
    enum cj_status st = reload_locked(svc);
    pthread_mutex_unlock(&svc->reload_lock);
    return st;
}

enum kms_reload_outcome kms_service_reload_on_demand(struct kms_service *svc,
                                                     const char *request_id,
                                                     uint8_t key_id)
{
    enum kms_reload_outcome outcome = KMS_RELOAD_BUSY;
    enum cj_status st = CJ_OK;

    if (pthread_mutex_trylock(&svc->reload_lock) != 0)
        return outcome;
    int64_t now_ms = cj_monotonic_ms();
    outcome = KMS_RELOAD_TOO_SOON;
    if (now_ms >= svc->on_demand_next_ms) {
        svc->on_demand_next_ms = now_ms + KMS_RELOAD_ON_DEMAND_MIN_MS;
        cj_counter_add(svc->metrics.on_demand_reloads, 1);
        st = reload_locked(svc);
        outcome = st == CJ_OK ? KMS_RELOAD_DONE : KMS_RELOAD_FAILED;
    }
    pthread_mutex_unlock(&svc->reload_lock);
    if (outcome != KMS_RELOAD_TOO_SOON)
        cj_log(CJ_LOG_INFO, "kms.reload_on_demand", request_id,
               CJ_F_INT("key_id", key_id),
               CJ_F_STR("status", cj_status_name(st)));
    return outcome;
}

const char *kms_reload_outcome_name(enum kms_reload_outcome outcome)
{
    switch (outcome) {
    case KMS_RELOAD_DONE:
        return "reloaded";
    case KMS_RELOAD_FAILED:
        return "failed";
    case KMS_RELOAD_BUSY:
        return "busy";
    case KMS_RELOAD_TOO_SOON:
        return "too_soon";
    }
    return "unknown";
}

struct kms_keyring *kms_service_keys(struct kms_service *svc)
{
    struct kms_keyring *ring = NULL;

    pthread_mutex_lock(&svc->lock);
    if (svc->ring != NULL)
        ring = kms_keyring_ref(svc->ring);
    pthread_mutex_unlock(&svc->lock);
    return ring;
}

static const struct cj_db_clock_events clock_events = {
    .pool_busy = "kms.postgres_pool_busy",
    .pool_free = "kms.postgres_pool_free",
    .unreachable = "kms.postgres_unreachable",
    .reachable = "kms.postgres_reachable",
};

static void set_health(struct kms_service *svc, bool serving)
{
    enum cj_rpc_health_status h =
        serving ? CJ_RPC_HEALTH_SERVING : CJ_RPC_HEALTH_NOT_SERVING;

    svc->serving = serving;
    if (svc->server == NULL)
        return;
    if (cj_rpc_health_set(svc->server, "", h) != CJ_OK ||
        cj_rpc_health_set(svc->server, KMS_RPC_SERVICE_NAME, h) != CJ_OK)
        cj_log(CJ_LOG_ERROR, "kms.health_update_failed", NULL);
}

void kms_service_check_clock(struct kms_service *svc)
{
    int64_t offset = 0;
    enum cj_db_clock_result result =
        cj_db_clock_read(&svc->clock_check, &clock_events, svc->pool, &offset);

    /* A busy pool or a shutdown leaves the health as it is. */
    if (result == CJ_DB_CLOCK_POOL_BUSY || result == CJ_DB_CLOCK_CANCELLED)
        return;
    cj_gauge_set(svc->metrics.postgres_up,
                 result == CJ_DB_CLOCK_MEASURED ? 1 : 0);
    if (result != CJ_DB_CLOCK_MEASURED) {
        set_health(svc, false);
        return;
    }
    int64_t magnitude = offset < 0 ? -offset : offset;
    cj_gauge_set(svc->metrics.clock_offset_seconds, (double)offset / 1000.0);
    if (magnitude > KMS_CLOCK_WARN_MS)
        cj_log(CJ_LOG_WARN, "kms.clock_offset", NULL,
               CJ_F_INT("offset_ms", offset));
    set_health(svc, magnitude <= svc->cfg.clock_max_offset_s * 1000);
}

/* Reload schedule of the reloader thread, which alone uses it. */
struct kms_reload_schedule {
    int64_t due_ms; /* CLOCK_MONOTONIC time of the next periodic reload */
    bool failed;    /* the last periodic reload failed */
};

/*
 * Returns how long the reloader waits before its next round, in
 * milliseconds: until the next periodic reload, or KMS_RECHECK_MS while
 * kms is not serving, so that readiness returns soon after Postgres does.
 */
static int64_t next_round_in_ms(const struct kms_service *svc,
                                const struct kms_reload_schedule *schedule)
{
    int64_t until_due = schedule->due_ms - cj_monotonic_ms();

    if (until_due < 0)
        until_due = 0;
    if (!svc->serving && until_due > KMS_RECHECK_MS)
        return KMS_RECHECK_MS;
    return until_due;
}

/* Waits up to wait_ms on svc->wake, which svc->lock guards and the caller
 * holds. */
static void wait_locked(struct kms_service *svc, int64_t wait_ms)
{
    struct timespec until;

    /* svc->wake was made with default attributes, so it waits on
     * CLOCK_REALTIME. */
    cj_deadline_after_ms(CLOCK_REALTIME, wait_ms, &until);
    pthread_cond_timedwait(&svc->wake, &svc->lock, &until);
}

/*
 * Checks the clock, then reloads the key set when the periodic reload is
 * due, or at once when this check found Postgres back after a failed
 * reload, so that the key set does not stay stale for a whole interval.
 */
static void run_round(struct kms_service *svc,
                      struct kms_reload_schedule *schedule)
{
    bool was_serving = svc->serving;

    kms_service_check_clock(svc);
    bool recovered = !was_serving && svc->serving;
    int64_t now_ms = cj_monotonic_ms();
    if (now_ms < schedule->due_ms && !(recovered && schedule->failed))
        return;
    schedule->due_ms = now_ms + svc->cfg.reload_s * CJ_MS_PER_S;
    schedule->failed = kms_service_reload(svc) != CJ_OK;
    /* A failure is logged and the previous key set stays in use. */
    if (schedule->failed)
        cj_log(CJ_LOG_WARN, "kms.keys_kept", NULL,
               CJ_F_INT("retry_in_s", svc->cfg.reload_s));
}

static void *reloader_main(void *arg)
{
    struct kms_service *svc = arg;
    struct kms_reload_schedule schedule = {
        .due_ms = cj_monotonic_ms() + svc->cfg.reload_s * CJ_MS_PER_S,
        .failed = false,
    };

    pthread_mutex_lock(&svc->lock);
    while (!svc->stopping) {
        wait_locked(svc, next_round_in_ms(svc, &schedule));
        if (svc->stopping)
            break;
        pthread_mutex_unlock(&svc->lock);
        run_round(svc, &schedule);
        pthread_mutex_lock(&svc->lock);
    }
    pthread_mutex_unlock(&svc->lock);
    return NULL;
}

enum cj_status kms_service_start_reloader(struct kms_service *svc)
{
    if (pthread_create(&svc->reloader, NULL, reloader_main, svc) != 0)
        return CJ_ERR_INTERNAL;
    svc->reloader_running = true;
    return CJ_OK;
}

void kms_service_stop_reloader(struct kms_service *svc)
{
    if (!svc->reloader_running)
        return;
    pthread_mutex_lock(&svc->lock);
    svc->stopping = true;
    pthread_cond_signal(&svc->wake);
    pthread_mutex_unlock(&svc->lock);
    pthread_join(svc->reloader, NULL);
    svc->reloader_running = false;
}

void kms_service_free(struct kms_service *svc)
{
    kms_service_stop_reloader(svc);
    kms_keyring_unref(svc->ring);
    svc->ring = NULL;
    cj_db_pool_free(svc->pool);
    svc->pool = NULL;
    cj_metrics_free(svc->registry);
    svc->registry = NULL;
    kms_root_key_free(svc->root);
    svc->root = NULL;
    cj_config_free(kms_config_options, kms_config_option_count, &svc->cfg);
    pthread_mutex_destroy(&svc->lock);
    pthread_cond_destroy(&svc->wake);
    pthread_mutex_destroy(&svc->reload_lock);
}

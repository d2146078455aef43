/* Process state of cerrojo-auth: pools, clients, hasher, metrics. */
#include "auth_app.h"

#include <string.h>
#include <unistd.h>

#include "crypto_util.h"
#include "log.h"

/*
 * Sizes the password gate and the gRPC worker pool together. All auth
 * methods share one worker pool, and a handler waiting for a gate slot
 * holds its worker, so the gate also bounds its waiters: at most
 * slots + waiting = workers - AUTH_RESERVED_WORKERS handlers are ever in
 * password work, and the reserved workers stay free for Introspect and the
 * data RPCs during a login flood. Logins past that get UNAVAILABLE at once
 * with a Retry-After computed from the line length and the measured slot
 * hold time. The line is sized for a burst (AUTH_WAITERS_PER_SLOT). When
 * the configured workers are too few for that, they are raised to
 * (1 + AUTH_WAITERS_PER_SLOT) x slots + AUTH_RESERVED_WORKERS. Argon2 memory
 * stays bounded by slots x its memory cost whatever the worker count.
 */
static enum cj_status open_password_gate(struct auth_service *svc)
{
    long long slots = svc->cfg.argon2_concurrency;
    long long workers = svc->cfg.grpc.worker_threads;
    long long cpus;
    enum cj_status rc;

    if (slots <= 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        slots = cpus > 0 ? cpus : 1;
        if (slots > AUTH_ARGON2_CONCURRENCY_MAX) {
            slots = AUTH_ARGON2_CONCURRENCY_MAX;
        }
    }
    if (workers < (1 + AUTH_WAITERS_PER_SLOT) * slots + AUTH_RESERVED_WORKERS) {
        workers = (1 + AUTH_WAITERS_PER_SLOT) * slots + AUTH_RESERVED_WORKERS;
        cj_log(CJ_LOG_INFO, "auth.workers_raised", NULL,
               CJ_F_INT("from", svc->cfg.grpc.worker_threads),
               CJ_F_INT("to", workers), CJ_F_INT("argon2_slots", slots));
        svc->cfg.grpc.worker_threads = workers;
    }
    rc = auth_password_gate_init(
        &svc->password_gate, (unsigned)slots,
        (unsigned)(workers - slots - AUTH_RESERVED_WORKERS));
    if (rc == CJ_OK) {
        svc->password_gate_ready = true;
        cj_log(CJ_LOG_INFO, "auth.password_gate", NULL,
               CJ_F_INT("argon2_slots", slots),
               CJ_F_INT("max_waiting", workers - slots - AUTH_RESERVED_WORKERS),
               CJ_F_INT("workers", workers));
    }
    return rc;
}

static enum cj_status open_password(struct auth_service *svc)
{
    struct cj_password_params params;
    enum cj_status rc;

    cj_password_params_default(&params);
    params.memlimit_bytes = (size_t)svc->cfg.argon2_memory_bytes;
    params.opslimit = (unsigned long long)svc->cfg.argon2_passes;
    rc = cj_password_params_check(&params);
    if (rc == CJ_OK) {
        rc = cj_password_hasher_new(&params, &svc->hasher);
    }
    if (rc == CJ_OK) {
        rc = open_password_gate(svc);
    }
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL,
               CJ_F_STR("part", "password hasher"),
               CJ_F_STR("status", cj_status_name(rc)));
        return rc;
    }
    cj_password_policy_default(&svc->password_policy);
    svc->password_policy.min_code_points = (size_t)svc->cfg.password_min_chars;
    svc->password_policy.dict_path = svc->cfg.cracklib_dict;
    rc = cj_password_policy_check_config(&svc->password_policy);
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL,
               CJ_F_STR("part", "password dictionary"),
               CJ_F_STR("path", svc->cfg.cracklib_dict));
    }
    return rc;
}

static enum cj_status open_stores(struct auth_service *svc)
{
    struct cj_db_options db = {
        .dsn = svc->cfg.database_url,
        .pool_size = (unsigned)svc->cfg.db_pool_size,
        .connect_timeout_s = CJ_DB_DEFAULT_CONNECT_TIMEOUT_S,
        .statement_timeout_ms = CJ_DB_DEFAULT_STATEMENT_TIMEOUT_MS,
        .acquire_timeout_ms = svc->cfg.db_acquire_timeout_ms,
        .application_name = "cerrojo-auth",
    };
    struct cj_redis_options redis = {
        .host = svc->cfg.redis_host,
        .port = (int)svc->cfg.redis_port,
        .password = svc->cfg.redis_password,
        .pool_size = (unsigned)svc->cfg.redis_pool_size,
        .connect_timeout_ms = CJ_REDIS_DEFAULT_CONNECT_TIMEOUT_MS,
        .command_timeout_ms = svc->cfg.redis_command_timeout_ms,
        .acquire_timeout_ms = CJ_REDIS_DEFAULT_ACQUIRE_TIMEOUT_MS,
    };
    enum cj_status rc = cj_db_pool_new(&db, &svc->db);

    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL,
               CJ_F_STR("part", "postgres pool"),
               CJ_F_STR("status", cj_status_name(rc)));
        return rc;
    }
    rc = cj_redis_pool_new(&redis, &svc->redis);
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL,
               CJ_F_STR("part", "redis pool"),
               CJ_F_STR("status", cj_status_name(rc)));
    }
    return rc;
}

static enum cj_status open_client(struct auth_service *svc, const char *target,
                                  const char *part, struct cj_rpc_client **out)
{
    struct cj_rpc_client_options opts = {
        .targets = target,
        .plaintext = svc->cfg.grpc.plaintext,
        .tls_ca_file = svc->cfg.grpc.tls_ca,
        .tls_cert_file = svc->cfg.grpc.tls_cert,
        .tls_key_file = svc->cfg.grpc.tls_key,
        .tls_server_name = svc->cfg.tls_server_name,
        .default_timeout_ms = svc->cfg.rpc_timeout_ms,
        .wait_for_ready = true,
    };
    enum cj_status rc = cj_rpc_client_create(&opts, out);

    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL, CJ_F_STR("part", part),
               CJ_F_STR("status", cj_status_name(rc)));
    }
    return rc;
}

static enum cj_status open_metrics(struct auth_service *svc)
{
    static const char *const result_label[] = {"result"};
    static const char *const reason_label[] = {"reason"};
    struct auth_metrics *m = &svc->m;

    svc->metrics = cj_metrics_new();
    if (svc->metrics == NULL) {
        return CJ_ERR_NOMEM;
    }
    m->password_verifications = cj_metrics_counter(
        svc->metrics, "auth_password_verifications_total",
        "Argon2 password verifications run by login (real and dummy)", NULL, 0);
    m->logins = cj_metrics_counter(svc->metrics, "auth_logins_total",
                                   "Login attempts by result", result_label, 1);
    m->registrations =
        cj_metrics_counter(svc->metrics, "auth_registrations_total",
                           "Registrations by result", result_label, 1);
    m->refreshes =
        cj_metrics_counter(svc->metrics, "auth_refreshes_total",
                           "Refresh attempts by result", result_label, 1);
    m->throttled = cj_metrics_counter(
        svc->metrics, "auth_login_throttled_total",
        "Login attempts refused by the per-account throttle", NULL, 0);
    m->cache_reloads = cj_metrics_counter(
        svc->metrics, "auth_revocation_cache_reloads_total",
        "Reloads of session's revocation cache from Postgres", NULL, 0);
    m->revocations_resent = cj_metrics_counter(
        svc->metrics, "auth_revocations_resent_total",
        "Revocations sent to session again because it never confirmed them",
        NULL, 0);
    m->unconfirmed_rows = cj_metrics_gauge(
        svc->metrics, "auth_revocations_unconfirmed",
        "Unexpired revocations that session has not confirmed, as the "
        "revocation-cache watcher last counted them",
        NULL, 0);
    m->cache_stale = cj_metrics_gauge(
        svc->metrics, "auth_revocation_cache_stale",
        "1 from a failed delivery of a revocation to session until a full "
        "reload of its revocation cache succeeds, else 0",
        NULL, 0);
    m->clock_offset = cj_metrics_gauge(
        svc->metrics, "auth_clock_offset_seconds",
        "Postgres clock minus this service's clock, in seconds", NULL, 0);
    m->postgres_up = cj_metrics_gauge(
        svc->metrics, "auth_postgres_up",
        "1 when the last clock check reached Postgres, else 0", NULL, 0);
    m->password_in_flight = cj_metrics_gauge(
        svc->metrics, "auth_password_in_flight",
        "Argon2 operations running now (hash and verification)", NULL, 0);
    m->password_in_flight_max = cj_metrics_gauge(
        svc->metrics, "auth_password_in_flight_max",
        "Maximum Argon2 operations running at once since start", NULL, 0);
    m->password_refused = cj_metrics_counter(
        svc->metrics, "auth_password_gate_refused_total",
        "Calls rejected by the password gate, by reason (busy, deadline, "
        "cancelled)",
        reason_label, 1);
    m->data_write_waiting = cj_metrics_gauge(
        svc->metrics, "auth_data_write_waiting",
        "PutData calls waiting for an earlier PUT of the same user and class",
        NULL, 0);
    m->data_write_refused = cj_metrics_counter(
        svc->metrics, "auth_data_write_refused_total",
        "PutData calls rejected while waiting for an earlier PUT of the same "
        "user and class, by reason (busy, deadline)",
        reason_label, 1);
    if (m->password_in_flight == NULL || m->password_in_flight_max == NULL ||
        m->password_refused == NULL || m->data_write_waiting == NULL ||
        m->data_write_refused == NULL) {
        return CJ_ERR_INTERNAL;
    }
    if (m->clock_offset == NULL || m->postgres_up == NULL ||
        m->password_verifications == NULL || m->logins == NULL ||
        m->registrations == NULL || m->refreshes == NULL ||
        m->throttled == NULL || m->cache_reloads == NULL ||
        m->revocations_resent == NULL || m->unconfirmed_rows == NULL ||
        m->cache_stale == NULL) {
        return CJ_ERR_INTERNAL;
    }
    return CJ_OK;
}

enum cj_status auth_app_open(struct auth_service *svc)
{
    pthread_rwlockattr_t jwks_attr;
    enum cj_status rc = cj_crypto_init();

    /* glibc prefers readers by default, which lets a steady stream of
     * Introspect calls keep a refetch out indefinitely. */
    pthread_rwlockattr_init(&jwks_attr);
    pthread_rwlockattr_setkind_np(&jwks_attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&svc->jwks.lock, &jwks_attr);
    pthread_rwlockattr_destroy(&jwks_attr);
    pthread_mutex_init(&svc->wait_lock, NULL);
    pthread_mutex_init(&svc->throttle_key_lock, NULL);
    atomic_store(&svc->throttle_key_ready, false);
    pthread_cond_init(&svc->wait_cond, NULL);
    atomic_store(&svc->stopping, false);
    atomic_store(&svc->revocations_stale, false);
    atomic_store(&svc->serving, true);
    svc->throttle.free_attempts = svc->cfg.login_free_attempts;
    svc->throttle.account_free_attempts = svc->cfg.login_account_free_attempts;
    svc->throttle.address_free_attempts = svc->cfg.login_address_free_attempts;
    svc->throttle.base_delay_ms = svc->cfg.login_base_delay_ms;
    svc->throttle.max_delay_ms = svc->cfg.login_max_delay_ms;
    svc->throttle.streak_ttl_ms = svc->cfg.login_streak_ttl_s * 1000;
    svc->throttle.known_address_ttl_ms =
        svc->cfg.login_known_address_ttl_s * 1000;
    if (rc == CJ_OK) {
        rc = open_password(svc);
    }
    if (rc == CJ_OK) {
        rc = auth_data_locks_init(&svc->data_locks);
        svc->data_locks_ready = rc == CJ_OK;
        svc->data_locks.waiting_max = (unsigned)(svc->cfg.grpc.worker_threads /
                                                 AUTH_DATA_LOCK_WORKER_SHARE);
        if (svc->data_locks.waiting_max < AUTH_DATA_LOCK_WAITING_MIN) {
            svc->data_locks.waiting_max = AUTH_DATA_LOCK_WAITING_MIN;
        }
    }
    if (rc == CJ_OK) {
        rc = open_stores(svc);
    }
    if (rc == CJ_OK) {
        rc = open_client(svc, svc->cfg.kms_target, "kms client", &svc->kms);
    }
    if (rc == CJ_OK) {
        rc = open_client(svc, svc->cfg.session_target, "session client",
                         &svc->session);
    }
    if (rc == CJ_OK) {
        rc = open_metrics(svc);
    }
    if (rc == CJ_OK) {
        svc->data_locks.waiting_gauge =
            cj_metric_series(svc->m.data_write_waiting, NULL);
    }
    return rc;
}

void auth_app_close(struct auth_service *svc)
{
    cj_rpc_client_destroy(svc->kms);
    cj_rpc_client_destroy(svc->session);
    cj_redis_pool_free(svc->redis);
    cj_db_pool_free(svc->db);
    cj_password_hasher_free(svc->hasher);
    if (svc->password_gate_ready) {
        auth_password_gate_destroy(&svc->password_gate);
        svc->password_gate_ready = false;
    }
    if (svc->data_locks_ready) {
        auth_data_locks_destroy(&svc->data_locks);
        svc->data_locks_ready = false;
    }
    cj_jwks_free(svc->jwks.keys);
    cj_metrics_free(svc->metrics);
    cj_wipe(svc->throttle_key, sizeof(svc->throttle_key));
    atomic_store(&svc->throttle_key_ready, false);
    svc->kms = NULL;
    svc->session = NULL;
    svc->redis = NULL;
    svc->db = NULL;
    svc->hasher = NULL;
    svc->jwks.keys = NULL;
    svc->metrics = NULL;
}

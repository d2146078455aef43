/*
 * The JWKS cache. Readers verify under a read lock; a fetch runs without
 * the read-write lock (it is an RPC) and swaps the new set in under the
 * write lock. A background thread refetches the set when it reaches the
 * refresh period, so that an idle gateway knows a new key before a token
 * signed with it arrives.
 */
#include "gw_jwks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cerrojo/v1/kms.pb-c.h"
#include "deadline.h"
#include "gw_json.h"
#include "gw_routes.h"
#include "log.h"

/* Room for a backend's status message in the log. */
#define GW_JWKS_DETAIL_CHARS 256

struct gw_jwks_cache {
    struct gw_backends *backends;
    unsigned refresh_seconds;
    pthread_rwlock_t lock;
    /* Guarded by lock. */
    struct cj_jwks *set;
    char *json;
    unsigned max_age_seconds;
    int64_t fetched_ms; /* monotonic; 0 when never */
    /* Last fetch attempt, monotonic ms; read and written atomically. */
    int64_t attempted_ms;
    /* Held for the whole of a fetch, so that a request that finds no set
     * while the first fetch is in flight can wait for it. */
    pthread_mutex_t fetch_lock;
    /* The refresh thread; stop and wake are guarded by thread_lock. */
    pthread_t thread;
    bool thread_started;
    bool stopping;
    pthread_mutex_t thread_lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
};

static const struct gw_rpc gw_get_jwks_rpc = {
    GW_BACKEND_KMS, "/cerrojo.v1.Kms/GetJwks",
    &cerrojo__v1__get_jwks_request__descriptor,
    &cerrojo__v1__get_jwks_response__descriptor};

struct gw_jwks_cache *gw_jwks_cache_new(struct gw_backends *backends,
                                        unsigned refresh_seconds)
{
    struct gw_jwks_cache *cache = calloc(1, sizeof(*cache));

    if (cache == NULL) {
        return NULL;
    }
    if (cj_cond_init_monotonic(&cache->wake) != CJ_OK) {
        free(cache);
        return NULL;
    }
    cache->backends = backends;
    cache->refresh_seconds = refresh_seconds;
    pthread_rwlock_init(&cache->lock, NULL);
    pthread_mutex_init(&cache->fetch_lock, NULL);
    pthread_mutex_init(&cache->thread_lock, NULL);
    return cache;
}

void gw_jwks_cache_free(struct gw_jwks_cache *cache)
{
    if (cache == NULL) {
        return;
    }
    gw_jwks_stop_refresh(cache);
    cj_jwks_free(cache->set);
    free(cache->json);
    pthread_rwlock_destroy(&cache->lock);
    pthread_mutex_destroy(&cache->fetch_lock);
    pthread_cond_destroy(&cache->wake);
    pthread_mutex_destroy(&cache->thread_lock);
    free(cache);
}

/* The refresh period in seconds: the configured one, or kms's max-age
 * when shorter. Call under the lock. */
static unsigned gw_jwks_period_seconds(const struct gw_jwks_cache *cache)
{
    unsigned period = cache->refresh_seconds;

    if (cache->max_age_seconds > 0 && cache->max_age_seconds < period) {
        period = cache->max_age_seconds;
    }
    return period;
}

/* True when the set is missing or older than the refresh period or kms's
 * max-age. Call under the lock. */
static bool gw_jwks_stale(const struct gw_jwks_cache *cache, int64_t now_ms)
{
    if (cache->set == NULL) {
        return true;
    }
    return now_ms - cache->fetched_ms >=
           (int64_t)gw_jwks_period_seconds(cache) * 1000;
}

/* Fetches the set from kms unless a fetch started less than
 * GW_JWKS_FETCH_INTERVAL_MS ago. `trigger` names the reason in the log:
 * "timer", "stale" or "unknown_kid". */
static void gw_jwks_fetch(struct gw_jwks_cache *cache, const char *trigger)
{
    Cerrojo__V1__GetJwksRequest request = CERROJO__V1__GET_JWKS_REQUEST__INIT;
    ProtobufCMessage *message = NULL;
    struct cj_jwks *set = NULL;
    char *json = NULL;
    char detail[GW_JWKS_DETAIL_CHARS] = "";
    int64_t now = cj_monotonic_ms();
    int64_t last = __atomic_load_n(&cache->attempted_ms, __ATOMIC_RELAXED);
    const Cerrojo__V1__GetJwksResponse *response;
    grpc_status_code code;
    enum cj_status status;

    if (last != 0 && now - last < GW_JWKS_FETCH_INTERVAL_MS) {
        return;
    }
    if (!__atomic_compare_exchange_n(&cache->attempted_ms, &last, now, false,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        return; /* another thread is fetching */
    }
    pthread_mutex_lock(&cache->fetch_lock);
    code =
        gw_backend_call(cache->backends, &gw_get_jwks_rpc, NULL, &request.base,
                        &message, detail, sizeof(detail), NULL);
    if (code != GRPC_STATUS_OK) {
        cj_log(CJ_LOG_WARN, "gateway.jwks_fetch_failed", NULL,
               CJ_F_STR("trigger", trigger), CJ_F_INT("grpc_status", code),
               CJ_F_STR("detail", detail));
        goto out;
    }
    response = (const Cerrojo__V1__GetJwksResponse *)message;
    status =
        cj_jwks_parse(response->jwks_json, strlen(response->jwks_json), &set);
    json = strdup(response->jwks_json);
    if (status != CJ_OK || json == NULL) {
        cj_log(CJ_LOG_ERROR, "gateway.jwks_invalid", NULL,
               CJ_F_STR("status", cj_status_name(status)));
        goto out;
    }
    pthread_rwlock_wrlock(&cache->lock);
    cj_jwks_free(cache->set);
    free(cache->json);
    cache->set = set;
    cache->json = json;
    cache->max_age_seconds = response->max_age_seconds;
    cache->fetched_ms = cj_monotonic_ms();
    pthread_rwlock_unlock(&cache->lock);
    cj_log(CJ_LOG_INFO, "gateway.jwks_refreshed", NULL,
           CJ_F_STR("trigger", trigger), CJ_F_INT("keys", cj_jwks_count(set)));
    set = NULL;
    json = NULL;

out:
    pthread_mutex_unlock(&cache->fetch_lock);
    cj_jwks_free(set);
    free(json);
    gw_json_message_free(message);
}

/*
 * Milliseconds the refresh thread waits before its next fetch: until the
 * set reaches the refresh period, or GW_JWKS_RETRY_MS (at most the
 * period) while there is no set or the last fetch failed.
 */
static int64_t gw_jwks_next_wait_ms(struct gw_jwks_cache *cache)
{
    int64_t period_ms;
    int64_t wait_ms;
    int64_t last_attempt =
        __atomic_load_n(&cache->attempted_ms, __ATOMIC_RELAXED);

    pthread_rwlock_rdlock(&cache->lock);
    period_ms = (int64_t)gw_jwks_period_seconds(cache) * 1000;
    if (cache->set == NULL || cache->fetched_ms < last_attempt) {
        wait_ms = period_ms < GW_JWKS_RETRY_MS ? period_ms : GW_JWKS_RETRY_MS;
    } else {
        wait_ms = cache->fetched_ms + period_ms - cj_monotonic_ms();
    }
    pthread_rwlock_unlock(&cache->lock);
    /* A request may have fetched just now: never spin below the fetch
     * interval. */
    return wait_ms > GW_JWKS_FETCH_INTERVAL_MS ? wait_ms
                                               : GW_JWKS_FETCH_INTERVAL_MS;
}

static void *gw_jwks_refresh_main(void *arg)
{
    struct gw_jwks_cache *cache = arg;
    struct timespec deadline;
    int64_t wait_ms;

    for (;;) {
        gw_jwks_fetch(cache, "timer");
        wait_ms = gw_jwks_next_wait_ms(cache);
        cj_deadline_after_ms(CLOCK_MONOTONIC, wait_ms, &deadline);
        pthread_mutex_lock(&cache->thread_lock);
        while (!cache->stopping &&
               pthread_cond_timedwait(&cache->wake, &cache->thread_lock,
                                      &deadline) == 0) {
        }
        if (cache->stopping) {
            pthread_mutex_unlock(&cache->thread_lock);
            return NULL;
        }
        pthread_mutex_unlock(&cache->thread_lock);
    }
}

enum cj_status gw_jwks_start_refresh(struct gw_jwks_cache *cache)
{
    if (cache->thread_started) {
        return CJ_OK;
    }
    if (pthread_create(&cache->thread, NULL, gw_jwks_refresh_main, cache) !=
        0) {
        cj_log(CJ_LOG_ERROR, "gateway.jwks_thread_failed", NULL);
        return CJ_ERR_INTERNAL;
    }
    cache->thread_started = true;
    return CJ_OK;
}

void gw_jwks_stop_refresh(struct gw_jwks_cache *cache)
{
    if (!cache->thread_started) {
        return;
    }
    pthread_mutex_lock(&cache->thread_lock);
    cache->stopping = true;
    pthread_cond_broadcast(&cache->wake);
    pthread_mutex_unlock(&cache->thread_lock);
    pthread_join(cache->thread, NULL);
    cache->thread_started = false;
}

static bool gw_jwks_missing(struct gw_jwks_cache *cache)
{
    bool missing;

    pthread_rwlock_rdlock(&cache->lock);
    missing = cache->set == NULL;
    pthread_rwlock_unlock(&cache->lock);
    return missing;
}

static void gw_jwks_refresh_if_stale(struct gw_jwks_cache *cache)
{
    bool stale;

    pthread_rwlock_rdlock(&cache->lock);
    stale = gw_jwks_stale(cache, cj_monotonic_ms());
    pthread_rwlock_unlock(&cache->lock);
    if (!stale) {
        return;
    }
    gw_jwks_fetch(cache, "stale");
    /* With no set at all, another thread's fetch may be in flight (the
     * first requests after start arrive together): wait for it, bounded
     * by the backend deadline, instead of answering 503. A stale set is
     * still used while it refreshes. */
    if (gw_jwks_missing(cache)) {
        pthread_mutex_lock(&cache->fetch_lock);
        pthread_mutex_unlock(&cache->fetch_lock);
    }
}

/* One verification under the read lock; CJ_ERR_UNAVAILABLE without a set. */
static enum cj_status
gw_jwks_verify_once(struct gw_jwks_cache *cache,
                    const struct cj_jwt_verify_config *config,
                    const char *token, size_t token_len,
                    struct cj_jwt_claims *claims, enum cj_jose_reason *reason)
{
    enum cj_status status = CJ_ERR_UNAVAILABLE;

    pthread_rwlock_rdlock(&cache->lock);
    if (cache->set != NULL) {
        status = cj_jwt_verify(cache->set, config, (int64_t)time(NULL), token,
                               token_len, claims, reason);
    }
    pthread_rwlock_unlock(&cache->lock);
    return status;
}

enum cj_status gw_jwks_verify(struct gw_jwks_cache *cache,
                              const struct cj_jwt_verify_config *config,
                              const char *token, size_t token_len,
                              struct cj_jwt_claims *claims,
                              enum cj_jose_reason *reason)
{
    enum cj_status status;

    gw_jwks_refresh_if_stale(cache);
    status =
        gw_jwks_verify_once(cache, config, token, token_len, claims, reason);
    if (status != CJ_OK && status != CJ_ERR_UNAVAILABLE &&
        *reason == CJ_JOSE_KID_UNKNOWN) {
        /* A key published since the last fetch: fetch once, try again. */
        gw_jwks_fetch(cache, "unknown_kid");
        status = gw_jwks_verify_once(cache, config, token, token_len, claims,
                                     reason);
    }
    return status;
}

enum cj_status gw_jwks_json(struct gw_jwks_cache *cache, char **json,
                            unsigned *max_age)
{
    enum cj_status status = CJ_ERR_UNAVAILABLE;

    *json = NULL;
    gw_jwks_refresh_if_stale(cache);
    pthread_rwlock_rdlock(&cache->lock);
    if (cache->json != NULL) {
        *json = strdup(cache->json);
        *max_age = cache->max_age_seconds;
        status = *json != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    pthread_rwlock_unlock(&cache->lock);
    return status;
}

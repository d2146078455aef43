/*
 * The periodic worker: under a Redis lock, so that one replica at a time
 * does it, advances the epochs of sessions that no request advanced, drops
 * previous keys whose grace ended, removes expired sessions from the
 * schedule, and keeps the revocation cache's loaded marker alive. It also
 * watches Redis and reports whether it answers.
 */
#include "sess_worker.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto_util.h"
#include "deadline.h"
#include "log.h"

/* Bounds of the pass interval, derived from the epoch length. */
#define SESS_WORKER_INTERVAL_MIN_MS 250
#define SESS_WORKER_INTERVAL_MAX_MS 5000
/* The lock outlives a stuck holder by at most this long. */
#define SESS_WORKER_LOCK_TTL_MS 30000
#define SESS_WORKER_LOCK_NAME   "worker"
/* Batches in one pass; what is left waits for the next pass. */
#define SESS_WORKER_BATCHES_MAX 16
#define SESS_WORKER_TOKEN_LEN   16

struct sess_worker {
    const struct sess_service *svc;
    sess_worker_redis_state_fn on_state;
    void *on_state_arg;
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool stop;
    bool started;
    int redis_up;      /* readiness: -1 unknown, 0 not ready, 1 ready */
    bool clock_warned; /* the offset was above the warning level */
};

int64_t sess_worker_interval_ms(const struct sess_settings *s)
{
    int64_t ms = s->epochs.epoch_ms / 4;

    if (ms < SESS_WORKER_INTERVAL_MIN_MS) {
        ms = SESS_WORKER_INTERVAL_MIN_MS;
    }
    if (ms > SESS_WORKER_INTERVAL_MAX_MS) {
        ms = SESS_WORKER_INTERVAL_MAX_MS;
    }
    return ms;
}

/* Advances every due session; returns the first Redis failure. */
static enum cj_status advance_due(const struct sess_service *svc,
                                  int64_t now_ms,
                                  struct sess_worker_stats *stats)
{
    char ids[SESS_DUE_BATCH_MAX][SESS_ID_LEN + 1];
    enum cj_status st = CJ_OK;

    for (int b = 0; b < SESS_WORKER_BATCHES_MAX && st == CJ_OK; b++) {
        size_t count = 0;
        st =
            sess_store_due(svc->redis, now_ms, SESS_DUE_BATCH_MAX, ids, &count);
        if (st != CJ_OK || count == 0) {
            break;
        }
        for (size_t i = 0; i < count && st == CJ_OK; i++) {
            bool advanced = false;
            st = sess_advance(svc, ids[i], now_ms, &advanced);
            if (st == CJ_ERR_NOT_FOUND) {
                st = sess_store_unschedule(svc->redis, ids[i]);
                stats->expired++;
            } else if (st == CJ_OK && advanced) {
                stats->advanced++;
            } else if (st != CJ_OK && st != CJ_ERR_UNAVAILABLE) {
                /* One broken session (a key no configured wrapping key
                 * opens) must not stall the others: it is retried an epoch
                 * later, and expires with its TTL meanwhile. */
                char log_id[SESS_LOG_ID_SIZE];
                sess_log_id(svc->wrapping, ids[i], log_id);
                cj_log(CJ_LOG_ERROR, "session.worker_advance_failed", NULL,
                       CJ_F_STR("session_hash", log_id),
                       CJ_F_STR("status", cj_status_name(st)));
                st = sess_store_schedule(
                    svc->redis, ids[i], now_ms + svc->settings.epochs.epoch_ms);
            }
        }
        if (count < SESS_DUE_BATCH_MAX) {
            break;
        }
    }
    return st;
}

enum cj_status sess_worker_pass(const struct sess_service *svc, int64_t now_ms,
                                struct sess_worker_stats *stats)
{
    unsigned char raw[SESS_WORKER_TOKEN_LEN];
    char token[SESS_WORKER_TOKEN_LEN * 2 + 1];
    bool acquired = false;
    enum cj_status st;

    memset(stats, 0, sizeof(*stats));
    cj_random_bytes(raw, sizeof(raw));
    sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    st = sess_store_lock(svc->redis, SESS_WORKER_LOCK_NAME, token,
                         SESS_WORKER_LOCK_TTL_MS, &acquired);
    if (st != CJ_OK || !acquired) {
        return st;
    }
    stats->ran = true;
    st = advance_due(svc, now_ms, stats);
    if (st == CJ_OK) {
        st = sess_cache_keep_loaded(svc);
    }
    if (sess_store_unlock(svc->redis, SESS_WORKER_LOCK_NAME, token) != CJ_OK) {
        /* The lock's TTL frees it. */
        cj_log(CJ_LOG_WARN, "session.worker_unlock_failed", NULL);
    }
    return st;
}

static void report_state(struct sess_worker *w, bool up, const char *reason)
{
    if (w->redis_up == (up ? 1 : 0)) {
        return;
    }
    w->redis_up = up ? 1 : 0;
    if (up) {
        cj_log(CJ_LOG_INFO, "session.ready", NULL);
    } else {
        cj_log(CJ_LOG_ERROR, "session.not_ready", NULL,
               CJ_F_STR("reason", reason));
    }
    if (w->on_state != NULL) {
        w->on_state(up, w->on_state_arg);
    }
}

/*
 * Compares the Redis clock with this one: expiries are written as absolute
 * times from this clock, so an offset shifts every TTL by as much. Warns
 * once above SESS_CLOCK_WARN_OFFSET_MS; *ok is false above the configured
 * bound.
 */
static enum cj_status check_clock(struct sess_worker *w, bool *ok)
{
    int64_t before = sess_now_ms();
    int64_t redis_ms = 0;
    int64_t offset;
    enum cj_status st = sess_store_time(w->svc->redis, &redis_ms);

    *ok = true;
    if (st != CJ_OK) {
        return st;
    }
    /* The midpoint of the round trip stands in for the instant Redis read
     * its clock. */
    offset = redis_ms - (before + sess_now_ms()) / 2;
    cj_gauge_set(w->svc->metrics.clock_offset_seconds, (double)offset / 1000);
    if (llabs(offset) > SESS_CLOCK_WARN_OFFSET_MS && !w->clock_warned) {
        cj_log(CJ_LOG_WARN, "session.clock_offset", NULL,
               CJ_F_INT("offset_ms", offset),
               CJ_F_INT("max_offset_ms", w->svc->settings.clock_max_offset_ms));
    }
    w->clock_warned = llabs(offset) > SESS_CLOCK_WARN_OFFSET_MS;
    *ok = llabs(offset) <= w->svc->settings.clock_max_offset_ms;
    return CJ_OK;
}

static void *worker_main(void *arg)
{
    struct sess_worker *w = arg;
    struct timespec deadline;

    pthread_mutex_lock(&w->mutex);
    while (!w->stop) {
        struct sess_worker_stats stats;
        bool clock_ok = true;
        enum cj_status st;

        pthread_mutex_unlock(&w->mutex);
        st = sess_store_ping(w->svc->redis);
        if (st == CJ_OK) {
            st = check_clock(w, &clock_ok);
        }
        if (st == CJ_OK) {
            st = sess_worker_pass(w->svc, sess_now_ms(), &stats);
            if (st == CJ_OK && (stats.advanced > 0 || stats.expired > 0)) {
                cj_log(CJ_LOG_DEBUG, "session.worker_pass", NULL,
                       CJ_F_INT("advanced", stats.advanced),
                       CJ_F_INT("expired", stats.expired));
            }
        }
        cj_gauge_set(w->svc->metrics.redis_up,
                     st == CJ_ERR_UNAVAILABLE ? 0.0 : 1.0);
        report_state(w, st != CJ_ERR_UNAVAILABLE && clock_ok,
                     st == CJ_ERR_UNAVAILABLE ? "redis unreachable"
                                              : "clock offset from Redis");
        pthread_mutex_lock(&w->mutex);
        cj_deadline_after_ms(CLOCK_REALTIME, w->interval_ms, &deadline);
        while (!w->stop && pthread_cond_timedwait(&w->cond, &w->mutex,
                                                  &deadline) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mutex);
    return NULL;
}

enum cj_status sess_worker_start(const struct sess_service *svc,
                                 sess_worker_redis_state_fn on_state, void *arg,
                                 struct sess_worker **out)
{
    struct sess_worker *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (w == NULL) {
        return CJ_ERR_NOMEM;
    }
    w->svc = svc;
    w->on_state = on_state;
    w->on_state_arg = arg;
    w->interval_ms = sess_worker_interval_ms(&svc->settings);
    w->redis_up = -1;
    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_mutex_destroy(&w->mutex);
        pthread_cond_destroy(&w->cond);
        free(w);
        return CJ_ERR_INTERNAL;
    }
    w->started = true;
    *out = w;
    return CJ_OK;
}

void sess_worker_stop(struct sess_worker *w)
{
    if (w == NULL) {
        return;
    }
    if (w->started) {
        pthread_mutex_lock(&w->mutex);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mutex);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_destroy(&w->mutex);
    pthread_cond_destroy(&w->cond);
    free(w);
}

/*
 * The running state of cerrojo-kms shared by the RPC handlers and the
 * one-shot commands: configuration, database pool, root key and the
 * current key set. A background thread reloads the key set from Postgres,
 * so rotations done by other replicas or commands take effect. An open
 * that names an unknown HPKE key id also starts a reload, at most once per
 * KMS_RELOAD_ON_DEMAND_MIN_MS.
 */
#ifndef KMS_SERVICE_H
#define KMS_SERVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "db_clock.h"
#include "kms_config.h"
#include "kms_keys.h"
#include "kms_lifecycle.h"
#include "kms_metrics.h"
#include "kms_rootkey.h"
#include "rpc_server.h"

/* Full name of the gRPC service, for health. */
#define KMS_RPC_SERVICE_NAME "cerrojo.v1.Kms"

/* AEAD ids offered with new HPKE keys, preferred first. */
#define KMS_HPKE_AEADS                                                         \
    {                                                                          \
        0x0002, 0x0001, 0x0003                                                 \
    }

struct kms_service {
    struct kms_config cfg;
    enum cj_profile profile;
    struct cj_db_pool *pool;
    struct kms_root_key *root;
    struct kms_lifecycle lifecycle;
    uint16_t hpke_aead_ids[KMS_HPKE_AEADS_MAX];
    struct cj_metrics *registry;
    struct kms_metrics metrics;
    /* Set while serving, so the reloader can report health; borrowed. */
    struct cj_rpc_server *server;

    pthread_mutex_t lock; /* guards ring and stopping */
    pthread_cond_t wake;
    struct kms_keyring *ring;
    /*
     * Held for the whole of each reload, so that reloads never overlap and
     * a slower, older read cannot replace a newer key set.
     */
    pthread_mutex_t reload_lock;
    /* CLOCK_MONOTONIC time in milliseconds from which the next on-demand
     * reload may start. Guarded by reload_lock. */
    int64_t on_demand_next_ms;
    bool stopping;
    bool reloader_running;
    pthread_t reloader;
    /* Log state of the clock checks, which run on one thread at a time. */
    struct cj_db_clock_check clock_check;
    /* Whether the last clock check set SERVING. Only the clock checks and
     * the reloader use it: the first check runs before that thread starts. */
    bool serving;
};

/*
 * Sets svc up from a loaded configuration (whose strings it takes over;
 * *cfg is left zeroed): the root key by the rules of `profile` and the
 * database pool. On failure err names the variable to fix. Free with
 * kms_service_free, also after a failure.
 */
CJ_WARN_UNUSED enum cj_status kms_service_init(struct kms_service *svc,
                                               enum cj_profile profile,
                                               struct kms_config *cfg,
                                               char *err, size_t err_size);

/* Rereads every key from Postgres and swaps the key set in. Waits for a
 * reload that is already running. */
CJ_WARN_UNUSED enum cj_status kms_service_reload(struct kms_service *svc);

/*
 * Minimum time between the starts of two on-demand reloads, in
 * milliseconds. Requests that name random key ids then cost at most one
 * Postgres read per interval.
 */
#define KMS_RELOAD_ON_DEMAND_MIN_MS 1000

/* Outcome of kms_service_reload_on_demand. */
enum kms_reload_outcome {
    KMS_RELOAD_DONE,     /* a new key set is in service */
    KMS_RELOAD_FAILED,   /* the reload failed, so the old set stays */
    KMS_RELOAD_BUSY,     /* another reload was running, so none started */
    KMS_RELOAD_TOO_SOON, /* within KMS_RELOAD_ON_DEMAND_MIN_MS of the last */
};

/*
 * Reloads the key set for a request (request_id, may be NULL) that names
 * key_id, which the current key set does not contain. Counts the reload
 * in cerrojo_kms_on_demand_reloads_total and logs kms.reload_on_demand.
 * It does not wait for a reload that is already running (KMS_RELOAD_BUSY):
 * under a flood of unknown key ids, waiting callers would hold every gRPC
 * worker thread while Postgres is slow. That running reload serves the
 * next requests.
 */
enum kms_reload_outcome kms_service_reload_on_demand(struct kms_service *svc,
                                                     const char *request_id,
                                                     uint8_t key_id);

/* Returns the log name of an outcome: "reloaded", "failed", "busy" or
 * "too_soon". */
const char *kms_reload_outcome_name(enum kms_reload_outcome outcome);

/*
 * Interval of the clock checks while kms is not serving, in milliseconds.
 * Readiness then returns within about this long after Postgres accepts
 * connections again. Healthy, kms checks only every cfg.reload_s.
 */
#define KMS_RECHECK_MS 1000

/*
 * Starts the thread that checks the clock and reloads the key set every
 * cfg.reload_s seconds. While a check keeps kms not serving, the thread
 * checks every KMS_RECHECK_MS, and it reloads at once when Postgres
 * returns after a failed reload.
 */
CJ_WARN_UNUSED enum cj_status
kms_service_start_reloader(struct kms_service *svc);

/* Returns a reference to the current key set (kms_keyring_unref it), or
 * NULL before the first load. */
struct kms_keyring *kms_service_keys(struct kms_service *svc);

/* Warning threshold of the Postgres clock offset, in milliseconds. */
#define KMS_CLOCK_WARN_MS 1000

/*
 * Compares this clock with Postgres's, exports the offset, warns above
 * KMS_CLOCK_WARN_MS and sets the health status: NOT_SERVING while Postgres
 * is unreachable or the offset is above cfg.clock_max_offset_s.
 */
void kms_service_check_clock(struct kms_service *svc);

/* The clock used for key decisions, Unix seconds. */
int64_t kms_now(void);

/*
 * Age of a new HPKE key, in reload intervals, at which ListPublicKeys first
 * names it. Every replica reloads within one interval, so by then every
 * replica opens requests sealed to the key. The second interval is margin
 * for a slow reload. A replica that missed the key anyway (its periodic
 * reloads failed, or it started just before the rotation) reloads on demand
 * at the first request sealed to it. NOTE: while Postgres stays unreachable
 * the on-demand reload fails too, so such a replica rejects requests sealed
 * to the new key until a reload succeeds.
 */
#define KMS_HPKE_PUBLISH_RELOADS 2

/* Age in seconds at which ListPublicKeys names a new HPKE key. */
int64_t kms_hpke_publish_after_s(const struct kms_config *cfg);

/*
 * How long a retired HPKE key still opens requests, in seconds from its
 * retirement: CERROJO_KMS_HPKE_ACCEPT_RETIRED, raised when needed so that it
 * covers a key list signed just before the successor was listed. Such a
 * list stays valid for the key-list lifetime, and requests sealed with it
 * may reach a replica whose clock is off by up to the clock offset limit.
 * kms_service_init logs kms.hpke_accept_raised when it raises the value.
 */
int64_t kms_hpke_accept_s(const struct kms_config *cfg);

/* Stops the reloader thread, if running. */
void kms_service_stop_reloader(struct kms_service *svc);

/* Stops the reloader and frees everything; accepts a zeroed struct. */
void kms_service_free(struct kms_service *svc);

#endif

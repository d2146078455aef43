/*
 * Leased batches of the per-IP rate limits, kept in a fixed table of slots
 * hashed by bucket and client IP, with one mutex per group of slots.
 */
#include "gw_rate_lease.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "gw_net.h"

/* Mutexes over the slots: slot i uses mutex i % GW_RATE_LEASE_LOCKS, and
 * the condition variable beside it signals the end of a refill. */
#define GW_RATE_LEASE_LOCKS 64
/* Room for "<bucket>:<client IP>". */
#define GW_RATE_LEASE_KEY_SIZE (GW_IP_CHARS + 32)
/* Maximum wait for another thread's refill, in ms. It is above the sum of
 * the Redis pool's connect, acquire and command timeouts (500 ms each), so
 * it only passes when a refill hangs. */
#define GW_RATE_LEASE_WAIT_MS 2000

struct gw_rate_lease_slot {
    char key[GW_RATE_LEASE_KEY_SIZE]; /* "" when the slot is free */
    unsigned left;                    /* leased requests not spent */
    unsigned batch;                   /* size of the last lease, 0 for none */
    int64_t leased_ms;                /* CLOCK_MONOTONIC of the last lease */
    bool refilling;                   /* a thread is leasing for this key */
    unsigned generation;              /* refills finished, wrapping */
    enum cj_status failure;           /* result of the last failed refill */
    unsigned failure_retry_after_s;   /* with CJ_ERR_RATE_LIMITED */
};

struct gw_rate_leases {
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t locks[GW_RATE_LEASE_LOCKS];
    pthread_cond_t refilled[GW_RATE_LEASE_LOCKS];
    struct gw_rate_lease_slot slots[GW_RATE_LEASE_SLOTS];
};

struct gw_rate_leases *gw_rate_leases_new(void)
{
    struct gw_rate_leases *leases = calloc(1, sizeof(*leases));

    if (leases == NULL) {
        return NULL;
    }
    /* A secret hash key, so that a client cannot pick addresses that all
     * land in one slot and push each other's leases out. */
    randombytes_buf(leases->hash_key, sizeof(leases->hash_key));
    for (size_t i = 0; i < GW_RATE_LEASE_LOCKS; i++) {
        pthread_mutex_init(&leases->locks[i], NULL);
        pthread_cond_init(&leases->refilled[i], NULL);
    }
    return leases;
}

void gw_rate_leases_free(struct gw_rate_leases *leases)
{
    if (leases == NULL) {
        return;
    }
    for (size_t i = 0; i < GW_RATE_LEASE_LOCKS; i++) {
        pthread_cond_destroy(&leases->refilled[i]);
        pthread_mutex_destroy(&leases->locks[i]);
    }
    free(leases);
}

/* Tells whether the slot's client spent most of its last batch within
 * GW_RATE_LEASE_GROW_MS of leasing it. */
static bool gw_lease_spent_fast(const struct gw_rate_lease_slot *slot,
                                int64_t now_ms)
{
    return slot->batch > 0 &&
           slot->left <= slot->batch / GW_RATE_LEASE_REFILL_DIVISOR &&
           now_ms - slot->leased_ms <= GW_RATE_LEASE_GROW_MS;
}

/* Returns the size of the next lease: double the last one when it was
 * spent fast, half of it otherwise, 1 for a new slot. */
static unsigned gw_next_batch(const struct gw_rate_lease_slot *slot,
                              int64_t now_ms, unsigned burst)
{
    unsigned limit = burst / GW_RATE_LEASE_BURST_DIVISOR;
    unsigned batch;

    if (limit > GW_RATE_LEASE_BATCH_MAX) {
        limit = GW_RATE_LEASE_BATCH_MAX;
    }
    if (limit < 1) {
        limit = 1;
    }
    if (gw_lease_spent_fast(slot, now_ms)) {
        batch = slot->batch * 2;
    } else {
        batch = slot->batch / 2;
    }
    if (batch < 1) {
        batch = 1;
    }
    return batch < limit ? batch : limit;
}

/* Waits, with `lock` held, until the refill in progress on `slot` ends.
 * Returns false when it took longer than GW_RATE_LEASE_WAIT_MS. */
static bool gw_wait_for_refill(struct gw_rate_lease_slot *slot,
                               pthread_mutex_t *lock, pthread_cond_t *refilled)
{
    unsigned generation = slot->generation;
    struct timespec until;

    cj_deadline_after_ms(CLOCK_REALTIME, GW_RATE_LEASE_WAIT_MS, &until);
    while (slot->generation == generation) {
        if (pthread_cond_timedwait(refilled, lock, &until) != 0 &&
            slot->generation == generation) {
            return false;
        }
    }
    return true;
}

enum cj_status gw_rate_leases_take(struct gw_rate_leases *leases,
                                   struct gw_redis *redis, const char *bucket,
                                   const char *client_ip, unsigned per_minute,
                                   unsigned burst, unsigned *retry_after_s)
{
    char key[GW_RATE_LEASE_KEY_SIZE];
    struct gw_rate_lease_slot *slot;
    pthread_mutex_t *lock;
    pthread_cond_t *refilled;
    uint64_t hash;
    unsigned batch;
    unsigned granted = 0;
    bool admitted = false;
    bool waited = false;
    int64_t now_ms;
    size_t bucket_len = strlen(bucket);
    size_t ip_len = strlen(client_ip);
    size_t length = bucket_len + 1 + ip_len;
    enum cj_status status;

    *retry_after_s = 0;
    if (leases == NULL || length >= sizeof(key)) {
        return gw_ratelimit_take_many(redis, bucket, client_ip, per_minute,
                                      burst, 1, &granted, retry_after_s);
    }
    memcpy(key, bucket, bucket_len);
    key[bucket_len] = ':';
    memcpy(key + bucket_len + 1, client_ip, ip_len + 1);
    crypto_shorthash((unsigned char *)&hash, (const unsigned char *)key,
                     (unsigned long long)length, leases->hash_key);
    slot = &leases->slots[hash % GW_RATE_LEASE_SLOTS];
    lock = &leases->locks[(hash % GW_RATE_LEASE_SLOTS) % GW_RATE_LEASE_LOCKS];
    refilled =
        &leases->refilled[(hash % GW_RATE_LEASE_SLOTS) % GW_RATE_LEASE_LOCKS];

    pthread_mutex_lock(lock);
    for (;;) {
        now_ms = cj_monotonic_ms();
        if (strcmp(slot->key, key) != 0) {
            if (slot->refilling) {
                /* Another client is refilling this slot, so this request
                 * goes to Redis alone. */
                pthread_mutex_unlock(lock);
                return gw_ratelimit_take_many(redis, bucket, client_ip,
                                              per_minute, burst, 1, &granted,
                                              retry_after_s);
            }
            /* Take the slot over, and drop the previous client's batch. */
            memcpy(slot->key, key, length + 1);
            slot->left = 0;
            slot->batch = 0;
            slot->failure = CJ_OK;
        }
        if (slot->left > 0 && now_ms - slot->leased_ms > GW_RATE_LEASE_TTL_MS) {
            slot->left = 0; /* expired, so dropped and not given back */
        }
        if (slot->left > 0) {
            slot->left--;
            if (slot->refilling || !gw_lease_spent_fast(slot, now_ms)) {
                pthread_mutex_unlock(lock);
                return CJ_OK;
            }
            /* Admitted, and the batch runs low: lease the next one now so
             * that the client's other requests need not wait for it. */
            admitted = true;
            break;
        }
        if (waited && !slot->refilling && slot->failure != CJ_OK) {
            /* The refill this request waited for failed: share its result
             * rather than queue one Redis call per waiting request. */
            status = slot->failure;
            *retry_after_s = slot->failure_retry_after_s;
            pthread_mutex_unlock(lock);
            return status;
        }
        if (!slot->refilling) {
            break;
        }
        if (!gw_wait_for_refill(slot, lock, refilled)) {
            pthread_mutex_unlock(lock);
            return CJ_ERR_TIMEOUT;
        }
        waited = true;
    }
    batch = gw_next_batch(slot, now_ms, burst);
    slot->refilling = true;
    pthread_mutex_unlock(lock);

    status = gw_ratelimit_take_many(redis, bucket, client_ip, per_minute, burst,
                                    batch, &granted, retry_after_s);

    pthread_mutex_lock(lock);
    slot->refilling = false;
    slot->generation++;
    if (status == CJ_OK) {
        slot->left += admitted ? granted : granted - 1;
        slot->batch = granted;
        slot->leased_ms = cj_monotonic_ms();
        slot->failure = CJ_OK;
    } else {
        slot->batch = 1;
        slot->failure = status;
        slot->failure_retry_after_s = *retry_after_s;
    }
    pthread_cond_broadcast(refilled);
    pthread_mutex_unlock(lock);
    if (admitted) {
        /* A failed early refill leaves the failure to the request that
         * finds the batch empty. */
        *retry_after_s = 0;
        return CJ_OK;
    }
    return status;
}

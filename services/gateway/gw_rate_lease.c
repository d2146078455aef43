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

#include "gw_net.h"

/* Mutexes over the slots: slot i uses mutex i % GW_RATE_LEASE_LOCKS. */
#define GW_RATE_LEASE_LOCKS 64
/* Room for "<bucket>:<client IP>". */
#define GW_RATE_LEASE_KEY_SIZE (GW_IP_CHARS + 32)

struct gw_rate_lease_slot {
    char key[GW_RATE_LEASE_KEY_SIZE]; /* "" when the slot is free */
    unsigned left;                    /* leased requests not spent */
    unsigned batch;                   /* size of the last lease */
    int64_t leased_ms;                /* CLOCK_MONOTONIC of the last lease */
    bool refilling;                   /* a thread is leasing for this key */
};

struct gw_rate_leases {
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t locks[GW_RATE_LEASE_LOCKS];
    struct gw_rate_lease_slot slots[GW_RATE_LEASE_SLOTS];
};

static int64_t gw_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

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
    }
    return leases;
}

void gw_rate_leases_free(struct gw_rate_leases *leases)
{
    if (leases == NULL) {
        return;
    }
    for (size_t i = 0; i < GW_RATE_LEASE_LOCKS; i++) {
        pthread_mutex_destroy(&leases->locks[i]);
    }
    free(leases);
}

/* Returns the size of the next lease for a slot that already holds `key`:
 * double the last one when it was spent quickly, half of it otherwise. */
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
    if (slot->left == 0 && now_ms - slot->leased_ms <= GW_RATE_LEASE_GROW_MS) {
        batch = slot->batch * 2;
    } else {
        batch = slot->batch / 2;
    }
    if (batch < 1) {
        batch = 1;
    }
    return batch < limit ? batch : limit;
}

enum cj_status gw_rate_leases_take(struct gw_rate_leases *leases,
                                   struct gw_redis *redis, const char *bucket,
                                   const char *client_ip, unsigned per_minute,
                                   unsigned burst, unsigned *retry_after_s)
{
    char key[GW_RATE_LEASE_KEY_SIZE];
    struct gw_rate_lease_slot *slot;
    pthread_mutex_t *lock;
    uint64_t hash;
    unsigned batch = 1;
    unsigned granted = 0;
    bool own_slot = false;
    int64_t now_ms;
    int length;
    enum cj_status status;

    *retry_after_s = 0;
    length = snprintf(key, sizeof(key), "%s:%s", bucket, client_ip);
    if (leases == NULL || length < 0 || (size_t)length >= sizeof(key)) {
        return gw_ratelimit_take_many(redis, bucket, client_ip, per_minute,
                                      burst, 1, &granted, retry_after_s);
    }
    crypto_shorthash((unsigned char *)&hash, (const unsigned char *)key,
                     (unsigned long long)length, leases->hash_key);
    slot = &leases->slots[hash % GW_RATE_LEASE_SLOTS];
    lock = &leases->locks[(hash % GW_RATE_LEASE_SLOTS) % GW_RATE_LEASE_LOCKS];
    now_ms = gw_monotonic_ms();

    pthread_mutex_lock(lock);
    if (strcmp(slot->key, key) == 0) {
        if (slot->left > 0 && now_ms - slot->leased_ms > GW_RATE_LEASE_TTL_MS) {
            slot->left = 0; /* expired, so dropped and not given back */
        }
        if (slot->left > 0) {
            slot->left--;
            pthread_mutex_unlock(lock);
            return CJ_OK;
        }
        if (!slot->refilling) {
            batch = gw_next_batch(slot, now_ms, burst);
            slot->refilling = true;
            own_slot = true;
        }
    } else if (!slot->refilling) {
        /* Take the slot over; the previous client's batch is dropped. */
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->left = 0;
        slot->batch = 1;
        slot->leased_ms = now_ms;
        slot->refilling = true;
        own_slot = true;
    }
    pthread_mutex_unlock(lock);

    /* While another thread leases for this slot, this request is taken
     * from Redis alone, so that a slot never holds more than one batch. */
    status = gw_ratelimit_take_many(redis, bucket, client_ip, per_minute, burst,
                                    batch, &granted, retry_after_s);
    if (!own_slot) {
        return status;
    }

    pthread_mutex_lock(lock);
    slot->refilling = false;
    if (status == CJ_OK) {
        slot->left = granted - 1;
        slot->batch = granted;
        slot->leased_ms = gw_monotonic_ms();
    } else {
        slot->left = 0;
        slot->batch = 1;
    }
    pthread_mutex_unlock(lock);
    return status;
}

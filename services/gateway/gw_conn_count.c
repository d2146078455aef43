/*
 * A fixed open-addressing hash table from client IP address to its number
 * of open connections, with linear probing, backward-shift deletion and
 * one mutex. Memory is fixed at GW_CONN_COUNT_SLOTS slots, and with at most
 * GW_CONNECTIONS_MAX addresses in it the table is at most half full.
 */
#include "gw_conn_count.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GW_CONN_COUNT_MASK (GW_CONN_COUNT_SLOTS - 1)

_Static_assert((GW_CONN_COUNT_SLOTS & GW_CONN_COUNT_MASK) == 0,
               "GW_CONN_COUNT_SLOTS must be a power of two");
_Static_assert(GW_CONN_COUNT_SLOTS >= 2 * GW_CONNECTIONS_MAX,
               "the table must stay at most half full");

/* One address: the IPv6 form, with IPv4 as IPv4-mapped IPv6. */
struct gw_conn_key {
    unsigned char bytes[16];
};

struct gw_conn_slot {
    struct gw_conn_key key;
    uint64_t hash;
    unsigned open; /* 0: the slot is free */
};

struct gw_conn_count {
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t lock;
    struct gw_conn_slot slots[GW_CONN_COUNT_SLOTS];
};

struct gw_conn_count *gw_conn_count_new(void)
{
    struct gw_conn_count *count;

    if (sodium_init() < 0) {
        return NULL;
    }
    count = calloc(1, sizeof(*count));
    if (count == NULL) {
        return NULL;
    }
    /* A secret hash key, so that a client cannot pick addresses that all
     * land on one probe run. */
    randombytes_buf(count->hash_key, sizeof(count->hash_key));
    pthread_mutex_init(&count->lock, NULL);
    return count;
}

void gw_conn_count_free(struct gw_conn_count *count)
{
    if (count == NULL) {
        return;
    }
    pthread_mutex_destroy(&count->lock);
    free(count);
}

static bool gw_conn_key_from(const struct sockaddr *addr,
                             struct gw_conn_key *key)
{
    memset(key, 0, sizeof(*key));
    if (addr == NULL) {
        return false;
    }
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;

        key->bytes[10] = 0xff;
        key->bytes[11] = 0xff;
        memcpy(key->bytes + 12, &in4->sin_addr, 4);
        return true;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;

        memcpy(key->bytes, &in6->sin6_addr, 16);
        return true;
    }
    return false;
}

static uint64_t gw_conn_key_hash(const struct gw_conn_count *count,
                                 const struct gw_conn_key *key)
{
    uint64_t hash;

    crypto_shorthash((unsigned char *)&hash, key->bytes, sizeof(key->bytes),
                     count->hash_key);
    return hash;
}

/* Returns the index of the slot holding `key`, or of the free slot that
 * ends its probe run; GW_CONN_COUNT_SLOTS when neither exists (every slot
 * taken by other addresses). Call with the lock held. */
static size_t gw_conn_slot_find(const struct gw_conn_count *count,
                                const struct gw_conn_key *key, uint64_t hash)
{
    size_t index = (size_t)hash & GW_CONN_COUNT_MASK;

    for (size_t probes = 0; probes < GW_CONN_COUNT_SLOTS; probes++) {
        const struct gw_conn_slot *slot = &count->slots[index];

        if (slot->open == 0 ||
            (slot->hash == hash &&
             memcmp(slot->key.bytes, key->bytes, sizeof(key->bytes)) == 0)) {
            return index;
        }
        index = (index + 1) & GW_CONN_COUNT_MASK;
    }
    return GW_CONN_COUNT_SLOTS;
}

/* Frees slot `hole` and moves later entries of its probe run back, so that
 * every entry stays reachable from its home slot without tombstones. Call
 * with the lock held. */
static void gw_conn_slot_remove(struct gw_conn_count *count, size_t hole)
{
    size_t next = hole;

    for (;;) {
        size_t home;

        next = (next + 1) & GW_CONN_COUNT_MASK;
        if (count->slots[next].open == 0) {
            break;
        }
        home = (size_t)count->slots[next].hash & GW_CONN_COUNT_MASK;
        /* The entry at `next` may fill the hole only when its home slot is
         * not in the cyclic range (hole, next]. */
        if (hole <= next ? (home > hole && home <= next)
                         : (home > hole || home <= next)) {
            continue;
        }
        count->slots[hole] = count->slots[next];
        hole = next;
    }
    memset(&count->slots[hole], 0, sizeof(count->slots[hole]));
}

unsigned gw_conn_count_open(struct gw_conn_count *count,
                            const struct sockaddr *addr)
{
    struct gw_conn_key key;
    uint64_t hash;
    size_t index;
    unsigned open = 0;

    if (!gw_conn_key_from(addr, &key)) {
        return 0;
    }
    hash = gw_conn_key_hash(count, &key);
    pthread_mutex_lock(&count->lock);
    index = gw_conn_slot_find(count, &key, hash);
    if (index < GW_CONN_COUNT_SLOTS) {
        struct gw_conn_slot *slot = &count->slots[index];

        if (slot->open == 0) {
            slot->key = key;
            slot->hash = hash;
        }
        open = ++slot->open;
    }
    pthread_mutex_unlock(&count->lock);
    return open;
}

void gw_conn_count_close(struct gw_conn_count *count,
                         const struct sockaddr *addr)
{
    struct gw_conn_key key;
    uint64_t hash;
    size_t index;

    if (!gw_conn_key_from(addr, &key)) {
        return;
    }
    hash = gw_conn_key_hash(count, &key);
    pthread_mutex_lock(&count->lock);
    index = gw_conn_slot_find(count, &key, hash);
    if (index < GW_CONN_COUNT_SLOTS && count->slots[index].open > 0) {
        count->slots[index].open--;
        if (count->slots[index].open == 0) {
            gw_conn_slot_remove(count, index);
        }
    }
    pthread_mutex_unlock(&count->lock);
}

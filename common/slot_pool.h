/*
 * A fixed number of slots that threads borrow one at a time, waiting up to
 * a timeout when all are taken. The database and Redis pools keep one
 * connection per slot and use this for the borrowing.
 */
#ifndef CJ_SLOT_POOL_H
#define CJ_SLOT_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "status.h"

struct cj_slot_pool {
    pthread_mutex_t mutex;
    pthread_cond_t freed; /* on CLOCK_MONOTONIC */
    unsigned size;
    bool *in_use;
    /* Returns whether slot index of owner has an open connection. It runs
     * with the mutex held, on free slots only. */
    bool (*is_open)(const void *owner, unsigned index);
    const void *owner;
};

/*
 * Initializes size free slots (at least 1). is_open and owner let take
 * prefer a slot whose connection is already open. Returns CJ_ERR_INVALID,
 * CJ_ERR_NOMEM or CJ_ERR_INTERNAL on failure, and nothing is then left to
 * destroy.
 */
CJ_WARN_UNUSED enum cj_status
cj_slot_pool_init(struct cj_slot_pool *pool, unsigned size,
                  bool (*is_open)(const void *, unsigned), const void *owner);

/* Frees what init allocated. Every slot must have been given back first. */
void cj_slot_pool_destroy(struct cj_slot_pool *pool);

/*
 * Takes a free slot, one with an open connection when there is one, and
 * stores its index. Waits up to timeout_ms (0 or more) for a slot to be
 * given back, and returns CJ_ERR_TIMEOUT when none was.
 */
CJ_WARN_UNUSED enum cj_status cj_slot_pool_take(struct cj_slot_pool *pool,
                                                long long timeout_ms,
                                                unsigned *index);

/* Frees slot index and wakes one waiting taker. */
void cj_slot_pool_give_back(struct cj_slot_pool *pool, unsigned index);

#endif

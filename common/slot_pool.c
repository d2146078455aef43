/* Borrowing of pool slots under one mutex, with timed waits. */
#include "slot_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "deadline.h"

enum cj_status cj_slot_pool_init(struct cj_slot_pool *pool, unsigned size,
                                 bool (*is_open)(const void *, unsigned),
                                 const void *owner)
{
    if (size == 0 || is_open == NULL) {
        return CJ_ERR_INVALID;
    }
    pool->size = size;
    pool->is_open = is_open;
    pool->owner = owner;
    pool->in_use = calloc(size, sizeof(*pool->in_use));
    if (pool->in_use == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (cj_cond_init_monotonic(&pool->freed) != CJ_OK) {
        free(pool->in_use);
        pool->in_use = NULL;
        return CJ_ERR_INTERNAL;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    return CJ_OK;
}

void cj_slot_pool_destroy(struct cj_slot_pool *pool)
{
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->in_use);
    pool->in_use = NULL;
}

/* Marks a free slot taken, preferring an open one, and returns false when
 * none is free. Call with the mutex held. */
static bool take_free_slot(struct cj_slot_pool *pool, unsigned *index)
{
    bool found = false;
    unsigned fallback = 0;

    for (unsigned i = 0; i < pool->size; i++) {
        if (pool->in_use[i]) {
            continue;
        }
        if (pool->is_open(pool->owner, i)) {
            pool->in_use[i] = true;
            *index = i;
            return true;
        }
        if (!found) {
            fallback = i;
            found = true;
        }
    }
    if (found) {
        pool->in_use[fallback] = true;
        *index = fallback;
    }
    return found;
}

enum cj_status cj_slot_pool_take(struct cj_slot_pool *pool,
                                 long long timeout_ms, unsigned *index)
{
    struct timespec deadline;
    bool have_slot;

    cj_deadline_after_ms(CLOCK_MONOTONIC, timeout_ms, &deadline);
    pthread_mutex_lock(&pool->mutex);
    have_slot = take_free_slot(pool, index);
    while (!have_slot) {
        int rc = pthread_cond_timedwait(&pool->freed, &pool->mutex, &deadline);
        have_slot = take_free_slot(pool, index);
        if (!have_slot && rc == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&pool->mutex);
    return have_slot ? CJ_OK : CJ_ERR_TIMEOUT;
}

void cj_slot_pool_give_back(struct cj_slot_pool *pool, unsigned index)
{
    pthread_mutex_lock(&pool->mutex);
    pool->in_use[index] = false;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->mutex);
}

/*
 * The admission pool: a running count, a ring of waiting jobs, no threads.
 * Invariant: the ring contains jobs only while `limit` jobs run. So a
 * thread that finishes a job and finds the ring empty may leave, and one
 * of the running threads takes every waiting job.
 */
#include "rpc_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "deadline.h"

struct pool_job {
    cj_pool_job_fn fn;
    void *arg;
};

struct cj_pool {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* running and count both reached zero */
    struct pool_job *ring;
    size_t ring_size;
    size_t head;
    size_t count;
    size_t running;
    size_t limit;
    bool stopping;
};

enum cj_status cj_pool_create(size_t limit, size_t queue_max,
                              struct cj_pool **out)
{
    struct cj_pool *pool = NULL;

    *out = NULL;
    if (limit == 0 || queue_max == 0) {
        return CJ_ERR_INVALID;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return CJ_ERR_NOMEM;
    }
    pool->ring = calloc(queue_max, sizeof(*pool->ring));
    if (pool->ring == NULL) {
        free(pool);
        return CJ_ERR_NOMEM;
    }
    /* Monotonic, so cj_pool_stop_until takes the same deadlines as the
     * server's shutdown grace. */
    if (cj_cond_init_monotonic(&pool->idle) != CJ_OK) {
        free(pool->ring);
        free(pool);
        return CJ_ERR_INTERNAL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pool->ring_size = queue_max;
    pool->limit = limit;
    *out = pool;
    return CJ_OK;
}

void cj_pool_run_here(struct cj_pool *pool, cj_pool_job_fn fn, void *arg)
{
    struct pool_job job = {.fn = fn, .arg = arg};

    for (;;) {
        job.fn(job.arg);
        pthread_mutex_lock(&pool->lock);
        if (pool->count == 0) {
            break;
        }
        job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->ring_size;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
    }
    pool->running--;
    if (pool->running == 0) {
        pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
}

enum cj_pool_admission cj_pool_admit(struct cj_pool *pool, cj_pool_job_fn fn,
                                     void *arg)
{
    enum cj_pool_admission admission = CJ_POOL_REJECTED;

    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        goto out;
    }
    if (pool->running < pool->limit) {
        pool->running++;
        admission = CJ_POOL_RUN_HERE;
        goto out;
    }
    if (pool->count < pool->ring_size) {
        pool->ring[(pool->head + pool->count) % pool->ring_size] =
            (struct pool_job){.fn = fn, .arg = arg};
        pool->count++;
        admission = CJ_POOL_QUEUED;
    }
out:
    pthread_mutex_unlock(&pool->lock);
    return admission;
}

size_t cj_pool_queued(struct cj_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

bool cj_pool_stop_until(struct cj_pool *pool, const struct timespec *deadline)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    /* Queued jobs cannot outlast the running ones, which drain them. */
    while (pool->running > 0) {
        if (deadline == NULL) {
            pthread_cond_wait(&pool->idle, &pool->lock);
        } else if (pthread_cond_timedwait(&pool->idle, &pool->lock, deadline) ==
                   ETIMEDOUT) {
            break;
        }
    }
    bool idle = pool->running == 0;
    pthread_mutex_unlock(&pool->lock);
    return idle;
}

void cj_pool_stop(struct cj_pool *pool)
{
    bool idle = cj_pool_stop_until(pool, NULL);
    (void)idle; /* always true without a deadline */
}

void cj_pool_destroy(struct cj_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    cj_pool_stop(pool);
    pthread_cond_destroy(&pool->idle);
    pthread_mutex_destroy(&pool->lock);
    free(pool->ring);
    free(pool);
}

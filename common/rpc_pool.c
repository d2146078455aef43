/* The bounded worker pool: a ring of pending jobs and a fixed thread set. */
#include "rpc_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct pool_job {
    cj_pool_job_fn fn;
    void *arg;
};

struct cj_pool {
    pthread_mutex_t lock;
    pthread_cond_t job_ready;
    struct pool_job *ring;
    size_t ring_size;
    size_t head;
    size_t count;
    bool stopping;
    bool joined;
    pthread_t *threads;
    size_t n_threads;
};

static void *pool_worker(void *arg)
{
    struct cj_pool *pool = arg;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping) {
            pthread_cond_wait(&pool->job_ready, &pool->lock);
        }
        if (pool->count == 0) {
            break; /* stopping and drained */
        }
        struct pool_job job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->ring_size;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
        job.fn(job.arg);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

enum cj_status cj_pool_create(size_t threads, size_t queue_max,
                              struct cj_pool **out)
{
    enum cj_status result = CJ_ERR_NOMEM;
    struct cj_pool *pool = NULL;

    *out = NULL;
    if (threads == 0 || queue_max == 0) {
        return CJ_ERR_INVALID;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        goto out;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->job_ready, NULL);
    pool->ring = calloc(queue_max, sizeof(*pool->ring));
    pool->threads = calloc(threads, sizeof(*pool->threads));
    if (pool->ring == NULL || pool->threads == NULL) {
        goto out;
    }
    pool->ring_size = queue_max;
    for (size_t i = 0; i < threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, pool_worker, pool) != 0) {
            result = CJ_ERR_INTERNAL;
            goto out;
        }
        pool->n_threads++;
    }
    *out = pool;
    pool = NULL;
    result = CJ_OK;
out:
    cj_pool_destroy(pool);
    return result;
}

enum cj_status cj_pool_submit(struct cj_pool *pool, cj_pool_job_fn fn,
                              void *arg)
{
    enum cj_status result = CJ_ERR_UNAVAILABLE;

    pthread_mutex_lock(&pool->lock);
    if (!pool->stopping && pool->count < pool->ring_size) {
        size_t tail = (pool->head + pool->count) % pool->ring_size;
        pool->ring[tail] = (struct pool_job){.fn = fn, .arg = arg};
        pool->count++;
        pthread_cond_signal(&pool->job_ready);
        result = CJ_OK;
    }
    pthread_mutex_unlock(&pool->lock);
    return result;
}

size_t cj_pool_queued(struct cj_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void cj_pool_stop(struct cj_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    bool already_joined = pool->joined;
    pool->joined = true;
    pthread_cond_broadcast(&pool->job_ready);
    pthread_mutex_unlock(&pool->lock);
    if (already_joined) {
        return;
    }
    for (size_t i = 0; i < pool->n_threads; i++) {
        pthread_join(pool->threads[i], NULL);
    }
}

void cj_pool_destroy(struct cj_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    cj_pool_stop(pool);
    pthread_cond_destroy(&pool->job_ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool->ring);
    free(pool);
}

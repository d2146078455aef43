/*
 * A bounded worker pool for blocking work (Postgres, Redis, Argon2) so that
 * it never runs on a completion-queue thread. Jobs run in submission order
 * on a fixed set of threads; a full queue rejects new jobs at once.
 */
#ifndef CJ_RPC_POOL_H
#define CJ_RPC_POOL_H

#include <stddef.h>

#include "status.h"

struct cj_pool;

typedef void (*cj_pool_job_fn)(void *arg);

/*
 * Starts `threads` workers sharing a queue of at most `queue_max` waiting
 * jobs. Returns CJ_ERR_INVALID on a zero count, CJ_ERR_NOMEM or
 * CJ_ERR_INTERNAL when a thread cannot start. Free with cj_pool_destroy.
 */
CJ_WARN_UNUSED enum cj_status cj_pool_create(size_t threads, size_t queue_max,
                                             struct cj_pool **out);

/*
 * Queues fn(arg). Returns CJ_ERR_UNAVAILABLE when the queue is full or the
 * pool is stopping; the caller still owns arg then.
 */
CJ_WARN_UNUSED enum cj_status cj_pool_submit(struct cj_pool *pool,
                                             cj_pool_job_fn fn, void *arg);

/* Returns the number of jobs waiting (not those running). */
size_t cj_pool_queued(struct cj_pool *pool);

/*
 * Rejects new jobs, runs every job already queued, then joins the workers.
 * Safe to call twice.
 */
void cj_pool_stop(struct cj_pool *pool);

/* Stops the pool if needed and frees it; accepts NULL. */
void cj_pool_destroy(struct cj_pool *pool);

#endif

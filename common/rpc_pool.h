/*
 * Admission for blocking work (Postgres, Redis, Argon2) in the gRPC server:
 * at most `limit` jobs run at once and at most `queue_max` wait, and a full
 * queue rejects new jobs at once. The pool owns no threads. A job runs on
 * the completion-queue thread that submits it, so a call that need not
 * wait is never handed to another thread. A job that had to wait runs on
 * a thread that has just finished one. The caller admits a job, then runs
 * it when cj_pool_admit returns CJ_POOL_RUN_HERE.
 */
#ifndef CJ_RPC_POOL_H
#define CJ_RPC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "status.h"

struct cj_pool;

typedef void (*cj_pool_job_fn)(void *arg);

/*
 * Creates a pool running at most `limit` jobs at once with at most
 * `queue_max` waiting. Returns CJ_ERR_INVALID on a zero size, CJ_ERR_NOMEM,
 * or CJ_ERR_INTERNAL when the condition variable cannot be made.
 * Free with cj_pool_destroy.
 */
CJ_WARN_UNUSED enum cj_status cj_pool_create(size_t limit, size_t queue_max,
                                             struct cj_pool **out);

/* The decision of cj_pool_admit for a job. */
enum cj_pool_admission {
    CJ_POOL_RUN_HERE, /* the caller must now call cj_pool_run_here */
    CJ_POOL_QUEUED,   /* a running thread will take it */
    CJ_POOL_REJECTED, /* queue full or pool stopping; caller keeps arg */
};

/*
 * Admits fn(arg): CJ_POOL_RUN_HERE when fewer than `limit` jobs run (the
 * job now counts as running), else CJ_POOL_QUEUED while the queue has
 * room, else CJ_POOL_REJECTED. A queued job is taken in submission order.
 */
CJ_WARN_UNUSED enum cj_pool_admission
cj_pool_admit(struct cj_pool *pool, cj_pool_job_fn fn, void *arg);

/*
 * Runs the job just admitted with CJ_POOL_RUN_HERE on the calling thread,
 * then every job that queued meanwhile until the queue is empty.
 */
void cj_pool_run_here(struct cj_pool *pool, cj_pool_job_fn fn, void *arg);

/* Returns the number of jobs waiting (not those running). */
size_t cj_pool_queued(struct cj_pool *pool);

/*
 * Rejects new jobs and waits until every job queued or running has
 * finished. Must not be called from a job. Safe to call twice.
 */
void cj_pool_stop(struct cj_pool *pool);

/*
 * Rejects new jobs and waits until every job queued or running has
 * finished or the CLOCK_MONOTONIC deadline passes (NULL waits without
 * one). Returns true when no job runs any more. Must not be called from a
 * job. Jobs left running keep running, so the caller must still call
 * cj_pool_stop before freeing what they use.
 */
CJ_WARN_UNUSED bool cj_pool_stop_until(struct cj_pool *pool,
                                       const struct timespec *deadline);

/* Stops the pool if needed and frees it; accepts NULL. */
void cj_pool_destroy(struct cj_pool *pool);

#endif

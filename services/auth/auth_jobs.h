/*
 * Maintenance jobs, each under a Postgres advisory lock so one replica
 * runs it at a time: cleanup of expired refresh tokens, revocations and
 * audit rows past retention, and the re-wrap of every user's data key
 * after a key-encryption key rotation, which also drops kms's records of
 * data keys that belong to no stored user. Both run once from the command
 * line (`cerrojo-auth cleanup`, `cerrojo-auth rewrap-keys`); cleanup also
 * runs periodically inside the service.
 */
#ifndef AUTH_JOBS_H
#define AUTH_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth_service.h"

#define AUTH_JOB_CLEANUP_LOCK "auth.cleanup"
#define AUTH_JOB_REWRAP_LOCK  "auth.rewrap_keys"
/* Rows deleted per statement, so no delete holds locks for long. */
#define AUTH_JOB_DELETE_BATCH 1000
/* Users re-wrapped per page. */
#define AUTH_JOB_REWRAP_PAGE 100
/* Maximum length of a user id that kms records, in bytes. */
#define AUTH_JOB_USER_ID_MAX 256
/* User ids per ListOldKeyUsers page (kms accepts up to 1000). */
#define AUTH_JOB_OLD_KEY_PAGE 100
/* Number of consecutive RewrapKey calls that find kms unavailable or time
 * out before rewrap-keys stops. Each costs up to one call deadline, so
 * trying every user would take hours on a large user table. */
#define AUTH_JOB_KMS_FAILURES_MAX 3

struct auth_job_report {
    bool ran; /* false when another replica held the lock */
    unsigned long long tokens;
    unsigned long long revocations;
    unsigned long long audit_events;
    unsigned long long users_seen;
    unsigned long long keys_rewrapped;
    unsigned long long keys_current; /* already under kms's active KEK */
    unsigned long long failures;
    /* true when the re-wrap stopped early because kms was unreachable */
    bool kms_unreachable;
    /* kms records of users auth does not store, dropped with
     * ForgetUserKey. */
    unsigned long long records_forgotten;
    /* Lowest and highest KEK version kms wrapped under, or 0 when no
     * RewrapKey call succeeded. They differ while kms replicas disagree on
     * the active version. */
    uint32_t kek_version_min;
    uint32_t kek_version_max;
};

CJ_WARN_UNUSED enum cj_status auth_job_cleanup(struct auth_service *svc,
                                               struct auth_job_report *report);

CJ_WARN_UNUSED enum cj_status auth_job_rewrap(struct auth_service *svc,
                                              struct auth_job_report *report);

/* Thread body: runs cleanup every cfg.cleanup_interval_s. */
void *auth_jobs_cleanup_loop(void *svc);

#endif

/* The cleanup and re-wrap jobs and the periodic cleanup thread. */
#include "auth_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_ids.h"
#include "auth_remote.h"
#include "auth_revocations.h"
#include "auth_store.h"
#include "log.h"
#include "rpc_message.h"

/* Repeats a batched delete until a batch comes back short. */
static enum cj_status delete_all(struct cj_db_conn *conn,
                                 enum cj_status (*step)(struct cj_db_conn *,
                                                        long long, unsigned *),
                                 unsigned long long *total)
{
    unsigned count = 0;
    enum cj_status rc;

    do {
        rc = step(conn, AUTH_JOB_DELETE_BATCH, &count);
        *total += count;
    } while (rc == CJ_OK && count == AUTH_JOB_DELETE_BATCH);
    return rc;
}

static enum cj_status delete_old_audit(struct cj_db_conn *conn,
                                       long long retention_days,
                                       unsigned long long *total)
{
    unsigned count = 0;
    enum cj_status rc;

    do {
        rc = auth_store_audit_delete_old(conn, retention_days,
                                         AUTH_JOB_DELETE_BATCH, &count);
        *total += count;
    } while (rc == CJ_OK && count == AUTH_JOB_DELETE_BATCH);
    return rc;
}

/*
 * Borrows a connection and tries the named advisory lock on it. *acquired
 * is false when another replica holds the lock.
 */
static enum cj_status with_lock(struct auth_service *svc, const char *name,
                                struct cj_db_conn **conn, bool *acquired)
{
    enum cj_status rc = auth_db_acquire(svc, NULL, conn);

    *acquired = false;
    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_advisory_try_lock(*conn, cj_db_lock_key(name), acquired);
    if (rc == CJ_OK && !*acquired) {
        cj_log(CJ_LOG_INFO, "auth.job_skipped", NULL, CJ_F_STR("job", name),
               CJ_F_STR("reason", "another replica holds the lock"));
    }
    return rc;
}

static void release_lock(struct cj_db_conn *conn, const char *name,
                         bool acquired)
{
    if (acquired) {
        enum cj_status rc = cj_db_advisory_unlock(conn, cj_db_lock_key(name));

        /* Releasing the connection ends the lock anyway. */
        (void)rc;
    }
    cj_db_release(conn);
}

enum cj_status auth_job_cleanup(struct auth_service *svc,
                                struct auth_job_report *report)
{
    struct cj_db_conn *conn = NULL;
    bool acquired = false;
    enum cj_status rc;

    memset(report, 0, sizeof(*report));
    rc = with_lock(svc, AUTH_JOB_CLEANUP_LOCK, &conn, &acquired);
    if (rc == CJ_OK && acquired) {
        report->ran = true;
        rc =
            delete_all(conn, auth_store_tokens_delete_expired, &report->tokens);
        if (rc == CJ_OK) {
            rc = delete_all(conn, auth_store_revocations_delete_expired,
                            &report->revocations);
        }
        if (rc == CJ_OK) {
            rc = delete_old_audit(conn, svc->cfg.audit_retention_days,
                                  &report->audit_events);
        }
    }
    if (conn != NULL) {
        release_lock(conn, AUTH_JOB_CLEANUP_LOCK, acquired);
    }
    if (rc == CJ_OK && report->ran) {
        cj_log(CJ_LOG_INFO, "auth.cleanup_done", NULL,
               CJ_F_INT("refresh_tokens", report->tokens),
               CJ_F_INT("revocations", report->revocations),
               CJ_F_INT("audit_events", report->audit_events));
    } else if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.cleanup_failed", NULL,
               CJ_F_STR("status", cj_status_name(rc)));
    }
    return rc;
}

static void note_kek_version(struct auth_job_report *report, uint32_t version)
{
    if (report->kek_version_min == 0 || version < report->kek_version_min) {
        report->kek_version_min = version;
    }
    if (version > report->kek_version_max) {
        report->kek_version_max = version;
    }
}

/*
 * Shows kms the form auth now stores, so that kms drops the user's older
 * KEK versions. Until then kms keeps them, so a store that failed or never
 * ran cannot lose the key. When this fails, the next run confirms.
 */
static enum cj_status confirm_rewrap(struct auth_service *svc,
                                     const char *user_id,
                                     const unsigned char *stored, size_t len)
{
    unsigned char same[AUTH_WRAPPED_KEY_MAX];
    size_t same_len = 0;
    uint32_t version = 0;
    bool changed = false;

    return auth_kms_rewrap_key(svc, NULL, user_id, stored, len, same,
                               sizeof(same), &same_len, &version, &changed);
}

/* Re-wraps one user's key; a failure is counted, not fatal. Returns the
 * status of the RewrapKey call, so that the caller can tell kms's
 * failures from Postgres's. */
static enum cj_status rewrap_user(struct auth_service *svc,
                                  struct cj_db_conn *conn,
                                  const struct auth_user *user,
                                  struct auth_job_report *report)
{
    unsigned char wrapped[AUTH_WRAPPED_KEY_MAX];
    size_t len = 0;
    uint32_t version = 0;
    bool changed = false;
    bool updated = false;
    enum cj_status kms_rc;
    enum cj_status rc;

    kms_rc = auth_kms_rewrap_key(svc, NULL, user->id, user->wrapped_key,
                                 user->wrapped_key_len, wrapped,
                                 sizeof(wrapped), &len, &version, &changed);
    rc = kms_rc;
    if (rc == CJ_OK && changed) {
        rc = auth_store_user_replace_wrapped_key(
            conn, user->id, user->wrapped_key, user->wrapped_key_len, wrapped,
            len, version, &updated);
    }
    if (rc == CJ_OK && updated) {
        rc = confirm_rewrap(svc, user->id, wrapped, len);
    }
    if (rc != CJ_OK) {
        report->failures++;
        cj_log(CJ_LOG_ERROR, "auth.rewrap_failed", NULL,
               CJ_F_STR("user_id", user->id),
               CJ_F_STR("status", cj_status_name(rc)));
        return kms_rc;
    }
    if (updated) {
        report->keys_rewrapped++;
    } else if (!changed) {
        report->keys_current++;
    }
    note_kek_version(report, version);
    return kms_rc;
}

/*
 * Counts a RewrapKey result into *failures_in_row and returns whether the
 * job should stop, which it does after AUTH_JOB_KMS_FAILURES_MAX
 * consecutive calls that found kms unavailable or timed out.
 */
static bool kms_seems_unreachable(enum cj_status kms_rc,
                                  unsigned *failures_in_row,
                                  struct auth_job_report *report)
{
    if (kms_rc != CJ_ERR_UNAVAILABLE && kms_rc != CJ_ERR_TIMEOUT) {
        *failures_in_row = 0;
        return false;
    }
    if (++*failures_in_row < AUTH_JOB_KMS_FAILURES_MAX) {
        return false;
    }
    report->kms_unreachable = true;
    cj_log(CJ_LOG_ERROR, "auth.rewrap_stopped", NULL,
           CJ_F_STR("reason", "kms unreachable"),
           CJ_F_INT("failures_in_row", *failures_in_row),
           CJ_F_STR("status", cj_status_name(kms_rc)));
    return true;
}

/* Drops kms's record of user_id unless auth stores that user. */
static enum cj_status forget_if_unknown(struct auth_service *svc,
                                        struct cj_db_conn *conn,
                                        const char *user_id,
                                        struct auth_job_report *report)
{
    bool exists = false;
    bool forgotten = false;
    enum cj_status rc = CJ_OK;

    /* auth creates users with canonical UUIDs only, so any other id is no
     * user of auth's. */
    if (auth_uuid_valid(user_id)) {
        rc = auth_store_user_exists(conn, user_id, &exists);
    }
    if (rc != CJ_OK || exists) {
        return rc;
    }
    rc = auth_kms_forget_user_key(svc, NULL, user_id, &forgotten);
    if (rc == CJ_OK && forgotten) {
        report->records_forgotten++;
        cj_log(CJ_LOG_INFO, "auth.user_key_forgotten", NULL,
               CJ_F_STR("user_id", user_id));
    }
    return rc;
}

/*
 * Drops kms's records of data keys under a retired KEK that belong to no
 * stored user: registrations that failed after CreateUserKey, including
 * those whose own ForgetUserKey never ran because auth stopped. kms lists
 * only records an hour old, so a registration still in progress is never
 * among them.
 */
static enum cj_status forget_unknown_users(struct auth_service *svc,
                                           struct cj_db_conn *conn,
                                           struct auth_job_report *report)
{
    Cerrojo__V1__ListOldKeyUsersResponse *page = NULL;
    char after[AUTH_JOB_USER_ID_MAX + 1] = "";
    size_t count = 0;
    enum cj_status rc;

    do {
        rc = auth_kms_list_old_key_users(svc, after, AUTH_JOB_OLD_KEY_PAGE,
                                         &page);
        if (rc != CJ_OK) {
            return rc;
        }
        count = page->n_user_ids;
        for (size_t i = 0; rc == CJ_OK && i < count; i++) {
            rc = forget_if_unknown(svc, conn, page->user_ids[i], report);
        }
        if (count > 0) {
            snprintf(after, sizeof(after), "%s", page->user_ids[count - 1]);
        }
        cj_rpc_message_free(&page->base);
    } while (rc == CJ_OK && count == AUTH_JOB_OLD_KEY_PAGE);
    return rc;
}

enum cj_status auth_job_rewrap(struct auth_service *svc,
                               struct auth_job_report *report)
{
    struct auth_user *users = calloc(AUTH_JOB_REWRAP_PAGE, sizeof(*users));
    char after[AUTH_UUID_TEXT_SIZE] = "";
    struct cj_db_conn *conn = NULL;
    bool acquired = false;
    size_t count = 0;
    unsigned failures_in_row = 0;
    enum cj_status rc = CJ_ERR_NOMEM;

    memset(report, 0, sizeof(*report));
    if (users == NULL) {
        return rc;
    }
    rc = with_lock(svc, AUTH_JOB_REWRAP_LOCK, &conn, &acquired);
    if (rc == CJ_OK && acquired) {
        report->ran = true;
        do {
            rc = auth_store_user_list_after(conn, after, users,
                                            AUTH_JOB_REWRAP_PAGE, &count);
            for (size_t i = 0; rc == CJ_OK && i < count; i++) {
                enum cj_status kms_rc;

                report->users_seen++;
                kms_rc = rewrap_user(svc, conn, &users[i], report);
                if (kms_seems_unreachable(kms_rc, &failures_in_row, report)) {
                    rc = CJ_ERR_UNAVAILABLE;
                }
            }
            if (count > 0) {
                memcpy(after, users[count - 1].id, sizeof(after));
            }
        } while (rc == CJ_OK && count == AUTH_JOB_REWRAP_PAGE);
        /* After the re-wrap, so that the stored users' records name the
         * active KEK and the listed ones are few. */
        if (rc == CJ_OK) {
            rc = forget_unknown_users(svc, conn, report);
        }
    }
    if (conn != NULL) {
        release_lock(conn, AUTH_JOB_REWRAP_LOCK, acquired);
    }
    free(users);
    if (rc == CJ_OK && report->failures > 0) {
        rc = CJ_ERR_UNAVAILABLE;
    }
    if (rc != CJ_OK && !report->ran) {
        cj_log(CJ_LOG_ERROR, "auth.rewrap_job_failed", NULL,
               CJ_F_STR("status", cj_status_name(rc)));
        return rc;
    }
    cj_log(rc == CJ_OK ? CJ_LOG_INFO : CJ_LOG_ERROR, "auth.rewrap_done", NULL,
           CJ_F_INT("users", report->users_seen),
           CJ_F_INT("rewrapped", report->keys_rewrapped),
           CJ_F_INT("current", report->keys_current),
           CJ_F_INT("forgotten", report->records_forgotten),
           CJ_F_INT("kek_version", report->kek_version_max),
           CJ_F_INT("failures", report->failures),
           CJ_F_STR("status", cj_status_name(rc)));
    return rc;
}

void *auth_jobs_cleanup_loop(void *arg)
{
    struct auth_service *svc = arg;
    struct auth_job_report report;

    if (svc->cfg.cleanup_interval_s <= 0) {
        return NULL;
    }
    while (auth_service_sleep(svc, svc->cfg.cleanup_interval_s * 1000)) {
        /* Logged inside; the next round retries. */
        enum cj_status rc = auth_job_cleanup(svc, &report);

        (void)rc;
    }
    return NULL;
}

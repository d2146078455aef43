/* The delete-user command's steps, in the order that leaves no window in
 * which a deleted user's token works. */
#include "auth_user_delete.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "auth_audit.h"
#include "auth_names.h"
#include "auth_remote.h"
#include "auth_revocations.h"
#include "auth_store.h"
#include "log.h"

#define DELETE_USER_AGENT "cerrojo-auth delete-user"

/* Sets report->user_id from a user id or a login name. */
static enum cj_status resolve_user(struct auth_service *svc,
                                   const char *request_id, const char *user_ref,
                                   struct auth_user_delete_report *report)
{
    char login_norm[AUTH_NAME_BUF_BYTES];
    struct auth_user user;
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    if (auth_uuid_canonicalize(user_ref, report->user_id,
                               sizeof(report->user_id))) {
        return CJ_OK;
    }
    if (auth_login_normalize(user_ref, strlen(user_ref), login_norm,
                             sizeof(login_norm)) != CJ_OK) {
        return CJ_ERR_NOT_FOUND;
    }
    rc = auth_db_acquire(svc, request_id, &conn);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_user_find_by_login(conn, login_norm, &user);
    cj_db_release(conn);
    if (rc == CJ_OK) {
        snprintf(report->user_id, sizeof(report->user_id), "%s", user.id);
    }
    return rc;
}

/*
 * Returns CJ_OK when auth recorded the deletion of this user id, so that a
 * repeat may finish the later steps, and CJ_ERR_NOT_FOUND when the id
 * never named a user here, for example a mistyped id.
 */
static enum cj_status check_deletion_recorded(struct cj_db_conn *conn,
                                              const char *user_id)
{
    bool recorded = false;
    enum cj_status rc =
        auth_store_user_deletion_recorded(conn, user_id, &recorded);

    if (rc == CJ_OK && !recorded) {
        rc = CJ_ERR_NOT_FOUND;
    }
    return rc;
}

/*
 * In one transaction: records the user's revocation, deletes the row (the
 * database cascades to data and refresh tokens) and writes the audit
 * event. The revocation is committed before session hears of it, so a
 * session outage only delays when the cache has it; auth's watcher
 * resends it.
 */
static enum cj_status delete_rows(struct auth_service *svc,
                                  const struct auth_call *call, int64_t now_ms,
                                  struct auth_user_delete_report *report)
{
    int64_t expires_ms = auth_revocation_expiry_ms(svc, now_ms);
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = auth_db_acquire(svc, call->request_id, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_begin(conn);
    if (rc == CJ_OK) {
        rc =
            auth_store_user_delete(conn, report->user_id, &report->row_deleted);
    }
    if (rc == CJ_OK && !report->row_deleted) {
        rc = check_deletion_recorded(conn, report->user_id);
    }
    if (rc == CJ_OK && report->row_deleted) {
        rc = auth_store_revocation_put(conn, AUTH_REVOKED_USER, report->user_id,
                                       report->user_id, now_ms, expires_ms);
    }
    if (rc == CJ_OK && report->row_deleted) {
        rc = auth_audit_write(conn, call, AUTH_EVENT_USER_DELETED,
                              report->user_id, NULL, NULL);
    }
    if (rc == CJ_OK) {
        rc = cj_db_commit(conn);
    }
    if (rc != CJ_OK) {
        auth_db_abort(conn);
    }
    cj_db_release(conn);
    return rc;
}

/*
 * Ends the user's sessions and puts the revocation in session's cache.
 * When session does not take it, the cache is invalidated, so that
 * IsRevoked fails closed until a serving auth reloads it with the
 * committed row.
 */
static enum cj_status end_sessions(struct auth_service *svc,
                                   const char *request_id, int64_t now_ms,
                                   struct auth_user_delete_report *report)
{
    enum cj_status rc =
        auth_session_delete_user(svc, request_id, report->user_id);

    if (rc == CJ_OK && report->row_deleted) {
        rc = auth_session_revoke_user(svc, request_id, report->user_id,
                                      now_ms / 1000,
                                      auth_revocation_expiry_ms(svc, now_ms));
    }
    if (rc != CJ_OK && report->row_deleted) {
        auth_revocations_mark_stale(svc, request_id, "delete_user_failed");
    }
    report->sessions_ended = rc == CJ_OK;
    return rc;
}

enum cj_status auth_user_delete(struct auth_service *svc, const char *user_ref,
                                struct auth_user_delete_report *report)
{
    struct cj_caller_context caller = {.channel = CJ_CHANNEL_NONE};
    char request_id[AUTH_UUID_TEXT_SIZE];
    struct auth_call call = {.caller = &caller, .request_id = request_id};
    int64_t now_ms = auth_now_ms(svc);
    enum cj_status rc;

    memset(report, 0, sizeof(*report));
    auth_uuid_new(request_id);
    snprintf(caller.user_agent, sizeof(caller.user_agent), "%s",
             DELETE_USER_AGENT);
    rc = resolve_user(svc, request_id, user_ref, report);
    if (rc == CJ_OK) {
        rc = delete_rows(svc, &call, now_ms, report);
    }
    if (rc == CJ_OK) {
        rc = end_sessions(svc, request_id, now_ms, report);
    }
    if (rc == CJ_OK) {
        rc = auth_kms_forget_user_key(svc, request_id, report->user_id,
                                      &report->key_forgotten);
        report->key_checked = rc == CJ_OK;
    }
    if (rc == CJ_ERR_NOT_FOUND) {
        /* An operator's typo, not a failure of the service. */
        cj_log(CJ_LOG_INFO, "auth.user_delete_not_found", request_id);
        return rc;
    }
    cj_log(rc == CJ_OK ? CJ_LOG_INFO : CJ_LOG_ERROR,
           rc == CJ_OK ? "auth.user_deleted" : "auth.user_delete_failed",
           request_id, CJ_F_STR("user_id", report->user_id),
           CJ_F_BOOL("row_deleted", report->row_deleted),
           CJ_F_BOOL("sessions_ended", report->sessions_ended),
           CJ_F_BOOL("key_checked", report->key_checked),
           CJ_F_BOOL("key_forgotten", report->key_forgotten),
           CJ_F_STR("status", cj_status_name(rc)));
    return rc;
}

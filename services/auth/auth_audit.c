/* Audit events with the caller context, in or out of a transaction. */
#include "auth_audit.h"

#include <stdlib.h>
#include <string.h>

#include "auth_flows.h"
#include "auth_ids.h"

#include "auth_store.h"
#include "log.h"

enum cj_status auth_audit_event_make(const struct auth_call *call,
                                     const char *event, const char *user_id,
                                     const char *session_id, json_t *detail,
                                     struct auth_audit_event *row,
                                     char **detail_json)
{
    *row = (struct auth_audit_event){
        .event = event,
        .user_id = user_id,
        .client_ip = call->caller->client_ip,
        .user_agent = call->caller->user_agent,
        .request_id = call->request_id,
    };
    if (session_id != NULL && session_id[0] != '\0') {
        auth_session_id_hash(session_id, row->session_hash);
    }
    *detail_json = NULL;
    if (detail != NULL) {
        *detail_json = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(detail);
        if (*detail_json == NULL) {
            return CJ_ERR_NOMEM;
        }
    }
    row->detail_json = *detail_json;
    return CJ_OK;
}

enum cj_status auth_audit_write(struct cj_db_conn *conn,
                                const struct auth_call *call, const char *event,
                                const char *user_id, const char *session_id,
                                json_t *detail)
{
    struct auth_audit_event row;
    char *detail_json = NULL;
    enum cj_status rc;

    rc = auth_audit_event_make(call, event, user_id, session_id, detail, &row,
                               &detail_json);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_audit_insert(conn, &row);
    free(detail_json);
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.audit_write_failed", call->request_id,
               CJ_F_STR("event", event), CJ_F_STR("status", cj_status_name(rc)),
               CJ_F_STR("sqlstate", cj_db_last_sqlstate(conn)));
    }
    return rc;
}

void auth_audit_record(struct auth_service *svc, const struct auth_call *call,
                       const char *event, const char *user_id,
                       const char *session_id, json_t *detail)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    if (auth_db_acquire(svc, call->request_id, &conn) != CJ_OK) {
        json_decref(detail);
        cj_log(CJ_LOG_ERROR, "auth.audit_write_failed", call->request_id,
               CJ_F_STR("event", event), CJ_F_STR("status", "no_connection"));
        return;
    }
    /* A failure is logged by auth_audit_write. */
    rc = auth_audit_write(conn, call, event, user_id, session_id, detail);
    (void)rc;
    cj_db_release(conn);
}

void auth_audit_sessions_evicted(struct auth_service *svc,
                                 const struct auth_call *call,
                                 const char *user_id, const char *session_id,
                                 uint32_t count)
{
    if (count == 0) {
        return;
    }
    auth_audit_record(svc, call, AUTH_EVENT_SESSIONS_EVICTED, user_id,
                      session_id,
                      json_pack("{s:I}", "count", (json_int_t)count));
}

/* Limits of RecordAudit input. */
#define RECORD_AUDIT_DETAIL_MAX_BYTES 4096
#define RECORD_AUDIT_EVENT_PREFIX     "gateway."
#define RECORD_AUDIT_EVENT_MAX        64

/* Returns true for "gateway." followed by [a-z0-9_.], 64 bytes at most. */
static bool gateway_event_valid(const char *event)
{
    size_t prefix = sizeof(RECORD_AUDIT_EVENT_PREFIX) - 1;
    size_t len = strlen(event);

    if (len <= prefix || len > RECORD_AUDIT_EVENT_MAX ||
        strncmp(event, RECORD_AUDIT_EVENT_PREFIX, prefix) != 0) {
        return false;
    }
    for (size_t i = prefix; i < len; i++) {
        char c = event[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.')) {
            return false;
        }
    }
    return true;
}

enum cj_status auth_record_audit(struct auth_service *svc,
                                 struct auth_call *call,
                                 const Cerrojo__V1__RecordAuditRequest *req,
                                 Cerrojo__V1__RecordAuditResponse **out)
{
    struct cj_db_conn *conn = NULL;
    json_t *detail = NULL;
    json_error_t error;
    const char *user_id = call->caller->user_id;
    enum cj_status rc;

    *out = NULL;
    if (!gateway_event_valid(req->event)) {
        auth_call_error(call, "event must be gateway. followed by a-z, 0-9, "
                              "_ and ., 64 bytes at most");
        return CJ_ERR_INVALID;
    }
    if (strlen(req->detail_json) > RECORD_AUDIT_DETAIL_MAX_BYTES) {
        auth_call_error(call, "detail_json is longer than %d bytes",
                        RECORD_AUDIT_DETAIL_MAX_BYTES);
        return CJ_ERR_INVALID;
    }
    if (req->detail_json[0] != '\0') {
        detail = json_loads(req->detail_json, JSON_REJECT_DUPLICATES, &error);
        if (detail == NULL || !json_is_object(detail)) {
            json_decref(detail);
            auth_call_error(call, "detail_json must be a JSON object");
            return CJ_ERR_INVALID;
        }
    }
    rc = auth_db_acquire_for(svc, call, &conn);
    if (rc != CJ_OK) {
        json_decref(detail);
        return rc;
    }
    rc = auth_audit_write(conn, call, req->event,
                          auth_uuid_valid(user_id) ? user_id : NULL,
                          call->caller->session_id, detail);
    cj_db_release(conn);
    if (rc != CJ_OK) {
        return rc;
    }
    *out = malloc(sizeof(**out));
    if (*out == NULL) {
        return CJ_ERR_NOMEM;
    }
    cerrojo__v1__record_audit_response__init(*out);
    return CJ_OK;
}

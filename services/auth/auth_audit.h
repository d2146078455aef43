/*
 * Writing audit events with the caller's context (client IP, user agent,
 * request id). Details are JSON objects of ids, counts and reasons; no
 * caller ever passes a password, token or key.
 */
#ifndef AUTH_AUDIT_H
#define AUTH_AUDIT_H

#include <stdint.h>

#include <jansson.h>

#include "auth_service.h"
#include "auth_store.h"

/* Event names written by auth itself. */
#define AUTH_EVENT_REGISTER         "register"
#define AUTH_EVENT_LOGIN_SUCCESS    "login.success"
#define AUTH_EVENT_LOGIN_FAILURE    "login.failure"
#define AUTH_EVENT_REFRESH          "refresh"
#define AUTH_EVENT_REFRESH_REUSE    "refresh_reuse"
#define AUTH_EVENT_LOGOUT           "logout"
#define AUTH_EVENT_LOGOUT_ALL       "logout.all"
#define AUTH_EVENT_PROTECTED_READ   "data.protected_read"
#define AUTH_EVENT_PROTECTED_WRITE  "data.protected_write"
#define AUTH_EVENT_SESSIONS_EVICTED "session.evicted"
#define AUTH_EVENT_USER_DELETED     "user.deleted"

/*
 * Fills *row with an event and the caller's context, for a statement that
 * writes the event together with other rows. session_id (may be NULL or
 * empty) is stored as its SHA-256 (auth_session_id_hash). Takes ownership of
 * detail (may be NULL) and sets *detail_json to its text, which row points to
 * and the caller frees. CJ_ERR_NOMEM when detail cannot be serialized.
 */
CJ_WARN_UNUSED enum cj_status
auth_audit_event_make(const struct auth_call *call, const char *event,
                      const char *user_id, const char *session_id,
                      json_t *detail, struct auth_audit_event *row,
                      char **detail_json);

/*
 * Appends an event on conn (inside the caller's transaction when one is
 * open). Takes ownership of detail (may be NULL). user_id and session_id
 * may be NULL or empty.
 */
CJ_WARN_UNUSED enum cj_status
auth_audit_write(struct cj_db_conn *conn, const struct auth_call *call,
                 const char *event, const char *user_id, const char *session_id,
                 json_t *detail);

/*
 * Appends an event on a connection of its own, outside any transaction,
 * and logs a failure instead of returning it: for events that must not
 * change the reply (a failed login stays a failed login).
 */
void auth_audit_record(struct auth_service *svc, const struct auth_call *call,
                       const char *event, const char *user_id,
                       const char *session_id, json_t *detail);

/*
 * Records the event that binding session_id to user_id ended count other
 * sessions of the user, who went over the session service's per-user
 * limit. Like auth_audit_record, it logs a failure instead of returning
 * it. Writes nothing when count is 0.
 */
void auth_audit_sessions_evicted(struct auth_service *svc,
                                 const struct auth_call *call,
                                 const char *user_id, const char *session_id,
                                 uint32_t count);

#endif

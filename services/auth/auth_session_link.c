/* Opening and binding the stateful session of a register or login. */
#include <stdio.h>
#include <string.h>

#include "auth_audit.h"
#include "auth_flows.h"
#include "auth_remote.h"
#include "crypto_util.h"
#include "log.h"
#include "rpc_message.h"

enum cj_status
auth_client_secret_check(struct auth_call *call,
                         const ProtobufCBinaryData *client_secret)
{
    if (client_secret->len == 0) {
        return CJ_OK;
    }
    if (client_secret->len != AUTH_CLIENT_SECRET_SIZE) {
        auth_call_error(call, "client_secret must be %d bytes",
                        AUTH_CLIENT_SECRET_SIZE);
        return CJ_ERR_INVALID;
    }
    /* Checked here as well as in session, so that a login or a
     * registration fails before it does any work. */
    if (cj_ct_is_zero(client_secret->data, client_secret->len)) {
        auth_call_error(call, "client_secret is invalid: all bytes are zero, "
                              "so the client's random source is broken");
        return CJ_ERR_INVALID;
    }
    if (call->caller->channel == CJ_CHANNEL_STATEFUL) {
        auth_call_error(call, "client_secret is accepted only on the "
                              "stateless channel; a stateful request binds "
                              "the session it was sent on");
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

enum cj_status auth_session_open_for(struct auth_service *svc,
                                     struct auth_call *call,
                                     const ProtobufCBinaryData *client_secret,
                                     const char *user_id, char *session_id,
                                     size_t session_id_size, bool *created,
                                     Cerrojo__V1__SessionInfo **info)
{
    Cerrojo__V1__SessionInfo *opened = NULL;
    Cerrojo__V1__SessionInfo *bound = NULL;
    uint32_t evicted = 0;
    enum cj_status rc;

    session_id[0] = '\0';
    *created = false;
    *info = NULL;
    if (client_secret->len == 0) {
        if (call->caller->channel != CJ_CHANNEL_STATEFUL ||
            call->caller->session_id[0] == '\0') {
            return CJ_OK;
        }
        rc = auth_session_bind(svc, call->request_id, call->caller->session_id,
                               user_id, NULL, &evicted);
        if (rc == CJ_OK) {
            snprintf(session_id, session_id_size, "%s",
                     call->caller->session_id);
            auth_audit_sessions_evicted(svc, call, user_id, session_id,
                                        evicted);
        }
        /* The client's own session belongs to someone else: no retry
         * helps, a new handshake does. */
        if (rc == CJ_ERR_PRECONDITION) {
            auth_call_error(call, AUTH_SESSION_OTHER_USER);
            return CJ_ERR_EXISTS;
        }
        return auth_remote_call_error(call, AUTH_REMOTE_SESSION, rc);
    }

    rc = auth_session_create(svc, call->request_id, client_secret->data,
                             client_secret->len, &opened);
    if (rc != CJ_OK) {
        rc = auth_remote_call_error(call, AUTH_REMOTE_SESSION, rc);
        return rc;
    }
    if (opened->session_id == NULL ||
        strlen(opened->session_id) >= session_id_size) {
        cj_rpc_message_free(&opened->base);
        return auth_remote_call_error(call, AUTH_REMOTE_SESSION,
                                      CJ_ERR_INTERNAL);
    }
    snprintf(session_id, session_id_size, "%s", opened->session_id);
    *created = true;
    rc = auth_session_bind(svc, call->request_id, session_id, user_id, &bound,
                           &evicted);
    if (rc != CJ_OK) {
        rc = auth_remote_call_error(call, AUTH_REMOTE_SESSION, rc);
        cj_rpc_message_free(&opened->base);
        auth_session_discard(svc, call, session_id);
        session_id[0] = '\0';
        *created = false;
        return rc;
    }
    /* The other sessions stay ended even when the login fails later and
     * discards this one, so the event is written now. */
    auth_audit_sessions_evicted(svc, call, user_id, session_id, evicted);
    /* Binding lengthens the expiry times; the rest is from the handshake. */
    if (bound != NULL) {
        opened->idle_expires_at_ms = bound->idle_expires_at_ms;
        opened->absolute_expires_at_ms = bound->absolute_expires_at_ms;
        cj_rpc_message_free(&bound->base);
    }
    *info = opened;
    return CJ_OK;
}

void auth_session_discard(struct auth_service *svc, struct auth_call *call,
                          const char *session_id)
{
    enum cj_status rc;

    if (session_id == NULL || session_id[0] == '\0') {
        return;
    }
    rc = auth_session_delete(svc, call->request_id, session_id);
    if (rc != CJ_OK) {
        /* An unbound or orphan session expires on its own idle timer. */
        cj_log(CJ_LOG_WARN, "auth.session_discard_failed", call->request_id,
               CJ_F_STR("status", cj_status_name(rc)));
    }
}

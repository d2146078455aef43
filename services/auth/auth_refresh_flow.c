/*
 * The Refresh RPC. The rotation runs in one transaction under the family's
 * advisory lock and the token's row lock, so concurrent refreshes with one
 * token serialize. The first rotates. The others find the token used and,
 * with the grace period off, revoke the family. The access token is signed
 * before the transaction so that nothing is committed that the reply then
 * fails to carry.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_audit.h"
#include "auth_flows.h"
#include "auth_ids.h"
#include "auth_refresh.h"
#include "auth_remote.h"
#include "auth_revocations.h"
#include "auth_store.h"
#include "auth_tokens.h"
#include "deadline.h"
#include "log.h"

#define INVALID_REFRESH_TOKEN "invalid refresh token"

struct refresh_state {
    struct auth_refresh_row presented; /* as first read, unlocked */
    struct auth_refresh_row token;     /* locked */
    struct auth_refresh_row successor;
    bool has_successor;
    int64_t user_revoked_at_ms;
    enum auth_refresh_action action;
    unsigned revoked_count;
    struct auth_revoked_access *family_access; /* malloc */
    size_t family_access_count;
    struct auth_access_token access;
    struct auth_new_refresh next;
};

static enum cj_status find_presented(struct auth_service *svc,
                                     struct auth_call *call,
                                     const uint8_t *hash,
                                     struct refresh_state *st)
{
    struct cj_db_conn *conn = NULL;
    enum auth_user_status status = AUTH_USER_DISABLED;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_token_find_with_user(conn, hash, &st->presented, &status);
    cj_db_release(conn);
    /* A disabled account gets no new tokens. */
    if (rc == CJ_OK && status != AUTH_USER_ACTIVE) {
        rc = CJ_ERR_UNAUTHENTICATED;
    }
    return rc;
}

/* Returns whether the presented token may rotate: unused, or used within
 * the grace period for a retry. */
static bool may_rotate(const struct auth_service *svc,
                       const struct auth_refresh_row *token)
{
    if (token->revoked_at_ms != 0) {
        return false;
    }
    if (token->used_at_ms == 0) {
        return true;
    }
    return svc->cfg.refresh_grace_s > 0 &&
           auth_now_ms(svc) - token->used_at_ms <=
               svc->cfg.refresh_grace_s * 1000;
}

/*
 * Checks that a stateful family's session still exists, because the
 * family lives only as long as its session, whichever channel the refresh
 * comes on. BindUser with the family's user fails for a session that
 * expired or was deleted, and counts the refresh as activity otherwise.
 * Returns CJ_ERR_UNAUTHENTICATED when the session is gone.
 */
static enum cj_status session_alive(struct auth_service *svc,
                                    struct auth_call *call,
                                    const struct auth_refresh_row *token)
{
    uint32_t evicted = 0;
    enum cj_status rc;

    if (token->session_id[0] == '\0') {
        return CJ_OK;
    }
    /* The gateway opened this very request with the session, which proves
     * it alive and counted the activity already. */
    if (call->caller->channel == CJ_CHANNEL_STATEFUL &&
        strcmp(call->caller->session_id, token->session_id) == 0) {
        return CJ_OK;
    }
    /* A token that cannot rotate goes on to the transaction, which treats
     * it as reuse: the family is revoked and the reuse audited even when
     * its session is gone. */
    if (!may_rotate(svc, token)) {
        return CJ_OK;
    }
    rc = auth_session_bind(svc, call->request_id, token->session_id,
                           token->user_id, NULL, &evicted);
    /* A session already bound ends others only when the user is over the
     * limit, for example after the limit was lowered. */
    auth_audit_sessions_evicted(svc, call, token->user_id, token->session_id,
                                evicted);
    if (rc == CJ_ERR_NOT_FOUND || rc == CJ_ERR_PRECONDITION) {
        cj_log(CJ_LOG_INFO, "auth.refresh_session_ended", call->request_id,
               CJ_F_STR("user_id", token->user_id),
               CJ_F_STR("family_id", token->family_id),
               CJ_F_STR("reason", rc == CJ_ERR_NOT_FOUND ? "session_gone"
                                                         : "session_rebound"));
        return CJ_ERR_UNAUTHENTICATED;
    }
    return auth_remote_call_error(call, AUTH_REMOTE_SESSION, rc);
}

/*
 * Rejects a refresh on a stateful session bound to another user than the
 * token's, as login and register do: one session serves one identity.
 * Nothing is written, so the token stays unspent and its family live. A
 * holder of the token could spend it on the stateless channel anyway, so
 * revoking the family here would add no protection against a thief but
 * would end the owner's sessions after a client mistake.
 */
static enum cj_status check_session_user(struct auth_call *call,
                                         const struct auth_refresh_row *token)
{
    const struct cj_caller_context *caller = call->caller;

    if (caller->channel != CJ_CHANNEL_STATEFUL || caller->user_id[0] == '\0' ||
        strcmp(caller->user_id, token->user_id) == 0) {
        return CJ_OK;
    }
    cj_log(CJ_LOG_WARN, "auth.refresh_rejected", call->request_id,
           CJ_F_STR("reason", "session_bound_to_other_user"),
           CJ_F_STR("user_id", token->user_id),
           CJ_F_STR("session_user_id", caller->user_id),
           CJ_F_STR("family_id", token->family_id));
    auth_call_error(call, AUTH_SESSION_OTHER_USER);
    return CJ_ERR_EXISTS;
}

/* Loads the locked state the decision needs. */
static enum cj_status load_locked(struct cj_db_conn *conn,
                                  struct refresh_state *st)
{
    enum cj_status rc;

    rc = auth_store_family_lock(conn, st->presented.family_id);
    if (rc == CJ_OK) {
        rc = auth_store_token_get_for_update_with_revocation(
            conn, st->presented.id, &st->token, &st->user_revoked_at_ms);
    }
    if (rc == CJ_OK && st->token.replaced_by[0] != '\0') {
        rc = auth_store_token_get_for_update(conn, st->token.replaced_by,
                                             &st->successor);
        st->has_successor = rc == CJ_OK;
        if (rc == CJ_ERR_NOT_FOUND) {
            rc = CJ_OK;
        }
    }
    return rc;
}

/* Expiry of the access token issued with the successor that a grace retry
 * replaces, in ms. */
static int64_t replaced_access_expiry_ms(const struct auth_service *svc,
                                         const struct refresh_state *st)
{
    return st->successor.issued_at_ms + svc->cfg.access_ttl_s * 1000;
}

/* Issues the successor: the old token is marked used (or, on a grace
 * retry, its unseen successor revoked), the new one inserted and linked,
 * and the audit event appended, all in one statement. */
static enum cj_status rotate(struct auth_service *svc, struct auth_call *call,
                             struct cj_db_conn *conn, struct refresh_state *st)
{
    bool grace = st->action == AUTH_REFRESH_GRACE_RETRY;
    struct auth_audit_event audit;
    char *detail_json = NULL;
    enum cj_status rc;

    auth_new_refresh_make(svc, &st->access, st->token.user_id,
                          st->token.session_id, st->token.family_id,
                          st->token.family_expires_at_ms, auth_now_ms(svc),
                          &st->next);
    rc = auth_audit_event_make(
        call, AUTH_EVENT_REFRESH, st->token.user_id, st->token.session_id,
        json_pack("{s:s, s:b}", "family_id", st->token.family_id, "grace_retry",
                  grace),
        &audit, &detail_json);
    if (rc == CJ_OK) {
        rc = auth_store_token_rotate(conn, st->token.id,
                                     grace ? st->successor.id : NULL,
                                     &st->next.row, &audit);
    }
    /* The replaced successor came with an access token whose jti is the
     * successor's id. It is revoked too, or each retry would add one more
     * live access token. */
    if (rc == CJ_OK && grace) {
        rc = auth_store_revocation_put(
            conn, AUTH_REVOKED_TOKEN, st->successor.id, st->token.user_id,
            auth_now_ms(svc),
            replaced_access_expiry_ms(svc, st) + svc->cfg.jwt_leeway_s * 1000);
    }
    free(detail_json);
    if (rc != CJ_OK &&
        strcmp(cj_db_last_sqlstate(conn), CJ_DB_SQLSTATE_FOREIGN_KEY) == 0) {
        /* delete-user removed the user after the token was read, so the
         * successor has no user to reference. */
        return CJ_ERR_NOT_FOUND;
    }
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.refresh_write_failed", call->request_id,
               CJ_F_STR("user_id", st->token.user_id),
               CJ_F_STR("status", cj_status_name(rc)),
               CJ_F_STR("sqlstate", cj_db_last_sqlstate(conn)));
    }
    return rc;
}

/*
 * Revokes the family of a reused token and records its session and the
 * access tokens issued from it as revoked. Only the first revocation of a
 * family writes the audit event, so a burst of replays leaves one refresh_reuse
 * event.
 */
static enum cj_status revoke_family(struct auth_service *svc,
                                    struct auth_call *call,
                                    struct cj_db_conn *conn,
                                    struct refresh_state *st)
{
    int64_t now_ms = auth_now_ms(svc);
    enum cj_status rc;

    rc = auth_store_family_revoke(conn, st->token.family_id, "reuse",
                                  &st->revoked_count);
    if (rc != CJ_OK || st->revoked_count == 0) {
        return rc;
    }
    rc = auth_store_family_access_revoke(
        conn, st->token.family_id, svc->cfg.access_ttl_s, svc->cfg.jwt_leeway_s,
        &st->family_access, &st->family_access_count);
    if (rc == CJ_OK && st->token.session_id[0] != '\0') {
        rc = auth_store_revocation_put(
            conn, AUTH_REVOKED_SESSION, st->token.session_id, st->token.user_id,
            now_ms,
            now_ms + (svc->cfg.access_ttl_s + svc->cfg.jwt_leeway_s) * 1000);
    }
    if (rc == CJ_OK) {
        rc = auth_audit_write(conn, call, AUTH_EVENT_REFRESH_REUSE,
                              st->token.user_id, st->token.session_id,
                              json_pack("{s:s, s:s, s:i}", "family_id",
                                        st->token.family_id, "token_id",
                                        st->token.id, "revoked_tokens",
                                        (int)st->revoked_count));
    }
    return rc;
}

static enum cj_status run_transaction(struct auth_service *svc,
                                      struct auth_call *call,
                                      struct refresh_state *st)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_begin(conn);
    if (rc == CJ_OK) {
        rc = load_locked(conn, st);
    }
    if (rc != CJ_OK) {
        goto out;
    }
    st->action = auth_refresh_decide(
        &st->token, st->has_successor ? &st->successor : NULL, auth_now_ms(svc),
        svc->cfg.refresh_grace_s * 1000, st->user_revoked_at_ms);
    switch (st->action) {
    case AUTH_REFRESH_ROTATE:
    case AUTH_REFRESH_GRACE_RETRY:
        rc = rotate(svc, call, conn, st);
        break;
    case AUTH_REFRESH_REUSE:
        rc = revoke_family(svc, call, conn, st);
        break;
    case AUTH_REFRESH_EXPIRED:
        break;
    }
    /* A rotation committed after the caller gave up would leave it holding
     * a used token, and its retry would then count as reuse and end the
     * session. A reuse found that late is most often that retry seen from
     * the other side: the gateway returned 503, the client retried with
     * the same token and rotated it, and this call, stalled behind the
     * same database, now finds the token used. Revoking then would end the
     * login of a client that did what the 503 asked. A replayed stolen
     * token gains nothing from a call whose reply nobody reads, and its
     * next presentation is judged again. */
    if (rc == CJ_OK && st->action != AUTH_REFRESH_EXPIRED &&
        auth_call_caller_gone(call)) {
        cj_log(CJ_LOG_WARN, "auth.refresh_abandoned", call->request_id,
               CJ_F_STR("user_id", st->token.user_id),
               CJ_F_STR("action", auth_refresh_action_name(st->action)),
               CJ_F_INT("margin_ms", AUTH_COMMIT_MARGIN_MS),
               CJ_F_BOOL("cancelled", auth_call_cancelled(call)));
        auth_call_error(call, "the call was cancelled or its deadline passed "
                              "before the refresh was committed; retry with "
                              "the same token");
        rc = CJ_ERR_TIMEOUT;
    }
    if (rc == CJ_OK) {
        rc = cj_db_commit(conn);
    }
out:
    if (rc != CJ_OK) {
        auth_db_abort(conn);
    }
    cj_db_release(conn);
    return rc;
}

/* Sends the family's revoked access tokens to session's cache. */
static void cache_family_access(struct auth_service *svc,
                                struct auth_call *call,
                                const struct refresh_state *st)
{
    for (size_t i = 0; i < st->family_access_count; i++) {
        enum cj_status rc = auth_session_revoke_token(
            svc, call->request_id, st->family_access[i].token_id,
            st->family_access[i].expires_at);

        if (rc != CJ_OK) {
            /* The durable rows are written, and the failed call marked the
             * cache stale, so the watcher sends them again. */
            cj_log(CJ_LOG_ERROR, "auth.token_revoke_failed", call->request_id,
                   CJ_F_STR("user_id", st->token.user_id),
                   CJ_F_STR("status", cj_status_name(rc)));
            return;
        }
    }
}

/* Sends the access token of the successor a grace retry replaced to
 * session's cache; the durable row is already committed. */
static void cache_replaced_access(struct auth_service *svc,
                                  struct auth_call *call,
                                  const struct refresh_state *st)
{
    enum cj_status rc =
        auth_session_revoke_token(svc, call->request_id, st->successor.id,
                                  replaced_access_expiry_ms(svc, st) / 1000);

    if (rc != CJ_OK) {
        /* As for a family's tokens, the watcher sends the row again. */
        cj_log(CJ_LOG_ERROR, "auth.token_revoke_failed", call->request_id,
               CJ_F_STR("user_id", st->token.user_id),
               CJ_F_STR("status", cj_status_name(rc)));
    }
}

/* Reports a reuse, revokes the family's access tokens in session's cache
 * and deletes the family's session. */
static void after_reuse(struct auth_service *svc, struct auth_call *call,
                        const struct refresh_state *st)
{
    cj_log(CJ_LOG_WARN, "auth.refresh_reuse", call->request_id,
           CJ_F_STR("user_id", st->token.user_id),
           CJ_F_STR("family_id", st->token.family_id),
           CJ_F_INT("revoked_tokens", st->revoked_count),
           CJ_F_INT("revoked_access_tokens", st->family_access_count));
    cache_family_access(svc, call, st);
    if (st->revoked_count > 0 && st->token.session_id[0] != '\0') {
        enum cj_status rc = auth_session_delete_revoked(svc, call->request_id,
                                                        st->token.session_id);

        if (rc != CJ_OK) {
            /* The durable session revocation is written, the failed call
             * marked the cache stale, and the reload deletes the session. */
            cj_log(CJ_LOG_ERROR, "auth.session_delete_failed", call->request_id,
                   CJ_F_STR("user_id", st->token.user_id),
                   CJ_F_STR("status", cj_status_name(rc)));
        }
    }
}

enum cj_status auth_refresh(struct auth_service *svc, struct auth_call *call,
                            const Cerrojo__V1__RefreshRequest *req,
                            Cerrojo__V1__TokenSet **out)
{
    struct refresh_state *st = calloc(1, sizeof(*st));
    uint8_t hash[AUTH_TOKEN_HASH_SIZE];
    const char *result = "error";
    enum cj_status rc = CJ_ERR_NOMEM;

    *out = NULL;
    if (st == NULL) {
        goto out;
    }
    rc = auth_refresh_token_hash(req->refresh_token, strlen(req->refresh_token),
                                 hash);
    if (rc == CJ_OK) {
        rc = find_presented(svc, call, hash, st);
    }
    if (rc == CJ_ERR_UNAUTHENTICATED || rc == CJ_ERR_NOT_FOUND) {
        auth_call_error(call, INVALID_REFRESH_TOKEN);
        result = "invalid";
        rc = CJ_ERR_UNAUTHENTICATED;
    }
    if (rc == CJ_OK) {
        rc = check_session_user(call, &st->presented);
        if (rc == CJ_ERR_EXISTS) {
            result = "session_conflict";
        }
    }
    if (rc == CJ_OK) {
        rc = session_alive(svc, call, &st->presented);
        if (rc == CJ_ERR_UNAUTHENTICATED) {
            auth_call_error(call, INVALID_REFRESH_TOKEN);
            result = "session_ended";
        }
    }
    if (rc != CJ_OK) {
        goto out;
    }

    rc = auth_access_token_sign(svc, call, st->presented.user_id,
                                st->presented.session_id, &st->access);
    if (rc == CJ_OK) {
        rc = run_transaction(svc, call, st);
        /* The token's row, or its user's, was deleted after the token was
         * found: delete-user ran meanwhile. */
        if (rc == CJ_ERR_NOT_FOUND) {
            cj_log(CJ_LOG_INFO, "auth.refresh_rejected", call->request_id,
                   CJ_F_STR("reason", "user_deleted_during_refresh"),
                   CJ_F_STR("user_id", st->presented.user_id),
                   CJ_F_STR("family_id", st->presented.family_id));
            auth_call_error(call, INVALID_REFRESH_TOKEN);
            result = "invalid";
            rc = CJ_ERR_UNAUTHENTICATED;
        }
    }
    if (rc != CJ_OK) {
        goto out;
    }

    if (st->action == AUTH_REFRESH_GRACE_RETRY) {
        cache_replaced_access(svc, call, st);
    }
    switch (st->action) {
    case AUTH_REFRESH_ROTATE:
    case AUTH_REFRESH_GRACE_RETRY:
        rc = auth_token_set_new(svc, &st->access, &st->next, NULL,
                                st->token.user_id, out);
        result = st->action == AUTH_REFRESH_ROTATE ? "rotated" : "grace_retry";
        break;
    case AUTH_REFRESH_REUSE:
        after_reuse(svc, call, st);
        auth_call_error(call, INVALID_REFRESH_TOKEN);
        result = "reuse";
        rc = CJ_ERR_UNAUTHENTICATED;
        break;
    case AUTH_REFRESH_EXPIRED:
        auth_call_error(call, "refresh token expired");
        result = "expired";
        rc = CJ_ERR_UNAUTHENTICATED;
        break;
    }
out:
    if (st != NULL) {
        auth_access_token_clear(&st->access);
        auth_new_refresh_clear(&st->next);
        free(st->family_access);
        free(st);
    }
    auth_metrics_inc(svc->m.refreshes, result);
    return rc;
}

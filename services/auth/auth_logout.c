/*
 * Logout. The durable records come first, in one transaction. The refresh
 * family (with `all`, every live token of the user) is revoked. The access
 * token's jti and the session (with `all`, the user's revocation time) are
 * written to auth.revocations, with the audit event. So is every access
 * token issued from the family that may still be live, because another
 * copy of the client may have refreshed. With `all` the user's row keeps
 * the revocation time too, for the login throttle. Then
 * session's cache and sessions are updated. Every step is idempotent, so
 * a second logout is harmless. Once the transaction has committed the
 * logout succeeds, and a failed update of session is left to the cache
 * reload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth_audit.h"
#include "auth_flows.h"
#include "auth_ids.h"
#include "auth_remote.h"
#include "auth_revocations.h"
#include "auth_store.h"
#include "deadline.h"
#include "log.h"

/* Families locked by one logout of all devices, at most; more are revoked
 * by the same UPDATE, just without waiting for their rotations. */
#define LOGOUT_ALL_MAX_LOCKED_FAMILIES 256

/*
 * Margin past the second boundary that a logout of all devices waits for,
 * for another auth replica's clock (auth sets iat) running a little behind
 * this one's. Both stamp times on Postgres's timeline (auth_now_ms), so
 * they differ by the sum of their offset measurement errors, each at most
 * half a round trip to Postgres.
 * NOTE: when those errors add up to more than the margin (round trips to
 * Postgres above about 50 ms), a token that another replica issues right
 * after the reply can still fall in the revoked second.
 */
#define LOGOUT_ALL_CLOCK_MARGIN_MS 50
/* Time kept for the reply of a logout of all devices before the caller's
 * deadline. */
#define LOGOUT_ALL_REPLY_MARGIN_MS 100

struct logout_state {
    const char *user_id;
    struct auth_refresh_row family_token;
    bool has_family;
    char session_id[AUTH_SESSION_ID_MAX + 1];
    int64_t now_ms;
    unsigned revoked_tokens;
    struct auth_revoked_access *family_access; /* malloc */
    size_t family_access_count;
};

/* Message of a logout that can find no refresh family to revoke. */
#define LOGOUT_NO_FAMILY_MESSAGE                                               \
    "refresh_token is missing and the access token's refresh family was "      \
    "not found; send the refresh token"

/*
 * Finds the family of the caller's access token, for a logout without a
 * refresh token and without a session whose families could end instead.
 * A refresh row's id is the jti of the access token issued with it.
 * Returns CJ_ERR_INVALID when there is no such row, because an OK reply
 * would tell the client that a family it can still use has ended.
 */
static enum cj_status find_family_of_access_token(struct auth_service *svc,
                                                  struct auth_call *call,
                                                  struct logout_state *st)
{
    const char *token_id = call->caller->token_id;
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    if (!auth_uuid_valid(token_id)) {
        cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
               CJ_F_STR("reason", "refresh_token_missing"),
               CJ_F_STR("user_id", st->user_id));
        auth_call_error(call, "refresh_token is missing; send the refresh "
                              "token whose family to end");
        return CJ_ERR_INVALID;
    }
    rc = auth_db_acquire_for(svc, call, &conn);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_token_find_by_id(conn, token_id, &st->family_token);
    cj_db_release(conn);
    if (rc == CJ_ERR_NOT_FOUND) {
        cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
               CJ_F_STR("reason", "access_token_family_not_found"),
               CJ_F_STR("user_id", st->user_id));
        auth_call_error(call, LOGOUT_NO_FAMILY_MESSAGE);
        return CJ_ERR_INVALID;
    }
    return rc;
}

/* Finds the family to revoke, when it belongs to the caller: the refresh
 * token's, else on a request without a session the access token's. */
static enum cj_status find_family(struct auth_service *svc,
                                  struct auth_call *call,
                                  const Cerrojo__V1__LogoutRequest *req,
                                  struct logout_state *st)
{
    uint8_t hash[AUTH_TOKEN_HASH_SIZE];
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    if (req->refresh_token[0] == '\0') {
        /* With `all` every family of the user ends, and with a session
         * the families of the session end with it. */
        if (req->all || call->caller->session_id[0] != '\0') {
            return CJ_OK;
        }
        rc = find_family_of_access_token(svc, call, st);
    } else if (auth_refresh_token_hash(req->refresh_token,
                                       strlen(req->refresh_token),
                                       hash) != CJ_OK) {
        auth_call_error(call, "invalid refresh token");
        return CJ_ERR_UNAUTHENTICATED;
    } else {
        rc = auth_db_acquire_for(svc, call, &conn);
        if (rc != CJ_OK) {
            return rc;
        }
        rc = auth_store_token_find(conn, hash, &st->family_token);
        cj_db_release(conn);
        if (rc == CJ_ERR_NOT_FOUND) {
            return CJ_OK;
        }
    }
    if (rc != CJ_OK) {
        return rc;
    }
    /* No one revokes for others, and a client that sent another user's
     * token must not believe that its own family ended. */
    if (strcmp(st->family_token.user_id, st->user_id) != 0) {
        cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
               CJ_F_STR("reason", "refresh_token_of_other_user"),
               CJ_F_STR("user_id", st->user_id),
               CJ_F_STR("token_user_id", st->family_token.user_id));
        auth_call_error(call, "the refresh token belongs to another user; "
                              "send this user's own refresh token");
        return CJ_ERR_EXISTS;
    }
    st->has_family = true;
    return CJ_OK;
}

/*
 * Finds the user of a stateless logout that carries a refresh token but no
 * access token: the owner of the token's family. The refresh token is the
 * credential, as on the refresh route, and the logout ends only its
 * family. Clients send such a logout when the session that the family is
 * bound to is gone, because the family's access and refresh tokens are
 * then rejected everywhere else, and the family would otherwise stay
 * unrevoked until it expires.
 */
static enum cj_status
find_refresh_token_owner(struct auth_service *svc, struct auth_call *call,
                         const Cerrojo__V1__LogoutRequest *req,
                         struct logout_state *st)
{
    uint8_t hash[AUTH_TOKEN_HASH_SIZE];
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    if (req->all) {
        cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
               CJ_F_STR("reason", "all_without_access_token"));
        auth_call_error(call, "a logout of all devices needs the access "
                              "token in the sealed plaintext; a refresh "
                              "token alone ends only its own family");
        return CJ_ERR_INVALID;
    }
    if (auth_refresh_token_hash(req->refresh_token, strlen(req->refresh_token),
                                hash) != CJ_OK) {
        auth_call_error(call, "invalid refresh token");
        return CJ_ERR_UNAUTHENTICATED;
    }
    rc = auth_db_acquire_for(svc, call, &conn);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_token_find(conn, hash, &st->family_token);
    cj_db_release(conn);
    if (rc == CJ_ERR_NOT_FOUND) {
        cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
               CJ_F_STR("reason", "refresh_token_not_found"));
        auth_call_error(call, "invalid refresh token");
        return CJ_ERR_UNAUTHENTICATED;
    }
    if (rc != CJ_OK) {
        return rc;
    }
    st->user_id = st->family_token.user_id;
    st->has_family = true;
    return CJ_OK;
}

static enum cj_status revoke_one(struct auth_service *svc,
                                 struct auth_call *call,
                                 struct cj_db_conn *conn,
                                 struct logout_state *st)
{
    const struct cj_caller_context *caller = call->caller;
    enum cj_status rc = CJ_OK;

    if (st->has_family) {
        rc = auth_store_family_lock(conn, st->family_token.family_id);
        if (rc == CJ_OK) {
            rc = auth_store_family_revoke(conn, st->family_token.family_id,
                                          "logout", &st->revoked_tokens);
        }
        if (rc == CJ_OK) {
            rc = auth_store_family_access_revoke(
                conn, st->family_token.family_id, svc->cfg.access_ttl_s,
                svc->cfg.jwt_leeway_s, &st->family_access,
                &st->family_access_count);
        }
    } else if (st->session_id[0] != '\0') {
        /* A stateful logout may omit the refresh token: the families of
         * the session end with it. */
        rc = auth_store_session_tokens_revoke(conn, st->user_id, st->session_id,
                                              "logout", &st->revoked_tokens);
    }
    if (rc == CJ_OK && st->session_id[0] != '\0') {
        rc = auth_store_revocation_put(
            conn, AUTH_REVOKED_SESSION, st->session_id, st->user_id, st->now_ms,
            auth_revocation_expiry_ms(svc, st->now_ms));
    }
    if (rc == CJ_OK && caller->token_id[0] != '\0' &&
        caller->token_expires_at > 0) {
        rc = auth_store_revocation_put(
            conn, AUTH_REVOKED_TOKEN, caller->token_id, st->user_id, st->now_ms,
            (caller->token_expires_at + svc->cfg.jwt_leeway_s) * 1000);
    }
    return rc;
}

static enum cj_status revoke_all(struct auth_service *svc,
                                 struct cj_db_conn *conn,
                                 struct logout_state *st)
{
    char(*families)[AUTH_UUID_TEXT_SIZE] =
        calloc(LOGOUT_ALL_MAX_LOCKED_FAMILIES, AUTH_UUID_TEXT_SIZE);
    size_t count = 0;
    enum cj_status rc;

    if (families == NULL) {
        return CJ_ERR_NOMEM;
    }
    /* Locks in id order, so that a rotation in flight commits first and
     * its successor is revoked with the rest. */
    rc = auth_store_user_live_families(conn, st->user_id, families,
                                       LOGOUT_ALL_MAX_LOCKED_FAMILIES, &count);
    for (size_t i = 0; rc == CJ_OK && i < count; i++) {
        rc = auth_store_family_lock(conn, families[i]);
    }
    free(families);
    if (rc == CJ_OK) {
        rc = auth_store_user_tokens_revoke(conn, st->user_id, "logout_all",
                                           &st->revoked_tokens);
    }
    if (rc == CJ_OK) {
        rc = auth_store_revocation_put(
            conn, AUTH_REVOKED_USER, st->user_id, st->user_id, st->now_ms,
            auth_revocation_expiry_ms(svc, st->now_ms));
    }
    /* The row above expires with the last access token it revokes, but
     * the login throttle needs the time for as long as its known-address
     * markers last. */
    if (rc == CJ_OK) {
        rc =
            auth_store_user_set_sessions_revoked(conn, st->user_id, st->now_ms);
    }
    return rc;
}

static enum cj_status persist(struct auth_service *svc, struct auth_call *call,
                              bool all, struct logout_state *st)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_begin(conn);
    if (rc == CJ_OK) {
        rc = all ? revoke_all(svc, conn, st) : revoke_one(svc, call, conn, st);
    }
    if (rc == CJ_OK) {
        rc = auth_audit_write(
            conn, call, all ? AUTH_EVENT_LOGOUT_ALL : AUTH_EVENT_LOGOUT,
            st->user_id, st->session_id,
            json_pack("{s:s?, s:i}", "family_id",
                      st->has_family ? st->family_token.family_id : NULL,
                      "revoked_tokens", (int)st->revoked_tokens));
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
 * Reports a failed update of session after the commit. The logout has taken
 * effect by then, so the caller gets OK, because an error would ask for a
 * retry that then fails with 401 for the revoked tokens. The steps after the
 * failed one did not run, but their rows are committed. The failed call
 * has marked the cache stale, which also deletes its loaded marker, so
 * IsRevoked fails closed until the reload sends the rows. A `session` row
 * makes session delete that session at once. A logout of all devices
 * writes only the user's row, and session deletes each of the user's
 * sessions that was bound at or before that time when the session is next
 * opened or bound.
 */
static void report_session_update(const struct auth_call *call, bool all,
                                  const struct logout_state *st,
                                  enum cj_status rc)
{
    if (rc == CJ_OK) {
        return;
    }
    cj_log(CJ_LOG_WARN, "auth.logout_session_update_failed", call->request_id,
           CJ_F_STR("user_id", st->user_id), CJ_F_BOOL("all", all),
           CJ_F_STR("reason", cj_status_name(rc)));
}

/* Updates session's sessions and cache to match what was recorded. */
static void update_session_service(struct auth_service *svc,
                                   struct auth_call *call, bool all,
                                   const struct logout_state *st)
{
    const struct cj_caller_context *caller = call->caller;
    enum cj_status rc = CJ_OK;

    if (all) {
        rc = auth_session_delete_user(svc, call->request_id, st->user_id);
        if (rc != CJ_OK) {
            /* The user's row is committed and not sent yet. */
            auth_revocations_mark_stale(svc, call->request_id,
                                        "delete_user_sessions_failed");
        } else {
            rc = auth_session_revoke_user(
                svc, call->request_id, st->user_id, st->now_ms / 1000,
                auth_revocation_expiry_ms(svc, st->now_ms));
        }
        report_session_update(call, all, st, rc);
        return;
    }
    if (st->session_id[0] != '\0') {
        rc = auth_session_delete_revoked(svc, call->request_id, st->session_id);
    }
    if (rc == CJ_OK && caller->token_id[0] != '\0' &&
        caller->token_expires_at > 0) {
        rc = auth_session_revoke_token(svc, call->request_id, caller->token_id,
                                       caller->token_expires_at);
    }
    for (size_t i = 0; rc == CJ_OK && i < st->family_access_count; i++) {
        rc = auth_session_revoke_token(svc, call->request_id,
                                       st->family_access[i].token_id,
                                       st->family_access[i].expires_at);
    }
    report_session_update(call, all, st, rc);
}

/*
 * Waits until the second of a user's revocation has passed. A token counts
 * as revoked when its iat, in whole seconds, is at or before that second,
 * so a login that started after an immediate reply could get tokens that
 * are already revoked. Waiting at most a second here spares the client
 * from knowing that. The wait ends early enough for the reply to reach a
 * caller whose deadline is closer.
 */
static void wait_past_revocation_second(const struct auth_service *svc,
                                        const struct auth_call *call,
                                        int64_t revoked_ms)
{
    int64_t until = (revoked_ms / 1000 + 1) * 1000 + LOGOUT_ALL_CLOCK_MARGIN_MS;
    int64_t left = until - auth_now_ms(svc);
    struct timespec ts;

    /* A wall clock stepped back, or a new offset, must not stretch the
     * wait. */
    if (left > 1000 + LOGOUT_ALL_CLOCK_MARGIN_MS) {
        left = 1000 + LOGOUT_ALL_CLOCK_MARGIN_MS;
    }
    if (call->deadline_ms != 0) {
        int64_t before_deadline =
            call->deadline_ms - cj_monotonic_ms() - LOGOUT_ALL_REPLY_MARGIN_MS;

        if (before_deadline < left) {
            left = before_deadline;
        }
    }
    if (left <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(left / 1000);
    ts.tv_nsec = (long)(left % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Rejects a stateless logout with neither an access token nor a refresh
 * token. The request is malformed rather than a failed authentication, so
 * the error names what is missing.
 */
static enum cj_status reject_missing_credentials(struct auth_call *call)
{
    cj_log(CJ_LOG_WARN, "auth.logout_rejected", call->request_id,
           CJ_F_STR("reason", "credentials_missing"));
    auth_call_error(call, "logout needs the access token in the sealed "
                          "plaintext, and neither an access token nor a "
                          "refresh_token was sent");
    return CJ_ERR_INVALID;
}

enum cj_status auth_logout(struct auth_service *svc, struct auth_call *call,
                           const Cerrojo__V1__LogoutRequest *req,
                           Cerrojo__V1__LogoutResponse **out)
{
    struct logout_state st;
    enum cj_status rc;

    *out = NULL;
    memset(&st, 0, sizeof(st));
    st.user_id = call->caller->user_id;
    st.now_ms = auth_now_ms(svc);
    if (!auth_uuid_valid(st.user_id) &&
        call->caller->channel == CJ_CHANNEL_STATELESS) {
        if (req->refresh_token[0] == '\0') {
            return reject_missing_credentials(call);
        }
        rc = find_refresh_token_owner(svc, call, req, &st);
    } else if (!auth_uuid_valid(st.user_id)) {
        auth_call_error(call, "logout needs an authenticated caller");
        return CJ_ERR_UNAUTHENTICATED;
    } else {
        rc = find_family(svc, call, req, &st);
    }
    if (rc != CJ_OK) {
        goto out;
    }
    /* The session to end: the family's, else the one the request came on. */
    if (st.has_family && st.family_token.session_id[0] != '\0') {
        snprintf(st.session_id, sizeof(st.session_id), "%s",
                 st.family_token.session_id);
    } else if (call->caller->session_id[0] != '\0') {
        snprintf(st.session_id, sizeof(st.session_id), "%s",
                 call->caller->session_id);
    }

    rc = persist(svc, call, req->all, &st);
    if (rc != CJ_OK) {
        goto out;
    }
    update_session_service(svc, call, req->all, &st);
    if (req->all) {
        wait_past_revocation_second(svc, call, st.now_ms);
    }
    *out = malloc(sizeof(**out));
    if (*out == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    cerrojo__v1__logout_response__init(*out);
    cj_log(CJ_LOG_INFO, "auth.logged_out", call->request_id,
           CJ_F_STR("user_id", st.user_id), CJ_F_BOOL("all", req->all),
           CJ_F_INT("revoked_tokens", st.revoked_tokens),
           CJ_F_INT("revoked_access_tokens", st.family_access_count));
out:
    free(st.family_access);
    return rc;
}

/*
 * Login: find the account, take a password slot, reserve an attempt with
 * the throttle, run exactly one Argon2 verification (against the dummy hash
 * when the account does not exist), and only on success open the session and
 * issue tokens. Unknown user, wrong password and disabled account give the same
 * error at the same cost; the audit event records which it was.
 *
 * Passwords are hashed in Unicode NFKC form. A hash made before that is of
 * the exact bytes typed (password_normalized false), so login verifies
 * those bytes and, on success, replaces the hash with one of the NFKC form.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_audit.h"
#include "auth_flows.h"
#include "auth_names.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "auth_throttle.h"
#include "auth_tokens.h"
#include "crypto_util.h"
#include "log.h"
#include "password.h"
#include "rpc_message.h"

#define INVALID_CREDENTIALS "invalid credentials"

/* While Redis is down every login fails here, so the event is limited. */
static struct cj_log_limit throttle_failed_limit = CJ_LOG_LIMIT_INIT;
/* Likewise while the throttle's key cannot be read from Postgres. */
static struct cj_log_limit throttle_key_failed_limit = CJ_LOG_LIMIT_INIT;

/* Reason a login failed, for the audit log only. */
enum login_failure {
    LOGIN_FAILURE_NONE = 0,
    LOGIN_FAILURE_UNKNOWN_USER,
    LOGIN_FAILURE_WRONG_PASSWORD,
    LOGIN_FAILURE_DISABLED,
    LOGIN_FAILURE_USER_DELETED,
};

static const char *failure_name(enum login_failure failure)
{
    switch (failure) {
    case LOGIN_FAILURE_UNKNOWN_USER:
        return "unknown_user";
    case LOGIN_FAILURE_WRONG_PASSWORD:
        return "wrong_password";
    case LOGIN_FAILURE_DISABLED:
        return "disabled";
    case LOGIN_FAILURE_USER_DELETED:
        return "user_deleted_during_login";
    case LOGIN_FAILURE_NONE:
        break;
    }
    return "none";
}

struct login_state {
    char login_norm[AUTH_NAME_BUF_BYTES];
    struct auth_user user;
    bool user_found;
    bool user_deleted; /* the row was deleted before the login was recorded */
    struct auth_throttle_keys throttle_keys;
    char session_id[AUTH_SESSION_ID_MAX + 1];
    bool session_created;
    Cerrojo__V1__SessionInfo *session;
    struct auth_access_token access;
    struct auth_new_refresh refresh;
    /* NFKC form of the password, valid only when password_nfkc_ok. */
    char password_nfkc[CJ_PASSWORD_MAX_BYTES + 1];
    size_t password_nfkc_len;
    bool password_nfkc_ok;
};

/*
 * Sets *secret to the throttle's HMAC key, reading it (or creating it, on
 * the first start against this database) from Postgres on first use. The
 * key never changes while auth runs, so later calls take no lock.
 */
static enum cj_status throttle_secret(struct auth_service *svc,
                                      struct auth_call *call,
                                      const uint8_t **secret)
{
    uint8_t candidate[AUTH_THROTTLE_SECRET_BYTES];
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = CJ_OK;

    if (atomic_load(&svc->throttle_key_ready)) {
        *secret = svc->throttle_key;
        return CJ_OK;
    }
    pthread_mutex_lock(&svc->throttle_key_lock);
    if (atomic_load(&svc->throttle_key_ready)) {
        goto out;
    }
    rc = auth_db_acquire_for(svc, call, &conn);
    if (rc != CJ_OK) {
        goto out;
    }
    cj_random_bytes(candidate, sizeof(candidate));
    rc = auth_store_throttle_key(conn, candidate, svc->throttle_key);
    cj_wipe(candidate, sizeof(candidate));
    if (rc != CJ_OK) {
        cj_log_limited(&throttle_key_failed_limit, CJ_LOG_ERROR,
                       "auth.throttle_key_failed", call->request_id,
                       CJ_F_STR("status", cj_status_name(rc)),
                       CJ_F_STR("sqlstate", cj_db_last_sqlstate(conn)));
    } else {
        atomic_store(&svc->throttle_key_ready, true);
    }
    cj_db_release(conn);
out:
    pthread_mutex_unlock(&svc->throttle_key_lock);
    *secret = svc->throttle_key;
    return rc;
}

/*
 * Builds the throttle's keys of this attempt and reserves it. Sets the
 * call's message on failure, which is CJ_ERR_UNAVAILABLE when Postgres or
 * Redis cannot be reached.
 */
static enum cj_status reserve_attempt(struct auth_service *svc,
                                      struct auth_call *call,
                                      struct login_state *st, bool *admitted)
{
    const uint8_t *secret = NULL;
    enum cj_status rc = throttle_secret(svc, call, &secret);

    if (rc != CJ_OK) {
        auth_call_error(call, "the login throttle's key could not be read "
                              "from Postgres; retry later");
        return CJ_ERR_UNAVAILABLE;
    }
    /* Keyed on the typed name, never on the account it names, so that the
     * throttle responds alike to every name, known or not. */
    rc = auth_throttle_keys(secret, st->login_norm, call->caller->client_ip,
                            &st->throttle_keys);
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.throttle_keys_failed", call->request_id,
               CJ_F_STR("status", cj_status_name(rc)));
        return rc;
    }
    rc = auth_throttle_reserve(svc->redis, &svc->throttle, &st->throttle_keys,
                               st->user_found ? st->user.sessions_revoked_at_ms
                                              : 0,
                               admitted, &call->retry_after_s);
    if (rc != CJ_OK) {
        cj_log_limited(&throttle_failed_limit, CJ_LOG_ERROR,
                       "auth.throttle_unavailable", call->request_id,
                       CJ_F_STR("status", cj_status_name(rc)));
        auth_call_error(call, "the login throttle (Redis) is unavailable; "
                              "retry later");
        return CJ_ERR_UNAVAILABLE;
    }
    return CJ_OK;
}

static enum cj_status find_user(struct auth_service *svc,
                                struct auth_call *call, struct login_state *st)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_user_find_by_login(conn, st->login_norm, &st->user);
    cj_db_release(conn);
    if (rc == CJ_OK) {
        st->user_found = true;
    } else if (rc == CJ_ERR_NOT_FOUND) {
        rc = CJ_OK;
    }
    return rc;
}

/*
 * Runs the one Argon2 verification of this attempt and sets *failure
 * unless the credentials hold. A disabled account still runs the real
 * verification, so its cost matches the other failures.
 */
static enum cj_status verify(struct auth_service *svc,
                             const Cerrojo__V1__LoginRequest *req,
                             const struct login_state *st,
                             enum login_failure *failure)
{
    size_t len = strlen(req->password);
    enum cj_status rc;

    *failure = LOGIN_FAILURE_NONE;
    if (!st->user_found) {
        rc = cj_password_verify_dummy(svc->hasher, req->password, len);
    } else if (!st->user.password_normalized) {
        rc = cj_password_verify(svc->hasher, st->user.password_hash,
                                req->password, len);
    } else if (st->password_nfkc_ok) {
        rc = cj_password_verify(svc->hasher, st->user.password_hash,
                                st->password_nfkc, st->password_nfkc_len);
    } else {
        /* Input without an NFKC form within the limit (invalid UTF-8, or
         * a form over CJ_PASSWORD_MAX_BYTES) cannot match a hash of one.
         * The dummy keeps the cost of one verification. */
        rc = cj_password_verify_dummy(svc->hasher, req->password, len);
    }
    auth_metrics_count_verification(svc);
    if (!st->user_found) {
        *failure = LOGIN_FAILURE_UNKNOWN_USER;
        return CJ_OK;
    }
    if (rc == CJ_ERR_UNAUTHENTICATED) {
        *failure = LOGIN_FAILURE_WRONG_PASSWORD;
        return CJ_OK;
    }
    if (rc != CJ_OK) {
        return rc;
    }
    if (st->user.status != AUTH_USER_ACTIVE) {
        *failure = LOGIN_FAILURE_DISABLED;
    }
    return CJ_OK;
}

/*
 * Replaces a hash made with older parameters, or of the exact bytes typed,
 * by a hash of the NFKC form. A failure only delays it. Where the password
 * has no NFKC form within the limit, a parameter rehash keeps the exact
 * bytes.
 */
static void rehash_if_needed(struct auth_service *svc, struct auth_call *call,
                             const Cerrojo__V1__LoginRequest *req,
                             const struct login_state *st)
{
    const struct auth_user *user = &st->user;
    const char *password = req->password;
    size_t password_len = strlen(req->password);
    char hash[CJ_PASSWORD_HASH_BYTES];
    struct auth_password_slot slot;
    bool needed = false;
    bool normalize = !user->password_normalized && st->password_nfkc_ok;
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    rc = cj_password_needs_rehash(svc->hasher, user->password_hash, &needed);
    if (rc != CJ_OK || (!needed && !normalize)) {
        return;
    }
    if (st->password_nfkc_ok) {
        password = st->password_nfkc;
        password_len = st->password_nfkc_len;
    }
    rc = auth_password_begin(svc, call, &slot);
    if (rc == CJ_OK) {
        rc = cj_password_hash(svc->hasher, password, password_len, hash);
        auth_password_end(svc, &slot);
    }
    /* A busy gate only delays the rehash; the login must not carry its
     * Retry-After. */
    call->retry_after_s = 0;
    if (rc == CJ_OK) {
        rc = auth_db_acquire(svc, call->request_id, &conn);
    }
    if (rc == CJ_OK) {
        rc = auth_store_user_set_password_hash(conn, user->id, hash,
                                               st->password_nfkc_ok);
        cj_db_release(conn);
    }
    cj_wipe(hash, sizeof(hash));
    if (rc == CJ_OK) {
        cj_log(CJ_LOG_INFO, "auth.password_rehashed", call->request_id,
               CJ_F_STR("user_id", user->id),
               CJ_F_BOOL("normalized", st->password_nfkc_ok));
    } else {
        cj_log(CJ_LOG_WARN, "auth.password_rehash_failed", call->request_id,
               CJ_F_STR("user_id", user->id),
               CJ_F_STR("status", cj_status_name(rc)));
    }
}

static void audit_failure(struct auth_service *svc, struct auth_call *call,
                          const struct login_state *st,
                          enum login_failure failure)
{
    json_t *detail = json_pack("{s:s}", "reason", failure_name(failure));

    auth_audit_record(svc, call, AUTH_EVENT_LOGIN_FAILURE,
                      st->user_found ? st->user.id : NULL, NULL, detail);
    cj_log(CJ_LOG_INFO, "auth.login_failed", call->request_id,
           CJ_F_STR("reason", failure_name(failure)),
           CJ_F_STR("user_id", st->user_found ? st->user.id : ""));
}

/*
 * Writes the refresh token, the login time and the audit event in one
 * statement, so a login costs one Postgres round trip here instead of a
 * transaction of five.
 */
static enum cj_status persist(struct auth_service *svc, struct auth_call *call,
                              struct login_state *st)
{
    struct cj_db_conn *conn = NULL;
    struct auth_audit_event audit;
    char *detail_json = NULL;
    enum cj_status rc;

    rc = auth_audit_event_make(
        call, AUTH_EVENT_LOGIN_SUCCESS, st->user.id, st->session_id,
        json_pack("{s:s, s:b}", "family_id", st->refresh.row.family_id,
                  "session", st->session_id[0] != '\0'),
        &audit, &detail_json);
    if (rc == CJ_OK) {
        rc = auth_db_acquire_for(svc, call, &conn);
    }
    if (rc == CJ_OK) {
        rc = auth_store_login_record(conn, &st->refresh.row, &audit);
        if (rc != CJ_OK && strcmp(cj_db_last_sqlstate(conn),
                                  CJ_DB_SQLSTATE_FOREIGN_KEY) == 0) {
            /* delete-user removed the row after the password matched, so
             * the refresh token has no user to reference. */
            st->user_deleted = true;
        } else if (rc != CJ_OK) {
            cj_log(CJ_LOG_ERROR, "auth.login_record_failed", call->request_id,
                   CJ_F_STR("user_id", st->user.id),
                   CJ_F_STR("status", cj_status_name(rc)),
                   CJ_F_STR("sqlstate", cj_db_last_sqlstate(conn)));
        }
        cj_db_release(conn);
    }
    free(detail_json);
    return rc;
}

/* Everything after the credentials held: session, tokens, rows. */
static enum cj_status complete(struct auth_service *svc, struct auth_call *call,
                               const Cerrojo__V1__LoginRequest *req,
                               struct login_state *st,
                               Cerrojo__V1__TokenSet **out)
{
    enum cj_status rc;

    rc = auth_session_open_for(svc, call, &req->client_secret, st->user.id,
                               st->session_id, sizeof(st->session_id),
                               &st->session_created, &st->session);
    if (rc == CJ_OK) {
        rc = auth_access_token_sign(svc, call, st->user.id, st->session_id,
                                    &st->access);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    auth_new_refresh_make(svc, &st->access, st->user.id, st->session_id, NULL,
                          0, auth_now_ms(svc), &st->refresh);
    rc = persist(svc, call, st);
    if (st->user_deleted) {
        audit_failure(svc, call, st, LOGIN_FAILURE_USER_DELETED);
        auth_call_error(call, INVALID_CREDENTIALS);
        return CJ_ERR_UNAUTHENTICATED;
    }
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_token_set_new(svc, &st->access, &st->refresh, st->session,
                            st->user.id, out);
    st->session = NULL;
    return rc;
}

/*
 * NOTE: protobuf-c hands strings over NUL-terminated, so a password with
 * an embedded NUL arrives cut at it; the gateway rejects NUL in JSON
 * strings before it gets here.
 */
static enum cj_status check_request(struct auth_call *call,
                                    const Cerrojo__V1__LoginRequest *req,
                                    struct login_state *st)
{
    size_t password_len = strlen(req->password);
    enum cj_status rc;

    if (password_len > CJ_PASSWORD_MAX_BYTES) {
        auth_call_error(call, "password is longer than %d bytes",
                        CJ_PASSWORD_MAX_BYTES);
        return CJ_ERR_INVALID;
    }
    if (password_len == 0 || req->login[0] == '\0') {
        auth_call_error(call, "login and password are required");
        return CJ_ERR_INVALID;
    }
    if (auth_client_secret_check(call, &req->client_secret) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (auth_login_normalize(req->login, strlen(req->login), st->login_norm,
                             sizeof(st->login_norm)) != CJ_OK) {
        auth_call_error(call, "login is not a valid username or email");
        return CJ_ERR_INVALID;
    }
    /* Every login normalizes, whichever account it names, so an unknown
     * user costs the same. Input without an NFKC form is left to verify,
     * because an account hashed before normalization may still match it. */
    rc = cj_password_normalize(req->password, password_len, st->password_nfkc,
                               &st->password_nfkc_len);
    st->password_nfkc_ok = rc == CJ_OK;
    if (rc == CJ_ERR_INVALID || rc == CJ_ERR_TOO_LARGE) {
        rc = CJ_OK;
    }
    return rc;
}

static void login_state_clear(struct login_state *st)
{
    auth_access_token_clear(&st->access);
    auth_new_refresh_clear(&st->refresh);
    cj_wipe(st->user.password_hash, sizeof(st->user.password_hash));
    cj_wipe(st->password_nfkc, sizeof(st->password_nfkc));
    if (st->session != NULL) {
        cj_rpc_message_free(&st->session->base);
    }
}

enum cj_status auth_login(struct auth_service *svc, struct auth_call *call,
                          const Cerrojo__V1__LoginRequest *req,
                          Cerrojo__V1__TokenSet **out)
{
    struct login_state *st = calloc(1, sizeof(*st));
    struct auth_password_slot slot;
    enum login_failure failure = LOGIN_FAILURE_NONE;
    bool admitted = false;
    bool holding_slot = false;
    const char *result = "error";
    enum cj_status rc = CJ_ERR_NOMEM;

    *out = NULL;
    if (st == NULL) {
        goto out;
    }
    rc = check_request(call, req, st);
    if (rc == CJ_OK) {
        rc = find_user(svc, call, st);
    }
    if (rc != CJ_OK) {
        goto out;
    }

    /*
     * The password slot comes before the throttle's reservation, so a
     * login the gate refuses (busy, or its deadline passed) spends no
     * attempt, and every admitted attempt runs its one verification.
     */
    rc = auth_password_begin(svc, call, &slot);
    if (rc != CJ_OK) {
        auth_call_error(call,
                        "password verification is at capacity; retry shortly");
        result = "busy";
        goto out;
    }
    holding_slot = true;

    rc = reserve_attempt(svc, call, st, &admitted);
    if (rc != CJ_OK) {
        goto out;
    }
    if (!admitted) {
        cj_counter_inc(svc->m.throttled);
        auth_audit_record(svc, call, AUTH_EVENT_LOGIN_FAILURE,
                          st->user_found ? st->user.id : NULL, NULL,
                          json_pack("{s:s, s:I}", "reason", "throttled",
                                    "retry_after_s",
                                    (json_int_t)call->retry_after_s));
        auth_call_error(
            call, "too many login attempts; retry after %lld second%s",
            call->retry_after_s, call->retry_after_s == 1 ? "" : "s");
        result = "throttled";
        rc = CJ_ERR_RATE_LIMITED;
        goto out;
    }

    rc = verify(svc, req, st, &failure);
    auth_password_end(svc, &slot);
    holding_slot = false;
    if (rc != CJ_OK) {
        goto out;
    }
    if (failure != LOGIN_FAILURE_NONE) {
        audit_failure(svc, call, st, failure);
        auth_call_error(call, INVALID_CREDENTIALS);
        result = "invalid_credentials";
        rc = CJ_ERR_UNAUTHENTICATED;
        goto out;
    }

    if (auth_throttle_reset(svc->redis, &svc->throttle, &st->throttle_keys,
                            auth_now_ms(svc)) != CJ_OK) {
        cj_log(CJ_LOG_WARN, "auth.throttle_reset_failed", call->request_id,
               CJ_F_STR("user_id", st->user.id));
    }
    rehash_if_needed(svc, call, req, st);
    if (auth_call_caller_gone(call)) {
        /* A caller that cancelled or ran out of time reads no reply, so a
         * session, refresh token and audit row made for it would only
         * linger. */
        cj_log(CJ_LOG_WARN, "auth.login_abandoned", call->request_id,
               CJ_F_STR("user_id", st->user.id),
               CJ_F_BOOL("cancelled", auth_call_cancelled(call)));
        auth_call_error(call, "the call was cancelled or its deadline "
                              "passed before tokens were issued");
        result = "abandoned";
        rc = CJ_ERR_TIMEOUT;
        goto out;
    }
    rc = complete(svc, call, req, st, out);
    if (st->user_deleted) {
        result = "invalid_credentials";
    }
    if (rc == CJ_OK) {
        result = "ok";
        cj_log(CJ_LOG_INFO, "auth.logged_in", call->request_id,
               CJ_F_STR("user_id", st->user.id),
               CJ_F_BOOL("session", st->session_id[0] != '\0'));
    }
out:
    if (holding_slot) {
        auth_password_end(svc, &slot);
    }
    if (st != NULL) {
        if (rc != CJ_OK && st->session_created) {
            auth_session_discard(svc, call, st->session_id);
        }
        login_state_clear(st);
        free(st);
    }
    auth_metrics_inc(svc->m.logins, result);
    return rc;
}

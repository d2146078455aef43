/*
 * Register: check the names and the password, and hash the password's
 * Unicode NFKC form. Then get a data key from kms, open the session when
 * asked, sign the access token, and write the user, the refresh token and
 * the audit event in one transaction.
 * Remote calls come first, so a failure leaves no row behind. A session
 * opened for a registration that then fails is deleted again, and so is
 * kms's record of the new data key's KEK version.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_audit.h"
#include "auth_flows.h"
#include "auth_ids.h"
#include "auth_names.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "auth_tokens.h"
#include "crypto_util.h"
#include "log.h"
#include "password.h"
#include "password_policy.h"
#include "rpc_message.h"

/* State a registration gathers before its transaction. */
struct registration {
    struct auth_username username;
    struct auth_email email;
    char user_id[AUTH_UUID_TEXT_SIZE];
    char password_hash[CJ_PASSWORD_HASH_BYTES];
    /* NFKC form of the password, which the policy judges and the hash is
     * made of. */
    char password_nfkc[CJ_PASSWORD_MAX_BYTES + 1];
    size_t password_nfkc_len;
    unsigned char wrapped_key[AUTH_WRAPPED_KEY_MAX];
    size_t wrapped_len;
    uint32_t kek_version;
    bool key_created;
    /* Set once COMMIT was sent: after a failed COMMIT the user may exist. */
    bool commit_sent;
    char session_id[AUTH_SESSION_ID_MAX + 1];
    bool session_created;
    Cerrojo__V1__SessionInfo *session;
    struct auth_access_token access;
    struct auth_new_refresh refresh;
};

static const char *conflict_message(enum auth_name_conflict conflict)
{
    return conflict == AUTH_CONFLICT_EMAIL
               ? "email is already registered"
               : "username is taken or too similar to an existing one";
}

/* Checks the request before anything costly; fills the normalized names. */
static enum cj_status check_request(struct auth_service *svc,
                                    struct auth_call *call,
                                    const Cerrojo__V1__RegisterRequest *req,
                                    struct registration *reg)
{
    const char *reason = NULL;
    size_t password_len = strlen(req->password);
    enum cj_password_rule rule = CJ_PASSWORD_RULE_OK;
    enum cj_status rc;

    if (auth_username_parse(req->username, strlen(req->username),
                            &reg->username, &reason) != CJ_OK) {
        auth_call_error(call, "%s", reason);
        return CJ_ERR_INVALID;
    }
    if (auth_email_parse(req->email, strlen(req->email), &reg->email,
                         &reason) != CJ_OK) {
        auth_call_error(call, "%s", reason);
        return CJ_ERR_INVALID;
    }
    if (auth_client_secret_check(call, &req->client_secret) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    rc = cj_password_policy_check_and_normalize(
        &svc->password_policy, req->password, password_len, reg->username.norm,
        reg->email.norm, reg->password_nfkc, &reg->password_nfkc_len, &rule);
    if (rc == CJ_ERR_INVALID && rule == CJ_PASSWORD_RULE_TOO_SHORT) {
        /* The minimum is a setting, so the message names this server's. */
        auth_call_error(call,
                        "The password is too short: at least %zu characters.",
                        svc->password_policy.min_code_points);
        return CJ_ERR_INVALID;
    }
    if (rc == CJ_ERR_INVALID) {
        auth_call_error(call, "%s", cj_password_rule_message(rule));
        return CJ_ERR_INVALID;
    }
    return rc;
}

/* Fails early on a taken name, before Argon2 and kms do any work. */
static enum cj_status check_names_free(struct auth_service *svc,
                                       struct auth_call *call,
                                       const struct registration *reg)
{
    struct cj_db_conn *conn = NULL;
    enum auth_name_conflict conflict = AUTH_CONFLICT_NONE;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_user_check_names(conn, reg->username.norm,
                                     reg->username.skeleton, reg->email.norm,
                                     &conflict);
    cj_db_release(conn);
    if (rc == CJ_OK && conflict != AUTH_CONFLICT_NONE) {
        auth_call_error(call, "%s", conflict_message(conflict));
        rc = CJ_ERR_EXISTS;
    }
    return rc;
}

/* Writes the user, the first refresh token and the audit event. */
static enum cj_status persist(struct auth_service *svc, struct auth_call *call,
                              struct registration *reg)
{
    struct auth_user_new user = {
        .id = reg->user_id,
        .username = reg->username.display,
        .username_norm = reg->username.norm,
        .username_skeleton = reg->username.skeleton,
        .email = reg->email.display,
        .email_norm = reg->email.norm,
        .password_hash = reg->password_hash,
        .wrapped_key = reg->wrapped_key,
        .wrapped_key_len = reg->wrapped_len,
        .kek_version = reg->kek_version,
    };
    enum auth_name_conflict conflict = AUTH_CONFLICT_NONE;
    struct cj_db_conn *conn = NULL;
    json_t *detail;
    enum cj_status rc = auth_db_acquire_for(svc, call, &conn);

    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_begin(conn);
    if (rc == CJ_OK) {
        rc = auth_store_user_insert(conn, &user, &conflict);
    }
    if (rc == CJ_OK) {
        rc = auth_store_token_insert(conn, &reg->refresh.row);
    }
    if (rc == CJ_OK) {
        detail = json_pack("{s:s, s:b, s:i}", "family_id",
                           reg->refresh.row.family_id, "session",
                           reg->session_id[0] != '\0', "kek_version",
                           (int)reg->kek_version);
        rc = auth_audit_write(conn, call, AUTH_EVENT_REGISTER, reg->user_id,
                              reg->session_id, detail);
    }
    if (rc == CJ_OK && auth_call_caller_gone(call)) {
        /* A registration that stood after the gateway's 503 would make the
         * client's retry fail as a taken name. */
        cj_log(CJ_LOG_WARN, "auth.register_abandoned", call->request_id,
               CJ_F_INT("margin_ms", AUTH_COMMIT_MARGIN_MS),
               CJ_F_BOOL("cancelled", auth_call_cancelled(call)));
        auth_call_error(call, "the call was cancelled or its deadline passed "
                              "before the registration was committed; "
                              "nothing was written");
        rc = CJ_ERR_TIMEOUT;
    }
    if (rc == CJ_OK) {
        reg->commit_sent = true;
        rc = cj_db_commit(conn);
    }
    if (rc != CJ_OK) {
        auth_db_abort(conn);
        if (rc == CJ_ERR_EXISTS) {
            auth_call_error(call, "%s", conflict_message(conflict));
        }
    }
    cj_db_release(conn);
    return rc;
}

/*
 * Asks kms to drop its record of the data key of a registration that
 * failed. That record would otherwise keep the KEK that wrapped the key
 * from ever being destroyed. When this call fails, or auth stops first,
 * the next `rewrap-keys` run finds the record and drops it.
 */
static void forget_data_key(struct auth_service *svc, struct auth_call *call,
                            const struct registration *reg)
{
    bool forgotten = false;
    enum cj_status rc = auth_kms_forget_user_key(svc, call->request_id,
                                                 reg->user_id, &forgotten);

    if (rc != CJ_OK) {
        cj_log(CJ_LOG_WARN, "auth.forget_user_key_failed", call->request_id,
               CJ_F_STR("user_id", reg->user_id),
               CJ_F_STR("status", cj_status_name(rc)));
    }
}

static void registration_clear(struct registration *reg)
{
    auth_access_token_clear(&reg->access);
    auth_new_refresh_clear(&reg->refresh);
    cj_wipe(reg->password_hash, sizeof(reg->password_hash));
    cj_wipe(reg->password_nfkc, sizeof(reg->password_nfkc));
    if (reg->session != NULL) {
        cj_rpc_message_free(&reg->session->base);
    }
}

enum cj_status auth_register(struct auth_service *svc, struct auth_call *call,
                             const Cerrojo__V1__RegisterRequest *req,
                             Cerrojo__V1__TokenSet **out)
{
    struct registration *reg = calloc(1, sizeof(*reg));
    struct auth_password_slot slot;
    enum cj_status rc = CJ_ERR_NOMEM;

    *out = NULL;
    if (reg == NULL) {
        goto out;
    }
    rc = check_request(svc, call, req, reg);
    if (rc == CJ_OK) {
        rc = check_names_free(svc, call, reg);
    }
    if (rc != CJ_OK) {
        goto out;
    }

    rc = auth_password_begin(svc, call, &slot);
    if (rc != CJ_OK) {
        auth_call_error(call,
                        "password verification is at capacity; retry shortly");
        goto out;
    }
    rc = cj_password_hash(svc->hasher, reg->password_nfkc,
                          reg->password_nfkc_len, reg->password_hash);
    auth_password_end(svc, &slot);
    if (rc != CJ_OK) {
        goto out;
    }
    auth_uuid_new(reg->user_id);
    rc = auth_kms_create_user_key(svc, call->request_id, reg->user_id,
                                  reg->wrapped_key, sizeof(reg->wrapped_key),
                                  &reg->wrapped_len, &reg->kek_version);
    if (rc != CJ_OK) {
        rc = auth_remote_call_error(call, AUTH_REMOTE_KMS, rc);
        goto out;
    }
    reg->key_created = true;
    rc = auth_session_open_for(svc, call, &req->client_secret, reg->user_id,
                               reg->session_id, sizeof(reg->session_id),
                               &reg->session_created, &reg->session);
    if (rc == CJ_OK) {
        rc = auth_access_token_sign(svc, call, reg->user_id, reg->session_id,
                                    &reg->access);
    }
    if (rc != CJ_OK) {
        goto out;
    }
    auth_new_refresh_make(svc, &reg->access, reg->user_id, reg->session_id,
                          NULL, 0, auth_now_ms(svc), &reg->refresh);

    rc = persist(svc, call, reg);
    if (rc != CJ_OK) {
        goto out;
    }
    rc = auth_token_set_new(svc, &reg->access, &reg->refresh, reg->session,
                            reg->user_id, out);
    reg->session = NULL;
    if (rc == CJ_OK) {
        cj_log(CJ_LOG_INFO, "auth.registered", call->request_id,
               CJ_F_STR("user_id", reg->user_id),
               CJ_F_BOOL("session", reg->session_id[0] != '\0'));
    }
out:
    if (reg != NULL) {
        if (rc != CJ_OK && reg->session_created) {
            auth_session_discard(svc, call, reg->session_id);
        }
        if (rc != CJ_OK && reg->key_created && !reg->commit_sent) {
            forget_data_key(svc, call, reg);
        }
        auth_metrics_inc(svc->m.registrations,
                         rc == CJ_OK ? "ok" : cj_status_name(rc));
        registration_clear(reg);
        free(reg);
    }
    return rc;
}

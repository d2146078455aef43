/*
 * The revocation cache: a copy, in Redis, of the revocations auth records
 * durably. Each entry lives as long as a token it could stop. A marker
 * records that the copy is complete, and without it IsRevoked fails, so a
 * token is never accepted against an unloaded cache.
 */
#include <stdlib.h>

#include "log.h"
#include "sess_service.h"

/* Instant after which a revoked token can no longer be accepted by any
 * verifier: its expiry plus the clock leeway verifiers allow. */
static int64_t token_entry_expiry_ms(const struct sess_service *svc,
                                     int64_t expires_at)
{
    return expires_at * 1000 + svc->settings.epochs.leeway_ms;
}

/* Every token issued before revoked_at has expired, leeway included, by
 * revoked_at plus the longest token lifetime. */
static int64_t user_entry_expiry_ms(const struct sess_service *svc,
                                    int64_t revoked_at)
{
    return revoked_at * 1000 + svc->settings.token_lifetime_ms;
}

enum cj_status sess_revoke_token(const struct sess_service *svc,
                                 const char *token_id, int64_t expires_at)
{
    int64_t expire_ms;

    if (!sess_name_valid(token_id) || expires_at <= 0) {
        return CJ_ERR_INVALID;
    }
    expire_ms = token_entry_expiry_ms(svc, expires_at);
    if (expire_ms <= sess_now_ms()) {
        return CJ_OK; /* the token can no longer be used anyway */
    }
    return sess_store_revoke_token(svc->redis, token_id, expire_ms);
}

enum cj_status sess_revoke_user(const struct sess_service *svc,
                                const char *user_id, int64_t revoked_at)
{
    int64_t expire_ms;

    if (!sess_name_valid(user_id) || revoked_at <= 0) {
        return CJ_ERR_INVALID;
    }
    expire_ms = user_entry_expiry_ms(svc, revoked_at);
    if (expire_ms <= sess_now_ms()) {
        return CJ_OK;
    }
    return sess_store_revoke_user(svc->redis, user_id, revoked_at, expire_ms);
}

enum cj_status sess_is_revoked(const struct sess_service *svc,
                               const char *token_id, const char *user_id,
                               int64_t issued_at, const char *sid,
                               enum sess_revoked_reason *out)
{
    *out = SESS_NOT_REVOKED;
    if (!sess_name_valid(token_id) || !sess_name_valid(user_id) ||
        issued_at < 0) {
        return CJ_ERR_INVALID;
    }
    if (sid != NULL && sid[0] != '\0' && !cj_session_id_valid(sid)) {
        return CJ_ERR_INVALID;
    }
    return sess_store_is_revoked(svc->redis, token_id, user_id, issued_at, sid,
                                 out);
}

const char *sess_revoked_reason_name(enum sess_revoked_reason reason)
{
    switch (reason) {
    case SESS_REVOKED_TOKEN:
        return "token";
    case SESS_REVOKED_USER:
        return "user";
    case SESS_REVOKED_SESSION:
        return "session";
    case SESS_NOT_REVOKED:
        break;
    }
    return "";
}

enum cj_status sess_cache_status(const struct sess_service *svc, bool *loaded)
{
    return sess_store_cache_loaded(svc->redis, loaded);
}

enum cj_status sess_cache_keep_loaded(const struct sess_service *svc)
{
    return sess_store_refresh_loaded(svc->redis, SESS_LOADED_MARKER_TTL_MS);
}

enum cj_status sess_load_revocations(const struct sess_service *svc,
                                     const struct sess_revoked_token *tokens,
                                     size_t token_count,
                                     const struct sess_revoked_user *users,
                                     size_t user_count,
                                     const char *const *session_ids,
                                     size_t session_count, bool complete)
{
    struct sess_load_token *t = NULL;
    struct sess_load_user *u = NULL;
    struct sess_load_batch batch = {0};
    int64_t now = sess_now_ms();
    enum cj_status st = CJ_ERR_TOO_LARGE;

    if (token_count + user_count + session_count > SESS_LOAD_BATCH_MAX) {
        goto out;
    }
    st = CJ_ERR_NOMEM;
    t = calloc(token_count > 0 ? token_count : 1, sizeof(*t));
    u = calloc(user_count > 0 ? user_count : 1, sizeof(*u));
    if (t == NULL || u == NULL) {
        goto out;
    }
    st = CJ_ERR_INVALID;
    for (size_t i = 0; i < token_count; i++) {
        int64_t expire_ms;
        if (!sess_name_valid(tokens[i].token_id) || tokens[i].expires_at <= 0) {
            goto out;
        }
        expire_ms = token_entry_expiry_ms(svc, tokens[i].expires_at);
        if (expire_ms > now) {
            t[batch.token_count].token_id = tokens[i].token_id;
            t[batch.token_count].expire_at_ms = expire_ms;
            batch.token_count++;
        }
    }
    for (size_t i = 0; i < user_count; i++) {
        int64_t expire_ms;
        if (!sess_name_valid(users[i].user_id) || users[i].revoked_at <= 0) {
            goto out;
        }
        expire_ms = user_entry_expiry_ms(svc, users[i].revoked_at);
        if (expire_ms > now) {
            u[batch.user_count].user_id = users[i].user_id;
            u[batch.user_count].revoked_at = users[i].revoked_at;
            u[batch.user_count].expire_at_ms = expire_ms;
            batch.user_count++;
        }
    }
    for (size_t i = 0; i < session_count; i++) {
        if (!cj_session_id_valid(session_ids[i])) {
            goto out;
        }
    }
    batch.tokens = t;
    batch.users = u;
    batch.session_ids = session_ids;
    batch.session_count = session_count;
    /* The deletion time of a restored tombstone is unknown, so it gets
     * the full lifetime again: longer than needed, never shorter. */
    batch.tombstone_ms = svc->settings.token_lifetime_ms;
    batch.marker_ttl_ms = complete ? SESS_LOADED_MARKER_TTL_MS : 0;
    st = sess_store_load_batch(svc->redis, &batch);
    if (st == CJ_OK) {
        cj_log(CJ_LOG_INFO, "session.revocations_loaded", NULL,
               CJ_F_INT("tokens", batch.token_count),
               CJ_F_INT("users", batch.user_count),
               CJ_F_INT("sessions", batch.session_count),
               CJ_F_BOOL("complete", complete));
    }
out:
    free(t);
    free(u);
    return st;
}

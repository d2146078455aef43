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
 * revoked_at plus the longest token lifetime. Auth sets that lifetime, so
 * its instant (auth_expiry_ms, 0 from an older auth) wins when it is later
 * than the one from this service's copy of the setting. */
static int64_t user_entry_expiry_ms(const struct sess_service *svc,
                                    int64_t revoked_at, int64_t auth_expiry_ms)
{
    int64_t own_ms = revoked_at * 1000 + svc->settings.token_lifetime_ms;

    return auth_expiry_ms > own_ms ? auth_expiry_ms : own_ms;
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
                                const char *user_id, int64_t revoked_at,
                                int64_t entry_expires_at_ms)
{
    int64_t expire_ms;

    if (!sess_name_valid(user_id) || revoked_at <= 0) {
        return CJ_ERR_INVALID;
    }
    expire_ms = user_entry_expiry_ms(svc, revoked_at, entry_expires_at_ms);
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

/* Copies the batch's unexpired token entries into t. Returns false when
 * an entry is invalid. */
static bool load_tokens(const struct sess_service *svc,
                        const struct sess_revocation_batch *in, int64_t now,
                        struct sess_load_token *t, size_t *count)
{
    for (size_t i = 0; i < in->token_count; i++) {
        const struct sess_revoked_token *tok = &in->tokens[i];
        int64_t expire_ms;

        if (!sess_name_valid(tok->token_id) || tok->expires_at <= 0) {
            return false;
        }
        expire_ms = token_entry_expiry_ms(svc, tok->expires_at);
        if (expire_ms > now) {
            t[*count].token_id = tok->token_id;
            t[*count].expire_at_ms = expire_ms;
            (*count)++;
        }
    }
    return true;
}

/* Copies the batch's unexpired user entries into u. Returns false when
 * an entry is invalid. */
static bool load_users(const struct sess_service *svc,
                       const struct sess_revocation_batch *in, int64_t now,
                       struct sess_load_user *u, size_t *count)
{
    for (size_t i = 0; i < in->user_count; i++) {
        const struct sess_revoked_user *user = &in->users[i];
        int64_t expire_ms;

        if (!sess_name_valid(user->user_id) || user->revoked_at <= 0) {
            return false;
        }
        expire_ms = user_entry_expiry_ms(svc, user->revoked_at,
                                         user->entry_expires_at_ms);
        if (expire_ms > now) {
            u[*count].user_id = user->user_id;
            u[*count].revoked_at = user->revoked_at;
            u[*count].expire_at_ms = expire_ms;
            (*count)++;
        }
    }
    return true;
}

enum cj_status sess_load_revocations(const struct sess_service *svc,
                                     const struct sess_revocation_batch *in)
{
    struct sess_load_token *t = NULL;
    struct sess_load_user *u = NULL;
    struct sess_load_batch batch = {0};
    int64_t now = sess_now_ms();
    enum cj_status st = CJ_ERR_TOO_LARGE;

    if (in->token_count + in->user_count + in->session_count >
        SESS_LOAD_BATCH_MAX) {
        goto out;
    }
    st = CJ_ERR_NOMEM;
    t = calloc(in->token_count > 0 ? in->token_count : 1, sizeof(*t));
    u = calloc(in->user_count > 0 ? in->user_count : 1, sizeof(*u));
    if (t == NULL || u == NULL) {
        goto out;
    }
    st = CJ_ERR_INVALID;
    if (!load_tokens(svc, in, now, t, &batch.token_count) ||
        !load_users(svc, in, now, u, &batch.user_count)) {
        goto out;
    }
    for (size_t i = 0; i < in->session_count; i++) {
        if (!cj_session_id_valid(in->session_ids[i])) {
            goto out;
        }
    }
    batch.load_id = in->load_id;
    batch.step = in->step;
    batch.tokens = t;
    batch.users = u;
    batch.session_ids = in->session_ids;
    batch.session_count = in->session_count;
    /* The deletion time of a restored tombstone is unknown, so it gets
     * the full lifetime again: longer than needed, never shorter. */
    batch.tombstone_ms = svc->settings.token_lifetime_ms;
    batch.marker_ttl_ms = in->complete ? SESS_LOADED_MARKER_TTL_MS : 0;
    st = sess_store_load_batch(svc->redis, &batch);
    if (st == CJ_OK) {
        cj_log(CJ_LOG_INFO, "session.revocations_loaded", NULL,
               CJ_F_INT("tokens", batch.token_count),
               CJ_F_INT("users", batch.user_count),
               CJ_F_INT("sessions", batch.session_count),
               CJ_F_BOOL("complete", in->complete));
    } else if (st == CJ_ERR_PRECONDITION) {
        cj_log(CJ_LOG_WARN, "session.revocation_load_interrupted", NULL);
    }
out:
    free(t);
    free(u);
    return st;
}

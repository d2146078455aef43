/*
 * Introspect (RFC 7662 semantics): the token is active only when its
 * signature verifies against kms's JWKS (cached here), its claims pass the
 * RFC 8725 checks, session's revocation cache does not list it and
 * its user is active. A revocation cache that is not loaded fails closed:
 * the call fails with UNAVAILABLE and never answers active.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth_flows.h"
#include "auth_ids.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "deadline.h"
#include "jwt.h"
#include "log.h"
#include "rpc_message.h"

/* Refetch for an unknown kid at most this often, so that junk tokens
 * cannot make auth hammer kms. */
#define JWKS_FORCED_REFRESH_MIN_MS 10000
/* Used when kms gives no max age. */
#define JWKS_DEFAULT_MAX_AGE_MS 300000

/* Fetches the JWKS from kms and swaps it in. Call with the write lock
 * held. */
static enum cj_status jwks_fetch_locked(struct auth_service *svc,
                                        const char *request_id)
{
    struct auth_jwks_cache *cache = &svc->jwks;
    struct cj_jwks *keys = NULL;
    char *json = NULL;
    uint32_t max_age_s = 0;
    enum cj_status rc;

    rc = auth_kms_get_jwks(svc, request_id, &json, &max_age_s);
    if (rc == CJ_OK) {
        rc = cj_jwks_parse(json, strlen(json), &keys);
    }
    free(json);
    if (rc != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.jwks_fetch_failed", request_id,
               CJ_F_STR("status", cj_status_name(rc)));
        return rc;
    }
    cj_jwks_free(cache->keys);
    cache->keys = keys;
    cache->fetched_at_ms = cj_monotonic_ms();
    cache->max_age_ms =
        max_age_s > 0 ? (int64_t)max_age_s * 1000 : JWKS_DEFAULT_MAX_AGE_MS;
    return CJ_OK;
}

static bool jwks_stale(const struct auth_jwks_cache *cache, int64_t now_ms)
{
    return cache->keys == NULL ||
           now_ms - cache->fetched_at_ms >= cache->max_age_ms;
}

static bool forced_refresh_due(const struct auth_jwks_cache *cache,
                               int64_t now_ms)
{
    return now_ms - cache->last_forced_ms >= JWKS_FORCED_REFRESH_MIN_MS;
}

/*
 * Verifies against the cached set under the read lock. Returns true when
 * that settled the call, with its status in *rc. Returns false when the
 * set is stale, or lacks the token's kid while a refetch is due, because
 * a refetch needs the write lock.
 */
static bool verify_shared(struct auth_service *svc,
                          const struct cj_jwt_verify_config *config,
                          const char *token, int64_t now_ms,
                          struct cj_jwt_claims *claims,
                          enum cj_jose_reason *reason, enum cj_status *rc)
{
    struct auth_jwks_cache *cache = &svc->jwks;
    bool settled = false;

    pthread_rwlock_rdlock(&cache->lock);
    if (!jwks_stale(cache, now_ms)) {
        *rc = cj_jwt_verify(cache->keys, config, auth_now_ms(svc) / 1000, token,
                            strlen(token), claims, reason);
        settled = *reason != CJ_JOSE_KID_UNKNOWN ||
                  !forced_refresh_due(cache, now_ms);
    }
    pthread_rwlock_unlock(&cache->lock);
    return settled;
}

/*
 * Verifies under the write lock, refreshing the set when stale or when
 * the token names a kid the cached set lacks. Another caller may have
 * refetched between the two locks, so both conditions are checked again.
 */
static enum cj_status
verify_exclusive(struct auth_service *svc, struct auth_call *call,
                 const struct cj_jwt_verify_config *config, const char *token,
                 int64_t now_ms, struct cj_jwt_claims *claims,
                 enum cj_jose_reason *reason)
{
    struct auth_jwks_cache *cache = &svc->jwks;
    enum cj_status rc = CJ_OK;

    pthread_rwlock_wrlock(&cache->lock);
    if (jwks_stale(cache, now_ms)) {
        rc = jwks_fetch_locked(svc, call->request_id);
        /* A stale set still verifies what it verified before; a key that
         * kms published since is the unknown-kid case below. */
        if (rc != CJ_OK && cache->keys != NULL) {
            rc = CJ_OK;
        }
    }
    if (rc == CJ_OK) {
        rc = cj_jwt_verify(cache->keys, config, auth_now_ms(svc) / 1000, token,
                           strlen(token), claims, reason);
        if (*reason == CJ_JOSE_KID_UNKNOWN &&
            forced_refresh_due(cache, now_ms)) {
            cache->last_forced_ms = now_ms;
            rc = jwks_fetch_locked(svc, call->request_id);
            if (rc == CJ_OK) {
                rc = cj_jwt_verify(cache->keys, config, auth_now_ms(svc) / 1000,
                                   token, strlen(token), claims, reason);
            }
        }
    }
    pthread_rwlock_unlock(&cache->lock);
    return rc;
}

/* Verifies the token against the JWKS cache, refetching the set only when
 * needed so that verifications run in parallel. */
static enum cj_status verify_token(struct auth_service *svc,
                                   struct auth_call *call, const char *token,
                                   struct cj_jwt_claims *claims,
                                   enum cj_jose_reason *reason)
{
    struct cj_jwt_verify_config config;
    int64_t now_ms = cj_monotonic_ms();
    enum cj_status rc = CJ_OK;

    cj_jwt_verify_config_init(&config, svc->cfg.issuer, svc->cfg.audience);
    config.leeway_s = svc->cfg.jwt_leeway_s;
    if (verify_shared(svc, &config, token, now_ms, claims, reason, &rc)) {
        return rc;
    }
    memset(claims, 0, sizeof(*claims));
    *reason = CJ_JOSE_OK;
    return verify_exclusive(svc, call, &config, token, now_ms, claims, reason);
}

static enum cj_status inactive(Cerrojo__V1__IntrospectResponse **out)
{
    Cerrojo__V1__IntrospectResponse *resp = malloc(sizeof(*resp));

    if (resp == NULL) {
        return CJ_ERR_NOMEM;
    }
    cerrojo__v1__introspect_response__init(resp);
    *out = resp;
    return CJ_OK;
}

/* Copies a claim into a reply string; false on allocation failure. */
static bool set_string(char **field, const char *value)
{
    *field = strdup(value);
    return *field != NULL;
}

static enum cj_status active(const struct cj_jwt_claims *claims,
                             struct auth_user_public *user,
                             Cerrojo__V1__IntrospectResponse **out)
{
    Cerrojo__V1__IntrospectResponse *resp = NULL;
    enum cj_status rc = inactive(&resp);
    bool ok;

    if (rc != CJ_OK) {
        return rc;
    }
    resp->active = true;
    resp->iat = claims->iat;
    resp->nbf = claims->nbf;
    resp->exp = claims->exp;
    ok = set_string(&resp->sub, claims->sub) &&
         set_string(&resp->sid, claims->sid) &&
         set_string(&resp->jti, claims->jti) &&
         set_string(&resp->iss, claims->iss) &&
         set_string(&resp->aud, claims->aud) &&
         set_string(&resp->token_type, "Bearer") &&
         set_string(&resp->username, user->username);
    resp->public_data =
        calloc(user->count > 0 ? user->count : 1, sizeof(void *));
    ok = ok && resp->public_data != NULL;
    for (size_t i = 0; ok && i < user->count; i++) {
        Cerrojo__V1__IntrospectResponse__PublicDataEntry *e =
            malloc(sizeof(*e));

        if (e == NULL) {
            ok = false;
            break;
        }
        cerrojo__v1__introspect_response__public_data_entry__init(e);
        e->key = user->fields[i].name;
        e->value = user->fields[i].value;
        user->fields[i].name = NULL;
        user->fields[i].value = NULL;
        resp->public_data[resp->n_public_data++] = e;
    }
    if (!ok) {
        cj_rpc_message_free(&resp->base);
        return CJ_ERR_NOMEM;
    }
    *out = resp;
    return CJ_OK;
}

enum cj_status auth_introspect(struct auth_service *svc, struct auth_call *call,
                               const Cerrojo__V1__IntrospectRequest *req,
                               Cerrojo__V1__IntrospectResponse **out)
{
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason = CJ_JOSE_OK;
    struct auth_user_public user;
    struct cj_db_conn *conn = NULL;
    bool revoked = true;
    enum cj_status rc;

    *out = NULL;
    memset(&claims, 0, sizeof(claims));
    rc = verify_token(svc, call, req->token, &claims, &reason);
    if (rc != CJ_OK || reason != CJ_JOSE_OK) {
        if (reason == CJ_JOSE_OK) {
            /* kms unreachable: the token state is unknown, not "inactive". */
            auth_call_error(call, "the token keys from the key service (kms) "
                                  "are unavailable; retry later");
            return CJ_ERR_UNAVAILABLE;
        }
        cj_log(CJ_LOG_INFO, "auth.introspect_inactive", call->request_id,
               CJ_F_STR("reason", cj_jose_reason_name(reason)));
        return inactive(out);
    }

    rc = auth_session_is_revoked(svc, call->request_id, claims.jti, claims.sub,
                                 claims.iat, claims.sid, &revoked);
    if (rc == CJ_ERR_PRECONDITION) {
        auth_call_error(call, "the revocation cache of the session service "
                              "is not loaded; retry later");
    }
    if (rc != CJ_OK) {
        auth_remote_call_error(call, AUTH_REMOTE_SESSION, rc);
        return CJ_ERR_UNAVAILABLE;
    }
    if (revoked || !auth_uuid_valid(claims.sub)) {
        return inactive(out);
    }

    rc = auth_db_acquire_for(svc, call, &conn);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = auth_store_user_public_get(conn, claims.sub, &user);
    cj_db_release(conn);
    if (rc == CJ_ERR_NOT_FOUND) {
        return inactive(out);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    if (user.status == AUTH_USER_ACTIVE) {
        rc = active(&claims, &user, out);
    } else {
        rc = inactive(out);
    }
    auth_data_fields_free(user.fields, user.count);
    return rc;
}

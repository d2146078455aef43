/* Reloading session's revocation cache from auth.revocations. */
#include "auth_revocations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_clock.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "deadline.h"
#include "log.h"

/* Waits up to ms, until svc->stopping, or until *wake is set (wake may be
 * NULL); returns false when stopping. */
static bool sleep_or_wake(struct auth_service *svc, int64_t ms,
                          atomic_bool *wake)
{
    struct timespec until;

    cj_deadline_after_ms(CLOCK_REALTIME, ms, &until);
    pthread_mutex_lock(&svc->wait_lock);
    while (!atomic_load(&svc->stopping) &&
           (wake == NULL || !atomic_load(wake))) {
        if (pthread_cond_timedwait(&svc->wait_cond, &svc->wait_lock, &until) ==
            ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&svc->wait_lock);
    return !atomic_load(&svc->stopping);
}

bool auth_service_sleep(struct auth_service *svc, int64_t ms)
{
    return sleep_or_wake(svc, ms, NULL);
}

/* The arrays of one LoadRevocations batch, owned here. */
struct batch {
    Cerrojo__V1__LoadRevocationsRequest req;
    Cerrojo__V1__RevokedToken tokens[AUTH_REVOCATION_BATCH];
    Cerrojo__V1__RevokedToken *token_ptrs[AUTH_REVOCATION_BATCH];
    Cerrojo__V1__RevokedUser users[AUTH_REVOCATION_BATCH];
    Cerrojo__V1__RevokedUser *user_ptrs[AUTH_REVOCATION_BATCH];
    char *session_ids[AUTH_REVOCATION_BATCH];
};

static void batch_fill(struct batch *b, struct auth_revocation *rows,
                       size_t count, bool complete)
{
    cerrojo__v1__load_revocations_request__init(&b->req);
    b->req.tokens = b->token_ptrs;
    b->req.users = b->user_ptrs;
    b->req.session_ids = b->session_ids;
    for (size_t i = 0; i < count; i++) {
        struct auth_revocation *r = &rows[i];

        switch (r->kind) {
        case AUTH_REVOKED_TOKEN: {
            Cerrojo__V1__RevokedToken *t = &b->tokens[b->req.n_tokens];

            cerrojo__v1__revoked_token__init(t);
            t->token_id = r->subject;
            t->expires_at = r->expires_at;
            b->token_ptrs[b->req.n_tokens++] = t;
            break;
        }
        case AUTH_REVOKED_USER: {
            Cerrojo__V1__RevokedUser *u = &b->users[b->req.n_users];

            cerrojo__v1__revoked_user__init(u);
            u->user_id = r->subject;
            u->revoked_at = r->revoked_at;
            b->user_ptrs[b->req.n_users++] = u;
            break;
        }
        case AUTH_REVOKED_SESSION:
            b->session_ids[b->req.n_session_ids++] = r->subject;
            break;
        }
    }
    b->req.complete = complete;
}

enum cj_status auth_revocations_reload(struct auth_service *svc,
                                       const char *request_id)
{
    struct auth_revocation *rows = calloc(AUTH_REVOCATION_BATCH, sizeof(*rows));
    struct batch *b = calloc(1, sizeof(*b));
    enum auth_revocation_kind after_kind = AUTH_REVOKED_TOKEN;
    char after_subject[AUTH_SESSION_ID_MAX + 1] = "";
    bool first_page = true;
    struct cj_db_conn *conn = NULL;
    size_t count = 0;
    size_t total = 0;
    enum cj_status rc = CJ_ERR_NOMEM;

    if (rows == NULL || b == NULL) {
        goto out;
    }
    rc = auth_db_acquire(svc, request_id, &conn);
    if (rc != CJ_OK) {
        goto out;
    }
    do {
        rc = auth_store_revocations_list(conn, after_kind,
                                         first_page ? NULL : after_subject,
                                         rows, AUTH_REVOCATION_BATCH, &count);
        first_page = false;
        if (rc != CJ_OK) {
            break;
        }
        total += count;
        batch_fill(b, rows, count, count < AUTH_REVOCATION_BATCH);
        rc = auth_session_load(svc, request_id, &b->req);
        if (count > 0) {
            after_kind = rows[count - 1].kind;
            snprintf(after_subject, sizeof(after_subject), "%s",
                     rows[count - 1].subject);
        }
    } while (rc == CJ_OK && count == AUTH_REVOCATION_BATCH);
    cj_db_release(conn);
out:
    free(rows);
    free(b);
    if (rc == CJ_OK) {
        cj_counter_inc(svc->m.cache_reloads);
        cj_log(CJ_LOG_INFO, "auth.revocation_cache_loaded", request_id,
               CJ_F_INT("revocations", total));
    } else {
        cj_log(CJ_LOG_ERROR, "auth.revocation_cache_load_failed", request_id,
               CJ_F_STR("status", cj_status_name(rc)), CJ_F_INT("sent", total));
    }
    return rc;
}

enum cj_status auth_revocations_check(struct auth_service *svc,
                                      const char *request_id)
{
    bool loaded = false;
    enum cj_status rc = auth_session_cache_loaded(svc, request_id, &loaded);

    if (rc != CJ_OK || loaded) {
        return rc;
    }
    cj_log(CJ_LOG_WARN, "auth.revocation_cache_not_loaded", request_id);
    return auth_revocations_reload(svc, request_id);
}

void auth_revocations_mark_stale(struct auth_service *svc)
{
    /* The flag is set under the lock, so the watcher cannot check it and
     * then miss the broadcast. */
    pthread_mutex_lock(&svc->wait_lock);
    atomic_store(&svc->revocations_stale, true);
    pthread_cond_broadcast(&svc->wait_cond);
    pthread_mutex_unlock(&svc->wait_lock);
}

/* Reloads a stale cache, or checks a current one; a failed reload leaves
 * the cache marked stale. */
static enum cj_status watch_round(struct auth_service *svc)
{
    enum cj_status rc;

    if (!atomic_exchange(&svc->revocations_stale, false)) {
        return auth_revocations_check(svc, NULL);
    }
    cj_log(CJ_LOG_WARN, "auth.revocation_cache_stale", NULL);
    rc = auth_revocations_reload(svc, NULL);
    if (rc != CJ_OK) {
        atomic_store(&svc->revocations_stale, true);
    }
    return rc;
}

void *auth_revocations_watch(void *arg)
{
    struct auth_service *svc = arg;
    enum cj_status last = CJ_OK;
    bool stale;

    do {
        /* The next round retries; only a change of outcome is logged. */
        enum cj_status rc = watch_round(svc);

        if (rc != last) {
            cj_log(rc == CJ_OK ? CJ_LOG_INFO : CJ_LOG_WARN,
                   "auth.revocation_watch_status", NULL,
                   CJ_F_STR("status", cj_status_name(rc)));
            last = rc;
        }
        auth_clock_check(svc);
        stale = atomic_load(&svc->revocations_stale);
    } while (stale ? auth_service_sleep(svc, AUTH_REVOCATION_RETRY_MS)
                   : sleep_or_wake(svc, svc->cfg.cache_watch_s * 1000,
                                   &svc->revocations_stale));
    return NULL;
}

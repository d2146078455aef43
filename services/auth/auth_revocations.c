/* Reloading session's revocation cache from auth.revocations. */
#include "auth_revocations.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth_clock.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "deadline.h"
#include "log.h"
#include "crypto_util.h"
#include "redis.h"
#include "revocation_cache.h"

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
    /* Every batch of a full load keeps the load id that load_begin set. */
    char *load_id = b->req.load_id;

    cerrojo__v1__load_revocations_request__init(&b->req);
    if (load_id != NULL) {
        b->req.load_id = load_id;
    }
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
            /* The row expires when the entry stops mattering: revocation
             * time plus auth's access-token lifetime and leeway. */
            u->entry_expires_at_ms = r->expires_at * 1000;
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

/* Rows a send takes from auth.revocations. */
enum send_scope {
    SEND_ALL,    /* every unexpired row, and the last batch sets the marker */
    SEND_UNSENT, /* unconfirmed rows past a grace, marker left as it is */
};

/* Repeated failures to confirm rows, e.g. while Postgres is down. */
static struct cj_log_limit confirm_limit = CJ_LOG_LIMIT_INIT;

/* Marks rows that session stored as confirmed. A failure is logged and
 * otherwise ignored: the rows stay unconfirmed and are sent again, which
 * session handles idempotently. */
static void confirm_rows(struct cj_db_conn *conn, const char *request_id,
                         const struct auth_revocation *rows, size_t count)
{
    unsigned confirmed = 0;
    enum cj_status rc =
        auth_store_revocations_confirm(conn, rows, count, &confirmed);

    if (rc == CJ_OK) {
        cj_log_recovered(&confirm_limit, "auth.revocation_confirm_recovered",
                         request_id);
        return;
    }
    cj_log_limited(&confirm_limit, CJ_LOG_WARN,
                   "auth.revocation_confirm_failed", request_id,
                   CJ_F_STR("status", cj_status_name(rc)),
                   CJ_F_STR("sqlstate", cj_db_last_sqlstate(conn)),
                   CJ_F_INT("rows", count));
}

/* Lists one page of the scope after the key of the previous page. */
static enum cj_status list_page(struct cj_db_conn *conn, enum send_scope scope,
                                int grace_s,
                                enum auth_revocation_kind after_kind,
                                const char *after_subject,
                                struct auth_revocation *rows, size_t *count)
{
    if (scope == SEND_UNSENT) {
        return auth_store_revocations_list_unsent(conn, after_kind,
                                                  after_subject, grace_s, rows,
                                                  AUTH_REVOCATION_BATCH, count);
    }
    return auth_store_revocations_list(conn, after_kind, after_subject, rows,
                                       AUTH_REVOCATION_BATCH, count);
}

/*
 * Picks a random load id and records it in session before any row is
 * read. Every later batch carries the id. Session rejects a batch whose
 * record Redis has lost since (CJ_ERR_PRECONDITION), because a revocation
 * that a flow sent directly during the load may have been lost too. The
 * rows this load read earlier may not contain it.
 */
static enum cj_status load_begin(struct auth_service *svc,
                                 const char *request_id, struct batch *b,
                                 char load_id[AUTH_LOAD_ID_SIZE])
{
    unsigned char raw[AUTH_LOAD_ID_BYTES];
    enum cj_status rc;

    cj_random_bytes(raw, sizeof(raw));
    sodium_bin2hex(load_id, AUTH_LOAD_ID_SIZE, raw, sizeof(raw));
    cerrojo__v1__load_revocations_request__init(&b->req);
    b->req.load_id = load_id;
    b->req.begin = true;
    rc = auth_session_load(svc, request_id, &b->req);
    b->req.begin = false;
    return rc;
}

/* Sends the rows of scope to session in batches and confirms each batch
 * that session stored; *total gets how many rows were sent. grace_s is the
 * age of the unconfirmed rows that SEND_UNSENT takes. */
static enum cj_status send_rows(struct auth_service *svc,
                                const char *request_id, enum send_scope scope,
                                int grace_s, size_t *total)
{
    struct auth_revocation *rows = calloc(AUTH_REVOCATION_BATCH, sizeof(*rows));
    struct batch *b = calloc(1, sizeof(*b));
    enum auth_revocation_kind after_kind = AUTH_REVOKED_TOKEN;
    char after_subject[AUTH_SESSION_ID_MAX + 1] = "";
    char load_id[AUTH_LOAD_ID_SIZE];
    bool first_page = true;
    struct cj_db_conn *conn = NULL;
    size_t count = 0;
    enum cj_status rc = CJ_ERR_NOMEM;

    *total = 0;
    if (rows == NULL || b == NULL) {
        goto out;
    }
    if (scope == SEND_ALL) {
        rc = load_begin(svc, request_id, b, load_id);
        if (rc != CJ_OK) {
            goto out;
        }
    }
    rc = auth_db_acquire(svc, request_id, &conn);
    if (rc != CJ_OK) {
        goto out;
    }
    do {
        rc = list_page(conn, scope, grace_s, after_kind,
                       first_page ? NULL : after_subject, rows, &count);
        first_page = false;
        /* A full load sends its last batch even when empty, because that
         * batch sets the loaded marker. */
        if (rc != CJ_OK || (scope == SEND_UNSENT && count == 0)) {
            break;
        }
        batch_fill(b, rows, count,
                   scope == SEND_ALL && count < AUTH_REVOCATION_BATCH);
        rc = auth_session_load(svc, request_id, &b->req);
        if (rc != CJ_OK) {
            break;
        }
        *total += count;
        confirm_rows(conn, request_id, rows, count);
        if (count > 0) {
            after_kind = rows[count - 1].kind;
            snprintf(after_subject, sizeof(after_subject), "%s",
                     rows[count - 1].subject);
        }
    } while (count == AUTH_REVOCATION_BATCH);
    cj_db_release(conn);
out:
    free(rows);
    free(b);
    return rc;
}

enum cj_status auth_revocations_reload(struct auth_service *svc,
                                       const char *request_id)
{
    size_t total = 0;
    enum cj_status rc = send_rows(svc, request_id, SEND_ALL, 0, &total);

    /* Redis lost keys during the load, so start it again at once. Until a
     * load completes, session's cache stays unloaded and Introspect fails. */
    for (int attempt = 1;
         rc == CJ_ERR_PRECONDITION && attempt < AUTH_LOAD_ATTEMPTS; attempt++) {
        cj_log(CJ_LOG_WARN, "auth.revocation_cache_load_restarted", request_id,
               CJ_F_INT("attempt", attempt + 1));
        rc = send_rows(svc, request_id, SEND_ALL, 0, &total);
    }

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

/* Repeated failures to resend, e.g. while Postgres is down. */
static struct cj_log_limit resend_limit = CJ_LOG_LIMIT_INIT;

enum cj_status auth_revocations_resend(struct auth_service *svc,
                                       const char *request_id, int grace_s)
{
    size_t total = 0;
    enum cj_status rc =
        send_rows(svc, request_id, SEND_UNSENT, grace_s, &total);

    if (total > 0) {
        cj_counter_add(cj_metric_series(svc->m.revocations_resent, NULL),
                       total);
        cj_log(CJ_LOG_WARN, "auth.revocation_resent", request_id,
               CJ_F_INT("count", total), CJ_F_INT("grace_s", grace_s));
    }
    if (rc == CJ_OK) {
        cj_log_recovered(&resend_limit, "auth.revocation_resend_recovered",
                         request_id);
    } else {
        cj_log_limited(&resend_limit, CJ_LOG_ERROR,
                       "auth.revocation_resend_failed", request_id,
                       CJ_F_STR("status", cj_status_name(rc)),
                       CJ_F_INT("sent", total));
    }
    return rc;
}

enum cj_status auth_revocations_check(struct auth_service *svc,
                                      const char *request_id, int grace_s)
{
    bool loaded = false;
    enum cj_status rc = auth_session_cache_loaded(svc, request_id, &loaded);

    if (rc != CJ_OK) {
        return rc;
    }
    if (loaded) {
        return auth_revocations_resend(svc, request_id, grace_s);
    }
    cj_log(CJ_LOG_WARN, "auth.revocation_cache_not_loaded", request_id);
    return auth_revocations_reload(svc, request_id);
}

void auth_revocations_confirm(struct auth_service *svc, const char *request_id,
                              enum auth_revocation_kind kind,
                              const char *subject, int64_t revoked_at)
{
    struct auth_revocation row = {.kind = kind, .revoked_at = revoked_at};
    struct cj_db_conn *conn = NULL;

    snprintf(row.subject, sizeof(row.subject), "%s", subject);
    /* auth_db_acquire logs its own failure; the row is then resent. */
    if (auth_db_acquire(svc, request_id, &conn) != CJ_OK) {
        return;
    }
    confirm_rows(conn, request_id, &row, 1);
    cj_db_release(conn);
}

/* Repeated invalidations by the watcher, which retries every
 * AUTH_REVOCATION_RETRY_MS while session stays unreachable. */
static struct cj_log_limit watch_invalidate_limit = CJ_LOG_LIMIT_INIT;

/* Deletes session's loaded marker in Redis. */
static enum cj_status delete_loaded_marker(struct auth_service *svc)
{
    const char *argv[] = {"DEL", CJ_REVOKED_LOADED_KEY};
    const size_t argvlen[] = {strlen(argv[0]), strlen(argv[1])};
    redisReply *reply = NULL;
    enum cj_status rc;

    if (svc->redis == NULL) {
        return CJ_ERR_UNAVAILABLE;
    }
    rc = cj_redis_command(svc->redis, 2, argv, argvlen, &reply);
    if (reply != NULL) {
        freeReplyObject(reply);
    }
    return rc;
}

/* Marks the cache stale, wakes the watcher and sets the stale gauge. */
static void set_stale(struct auth_service *svc)
{
    /* The flag is set under the lock, so the watcher cannot check it and
     * then miss the broadcast. */
    pthread_mutex_lock(&svc->wait_lock);
    atomic_store(&svc->revocations_stale, true);
    pthread_cond_broadcast(&svc->wait_cond);
    pthread_mutex_unlock(&svc->wait_lock);
    cj_gauge_set(cj_metric_series(svc->m.cache_stale, NULL), 1);
}

int64_t auth_revocation_expiry_ms(const struct auth_service *svc,
                                  int64_t now_ms)
{
    return now_ms + (svc->cfg.access_ttl_s + svc->cfg.jwt_leeway_s) * 1000;
}

void auth_revocations_mark_stale(struct auth_service *svc,
                                 const char *request_id, const char *reason)
{
    enum cj_status rc = delete_loaded_marker(svc);

    set_stale(svc);
    if (rc == CJ_OK) {
        cj_log(CJ_LOG_WARN, "auth.revocation_cache_invalidated", request_id,
               CJ_F_STR("reason", reason));
        return;
    }
    /* Session usually uses the same Redis, so it cannot read the cache
     * either, and IsRevoked fails there too. */
    cj_log(CJ_LOG_ERROR, "auth.revocation_cache_invalidate_failed", request_id,
           CJ_F_STR("reason", reason), CJ_F_STR("status", cj_status_name(rc)),
           CJ_F_STR("error", cj_redis_last_error()));
}

/*
 * Counts the rows that session has not confirmed and exports the count.
 * After a failed round (round_status not CJ_OK) with such rows, deletes the
 * loaded marker, because session may be missing them. An unknown count
 * (Postgres down) leaves the marker as it is.
 */
static void check_unconfirmed(struct auth_service *svc,
                              enum cj_status round_status)
{
    struct cj_db_conn *conn = NULL;
    int64_t unconfirmed = 0;
    enum cj_status delete_status;

    /* auth_db_acquire logs its own failure. */
    if (auth_db_acquire(svc, NULL, &conn) != CJ_OK) {
        return;
    }
    if (auth_store_revocations_count_unsent(conn, &unconfirmed) != CJ_OK) {
        cj_db_release(conn);
        return;
    }
    cj_db_release(conn);
    cj_gauge_set(cj_metric_series(svc->m.unconfirmed_rows, NULL),
                 (double)unconfirmed);
    if (round_status == CJ_OK || unconfirmed == 0) {
        return;
    }
    delete_status = delete_loaded_marker(svc);
    set_stale(svc);
    if (delete_status == CJ_OK) {
        cj_log_limited(&watch_invalidate_limit, CJ_LOG_WARN,
                       "auth.revocation_cache_invalidated", NULL,
                       CJ_F_STR("reason", "watcher_send_failed"),
                       CJ_F_STR("status", cj_status_name(round_status)),
                       CJ_F_INT("unconfirmed", unconfirmed));
    } else {
        cj_log_limited(&watch_invalidate_limit, CJ_LOG_ERROR,
                       "auth.revocation_cache_invalidate_failed", NULL,
                       CJ_F_STR("reason", "watcher_send_failed"),
                       CJ_F_STR("status", cj_status_name(delete_status)),
                       CJ_F_STR("error", cj_redis_last_error()),
                       CJ_F_INT("unconfirmed", unconfirmed));
    }
}

/* Reloads a stale cache, or one whose last full reload is older than
 * cfg.cache_reload_s, or checks a current one. A failed reload leaves the
 * cache marked stale; a successful one sets *reloaded_ms. */
static enum cj_status watch_round(struct auth_service *svc,
                                  int64_t *reloaded_ms, int grace_s)
{
    int64_t now = cj_monotonic_ms();
    bool stale = atomic_exchange(&svc->revocations_stale, false);
    enum cj_status rc;

    if (!stale && now - *reloaded_ms < svc->cfg.cache_reload_s * 1000) {
        return auth_revocations_check(svc, NULL, grace_s);
    }
    if (stale) {
        cj_log(CJ_LOG_WARN, "auth.revocation_cache_stale", NULL);
    }
    rc = auth_revocations_reload(svc, NULL);
    if (rc == CJ_OK) {
        *reloaded_ms = now;
    } else if (stale) {
        atomic_store(&svc->revocations_stale, true);
    }
    return rc;
}

void *auth_revocations_watch(void *arg)
{
    struct auth_service *svc = arg;
    enum cj_status last = CJ_OK;
    /* The first round checks the marker, and a cache it finds unloaded is
     * reloaded then, so the periodic reload counts from the start. */
    int64_t reloaded_ms = cj_monotonic_ms();
    /* Until one round succeeds, every unconfirmed row goes out: rows that
     * a stopped process left unsent must not wait for the grace. */
    int grace_s = 0;
    bool stale;

    do {
        /* The next round retries; only a change of outcome is logged. */
        enum cj_status rc = watch_round(svc, &reloaded_ms, grace_s);

        check_unconfirmed(svc, rc);
        cj_gauge_set(cj_metric_series(svc->m.cache_stale, NULL),
                     atomic_load(&svc->revocations_stale) ? 1 : 0);

        if (rc != last) {
            cj_log(rc == CJ_OK ? CJ_LOG_INFO : CJ_LOG_WARN,
                   "auth.revocation_watch_status", NULL,
                   CJ_F_STR("status", cj_status_name(rc)));
            last = rc;
        }
        if (rc == CJ_OK) {
            grace_s = AUTH_REVOCATION_RESEND_GRACE_S;
        }
        auth_clock_check(svc);
        stale = atomic_load(&svc->revocations_stale);
    } while (stale ? auth_service_sleep(svc, AUTH_REVOCATION_RETRY_MS)
                   : sleep_or_wake(svc, svc->cfg.cache_watch_s * 1000,
                                   &svc->revocations_stale));
    return NULL;
}

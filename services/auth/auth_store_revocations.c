/* SQL on auth.revocations, the durable record session's cache reloads. */
#include "auth_store.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_store_rows.h"

/* Parameters of a listing query: the key after which it starts and the
 * row limit, then at most one more. */
#define AUTH_REVOCATION_LIST_KEY_PARAMS 3
#define AUTH_REVOCATION_LIST_MAX_PARAMS 4

static const char *const kind_names[] = {
    [AUTH_REVOKED_TOKEN] = "token",
    [AUTH_REVOKED_SESSION] = "session",
    [AUTH_REVOKED_USER] = "user",
};

static bool kind_valid(enum auth_revocation_kind kind)
{
    return kind >= AUTH_REVOKED_TOKEN && kind <= AUTH_REVOKED_USER;
}

enum cj_status auth_store_revocation_put(struct cj_db_conn *conn,
                                         enum auth_revocation_kind kind,
                                         const char *subject,
                                         const char *user_id,
                                         int64_t revoked_at_ms,
                                         int64_t expires_at_ms)
{
    /* A user's later revocation supersedes an earlier one, so session has
     * to get the row again. A token or session is revoked once and for
     * good. */
    static const char sql[] =
        "INSERT INTO auth.revocations (kind, subject, user_id, revoked_at, "
        "expires_at) VALUES ($1, $2, $3::uuid, "
        "to_timestamp($4::bigint / 1000.0), to_timestamp($5::bigint / 1000.0)) "
        "ON CONFLICT (kind, subject) DO UPDATE SET "
        "revoked_at = greatest(auth.revocations.revoked_at, "
        "excluded.revoked_at), expires_at = greatest("
        "auth.revocations.expires_at, excluded.expires_at), sent_at = NULL "
        "WHERE auth.revocations.kind = 'user'";
    char revoked[AUTH_INT_PARAM_SIZE];
    char expires[AUTH_INT_PARAM_SIZE];
    struct cj_db_param params[] = {
        CJ_DB_TEXT(kind_valid(kind) ? kind_names[kind] : NULL),
        CJ_DB_TEXT(subject),
        user_id != NULL && user_id[0] != '\0' ? CJ_DB_TEXT(user_id)
                                              : CJ_DB_NULL,
        CJ_DB_TEXT(auth_int_param(revoked, sizeof(revoked), revoked_at_ms)),
        CJ_DB_TEXT(auth_int_param(expires, sizeof(expires), expires_at_ms)),
    };

    if (!kind_valid(kind)) {
        return CJ_ERR_INVALID;
    }
    return cj_db_query(conn, sql, params, 5, false, NULL);
}

enum cj_status
auth_store_family_access_revoke(struct cj_db_conn *conn, const char *family_id,
                                int64_t access_ttl_s, int64_t leeway_s,
                                struct auth_revoked_access **out, size_t *count)
{
    /* The no-op update makes RETURNING include rows already recorded. */
    static const char sql[] =
        "WITH live AS (SELECT id::text AS jti, user_id, "
        "floor(extract(epoch FROM issued_at))::bigint + $2::bigint AS exp "
        "FROM auth.refresh_tokens WHERE family_id = $1::uuid) "
        "INSERT INTO auth.revocations (kind, subject, user_id, revoked_at, "
        "expires_at) SELECT 'token', jti, user_id, now(), "
        "to_timestamp(exp + $3::bigint) FROM live "
        "WHERE to_timestamp(exp + $3::bigint) > now() "
        "ON CONFLICT (kind, subject) DO UPDATE SET kind = excluded.kind "
        "RETURNING subject, "
        "ceil(extract(epoch FROM expires_at))::bigint - $3::bigint";
    char ttl[AUTH_INT_PARAM_SIZE];
    char leeway[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(family_id),
        CJ_DB_TEXT(auth_int_param(ttl, sizeof(ttl), access_ttl_s)),
        CJ_DB_TEXT(auth_int_param(leeway, sizeof(leeway), leeway_s)),
    };
    struct auth_revoked_access *rows = NULL;
    PGresult *res = NULL;
    int n = 0;
    enum cj_status rc;

    *out = NULL;
    *count = 0;
    rc = cj_db_query(conn, sql, params, 3, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    n = PQntuples(res);
    rows = calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
    if (rows == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < n && rc == CJ_OK; i++) {
        rc = auth_row_text(res, i, 0, rows[i].token_id,
                           sizeof(rows[i].token_id));
        rows[i].expires_at = auth_row_int64(res, i, 1);
    }
    if (rc == CJ_OK) {
        *out = rows;
        *count = (size_t)n;
        rows = NULL;
    }
out:
    free(rows);
    PQclear(res);
    return rc;
}

static enum auth_revocation_kind kind_from_name(const char *name)
{
    if (strcmp(name, "session") == 0) {
        return AUTH_REVOKED_SESSION;
    }
    if (strcmp(name, "user") == 0) {
        return AUTH_REVOKED_USER;
    }
    return AUTH_REVOKED_TOKEN;
}

/* Runs a listing query whose parameters are the key after which to start
 * ($1, $2) and the row limit ($3), then any extra ones, and parses its
 * rows (kind, subject, revoked_at, expires_at) into out. */
static enum cj_status list_rows(struct cj_db_conn *conn, const char *sql,
                                enum auth_revocation_kind after_kind,
                                const char *after_subject,
                                const struct cj_db_param *extra,
                                int extra_count, struct auth_revocation *out,
                                size_t limit, size_t *count)
{
    char limit_text[AUTH_INT_PARAM_SIZE];
    struct cj_db_param params[AUTH_REVOCATION_LIST_MAX_PARAMS] = {
        CJ_DB_TEXT(after_subject == NULL || !kind_valid(after_kind)
                       ? ""
                       : kind_names[after_kind]),
        CJ_DB_TEXT(after_subject == NULL ? "" : after_subject),
        CJ_DB_TEXT(
            auth_int_param(limit_text, sizeof(limit_text), (long long)limit)),
    };
    int nparams = AUTH_REVOCATION_LIST_KEY_PARAMS;
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    for (int i = 0; i < extra_count; i++) {
        params[nparams++] = extra[i];
    }
    rc = cj_db_query(conn, sql, params, nparams, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res) && (size_t)i < limit; i++) {
        out[i].kind = kind_from_name(PQgetvalue(res, i, 0));
        rc = auth_row_text(res, i, 1, out[i].subject, sizeof(out[i].subject));
        if (rc != CJ_OK) {
            goto out;
        }
        out[i].revoked_at = auth_row_int64(res, i, 2);
        out[i].expires_at = auth_row_int64(res, i, 3);
        *count = (size_t)i + 1;
    }
out:
    PQclear(res);
    return rc;
}

enum cj_status auth_store_revocations_list(struct cj_db_conn *conn,
                                           enum auth_revocation_kind after_kind,
                                           const char *after_subject,
                                           struct auth_revocation *out,
                                           size_t limit, size_t *count)
{
    /* Keyset pagination on the primary key (kind, subject). */
    static const char sql[] =
        "SELECT kind, subject, floor(extract(epoch FROM revoked_at))::bigint, "
        "ceil(extract(epoch FROM expires_at))::bigint FROM auth.revocations "
        "WHERE expires_at > now() AND (kind, subject) > ($1, $2) "
        "ORDER BY kind, subject LIMIT $3::integer";

    return list_rows(conn, sql, after_kind, after_subject, NULL, 0, out, limit,
                     count);
}

enum cj_status auth_store_revocations_list_unsent(
    struct cj_db_conn *conn, enum auth_revocation_kind after_kind,
    const char *after_subject, int64_t min_age_s, struct auth_revocation *out,
    size_t limit, size_t *count)
{
    /* Keyset pagination as above, on the partial index of unsent rows. */
    static const char sql[] =
        "SELECT kind, subject, floor(extract(epoch FROM revoked_at))::bigint, "
        "ceil(extract(epoch FROM expires_at))::bigint FROM auth.revocations "
        "WHERE sent_at IS NULL AND expires_at > now() "
        "AND revoked_at <= now() - make_interval(secs => $4::bigint) "
        "AND (kind, subject) > ($1, $2) "
        "ORDER BY kind, subject LIMIT $3::integer";
    char age_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param extra[] = {
        CJ_DB_TEXT(auth_int_param(age_text, sizeof(age_text), min_age_s)),
    };

    return list_rows(conn, sql, after_kind, after_subject, extra, 1, out, limit,
                     count);
}

/* Builds the JSON array of (kind, subject, revoked_at) objects that the
 * confirmation statement reads; returns NULL when out of memory. Every
 * kind must be valid. */
static char *confirm_json(const struct auth_revocation *rows, size_t count)
{
    json_t *array = json_array();
    char *text = NULL;

    if (array == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *row = json_pack(
            "{s:s, s:s, s:I}", "kind", kind_names[rows[i].kind], "subject",
            rows[i].subject, "revoked_at", (json_int_t)rows[i].revoked_at);

        if (json_array_append_new(array, row) != 0) {
            goto out;
        }
    }
    text = json_dumps(array, JSON_COMPACT);
out:
    json_decref(array);
    return text;
}

enum cj_status
auth_store_revocations_confirm(struct cj_db_conn *conn,
                               const struct auth_revocation *rows, size_t count,
                               unsigned *confirmed)
{
    /* A user's row confirms only up to the second that was sent: another
     * replica may have recorded a later revocation time meanwhile, and
     * that one still has to reach session. Session stores user times in
     * whole seconds, so a later time within the same second is already
     * covered. */
    static const char sql[] =
        "UPDATE auth.revocations AS r SET sent_at = now() "
        "FROM jsonb_to_recordset($1::jsonb) "
        "AS s(kind text, subject text, revoked_at bigint) "
        "WHERE r.kind = s.kind AND r.subject = s.subject "
        "AND r.sent_at IS NULL AND (r.kind <> 'user' OR "
        "floor(extract(epoch FROM r.revoked_at))::bigint <= s.revoked_at)";
    struct cj_db_param param;
    char *json = NULL;
    PGresult *res = NULL;
    enum cj_status rc = CJ_OK;

    *confirmed = 0;
    for (size_t i = 0; i < count; i++) {
        if (!kind_valid(rows[i].kind)) {
            return CJ_ERR_INVALID;
        }
    }
    if (count == 0) {
        goto out;
    }
    json = confirm_json(rows, count);
    if (json == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    param = CJ_DB_TEXT(json);
    rc = cj_db_query(conn, sql, &param, 1, false, &res);
    if (rc == CJ_OK) {
        *confirmed = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
    }
out:
    PQclear(res);
    free(json);
    return rc;
}

enum cj_status auth_store_revocations_count_unsent(struct cj_db_conn *conn,
                                                   int64_t *count)
{
    /* The partial index of unsent rows keeps this cheap. */
    static const char sql[] = "SELECT count(*) FROM auth.revocations "
                              "WHERE sent_at IS NULL AND expires_at > now()";
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, NULL, 0, false, &res);
    if (rc == CJ_OK && PQntuples(res) == 1) {
        *count = auth_row_int64(res, 0, 0);
    } else if (rc == CJ_OK) {
        rc = CJ_ERR_INTERNAL;
    }
    PQclear(res);
    return rc;
}

enum cj_status auth_store_revocations_delete_expired(struct cj_db_conn *conn,
                                                     long long limit,
                                                     unsigned *count)
{
    static const char sql[] =
        "DELETE FROM auth.revocations WHERE (kind, subject) IN (SELECT kind, "
        "subject FROM auth.revocations WHERE expires_at <= now() "
        "LIMIT $1::integer)";
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(auth_int_param(limit_text, sizeof(limit_text), limit))};
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc == CJ_OK) {
        *count = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
    return rc;
}

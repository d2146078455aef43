/* SQL on auth.revocations, the durable record session's cache reloads. */
#include "auth_store.h"

#include <stdlib.h>
#include <string.h>

#include "auth_store_rows.h"

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
    /* A user's later revocation supersedes an earlier one; a token or
     * session is revoked once and for good. */
    static const char sql[] =
        "INSERT INTO auth.revocations (kind, subject, user_id, revoked_at, "
        "expires_at) VALUES ($1, $2, $3::uuid, "
        "to_timestamp($4::bigint / 1000.0), to_timestamp($5::bigint / 1000.0)) "
        "ON CONFLICT (kind, subject) DO UPDATE SET "
        "revoked_at = greatest(auth.revocations.revoked_at, "
        "excluded.revoked_at), expires_at = greatest("
        "auth.revocations.expires_at, excluded.expires_at) "
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
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(after_subject == NULL || !kind_valid(after_kind)
                       ? ""
                       : kind_names[after_kind]),
        CJ_DB_TEXT(after_subject == NULL ? "" : after_subject),
        CJ_DB_TEXT(
            auth_int_param(limit_text, sizeof(limit_text), (long long)limit)),
    };
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 3, false, &res);
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

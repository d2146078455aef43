/* SQL on auth.refresh_tokens. */
#include "auth_store.h"

#include <stdlib.h>
#include <string.h>

#include "auth_store_rows.h"

/*
 * First key of the two-key advisory locks that guard refresh families
 * (pg_advisory_xact_lock(int, int)). Two-key locks never collide with the
 * one-key locks the jobs take.
 */
#define FAMILY_LOCK_CLASS 0x61757468 /* "auth" */

#define TOKEN_COLUMNS                                                          \
    "id::text, family_id::text, user_id::text, session_id, token_hash, "       \
    "(extract(epoch FROM issued_at) * 1000)::bigint, "                         \
    "(extract(epoch FROM expires_at) * 1000)::bigint, "                        \
    "(extract(epoch FROM family_expires_at) * 1000)::bigint, "                 \
    "(extract(epoch FROM used_at) * 1000)::bigint, "                           \
    "(extract(epoch FROM revoked_at) * 1000)::bigint, replaced_by::text"

/* Column after TOKEN_COLUMNS: the user's status, or its revocation time. */
#define COL_USER_STATUS     11
#define COL_USER_REVOKED_AT 11

static enum cj_status read_token(const PGresult *res, int row,
                                 struct auth_refresh_row *out)
{
    size_t hash_len = 0;
    enum cj_status rc;

    memset(out, 0, sizeof(*out));
    rc = auth_row_text(res, row, 0, out->id, sizeof(out->id));
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, 1, out->family_id, sizeof(out->family_id));
    }
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, 2, out->user_id, sizeof(out->user_id));
    }
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, 3, out->session_id,
                           sizeof(out->session_id));
    }
    if (rc == CJ_OK) {
        rc = auth_row_bytea(res, row, 4, out->token_hash,
                            sizeof(out->token_hash), &hash_len);
    }
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, 10, out->replaced_by,
                           sizeof(out->replaced_by));
    }
    if (rc != CJ_OK) {
        return rc;
    }
    out->issued_at_ms = auth_row_int64(res, row, 5);
    out->expires_at_ms = auth_row_int64(res, row, 6);
    out->family_expires_at_ms = auth_row_int64(res, row, 7);
    out->used_at_ms = auth_row_int64(res, row, 8);
    out->revoked_at_ms = auth_row_int64(res, row, 9);
    return CJ_OK;
}

/*
 * Runs a query for one token row. With user_revoked_at_ms set, it also
 * reads the user's revocation time from the column after TOKEN_COLUMNS.
 */
static enum cj_status query_one_token(struct cj_db_conn *conn, const char *sql,
                                      const struct cj_db_param *param,
                                      struct auth_refresh_row *out,
                                      int64_t *user_revoked_at_ms)
{
    PGresult *res = NULL;
    enum cj_status rc;

    rc = cj_db_query(conn, sql, param, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    if (PQntuples(res) != 1) {
        rc = CJ_ERR_NOT_FOUND;
        goto out;
    }
    rc = read_token(res, 0, out);
    if (user_revoked_at_ms != NULL) {
        *user_revoked_at_ms = auth_row_int64(res, 0, COL_USER_REVOKED_AT);
    }
out:
    PQclear(res);
    return rc;
}

/* Text forms of a token row's times; they must outlive its parameters. */
struct token_row_times {
    char issued[AUTH_INT_PARAM_SIZE];
    char expires[AUTH_INT_PARAM_SIZE];
    char family_expires[AUTH_INT_PARAM_SIZE];
};

/* Number of parameters token_row_params fills. */
#define TOKEN_ROW_PARAMS 8

/* Fills params[0..7] with a token row: id, family, user, session, hash,
 * issued, expiry and family expiry, in that order. */
static void token_row_params(const struct auth_refresh_row *row,
                             struct token_row_times *times,
                             struct cj_db_param *params)
{
    params[0] = CJ_DB_TEXT(row->id);
    params[1] = CJ_DB_TEXT(row->family_id);
    params[2] = CJ_DB_TEXT(row->user_id);
    params[3] = CJ_DB_TEXT(row->session_id);
    params[4] = CJ_DB_BIN(row->token_hash, sizeof(row->token_hash));
    params[5] = CJ_DB_TEXT(auth_int_param(times->issued, sizeof(times->issued),
                                          row->issued_at_ms));
    params[6] = CJ_DB_TEXT(auth_int_param(
        times->expires, sizeof(times->expires), row->expires_at_ms));
    params[7] = CJ_DB_TEXT(auth_int_param(times->family_expires,
                                          sizeof(times->family_expires),
                                          row->family_expires_at_ms));
}

enum cj_status auth_store_token_insert(struct cj_db_conn *conn,
                                       const struct auth_refresh_row *row)
{
    static const char sql[] =
        "INSERT INTO auth.refresh_tokens (id, family_id, user_id, "
        "session_id, token_hash, issued_at, expires_at, family_expires_at) "
        "VALUES ($1::uuid, $2::uuid, $3::uuid, nullif($4, ''), $5, "
        "to_timestamp($6::bigint / 1000.0), to_timestamp($7::bigint / 1000.0), "
        "to_timestamp($8::bigint / 1000.0))";
    struct token_row_times times;
    struct cj_db_param params[TOKEN_ROW_PARAMS];

    token_row_params(row, &times, params);
    return cj_db_query(conn, sql, params, TOKEN_ROW_PARAMS, false, NULL);
}

/*
 * The audit event is $1..$7 and the token $8..$15. Every data-modifying
 * WITH clause runs to completion whether or not the INSERT reads it, and
 * the single statement commits or rolls back as a whole.
 */
#define LOGIN_RECORD_SQL                                                       \
    "WITH audit AS (" AUTH_AUDIT_INSERT_SQL "), touched AS (UPDATE "           \
    "auth.users SET last_login_at = now() WHERE id = $10::uuid) "              \
    "INSERT INTO auth.refresh_tokens (id, family_id, user_id, session_id, "    \
    "token_hash, issued_at, expires_at, family_expires_at) VALUES ($8::uuid, " \
    "$9::uuid, $10::uuid, nullif($11, ''), $12, "                              \
    "to_timestamp($13::bigint / 1000.0), to_timestamp($14::bigint / 1000.0), " \
    "to_timestamp($15::bigint / 1000.0))"
#define LOGIN_RECORD_PARAMS (AUTH_AUDIT_PARAM_COUNT + TOKEN_ROW_PARAMS)

enum cj_status auth_store_login_record(struct cj_db_conn *conn,
                                       const struct auth_refresh_row *row,
                                       const struct auth_audit_event *audit)
{
    struct token_row_times times;
    struct cj_db_param params[LOGIN_RECORD_PARAMS];

    auth_audit_params(audit, params);
    token_row_params(row, &times, params + AUTH_AUDIT_PARAM_COUNT);
    return cj_db_query(conn, LOGIN_RECORD_SQL, params, LOGIN_RECORD_PARAMS,
                       false, NULL);
}

enum cj_status auth_store_token_find(struct cj_db_conn *conn,
                                     const unsigned char *hash,
                                     struct auth_refresh_row *out)
{
    static const char sql[] = "SELECT " TOKEN_COLUMNS
                              " FROM auth.refresh_tokens WHERE token_hash = $1";
    const struct cj_db_param params[] = {CJ_DB_BIN(hash, AUTH_TOKEN_HASH_SIZE)};

    return query_one_token(conn, sql, params, out, NULL);
}

enum cj_status auth_store_token_find_by_id(struct cj_db_conn *conn,
                                           const char *token_id,
                                           struct auth_refresh_row *out)
{
    static const char sql[] =
        "SELECT " TOKEN_COLUMNS " FROM auth.refresh_tokens WHERE id = $1::uuid";
    const struct cj_db_param params[] = {CJ_DB_TEXT(token_id)};

    return query_one_token(conn, sql, params, out, NULL);
}

enum cj_status auth_store_token_find_with_user(
    struct cj_db_conn *conn, const unsigned char *hash,
    struct auth_refresh_row *out, enum auth_user_status *user_status)
{
    /* The status column is NULL when the user row is missing. */
    static const char sql[] =
        "SELECT " TOKEN_COLUMNS ", (SELECT u.status FROM auth.users u "
        "WHERE u.id = t.user_id) FROM auth.refresh_tokens t "
        "WHERE t.token_hash = $1";
    const struct cj_db_param params[] = {CJ_DB_BIN(hash, AUTH_TOKEN_HASH_SIZE)};
    PGresult *res = NULL;
    enum cj_status rc;

    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, COL_USER_STATUS)) {
        rc = CJ_ERR_NOT_FOUND;
        goto out;
    }
    rc = read_token(res, 0, out);
    *user_status = strcmp(PQgetvalue(res, 0, COL_USER_STATUS), "active") == 0
                       ? AUTH_USER_ACTIVE
                       : AUTH_USER_DISABLED;
out:
    PQclear(res);
    return rc;
}

enum cj_status auth_store_family_lock(struct cj_db_conn *conn,
                                      const char *family_id)
{
    static const char sql[] =
        "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))";
    char lock_class[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(
            auth_int_param(lock_class, sizeof(lock_class), FAMILY_LOCK_CLASS)),
        CJ_DB_TEXT(family_id),
    };

    return cj_db_query(conn, sql, params, 2, false, NULL);
}

enum cj_status auth_store_token_get_for_update(struct cj_db_conn *conn,
                                               const char *token_id,
                                               struct auth_refresh_row *out)
{
    static const char sql[] =
        "SELECT " TOKEN_COLUMNS " FROM auth.refresh_tokens WHERE id = $1::uuid "
        "FOR UPDATE";
    const struct cj_db_param params[] = {CJ_DB_TEXT(token_id)};

    return query_one_token(conn, sql, params, out, NULL);
}

enum cj_status auth_store_token_get_for_update_with_revocation(
    struct cj_db_conn *conn, const char *token_id, struct auth_refresh_row *out,
    int64_t *user_revoked_at_ms)
{
    /* The statement starts after the caller took the family lock, so its
     * snapshot of the revocations is as fresh as a separate read's. A
     * writer that revokes the row without that lock makes it wait for the
     * row and read it again, revoked. The user's sessions_revoked_at is
     * kept, whereas cleanup deletes the `user` row of auth.revocations
     * once the access tokens it revokes have expired. Reading both keeps
     * a refresh token that missed the revocation of its row rejected.
     * greatest() skips NULLs, and the result is NULL only when neither
     * time exists. */
    static const char sql[] =
        "SELECT " TOKEN_COLUMNS ", (SELECT (extract(epoch FROM greatest("
        "u.sessions_revoked_at, (SELECT r.revoked_at FROM auth.revocations r "
        "WHERE r.kind = 'user' AND r.subject = t.user_id::text))) * 1000)"
        "::bigint FROM auth.users u WHERE u.id = t.user_id) "
        "FROM auth.refresh_tokens t WHERE t.id = $1::uuid FOR UPDATE OF t";
    const struct cj_db_param params[] = {CJ_DB_TEXT(token_id)};

    *user_revoked_at_ms = 0;
    return query_one_token(conn, sql, params, out, user_revoked_at_ms);
}

/* Runs an UPDATE or INSERT that must change exactly one row. */
static enum cj_status update_one(struct cj_db_conn *conn, const char *sql,
                                 const struct cj_db_param *params, int count)
{
    PGresult *res = NULL;
    enum cj_status rc;

    rc = cj_db_query(conn, sql, params, count, false, &res);
    if (rc == CJ_OK && strcmp(PQcmdTuples(res), "1") != 0) {
        rc = CJ_ERR_NOT_FOUND;
    }
    PQclear(res);
    return rc;
}

/*
 * The audit event is $1..$7 and the successor $8..$15. The INSERT of the
 * successor reads the UPDATEs' RETURNING rows, so the old token (or the
 * unseen successor) leaves the one-live-token index before the new row
 * enters it, and nothing is inserted when an UPDATE matched no row. The
 * replaced_by foreign key is checked at the end of the statement, after
 * the insert.
 */
#define ROTATE_AUDIT "WITH audit AS (" AUTH_AUDIT_INSERT_SQL "), "
#define ROTATE_INSERT                                                          \
    "INSERT INTO auth.refresh_tokens (id, family_id, user_id, session_id, "    \
    "token_hash, issued_at, expires_at, family_expires_at) "                   \
    "SELECT $8::uuid, $9::uuid, $10::uuid, nullif($11, ''), $12, "             \
    "to_timestamp($13::bigint / 1000.0), to_timestamp($14::bigint / 1000.0), " \
    "to_timestamp($15::bigint / 1000.0) FROM "
/* Parameters before the token id ($16) and the revoked successor ($17). */
#define ROTATE_ROW_PARAMS (AUTH_AUDIT_PARAM_COUNT + TOKEN_ROW_PARAMS)

enum cj_status auth_store_token_rotate(struct cj_db_conn *conn,
                                       const char *token_id,
                                       const char *revoked_successor_id,
                                       const struct auth_refresh_row *next,
                                       const struct auth_audit_event *audit)
{
    static const char first_use_sql[] =
        ROTATE_AUDIT "used AS (UPDATE auth.refresh_tokens SET used_at = now(), "
                     "replaced_by = $8::uuid WHERE id = $16::uuid AND "
                     "used_at IS NULL RETURNING id) " ROTATE_INSERT "used";
    static const char grace_sql[] = ROTATE_AUDIT
        "revoked AS (UPDATE auth.refresh_tokens SET revoked_at = now(), "
        "revoked_reason = 'grace_retry' WHERE id = $17::uuid AND "
        "revoked_at IS NULL RETURNING id), "
        "relinked AS (UPDATE auth.refresh_tokens SET replaced_by = $8::uuid "
        "WHERE id = $16::uuid AND used_at IS NOT NULL AND "
        "EXISTS (SELECT 1 FROM revoked) RETURNING id) " ROTATE_INSERT
        "relinked";
    struct token_row_times times;
    struct cj_db_param params[ROTATE_ROW_PARAMS + 2];

    auth_audit_params(audit, params);
    token_row_params(next, &times, params + AUTH_AUDIT_PARAM_COUNT);
    params[ROTATE_ROW_PARAMS] = CJ_DB_TEXT(token_id);
    if (revoked_successor_id == NULL) {
        return update_one(conn, first_use_sql, params, ROTATE_ROW_PARAMS + 1);
    }
    params[ROTATE_ROW_PARAMS + 1] = CJ_DB_TEXT(revoked_successor_id);
    return update_one(conn, grace_sql, params, ROTATE_ROW_PARAMS + 2);
}

/* Runs an UPDATE or DELETE and returns how many rows it touched. */
static enum cj_status change_rows(struct cj_db_conn *conn, const char *sql,
                                  const struct cj_db_param *params, int nparams,
                                  unsigned *count)
{
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, nparams, false, &res);
    if (rc == CJ_OK) {
        *count = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
    return rc;
}

enum cj_status auth_store_family_revoke(struct cj_db_conn *conn,
                                        const char *family_id,
                                        const char *reason, unsigned *count)
{
    static const char sql[] =
        "UPDATE auth.refresh_tokens SET revoked_at = now(), "
        "revoked_reason = $2 WHERE family_id = $1::uuid AND revoked_at IS NULL";
    const struct cj_db_param params[] = {CJ_DB_TEXT(family_id),
                                         CJ_DB_TEXT(reason)};

    return change_rows(conn, sql, params, 2, count);
}

enum cj_status
auth_store_user_live_families(struct cj_db_conn *conn, const char *user_id,
                              char (*families)[AUTH_UUID_TEXT_SIZE],
                              size_t limit, size_t *count)
{
    static const char sql[] =
        "SELECT DISTINCT family_id::text FROM auth.refresh_tokens "
        "WHERE user_id = $1::uuid AND used_at IS NULL AND revoked_at IS NULL "
        "ORDER BY 1 LIMIT $2::integer";
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id),
        CJ_DB_TEXT(
            auth_int_param(limit_text, sizeof(limit_text), (long long)limit)),
    };
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 2, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res) && (size_t)i < limit; i++) {
        rc = auth_row_text(res, i, 0, families[i], AUTH_UUID_TEXT_SIZE);
        if (rc != CJ_OK) {
            goto out;
        }
        *count = (size_t)i + 1;
    }
out:
    PQclear(res);
    return rc;
}

enum cj_status auth_store_user_tokens_revoke(struct cj_db_conn *conn,
                                             const char *user_id,
                                             const char *reason,
                                             unsigned *count)
{
    static const char sql[] =
        "UPDATE auth.refresh_tokens SET revoked_at = now(), "
        "revoked_reason = $2 WHERE user_id = $1::uuid AND revoked_at IS NULL";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id),
                                         CJ_DB_TEXT(reason)};

    return change_rows(conn, sql, params, 2, count);
}

enum cj_status auth_store_session_tokens_revoke(struct cj_db_conn *conn,
                                                const char *user_id,
                                                const char *session_id,
                                                const char *reason,
                                                unsigned *count)
{
    static const char sql[] =
        "UPDATE auth.refresh_tokens SET revoked_at = now(), "
        "revoked_reason = $3 WHERE user_id = $1::uuid AND session_id = $2 "
        "AND revoked_at IS NULL";
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id), CJ_DB_TEXT(session_id), CJ_DB_TEXT(reason)};

    return change_rows(conn, sql, params, 3, count);
}

enum cj_status auth_store_tokens_delete_expired(struct cj_db_conn *conn,
                                                long long limit,
                                                unsigned *count)
{
    /* An expired token can be neither used nor detected as reused, so it
     * goes; ON DELETE SET NULL clears replaced_by links that point to it. */
    static const char sql[] =
        "DELETE FROM auth.refresh_tokens WHERE id IN (SELECT id FROM "
        "auth.refresh_tokens WHERE expires_at < now() LIMIT $1::integer)";
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(auth_int_param(limit_text, sizeof(limit_text), limit))};

    return change_rows(conn, sql, params, 1, count);
}

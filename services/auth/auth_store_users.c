/* SQL on auth.users. */
#include "auth_store.h"

#include <string.h>

#include "auth_store_rows.h"

#define USER_COLUMNS                                                           \
    "id::text, username, email, password_hash, wrapped_key, kek_version, "     \
    "status, (extract(epoch FROM created_at) * 1000)::bigint, "                \
    "(extract(epoch FROM sessions_revoked_at) * 1000)::bigint, "               \
    "password_normalized"

enum user_column {
    COL_ID = 0,
    COL_USERNAME,
    COL_EMAIL,
    COL_PASSWORD_HASH,
    COL_WRAPPED_KEY,
    COL_KEK_VERSION,
    COL_STATUS,
    COL_CREATED_AT,
    COL_SESSIONS_REVOKED_AT,
    COL_PASSWORD_NORMALIZED,
};

static enum cj_status read_user(const PGresult *res, int row,
                                struct auth_user *out)
{
    enum cj_status rc;

    memset(out, 0, sizeof(*out));
    rc = auth_row_text(res, row, COL_ID, out->id, sizeof(out->id));
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, COL_USERNAME, out->username,
                           sizeof(out->username));
    }
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, COL_EMAIL, out->email, sizeof(out->email));
    }
    if (rc == CJ_OK) {
        rc = auth_row_text(res, row, COL_PASSWORD_HASH, out->password_hash,
                           sizeof(out->password_hash));
    }
    if (rc == CJ_OK) {
        rc = auth_row_bytea(res, row, COL_WRAPPED_KEY, out->wrapped_key,
                            sizeof(out->wrapped_key), &out->wrapped_key_len);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    out->kek_version = (uint32_t)auth_row_int64(res, row, COL_KEK_VERSION);
    out->status = strcmp(PQgetvalue(res, row, COL_STATUS), "active") == 0
                      ? AUTH_USER_ACTIVE
                      : AUTH_USER_DISABLED;
    out->created_at_ms = auth_row_int64(res, row, COL_CREATED_AT);
    out->sessions_revoked_at_ms =
        auth_row_int64(res, row, COL_SESSIONS_REVOKED_AT);
    out->password_normalized =
        strcmp(PQgetvalue(res, row, COL_PASSWORD_NORMALIZED), "t") == 0;
    return CJ_OK;
}

/* Loads the single user a query returns, CJ_ERR_NOT_FOUND for none. */
static enum cj_status query_one_user(struct cj_db_conn *conn, const char *sql,
                                     const char *param, struct auth_user *out)
{
    const struct cj_db_param params[] = {CJ_DB_TEXT(param)};
    PGresult *res = NULL;
    enum cj_status rc;

    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    if (PQntuples(res) != 1) {
        rc = CJ_ERR_NOT_FOUND;
        goto out;
    }
    rc = read_user(res, 0, out);
out:
    PQclear(res);
    return rc;
}

enum cj_status auth_store_user_check_names(struct cj_db_conn *conn,
                                           const char *username_norm,
                                           const char *skeleton,
                                           const char *email_norm,
                                           enum auth_name_conflict *conflict)
{
    static const char sql[] =
        "SELECT coalesce(bool_or(username_norm = $1 OR "
        "username_skeleton = $2), false)::text, "
        "coalesce(bool_or(email_norm = $3), false)::text "
        "FROM auth.users WHERE username_norm = $1 OR username_skeleton = $2 "
        "OR email_norm = $3";
    const struct cj_db_param params[] = {CJ_DB_TEXT(username_norm),
                                         CJ_DB_TEXT(skeleton),
                                         CJ_DB_TEXT(email_norm)};
    PGresult *res = NULL;
    enum cj_status rc;

    *conflict = AUTH_CONFLICT_NONE;
    rc = cj_db_query(conn, sql, params, 3, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "true") == 0) {
        *conflict = AUTH_CONFLICT_USERNAME;
    } else if (strcmp(PQgetvalue(res, 0, 1), "true") == 0) {
        *conflict = AUTH_CONFLICT_EMAIL;
    }
out:
    PQclear(res);
    return rc;
}

enum cj_status auth_store_user_insert(struct cj_db_conn *conn,
                                      const struct auth_user_new *user,
                                      enum auth_name_conflict *conflict)
{
    /* Registration always hashes the NFKC form of the password. */
    static const char sql[] =
        "INSERT INTO auth.users (id, username, username_norm, "
        "username_skeleton, email, email_norm, password_hash, wrapped_key, "
        "kek_version, password_normalized) VALUES ($1::uuid, $2, $3, $4, $5, "
        "$6, $7, $8, $9::integer, true)";
    char version[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user->id),
        CJ_DB_TEXT(user->username),
        CJ_DB_TEXT(user->username_norm),
        CJ_DB_TEXT(user->username_skeleton),
        CJ_DB_TEXT(user->email),
        CJ_DB_TEXT(user->email_norm),
        CJ_DB_TEXT(user->password_hash),
        CJ_DB_BIN(user->wrapped_key, user->wrapped_key_len),
        CJ_DB_TEXT(auth_int_param(version, sizeof(version),
                                  (long long)user->kek_version)),
    };
    enum cj_status rc;

    *conflict = AUTH_CONFLICT_NONE;
    rc = cj_db_query(conn, sql, params, 9, false, NULL);
    if (rc == CJ_ERR_EXISTS) {
        /* The primary message names the violated index. */
        *conflict = strstr(cj_db_last_error(conn), "users_email_norm_key")
                        ? AUTH_CONFLICT_EMAIL
                        : AUTH_CONFLICT_USERNAME;
    }
    return rc;
}

enum cj_status auth_store_user_find_by_login(struct cj_db_conn *conn,
                                             const char *login_norm,
                                             struct auth_user *out)
{
    /* Both indexes are unique; a name that is one user's username and
     * another's email cannot happen, since usernames hold no '@'. */
    static const char sql[] = "SELECT " USER_COLUMNS " FROM auth.users "
                              "WHERE username_norm = $1 OR email_norm = $1";

    return query_one_user(conn, sql, login_norm, out);
}

enum cj_status auth_store_user_get(struct cj_db_conn *conn, const char *user_id,
                                   struct auth_user *out)
{
    static const char sql[] =
        "SELECT " USER_COLUMNS " FROM auth.users WHERE id = $1::uuid";

    return query_one_user(conn, sql, user_id, out);
}

enum cj_status auth_store_user_exists(struct cj_db_conn *conn,
                                      const char *user_id, bool *exists)
{
    static const char sql[] = "SELECT 1 FROM auth.users WHERE id = $1::uuid";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    PGresult *res = NULL;
    enum cj_status rc = cj_db_query(conn, sql, params, 1, false, &res);

    *exists = false;
    if (rc == CJ_OK) {
        *exists = PQntuples(res) > 0;
        PQclear(res);
    }
    return rc;
}

enum cj_status auth_store_user_delete(struct cj_db_conn *conn,
                                      const char *user_id, bool *deleted)
{
    static const char sql[] =
        "DELETE FROM auth.users WHERE id = $1::uuid RETURNING 1";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    PGresult *res = NULL;
    enum cj_status rc = cj_db_query(conn, sql, params, 1, false, &res);

    *deleted = false;
    if (rc == CJ_OK) {
        *deleted = PQntuples(res) > 0;
        PQclear(res);
    }
    return rc;
}

enum cj_status auth_store_user_deletion_recorded(struct cj_db_conn *conn,
                                                 const char *user_id,
                                                 bool *recorded)
{
    static const char sql[] =
        "SELECT EXISTS (SELECT 1 FROM auth.audit_events "
        "WHERE event = 'user.deleted' AND user_id = $1::uuid) "
        "OR EXISTS (SELECT 1 FROM auth.revocations "
        "WHERE kind = 'user' AND subject = $1::uuid::text)";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    PGresult *res = NULL;
    enum cj_status rc = cj_db_query(conn, sql, params, 1, false, &res);

    *recorded = false;
    if (rc == CJ_OK) {
        *recorded = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
    }
    return rc;
}

enum cj_status auth_store_user_set_password_hash(struct cj_db_conn *conn,
                                                 const char *user_id,
                                                 const char *password_hash,
                                                 bool normalized)
{
    static const char sql[] =
        "UPDATE auth.users SET password_hash = $2, "
        "password_normalized = $3::boolean, updated_at = now() "
        "WHERE id = $1::uuid";
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id), CJ_DB_TEXT(password_hash),
        CJ_DB_TEXT(normalized ? "true" : "false")};

    return cj_db_query(conn, sql, params, 3, false, NULL);
}

enum cj_status auth_store_user_set_sessions_revoked(struct cj_db_conn *conn,
                                                    const char *user_id,
                                                    int64_t revoked_at_ms)
{
    /* Replicas with skewed clocks may record revocations out of order, so
     * the later time wins, as in auth.revocations. */
    static const char sql[] =
        "UPDATE auth.users SET sessions_revoked_at = greatest("
        "sessions_revoked_at, to_timestamp($2::bigint / 1000.0)) "
        "WHERE id = $1::uuid";
    char revoked[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id),
        CJ_DB_TEXT(auth_int_param(revoked, sizeof(revoked), revoked_at_ms)),
    };

    return cj_db_query(conn, sql, params, 2, false, NULL);
}

enum cj_status auth_store_user_replace_wrapped_key(
    struct cj_db_conn *conn, const char *user_id,
    const unsigned char *old_wrapped, size_t old_len,
    const unsigned char *new_wrapped, size_t new_len, uint32_t kek_version,
    bool *updated)
{
    static const char sql[] =
        "UPDATE auth.users SET wrapped_key = $3, kek_version = $4::integer, "
        "updated_at = now() WHERE id = $1::uuid AND wrapped_key = $2";
    char version[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id),
        CJ_DB_BIN(old_wrapped, old_len),
        CJ_DB_BIN(new_wrapped, new_len),
        CJ_DB_TEXT(
            auth_int_param(version, sizeof(version), (long long)kek_version)),
    };
    PGresult *res = NULL;
    enum cj_status rc;

    *updated = false;
    rc = cj_db_query(conn, sql, params, 4, false, &res);
    if (rc == CJ_OK) {
        *updated = strcmp(PQcmdTuples(res), "1") == 0;
    }
    PQclear(res);
    return rc;
}

enum cj_status auth_store_user_list_after(struct cj_db_conn *conn,
                                          const char *after_id,
                                          struct auth_user *out, size_t limit,
                                          size_t *count)
{
    static const char sql[] = "SELECT " USER_COLUMNS " FROM auth.users "
                              "WHERE id > coalesce(nullif($1, '')::uuid, "
                              "'00000000-0000-0000-0000-000000000000'::uuid) "
                              "ORDER BY id LIMIT $2::integer";
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(after_id),
        CJ_DB_TEXT(
            auth_int_param(limit_text, sizeof(limit_text), (long long)limit)),
    };
    PGresult *res = NULL;
    enum cj_status rc;
    int rows;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 2, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    rows = PQntuples(res);
    for (int i = 0; i < rows && (size_t)i < limit; i++) {
        rc = read_user(res, i, &out[i]);
        if (rc != CJ_OK) {
            goto out;
        }
        *count = (size_t)i + 1;
    }
out:
    PQclear(res);
    return rc;
}

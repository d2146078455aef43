/* SQL on auth.data_public, auth.data_private and auth.data_protected. */
#include "auth_store.h"

#include <stdlib.h>
#include <string.h>

#include "auth_store_rows.h"

/*
 * First key of the two-key advisory lock on one class of one user's data.
 * The class number is added to it, giving "dat1" to "dat3", and the second
 * key is hashtext(user id). These first keys differ from the refresh
 * family lock's, and PostgreSQL keeps two-key advisory locks apart from
 * the one-key locks that the jobs take.
 */
#define DATA_LOCK_CLASS_BASE 0x64617430 /* "dat0" */

void auth_data_fields_free(struct auth_data_field *fields, size_t count)
{
    if (fields == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(fields[i].name);
        free(fields[i].value);
    }
    free(fields);
}

void auth_sealed_fields_free(struct auth_sealed_field *fields, size_t count)
{
    if (fields == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(fields[i].name);
        free(fields[i].nonce);
        free(fields[i].ciphertext);
    }
    free(fields);
}

enum user_public_column {
    COL_USERNAME = 0,
    COL_EMAIL,
    COL_CREATED_AT,
    COL_STATUS,
    COL_FIELD,
    COL_VALUE,
};

enum cj_status auth_store_user_public_get(struct cj_db_conn *conn,
                                          const char *user_id,
                                          struct auth_user_public *out)
{
    /* The LEFT JOIN returns one row of NULL fields for a user without
     * public data, and no row for an unknown user. */
    static const char sql[] =
        "SELECT u.username, u.email, "
        "(extract(epoch FROM u.created_at) * 1000)::bigint, u.status, "
        "d.field, d.value FROM auth.users u "
        "LEFT JOIN auth.data_public d ON d.user_id = u.id "
        "WHERE u.id = $1::uuid ORDER BY d.field";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    struct auth_data_field *fields = NULL;
    PGresult *res = NULL;
    size_t rows = 0;
    size_t count = 0;
    enum cj_status rc;

    memset(out, 0, sizeof(*out));
    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    rows = (size_t)PQntuples(res);
    if (rows == 0) {
        rc = CJ_ERR_NOT_FOUND;
        goto out;
    }
    rc = auth_row_text(res, 0, COL_USERNAME, out->username,
                       sizeof(out->username));
    if (rc == CJ_OK) {
        rc = auth_row_text(res, 0, COL_EMAIL, out->email, sizeof(out->email));
    }
    if (rc != CJ_OK) {
        goto out;
    }
    out->created_at_ms = auth_row_int64(res, 0, COL_CREATED_AT);
    out->status = strcmp(PQgetvalue(res, 0, COL_STATUS), "active") == 0
                      ? AUTH_USER_ACTIVE
                      : AUTH_USER_DISABLED;
    fields = calloc(rows, sizeof(*fields));
    if (fields == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < rows; i++) {
        if (PQgetisnull(res, (int)i, COL_FIELD)) {
            continue;
        }
        fields[count].name = strdup(PQgetvalue(res, (int)i, COL_FIELD));
        fields[count].value = strdup(PQgetvalue(res, (int)i, COL_VALUE));
        count++;
        if (fields[count - 1].name == NULL || fields[count - 1].value == NULL) {
            rc = CJ_ERR_NOMEM;
            goto out;
        }
    }
    out->fields = fields;
    out->count = count;
    fields = NULL;
out:
    auth_data_fields_free(fields, count);
    PQclear(res);
    return rc;
}

enum cj_status auth_store_public_get(struct cj_db_conn *conn,
                                     const char *user_id,
                                     struct auth_data_field **out,
                                     size_t *count)
{
    static const char sql[] = "SELECT field, value FROM auth.data_public "
                              "WHERE user_id = $1::uuid ORDER BY field";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    struct auth_data_field *fields = NULL;
    PGresult *res = NULL;
    size_t rows = 0;
    enum cj_status rc;

    *out = NULL;
    *count = 0;
    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    rows = (size_t)PQntuples(res);
    fields = calloc(rows > 0 ? rows : 1, sizeof(*fields));
    if (fields == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < rows; i++) {
        fields[i].name = strdup(PQgetvalue(res, (int)i, 0));
        fields[i].value = strdup(PQgetvalue(res, (int)i, 1));
        if (fields[i].name == NULL || fields[i].value == NULL) {
            rc = CJ_ERR_NOMEM;
            goto out;
        }
    }
    *out = fields;
    *count = rows;
    fields = NULL;
out:
    auth_data_fields_free(fields, rows);
    PQclear(res);
    return rc;
}

enum cj_status auth_store_public_put(struct cj_db_conn *conn,
                                     const char *user_id, const char *field,
                                     const char *value)
{
    static const char upsert[] =
        "INSERT INTO auth.data_public (user_id, field, value) "
        "VALUES ($1::uuid, $2, $3) ON CONFLICT (user_id, field) "
        "DO UPDATE SET value = excluded.value, updated_at = now()";
    static const char delete[] = "DELETE FROM auth.data_public "
                                 "WHERE user_id = $1::uuid AND field = $2";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id), CJ_DB_TEXT(field),
                                         CJ_DB_TEXT(value)};

    if (value == NULL) {
        return cj_db_query(conn, delete, params, 2, false, NULL);
    }
    return cj_db_query(conn, upsert, params, 3, false, NULL);
}

enum cj_status auth_store_sealed_get(struct cj_db_conn *conn,
                                     enum auth_data_class cls,
                                     const char *user_id,
                                     struct auth_sealed_field **out,
                                     size_t *count)
{
    static const char private_sql[] =
        "SELECT field, nonce, ciphertext FROM auth.data_private "
        "WHERE user_id = $1::uuid ORDER BY field";
    static const char protected_sql[] =
        "SELECT field, nonce, ciphertext FROM auth.data_protected "
        "WHERE user_id = $1::uuid ORDER BY field";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    struct auth_sealed_field *fields = NULL;
    PGresult *res = NULL;
    size_t rows = 0;
    enum cj_status rc;

    *out = NULL;
    *count = 0;
    if (cls != AUTH_DATA_PRIVATE && cls != AUTH_DATA_PROTECTED) {
        return CJ_ERR_INVALID;
    }
    rc = cj_db_query(conn,
                     cls == AUTH_DATA_PRIVATE ? private_sql : protected_sql,
                     params, 1, false, &res);
    if (rc != CJ_OK) {
        goto out;
    }
    rows = (size_t)PQntuples(res);
    fields = calloc(rows > 0 ? rows : 1, sizeof(*fields));
    if (fields == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < rows && rc == CJ_OK; i++) {
        fields[i].name = strdup(PQgetvalue(res, (int)i, 0));
        if (fields[i].name == NULL) {
            rc = CJ_ERR_NOMEM;
            break;
        }
        rc = auth_row_bytea_dup(res, (int)i, 1, &fields[i].nonce,
                                &fields[i].nonce_len);
        if (rc == CJ_OK) {
            rc = auth_row_bytea_dup(res, (int)i, 2, &fields[i].ciphertext,
                                    &fields[i].ciphertext_len);
        }
    }
    if (rc != CJ_OK) {
        goto out;
    }
    *out = fields;
    *count = rows;
    fields = NULL;
out:
    auth_sealed_fields_free(fields, rows);
    PQclear(res);
    return rc;
}

enum cj_status
auth_store_sealed_put(struct cj_db_conn *conn, enum auth_data_class cls,
                      const char *user_id, const char *field,
                      const unsigned char *nonce, size_t nonce_len,
                      const unsigned char *ciphertext, size_t ciphertext_len)
{
    static const char private_upsert[] =
        "INSERT INTO auth.data_private (user_id, field, nonce, ciphertext) "
        "VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (user_id, field) "
        "DO UPDATE SET nonce = excluded.nonce, "
        "ciphertext = excluded.ciphertext, updated_at = now()";
    static const char protected_upsert[] =
        "INSERT INTO auth.data_protected (user_id, field, nonce, ciphertext) "
        "VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (user_id, field) "
        "DO UPDATE SET nonce = excluded.nonce, "
        "ciphertext = excluded.ciphertext, updated_at = now()";
    static const char private_delete[] =
        "DELETE FROM auth.data_private WHERE user_id = $1::uuid AND field = $2";
    static const char protected_delete[] = "DELETE FROM auth.data_protected "
                                           "WHERE user_id = $1::uuid AND "
                                           "field = $2";
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id),
        CJ_DB_TEXT(field),
        CJ_DB_BIN(nonce, nonce_len),
        CJ_DB_BIN(ciphertext, ciphertext_len),
    };
    bool is_private = cls == AUTH_DATA_PRIVATE;

    if (cls != AUTH_DATA_PRIVATE && cls != AUTH_DATA_PROTECTED) {
        return CJ_ERR_INVALID;
    }
    if (nonce == NULL) {
        return cj_db_query(conn, is_private ? private_delete : protected_delete,
                           params, 2, false, NULL);
    }
    return cj_db_query(conn, is_private ? private_upsert : protected_upsert,
                       params, 4, false, NULL);
}

enum cj_status auth_store_data_lock(struct cj_db_conn *conn,
                                    enum auth_data_class cls,
                                    const char *user_id)
{
    /*
     * An advisory lock rather than SELECT ... FOR UPDATE on the user's row.
     * That row lock would also block the PUTs of the user's other classes
     * and every UPDATE of the row, such as a password rehash, a logout of
     * all devices or a key rewrap. This lock covers one class of one user.
     * Two users whose ids have the same hashtext value only wait for each
     * other.
     */
    static const char sql[] =
        "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))";
    char lock_class[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(auth_int_param(lock_class, sizeof(lock_class),
                                  DATA_LOCK_CLASS_BASE + (long long)cls)),
        CJ_DB_TEXT(user_id),
    };

    if (cls != AUTH_DATA_PUBLIC && cls != AUTH_DATA_PRIVATE &&
        cls != AUTH_DATA_PROTECTED) {
        return CJ_ERR_INVALID;
    }
    return cj_db_query(conn, sql, params, 2, false, NULL);
}

enum cj_status auth_store_data_count(struct cj_db_conn *conn,
                                     enum auth_data_class cls,
                                     const char *user_id, long long *count)
{
    static const char public_sql[] =
        "SELECT count(*) FROM auth.data_public WHERE user_id = $1::uuid";
    static const char private_sql[] =
        "SELECT count(*) FROM auth.data_private WHERE user_id = $1::uuid";
    static const char protected_sql[] =
        "SELECT count(*) FROM auth.data_protected WHERE user_id = $1::uuid";
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    const char *sql = cls == AUTH_DATA_PUBLIC    ? public_sql
                      : cls == AUTH_DATA_PRIVATE ? private_sql
                                                 : protected_sql;
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 1, false, &res);
    if (rc == CJ_OK) {
        *count = auth_row_int64(res, 0, 0);
    }
    PQclear(res);
    return rc;
}

/*
 * The SQL of cerrojo-kms. Every statement is parameterized; times travel
 * as Unix seconds; bytea is read in hex text form and unescaped here.
 */
#include "kms_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char *const state_names[] = {
    [KMS_STATE_NEXT] = "next",           [KMS_STATE_ACTIVE] = "active",
    [KMS_STATE_RETIRED] = "retired",     [KMS_STATE_PREVIOUS] = "previous",
    [KMS_STATE_DESTROYED] = "destroyed",
};

const char *kms_state_name(enum kms_state state)
{
    if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[state];
}

bool kms_state_parse(const char *name, enum kms_state *out)
{
    for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum kms_state)i;
            return true;
        }
    }
    return false;
}

/* Formats an integer parameter into buf (at least 24 bytes). */
static const char *int_text(char *buf, size_t size, int64_t v)
{
    snprintf(buf, size, "%" PRId64, v);
    return buf;
}

static int64_t get_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Unescapes a hex bytea column into blob; CJ_ERR_NOMEM on failure. */
static enum cj_status get_blob(const PGresult *res, int row, int col,
                               struct kms_blob *blob)
{
    size_t len = 0;
    unsigned char *raw =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &len);

    if (raw == NULL)
        return CJ_ERR_NOMEM;
    blob->bytes = malloc(len > 0 ? len : 1);
    if (blob->bytes == NULL) {
        sodium_memzero(raw, len);
        PQfreemem(raw);
        return CJ_ERR_NOMEM;
    }
    memcpy(blob->bytes, raw, len);
    blob->len = len;
    sodium_memzero(raw, len);
    PQfreemem(raw);
    return CJ_OK;
}

/* Copies a fixed-length bytea column; CJ_ERR_INTERNAL on another length. */
static enum cj_status get_fixed(const PGresult *res, int row, int col,
                                unsigned char *out, size_t want)
{
    struct kms_blob blob = {0};
    enum cj_status st = get_blob(res, row, col, &blob);

    if (st == CJ_OK && blob.len != want)
        st = CJ_ERR_INTERNAL;
    if (st == CJ_OK)
        memcpy(out, blob.bytes, want);
    free(blob.bytes);
    return st;
}

static void blob_free(struct kms_blob *blob)
{
    if (blob->bytes != NULL)
        sodium_memzero(blob->bytes, blob->len);
    free(blob->bytes);
    blob->bytes = NULL;
    blob->len = 0;
}

static bool get_state(const PGresult *res, int row, int col,
                      enum kms_state *out)
{
    return kms_state_parse(PQgetvalue(res, row, col), out);
}

static bool copy_text(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);
    if (len >= size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

static enum cj_status load_keks(struct cj_db_conn *conn,
                                struct kms_key_rows *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "SELECT version, state, extract(epoch FROM retired_at)::bigint, "
        "wrapped_key FROM kms.key_encryption_keys "
        "WHERE state <> 'destroyed' ORDER BY version DESC",
        NULL, 0, false, &res);
    if (st != CJ_OK)
        return st;
    int n = PQntuples(res);
    out->keks = calloc((size_t)n + 1, sizeof(*out->keks));
    st = out->keks == NULL ? CJ_ERR_NOMEM : CJ_OK;
    for (int i = 0; st == CJ_OK && i < n; i++) {
        struct kms_kek_row *row = &out->keks[i];
        out->n_keks++;
        row->version = (uint32_t)get_int(res, i, 0);
        row->retired_at = get_int(res, i, 2);
        if (!get_state(res, i, 1, &row->state))
            st = CJ_ERR_INTERNAL;
        else
            st = get_blob(res, i, 3, &row->wrapped);
    }
    PQclear(res);
    return st;
}

static enum cj_status load_signing(struct cj_db_conn *conn,
                                   struct kms_key_rows *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "SELECT kid, algorithm, state, "
        "extract(epoch FROM published_at)::bigint, "
        "extract(epoch FROM activated_at)::bigint, "
        "extract(epoch FROM retired_at)::bigint, "
        "ceil(extract(epoch FROM last_token_expires_at))::bigint, "
        "public_jwk, wrapped_key FROM kms.signing_keys "
        "WHERE state <> 'destroyed' ORDER BY published_at DESC, kid",
        NULL, 0, false, &res);
    if (st != CJ_OK)
        return st;
    int n = PQntuples(res);
    out->signing = calloc((size_t)n + 1, sizeof(*out->signing));
    st = out->signing == NULL ? CJ_ERR_NOMEM : CJ_OK;
    for (int i = 0; st == CJ_OK && i < n; i++) {
        struct kms_signing_row *row = &out->signing[i];
        out->n_signing++;
        row->published_at = get_int(res, i, 3);
        row->activated_at = get_int(res, i, 4);
        row->retired_at = get_int(res, i, 5);
        row->last_token_expires_at = get_int(res, i, 6);
        row->public_jwk = strdup(PQgetvalue(res, i, 7));
        if (!copy_text(row->kid, sizeof(row->kid), PQgetvalue(res, i, 0)) ||
            !copy_text(row->algorithm, sizeof(row->algorithm),
                       PQgetvalue(res, i, 1)) ||
            !get_state(res, i, 2, &row->state))
            st = CJ_ERR_INTERNAL;
        else if (row->public_jwk == NULL)
            st = CJ_ERR_NOMEM;
        else
            st = get_blob(res, i, 8, &row->wrapped);
    }
    PQclear(res);
    return st;
}

/* Parses "{2,1,3}" (a Postgres integer array in text form). */
static bool parse_aead_ids(const char *text, struct kms_hpke_row *row)
{
    const char *p = text;

    if (*p++ != '{')
        return false;
    row->n_aead_ids = 0;
    while (*p != '}' && *p != '\0') {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 3 || row->n_aead_ids == KMS_HPKE_AEADS_MAX)
            return false;
        row->aead_ids[row->n_aead_ids++] = (uint16_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return *p == '}' && row->n_aead_ids > 0;
}

static enum cj_status load_hpke(struct cj_db_conn *conn,
                                struct kms_key_rows *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "SELECT id, key_id, kem_id, kdf_id, aead_ids, state, "
        "extract(epoch FROM created_at)::bigint, "
        "extract(epoch FROM accept_until)::bigint, "
        "extract(epoch FROM destroy_after)::bigint, public_key, wrapped_key "
        "FROM kms.hpke_keys WHERE state <> 'destroyed' ORDER BY id DESC",
        NULL, 0, false, &res);
    if (st != CJ_OK)
        return st;
    int n = PQntuples(res);
    out->hpke = calloc((size_t)n + 1, sizeof(*out->hpke));
    st = out->hpke == NULL ? CJ_ERR_NOMEM : CJ_OK;
    for (int i = 0; st == CJ_OK && i < n; i++) {
        struct kms_hpke_row *row = &out->hpke[i];
        out->n_hpke++;
        row->id = get_int(res, i, 0);
        row->key_id = (uint8_t)get_int(res, i, 1);
        row->kem_id = (uint16_t)get_int(res, i, 2);
        row->kdf_id = (uint16_t)get_int(res, i, 3);
        row->created_at = get_int(res, i, 6);
        row->accept_until = get_int(res, i, 7);
        row->destroy_after = get_int(res, i, 8);
        if (!parse_aead_ids(PQgetvalue(res, i, 4), row) ||
            !get_state(res, i, 5, &row->state))
            st = CJ_ERR_INTERNAL;
        else
            st = get_fixed(res, i, 9, row->public_key, KMS_HPKE_PK_BYTES);
        if (st == CJ_OK)
            st = get_blob(res, i, 10, &row->wrapped);
    }
    PQclear(res);
    return st;
}

static enum cj_status load_signers(struct cj_db_conn *conn,
                                   struct kms_key_rows *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "SELECT fingerprint, state, extract(epoch FROM created_at)::bigint, "
        "public_key, wrapped_key FROM kms.key_list_signers "
        "WHERE state <> 'destroyed' ORDER BY id DESC",
        NULL, 0, false, &res);
    if (st != CJ_OK)
        return st;
    int n = PQntuples(res);
    out->signers = calloc((size_t)n + 1, sizeof(*out->signers));
    st = out->signers == NULL ? CJ_ERR_NOMEM : CJ_OK;
    for (int i = 0; st == CJ_OK && i < n; i++) {
        struct kms_signer_row *row = &out->signers[i];
        out->n_signers++;
        row->created_at = get_int(res, i, 2);
        if (!copy_text(row->fingerprint, sizeof(row->fingerprint),
                       PQgetvalue(res, i, 0)) ||
            !get_state(res, i, 1, &row->state))
            st = CJ_ERR_INTERNAL;
        else
            st = get_fixed(res, i, 3, row->public_key, sizeof(row->public_key));
        if (st == CJ_OK)
            st = get_blob(res, i, 4, &row->wrapped);
    }
    PQclear(res);
    return st;
}

enum cj_status kms_store_load(struct cj_db_conn *conn, struct kms_key_rows *out)
{
    enum cj_status st;

    memset(out, 0, sizeof(*out));
    st = load_keks(conn, out);
    if (st == CJ_OK)
        st = load_signing(conn, out);
    if (st == CJ_OK)
        st = load_hpke(conn, out);
    if (st == CJ_OK)
        st = load_signers(conn, out);
    if (st != CJ_OK)
        kms_key_rows_free(out);
    return st;
}

void kms_key_rows_free(struct kms_key_rows *rows)
{
    for (size_t i = 0; i < rows->n_keks; i++)
        blob_free(&rows->keks[i].wrapped);
    for (size_t i = 0; i < rows->n_signing; i++) {
        blob_free(&rows->signing[i].wrapped);
        free(rows->signing[i].public_jwk);
    }
    for (size_t i = 0; i < rows->n_hpke; i++)
        blob_free(&rows->hpke[i].wrapped);
    for (size_t i = 0; i < rows->n_signers; i++)
        blob_free(&rows->signers[i].wrapped);
    free(rows->keks);
    free(rows->signing);
    free(rows->hpke);
    free(rows->signers);
    memset(rows, 0, sizeof(*rows));
}

enum cj_status kms_store_lock_keys(struct cj_db_conn *conn)
{
    char key[24];
    const struct cj_db_param params[] = {CJ_DB_TEXT(
        int_text(key, sizeof(key), cj_db_lock_key(KMS_STORE_LOCK_NAME)))};

    return cj_db_query(conn, "SELECT pg_advisory_xact_lock($1::bigint)", params,
                       1, false, NULL);
}

/* Runs a query that returns one integer in its first row and column. */
static enum cj_status query_int(struct cj_db_conn *conn, const char *sql,
                                const struct cj_db_param *params, int n,
                                int64_t *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(conn, sql, params, n, false, &res);

    if (st != CJ_OK)
        return st;
    if (PQntuples(res) < 1)
        st = CJ_ERR_NOT_FOUND;
    else
        *out = get_int(res, 0, 0);
    PQclear(res);
    return st;
}

/* Runs a statement and returns the number of rows it touched. */
static enum cj_status exec_count(struct cj_db_conn *conn, const char *sql,
                                 const struct cj_db_param *params, int n,
                                 unsigned *count)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(conn, sql, params, n, false, &res);

    if (st != CJ_OK)
        return st;
    if (count != NULL)
        *count = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return CJ_OK;
}

enum cj_status kms_store_now(struct cj_db_conn *conn, int64_t *now)
{
    return query_int(conn, "SELECT extract(epoch FROM now())::bigint", NULL, 0,
                     now);
}

enum cj_status kms_store_missing(struct cj_db_conn *conn,
                                 struct kms_missing *out)
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "SELECT "
        "NOT EXISTS (SELECT 1 FROM kms.key_encryption_keys "
        "WHERE state = 'active'), "
        "NOT EXISTS (SELECT 1 FROM kms.signing_keys WHERE state = 'active'), "
        "NOT EXISTS (SELECT 1 FROM kms.hpke_keys WHERE state = 'active'), "
        "NOT EXISTS (SELECT 1 FROM kms.key_list_signers "
        "WHERE state = 'active')",
        NULL, 0, false, &res);

    if (st != CJ_OK)
        return st;
    out->kek = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    out->signing = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    out->hpke = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    out->signer = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    PQclear(res);
    return CJ_OK;
}

enum cj_status kms_store_max_kek_version(struct cj_db_conn *conn,
                                         uint32_t *version)
{
    int64_t v = 0;
    enum cj_status st = query_int(
        conn, "SELECT coalesce(max(version), 0) FROM kms.key_encryption_keys",
        NULL, 0, &v);

    *version = (uint32_t)v;
    return st;
}

enum cj_status kms_store_insert_kek(struct cj_db_conn *conn, uint32_t version,
                                    const unsigned char *wrapped, size_t len)
{
    char v[24];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(int_text(v, sizeof(v), version)),
        CJ_DB_BIN(wrapped, len),
    };
    enum cj_status st =
        cj_db_query(conn,
                    "UPDATE kms.key_encryption_keys SET state = 'retired', "
                    "retired_at = now() WHERE state = 'active'",
                    NULL, 0, false, NULL);

    if (st != CJ_OK)
        return st;
    return cj_db_query(conn,
                       "INSERT INTO kms.key_encryption_keys "
                       "(version, state, wrapped_key) "
                       "VALUES ($1::integer, 'active', $2)",
                       params, 2, false, NULL);
}

/* Runs a statement whose parameters are a user id and a KEK version. */
static enum cj_status user_version_query(struct cj_db_conn *conn,
                                         const char *sql, const char *user_id,
                                         uint32_t kek_version)
{
    char v[24];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(user_id),
        CJ_DB_TEXT(int_text(v, sizeof(v), kek_version)),
    };

    return cj_db_query(conn, sql, params, 2, false, NULL);
}

enum cj_status kms_store_note_data_key(struct cj_db_conn *conn,
                                       const char *user_id,
                                       uint32_t kek_version)
{
    return user_version_query(
        conn,
        "INSERT INTO kms.data_key_versions (user_id, kek_version) "
        "VALUES ($1, $2::integer) "
        "ON CONFLICT (user_id, kek_version) DO NOTHING",
        user_id, kek_version);
}

enum cj_status kms_store_confirm_data_key(struct cj_db_conn *conn,
                                          const char *user_id,
                                          uint32_t kek_version)
{
    return user_version_query(
        conn,
        "WITH older AS (DELETE FROM kms.data_key_versions "
        "WHERE user_id = $1 AND kek_version < $2::integer) "
        "INSERT INTO kms.data_key_versions (user_id, kek_version) "
        "VALUES ($1, $2::integer) "
        "ON CONFLICT (user_id, kek_version) DO NOTHING",
        user_id, kek_version);
}

enum cj_status kms_store_forget_data_key(struct cj_db_conn *conn,
                                         const char *user_id, bool *forgotten)
{
    const struct cj_db_param params[] = {CJ_DB_TEXT(user_id)};
    unsigned count = 0;
    enum cj_status st =
        exec_count(conn, "DELETE FROM kms.data_key_versions WHERE user_id = $1",
                   params, 1, &count);

    *forgotten = st == CJ_OK && count > 0;
    return st;
}

void kms_store_free_user_ids(char **user_ids, size_t count)
{
    if (user_ids == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(user_ids[i]);
    free(user_ids);
}

/* Copies every first column of res into a new array of new strings. */
static enum cj_status copy_user_ids(const PGresult *res, char ***user_ids,
                                    size_t *count)
{
    size_t n = (size_t)PQntuples(res);
    char **ids = calloc(n > 0 ? n : 1, sizeof(*ids));

    if (ids == NULL)
        return CJ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        ids[i] = strdup(PQgetvalue(res, (int)i, 0));
        if (ids[i] == NULL) {
            kms_store_free_user_ids(ids, i);
            return CJ_ERR_NOMEM;
        }
    }
    *user_ids = ids;
    *count = n;
    return CJ_OK;
}

enum cj_status kms_store_list_old_data_keys(struct cj_db_conn *conn,
                                            const char *after_user_id,
                                            int64_t min_age_s, unsigned max,
                                            char ***user_ids, size_t *count)
{
    char age[24];
    char limit[24];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(after_user_id),
        CJ_DB_TEXT(int_text(age, sizeof(age), min_age_s)),
        CJ_DB_TEXT(int_text(limit, sizeof(limit), max)),
    };
    PGresult *res = NULL;
    enum cj_status st;

    *user_ids = NULL;
    *count = 0;
    /* COLLATE "C" keeps the order byte order, as the cursor expects. */
    st = cj_db_query(
        conn,
        "SELECT d.user_id FROM kms.data_key_versions d "
        "JOIN kms.key_encryption_keys k ON k.version = d.kek_version "
        "WHERE k.state <> 'active' AND d.user_id COLLATE \"C\" > $1 "
        "AND d.updated_at <= now() - make_interval(secs => $2::bigint) "
        "GROUP BY d.user_id "
        "ORDER BY d.user_id COLLATE \"C\" LIMIT $3::integer",
        params, 3, false, &res);
    if (st != CJ_OK)
        return st;
    st = copy_user_ids(res, user_ids, count);
    PQclear(res);
    return st;
}

enum cj_status kms_store_insert_signing(struct cj_db_conn *conn,
                                        const char *kid, const char *algorithm,
                                        enum kms_state state,
                                        const char *public_jwk,
                                        const unsigned char *wrapped,
                                        size_t len)
{
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(kid),
        CJ_DB_TEXT(algorithm),
        CJ_DB_TEXT(kms_state_name(state)),
        CJ_DB_TEXT(public_jwk),
        CJ_DB_BIN(wrapped, len),
    };

    if (state != KMS_STATE_NEXT && state != KMS_STATE_ACTIVE)
        return CJ_ERR_INVALID;
    return cj_db_query(
        conn,
        "INSERT INTO kms.signing_keys (kid, algorithm, state, activated_at, "
        "public_jwk, wrapped_key) VALUES ($1, $2, $3, "
        "CASE WHEN $3 = 'active' THEN now() END, $4, $5)",
        params, 5, false, NULL);
}

static enum cj_status query_one_kid(struct cj_db_conn *conn, const char *sql,
                                    char kid[KMS_KID_MAX + 1]);

enum cj_status kms_store_promote_signing(struct cj_db_conn *conn,
                                         int64_t min_published_s,
                                         char kid[KMS_KID_MAX + 1],
                                         char previous[KMS_KID_MAX + 1],
                                         int64_t *ready_at)
{
    PGresult *res = NULL;
    char age[24];
    enum cj_status st =
        cj_db_query(conn,
                    "SELECT kid, extract(epoch FROM published_at)::bigint FROM "
                    "kms.signing_keys WHERE state = 'next' FOR UPDATE",
                    NULL, 0, false, &res);

    if (st != CJ_OK)
        return st;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return CJ_ERR_NOT_FOUND;
    }
    bool copied = copy_text(kid, KMS_KID_MAX + 1, PQgetvalue(res, 0, 0));
    *ready_at = get_int(res, 0, 1) + min_published_s;
    PQclear(res);
    if (!copied)
        return CJ_ERR_INTERNAL;

    const struct cj_db_param params[] = {
        CJ_DB_TEXT(kid),
        CJ_DB_TEXT(int_text(age, sizeof(age), min_published_s)),
    };
    unsigned ready = 0;
    st = exec_count(conn,
                    "SELECT 1 FROM kms.signing_keys WHERE kid = $1 AND "
                    "published_at <= now() - make_interval(secs => $2::bigint)",
                    params, 2, &ready);
    if (st != CJ_OK)
        return st;
    if (ready == 0)
        return CJ_ERR_PRECONDITION;
    /* No active key is not an error here: the promotion then fills the
     * gap, and *previous stays empty. */
    previous[0] = '\0';
    st = query_one_kid(conn,
                       "UPDATE kms.signing_keys SET state = 'retired', "
                       "retired_at = now() WHERE state = 'active' "
                       "RETURNING kid",
                       previous);
    if (st != CJ_OK && st != CJ_ERR_NOT_FOUND)
        return st;
    return cj_db_query(conn,
                       "UPDATE kms.signing_keys SET state = 'active', "
                       "activated_at = now() WHERE kid = $1",
                       params, 1, false, NULL);
}

enum cj_status kms_store_destroy_signing_now(struct cj_db_conn *conn,
                                             const char *kid,
                                             enum kms_state *previous)
{
    const struct cj_db_param params[] = {CJ_DB_TEXT(kid)};
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn, "SELECT state FROM kms.signing_keys WHERE kid = $1 FOR UPDATE",
        params, 1, false, &res);

    *previous = KMS_STATE_DESTROYED;
    if (st != CJ_OK)
        return st;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return CJ_ERR_NOT_FOUND;
    }
    if (!kms_state_parse(PQgetvalue(res, 0, 0), previous))
        st = CJ_ERR_INTERNAL;
    PQclear(res);
    if (st != CJ_OK || *previous == KMS_STATE_DESTROYED)
        return st;
    return cj_db_query(conn,
                       "UPDATE kms.signing_keys SET state = 'destroyed', "
                       "retired_at = coalesce(retired_at, now()), "
                       "destroyed_at = now(), wrapped_key = NULL "
                       "WHERE kid = $1",
                       params, 1, false, NULL);
}

/* Runs a statement without parameters that returns one signing key id;
 * CJ_ERR_NOT_FOUND when it returns no row. */
static enum cj_status query_one_kid(struct cj_db_conn *conn, const char *sql,
                                    char kid[KMS_KID_MAX + 1])
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(conn, sql, NULL, 0, false, &res);

    if (st != CJ_OK)
        return st;
    if (PQntuples(res) != 1)
        st = CJ_ERR_NOT_FOUND;
    else if (!copy_text(kid, KMS_KID_MAX + 1, PQgetvalue(res, 0, 0)))
        st = CJ_ERR_INTERNAL;
    PQclear(res);
    return st;
}

enum cj_status kms_store_active_signing_kid(struct cj_db_conn *conn,
                                            char kid[KMS_KID_MAX + 1])
{
    return query_one_kid(
        conn, "SELECT kid FROM kms.signing_keys WHERE state = 'active'", kid);
}

enum cj_status kms_store_activate_next_signing(struct cj_db_conn *conn,
                                               char kid[KMS_KID_MAX + 1])
{
    return query_one_kid(
        conn,
        "UPDATE kms.signing_keys SET state = 'active', activated_at = now() "
        "WHERE state = 'next' RETURNING kid",
        kid);
}

enum cj_status kms_store_retire_next_signing(struct cj_db_conn *conn,
                                             char kid[KMS_KID_MAX + 1])
{
    return query_one_kid(
        conn,
        "UPDATE kms.signing_keys SET state = 'retired', retired_at = now() "
        "WHERE state = 'next' RETURNING kid",
        kid);
}

enum cj_status kms_store_note_token_expiry(struct cj_db_conn *conn,
                                           const char *kid, int64_t exp)
{
    char e[24];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(kid),
        CJ_DB_TEXT(int_text(e, sizeof(e), exp)),
    };

    return cj_db_query(
        conn,
        "UPDATE kms.signing_keys SET last_token_expires_at = "
        "greatest(last_token_expires_at, to_timestamp($2::bigint)) "
        "WHERE kid = $1",
        params, 2, false, NULL);
}

/* Picks the key id after the newest key's that no live key uses. */
static enum cj_status next_hpke_key_id(struct cj_db_conn *conn, uint8_t *out)
{
    int64_t id = 0;
    enum cj_status st = query_int(
        conn,
        "WITH newest AS (SELECT coalesce((SELECT key_id FROM kms.hpke_keys "
        "ORDER BY id DESC LIMIT 1), -1) AS k) "
        "SELECT (newest.k + 1 + s.i) % 256 FROM newest, "
        "generate_series(0, 255) AS s(i) WHERE NOT EXISTS (SELECT 1 FROM "
        "kms.hpke_keys h WHERE h.state <> 'destroyed' AND "
        "h.key_id = (newest.k + 1 + s.i) % 256) ORDER BY s.i LIMIT 1",
        NULL, 0, &id);

    if (st == CJ_ERR_NOT_FOUND)
        return CJ_ERR_EXISTS;
    *out = (uint8_t)id;
    return st;
}

enum cj_status
kms_store_insert_hpke(struct cj_db_conn *conn, const uint16_t *aead_ids,
                      size_t n_aead_ids, const unsigned char *public_key,
                      int64_t accept_s, int64_t destroy_s, uint8_t *key_id,
                      const unsigned char *wrapped, size_t len)
{
    char aeads[32] = "{";
    char accept[24];
    char destroy[24];
    char id[24];
    enum cj_status st = next_hpke_key_id(conn, key_id);

    if (st != CJ_OK)
        return st;
    for (size_t i = 0; i < n_aead_ids && i < KMS_HPKE_AEADS_MAX; i++) {
        size_t used = strlen(aeads);
        snprintf(aeads + used, sizeof(aeads) - used, "%s%u", i ? "," : "",
                 (unsigned)aead_ids[i]);
    }
    strncat(aeads, "}", sizeof(aeads) - strlen(aeads) - 1);

    const struct cj_db_param retire[] = {
        CJ_DB_TEXT(int_text(accept, sizeof(accept), accept_s)),
        CJ_DB_TEXT(int_text(destroy, sizeof(destroy), destroy_s)),
    };
    st = cj_db_query(
        conn,
        "UPDATE kms.hpke_keys SET state = 'retired', retired_at = now(), "
        "accept_until = now() + make_interval(secs => $1::bigint), "
        "destroy_after = now() + make_interval(secs => "
        "greatest($1::bigint, $2::bigint)) WHERE state = 'active'",
        retire, 2, false, NULL);
    if (st != CJ_OK)
        return st;

    const struct cj_db_param params[] = {
        CJ_DB_TEXT(int_text(id, sizeof(id), *key_id)),
        CJ_DB_TEXT(aeads),
        CJ_DB_BIN(public_key, KMS_HPKE_PK_BYTES),
        CJ_DB_BIN(wrapped, len),
    };
    return cj_db_query(conn,
                       "INSERT INTO kms.hpke_keys (key_id, kem_id, kdf_id, "
                       "aead_ids, state, public_key, wrapped_key) VALUES "
                       "($1::smallint, 32, 1, $2::integer[], 'active', $3, "
                       "$4)",
                       params, 4, false, NULL);
}

enum cj_status kms_store_retire_hpke(struct cj_db_conn *conn, unsigned *count,
                                     char key_ids[KMS_KID_MAX + 1])
{
    static const char sql[] =
        "WITH ended AS (UPDATE kms.hpke_keys SET accept_until = now(), "
        "destroy_after = least(destroy_after, now() + "
        "(destroy_after - accept_until)) "
        "WHERE state = 'retired' AND accept_until > now() RETURNING key_id) "
        "SELECT count(*), coalesce(string_agg(key_id::text, ',' "
        "ORDER BY key_id), '') FROM ended";
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(conn, sql, NULL, 0, false, &res);

    if (st != CJ_OK)
        return st;
    *count = (unsigned)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(key_ids, KMS_KID_MAX + 1, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return CJ_OK;
}

enum cj_status kms_store_insert_signer(struct cj_db_conn *conn,
                                       const char *fingerprint,
                                       const unsigned char *public_key,
                                       const unsigned char *wrapped, size_t len)
{
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(fingerprint),
        CJ_DB_BIN(public_key, 32),
        CJ_DB_BIN(wrapped, len),
    };
    unsigned previous = 0;
    enum cj_status st = exec_count(
        conn, "SELECT 1 FROM kms.key_list_signers WHERE state = 'previous'",
        NULL, 0, &previous);

    if (st != CJ_OK)
        return st;
    if (previous > 0)
        return CJ_ERR_EXISTS;
    st = cj_db_query(conn,
                     "UPDATE kms.key_list_signers SET state = 'previous', "
                     "superseded_at = now() WHERE state = 'active'",
                     NULL, 0, false, NULL);
    if (st != CJ_OK)
        return st;
    return cj_db_query(conn,
                       "INSERT INTO kms.key_list_signers (fingerprint, state, "
                       "public_key, wrapped_key) VALUES ($1, 'active', $2, $3)",
                       params, 3, false, NULL);
}

enum cj_status
kms_store_retire_previous_signer(struct cj_db_conn *conn,
                                 char fingerprint[KMS_FINGERPRINT_LEN + 1])
{
    PGresult *res = NULL;
    enum cj_status st = cj_db_query(
        conn,
        "UPDATE kms.key_list_signers SET state = 'destroyed', "
        "destroyed_at = now(), wrapped_key = NULL WHERE state = 'previous' "
        "RETURNING fingerprint",
        NULL, 0, false, &res);

    if (st != CJ_OK)
        return st;
    if (PQntuples(res) != 1)
        st = CJ_ERR_NOT_FOUND;
    else if (!copy_text(fingerprint, KMS_FINGERPRINT_LEN + 1,
                        PQgetvalue(res, 0, 0)))
        st = CJ_ERR_INTERNAL;
    PQclear(res);
    return st;
}

/* Fills report->kept_keks with the retired KEKs that remain; params[0] is
 * the settle time in seconds. */
static enum cj_status list_kept_keks(struct cj_db_conn *conn,
                                     const struct cj_db_param *params,
                                     struct kms_destroy_report *report)
{
    PGresult *res = NULL;
    char limit[24];
    const struct cj_db_param all[] = {
        params[0],
        CJ_DB_TEXT(int_text(limit, sizeof(limit), KMS_KEPT_KEKS_MAX)),
    };
    enum cj_status st = cj_db_query(
        conn,
        "SELECT k.version, (SELECT count(*) FROM kms.data_key_versions d "
        "WHERE d.kek_version = k.version), "
        "k.retired_at <= now() - make_interval(secs => $1::bigint) "
        "FROM kms.key_encryption_keys k WHERE k.state = 'retired' "
        "ORDER BY k.version LIMIT $2::integer",
        all, 2, false, &res);

    if (st != CJ_OK)
        return st;
    for (int i = 0; i < PQntuples(res) && i < KMS_KEPT_KEKS_MAX; i++) {
        struct kms_kept_kek *kept = &report->kept_keks[i];

        kept->version = (uint32_t)get_int(res, i, 0);
        kept->users = (unsigned)get_int(res, i, 1);
        kept->settled = strcmp(PQgetvalue(res, i, 2), "t") == 0;
        report->n_kept_keks++;
    }
    PQclear(res);
    return CJ_OK;
}

enum cj_status kms_store_destroy_expired(struct cj_db_conn *conn,
                                         int64_t leeway_s, int64_t settle_s,
                                         struct kms_destroy_report *report)
{
    char leeway[24];
    char settle[24];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(int_text(leeway, sizeof(leeway), leeway_s)),
        CJ_DB_TEXT(int_text(settle, sizeof(settle), settle_s)),
    };
    enum cj_status st;

    memset(report, 0, sizeof(*report));
    st = exec_count(conn,
                    "UPDATE kms.hpke_keys SET state = 'destroyed', "
                    "destroyed_at = now(), wrapped_key = NULL "
                    "WHERE state = 'retired' AND destroy_after <= now()",
                    NULL, 0, &report->hpke);
    if (st != CJ_OK)
        return st;
    st = exec_count(
        conn,
        "UPDATE kms.signing_keys SET state = 'destroyed', "
        "destroyed_at = now(), wrapped_key = NULL WHERE state = 'retired' "
        "AND retired_at <= now() - make_interval(secs => $2::bigint) "
        "AND (last_token_expires_at IS NULL OR last_token_expires_at <= "
        "now() - make_interval(secs => $1::bigint))",
        params, 2, &report->signing);
    if (st != CJ_OK)
        return st;
    st = exec_count(
        conn,
        "UPDATE kms.key_encryption_keys k SET state = 'destroyed', "
        "destroyed_at = now(), wrapped_key = NULL WHERE k.state = 'retired' "
        "AND k.retired_at <= now() - make_interval(secs => $1::bigint) "
        "AND NOT EXISTS (SELECT 1 FROM kms.data_key_versions d "
        "WHERE d.kek_version = k.version)",
        params + 1, 1, &report->kek);
    if (st != CJ_OK)
        return st;
    return list_kept_keks(conn, params + 1, report);
}

enum cj_status kms_store_replace_wrapped(struct cj_db_conn *conn,
                                         enum kms_key_kind kind, const char *id,
                                         const unsigned char *wrapped,
                                         size_t len)
{
    static const char *const sql[] = {
        [KMS_KIND_KEK] = "UPDATE kms.key_encryption_keys SET wrapped_key = "
                         "$2 WHERE version = $1::integer AND state <> "
                         "'destroyed'",
        [KMS_KIND_SIGNING] = "UPDATE kms.signing_keys SET wrapped_key = $2 "
                             "WHERE kid = $1 AND state <> 'destroyed'",
        [KMS_KIND_HPKE] = "UPDATE kms.hpke_keys SET wrapped_key = $2 "
                          "WHERE id = $1::bigint AND state <> 'destroyed'",
        [KMS_KIND_SIGNER] = "UPDATE kms.key_list_signers SET wrapped_key = "
                            "$2 WHERE fingerprint = $1 AND state <> "
                            "'destroyed'",
    };
    const struct cj_db_param params[] = {CJ_DB_TEXT(id),
                                         CJ_DB_BIN(wrapped, len)};
    unsigned count = 0;

    if ((unsigned)kind >= sizeof(sql) / sizeof(sql[0]))
        return CJ_ERR_INVALID;
    enum cj_status st = exec_count(conn, sql[kind], params, 2, &count);
    if (st == CJ_OK && count != 1)
        st = CJ_ERR_NOT_FOUND;
    return st;
}

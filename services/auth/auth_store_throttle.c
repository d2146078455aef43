/* SQL on auth.login_throttle_key, the key of the login throttle's names. */
#include "auth_store.h"

#include <string.h>

#include <libpq-fe.h>

#include "crypto_util.h"

/* The table has one row, with this id (checked by the schema too). */
#define INSERT_KEY_SQL                                                         \
    "INSERT INTO auth.login_throttle_key (id, key) VALUES (1, $1) "            \
    "ON CONFLICT (id) DO NOTHING"
#define SELECT_KEY_SQL "SELECT key FROM auth.login_throttle_key WHERE id = 1"

enum cj_status
auth_store_throttle_key(struct cj_db_conn *conn,
                        const uint8_t candidate[AUTH_STORE_THROTTLE_KEY_SIZE],
                        uint8_t out[AUTH_STORE_THROTTLE_KEY_SIZE])
{
    struct cj_db_param param =
        CJ_DB_BIN(candidate, AUTH_STORE_THROTTLE_KEY_SIZE);
    PGresult *res = NULL;
    enum cj_status rc;

    /* Two statements, so that the SELECT's snapshot sees a row that
     * another replica committed while this INSERT waited on it. */
    rc = cj_db_query(conn, INSERT_KEY_SQL, &param, 1, false, NULL);
    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_db_query(conn, SELECT_KEY_SQL, NULL, 0, true, &res);
    if (rc != CJ_OK) {
        return rc;
    }
    if (PQntuples(res) != 1 ||
        PQgetlength(res, 0, 0) != AUTH_STORE_THROTTLE_KEY_SIZE) {
        rc = CJ_ERR_INTERNAL;
    } else {
        memcpy(out, PQgetvalue(res, 0, 0), AUTH_STORE_THROTTLE_KEY_SIZE);
        cj_wipe(PQgetvalue(res, 0, 0), AUTH_STORE_THROTTLE_KEY_SIZE);
    }
    PQclear(res);
    return rc;
}

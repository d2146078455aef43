/* Reading libpq text results into fixed buffers. */
#include "auth_store_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cj_status auth_row_text(const PGresult *res, int row, int col, char *out,
                             size_t out_size)
{
    const char *value;
    size_t len;

    if (PQgetisnull(res, row, col)) {
        out[0] = '\0';
        return CJ_OK;
    }
    value = PQgetvalue(res, row, col);
    len = (size_t)PQgetlength(res, row, col);
    if (len >= out_size) {
        out[0] = '\0';
        return CJ_ERR_INTERNAL;
    }
    memcpy(out, value, len);
    out[len] = '\0';
    return CJ_OK;
}

int64_t auth_row_int64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return 0;
    }
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

enum cj_status auth_row_bytea_dup(const PGresult *res, int row, int col,
                                  unsigned char **out, size_t *len)
{
    unsigned char *decoded;
    unsigned char *copy;
    size_t n = 0;

    *out = NULL;
    *len = 0;
    decoded =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n);
    if (decoded == NULL) {
        return CJ_ERR_NOMEM;
    }
    /* A copy in malloc memory, since PQfreemem must free libpq's. */
    copy = malloc(n > 0 ? n : 1);
    if (copy == NULL) {
        PQfreemem(decoded);
        return CJ_ERR_NOMEM;
    }
    memcpy(copy, decoded, n);
    PQfreemem(decoded);
    *out = copy;
    *len = n;
    return CJ_OK;
}

enum cj_status auth_row_bytea(const PGresult *res, int row, int col,
                              unsigned char *out, size_t out_size, size_t *len)
{
    unsigned char *decoded = NULL;
    size_t n = 0;
    enum cj_status rc = auth_row_bytea_dup(res, row, col, &decoded, &n);

    if (rc != CJ_OK) {
        return rc;
    }
    if (n > out_size) {
        rc = CJ_ERR_INTERNAL;
    } else {
        memcpy(out, decoded, n);
        *len = n;
    }
    free(decoded);
    return rc;
}

const char *auth_int_param(char *buf, size_t size, long long value)
{
    snprintf(buf, size, "%lld", value);
    return buf;
}

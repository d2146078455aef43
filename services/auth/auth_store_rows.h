/*
 * Helpers shared by the auth_store_*.c files to read libpq text results:
 * bounded string copies, integers and bytea.
 */
#ifndef AUTH_STORE_ROWS_H
#define AUTH_STORE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "status.h"

/*
 * Copies column col of row into out (NUL-terminated); "" for NULL.
 * CJ_ERR_INTERNAL when it does not fit, which means the schema and the
 * buffer sizes disagree.
 */
CJ_WARN_UNUSED enum cj_status auth_row_text(const PGresult *res, int row,
                                            int col, char *out,
                                            size_t out_size);

/* Parses a bigint column; 0 for NULL. */
int64_t auth_row_int64(const PGresult *res, int row, int col);

/*
 * Decodes a bytea column (hex text form) into out; CJ_ERR_INTERNAL when
 * it does not fit.
 */
CJ_WARN_UNUSED enum cj_status auth_row_bytea(const PGresult *res, int row,
                                             int col, unsigned char *out,
                                             size_t out_size, size_t *len);

/* Decodes a bytea column into a new buffer the caller frees with free(). */
CJ_WARN_UNUSED enum cj_status auth_row_bytea_dup(const PGresult *res, int row,
                                                 int col, unsigned char **out,
                                                 size_t *len);

/* Formats an integer as decimal text into buf for a query parameter. */
const char *auth_int_param(char *buf, size_t size, long long value);

/* Size of a buffer for auth_int_param. */
#define AUTH_INT_PARAM_SIZE 24

#endif

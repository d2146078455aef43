/*
 * Helpers shared by the auth_store_*.c files to read libpq text results:
 * bounded string copies, integers and bytea.
 */
#ifndef AUTH_STORE_ROWS_H
#define AUTH_STORE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "auth_store.h"
#include "db.h"
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

/*
 * The INSERT of one audit event, with its values as $1..$7 in the order
 * auth_audit_params writes them, for use alone or inside a WITH clause.
 */
#define AUTH_AUDIT_INSERT_SQL                                                  \
    "INSERT INTO auth.audit_events (event, user_id, session_hash, "            \
    "client_ip, user_agent, request_id, detail) VALUES ($1, $2::uuid, $3, "    \
    "$4::inet, left($5, 512), left($6, 128), "                                 \
    "coalesce($7::jsonb, '{}'::jsonb))"
#define AUTH_AUDIT_PARAM_COUNT 7

/* Writes the query parameters of AUTH_AUDIT_INSERT_SQL for an event. */
void auth_audit_params(const struct auth_audit_event *event,
                       struct cj_db_param out[AUTH_AUDIT_PARAM_COUNT]);

#endif

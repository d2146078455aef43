/*
 * A fixed-size Postgres connection pool over libpq. Callers borrow a
 * connection, run parameterized statements on it (never SQL built from
 * input), and give it back; libpq errors become enum cj_status here. Each
 * connection keeps its statements prepared on the server.
 */
#ifndef CJ_DB_H
#define CJ_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "status.h"

/* Defaults a service can use for its configuration table. */
#define CJ_DB_DEFAULT_POOL_SIZE            4
#define CJ_DB_DEFAULT_CONNECT_TIMEOUT_S    5
#define CJ_DB_DEFAULT_STATEMENT_TIMEOUT_MS 5000
#define CJ_DB_DEFAULT_ACQUIRE_TIMEOUT_MS   5000
#define CJ_DB_MAX_POOL_SIZE                256
/* Statements each connection keeps prepared; new SQL texts past it run
 * unprepared. */
#define CJ_DB_STATEMENT_CACHE_MAX 128

struct cj_db_pool;
struct cj_db_conn; /* one borrowed connection; used by one thread at a time */

struct cj_db_options {
    const char *dsn;                /* libpq conninfo or URI; copied */
    unsigned pool_size;             /* connections, 1..CJ_DB_MAX_POOL_SIZE */
    long long connect_timeout_s;    /* per connection attempt */
    long long statement_timeout_ms; /* SET statement_timeout; 0 = none */
    long long acquire_timeout_ms;   /* default wait in cj_db_acquire */
    const char *application_name;   /* shown in pg_stat_activity; may be NULL */
};

/*
 * One statement parameter. Text parameters are NUL-terminated; binary ones
 * (bytea) carry their length. Build them with the macros.
 */
struct cj_db_param {
    const char *value; /* NULL for SQL NULL */
    int length;        /* bytes, binary only */
    bool binary;
};

#define CJ_DB_TEXT(s) ((struct cj_db_param){.value = (s)})
#define CJ_DB_BIN(p, n)                                                        \
    ((struct cj_db_param){                                                     \
        .value = (const char *)(p), .length = (int)(n), .binary = true})
#define CJ_DB_NULL ((struct cj_db_param){.value = NULL})

/*
 * Creates a pool. Connections open lazily on first acquire, so a service can
 * start while Postgres is down; the DSN syntax is checked here
 * (CJ_ERR_INVALID). Free with cj_db_pool_free.
 */
CJ_WARN_UNUSED enum cj_status cj_db_pool_new(const struct cj_db_options *opts,
                                             struct cj_db_pool **out);

/* Closes every connection; all must have been released. NULL-safe. */
void cj_db_pool_free(struct cj_db_pool *pool);

/*
 * Ends the pool's work for a shutdown, from any thread. It sends a cancel
 * request for the statement running on each open connection, whose caller
 * gets CJ_ERR_TIMEOUT (SQLSTATE 57014). From then on cj_db_acquire and
 * every query fail at once with CJ_ERR_UNAVAILABLE. Borrowed connections
 * must still be released, and cj_db_pool_free frees the pool.
 */
void cj_db_pool_cancel(struct cj_db_pool *pool);

/* Returns whether cj_db_pool_cancel was called, from any thread. */
bool cj_db_pool_closing(const struct cj_db_pool *pool);

/* Calls cj_db_pool_cancel on pool (a struct cj_db_pool *), in the shape of
 * a hook such as the gRPC server's on_grace_expired. */
void cj_db_pool_cancel_hook(void *pool);

/*
 * Borrows a connection, waiting up to timeout_ms (negative: the pool's
 * acquire_timeout_ms) for a free one: CJ_ERR_TIMEOUT when none frees up.
 * A broken connection is reopened here (CJ_ERR_UNAVAILABLE when that
 * fails). Give it back with cj_db_release.
 */
CJ_WARN_UNUSED enum cj_status cj_db_acquire(struct cj_db_pool *pool,
                                            long long timeout_ms,
                                            struct cj_db_conn **out);

/*
 * Returns a connection to its pool. An open transaction is rolled back and
 * advisory locks taken through this API are released first. NULL-safe.
 */
void cj_db_release(struct cj_db_conn *conn);

/*
 * Runs one parameterized statement. The first run of a SQL text on a
 * connection prepares it under a generated name (PQprepare), and later runs
 * with the same text and parameter count only execute it (PQexecPrepared),
 * so Postgres parses and plans it once per connection. Pass only fixed SQL
 * texts here: text built per call belongs in cj_db_query_uncached.
 *
 * On CJ_OK, *result (if result is not NULL) is the caller's to PQclear;
 * results are text unless binary_results. Errors map as: 23505 unique
 * violation CJ_ERR_EXISTS; connection failures (class 08, 57P01-57P03)
 * CJ_ERR_UNAVAILABLE; 57014 statement timeout and 55P03 lock not available
 * CJ_ERR_TIMEOUT; 42501 insufficient privilege CJ_ERR_PERMISSION; anything
 * else CJ_ERR_INTERNAL.
 *
 * A prepared statement that no longer exists on the server (26000, after
 * DEALLOCATE ALL) or whose result columns changed (0A000, after ALTER TABLE)
 * is prepared again and run once more when the connection is outside a
 * transaction block. Inside one, the error fails the transaction and is
 * returned, and the statement is prepared again on its next run.
 */
CJ_WARN_UNUSED enum cj_status cj_db_query(struct cj_db_conn *conn,
                                          const char *sql,
                                          const struct cj_db_param *params,
                                          int nparams, bool binary_results,
                                          PGresult **result);

/*
 * Runs one parameterized statement as cj_db_query does, but unprepared
 * (PQexecParams). Use it for SQL text built per call, such as statements
 * that name a schema, so that one-off texts do not fill the statement cache.
 */
CJ_WARN_UNUSED enum cj_status
cj_db_query_uncached(struct cj_db_conn *conn, const char *sql,
                     const struct cj_db_param *params, int nparams,
                     bool binary_results, PGresult **result);

/*
 * Runs a statement without parameters or a result (BEGIN, SET, DDL in
 * tests), unprepared as cj_db_query_uncached does.
 */
CJ_WARN_UNUSED enum cj_status cj_db_exec(struct cj_db_conn *conn,
                                         const char *sql);

/* Transaction helpers: BEGIN, COMMIT, ROLLBACK. */
CJ_WARN_UNUSED enum cj_status cj_db_begin(struct cj_db_conn *conn);
CJ_WARN_UNUSED enum cj_status cj_db_commit(struct cj_db_conn *conn);
CJ_WARN_UNUSED enum cj_status cj_db_rollback(struct cj_db_conn *conn);

/*
 * SQLSTATE and primary message of the last failed statement on this
 * connection ("" when none), for logs. The message never includes libpq's
 * DETAIL, which can quote row values.
 */
const char *cj_db_last_sqlstate(const struct cj_db_conn *conn);

/* SQLSTATE foreign_key_violation: for example a row inserted for a user
 * whose row another transaction deleted. */
#define CJ_DB_SQLSTATE_FOREIGN_KEY "23503"
const char *cj_db_last_error(const struct cj_db_conn *conn);

/*
 * Number of statements this connection has prepared through its cache,
 * including stale ones that wait for DEALLOCATE; for tests.
 */
unsigned cj_db_statement_cache_count(const struct cj_db_conn *conn);

/* The raw libpq connection, for PQescapeIdentifier and the like. */
PGconn *cj_db_pgconn(struct cj_db_conn *conn);

/* Maps a SQLSTATE (may be NULL) to a status as cj_db_query does. */
enum cj_status cj_db_status_from_sqlstate(const char *sqlstate);

/*
 * Derives a stable advisory-lock key from a job name ("auth.cleanup"): the
 * first 8 bytes of its SHA-256, so every replica computes the same key.
 */
int64_t cj_db_lock_key(const char *name);

/*
 * Session-level advisory locks (pg_advisory_lock) held on this connection
 * until unlocked or released. The blocking form waits at most the
 * statement timeout (CJ_ERR_TIMEOUT). try_lock sets *acquired.
 */
CJ_WARN_UNUSED enum cj_status cj_db_advisory_lock(struct cj_db_conn *conn,
                                                  int64_t key);
CJ_WARN_UNUSED enum cj_status
cj_db_advisory_try_lock(struct cj_db_conn *conn, int64_t key, bool *acquired);
CJ_WARN_UNUSED enum cj_status cj_db_advisory_unlock(struct cj_db_conn *conn,
                                                    int64_t key);

#endif

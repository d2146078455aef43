/*
 * Postgres pool: a fixed array of libpq connections guarded by one mutex and
 * condition variable. Connections open lazily and are reopened when found
 * broken. Each connection caches the statements it has prepared on its
 * server session, keyed by SQL text.
 */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "log.h"
#include "slot_pool.h"

/* Parameters per statement, at most. */
#define CJ_DB_MAX_PARAMS    64
#define CJ_DB_ERROR_SIZE    256
#define CJ_DB_SQLSTATE_SIZE 6
/* Bytes of a generated statement name: "cj_s", a decimal counter, NUL. */
#define CJ_DB_STATEMENT_NAME_SIZE 16
/* libpq gssencmode when neither the DSN nor PGGSSENCMODE sets one. */
#define CJ_DB_GSSENCMODE_DEFAULT "disable"
/* 64-bit FNV-1a offset basis and prime. */
#define CJ_DB_FNV_OFFSET 14695981039346656037ULL
#define CJ_DB_FNV_PRIME  1099511628211ULL

/*
 * During an outage every request fails to connect, so the event is
 * rate-limited (across all pools of the process).
 */
static struct cj_log_limit connect_failed_limit = CJ_LOG_LIMIT_INIT;

/* One statement prepared on a connection's server session. */
struct cj_db_statement {
    char *sql;     /* owned copy of the text; NULL once stale */
    uint64_t hash; /* FNV-1a of sql, checked before the full compare */
    int nparams;   /* parameter count it was prepared with */
    bool stale;    /* still on the server but unusable: DEALLOCATE it */
    char name[CJ_DB_STATEMENT_NAME_SIZE];
};

struct cj_db_conn {
    struct cj_db_pool *pool;
    PGconn *pg;
    /* Cancels the running statement from another thread; guarded by the
     * pool's cancel_lock, NULL while the connection is closed. */
    PGcancel *cancel;
    unsigned advisory_locks; /* taken through this API, freed on release */
    char sqlstate[CJ_DB_SQLSTATE_SIZE];
    char error[CJ_DB_ERROR_SIZE];
    /* Entries [0, statement_count) are in use, stale ones included, so
     * the server never has more than CJ_DB_STATEMENT_CACHE_MAX of ours. */
    struct cj_db_statement statements[CJ_DB_STATEMENT_CACHE_MAX];
    unsigned statement_count;
    unsigned stale_count;
    unsigned next_statement_id; /* names are unique per server session */
    bool cache_full_logged;
};

struct cj_db_pool {
    struct cj_slot_pool slots; /* slot i borrows conns[i] */
    char *dsn;
    char *application_name;
    long long connect_timeout_s;
    long long statement_timeout_ms;
    long long acquire_timeout_ms;
    unsigned size;
    struct cj_db_conn *conns;
    pthread_mutex_t cancel_lock; /* guards each conns[i].cancel */
    bool closing;                /* set by cj_db_pool_cancel; atomic */
};

static void set_conn_error(struct cj_db_conn *c, const char *sqlstate,
                           const char *message)
{
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", sqlstate ? sqlstate : "");
    snprintf(c->error, sizeof(c->error), "%s", message ? message : "");
    /* libpq messages end in a newline; logs want one line. */
    size_t n = strlen(c->error);
    while (n > 0 && (c->error[n - 1] == '\n' || c->error[n - 1] == ' ')) {
        c->error[--n] = '\0';
    }
}

/*
 * Forgets every cached statement without telling the server, for when the
 * server session ends: its prepared statements end with it.
 */
static void statement_cache_clear(struct cj_db_conn *c)
{
    for (unsigned i = 0; i < c->statement_count; i++) {
        free(c->statements[i].sql);
    }
    memset(c->statements, 0, sizeof(c->statements));
    c->statement_count = 0;
    c->stale_count = 0;
    c->cache_full_logged = false;
}

enum cj_status cj_db_status_from_sqlstate(const char *sqlstate)
{
    if (sqlstate == NULL || sqlstate[0] == '\0') {
        return CJ_ERR_INTERNAL;
    }
    if (strcmp(sqlstate, "23505") == 0) {
        return CJ_ERR_EXISTS;
    }
    /* Class 08 is connection exceptions; 57P01-57P03 are admin shutdown,
     * crash shutdown and "cannot connect now" (server starting). */
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0) {
        return CJ_ERR_UNAVAILABLE;
    }
    if (strcmp(sqlstate, "57014") == 0 || strcmp(sqlstate, "55P03") == 0) {
        return CJ_ERR_TIMEOUT;
    }
    if (strcmp(sqlstate, "42501") == 0) {
        return CJ_ERR_PERMISSION;
    }
    return CJ_ERR_INTERNAL;
}

/* Slot i is open when its connection exists, broken or not. */
static bool conn_is_open(const void *owner, unsigned i)
{
    const struct cj_db_pool *p = owner;
    return p->conns[i].pg != NULL;
}

/* Sets the cancel handle of c under the pool's cancel_lock. */
static void conn_set_cancel(struct cj_db_conn *c, PGcancel *cancel)
{
    PGcancel *old;

    pthread_mutex_lock(&c->pool->cancel_lock);
    old = c->cancel;
    c->cancel = cancel;
    pthread_mutex_unlock(&c->pool->cancel_lock);
    if (old != NULL) {
        PQfreeCancel(old);
    }
}

/* Closes c's server session, if any, and clears its statement cache. */
static void conn_close(struct cj_db_conn *c)
{
    conn_set_cancel(c, NULL);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    statement_cache_clear(c);
}

enum cj_status cj_db_pool_new(const struct cj_db_options *opts,
                              struct cj_db_pool **out)
{
    *out = NULL;
    if (opts == NULL || opts->dsn == NULL || opts->pool_size == 0 ||
        opts->pool_size > CJ_DB_MAX_POOL_SIZE) {
        return CJ_ERR_INVALID;
    }
    char *parse_error = NULL;
    PQconninfoOption *parsed = PQconninfoParse(opts->dsn, &parse_error);
    if (parsed == NULL) {
        /* The message names the bad keyword, never a value. */
        cj_log(CJ_LOG_ERROR, "db.dsn_invalid", NULL,
               CJ_F_STR("error", parse_error ? parse_error : "out of memory"));
        PQfreemem(parse_error);
        return CJ_ERR_INVALID;
    }
    PQconninfoFree(parsed);

    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_db_pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        goto out;
    }
    p->size = opts->pool_size;
    p->connect_timeout_s = opts->connect_timeout_s;
    p->statement_timeout_ms = opts->statement_timeout_ms;
    p->acquire_timeout_ms = opts->acquire_timeout_ms;
    p->dsn = strdup(opts->dsn);
    p->application_name =
        strdup(opts->application_name ? opts->application_name : "cerrojo");
    p->conns = calloc(p->size, sizeof(*p->conns));
    if (p->dsn == NULL || p->application_name == NULL || p->conns == NULL) {
        goto out;
    }
    for (unsigned i = 0; i < p->size; i++) {
        p->conns[i].pool = p;
    }
    st = cj_slot_pool_init(&p->slots, p->size, conn_is_open, p);
    if (st != CJ_OK) {
        goto out;
    }
    pthread_mutex_init(&p->cancel_lock, NULL);
    *out = p;
    p = NULL;
    st = CJ_OK;

out:
    if (p != NULL) {
        free(p->dsn);
        free(p->application_name);
        free(p->conns);
        free(p);
    }
    return st;
}

void cj_db_pool_free(struct cj_db_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    for (unsigned i = 0; i < pool->size; i++) {
        conn_close(&pool->conns[i]);
    }
    cj_slot_pool_destroy(&pool->slots);
    pthread_mutex_destroy(&pool->cancel_lock);
    free(pool->dsn);
    free(pool->application_name);
    free(pool->conns);
    free(pool);
}

bool cj_db_pool_closing(const struct cj_db_pool *pool)
{
    return __atomic_load_n(&pool->closing, __ATOMIC_ACQUIRE);
}

void cj_db_pool_cancel_hook(void *pool)
{
    cj_db_pool_cancel(pool);
}

void cj_db_pool_cancel(struct cj_db_pool *pool)
{
    char error[CJ_DB_ERROR_SIZE];
    unsigned sent = 0;

    __atomic_store_n(&pool->closing, true, __ATOMIC_RELEASE);
    pthread_mutex_lock(&pool->cancel_lock);
    for (unsigned i = 0; i < pool->size; i++) {
        /* On an idle connection the server has nothing to cancel. */
        if (pool->conns[i].cancel == NULL) {
            continue;
        }
        if (PQcancel(pool->conns[i].cancel, error, sizeof(error))) {
            sent++;
        } else {
            cj_log(CJ_LOG_WARN, "db.cancel_failed", NULL,
                   CJ_F_STR("error", error));
        }
    }
    pthread_mutex_unlock(&pool->cancel_lock);
    cj_log(CJ_LOG_INFO, "db.pool_cancelled", NULL,
           CJ_F_STR("application", pool->application_name),
           CJ_F_INT("cancel_requests", sent));
}

/*
 * An idle connection should have nothing to read. Readable means the server
 * closed it or sent a termination error (restart, pg_terminate_backend), so
 * the connection is replaced before use instead of failing the caller's
 * first statement.
 */
static bool conn_is_broken(PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK) {
        return true;
    }
    int fd = PQsocket(pg);
    if (fd < 0) {
        return true;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 0);
    return n != 0;
}

/* Sends server notices ("schema already exists, skipping") to the debug
 * log instead of libpq's default, stderr. */
static void log_notice(void *arg, const char *message)
{
    (void)arg;
    cj_log(CJ_LOG_DEBUG, "db.notice", NULL, CJ_F_STR("message", message));
}

static enum cj_status conn_open(struct cj_db_conn *c)
{
    struct cj_db_pool *p = c->pool;
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%lld", p->connect_timeout_s);
    /*
     * Listed before the DSN so that the DSN's own settings win. libpq's
     * default gssencmode=prefer looks for a Kerberos credential cache on
     * every connect, which runs and maps in libkrb5 and libgssapi_krb5
     * (about 0.7 MiB of RSS, measured on cerrojo-kms). The documented
     * deployments protect Postgres traffic with TLS (sslmode) instead, so
     * GSS encryption is off unless PGGSSENCMODE or the DSN sets it.
     */
    const char *gssencmode = getenv("PGGSSENCMODE");
    const char *keys[] = {"connect_timeout", "application_name", "gssencmode",
                          "dbname", NULL};
    const char *values[] = {timeout, p->application_name,
                            gssencmode != NULL ? gssencmode
                                               : CJ_DB_GSSENCMODE_DEFAULT,
                            p->dsn, NULL};

    conn_close(c);
    c->advisory_locks = 0;
    c->pg = PQconnectdbParams(keys, values, 1);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        set_conn_error(c, "08001",
                       c->pg ? PQerrorMessage(c->pg) : "out of memory");
        cj_log_limited(&connect_failed_limit, CJ_LOG_WARN, "db.connect_failed",
                       NULL, CJ_F_STR("error", c->error));
        PQfinish(c->pg);
        c->pg = NULL;
        return CJ_ERR_UNAVAILABLE;
    }
    cj_log_recovered(&connect_failed_limit, "db.connect_recovered", NULL);
    PQsetNoticeProcessor(c->pg, log_notice, NULL);
    /* Without a handle the connection works, only cj_db_pool_cancel
     * cannot reach it. */
    conn_set_cancel(c, PQgetCancel(c->pg));
    if (p->statement_timeout_ms > 0) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SET statement_timeout = %lld",
                 p->statement_timeout_ms);
        enum cj_status st = cj_db_exec(c, sql);
        if (st != CJ_OK) {
            conn_close(c);
            return st;
        }
    }
    return CJ_OK;
}

static void give_back_slot(struct cj_db_conn *c)
{
    struct cj_db_pool *p = c->pool;
    cj_slot_pool_give_back(&p->slots, (unsigned)(c - p->conns));
}

enum cj_status cj_db_acquire(struct cj_db_pool *pool, long long timeout_ms,
                             struct cj_db_conn **out)
{
    *out = NULL;
    if (timeout_ms < 0) {
        timeout_ms = pool->acquire_timeout_ms;
    }
    unsigned slot;
    if (cj_slot_pool_take(&pool->slots, timeout_ms, &slot) != CJ_OK) {
        return CJ_ERR_TIMEOUT;
    }
    struct cj_db_conn *c = &pool->conns[slot];

    if (cj_db_pool_closing(pool)) {
        give_back_slot(c);
        return CJ_ERR_UNAVAILABLE;
    }
    c->sqlstate[0] = '\0';
    c->error[0] = '\0';
    if (c->pg == NULL || conn_is_broken(c->pg)) {
        if (c->pg != NULL) {
            cj_log(CJ_LOG_INFO, "db.reconnect", NULL);
        }
        enum cj_status st = conn_open(c);
        if (st != CJ_OK) {
            give_back_slot(c);
            return st;
        }
    }
    *out = c;
    return CJ_OK;
}

void cj_db_release(struct cj_db_conn *conn)
{
    if (conn == NULL) {
        return;
    }
    PGconn *pg = conn->pg;
    if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
        PGTransactionStatusType ts = PQtransactionStatus(pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            PQclear(PQexec(pg, "ROLLBACK"));
        }
        if (conn->advisory_locks > 0) {
            PQclear(PQexec(pg, "SELECT pg_advisory_unlock_all()"));
            conn->advisory_locks = 0;
        }
        if (PQtransactionStatus(pg) != PQTRANS_IDLE) {
            /* Still busy or unknown: a fresh connection is cheaper than
             * guessing its state. */
            conn_close(conn);
        }
    }
    give_back_slot(conn);
}

PGconn *cj_db_pgconn(struct cj_db_conn *conn)
{
    return conn->pg;
}

const char *cj_db_last_sqlstate(const struct cj_db_conn *conn)
{
    return conn->sqlstate;
}

const char *cj_db_last_error(const struct cj_db_conn *conn)
{
    return conn->error;
}

unsigned cj_db_statement_cache_count(const struct cj_db_conn *conn)
{
    return conn->statement_count;
}

/* Turns a finished result into a status, recording the error if any. */
static enum cj_status result_status(struct cj_db_conn *c, PGresult *res)
{
    ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) {
        return CJ_OK;
    }
    const char *sqlstate =
        res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary == NULL) {
        primary = PQerrorMessage(c->pg);
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        /* The connection is gone; the next acquire reopens it. */
        set_conn_error(c, sqlstate ? sqlstate : "08006", primary);
        return CJ_ERR_UNAVAILABLE;
    }
    set_conn_error(c, sqlstate, primary);
    /* A statement that the shutdown cancelled did not time out: the service
     * is going away, which callers report as unavailable. */
    if (sqlstate != NULL && strcmp(sqlstate, "57014") == 0 &&
        cj_db_pool_closing(c->pool)) {
        return CJ_ERR_UNAVAILABLE;
    }
    return cj_db_status_from_sqlstate(sqlstate);
}

/* Parameters converted for libpq, and the requested result format. */
struct statement_args {
    const char *values[CJ_DB_MAX_PARAMS];
    int lengths[CJ_DB_MAX_PARAMS];
    int formats[CJ_DB_MAX_PARAMS];
    int nparams;
    int result_format; /* 0 text, 1 binary */
};

/* Checks the arguments of a query and clears the last error. */
static enum cj_status args_init(struct cj_db_conn *conn, const char *sql,
                                const struct cj_db_param *params, int nparams,
                                bool binary_results, PGresult **result,
                                struct statement_args *a)
{
    if (result != NULL) {
        *result = NULL;
    }
    if (conn == NULL || conn->pg == NULL || sql == NULL || nparams < 0 ||
        nparams > CJ_DB_MAX_PARAMS || (nparams > 0 && params == NULL)) {
        return CJ_ERR_INVALID;
    }
    if (cj_db_pool_closing(conn->pool)) {
        set_conn_error(conn, "57P01", "the pool is closing");
        return CJ_ERR_UNAVAILABLE;
    }
    for (int i = 0; i < nparams; i++) {
        a->values[i] = params[i].value;
        a->lengths[i] = params[i].binary ? params[i].length : 0;
        a->formats[i] = params[i].binary ? 1 : 0;
    }
    a->nparams = nparams;
    a->result_format = binary_results ? 1 : 0;
    conn->sqlstate[0] = '\0';
    conn->error[0] = '\0';
    return CJ_OK;
}

static PGresult *exec_unprepared(struct cj_db_conn *c, const char *sql,
                                 const struct statement_args *a)
{
    return PQexecParams(c->pg, sql, a->nparams, NULL, a->values, a->lengths,
                        a->formats, a->result_format);
}

/* Maps res to a status and hands it to the caller or frees it. */
static enum cj_status finish_query(struct cj_db_conn *c, PGresult *res,
                                   PGresult **result)
{
    enum cj_status st = result_status(c, res);
    if (st == CJ_OK && result != NULL) {
        *result = res;
    } else {
        PQclear(res);
    }
    return st;
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = CJ_DB_FNV_OFFSET;
    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
        h = (h ^ *p) * CJ_DB_FNV_PRIME;
    }
    return h;
}

static struct cj_db_statement *statement_find(struct cj_db_conn *c,
                                              const char *sql, uint64_t hash,
                                              int nparams)
{
    for (unsigned i = 0; i < c->statement_count; i++) {
        struct cj_db_statement *s = &c->statements[i];
        if (!s->stale && s->hash == hash && s->nparams == nparams &&
            strcmp(s->sql, sql) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Frees entry s by moving the last entry into its place. */
static void statement_remove(struct cj_db_conn *c, struct cj_db_statement *s)
{
    if (s->stale) {
        c->stale_count--;
    }
    free(s->sql);
    struct cj_db_statement *last = &c->statements[c->statement_count - 1];
    if (s != last) {
        *s = *last;
    }
    memset(last, 0, sizeof(*last));
    c->statement_count--;
}

/*
 * Deallocates the stale statements on the server and frees their entries.
 * Call only outside a transaction block, where DEALLOCATE can run. A failed
 * DEALLOCATE still frees the entry: either the statement is already gone, or
 * the connection is, and a reopened connection starts with an empty cache.
 */
static void statement_deallocate_stale(struct cj_db_conn *c)
{
    unsigned i = c->statement_count;
    while (i > 0 && c->stale_count > 0) {
        i--;
        struct cj_db_statement *s = &c->statements[i];
        if (!s->stale) {
            continue;
        }
        char sql[sizeof("DEALLOCATE ") + CJ_DB_STATEMENT_NAME_SIZE];
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
        PGresult *res = PQexec(c->pg, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            cj_log(CJ_LOG_DEBUG, "db.deallocate_failed", NULL,
                   CJ_F_STR("statement", s->name),
                   CJ_F_STR("sqlstate",
                            res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                : NULL));
        }
        PQclear(res);
        statement_remove(c, s);
    }
}

/*
 * Prepares sql on the server and caches it in *out. A failed PQprepare is
 * recorded and mapped exactly as a failed PQexecParams, and caches nothing.
 * *out stays NULL with CJ_OK when the cache is full or memory is short: the
 * caller then runs the statement unprepared.
 */
static enum cj_status statement_prepare(struct cj_db_conn *c, const char *sql,
                                        uint64_t hash, int nparams,
                                        struct cj_db_statement **out)
{
    *out = NULL;
    if (c->statement_count >= CJ_DB_STATEMENT_CACHE_MAX) {
        if (!c->cache_full_logged) {
            /* Usually a caller passing SQL text built per call to
             * cj_db_query instead of cj_db_query_uncached. */
            cj_log(CJ_LOG_WARN, "db.statement_cache_full", NULL,
                   CJ_F_INT("max", CJ_DB_STATEMENT_CACHE_MAX));
            c->cache_full_logged = true;
        }
        return CJ_OK;
    }
    char *copy = strdup(sql);
    if (copy == NULL) {
        return CJ_OK;
    }
    struct cj_db_statement *s = &c->statements[c->statement_count];
    snprintf(s->name, sizeof(s->name), "cj_s%u", c->next_statement_id++);
    PGresult *res = PQprepare(c->pg, s->name, sql, nparams, NULL);
    enum cj_status st = result_status(c, res);
    PQclear(res);
    if (st != CJ_OK) {
        free(copy);
        memset(s, 0, sizeof(*s));
        return st;
    }
    s->sql = copy;
    s->hash = hash;
    s->nparams = nparams;
    c->statement_count++;
    *out = s;
    return CJ_OK;
}

/*
 * Reports whether a failed run of a cached statement makes its entry
 * unusable. 26000 invalid_sql_statement_name means the server no longer has
 * it, as after DEALLOCATE ALL. 0A000 feature_not_supported is what Postgres
 * 15 raises as "cached plan must not change result type" when DDL such as
 * ALTER TABLE ADD COLUMN changes the columns of a SELECT *.
 */
static bool statement_invalidated(const PGresult *res, bool *still_on_server)
{
    if (res == NULL || PQresultStatus(res) != PGRES_FATAL_ERROR) {
        return false;
    }
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (sqlstate == NULL) {
        return false;
    }
    *still_on_server = strcmp(sqlstate, "0A000") == 0;
    return *still_on_server || strcmp(sqlstate, "26000") == 0;
}

/* Runs s, or sql unprepared when s is NULL (cache full). */
static PGresult *exec_statement(struct cj_db_conn *c, const char *sql,
                                const struct cj_db_statement *s,
                                const struct statement_args *a)
{
    if (s == NULL) {
        return exec_unprepared(c, sql, a);
    }
    return PQexecPrepared(c->pg, s->name, a->nparams, a->values, a->lengths,
                          a->formats, a->result_format);
}

enum cj_status cj_db_query(struct cj_db_conn *conn, const char *sql,
                           const struct cj_db_param *params, int nparams,
                           bool binary_results, PGresult **result)
{
    struct statement_args a;
    enum cj_status st =
        args_init(conn, sql, params, nparams, binary_results, result, &a);
    if (st != CJ_OK) {
        return st;
    }
    if (conn->stale_count > 0 &&
        PQtransactionStatus(conn->pg) == PQTRANS_IDLE) {
        statement_deallocate_stale(conn);
    }
    uint64_t hash = sql_hash(sql);
    struct cj_db_statement *s = statement_find(conn, sql, hash, nparams);
    if (s == NULL) {
        st = statement_prepare(conn, sql, hash, nparams, &s);
        if (st != CJ_OK) {
            return st;
        }
    }
    PGresult *res = exec_statement(conn, sql, s, &a);

    bool still_on_server = false;
    if (s != NULL && statement_invalidated(res, &still_on_server)) {
        if (still_on_server) {
            s->stale = true;
            free(s->sql);
            s->sql = NULL;
            conn->stale_count++;
        } else {
            statement_remove(conn, s);
        }
        s = NULL;
        /* Inside a transaction block the failure has already aborted it,
         * so a retry could not succeed and the caller gets the error. */
        if (PQstatus(conn->pg) == CONNECTION_OK &&
            PQtransactionStatus(conn->pg) == PQTRANS_IDLE) {
            PQclear(res);
            statement_deallocate_stale(conn);
            st = statement_prepare(conn, sql, hash, nparams, &s);
            if (st != CJ_OK) {
                return st;
            }
            res = exec_statement(conn, sql, s, &a);
        }
    }
    return finish_query(conn, res, result);
}

enum cj_status cj_db_query_uncached(struct cj_db_conn *conn, const char *sql,
                                    const struct cj_db_param *params,
                                    int nparams, bool binary_results,
                                    PGresult **result)
{
    struct statement_args a;
    enum cj_status st =
        args_init(conn, sql, params, nparams, binary_results, result, &a);
    if (st != CJ_OK) {
        return st;
    }
    return finish_query(conn, exec_unprepared(conn, sql, &a), result);
}

/*
 * Control statements (BEGIN, COMMIT, ROLLBACK, SET) and DDL skip the cache.
 * Postgres does not plan utility statements, so preparing them saves little.
 * Texts such as "SET statement_timeout = 5000" or DDL naming a schema are
 * also built per call and would only fill the cache.
 */
enum cj_status cj_db_exec(struct cj_db_conn *conn, const char *sql)
{
    return cj_db_query_uncached(conn, sql, NULL, 0, false, NULL);
}

enum cj_status cj_db_begin(struct cj_db_conn *conn)
{
    return cj_db_exec(conn, "BEGIN");
}

enum cj_status cj_db_commit(struct cj_db_conn *conn)
{
    /* COMMIT of a failed transaction reports success but rolls back. */
    if (conn != NULL && conn->pg != NULL &&
        PQtransactionStatus(conn->pg) == PQTRANS_INERROR) {
        enum cj_status st = cj_db_exec(conn, "ROLLBACK");
        set_conn_error(conn, "25P02",
                       "commit of a failed transaction; rolled back");
        return st == CJ_OK ? CJ_ERR_INTERNAL : st;
    }
    return cj_db_exec(conn, "COMMIT");
}

enum cj_status cj_db_rollback(struct cj_db_conn *conn)
{
    return cj_db_exec(conn, "ROLLBACK");
}

int64_t cj_db_lock_key(const char *name)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(name, strlen(name), digest, &len, EVP_sha256(), NULL) != 1 ||
        len < sizeof(uint64_t)) {
        /* EVP_Digest of SHA-256 fails only when OpenSSL is broken. */
        abort();
    }
    uint64_t key = 0;
    for (size_t i = 0; i < sizeof(key); i++) {
        key = (key << 8) | digest[i];
    }
    int64_t signed_key;
    memcpy(&signed_key, &key, sizeof(signed_key));
    return signed_key;
}

static enum cj_status lock_query(struct cj_db_conn *conn, const char *sql,
                                 int64_t key, PGresult **res)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, key);
    const struct cj_db_param p[] = {CJ_DB_TEXT(text)};
    return cj_db_query(conn, sql, p, 1, false, res);
}

enum cj_status cj_db_advisory_lock(struct cj_db_conn *conn, int64_t key)
{
    enum cj_status st =
        lock_query(conn, "SELECT pg_advisory_lock($1::bigint)", key, NULL);
    if (st == CJ_OK) {
        conn->advisory_locks++;
    }
    return st;
}

enum cj_status cj_db_advisory_try_lock(struct cj_db_conn *conn, int64_t key,
                                       bool *acquired)
{
    *acquired = false;
    PGresult *res = NULL;
    enum cj_status st =
        lock_query(conn, "SELECT pg_try_advisory_lock($1::bigint)", key, &res);
    if (st != CJ_OK) {
        goto out;
    }
    if (PQntuples(res) != 1) {
        st = CJ_ERR_INTERNAL;
        goto out;
    }
    *acquired = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (*acquired) {
        conn->advisory_locks++;
    }

out:
    PQclear(res);
    return st;
}

enum cj_status cj_db_advisory_unlock(struct cj_db_conn *conn, int64_t key)
{
    PGresult *res = NULL;
    enum cj_status st =
        lock_query(conn, "SELECT pg_advisory_unlock($1::bigint)", key, &res);
    if (st != CJ_OK) {
        goto out;
    }
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        /* Postgres also warns: the lock was not held by this session. */
        set_conn_error(conn, "", "advisory lock was not held");
        st = CJ_ERR_PRECONDITION;
        goto out;
    }
    if (conn->advisory_locks > 0) {
        conn->advisory_locks--;
    }

out:
    PQclear(res);
    return st;
}

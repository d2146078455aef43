/* Tests for the Postgres pool against the real Postgres of scripts/test.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "closed_port_helper.h"
#include "db.h"
#include "itest.h"

static const char *admin_dsn;
static char schema[64]; /* per run, so parallel runs do not collide */

static struct cj_db_pool *new_pool(unsigned size, long long statement_ms)
{
    struct cj_db_options o = {.dsn = admin_dsn,
                              .pool_size = size,
                              .connect_timeout_s = 5,
                              .statement_timeout_ms = statement_ms,
                              .acquire_timeout_ms = 5000,
                              .application_name = "cerrojo-test-db"};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    return p;
}

static void exec_ok(struct cj_db_conn *c, const char *fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, arg);
    enum cj_status st = cj_db_exec(c, sql);
    if (st != CJ_OK) {
        fail_msg("%s: %s %s", sql, cj_db_last_sqlstate(c), cj_db_last_error(c));
    }
}

static int setup_schema(void **state)
{
    (void)state;
    snprintf(schema, sizeof(schema), "cj_itest_db_%d", (int)getpid());
    struct cj_db_pool *p = new_pool(1, 0);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    exec_ok(c, "CREATE SCHEMA %s", schema);
    exec_ok(c, "CREATE TABLE %s.items (name text PRIMARY KEY, data bytea)",
            schema);
    cj_db_release(c);
    cj_db_pool_free(p);
    return 0;
}

static int teardown_schema(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 0);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    exec_ok(c, "DROP SCHEMA %s CASCADE", schema);
    cj_db_release(c);
    cj_db_pool_free(p);
    return 0;
}

static void insert_item(struct cj_db_conn *c, const char *name,
                        enum cj_status expected)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.items (name, data) VALUES ($1, $2)", schema);
    const unsigned char data[] = {0x00, 0xff, 0x10};
    const struct cj_db_param params[] = {CJ_DB_TEXT(name),
                                         CJ_DB_BIN(data, sizeof(data))};
    assert_int_equal(cj_db_query(c, sql, params, 2, false, NULL), expected);
}

static long count_items(struct cj_db_conn *c, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.items WHERE name = $1",
             schema);
    const struct cj_db_param params[] = {CJ_DB_TEXT(name)};
    PGresult *res = NULL;
    assert_int_equal(cj_db_query(c, sql, params, 1, false, &res), CJ_OK);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void test_query_round_trips_binary_param(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(2, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    insert_item(c, "binary", CJ_OK);

    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT data FROM %s.items WHERE name = $1",
             schema);
    const struct cj_db_param params[] = {CJ_DB_TEXT("binary")};
    PGresult *res = NULL;
    assert_int_equal(cj_db_query(c, sql, params, 1, true, &res), CJ_OK);
    assert_int_equal(PQntuples(res), 1);
    assert_int_equal(PQgetlength(res, 0, 0), 3);
    const unsigned char expected[] = {0x00, 0xff, 0x10};
    assert_memory_equal(PQgetvalue(res, 0, 0), expected, 3);
    PQclear(res);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_unique_violation_maps_to_exists(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    insert_item(c, "twice", CJ_OK);
    insert_item(c, "twice", CJ_ERR_EXISTS);
    assert_string_equal(cj_db_last_sqlstate(c), "23505");
    /* The primary message names the constraint, never the row's values. */
    assert_null(strstr(cj_db_last_error(c), "twice"));
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_syntax_error_maps_to_internal(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(cj_db_exec(c, "SELEC 1"), CJ_ERR_INTERNAL);
    assert_string_equal(cj_db_last_sqlstate(c), "42601");
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_statement_timeout_maps_to_timeout(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 200);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(cj_db_exec(c, "SELECT pg_sleep(5)"), CJ_ERR_TIMEOUT);
    assert_string_equal(cj_db_last_sqlstate(c), "57014");
    assert_int_equal(cj_db_exec(c, "SELECT 1"), CJ_OK);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_acquire_times_out_when_pool_busy(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *held = NULL;
    struct cj_db_conn *other = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &held), CJ_OK);
    assert_int_equal(cj_db_acquire(p, 100, &other), CJ_ERR_TIMEOUT);
    assert_null(other);
    cj_db_release(held);
    assert_int_equal(cj_db_acquire(p, 100, &other), CJ_OK);
    cj_db_release(other);
    cj_db_pool_free(p);
}

/* A statement that would outlast any test unless it is cancelled. */
#define LONG_SLEEP_SQL "SELECT pg_sleep(30)"

struct sleeper {
    struct cj_db_conn *conn;
    enum cj_status status;
    char sqlstate[8];
};

static void *run_long_sleep(void *arg)
{
    struct sleeper *s = arg;

    s->status = cj_db_exec(s->conn, LONG_SLEEP_SQL);
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s",
             cj_db_last_sqlstate(s->conn));
    return NULL;
}

/* Waits until the server runs the sleeper's statement, so that the cancel
 * request cannot arrive before it. */
static void wait_for_sleep_running(struct cj_db_pool *p)
{
    struct cj_db_conn *c = NULL;

    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    for (int i = 0; i < 100; i++) {
        PGresult *res = NULL;
        assert_int_equal(
            cj_db_query(c,
                        "SELECT count(*) FROM pg_stat_activity WHERE "
                        "state = 'active' AND query = '" LONG_SLEEP_SQL "'",
                        NULL, 0, false, &res),
            CJ_OK);
        bool running = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
        PQclear(res);
        if (running) {
            break;
        }
        usleep(50 * 1000);
    }
    cj_db_release(c);
}

static void test_pool_cancel_ends_running_statement(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(2, 0);
    struct sleeper s = {0};
    struct cj_db_conn *after = NULL;
    pthread_t t;

    assert_int_equal(cj_db_acquire(p, -1, &s.conn), CJ_OK);
    assert_int_equal(pthread_create(&t, NULL, run_long_sleep, &s), 0);
    wait_for_sleep_running(p);
    cj_db_pool_cancel(p);
    pthread_join(t, NULL);
    assert_int_equal(s.status, CJ_ERR_UNAVAILABLE);
    assert_string_equal(s.sqlstate, "57014");
    /* A closing pool runs nothing more and lends nothing more. */
    assert_int_equal(cj_db_exec(s.conn, "SELECT 1"), CJ_ERR_UNAVAILABLE);
    cj_db_release(s.conn);
    assert_int_equal(cj_db_acquire(p, 100, &after), CJ_ERR_UNAVAILABLE);
    assert_null(after);
    cj_db_pool_free(p);
}

static void test_release_rolls_back_open_transaction(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "abandoned", CJ_OK);
    cj_db_release(c);

    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(count_items(c, "abandoned"), 0);
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "committed", CJ_OK);
    assert_int_equal(cj_db_commit(c), CJ_OK);
    assert_int_equal(count_items(c, "committed"), 1);
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "rolled_back", CJ_OK);
    assert_int_equal(cj_db_rollback(c), CJ_OK);
    assert_int_equal(count_items(c, "rolled_back"), 0);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_commit_of_failed_transaction_fails(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    insert_item(c, "dup", CJ_OK);
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "never", CJ_OK);
    insert_item(c, "dup", CJ_ERR_EXISTS);
    assert_int_equal(cj_db_commit(c), CJ_ERR_INTERNAL);
    assert_int_equal(count_items(c, "never"), 0);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static char *backend_pid(struct cj_db_conn *c)
{
    PGresult *res = NULL;
    assert_int_equal(
        cj_db_query(c, "SELECT pg_backend_pid()", NULL, 0, false, &res), CJ_OK);
    char *pid = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return pid;
}

static void test_terminated_connection_reopens(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_pool *killer = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    char *pid = backend_pid(c);
    assert_int_equal(cj_db_statement_cache_count(c), 1);
    cj_db_release(c);

    struct cj_db_conn *k = NULL;
    assert_int_equal(cj_db_acquire(killer, -1, &k), CJ_OK);
    const struct cj_db_param params[] = {CJ_DB_TEXT(pid)};
    assert_int_equal(cj_db_query(k, "SELECT pg_terminate_backend($1::int)",
                                 params, 1, false, NULL),
                     CJ_OK);
    cj_db_release(k);
    usleep(200 * 1000); /* let the termination message arrive */

    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    /* The new server session has none of the old one's statements. */
    assert_int_equal(cj_db_statement_cache_count(c), 0);
    char *new_pid = backend_pid(c);
    assert_int_equal(cj_db_statement_cache_count(c), 1);
    assert_string_not_equal(pid, new_pid);
    cj_db_release(c);
    free(pid);
    free(new_pid);
    cj_db_pool_free(killer);
    cj_db_pool_free(p);
}

/* Returns the connection's gssencmode as libpq resolved it. */
static const char *conn_gssencmode(struct cj_db_conn *c, char *out, size_t size)
{
    PQconninfoOption *options = PQconninfo(cj_db_pgconn(c));
    assert_non_null(options);
    out[0] = '\0';
    for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "gssencmode") == 0 && o->val != NULL) {
            snprintf(out, size, "%s", o->val);
        }
    }
    PQconninfoFree(options);
    return out;
}

static void test_gss_encryption_off_by_default(void **state)
{
    (void)state;
    char mode[16];
    assert_null(getenv("PGGSSENCMODE"));
    struct cj_db_pool *p = new_pool(1, 0);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_string_equal(conn_gssencmode(c, mode, sizeof(mode)), "disable");
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_dsn_gssencmode_wins(void **state)
{
    (void)state;
    char dsn[512];
    char mode[16];
    snprintf(dsn, sizeof(dsn), "%s gssencmode=prefer", admin_dsn);
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .acquire_timeout_ms = 5000,
                              .application_name = "cerrojo-test-db"};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_string_equal(conn_gssencmode(c, mode, sizeof(mode)), "prefer");
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_unreachable_server_is_unavailable(void **state)
{
    (void)state;
    struct closed_port closed;
    char dsn[64];

    assert_int_equal(closed_port_hold(&closed), 0);
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=x", closed.port);
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 2,
                              .acquire_timeout_ms = 1000};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_ERR_UNAVAILABLE);
    assert_null(c);
    /* The failed slot is free again. */
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_ERR_UNAVAILABLE);
    cj_db_pool_free(p);
    closed_port_release(&closed);
}

static void test_invalid_dsn_rejected(void **state)
{
    (void)state;
    struct cj_db_options o = {.dsn = "host=127.0.0.1 nonsense_keyword=1",
                              .pool_size = 1};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_ERR_INVALID);
    assert_null(p);
}

static void test_advisory_lock_excludes_other_session(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(2, 5000);
    int64_t key = cj_db_lock_key("cerrojo.itest.lock");
    assert_true(key == cj_db_lock_key("cerrojo.itest.lock"));
    assert_true(key != cj_db_lock_key("cerrojo.itest.other"));

    struct cj_db_conn *a = NULL;
    struct cj_db_conn *b = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &a), CJ_OK);
    assert_int_equal(cj_db_acquire(p, -1, &b), CJ_OK);
    bool got = false;
    assert_int_equal(cj_db_advisory_try_lock(a, key, &got), CJ_OK);
    assert_true(got);
    assert_int_equal(cj_db_advisory_try_lock(b, key, &got), CJ_OK);
    assert_false(got);

    /* Releasing a connection frees the locks it holds. */
    cj_db_release(a);
    assert_int_equal(cj_db_advisory_try_lock(b, key, &got), CJ_OK);
    assert_true(got);
    assert_int_equal(cj_db_advisory_unlock(b, key), CJ_OK);
    assert_int_equal(cj_db_advisory_unlock(b, key), CJ_ERR_PRECONDITION);
    assert_int_equal(cj_db_advisory_lock(b, key), CJ_OK);
    assert_int_equal(cj_db_advisory_unlock(b, key), CJ_OK);
    cj_db_release(b);
    cj_db_pool_free(p);
}

/*
 * Counts this session's prepared statements with the text sql, or all of
 * them when sql is NULL, through the unprepared path so that the count does
 * not include itself.
 */
static long prepared_count(struct cj_db_conn *c, const char *sql)
{
    const struct cj_db_param params[] = {CJ_DB_TEXT(sql)};
    PGresult *res = NULL;
    enum cj_status st =
        sql != NULL ? cj_db_query_uncached(
                          c,
                          "SELECT count(*) FROM pg_prepared_statements "
                          "WHERE statement = $1",
                          params, 1, false, &res)
                    : cj_db_query_uncached(
                          c, "SELECT count(*) FROM pg_prepared_statements",
                          NULL, 0, false, &res);
    assert_int_equal(st, CJ_OK);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static void test_statement_prepared_once_per_session(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    char insert[256];
    snprintf(insert, sizeof(insert),
             "INSERT INTO %s.items (name, data) VALUES ($1, $2)", schema);
    char select[256];
    snprintf(select, sizeof(select),
             "SELECT data FROM %s.items WHERE name = $1", schema);

    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "prepared_%d", i);
        unsigned char data[] = {(unsigned char)i, 0xab};
        const struct cj_db_param params[] = {CJ_DB_TEXT(name),
                                             CJ_DB_BIN(data, sizeof(data))};
        assert_int_equal(cj_db_query(c, insert, params, 2, false, NULL), CJ_OK);
    }
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "prepared_%d", i);
        const struct cj_db_param params[] = {CJ_DB_TEXT(name)};
        PGresult *res = NULL;
        assert_int_equal(cj_db_query(c, select, params, 1, true, &res), CJ_OK);
        assert_int_equal(PQntuples(res), 1);
        assert_int_equal(PQgetlength(res, 0, 0), 2);
        const unsigned char expected[] = {(unsigned char)i, 0xab};
        assert_memory_equal(PQgetvalue(res, 0, 0), expected, 2);
        PQclear(res);
    }
    assert_int_equal(prepared_count(c, insert), 1);
    assert_int_equal(prepared_count(c, select), 1);
    assert_int_equal(prepared_count(c, NULL), 2);
    assert_int_equal(cj_db_statement_cache_count(c), 2);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_uncached_query_prepares_nothing(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    const struct cj_db_param params[] = {CJ_DB_TEXT("41")};
    PGresult *res = NULL;
    assert_int_equal(
        cj_db_query_uncached(c, "SELECT $1::int + 1", params, 1, false, &res),
        CJ_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    assert_int_equal(cj_db_exec(c, "SELECT 1"), CJ_OK);
    assert_int_equal(prepared_count(c, NULL), 0);
    assert_int_equal(cj_db_statement_cache_count(c), 0);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_prepare_error_caches_nothing(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    static const char bad[] = "SELEC $1::int";
    const struct cj_db_param params[] = {CJ_DB_TEXT("1")};

    /* The unprepared path gives the error as it was before the cache. */
    assert_int_equal(cj_db_query_uncached(c, bad, params, 1, false, NULL),
                     CJ_ERR_INTERNAL);
    char expected_error[256];
    snprintf(expected_error, sizeof(expected_error), "%s", cj_db_last_error(c));
    assert_string_equal(cj_db_last_sqlstate(c), "42601");

    for (int i = 0; i < 2; i++) {
        assert_int_equal(cj_db_query(c, bad, params, 1, false, NULL),
                         CJ_ERR_INTERNAL);
        assert_string_equal(cj_db_last_sqlstate(c), "42601");
        assert_string_equal(cj_db_last_error(c), expected_error);
        assert_int_equal(cj_db_statement_cache_count(c), 0);
    }
    assert_int_equal(prepared_count(c, NULL), 0);

    /* A missing table fails the same way and is not cached either. */
    assert_int_equal(cj_db_query(c, "SELECT * FROM cj_itest_no_such_table",
                                 NULL, 0, false, NULL),
                     CJ_ERR_INTERNAL);
    assert_string_equal(cj_db_last_sqlstate(c), "42P01");
    assert_int_equal(cj_db_statement_cache_count(c), 0);

    PGresult *res = NULL;
    assert_int_equal(
        cj_db_query(c, "SELECT $1::int + 1", params, 1, false, &res), CJ_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "2");
    PQclear(res);
    assert_string_equal(cj_db_last_sqlstate(c), "");
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_prepare_error_fails_transaction(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "prepare_error_txn", CJ_OK);
    assert_int_equal(cj_db_query(c, "SELEC 1", NULL, 0, false, NULL),
                     CJ_ERR_INTERNAL);
    assert_int_equal(PQtransactionStatus(cj_db_pgconn(c)), PQTRANS_INERROR);

    /* A cached statement now fails too: the transaction is aborted. */
    insert_item(c, "prepare_error_txn_2", CJ_ERR_INTERNAL);
    assert_string_equal(cj_db_last_sqlstate(c), "25P02");
    assert_int_equal(cj_db_commit(c), CJ_ERR_INTERNAL);
    assert_int_equal(count_items(c, "prepare_error_txn"), 0);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_deallocate_all_prepares_again(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    insert_item(c, "deallocated", CJ_OK);
    assert_int_equal(count_items(c, "deallocated"), 1);
    assert_int_equal(cj_db_exec(c, "DEALLOCATE ALL"), CJ_OK);
    assert_int_equal(prepared_count(c, NULL), 0);

    assert_int_equal(count_items(c, "deallocated"), 1);
    insert_item(c, "deallocated_2", CJ_OK);
    assert_int_equal(count_items(c, "deallocated_2"), 1);
    assert_int_equal(prepared_count(c, NULL), 2);
    assert_int_equal(cj_db_statement_cache_count(c), 2);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_deallocate_all_inside_transaction(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    insert_item(c, "dealloc_txn", CJ_OK);
    assert_int_equal(cj_db_exec(c, "DEALLOCATE ALL"), CJ_OK);

    /* Inside a transaction block the failure is returned, not retried. */
    assert_int_equal(cj_db_begin(c), CJ_OK);
    insert_item(c, "dealloc_txn_2", CJ_ERR_INTERNAL);
    assert_string_equal(cj_db_last_sqlstate(c), "26000");
    assert_int_equal(PQtransactionStatus(cj_db_pgconn(c)), PQTRANS_INERROR);
    assert_int_equal(cj_db_rollback(c), CJ_OK);

    insert_item(c, "dealloc_txn_2", CJ_OK);
    assert_int_equal(count_items(c, "dealloc_txn_2"), 1);
    cj_db_release(c);
    cj_db_pool_free(p);
}

/* Creates table `name` in the test schema with one row (a = 1). */
static void create_one_row_table(struct cj_db_conn *c, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE TABLE %s.%s (a int)", schema, name);
    assert_int_equal(cj_db_exec(c, sql), CJ_OK);
    snprintf(sql, sizeof(sql), "INSERT INTO %s.%s VALUES (1)", schema, name);
    assert_int_equal(cj_db_exec(c, sql), CJ_OK);
}

static void add_column_b(struct cj_db_conn *c, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "ALTER TABLE %s.%s ADD COLUMN b int NOT NULL DEFAULT 7", schema,
             name);
    assert_int_equal(cj_db_exec(c, sql), CJ_OK);
}

/* Runs sql (a SELECT * of a one-row table) and returns its column count. */
static int select_star_columns(struct cj_db_conn *c, const char *sql,
                               enum cj_status expected)
{
    PGresult *res = NULL;
    assert_int_equal(cj_db_query(c, sql, NULL, 0, false, &res), expected);
    if (expected != CJ_OK) {
        return 0;
    }
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    int n = PQnfields(res);
    if (n == 2) {
        assert_string_equal(PQfname(res, 1), "b");
        assert_string_equal(PQgetvalue(res, 0, 1), "7");
    }
    PQclear(res);
    return n;
}

static void test_select_star_sees_added_column(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    create_one_row_table(c, "widened");
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s.widened", schema);
    assert_int_equal(select_star_columns(c, sql, CJ_OK), 1);
    assert_int_equal(prepared_count(c, sql), 1);

    add_column_b(c, "widened");
    assert_int_equal(select_star_columns(c, sql, CJ_OK), 2);
    /* The old statement was deallocated, not left beside the new one. */
    assert_int_equal(prepared_count(c, sql), 1);
    assert_int_equal(cj_db_statement_cache_count(c), 1);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_added_column_inside_transaction(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    create_one_row_table(c, "widened_txn");
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s.widened_txn", schema);
    assert_int_equal(select_star_columns(c, sql, CJ_OK), 1);
    add_column_b(c, "widened_txn");

    assert_int_equal(cj_db_begin(c), CJ_OK);
    select_star_columns(c, sql, CJ_ERR_INTERNAL);
    assert_string_equal(cj_db_last_sqlstate(c), "0A000");
    assert_int_equal(PQtransactionStatus(cj_db_pgconn(c)), PQTRANS_INERROR);
    assert_int_equal(cj_db_rollback(c), CJ_OK);

    assert_int_equal(select_star_columns(c, sql, CJ_OK), 2);
    assert_int_equal(prepared_count(c, sql), 1);
    assert_int_equal(prepared_count(c, NULL), 1);
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void test_full_cache_runs_unprepared(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(1, 5000);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    const struct cj_db_param params[] = {CJ_DB_TEXT("1000")};
    for (int i = 0; i < CJ_DB_STATEMENT_CACHE_MAX + 3; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT $1::int + %d", i);
        PGresult *res = NULL;
        assert_int_equal(cj_db_query(c, sql, params, 1, false, &res), CJ_OK);
        assert_int_equal(strtol(PQgetvalue(res, 0, 0), NULL, 10), 1000 + i);
        PQclear(res);
    }
    assert_int_equal(cj_db_statement_cache_count(c), CJ_DB_STATEMENT_CACHE_MAX);
    assert_int_equal(prepared_count(c, NULL), CJ_DB_STATEMENT_CACHE_MAX);
    cj_db_release(c);
    cj_db_pool_free(p);
}

#define WORKERS            4
#define QUERIES_PER_WORKER 50

static void *run_queries(void *arg)
{
    struct cj_db_pool *p = arg;
    long failures = 0;
    for (int i = 0; i < QUERIES_PER_WORKER; i++) {
        struct cj_db_conn *c = NULL;
        if (cj_db_acquire(p, -1, &c) != CJ_OK) {
            failures++;
            continue;
        }
        if (cj_db_exec(c, "SELECT 1") != CJ_OK) {
            failures++;
        }
        cj_db_release(c);
    }
    return (void *)failures;
}

static void test_threads_share_small_pool(void **state)
{
    (void)state;
    struct cj_db_pool *p = new_pool(2, 5000);
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, run_queries, p), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        void *failures = NULL;
        pthread_join(t[i], &failures);
        assert_int_equal((long)failures, 0);
    }
    cj_db_pool_free(p);
}

int main(void)
{
    admin_dsn = itest_require_env("test_db", "CERROJO_TEST_PG_ADMIN_DSN");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_round_trips_binary_param),
        cmocka_unit_test(test_unique_violation_maps_to_exists),
        cmocka_unit_test(test_syntax_error_maps_to_internal),
        cmocka_unit_test(test_statement_timeout_maps_to_timeout),
        cmocka_unit_test(test_acquire_times_out_when_pool_busy),
        cmocka_unit_test(test_pool_cancel_ends_running_statement),
        cmocka_unit_test(test_release_rolls_back_open_transaction),
        cmocka_unit_test(test_commit_of_failed_transaction_fails),
        cmocka_unit_test(test_terminated_connection_reopens),
        cmocka_unit_test(test_unreachable_server_is_unavailable),
        cmocka_unit_test(test_invalid_dsn_rejected),
        cmocka_unit_test(test_gss_encryption_off_by_default),
        cmocka_unit_test(test_dsn_gssencmode_wins),
        cmocka_unit_test(test_advisory_lock_excludes_other_session),
        cmocka_unit_test(test_threads_share_small_pool),
        cmocka_unit_test(test_statement_prepared_once_per_session),
        cmocka_unit_test(test_uncached_query_prepares_nothing),
        cmocka_unit_test(test_prepare_error_caches_nothing),
        cmocka_unit_test(test_prepare_error_fails_transaction),
        cmocka_unit_test(test_deallocate_all_prepares_again),
        cmocka_unit_test(test_deallocate_all_inside_transaction),
        cmocka_unit_test(test_select_star_sees_added_column),
        cmocka_unit_test(test_added_column_inside_transaction),
        cmocka_unit_test(test_full_cache_runs_unprepared),
    };
    return cmocka_run_group_tests(tests, setup_schema, teardown_schema);
}

/*
 * Tests for the Postgres clock reading of the services' clock checks. The
 * pool calls (cj_db_acquire, cj_db_query, cj_db_release and
 * cj_db_pool_closing) are replaced at link time (-Wl,--wrap=) by doubles
 * that return the status a test sets, so no Postgres is needed. The log
 * goes to a temporary file whose lines the tests count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db_clock.h"
#include "log.h"

/* Postgres's clock minus the host's that the query double returns. */
#define TEST_OFFSET_MS 5000
/* Slack for the host's clock moving during one reading, in ms. */
#define TEST_SLACK_MS 1000
/* Size of the buffer the log file is read into. */
#define TEST_LOG_MAX 65536
/* PostgreSQL's type oid of bigint (int8). */
#define TEST_INT8_OID 20

static const struct cj_db_clock_events events = {
    .pool_busy = "test.postgres_pool_busy",
    .pool_free = "test.postgres_pool_free",
    .unreachable = "test.postgres_unreachable",
    .reachable = "test.postgres_reachable",
};

/* What the doubles return, and what they saw. */
static enum cj_status acquire_status;
static enum cj_status query_status;
static const char *query_value; /* NULL: the host's clock + offset */
static bool pool_closing;
static unsigned acquired;
static unsigned released;
static unsigned queries;

/* Stand-ins for the pool and a connection; only their addresses count. */
static int pool_token;
static int conn_token;
#define TEST_POOL ((struct cj_db_pool *)&pool_token)
#define TEST_CONN ((struct cj_db_conn *)&conn_token)

static FILE *log_file;

enum cj_status __wrap_cj_db_acquire(struct cj_db_pool *pool,
                                    long long timeout_ms,
                                    struct cj_db_conn **out);
enum cj_status __wrap_cj_db_query(struct cj_db_conn *conn, const char *sql,
                                  const struct cj_db_param *params, int nparams,
                                  bool binary_results, PGresult **result);
void __wrap_cj_db_release(struct cj_db_conn *conn);
bool __wrap_cj_db_pool_closing(const struct cj_db_pool *pool);

enum cj_status __wrap_cj_db_acquire(struct cj_db_pool *pool,
                                    long long timeout_ms,
                                    struct cj_db_conn **out)
{
    assert_ptr_equal(pool, TEST_POOL);
    /* Negative: the pool's own acquire timeout. */
    assert_true(timeout_ms < 0);
    if (acquire_status != CJ_OK) {
        *out = NULL;
        return acquire_status;
    }
    acquired++;
    *out = TEST_CONN;
    return CJ_OK;
}

static int64_t host_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds a one-row, one-column bigint result as libpq would return it. */
static PGresult *clock_result(const char *value)
{
    PGresAttDesc column = {
        .name = (char *)"int8",
        .typid = TEST_INT8_OID,
        .typlen = 8,
        .atttypmod = -1,
    };
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

    assert_non_null(res);
    assert_int_equal(PQsetResultAttrs(res, 1, &column), 1);
    assert_int_equal(PQsetvalue(res, 0, 0, (char *)value, (int)strlen(value)),
                     1);
    return res;
}

enum cj_status __wrap_cj_db_query(struct cj_db_conn *conn, const char *sql,
                                  const struct cj_db_param *params, int nparams,
                                  bool binary_results, PGresult **result)
{
    char value[32];

    assert_ptr_equal(conn, TEST_CONN);
    assert_non_null(strstr(sql, "clock_timestamp()"));
    assert_null(params);
    assert_int_equal(nparams, 0);
    assert_false(binary_results);
    queries++;
    *result = NULL;
    if (query_status != CJ_OK) {
        return query_status;
    }
    if (query_value == NULL) {
        snprintf(value, sizeof(value), "%lld",
                 (long long)(host_clock_ms() + TEST_OFFSET_MS));
        *result = clock_result(value);
    } else {
        *result = clock_result(query_value);
    }
    return CJ_OK;
}

void __wrap_cj_db_release(struct cj_db_conn *conn)
{
    if (conn != NULL) {
        assert_ptr_equal(conn, TEST_CONN);
        released++;
    }
}

bool __wrap_cj_db_pool_closing(const struct cj_db_pool *pool)
{
    assert_ptr_equal(pool, TEST_POOL);
    return pool_closing;
}

/* Returns everything logged since setup, as a string. */
static const char *read_log(void)
{
    static char text[TEST_LOG_MAX];
    size_t len;

    assert_int_equal(fflush(log_file), 0);
    rewind(log_file);
    len = fread(text, 1, sizeof(text) - 1, log_file);
    text[len] = '\0';
    return text;
}

/* Returns how many lines of the log have event `event`. */
static unsigned count_events(const char *event)
{
    char needle[128];
    unsigned count = 0;

    snprintf(needle, sizeof(needle), "\"event\":\"%s\"", event);
    for (const char *p = strstr(read_log(), needle); p != NULL;
         p = strstr(p + 1, needle)) {
        count++;
    }
    return count;
}

/* Returns whether the log contains `text`. */
static bool log_contains(const char *text)
{
    return strstr(read_log(), text) != NULL;
}

static int setup(void **state)
{
    (void)state;
    acquire_status = CJ_OK;
    query_status = CJ_OK;
    query_value = NULL;
    pool_closing = false;
    acquired = 0;
    released = 0;
    queries = 0;
    log_file = tmpfile();
    assert_non_null(log_file);
    cj_log_init("test", CJ_LOG_INFO);
    cj_log_set_fd(fileno(log_file));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cj_log_set_fd(STDERR_FILENO);
    fclose(log_file);
    log_file = NULL;
    return 0;
}

static void test_read_measures_offset(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_true(offset >= TEST_OFFSET_MS - TEST_SLACK_MS);
    assert_true(offset <= TEST_OFFSET_MS + TEST_SLACK_MS);
    assert_int_equal(queries, 1);
    assert_int_equal(released, acquired);
    assert_int_equal(count_events(events.pool_busy), 0);
    assert_int_equal(count_events(events.unreachable), 0);
    assert_int_equal(count_events(events.reachable), 0);
}

static void test_busy_pool_logged_once(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    acquire_status = CJ_ERR_TIMEOUT;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                         CJ_DB_CLOCK_POOL_BUSY);
    }
    assert_int_equal(queries, 0);
    assert_int_equal(count_events(events.pool_busy), 1);
    assert_int_equal(count_events(events.pool_free), 0);
    /* A busy pool does not mean that Postgres is unreachable. */
    assert_int_equal(count_events(events.unreachable), 0);

    acquire_status = CJ_OK;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_int_equal(count_events(events.pool_busy), 1);
    assert_int_equal(count_events(events.pool_free), 1);
}

static void test_unreachable_logged_once(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    acquire_status = CJ_ERR_UNAVAILABLE;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                         CJ_DB_CLOCK_UNREACHABLE);
    }
    assert_int_equal(count_events(events.unreachable), 1);
    assert_true(log_contains("\"status\":\"unavailable\""));
    assert_int_equal(count_events(events.pool_busy), 0);

    acquire_status = CJ_OK;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_int_equal(count_events(events.unreachable), 1);
    assert_int_equal(count_events(events.reachable), 1);
}

static void test_recovery_unlogged_without_event(void **state)
{
    const struct cj_db_clock_events quiet = {
        .pool_busy = events.pool_busy,
        .pool_free = events.pool_free,
        .unreachable = events.unreachable,
        .reachable = NULL,
    };
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    acquire_status = CJ_ERR_UNAVAILABLE;
    assert_int_equal(cj_db_clock_read(&check, &quiet, TEST_POOL, &offset),
                     CJ_DB_CLOCK_UNREACHABLE);
    acquire_status = CJ_OK;
    assert_int_equal(cj_db_clock_read(&check, &quiet, TEST_POOL, &offset),
                     CJ_DB_CLOCK_MEASURED);
    assert_int_equal(count_events(events.unreachable), 1);
    assert_int_equal(count_events(events.reachable), 0);

    /* The next outage is logged again. */
    acquire_status = CJ_ERR_UNAVAILABLE;
    assert_int_equal(cj_db_clock_read(&check, &quiet, TEST_POOL, &offset),
                     CJ_DB_CLOCK_UNREACHABLE);
    assert_int_equal(count_events(events.unreachable), 2);
}

static void test_failed_query_unreachable(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    /* A statement timeout is a failed query, not a busy pool. */
    query_status = CJ_ERR_TIMEOUT;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_UNREACHABLE);
    assert_int_equal(queries, 1);
    assert_int_equal(released, 1);
    assert_int_equal(count_events(events.unreachable), 1);
    assert_true(log_contains("\"status\":\"timeout\""));
    assert_int_equal(count_events(events.pool_busy), 0);
}

static void test_malformed_value_unreachable(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    query_value = "12x";
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_UNREACHABLE);
    assert_int_equal(released, 1);
    assert_int_equal(count_events(events.unreachable), 1);
    assert_true(log_contains("\"status\":\"internal\""));
}

static void test_shutdown_cancel_unlogged(void **state)
{
    struct cj_db_clock_check check = {0};
    int64_t offset = 0;

    (void)state;
    pool_closing = true;
    acquire_status = CJ_ERR_UNAVAILABLE;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_CANCELLED);
    acquire_status = CJ_OK;
    query_status = CJ_ERR_TIMEOUT;
    assert_int_equal(cj_db_clock_read(&check, &events, TEST_POOL, &offset),
                     CJ_DB_CLOCK_CANCELLED);
    assert_int_equal(released, 1);
    assert_int_equal(count_events(events.unreachable), 0);
    assert_false(check.unreachable_logged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_measures_offset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_busy_pool_logged_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_logged_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recovery_unlogged_without_event,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_query_unreachable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_value_unreachable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_cancel_unlogged, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

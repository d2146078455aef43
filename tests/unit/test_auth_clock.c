/*
 * Tests for auth's corrected clock: auth_clock_check stores Postgres's
 * offset and auth_now_ms adds it to the host's clock. cj_db_clock_read and
 * auth_schema_check are replaced at link time (-Wl,--wrap=) by doubles
 * that return the result and offset a test sets, so no Postgres is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "auth_clock.h"
#include "auth_schema.h"
#include "auth_service.h"

/* Offsets within the default bound, as from a host clock 3 s off. */
#define TEST_AHEAD_MS  3000
#define TEST_BEHIND_MS (-3000)

static enum cj_db_clock_result read_result;
static int64_t read_offset_ms;

enum cj_db_clock_result
__wrap_cj_db_clock_read(struct cj_db_clock_check *check,
                        const struct cj_db_clock_events *events,
                        struct cj_db_pool *pool, int64_t *offset_ms);
enum cj_status __wrap_auth_schema_check(struct auth_service *svc, char *missing,
                                        size_t missing_size);

enum cj_db_clock_result
__wrap_cj_db_clock_read(struct cj_db_clock_check *check,
                        const struct cj_db_clock_events *events,
                        struct cj_db_pool *pool, int64_t *offset_ms)
{
    (void)check;
    (void)events;
    (void)pool;
    if (read_result == CJ_DB_CLOCK_MEASURED) {
        *offset_ms = read_offset_ms;
    }
    return read_result;
}

enum cj_status __wrap_auth_schema_check(struct auth_service *svc, char *missing,
                                        size_t missing_size)
{
    (void)svc;
    if (missing_size > 0) {
        missing[0] = '\0';
    }
    return CJ_OK;
}

static int64_t host_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asserts that auth_now_ms is the host's clock plus offset_ms. */
static void assert_now_shifted_by(const struct auth_service *svc,
                                  int64_t offset_ms)
{
    int64_t before = host_now_ms();
    int64_t now = auth_now_ms(svc);
    int64_t after = host_now_ms();

    assert_true(now >= before + offset_ms);
    assert_true(now <= after + offset_ms);
}

/* Runs one check whose reading returns result with offset_ms. */
static void check_with(struct auth_service *svc, enum cj_db_clock_result result,
                       int64_t offset_ms)
{
    read_result = result;
    read_offset_ms = offset_ms;
    auth_clock_check(svc);
}

static int setup(void **state)
{
    struct auth_service *svc = calloc(1, sizeof(*svc));

    if (svc == NULL) {
        return -1;
    }
    svc->cfg.clock_max_offset_s = 5;
    *state = svc;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_unmeasured_clock_is_host_clock(void **state)
{
    assert_now_shifted_by(*state, 0);
}

static void test_postgres_ahead_moves_clock_forward(void **state)
{
    struct auth_service *svc = *state;

    check_with(svc, CJ_DB_CLOCK_MEASURED, TEST_AHEAD_MS);
    assert_int_equal(svc->clock_offset_ms, TEST_AHEAD_MS);
    assert_now_shifted_by(svc, TEST_AHEAD_MS);
}

static void test_postgres_behind_moves_clock_back(void **state)
{
    struct auth_service *svc = *state;

    check_with(svc, CJ_DB_CLOCK_MEASURED, TEST_BEHIND_MS);
    assert_int_equal(svc->clock_offset_ms, TEST_BEHIND_MS);
    assert_now_shifted_by(svc, TEST_BEHIND_MS);
}

static void test_new_measurement_replaces_offset(void **state)
{
    struct auth_service *svc = *state;

    check_with(svc, CJ_DB_CLOCK_MEASURED, TEST_AHEAD_MS);
    check_with(svc, CJ_DB_CLOCK_MEASURED, TEST_BEHIND_MS);
    assert_now_shifted_by(svc, TEST_BEHIND_MS);
}

static void test_failed_reading_keeps_offset(void **state)
{
    struct auth_service *svc = *state;

    check_with(svc, CJ_DB_CLOCK_MEASURED, TEST_AHEAD_MS);
    check_with(svc, CJ_DB_CLOCK_UNREACHABLE, 0);
    assert_now_shifted_by(svc, TEST_AHEAD_MS);
    check_with(svc, CJ_DB_CLOCK_POOL_BUSY, 0);
    assert_now_shifted_by(svc, TEST_AHEAD_MS);
    check_with(svc, CJ_DB_CLOCK_CANCELLED, 0);
    assert_now_shifted_by(svc, TEST_AHEAD_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unmeasured_clock_is_host_clock,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_postgres_ahead_moves_clock_forward,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_postgres_behind_moves_clock_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_measurement_replaces_offset,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_reading_keeps_offset, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

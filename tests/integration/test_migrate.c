/*
 * Tests for the migration runner: each test run gets its own database,
 * migrations folder and roles, so it never disturbs the database that
 * scripts/test.sh migrated. One test checks that database's real roles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "db.h"
#include "itest.h"
#include "migrate.h"

static const char *admin_dsn;
static char database[64];
static char test_dsn[512];
static char dir[64];
static char kms_role[64];
static char auth_role[64];
static struct cj_migrate_schema schemas[2];

/* Runs one statement with the admin DSN, on the database it names. */
static void admin_exec(const char *dsn, const char *sql)
{
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .acquire_timeout_ms = 5000};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    enum cj_status st = cj_db_exec(c, sql);
    if (st != CJ_OK) {
        fail_msg("%s: %s", sql, cj_db_last_error(c));
    }
    cj_db_release(c);
    cj_db_pool_free(p);
}

static void write_file(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *rel)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_int_equal(unlink(path), 0);
}

static const char *KMS_001 = "CREATE SCHEMA IF NOT EXISTS kms;\n"
                             "CREATE TABLE kms.keys (id int PRIMARY KEY, "
                             "v text);\n"
                             "INSERT INTO kms.keys VALUES (1, 'one');\n";
static const char *KMS_002 = "ALTER TABLE kms.keys ADD COLUMN note text;\n";
static const char *AUTH_001 = "CREATE TABLE auth.users (id int PRIMARY KEY);\n"
                              "INSERT INTO auth.users VALUES (7);\n";

static int setup(void **state)
{
    (void)state;
    int pid = (int)getpid();
    snprintf(database, sizeof(database), "cj_itest_migrate_%d", pid);
    snprintf(kms_role, sizeof(kms_role), "cj_itest_kms_%d", pid);
    snprintf(auth_role, sizeof(auth_role), "cj_itest_auth_%d", pid);
    snprintf(test_dsn, sizeof(test_dsn), "%s dbname=%s", admin_dsn, database);
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", database);
    admin_exec(admin_dsn, sql);

    snprintf(dir, sizeof(dir), "/tmp/cj-itest-migrations-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/kms", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/auth", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file("kms/001_keys.sql", KMS_001);
    write_file("kms/002_note.sql", KMS_002);
    write_file("auth/001_users.sql", AUTH_001);

    schemas[0] = (struct cj_migrate_schema){
        .schema = "kms", .role = kms_role, .password = "kms-test-password"};
    schemas[1] = (struct cj_migrate_schema){
        .schema = "auth", .role = auth_role, .password = NULL};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             database);
    admin_exec(admin_dsn, sql);
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s, %s", kms_role,
             auth_role);
    admin_exec(admin_dsn, sql);
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    return 0;
}

static enum cj_status run(struct cj_migrate_report *report, char *err,
                          size_t err_size, bool dry_run)
{
    const struct cj_migrate_options o = {.dsn = test_dsn,
                                         .dir = dir,
                                         .schemas = schemas,
                                         .schema_count = 2,
                                         .lock_timeout_s = 1,
                                         .dry_run = dry_run};
    return cj_migrate_run(&o, report, err, err_size);
}

/* Runs `sql` on the test database as `role`; returns its status. */
static enum cj_status query_as(const char *role, const char *sql)
{
    char dsn[640];
    snprintf(dsn, sizeof(dsn), "%s user=%s", test_dsn, role);
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .acquire_timeout_ms = 5000};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    enum cj_status st = cj_db_exec(c, sql);
    cj_db_release(c);
    cj_db_pool_free(p);
    return st;
}

static void test_second_run_applies_nothing(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];

    assert_int_equal(run(&report, err, sizeof(err), true), CJ_OK);
    assert_int_equal(report.applied, 3); /* pending, in a dry run */

    assert_int_equal(run(&report, err, sizeof(err), false), CJ_OK);
    assert_int_equal(report.applied, 3);
    assert_int_equal(report.current, 0);

    assert_int_equal(run(&report, err, sizeof(err), false), CJ_OK);
    assert_int_equal(report.applied, 0);
    assert_int_equal(report.current, 3);
}

static void test_empty_folder_is_rejected(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    char empty[64];
    char sub[128];
    snprintf(empty, sizeof(empty), "/tmp/cj-itest-empty-XXXXXX");
    assert_non_null(mkdtemp(empty));
    snprintf(sub, sizeof(sub), "%s/kms", empty);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/auth", empty);
    assert_int_equal(mkdir(sub, 0700), 0);
    const struct cj_migrate_options o = {.dsn = test_dsn,
                                         .dir = empty,
                                         .schemas = schemas,
                                         .schema_count = 2,
                                         .lock_timeout_s = 1};

    enum cj_status up = cj_migrate_run(&o, &report, err, sizeof(err));
    char expected[160];
    snprintf(expected, sizeof(expected),
             "%s/kms: no migration files (*.sql) for schema kms", empty);
    bool up_named_folder = strstr(err, expected) != NULL;
    struct cj_migrate_options dry = o;
    dry.dry_run = true;
    enum cj_status status = cj_migrate_run(&dry, &report, err, sizeof(err));
    bool status_named_folder = strstr(err, expected) != NULL;
    snprintf(sub, sizeof(sub), "rm -rf %s", empty);
    assert_int_equal(system(sub), 0);

    assert_int_equal(up, CJ_ERR_PRECONDITION);
    assert_true(up_named_folder);
    assert_int_equal(status, CJ_ERR_PRECONDITION);
    assert_true(status_named_folder);
}

static void test_applied_file_missing_is_rejected(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    char expected[256];
    remove_file("kms/002_note.sql");
    snprintf(expected, sizeof(expected),
             "%s/kms: lacks 1 migration(s) that kms.schema_migrations records "
             "as applied: 002_note.sql;",
             dir);

    assert_int_equal(run(&report, err, sizeof(err), true), CJ_ERR_PRECONDITION);
    assert_non_null(strstr(err, expected));
    assert_int_equal(run(&report, err, sizeof(err), false),
                     CJ_ERR_PRECONDITION);
    assert_non_null(strstr(err, expected));

    write_file("kms/002_note.sql", KMS_002);
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_OK);
    assert_int_equal(report.current, 3);
}

static void test_changed_file_is_rejected(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    write_file("kms/002_note.sql", "ALTER TABLE kms.keys ADD COLUMN x int;\n");
    assert_int_equal(run(&report, err, sizeof(err), false),
                     CJ_ERR_PRECONDITION);
    char expected[160];
    snprintf(expected, sizeof(expected),
             "%s/kms/002_note.sql: changed after it was applied", dir);
    assert_non_null(strstr(err, expected));
    write_file("kms/002_note.sql", KMS_002);
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_OK);
}

static void test_failed_file_rolls_back_and_names_line(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    write_file("kms/003_broken.sql", "CREATE TABLE kms.half (id int);\n"
                                     "\n"
                                     "SELEC 1;\n");
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_ERR_INTERNAL);
    char expected[160];
    snprintf(expected, sizeof(expected), "%s/kms/003_broken.sql:3: failed",
             dir);
    assert_non_null(strstr(err, expected));
    assert_non_null(strstr(err, "42601"));
    remove_file("kms/003_broken.sql");
    /* The first statement of the failed file was rolled back with it. */
    assert_int_equal(query_as("postgres", "SELECT * FROM kms.half"),
                     CJ_ERR_INTERNAL);
}

static void test_transaction_control_is_rejected(void **state)
{
    (void)state;
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    write_file("auth/002_commit.sql", "CREATE TABLE auth.t (id int);\n"
                                      "COMMIT;\n");
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "002_commit.sql: must not contain BEGIN"));
    remove_file("auth/002_commit.sql");
}

static void test_roles_reach_only_their_schema(void **state)
{
    (void)state;
    assert_int_equal(query_as(auth_role, "SELECT * FROM auth.users"), CJ_OK);
    assert_int_equal(query_as(auth_role, "INSERT INTO auth.users VALUES (8)"),
                     CJ_OK);
    assert_int_equal(query_as(auth_role, "SELECT * FROM kms.keys"),
                     CJ_ERR_PERMISSION);
    assert_int_equal(query_as(kms_role, "SELECT * FROM kms.keys"), CJ_OK);
    assert_int_equal(query_as(kms_role, "SELECT * FROM auth.users"),
                     CJ_ERR_PERMISSION);
    assert_int_equal(query_as(kms_role, "DELETE FROM kms.schema_migrations"),
                     CJ_ERR_PERMISSION);
    assert_int_equal(query_as(kms_role, "CREATE TABLE kms.extra (id int)"),
                     CJ_ERR_PERMISSION);
}

static void test_held_lock_times_out(void **state)
{
    (void)state;
    struct cj_db_options o = {.dsn = test_dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .acquire_timeout_ms = 5000};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(
        cj_db_advisory_lock(c, cj_db_lock_key(CJ_MIGRATE_LOCK_NAME)), CJ_OK);

    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_ERR_TIMEOUT);
    assert_non_null(strstr(err, "another migration runner"));

    cj_db_release(c);
    cj_db_pool_free(p);
    assert_int_equal(run(&report, err, sizeof(err), false), CJ_OK);
}

static void test_bad_schema_name_rejected(void **state)
{
    (void)state;
    struct cj_migrate_schema bad = {.schema = "kms; DROP", .role = "x"};
    const struct cj_migrate_options o = {.dsn = test_dsn,
                                         .dir = dir,
                                         .schemas = &bad,
                                         .schema_count = 1,
                                         .lock_timeout_s = 1};
    struct cj_migrate_report report;
    char err[CJ_MIGRATE_ERROR_MAX];
    assert_int_equal(cj_migrate_run(&o, &report, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "invalid name"));
}

/* The database scripts/test.sh migrated with cerrojo-migrate. */
static void test_real_auth_role_cannot_read_kms(void **state)
{
    (void)state;
    char dsn[640];
    snprintf(dsn, sizeof(dsn), "%s user=cerrojo_auth", admin_dsn);
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .acquire_timeout_ms = 5000};
    struct cj_db_pool *p = NULL;
    assert_int_equal(cj_db_pool_new(&o, &p), CJ_OK);
    struct cj_db_conn *c = NULL;
    assert_int_equal(cj_db_acquire(p, -1, &c), CJ_OK);
    assert_int_equal(cj_db_exec(c, "SELECT * FROM auth.schema_migrations"),
                     CJ_OK);
    assert_int_equal(cj_db_exec(c, "SELECT * FROM kms.schema_migrations"),
                     CJ_ERR_PERMISSION);
    cj_db_release(c);
    cj_db_pool_free(p);
}

int main(void)
{
    admin_dsn = itest_require_env("test_migrate", "CERROJO_TEST_PG_ADMIN_DSN");
    /* Order matters: the later tests start from the first one's state. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_run_applies_nothing),
        cmocka_unit_test(test_empty_folder_is_rejected),
        cmocka_unit_test(test_applied_file_missing_is_rejected),
        cmocka_unit_test(test_changed_file_is_rejected),
        cmocka_unit_test(test_failed_file_rolls_back_and_names_line),
        cmocka_unit_test(test_transaction_control_is_rejected),
        cmocka_unit_test(test_roles_reach_only_their_schema),
        cmocka_unit_test(test_held_lock_times_out),
        cmocka_unit_test(test_bad_schema_name_rejected),
        cmocka_unit_test(test_real_auth_role_cannot_read_kms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

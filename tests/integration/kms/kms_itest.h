/*
 * Shared by the kms integration tests: a database of their own, migrated
 * with the project's kms migrations and a kms role of their own, so tests
 * can run beside other developers' tests on the same Postgres.
 */
#ifndef KMS_ITEST_H
#define KMS_ITEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "itest.h"
#include "migrate.h"

struct kms_itest_db {
    const char *admin_dsn;
    char database[64];
    char role[64];
    char admin_db_dsn[512]; /* admin role on the test database */
    char kms_dsn[512];      /* the kms role on the test database */
};

/*
 * Opens a pool of one connection on dsn and borrows that connection. Returns
 * CJ_OK or the status of the step that failed. The caller releases *conn and
 * frees *pool on every path, because either may be set after a failure.
 */
static inline enum cj_status kms_itest_connect(const char *dsn,
                                               struct cj_db_pool **pool,
                                               struct cj_db_conn **conn)
{
    struct cj_db_options o = {.dsn = dsn,
                              .pool_size = 1,
                              .connect_timeout_s = 5,
                              .statement_timeout_ms = 30000,
                              .acquire_timeout_ms = 5000};

    *pool = NULL;
    *conn = NULL;
    enum cj_status st = cj_db_pool_new(&o, pool);
    if (st != CJ_OK)
        return st;
    return cj_db_acquire(*pool, -1, conn);
}

/* Runs one statement as the admin role; returns false on failure. */
static inline bool kms_itest_exec(const char *dsn, const char *sql)
{
    struct cj_db_pool *pool = NULL;
    struct cj_db_conn *conn = NULL;
    bool ok = kms_itest_connect(dsn, &pool, &conn) == CJ_OK &&
              cj_db_exec(conn, sql) == CJ_OK;

    if (!ok)
        fprintf(stderr, "kms_itest: %s: %s\n", sql,
                conn != NULL ? cj_db_last_error(conn) : "no connection");
    cj_db_release(conn);
    cj_db_pool_free(pool);
    return ok;
}

/* Creates and migrates a fresh database named after `tag` and the pid. */
static inline bool kms_itest_db_create(struct kms_itest_db *db, const char *tag)
{
    char sql[256];
    char err[CJ_MIGRATE_ERROR_MAX] = "";
    struct cj_migrate_report report;

    db->admin_dsn = itest_require_env(tag, "CERROJO_TEST_PG_ADMIN_DSN");
    snprintf(db->database, sizeof(db->database), "cj_itest_%s_%d", tag,
             (int)getpid());
    snprintf(db->role, sizeof(db->role), "cj_itest_kms_%s_%d", tag,
             (int)getpid());
    snprintf(db->admin_db_dsn, sizeof(db->admin_db_dsn), "%s dbname=%s",
             db->admin_dsn, db->database);
    snprintf(db->kms_dsn, sizeof(db->kms_dsn), "%s dbname=%s user=%s",
             db->admin_dsn, db->database, db->role);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db->database);
    if (!kms_itest_exec(db->admin_dsn, sql))
        return false;

    struct cj_migrate_schema schema = {
        .schema = "kms", .role = db->role, .password = NULL};
    struct cj_migrate_options opts = {
        .dsn = db->admin_db_dsn,
        .dir = CJ_SOURCE_DIR "/migrations",
        .schemas = &schema,
        .schema_count = 1,
        .lock_timeout_s = 60,
    };
    if (cj_migrate_run(&opts, &report, err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "kms_itest: migration failed: %s\n", err);
        return false;
    }
    return true;
}

/* Empties every kms table, for a test that needs a fresh key store. */
static inline bool kms_itest_db_reset(const struct kms_itest_db *db)
{
    return kms_itest_exec(db->admin_db_dsn,
                          "TRUNCATE kms.data_key_versions, "
                          "kms.key_encryption_keys, kms.signing_keys, "
                          "kms.hpke_keys, kms.key_list_signers");
}

static inline void kms_itest_db_drop(const struct kms_itest_db *db)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             db->database);
    (void)kms_itest_exec(db->admin_dsn, sql);
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", db->role);
    (void)kms_itest_exec(db->admin_dsn, sql);
}

#endif

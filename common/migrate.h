/*
 * Applies the SQL files of migrations/<schema>/ in file-name order, each in
 * its own transaction, records their SHA-256 in <schema>.schema_migrations,
 * rejects a file changed after it was applied, and gives each service role
 * rights on its own schema only. An advisory lock serializes runners.
 */
#ifndef CJ_MIGRATE_H
#define CJ_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CJ_MIGRATE_ERROR_MAX 1024
/* Name of the advisory lock every runner takes (see cj_db_lock_key). */
#define CJ_MIGRATE_LOCK_NAME "cerrojo.migrate"

/* A schema, the service role that owns its data, and that role's password. */
struct cj_migrate_schema {
    const char *schema;   /* [a-z_][a-z0-9_]*, e.g. "kms" */
    const char *role;     /* e.g. "cerrojo_kms"; created when missing */
    const char *password; /* set on every run; NULL leaves it unchanged */
};

struct cj_migrate_options {
    const char *dsn; /* an admin role that may create roles and schemas */
    const char *dir; /* migrations folder, holding <schema>/NNN_name.sql */
    const struct cj_migrate_schema *schemas;
    size_t schema_count;
    long long lock_timeout_s; /* wait for another runner at most this long */
    bool dry_run;             /* list pending files, change nothing */
};

struct cj_migrate_report {
    unsigned applied; /* files applied by this run (or pending, dry_run) */
    unsigned current; /* files already applied before */
};

/*
 * Runs the migrations. On failure err names the file or role involved,
 * e.g. "migrations/kms/001_keys.sql: changed after it was applied
 * (recorded sha256 ab12..., file now cd34...)": CJ_ERR_PRECONDITION for a
 * changed file, CJ_ERR_TIMEOUT when the lock wait passes, CJ_ERR_INVALID for
 * a bad name, other statuses from the database.
 */
CJ_WARN_UNUSED enum cj_status
cj_migrate_run(const struct cj_migrate_options *opts,
               struct cj_migrate_report *report, char *err, size_t err_size);

struct cj_db_conn;

/*
 * Writes the names in required that applied lacks into missing, separated
 * by ", " (truncated to missing_size), and returns how many are missing.
 */
size_t cj_migrate_list_missing(const char *const *required,
                               size_t required_count,
                               const char *const *applied, size_t applied_count,
                               char *missing, size_t missing_size);

/*
 * Checks that every file in required is recorded in
 * <schema>.schema_migrations, for a service that must not serve on an older
 * schema. Returns CJ_OK when all are, and CJ_ERR_PRECONDITION with the
 * missing names in missing when some are not or when the schema or that
 * table does not exist. Any other query failure returns its status, with
 * the database's message in missing.
 */
CJ_WARN_UNUSED enum cj_status
cj_migrate_check_applied(struct cj_db_conn *conn, const char *schema,
                         const char *const *required, size_t required_count,
                         char *missing, size_t missing_size);

#endif

/*
 * The migration runner behind cerrojo-migrate: per schema, applies pending
 * SQL files in name order inside one transaction each, checks the SHA-256
 * of applied ones, then sets the service role's rights.
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "db.h"
#include "log.h"

/* Maximum length of a schema or role name in Postgres (NAMEDATALEN - 1). */
#define CJ_MIGRATE_NAME_MAX 63
/* Largest migration file accepted, in bytes. */
#define CJ_MIGRATE_FILE_MAX (16 * 1024 * 1024)
/* Migration files per schema, at most. */
#define CJ_MIGRATE_FILES_MAX       1000
#define CJ_MIGRATE_SHA256_HEX_SIZE 65
#define CJ_MIGRATE_PATH_MAX        4096
/* Pause between tries of the runner lock, in milliseconds. */
#define CJ_MIGRATE_LOCK_POLL_MS      200
#define CJ_MIGRATE_CONNECT_TIMEOUT_S 10

struct run {
    const struct cj_migrate_options *opts;
    struct cj_migrate_report *report;
    struct cj_db_conn *conn;
    char *err;
    size_t err_size;
};

static void set_error(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->err_size, fmt, ap);
    va_end(ap);
}

/* Lower-case identifier, so it can be used unquoted and quoted alike. */
static bool valid_identifier(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > CJ_MIGRATE_NAME_MAX) {
        return false;
    }
    for (const char *c = s; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || *c == '_' ||
                  (c != s && *c >= '0' && *c <= '9');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool valid_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n <= 4 || strcmp(name + n - 4, ".sql") != 0 || name[0] == '.') {
        return false;
    }
    for (const char *c = name; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                  *c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void sha256_hex(const void *data, size_t len,
                       char out[CJ_MIGRATE_SHA256_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen * 2 + 1 != CJ_MIGRATE_SHA256_HEX_SIZE) {
        abort(); /* SHA-256 fails only when OpenSSL is broken */
    }
    for (unsigned i = 0; i < dlen; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0xf];
    }
    out[2 * dlen] = '\0';
}

/* Reads a whole file, NUL-terminated; the caller frees. */
static char *read_file(const char *path, size_t *len, const char **why)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > CJ_MIGRATE_FILE_MAX) {
        *why = "larger than 16 MiB or not readable";
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        *why = "out of memory";
        goto out;
    }
    *len = fread(buf, 1, (size_t)st.st_size, f);
    if (*len != (size_t)st.st_size) {
        *why = "short read";
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[*len] = '\0';
    if (memchr(buf, '\0', *len) != NULL) {
        *why = "contains a NUL byte";
        free(buf);
        buf = NULL;
    }

out:
    fclose(f);
    return buf;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
}

/* Lists the *.sql files of dir, sorted by name with strcmp (byte order). */
static enum cj_status list_files(struct run *r, const char *dir, char ***out,
                                 size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        set_error(r, "%s: cannot open the migrations folder: %s", dir,
                  strerror(errno));
        return CJ_ERR_INVALID;
    }
    enum cj_status st = CJ_ERR_NOMEM;
    char **names = calloc(CJ_MIGRATE_FILES_MAX, sizeof(*names));
    size_t n = 0;
    if (names == NULL) {
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0) {
            continue;
        }
        if (!valid_file_name(e->d_name)) {
            set_error(r,
                      "%s/%s: invalid migration file name (use letters, "
                      "digits, '_', '-' and '.')",
                      dir, e->d_name);
            st = CJ_ERR_INVALID;
            goto out;
        }
        if (n == CJ_MIGRATE_FILES_MAX) {
            set_error(r, "%s: more than %d migration files", dir,
                      CJ_MIGRATE_FILES_MAX);
            st = CJ_ERR_INVALID;
            goto out;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof(*names), compare_names);
    *out = names;
    *count = n;
    names = NULL;
    st = CJ_OK;

out:
    if (names != NULL) {
        free_names(names, n);
    }
    closedir(d);
    return st;
}

/* Runs fixed SQL built from validated identifiers; err names `what`. */
static enum cj_status exec_sql(struct run *r, const char *what, const char *sql)
{
    enum cj_status st = cj_db_exec(r->conn, sql);
    if (st != CJ_OK) {
        set_error(r, "%s: failed: %s %s", what, cj_db_last_sqlstate(r->conn),
                  cj_db_last_error(r->conn));
    }
    return st;
}

/* 1-based line of a 1-based character position (Postgres counts chars). */
static unsigned line_of_position(const char *text, long position)
{
    unsigned line = 1;
    long chars = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0';
         c++) {
        if ((*c & 0xc0) != 0x80 && ++chars >= position) {
            break;
        }
        if (*c == '\n') {
            line++;
        }
    }
    return line;
}

/* Applies one file in its own transaction and records its checksum. */
static enum cj_status apply_file(struct run *r, const char *schema,
                                 const char *path, const char *name,
                                 const char *sql, const char *sha)
{
    PGconn *pg = cj_db_pgconn(r->conn);
    enum cj_status st = exec_sql(r, path, "BEGIN");
    if (st != CJ_OK) {
        return st;
    }
    /* The simple-query protocol, since a file contains many statements. Its
     * text comes from the repository, never from a request. */
    PGresult *res = PQexec(pg, sql);
    ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK &&
        es != PGRES_EMPTY_QUERY) {
        const char *state =
            res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg =
            res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *pos =
            res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        char where[32] = "";
        if (pos != NULL) {
            snprintf(where, sizeof(where), ":%u",
                     line_of_position(sql, strtol(pos, NULL, 10)));
        }
        set_error(r, "%s%s: failed: %s %s", path, where, state ? state : "",
                  msg ? msg : PQerrorMessage(pg));
        st = cj_db_status_from_sqlstate(state);
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
        set_error(r,
                  "%s: must not contain BEGIN, COMMIT or ROLLBACK: the runner "
                  "wraps each file in its own transaction",
                  path);
        st = CJ_ERR_INVALID;
        goto rollback;
    }

    char insert[256];
    snprintf(insert, sizeof(insert),
             "INSERT INTO %s.schema_migrations (filename, sha256) "
             "VALUES ($1, $2)",
             schema);
    const struct cj_db_param params[] = {CJ_DB_TEXT(name), CJ_DB_TEXT(sha)};
    /* Uncached: the text names the schema, so it differs per schema. */
    st = cj_db_query_uncached(r->conn, insert, params, 2, false, NULL);
    if (st != CJ_OK) {
        set_error(r, "%s: recording the checksum failed: %s", path,
                  cj_db_last_error(r->conn));
        goto rollback;
    }
    return exec_sql(r, path, "COMMIT");

rollback:
    if (PQstatus(pg) == CONNECTION_OK) {
        PQclear(PQexec(pg, "ROLLBACK"));
    }
    return st;
}

/* Loads filename -> sha256 of the applied files. */
static enum cj_status load_applied(struct run *r, const char *schema,
                                   PGresult **out)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT filename, sha256 FROM %s.schema_migrations", schema);
    enum cj_status st = cj_db_query_uncached(r->conn, sql, NULL, 0, false, out);
    if (st != CJ_OK) {
        set_error(r, "%s.schema_migrations: reading failed: %s", schema,
                  cj_db_last_error(r->conn));
    }
    return st;
}

static const char *applied_sha(PGresult *applied, const char *name)
{
    for (int i = 0; i < PQntuples(applied); i++) {
        if (strcmp(PQgetvalue(applied, i, 0), name) == 0) {
            return PQgetvalue(applied, i, 1);
        }
    }
    return NULL;
}

static bool contains_name(char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Rejects an empty schema folder before anything changes, since a wrong
 * CERROJO_MIGRATE_DIR would otherwise report success with nothing applied.
 */
static enum cj_status check_folder_not_empty(struct run *r, const char *dir,
                                             const char *schema, size_t count)
{
    if (count > 0) {
        return CJ_OK;
    }
    set_error(r,
              "%s: no migration files (*.sql) for schema %s; check that "
              "CERROJO_MIGRATE_DIR names the migrations folder",
              dir, schema);
    return CJ_ERR_PRECONDITION;
}

/*
 * Rejects a folder that lacks files the database records as applied, such
 * as an older copy of the repository. Running on would report a schema as
 * current that the folder does not describe.
 */
static enum cj_status check_folder_matches(struct run *r, const char *dir,
                                           const char *schema,
                                           char *const *files, size_t count,
                                           PGresult *applied)
{
    if (applied == NULL) {
        return CJ_OK;
    }
    char missing[CJ_MIGRATE_ERROR_MAX / 2] = "";
    size_t used = 0;
    unsigned missing_count = 0;
    for (int i = 0; i < PQntuples(applied); i++) {
        const char *name = PQgetvalue(applied, i, 0);
        if (contains_name(files, count, name)) {
            continue;
        }
        missing_count++;
        if (used < sizeof(missing)) {
            int n = snprintf(missing + used, sizeof(missing) - used, "%s%s",
                             used > 0 ? ", " : "", name);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (missing_count == 0) {
        return CJ_OK;
    }
    set_error(r,
              "%s: lacks %u migration(s) that %s.schema_migrations records "
              "as applied: %s; point CERROJO_MIGRATE_DIR at the migrations "
              "of the release that applied them",
              dir, missing_count, schema, missing);
    return CJ_ERR_PRECONDITION;
}

static enum cj_status migrate_schema(struct run *r,
                                     const struct cj_migrate_schema *s)
{
    char dir[CJ_MIGRATE_PATH_MAX];
    char sql[512];
    char **files = NULL;
    size_t count = 0;
    PGresult *applied = NULL;
    if (snprintf(dir, sizeof(dir), "%s/%s", r->opts->dir, s->schema) >=
        (int)sizeof(dir)) {
        set_error(r, "%s: path too long", r->opts->dir);
        return CJ_ERR_INVALID;
    }

    enum cj_status st = list_files(r, dir, &files, &count);
    if (st == CJ_OK) {
        st = check_folder_not_empty(r, dir, s->schema, count);
    }
    if (st != CJ_OK) {
        goto out;
    }
    if (!r->opts->dry_run) {
        snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", s->schema);
        st = exec_sql(r, dir, sql);
        if (st != CJ_OK) {
            goto out;
        }
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
                 "filename text PRIMARY KEY, sha256 text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())",
                 s->schema);
        st = exec_sql(r, dir, sql);
        if (st != CJ_OK) {
            goto out;
        }
        st = load_applied(r, s->schema, &applied);
    } else {
        /* A dry run on a fresh database has no table yet: all pending. */
        st = load_applied(r, s->schema, &applied);
        if (st != CJ_OK && strcmp(cj_db_last_sqlstate(r->conn), "42P01") != 0 &&
            strcmp(cj_db_last_sqlstate(r->conn), "3F000") != 0) {
            goto out;
        }
        st = CJ_OK;
    }
    if (st != CJ_OK) {
        goto out;
    }
    st = check_folder_matches(r, dir, s->schema, files, count, applied);
    if (st != CJ_OK) {
        goto out;
    }

    for (size_t i = 0; i < count; i++) {
        char path[CJ_MIGRATE_PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, files[i]) >=
            (int)sizeof(path)) {
            set_error(r, "%s: path too long", files[i]);
            st = CJ_ERR_INVALID;
            goto out;
        }
        const char *why = NULL;
        size_t len = 0;
        char *text = read_file(path, &len, &why);
        if (text == NULL) {
            set_error(r, "%s: cannot read: %s", path, why);
            st = CJ_ERR_INVALID;
            goto out;
        }
        char sha[CJ_MIGRATE_SHA256_HEX_SIZE];
        sha256_hex(text, len, sha);
        const char *recorded = applied ? applied_sha(applied, files[i]) : NULL;
        if (recorded != NULL && strcmp(recorded, sha) != 0) {
            set_error(r,
                      "%s: changed after it was applied (recorded sha256 "
                      "%.12s..., file now %.12s...); restore it and add a new "
                      "migration file instead",
                      path, recorded, sha);
            free(text);
            st = CJ_ERR_PRECONDITION;
            goto out;
        }
        if (recorded != NULL) {
            r->report->current++;
        } else if (r->opts->dry_run) {
            cj_log(CJ_LOG_INFO, "migrate.pending", NULL,
                   CJ_F_STR("file", path));
            r->report->applied++;
        } else {
            st = apply_file(r, s->schema, path, files[i], text, sha);
            if (st == CJ_OK) {
                cj_log(CJ_LOG_INFO, "migrate.applied", NULL,
                       CJ_F_STR("file", path), CJ_F_STR("sha256", sha));
                r->report->applied++;
            }
        }
        free(text);
        if (st != CJ_OK) {
            goto out;
        }
    }

out:
    PQclear(applied);
    if (files != NULL) {
        free_names(files, count);
    }
    return st;
}

/* Creates the role when missing and sets its password (SCRAM, computed by
 * libpq so the clear text never reaches the server or its logs). */
static enum cj_status ensure_role(struct run *r,
                                  const struct cj_migrate_schema *s)
{
    PGresult *res = NULL;
    char *verifier = NULL;
    char *literal = NULL;
    char sql[1024];
    const struct cj_db_param params[] = {CJ_DB_TEXT(s->role)};
    enum cj_status st =
        cj_db_query(r->conn, "SELECT 1 FROM pg_roles WHERE rolname = $1",
                    params, 1, false, &res);
    if (st != CJ_OK) {
        set_error(r, "role %s: lookup failed: %s", s->role,
                  cj_db_last_error(r->conn));
        goto out;
    }
    bool exists = PQntuples(res) > 0;
    if (!exists) {
        snprintf(sql, sizeof(sql),
                 "CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                 "NOINHERIT",
                 s->role);
        st = exec_sql(r, s->role, sql);
        if (st != CJ_OK) {
            goto out;
        }
        cj_log(CJ_LOG_INFO, "migrate.role_created", NULL,
               CJ_F_STR("role", s->role));
    }
    if (s->password != NULL) {
        PGconn *pg = cj_db_pgconn(r->conn);
        verifier = PQencryptPasswordConn(pg, s->password, s->role, NULL);
        literal =
            verifier ? PQescapeLiteral(pg, verifier, strlen(verifier)) : NULL;
        if (literal == NULL) {
            set_error(r, "role %s: hashing the password failed: %s", s->role,
                      PQerrorMessage(pg));
            st = CJ_ERR_INTERNAL;
            goto out;
        }
        snprintf(sql, sizeof(sql), "ALTER ROLE %s LOGIN PASSWORD %s", s->role,
                 literal);
        st = exec_sql(r, s->role, sql);
    }

out:
    PQclear(res);
    PQfreemem(verifier);
    PQfreemem(literal);
    return st;
}

/* Gives the role data rights on its own schema and none on the others. */
static enum cj_status grant_rights(struct run *r,
                                   const struct cj_migrate_schema *s)
{
    const char *const own[] = {
        "REVOKE ALL ON SCHEMA %1$s FROM PUBLIC",
        "GRANT USAGE ON SCHEMA %1$s TO %2$s",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %1$s "
        "TO %2$s",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %1$s TO %2$s",
        /* The runner's own bookkeeping is not the service's to change. */
        "REVOKE ALL ON %1$s.schema_migrations FROM %2$s",
        "GRANT SELECT ON %1$s.schema_migrations TO %2$s",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA %1$s GRANT SELECT, INSERT, "
        "UPDATE, DELETE ON TABLES TO %2$s",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA %1$s GRANT USAGE, SELECT, UPDATE "
        "ON SEQUENCES TO %2$s",
    };
    const char *const other[] = {
        "REVOKE ALL ON ALL TABLES IN SCHEMA %1$s FROM %2$s",
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA %1$s FROM %2$s",
        "REVOKE ALL ON SCHEMA %1$s FROM %2$s",
    };
    char sql[512];
    char what[160];
    snprintf(what, sizeof(what), "rights of role %s on schema %s", s->role,
             s->schema);
    enum cj_status st = exec_sql(r, what, "BEGIN");
    for (size_t i = 0; st == CJ_OK && i < sizeof(own) / sizeof(*own); i++) {
        snprintf(sql, sizeof(sql), own[i], s->schema, s->role);
        st = exec_sql(r, what, sql);
    }
    for (size_t j = 0; st == CJ_OK && j < r->opts->schema_count; j++) {
        const char *o = r->opts->schemas[j].schema;
        if (strcmp(o, s->schema) == 0) {
            continue;
        }
        for (size_t i = 0; st == CJ_OK && i < sizeof(other) / sizeof(*other);
             i++) {
            snprintf(sql, sizeof(sql), other[i], o, s->role);
            st = exec_sql(r, what, sql);
        }
    }
    if (st == CJ_OK) {
        return exec_sql(r, what, "COMMIT");
    }
    PQclear(PQexec(cj_db_pgconn(r->conn), "ROLLBACK"));
    return st;
}

/* Takes the runner lock, retrying until lock_timeout_s passes. */
static enum cj_status take_runner_lock(struct run *r)
{
    int64_t key = cj_db_lock_key(CJ_MIGRATE_LOCK_NAME);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool logged = false;
    for (;;) {
        bool acquired = false;
        enum cj_status st = cj_db_advisory_try_lock(r->conn, key, &acquired);
        if (st != CJ_OK) {
            set_error(r, "advisory lock %s: failed: %s", CJ_MIGRATE_LOCK_NAME,
                      cj_db_last_error(r->conn));
            return st;
        }
        if (acquired) {
            return CJ_OK;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= r->opts->lock_timeout_s) {
            set_error(r,
                      "another migration runner held the advisory lock %s "
                      "for more than %lld s; retry when it has finished",
                      CJ_MIGRATE_LOCK_NAME, r->opts->lock_timeout_s);
            return CJ_ERR_TIMEOUT;
        }
        if (!logged) {
            cj_log(CJ_LOG_INFO, "migrate.waiting_for_lock", NULL,
                   CJ_F_STR("lock", CJ_MIGRATE_LOCK_NAME));
            logged = true;
        }
        usleep(CJ_MIGRATE_LOCK_POLL_MS * 1000);
    }
}

static enum cj_status check_options(struct run *r)
{
    const struct cj_migrate_options *o = r->opts;
    if (o->dsn == NULL || o->dir == NULL ||
        (o->schema_count > 0 && o->schemas == NULL)) {
        set_error(r, "migrate: dsn, dir and schemas are required");
        return CJ_ERR_INVALID;
    }
    for (size_t i = 0; i < o->schema_count; i++) {
        const struct cj_migrate_schema *s = &o->schemas[i];
        if (!valid_identifier(s->schema) || !valid_identifier(s->role)) {
            set_error(r,
                      "schema '%s' or role '%s': invalid name (expected "
                      "[a-z_][a-z0-9_]*, at most 63 characters)",
                      s->schema ? s->schema : "", s->role ? s->role : "");
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

enum cj_status cj_migrate_run(const struct cj_migrate_options *opts,
                              struct cj_migrate_report *report, char *err,
                              size_t err_size)
{
    struct run r = {
        .opts = opts, .report = report, .err = err, .err_size = err_size};
    memset(report, 0, sizeof(*report));
    if (err_size > 0) {
        err[0] = '\0';
    }
    struct cj_db_pool *pool = NULL;
    enum cj_status st = check_options(&r);
    if (st != CJ_OK) {
        goto out;
    }
    /* No statement timeout: a migration may rewrite a large table. */
    const struct cj_db_options dbo = {.dsn = opts->dsn,
                                      .pool_size = 1,
                                      .connect_timeout_s =
                                          CJ_MIGRATE_CONNECT_TIMEOUT_S,
                                      .acquire_timeout_ms = 0,
                                      .application_name = "cerrojo-migrate"};
    st = cj_db_pool_new(&dbo, &pool);
    if (st != CJ_OK) {
        set_error(&r, "CERROJO_MIGRATE_DSN: invalid connection string");
        goto out;
    }
    st = cj_db_acquire(pool, 0, &r.conn);
    if (st != CJ_OK) {
        set_error(&r,
                  "CERROJO_MIGRATE_DSN: cannot connect to Postgres; check "
                  "that it is up and that the host, port, user and password "
                  "are right");
        goto out;
    }
    st = take_runner_lock(&r);
    if (st != CJ_OK) {
        goto out;
    }
    for (size_t i = 0; i < opts->schema_count && st == CJ_OK; i++) {
        st = migrate_schema(&r, &opts->schemas[i]);
        if (st == CJ_OK && !opts->dry_run) {
            st = ensure_role(&r, &opts->schemas[i]);
        }
    }
    /* Rights last, once every schema exists, so the revokes can name them. */
    for (size_t i = 0; i < opts->schema_count && st == CJ_OK; i++) {
        if (!opts->dry_run) {
            st = grant_rights(&r, &opts->schemas[i]);
        }
    }

out:
    cj_db_release(r.conn); /* also frees the advisory lock */
    cj_db_pool_free(pool);
    return st;
}

size_t cj_migrate_list_missing(const char *const *required,
                               size_t required_count,
                               const char *const *applied, size_t applied_count,
                               char *missing, size_t missing_size)
{
    size_t count = 0;
    size_t used = 0;

    if (missing_size > 0) {
        missing[0] = '\0';
    }
    for (size_t i = 0; i < required_count; i++) {
        bool found = false;
        for (size_t j = 0; j < applied_count && !found; j++) {
            found = strcmp(required[i], applied[j]) == 0;
        }
        if (found) {
            continue;
        }
        if (used < missing_size) {
            int n = snprintf(missing + used, missing_size - used, "%s%s",
                             count > 0 ? ", " : "", required[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        count++;
    }
    return count;
}

/* Postgres's "undefined table" and "invalid schema name" states. */
#define CJ_MIGRATE_SQLSTATE_NO_TABLE  "42P01"
#define CJ_MIGRATE_SQLSTATE_NO_SCHEMA "3F000"

enum cj_status cj_migrate_check_applied(struct cj_db_conn *conn,
                                        const char *schema,
                                        const char *const *required,
                                        size_t required_count, char *missing,
                                        size_t missing_size)
{
    char sql[256];
    PGresult *res = NULL;
    const char **applied = NULL;
    size_t applied_count = 0;

    if (!valid_identifier(schema)) {
        snprintf(missing, missing_size, "invalid schema name");
        return CJ_ERR_INVALID;
    }
    snprintf(sql, sizeof(sql), "SELECT filename FROM %s.schema_migrations",
             schema);
    enum cj_status st = cj_db_query_uncached(conn, sql, NULL, 0, false, &res);
    if (st != CJ_OK) {
        const char *state = cj_db_last_sqlstate(conn);
        if (strcmp(state, CJ_MIGRATE_SQLSTATE_NO_TABLE) != 0 &&
            strcmp(state, CJ_MIGRATE_SQLSTATE_NO_SCHEMA) != 0) {
            snprintf(missing, missing_size, "%s", cj_db_last_error(conn));
            return st;
        }
        /* No table yet: nothing is applied. */
        res = NULL;
    } else {
        applied_count = (size_t)PQntuples(res);
        applied = calloc(applied_count + 1, sizeof(*applied));
        if (applied == NULL) {
            PQclear(res);
            snprintf(missing, missing_size, "out of memory");
            return CJ_ERR_NOMEM;
        }
        for (size_t i = 0; i < applied_count; i++) {
            applied[i] = PQgetvalue(res, (int)i, 0);
        }
    }
    size_t count =
        cj_migrate_list_missing(required, required_count, applied,
                                applied_count, missing, missing_size);
    free(applied);
    PQclear(res);
    return count == 0 ? CJ_OK : CJ_ERR_PRECONDITION;
}

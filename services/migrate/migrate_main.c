/*
 * cerrojo-migrate: reads its configuration, then applies the kms and auth
 * migrations and sets the rights of roles cerrojo_kms and cerrojo_auth.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "migrate.h"

#define MIGRATE_EXIT_OK     0
#define MIGRATE_EXIT_FAILED 1
#define MIGRATE_EXIT_USAGE  2
/* `status` found files not yet applied, so a deployment script can test it. */
#define MIGRATE_EXIT_PENDING       3
#define MIGRATE_LOCK_TIMEOUT_MAX_S 3600

struct migrate_config {
    char *dsn;
    char *dir;
    char *kms_password;
    char *auth_password;
    long long lock_timeout_s;
    char *log_level;
};

static const struct cj_config_option MIGRATE_OPTIONS[] = {
    {.name = "CERROJO_MIGRATE_DSN",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct migrate_config, dsn),
     .required = true,
     .secret = true,
     .help = "libpq connection string of an admin role that may create "
             "roles and schemas"},
    {.name = "CERROJO_MIGRATE_DIR",
     .type = CJ_CONFIG_PATH,
     .offset = offsetof(struct migrate_config, dir),
     .default_value = "migrations",
     .help = "folder holding kms/*.sql and auth/*.sql"},
    {.name = "CERROJO_MIGRATE_KMS_PASSWORD",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct migrate_config, kms_password),
     .dev_default = "cerrojo-kms-dev",
     .secret = true,
     .help = "password set for role cerrojo_kms"},
    {.name = "CERROJO_MIGRATE_AUTH_PASSWORD",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct migrate_config, auth_password),
     .dev_default = "cerrojo-auth-dev",
     .secret = true,
     .help = "password set for role cerrojo_auth"},
    {.name = "CERROJO_MIGRATE_LOCK_TIMEOUT",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct migrate_config, lock_timeout_s),
     .default_value = "60",
     .min = 1,
     .max = MIGRATE_LOCK_TIMEOUT_MAX_S,
     .help = "how long to wait for another runner's lock, in seconds"},
    {.name = "CERROJO_LOG_LEVEL",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct migrate_config, log_level),
     .default_value = "info",
     .help = "minimum log level: debug, info, warn or error"},
};
#define MIGRATE_OPTION_COUNT                                                   \
    (sizeof(MIGRATE_OPTIONS) / sizeof(*MIGRATE_OPTIONS))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-migrate [up|status] [--print-config] [--help]\n"
            "  up       apply pending migrations and set role rights "
            "(default)\n"
            "  status   list pending migrations, change nothing; exits 3 "
            "when some are\n"
            "           pending, 0 when none are\n"
            "Configuration (environment or .env):\n");
    cj_config_print_help(MIGRATE_OPTIONS, MIGRATE_OPTION_COUNT, out);
}

int main(int argc, char **argv)
{
    bool dry_run = false;
    bool print_config = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "up") == 0) {
            dry_run = false;
        } else if (strcmp(argv[i], "status") == 0) {
            dry_run = true;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return MIGRATE_EXIT_OK;
        } else {
            fprintf(stderr, "cerrojo-migrate: unknown argument '%s'\n",
                    argv[i]);
            usage(stderr);
            return MIGRATE_EXIT_USAGE;
        }
    }

    int rc = MIGRATE_EXIT_FAILED;
    struct migrate_config cfg = {0};
    enum cj_profile profile = CJ_PROFILE_DEV;
    char err[CJ_MIGRATE_ERROR_MAX] = "";
    if (cj_config_load(MIGRATE_OPTIONS, MIGRATE_OPTION_COUNT, &profile, &cfg,
                       err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-migrate: %s\n", err);
        goto out;
    }
    enum cj_log_level level = CJ_LOG_INFO;
    if (!cj_log_level_parse(cfg.log_level, &level)) {
        fprintf(stderr,
                "cerrojo-migrate: CERROJO_LOG_LEVEL: expected debug, info, "
                "warn or error, got '%s'\n",
                cfg.log_level);
        goto out;
    }
    cj_log_init("cerrojo-migrate", level);
    if (print_config) {
        cj_config_dump(MIGRATE_OPTIONS, MIGRATE_OPTION_COUNT, profile, &cfg,
                       stdout);
        rc = MIGRATE_EXIT_OK;
        goto out;
    }

    const struct cj_migrate_schema schemas[] = {
        {.schema = "kms", .role = "cerrojo_kms", .password = cfg.kms_password},
        {.schema = "auth",
         .role = "cerrojo_auth",
         .password = cfg.auth_password},
    };
    const struct cj_migrate_options opts = {
        .dsn = cfg.dsn,
        .dir = cfg.dir,
        .schemas = schemas,
        .schema_count = sizeof(schemas) / sizeof(*schemas),
        .lock_timeout_s = cfg.lock_timeout_s,
        .dry_run = dry_run,
    };
    struct cj_migrate_report report;
    enum cj_status st = cj_migrate_run(&opts, &report, err, sizeof(err));
    if (st != CJ_OK) {
        fprintf(stderr, "cerrojo-migrate: %s\n", err);
        cj_log(CJ_LOG_ERROR, "migrate.failed", NULL,
               CJ_F_STR("status", cj_status_name(st)));
        goto out;
    }
    printf("cerrojo-migrate: %u %s, %u already applied\n", report.applied,
           dry_run ? "pending" : "applied", report.current);
    rc = dry_run && report.applied > 0 ? MIGRATE_EXIT_PENDING : MIGRATE_EXIT_OK;

out:
    cj_config_free(MIGRATE_OPTIONS, MIGRATE_OPTION_COUNT, &cfg);
    return rc;
}

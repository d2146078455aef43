/*
 * cerrojo-auth: users, credentials, tokens, user data and the audit log.
 * This file reads the arguments and configuration, then serves gRPC until
 * SIGTERM or SIGINT, or runs one maintenance job and exits.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth_app.h"
#include "auth_clock.h"
#include "auth_config.h"
#include "auth_jobs.h"
#include "auth_revocations.h"
#include "auth_rpc.h"
#include "auth_schema.h"
#include "auth_user_delete.h"
#include "cli_help.h"
#include "config.h"
#include "crypto_util.h"
#include "log.h"
#include "metrics.h"
#include "proc_threads.h"
#include "rpc_service.h"

#define METRICS_ADDRESS "127.0.0.1"

static void usage(FILE *out)
{
    fprintf(out, "usage: cerrojo-auth [COMMAND]\n"
                 "  serve           run the gRPC server (default)\n"
                 "  healthcheck     call the running server's Health/Check; "
                 "exit 0 when SERVING\n"
                 "  cleanup         delete expired refresh tokens and "
                 "revocations, and audit rows past retention, once\n"
                 "  rewrap-keys     re-wrap every user's data key under kms's "
                 "newest key-encryption key, once\n"
                 "  delete-user USER\n"
                 "                  delete a user (a user id, username or "
                 "email): data, refresh tokens, sessions and data key; "
                 "revoke every token\n"
                 "  --print-config  print the configuration, secrets redacted\n"
                 "configuration (environment or .env file):\n");
    cj_config_print_help(auth_config_options, auth_config_option_count, out);
    cj_metrics_print_help(out);
}

/* The commands of the binary; only delete-user takes an argument. */
static const char *const auth_commands[] = {
    "serve",       "healthcheck", "cleanup",
    "rewrap-keys", "delete-user", "--print-config",
};

static bool is_command(const char *arg)
{
    return cj_cli_is_command(arg, auth_commands,
                             sizeof(auth_commands) / sizeof(auth_commands[0]));
}

/*
 * Loads the configuration; returns false after printing why it is bad.
 * With read_tls_files, also reads and checks the TLS files, as the start,
 * the jobs (which call kms) and --print-config need.
 */
static bool load_config(struct auth_service *svc, bool read_tls_files)
{
    char err[CJ_CONFIG_ERROR_MAX];
    enum cj_log_level level;
    enum cj_status status;

    status = cj_config_load(auth_config_options, auth_config_option_count,
                            &svc->profile, &svc->cfg, err, sizeof(err));
    if (status == CJ_OK) {
        status = auth_config_check(&svc->cfg, err, sizeof(err));
    }
    if (status == CJ_OK && read_tls_files) {
        status = cj_rpc_settings_check_files(&svc->cfg.grpc, svc->profile,
                                             AUTH_ENV_PREFIX, err, sizeof(err));
    } else if (status == CJ_OK) {
        status = cj_rpc_settings_check(&svc->cfg.grpc, svc->profile,
                                       AUTH_ENV_PREFIX, err, sizeof(err));
    }
    if (status != CJ_OK) {
        fprintf(stderr, "cerrojo-auth: %s\n", err);
        return false;
    }
    if (!cj_log_level_parse(svc->cfg.log_level, &level)) {
        fprintf(stderr,
                "cerrojo-auth: CERROJO_LOG_LEVEL: expected debug, info, "
                "warn or error, got '%s'\n",
                svc->cfg.log_level);
        return false;
    }
    cj_log_init("auth", level);
    (void)cj_config_warn_unknown(AUTH_ENV_PREFIX "_", auth_config_options,
                                 auth_config_option_count);
    return true;
}

/* Prints the settings, which load_config has checked; returns the exit
 * code. */
static int print_config(const struct auth_service *svc)
{
    cj_config_dump(auth_config_options, auth_config_option_count, svc->profile,
                   &svc->cfg, stdout);
    return 0;
}

/* Stops the background threads and waits for them. */
static void stop_threads(struct auth_service *svc, pthread_t *threads,
                         size_t count)
{
    pthread_mutex_lock(&svc->wait_lock);
    atomic_store(&svc->stopping, true);
    pthread_cond_broadcast(&svc->wait_cond);
    pthread_mutex_unlock(&svc->wait_lock);
    for (size_t i = 0; i < count; i++) {
        pthread_join(threads[i], NULL);
    }
}

/* Ends the handlers still waiting on Postgres or on Redis (the login
 * throttle) when the shutdown grace runs out; gRPC cannot cancel those. */
static void stop_store_waits(void *arg)
{
    struct auth_service *svc = arg;

    cj_db_pool_cancel(svc->db);
    cj_redis_pool_close(svc->redis);
}

/* Serves until a signal; background threads run alongside. */
static int serve(struct auth_service *svc, const sigset_t *signals)
{
    struct cj_rpc_server_options options;
    struct cj_rpc_service service;
    struct cj_rpc_server *server = NULL;
    struct cj_metrics_server *metrics = NULL;
    pthread_t threads[2];
    size_t started = 0;
    int exit_status = 1;
    int sig;

    auth_rpc_service_init(svc, &service);
    cj_rpc_settings_server_options(&svc->cfg.grpc, &options);
    options.on_grace_expired = stop_store_waits;
    options.on_grace_expired_arg = svc;
    if (cj_rpc_server_create(&service, &options, &server) != CJ_OK) {
        goto start_failed;
    }
    /* The first check runs before the server takes calls, so that no probe
     * reads SERVING while Postgres is down or the migrations are missing. */
    svc->server = server;
    auth_clock_check(svc);
    /* Before calls are taken: a port that another process still uses
     * after the wait fails the start, since Prometheus would scrape that
     * process under this one's labels. */
    if (cj_metrics_server_start(svc->metrics, METRICS_ADDRESS,
                                (uint16_t)svc->cfg.metrics_port,
                                &metrics) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "auth.metrics_unavailable", NULL,
               CJ_F_INT("port", svc->cfg.metrics_port));
        fprintf(stderr,
                "cerrojo-auth: cannot listen on the metrics port %lld "
                "(CERROJO_AUTH_METRICS_PORT); the metrics.port_still_busy or "
                "metrics.listen_failed log line gives the cause. Stop the "
                "process that holds the port or set another port\n",
                (long long)svc->cfg.metrics_port);
        goto out;
    }
    if (cj_rpc_server_start(server) != CJ_OK) {
        goto start_failed;
    }
    if (pthread_create(&threads[started], NULL, auth_revocations_watch, svc) ==
        0) {
        started++;
    }
    if (pthread_create(&threads[started], NULL, auth_jobs_cleanup_loop, svc) ==
        0) {
        started++;
    }
    if (started != 2) {
        cj_log(CJ_LOG_ERROR, "auth.start_failed", NULL,
               CJ_F_STR("part", "background threads"));
        goto out;
    }
    cj_log(CJ_LOG_INFO, "auth.started", NULL,
           CJ_F_INT("port", cj_rpc_server_port(server)),
           CJ_F_INT("metrics_port",
                    metrics != NULL ? cj_metrics_server_port(metrics) : 0),
           CJ_F_STR("profile", cj_profile_name(svc->profile)));
    sig = cj_rpc_server_wait_signal(signals);
    cj_log(CJ_LOG_INFO, "auth.stopping", NULL, CJ_F_INT("signal", sig));
    exit_status = 0;
    goto out;
start_failed:
    fprintf(stderr,
            "cerrojo-auth: cannot start the gRPC server on %s "
            "(CERROJO_AUTH_LISTEN)\n",
            svc->cfg.grpc.listen);
out:
    /* The server stops first, so that no call runs on closed pools. Then
     * the background threads' statements are cancelled, so that a long
     * lock cannot hold the exit up to the statement timeout. */
    if (server != NULL) {
        cj_rpc_server_shutdown(server);
    }
    cj_db_pool_cancel(svc->db);
    stop_threads(svc, threads, started);
    svc->server = NULL;
    cj_rpc_server_destroy(server);
    cj_metrics_server_stop(metrics);
    return exit_status;
}

/*
 * Returns the outcome that starts a job's report line. A job that did not
 * run either found the lock held by another replica (not an error) or could
 * not ask Postgres for the lock at all.
 */
static const char *job_outcome(const struct auth_job_report *report,
                               enum cj_status rc)
{
    if (report->kms_unreachable) {
        return "stopped early, kms is unreachable";
    }
    if (report->ran) {
        return rc == CJ_OK ? "ran" : "ran with errors";
    }
    return rc == CJ_OK ? "skipped (another replica holds the lock)"
                       : "not run (the lock query to Postgres failed)";
}

/*
 * Prints the rewrap-keys line. It names the KEK version kms wrapped under,
 * so that an operator can see whether the rotation took effect.
 */
static void print_rewrap_report(const struct auth_job_report *report,
                                enum cj_status rc)
{
    printf("rewrap-keys: %s; users %llu, re-wrapped %llu, already current "
           "%llu, failures %llu, kms records of unknown users dropped %llu",
           job_outcome(report, rc), report->users_seen, report->keys_rewrapped,
           report->keys_current, report->failures, report->records_forgotten);
    if (report->kek_version_min != report->kek_version_max) {
        printf("; kms replicas wrapped under KEK versions %u to %u, so run "
               "rewrap-keys again\n",
               (unsigned)report->kek_version_min,
               (unsigned)report->kek_version_max);
    } else if (report->kek_version_max != 0) {
        printf("; kek version %u\n", (unsigned)report->kek_version_max);
    } else {
        printf("\n");
    }
}

/*
 * Returns false, after saying so, when the database lacks auth migrations
 * of this build. Other failures of the check reach the command, which
 * reports them.
 */
static bool schema_ready(struct auth_service *svc, const char *command)
{
    char missing[AUTH_SCHEMA_MISSING_MAX];

    if (auth_schema_check(svc, missing, sizeof(missing)) !=
        CJ_ERR_PRECONDITION) {
        return true;
    }
    cj_log(CJ_LOG_ERROR, "auth.schema_missing", NULL,
           CJ_F_STR("schema", "auth"), CJ_F_STR("missing", missing),
           CJ_F_STR("action", "run cerrojo-migrate up"));
    fprintf(stderr,
            "cerrojo-auth: %s: the database of CERROJO_AUTH_DATABASE_URL "
            "lacks the auth migrations %s; run `cerrojo-migrate up`, then "
            "%s again\n",
            command, missing, command);
    return false;
}

static int run_job(struct auth_service *svc, const char *command)
{
    struct auth_job_report report;
    enum cj_status rc;

    if (!schema_ready(svc, command)) {
        return 1;
    }
    if (strcmp(command, "cleanup") == 0) {
        rc = auth_job_cleanup(svc, &report);
        printf("cleanup: %s; refresh tokens %llu, revocations %llu, audit "
               "events %llu\n",
               job_outcome(&report, rc), report.tokens, report.revocations,
               report.audit_events);
    } else {
        rc = auth_job_rewrap(svc, &report);
        print_rewrap_report(&report, rc);
    }
    if (rc != CJ_OK && report.kms_unreachable) {
        fprintf(stderr,
                "cerrojo-auth: %s failed: kms is unreachable (%d RewrapKey "
                "calls in a row were unavailable or timed out). Check that "
                "kms runs at CERROJO_AUTH_KMS_TARGET, then run %s again\n",
                command, AUTH_JOB_KMS_FAILURES_MAX, command);
        return 1;
    }
    if (rc != CJ_OK) {
        fprintf(stderr, "cerrojo-auth: %s failed: %s\n", command,
                cj_status_name(rc));
        return 1;
    }
    return 0;
}

/* Describes the data key step: "not checked" when kms was not asked or
 * did not respond. */
static const char *
delete_key_outcome(const struct auth_user_delete_report *report)
{
    if (!report->key_checked) {
        return "not checked";
    }
    return report->key_forgotten ? "forgotten" : "none held";
}

/*
 * Runs delete-user and prints what it did. Exit status: 0 done, 3 no user
 * by that name and no record of deleting that id, 1 a step failed
 * (running the command again with the printed user id finishes it).
 */
static int run_delete_user(struct auth_service *svc, const char *user_ref)
{
    struct auth_user_delete_report report;
    enum cj_status rc;

    if (!schema_ready(svc, "delete-user")) {
        return 1;
    }
    rc = auth_user_delete(svc, user_ref, &report);
    if (rc == CJ_ERR_NOT_FOUND) {
        fprintf(stderr,
                "cerrojo-auth delete-user: no user has the id, username or "
                "email given, and auth has no record of deleting such an "
                "id\n");
        return 3;
    }
    if (report.user_id[0] != '\0') {
        printf("delete-user: user %s; row %s; sessions %s; data key %s\n",
               report.user_id, report.row_deleted ? "deleted" : "not found",
               report.sessions_ended ? "ended" : "not ended",
               delete_key_outcome(&report));
    }
    if (rc != CJ_OK) {
        /* The summary on stdout comes first, because the message below
         * refers to it and stdout is buffered when it is not a terminal. */
        fflush(stdout);
        fprintf(stderr,
                "cerrojo-auth delete-user failed: %s. Steps done are listed "
                "above; run `cerrojo-auth delete-user %s` again to finish\n",
                cj_status_name(rc),
                report.user_id[0] != '\0' ? report.user_id : "USER");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct auth_service svc;
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";
    bool is_help;
    bool is_job;
    int exit_status = 2;

    if (cj_openssl_skip_error_strings() != CJ_OK) {
        fprintf(stderr, "cerrojo-auth: OpenSSL failed to initialize\n");
        return 1;
    }
    /* Before any thread exists, so that only sigwait receives them. */
    cj_rpc_signals_block(&signals);
    is_help = cj_cli_help_requested(argc, argv, is_command(command));
    is_job =
        strcmp(command, "cleanup") == 0 || strcmp(command, "rewrap-keys") == 0;
    if (!is_help && !is_command(command)) {
        fprintf(stderr, "cerrojo-auth: unknown command '%s'\n", command);
        usage(stderr);
        return 2;
    }
    if (!is_help && strcmp(command, "delete-user") == 0 &&
        (argc != 3 || argv[2][0] == '\0')) {
        fprintf(stderr, "cerrojo-auth delete-user: expected one argument, "
                        "the user id, username or email\n");
        return 2;
    }
    if (!is_help && strcmp(command, "delete-user") != 0 && argc > 2) {
        fprintf(stderr, "cerrojo-auth %s: unexpected argument '%s'\n", command,
                argv[2]);
        usage(stderr);
        return 2;
    }
    if (is_help) {
        usage(stdout);
        return 0;
    }
    if (!load_config(&svc, strcmp(command, "healthcheck") != 0)) {
        goto out;
    }
    if (strcmp(command, "--print-config") == 0) {
        exit_status = print_config(&svc);
    } else if (strcmp(command, "healthcheck") == 0) {
        exit_status = cj_rpc_healthcheck("cerrojo-auth", &svc.cfg.grpc);
    } else if (auth_app_open(&svc) != CJ_OK) {
        exit_status = 1;
    } else if (is_job) {
        exit_status = run_job(&svc, command);
    } else if (strcmp(command, "delete-user") == 0) {
        exit_status = run_delete_user(&svc, argv[2]);
    } else {
        exit_status = serve(&svc, &signals);
    }
    auth_app_close(&svc);
out:
    cj_config_free(auth_config_options, auth_config_option_count, &svc.cfg);
    /* The gRPC core's detached threads end first, because OpenSSL's exit
     * handler must not run beside them. */
    (void)cj_proc_wait_alone(CJ_PROC_EXIT_WAIT_MS);
    return exit_status;
}

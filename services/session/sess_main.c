/*
 * cerrojo-session: Sessions and the revocation cache in Redis.
 * This file reads the arguments and configuration and runs the gRPC server
 * until SIGTERM or SIGINT.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "rpc_service.h"
#include "sess_rpc.h"

#define SESS_ENV_PREFIX     "CERROJO_SESSION"
#define SESS_DEFAULT_LISTEN "127.0.0.1:50053"

struct sess_config {
    struct cj_rpc_settings grpc;
    char *log_level;
};

static const struct cj_config_option sess_options[] = {
    CJ_RPC_CONFIG_OPTIONS(SESS_ENV_PREFIX, struct sess_config, grpc,
                          SESS_DEFAULT_LISTEN),
    {.name = "CERROJO_LOG_LEVEL",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct sess_config, log_level),
     .default_value = "info",
     .help = "minimum log level: debug, info, warn or error"},
};
#define SESS_OPTION_COUNT (sizeof(sess_options) / sizeof(sess_options[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-session [serve|healthcheck|--print-config|--help]\n"
            "  serve           run the gRPC server (default)\n"
            "  healthcheck     call the running server's Health/Check; "
            "exit 0 when SERVING\n"
            "  --print-config  print the configuration, secrets redacted\n"
            "configuration (environment or .env file):\n");
    cj_config_print_help(sess_options, SESS_OPTION_COUNT, out);
}

/*
 * Loads the configuration, and checks the gRPC settings unless only
 * printing it. Returns false after printing why it is unusable.
 */
static bool load_config(struct sess_config *cfg, enum cj_profile *profile,
                        bool check)
{
    char err[CJ_CONFIG_ERROR_MAX];
    enum cj_log_level level;

    if (cj_config_load(sess_options, SESS_OPTION_COUNT, profile, cfg, err,
                       sizeof(err)) != CJ_OK ||
        (check && cj_rpc_settings_check(&cfg->grpc, *profile, SESS_ENV_PREFIX,
                                        err, sizeof(err)) != CJ_OK)) {
        fprintf(stderr, "cerrojo-session: %s\n", err);
        return false;
    }
    if (!cj_log_level_parse(cfg->log_level, &level)) {
        fprintf(stderr,
                "cerrojo-session: CERROJO_LOG_LEVEL: expected debug, info, "
                "warn or error, got '%s'\n",
                cfg->log_level);
        return false;
    }
    cj_log_init("session", level);
    return true;
}

int main(int argc, char **argv)
{
    struct sess_config cfg;
    enum cj_profile profile = CJ_PROFILE_DEV;
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";
    int exit_status = 2;

    /* Before any thread exists, so that only sigwait receives them. */
    cj_rpc_signals_block(&signals);
    memset(&cfg, 0, sizeof(cfg));
    if (argc > 2 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        usage(argc > 2 ? stderr : stdout);
        return argc > 2 ? 2 : 0;
    }
    if (!load_config(&cfg, &profile, strcmp(command, "--print-config") != 0)) {
        goto out;
    }
    if (strcmp(command, "serve") == 0) {
        exit_status = cj_rpc_serve(&sess_rpc_service, &cfg.grpc, &signals);
    } else if (strcmp(command, "healthcheck") == 0) {
        exit_status = cj_rpc_healthcheck("cerrojo-session", &cfg.grpc);
    } else if (strcmp(command, "--print-config") == 0) {
        cj_config_dump(sess_options, SESS_OPTION_COUNT, profile, &cfg, stdout);
        exit_status = 0;
    } else {
        fprintf(stderr, "cerrojo-session: unknown command '%s'\n", command);
        usage(stderr);
    }
out:
    cj_config_free(sess_options, SESS_OPTION_COUNT, &cfg);
    return exit_status;
}

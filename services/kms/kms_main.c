/*
 * cerrojo-kms: Key management: wraps and unwraps user data keys, signs tokens,
 * opens HPKE-sealed requests and publishes the public keys. This file reads the
 * arguments and configuration and runs the gRPC server until SIGTERM or SIGINT.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "rpc_service.h"
#include "kms_rpc.h"

#define KMS_ENV_PREFIX     "CERROJO_KMS"
#define KMS_DEFAULT_LISTEN "127.0.0.1:50052"

struct kms_config {
    struct cj_rpc_settings grpc;
    char *log_level;
};

static const struct cj_config_option kms_options[] = {
    CJ_RPC_CONFIG_OPTIONS(KMS_ENV_PREFIX, struct kms_config, grpc,
                          KMS_DEFAULT_LISTEN),
    {.name = "CERROJO_LOG_LEVEL",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct kms_config, log_level),
     .default_value = "info",
     .help = "minimum log level: debug, info, warn or error"},
};
#define KMS_OPTION_COUNT (sizeof(kms_options) / sizeof(kms_options[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-kms [serve|healthcheck|--print-config|--help]\n"
            "  serve           run the gRPC server (default)\n"
            "  healthcheck     call the running server's Health/Check; "
            "exit 0 when SERVING\n"
            "  --print-config  print the configuration, secrets redacted\n"
            "configuration (environment or .env file):\n");
    cj_config_print_help(kms_options, KMS_OPTION_COUNT, out);
}

/*
 * Loads the configuration, and checks the gRPC settings unless only
 * printing it. Returns false after printing why it is unusable.
 */
static bool load_config(struct kms_config *cfg, enum cj_profile *profile,
                        bool check)
{
    char err[CJ_CONFIG_ERROR_MAX];
    enum cj_log_level level;

    if (cj_config_load(kms_options, KMS_OPTION_COUNT, profile, cfg, err,
                       sizeof(err)) != CJ_OK ||
        (check && cj_rpc_settings_check(&cfg->grpc, *profile, KMS_ENV_PREFIX,
                                        err, sizeof(err)) != CJ_OK)) {
        fprintf(stderr, "cerrojo-kms: %s\n", err);
        return false;
    }
    if (!cj_log_level_parse(cfg->log_level, &level)) {
        fprintf(stderr,
                "cerrojo-kms: CERROJO_LOG_LEVEL: expected debug, info, "
                "warn or error, got '%s'\n",
                cfg->log_level);
        return false;
    }
    cj_log_init("kms", level);
    return true;
}

int main(int argc, char **argv)
{
    struct kms_config cfg;
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
        exit_status = cj_rpc_serve(&kms_rpc_service, &cfg.grpc, &signals);
    } else if (strcmp(command, "healthcheck") == 0) {
        exit_status = cj_rpc_healthcheck("cerrojo-kms", &cfg.grpc);
    } else if (strcmp(command, "--print-config") == 0) {
        cj_config_dump(kms_options, KMS_OPTION_COUNT, profile, &cfg, stdout);
        exit_status = 0;
    } else {
        fprintf(stderr, "cerrojo-kms: unknown command '%s'\n", command);
        usage(stderr);
    }
out:
    cj_config_free(kms_options, KMS_OPTION_COUNT, &cfg);
    return exit_status;
}

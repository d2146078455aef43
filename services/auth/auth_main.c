/*
 * cerrojo-auth: Users, credentials, tokens, user data and the audit log. This
 * file reads the arguments and settings and runs the gRPC server until SIGTERM
 * or SIGINT.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rpc_service.h"
#include "auth_rpc.h"

#define AUTH_DEFAULT_LISTEN "127.0.0.1:50051"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-auth [serve|healthcheck|--print-config|--help]\n"
            "  serve          run the gRPC server (default)\n"
            "  healthcheck    call the server's own Health/Check; exit 0 when "
            "SERVING\n"
            "  --print-config print the settings read from the environment\n"
            "settings (environment): CERROJO_PROFILE (dev|stage|prod), "
            "CERROJO_AUTH_LISTEN\n"
            "  (host:port, default 127.0.0.1:50051), CERROJO_TLS_CA, "
            "CERROJO_AUTH_TLS_CERT,\n"
            "  CERROJO_AUTH_TLS_KEY (PEM files), CERROJO_GRPC_PLAINTEXT "
            "(true: no TLS, dev only),\n"
            "  CERROJO_LOG_LEVEL (debug|info|warn|error)\n");
}

int main(int argc, char **argv)
{
    struct cj_rpc_settings settings;
    char error[CJ_RPC_SETTING_MAX_LEN];
    enum cj_log_level level = CJ_LOG_INFO;
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";

    /* Before any thread exists, so that only sigwait sees the signals. */
    cj_rpc_signals_block(&signals);
    if (argc > 2 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        usage(argc > 2 ? stderr : stdout);
        return argc > 2 ? 2 : 0;
    }
    if (cj_rpc_settings_load("auth", AUTH_DEFAULT_LISTEN, &settings, error) !=
        CJ_OK) {
        fprintf(stderr, "cerrojo-auth: %s\n", error);
        return 2;
    }
    if (!cj_log_level_parse(settings.log_level, &level)) {
        fprintf(stderr, "cerrojo-auth: CERROJO_LOG_LEVEL is invalid: expected "
                        "debug, info, warn or error\n");
        return 2;
    }
    cj_log_init("auth", level);

    if (strcmp(command, "serve") == 0) {
        return cj_rpc_serve(&auth_rpc_service, &settings, &signals);
    }
    if (strcmp(command, "healthcheck") == 0) {
        return cj_rpc_healthcheck(&settings);
    }
    if (strcmp(command, "--print-config") == 0) {
        cj_rpc_settings_print(&settings, stdout);
        return 0;
    }
    fprintf(stderr, "cerrojo-auth: unknown command '%s'\n", command);
    usage(stderr);
    return 2;
}

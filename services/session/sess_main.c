/*
 * cerrojo-session: Sessions and the revocation cache in Redis. This file reads
 * the arguments and settings and runs the gRPC server until SIGTERM or SIGINT.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "rpc_service.h"
#include "sess_rpc.h"

#define SESS_DEFAULT_LISTEN "127.0.0.1:50053"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-session [serve|healthcheck|--print-config|--help]\n"
            "  serve          run the gRPC server (default)\n"
            "  healthcheck    call the server's own Health/Check; exit 0 when "
            "SERVING\n"
            "  --print-config print the settings read from the environment\n"
            "settings (environment): CERROJO_PROFILE (dev|stage|prod), "
            "CERROJO_SESSION_LISTEN\n"
            "  (host:port, default 127.0.0.1:50053), CERROJO_TLS_CA, "
            "CERROJO_SESSION_TLS_CERT,\n"
            "  CERROJO_SESSION_TLS_KEY (PEM files), CERROJO_GRPC_PLAINTEXT "
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
    if (cj_rpc_settings_load("session", SESS_DEFAULT_LISTEN, &settings,
                             error) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: %s\n", error);
        return 2;
    }
    if (!cj_log_level_parse(settings.log_level, &level)) {
        fprintf(stderr,
                "cerrojo-session: CERROJO_LOG_LEVEL is invalid: expected "
                "debug, info, warn or error\n");
        return 2;
    }
    cj_log_init("session", level);

    if (strcmp(command, "serve") == 0) {
        return cj_rpc_serve(&sess_rpc_service, &settings, &signals);
    }
    if (strcmp(command, "healthcheck") == 0) {
        return cj_rpc_healthcheck(&settings);
    }
    if (strcmp(command, "--print-config") == 0) {
        cj_rpc_settings_print(&settings, stdout);
        return 0;
    }
    fprintf(stderr, "cerrojo-session: unknown command '%s'\n", command);
    usage(stderr);
    return 2;
}

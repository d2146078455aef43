/*
 * What every gRPC service binary shares: its gRPC settings from the
 * environment, the `serve` loop with signal handling, and the
 * `healthcheck` subcommand.
 */
#ifndef CJ_RPC_SERVICE_H
#define CJ_RPC_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "rpc_server.h"
#include "status.h"

#define CJ_RPC_SETTING_MAX_LEN 1024

/* Timeout of one `healthcheck` call, in milliseconds. */
#define CJ_RPC_HEALTHCHECK_TIMEOUT_MS 3000

enum cj_profile {
    CJ_PROFILE_DEV = 0,
    CJ_PROFILE_STAGE,
    CJ_PROFILE_PROD,
};

/*
 * gRPC settings of one service, read from CERROJO_PROFILE,
 * CERROJO_GRPC_PLAINTEXT, CERROJO_TLS_CA and CERROJO_<SVC>_LISTEN,
 * CERROJO_<SVC>_TLS_CERT, CERROJO_<SVC>_TLS_KEY, CERROJO_LOG_LEVEL.
 */
struct cj_rpc_settings {
    char service[16];    /* "kms" */
    char env_prefix[32]; /* "CERROJO_KMS" */
    enum cj_profile profile;
    char listen[CJ_RPC_SETTING_MAX_LEN];
    bool plaintext;
    char tls_ca[CJ_RPC_SETTING_MAX_LEN];
    char tls_cert[CJ_RPC_SETTING_MAX_LEN];
    char tls_key[CJ_RPC_SETTING_MAX_LEN];
    char log_level[16];
};

/*
 * Loads the settings of `service` ("kms") with its default listen address.
 * Returns CJ_ERR_INVALID with a message naming the variable in `error`
 * (CJ_RPC_SETTING_MAX_LEN bytes) when a value is malformed, plaintext is
 * requested outside the dev profile, or TLS is on and a file is not set.
 */
CJ_WARN_UNUSED enum cj_status cj_rpc_settings_load(const char *service,
                                                   const char *default_listen,
                                                   struct cj_rpc_settings *out,
                                                   char *error);

/* Prints the settings as NAME=value lines (no secret is among them). */
void cj_rpc_settings_print(const struct cj_rpc_settings *settings, FILE *out);

/* Returns "dev", "stage" or "prod". */
const char *cj_profile_name(enum cj_profile profile);

/* Fills server options from the settings; strings point into settings. */
void cj_rpc_settings_server_options(const struct cj_rpc_settings *settings,
                                    struct cj_rpc_server_options *out);

/*
 * Serves `service` until SIGTERM or SIGINT, then shuts down gracefully.
 * `signals` comes from cj_rpc_signals_block(), called first in main.
 * Returns the process exit status.
 */
int cj_rpc_serve(const struct cj_rpc_service *service,
                 const struct cj_rpc_settings *settings,
                 const sigset_t *signals);

/*
 * Calls grpc.health.v1.Health/Check ("" service) on the service's own
 * listen address with its own certificate. Returns 0 when SERVING, 1
 * otherwise, with a one-line message on stderr.
 */
int cj_rpc_healthcheck(const struct cj_rpc_settings *settings);

#endif

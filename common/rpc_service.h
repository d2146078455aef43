/*
 * The parts every gRPC service binary shares: the gRPC options of its
 * configuration table, the `serve` loop with signal handling, and the
 * `healthcheck` subcommand.
 */
#ifndef CJ_RPC_SERVICE_H
#define CJ_RPC_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rpc_server.h"
#include "status.h"

/* Timeout of one `healthcheck` call, in milliseconds. */
#define CJ_RPC_HEALTHCHECK_TIMEOUT_MS 3000

/* Variable that turns TLS off for every gRPC server and client (dev only). */
#define CJ_RPC_PLAINTEXT_VAR "CERROJO_GRPC_PLAINTEXT"

/* gRPC settings of one service; embed it in the service's config struct. */
struct cj_rpc_settings {
    char *listen;
    bool plaintext;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    long long max_message_bytes;
    long long worker_threads;
    long long worker_queue;
    long long shutdown_grace_seconds;
};

/*
 * The configuration options that fill a struct cj_rpc_settings at
 * `member` of `type`, for a service whose variables start with `prefix`
 * ("CERROJO_KMS"). Put it in the service's option table, then call
 * cj_rpc_settings_check() after cj_config_load().
 */
/* clang-format off */
#define CJ_RPC_OPTION(var, kind, off, def, lo, hi, text)                      \
    {.name = (var), .type = (kind), .offset = (off), .default_value = (def),  \
     .min = (lo), .max = (hi), .help = (text)}

#define CJ_RPC_CONFIG_OPTIONS(prefix, type, member, listen_default)           \
    CJ_RPC_OPTION(prefix "_LISTEN", CJ_CONFIG_STRING,                         \
        offsetof(type, member.listen), listen_default, 0, 0,                  \
        "gRPC listen address, host:port or [IPv6]:port (port 0 picks "        \
        "a free port)"),                                                      \
    CJ_RPC_OPTION(CJ_RPC_PLAINTEXT_VAR, CJ_CONFIG_BOOL,                       \
        offsetof(type, member.plaintext), "false", 0, 0,                      \
        "true: gRPC without TLS and without access rules (dev only)"),        \
    CJ_RPC_OPTION("CERROJO_TLS_CA", CJ_CONFIG_PATH,                           \
        offsetof(type, member.tls_ca), NULL, 0, 0,                            \
        "PEM file of the platform CA that signs every service certificate"),  \
    CJ_RPC_OPTION(prefix "_TLS_CERT", CJ_CONFIG_PATH,                         \
        offsetof(type, member.tls_cert), NULL, 0, 0,                          \
        "PEM file of this service's certificate (server and client)"),        \
    CJ_RPC_OPTION(prefix "_TLS_KEY", CJ_CONFIG_PATH,                          \
        offsetof(type, member.tls_key), NULL, 0, 0,                           \
        "PEM file of the private key of that certificate"),                   \
    CJ_RPC_OPTION(prefix "_GRPC_MAX_MESSAGE", CJ_CONFIG_BYTES,                \
        offsetof(type, member.max_message_bytes), "1MiB", 1024,               \
        64LL * 1024 * 1024, "largest gRPC request or response, in bytes"),    \
    CJ_RPC_OPTION(prefix "_GRPC_WORKERS", CJ_CONFIG_INT,                      \
        offsetof(type, member.worker_threads), "4", 1, 256,                   \
        "threads that run blocking gRPC handlers"),                           \
    CJ_RPC_OPTION(prefix "_GRPC_QUEUE", CJ_CONFIG_INT,                        \
        offsetof(type, member.worker_queue), "256", 1, 100000,                \
        "blocking calls that may wait for a worker before UNAVAILABLE"),      \
    CJ_RPC_OPTION(prefix "_GRPC_SHUTDOWN_GRACE", CJ_CONFIG_DURATION,          \
        offsetof(type, member.shutdown_grace_seconds), "5s", 1, 3600,         \
        "time calls in flight get to finish at shutdown, in seconds")
/* clang-format on */

/*
 * Checks the settings without reading files: the listen address has the
 * form host:port or [IPv6]:port (port 0 allowed), plaintext only in the
 * dev profile, and with TLS, all three files set. `prefix` is the one
 * given to CJ_RPC_CONFIG_OPTIONS, for the messages.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_settings_check(const struct cj_rpc_settings *settings,
                      enum cj_profile profile, const char *prefix, char *err,
                      size_t err_size);

/*
 * Runs cj_rpc_settings_check, then with TLS reads the CA, certificate and
 * key files and checks them (cj_tls_files_check). The start and
 * --print-config both call it, so that a wrong file fails both with the
 * same message. Without it, gRPC would fail to start the server with no
 * cause that names the file, and would serve with a certificate of
 * another CA, which every caller's TLS handshake then rejects.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_settings_check_files(const struct cj_rpc_settings *settings,
                            enum cj_profile profile, const char *prefix,
                            char *err, size_t err_size);

/*
 * Checks the metrics settings of a service against its gRPC settings:
 * CERROJO_METRICS_HOST (cj_metrics_host_check), and a metrics port that
 * differs from the port of the listen address unless either is 0. The
 * port check ignores the hosts, so it also rejects the same port on two
 * different addresses. err names `<prefix>_METRICS_PORT` and
 * `<prefix>_LISTEN`. The start and --print-config both call it.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_settings_check_metrics(const struct cj_rpc_settings *settings,
                              long long metrics_port, const char *prefix,
                              char *err, size_t err_size);

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
 * otherwise, with a one-line message naming `program` on stderr.
 */
int cj_rpc_healthcheck(const char *program,
                       const struct cj_rpc_settings *settings);

#endif

/* Settings, serve loop and healthcheck shared by the gRPC service binaries. */
#include "rpc_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "host_port.h"
#include "log.h"
#include "metrics.h"
#include "rpc_client.h"
#include "rpc_message.h"
#include "tls_files.h"

/* Room for a variable name such as "CERROJO_SESSION_TLS_CERT". */
#define CJ_RPC_VAR_NAME_MAX 64
/* Maximum length of a listen address quoted in an error message, in
 * characters. */
#define CJ_RPC_LISTEN_ECHO_MAX 64
/* Maximum length of the address the healthcheck calls, in bytes. */
#define CJ_RPC_TARGET_MAX_LEN 1024

/* Checks the form of the listen address, which gRPC would otherwise
 * complete with port 443 when the port is missing. */
static enum cj_status check_listen(const struct cj_rpc_settings *s,
                                   const char *prefix, char *err,
                                   size_t err_size)
{
    enum cj_host_port_error error = cj_host_port_parse(s->listen, true, NULL);

    if (error == CJ_HOST_PORT_OK) {
        return CJ_OK;
    }
    snprintf(err, err_size,
             "%s_LISTEN: expected host:port or [IPv6]:port with a port from 0 "
             "to 65535, got '%.*s': %s",
             prefix, CJ_RPC_LISTEN_ECHO_MAX, s->listen != NULL ? s->listen : "",
             cj_host_port_error_text(error));
    return CJ_ERR_INVALID;
}

enum cj_status cj_rpc_settings_check_metrics(const struct cj_rpc_settings *s,
                                             long long metrics_port,
                                             const char *prefix, char *err,
                                             size_t err_size)
{
    struct cj_host_port listen;

    if (cj_metrics_host_check(err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (metrics_port == 0 ||
        cj_host_port_parse(s->listen, true, &listen) != CJ_HOST_PORT_OK ||
        listen.port != metrics_port) {
        return CJ_OK;
    }
    snprintf(err, err_size,
             "%s_METRICS_PORT and %s_LISTEN both use port %lld; give the "
             "metrics server another port",
             prefix, prefix, metrics_port);
    return CJ_ERR_INVALID;
}

enum cj_status cj_rpc_settings_check(const struct cj_rpc_settings *s,
                                     enum cj_profile profile,
                                     const char *prefix, char *err,
                                     size_t err_size)
{
    if (check_listen(s, prefix, err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (s->plaintext) {
        return cj_config_require_dev(
            profile, CJ_RPC_PLAINTEXT_VAR,
            "plaintext gRPC is allowed only in the dev profile; set "
            "CERROJO_TLS_CA and the service certificate instead",
            err, err_size);
    }
    const struct {
        const char *suffix;
        const char *value;
    } files[] = {
        {NULL, s->tls_ca},
        {"_TLS_CERT", s->tls_cert},
        {"_TLS_KEY", s->tls_key},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i].value == NULL || files[i].value[0] == '\0') {
            if (files[i].suffix == NULL) {
                snprintf(err, err_size,
                         "CERROJO_TLS_CA: missing: gRPC uses "
                         "mutual TLS unless %s=true (dev only)",
                         CJ_RPC_PLAINTEXT_VAR);
            } else {
                snprintf(err, err_size,
                         "%s%s: missing: gRPC uses mutual TLS "
                         "unless %s=true (dev only)",
                         prefix, files[i].suffix, CJ_RPC_PLAINTEXT_VAR);
            }
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

enum cj_status cj_rpc_settings_check_files(const struct cj_rpc_settings *s,
                                           enum cj_profile profile,
                                           const char *prefix, char *err,
                                           size_t err_size)
{
    char cert_var[CJ_RPC_VAR_NAME_MAX];
    char key_var[CJ_RPC_VAR_NAME_MAX];
    struct cj_tls_files files = {
        .ca_var = "CERROJO_TLS_CA",
        .ca = s->tls_ca,
        .cert_var = cert_var,
        .cert = s->tls_cert,
        .key_var = key_var,
        .key = s->tls_key,
    };

    enum cj_status status =
        cj_rpc_settings_check(s, profile, prefix, err, err_size);
    if (status != CJ_OK || s->plaintext) {
        return status;
    }
    snprintf(cert_var, sizeof(cert_var), "%s_TLS_CERT", prefix);
    snprintf(key_var, sizeof(key_var), "%s_TLS_KEY", prefix);
    return cj_tls_files_check(&files, err, err_size);
}

void cj_rpc_settings_server_options(const struct cj_rpc_settings *s,
                                    struct cj_rpc_server_options *out)
{
    memset(out, 0, sizeof(*out));
    out->listen = s->listen;
    out->plaintext = s->plaintext;
    out->tls_ca_file = s->tls_ca;
    out->tls_cert_file = s->tls_cert;
    out->tls_key_file = s->tls_key;
    out->max_message_bytes = (size_t)s->max_message_bytes;
    out->worker_threads = (size_t)s->worker_threads;
    out->worker_queue = (size_t)s->worker_queue;
    out->shutdown_grace_ms = s->shutdown_grace_seconds * 1000;
}

int cj_rpc_serve(const struct cj_rpc_service *service,
                 const struct cj_rpc_settings *settings,
                 const sigset_t *signals)
{
    struct cj_rpc_server_options options;
    struct cj_rpc_server *server = NULL;
    int exit_status = 1;

    cj_rpc_settings_server_options(settings, &options);
    enum cj_status status = cj_rpc_server_create(service, &options, &server);
    if (status == CJ_OK) {
        status = cj_rpc_server_start(server);
    }
    if (status != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "rpc.start_failed", NULL,
               CJ_F_STR("grpc_service", service->name),
               CJ_F_STR("status", cj_status_name(status)));
        goto out;
    }
    int signal_number = cj_rpc_server_wait_signal(signals);
    cj_log(CJ_LOG_INFO, "rpc.signal", NULL,
           CJ_F_STR("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
    cj_rpc_server_shutdown(server);
    exit_status = 0;
out:
    cj_rpc_server_destroy(server);
    return exit_status;
}

/*
 * Rewrites a wildcard listen address ("0.0.0.0:p", "[::]:p") to loopback,
 * where the service can be reached from its own container.
 */
static void healthcheck_target(const char *listen, char *out, size_t size)
{
    const char *colon = strrchr(listen, ':');
    if (colon != NULL && (strncmp(listen, "0.0.0.0:", 8) == 0 ||
                          strncmp(listen, "[::]:", 5) == 0)) {
        snprintf(out, size, "127.0.0.1%s", colon);
    } else {
        snprintf(out, size, "%s", listen);
    }
}

int cj_rpc_healthcheck(const char *program, const struct cj_rpc_settings *s)
{
    struct cj_rpc_client_options options;
    struct cj_rpc_client *client = NULL;
    ProtobufCMessage *response = NULL;
    char target[CJ_RPC_TARGET_MAX_LEN];
    char error[CJ_RPC_CLIENT_ERROR_MAX];
    int exit_status = 1;
    Grpc__Health__V1__HealthCheckRequest request =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

    healthcheck_target(s->listen, target, sizeof(target));
    memset(&options, 0, sizeof(options));
    options.targets = target;
    options.plaintext = s->plaintext;
    options.tls_ca_file = s->tls_ca;
    options.tls_cert_file = s->tls_cert;
    options.tls_key_file = s->tls_key;
    /* NOTE: the server certificate must name the listen host (dev
     * certificates carry localhost and 127.0.0.1). */
    if (cj_rpc_client_create(&options, &client) != CJ_OK) {
        fprintf(stderr,
                "%s healthcheck: cannot create a client for "
                "%s\n",
                program, target);
        goto out;
    }
    enum cj_status status = cj_rpc_client_call(
        client, "/grpc.health.v1.Health/Check", &request.base,
        &grpc__health__v1__health_check_response__descriptor, NULL,
        CJ_RPC_HEALTHCHECK_TIMEOUT_MS, &response, NULL, error);
    if (status != CJ_OK) {
        fprintf(stderr, "%s healthcheck: %s: %s (%s)\n", program, target,
                cj_status_name(status), error);
        goto out;
    }
    int serving = ((Grpc__Health__V1__HealthCheckResponse *)response)->status;
    if (serving !=
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        fprintf(stderr,
                "%s healthcheck: %s is not serving (status "
                "%d)\n",
                program, target, serving);
        goto out;
    }
    exit_status = 0;
out:
    cj_rpc_message_free(response);
    cj_rpc_client_destroy(client);
    return exit_status;
}

/* Settings, serve loop and healthcheck shared by the gRPC service binaries. */
#include "rpc_service.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_message.h"

const char *cj_profile_name(enum cj_profile profile)
{
    switch (profile) {
    case CJ_PROFILE_STAGE:
        return "stage";
    case CJ_PROFILE_PROD:
        return "prod";
    case CJ_PROFILE_DEV:
        break;
    }
    return "dev";
}

/* Copies variable `name` (or `fallback`) into out; false when too long. */
static bool env_copy(const char *name, const char *fallback, char *out,
                     size_t size)
{
    const char *value = getenv(name);
    if (value == NULL) {
        value = fallback;
    }
    if (strlen(value) >= size) {
        return false;
    }
    memcpy(out, value, strlen(value) + 1);
    return true;
}

static bool parse_bool(const char *text, bool *out)
{
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
        *out = true;
    } else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
               text[0] == '\0') {
        *out = false;
    } else {
        return false;
    }
    return true;
}

enum cj_status cj_rpc_settings_load(const char *service,
                                    const char *default_listen,
                                    struct cj_rpc_settings *out, char *error)
{
    char name[64];
    char text[CJ_RPC_SETTING_MAX_LEN];

    memset(out, 0, sizeof(*out));
    error[0] = '\0';
    snprintf(out->service, sizeof(out->service), "%s", service);
    snprintf(out->env_prefix, sizeof(out->env_prefix), "CERROJO_");
    for (size_t i = 0; service[i] != '\0' && i + 9 < sizeof(out->env_prefix);
         i++) {
        out->env_prefix[8 + i] = (char)toupper((unsigned char)service[i]);
    }

    if (!env_copy("CERROJO_PROFILE", "dev", text, sizeof(text)) ||
        (strcmp(text, "dev") != 0 && strcmp(text, "stage") != 0 &&
         strcmp(text, "prod") != 0)) {
        snprintf(error, CJ_RPC_SETTING_MAX_LEN,
                 "CERROJO_PROFILE is invalid: expected dev, stage or prod");
        return CJ_ERR_INVALID;
    }
    out->profile = strcmp(text, "prod") == 0    ? CJ_PROFILE_PROD
                   : strcmp(text, "stage") == 0 ? CJ_PROFILE_STAGE
                                                : CJ_PROFILE_DEV;
    if (!env_copy("CERROJO_LOG_LEVEL", "info", out->log_level,
                  sizeof(out->log_level))) {
        snprintf(error, CJ_RPC_SETTING_MAX_LEN,
                 "CERROJO_LOG_LEVEL is too long");
        return CJ_ERR_INVALID;
    }
    if (!env_copy("CERROJO_GRPC_PLAINTEXT", "false", text, sizeof(text)) ||
        !parse_bool(text, &out->plaintext)) {
        snprintf(error, CJ_RPC_SETTING_MAX_LEN,
                 "CERROJO_GRPC_PLAINTEXT is invalid: expected true or false");
        return CJ_ERR_INVALID;
    }
    if (out->plaintext && out->profile != CJ_PROFILE_DEV) {
        snprintf(error, CJ_RPC_SETTING_MAX_LEN,
                 "CERROJO_GRPC_PLAINTEXT=true is allowed only with "
                 "CERROJO_PROFILE=dev; configure CERROJO_TLS_CA and the "
                 "service certificate instead");
        return CJ_ERR_INVALID;
    }
    snprintf(name, sizeof(name), "%s_LISTEN", out->env_prefix);
    if (!env_copy(name, default_listen, out->listen, sizeof(out->listen)) ||
        out->listen[0] == '\0') {
        snprintf(error, CJ_RPC_SETTING_MAX_LEN, "%s is empty or too long",
                 name);
        return CJ_ERR_INVALID;
    }
    const struct {
        const char *suffix;
        char *dest;
    } files[] = {
        {"", out->tls_ca},
        {"_TLS_CERT", out->tls_cert},
        {"_TLS_KEY", out->tls_key},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (i == 0) {
            snprintf(name, sizeof(name), "CERROJO_TLS_CA");
        } else {
            snprintf(name, sizeof(name), "%s%s", out->env_prefix,
                     files[i].suffix);
        }
        if (!env_copy(name, "", files[i].dest, CJ_RPC_SETTING_MAX_LEN)) {
            snprintf(error, CJ_RPC_SETTING_MAX_LEN, "%s is too long", name);
            return CJ_ERR_INVALID;
        }
        if (!out->plaintext && files[i].dest[0] == '\0') {
            snprintf(error, CJ_RPC_SETTING_MAX_LEN,
                     "%s is not set: gRPC uses mutual TLS unless "
                     "CERROJO_GRPC_PLAINTEXT=true (dev profile only)",
                     name);
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

void cj_rpc_settings_print(const struct cj_rpc_settings *s, FILE *out)
{
    fprintf(out, "CERROJO_PROFILE=%s\n", cj_profile_name(s->profile));
    fprintf(out, "CERROJO_LOG_LEVEL=%s\n", s->log_level);
    fprintf(out, "CERROJO_GRPC_PLAINTEXT=%s\n",
            s->plaintext ? "true" : "false");
    fprintf(out, "%s_LISTEN=%s\n", s->env_prefix, s->listen);
    fprintf(out, "CERROJO_TLS_CA=%s\n", s->tls_ca);
    fprintf(out, "%s_TLS_CERT=%s\n", s->env_prefix, s->tls_cert);
    fprintf(out, "%s_TLS_KEY=%s\n", s->env_prefix, s->tls_key);
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

int cj_rpc_healthcheck(const struct cj_rpc_settings *s)
{
    struct cj_rpc_client_options options;
    struct cj_rpc_client *client = NULL;
    ProtobufCMessage *response = NULL;
    char target[CJ_RPC_SETTING_MAX_LEN];
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
                "cerrojo-%s healthcheck: cannot create a client for "
                "%s\n",
                s->service, target);
        goto out;
    }
    enum cj_status status = cj_rpc_client_call(
        client, "/grpc.health.v1.Health/Check", &request.base,
        &grpc__health__v1__health_check_response__descriptor, NULL,
        CJ_RPC_HEALTHCHECK_TIMEOUT_MS, &response, NULL, error);
    if (status != CJ_OK) {
        fprintf(stderr, "cerrojo-%s healthcheck: %s: %s (%s)\n", s->service,
                target, cj_status_name(status), error);
        goto out;
    }
    int serving = ((Grpc__Health__V1__HealthCheckResponse *)response)->status;
    if (serving !=
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        fprintf(stderr,
                "cerrojo-%s healthcheck: %s is not serving (status "
                "%d)\n",
                s->service, target, serving);
        goto out;
    }
    exit_status = 0;
out:
    cj_rpc_message_free(response);
    cj_rpc_client_destroy(client);
    return exit_status;
}

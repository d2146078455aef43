/*
 * Reading and checking the gateway's environment variables.
 */
#include "gw_settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_limits.h"

static const char *gw_env(const char *name, const char *fallback)
{
    const char *value = getenv(name);

    return value != NULL && value[0] != '\0' ? value : fallback;
}

static enum cj_status gw_env_unsigned(const char *name, unsigned fallback,
                                      unsigned min, unsigned max, unsigned *out,
                                      char *err, size_t err_size)
{
    const char *text = getenv(name);
    char *end = NULL;
    unsigned long value;

    if (text == NULL || text[0] == '\0') {
        *out = fallback;
        return CJ_OK;
    }
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || value < min ||
        value > max) {
        snprintf(err, err_size, "%s must be an integer from %u to %u", name,
                 min, max);
        return CJ_ERR_INVALID;
    }
    *out = (unsigned)value;
    return CJ_OK;
}

static enum cj_status gw_env_copy(const char *name, const char *fallback,
                                  char *out, size_t size, char *err,
                                  size_t err_size)
{
    const char *value = gw_env(name, fallback);

    if (strlen(value) >= size) {
        snprintf(err, err_size, "%s is longer than %zu bytes", name, size - 1);
        return CJ_ERR_INVALID;
    }
    strcpy(out, value);
    return CJ_OK;
}

const char *gw_profile_name(enum gw_profile profile)
{
    switch (profile) {
    case GW_PROFILE_STAGE:
        return "stage";
    case GW_PROFILE_PROD:
        return "prod";
    case GW_PROFILE_DEV:
        break;
    }
    return "dev";
}

static enum cj_status gw_settings_load_network(struct gw_settings *out,
                                               char *err, size_t err_size)
{
    const char *proxies = getenv("CERROJO_GATEWAY_TRUSTED_PROXIES");
    const char *origins = getenv("CERROJO_GATEWAY_CORS_ORIGINS");
    unsigned char probe[16];
    unsigned port;

    if (gw_env_copy("CERROJO_GATEWAY_HOST", "127.0.0.1", out->http_host,
                    sizeof(out->http_host), err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (inet_pton(AF_INET, out->http_host, probe) != 1 &&
        inet_pton(AF_INET6, out->http_host, probe) != 1) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_HOST must be an IPv4 or IPv6 address");
        return CJ_ERR_INVALID;
    }
    if (gw_env_unsigned("CERROJO_GATEWAY_PORT", GW_HTTP_PORT_DEFAULT, 1, 65535,
                        &port, err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    out->http_port = (uint16_t)port;
    if (gw_env_unsigned("CERROJO_GATEWAY_ADMIN_PORT", GW_ADMIN_PORT_DEFAULT, 1,
                        65535, &port, err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    out->admin_port = (uint16_t)port;
    out->trusted_proxies_set = proxies != NULL;
    if (gw_cidr_list_parse(proxies, &out->trusted_proxies) != CJ_OK) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES must be a comma-separated "
                 "list of at most %d addresses or CIDR prefixes",
                 GW_TRUSTED_PROXIES_MAX);
        return CJ_ERR_INVALID;
    }
    if (gw_origin_list_parse(origins, &out->cors_origins) != CJ_OK) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_CORS_ORIGINS must be a comma-separated "
                 "list of at most %d origins such as https://app.example, "
                 "without \"*\" or \"null\"",
                 GW_CORS_ORIGINS_MAX);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static enum cj_status gw_settings_load_backends(struct gw_settings *out,
                                                char *err, size_t err_size)
{
    if (gw_env_copy("CERROJO_KMS_ADDR", GW_KMS_ADDR_DEFAULT, out->kms_addr,
                    sizeof(out->kms_addr), err, err_size) != CJ_OK ||
        gw_env_copy("CERROJO_SESSION_ADDR", GW_SESSION_ADDR_DEFAULT,
                    out->session_addr, sizeof(out->session_addr), err,
                    err_size) != CJ_OK ||
        gw_env_copy("CERROJO_AUTH_ADDR", GW_AUTH_ADDR_DEFAULT, out->auth_addr,
                    sizeof(out->auth_addr), err, err_size) != CJ_OK ||
        gw_env_copy("CERROJO_REDIS_ADDR", GW_REDIS_ADDR_DEFAULT,
                    out->redis_addr, sizeof(out->redis_addr), err,
                    err_size) != CJ_OK ||
        gw_env_copy("CERROJO_GATEWAY_OPENAPI_FILE", GW_OPENAPI_FILE_DEFAULT,
                    out->openapi_file, sizeof(out->openapi_file), err,
                    err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static enum cj_status gw_settings_load_grpc(struct gw_settings *out, char *err,
                                            size_t err_size)
{
    const char *plaintext = gw_env("CERROJO_GRPC_PLAINTEXT", "false");

    if (strcmp(plaintext, "true") == 0 || strcmp(plaintext, "1") == 0 ||
        strcmp(plaintext, "yes") == 0) {
        out->grpc_plaintext = true;
    } else if (strcmp(plaintext, "false") != 0 && strcmp(plaintext, "0") != 0 &&
               strcmp(plaintext, "no") != 0) {
        snprintf(err, err_size, "CERROJO_GRPC_PLAINTEXT must be true or false");
        return CJ_ERR_INVALID;
    }
    if (gw_env_copy("CERROJO_TLS_CA", "", out->tls_ca, sizeof(out->tls_ca), err,
                    err_size) != CJ_OK ||
        gw_env_copy("CERROJO_GATEWAY_TLS_CERT", "", out->tls_cert,
                    sizeof(out->tls_cert), err, err_size) != CJ_OK ||
        gw_env_copy("CERROJO_GATEWAY_TLS_KEY", "", out->tls_key,
                    sizeof(out->tls_key), err, err_size) != CJ_OK ||
        gw_env_copy("CERROJO_AUTH_ISSUER", GW_JWT_ISSUER_DEFAULT,
                    out->jwt_issuer, sizeof(out->jwt_issuer), err,
                    err_size) != CJ_OK ||
        gw_env_copy("CERROJO_AUTH_AUDIENCE", GW_JWT_AUDIENCE_DEFAULT,
                    out->jwt_audience, sizeof(out->jwt_audience), err,
                    err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (!out->grpc_plaintext &&
        (out->tls_ca[0] == '\0' || out->tls_cert[0] == '\0' ||
         out->tls_key[0] == '\0')) {
        snprintf(err, err_size,
                 "CERROJO_TLS_CA, CERROJO_GATEWAY_TLS_CERT and "
                 "CERROJO_GATEWAY_TLS_KEY must all be set, or "
                 "CERROJO_GRPC_PLAINTEXT=true in the dev profile");
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static enum cj_status gw_settings_load_numbers(struct gw_settings *out,
                                               char *err, size_t err_size)
{
    const struct {
        const char *name;
        unsigned fallback;
        unsigned min;
        unsigned max;
        unsigned *dst;
    } numbers[] = {
        {"CERROJO_GATEWAY_TIMESTAMP_WINDOW_SECONDS",
         GW_TIMESTAMP_WINDOW_SECONDS_DEFAULT, 1, 3600,
         &out->timestamp_window_seconds},
        {"CERROJO_CLOCK_LEEWAY_SECONDS", GW_CLOCK_LEEWAY_SECONDS_DEFAULT, 0,
         3600, &out->clock_leeway_seconds},
        {"CERROJO_GATEWAY_JWKS_REFRESH_SECONDS",
         GW_JWKS_REFRESH_SECONDS_DEFAULT, 1, 86400, &out->jwks_refresh_seconds},
        {"CERROJO_GATEWAY_RPC_DEADLINE_MS", GW_RPC_DEADLINE_MS, 10, 60000,
         &out->rpc_deadline_ms},
        {"CERROJO_GATEWAY_REDIS_CLOCK_OFFSET_MAX_MS",
         GW_REDIS_CLOCK_OFFSET_MAX_MS, 1, 3600000,
         &out->redis_clock_offset_max_ms},
        {"CERROJO_GATEWAY_RATE_PER_MINUTE", GW_RATE_PER_MINUTE_DEFAULT, 1,
         1000000, &out->rate_per_minute},
        {"CERROJO_GATEWAY_RATE_BURST", GW_RATE_BURST_DEFAULT, 1, 1000000,
         &out->rate_burst},
        {"CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE",
         GW_HANDSHAKE_RATE_PER_MINUTE_DEFAULT, 1, 1000000,
         &out->handshake_rate_per_minute},
        {"CERROJO_GATEWAY_HANDSHAKE_RATE_BURST",
         GW_HANDSHAKE_RATE_BURST_DEFAULT, 1, 1000000,
         &out->handshake_rate_burst},
    };

    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (gw_env_unsigned(numbers[i].name, numbers[i].fallback,
                            numbers[i].min, numbers[i].max, numbers[i].dst, err,
                            err_size) != CJ_OK) {
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

enum cj_status gw_settings_load(struct gw_settings *out, char *err,
                                size_t err_size)
{
    const char *profile = gw_env("CERROJO_PROFILE", "dev");
    const char *level = gw_env("CERROJO_LOG_LEVEL", "info");

    memset(out, 0, sizeof(*out));
    if (strcmp(profile, "dev") == 0) {
        out->profile = GW_PROFILE_DEV;
    } else if (strcmp(profile, "stage") == 0) {
        out->profile = GW_PROFILE_STAGE;
    } else if (strcmp(profile, "prod") == 0) {
        out->profile = GW_PROFILE_PROD;
    } else {
        snprintf(err, err_size, "CERROJO_PROFILE must be dev, stage or prod");
        return CJ_ERR_INVALID;
    }
    if (!cj_log_level_parse(level, &out->log_level)) {
        snprintf(err, err_size,
                 "CERROJO_LOG_LEVEL must be debug, info, warn or error");
        return CJ_ERR_INVALID;
    }
    if (gw_settings_load_network(out, err, err_size) != CJ_OK ||
        gw_settings_load_backends(out, err, err_size) != CJ_OK ||
        gw_settings_load_grpc(out, err, err_size) != CJ_OK ||
        gw_settings_load_numbers(out, err, err_size) != CJ_OK) {
        return CJ_ERR_INVALID;
    }
    if (out->profile != GW_PROFILE_DEV && out->grpc_plaintext) {
        snprintf(err, err_size,
                 "CERROJO_GRPC_PLAINTEXT: plaintext gRPC is allowed only in "
                 "the dev profile (profile is %s)",
                 gw_profile_name(out->profile));
        return CJ_ERR_INVALID;
    }
    /* Behind a load balancer every client would share the proxy's IP (one
     * rate-limit bucket) unless the proxies are named. */
    if (out->profile != GW_PROFILE_DEV && !out->trusted_proxies_set) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES must be set in the %s "
                 "profile (an empty value means no proxy)",
                 gw_profile_name(out->profile));
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

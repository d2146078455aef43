/*
 * The gateway's configuration table (common/config.h) and its conversion
 * into struct gw_settings, with the checks that span several variables.
 */
#include "gw_settings.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rpc_client.h"
#include "tls_files.h"
#include "gw_limits.h"
#include "gw_redis.h"

/* Prefix of the variables only the gateway reads. */
#define GW_ENV_PREFIX "CERROJO_GATEWAY_"

/* Values as the configuration table parses them, before conversion. */
struct gw_raw_settings {
    char *log_level;
    char *host;
    long long port;
    long long admin_port;
    char *trusted_proxies;
    char *cors_origins;
    char *kms_addr;
    char *session_addr;
    char *auth_addr;
    char *redis_addr;
    char *openapi_file;
    bool grpc_plaintext;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *jwt_issuer;
    char *jwt_audience;
    long long timestamp_window_seconds;
    long long clock_leeway_seconds;
    long long jwks_refresh_seconds;
    long long rpc_deadline_ms;
    long long redis_clock_offset_max_ms;
    long long rate_per_minute;
    long long rate_burst;
    long long handshake_rate_per_minute;
    long long handshake_rate_burst;
    long long session_rate_per_minute;
    long long session_rate_burst;
    long long register_rate_per_minute;
    long long register_rate_burst;
    bool bench_route;
};

#define GW_OPT(var, kind, field, def, lo, hi, text)                            \
    {                                                                          \
        .name = (var), .type = (kind),                                         \
        .offset = offsetof(struct gw_raw_settings, field),                     \
        .default_value = (def), .min = (lo), .max = (hi), .help = (text)       \
    }

#define GW_STR(x)  #x
#define GW_XSTR(x) GW_STR(x)

/* clang-format off */
static const struct cj_config_option gw_options[] = {
    GW_OPT("CERROJO_LOG_LEVEL", CJ_CONFIG_STRING, log_level, "info", 0, 0,
           "minimum log level: debug, info, warn or error"),
    GW_OPT("CERROJO_GATEWAY_HOST", CJ_CONFIG_STRING, host, "127.0.0.1", 0, 0,
           "IPv4 or IPv6 address both HTTP servers listen on"),
    GW_OPT("CERROJO_GATEWAY_PORT", CJ_CONFIG_INT, port,
           GW_XSTR(GW_HTTP_PORT_DEFAULT), 1, 65535, "port of the HTTP API"),
    GW_OPT("CERROJO_GATEWAY_ADMIN_PORT", CJ_CONFIG_INT, admin_port,
           GW_XSTR(GW_ADMIN_PORT_DEFAULT), 1, 65535,
           "port of the admin server (/metrics)"),
    GW_OPT("CERROJO_GATEWAY_TRUSTED_PROXIES", CJ_CONFIG_STRING,
           trusted_proxies, NULL, 0, 0,
           "comma-separated addresses or CIDR prefixes (IPv4 /8 or longer, "
           "IPv6 /32 or longer, or inside fc00::/7) whose X-Forwarded-For "
           "and X-Request-Id are trusted; required (may be empty) outside "
           "dev"),
    GW_OPT("CERROJO_GATEWAY_CORS_ORIGINS", CJ_CONFIG_STRING, cors_origins,
           "", 0, 0,
           "comma-separated origins (https://app.example) answered for "
           "CORS; no \"*\" or \"null\""),
    GW_OPT("CERROJO_KMS_ADDR", CJ_CONFIG_STRING, kms_addr,
           GW_KMS_ADDR_DEFAULT, 0, 0, "host:port of cerrojo-kms"),
    GW_OPT("CERROJO_SESSION_ADDR", CJ_CONFIG_STRING, session_addr,
           GW_SESSION_ADDR_DEFAULT, 0, 0, "host:port of cerrojo-session"),
    GW_OPT("CERROJO_AUTH_ADDR", CJ_CONFIG_STRING, auth_addr,
           GW_AUTH_ADDR_DEFAULT, 0, 0, "host:port of cerrojo-auth"),
    GW_OPT("CERROJO_REDIS_ADDR", CJ_CONFIG_STRING, redis_addr,
           GW_REDIS_ADDR_DEFAULT, 0, 0,
           "host:port of Redis (rate limits, anti-replay)"),
    GW_OPT("CERROJO_GATEWAY_OPENAPI_FILE", CJ_CONFIG_PATH, openapi_file,
           GW_OPENAPI_FILE_DEFAULT, 0, 0,
           "file served at /openapi.json; 404 when absent"),
    GW_OPT("CERROJO_GRPC_PLAINTEXT", CJ_CONFIG_BOOL, grpc_plaintext, "false",
           0, 0, "true: gRPC to the backends without TLS (dev only)"),
    GW_OPT("CERROJO_TLS_CA", CJ_CONFIG_PATH, tls_ca, NULL, 0, 0,
           "PEM file of the platform CA"),
    GW_OPT("CERROJO_GATEWAY_TLS_CERT", CJ_CONFIG_PATH, tls_cert, NULL, 0, 0,
           "PEM file of the gateway's client certificate"),
    GW_OPT("CERROJO_GATEWAY_TLS_KEY", CJ_CONFIG_PATH, tls_key, NULL, 0, 0,
           "PEM file of that certificate's private key"),
    GW_OPT("CERROJO_AUTH_ISSUER", CJ_CONFIG_STRING, jwt_issuer,
           GW_JWT_ISSUER_DEFAULT, 0, 0, "iss that access tokens must carry"),
    GW_OPT("CERROJO_AUTH_AUDIENCE", CJ_CONFIG_STRING, jwt_audience,
           GW_JWT_AUDIENCE_DEFAULT, 0, 0,
           "aud that access tokens must carry"),
    GW_OPT("CERROJO_GATEWAY_TIMESTAMP_WINDOW_SECONDS", CJ_CONFIG_DURATION,
           timestamp_window_seconds,
           GW_XSTR(GW_TIMESTAMP_WINDOW_SECONDS_DEFAULT), 1, 3600,
           "accepted age of a stateless request's timestamp, each side"),
    GW_OPT("CERROJO_CLOCK_LEEWAY_SECONDS", CJ_CONFIG_DURATION,
           clock_leeway_seconds, GW_XSTR(GW_CLOCK_LEEWAY_SECONDS_DEFAULT), 0,
           3600, "clock leeway for token times and the replay TTL"),
    GW_OPT("CERROJO_GATEWAY_JWKS_REFRESH_SECONDS", CJ_CONFIG_DURATION,
           jwks_refresh_seconds, GW_XSTR(GW_JWKS_REFRESH_SECONDS_DEFAULT), 1,
           86400, "maximum age of the JWKS copy before a refetch"),
    GW_OPT("CERROJO_GATEWAY_RPC_DEADLINE_MS", CJ_CONFIG_INT, rpc_deadline_ms,
           GW_XSTR(GW_RPC_DEADLINE_MS), 10, 60000,
           "deadline of one backend RPC, in milliseconds"),
    GW_OPT("CERROJO_GATEWAY_REDIS_CLOCK_OFFSET_MAX_MS", CJ_CONFIG_INT,
           redis_clock_offset_max_ms, GW_XSTR(GW_REDIS_CLOCK_OFFSET_MAX_MS),
           1, 3600000,
           "Redis clock offset above which the gateway is not ready, in ms"),
    GW_OPT("CERROJO_GATEWAY_RATE_PER_MINUTE", CJ_CONFIG_INT, rate_per_minute,
           GW_XSTR(GW_RATE_PER_MINUTE_DEFAULT), 1, 1000000,
           "requests a minute per client IP"),
    GW_OPT("CERROJO_GATEWAY_RATE_BURST", CJ_CONFIG_INT, rate_burst,
           GW_XSTR(GW_RATE_BURST_DEFAULT), 1, 1000000,
           "requests per client IP allowed at once"),
    GW_OPT("CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE", CJ_CONFIG_INT,
           handshake_rate_per_minute,
           GW_XSTR(GW_HANDSHAKE_RATE_PER_MINUTE_DEFAULT), 1, 1000000,
           "handshakes a minute per client IP"),
    GW_OPT("CERROJO_GATEWAY_HANDSHAKE_RATE_BURST", CJ_CONFIG_INT,
           handshake_rate_burst, GW_XSTR(GW_HANDSHAKE_RATE_BURST_DEFAULT), 1,
           1000000, "handshakes per client IP allowed at once"),
    GW_OPT("CERROJO_GATEWAY_SESSION_RATE_PER_MINUTE", CJ_CONFIG_INT,
           session_rate_per_minute, GW_XSTR(GW_SESSION_RATE_PER_MINUTE_DEFAULT),
           1, 1000000,
           "logins and registers that open a session, a minute per client IP"),
    GW_OPT("CERROJO_GATEWAY_SESSION_RATE_BURST", CJ_CONFIG_INT,
           session_rate_burst, GW_XSTR(GW_SESSION_RATE_BURST_DEFAULT), 1,
           1000000,
           "logins and registers that open a session, per client IP at once"),
    GW_OPT("CERROJO_GATEWAY_REGISTER_RATE_PER_MINUTE", CJ_CONFIG_INT,
           register_rate_per_minute,
           GW_XSTR(GW_REGISTER_RATE_PER_MINUTE_DEFAULT), 1, 1000000,
           "registrations (POST /v1/register) a minute per client IP"),
    GW_OPT("CERROJO_GATEWAY_REGISTER_RATE_BURST", CJ_CONFIG_INT,
           register_rate_burst, GW_XSTR(GW_REGISTER_RATE_BURST_DEFAULT), 1,
           1000000, "registrations per client IP allowed at once"),
    GW_OPT("CERROJO_GATEWAY_BENCH_ROUTE", CJ_CONFIG_BOOL, bench_route,
           "false", 0, 0,
           "true: serve GET /v1/bench/ping for make bench (dev only)"),
};
/* clang-format on */

#define GW_OPTION_COUNT (sizeof(gw_options) / sizeof(gw_options[0]))

static enum cj_status gw_copy(const char *name, const char *value, char *out,
                              size_t size, char *err, size_t err_size)
{
    if (value == NULL) {
        value = "";
    }
    if (strlen(value) >= size) {
        snprintf(err, err_size, "%s: longer than %zu bytes", name, size - 1);
        return CJ_ERR_INVALID;
    }
    strcpy(out, value);
    return CJ_OK;
}

static enum cj_status gw_convert_strings(const struct gw_raw_settings *raw,
                                         struct gw_settings *out, char *err,
                                         size_t err_size)
{
    const struct {
        const char *name;
        const char *value;
        char *dst;
        size_t size;
    } strings[] = {
        {"CERROJO_GATEWAY_HOST", raw->host, out->http_host,
         sizeof(out->http_host)},
        {"CERROJO_KMS_ADDR", raw->kms_addr, out->kms_addr,
         sizeof(out->kms_addr)},
        {"CERROJO_SESSION_ADDR", raw->session_addr, out->session_addr,
         sizeof(out->session_addr)},
        {"CERROJO_AUTH_ADDR", raw->auth_addr, out->auth_addr,
         sizeof(out->auth_addr)},
        {"CERROJO_REDIS_ADDR", raw->redis_addr, out->redis_addr,
         sizeof(out->redis_addr)},
        {"CERROJO_GATEWAY_OPENAPI_FILE", raw->openapi_file, out->openapi_file,
         sizeof(out->openapi_file)},
        {"CERROJO_TLS_CA", raw->tls_ca, out->tls_ca, sizeof(out->tls_ca)},
        {"CERROJO_GATEWAY_TLS_CERT", raw->tls_cert, out->tls_cert,
         sizeof(out->tls_cert)},
        {"CERROJO_GATEWAY_TLS_KEY", raw->tls_key, out->tls_key,
         sizeof(out->tls_key)},
        {"CERROJO_AUTH_ISSUER", raw->jwt_issuer, out->jwt_issuer,
         sizeof(out->jwt_issuer)},
        {"CERROJO_AUTH_AUDIENCE", raw->jwt_audience, out->jwt_audience,
         sizeof(out->jwt_audience)},
    };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (gw_copy(strings[i].name, strings[i].value, strings[i].dst,
                    strings[i].size, err, err_size) != CJ_OK) {
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

/* Writes an error and returns true when a trusted-proxy entry is shorter
 * than the bounds in gw_limits.h. Two halves such as 0.0.0.0/1 and
 * 128.0.0.0/1 trust every address as /0 does, which would let any client
 * set its own X-Forwarded-For and X-Request-Id and would lift the per-IP
 * rate and connection limits. */
static bool gw_trusted_proxies_too_wide(const struct gw_cidr_list *list,
                                        char *err, size_t err_size)
{
    const struct gw_cidr *net = gw_cidr_list_find_short(
        list, GW_TRUSTED_PROXY_V4_PREFIX_MIN, GW_TRUSTED_PROXY_V6_PREFIX_MIN);

    if (net == NULL) {
        return false;
    }
    if (net->family == AF_INET6) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES: '%s' is shorter than /%d, "
                 "the shortest IPv6 prefix allowed outside the unique-local "
                 "range fc00::/7; list only the proxies' addresses or "
                 "prefixes",
                 net->text, GW_TRUSTED_PROXY_V6_PREFIX_MIN);
    } else if (net->v4_mapped) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES: '%s' is the IPv4 prefix "
                 "/%u, shorter than /%d, the shortest IPv4 prefix allowed; "
                 "list only the proxies' addresses or prefixes",
                 net->text, net->prefix_bits, GW_TRUSTED_PROXY_V4_PREFIX_MIN);
    } else {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES: '%s' is shorter than /%d, "
                 "the shortest IPv4 prefix allowed; list only the proxies' "
                 "addresses or prefixes",
                 net->text, GW_TRUSTED_PROXY_V4_PREFIX_MIN);
    }
    return true;
}

static enum cj_status gw_convert_network(const struct gw_raw_settings *raw,
                                         struct gw_settings *out, char *err,
                                         size_t err_size)
{
    unsigned char probe[16];
    char reason[GW_CIDR_ERROR_SIZE];

    if (inet_pton(AF_INET, out->http_host, probe) != 1 &&
        inet_pton(AF_INET6, out->http_host, probe) != 1) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_HOST: expected an IPv4 or IPv6 address, "
                 "got '%s'",
                 out->http_host);
        return CJ_ERR_INVALID;
    }
    if (!gw_redis_addr_valid(out->redis_addr)) {
        snprintf(err, err_size,
                 "CERROJO_REDIS_ADDR: expected host:port with a port from 1 "
                 "to 65535, got '%s'",
                 out->redis_addr);
        return CJ_ERR_INVALID;
    }
    out->http_port = (uint16_t)raw->port;
    out->admin_port = (uint16_t)raw->admin_port;
    out->trusted_proxies_set = raw->trusted_proxies != NULL;
    if (gw_cidr_list_parse(raw->trusted_proxies, &out->trusted_proxies, reason,
                           sizeof(reason)) != CJ_OK) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES: %s. Expected a "
                 "comma-separated list of at most %d addresses or CIDR "
                 "prefixes",
                 reason, GW_TRUSTED_PROXIES_MAX);
        return CJ_ERR_INVALID;
    }
    if (gw_trusted_proxies_too_wide(&out->trusted_proxies, err, err_size)) {
        return CJ_ERR_INVALID;
    }
    if (gw_origin_list_parse(raw->cors_origins, &out->cors_origins) != CJ_OK) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_CORS_ORIGINS: expected a comma-separated "
                 "list of at most %d origins such as https://app.example, "
                 "in lower case, without a path, \"*\", \"null\" or the "
                 "default port (:443 for https, :80 for http)",
                 GW_CORS_ORIGINS_MAX);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static void gw_convert_numbers(const struct gw_raw_settings *raw,
                               struct gw_settings *out)
{
    /* The table's bounds keep every value inside unsigned. */
    out->grpc_plaintext = raw->grpc_plaintext;
    out->timestamp_window_seconds = (unsigned)raw->timestamp_window_seconds;
    out->clock_leeway_seconds = (unsigned)raw->clock_leeway_seconds;
    out->jwks_refresh_seconds = (unsigned)raw->jwks_refresh_seconds;
    out->rpc_deadline_ms = (unsigned)raw->rpc_deadline_ms;
    out->redis_clock_offset_max_ms = (unsigned)raw->redis_clock_offset_max_ms;
    out->rate_per_minute = (unsigned)raw->rate_per_minute;
    out->rate_burst = (unsigned)raw->rate_burst;
    out->handshake_rate_per_minute = (unsigned)raw->handshake_rate_per_minute;
    out->handshake_rate_burst = (unsigned)raw->handshake_rate_burst;
    out->session_rate_per_minute = (unsigned)raw->session_rate_per_minute;
    out->session_rate_burst = (unsigned)raw->session_rate_burst;
    out->register_rate_per_minute = (unsigned)raw->register_rate_per_minute;
    out->register_rate_burst = (unsigned)raw->register_rate_burst;
    out->bench_route = raw->bench_route;
}

/* The variables that name the gRPC backends. */
static const char *const gw_backend_vars[] = {
    "CERROJO_KMS_ADDR",
    "CERROJO_SESSION_ADDR",
    "CERROJO_AUTH_ADDR",
};
#define GW_BACKEND_VAR_COUNT                                                   \
    ((int)(sizeof(gw_backend_vars) / sizeof(gw_backend_vars[0])))

static const char *gw_backend_addr(const struct gw_settings *s, int index)
{
    const char *addrs[] = {s->kms_addr, s->session_addr, s->auth_addr};

    return addrs[index];
}

/* Checks the rules that span variables or depend on the profile. */
static enum cj_status gw_settings_check(const struct gw_settings *s, char *err,
                                        size_t err_size)
{
    if (s->profile != GW_PROFILE_DEV && s->grpc_plaintext) {
        snprintf(err, err_size,
                 "CERROJO_GRPC_PLAINTEXT: plaintext gRPC is allowed only in "
                 "the dev profile (profile is %s)",
                 gw_profile_name(s->profile));
        return CJ_ERR_INVALID;
    }
    if (!s->grpc_plaintext && (s->tls_ca[0] == '\0' || s->tls_cert[0] == '\0' ||
                               s->tls_key[0] == '\0')) {
        snprintf(err, err_size,
                 "CERROJO_TLS_CA, CERROJO_GATEWAY_TLS_CERT and "
                 "CERROJO_GATEWAY_TLS_KEY must all be set, or "
                 "CERROJO_GRPC_PLAINTEXT=true in the dev profile");
        return CJ_ERR_INVALID;
    }
    if (s->profile != GW_PROFILE_DEV && s->bench_route) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_BENCH_ROUTE: the benchmark route is allowed "
                 "only in the dev profile (profile is %s)",
                 gw_profile_name(s->profile));
        return CJ_ERR_INVALID;
    }
    if (s->http_port == s->admin_port) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_PORT and CERROJO_GATEWAY_ADMIN_PORT are both "
                 "%u; the API and the admin server need different ports",
                 (unsigned)s->http_port);
        return CJ_ERR_INVALID;
    }
    for (int b = 0; b < GW_BACKEND_VAR_COUNT; b++) {
        const char *addr = gw_backend_addr(s, b);

        if (!cj_rpc_targets_valid(addr)) {
            snprintf(err, err_size,
                     "%s: expected host:port or a comma-separated list of IP "
                     "addresses with ports, got '%s'",
                     gw_backend_vars[b], addr);
            return CJ_ERR_INVALID;
        }
    }
    /* Behind a load balancer every client would share the proxy's IP (one
     * rate-limit bucket) unless the proxies are named. */
    if (s->profile != GW_PROFILE_DEV && !s->trusted_proxies_set) {
        snprintf(err, err_size,
                 "CERROJO_GATEWAY_TRUSTED_PROXIES: must be set in the %s "
                 "profile (an empty value means no proxy)",
                 gw_profile_name(s->profile));
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

enum cj_status gw_settings_check_files(const struct gw_settings *s, char *err,
                                       size_t err_size)
{
    struct cj_tls_files files = {
        .ca_var = "CERROJO_TLS_CA",
        .ca = s->tls_ca,
        .cert_var = "CERROJO_GATEWAY_TLS_CERT",
        .cert = s->tls_cert,
        .key_var = "CERROJO_GATEWAY_TLS_KEY",
        .key = s->tls_key,
    };

    if (s->grpc_plaintext) {
        return CJ_OK;
    }
    return cj_tls_files_check(&files, err, err_size);
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

enum cj_status gw_settings_load(struct gw_settings *out, char *err,
                                size_t err_size)
{
    struct gw_raw_settings raw;
    enum cj_profile profile = CJ_PROFILE_DEV;
    enum cj_status status;

    memset(out, 0, sizeof(*out));
    memset(&raw, 0, sizeof(raw));
    status = cj_config_profile(&profile, err, err_size);
    if (status == CJ_OK) {
        status = cj_config_parse(gw_options, GW_OPTION_COUNT, profile, &raw,
                                 err, err_size);
    }
    if (status != CJ_OK) {
        goto out;
    }
    out->profile = profile == CJ_PROFILE_PROD    ? GW_PROFILE_PROD
                   : profile == CJ_PROFILE_STAGE ? GW_PROFILE_STAGE
                                                 : GW_PROFILE_DEV;
    status = CJ_ERR_INVALID;
    if (!cj_log_level_parse(raw.log_level, &out->log_level)) {
        snprintf(err, err_size,
                 "CERROJO_LOG_LEVEL: expected debug, info, warn or error, "
                 "got '%s'",
                 raw.log_level);
        goto out;
    }
    if (gw_convert_strings(&raw, out, err, err_size) != CJ_OK ||
        gw_convert_network(&raw, out, err, err_size) != CJ_OK) {
        goto out;
    }
    gw_convert_numbers(&raw, out);
    status = gw_settings_check(out, err, err_size);

out:
    cj_config_free(gw_options, GW_OPTION_COUNT, &raw);
    return status;
}

size_t gw_settings_warn_unknown(void)
{
    return cj_config_warn_unknown(GW_ENV_PREFIX, gw_options, GW_OPTION_COUNT);
}

void gw_settings_print_help(FILE *out)
{
    cj_config_print_help(gw_options, GW_OPTION_COUNT, out);
}

enum cj_status gw_settings_print(FILE *out, char *err, size_t err_size)
{
    struct gw_raw_settings raw;
    enum cj_profile profile = CJ_PROFILE_DEV;
    enum cj_status status;

    memset(&raw, 0, sizeof(raw));
    status = cj_config_profile(&profile, err, err_size);
    if (status == CJ_OK) {
        status = cj_config_parse(gw_options, GW_OPTION_COUNT, profile, &raw,
                                 err, err_size);
    }
    if (status == CJ_OK) {
        cj_config_dump(gw_options, GW_OPTION_COUNT, profile, &raw, out);
    }
    cj_config_free(gw_options, GW_OPTION_COUNT, &raw);
    return status;
}

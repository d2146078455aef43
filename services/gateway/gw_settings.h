/*
 * The gateway's settings, read from the environment at start. Each has a
 * default from gw_limits.h or the design's defaults table; stage and prod
 * refuse settings that are only safe on a laptop.
 */
#ifndef GW_SETTINGS_H
#define GW_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gw_headers.h"
#include "gw_net.h"
#include "log.h"
#include "status.h"

/* Maximum size of a backend's or Redis's host:port, with the NUL. */
#define GW_ADDRESS_SIZE 256
/* Maximum size of a file path setting, with the NUL. */
#define GW_PATH_SIZE 1024
/* Maximum size of the issuer or audience, with the NUL (the JWT
 * verifier's limit). */
#define GW_CLAIM_SIZE 256

#define GW_HTTP_PORT_DEFAULT    8080
#define GW_ADMIN_PORT_DEFAULT   9090
#define GW_KMS_ADDR_DEFAULT     "127.0.0.1:50052"
#define GW_SESSION_ADDR_DEFAULT "127.0.0.1:50053"
#define GW_AUTH_ADDR_DEFAULT    "127.0.0.1:50051"
#define GW_REDIS_ADDR_DEFAULT   "127.0.0.1:56379"
#define GW_OPENAPI_FILE_DEFAULT "docs/api/openapi.json"
/* The defaults auth issues tokens with. */
#define GW_JWT_ISSUER_DEFAULT   "https://cerrojo.local"
#define GW_JWT_AUDIENCE_DEFAULT "cerrojo"
/* Stateless timestamp window, each side, in seconds. */
#define GW_TIMESTAMP_WINDOW_SECONDS_DEFAULT 60
/* Clock leeway added to the anti-replay TTL, in seconds. */
#define GW_CLOCK_LEEWAY_SECONDS_DEFAULT 60
/* Offset of Redis's clock from ours above which the gateway is not
 * ready, in ms: replay TTLs and rate limits run on Redis's clock. */
#define GW_REDIS_CLOCK_OFFSET_MAX_MS 5000
/* JWKS refresh period, in seconds. */
#define GW_JWKS_REFRESH_SECONDS_DEFAULT 300
/* Per-IP rate limits: requests per minute, with a burst. */
#define GW_RATE_PER_MINUTE_DEFAULT           600
#define GW_RATE_BURST_DEFAULT                60
#define GW_HANDSHAKE_RATE_PER_MINUTE_DEFAULT 30
#define GW_HANDSHAKE_RATE_BURST_DEFAULT      10
/* Logins and registers that open a session: an office behind one NAT
 * address logs in many users at the start of a day, so this bucket is
 * larger than the anonymous handshake bucket. */
#define GW_SESSION_RATE_PER_MINUTE_DEFAULT 120
#define GW_SESSION_RATE_BURST_DEFAULT      30
/* Registrations: a 409 on a taken username or email reveals that the name
 * exists, so this bucket bounds how fast one address can probe names. */
#define GW_REGISTER_RATE_PER_MINUTE_DEFAULT 10
#define GW_REGISTER_RATE_BURST_DEFAULT      5

enum gw_profile { GW_PROFILE_DEV = 0, GW_PROFILE_STAGE, GW_PROFILE_PROD };

struct gw_settings {
    enum gw_profile profile;
    enum cj_log_level log_level;
    char http_host[GW_IP_CHARS];
    uint16_t http_port;
    uint16_t admin_port;
    struct gw_cidr_list trusted_proxies;
    struct gw_origin_list cors_origins;
    char kms_addr[GW_ADDRESS_SIZE];
    char session_addr[GW_ADDRESS_SIZE];
    char auth_addr[GW_ADDRESS_SIZE];
    char redis_addr[GW_ADDRESS_SIZE];
    char openapi_file[GW_PATH_SIZE];
    unsigned timestamp_window_seconds;
    unsigned clock_leeway_seconds;
    unsigned jwks_refresh_seconds;
    unsigned rpc_deadline_ms;
    unsigned redis_clock_offset_max_ms;
    unsigned rate_per_minute;
    unsigned rate_burst;
    unsigned handshake_rate_per_minute;
    unsigned handshake_rate_burst;
    unsigned session_rate_per_minute;
    unsigned session_rate_burst;
    unsigned register_rate_per_minute;
    unsigned register_rate_burst;
    /* True when CERROJO_GATEWAY_TRUSTED_PROXIES was set (even empty). */
    int trusted_proxies_set;
    /* gRPC to the backends: plaintext (dev only) or mutual TLS. */
    bool grpc_plaintext;
    char tls_ca[GW_PATH_SIZE];
    char tls_cert[GW_PATH_SIZE];
    char tls_key[GW_PATH_SIZE];
    /* What access tokens must carry in iss and aud; the same variables
     * configure auth, which issues them. */
    char jwt_issuer[GW_CLAIM_SIZE];
    char jwt_audience[GW_CLAIM_SIZE];
    /* GET /v1/bench/ping for `make bench`; dev profile only. */
    bool bench_route;
};

/*
 * Fills `out` from the environment (CERROJO_PROFILE, CERROJO_LOG_LEVEL,
 * CERROJO_GATEWAY_*, CERROJO_{KMS,SESSION,AUTH}_ADDR, CERROJO_REDIS_ADDR,
 * CERROJO_GRPC_PLAINTEXT, CERROJO_TLS_CA, CERROJO_AUTH_ISSUER,
 * CERROJO_AUTH_AUDIENCE and CERROJO_GATEWAY_BENCH_ROUTE).
 * Returns CJ_ERR_INVALID with the variable's name and the problem in err.
 */
CJ_WARN_UNUSED enum cj_status gw_settings_load(struct gw_settings *out,
                                               char *err, size_t err_size);

/* With TLS to the backends, reads and checks the CA, certificate and key
 * files (cj_tls_files_check). Does nothing for plaintext gRPC. */
CJ_WARN_UNUSED enum cj_status
gw_settings_check_files(const struct gw_settings *s, char *err,
                        size_t err_size);

const char *gw_profile_name(enum gw_profile profile);

/* Writes one line per variable: name, form, default and help. */
void gw_settings_print_help(FILE *out);

/*
 * Logs a warning for each CERROJO_GATEWAY_* variable in the environment
 * that the gateway does not read (cj_config_warn_unknown). Returns the
 * number of warnings.
 */
size_t gw_settings_warn_unknown(void);

/* Writes NAME=value for every variable as read now (for --print-config),
 * secrets redacted. Returns CJ_ERR_INVALID with err set when a value does
 * not parse. */
CJ_WARN_UNUSED enum cj_status gw_settings_print(FILE *out, char *err,
                                                size_t err_size);

#endif

/*
 * The option table of cerrojo-kms; defaults are the named constants. The
 * gRPC options (listen address, TLS files, plaintext) come from
 * rpc_service.h like every service's.
 */
#include "kms_config.h"

#include <stddef.h>
#include <stdio.h>

#include "db.h"
#include "jwk.h"

#define STR(x)  #x
#define XSTR(x) STR(x)

const struct cj_config_option kms_config_options[] = {
    CJ_RPC_CONFIG_OPTIONS(KMS_ENV_PREFIX, struct kms_config, grpc,
                          KMS_DEFAULT_LISTEN),
    {.name = "CERROJO_LOG_LEVEL",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct kms_config, log_level),
     .default_value = "info",
     .help = "minimum log level: debug, info, warn or error"},
    {.name = "CERROJO_KMS_DATABASE_URL",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct kms_config, database_url),
     .dev_default = "postgresql://cerrojo_kms@127.0.0.1:55432/cerrojo",
     .secret = true,
     .help = "libpq URI of the kms database role (cerrojo_kms)"},
    {.name = "CERROJO_KMS_DB_POOL_SIZE",
     .type = CJ_CONFIG_INT,
     .offset = offsetof(struct kms_config, db_pool_size),
     .default_value = XSTR(CJ_DB_DEFAULT_POOL_SIZE),
     .min = 1,
     .max = CJ_DB_MAX_POOL_SIZE,
     .help = "Postgres connections"},
    {.name = "CERROJO_KMS_ROOT_KEY_FILE",
     .type = CJ_CONFIG_PATH,
     .offset = offsetof(struct kms_config, root_key_file),
     .help = "file holding the root key: 32 random bytes in base64",
     .file_of = "CERROJO_KMS_ROOT_KEY"},
    {.name = "CERROJO_KMS_ROOT_KEY",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct kms_config, root_key),
     .secret = true,
     .help = "the root key itself (32 bytes in base64), when no file is "
             "used"},
    {.name = "CERROJO_KMS_VAR_DIR",
     .type = CJ_CONFIG_PATH,
     .offset = offsetof(struct kms_config, var_dir),
     .default_value = "var",
     .help = "folder of the generated development root key (dev only)"},
    {.name = "CERROJO_KMS_SIGNING_ALG",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct kms_config, signing_alg),
     .default_value = KMS_DEFAULT_SIGNING_ALG,
     .help = "algorithm of new JWT signing keys: RS256, ES256 or EdDSA"},
    {.name = "CERROJO_KMS_PROMOTE_AFTER",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, promote_after_s),
     .default_value = XSTR(KMS_DEFAULT_PROMOTE_AFTER_S),
     .min = 0,
     .max = 365 * 86400,
     .help = "how long a next signing key is published before promote "
             "accepts it"},
    {.name = KMS_HPKE_ACCEPT_VAR,
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, hpke_accept_s),
     .default_value = XSTR(KMS_DEFAULT_HPKE_ACCEPT_S),
     .min = 0,
     .max = 7 * 86400,
     .help = "how long a retired HPKE key still opens requests; raised to "
             "CERROJO_KMS_KEY_LIST_LIFETIME + 2 x CERROJO_KMS_RELOAD_INTERVAL "
             "+ CERROJO_CLOCK_MAX_OFFSET when shorter (logged at start as "
             "kms.hpke_accept_raised), so that every valid key list names "
             "keys that open requests"},
    {.name = "CERROJO_KMS_HPKE_DESTROY_AFTER",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, hpke_destroy_s),
     .default_value = XSTR(KMS_DEFAULT_HPKE_DESTROY_S),
     .min = 0,
     .max = 30 * 86400,
     .help = "how long after its retirement an HPKE key may be destroyed"},
    {.name = "CERROJO_KMS_TOKEN_LIFETIME_MAX",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, token_lifetime_max_s),
     .default_value = XSTR(KMS_DEFAULT_TOKEN_LIFETIME_MAX_S),
     .min = 60,
     .max = 30 * 86400,
     .help = "maximum exp - iat that SignToken accepts"},
    {.name = "CERROJO_KMS_JWT_LEEWAY",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, leeway_s),
     .default_value = XSTR(KMS_DEFAULT_LEEWAY_S),
     .min = 0,
     .max = 3600,
     .help = "verifiers' clock leeway; retired keys stay published this "
             "long past their last token"},
    {.name = "CERROJO_KMS_JWKS_MAX_AGE",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, jwks_max_age_s),
     .default_value = XSTR(KMS_DEFAULT_JWKS_MAX_AGE_S),
     .min = 1,
     .max = 86400,
     .help = "seconds a caller may cache the JWKS (max_age_seconds)"},
    {.name = "CERROJO_KMS_RELOAD_INTERVAL",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, reload_s),
     .default_value = XSTR(KMS_DEFAULT_RELOAD_S),
     .min = 1,
     .max = 3600,
     .help = "how often a running kms rereads the key set from Postgres"},
    {.name = "CERROJO_KMS_SETTLE",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, settle_s),
     .default_value = XSTR(KMS_DEFAULT_SETTLE_S),
     .min = 0,
     .max = 30 * 86400,
     .help = "minimum time a retired signing key or KEK is kept, so every "
             "replica has reloaded before destroy-expired removes it"},
    {.name = "CERROJO_KMS_KEY_LIST_LIFETIME",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, key_list_lifetime_s),
     .default_value = XSTR(KMS_DEFAULT_KEY_LIST_LIFETIME_S),
     .min = 60,
     .max = 7 * 86400,
     .help = "validity (exp - iat) of the signed HPKE key list"},
    {.name = "CERROJO_KMS_METRICS_PORT",
     .type = CJ_CONFIG_INT,
     .offset = offsetof(struct kms_config, metrics_port),
     .default_value = XSTR(KMS_DEFAULT_METRICS_PORT),
     .min = 0,
     .max = 65535,
     .help = "port of the Prometheus metrics on 127.0.0.1 (0: a free one)"},
    {.name = "CERROJO_CLOCK_MAX_OFFSET",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct kms_config, clock_max_offset_s),
     .default_value = XSTR(KMS_DEFAULT_CLOCK_MAX_OFFSET_S),
     .min = 1,
     .max = 3600,
     .help = "largest offset between this clock and Postgres's at which the "
             "service still reports SERVING, in seconds"},
};

const size_t kms_config_option_count =
    sizeof(kms_config_options) / sizeof(kms_config_options[0]);

enum cj_status kms_config_check(const struct kms_config *cfg, char *err,
                                size_t err_size)
{
    enum cj_jwk_alg alg;

    if (!cj_jwk_alg_parse(cfg->signing_alg, &alg)) {
        snprintf(err, err_size,
                 "CERROJO_KMS_SIGNING_ALG: expected RS256, ES256 or EdDSA, "
                 "got '%s'",
                 cfg->signing_alg);
        return CJ_ERR_INVALID;
    }
    return cj_rpc_settings_check_metrics(&cfg->grpc, cfg->metrics_port,
                                         KMS_ENV_PREFIX, err, err_size);
}

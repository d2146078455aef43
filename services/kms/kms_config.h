/* Configuration of cerrojo-kms: the option table and the parsed values. */
#ifndef KMS_CONFIG_H
#define KMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rpc_service.h"

/* Defaults, in seconds unless named otherwise. */
#define KMS_DEFAULT_SIGNING_ALG          "RS256"
#define KMS_DEFAULT_PROMOTE_AFTER_S      600 /* twice the gateway's JWKS refresh */
#define KMS_DEFAULT_HPKE_ACCEPT_S        600 /* a retired HPKE key still opens */
#define KMS_DEFAULT_HPKE_DESTROY_S       3600 /* then its private key goes */
#define KMS_DEFAULT_TOKEN_LIFETIME_MAX_S 86400
#define KMS_DEFAULT_LEEWAY_S             60
#define KMS_DEFAULT_JWKS_MAX_AGE_S       300
#define KMS_DEFAULT_RELOAD_S             30
#define KMS_DEFAULT_SETTLE_S             600
#define KMS_DEFAULT_KEY_LIST_LIFETIME_S  3600
#define KMS_DEFAULT_METRICS_PORT         9092
#define KMS_DEFAULT_CLOCK_MAX_OFFSET_S   5

#define KMS_ENV_PREFIX     "CERROJO_KMS"
#define KMS_DEFAULT_LISTEN "127.0.0.1:50052"

/* Read by kms_service_init as well, to tell a configured value from the
 * default. */
#define KMS_HPKE_ACCEPT_VAR "CERROJO_KMS_HPKE_ACCEPT_RETIRED"

struct kms_config {
    struct cj_rpc_settings grpc;
    char *log_level;
    char *database_url;
    long long db_pool_size;
    char *root_key_file;
    char *root_key;
    char *var_dir;
    char *signing_alg;
    long long promote_after_s;
    long long hpke_accept_s;
    long long hpke_destroy_s;
    long long token_lifetime_max_s;
    long long leeway_s;
    long long jwks_max_age_s;
    long long reload_s;
    long long settle_s;
    long long key_list_lifetime_s;
    long long metrics_port;
    long long clock_max_offset_s;
};

extern const struct cj_config_option kms_config_options[];
extern const size_t kms_config_option_count;

/*
 * Runs the settings checks that need no file, database or key: the
 * signing algorithm and the metrics settings. The start, every command and
 * --print-config call it after cj_config_load. On error err names the
 * variable.
 */
CJ_WARN_UNUSED enum cj_status kms_config_check(const struct kms_config *cfg,
                                               char *err, size_t err_size);

#endif

/* The option table of cerrojo-auth; defaults are the named constants. */
#include "auth_config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth_refresh.h"
#include "auth_throttle.h"
#include "db.h"
#include "password.h"
#include "password_policy.h"
#include "redis.h"

#define STR(x)  #x
#define XSTR(x) STR(x)

#define OFF(field) offsetof(struct auth_config, field)

#define MS_PER_SECOND 1000LL

const struct cj_config_option auth_config_options[] = {
    CJ_RPC_CONFIG_OPTIONS(AUTH_ENV_PREFIX, struct auth_config, grpc,
                          AUTH_DEFAULT_LISTEN),
    {.name = "CERROJO_AUTH_TLS_SERVER_NAME",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(tls_server_name),
     .help = "name checked on kms and session certificates (default: the "
             "target host)"},
    {.name = "CERROJO_AUTH_METRICS_PORT",
     .type = CJ_CONFIG_INT,
     .offset = OFF(metrics_port),
     .default_value = XSTR(AUTH_DEFAULT_METRICS_PORT),
     .min = 0,
     .max = 65535,
     .help = "Prometheus metrics port on 127.0.0.1 (0 picks a free one)"},
    {.name = "CERROJO_AUTH_DATABASE_URL",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(database_url),
     .dev_default = "postgresql://cerrojo_auth@127.0.0.1:55432/cerrojo",
     .secret = true,
     .help = "libpq URI of the auth database role (cerrojo_auth)"},
    {.name = "CERROJO_AUTH_DB_POOL_SIZE",
     .type = CJ_CONFIG_INT,
     .offset = OFF(db_pool_size),
     .default_value = XSTR(CJ_DB_DEFAULT_POOL_SIZE),
     .min = 1,
     .max = CJ_DB_MAX_POOL_SIZE,
     .help = "Postgres connections"},
    {.name = "CERROJO_AUTH_DB_ACQUIRE_TIMEOUT_MS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(db_acquire_timeout_ms),
     .default_value = XSTR(CJ_DB_DEFAULT_ACQUIRE_TIMEOUT_MS),
     .min = 1,
     .max = 60000,
     .help = "maximum wait for a free Postgres connection, in ms"},
    {.name = "CERROJO_AUTH_REDIS_HOST",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(redis_host),
     .default_value = "127.0.0.1",
     .help = "Redis host for login throttling"},
    {.name = "CERROJO_AUTH_REDIS_PORT",
     .type = CJ_CONFIG_INT,
     .offset = OFF(redis_port),
     .default_value = "56379",
     .min = 1,
     .max = 65535,
     .help = "Redis port"},
    {.name = "CERROJO_AUTH_REDIS_PASSWORD",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(redis_password),
     .secret = true,
     .help = "Redis AUTH password (none when unset)"},
    {.name = "CERROJO_AUTH_REDIS_POOL_SIZE",
     .type = CJ_CONFIG_INT,
     .offset = OFF(redis_pool_size),
     .default_value = XSTR(CJ_REDIS_DEFAULT_POOL_SIZE),
     .min = 1,
     .max = CJ_REDIS_MAX_POOL_SIZE,
     .help = "Redis connections"},
    {.name = "CERROJO_AUTH_REDIS_COMMAND_TIMEOUT_MS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(redis_command_timeout_ms),
     .default_value = XSTR(CJ_REDIS_DEFAULT_COMMAND_TIMEOUT_MS),
     .min = 1,
     .max = 60000,
     .help = "maximum wait for the reply to one Redis command, in ms"},
    {.name = "CERROJO_AUTH_KMS_TARGET",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(kms_target),
     .default_value = AUTH_DEFAULT_KMS_TARGET,
     .help = "kms gRPC address(es), comma-separated"},
    {.name = "CERROJO_AUTH_SESSION_TARGET",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(session_target),
     .default_value = AUTH_DEFAULT_SESSION_TARGET,
     .help = "session gRPC address(es), comma-separated"},
    {.name = "CERROJO_AUTH_RPC_TIMEOUT_MS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(rpc_timeout_ms),
     .default_value = XSTR(AUTH_DEFAULT_RPC_TIMEOUT_MS),
     .min = 100,
     .max = 60000,
     .help = "deadline of one call to kms or session, milliseconds"},
    {.name = "CERROJO_AUTH_ISSUER",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(issuer),
     .default_value = AUTH_DEFAULT_ISSUER,
     .help = "iss claim of access tokens"},
    {.name = "CERROJO_AUTH_AUDIENCE",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(audience),
     .default_value = AUTH_DEFAULT_AUDIENCE,
     .help = "aud claim of access tokens"},
    {.name = "CERROJO_AUTH_ACCESS_TOKEN_LIFETIME",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(access_ttl_s),
     .default_value = XSTR(AUTH_DEFAULT_ACCESS_TTL_S),
     .min = 60,
     .max = 86400,
     .help = "access-token lifetime (seconds, or 15m)"},
    {.name = "CERROJO_AUTH_JWT_LEEWAY",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(jwt_leeway_s),
     .default_value = XSTR(AUTH_DEFAULT_JWT_LEEWAY_S),
     .min = 0,
     .max = 3600,
     .help = "clock leeway for token time claims in Introspect"},
    {.name = "CERROJO_AUTH_REFRESH_TOKEN_LIFETIME",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(refresh_ttl_s),
     .default_value = "30d",
     .min = 60,
     .max = 365 * 86400,
     .help = "lifetime of one refresh token"},
    {.name = "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(family_ttl_s),
     .default_value = "90d",
     .min = 60,
     .max = 3 * 365 * 86400,
     .help = "absolute lifetime of a refresh family from its login"},
    {.name = "CERROJO_AUTH_REFRESH_GRACE_SECONDS",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(refresh_grace_s),
     .default_value = XSTR(AUTH_REFRESH_GRACE_S_DEFAULT),
     .min = 0,
     .max = 300,
     .help = "window in which the token just used may be retried (0: off)"},
    {.name = "CERROJO_AUTH_ARGON2_MEMORY",
     .type = CJ_CONFIG_BYTES,
     .offset = OFF(argon2_memory_bytes),
     .default_value = "19MiB",
     .min = CJ_PASSWORD_MEMLIMIT_MIN_BYTES,
     .max = CJ_PASSWORD_MEMLIMIT_MAX_BYTES,
     .help = "Argon2id memory per hash"},
    {.name = "CERROJO_AUTH_ARGON2_PASSES",
     .type = CJ_CONFIG_INT,
     .offset = OFF(argon2_passes),
     .default_value = XSTR(CJ_PASSWORD_OPSLIMIT_DEFAULT),
     .min = CJ_PASSWORD_OPSLIMIT_MIN,
     .max = CJ_PASSWORD_OPSLIMIT_MAX,
     .help = "Argon2id passes"},
    {.name = "CERROJO_AUTH_ARGON2_CONCURRENCY",
     .type = CJ_CONFIG_INT,
     .offset = OFF(argon2_concurrency),
     .default_value = "0",
     .min = 0,
     .max = AUTH_ARGON2_CONCURRENCY_MAX,
     .help = "Argon2 operations run at once (0: the number of online CPUs)"},
    {.name = "CERROJO_AUTH_PASSWORD_MIN_CHARS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(password_min_chars),
     .default_value = XSTR(CJ_PASSWORD_MIN_CODE_POINTS_DEFAULT),
     .min = 1,
     .max = 128,
     .help = "shortest accepted password, in Unicode code points"},
    {.name = "CERROJO_AUTH_CRACKLIB_DICT",
     .type = CJ_CONFIG_PATH,
     .offset = OFF(cracklib_dict),
     .default_value = CJ_PASSWORD_DICT_DEFAULT_PATH,
     .help = "cracklib dictionary prefix"},
    {.name = "CERROJO_AUTH_LOGIN_FREE_ATTEMPTS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(login_free_attempts),
     .default_value = XSTR(AUTH_LOGIN_FREE_ATTEMPTS_DEFAULT),
     .min = 1,
     .max = 1000,
     .help = "login attempts in a row per login name and client address "
             "before any delay"},
    {.name = "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(login_account_free_attempts),
     .default_value = XSTR(AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS_DEFAULT),
     .min = 1,
     .max = 100000,
     .help = "login attempts in a row per login name, from all addresses, "
             "before any delay"},
    {.name = "CERROJO_AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(login_address_free_attempts),
     .default_value = XSTR(AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS_DEFAULT),
     .min = 1,
     .max = 100000,
     .help = "failed logins in a row per client address (IPv6: per /64), "
             "across all login names, before any delay"},
    {.name = "CERROJO_AUTH_LOGIN_BASE_DELAY_MS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(login_base_delay_ms),
     .default_value = XSTR(AUTH_LOGIN_BASE_DELAY_MS_DEFAULT),
     .min = 1,
     .max = 3600000,
     .help = "first delay after the free attempts; doubles after each"},
    {.name = "CERROJO_AUTH_LOGIN_MAX_DELAY_MS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(login_max_delay_ms),
     .default_value = "900000",
     .min = 1,
     .max = 86400000,
     .help = "maximum delay between login attempts of one account, ms"},
    {.name = "CERROJO_AUTH_LOGIN_STREAK_TTL",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(login_streak_ttl_s),
     .default_value = "1h",
     .min = 1,
     .max = 30 * 86400,
     .help = "idle time after which an account's failed streak is reset"},
    {.name = "CERROJO_AUTH_LOGIN_KNOWN_ADDRESS_TTL",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(login_known_address_ttl_s),
     .default_value = "30d",
     .min = 0,
     .max = 365 * 86400,
     .help = "how long an address stays exempt from the per-account "
             "streak after a successful login from it; 0 turns it off"},
    {.name = "CERROJO_AUTH_AUDIT_RETENTION_DAYS",
     .type = CJ_CONFIG_INT,
     .offset = OFF(audit_retention_days),
     .default_value = XSTR(AUTH_DEFAULT_AUDIT_RETENTION_DAYS),
     .min = AUTH_DEFAULT_AUDIT_RETENTION_DAYS,
     .max = 36500,
     .help = "days audit events are kept (at least 400)"},
    {.name = "CERROJO_AUTH_CACHE_WATCH_INTERVAL",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(cache_watch_s),
     .default_value = XSTR(AUTH_DEFAULT_CACHE_WATCH_S),
     .min = 1,
     .max = 3600,
     .help = "how often auth checks that session's revocation cache is "
             "loaded"},
    {.name = "CERROJO_AUTH_CACHE_RELOAD_INTERVAL",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(cache_reload_s),
     .default_value = XSTR(AUTH_DEFAULT_CACHE_RELOAD_S),
     .min = 1,
     .max = 86400,
     .help = "how often auth sends every unexpired revocation to session "
             "again, which repairs writes that Redis lost"},
    {.name = "CERROJO_AUTH_CLOCK_MAX_OFFSET",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(clock_max_offset_s),
     .default_value = XSTR(AUTH_DEFAULT_CLOCK_MAX_OFFSET_S),
     .min = 1,
     .max = 3600,
     .help = "largest offset between this clock and Postgres's at which "
             "auth still reports SERVING"},
    {.name = "CERROJO_AUTH_CLEANUP_INTERVAL",
     .type = CJ_CONFIG_DURATION,
     .offset = OFF(cleanup_interval_s),
     .default_value = XSTR(AUTH_DEFAULT_CLEANUP_INTERVAL_S),
     .min = 0,
     .max = 7 * 86400,
     .help = "how often the service runs the cleanup job (0: never)"},
    {.name = "CERROJO_LOG_LEVEL",
     .type = CJ_CONFIG_STRING,
     .offset = OFF(log_level),
     .default_value = "info",
     .help = "debug, info, warn or error"},
};

const size_t auth_config_option_count =
    sizeof(auth_config_options) / sizeof(auth_config_options[0]);

/* Returns true for NULL, "" or a string of only ASCII whitespace. */
static bool is_blank(const char *text)
{
    if (text == NULL) {
        return true;
    }
    for (; *text != '\0'; text++) {
        if (!isspace((unsigned char)*text)) {
            return false;
        }
    }
    return true;
}

/* Rejects an empty or whitespace-only issuer or audience, which every
 * access token would carry as its iss or aud claim. */
static enum cj_status check_claims(const struct auth_config *cfg, char *err,
                                   size_t err_size)
{
    if (is_blank(cfg->issuer)) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_ISSUER: must not be empty or only whitespace; "
                 "it is the iss claim of every access token");
        return CJ_ERR_INVALID;
    }
    if (is_blank(cfg->audience)) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_AUDIENCE: must not be empty or only "
                 "whitespace; it is the aud claim of every access token");
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/*
 * Rejects pairs where one setting would override the other. The login
 * delay is capped by the maximum, and a refresh token never outlives its
 * family. An access token longer than the family would outlive the family
 * of its login. The cache reload runs only in a watch round.
 */
static enum cj_status check_pairs(const struct auth_config *cfg, char *err,
                                  size_t err_size)
{
    if (cfg->login_base_delay_ms > cfg->login_max_delay_ms) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_LOGIN_BASE_DELAY_MS (%lld) is above "
                 "CERROJO_AUTH_LOGIN_MAX_DELAY_MS (%lld); the first delay "
                 "must not exceed the maximum",
                 cfg->login_base_delay_ms, cfg->login_max_delay_ms);
        return CJ_ERR_INVALID;
    }
    if (cfg->refresh_ttl_s > cfg->family_ttl_s) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_REFRESH_TOKEN_LIFETIME (%lld s) is above "
                 "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME (%lld s); a refresh "
                 "token expires with its family at the latest",
                 cfg->refresh_ttl_s, cfg->family_ttl_s);
        return CJ_ERR_INVALID;
    }
    if (cfg->access_ttl_s > cfg->family_ttl_s) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_ACCESS_TOKEN_LIFETIME (%lld s) is above "
                 "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME (%lld s); the access "
                 "token of every login would outlive its refresh family",
                 cfg->access_ttl_s, cfg->family_ttl_s);
        return CJ_ERR_INVALID;
    }
    if (cfg->cache_reload_s < cfg->cache_watch_s) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_CACHE_RELOAD_INTERVAL (%lld s) is below "
                 "CERROJO_AUTH_CACHE_WATCH_INTERVAL (%lld s); the reload "
                 "runs only in a watch round, so it cannot be more frequent",
                 cfg->cache_reload_s, cfg->cache_watch_s);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/*
 * Rejects login throttle settings that would cancel each other. A streak's
 * Redis key expires when its wait ends if that wait is as long as the
 * streak TTL or longer, so the next attempt starts a new streak with free
 * attempts. Without known-address markers, every attempt of a name and
 * address also counts in the name's streak, so that streak always waits
 * first when it has fewer free attempts. With markers on, a known address
 * skips the name's wait, so more free attempts per name and address is a
 * valid setting.
 */
static enum cj_status check_login_pairs(const struct auth_config *cfg,
                                        char *err, size_t err_size)
{
    if (cfg->login_streak_ttl_s * MS_PER_SECOND <= cfg->login_max_delay_ms) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_LOGIN_STREAK_TTL (%lld s) is not above "
                 "CERROJO_AUTH_LOGIN_MAX_DELAY_MS (%lld); a failed streak "
                 "would be forgotten when its longest wait ends",
                 cfg->login_streak_ttl_s, cfg->login_max_delay_ms);
        return CJ_ERR_INVALID;
    }
    if (cfg->login_known_address_ttl_s == 0 &&
        cfg->login_free_attempts > cfg->login_account_free_attempts) {
        snprintf(err, err_size,
                 "CERROJO_AUTH_LOGIN_FREE_ATTEMPTS (%lld) is above "
                 "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS (%lld) while "
                 "CERROJO_AUTH_LOGIN_KNOWN_ADDRESS_TTL is 0; the login "
                 "name's streak counts every attempt and waits first",
                 cfg->login_free_attempts, cfg->login_account_free_attempts);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static enum cj_status check_dictionary(const struct auth_config *cfg, char *err,
                                       size_t err_size)
{
    struct cj_password_policy policy;

    cj_password_policy_default(&policy);
    policy.min_code_points = (size_t)cfg->password_min_chars;
    policy.dict_path = cfg->cracklib_dict;
    if (cj_password_policy_check_config(&policy) == CJ_OK) {
        return CJ_OK;
    }
    snprintf(err, err_size,
             "CERROJO_AUTH_CRACKLIB_DICT: cannot read the cracklib "
             "dictionary %s (expected the files %s.pwd, %s.pwi and %s.hwm); "
             "install cracklib-runtime or point the variable at a "
             "dictionary",
             cfg->cracklib_dict, cfg->cracklib_dict, cfg->cracklib_dict,
             cfg->cracklib_dict);
    return CJ_ERR_INVALID;
}

enum cj_status auth_config_check(const struct auth_config *cfg, char *err,
                                 size_t err_size)
{
    enum cj_status status = cj_rpc_settings_check_metrics(
        &cfg->grpc, cfg->metrics_port, AUTH_ENV_PREFIX, err, err_size);

    if (status == CJ_OK) {
        status = check_claims(cfg, err, err_size);
    }
    if (status == CJ_OK) {
        status = check_pairs(cfg, err, err_size);
    }
    if (status == CJ_OK) {
        status = check_login_pairs(cfg, err, err_size);
    }
    if (status == CJ_OK) {
        status = check_dictionary(cfg, err, err_size);
    }
    return status;
}

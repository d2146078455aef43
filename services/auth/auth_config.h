/* Configuration of cerrojo-auth: the option table and the parsed struct. */
#ifndef AUTH_CONFIG_H
#define AUTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rpc_service.h"

#define AUTH_DEFAULT_LISTEN         "127.0.0.1:50051"
#define AUTH_DEFAULT_METRICS_PORT   9091
#define AUTH_DEFAULT_KMS_TARGET     "127.0.0.1:50052"
#define AUTH_DEFAULT_SESSION_TARGET "127.0.0.1:50053"
#define AUTH_DEFAULT_ISSUER         "https://cerrojo.local"
#define AUTH_DEFAULT_AUDIENCE       "cerrojo"
/* Access-token lifetime, seconds (15 minutes). */
#define AUTH_DEFAULT_ACCESS_TTL_S 900
/* Clock leeway for token time claims, seconds. */
#define AUTH_DEFAULT_JWT_LEEWAY_S 60
/* Audit rows are kept this long; the table's trigger keeps at least it. */
#define AUTH_DEFAULT_AUDIT_RETENTION_DAYS 400
/* Interval of the revocation-cache status check, seconds. */
#define AUTH_DEFAULT_CACHE_WATCH_S 2
/* Interval of the full reload of session's revocation cache, seconds. */
#define AUTH_DEFAULT_CACHE_RELOAD_S 600
/* Largest clock offset from Postgres before auth turns not ready, s. */
#define AUTH_DEFAULT_CLOCK_MAX_OFFSET_S 5
/* How often the cleanup job runs inside the service, seconds. */
#define AUTH_DEFAULT_CLEANUP_INTERVAL_S 3600
/*
 * Time a refresh, a registration or a data write must have left before its
 * deadline to commit, in milliseconds: enough to build and send the reply.
 * With less, the transaction is rolled back, so that the error the caller
 * received (the gateway's 503) stays true and its retry starts afresh.
 */
#define AUTH_COMMIT_MARGIN_MS 100
/* Deadline of one call to kms or session, milliseconds. */
#define AUTH_DEFAULT_RPC_TIMEOUT_MS 3000
#define AUTH_ENV_PREFIX             "CERROJO_AUTH"
/* Upper bound of CERROJO_AUTH_ARGON2_CONCURRENCY, in Argon2 operations. */
#define AUTH_ARGON2_CONCURRENCY_MAX 32
/* gRPC workers kept out of password work (gate slots and waiters). */
#define AUTH_RESERVED_WORKERS 4
/*
 * Waiters per Argon2 slot that the worker count makes room for. A burst of
 * this many logins per slot queues instead of being rejected, and a waiter
 * at the end of the line waits about this many Argon2 times.
 */
#define AUTH_WAITERS_PER_SLOT 16

struct auth_config {
    struct cj_rpc_settings grpc; /* listen, TLS, workers; shared options */
    long long metrics_port;
    char *database_url;
    long long db_pool_size;
    long long db_acquire_timeout_ms;
    char *redis_host;
    long long redis_port;
    char *redis_password;
    long long redis_pool_size;
    long long redis_command_timeout_ms;
    char *kms_target;
    char *session_target;
    char *tls_server_name;
    long long rpc_timeout_ms;
    char *issuer;
    char *audience;
    long long access_ttl_s;
    long long jwt_leeway_s;
    long long refresh_ttl_s;
    long long family_ttl_s;
    long long refresh_grace_s;
    long long argon2_memory_bytes;
    long long argon2_passes;
    long long argon2_concurrency; /* Argon2 operations at once; 0: CPUs */
    long long password_min_chars;
    char *cracklib_dict;
    long long login_free_attempts;
    long long login_account_free_attempts;
    long long login_address_free_attempts;
    long long login_base_delay_ms;
    long long login_max_delay_ms;
    long long login_streak_ttl_s;
    long long login_known_address_ttl_s;
    long long audit_retention_days;
    long long cache_watch_s;
    long long cache_reload_s;
    long long clock_max_offset_s;
    long long cleanup_interval_s;
    char *log_level;
};

extern const struct cj_config_option auth_config_options[];
extern const size_t auth_config_option_count;

/*
 * Runs the settings checks that need no database, Redis or peer: the
 * metrics settings, the cracklib dictionary, a non-empty issuer and
 * audience, and the pairs of settings that contradict each other. The
 * start, every command and --print-config call it after cj_config_load.
 * On error err names the variables involved.
 */
CJ_WARN_UNUSED enum cj_status auth_config_check(const struct auth_config *cfg,
                                                char *err, size_t err_size);

#endif

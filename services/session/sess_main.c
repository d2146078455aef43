/*
 * cerrojo-session: sessions and the revocation cache in Redis.
 * This file reads the arguments and configuration, loads the wrapping key,
 * and runs the gRPC server and the worker until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_help.h"
#include "config.h"
#include "crypto_util.h"
#include "log.h"
#include "metrics.h"
#include "proc_threads.h"
#include "redis.h"
#include "rpc_service.h"
#include "sess_keys.h"
#include "sess_rpc.h"
#include "sess_service.h"
#include "sess_worker.h"

#define SESS_ENV_PREFIX      "CERROJO_SESSION"
#define SESS_DEFAULT_LISTEN  "127.0.0.1:50053"
#define SESS_METRICS_ADDRESS "127.0.0.1"
/* Folder and file of the wrapping key the dev profile generates. */
#define SESS_DEV_KEY_DIR  "var"
#define SESS_DEV_KEY_FILE "var/session.key"
/* Maximum size of a wrapping-key file read, in bytes (a base64 key is
 * 44). */
#define SESS_KEY_FILE_MAX 256
/* Exit statuses: 0 stopped by a signal, 1 the start failed, 2 usage or
 * settings. */
#define SESS_EXIT_FAILED 1
#define SESS_EXIT_USAGE  2
/* Maximum value of CERROJO_SESSION_MAX_PER_USER. A bind past the limit reads
 * every session its user's index lists in one Lua script, which blocks Redis
 * for its duration, so the limit stays small enough to keep that short. */
#define SESS_MAX_PER_USER_MAX 10000

struct sess_config {
    struct cj_rpc_settings grpc;
    char *log_level;
    char *redis_host;
    long long redis_port;
    char *redis_password;
    long long redis_pool_size;
    long long redis_command_timeout_ms;
    char *key;
    char *key_file;
    char *key_previous;
    char *key_previous_file;
    long long epoch_seconds;
    long long grace_seconds;
    long long leeway_seconds;
    long long idle_seconds;
    long long bound_idle_seconds;
    long long absolute_seconds;
    long long token_lifetime_seconds;
    long long clock_max_offset_seconds;
    long long max_per_user;
    long long metrics_port;
};

#define SESS_STR(x)  #x
#define SESS_XSTR(x) SESS_STR(x)

#define SESS_OPTION(var, kind, field, def, lo, hi, text)                       \
    {                                                                          \
        .name = (var), .type = (kind),                                         \
        .offset = offsetof(struct sess_config, field), .default_value = (def), \
        .min = (lo), .max = (hi), .help = (text)                               \
    }

#define SESS_SECRET(var, field, text)                                          \
    {                                                                          \
        .name = (var), .type = CJ_CONFIG_STRING,                               \
        .offset = offsetof(struct sess_config, field), .secret = true,         \
        .help = (text)                                                         \
    }

/* A file containing the key that the variable `value` would contain. */
#define SESS_KEY_FILE(var, field, value)                                       \
    {                                                                          \
        .name = (var), .type = CJ_CONFIG_PATH,                                 \
        .offset = offsetof(struct sess_config, field),                         \
        .help = "file containing " value " instead", .file_of = (value)        \
    }

static const struct cj_config_option sess_options[] = {
    CJ_RPC_CONFIG_OPTIONS(SESS_ENV_PREFIX, struct sess_config, grpc,
                          SESS_DEFAULT_LISTEN),
    SESS_OPTION("CERROJO_LOG_LEVEL", CJ_CONFIG_STRING, log_level, "info", 0, 0,
                "minimum log level: debug, info, warn or error"),
    SESS_OPTION("CERROJO_REDIS_HOST", CJ_CONFIG_STRING, redis_host, "127.0.0.1",
                0, 0, "Redis host (the primary)"),
    SESS_OPTION("CERROJO_REDIS_PORT", CJ_CONFIG_INT, redis_port, "56379", 1,
                65535, "Redis TCP port"),
    SESS_SECRET("CERROJO_REDIS_PASSWORD", redis_password,
                "Redis password (AUTH); unset for none"),
    SESS_OPTION("CERROJO_SESSION_REDIS_POOL", CJ_CONFIG_INT, redis_pool_size,
                "8", 1, CJ_REDIS_MAX_POOL_SIZE, "Redis connections"),
    SESS_OPTION("CERROJO_SESSION_REDIS_COMMAND_TIMEOUT_MS", CJ_CONFIG_INT,
                redis_command_timeout_ms,
                SESS_XSTR(CJ_REDIS_DEFAULT_COMMAND_TIMEOUT_MS), 1, 60000,
                "maximum wait for the reply to one Redis command, in ms"),
    SESS_SECRET("CERROJO_SESSION_KEY", key,
                "wrapping key of stored epoch keys: 32 bytes in base64; "
                "generated under var/ when unset in the dev profile"),
    SESS_KEY_FILE("CERROJO_SESSION_KEY_FILE", key_file, "CERROJO_SESSION_KEY"),
    SESS_SECRET("CERROJO_SESSION_KEY_PREVIOUS", key_previous,
                "the wrapping key being rotated out, still used to unwrap"),
    SESS_KEY_FILE("CERROJO_SESSION_KEY_PREVIOUS_FILE", key_previous_file,
                  "CERROJO_SESSION_KEY_PREVIOUS"),
    SESS_OPTION("CERROJO_SESSION_EPOCH_SECONDS", CJ_CONFIG_DURATION,
                epoch_seconds, "15m", 1, 86400,
                "length of one epoch of session keys, in seconds"),
    SESS_OPTION("CERROJO_SESSION_GRACE_SECONDS", CJ_CONFIG_DURATION,
                grace_seconds, "60s", 0, 86400,
                "how long the previous epoch stays accepted, in seconds"),
    SESS_OPTION("CERROJO_CLOCK_LEEWAY_SECONDS", CJ_CONFIG_DURATION,
                leeway_seconds, "60s", 0, 3600,
                "clock leeway for epochs and token expiry, in seconds"),
    SESS_OPTION("CERROJO_SESSION_IDLE_SECONDS", CJ_CONFIG_DURATION,
                idle_seconds, "5m", 1, 86400,
                "idle expiry of a session not bound to a user, in seconds"),
    SESS_OPTION("CERROJO_SESSION_BOUND_IDLE_SECONDS", CJ_CONFIG_DURATION,
                bound_idle_seconds, "30m", 1, 86400,
                "idle expiry of a session bound to a user, in seconds"),
    SESS_OPTION("CERROJO_SESSION_ABSOLUTE_SECONDS", CJ_CONFIG_DURATION,
                absolute_seconds, "12h", 1, 30LL * 86400,
                "absolute lifetime of a session from its creation, seconds"),
    SESS_OPTION("CERROJO_AUTH_ACCESS_TOKEN_LIFETIME", CJ_CONFIG_DURATION,
                token_lifetime_seconds, "15m", 1, 86400,
                "access-token lifetime (auth's setting): tombstones and "
                "user revocations are kept this long plus the leeway"),
    SESS_OPTION("CERROJO_CLOCK_MAX_OFFSET", CJ_CONFIG_DURATION,
                clock_max_offset_seconds, "5s", 1, 3600,
                "largest offset between this clock and Redis's at which the "
                "service reports itself ready, in seconds"),
    SESS_OPTION(
        "CERROJO_SESSION_MAX_PER_USER", CJ_CONFIG_INT, max_per_user,
        SESS_XSTR(SESS_DEFAULT_MAX_PER_USER), 0, SESS_MAX_PER_USER_MAX,
        "maximum number of bound sessions per user; a bind past it ends "
        "the user's oldest sessions (0: no limit)"),
    SESS_OPTION("CERROJO_SESSION_METRICS_PORT", CJ_CONFIG_INT, metrics_port,
                "9093", 0, 65535,
                "port of the Prometheus metrics on 127.0.0.1 (0: a free one)"),
};
#define SESS_OPTION_COUNT (sizeof(sess_options) / sizeof(sess_options[0]))

/* The commands of the binary; none takes an argument. */
static const char *const sess_commands[] = {
    "serve",
    "healthcheck",
    "--print-config",
};

static bool is_command(const char *arg)
{
    return cj_cli_is_command(arg, sess_commands,
                             sizeof(sess_commands) / sizeof(sess_commands[0]));
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-session [serve|healthcheck|--print-config|--help]\n"
            "  serve           run the gRPC server (default)\n"
            "  healthcheck     call the running server's Health/Check; "
            "exit 0 when SERVING\n"
            "  --print-config  print the configuration, secrets redacted\n"
            "configuration (environment or .env file):\n");
    cj_config_print_help(sess_options, SESS_OPTION_COUNT, out);
    cj_metrics_print_help(out);
}

/*
 * Checks the session lifetimes against each other. Only the previous
 * epoch's key is kept, so a grace period as long as an epoch could not be
 * served, and an epoch as long as a session would never rotate its keys.
 */
static bool epochs_valid(const struct sess_config *cfg, char *err,
                         size_t errlen)
{
    if (cfg->grace_seconds >= cfg->epoch_seconds) {
        snprintf(err, errlen,
                 "CERROJO_SESSION_GRACE_SECONDS (%lld s) must be shorter than "
                 "CERROJO_SESSION_EPOCH_SECONDS (%lld s), because only the "
                 "previous epoch's key is kept",
                 cfg->grace_seconds, cfg->epoch_seconds);
        return false;
    }
    if (cfg->epoch_seconds >= cfg->absolute_seconds) {
        snprintf(err, errlen,
                 "CERROJO_SESSION_EPOCH_SECONDS (%lld s) must be shorter than "
                 "CERROJO_SESSION_ABSOLUTE_SECONDS (%lld s), or no session "
                 "ever rotates its keys",
                 cfg->epoch_seconds, cfg->absolute_seconds);
        return false;
    }
    return true;
}

/*
 * Rejects an idle expiry longer than the absolute lifetime, which would
 * never end a session first. A bound idle expiry shorter than the unbound
 * one is allowed: it is a stricter policy for signed-in sessions.
 */
static bool idle_valid(const struct sess_config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *name;
        long long seconds;
    } idle[] = {
        {"CERROJO_SESSION_IDLE_SECONDS", cfg->idle_seconds},
        {"CERROJO_SESSION_BOUND_IDLE_SECONDS", cfg->bound_idle_seconds},
    };

    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
        if (idle[i].seconds > cfg->absolute_seconds) {
            snprintf(err, errlen,
                     "%s (%lld s) is above CERROJO_SESSION_ABSOLUTE_SECONDS "
                     "(%lld s); a session ends at its absolute lifetime "
                     "first, so the idle expiry would never apply",
                     idle[i].name, idle[i].seconds, cfg->absolute_seconds);
            return false;
        }
    }
    return true;
}

static bool load_config(struct sess_config *cfg, enum cj_profile *profile)
{
    char err[CJ_CONFIG_ERROR_MAX];
    enum cj_log_level level;

    if (cj_config_load(sess_options, SESS_OPTION_COUNT, profile, cfg, err,
                       sizeof(err)) != CJ_OK ||
        cj_rpc_settings_check(&cfg->grpc, *profile, SESS_ENV_PREFIX, err,
                              sizeof(err)) != CJ_OK ||
        cj_rpc_settings_check_metrics(&cfg->grpc, cfg->metrics_port,
                                      SESS_ENV_PREFIX, err,
                                      sizeof(err)) != CJ_OK ||
        !epochs_valid(cfg, err, sizeof(err)) ||
        !idle_valid(cfg, err, sizeof(err))) {
        fprintf(stderr, "cerrojo-session: %s\n", err);
        return false;
    }
    if (!cj_log_level_parse(cfg->log_level, &level)) {
        fprintf(stderr,
                "cerrojo-session: CERROJO_LOG_LEVEL: expected debug, info, "
                "warn or error, got '%s'\n",
                cfg->log_level);
        return false;
    }
    cj_log_init("session", level);
    (void)cj_config_warn_unknown(SESS_ENV_PREFIX "_", sess_options,
                                 SESS_OPTION_COUNT);
    return true;
}

/* Checks the gRPC settings and reads the TLS files; prints why they are
 * wrong. */
static bool grpc_settings_valid(const struct sess_config *cfg,
                                enum cj_profile profile)
{
    char err[CJ_CONFIG_ERROR_MAX];

    if (cj_rpc_settings_check_files(&cfg->grpc, profile, SESS_ENV_PREFIX, err,
                                    sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: %s\n", err);
        return false;
    }
    return true;
}

/*
 * Reads the key file that `variable` names into buf (NUL-terminated),
 * after its permission check. Prints the reason and returns false when the
 * file is missing, unreadable, larger than the buffer, or open to other
 * users outside dev.
 */
static bool read_configured_key_file(const char *variable, const char *path,
                                     enum cj_profile profile, char *buf,
                                     size_t size)
{
    char err[CJ_CONFIG_ERROR_MAX];
    size_t used = 0;
    bool ok = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr,
                "cerrojo-session: %s: cannot read the key file %s: %s\n",
                variable, path, strerror(errno));
        return false;
    }
    if (cj_config_check_key_file_mode(fd, variable, path, profile, err,
                                      sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: %s\n", err);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr,
                    "cerrojo-session: %s: cannot read the key file %s: %s\n",
                    variable, path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
        if (used == size - 1) {
            fprintf(stderr,
                    "cerrojo-session: %s: the key file %s is larger than %zu "
                    "bytes; expected 32 bytes in base64\n",
                    variable, path, size - 2);
            goto out;
        }
    }
    ok = true;
out:
    buf[used] = '\0';
    close(fd);
    return ok;
}

/* Reads a key file's text into buf (NUL-terminated). */
static bool read_key_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        return false;
    }
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* Creates var/session.key with a new random key, or reads the one there. */
static bool dev_key(unsigned char key[SESS_WRAP_KEY_LEN])
{
    char text[SESS_KEY_FILE_MAX];
    int fd;
    bool ok = false;

    if (read_key_file(SESS_DEV_KEY_FILE, text, sizeof(text))) {
        ok = sess_wrap_key_decode(text, key) == CJ_OK;
        goto out;
    }
    if (mkdir(SESS_DEV_KEY_DIR, 0700) != 0 && errno != EEXIST) {
        goto out;
    }
    cj_random_bytes(key, SESS_WRAP_KEY_LEN);
    sodium_bin2base64(text, sizeof(text), key, SESS_WRAP_KEY_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    fd = open(SESS_DEV_KEY_FILE, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        goto out;
    }
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    ok = close(fd) == 0 && ok;
    if (ok) {
        cj_log(CJ_LOG_WARN, "session.dev_key_generated", NULL,
               CJ_F_STR("path", SESS_DEV_KEY_FILE));
    }
out:
    cj_wipe(text, sizeof(text));
    return ok;
}

/* One wrapping key's two settings: the value and the file holding it. */
struct wrap_key_setting {
    const char *name;      /* CERROJO_SESSION_KEY */
    const char *text;      /* its value, or NULL */
    const char *file_name; /* CERROJO_SESSION_KEY_FILE */
    const char *file;      /* its value, or NULL */
};

/*
 * Decodes one wrapping key from its variable or its file. *present is
 * false when neither is set. Prints the reason, naming the variable that
 * was set, and returns false on a bad value or a file that cannot be used.
 */
static bool wrap_key_from(const struct wrap_key_setting *setting,
                          enum cj_profile profile,
                          unsigned char key[SESS_WRAP_KEY_LEN], bool *present)
{
    char buf[SESS_KEY_FILE_MAX];
    bool ok = true;

    *present = false;
    if (setting->text != NULL && setting->text[0] != '\0') {
        *present = true;
        if (sess_wrap_key_decode(setting->text, key) != CJ_OK) {
            fprintf(stderr,
                    "cerrojo-session: %s: expected 32 bytes in base64 (for "
                    "example from `openssl rand -base64 32`)\n",
                    setting->name);
            ok = false;
        }
    } else if (setting->file != NULL && setting->file[0] != '\0') {
        *present = true;
        ok = read_configured_key_file(setting->file_name, setting->file,
                                      profile, buf, sizeof(buf));
        if (ok && sess_wrap_key_decode(buf, key) != CJ_OK) {
            fprintf(stderr,
                    "cerrojo-session: %s: %s: expected 32 bytes in base64 "
                    "(for example from `openssl rand -base64 32`)\n",
                    setting->file_name, setting->file);
            ok = false;
        }
    }
    cj_wipe(buf, sizeof(buf));
    return ok;
}

/* Returns the name of the variable that sets the key: the value or its file. */
static const char *wrap_key_variable(const struct wrap_key_setting *setting)
{
    if (setting->text != NULL && setting->text[0] != '\0') {
        return setting->name;
    }
    return setting->file_name;
}

/*
 * Decodes the configured wrapping keys: the current one, which stage and
 * prod require, and the previous one, which must differ from it. Prints the
 * reason and returns false on a settings error.
 */
static bool
read_wrap_keys(const struct sess_config *cfg, enum cj_profile profile,
               unsigned char current[SESS_WRAP_KEY_LEN], bool *have_current,
               unsigned char previous[SESS_WRAP_KEY_LEN], bool *have_previous)
{
    const struct wrap_key_setting current_setting = {
        "CERROJO_SESSION_KEY", cfg->key, "CERROJO_SESSION_KEY_FILE",
        cfg->key_file};
    const struct wrap_key_setting previous_setting = {
        "CERROJO_SESSION_KEY_PREVIOUS", cfg->key_previous,
        "CERROJO_SESSION_KEY_PREVIOUS_FILE", cfg->key_previous_file};

    *have_previous = false;
    if (!wrap_key_from(&current_setting, profile, current, have_current) ||
        !wrap_key_from(&previous_setting, profile, previous, have_previous)) {
        return false;
    }
    if (!*have_current && profile != CJ_PROFILE_DEV) {
        fprintf(stderr,
                "cerrojo-session: CERROJO_SESSION_KEY or "
                "CERROJO_SESSION_KEY_FILE is required in the %s profile\n",
                cj_profile_name(profile));
        return false;
    }
    /* A rotation that left the old key as the new one rotates nothing. */
    if (*have_current && *have_previous &&
        sodium_memcmp(current, previous, SESS_WRAP_KEY_LEN) == 0) {
        fprintf(stderr,
                "cerrojo-session: %s and %s contain the same key; set the "
                "previous key to the one being rotated out, or unset it\n",
                wrap_key_variable(&current_setting),
                wrap_key_variable(&previous_setting));
        return false;
    }
    return true;
}

/* Loads the wrapping keys, in dev generating a missing current one.
 * Returns 0, or the exit status after printing why. */
static int load_wrapping(const struct sess_config *cfg, enum cj_profile profile,
                         struct sess_wrapping **out)
{
    unsigned char current[SESS_WRAP_KEY_LEN];
    unsigned char previous[SESS_WRAP_KEY_LEN];
    bool have_current = false;
    bool have_previous = false;
    int exit_status = SESS_EXIT_USAGE;

    if (!read_wrap_keys(cfg, profile, current, &have_current, previous,
                        &have_previous)) {
        goto out;
    }
    exit_status = SESS_EXIT_FAILED;
    if (!have_current && !dev_key(current)) {
        fprintf(stderr, "cerrojo-session: cannot create or read %s\n",
                SESS_DEV_KEY_FILE);
        goto out;
    }
    if (sess_wrapping_new(current, have_previous ? previous : NULL, out) ==
        CJ_OK) {
        exit_status = 0;
    }
out:
    cj_wipe(current, sizeof(current));
    cj_wipe(previous, sizeof(previous));
    return exit_status;
}

/*
 * Runs the settings checks of the start that need neither Redis nor a key
 * generated for dev (the gRPC settings and TLS files, the wrapping-key
 * settings and files), then prints the settings. Returns the exit status.
 */
static int print_config(const struct sess_config *cfg, enum cj_profile profile)
{
    unsigned char current[SESS_WRAP_KEY_LEN];
    unsigned char previous[SESS_WRAP_KEY_LEN];
    bool have_current = false;
    bool have_previous = false;
    bool valid = grpc_settings_valid(cfg, profile) &&
                 read_wrap_keys(cfg, profile, current, &have_current, previous,
                                &have_previous);

    cj_wipe(current, sizeof(current));
    cj_wipe(previous, sizeof(previous));
    if (!valid) {
        return SESS_EXIT_USAGE;
    }
    cj_config_dump(sess_options, SESS_OPTION_COUNT, profile, cfg, stdout);
    return 0;
}

static void settings_from(const struct sess_config *cfg,
                          struct sess_settings *s)
{
    sess_settings_default(s);
    s->epochs.epoch_ms = cfg->epoch_seconds * 1000;
    s->epochs.grace_ms = cfg->grace_seconds * 1000;
    s->epochs.leeway_ms = cfg->leeway_seconds * 1000;
    s->idle_ms = cfg->idle_seconds * 1000;
    s->bound_idle_ms = cfg->bound_idle_seconds * 1000;
    s->absolute_ms = cfg->absolute_seconds * 1000;
    s->token_lifetime_ms =
        (cfg->token_lifetime_seconds + cfg->leeway_seconds) * 1000;
    s->clock_max_offset_ms = cfg->clock_max_offset_seconds * 1000;
    s->max_per_user = (uint32_t)cfg->max_per_user;
}

/* Marks the server NOT_SERVING while Redis is down: without Redis every
 * RPC of this service fails. */
static void on_redis_state(bool up, void *arg)
{
    struct cj_rpc_server *server = arg;
    enum cj_rpc_health_status h =
        up ? CJ_RPC_HEALTH_SERVING : CJ_RPC_HEALTH_NOT_SERVING;

    if (cj_rpc_health_set(server, "", h) != CJ_OK ||
        cj_rpc_health_set(server, SESS_RPC_SERVICE_NAME, h) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "session.health_update_failed", NULL);
    }
}

static int serve(const struct sess_config *cfg, enum cj_profile profile,
                 const sigset_t *signals)
{
    struct cj_redis_options ro = {
        .host = cfg->redis_host,
        .port = (int)cfg->redis_port,
        .password = cfg->redis_password,
        .pool_size = (unsigned)cfg->redis_pool_size,
        .connect_timeout_ms = CJ_REDIS_DEFAULT_CONNECT_TIMEOUT_MS,
        .command_timeout_ms = cfg->redis_command_timeout_ms,
        .acquire_timeout_ms = CJ_REDIS_DEFAULT_ACQUIRE_TIMEOUT_MS,
    };
    struct cj_rpc_server_options so;
    struct cj_rpc_service service;
    struct cj_rpc_server *server = NULL;
    struct sess_worker *worker = NULL;
    struct sess_service svc = {0};
    struct cj_metrics *metrics = NULL;
    struct cj_metrics_server *metrics_server = NULL;
    int exit_status = SESS_EXIT_USAGE;
    int sig;

    if (!grpc_settings_valid(cfg, profile)) {
        goto out;
    }
    exit_status = load_wrapping(cfg, profile, &svc.wrapping);
    if (exit_status != 0) {
        goto out;
    }
    exit_status = SESS_EXIT_FAILED;
    if (cj_redis_pool_new(&ro, &svc.redis) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: invalid Redis settings\n");
        goto out;
    }
    settings_from(cfg, &svc.settings);
    metrics = cj_metrics_new();
    if (metrics == NULL ||
        sess_metrics_register(metrics, &svc.metrics) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: cannot register the metrics\n");
        goto out;
    }
    /* A port that another process still uses after the wait fails the
     * start, since Prometheus would scrape that process under this one's
     * labels. */
    if (cj_metrics_server_start(metrics, SESS_METRICS_ADDRESS,
                                (uint16_t)cfg->metrics_port,
                                &metrics_server) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "session.metrics_unavailable", NULL,
               CJ_F_INT("port", cfg->metrics_port));
        fprintf(
            stderr,
            "cerrojo-session: cannot listen on the metrics port %lld "
            "(CERROJO_SESSION_METRICS_PORT); the metrics.port_still_busy or "
            "metrics.listen_failed log line gives the cause. Stop the "
            "process that holds the port or set another port\n",
            (long long)cfg->metrics_port);
        goto out;
    }
    sess_rpc_service_init(&service, &svc);
    cj_rpc_settings_server_options(&cfg->grpc, &so);
    /* Handlers past the grace may wait on Redis, which gRPC cannot
     * cancel. */
    so.on_grace_expired = cj_redis_pool_close_hook;
    so.on_grace_expired_arg = svc.redis;
    if (cj_rpc_server_create(&service, &so, &server) != CJ_OK ||
        cj_rpc_server_start(server) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: cannot start the gRPC server on %s\n",
                cfg->grpc.listen);
        goto out;
    }
    /* Not ready until the worker's first pass has reached Redis. */
    on_redis_state(false, server);
    if (sess_worker_start(&svc, on_redis_state, server, &worker) != CJ_OK) {
        fprintf(stderr, "cerrojo-session: cannot start the worker thread\n");
        goto out;
    }
    cj_log(CJ_LOG_INFO, "session.started", NULL,
           CJ_F_INT("port", cj_rpc_server_port(server)),
           CJ_F_INT("epoch_seconds", cfg->epoch_seconds),
           CJ_F_STR("profile", cj_profile_name(profile)));
    sig = cj_rpc_server_wait_signal(signals);
    cj_log(CJ_LOG_INFO, "session.stopping", NULL, CJ_F_INT("signal", sig));
    exit_status = 0;
out:
    /* The server stops first: when its grace ends with handlers waiting on
     * Redis, its hook closes the pool, which also ends a worker command
     * waiting there. The worker may still set the health status until
     * cj_rpc_server_destroy. */
    if (server != NULL) {
        cj_rpc_server_shutdown(server);
    }
    sess_worker_stop(worker);
    cj_rpc_server_destroy(server);
    cj_metrics_server_stop(metrics_server);
    cj_metrics_free(metrics);
    cj_redis_pool_free(svc.redis);
    sess_wrapping_free(svc.wrapping);
    return exit_status;
}

/* Wipes the secret strings before cj_config_free releases them. */
static void wipe_secrets(struct sess_config *cfg)
{
    char *secrets[] = {cfg->key, cfg->key_previous, cfg->redis_password};

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        if (secrets[i] != NULL) {
            cj_wipe(secrets[i], strlen(secrets[i]));
        }
    }
}

int main(int argc, char **argv)
{
    struct sess_config cfg;
    enum cj_profile profile = CJ_PROFILE_DEV;
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";
    int exit_status = 2;

    if (cj_openssl_skip_error_strings() != CJ_OK) {
        fprintf(stderr, "cerrojo-session: OpenSSL failed to initialize\n");
        return 1;
    }
    /* Before any thread exists, so that only sigwait receives them. */
    cj_rpc_signals_block(&signals);
    memset(&cfg, 0, sizeof(cfg));
    if (cj_cli_help_requested(argc, argv, is_command(command))) {
        usage(stdout);
        return 0;
    }
    /* Checked before the settings, so that a typing error is named even
     * where the settings are incomplete. */
    if (!is_command(command)) {
        fprintf(stderr, "cerrojo-session: unknown command '%s'\n", command);
        usage(stderr);
        return 2;
    }
    if (argc > 2) {
        fprintf(stderr, "cerrojo-session: unexpected argument '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }
    if (!load_config(&cfg, &profile)) {
        goto out;
    }
    /* serve and --print-config decode the wrapping keys with libsodium. */
    if (strcmp(command, "healthcheck") != 0 && cj_crypto_init() != CJ_OK) {
        fprintf(stderr, "cerrojo-session: libsodium failed to start\n");
        goto out;
    }
    if (strcmp(command, "serve") == 0) {
        exit_status = serve(&cfg, profile, &signals);
    } else if (strcmp(command, "healthcheck") == 0) {
        exit_status = cj_rpc_healthcheck("cerrojo-session", &cfg.grpc);
    } else if (strcmp(command, "--print-config") == 0) {
        exit_status = print_config(&cfg, profile);
    }
out:
    wipe_secrets(&cfg);
    cj_config_free(sess_options, SESS_OPTION_COUNT, &cfg);
    /* The gRPC core's detached threads end first, because OpenSSL's exit
     * handler must not run beside them. */
    (void)cj_proc_wait_alone(CJ_PROC_EXIT_WAIT_MS);
    return exit_status;
}

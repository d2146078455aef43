/*
 * Configuration from environment variables, optionally loaded from a .env
 * file. A service declares a table of options and gets them parsed into its
 * own struct, with validation errors that name the variable and the expected
 * form, and a dump that redacts secret values.
 */
#ifndef CJ_CONFIG_H
#define CJ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "status.h"

/* Size of the error buffers passed to the functions below, in bytes. */
#define CJ_CONFIG_ERROR_MAX 512

/* Variable that names the .env file; without it ./.env is read if present. */
#define CJ_CONFIG_ENV_FILE_VAR     "CERROJO_ENV_FILE"
#define CJ_CONFIG_ENV_FILE_DEFAULT ".env"
/* Variable that selects the profile: dev (the default), stage or prod. */
#define CJ_CONFIG_PROFILE_VAR "CERROJO_PROFILE"

enum cj_profile {
    CJ_PROFILE_DEV = 0,
    CJ_PROFILE_STAGE,
    CJ_PROFILE_PROD,
};

/*
 * Option types and the C type of the struct field each one fills:
 *   STRING, PATH  char *     (allocated, freed by cj_config_free; NULL when
 *                             unset without a default)
 *   INT           long long
 *   BOOL          bool       (true/false, yes/no, on/off, 1/0)
 *   DURATION      long long  seconds; accepts 90, 90s, 5m, 2h, 1d
 *   BYTES         long long  bytes; accepts 4096, 64k, 19MiB, 1G (all
 *                            binary: k = KiB = 1024)
 */
enum cj_config_type {
    CJ_CONFIG_STRING = 0,
    CJ_CONFIG_INT,
    CJ_CONFIG_BOOL,
    CJ_CONFIG_DURATION,
    CJ_CONFIG_BYTES,
    CJ_CONFIG_PATH,
};

/*
 * One declared option. When the variable is unset, the value comes from
 * default_value (any profile); else from dev_default, which only the dev
 * profile may use (stage and prod then reject the missing variable); else
 * the option is an error when `required`, or zero (NULL, 0, false).
 * Defaults are text and go through the same parser and bounds as the
 * environment. For INT, DURATION and BYTES the bounds apply when max > min.
 */
struct cj_config_option {
    const char *name; /* CERROJO_KMS_THREADS */
    enum cj_config_type type;
    size_t offset; /* offsetof(struct kms_config, threads) */
    const char *default_value;
    const char *dev_default;
    long long min;
    long long max;
    bool required;
    bool secret;      /* printed as <redacted> by cj_config_dump */
    const char *help; /* one line: what it sets, in what unit */
    /*
     * For an option naming a file that contains another option's value
     * (CERROJO_SESSION_KEY_FILE), that option's name (CERROJO_SESSION_KEY).
     * cj_config_parse rejects both variables set to non-empty values, since
     * one of them would be ignored.
     */
    const char *file_of;
};

/*
 * Reads the .env file named by CERROJO_ENV_FILE (an error if that file is
 * missing), or ./.env when present, into the process environment. Variables
 * already set win over the file. Lines are NAME=value, optionally prefixed
 * by "export "; '#' starts a comment line; values may be single-quoted
 * (literal) or double-quoted (with \n, \" and \\ escapes). A name set on
 * two lines is an error that names both lines. Call once at
 * start, before any thread, since it uses setenv.
 */
CJ_WARN_UNUSED enum cj_status cj_config_load_env_file(char *err,
                                                      size_t err_size);

/* Parses CERROJO_PROFILE (unset means dev) into *out. */
CJ_WARN_UNUSED enum cj_status cj_config_profile(enum cj_profile *out, char *err,
                                                size_t err_size);

/* Returns "dev", "stage" or "prod". */
const char *cj_profile_name(enum cj_profile profile);

/*
 * Fills the struct at `out` from the environment as the `count` options
 * declare. A value and the file option that contains it (see file_of)
 * must not both be set. On error `out` holds what was parsed so far (free it
 * with cj_config_free) and err names the variable and the expected form, such
 * as "CERROJO_KMS_THREADS: expected an integer from 1 to 64, got 'x'".
 */
CJ_WARN_UNUSED enum cj_status
cj_config_parse(const struct cj_config_option *options, size_t count,
                enum cj_profile profile, void *out, char *err, size_t err_size);

/*
 * Runs the three steps a service needs at start: the .env file, the
 * profile (stored in *profile) and cj_config_parse.
 */
CJ_WARN_UNUSED enum cj_status
cj_config_load(const struct cj_config_option *options, size_t count,
               enum cj_profile *profile, void *out, char *err, size_t err_size);

/*
 * Logs one warning, event "config.unknown_variable" with the variable's
 * name and never its value, for each environment variable that starts
 * with `prefix` (such as "CERROJO_KMS_") but is not among `options`. A
 * misspelt or misplaced setting then shows at start instead of silently
 * leaving its default in force. Names that another service reads under
 * this prefix (CERROJO_KMS_ADDR, CERROJO_SESSION_ADDR and
 * CERROJO_AUTH_ADDR, read by the gateway) are not reported, so one shared
 * environment can serve every service. Call it after cj_log_init.
 * Returns the number of warnings logged.
 */
size_t cj_config_warn_unknown(const char *prefix,
                              const struct cj_config_option *options,
                              size_t count);

/* Frees the strings cj_config_parse allocated in `cfg`; NULL-safe. */
void cj_config_free(const struct cj_config_option *options, size_t count,
                    void *cfg);

/*
 * Writes one NAME=value line per option for --print-config, secret values
 * as <redacted> (unset ones as an empty value), led by the profile.
 */
void cj_config_dump(const struct cj_config_option *options, size_t count,
                    enum cj_profile profile, const void *cfg, FILE *out);

/* Writes one line per option: name, expected form, default and help. */
void cj_config_print_help(const struct cj_config_option *options, size_t count,
                          FILE *out);

/*
 * Enforces a dev-only setting: returns CJ_OK in dev, otherwise
 * CJ_ERR_INVALID with err set to "VARIABLE: <reason> (profile is prod)".
 * Call it only when the offending setting is in use, e.g.
 *   if (cfg.grpc_plaintext)
 *       st = cj_config_require_dev(profile, "CERROJO_KMS_PLAINTEXT",
 *            "plaintext gRPC is allowed only in the dev profile", err, n);
 */
CJ_WARN_UNUSED enum cj_status cj_config_require_dev(enum cj_profile profile,
                                                    const char *variable,
                                                    const char *reason,
                                                    char *err, size_t err_size);

/*
 * Checks the permission bits of a key file, open at `fd`, that the
 * setting `variable` names (NULL for a file given on the command line).
 * Stage and prod reject a file that other users can read or write (any of
 * the "other" bits 0007) with CJ_ERR_INVALID. err then names the variable,
 * the path and the mode, and gives the fix `chmod 600 PATH`. In dev the
 * warning event config.key_file_insecure_mode is logged instead and CJ_OK
 * returned. Group bits are allowed, because Kubernetes mounts Secrets with
 * a mode such as 0440 and the pod's fsGroup as the group. A failed fstat
 * returns CJ_ERR_UNAVAILABLE with err set.
 */
CJ_WARN_UNUSED enum cj_status
cj_config_check_key_file_mode(int fd, const char *variable, const char *path,
                              enum cj_profile profile, char *err,
                              size_t err_size);

#endif

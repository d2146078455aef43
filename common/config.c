/*
 * Parses declared options from the environment and the optional .env file,
 * checks their form and bounds, and prints them with secrets redacted.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Longest accepted .env line, in bytes; longer lines are rejected. */
#define CJ_CONFIG_LINE_MAX 8192
/* Longest value echoed back in an error message, in characters. */
#define CJ_CONFIG_ECHO_MAX 64
/* Maximum length of a variable name that cj_config_warn_unknown logs, in
 * bytes. A longer name is cut. */
#define CJ_CONFIG_NAME_LOG_MAX 128

#define CJ_SECONDS_PER_MINUTE 60LL
#define CJ_SECONDS_PER_HOUR   3600LL
#define CJ_SECONDS_PER_DAY    86400LL
#define CJ_KIB                1024LL

static void set_error(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ---- .env file ---------------------------------------------------------- */

static bool is_name_char(char c, bool first)
{
    if (c == '_' || isalpha((unsigned char)c)) {
        return true;
    }
    return !first && isdigit((unsigned char)c);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                     s[n - 1] == '\n')) {
        s[--n] = '\0';
    }
    return s;
}

/*
 * Decodes the value part of a NAME=value line in place. Returns false on an
 * unterminated quote or text after the closing quote.
 */
static bool decode_value(char *v)
{
    if (v[0] == '\'') {
        char *end = strchr(v + 1, '\'');
        if (end == NULL || *trim(end + 1) != '\0') {
            return false;
        }
        size_t n = (size_t)(end - (v + 1));
        memmove(v, v + 1, n);
        v[n] = '\0';
        return true;
    }
    if (v[0] != '"') {
        /* Unquoted: a " #" starts a trailing comment. */
        char *hash = strstr(v, " #");
        if (hash != NULL) {
            *hash = '\0';
            trim(v);
        }
        return true;
    }
    char *w = v;
    for (const char *r = v + 1; *r != '\0'; r++) {
        if (*r == '"') {
            /* w trails r, so the text after the quote is still intact. */
            *w = '\0';
            return *trim((char *)r + 1) == '\0';
        }
        if (*r == '\\' && r[1] != '\0') {
            r++;
            *w++ = *r == 'n' ? '\n' : *r;
        } else {
            *w++ = *r;
        }
    }
    return false;
}

/* The names an .env file has set so far, each with its line number. */
struct env_names {
    char **names;
    unsigned *lines;
    size_t count;
    size_t capacity;
};

static void env_names_free(struct env_names *seen)
{
    for (size_t i = 0; i < seen->count; i++) {
        free(seen->names[i]);
    }
    free(seen->names);
    free(seen->lines);
}

/* Returns the line that first set `name`, or 0 when no line has. */
static unsigned env_names_find(const struct env_names *seen, const char *name)
{
    for (size_t i = 0; i < seen->count; i++) {
        if (strcmp(seen->names[i], name) == 0) {
            return seen->lines[i];
        }
    }
    return 0;
}

static enum cj_status env_names_add(struct env_names *seen, const char *name,
                                    unsigned lineno)
{
    if (seen->count == seen->capacity) {
        size_t capacity = seen->capacity == 0 ? 16 : seen->capacity * 2;
        char **names = realloc(seen->names, capacity * sizeof(*names));
        if (names == NULL) {
            return CJ_ERR_NOMEM;
        }
        seen->names = names;
        unsigned *lines = realloc(seen->lines, capacity * sizeof(*lines));
        if (lines == NULL) {
            return CJ_ERR_NOMEM;
        }
        seen->lines = lines;
        seen->capacity = capacity;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        return CJ_ERR_NOMEM;
    }
    seen->names[seen->count] = copy;
    seen->lines[seen->count] = lineno;
    seen->count++;
    return CJ_OK;
}

/*
 * Rejects a name that an earlier line of the file set. A shell that sources
 * the file keeps the last value, so an appended override must not be
 * ignored silently here.
 */
static enum cj_status check_duplicate_name(struct env_names *seen,
                                           const char *name, const char *path,
                                           unsigned lineno, char *err,
                                           size_t err_size)
{
    unsigned first = env_names_find(seen, name);
    if (first != 0) {
        set_error(err, err_size,
                  "%s:%u: %s is already set on line %u; keep one of the two "
                  "lines",
                  path, lineno, name, first);
        return CJ_ERR_INVALID;
    }
    return env_names_add(seen, name, lineno);
}

static enum cj_status load_env_line(char *line, const char *path,
                                    unsigned lineno, struct env_names *seen,
                                    char *err, size_t err_size)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#') {
        return CJ_OK;
    }
    if (strncmp(s, "export ", 7) == 0) {
        s = trim(s + 7);
    }
    char *eq = strchr(s, '=');
    if (eq == NULL || eq == s) {
        set_error(err, err_size, "%s:%u: expected NAME=value", path, lineno);
        return CJ_ERR_INVALID;
    }
    *eq = '\0';
    char *name = trim(s);
    for (const char *c = name; *c != '\0'; c++) {
        if (!is_name_char(*c, c == name)) {
            set_error(err, err_size,
                      "%s:%u: invalid variable name (expected letters, "
                      "digits and '_')",
                      path, lineno);
            return CJ_ERR_INVALID;
        }
    }
    char *value = trim(eq + 1);
    if (!decode_value(value)) {
        set_error(err, err_size, "%s:%u: %s: unterminated or malformed quote",
                  path, lineno, name);
        return CJ_ERR_INVALID;
    }
    enum cj_status st =
        check_duplicate_name(seen, name, path, lineno, err, err_size);
    if (st != CJ_OK) {
        return st;
    }
    /* overwrite = 0: a variable set in the real environment wins. */
    if (setenv(name, value, 0) != 0) {
        set_error(err, err_size, "%s:%u: %s: setenv failed: %s", path, lineno,
                  name, strerror(errno));
        return CJ_ERR_INTERNAL;
    }
    return CJ_OK;
}

enum cj_status cj_config_load_env_file(char *err, size_t err_size)
{
    const char *path = getenv(CJ_CONFIG_ENV_FILE_VAR);
    bool explicit_path = path != NULL && path[0] != '\0';
    if (!explicit_path) {
        path = CJ_CONFIG_ENV_FILE_DEFAULT;
    }

    enum cj_status st = CJ_ERR_INTERNAL;
    struct env_names seen = {0};
    char *line = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !explicit_path) {
            st = CJ_OK;
        } else {
            set_error(err, err_size, "%s: cannot read the .env file %s: %s",
                      CJ_CONFIG_ENV_FILE_VAR, path, strerror(errno));
            st = CJ_ERR_INVALID;
        }
        goto out;
    }
    line = malloc(CJ_CONFIG_LINE_MAX);
    if (line == NULL) {
        st = CJ_ERR_NOMEM;
        goto out;
    }
    unsigned lineno = 0;
    while (fgets(line, CJ_CONFIG_LINE_MAX, f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n == CJ_CONFIG_LINE_MAX - 1 && line[n - 1] != '\n' && !feof(f)) {
            set_error(err, err_size, "%s:%u: line longer than %d bytes", path,
                      lineno, CJ_CONFIG_LINE_MAX - 2);
            st = CJ_ERR_INVALID;
            goto out;
        }
        st = load_env_line(line, path, lineno, &seen, err, err_size);
        if (st != CJ_OK) {
            goto out;
        }
    }
    st = CJ_OK;

out:
    env_names_free(&seen);
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    return st;
}

/* ---- profile ------------------------------------------------------------ */

static const char *const PROFILE_NAMES[] = {"dev", "stage", "prod"};

const char *cj_profile_name(enum cj_profile profile)
{
    if ((unsigned)profile >= sizeof(PROFILE_NAMES) / sizeof(*PROFILE_NAMES)) {
        return "unknown";
    }
    return PROFILE_NAMES[profile];
}

enum cj_status cj_config_profile(enum cj_profile *out, char *err,
                                 size_t err_size)
{
    const char *v = getenv(CJ_CONFIG_PROFILE_VAR);
    if (v == NULL || v[0] == '\0') {
        *out = CJ_PROFILE_DEV;
        return CJ_OK;
    }
    for (size_t i = 0; i < sizeof(PROFILE_NAMES) / sizeof(*PROFILE_NAMES);
         i++) {
        if (strcmp(v, PROFILE_NAMES[i]) == 0) {
            *out = (enum cj_profile)i;
            return CJ_OK;
        }
    }
    set_error(err, err_size, "%s: expected one of dev, stage, prod, got '%.*s'",
              CJ_CONFIG_PROFILE_VAR, CJ_CONFIG_ECHO_MAX, v);
    return CJ_ERR_INVALID;
}

enum cj_status cj_config_require_dev(enum cj_profile profile,
                                     const char *variable, const char *reason,
                                     char *err, size_t err_size)
{
    if (profile == CJ_PROFILE_DEV) {
        return CJ_OK;
    }
    set_error(err, err_size, "%s: %s (profile is %s)", variable, reason,
              cj_profile_name(profile));
    return CJ_ERR_INVALID;
}

/* Names what other users may do with a file of `mode`, for the messages. */
static const char *other_access(mode_t mode)
{
    bool read = (mode & S_IROTH) != 0;
    bool write = (mode & S_IWOTH) != 0;

    if (read && write) {
        return "read and write";
    }
    if (read) {
        return "read";
    }
    if (write) {
        return "write";
    }
    return "open"; /* only the execute bit */
}

enum cj_status cj_config_check_key_file_mode(int fd, const char *variable,
                                             const char *path,
                                             enum cj_profile profile, char *err,
                                             size_t err_size)
{
    struct stat st;
    char fix[CJ_CONFIG_ERROR_MAX / 2];
    char mode_text[8];

    if (fstat(fd, &st) != 0) {
        set_error(err, err_size, "%s%s%s: cannot check its permissions: %s",
                  variable != NULL ? variable : "",
                  variable != NULL ? ": " : "", path, strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    /* A folder or a device fails at the read, with its own message. */
    if (!S_ISREG(st.st_mode) || (st.st_mode & S_IRWXO) == 0) {
        return CJ_OK;
    }
    snprintf(mode_text, sizeof(mode_text), "%04o",
             (unsigned)(st.st_mode & 07777));
    snprintf(fix, sizeof(fix), "chmod 600 %s", path);
    if (profile == CJ_PROFILE_DEV) {
        cj_log(CJ_LOG_WARN, "config.key_file_insecure_mode", NULL,
               CJ_F_STR("variable", variable != NULL ? variable : ""),
               CJ_F_STR("path", path), CJ_F_STR("mode", mode_text),
               CJ_F_STR("fix", fix));
        return CJ_OK;
    }
    set_error(err, err_size,
              "%s%s%s: other users can %s this key file (mode %s), which "
              "the %s profile rejects; run `%s`",
              variable != NULL ? variable : "", variable != NULL ? ": " : "",
              path, other_access(st.st_mode), mode_text,
              cj_profile_name(profile), fix);
    return CJ_ERR_INVALID;
}

/* ---- value parsers ------------------------------------------------------ */

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/*
 * Parses a decimal integer followed by an optional unit from `units`
 * (matched case-insensitively, longest first) and multiplies, rejecting
 * overflow.
 */
struct unit {
    const char *suffix;
    long long factor;
};

static bool parse_scaled(const char *v, const struct unit *units, size_t nunits,
                         long long *out)
{
    if (!isdigit((unsigned char)v[0]) && v[0] != '-') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v) {
        return false;
    }
    long long factor = 1;
    if (*end != '\0') {
        bool matched = false;
        for (size_t i = 0; i < nunits; i++) {
            if (strcasecmp(end, units[i].suffix) == 0) {
                factor = units[i].factor;
                matched = true;
                break;
            }
        }
        if (!matched) {
            return false;
        }
    }
    if (__builtin_mul_overflow(n, factor, out)) {
        return false;
    }
    return true;
}

static const struct unit NO_UNITS[] = {{"", 1}};

static const struct unit DURATION_UNITS[] = {
    {"s", 1},
    {"m", CJ_SECONDS_PER_MINUTE},
    {"h", CJ_SECONDS_PER_HOUR},
    {"d", CJ_SECONDS_PER_DAY},
};

static const struct unit BYTE_UNITS[] = {
    {"b", 1},
    {"k", CJ_KIB},
    {"kib", CJ_KIB},
    {"m", CJ_KIB *CJ_KIB},
    {"mib", CJ_KIB *CJ_KIB},
    {"g", CJ_KIB *CJ_KIB *CJ_KIB},
    {"gib", CJ_KIB *CJ_KIB *CJ_KIB},
};

/* Writes the expected form of an option, for errors and help. */
static void describe_form(const struct cj_config_option *o, char *buf,
                          size_t size)
{
    const char *what = "a string";
    switch (o->type) {
    case CJ_CONFIG_STRING:
        what = "a string";
        break;
    case CJ_CONFIG_PATH:
        what = "a non-empty file path";
        break;
    case CJ_CONFIG_BOOL:
        what = "a boolean (true/false, yes/no, on/off, 1/0)";
        break;
    case CJ_CONFIG_INT:
        what = "an integer";
        break;
    case CJ_CONFIG_DURATION:
        what = "a duration in seconds (90, 90s, 5m, 2h, 1d)";
        break;
    case CJ_CONFIG_BYTES:
        what = "a size in bytes (4096, 64k, 19MiB, 1G)";
        break;
    }
    bool numeric = o->type == CJ_CONFIG_INT || o->type == CJ_CONFIG_DURATION ||
                   o->type == CJ_CONFIG_BYTES;
    if (numeric && o->max > o->min) {
        snprintf(buf, size, "%s from %lld to %lld", what, o->min, o->max);
    } else {
        snprintf(buf, size, "%s", what);
    }
}

static enum cj_status parse_one(const struct cj_config_option *o, const char *v,
                                void *out, char *err, size_t err_size)
{
    char *field = (char *)out + o->offset;
    long long n = 0;
    bool ok = false;

    switch (o->type) {
    case CJ_CONFIG_STRING:
    case CJ_CONFIG_PATH: {
        if (o->type == CJ_CONFIG_PATH && v[0] == '\0') {
            break;
        }
        char *copy = strdup(v);
        if (copy == NULL) {
            return CJ_ERR_NOMEM;
        }
        char **slot = (char **)(void *)field;
        free(*slot);
        *slot = copy;
        return CJ_OK;
    }
    case CJ_CONFIG_BOOL: {
        bool b = false;
        ok = parse_bool(v, &b);
        if (ok) {
            *(bool *)(void *)field = b;
            return CJ_OK;
        }
        break;
    }
    case CJ_CONFIG_INT:
        ok = parse_scaled(v, NO_UNITS, 0, &n);
        break;
    case CJ_CONFIG_DURATION:
        ok = parse_scaled(v, DURATION_UNITS,
                          sizeof(DURATION_UNITS) / sizeof(*DURATION_UNITS), &n);
        break;
    case CJ_CONFIG_BYTES:
        ok = parse_scaled(v, BYTE_UNITS,
                          sizeof(BYTE_UNITS) / sizeof(*BYTE_UNITS), &n);
        break;
    }
    if (ok && o->max > o->min && (n < o->min || n > o->max)) {
        ok = false;
    }
    if (ok) {
        *(long long *)(void *)field = n;
        return CJ_OK;
    }

    char form[128];
    describe_form(o, form, sizeof(form));
    if (o->secret) {
        set_error(err, err_size, "%s: expected %s, got a value that is not",
                  o->name, form);
    } else {
        set_error(err, err_size, "%s: expected %s, got '%.*s'", o->name, form,
                  CJ_CONFIG_ECHO_MAX, v);
    }
    return CJ_ERR_INVALID;
}

static bool is_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

/* Rejects a value and the file that contains it both set. */
static enum cj_status
check_value_file_pairs(const struct cj_config_option *options, size_t count,
                       char *err, size_t err_size)
{
    for (size_t i = 0; i < count; i++) {
        const struct cj_config_option *o = &options[i];
        if (o->file_of != NULL && is_set(o->name) && is_set(o->file_of)) {
            set_error(err, err_size,
                      "%s and %s are both set; set only one of them",
                      o->file_of, o->name);
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

enum cj_status cj_config_parse(const struct cj_config_option *options,
                               size_t count, enum cj_profile profile, void *out,
                               char *err, size_t err_size)
{
    enum cj_status pair_status =
        check_value_file_pairs(options, count, err, err_size);
    if (pair_status != CJ_OK) {
        return pair_status;
    }
    for (size_t i = 0; i < count; i++) {
        const struct cj_config_option *o = &options[i];
        const char *v = getenv(o->name);
        if (v == NULL) {
            if (o->default_value != NULL) {
                v = o->default_value;
            } else if (o->dev_default != NULL) {
                if (profile != CJ_PROFILE_DEV) {
                    set_error(err, err_size,
                              "%s: must be set in the %s profile (its "
                              "development default is allowed only in dev)",
                              o->name, cj_profile_name(profile));
                    return CJ_ERR_INVALID;
                }
                v = o->dev_default;
            } else if (o->required) {
                char form[128];
                describe_form(o, form, sizeof(form));
                set_error(err, err_size, "%s: missing, expected %s", o->name,
                          form);
                return CJ_ERR_INVALID;
            } else {
                continue;
            }
        }
        enum cj_status st = parse_one(o, v, out, err, err_size);
        if (st != CJ_OK) {
            return st;
        }
    }
    return CJ_OK;
}

enum cj_status cj_config_load(const struct cj_config_option *options,
                              size_t count, enum cj_profile *profile, void *out,
                              char *err, size_t err_size)
{
    enum cj_status st = cj_config_load_env_file(err, err_size);
    if (st != CJ_OK) {
        return st;
    }
    st = cj_config_profile(profile, err, err_size);
    if (st != CJ_OK) {
        return st;
    }
    return cj_config_parse(options, count, *profile, out, err, err_size);
}

/*
 * Variables that one service reads under another service's prefix: the
 * gateway's backend addresses. A shared environment (the Kubernetes
 * ConfigMap, var/stack.env) gives them to every service.
 */
static const char *const SHARED_VARIABLES[] = {
    "CERROJO_KMS_ADDR",
    "CERROJO_SESSION_ADDR",
    "CERROJO_AUTH_ADDR",
};

/*
 * The port inputs of scripts/stack.sh, which no program reads. An operator
 * who exported them to move the local stack keeps them in the shell that
 * then runs the admin commands, and a warning there would point at nothing
 * to fix.
 */
static const char *const STACK_SCRIPT_VARIABLES[] = {
    "CERROJO_KMS_PORT",
    "CERROJO_SESSION_PORT",
    "CERROJO_AUTH_PORT",
};

/* Returns true when the first name_len bytes of `entry` are `name`. */
static bool name_equals(const char *entry, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncmp(entry, name, name_len) == 0;
}

static bool is_known_variable(const char *entry, size_t name_len,
                              const struct cj_config_option *options,
                              size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (name_equals(entry, name_len, options[i].name)) {
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(SHARED_VARIABLES) / sizeof(*SHARED_VARIABLES);
         i++) {
        if (name_equals(entry, name_len, SHARED_VARIABLES[i])) {
            return true;
        }
    }
    for (size_t i = 0;
         i < sizeof(STACK_SCRIPT_VARIABLES) / sizeof(*STACK_SCRIPT_VARIABLES);
         i++) {
        if (name_equals(entry, name_len, STACK_SCRIPT_VARIABLES[i])) {
            return true;
        }
    }
    return false;
}

size_t cj_config_warn_unknown(const char *prefix,
                              const struct cj_config_option *options,
                              size_t count)
{
    size_t prefix_len = strlen(prefix);
    size_t warnings = 0;

    for (char **env = environ; env != NULL && *env != NULL; env++) {
        const char *entry = *env;
        if (strncmp(entry, prefix, prefix_len) != 0) {
            continue;
        }
        const char *eq = strchr(entry, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
        if (is_known_variable(entry, name_len, options, count)) {
            continue;
        }
        /* Copy the name only: the value may be a secret. */
        char name[CJ_CONFIG_NAME_LOG_MAX + 1];
        size_t n = name_len < CJ_CONFIG_NAME_LOG_MAX ? name_len
                                                     : CJ_CONFIG_NAME_LOG_MAX;
        memcpy(name, entry, n);
        name[n] = '\0';
        cj_log(CJ_LOG_WARN, "config.unknown_variable", NULL,
               CJ_F_STR("variable", name));
        warnings++;
    }
    return warnings;
}

void cj_config_free(const struct cj_config_option *options, size_t count,
                    void *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const struct cj_config_option *o = &options[i];
        if (o->type == CJ_CONFIG_STRING || o->type == CJ_CONFIG_PATH) {
            char **slot = (char **)(void *)((char *)cfg + o->offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

/* ---- output ------------------------------------------------------------- */

static void print_value(const struct cj_config_option *o, const void *cfg,
                        FILE *out)
{
    const char *field = (const char *)cfg + o->offset;
    switch (o->type) {
    case CJ_CONFIG_STRING:
    case CJ_CONFIG_PATH: {
        const char *s = *(const char *const *)(const void *)field;
        if (s == NULL) {
            break;
        }
        if (o->secret) {
            fputs("<redacted>", out);
        } else {
            fputs(s, out);
        }
        break;
    }
    case CJ_CONFIG_BOOL:
        if (o->secret) {
            fputs("<redacted>", out);
        } else {
            fputs(*(const bool *)(const void *)field ? "true" : "false", out);
        }
        break;
    case CJ_CONFIG_INT:
    case CJ_CONFIG_DURATION:
    case CJ_CONFIG_BYTES:
        if (o->secret) {
            fputs("<redacted>", out);
        } else {
            fprintf(out, "%lld", *(const long long *)(const void *)field);
        }
        break;
    }
}

void cj_config_dump(const struct cj_config_option *options, size_t count,
                    enum cj_profile profile, const void *cfg, FILE *out)
{
    fprintf(out, "%s=%s\n", CJ_CONFIG_PROFILE_VAR, cj_profile_name(profile));
    for (size_t i = 0; i < count; i++) {
        fprintf(out, "%s=", options[i].name);
        print_value(&options[i], cfg, out);
        fputc('\n', out);
    }
}

void cj_config_print_help(const struct cj_config_option *options, size_t count,
                          FILE *out)
{
    for (size_t i = 0; i < count; i++) {
        const struct cj_config_option *o = &options[i];
        char form[128];
        describe_form(o, form, sizeof(form));
        fprintf(out, "%s\n    %s; %s", o->name, o->help ? o->help : "", form);
        if (o->default_value != NULL) {
            fprintf(out, "; default '%s'",
                    o->secret ? "<redacted>" : o->default_value);
        } else if (o->dev_default != NULL) {
            fprintf(out, "; required outside dev");
        } else if (o->required) {
            fprintf(out, "; required");
        }
        fputc('\n', out);
    }
}

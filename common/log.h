/*
 * One JSON object per line on stderr: ts, level, service, event, request_id,
 * then typed fields. Callers pass ids and counts, never a secret: no
 * password, token, session id, key, header value or body.
 */
#ifndef CJ_LOG_H
#define CJ_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum cj_log_level {
    CJ_LOG_DEBUG = 0,
    CJ_LOG_INFO,
    CJ_LOG_WARN,
    CJ_LOG_ERROR,
};

enum cj_log_field_type {
    CJ_LOG_FIELD_END = 0,
    CJ_LOG_FIELD_STR,
    CJ_LOG_FIELD_INT,
    CJ_LOG_FIELD_BOOL,
    CJ_LOG_FIELD_DOUBLE,
};

/* One typed field; build them with the CJ_F_* macros. */
struct cj_log_field {
    const char *key;
    enum cj_log_field_type type;
    const char *str;
    long long num;
    double real;
};

#define CJ_F_STR(k, v)                                                         \
    ((struct cj_log_field){.key = (k), .type = CJ_LOG_FIELD_STR, .str = (v)})
#define CJ_F_INT(k, v)                                                         \
    ((struct cj_log_field){                                                    \
        .key = (k), .type = CJ_LOG_FIELD_INT, .num = (long long)(v)})
#define CJ_F_BOOL(k, v)                                                        \
    ((struct cj_log_field){                                                    \
        .key = (k), .type = CJ_LOG_FIELD_BOOL, .num = (v) ? 1 : 0})
#define CJ_F_DOUBLE(k, v)                                                      \
    ((struct cj_log_field){                                                    \
        .key = (k), .type = CJ_LOG_FIELD_DOUBLE, .real = (double)(v)})
#define CJ_F_END ((struct cj_log_field){.type = CJ_LOG_FIELD_END})

/*
 * Logs `event` (a stable dotted name such as "kms.key_rotated") with the
 * given fields; request_id may be NULL. The level is checked before any
 * field is formatted.
 */
#ifdef CJ_LINT_CPPCHECK
/* cppcheck 2.10 cannot expand __VA_OPT__ and would skip the whole file
 * (scripts/lint.sh defines CJ_LINT_CPPCHECK); it sees the call only. */
#define cj_log(level, event, request_id, ...)                                  \
    cj_log_emit((level), (event), (request_id), NULL)
#else
#define cj_log(level, event, request_id, ...)                                  \
    do {                                                                       \
        if (cj_log_enabled(level)) {                                           \
            const struct cj_log_field cj_log_fields_[] = {                     \
                __VA_ARGS__ __VA_OPT__(, ) CJ_F_END};                          \
            cj_log_emit((level), (event), (request_id), cj_log_fields_);       \
        }                                                                      \
    } while (0)
#endif

/* Sets the service name and minimum level; call once at start. */
void cj_log_init(const char *service, enum cj_log_level min_level);

/* Parses "debug", "info", "warn" or "error"; returns false otherwise. */
bool cj_log_level_parse(const char *text, enum cj_log_level *out);

bool cj_log_enabled(enum cj_log_level level);

/* Writes one line; fields ends with CJ_F_END. Use the cj_log macro. */
void cj_log_emit(enum cj_log_level level, const char *event,
                 const char *request_id, const struct cj_log_field *fields);

/*
 * Formats one line into buf (for tests and for the emitter). Returns the
 * length written, without the NUL, or the length needed when it does not
 * fit.
 */
size_t cj_log_format(char *buf, size_t size, enum cj_log_level level,
                     const char *event, const char *request_id,
                     const struct cj_log_field *fields);

/* Redirects output to fd (default 2, stderr); for tests. */
void cj_log_set_fd(int fd);

#endif

/*
 * One JSON object per line on stderr: ts, level, service, event, request_id,
 * then typed fields. Callers pass ids and counts, never a secret: no
 * password, token, session id, key, header value or body.
 */
#ifndef CJ_LOG_H
#define CJ_LOG_H

#include <pthread.h>
#include <stdatomic.h>
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

/* Minimum time between two lines of one rate-limited event, in ms. */
#define CJ_LOG_REPEAT_INTERVAL_MS 10000

/*
 * A limiter for one call site that would otherwise log the same failure
 * on every request during an outage. The first failure of a streak is
 * logged, then at most one line per interval, each with the number of
 * repeats left out since the previous line. The end of the streak is
 * logged once with the number of failures. Declare one per call site as
 * `static struct cj_log_limit name = CJ_LOG_LIMIT_INIT;`. Thread-safe.
 */
struct cj_log_limit {
    pthread_mutex_t mutex;
    atomic_bool failing;      /* a failure was recorded since the last clear */
    long long last_logged_ms; /* monotonic time of the last line logged */
    long long suppressed;     /* repeats not logged since that line */
    long long failures;       /* failures since the streak began */
};

#define CJ_LOG_LIMIT_INIT                                                      \
    {                                                                          \
        .mutex = PTHREAD_MUTEX_INITIALIZER                                     \
    }

/*
 * Records one failure at now_ms (monotonic). Returns true when the caller
 * should log it: the first failure of a streak, or the first one at least
 * interval_ms after the previous logged line. *suppressed then receives
 * the number of repeats that were not logged in between.
 */
bool cj_log_limit_hit(struct cj_log_limit *limit, long long now_ms,
                      long long interval_ms, long long *suppressed);

/*
 * Ends a streak after a success. Returns true once per streak, with
 * *failures set to its number of failures, so the caller logs the
 * recovery. Without an open streak it costs one atomic load.
 */
bool cj_log_limit_clear(struct cj_log_limit *limit, long long *failures);

/* Returns CLOCK_MONOTONIC in milliseconds. */
long long cj_log_monotonic_ms(void);

/*
 * Logs like cj_log, limited by limit (a struct cj_log_limit *), and adds
 * the field "suppressed_repeats". It takes at least one field.
 */
#define cj_log_limited(limit, level, event, request_id, ...)                   \
    do {                                                                       \
        long long cj_log_suppressed_ = 0;                                      \
        if (cj_log_limit_hit((limit), cj_log_monotonic_ms(),                   \
                             CJ_LOG_REPEAT_INTERVAL_MS,                        \
                             &cj_log_suppressed_)) {                           \
            cj_log((level), (event), (request_id), __VA_ARGS__,                \
                   CJ_F_INT("suppressed_repeats", cj_log_suppressed_));        \
        }                                                                      \
    } while (0)

/*
 * Ends the streak of limit after a success and, when one was open, logs
 * event at CJ_LOG_INFO with the field "failures".
 */
#define cj_log_recovered(limit, event, request_id)                             \
    do {                                                                       \
        long long cj_log_failures_ = 0;                                        \
        if (cj_log_limit_clear((limit), &cj_log_failures_)) {                  \
            cj_log(CJ_LOG_INFO, (event), (request_id),                         \
                   CJ_F_INT("failures", cj_log_failures_));                    \
        }                                                                      \
    } while (0)

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

/* JSON-lines logging: formatting, escaping and the single write per line. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"

/* A line longer than this is cut and marked truncated. */
#define CJ_LOG_LINE_MAX 4096

static const char *log_service = "cerrojo";
static atomic_int log_min_level = CJ_LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cj_log_init(const char *service, enum cj_log_level min_level)
{
    log_service = service;
    atomic_store(&log_min_level, (int)min_level);
}

bool cj_log_level_parse(const char *text, enum cj_log_level *out)
{
    for (int i = CJ_LOG_DEBUG; i <= CJ_LOG_ERROR; i++) {
        if (text != NULL && strcmp(text, level_names[i]) == 0) {
            *out = (enum cj_log_level)i;
            return true;
        }
    }
    return false;
}

bool cj_log_enabled(enum cj_log_level level)
{
    return (int)level >= atomic_load(&log_min_level);
}

bool cj_log_limit_hit(struct cj_log_limit *limit, long long now_ms,
                      long long interval_ms, long long *suppressed)
{
    bool log_now = false;

    *suppressed = 0;
    pthread_mutex_lock(&limit->mutex);
    if (!atomic_load(&limit->failing)) {
        atomic_store(&limit->failing, true);
        limit->failures = 1;
        limit->suppressed = 0;
        limit->last_logged_ms = now_ms;
        log_now = true;
    } else {
        limit->failures++;
        if (now_ms - limit->last_logged_ms >= interval_ms) {
            *suppressed = limit->suppressed;
            limit->suppressed = 0;
            limit->last_logged_ms = now_ms;
            log_now = true;
        } else {
            limit->suppressed++;
        }
    }
    pthread_mutex_unlock(&limit->mutex);
    return log_now;
}

bool cj_log_limit_clear(struct cj_log_limit *limit, long long *failures)
{
    bool was_failing = false;

    *failures = 0;
    /* The common case, a success with no open streak, takes no lock. */
    if (!atomic_load(&limit->failing))
        return false;
    pthread_mutex_lock(&limit->mutex);
    if (atomic_load(&limit->failing)) {
        atomic_store(&limit->failing, false);
        *failures = limit->failures;
        limit->failures = 0;
        limit->suppressed = 0;
        was_failing = true;
    }
    pthread_mutex_unlock(&limit->mutex);
    return was_failing;
}

long long cj_log_monotonic_ms(void)
{
    return cj_monotonic_ms();
}

void cj_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* Appends with bounds; pos keeps counting past the end so the caller
 * learns the length needed. */
struct line {
    char *buf;
    size_t size;
    size_t pos;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
    if (l->pos < l->size) {
        size_t room = l->size - l->pos;
        memcpy(l->buf + l->pos, s, n < room ? n : room);
    }
    l->pos += n;
}

static void put_fmt(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put_fmt(struct line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put_raw(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Writes s as a JSON string, escaping quotes, backslashes and controls. */
static void put_json_string(struct line *l, const char *s)
{
    put_raw(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            put_raw(l, "\\\"", 2);
            break;
        case '\\':
            put_raw(l, "\\\\", 2);
            break;
        case '\n':
            put_raw(l, "\\n", 2);
            break;
        case '\r':
            put_raw(l, "\\r", 2);
            break;
        case '\t':
            put_raw(l, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                put_fmt(l, "\\u%04x", *p);
            else
                put_raw(l, (const char *)p, 1);
        }
    }
    put_raw(l, "\"", 1);
}

static void put_field(struct line *l, const struct cj_log_field *f)
{
    put_raw(l, ",", 1);
    put_json_string(l, f->key);
    put_raw(l, ":", 1);
    switch (f->type) {
    case CJ_LOG_FIELD_STR:
        if (f->str == NULL)
            put_raw(l, "null", 4);
        else
            put_json_string(l, f->str);
        break;
    case CJ_LOG_FIELD_INT:
        put_fmt(l, "%lld", f->num);
        break;
    case CJ_LOG_FIELD_BOOL:
        put_raw(l, f->num ? "true" : "false", f->num ? 4 : 5);
        break;
    case CJ_LOG_FIELD_DOUBLE:
        put_fmt(l, "%.6g", f->real);
        break;
    case CJ_LOG_FIELD_END:
        break;
    }
}

size_t cj_log_format(char *buf, size_t size, enum cj_log_level level,
                     const char *event, const char *request_id,
                     const struct cj_log_field *fields)
{
    struct line l = {buf, size, 0};
    struct timespec now;
    struct tm tm;
    char ts[40];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    put_raw(&l, "{\"ts\":\"", 7);
    put_raw(&l, ts, strlen(ts));
    put_fmt(&l, ".%03ldZ\",\"level\":", now.tv_nsec / 1000000);
    put_json_string(&l, level_names[level <= CJ_LOG_ERROR ? level : 0]);
    put_raw(&l, ",\"service\":", 11);
    put_json_string(&l, log_service);
    put_raw(&l, ",\"event\":", 9);
    put_json_string(&l, event);
    if (request_id != NULL) {
        put_raw(&l, ",\"request_id\":", 14);
        put_json_string(&l, request_id);
    }
    for (const struct cj_log_field *f = fields;
         f != NULL && f->type != CJ_LOG_FIELD_END; f++)
        put_field(&l, f);
    put_raw(&l, "}\n", 2);
    if (size > 0)
        buf[l.pos < size ? l.pos : size - 1] = '\0';
    return l.pos;
}

void cj_log_emit(enum cj_log_level level, const char *event,
                 const char *request_id, const struct cj_log_field *fields)
{
    char buf[CJ_LOG_LINE_MAX];
    size_t n =
        cj_log_format(buf, sizeof(buf), level, event, request_id, fields);

    if (n >= sizeof(buf)) {
        /* Keep the line valid JSON: log that it was cut, with the event. */
        n = cj_log_format(buf, sizeof(buf), level, event, request_id,
                          (const struct cj_log_field[]){
                              CJ_F_BOOL("truncated", true), CJ_F_END});
        if (n >= sizeof(buf))
            return;
    }
    /* One write per line, so lines from several threads never interleave. */
    ssize_t w = write(atomic_load(&log_fd), buf, n);
    (void)w;
}

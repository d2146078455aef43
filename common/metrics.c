/*
 * Prometheus registry and its text format; metrics_http.c serves it. Values
 * are C11 atomics, so updates take no lock; a family's rwlock guards only
 * its series list, and the registry mutex only the family list.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value written for the label values of the overflow series. */
#define CJ_METRICS_OVERFLOW_VALUE "other"
/* Initial capacity of the rendering buffer, in bytes; it grows by doubling. */
#define CJ_METRICS_RENDER_INITIAL 4096

enum metric_kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
};

struct cj_series {
    char *values[CJ_METRICS_MAX_LABELS];
    /* Counter: the count. Gauge: the bits of a double. */
    _Atomic uint64_t value;
    /* Histogram: per-bucket (not cumulative) counts, the last one +Inf. */
    _Atomic uint64_t buckets[CJ_METRICS_MAX_BUCKETS + 1];
    _Atomic uint64_t sum_bits;
    const struct cj_metric *metric;
};

struct cj_metric {
    char *name;
    char *help;
    enum metric_kind kind;
    char *label_names[CJ_METRICS_MAX_LABELS];
    size_t label_count;
    double bounds[CJ_METRICS_MAX_BUCKETS];
    size_t bound_count;
    pthread_rwlock_t lock;
    struct cj_series *series[CJ_METRICS_MAX_SERIES];
    size_t series_count;
    struct cj_series *overflow;
    struct cj_metric *next;
};

struct cj_metrics {
    pthread_mutex_t mutex;
    struct cj_metric *head;
    struct cj_metric *tail;
};

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *slot, double delta)
{
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
    uint64_t next;
    do {
        next = double_bits(bits_double(old) + delta);
    } while (!atomic_compare_exchange_weak_explicit(
        slot, &old, next, memory_order_relaxed, memory_order_relaxed));
}

/* ---- registry ----------------------------------------------------------- */

struct cj_metrics *cj_metrics_new(void)
{
    struct cj_metrics *reg = calloc(1, sizeof(*reg));
    if (reg != NULL) {
        pthread_mutex_init(&reg->mutex, NULL);
    }
    return reg;
}

static void series_free(struct cj_series *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < CJ_METRICS_MAX_LABELS; i++) {
        free(s->values[i]);
    }
    free(s);
}

static void metric_free(struct cj_metric *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->series_count; i++) {
        series_free(m->series[i]);
    }
    series_free(m->overflow);
    for (size_t i = 0; i < m->label_count; i++) {
        free(m->label_names[i]);
    }
    pthread_rwlock_destroy(&m->lock);
    free(m->name);
    free(m->help);
    free(m);
}

void cj_metrics_free(struct cj_metrics *reg)
{
    if (reg == NULL) {
        return;
    }
    struct cj_metric *m = reg->head;
    while (m != NULL) {
        struct cj_metric *next = m->next;
        metric_free(m);
        m = next;
    }
    pthread_mutex_destroy(&reg->mutex);
    free(reg);
}

static bool valid_name(const char *s, bool allow_colon)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    for (const char *c = s; *c != '\0'; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  *c == '_' || (allow_colon && *c == ':') ||
                  (c != s && *c >= '0' && *c <= '9');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static struct cj_series *series_new(const struct cj_metric *m,
                                    const char *const *values)
{
    struct cj_series *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->metric = m;
    for (size_t i = 0; i < m->label_count; i++) {
        s->values[i] = strdup(values[i]);
        if (s->values[i] == NULL) {
            series_free(s);
            return NULL;
        }
    }
    return s;
}

static struct cj_metric *
register_metric(struct cj_metrics *reg, const char *name, const char *help,
                enum metric_kind kind, const char *const *label_names,
                size_t label_count, const double *bounds, size_t bound_count)
{
    if (reg == NULL || !valid_name(name, true) ||
        label_count > CJ_METRICS_MAX_LABELS ||
        (label_count > 0 && label_names == NULL) ||
        bound_count > CJ_METRICS_MAX_BUCKETS) {
        return NULL;
    }
    for (size_t i = 0; i < label_count; i++) {
        /* "le" is reserved for histogram buckets. */
        if (!valid_name(label_names[i], false) ||
            strncmp(label_names[i], "__", 2) == 0 ||
            strcmp(label_names[i], "le") == 0) {
            return NULL;
        }
    }
    for (size_t i = 0; i < bound_count; i++) {
        if (isnan(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
            return NULL;
        }
    }

    struct cj_metric *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    pthread_rwlock_init(&m->lock, NULL);
    m->kind = kind;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->label_count = label_count;
    bool ok = m->name != NULL && m->help != NULL;
    for (size_t i = 0; i < label_count && ok; i++) {
        m->label_names[i] = strdup(label_names[i]);
        ok = m->label_names[i] != NULL;
    }
    if (bound_count > 0) {
        memcpy(m->bounds, bounds, bound_count * sizeof(*bounds));
    }
    m->bound_count = bound_count;
    if (ok && label_count == 0) {
        /* The one series exists from the start, so it renders as 0. */
        m->series[0] = series_new(m, NULL);
        m->series_count = 1;
        ok = m->series[0] != NULL;
    }
    if (!ok) {
        metric_free(m);
        return NULL;
    }

    pthread_mutex_lock(&reg->mutex);
    for (struct cj_metric *o = reg->head; o != NULL; o = o->next) {
        if (strcmp(o->name, name) == 0) {
            ok = false;
            break;
        }
    }
    if (ok) {
        if (reg->tail != NULL) {
            reg->tail->next = m;
        } else {
            reg->head = m;
        }
        reg->tail = m;
    }
    pthread_mutex_unlock(&reg->mutex);
    if (!ok) {
        metric_free(m);
        return NULL;
    }
    return m;
}

struct cj_metric *cj_metrics_counter(struct cj_metrics *reg, const char *name,
                                     const char *help,
                                     const char *const *label_names,
                                     size_t label_count)
{
    return register_metric(reg, name, help, KIND_COUNTER, label_names,
                           label_count, NULL, 0);
}

struct cj_metric *cj_metrics_gauge(struct cj_metrics *reg, const char *name,
                                   const char *help,
                                   const char *const *label_names,
                                   size_t label_count)
{
    return register_metric(reg, name, help, KIND_GAUGE, label_names,
                           label_count, NULL, 0);
}

struct cj_metric *cj_metrics_histogram(struct cj_metrics *reg, const char *name,
                                       const char *help,
                                       const char *const *label_names,
                                       size_t label_count, const double *bounds,
                                       size_t bound_count)
{
    if (bound_count == 0 || bounds == NULL) {
        return NULL;
    }
    return register_metric(reg, name, help, KIND_HISTOGRAM, label_names,
                           label_count, bounds, bound_count);
}

static struct cj_series *find_series(struct cj_metric *m,
                                     const char *const *values)
{
    for (size_t i = 0; i < m->series_count; i++) {
        struct cj_series *s = m->series[i];
        bool same = true;
        for (size_t j = 0; j < m->label_count && same; j++) {
            same = strcmp(s->values[j], values[j]) == 0;
        }
        if (same) {
            return s;
        }
    }
    return NULL;
}

struct cj_series *cj_metric_series(struct cj_metric *metric,
                                   const char *const *label_values)
{
    if (metric == NULL) {
        return NULL;
    }
    if (metric->label_count == 0) {
        return metric->series[0];
    }
    if (label_values == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < metric->label_count; i++) {
        if (label_values[i] == NULL) {
            return NULL;
        }
    }

    pthread_rwlock_rdlock(&metric->lock);
    struct cj_series *s = find_series(metric, label_values);
    pthread_rwlock_unlock(&metric->lock);
    if (s != NULL) {
        return s;
    }

    pthread_rwlock_wrlock(&metric->lock);
    s = find_series(metric, label_values);
    if (s == NULL && metric->series_count < CJ_METRICS_MAX_SERIES) {
        s = series_new(metric, label_values);
        if (s != NULL) {
            metric->series[metric->series_count++] = s;
        }
    } else if (s == NULL) {
        if (metric->overflow == NULL) {
            const char *other[CJ_METRICS_MAX_LABELS];
            for (size_t i = 0; i < metric->label_count; i++) {
                other[i] = CJ_METRICS_OVERFLOW_VALUE;
            }
            metric->overflow = series_new(metric, other);
        }
        s = metric->overflow;
    }
    pthread_rwlock_unlock(&metric->lock);
    return s;
}

/* ---- updates ------------------------------------------------------------ */

void cj_counter_add(struct cj_series *series, uint64_t n)
{
    if (series == NULL || series->metric->kind != KIND_COUNTER) {
        return;
    }
    atomic_fetch_add_explicit(&series->value, n, memory_order_relaxed);
}

void cj_counter_inc(struct cj_metric *metric)
{
    cj_counter_add(cj_metric_series(metric, NULL), 1);
}

void cj_gauge_set(struct cj_series *series, double value)
{
    if (series == NULL || series->metric->kind != KIND_GAUGE) {
        return;
    }
    atomic_store_explicit(&series->value, double_bits(value),
                          memory_order_relaxed);
}

void cj_gauge_add(struct cj_series *series, double delta)
{
    if (series == NULL || series->metric->kind != KIND_GAUGE) {
        return;
    }
    atomic_add_double(&series->value, delta);
}

void cj_histogram_observe(struct cj_series *series, double value)
{
    if (series == NULL || series->metric->kind != KIND_HISTOGRAM ||
        isnan(value)) {
        return;
    }
    const struct cj_metric *m = series->metric;
    size_t bucket = m->bound_count; /* +Inf */
    for (size_t i = 0; i < m->bound_count; i++) {
        if (value <= m->bounds[i]) {
            bucket = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&series->buckets[bucket], 1,
                              memory_order_relaxed);
    atomic_add_double(&series->sum_bits, value);
}

/* ---- exposition --------------------------------------------------------- */

struct text {
    char *buf;
    size_t len;
    size_t cap;
    bool failed;
};

static void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

/* Escapes \ and newline (HELP) or also " (label values). */
static void text_escaped(struct text *t, const char *s, bool quote)
{
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '\\') {
            text_printf(t, "\\\\");
        } else if (*c == '\n') {
            text_printf(t, "\\n");
        } else if (quote && *c == '"') {
            text_printf(t, "\\\"");
        } else {
            text_printf(t, "%c", *c);
        }
    }
}

/* Writes a float the way Prometheus parses it: shortest round-trip form. */
static void format_double(double d, char *buf, size_t size)
{
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(d)) {
        snprintf(buf, size, d > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, size, "%.15g", d);
        if (strtod(buf, NULL) != d) {
            snprintf(buf, size, "%.17g", d);
        }
    }
}

/* Writes {a="x",b="y"[,le="..."]} or nothing when there are no labels. */
static void text_labels(struct text *t, const struct cj_metric *m,
                        const struct cj_series *s, const char *le)
{
    if (m->label_count == 0 && le == NULL) {
        return;
    }
    text_printf(t, "{");
    for (size_t i = 0; i < m->label_count; i++) {
        text_printf(t, "%s%s=\"", i > 0 ? "," : "", m->label_names[i]);
        text_escaped(t, s->values[i], true);
        text_printf(t, "\"");
    }
    if (le != NULL) {
        text_printf(t, "%sle=\"%s\"", m->label_count > 0 ? "," : "", le);
    }
    text_printf(t, "}");
}

static void render_series(struct text *t, const struct cj_metric *m,
                          struct cj_series *s)
{
    char num[64];
    if (m->kind == KIND_COUNTER) {
        text_printf(t, "%s", m->name);
        text_labels(t, m, s, NULL);
        text_printf(t, " %llu\n", (unsigned long long)atomic_load(&s->value));
        return;
    }
    if (m->kind == KIND_GAUGE) {
        format_double(bits_double(atomic_load(&s->value)), num, sizeof(num));
        text_printf(t, "%s", m->name);
        text_labels(t, m, s, NULL);
        text_printf(t, " %s\n", num);
        return;
    }
    /* Buckets are cumulative in the exposition format, and _count is the
     * +Inf bucket, so the two always agree. _sum is read separately and may
     * lag by an observation that races the scrape. */
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= m->bound_count; i++) {
        cumulative += atomic_load(&s->buckets[i]);
        if (i < m->bound_count) {
            format_double(m->bounds[i], num, sizeof(num));
        } else {
            snprintf(num, sizeof(num), "+Inf");
        }
        text_printf(t, "%s_bucket", m->name);
        text_labels(t, m, s, num);
        text_printf(t, " %llu\n", (unsigned long long)cumulative);
    }
    format_double(bits_double(atomic_load(&s->sum_bits)), num, sizeof(num));
    text_printf(t, "%s_sum", m->name);
    text_labels(t, m, s, NULL);
    text_printf(t, " %s\n", num);
    text_printf(t, "%s_count", m->name);
    text_labels(t, m, s, NULL);
    text_printf(t, " %llu\n", (unsigned long long)cumulative);
}

char *cj_metrics_render(struct cj_metrics *reg, size_t *len)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    struct text t = {.buf = malloc(CJ_METRICS_RENDER_INITIAL),
                     .cap = CJ_METRICS_RENDER_INITIAL};
    if (t.buf == NULL) {
        return NULL;
    }
    t.buf[0] = '\0';
    pthread_mutex_lock(&reg->mutex);
    for (struct cj_metric *m = reg->head; m != NULL; m = m->next) {
        text_printf(&t, "# HELP %s ", m->name);
        text_escaped(&t, m->help, false);
        text_printf(&t, "\n# TYPE %s %s\n", m->name, type_names[m->kind]);
        pthread_rwlock_rdlock(&m->lock);
        for (size_t i = 0; i < m->series_count; i++) {
            render_series(&t, m, m->series[i]);
        }
        if (m->overflow != NULL) {
            render_series(&t, m, m->overflow);
        }
        pthread_rwlock_unlock(&m->lock);
    }
    pthread_mutex_unlock(&reg->mutex);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    if (len != NULL) {
        *len = t.len;
    }
    return t.buf;
}

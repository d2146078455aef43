/*
 * cerrojo-bench: a closed-loop load generator. Each connection is a thread
 * with its own client and keep-alive connection that sends its next request
 * as soon as the previous response arrives, for a bounded time and request
 * count. Every latency goes into a log-bucket histogram; the result is one
 * "RESULT key=value ..." line on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "bench.h"
#include "bench_loopback.h"

#define BENCH_SECONDS_DEFAULT     10.0
#define BENCH_CONNECTIONS_DEFAULT 16
#define NS_PER_S                  1000000000ull
#define NS_PER_MS                 1000000ull

struct bench_run {
    const struct bench_config *config;
    struct bench_worker *workers;
    pthread_barrier_t prepared; /* every worker prepared, and main */
    pthread_barrier_t started;  /* main took the start time */
    uint64_t start_ns;
    uint64_t deadline_ns;
    atomic_uint_fast64_t issued; /* requests claimed against max_requests */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Claims one request of the budget; false once it is spent. */
static bool claim_request(struct bench_run *run)
{
    uint64_t max = run->config->max_requests;

    if (max == 0)
        return true;
    return atomic_fetch_add(&run->issued, 1) < max;
}

struct worker_arg {
    struct bench_run *run;
    struct bench_worker *worker;
};

static void *worker_main(void *p)
{
    struct worker_arg *arg = p;
    struct bench_run *run = arg->run;
    struct bench_worker *w = arg->worker;
    const struct bench_flow *flow = run->config->flow;

    w->prepared = flow->prepare(w);
    pthread_barrier_wait(&run->prepared);
    pthread_barrier_wait(&run->started);
    while (w->prepared) {
        uint64_t t0 = now_ns();
        uint64_t t1;
        enum bench_error e;
        size_t slot;

        if (t0 >= run->deadline_ns || !claim_request(run))
            break;
        e = flow->step(w);
        t1 = now_ns();
        if (e != BENCH_OK) {
            w->errors[e]++;
            continue;
        }
        bench_hist_record(&w->hist, t1 - t0);
        slot =
            (size_t)((t1 - run->start_ns) / (BENCH_SERIES_SLOT_MS * NS_PER_MS));
        if (slot < BENCH_SERIES_SLOTS)
            w->series[slot]++;
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cerrojo-bench FLOW [options]\n"
            "  -c, --connections N   concurrent connections, one thread each "
            "(default %d)\n"
            "  -d, --seconds S       timed duration in seconds (default %.0f, "
            "max %d)\n"
            "  -n, --requests N      stop after N requests in all (default: "
            "no bound but the duration)\n"
            "      --url URL         base URL, loopback only "
            "(http://127.0.0.1:PORT)\n"
            "      --path PATH       path of the http flow\n"
            "      --grpc HOST:PORT  auth's gRPC address, loopback only\n"
            "      --pg DSN          libpq connection string naming a loopback "
            "host\n"
            "      --state-dir DIR   folder for the clients' state files "
            "(default: a new one under /tmp)\n"
            "      --watch NAME=PID  report CPU time and memory of that "
            "process (repeatable)\n"
            "      --argon2-memory B Argon2id memory in bytes (default %u)\n"
            "      --argon2-passes N Argon2id passes (default %d)\n"
            "      --series FILE     write successful requests per %d ms slot\n"
            "      --percentiles FILE write the latency distribution (ms)\n"
            "      --label NAME      flow name printed in the result line\n"
            "      --pg-writes N     inserts per pg-write transaction "
            "(default 1: each commits alone)\n"
            "flows:\n",
            BENCH_CONNECTIONS_DEFAULT, BENCH_SECONDS_DEFAULT, BENCH_SECONDS_MAX,
            CJ_PASSWORD_MEMLIMIT_DEFAULT_BYTES, CJ_PASSWORD_OPSLIMIT_DEFAULT,
            BENCH_SERIES_SLOT_MS);
    for (const struct bench_flow *f = bench_flows; f->name != NULL; f++)
        fprintf(out, "  %-16s %s\n", f->name, f->help);
}

static bool parse_watch(struct bench_config *c, const char *text)
{
    const char *eq = strchr(text, '=');
    char *end = NULL;
    long pid;
    size_t len;

    if (eq == NULL || c->n_watches >= BENCH_WATCH_MAX)
        return false;
    len = (size_t)(eq - text);
    if (len == 0 || len >= BENCH_PROC_NAME_MAX)
        return false;
    errno = 0;
    pid = strtol(eq + 1, &end, 10);
    if (errno != 0 || *end != '\0' || pid <= 0)
        return false;
    memcpy(c->watches[c->n_watches].name, text, len);
    c->watches[c->n_watches].name[len] = '\0';
    c->watches[c->n_watches].pid = (pid_t)pid;
    c->n_watches++;
    return true;
}

static bool parse_unsigned(const char *text, unsigned long long max,
                           unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

/* Fills config from argv; prints the reason and returns false on bad use. */
static bool parse_args(int argc, char **argv, struct bench_config *c)
{
    static const struct option options[] = {
        {"connections", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"url", required_argument, NULL, 'u'},
        {"path", required_argument, NULL, 'p'},
        {"grpc", required_argument, NULL, 'g'},
        {"pg", required_argument, NULL, 'P'},
        {"state-dir", required_argument, NULL, 's'},
        {"watch", required_argument, NULL, 'w'},
        {"argon2-memory", required_argument, NULL, 'm'},
        {"argon2-passes", required_argument, NULL, 't'},
        {"series", required_argument, NULL, 'S'},
        {"percentiles", required_argument, NULL, 'Q'},
        {"label", required_argument, NULL, 'L'},
        {"pg-writes", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long long v;
    int opt;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        return false;
    }
    c->flow = bench_flow_find(argv[1]);
    if (c->flow == NULL) {
        fprintf(stderr, "cerrojo-bench: unknown flow '%s'; see --help\n",
                argv[1]);
        usage(stderr);
        return false;
    }
    optind = 2;
    while ((opt = getopt_long(argc, argv, "c:d:n:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (!parse_unsigned(optarg, BENCH_CONNECTIONS_MAX, &v) || v == 0) {
                fprintf(stderr,
                        "cerrojo-bench: --connections must be 1 to %d\n",
                        BENCH_CONNECTIONS_MAX);
                return false;
            }
            c->connections = (unsigned)v;
            break;
        case 'd': {
            char *end = NULL;
            c->seconds = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(c->seconds > 0) ||
                c->seconds > BENCH_SECONDS_MAX) {
                fprintf(stderr,
                        "cerrojo-bench: --seconds must be above 0 and at most "
                        "%d\n",
                        BENCH_SECONDS_MAX);
                return false;
            }
            break;
        }
        case 'n':
            if (!parse_unsigned(optarg, UINT64_MAX, &v)) {
                fprintf(stderr, "cerrojo-bench: --requests must be a count\n");
                return false;
            }
            c->max_requests = v;
            break;
        case 'u':
            c->url = optarg;
            break;
        case 'p':
            c->path = optarg;
            break;
        case 'g':
            c->grpc_target = optarg;
            break;
        case 'P':
            c->pg_dsn = optarg;
            break;
        case 's':
            c->state_dir = optarg;
            break;
        case 'w':
            if (!parse_watch(c, optarg)) {
                fprintf(stderr,
                        "cerrojo-bench: --watch takes NAME=PID (at most %d)\n",
                        BENCH_WATCH_MAX);
                return false;
            }
            break;
        case 'm':
            if (!parse_unsigned(optarg, CJ_PASSWORD_MEMLIMIT_MAX_BYTES, &v) ||
                v < CJ_PASSWORD_MEMLIMIT_MIN_BYTES) {
                fprintf(stderr,
                        "cerrojo-bench: --argon2-memory must be %u to "
                        "%u bytes\n",
                        CJ_PASSWORD_MEMLIMIT_MIN_BYTES,
                        CJ_PASSWORD_MEMLIMIT_MAX_BYTES);
                return false;
            }
            c->argon2_memory_bytes = (size_t)v;
            break;
        case 't':
            if (!parse_unsigned(optarg, CJ_PASSWORD_OPSLIMIT_MAX, &v) ||
                v < CJ_PASSWORD_OPSLIMIT_MIN) {
                fprintf(stderr,
                        "cerrojo-bench: --argon2-passes must be %d to "
                        "%d\n",
                        CJ_PASSWORD_OPSLIMIT_MIN, CJ_PASSWORD_OPSLIMIT_MAX);
                return false;
            }
            c->argon2_passes = (unsigned)v;
            break;
        case 'S':
            c->series_path = optarg;
            break;
        case 'Q':
            c->percentiles_path = optarg;
            break;
        case 'L':
            c->label = optarg;
            break;
        case 'W':
            if (!parse_unsigned(optarg, BENCH_PG_WRITES_MAX, &v) || v == 0) {
                fprintf(stderr, "cerrojo-bench: --pg-writes must be 1 to %d\n",
                        BENCH_PG_WRITES_MAX);
                return false;
            }
            c->pg_writes = (unsigned)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return false;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "cerrojo-bench: unexpected argument '%s'\n",
                argv[optind]);
        return false;
    }
    return true;
}

/* Rejects missing or non-loopback targets for the chosen flow. */
static bool check_targets(const struct bench_config *c)
{
    const struct bench_flow *f = c->flow;

    if (f->needs_url && (c->url == NULL || !bench_url_is_loopback(c->url))) {
        fprintf(stderr,
                "cerrojo-bench: flow %s needs --url "
                "http://127.0.0.1:PORT (loopback only)\n",
                f->name);
        return false;
    }
    if (f->needs_path && (c->path == NULL || c->path[0] != '/')) {
        fprintf(stderr, "cerrojo-bench: flow %s needs --path /...\n", f->name);
        return false;
    }
    if (f->needs_grpc && (c->grpc_target == NULL ||
                          !bench_grpc_target_is_loopback(c->grpc_target))) {
        fprintf(stderr,
                "cerrojo-bench: flow %s needs --grpc 127.0.0.1:PORT "
                "(loopback only)\n",
                f->name);
        return false;
    }
    if (f->needs_pg &&
        (c->pg_dsn == NULL || !bench_pg_dsn_is_loopback(c->pg_dsn))) {
        fprintf(stderr,
                "cerrojo-bench: flow %s needs --pg with "
                "host=127.0.0.1 (loopback or a Unix socket only)\n",
                f->name);
        return false;
    }
    return true;
}

static bool write_series(const char *path, const uint64_t *series, size_t slots)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return false;
    fprintf(f, "# seconds requests_per_second\n");
    for (size_t i = 0; i < slots; i++)
        fprintf(f, "%.3f %.1f\n",
                (double)(i + 1) * BENCH_SERIES_SLOT_MS / 1000.0,
                (double)series[i] * 1000.0 / BENCH_SERIES_SLOT_MS);
    return fclose(f) == 0;
}

/* Writes the latency at percentiles 0 to 99.999 (1/(1-p) spaced) for a
 * percentile-distribution plot. */
static bool write_percentiles(const char *path, const struct bench_hist *h)
{
    static const double points[] = {0,     10,    25,     50,    75,
                                    90,    95,    99,     99.5,  99.9,
                                    99.95, 99.99, 99.995, 99.999};
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return false;
    fprintf(f, "# percentile one_over_one_minus_p latency_ms\n");
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        fprintf(f, "%g %g %.3f\n", points[i], 1.0 / (1.0 - points[i] / 100.0),
                (double)bench_hist_percentile(h, points[i]) / NS_PER_MS);
    fprintf(f, "100 100000 %.3f\n", (double)h->max_ns / NS_PER_MS);
    return fclose(f) == 0;
}

static double cpu_seconds_self(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Removes the client state files of a folder this run created, and the
 * lock files the client library leaves beside them, then the folder. */
static void remove_state_dir(const char *dir, unsigned connections)
{
    char path[PATH_MAX];

    for (unsigned i = 0; i < connections; i++) {
        snprintf(path, sizeof(path), "%s/worker-%u.json", dir, i);
        unlink(path);
        snprintf(path, sizeof(path), "%s/worker-%u.json.lock", dir, i);
        unlink(path);
    }
    if (rmdir(dir) != 0)
        fprintf(stderr, "cerrojo-bench: cannot remove %s: %s\n", dir,
                strerror(errno));
}

/* The client state folder goes under $TMPDIR when it is set, else /tmp. */
static char *make_state_dir(char *buf, size_t size)
{
    const char *tmp_root = getenv("TMPDIR");

    if (tmp_root == NULL || tmp_root[0] == '\0')
        tmp_root = "/tmp";
    if ((size_t)snprintf(buf, size, "%s/cerrojo-bench.XXXXXX", tmp_root) >=
        size) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return mkdtemp(buf);
}

int main(int argc, char **argv)
{
    struct bench_config config = {
        .connections = BENCH_CONNECTIONS_DEFAULT,
        .seconds = BENCH_SECONDS_DEFAULT,
        .argon2_memory_bytes = CJ_PASSWORD_MEMLIMIT_DEFAULT_BYTES,
        .argon2_passes = CJ_PASSWORD_OPSLIMIT_DEFAULT,
        .pg_writes = 1,
    };
    struct bench_run run = {0};
    struct worker_arg *args = NULL;
    pthread_t *threads = NULL;
    struct bench_hist *total = NULL;
    uint64_t *series = NULL;
    struct bench_proc_sample before[BENCH_WATCH_MAX];
    struct bench_proc_sample after[BENCH_WATCH_MAX];
    uint64_t errors[BENCH_ERR_COUNT] = {0};
    uint64_t error_sum = 0;
    unsigned prepared = 0;
    unsigned started = 0;
    char state_dir[PATH_MAX];
    char setup_err[512] = "";
    const char *first_error = NULL;
    double elapsed_s, rps, cpu_self0, cpu_self;
    uint64_t end_ns;
    size_t slots;
    bool made_state_dir = false;
    int rc = 1;

    if (!parse_args(argc, argv, &config) || !check_targets(&config))
        return 2;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "cerrojo-bench: library initialization failed\n");
        return 1;
    }
    randombytes_buf(&config.run_id, sizeof(config.run_id));
    if (config.label == NULL)
        config.label = config.flow->name;
    if (config.state_dir == NULL) {
        config.state_dir = make_state_dir(state_dir, sizeof(state_dir));
        if (config.state_dir == NULL) {
            fprintf(stderr, "cerrojo-bench: cannot create a state folder: %s\n",
                    strerror(errno));
            return 1;
        }
        made_state_dir = true;
    }
    if (!bench_flows_setup(&config, setup_err, sizeof(setup_err))) {
        fprintf(stderr, "cerrojo-bench: %s\n", setup_err);
        goto out;
    }

    run.config = &config;
    run.workers = calloc(config.connections, sizeof(*run.workers));
    args = calloc(config.connections, sizeof(*args));
    threads = calloc(config.connections, sizeof(*threads));
    total = malloc(sizeof(*total));
    series = calloc(BENCH_SERIES_SLOTS, sizeof(*series));
    if (run.workers == NULL || args == NULL || threads == NULL ||
        total == NULL || series == NULL) {
        fprintf(stderr, "cerrojo-bench: out of memory\n");
        goto out;
    }
    pthread_barrier_init(&run.prepared, NULL, config.connections + 1);
    pthread_barrier_init(&run.started, NULL, config.connections + 1);
    atomic_init(&run.issued, 0);
    for (unsigned i = 0; i < config.connections; i++) {
        run.workers[i].index = i;
        run.workers[i].config = &config;
        bench_hist_init(&run.workers[i].hist);
        args[i].run = &run;
        args[i].worker = &run.workers[i];
        if (pthread_create(&threads[i], NULL, worker_main, &args[i]) != 0) {
            /* The barriers count every connection: without this thread the
             * run cannot start, so give up at once. */
            fprintf(stderr, "cerrojo-bench: cannot start thread %u\n", i);
            exit(1);
        }
        started++;
    }
    pthread_barrier_wait(&run.prepared);

    /* Every worker is prepared: sample the services, then start the clock. */
    for (size_t i = 0; i < config.n_watches; i++) {
        bench_proc_reset_peak(config.watches[i].pid);
        bench_proc_read(config.watches[i].pid, &before[i]);
    }
    cpu_self0 = cpu_seconds_self();
    run.start_ns = now_ns();
    run.deadline_ns =
        run.start_ns + (uint64_t)(config.seconds * (double)NS_PER_S);
    pthread_barrier_wait(&run.started);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    end_ns = now_ns();
    cpu_self = cpu_seconds_self() - cpu_self0;
    for (size_t i = 0; i < config.n_watches; i++)
        bench_proc_read(config.watches[i].pid, &after[i]);

    bench_hist_init(total);
    for (unsigned i = 0; i < config.connections; i++) {
        struct bench_worker *w = &run.workers[i];

        if (w->prepared)
            prepared++;
        bench_hist_merge(total, &w->hist);
        for (int e = 1; e < BENCH_ERR_COUNT; e++)
            errors[e] += w->errors[e];
        for (size_t s = 0; s < BENCH_SERIES_SLOTS; s++)
            series[s] += w->series[s];
        if (first_error == NULL && w->error_text[0] != '\0')
            first_error = w->error_text;
    }
    for (int e = 1; e < BENCH_ERR_COUNT; e++)
        error_sum += errors[e];
    elapsed_s = (double)(end_ns - run.start_ns) / (double)NS_PER_S;
    rps = elapsed_s > 0 ? (double)total->total / elapsed_s : 0;

    printf("RESULT flow=%s connections=%u prepared=%u seconds=%.3f "
           "requests=%llu rps=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
           "max_ms=%.3f mean_ms=%.3f errors=%llu",
           config.label, config.connections, prepared, elapsed_s,
           (unsigned long long)total->total, rps,
           (double)bench_hist_percentile(total, 50) / NS_PER_MS,
           (double)bench_hist_percentile(total, 99) / NS_PER_MS,
           (double)bench_hist_percentile(total, 99.9) / NS_PER_MS,
           (double)total->max_ns / NS_PER_MS,
           total->total ? (double)(total->sum_ns / total->total) / NS_PER_MS
                        : 0.0,
           (unsigned long long)error_sum);
    for (int e = 1; e < BENCH_ERR_COUNT; e++)
        printf(" err_%s=%llu", bench_error_name((enum bench_error)e),
               (unsigned long long)errors[e]);
    printf(" loadgen_cpu_s=%.3f", cpu_self);
    for (size_t i = 0; i < config.n_watches; i++) {
        const char *n = config.watches[i].name;
        uint64_t cpu = after[i].cpu_us - before[i].cpu_us;

        if (!before[i].ok || !after[i].ok) {
            printf(" %s_gone=1", n);
            continue;
        }
        printf(" %s_cpu_ms=%.1f %s_cpu_us_per_req=%.1f %s_rss_before_kb=%llu "
               "%s_rss_kb=%llu %s_hwm_kb=%llu",
               n, (double)cpu / 1000.0, n,
               total->total ? (double)cpu / (double)total->total : 0.0, n,
               (unsigned long long)before[i].rss_kb, n,
               (unsigned long long)after[i].rss_kb, n,
               (unsigned long long)after[i].hwm_kb);
    }
    printf("\n");
    if (first_error != NULL)
        fprintf(stderr, "cerrojo-bench: first error: %s\n", first_error);
    if (prepared < config.connections)
        fprintf(stderr,
                "cerrojo-bench: %u of %u connections failed to "
                "prepare\n",
                config.connections - prepared, config.connections);

    /* Whole slots only, so that a partial last slot cannot read as a dip;
     * a run shorter than one slot still writes that one. */
    slots =
        (size_t)((end_ns - run.start_ns) / (BENCH_SERIES_SLOT_MS * NS_PER_MS));
    if (slots == 0)
        slots = 1;
    if (slots > BENCH_SERIES_SLOTS)
        slots = BENCH_SERIES_SLOTS;
    if (config.series_path != NULL &&
        !write_series(config.series_path, series, slots))
        fprintf(stderr, "cerrojo-bench: cannot write %s\n", config.series_path);
    if (config.percentiles_path != NULL &&
        !write_percentiles(config.percentiles_path, total))
        fprintf(stderr, "cerrojo-bench: cannot write %s\n",
                config.percentiles_path);
    rc = (prepared == config.connections && total->total > 0) ? 0 : 1;

    for (unsigned i = 0; i < config.connections; i++) {
        if (config.flow->finish != NULL)
            config.flow->finish(&run.workers[i]);
    }
    pthread_barrier_destroy(&run.prepared);
    pthread_barrier_destroy(&run.started);

out:
    if (made_state_dir)
        remove_state_dir(config.state_dir, config.connections);
    free(run.workers);
    free(args);
    free(threads);
    free(total);
    free(series);
    curl_global_cleanup();
    return rc;
}

/*
 * The load generator's shared types: the run configuration, one worker
 * per connection (a thread with its own client and keep-alive connection),
 * and the flows a worker can drive.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "bench_hist.h"
#include "bench_proc.h"
#include "cjc_client.h"
#include "cjc_http.h"
#include "jwk.h"
#include "password.h"
#include "rpc_client.h"
#include "x25519.h"

/* Maximum connections (threads) of one run. */
#define BENCH_CONNECTIONS_MAX 1024
/* Maximum timed duration of one run, in seconds. */
#define BENCH_SECONDS_MAX 600
/* Width of one throughput-series slot, in milliseconds. */
#define BENCH_SERIES_SLOT_MS 250
#define BENCH_SERIES_SLOTS   (BENCH_SECONDS_MAX * 1000 / BENCH_SERIES_SLOT_MS + 8)
/* Maximum processes one run watches with --watch. */
#define BENCH_WATCH_MAX 32
/* Bytes signed per request in the signing flows: about the length of a
 * JWT's header and claims in base64url. */
#define BENCH_SIGN_INPUT_BYTES 320
/* Length of the random password of each prepared user. */
#define BENCH_PASSWORD_CHARS 24
/* Maximum inserts in one pg-write transaction. */
#define BENCH_PG_WRITES_MAX 64

/* Error class of a failed request. */
enum bench_error {
    BENCH_OK = 0,
    BENCH_ERR_TRANSPORT,    /* no HTTP or gRPC response arrived */
    BENCH_ERR_RATE_LIMITED, /* HTTP 429 or RESOURCE_EXHAUSTED */
    BENCH_ERR_HTTP_4XX,     /* another 4xx */
    BENCH_ERR_HTTP_5XX,
    BENCH_ERR_RPC,   /* a gRPC status other than OK */
    BENCH_ERR_CHECK, /* a response arrived but was wrong */
    BENCH_ERR_OTHER, /* a local failure (allocation, crypto) */
    BENCH_ERR_COUNT
};

struct bench_watch {
    char name[BENCH_PROC_NAME_MAX];
    pid_t pid;
};

struct bench_config {
    const struct bench_flow *flow;
    const char *url;         /* gateway or nginx base URL */
    const char *path;        /* path of the http flow */
    const char *grpc_target; /* auth's gRPC address */
    const char *pg_dsn;
    const char *state_dir; /* where each worker's client state file goes */
    const char *series_path;
    const char *percentiles_path;
    const char *label; /* printed as flow= in the result line */
    unsigned connections;
    double seconds;
    uint64_t max_requests; /* 0: no bound but the duration */
    unsigned pg_writes;    /* inserts per pg-write transaction */
    size_t argon2_memory_bytes;
    unsigned argon2_passes;
    uint32_t run_id; /* makes user names unique across runs */
    struct bench_watch watches[BENCH_WATCH_MAX];
    size_t n_watches;
};

struct bench_worker {
    unsigned index;
    const struct bench_config *config;
    struct cjc_client *client;
    struct cjc_http *http;
    struct cj_rpc_client *rpc;
    PGconn *pg;
    struct cj_jwk *jwk;
    struct cj_password_hasher *hasher;
    char username[64];
    char password[BENCH_PASSWORD_CHARS + 1];
    char *access_token; /* for Introspect; freed (wiped) by the flow */
    char stored_hash[CJ_PASSWORD_HASH_BYTES];
    uint8_t x25519_sk[CJ_X25519_KEY_LEN];
    uint8_t x25519_pk[CJ_X25519_KEY_LEN];
    unsigned char sign_input[BENCH_SIGN_INPUT_BYTES];
    uint64_t pg_sequence;
    /* Results. */
    struct bench_hist hist;
    uint64_t errors[BENCH_ERR_COUNT];
    uint64_t series[BENCH_SERIES_SLOTS];
    char error_text[768]; /* the first error's message, for the report */
    bool prepared;
};

/* A workload: prepare runs once per worker before the clock starts, step
 * is one timed request, finish frees what prepare made. */
struct bench_flow {
    const char *name;
    const char *help;
    bool needs_url;
    bool needs_grpc;
    bool needs_pg;
    bool needs_path;
    bool (*prepare)(struct bench_worker *w);
    enum bench_error (*step)(struct bench_worker *w);
    void (*finish)(struct bench_worker *w);
};

/* The flows, ending with an entry whose name is NULL. */
extern const struct bench_flow bench_flows[];

const struct bench_flow *bench_flow_find(const char *name);

/* Name of an error class for the result line ("transport"). */
const char *bench_error_name(enum bench_error e);

/* Runs once before workers start: creates the scratch table of pg-write. */
bool bench_flows_setup(const struct bench_config *config, char *err,
                       size_t err_size);

#endif

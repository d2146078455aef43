/*
 * Redis pool: a fixed array of hiredis contexts guarded by one mutex and
 * condition variable. A context that failed, timed out or was left inside
 * MULTI/WATCH is dropped and reopened on its next use. At shutdown,
 * cj_redis_pool_close ends the commands in flight through their sockets.
 */
#include "redis.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "deadline.h"
#include "log.h"
#include "slot_pool.h"

#define CJ_REDIS_ERROR_SIZE 256
#define CJ_US_PER_MS        1000LL
/* EVALSHA, the SHA-1 and numkeys come before the script's own arguments. */
#define CJ_REDIS_EVAL_PREFIX 3

/*
 * During an outage every request fails the same way, so these events are
 * rate-limited per call site (across all pools of the process).
 */
static struct cj_log_limit connect_failed_limit = CJ_LOG_LIMIT_INIT;
static struct cj_log_limit command_failed_limit = CJ_LOG_LIMIT_INIT;

struct cj_redis_conn {
    struct cj_redis_pool *pool;
    redisContext *ctx;
    /* Socket of ctx, or -1. Written under the pool's close_lock, and
     * cleared before redisFree closes it, so that cj_redis_pool_close never
     * shuts down a descriptor number that was closed and reused. */
    int fd;
    bool in_transaction; /* inside MULTI or WATCH: dropped on release */
};

struct cj_redis_pool {
    struct cj_slot_pool slots; /* slot i borrows conns[i] */
    char *host;
    char *password;
    int port;
    long long connect_timeout_ms;
    long long command_timeout_ms;
    long long acquire_timeout_ms;
    unsigned size;
    struct cj_redis_conn *conns;
    pthread_mutex_t close_lock; /* guards each conns[i].fd and closing */
    bool closing; /* set by cj_redis_pool_close, read atomically */
};

static _Thread_local char last_error[CJ_REDIS_ERROR_SIZE];

static void set_last_error(const char *fmt, const char *a, int port,
                           const char *b)
{
    snprintf(last_error, sizeof(last_error), fmt, a, port, b);
}

const char *cj_redis_last_error(void)
{
    return last_error;
}

static struct timeval ms_to_timeval(long long ms)
{
    struct timeval tv = {.tv_sec = ms / CJ_MS_PER_S,
                         .tv_usec = (ms % CJ_MS_PER_S) * CJ_US_PER_MS};
    return tv;
}

/* Slot i is open when its context exists, broken or not. */
static bool context_is_open(const void *owner, unsigned i)
{
    const struct cj_redis_pool *p = owner;
    return p->conns[i].ctx != NULL;
}

enum cj_status cj_redis_pool_new(const struct cj_redis_options *opts,
                                 struct cj_redis_pool **out)
{
    *out = NULL;
    if (opts == NULL || opts->host == NULL || opts->port <= 0 ||
        opts->port > 65535 || opts->pool_size == 0 ||
        opts->pool_size > CJ_REDIS_MAX_POOL_SIZE ||
        opts->connect_timeout_ms <= 0 || opts->command_timeout_ms <= 0) {
        return CJ_ERR_INVALID;
    }
    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_redis_pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        goto out;
    }
    p->port = opts->port;
    p->size = opts->pool_size;
    p->connect_timeout_ms = opts->connect_timeout_ms;
    p->command_timeout_ms = opts->command_timeout_ms;
    p->acquire_timeout_ms = opts->acquire_timeout_ms;
    p->host = strdup(opts->host);
    if (opts->password != NULL) {
        p->password = strdup(opts->password);
        if (p->password == NULL) {
            goto out;
        }
    }
    p->conns = calloc(p->size, sizeof(*p->conns));
    if (p->host == NULL || p->conns == NULL) {
        goto out;
    }
    for (unsigned i = 0; i < p->size; i++) {
        p->conns[i].pool = p;
        p->conns[i].fd = -1;
    }
    st = cj_slot_pool_init(&p->slots, p->size, context_is_open, p);
    if (st != CJ_OK) {
        goto out;
    }
    pthread_mutex_init(&p->close_lock, NULL);
    *out = p;
    p = NULL;
    st = CJ_OK;

out:
    if (p != NULL) {
        free(p->host);
        free(p->password);
        free(p->conns);
        free(p);
    }
    return st;
}

void cj_redis_pool_free(struct cj_redis_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    for (unsigned i = 0; i < pool->size; i++) {
        if (pool->conns[i].ctx != NULL) {
            redisFree(pool->conns[i].ctx);
        }
    }
    cj_slot_pool_destroy(&pool->slots);
    pthread_mutex_destroy(&pool->close_lock);
    free(pool->host);
    if (pool->password != NULL) {
        OPENSSL_cleanse(pool->password, strlen(pool->password));
        free(pool->password);
    }
    free(pool->conns);
    free(pool);
}

bool cj_redis_pool_closing(const struct cj_redis_pool *pool)
{
    return __atomic_load_n(&pool->closing, __ATOMIC_ACQUIRE);
}

void cj_redis_pool_close_hook(void *pool)
{
    cj_redis_pool_close(pool);
}

void cj_redis_pool_close(struct cj_redis_pool *pool)
{
    unsigned shut_down = 0;

    pthread_mutex_lock(&pool->close_lock);
    __atomic_store_n(&pool->closing, true, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < pool->size; i++) {
        /*
         * SHUT_RD wakes a thread blocked reading a reply, and hiredis then
         * reads end of file. SHUT_WR is left out because hiredis 0.14 sends
         * with write(), which raises SIGPIPE on a socket shut for sending.
         * NOTE: a thread blocked in write() on a full send buffer is not
         * woken and still waits for the command timeout.
         */
        if (pool->conns[i].fd >= 0 &&
            shutdown(pool->conns[i].fd, SHUT_RD) == 0) {
            shut_down++;
        }
    }
    pthread_mutex_unlock(&pool->close_lock);
    cj_log(CJ_LOG_INFO, "redis.pool_closed", NULL, CJ_F_STR("host", pool->host),
           CJ_F_INT("port", pool->port),
           CJ_F_INT("connections_shut_down", shut_down));
}

/*
 * Publishes fd as the socket of c for cj_redis_pool_close, or clears it
 * (fd -1). Returns false, publishing nothing, once the pool is closing: a
 * socket opened after the close would otherwise never be shut down.
 */
static bool conn_set_fd(struct cj_redis_conn *c, int fd)
{
    struct cj_redis_pool *p = c->pool;
    bool pool_open;

    pthread_mutex_lock(&p->close_lock);
    pool_open = !cj_redis_pool_closing(p);
    c->fd = pool_open ? fd : -1;
    pthread_mutex_unlock(&p->close_lock);
    return pool_open;
}

static void set_closing_error(const struct cj_redis_pool *p)
{
    set_last_error("Redis at %s:%d: %s", p->host, p->port,
                   "the pool is closed for shutdown");
}

static void drop_context(struct cj_redis_conn *c)
{
    if (c->ctx != NULL) {
        conn_set_fd(c, -1);
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->in_transaction = false;
}

/*
 * An idle RESP2 connection has nothing to read; readable means Redis closed
 * it (a restart or CLIENT KILL), so it is replaced before use.
 */
static bool context_is_broken(redisContext *ctx)
{
    if (ctx->err != 0 || ctx->fd < 0) {
        return true;
    }
    struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) != 0;
}

static enum cj_status authenticate(struct cj_redis_conn *c)
{
    const char *argv[] = {"AUTH", c->pool->password};
    const size_t argvlen[] = {4, strlen(c->pool->password)};
    redisReply *r = redisCommandArgv(c->ctx, 2, argv, argvlen);
    enum cj_status st = CJ_OK;
    if (r == NULL) {
        set_last_error("Redis at %s:%d: AUTH failed: %s", c->pool->host,
                       c->pool->port, c->ctx->errstr);
        st = CJ_ERR_UNAVAILABLE;
    } else if (r->type == REDIS_REPLY_ERROR) {
        set_last_error("Redis at %s:%d: AUTH rejected: %s", c->pool->host,
                       c->pool->port, r->str);
        st = CJ_ERR_UNAUTHENTICATED;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

static enum cj_status context_open(struct cj_redis_conn *c)
{
    struct cj_redis_pool *p = c->pool;
    drop_context(c);
    c->ctx = redisConnectWithTimeout(p->host, p->port,
                                     ms_to_timeval(p->connect_timeout_ms));
    if (c->ctx == NULL || c->ctx->err != 0) {
        set_last_error("cannot connect to Redis at %s:%d: %s", p->host, p->port,
                       c->ctx ? c->ctx->errstr : "out of memory");
        cj_log_limited(&connect_failed_limit, CJ_LOG_WARN,
                       "redis.connect_failed", NULL,
                       CJ_F_STR("error", last_error));
        drop_context(c);
        return CJ_ERR_UNAVAILABLE;
    }
    enum cj_status st = CJ_ERR_UNAVAILABLE;
    /* Published before AUTH, the first command that can wait on Redis. */
    if (!conn_set_fd(c, c->ctx->fd)) {
        set_closing_error(p);
        goto out;
    }
    if (redisSetTimeout(c->ctx, ms_to_timeval(p->command_timeout_ms)) !=
            REDIS_OK ||
        redisEnableKeepAlive(c->ctx) != REDIS_OK) {
        set_last_error("Redis at %s:%d: setting socket options failed: %s",
                       p->host, p->port, c->ctx->errstr);
        goto out;
    }
    cj_log_recovered(&connect_failed_limit, "redis.connect_recovered", NULL);
    st = p->password != NULL ? authenticate(c) : CJ_OK;

out:
    if (st != CJ_OK) {
        drop_context(c);
    }
    return st;
}

static void give_back_slot(struct cj_redis_conn *c)
{
    struct cj_redis_pool *p = c->pool;
    cj_slot_pool_give_back(&p->slots, (unsigned)(c - p->conns));
}

enum cj_status cj_redis_acquire(struct cj_redis_pool *pool,
                                long long timeout_ms,
                                struct cj_redis_conn **out)
{
    *out = NULL;
    last_error[0] = '\0';
    if (timeout_ms < 0) {
        timeout_ms = pool->acquire_timeout_ms;
    }
    unsigned slot;
    if (cj_slot_pool_take(&pool->slots, timeout_ms, &slot) != CJ_OK) {
        snprintf(last_error, sizeof(last_error),
                 "no free Redis connection within %lld ms", timeout_ms);
        return CJ_ERR_TIMEOUT;
    }
    struct cj_redis_conn *c = &pool->conns[slot];

    if (cj_redis_pool_closing(pool)) {
        set_closing_error(pool);
        give_back_slot(c);
        return CJ_ERR_UNAVAILABLE;
    }
    if (c->ctx == NULL || context_is_broken(c->ctx)) {
        if (c->ctx != NULL) {
            cj_log(CJ_LOG_INFO, "redis.reconnect", NULL);
        }
        enum cj_status st = context_open(c);
        if (st != CJ_OK) {
            give_back_slot(c);
            return st;
        }
    }
    *out = c;
    return CJ_OK;
}

void cj_redis_release(struct cj_redis_conn *conn)
{
    if (conn == NULL) {
        return;
    }
    if (conn->in_transaction || (conn->ctx != NULL && conn->ctx->err != 0)) {
        drop_context(conn);
    }
    give_back_slot(conn);
}

static bool word_is(const char *arg, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(arg, word, len) == 0;
}

/* Error replies that mean "Redis cannot serve this now", not a bug. */
static bool is_unavailable_error(const char *msg)
{
    static const char *const prefixes[] = {
        "OOM ", "LOADING ", "READONLY ", "MASTERDOWN ", "BUSY ", "TRYAGAIN "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

enum cj_status cj_redis_conn_command(struct cj_redis_conn *conn, int argc,
                                     const char **argv, const size_t *argvlen,
                                     redisReply **reply)
{
    *reply = NULL;
    if (conn == NULL || conn->ctx == NULL || argc <= 0 || argv == NULL ||
        argvlen == NULL) {
        return CJ_ERR_INVALID;
    }
    struct cj_redis_pool *p = conn->pool;
    if (cj_redis_pool_closing(p)) {
        set_closing_error(p);
        return CJ_ERR_UNAVAILABLE;
    }
    errno = 0;
    redisReply *r = redisCommandArgv(conn->ctx, argc, argv, argvlen);
    if (r == NULL) {
        int saved_errno = errno;
        bool timed_out = conn->ctx->err == REDIS_ERR_IO &&
                         (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
        if (cj_redis_pool_closing(p)) {
            /* Ended by cj_redis_pool_close, which logs once for all. */
            set_closing_error(p);
            timed_out = false;
        } else {
            set_last_error(timed_out ? "Redis at %s:%d: command timed out: %s"
                                     : "Redis at %s:%d: connection failed: %s",
                           p->host, p->port, conn->ctx->errstr);
            cj_log_limited(&command_failed_limit, CJ_LOG_WARN,
                           "redis.command_failed", NULL,
                           CJ_F_STR("error", last_error));
        }
        /* A reply that arrives late would desynchronize the context. */
        drop_context(conn);
        return timed_out ? CJ_ERR_TIMEOUT : CJ_ERR_UNAVAILABLE;
    }
    *reply = r;
    cj_log_recovered(&command_failed_limit, "redis.command_recovered", NULL);

    if (word_is(argv[0], argvlen[0], "MULTI") ||
        word_is(argv[0], argvlen[0], "WATCH")) {
        conn->in_transaction = true;
    } else if (word_is(argv[0], argvlen[0], "EXEC") ||
               word_is(argv[0], argvlen[0], "DISCARD") ||
               word_is(argv[0], argvlen[0], "UNWATCH")) {
        conn->in_transaction = false;
    }

    if (r->type != REDIS_REPLY_ERROR) {
        return CJ_OK;
    }
    snprintf(last_error, sizeof(last_error), "Redis error reply: %s", r->str);
    if (is_unavailable_error(r->str)) {
        if (strncmp(r->str, "READONLY ", 9) == 0) {
            /* A replica after failover: reconnect to find the primary. */
            drop_context(conn);
        }
        return CJ_ERR_UNAVAILABLE;
    }
    return CJ_ERR_INTERNAL;
}

enum cj_status cj_redis_command(struct cj_redis_pool *pool, int argc,
                                const char **argv, const size_t *argvlen,
                                redisReply **reply)
{
    *reply = NULL;
    struct cj_redis_conn *conn = NULL;
    enum cj_status st = cj_redis_acquire(pool, -1, &conn);
    if (st != CJ_OK) {
        return st;
    }
    st = cj_redis_conn_command(conn, argc, argv, argvlen, reply);
    cj_redis_release(conn);
    return st;
}

void cj_redis_script_init(struct cj_redis_script *script, const char *source)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    script->source = source;
    if (EVP_Digest(source, strlen(source), digest, &len, EVP_sha1(), NULL) !=
            1 ||
        len * 2 + 1 != CJ_REDIS_SHA1_HEX_SIZE) {
        /* SHA-1 of a string fails only when OpenSSL is broken. */
        abort();
    }
    for (unsigned i = 0; i < len; i++) {
        script->sha1[2 * i] = hex[digest[i] >> 4];
        script->sha1[2 * i + 1] = hex[digest[i] & 0xf];
    }
    script->sha1[2 * len] = '\0';
}

static enum cj_status load_script(struct cj_redis_conn *conn,
                                  const struct cj_redis_script *script)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->source};
    const size_t argvlen[] = {6, 4, strlen(script->source)};
    redisReply *r = NULL;
    enum cj_status st = cj_redis_conn_command(conn, 3, argv, argvlen, &r);
    if (st == CJ_OK &&
        (r->type != REDIS_REPLY_STRING || strcmp(r->str, script->sha1) != 0)) {
        snprintf(last_error, sizeof(last_error),
                 "SCRIPT LOAD returned an unexpected SHA-1 for %s",
                 script->sha1);
        st = CJ_ERR_INTERNAL;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

enum cj_status cj_redis_eval(struct cj_redis_pool *pool,
                             const struct cj_redis_script *script, int numkeys,
                             int argc, const char **argv, const size_t *argvlen,
                             redisReply **reply)
{
    *reply = NULL;
    if (numkeys < 0 || argc < numkeys || (argc > 0 && argv == NULL)) {
        return CJ_ERR_INVALID;
    }
    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_redis_conn *conn = NULL;
    size_t total = (size_t)argc + CJ_REDIS_EVAL_PREFIX;
    const char **full = calloc(total, sizeof(*full));
    size_t *full_len = calloc(total, sizeof(*full_len));
    char numkeys_text[16];
    if (full == NULL || full_len == NULL) {
        goto out;
    }
    snprintf(numkeys_text, sizeof(numkeys_text), "%d", numkeys);
    full[0] = "EVALSHA";
    full_len[0] = 7;
    full[1] = script->sha1;
    full_len[1] = strlen(script->sha1);
    full[2] = numkeys_text;
    full_len[2] = strlen(numkeys_text);
    for (int i = 0; i < argc; i++) {
        full[CJ_REDIS_EVAL_PREFIX + i] = argv[i];
        full_len[CJ_REDIS_EVAL_PREFIX + i] = argvlen[i];
    }

    st = cj_redis_acquire(pool, -1, &conn);
    if (st != CJ_OK) {
        goto out;
    }
    st = cj_redis_conn_command(conn, (int)total, full, full_len, reply);
    bool noscript = *reply != NULL && (*reply)->type == REDIS_REPLY_ERROR &&
                    strncmp((*reply)->str, "NOSCRIPT", 8) == 0;
    if (!noscript) {
        goto out;
    }
    freeReplyObject(*reply);
    *reply = NULL;
    st = load_script(conn, script);
    if (st != CJ_OK) {
        goto out;
    }
    st = cj_redis_conn_command(conn, (int)total, full, full_len, reply);

out:
    cj_redis_release(conn);
    free(full);
    free(full_len);
    return st;
}

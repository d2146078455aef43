/*
 * A Redis connection pool over hiredis 0.14 (plain TCP, RESP2). Connections
 * that break, for example when Redis restarts, are reopened on their next
 * use; I/O failures become CJ_ERR_UNAVAILABLE.
 */
#ifndef CJ_REDIS_H
#define CJ_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "status.h"

#define CJ_REDIS_DEFAULT_POOL_SIZE          4
#define CJ_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define CJ_REDIS_DEFAULT_COMMAND_TIMEOUT_MS 2000
#define CJ_REDIS_DEFAULT_ACQUIRE_TIMEOUT_MS 5000
#define CJ_REDIS_MAX_POOL_SIZE              256
/* Hex SHA-1 of a Lua script plus the NUL. */
#define CJ_REDIS_SHA1_HEX_SIZE 41

struct cj_redis_pool;
struct cj_redis_conn; /* one borrowed connection; one thread at a time */

struct cj_redis_options {
    const char *host; /* copied; e.g. 127.0.0.1 */
    int port;
    const char *password; /* AUTH after connect when non-NULL; copied */
    unsigned pool_size;   /* 1..CJ_REDIS_MAX_POOL_SIZE */
    long long connect_timeout_ms;
    long long command_timeout_ms;
    long long acquire_timeout_ms;
};

/* A Lua script with its SHA-1, computed once by cj_redis_script_init. */
struct cj_redis_script {
    const char *source; /* borrowed; usually a string literal */
    char sha1[CJ_REDIS_SHA1_HEX_SIZE];
};

/* Creates a pool; connections open lazily. Free with cj_redis_pool_free. */
CJ_WARN_UNUSED enum cj_status
cj_redis_pool_new(const struct cj_redis_options *opts,
                  struct cj_redis_pool **out);

/* Closes every connection; all must have been released. NULL-safe. */
void cj_redis_pool_free(struct cj_redis_pool *pool);

/*
 * Ends the pool's work for a shutdown, from any thread. It shuts down the
 * receiving side of every open connection's socket, so a command waiting
 * for its reply fails at once with CJ_ERR_UNAVAILABLE instead of at the
 * command timeout. From then on cj_redis_acquire and every command fail at
 * once with CJ_ERR_UNAVAILABLE. Borrowed connections must still be
 * released, and cj_redis_pool_free frees the pool.
 */
void cj_redis_pool_close(struct cj_redis_pool *pool);

/* Returns whether cj_redis_pool_close was called, from any thread. */
bool cj_redis_pool_closing(const struct cj_redis_pool *pool);

/* Calls cj_redis_pool_close on pool (a struct cj_redis_pool *), in the
 * shape of a hook such as the gRPC server's on_grace_expired. */
void cj_redis_pool_close_hook(void *pool);

/*
 * Borrows a connection for commands that must share one (WATCH/MULTI).
 * Waits up to timeout_ms (negative: the pool default); CJ_ERR_TIMEOUT when
 * none frees up, CJ_ERR_UNAVAILABLE when Redis cannot be reached.
 */
CJ_WARN_UNUSED enum cj_status cj_redis_acquire(struct cj_redis_pool *pool,
                                               long long timeout_ms,
                                               struct cj_redis_conn **out);
void cj_redis_release(struct cj_redis_conn *conn);

/*
 * Runs one command given as binary-safe argv/argvlen on a borrowed
 * connection. *reply is set whenever Redis replied, error replies included,
 * and is the caller's to freeReplyObject; it is NULL otherwise.
 * Returns CJ_OK for a non-error reply; CJ_ERR_UNAVAILABLE on connection or
 * I/O failure and on OOM, LOADING, READONLY, MASTERDOWN or BUSY error
 * replies; CJ_ERR_TIMEOUT when the command timeout passes;
 * CJ_ERR_INTERNAL for other error replies (WRONGTYPE, script errors).
 */
CJ_WARN_UNUSED enum cj_status cj_redis_conn_command(struct cj_redis_conn *conn,
                                                    int argc, const char **argv,
                                                    const size_t *argvlen,
                                                    redisReply **reply);

/* Acquires a connection, runs cj_redis_conn_command and releases it. */
CJ_WARN_UNUSED enum cj_status cj_redis_command(struct cj_redis_pool *pool,
                                               int argc, const char **argv,
                                               const size_t *argvlen,
                                               redisReply **reply);

/* Message of the last failed cj_redis_* call in this thread ("" if none). */
const char *cj_redis_last_error(void);

/* Stores source and its SHA-1 (hex) in script. */
void cj_redis_script_init(struct cj_redis_script *script, const char *source);

/*
 * Runs a Lua script by EVALSHA, loading it with SCRIPT LOAD and retrying
 * once when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
 * argv holds numkeys keys, then the other arguments; reply and status as
 * in cj_redis_conn_command.
 */
CJ_WARN_UNUSED enum cj_status
cj_redis_eval(struct cj_redis_pool *pool, const struct cj_redis_script *script,
              int numkeys, int argc, const char **argv, const size_t *argvlen,
              redisReply **reply);

#endif

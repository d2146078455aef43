/*
 * The one status type of cerrojo. Every module translates its library's
 * errors into it at the boundary, and cj_status_to_grpc() is the single
 * place where it becomes a gRPC status code.
 */
#ifndef CJ_STATUS_H
#define CJ_STATUS_H

#include <grpc/status.h>

#define CJ_WARN_UNUSED __attribute__((warn_unused_result))

enum cj_status {
    CJ_OK = 0,
    CJ_ERR_INVALID,         /* malformed or out-of-range input */
    CJ_ERR_NOT_FOUND,       /* the named thing does not exist */
    CJ_ERR_EXISTS,          /* a unique thing already exists */
    CJ_ERR_PERMISSION,      /* the caller may not do this */
    CJ_ERR_UNAUTHENTICATED, /* missing or bad credentials or token */
    CJ_ERR_CRYPTO,          /* a tag, signature or key check failed */
    CJ_ERR_REPLAYED,        /* a replayed envelope or sequence number */
    CJ_ERR_RATE_LIMITED,    /* too many attempts */
    CJ_ERR_PRECONDITION,    /* state does not allow it (cache not loaded) */
    CJ_ERR_UNAVAILABLE,     /* a dependency is down or unreachable */
    CJ_ERR_TIMEOUT,         /* a deadline passed */
    CJ_ERR_TOO_LARGE,       /* input over a configured limit */
    CJ_ERR_UNIMPLEMENTED,   /* not built yet */
    CJ_ERR_NOMEM,           /* allocation failed */
    CJ_ERR_INTERNAL         /* a bug or an unexpected library failure */
};

/* Maps a status to its gRPC code; the only such mapping in cerrojo. */
grpc_status_code cj_status_to_grpc(enum cj_status status);

/* Maps a gRPC code received from a peer back to a status. */
enum cj_status cj_status_from_grpc(grpc_status_code code);

/* Returns a stable lower-case name ("invalid", "crypto") for logs. */
const char *cj_status_name(enum cj_status status);

#endif

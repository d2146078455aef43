/*
 * The caller context: who the gateway authenticated, passed to the services
 * in fixed gRPC metadata keys. The server accepts it only from the gateway
 * (and from anyone in the dev plaintext mode); the client side builds the
 * same metadata.
 */
#ifndef CJ_RPC_CALLER_H
#define CJ_RPC_CALLER_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "status.h"

/* Metadata keys; gRPC metadata keys are lower case. */
#define CJ_MD_USER_ID          "cerrojo-user-id"
#define CJ_MD_SESSION_ID       "cerrojo-session-id"
#define CJ_MD_TOKEN_ID         "cerrojo-token-id"
#define CJ_MD_TOKEN_EXPIRES_AT "cerrojo-token-expires-at"
#define CJ_MD_CHANNEL          "cerrojo-channel"
#define CJ_MD_CLIENT_IP        "cerrojo-client-ip"
#define CJ_MD_USER_AGENT       "cerrojo-user-agent"
#define CJ_MD_REQUEST_ID       "cerrojo-request-id"

/*
 * Trailing metadata of an error status: whole seconds the client should
 * wait before trying again, in decimal (the unit of HTTP's Retry-After).
 * gRPC's own grpc-retry-pushback-ms is not used because the core's retry
 * machinery acts on it, while this value is only passed on to the client.
 */
#define CJ_MD_RETRY_AFTER "retry-after-seconds"
/* Largest retry-after value sent or accepted, in seconds (one day). */
#define CJ_RETRY_AFTER_MAX_S 86400

/* Length limits of the values, in bytes. */
#define CJ_CALLER_ID_MAX_LEN         128
#define CJ_CALLER_REQUEST_ID_MAX_LEN 64
#define CJ_CALLER_USER_AGENT_MAX_LEN 256
#define CJ_CALLER_CLIENT_IP_MAX_LEN  45 /* longest IPv6 text form */
#define CJ_CALLER_EXPIRES_MAX_DIGITS 18 /* Unix seconds, no sign */

/* Number of metadata keys in a caller context. */
#define CJ_CALLER_MD_COUNT 8

/* Size of the error buffer cj_caller_context_parse writes to. */
#define CJ_CALLER_ERROR_MAX 160

enum cj_channel {
    CJ_CHANNEL_NONE = 0, /* not given */
    CJ_CHANNEL_STATELESS,
    CJ_CHANNEL_STATEFUL,
};

/*
 * One caller's context. Every string is NUL-terminated and empty when the
 * key was absent. Ids (user, session, token, request) are 1 to their limit
 * of [A-Za-z0-9._-]; the user agent is printable ASCII; the client IP is an
 * IPv4 or IPv6 address in text form.
 */
struct cj_caller_context {
    char user_id[CJ_CALLER_ID_MAX_LEN + 1];
    char session_id[CJ_CALLER_ID_MAX_LEN + 1];
    char token_id[CJ_CALLER_ID_MAX_LEN + 1];
    int64_t token_expires_at; /* Unix seconds; 0 when absent */
    enum cj_channel channel;
    char client_ip[CJ_CALLER_CLIENT_IP_MAX_LEN + 1];
    char user_agent[CJ_CALLER_USER_AGENT_MAX_LEN + 1];
    char request_id[CJ_CALLER_REQUEST_ID_MAX_LEN + 1];
};

/*
 * Fills `out` from the caller-context keys of `md`, ignoring every other
 * key. Returns CJ_ERR_INVALID when a value is malformed or a key repeats.
 * `error` then names the key (never its value) and `out` is left empty.
 */
CJ_WARN_UNUSED enum cj_status
cj_caller_context_parse(const grpc_metadata_array *md,
                        struct cj_caller_context *out,
                        char error[CJ_CALLER_ERROR_MAX]);

/* Returns "stateless", "stateful" or "" for CJ_CHANNEL_NONE. */
const char *cj_channel_name(enum cj_channel channel);

/*
 * Client-side metadata for a caller context: one entry per non-empty
 * field. Release it with cj_caller_metadata_release once the call's send
 * batch has completed.
 */
struct cj_caller_metadata {
    grpc_metadata items[CJ_CALLER_MD_COUNT];
    size_t count;
};

/*
 * Builds the metadata for `ctx`, validating each field as the server will.
 * Returns CJ_ERR_INVALID (with `error` set) on a malformed field; nothing
 * needs releasing then.
 */
CJ_WARN_UNUSED enum cj_status
cj_caller_metadata_build(const struct cj_caller_context *ctx,
                         struct cj_caller_metadata *out,
                         char error[CJ_CALLER_ERROR_MAX]);

/* Unrefs the value slices of `md`; accepts an empty or zeroed one. */
void cj_caller_metadata_release(struct cj_caller_metadata *md);

#endif

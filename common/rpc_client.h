/*
 * The gRPC client helper: a channel to one service (mutual TLS or dev
 * plaintext, round-robin over several addresses) and synchronous unary
 * calls with a deadline and the caller-context metadata.
 */
#ifndef CJ_RPC_CLIENT_H
#define CJ_RPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc_caller.h"
#include "status.h"

/* Default per-call timeout and message limit, used where a field is 0. */
#define CJ_RPC_CLIENT_DEFAULT_TIMEOUT_MS  5000
#define CJ_RPC_CLIENT_DEFAULT_MAX_MESSAGE (1024 * 1024)
/*
 * Reconnect backoff after a peer went away, in milliseconds
 * (GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS and
 * GRPC_ARG_MAX_RECONNECT_BACKOFF_MS). gRPC's own default grows to 120 s,
 * which would keep a restarted kms or session unreachable long after it is
 * back. With 250 ms a peer is tried again at most that long after it is
 * back, so calls on a failing channel need to wait only that long.
 */
#define CJ_RPC_CLIENT_RECONNECT_MIN_MS 100
#define CJ_RPC_CLIENT_RECONNECT_MAX_MS 250
/*
 * Time one connection attempt may take, in milliseconds. gRPC names it
 * GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, but in gRPC C core 1.51 it bounds each
 * attempt: with 2,000 ms, a channel to a listener that never completes the
 * HTTP/2 handshake went from CONNECTING to TRANSIENT_FAILURE after 2 s.
 * It must leave room for a TLS handshake on a loaded machine.
 */
#define CJ_RPC_CLIENT_CONNECT_TIMEOUT_MS 10000
/*
 * How long a call on a wait_for_ready client waits for a channel in
 * TRANSIENT_FAILURE to become ready before it fails with UNAVAILABLE, in
 * milliseconds: the maximum backoff (CJ_RPC_CLIENT_RECONNECT_MAX_MS) plus
 * room for the handshake, so a call made after the peer is back sees the
 * next attempt succeed.
 */
#define CJ_RPC_CLIENT_FAILURE_WAIT_MS 500
/*
 * For this long after the channel was first found in TRANSIENT_FAILURE, in
 * milliseconds, the failure counts as a peer restarting rather than down,
 * so calls wait for the reconnection (up to their deadline) instead of
 * failing.
 */
#define CJ_RPC_CLIENT_RESTART_GRACE_MS 3000
/* Maximum time the watcher thread of a wait_for_ready client sleeps before
 * it checks whether the client is being destroyed, in milliseconds. */
#define CJ_RPC_CLIENT_WATCH_PERIOD_MS 250
#define CJ_RPC_CLIENT_MAX_ADDRESSES   16

/* Size of the buffer that receives the server's status message. */
#define CJ_RPC_CLIENT_ERROR_MAX 256

struct cj_rpc_client_options {
    /*
     * One address ("127.0.0.1:50052", "localhost:50052") or several IP
     * addresses separated by commas, used round-robin. A single host name
     * is resolved by DNS and its addresses are used round-robin too.
     */
    const char *targets;
    bool plaintext;            /* dev only */
    const char *tls_ca_file;   /* PEM of the platform CA */
    const char *tls_cert_file; /* this service's certificate (client cert) */
    const char *tls_key_file;
    /*
     * Name checked against the server certificate; default: the host of the
     * first address. Development certificates carry localhost and
     * 127.0.0.1.
     */
    const char *tls_server_name;
    /*
     * Certificate CN the server must present ("kms"); NULL accepts any
     * certificate of the platform CA. A mismatch fails the handshake, so
     * calls end with CJ_ERR_UNAVAILABLE.
     */
    const char *expected_server_identity;
    size_t max_message_bytes;
    int64_t default_timeout_ms;
    /*
     * Wait for a connection until the deadline instead of failing at once
     * while the channel is idle or connecting, so that a restarted or newly
     * started peer costs a short wait rather than an error. A channel in
     * TRANSIENT_FAILURE (its last connection attempt failed, and gRPC keeps
     * that state until a new attempt succeeds) gets the longer of
     * CJ_RPC_CLIENT_FAILURE_WAIT_MS and what is left of
     * CJ_RPC_CLIENT_RESTART_GRACE_MS since the failure was first seen,
     * and then the call fails with
     * CJ_ERR_UNAVAILABLE, so a stopped peer does not cost every call its
     * deadline. Waiting happens before anything is sent, so it is safe for
     * calls that are not idempotent. Such a client keeps one thread that
     * watches its channel and connects it at once instead of lazily.
     */
    bool wait_for_ready;
};

struct cj_rpc_client;

/*
 * Creates a channel (connecting lazily unless wait_for_ready) and calls
 * grpc_init(). Returns
 * CJ_ERR_INVALID on malformed targets or missing TLS settings,
 * CJ_ERR_UNAVAILABLE when a TLS file cannot be read. Free with
 * cj_rpc_client_destroy. A client may be used from several threads.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_client_create(const struct cj_rpc_client_options *options,
                     struct cj_rpc_client **out);

/* Frees the client and calls grpc_shutdown(); accepts NULL. */
void cj_rpc_client_destroy(struct cj_rpc_client *client);

/*
 * Calls the unary method `path` with `request` and waits for the response or
 * the deadline (timeout_ms; 0 means the default). `caller` (may be NULL) is
 * sent as caller-context metadata. On CJ_OK, *response is a new message of
 * type `response_type`; free it with cj_rpc_message_free(). On failure,
 * *response is NULL, the status is the server's code mapped with
 * cj_status_from_grpc() (CJ_ERR_TIMEOUT at the deadline, CJ_ERR_UNAVAILABLE
 * when no server answers) and `error` (CJ_RPC_CLIENT_ERROR_MAX bytes, may
 * be NULL) holds the server's message. `grpc_code`, when not NULL, receives
 * the raw gRPC status code.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_client_call(struct cj_rpc_client *client, const char *path,
                   const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type,
                   const struct cj_caller_context *caller, int64_t timeout_ms,
                   ProtobufCMessage **response, int *grpc_code, char *error);

/* Outcome of one call, apart from its response message. */
struct cj_rpc_call_result {
    int grpc_code;                       /* raw gRPC status code */
    char error[CJ_RPC_CLIENT_ERROR_MAX]; /* the server's status message */
    /*
     * Seconds from the server's CJ_MD_RETRY_AFTER trailer, 1 to
     * CJ_RETRY_AFTER_MAX_S; 0 when it sent none or an invalid one.
     */
    int64_t retry_after_s;
};

/*
 * Calls like cj_rpc_client_call, and fills `result` (may be NULL) with the
 * status code, the message and the retry-after value of the call.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_client_call_result(struct cj_rpc_client *client, const char *path,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_type,
                          const struct cj_caller_context *caller,
                          int64_t timeout_ms, ProtobufCMessage **response,
                          struct cj_rpc_call_result *result);

/*
 * Parses a CJ_MD_RETRY_AFTER value: 1 to CJ_RETRY_AFTER_MAX_S decimal
 * seconds without sign, spaces or leading zeros. Returns 0 for anything
 * else.
 */
int64_t cj_rpc_retry_after_parse(const char *text, size_t len);

#endif

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
 * Reconnect backoff after a peer went away, in milliseconds. gRPC's own
 * default grows to 120 s, which would keep a restarted kms or session
 * unreachable long after it is back; a replica restart must cost about a
 * second at most. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left at its default:
 * despite its name it bounds each connection attempt, and 100 ms is too
 * short for a TLS handshake on a loaded machine.
 */
#define CJ_RPC_CLIENT_RECONNECT_MIN_MS 100
#define CJ_RPC_CLIENT_RECONNECT_MAX_MS 1000
#define CJ_RPC_CLIENT_MAX_ADDRESSES    16
/*
 * While the channel has lost its connection, a call that waits for ready
 * starts a new connection attempt at most every CJ_RPC_CLIENT_DOWN_RETRY_MS
 * and waits at most CJ_RPC_CLIENT_DOWN_WAIT_MS, in milliseconds. The wait
 * leaves room for a TCP and TLS handshake on a loaded machine.
 */
#define CJ_RPC_CLIENT_DOWN_RETRY_MS 100
#define CJ_RPC_CLIENT_DOWN_WAIT_MS  500

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
     * Wait for a connection until the deadline while one is being made,
     * so that a restarted or newly started peer costs a short wait rather
     * than an error. Once the connection was lost or refused, a call
     * starts a new attempt and waits at most CJ_RPC_CLIENT_DOWN_WAIT_MS,
     * so that a peer that stays down costs that wait (CJ_ERR_TIMEOUT)
     * rather than the whole deadline. Waiting happens before anything is sent,
     * so it is safe for calls that are not idempotent.
     */
    bool wait_for_ready;
};

struct cj_rpc_client;

/* Returns true when targets is an address list of the form
 * cj_rpc_client_options.targets describes. */
bool cj_rpc_targets_valid(const char *targets);

/*
 * Creates a channel (connecting lazily) and calls grpc_init(). Returns
 * CJ_ERR_INVALID on malformed targets or missing TLS settings,
 * CJ_ERR_UNAVAILABLE when a TLS file cannot be read. Free with
 * cj_rpc_client_destroy. A client may be used from several threads.
 */
CJ_WARN_UNUSED enum cj_status
cj_rpc_client_create(const struct cj_rpc_client_options *options,
                     struct cj_rpc_client **out);

/* Frees the client and calls grpc_shutdown(); accepts NULL. */
void cj_rpc_client_destroy(struct cj_rpc_client *client);

/* Returns true when the channel has a connection to a server now, without
 * starting one. */
bool cj_rpc_client_connected(struct cj_rpc_client *client);

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

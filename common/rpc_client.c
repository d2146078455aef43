/* Channel creation and synchronous unary calls on the gRPC C core. */
#include "rpc_client.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "deadline.h"
#include "host_port.h"
#include "log.h"
#include "rpc_absl.h"
#include "rpc_access.h"
#include "rpc_core_log.h"
#include "rpc_internal.h"
#include "rpc_message.h"

/* Maximum length of the target list, in bytes. */
#define CJ_RPC_TARGETS_MAX_LEN 1024

/* The service config that selects gRPC's round_robin load balancer. */
#define CJ_RPC_ROUND_ROBIN_CONFIG                                              \
    "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"

struct cj_rpc_client {
    grpc_channel *channel;
    size_t max_message_bytes;
    int64_t default_timeout_ms;
    bool wait_for_ready;
    /* Monotonic ms when a call last ended the reconnect backoff. */
    int64_t backoff_ended_ms;
};

enum address_kind { ADDRESS_IPV4, ADDRESS_IPV6, ADDRESS_NAME };

/*
 * Classifies "host:port" or "[v6]:port" and copies its host part. The
 * port must be 1 to 65535: gRPC would dial port 443 for a missing one.
 */
static bool address_parse(const char *address, enum address_kind *kind,
                          char *host, size_t host_size)
{
    unsigned char buf[sizeof(struct in6_addr)];
    struct cj_host_port parsed;

    if (cj_host_port_parse(address, false, &parsed) != CJ_HOST_PORT_OK ||
        strlen(parsed.host) >= host_size) {
        return false;
    }
    snprintf(host, host_size, "%s", parsed.host);
    if (parsed.ipv6) {
        *kind = ADDRESS_IPV6;
    } else {
        *kind =
            inet_pton(AF_INET, host, buf) == 1 ? ADDRESS_IPV4 : ADDRESS_NAME;
    }
    return true;
}

/*
 * Turns "a:1,b:2" into a gRPC target URI: "ipv4:a:1,b:2" or "ipv6:..." for
 * address lists (all of one family), "dns:///name:port" for one name.
 * Writes the first host to `first_host`.
 */
static enum cj_status target_build(const char *targets, char *uri,
                                   size_t uri_size, char *first_host,
                                   size_t host_size)
{
    char copy[CJ_RPC_TARGETS_MAX_LEN + 1];
    char host[256];
    char *save = NULL;
    size_t count = 0;
    size_t pos = 0;
    enum address_kind first_kind = ADDRESS_NAME;

    if (targets == NULL || strlen(targets) > CJ_RPC_TARGETS_MAX_LEN) {
        return CJ_ERR_INVALID;
    }
    snprintf(copy, sizeof(copy), "%s", targets);
    for (char *item = strtok_r(copy, ", ", &save); item != NULL;
         item = strtok_r(NULL, ", ", &save)) {
        enum address_kind kind;
        if (!address_parse(item, &kind, host, sizeof(host)) ||
            count == CJ_RPC_CLIENT_MAX_ADDRESSES) {
            return CJ_ERR_INVALID;
        }
        if (count == 0) {
            first_kind = kind;
            snprintf(first_host, host_size, "%s", host);
            const char *scheme = kind == ADDRESS_IPV4   ? "ipv4:"
                                 : kind == ADDRESS_IPV6 ? "ipv6:"
                                                        : "dns:///";
            pos = (size_t)snprintf(uri, uri_size, "%s%s", scheme, item);
        } else {
            /* gRPC resolves a list only for literal addresses of one family. */
            if (kind != first_kind || kind == ADDRESS_NAME) {
                return CJ_ERR_INVALID;
            }
            pos += (size_t)snprintf(
                uri + pos, pos < uri_size ? uri_size - pos : 0, ",%s", item);
        }
        if (pos >= uri_size) {
            return CJ_ERR_INVALID;
        }
        count++;
    }
    return count > 0 ? CJ_OK : CJ_ERR_INVALID;
}

bool cj_rpc_targets_valid(const char *targets)
{
    char uri[CJ_RPC_TARGETS_MAX_LEN + 16];
    char first_host[256];

    return target_build(targets, uri, sizeof(uri), first_host,
                        sizeof(first_host)) == CJ_OK;
}

/* Returns 0 when the leaf certificate `peer_pem` has the CN `expected`. */
static int verify_server_identity(const char *target_name, const char *peer_pem,
                                  void *expected)
{
    (void)target_name;
    char cn[CJ_RPC_IDENTITY_MAX_LEN + 2];
    int result = 1;
    BIO *bio = BIO_new_mem_buf(peer_pem, -1);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    if (cert != NULL) {
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                            NID_commonName, cn, sizeof(cn));
        if (len > 0 && (size_t)len < sizeof(cn) - 1 &&
            strcmp(cn, (const char *)expected) == 0) {
            result = 0;
        }
    }
    if (result != 0) {
        cj_log(CJ_LOG_WARN, "rpc.server_identity_mismatch", NULL,
               CJ_F_STR("expected", (const char *)expected));
    }
    X509_free(cert);
    BIO_free(bio);
    return result;
}

static void free_expected_identity(void *expected)
{
    free(expected);
}

static enum cj_status channel_credentials(const struct cj_rpc_client_options *o,
                                          grpc_channel_credentials **out)
{
    enum cj_status result;
    char *ca = NULL;
    char *cert = NULL;
    char *key = NULL;

    *out = NULL;
    if (o->plaintext) {
        *out = grpc_insecure_credentials_create();
        return CJ_OK;
    }
    if (o->tls_ca_file == NULL || o->tls_cert_file == NULL ||
        o->tls_key_file == NULL) {
        return CJ_ERR_INVALID;
    }
    result = cj_rpc_read_pem(o->tls_ca_file, &ca);
    if (result == CJ_OK) {
        result = cj_rpc_read_pem(o->tls_cert_file, &cert);
    }
    if (result == CJ_OK) {
        result = cj_rpc_read_pem(o->tls_key_file, &key);
    }
    if (result == CJ_OK) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key,
                                           .cert_chain = cert};
        grpc_ssl_verify_peer_options verify = {0};
        if (o->expected_server_identity != NULL) {
            /* gRPC owns the copy and frees it with the credentials. */
            verify.verify_peer_callback = verify_server_identity;
            verify.verify_peer_callback_userdata =
                strdup(o->expected_server_identity);
            verify.verify_peer_destruct = free_expected_identity;
            if (verify.verify_peer_callback_userdata == NULL) {
                result = CJ_ERR_NOMEM;
            }
        }
        if (result == CJ_OK) {
            *out = grpc_ssl_credentials_create_ex(ca, &pair, &verify, NULL);
            result = *out != NULL ? CJ_OK : CJ_ERR_INVALID;
        }
    }
    if (ca != NULL) {
        sodium_free(ca);
    }
    if (cert != NULL) {
        sodium_free(cert);
    }
    if (key != NULL) {
        sodium_free(key);
    }
    return result;
}

enum cj_status cj_rpc_client_create(const struct cj_rpc_client_options *o,
                                    struct cj_rpc_client **out)
{
    enum cj_status result;
    struct cj_rpc_client *client = NULL;
    grpc_channel_credentials *creds = NULL;
    char uri[CJ_RPC_TARGETS_MAX_LEN + 16];
    char first_host[256];

    *out = NULL;
    /* sodium_malloc (key files) and randombytes (request ids) need it. */
    if (sodium_init() < 0) {
        return CJ_ERR_INTERNAL;
    }
    result = target_build(o->targets, uri, sizeof(uri), first_host,
                          sizeof(first_host));
    if (result != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "rpc.client_targets_invalid", NULL,
               CJ_F_STR("targets", o->targets != NULL ? o->targets : ""));
        return result;
    }
    client = calloc(1, sizeof(*client));
    if (client == NULL) {
        return CJ_ERR_NOMEM;
    }
    (void)cj_rpc_absl_disable_deadlock_detection();
    cj_rpc_core_log_route();
    grpc_init();
    client->max_message_bytes = o->max_message_bytes != 0
                                    ? o->max_message_bytes
                                    : CJ_RPC_CLIENT_DEFAULT_MAX_MESSAGE;
    client->wait_for_ready = o->wait_for_ready;
    client->default_timeout_ms = o->default_timeout_ms > 0
                                     ? o->default_timeout_ms
                                     : CJ_RPC_CLIENT_DEFAULT_TIMEOUT_MS;
    result = channel_credentials(o, &creds);
    if (result != CJ_OK) {
        goto out;
    }
    grpc_arg args[] = {
        {.type = GRPC_ARG_STRING,
         .key = GRPC_ARG_SERVICE_CONFIG,
         .value.string = CJ_RPC_ROUND_ROBIN_CONFIG},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)client->max_message_bytes},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)client->max_message_bytes},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = CJ_RPC_CLIENT_RECONNECT_MIN_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = CJ_RPC_CLIENT_RECONNECT_MAX_MS},
        /* Must stay last: plaintext channels leave it out. */
        {.type = GRPC_ARG_STRING,
         .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
         .value.string =
             (char *)(o->tls_server_name != NULL ? o->tls_server_name
                                                 : first_host)},
    };
    grpc_channel_args channel_args = {
        .num_args = sizeof(args) / sizeof(args[0]) - (o->plaintext ? 1 : 0),
        .args = args,
    };
    client->channel = grpc_channel_create(uri, creds, &channel_args);
    if (client->channel == NULL) {
        result = CJ_ERR_INVALID;
        goto out;
    }
    *out = client;
    client = NULL;
    result = CJ_OK;
out:
    if (creds != NULL) {
        grpc_channel_credentials_release(creds);
    }
    cj_rpc_client_destroy(client);
    return result;
}

/*
 * Each thread that makes calls keeps one pluck completion queue and reuses
 * it, because creating, shutting down and destroying a queue per call cost
 * about 6,300 instructions of a 71,000-instruction Health/Check call
 * (callgrind, client side). Calls are synchronous, so a queue has at most
 * one pending batch and is empty between calls. Each queue takes its own
 * grpc_init() reference so that the core outlives it. The queue is
 * destroyed at thread exit, or earlier when its thread destroys a client,
 * because the main thread never runs key destructors.
 */
static pthread_key_t thread_cq_key;
static pthread_once_t thread_cq_once = PTHREAD_ONCE_INIT;
static bool thread_cq_key_ok;

static void thread_cq_destroy(void *value)
{
    grpc_completion_queue *cq = value;

    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
}

static void thread_cq_key_create(void)
{
    thread_cq_key_ok =
        pthread_key_create(&thread_cq_key, thread_cq_destroy) == 0;
}

/*
 * Returns the calling thread's queue, creating it on first use, and sets
 * *cached. Without a thread key it returns a new queue with *cached false,
 * and the caller destroys it with thread_cq_destroy after the call.
 */
static grpc_completion_queue *thread_cq_get(bool *cached)
{
    grpc_completion_queue *cq = NULL;

    pthread_once(&thread_cq_once, thread_cq_key_create);
    *cached = false;
    if (thread_cq_key_ok) {
        cq = pthread_getspecific(thread_cq_key);
        if (cq != NULL) {
            *cached = true;
            return cq;
        }
    }
    grpc_init();
    cq = grpc_completion_queue_create_for_pluck(NULL);
    if (thread_cq_key_ok && pthread_setspecific(thread_cq_key, cq) == 0) {
        *cached = true;
    }
    return cq;
}

/* Destroys the calling thread's queue, if it has one. */
static void thread_cq_release(void)
{
    pthread_once(&thread_cq_once, thread_cq_key_create);
    if (!thread_cq_key_ok) {
        return;
    }
    grpc_completion_queue *cq = pthread_getspecific(thread_cq_key);
    if (cq != NULL) {
        pthread_setspecific(thread_cq_key, NULL);
        thread_cq_destroy(cq);
    }
}

void cj_rpc_client_destroy(struct cj_rpc_client *client)
{
    if (client == NULL) {
        return;
    }
    thread_cq_release();
    if (client->channel != NULL) {
        grpc_channel_destroy(client->channel);
    }
    free(client);
    grpc_shutdown();
}

/* The state of one call, kept together for the cleanup. */
struct client_call {
    grpc_completion_queue *cq;
    bool cq_cached; /* cq is the thread's queue, kept after the call */
    grpc_call *call;
    struct cj_caller_metadata caller_md;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code code;
    grpc_slice details;
    uint32_t initial_flags; /* GRPC_INITIAL_METADATA_* */
};

/* Runs the single batch of a unary call and waits for it. */
static enum cj_status client_call_run(struct client_call *c)
{
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = c->initial_flags;
    ops[0].data.send_initial_metadata.count = c->caller_md.count;
    ops[0].data.send_initial_metadata.metadata = c->caller_md.items;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[5].data.recv_status_on_client.status = &c->code;
    ops[5].data.recv_status_on_client.status_details = &c->details;

    if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK) {
        return CJ_ERR_INTERNAL;
    }
    /* The call's deadline bounds this wait: the core completes the batch
     * with DEADLINE_EXCEEDED at the latest then. */
    grpc_event ev = grpc_completion_queue_pluck(
        c->cq, c, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success ? CJ_OK : CJ_ERR_INTERNAL;
}

static void client_call_cleanup(struct client_call *c)
{
    if (c->call != NULL) {
        grpc_call_unref(c->call);
    }
    if (c->cq != NULL && !c->cq_cached) {
        thread_cq_destroy(c->cq);
    }
    if (c->send != NULL) {
        grpc_byte_buffer_destroy(c->send);
    }
    if (c->recv != NULL) {
        grpc_byte_buffer_destroy(c->recv);
    }
    cj_caller_metadata_release(&c->caller_md);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details);
}

static void error_set(char *error, const char *format, const char *text)
{
    if (error != NULL) {
        snprintf(error, CJ_RPC_CLIENT_ERROR_MAX, format, text);
    }
}

int64_t cj_rpc_retry_after_parse(const char *text, size_t len)
{
    int64_t seconds = 0;

    if (len == 0 || len > 6 || text[0] == '0') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return 0;
        }
        seconds = seconds * 10 + (text[i] - '0');
    }
    return seconds <= CJ_RETRY_AFTER_MAX_S ? seconds : 0;
}

/* Returns the retry-after value among `trailers`; 0 when absent. */
static int64_t retry_after_find(const grpc_metadata_array *trailers)
{
    for (size_t i = 0; i < trailers->count; i++) {
        const grpc_metadata *md = &trailers->metadata[i];

        if (grpc_slice_str_cmp(md->key, CJ_MD_RETRY_AFTER) == 0) {
            return cj_rpc_retry_after_parse(
                (const char *)GRPC_SLICE_START_PTR(md->value),
                GRPC_SLICE_LENGTH(md->value));
        }
    }
    return 0;
}

enum cj_status
cj_rpc_client_call(struct cj_rpc_client *client, const char *path,
                   const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type,
                   const struct cj_caller_context *caller, int64_t timeout_ms,
                   ProtobufCMessage **response, int *grpc_code, char *error)
{
    struct cj_rpc_call_result result;
    enum cj_status status =
        cj_rpc_client_call_result(client, path, request, response_type, caller,
                                  timeout_ms, response, &result);

    if (grpc_code != NULL) {
        *grpc_code = result.grpc_code;
    }
    if (error != NULL) {
        memcpy(error, result.error, CJ_RPC_CLIENT_ERROR_MAX);
    }
    return status;
}

/*
 * Returns the timeout of a call, shortened while the channel has no
 * connection. Waiting for ready pays off while the first connection is
 * made. Once a connection was lost or refused, the core keeps reporting
 * TRANSIENT_FAILURE (or CONNECTING, during an attempt) until an attempt
 * succeeds. A waiting call would then sit out its whole deadline for a
 * peer that may stay down. Such a call instead ends the reconnect backoff
 * so that the core makes a new attempt at once, and waits at most
 * CJ_RPC_CLIENT_DOWN_WAIT_MS. A peer that is back completes the call, and
 * one that is still down costs that wait instead of the deadline. The
 * backoff is ended at most every CJ_RPC_CLIENT_DOWN_RETRY_MS, so that a
 * stream of calls is no stream of connection attempts.
 */
static int64_t call_timeout_ms(struct cj_rpc_client *client, int64_t timeout_ms)
{
    int64_t timeout = timeout_ms > 0 ? timeout_ms : client->default_timeout_ms;
    grpc_connectivity_state state;
    int64_t now_ms;
    int64_t last_ms;

    if (!client->wait_for_ready) {
        return timeout;
    }
    state = grpc_channel_check_connectivity_state(client->channel, 0);
    if (state == GRPC_CHANNEL_READY || state == GRPC_CHANNEL_IDLE) {
        return timeout;
    }
    now_ms = cj_monotonic_ms();
    last_ms = __atomic_load_n(&client->backoff_ended_ms, __ATOMIC_RELAXED);
    if (now_ms - last_ms >= CJ_RPC_CLIENT_DOWN_RETRY_MS &&
        __atomic_compare_exchange_n(&client->backoff_ended_ms, &last_ms, now_ms,
                                    false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
        grpc_channel_reset_connect_backoff(client->channel);
    }
    return timeout < CJ_RPC_CLIENT_DOWN_WAIT_MS ? timeout
                                                : CJ_RPC_CLIENT_DOWN_WAIT_MS;
}

bool cj_rpc_client_connected(struct cj_rpc_client *client)
{
    return grpc_channel_check_connectivity_state(client->channel, 0) ==
           GRPC_CHANNEL_READY;
}

enum cj_status
cj_rpc_client_call_result(struct cj_rpc_client *client, const char *path,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *response_type,
                          const struct cj_caller_context *caller,
                          int64_t timeout_ms, ProtobufCMessage **response,
                          struct cj_rpc_call_result *call_result)
{
    struct cj_rpc_call_result ignored;
    char *error;
    enum cj_status result;
    struct client_call c;
    char caller_error[CJ_CALLER_ERROR_MAX];

    memset(&c, 0, sizeof(c));
    c.code = GRPC_STATUS_UNKNOWN;
    c.details = grpc_empty_slice();
    c.initial_flags =
        client->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    grpc_metadata_array_init(&c.initial_md);
    grpc_metadata_array_init(&c.trailing_md);
    *response = NULL;
    if (call_result == NULL) {
        call_result = &ignored;
    }
    memset(call_result, 0, sizeof(*call_result));
    call_result->grpc_code = GRPC_STATUS_UNKNOWN;
    error = call_result->error;

    if (caller != NULL) {
        result = cj_caller_metadata_build(caller, &c.caller_md, caller_error);
        if (result != CJ_OK) {
            error_set(error, "%s", caller_error);
            goto out;
        }
    }
    result = cj_rpc_message_pack(request, client->max_message_bytes, &c.send);
    if (result != CJ_OK) {
        error_set(error, "request to %s is too large", path);
        goto out;
    }
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(call_timeout_ms(client, timeout_ms),
                                          GPR_TIMESPAN));
    c.cq = thread_cq_get(&c.cq_cached);
    grpc_slice method = grpc_slice_from_static_string(path);
    c.call =
        grpc_channel_create_call(client->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                 c.cq, method, NULL, deadline, NULL);
    if (c.call == NULL) {
        result = CJ_ERR_INTERNAL;
        goto out;
    }
    result = client_call_run(&c);
    if (result != CJ_OK) {
        error_set(error, "call to %s could not run", path);
        goto out;
    }
    call_result->grpc_code = c.code;
    if (c.code != GRPC_STATUS_OK) {
        snprintf(error, CJ_RPC_CLIENT_ERROR_MAX, "%.*s",
                 (int)GRPC_SLICE_LENGTH(c.details),
                 (const char *)GRPC_SLICE_START_PTR(c.details));
        call_result->retry_after_s = retry_after_find(&c.trailing_md);
        result = cj_status_from_grpc(c.code);
        goto out;
    }
    if (c.recv == NULL) {
        error_set(error, "%s returned OK without a message", path);
        result = CJ_ERR_INTERNAL;
        goto out;
    }
    result = cj_rpc_message_unpack(c.recv, response_type,
                                   client->max_message_bytes, response, NULL);
    if (result != CJ_OK) {
        error_set(error, "response of %s does not parse", path);
    }
out:
    client_call_cleanup(&c);
    return result;
}

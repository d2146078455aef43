/*
 * Backend calls over the common gRPC client, one channel per service, with
 * the caller context as metadata, and a probe thread that keeps each
 * service's readiness (grpc.health.v1 Check) for /readyz.
 */
#include "gw_backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "gw_json.h"
#include "gw_net.h"
#include "log.h"
#include "rpc_client.h"

/* Seconds between two readiness probes of every dependency. */
#define GW_PROBE_INTERVAL_SECONDS 5
/* Deadline of one probe, in milliseconds. */
#define GW_PROBE_DEADLINE_MS 1000
/* Deadline of the probe /readyz sends before it reports a backend down, in
 * milliseconds: short, because the readiness request waits for it. */
#define GW_READYZ_PROBE_DEADLINE_MS 500
/* Largest message the gateway accepts from a backend, in bytes. */
#define GW_BACKEND_MESSAGE_BYTES_MAX (1024 * 1024)

struct gw_backends {
    const struct gw_settings *settings;
    struct cj_rpc_client *clients[GW_BACKEND_COUNT];
    /* enum gw_dependency_state, read and written atomically. */
    int states[GW_BACKEND_COUNT];
    int redis_state;
    gw_redis_probe_fn redis_probe;
    void *redis_probe_arg;

    pthread_t prober;
    bool prober_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

static const char *gw_backend_target(const struct gw_settings *settings,
                                     enum gw_backend backend)
{
    switch (backend) {
    case GW_BACKEND_KMS:
        return settings->kms_addr;
    case GW_BACKEND_SESSION:
        return settings->session_addr;
    case GW_BACKEND_AUTH:
        return settings->auth_addr;
    case GW_BACKEND_NONE:
    case GW_BACKEND_COUNT:
        break;
    }
    return NULL;
}

static enum cj_status gw_backends_connect(struct gw_backends *backends)
{
    const struct gw_settings *settings = backends->settings;

    for (int b = GW_BACKEND_KMS; b < GW_BACKEND_COUNT; b++) {
        struct cj_rpc_client_options options = {
            .targets = gw_backend_target(settings, b),
            .plaintext = settings->grpc_plaintext,
            .tls_ca_file = settings->tls_ca,
            .tls_cert_file = settings->tls_cert,
            .tls_key_file = settings->tls_key,
            .max_message_bytes = GW_BACKEND_MESSAGE_BYTES_MAX,
            .default_timeout_ms = settings->rpc_deadline_ms,
            .wait_for_ready = true,
        };
        enum cj_status status =
            cj_rpc_client_create(&options, &backends->clients[b]);

        if (status != CJ_OK) {
            cj_log(CJ_LOG_ERROR, "gateway.backend_client_failed", NULL,
                   CJ_F_STR("backend", gw_backend_name(b)),
                   CJ_F_STR("target", options.targets),
                   CJ_F_STR("status", cj_status_name(status)));
            return status;
        }
    }
    return CJ_OK;
}

static const char *gw_dependency_state_name(int state)
{
    switch (state) {
    case GW_DEP_UP:
        return "up";
    case GW_DEP_DOWN:
        return "down";
    case GW_DEP_CLOCK_SKEW:
        return "clock_skew";
    case GW_DEP_WRITE_REFUSED:
        return "write_refused";
    default:
        return "unknown";
    }
}

static void gw_state_set(int *slot, int state, const char *name)
{
    int old = __atomic_exchange_n(slot, state, __ATOMIC_RELAXED);

    if (old != state) {
        cj_log(state == GW_DEP_UP ? CJ_LOG_INFO : CJ_LOG_WARN,
               "gateway.dependency_state", NULL, CJ_F_STR("dependency", name),
               CJ_F_STR("state", gw_dependency_state_name(state)));
    }
}

static void gw_probe_backend(struct gw_backends *backends,
                             enum gw_backend backend, int64_t deadline_ms)
{
    Grpc__Health__V1__HealthCheckRequest request =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *response = NULL;
    int state = GW_DEP_DOWN;
    enum cj_status status;

    status = cj_rpc_client_call(
        backends->clients[backend], "/grpc.health.v1.Health/Check",
        &request.base, &grpc__health__v1__health_check_response__descriptor,
        NULL, deadline_ms, &response, NULL, NULL);
    if (status == CJ_OK &&
        ((Grpc__Health__V1__HealthCheckResponse *)response)->status ==
            GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        state = GW_DEP_UP;
    }
    gw_json_message_free(response);
    gw_state_set(&backends->states[backend], state, gw_backend_name(backend));
}

static void gw_probe_all(struct gw_backends *backends)
{
    for (int b = GW_BACKEND_KMS; b < GW_BACKEND_COUNT; b++) {
        gw_probe_backend(backends, b, GW_PROBE_DEADLINE_MS);
    }
    if (backends->redis_probe != NULL) {
        gw_state_set(&backends->redis_state,
                     backends->redis_probe(backends->redis_probe_arg), "redis");
    }
}

static void *gw_prober_main(void *arg)
{
    struct gw_backends *backends = arg;

    pthread_mutex_lock(&backends->lock);
    while (!backends->stopping) {
        struct timespec until;

        pthread_mutex_unlock(&backends->lock);
        gw_probe_all(backends);
        pthread_mutex_lock(&backends->lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += GW_PROBE_INTERVAL_SECONDS;
        while (!backends->stopping &&
               pthread_cond_timedwait(&backends->wake, &backends->lock,
                                      &until) == 0) {
        }
    }
    pthread_mutex_unlock(&backends->lock);
    return NULL;
}

struct gw_backends *gw_backends_new(const struct gw_settings *settings)
{
    struct gw_backends *backends = calloc(1, sizeof(*backends));

    if (backends == NULL) {
        return NULL;
    }
    backends->settings = settings;
    pthread_mutex_init(&backends->lock, NULL);
    pthread_cond_init(&backends->wake, NULL);
    if (gw_backends_connect(backends) != CJ_OK) {
        gw_backends_free(backends);
        return NULL;
    }
    return backends;
}

void gw_backends_set_redis_probe(struct gw_backends *backends,
                                 gw_redis_probe_fn probe, void *arg)
{
    backends->redis_probe = probe;
    backends->redis_probe_arg = arg;
}

enum cj_status gw_backends_start_probes(struct gw_backends *backends)
{
    if (pthread_create(&backends->prober, NULL, gw_prober_main, backends) !=
        0) {
        return CJ_ERR_INTERNAL;
    }
    backends->prober_started = true;
    return CJ_OK;
}

void gw_backends_free(struct gw_backends *backends)
{
    if (backends == NULL) {
        return;
    }
    if (backends->prober_started) {
        pthread_mutex_lock(&backends->lock);
        backends->stopping = true;
        pthread_cond_broadcast(&backends->wake);
        pthread_mutex_unlock(&backends->lock);
        pthread_join(backends->prober, NULL);
    }
    for (int b = 0; b < GW_BACKEND_COUNT; b++) {
        cj_rpc_client_destroy(backends->clients[b]);
    }
    pthread_cond_destroy(&backends->wake);
    pthread_mutex_destroy(&backends->lock);
    free(backends);
}

static void gw_copy_id(char *dst, size_t size, const char *src)
{
    if (src != NULL) {
        gw_copy_text(dst, size, src);
    }
}

static void gw_caller_fill(const struct gw_caller *caller,
                           struct cj_caller_context *out)
{
    memset(out, 0, sizeof(*out));
    if (caller == NULL) {
        return;
    }
    gw_copy_id(out->user_id, sizeof(out->user_id), caller->user_id);
    gw_copy_id(out->session_id, sizeof(out->session_id), caller->session_id);
    gw_copy_id(out->token_id, sizeof(out->token_id), caller->token_id);
    out->token_expires_at = caller->token_expires_at;
    if (caller->channel != NULL) {
        out->channel = strcmp(caller->channel, "stateful") == 0
                           ? CJ_CHANNEL_STATEFUL
                           : CJ_CHANNEL_STATELESS;
    }
    gw_copy_id(out->client_ip, sizeof(out->client_ip), caller->client_ip);
    gw_copy_id(out->user_agent, sizeof(out->user_agent), caller->user_agent);
    gw_copy_id(out->request_id, sizeof(out->request_id), caller->request_id);
}

grpc_status_code gw_backend_call(struct gw_backends *backends,
                                 const struct gw_rpc *rpc,
                                 const struct gw_caller *caller,
                                 const ProtobufCMessage *request,
                                 ProtobufCMessage **response, char *detail,
                                 size_t detail_size, unsigned *retry_after_s)
{
    struct cj_caller_context context;
    struct cj_rpc_call_result result;
    int code;
    enum cj_status status;

    *response = NULL;
    if (retry_after_s != NULL) {
        *retry_after_s = 0;
    }
    if (rpc->backend <= GW_BACKEND_NONE || rpc->backend >= GW_BACKEND_COUNT) {
        snprintf(detail, detail_size, "route has no backend");
        return GRPC_STATUS_INTERNAL;
    }
    gw_caller_fill(caller, &context);
    status = cj_rpc_client_call_result(
        backends->clients[rpc->backend], rpc->path, request, rpc->response,
        &context, backends->settings->rpc_deadline_ms, response, &result);
    gw_copy_text(detail, detail_size, result.error);
    code = result.grpc_code;
    if (retry_after_s != NULL) {
        *retry_after_s = (unsigned)result.retry_after_s;
    }
    if (status == CJ_OK) {
        return GRPC_STATUS_OK;
    }
    /* Only a failure to reach the backend marks it down. gRPC C core 1.51
     * reports a status the server sent and one it generated locally
     * (connection refused, deadline) alike, so two signs distinguish them.
     * A retry-after trailer shows the backend shedding load (auth's
     * password gate under a login burst). A channel still connected after
     * the call shows the backend replied or was merely slow (waiting on kms
     * during a kms outage, say). Either way the backend is up.
     * gw_backends_state() also probes a backend again before /readyz reports it
     * down. */
    if ((status == CJ_ERR_UNAVAILABLE || status == CJ_ERR_TIMEOUT) &&
        result.retry_after_s == 0 &&
        !cj_rpc_client_connected(backends->clients[rpc->backend])) {
        gw_state_set(&backends->states[rpc->backend], GW_DEP_DOWN,
                     gw_backend_name(rpc->backend));
    }
    /* A local failure (no server, bad metadata) has no gRPC code. */
    return code > 0 ? (grpc_status_code)code : cj_status_to_grpc(status);
}

const char *gw_backends_state(struct gw_backends *backends, const char *name)
{
    int state = GW_DEP_UNKNOWN;

    if (strcmp(name, "redis") == 0) {
        state = __atomic_load_n(&backends->redis_state, __ATOMIC_RELAXED);
    } else {
        for (int b = GW_BACKEND_KMS; b < GW_BACKEND_COUNT; b++) {
            if (strcmp(name, gw_backend_name(b)) != 0) {
                continue;
            }
            state = __atomic_load_n(&backends->states[b], __ATOMIC_RELAXED);
            if (state == GW_DEP_DOWN) {
                /* The mark may come from a failed call or an old probe. */
                gw_probe_backend(backends, b, GW_READYZ_PROBE_DEADLINE_MS);
                state = __atomic_load_n(&backends->states[b], __ATOMIC_RELAXED);
            }
        }
    }
    return gw_dependency_state_name(state);
}

/*
 * Server lifecycle: creation and registration, the completion-queue
 * threads, graceful shutdown, and signal handling for service processes.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc_security.h>
#include <sodium.h>

#include "deadline.h"
#include "log.h"
#include "rpc_absl.h"
#include "rpc_core_log.h"

/* Built-in unary methods served next to the service's own. */
static const struct cj_rpc_method *const builtin_methods[] = {
    &cj_rpc_health_check_method,
};
#define N_BUILTIN (sizeof(builtin_methods) / sizeof(builtin_methods[0]))

void cj_rpc_live_add(struct cj_rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    server->live_calls++;
    pthread_mutex_unlock(&server->lock);
}

void cj_rpc_live_remove(struct cj_rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    server->live_calls--;
    if (server->live_calls == 0) {
        pthread_cond_broadcast(&server->changed);
    }
    pthread_mutex_unlock(&server->lock);
}

bool cj_rpc_accepting(struct cj_rpc_server *server)
{
    pthread_mutex_lock(&server->lock);
    bool accepting = !server->shutting_down;
    pthread_mutex_unlock(&server->lock);
    return accepting;
}

bool cj_rpc_deadline_passed(gpr_timespec deadline)
{
    return gpr_time_cmp(deadline, gpr_now(deadline.clock_type)) < 0;
}

static void on_server_shutdown(struct cj_rpc_tag *tag, bool ok)
{
    (void)ok;
    struct cj_rpc_server *server =
        CJ_CONTAINER_OF(tag, struct cj_rpc_server, shutdown_tag);
    pthread_mutex_lock(&server->lock);
    server->shutdown_done = true;
    pthread_cond_broadcast(&server->changed);
    pthread_mutex_unlock(&server->lock);
}

static enum cj_status validate_service(const struct cj_rpc_service *service)
{
    if (service == NULL || service->name == NULL ||
        (service->methods == NULL && service->n_methods > 0)) {
        return CJ_ERR_INVALID;
    }
    for (size_t i = 0; i < service->n_methods; i++) {
        const struct cj_rpc_method *m = &service->methods[i];
        if (m->path == NULL || m->path[0] != '/' || m->request == NULL ||
            m->response == NULL || m->handler == NULL) {
            cj_log(CJ_LOG_ERROR, "rpc.method_table_invalid", NULL,
                   CJ_F_STR("grpc_service", service->name),
                   CJ_F_INT("index", i));
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

static char *copy_option(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

/* Copies the options, applying defaults to zero fields. */
static enum cj_status apply_options(struct cj_rpc_server *server,
                                    const struct cj_rpc_server_options *o)
{
    if (o->listen == NULL || o->listen[0] == '\0') {
        return CJ_ERR_INVALID;
    }
    if (!o->plaintext && (o->tls_ca_file == NULL || o->tls_cert_file == NULL ||
                          o->tls_key_file == NULL)) {
        return CJ_ERR_INVALID;
    }
    server->plaintext = o->plaintext;
    server->listen = copy_option(o->listen);
    server->tls_ca_file = copy_option(o->tls_ca_file);
    server->tls_cert_file = copy_option(o->tls_cert_file);
    server->tls_key_file = copy_option(o->tls_key_file);
    server->max_message_bytes = o->max_message_bytes != 0
                                    ? o->max_message_bytes
                                    : CJ_RPC_DEFAULT_MAX_MESSAGE_BYTES;
    size_t workers = o->worker_threads != 0 ? o->worker_threads
                                            : CJ_RPC_DEFAULT_WORKER_THREADS;
    /* Blocking handlers run on queue threads (see rpc_pool.h), one spare
     * per worker: a call then needs no hand-off to a worker thread and
     * back, which cost more than the whole handler of the cheapest
     * methods. */
    cj_rpc_threads_size(&server->threads,
                        o->cq_threads != 0 ? o->cq_threads
                                           : CJ_RPC_DEFAULT_CQ_THREADS,
                        workers);
    server->slots_per_method = o->slots_per_method != 0
                                   ? o->slots_per_method
                                   : CJ_RPC_DEFAULT_SLOTS_PER_METHOD;
    server->shutdown_grace_ms = o->shutdown_grace_ms > 0
                                    ? o->shutdown_grace_ms
                                    : CJ_RPC_DEFAULT_SHUTDOWN_GRACE_MS;
    server->on_grace_expired = o->on_grace_expired;
    server->on_grace_expired_arg = o->on_grace_expired_arg;
    if (server->listen == NULL) {
        return CJ_ERR_NOMEM;
    }
    return cj_pool_create(workers,
                          o->worker_queue != 0 ? o->worker_queue
                                               : CJ_RPC_DEFAULT_WORKER_QUEUE,
                          &server->pool);
}

static enum cj_status register_methods(struct cj_rpc_server *server)
{
    const struct cj_rpc_service *service = server->service;

    server->n_entries = service->n_methods + N_BUILTIN;
    server->entries = calloc(server->n_entries, sizeof(*server->entries));
    if (server->entries == NULL) {
        return CJ_ERR_NOMEM;
    }
    for (size_t i = 0; i < server->n_entries; i++) {
        struct cj_rpc_entry *e = &server->entries[i];
        if (i < service->n_methods) {
            e->method = &service->methods[i];
            e->state = service->state;
        } else {
            e->method = builtin_methods[i - service->n_methods];
            e->state = server;
        }
        e->handle = grpc_server_register_method(
            server->server, e->method->path, NULL,
            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (e->handle == NULL) {
            cj_log(CJ_LOG_ERROR, "rpc.register_failed", NULL,
                   CJ_F_STR("method", e->method->path));
            return CJ_ERR_INVALID;
        }
    }
    server->health_watch_handle = grpc_server_register_method(
        server->server, CJ_RPC_HEALTH_WATCH_PATH, NULL,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    server->reflection_handles[0] = grpc_server_register_method(
        server->server, CJ_RPC_REFLECTION_V1ALPHA_PATH, NULL,
        GRPC_SRM_PAYLOAD_NONE, 0);
    server->reflection_handles[1] =
        grpc_server_register_method(server->server, CJ_RPC_REFLECTION_V1_PATH,
                                    NULL, GRPC_SRM_PAYLOAD_NONE, 0);
    if (server->health_watch_handle == NULL ||
        server->reflection_handles[0] == NULL ||
        server->reflection_handles[1] == NULL) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

static enum cj_status bind_port(struct cj_rpc_server *server)
{
    enum cj_status result = CJ_ERR_UNAVAILABLE;
    grpc_server_credentials *creds = NULL;

    if (server->plaintext) {
        creds = grpc_insecure_server_credentials_create();
    } else {
        result = cj_rpc_server_credentials(server, &creds);
        if (result != CJ_OK) {
            goto out;
        }
    }
    server->port =
        grpc_server_add_http2_port(server->server, server->listen, creds);
    if (server->port <= 0) {
        cj_log(CJ_LOG_ERROR, "rpc.bind_failed", NULL,
               CJ_F_STR("listen", server->listen));
        result = CJ_ERR_UNAVAILABLE;
        goto out;
    }
    result = CJ_OK;
out:
    if (creds != NULL) {
        grpc_server_credentials_release(creds);
    }
    return result;
}

enum cj_status cj_rpc_server_create(const struct cj_rpc_service *service,
                                    const struct cj_rpc_server_options *options,
                                    struct cj_rpc_server **out)
{
    enum cj_status result = CJ_ERR_NOMEM;
    struct cj_rpc_server *server = NULL;

    *out = NULL;
    /* sodium_malloc (key files) and randombytes (request ids) need it. */
    if (sodium_init() < 0) {
        return CJ_ERR_INTERNAL;
    }
    result = validate_service(service);
    if (result != CJ_OK) {
        return result;
    }
    server = calloc(1, sizeof(*server));
    if (server == NULL) {
        return CJ_ERR_NOMEM;
    }
    /* First, so that a failure leaves nothing else to undo. */
    if (cj_cond_init_monotonic(&server->changed) != CJ_OK) {
        free(server);
        return CJ_ERR_INTERNAL;
    }
    (void)cj_rpc_absl_disable_deadlock_detection();
    cj_rpc_core_log_route();
    grpc_init();
    server->service = service;
    server->shutdown_tag.complete = on_server_shutdown;
    pthread_mutex_init(&server->lock, NULL);
    pthread_mutex_init(&server->unauthenticated_log.mutex, NULL);
    pthread_mutex_init(&server->permission_denied_log.mutex, NULL);
    cj_rpc_threads_init(&server->threads);

    result = apply_options(server, options);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_rpc_reflection_create(service->name, &server->reflection);
    if (result != CJ_OK) {
        goto out;
    }
    cj_rpc_health_init(server);

    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)server->max_message_bytes},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)server->max_message_bytes},
        /* gRPC sets SO_REUSEPORT by default, which lets a second process
         * bind the same port and silently share its calls. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_ALLOW_REUSEPORT,
         .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
         .value.integer = CJ_RPC_MAX_CONCURRENT_STREAMS},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
         .value.integer = CJ_RPC_HANDSHAKE_TIMEOUT_MS},
    };
    grpc_channel_args channel_args = {
        .num_args = sizeof(args) / sizeof(args[0]),
        .args = args,
    };
    server->server = grpc_server_create(&channel_args, NULL);
    server->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server->server, server->cq, NULL);

    result = register_methods(server);
    if (result != CJ_OK) {
        goto out;
    }
    result = bind_port(server);
    if (result != CJ_OK) {
        goto out;
    }
    *out = server;
    server = NULL;
out:
    cj_rpc_server_destroy(server);
    return result;
}

int cj_rpc_server_port(const struct cj_rpc_server *server)
{
    return server->port;
}

static void post_all_slots(struct cj_rpc_server *server)
{
    for (size_t s = 0; s < server->slots_per_method; s++) {
        for (size_t i = 0; i < server->n_entries; i++) {
            cj_rpc_unary_post(server, &server->entries[i]);
        }
        cj_rpc_unregistered_post(server);
        cj_rpc_health_watch_post(server);
        cj_rpc_reflection_post(server, 0);
        cj_rpc_reflection_post(server, 1);
    }
}

enum cj_status cj_rpc_server_start(struct cj_rpc_server *server)
{
    grpc_server_start(server->server);
    pthread_mutex_lock(&server->lock);
    server->started = true;
    pthread_mutex_unlock(&server->lock);
    post_all_slots(server);

    enum cj_status rc = cj_rpc_threads_start(server);
    if (rc != CJ_OK) {
        return rc;
    }
    if (server->plaintext) {
        cj_log(CJ_LOG_WARN, "rpc.plaintext", NULL,
               CJ_F_STR("grpc_service", server->service->name),
               CJ_F_STR("detail", "gRPC without TLS: access rules are not "
                                  "enforced and every caller's context is "
                                  "trusted; dev profile only"));
    }
    cj_log(CJ_LOG_INFO, "rpc.listening", NULL,
           CJ_F_STR("grpc_service", server->service->name),
           CJ_F_STR("listen", server->listen), CJ_F_INT("port", server->port),
           CJ_F_BOOL("tls", !server->plaintext));
    return CJ_OK;
}

/* Waits on server->changed until *flag is true or the deadline passes. */
static void wait_flag_until(struct cj_rpc_server *server, const bool *flag,
                            const struct timespec *deadline)
{
    while (!*flag) {
        if (deadline == NULL) {
            pthread_cond_wait(&server->changed, &server->lock);
        } else if (pthread_cond_timedwait(&server->changed, &server->lock,
                                          deadline) == ETIMEDOUT) {
            break;
        }
    }
}

/* Runs the service's on_grace_expired hook, once per shutdown. */
static void grace_expired(struct cj_rpc_server *server)
{
    if (server->grace_expired_ran || server->on_grace_expired == NULL) {
        return;
    }
    server->grace_expired_ran = true;
    cj_log(CJ_LOG_WARN, "rpc.shutdown_ending_work", NULL,
           CJ_F_STR("grpc_service", server->service->name),
           CJ_F_INT("grace_ms", server->shutdown_grace_ms));
    server->on_grace_expired(server->on_grace_expired_arg);
}

void cj_rpc_server_shutdown(struct cj_rpc_server *server)
{
    struct timespec grace_end;
    int64_t started_ms = cj_monotonic_ms();

    pthread_mutex_lock(&server->lock);
    if (server->stopped || !server->started) {
        pthread_mutex_unlock(&server->lock);
        return;
    }
    server->shutting_down = true;
    pthread_mutex_unlock(&server->lock);
    cj_log(CJ_LOG_INFO, "rpc.shutdown_started", NULL,
           CJ_F_STR("grpc_service", server->service->name));

    cj_rpc_health_stop(server);
    grpc_server_shutdown_and_notify(server->server, server->cq,
                                    &server->shutdown_tag);

    cj_deadline_after_ms(CLOCK_MONOTONIC, server->shutdown_grace_ms,
                         &grace_end);
    pthread_mutex_lock(&server->lock);
    wait_flag_until(server, &server->shutdown_done, &grace_end);
    bool graceful = server->shutdown_done;
    pthread_mutex_unlock(&server->lock);
    if (!graceful) {
        cj_log(CJ_LOG_WARN, "rpc.shutdown_cancelling", NULL,
               CJ_F_INT("grace_ms", server->shutdown_grace_ms));
        grace_expired(server);
        grpc_server_cancel_all_calls(server->server);
        pthread_mutex_lock(&server->lock);
        wait_flag_until(server, &server->shutdown_done, NULL);
        pthread_mutex_unlock(&server->lock);
    }

    /* Blocking handlers still queued run now, on the queue threads of the
     * running ones. gRPC counts a call done once its client gave up, so a
     * handler may still wait on a database after shutdown_done: the hook
     * must run when the grace ends whatever gRPC reported. */
    if (!cj_pool_stop_until(server->pool, &grace_end)) {
        grace_expired(server);
        cj_pool_stop(server->pool);
    }
    /* Replies need the queue, so it shuts down only once every call
     * struct is gone. */
    pthread_mutex_lock(&server->lock);
    while (server->live_calls > 0) {
        if (pthread_cond_timedwait(&server->changed, &server->lock,
                                   &grace_end) == ETIMEDOUT) {
            break;
        }
    }
    if (server->live_calls > 0) {
        /* Handlers outlived the grace: gRPC counts a call done once its
         * client gave up, so they may still wait on a database. */
        pthread_mutex_unlock(&server->lock);
        grace_expired(server);
        pthread_mutex_lock(&server->lock);
        while (server->live_calls > 0) {
            pthread_cond_wait(&server->changed, &server->lock);
        }
    }
    pthread_mutex_unlock(&server->lock);
    /* gRPC counts a call done once its client gave up, while its handler
     * may still wait on a database, so the grace is judged here too. */
    int64_t duration_ms = cj_monotonic_ms() - started_ms;
    if (duration_ms > server->shutdown_grace_ms) {
        graceful = false;
    }

    grpc_completion_queue_shutdown(server->cq);
    cj_rpc_threads_join(server);
    pthread_mutex_lock(&server->lock);
    server->stopped = true;
    pthread_mutex_unlock(&server->lock);
    cj_log(CJ_LOG_INFO, "rpc.shutdown_done", NULL,
           CJ_F_STR("grpc_service", server->service->name),
           CJ_F_BOOL("graceful", graceful),
           CJ_F_INT("duration_ms", duration_ms),
           CJ_F_INT("grace_ms", server->shutdown_grace_ms));
}

void cj_rpc_server_destroy(struct cj_rpc_server *server)
{
    if (server == NULL) {
        return;
    }
    cj_rpc_server_shutdown(server);
    if (server->server != NULL) {
        if (!server->started) {
            /* A server never started still needs its shutdown tag. */
            grpc_server_shutdown_and_notify(server->server, server->cq,
                                            &server->shutdown_tag);
            grpc_completion_queue_shutdown(server->cq);
            while (grpc_completion_queue_next(
                       server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN) {
            }
        }
        grpc_server_destroy(server->server);
    }
    if (server->cq != NULL) {
        grpc_completion_queue_destroy(server->cq);
    }
    cj_pool_destroy(server->pool);
    cj_rpc_reflection_destroy(server->reflection);
    pthread_cond_destroy(&server->changed);
    pthread_mutex_destroy(&server->lock);
    pthread_mutex_destroy(&server->unauthenticated_log.mutex);
    pthread_mutex_destroy(&server->permission_denied_log.mutex);
    cj_rpc_threads_destroy(&server->threads);
    free(server->entries);
    free(server->listen);
    free(server->tls_ca_file);
    free(server->tls_cert_file);
    free(server->tls_key_file);
    free(server);
    grpc_shutdown_blocking();
}

void cj_rpc_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int cj_rpc_server_wait_signal(const sigset_t *set)
{
    int signal_number = 0;
    while (sigwait(set, &signal_number) != 0) {
    }
    return signal_number;
}

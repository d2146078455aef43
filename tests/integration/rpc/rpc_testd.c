/*
 * rpc_testd: a gRPC server on the framework for the integration tests.
 * With CERROJO_RPC_TESTD_TABLE=control (the default) it serves methods that
 * the real services cannot offer on demand: switching health status (to
 * drive Watch) and holding a call in flight during shutdown. With kms,
 * session or auth it serves that service's own method table, access rules
 * included, with every handler replaced by a stub, so that the rules can be
 * tested without Postgres or Redis. It includes the framework's internal
 * header only to log the count of live call structs, so that tests can
 * check that cancelled streams leave none behind.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "auth_rpc.h"
#include "config.h"
#include "kms_rpc.h"
#include "log.h"
#include "proc_threads.h"
#include "rpc_internal.h"
#include "rpc_service.h"
#include "sess_rpc.h"

#define TESTD_ENV_PREFIX     "CERROJO_RPC_TESTD"
#define TESTD_DEFAULT_LISTEN "127.0.0.1:0"
/* Maximum time the Hold method keeps a call, in milliseconds. */
#define TESTD_HOLD_MAX_MS 10000

/* Maximum number of methods in a served table. */
#define TESTD_METHODS_MAX 32

struct testd_config {
    struct cj_rpc_settings grpc;
    char *table;
};

static const struct cj_config_option testd_options[] = {
    CJ_RPC_CONFIG_OPTIONS(TESTD_ENV_PREFIX, struct testd_config, grpc,
                          TESTD_DEFAULT_LISTEN),
    {.name = TESTD_ENV_PREFIX "_TABLE",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct testd_config, table),
     .default_value = "control",
     .help = "method table to serve: control, kms, session or auth"},
};
#define TESTD_OPTION_COUNT (sizeof(testd_options) / sizeof(testd_options[0]))

static struct cj_rpc_server *testd_server;

static ProtobufCMessage *empty_response(void)
{
    Cerrojo__V1__RecordAuditResponse *resp = malloc(sizeof(*resp));
    if (resp != NULL) {
        cerrojo__v1__record_audit_response__init(resp);
    }
    return resp != NULL ? &resp->base : NULL;
}

/* Sets the health status named by detail_json to event (SERVING or
 * NOT_SERVING). */
static enum cj_status set_health(struct cj_rpc_call *call,
                                 const ProtobufCMessage *request,
                                 ProtobufCMessage **response, void *state)
{
    (void)state;
    const Cerrojo__V1__RecordAuditRequest *req =
        (const Cerrojo__V1__RecordAuditRequest *)request;
    enum cj_rpc_health_status status;

    if (strcmp(req->event, "SERVING") == 0) {
        status = CJ_RPC_HEALTH_SERVING;
    } else if (strcmp(req->event, "NOT_SERVING") == 0) {
        status = CJ_RPC_HEALTH_NOT_SERVING;
    } else {
        cj_rpc_call_set_error(call, "event must be SERVING or NOT_SERVING");
        return CJ_ERR_INVALID;
    }
    if (cj_rpc_health_set(testd_server, req->detail_json, status) != CJ_OK) {
        cj_rpc_call_set_error(call, "health name rejected");
        return CJ_ERR_INVALID;
    }
    *response = empty_response();
    return *response != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

/* Holds the call for detail_json milliseconds, logging when it starts. */
static enum cj_status hold(struct cj_rpc_call *call,
                           const ProtobufCMessage *request,
                           ProtobufCMessage **response, void *state)
{
    (void)state;
    const Cerrojo__V1__RecordAuditRequest *req =
        (const Cerrojo__V1__RecordAuditRequest *)request;
    long ms = strtol(req->detail_json, NULL, 10);

    if (ms < 0 || ms > TESTD_HOLD_MAX_MS) {
        cj_rpc_call_set_error(call, "hold must be 0 to %d ms",
                              TESTD_HOLD_MAX_MS);
        return CJ_ERR_INVALID;
    }
    cj_log(CJ_LOG_INFO, "testd.hold_started", cj_rpc_call_request_id(call),
           CJ_F_INT("ms", ms));
    struct timespec pause = {.tv_sec = ms / 1000,
                             .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0) {
    }
    *response = empty_response();
    return *response != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

/* Logs testd.live_calls with the server's count of live call structs. */
static enum cj_status log_live_calls(struct cj_rpc_call *call,
                                     const ProtobufCMessage *request,
                                     ProtobufCMessage **response, void *state)
{
    (void)request;
    (void)state;
    pthread_mutex_lock(&testd_server->lock);
    size_t live = testd_server->live_calls;
    pthread_mutex_unlock(&testd_server->lock);
    cj_log(CJ_LOG_INFO, "testd.live_calls", cj_rpc_call_request_id(call),
           CJ_F_INT("live_calls", (int64_t)live));
    *response = empty_response();
    return *response != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

static const struct cj_rpc_method testd_methods[] = {
    {.path = "/cerrojo.test.Control/SetHealth",
     .request = &cerrojo__v1__record_audit_request__descriptor,
     .response = &cerrojo__v1__record_audit_response__descriptor,
     .handler = set_health,
     .allowed = {CJ_RPC_ANY_PLATFORM}},
    {.path = "/cerrojo.test.Control/Hold",
     .request = &cerrojo__v1__record_audit_request__descriptor,
     .response = &cerrojo__v1__record_audit_response__descriptor,
     .handler = hold,
     .blocking = true,
     .allowed = {CJ_RPC_ANY_PLATFORM}},
    {.path = "/cerrojo.test.Control/LogLiveCalls",
     .request = &cerrojo__v1__record_audit_request__descriptor,
     .response = &cerrojo__v1__record_audit_response__descriptor,
     .handler = log_live_calls,
     .allowed = {CJ_RPC_ANY_PLATFORM}},
};

/* Stands in for every handler of a service table: the call got this far,
 * so it passed the framework's access, context and deadline checks. */
static enum cj_status stub(struct cj_rpc_call *call,
                           const ProtobufCMessage *request,
                           ProtobufCMessage **response, void *state)
{
    (void)request;
    (void)response;
    (void)state;
    cj_rpc_call_set_error(call, "%s reached the test stub",
                          cj_rpc_call_path(call));
    return CJ_ERR_UNIMPLEMENTED;
}

static struct cj_rpc_method stub_methods[TESTD_METHODS_MAX];

/* Fills `service` with the table named `table`; false when unknown. */
static bool table_select(const char *table, struct cj_rpc_service *service)
{
    if (strcmp(table, "control") == 0) {
        *service = (struct cj_rpc_service){
            .name = "cerrojo.test.Control",
            .methods = testd_methods,
            .n_methods = sizeof(testd_methods) / sizeof(testd_methods[0]),
        };
        return true;
    }
    if (strcmp(table, "kms") == 0) {
        kms_rpc_service_init(service, NULL);
    } else if (strcmp(table, "session") == 0) {
        sess_rpc_service_init(service, NULL);
    } else if (strcmp(table, "auth") == 0) {
        auth_rpc_service_init(NULL, service);
    } else {
        return false;
    }
    if (service->n_methods > TESTD_METHODS_MAX) {
        return false;
    }
    for (size_t i = 0; i < service->n_methods; i++) {
        stub_methods[i] = service->methods[i];
        stub_methods[i].handler = stub;
        stub_methods[i].blocking = false;
    }
    service->methods = stub_methods;
    service->state = NULL;
    return true;
}

static int serve(const struct testd_config *cfg, const sigset_t *signals)
{
    struct cj_rpc_server_options options;
    struct cj_rpc_service service;
    int exit_status = 1;

    if (!table_select(cfg->table, &service)) {
        fprintf(stderr, "rpc_testd: unknown table '%s'\n", cfg->table);
        return 2;
    }
    cj_rpc_settings_server_options(&cfg->grpc, &options);
    if (cj_rpc_server_create(&service, &options, &testd_server) != CJ_OK ||
        cj_rpc_server_start(testd_server) != CJ_OK) {
        fprintf(stderr, "rpc_testd: cannot start on %s\n", cfg->grpc.listen);
        goto out;
    }
    cj_rpc_server_wait_signal(signals);
    exit_status = 0;
out:
    cj_rpc_server_destroy(testd_server);
    return exit_status;
}

int main(int argc, char **argv)
{
    struct testd_config cfg;
    enum cj_profile profile;
    char err[CJ_CONFIG_ERROR_MAX];
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";
    int exit_status = 2;

    cj_rpc_signals_block(&signals);
    memset(&cfg, 0, sizeof(cfg));
    cj_log_init("rpc_testd", CJ_LOG_INFO);
    if (cj_config_load(testd_options, TESTD_OPTION_COUNT, &profile, &cfg, err,
                       sizeof(err)) != CJ_OK ||
        cj_rpc_settings_check(&cfg.grpc, profile, TESTD_ENV_PREFIX, err,
                              sizeof(err)) != CJ_OK) {
        fprintf(stderr, "rpc_testd: %s\n", err);
        goto out;
    }
    if (strcmp(command, "serve") == 0) {
        exit_status = serve(&cfg, &signals);
    } else if (strcmp(command, "healthcheck") == 0) {
        exit_status = cj_rpc_healthcheck("rpc_testd", &cfg.grpc);
    } else {
        fprintf(stderr, "usage: rpc_testd [serve|healthcheck]\n");
    }
out:
    cj_config_free(testd_options, TESTD_OPTION_COUNT, &cfg);
    /* The gRPC core's detached threads end first, because OpenSSL's exit
     * handler must not run beside them. */
    (void)cj_proc_wait_alone(CJ_PROC_EXIT_WAIT_MS);
    return exit_status;
}

/*
 * Routes gRPC core's own log output through cj_log, and rate-limits the
 * warnings that a caller can trigger once per call.
 */
#include "rpc_core_log.h"

#include <pthread.h>
#include <string.h>

#include <grpc/support/log.h>

#include "log.h"

/*
 * One limiter for every line of the core: a peer that fails the TLS
 * handshake on purpose must not be able to fill the log, whichever of the
 * core's messages it triggers.
 */
static struct cj_log_limit core_log_limit = CJ_LOG_LIMIT_INIT;
static pthread_once_t core_log_once = PTHREAD_ONCE_INIT;

static enum cj_log_level core_log_level(gpr_log_severity severity)
{
    switch (severity) {
    case GPR_LOG_SEVERITY_DEBUG:
        return CJ_LOG_DEBUG;
    case GPR_LOG_SEVERITY_INFO:
        return CJ_LOG_INFO;
    case GPR_LOG_SEVERITY_ERROR:
    default:
        return CJ_LOG_ERROR;
    }
}

static void core_log_write(gpr_log_func_args *args)
{
    enum cj_log_level level = core_log_level(args->severity);
    char message[CJ_RPC_CORE_LOG_MESSAGE_MAX + 1];
    long long suppressed = 0;

    if (!cj_log_enabled(level) ||
        !cj_log_limit_hit(&core_log_limit, cj_log_monotonic_ms(),
                          CJ_RPC_LOG_INTERVAL_MS, &suppressed)) {
        return;
    }
    /* gRPC core's error descriptions can nest the whole chain of causes;
     * the start names the failure. */
    strncpy(message, args->message != NULL ? args->message : "",
            sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';
    cj_log(level, "grpc.core_log", NULL,
           CJ_F_STR("file", args->file != NULL ? args->file : ""),
           CJ_F_INT("line", args->line), CJ_F_STR("message", message),
           CJ_F_INT("suppressed_repeats", suppressed));
}

static void core_log_install(void)
{
    /*
     * Before grpc_init, so that the core ignores GRPC_VERBOSITY (checked
     * with libgrpc 1.51): at INFO and DEBUG its tracers (GRPC_TRACE) print
     * metadata values, and the caller context carries the session id.
     * Its errors name peers, TLS failures and HTTP/2 errors.
     */
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    gpr_set_log_function(core_log_write);
}

void cj_rpc_core_log_route(void)
{
    pthread_once(&core_log_once, core_log_install);
}

void cj_rpc_log_rejection(struct cj_log_limit *limit, const char *event,
                          const char *request_id, const char *identity,
                          const char *method)
{
    long long suppressed = 0;

    if (!cj_log_enabled(CJ_LOG_WARN) ||
        !cj_log_limit_hit(limit, cj_log_monotonic_ms(), CJ_RPC_LOG_INTERVAL_MS,
                          &suppressed)) {
        return;
    }
    if (identity != NULL) {
        cj_log(CJ_LOG_WARN, event, request_id, CJ_F_STR("identity", identity),
               CJ_F_STR("method", method),
               CJ_F_INT("suppressed_repeats", suppressed));
    } else {
        cj_log(CJ_LOG_WARN, event, request_id, CJ_F_STR("method", method),
               CJ_F_INT("suppressed_repeats", suppressed));
    }
}

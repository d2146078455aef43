/*
 * Backend calls. The gRPC client of common/ has not landed yet, so every
 * call reports UNAVAILABLE and the gateway answers 503; the interface is
 * the one the pipeline keeps once it does.
 */
#include "gw_backend.h"

#include <stdio.h>
#include <stdlib.h>

struct gw_backends {
    const struct gw_settings *settings;
};

struct gw_backends *gw_backends_new(const struct gw_settings *settings)
{
    struct gw_backends *backends = calloc(1, sizeof(*backends));

    if (backends != NULL) {
        backends->settings = settings;
    }
    return backends;
}

void gw_backends_free(struct gw_backends *backends)
{
    free(backends);
}

grpc_status_code
gw_backend_call(struct gw_backends *backends, const struct gw_rpc *rpc,
                const struct gw_caller *caller, const ProtobufCMessage *request,
                ProtobufCMessage **response, char *detail, size_t detail_size)
{
    (void)backends;
    (void)caller;
    (void)request;
    *response = NULL;
    /* TODO: call over the common gRPC client once it lands on main. */
    snprintf(detail, detail_size, "no gRPC client for %s", rpc->path);
    return GRPC_STATUS_UNAVAILABLE;
}

const char *gw_backends_state(struct gw_backends *backends, const char *name)
{
    (void)backends;
    (void)name;
    return "unknown";
}

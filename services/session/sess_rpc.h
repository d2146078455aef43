/* The gRPC service cerrojo.v1.Session: its method table for the framework. */
#ifndef SESS_RPC_H
#define SESS_RPC_H

#include "rpc_server.h"
#include "sess_service.h"

#define SESS_RPC_SERVICE_NAME "cerrojo.v1.Session"

/* Fills out with the method table (each with its access rule) and svc as
 * the handlers' state; svc must outlive the server. */
void sess_rpc_service_init(struct cj_rpc_service *out,
                           struct sess_service *svc);

#endif

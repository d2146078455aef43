/* The gRPC service cerrojo.v1.Auth: its method table for the framework. */
#ifndef AUTH_RPC_H
#define AUTH_RPC_H

#include "auth_service.h"
#include "rpc_server.h"

/*
 * Fills `out` with the method table, every RPC with its access rule, and
 * svc as the handlers' state. svc must outlive the server.
 */
void auth_rpc_service_init(struct auth_service *svc,
                           struct cj_rpc_service *out);

#endif

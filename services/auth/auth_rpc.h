/* The gRPC service cerrojo.v1.Auth: its method table for the framework. */
#ifndef AUTH_RPC_H
#define AUTH_RPC_H

#include "rpc_server.h"

/* The method table with the access rule of every RPC. */
extern const struct cj_rpc_service auth_rpc_service;

#endif

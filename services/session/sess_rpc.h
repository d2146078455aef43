/* The gRPC service cerrojo.v1.Session: its method table for the framework. */
#ifndef SESS_RPC_H
#define SESS_RPC_H

#include "rpc_server.h"

/* The method table with the access rule of every RPC. */
extern const struct cj_rpc_service sess_rpc_service;

#endif

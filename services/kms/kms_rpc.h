/* The gRPC service cerrojo.v1.Kms: its method table for the framework. */
#ifndef KMS_RPC_H
#define KMS_RPC_H

#include "rpc_server.h"

/* The method table with the access rule of every RPC. */
extern const struct cj_rpc_service kms_rpc_service;

#endif

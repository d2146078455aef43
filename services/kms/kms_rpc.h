/* The gRPC service cerrojo.v1.Kms: its method table for the framework. */
#ifndef KMS_RPC_H
#define KMS_RPC_H

#include "kms_service.h"
#include "rpc_server.h"

/* Fills *out with the method table (access rules included) bound to svc,
 * which must outlive the server. */
void kms_rpc_service_init(struct cj_rpc_service *out, struct kms_service *svc);

#endif

/* Status names and the mapping between cerrojo statuses and gRPC codes. */
#include "status.h"

grpc_status_code cj_status_to_grpc(enum cj_status status)
{
    switch (status) {
    case CJ_OK:
        return GRPC_STATUS_OK;
    case CJ_ERR_INVALID:
    case CJ_ERR_TOO_LARGE:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case CJ_ERR_NOT_FOUND:
        return GRPC_STATUS_NOT_FOUND;
    case CJ_ERR_EXISTS:
        return GRPC_STATUS_ALREADY_EXISTS;
    case CJ_ERR_PERMISSION:
        return GRPC_STATUS_PERMISSION_DENIED;
    case CJ_ERR_UNAUTHENTICATED:
    case CJ_ERR_CRYPTO:
        return GRPC_STATUS_UNAUTHENTICATED;
    case CJ_ERR_REPLAYED:
        return GRPC_STATUS_ABORTED;
    case CJ_ERR_RATE_LIMITED:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case CJ_ERR_PRECONDITION:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case CJ_ERR_UNAVAILABLE:
        return GRPC_STATUS_UNAVAILABLE;
    case CJ_ERR_TIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case CJ_ERR_UNIMPLEMENTED:
        return GRPC_STATUS_UNIMPLEMENTED;
    case CJ_ERR_NOMEM:
    case CJ_ERR_INTERNAL:
        return GRPC_STATUS_INTERNAL;
    }
    return GRPC_STATUS_UNKNOWN;
}

enum cj_status cj_status_from_grpc(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return CJ_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return CJ_ERR_INVALID;
    case GRPC_STATUS_NOT_FOUND:
        return CJ_ERR_NOT_FOUND;
    case GRPC_STATUS_ALREADY_EXISTS:
        return CJ_ERR_EXISTS;
    case GRPC_STATUS_PERMISSION_DENIED:
        return CJ_ERR_PERMISSION;
    case GRPC_STATUS_UNAUTHENTICATED:
        return CJ_ERR_UNAUTHENTICATED;
    case GRPC_STATUS_ABORTED:
        return CJ_ERR_REPLAYED;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return CJ_ERR_RATE_LIMITED;
    case GRPC_STATUS_FAILED_PRECONDITION:
        return CJ_ERR_PRECONDITION;
    case GRPC_STATUS_UNAVAILABLE:
        return CJ_ERR_UNAVAILABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return CJ_ERR_TIMEOUT;
    case GRPC_STATUS_UNIMPLEMENTED:
        return CJ_ERR_UNIMPLEMENTED;
    default:
        return CJ_ERR_INTERNAL;
    }
}

const char *cj_status_name(enum cj_status status)
{
    static const char *const names[] = {
        [CJ_OK] = "ok",
        [CJ_ERR_INVALID] = "invalid",
        [CJ_ERR_NOT_FOUND] = "not_found",
        [CJ_ERR_EXISTS] = "exists",
        [CJ_ERR_PERMISSION] = "permission",
        [CJ_ERR_UNAUTHENTICATED] = "unauthenticated",
        [CJ_ERR_CRYPTO] = "crypto",
        [CJ_ERR_REPLAYED] = "replayed",
        [CJ_ERR_RATE_LIMITED] = "rate_limited",
        [CJ_ERR_PRECONDITION] = "precondition",
        [CJ_ERR_UNAVAILABLE] = "unavailable",
        [CJ_ERR_TIMEOUT] = "timeout",
        [CJ_ERR_TOO_LARGE] = "too_large",
        [CJ_ERR_UNIMPLEMENTED] = "unimplemented",
        [CJ_ERR_NOMEM] = "nomem",
        [CJ_ERR_INTERNAL] = "internal",
    };
    if ((unsigned)status >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[status];
}

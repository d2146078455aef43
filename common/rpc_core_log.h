/*
 * Log lines of the gRPC layer that a peer can cause at will: gRPC core's
 * own messages (a failed TLS handshake, say) and the per-call rejections.
 * Each is written as one JSON line through cj_log, at most once per
 * CJ_RPC_LOG_INTERVAL_MS per limiter, with the number of lines left out
 * since the previous one in the field "suppressed_repeats".
 */
#ifndef CJ_RPC_CORE_LOG_H
#define CJ_RPC_CORE_LOG_H

#include "log.h"

/*
 * Minimum interval between two lines of one rate-limited gRPC event, in
 * ms. One second keeps a flood to one line a second per event while a
 * single rejection still shows at once.
 */
#define CJ_RPC_LOG_INTERVAL_MS 1000

/* Maximum length of a logged core message, in bytes; the rest is cut. */
#define CJ_RPC_CORE_LOG_MESSAGE_MAX 512

/*
 * Sends gRPC core's log output to cj_log as the event "grpc.core_log"
 * (fields file, line, message), keeping only errors. Call it before the
 * first grpc_init(); later calls do nothing.
 */
void cj_rpc_core_log_route(void);

/*
 * Logs the rejection of one call as `event` at WARN, limited by `limit`,
 * with the fields identity (left out when NULL) and method.
 */
void cj_rpc_log_rejection(struct cj_log_limit *limit, const char *event,
                          const char *request_id, const char *identity,
                          const char *method);

#endif

/*
 * The request pipeline: what the gateway decides once the headers are in
 * (route, method, CORS, body limits, media type) and once the body is in
 * (open the seal, authenticate, call the backend, seal the answer).
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdbool.h>

#include "gw_context.h"
#include "gw_request.h"
#include "status.h"

/* Decides from the headers alone. Returns true when the body should be
 * read (the reply is not ready yet), false when `reply` is ready. */
bool gw_pipeline_begin(const struct gw_context *ctx, struct gw_request *req,
                       struct gw_reply *reply);

/* Decides once the whole body is in; `reply` is always ready after. */
void gw_pipeline_finish(const struct gw_context *ctx, struct gw_request *req,
                        struct gw_reply *reply);

/*
 * Takes one request of the client IP from the handshake bucket
 * (CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE and _BURST). Every request
 * that opens a session spends one: POST /v1/handshake before its body is
 * read, and a register or login that carries client_secret once its body
 * is opened. Returns CJ_OK (also without Redis, as in unit tests),
 * CJ_ERR_RATE_LIMITED with *retry_after_s, or the Redis failure, on which
 * the caller fails closed.
 */
enum cj_status gw_rate_limit_handshake(const struct gw_context *ctx,
                                       const struct gw_request *req,
                                       unsigned *retry_after_s) CJ_WARN_UNUSED;

#endif

/*
 * The request pipeline: what the gateway decides once the headers are in
 * (route, method, CORS, body limits, media type) and once the body is in
 * (open the seal, authenticate, call the backend, seal the answer).
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdbool.h>

#include "gw_context.h"
#include "gw_metrics.h"
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
 * Takes one request of the client IP from `bucket`. The api bucket
 * (CERROJO_GATEWAY_RATE_*) serves every route but POST /v1/handshake, which
 * spends the handshake bucket (CERROJO_GATEWAY_HANDSHAKE_RATE_*), and POST
 * /v1/register, which spends the register bucket
 * (CERROJO_GATEWAY_REGISTER_RATE_*), both before the body is read. A register
 * or login that carries client_secret spends the session bucket
 * (CERROJO_GATEWAY_SESSION_RATE_*) once its body is opened. Returns CJ_OK (also
 * without Redis, as in unit tests), CJ_ERR_RATE_LIMITED with *retry_after_s, or
 * the Redis failure, on which the caller fails closed.
 */
enum cj_status gw_rate_limit_take(const struct gw_context *ctx,
                                  const struct gw_request *req,
                                  enum gw_rate_bucket bucket,
                                  unsigned *retry_after_s) CJ_WARN_UNUSED;

/* Logs gateway.rate_limit_unavailable with the bucket and the status of a
 * failed check, at most once every 10 s per bucket
 * (GW_RATE_LIMIT_WARNING_SECONDS), so that a Redis outage does not flood
 * the log. */
void gw_rate_limit_warn_unavailable(const struct gw_request *req,
                                    enum gw_rate_bucket bucket,
                                    enum cj_status status);

#endif

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

/* Decides from the headers alone. Returns true when the body should be
 * read (the reply is not ready yet), false when `reply` is ready. */
bool gw_pipeline_begin(const struct gw_context *ctx, struct gw_request *req,
                       struct gw_reply *reply);

/* Decides once the whole body is in; `reply` is always ready after. */
void gw_pipeline_finish(const struct gw_context *ctx, struct gw_request *req,
                        struct gw_reply *reply);

#endif

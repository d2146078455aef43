/*
 * Sealed routes: open the request (stateless HPKE through kms, or a
 * stateful session through session), authenticate the caller, call the
 * route's RPC with the opened JSON, and seal the answer.
 */
#ifndef GW_SEALED_H
#define GW_SEALED_H

#include "gw_context.h"
#include "gw_request.h"

/* Serves a sealed route once its body is in; `reply` is ready after. */
void gw_sealed_handle(const struct gw_context *ctx, struct gw_request *req,
                      struct gw_reply *reply);

#endif

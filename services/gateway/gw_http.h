/*
 * The gateway's two HTTP servers: the public API and the admin port that
 * serves /metrics.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "gw_context.h"

struct gw_http;

/* Starts both servers on the settings' host and ports. Returns NULL (and
 * logs which port failed) when either cannot listen. `ctx` must outlive
 * the servers. */
struct gw_http *gw_http_start(const struct gw_context *ctx);

/* Stops both servers, waiting for the connection threads. Accepts NULL. */
void gw_http_stop(struct gw_http *http);

#endif

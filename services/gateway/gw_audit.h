/*
 * Rejections the audit log must see (rate limits, replays, seals that did
 * not open), sent to auth's RecordAudit from a background thread so the
 * rejected client never waits for it. The queue is bounded: when auth is
 * slow or down, new events are dropped and counted, never blocking a
 * request.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include "gw_backend.h"
#include "status.h"

/* Events waiting for auth, at most. */
#define GW_AUDIT_QUEUE_MAX 1024

struct gw_audit;

/* Starts the sender thread. NULL when the thread or memory fails. */
struct gw_audit *gw_audit_start(struct gw_backends *backends);

/* Stops the thread once the send in progress (bounded by the RPC
 * deadline) ends, drops and counts what is still queued, and frees the
 * queue. Accepts NULL. */
void gw_audit_stop(struct gw_audit *audit);

/*
 * Queues an event such as "gateway.replayed" with the route, client IP
 * and request id as its detail. Never blocks; drops the event when the
 * queue is full. Accepts a NULL audit (events are then only logged).
 */
void gw_audit_record(struct gw_audit *audit, const char *event,
                     const char *route, const char *client_ip,
                     const char *request_id);

/* Events dropped because the queue was full. */
unsigned long long gw_audit_dropped(const struct gw_audit *audit);

#endif

/*
 * Compares this host's clock with Postgres's, which decides token and
 * refresh expiry in SQL. The offset corrects auth_now_ms, is exported as a
 * metric, and is logged above AUTH_CLOCK_WARN_MS. Above the configured
 * bound (or with Postgres unreachable) the gRPC health status turns
 * NOT_SERVING. The same check turns it NOT_SERVING while auth migrations
 * of this build are missing.
 */
#ifndef AUTH_CLOCK_H
#define AUTH_CLOCK_H

#include "auth_service.h"

/* An offset above this is logged, in milliseconds, at most once per
 * AUTH_CLOCK_WARN_EVERY_MS. */
#define AUTH_CLOCK_WARN_MS       1000
#define AUTH_CLOCK_WARN_EVERY_MS 60000

/* Measures the offset and checks the migrations once, then updates the
 * offset that auth_now_ms adds, the metrics and the health. A check that
 * does not reach Postgres keeps the last offset. */
void auth_clock_check(struct auth_service *svc);

#endif

/*
 * Checks that a target the load generator is pointed at is on this host's
 * loopback interface, so a benchmark never sends load to another machine.
 */
#ifndef BENCH_LOOPBACK_H
#define BENCH_LOOPBACK_H

#include <stdbool.h>

/* True for 127.0.0.0/8, ::1 and "localhost" (with or without brackets). */
bool bench_host_is_loopback(const char *host);

/* True for an http:// URL whose host is loopback. https is not used here. */
bool bench_url_is_loopback(const char *url);

/* True for a gRPC target "host:port" (or "[v6]:port") on loopback; every
 * comma-separated address must be loopback. */
bool bench_grpc_target_is_loopback(const char *target);

/* True when the libpq connection string names a host or hostaddr and
 * every one is loopback or a Unix socket folder. */
bool bench_pg_dsn_is_loopback(const char *dsn);

#endif

/*
 * A Prometheus registry (text exposition format 0.0.4) of counters, gauges
 * and fixed-bucket histograms, optionally labelled, with lock-free atomic
 * updates, and a small HTTP/1.1 server for GET /metrics.
 */
#ifndef CJ_METRICS_H
#define CJ_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

/* Label names per family, at most. */
#define CJ_METRICS_MAX_LABELS 4
/*
 * Labelled series per family, at most. Past it, updates go to one overflow
 * series whose label values are all "other", so a label set stays bounded
 * even when fed unexpected values.
 */
#define CJ_METRICS_MAX_SERIES 64
/* Histogram bucket upper bounds per family, at most (+Inf is implicit). */
#define CJ_METRICS_MAX_BUCKETS 32

struct cj_metrics; /* the registry */
struct cj_metric;  /* one family: a name, help, type and label names */
struct cj_series;  /* one series of a family, for one set of label values */

/* Creates an empty registry. NULL on allocation failure. */
struct cj_metrics *cj_metrics_new(void);

/* Frees the registry with its families and series. NULL-safe. */
void cj_metrics_free(struct cj_metrics *reg);

/*
 * Registers a family. Names follow [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]*. label_names has label_count entries (NULL and 0
 * for none). Returns NULL on an invalid or duplicate name. The registry
 * owns the family; register everything at start.
 */
struct cj_metric *cj_metrics_counter(struct cj_metrics *reg, const char *name,
                                     const char *help,
                                     const char *const *label_names,
                                     size_t label_count);
struct cj_metric *cj_metrics_gauge(struct cj_metrics *reg, const char *name,
                                   const char *help,
                                   const char *const *label_names,
                                   size_t label_count);
/* bounds: strictly increasing upper bounds, in the metric's unit. */
struct cj_metric *cj_metrics_histogram(struct cj_metrics *reg, const char *name,
                                       const char *help,
                                       const char *const *label_names,
                                       size_t label_count, const double *bounds,
                                       size_t bound_count);

/*
 * Returns the series for these label values (label_count of them, NULL for
 * an unlabelled family), creating it on first use. The pointer stays valid
 * until cj_metrics_free, so hot paths can keep it. Never a secret as a
 * label value: ids of routes, methods and status classes only.
 */
struct cj_series *cj_metric_series(struct cj_metric *metric,
                                   const char *const *label_values);

/* Updates; a NULL series is ignored. */
void cj_counter_add(struct cj_series *series, uint64_t n);
void cj_gauge_set(struct cj_series *series, double value);
void cj_gauge_add(struct cj_series *series, double delta);
void cj_histogram_observe(struct cj_series *series, double value);

/* Shortcut for cj_counter_add(cj_metric_series(metric, NULL), 1). */
void cj_counter_inc(struct cj_metric *metric);

/*
 * Renders the registry in the text format. Returns a NUL-terminated string
 * the caller frees, or NULL on allocation failure.
 */
char *cj_metrics_render(struct cj_metrics *reg, size_t *len);

struct cj_metrics_server;

/* Variable that, when set, replaces the metrics listen address. */
#define CJ_METRICS_HOST_ENV "CERROJO_METRICS_HOST"

/*
 * Checks CJ_METRICS_HOST_ENV: unset, empty or an IPv4 literal. Returns
 * CJ_ERR_INVALID with err naming the variable and the value otherwise, so
 * that the settings checks fail before the metrics server would.
 */
CJ_WARN_UNUSED enum cj_status cj_metrics_host_check(char *err, size_t err_size);

/*
 * Writes the --help entry of CJ_METRICS_HOST_ENV in the layout of
 * cj_config_print_help. A service that starts a metrics server prints it
 * after its own settings, because no settings table contains the variable.
 */
void cj_metrics_print_help(FILE *out);

/* Connections the server keeps open at once, by default. */
#define CJ_METRICS_HTTP_CONNECTION_LIMIT 16
/* Seconds a connection has, by default, to send a full request head, and
 * again after each response. */
#define CJ_METRICS_HTTP_TIMEOUT_S 10
/* Maximum size of a request head (request line and header fields), in
 * bytes. A longer head gets 431. */
#define CJ_METRICS_HTTP_HEAD_MAX_BYTES 8192

/* Limits of the metrics server. A field left 0 takes the default above. */
struct cj_metrics_server_options {
    /* Connections open at once. A connection accepted over the limit
     * takes the place of the connection idle the longest (no request in
     * progress, no response pending), or is closed at once when every
     * connection has a request in progress. */
    unsigned connection_limit;
    /* Milliseconds a connection has to send a full request head, counted
     * from accept and again from the end of each response, and to read a
     * response. A connection still waiting at the deadline is closed. */
    unsigned timeout_ms;
    /* Milliseconds a taken fixed port is tried before the start fails;
     * 0 means 15 s. */
    unsigned bind_wait_ms;
};

/*
 * Serves GET /metrics for reg on address:port (address an IPv4 literal,
 * normally 127.0.0.1; port 0 picks a free one) in a thread of its own.
 * When CERROJO_METRICS_HOST is set, its value (an IPv4 literal such as
 * 0.0.0.0 in a container) replaces address, so that every service's
 * metrics port can be scraped from another pod. GET and HEAD of /metrics
 * get 200, other paths 404, other methods 405 with Allow: GET, HEAD, a
 * malformed request 400, a request with a body 413 and a request head
 * over CJ_METRICS_HTTP_HEAD_MAX_BYTES 431, each followed by closing the
 * connection. HTTP/1.1 connections stay open unless the
 * client sends Connection: close; HTTP/1.0 ones only on keep-alive.
 * A fixed port that is still in use (the process being replaced may hold
 * it until its shutdown ends) is tried again for up to 15 s before this
 * returns, logging metrics.port_busy. A port still taken then is logged as
 * metrics.port_still_busy and returns CJ_ERR_UNAVAILABLE, because a
 * service scraped on a port that another process is bound to would report that
 * process's metrics. metrics.listening is logged once bound.
 */
CJ_WARN_UNUSED enum cj_status
cj_metrics_server_start(struct cj_metrics *reg, const char *address,
                        uint16_t port, struct cj_metrics_server **out);

/* Like cj_metrics_server_start, with limits other than the defaults;
 * options may be NULL. */
CJ_WARN_UNUSED enum cj_status
cj_metrics_server_start_options(struct cj_metrics *reg, const char *address,
                                uint16_t port,
                                const struct cj_metrics_server_options *options,
                                struct cj_metrics_server **out);

/* The port actually bound, useful after asking for port 0. */
uint16_t cj_metrics_server_port(const struct cj_metrics_server *server);

/* Stops the server thread, closes every connection and the listening
 * socket, and frees the server. NULL-safe. */
void cj_metrics_server_stop(struct cj_metrics_server *server);

#endif

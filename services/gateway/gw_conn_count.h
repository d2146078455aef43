/*
 * Open connections per client IP address, counted from libmicrohttpd's
 * connection start and close notifications. The HTTP layer uses the count
 * to reject a connection over GW_CONNECTIONS_PER_IP_MAX with an HTTP error
 * instead of letting libmicrohttpd close it without a response.
 */
#ifndef GW_CONN_COUNT_H
#define GW_CONN_COUNT_H

#include <sys/socket.h>

#include "gw_limits.h"

/* Slots of the table: twice the maximum number of addresses with an open
 * connection (GW_CONNECTIONS_MAX), so probe runs stay short. A power of
 * two. */
#define GW_CONN_COUNT_SLOTS 1024

struct gw_conn_count;

/* Creates an empty table with a random hash key. Returns NULL when out of
 * memory. */
struct gw_conn_count *gw_conn_count_new(void);

/* Frees the table. Accepts NULL. */
void gw_conn_count_free(struct gw_conn_count *count);

/*
 * Counts one more open connection from `addr` and returns the number of
 * connections that address now has open, this one included. An IPv4
 * address and its IPv4-mapped IPv6 form count as one address. Returns 0,
 * without counting, when `addr` is NULL or neither IPv4 nor IPv6, or when
 * every slot is taken. The caller must then not call gw_conn_count_close()
 * for this connection.
 */
unsigned gw_conn_count_open(struct gw_conn_count *count,
                            const struct sockaddr *addr);

/* Counts one connection from `addr` as closed, which frees the address's
 * slot at zero. Each call must match a gw_conn_count_open() that returned
 * more than 0. */
void gw_conn_count_close(struct gw_conn_count *count,
                         const struct sockaddr *addr);

#endif

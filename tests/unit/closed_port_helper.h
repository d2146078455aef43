/*
 * A TCP port on 127.0.0.1 that rejects connections while a test keeps it:
 * a socket bound to port 0 without listen(). The kernel answers each
 * connection attempt to it with a reset, and no other process can
 * bind the port meanwhile. A fixed port such as 1 gives no such promise,
 * because a host may run a service on it or filter it, and a filtered
 * port makes each connection attempt wait for its timeout.
 */
#ifndef CLOSED_PORT_HELPER_H
#define CLOSED_PORT_HELPER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

struct closed_port {
    int fd;   /* the bound socket, or -1 */
    int port; /* its port, or 0 */
};

/* Binds a socket to a free loopback port and keeps it open. Returns 0 on
 * success and -1 on failure. */
static inline int closed_port_hold(struct closed_port *closed)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof(addr);

    closed->port = 0;
    closed->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (closed->fd < 0) {
        return -1;
    }
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(closed->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(closed->fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        close(closed->fd);
        closed->fd = -1;
        return -1;
    }
    closed->port = ntohs(addr.sin_port);
    return 0;
}

/* Closes the socket, after which the port may be reused. Accepts a
 * released or never held port. */
static inline void closed_port_release(struct closed_port *closed)
{
    if (closed->fd >= 0) {
        close(closed->fd);
    }
    closed->fd = -1;
    closed->port = 0;
}

#endif

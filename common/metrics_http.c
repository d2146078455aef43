/*
 * The HTTP listener for GET /metrics: one thread polls a listening socket
 * and a bounded set of non-blocking connections, parses each request head
 * (HTTP/1.0 and 1.1, RFC 9112) and replies with the registry in the
 * Prometheus text format. Request bodies are rejected.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_head.h"
#include "log.h"

/* Maximum length of a CJ_METRICS_HOST_ENV value quoted in an error, in
 * characters. */
#define CJ_METRICS_HOST_ECHO_MAX 64

/* Pending connections the kernel queues before accept. */
#define HTTP_LISTEN_BACKLOG 16
/*
 * Milliseconds a connection stays open after a response that closes it,
 * while the unread rest of its request is read and dropped. Closing a
 * socket with unread input sends a reset, which can destroy the response
 * before the client has read it.
 */
#define HTTP_LINGER_MS 1000
/* Milliseconds without accepting after accept fails for lack of resources. */
#define HTTP_ACCEPT_PAUSE_MS 100
/* Milliseconds to wait before polling again after poll itself failed. */
#define HTTP_POLL_RETRY_MS 100
/*
 * The process being replaced may keep the port for its whole shutdown
 * grace, so a taken port is tried again every HTTP_BIND_RETRY_MS. The start
 * fails when the bind wait (HTTP_BIND_WAIT_MS unless options set one)
 * passes. Both are in milliseconds.
 */
#define HTTP_BIND_RETRY_MS 250
#define HTTP_BIND_WAIT_MS  15000
/* Size of the status line and header fields of a response, in bytes. */
#define HTTP_RESPONSE_HEAD_MAX 512
/* Poll slots before the connections: the stop event and the listener. */
#define HTTP_POLL_WAKE   0
#define HTTP_POLL_LISTEN 1
#define HTTP_POLL_FIRST  2

#define HTTP_CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_CONTENT_TYPE_TEXT    "text/plain; charset=utf-8"
#define HTTP_ALLOW_METRICS        "GET, HEAD"

struct http_conn {
    int fd;
    /* CLOCK_MONOTONIC milliseconds at which the connection is closed. */
    long long deadline_ms;
    /* Close once out is sent: after an error or without keep-alive. */
    bool close_after;
    /* Set once the response is sent and the write side is shut. From then
     * on, input is read and dropped. */
    bool lingering;
    /* Value of the server's idle_sequence when this connection last became
     * idle (at accept or after a response). The lowest value among idle
     * connections marks the one idle the longest. */
    unsigned long long idle_since;
    /* Response bytes not yet sent, or NULL when none are pending. */
    char *out;
    size_t out_len;
    size_t out_sent;
    size_t in_len;
    char in[CJ_METRICS_HTTP_HEAD_MAX_BYTES];
};

struct cj_metrics_server {
    struct cj_metrics *reg;
    int listen_fd; /* -1 while the port is still taken */
    int wake_fd;   /* eventfd written by cj_metrics_server_stop */
    struct sockaddr_in addr;
    long long bind_wait_ms;
    pthread_t thread;
    uint16_t port;
    size_t connection_limit;
    long long timeout_ms;
    long long accept_paused_until_ms;
    /* Counts the moments connections become idle, to order them without
     * ties of the clock. */
    unsigned long long idle_sequence;
    /* connection_limit slots, NULL when free. */
    struct http_conn **conns;
    /* HTTP_POLL_FIRST + connection_limit entries, and for each connection
     * entry the slot it polls. */
    struct pollfd *fds;
    size_t *fd_slots;
};

static struct cj_log_limit accept_log_limit = CJ_LOG_LIMIT_INIT;
static struct cj_log_limit full_log_limit = CJ_LOG_LIMIT_INIT;
static struct cj_log_limit evict_log_limit = CJ_LOG_LIMIT_INIT;
static struct cj_log_limit poll_log_limit = CJ_LOG_LIMIT_INIT;

/* ---- responses ---------------------------------------------------------- */

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/* Writes an IMF-fixdate (RFC 9110 section 5.6.7), whatever the locale. */
static void format_http_date(char *buf, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

/* A response: its status, body and optional Allow field. */
struct http_response {
    int status;
    const char *content_type;
    const char *body;
    size_t body_len;
    bool send_body; /* false for HEAD: the fields describe the GET body */
    const char *allow;
};

/* Queues resp on conn. Returns false, with nothing queued, on allocation
 * failure. */
static bool queue_response(struct http_conn *conn,
                           const struct http_response *resp)
{
    char date[64];
    char head[HTTP_RESPONSE_HEAD_MAX];

    format_http_date(date, sizeof(date));
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s%sConnection: %s\r\n\r\n",
                     resp->status, status_reason(resp->status), date,
                     resp->content_type, resp->body_len,
                     resp->allow != NULL ? "Allow: " : "",
                     resp->allow != NULL ? resp->allow : "",
                     resp->allow != NULL ? "\r\n" : "",
                     conn->close_after ? "close" : "keep-alive");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return false;
    }
    size_t body_len = resp->send_body ? resp->body_len : 0;
    conn->out = malloc((size_t)n + body_len);
    if (conn->out == NULL) {
        return false;
    }
    memcpy(conn->out, head, (size_t)n);
    if (body_len > 0) {
        memcpy(conn->out + n, resp->body, body_len);
    }
    conn->out_len = (size_t)n + body_len;
    conn->out_sent = 0;
    return true;
}

/* Queues a short plain-text response; closes the connection after it when
 * close is set. Returns false on allocation failure. */
static bool queue_text(struct http_conn *conn, int status, const char *text,
                       bool send_body, bool close)
{
    struct http_response resp = {
        .status = status,
        .content_type = HTTP_CONTENT_TYPE_TEXT,
        .body = text,
        .body_len = strlen(text),
        .send_body = send_body,
        .allow = status == 405 ? HTTP_ALLOW_METRICS : NULL,
    };
    conn->close_after = conn->close_after || close;
    return queue_response(conn, &resp);
}

static bool queue_metrics(struct cj_metrics_server *server,
                          struct http_conn *conn, bool send_body)
{
    size_t len = 0;
    char *text = cj_metrics_render(server->reg, &len);
    if (text == NULL) {
        return queue_text(conn, 500, "out of memory\n", send_body, true);
    }
    struct http_response resp = {
        .status = 200,
        .content_type = HTTP_CONTENT_TYPE_METRICS,
        .body = text,
        .body_len = len,
        .send_body = send_body,
    };
    bool queued = queue_response(conn, &resp);
    free(text);
    return queued;
}

static bool is_metrics_path(const struct cj_http_request *req)
{
    static const char metrics_path[] = "/metrics";
    return req->path_len == sizeof(metrics_path) - 1 &&
           memcmp(req->path, metrics_path, req->path_len) == 0;
}

/*
 * Replies to the request whose head takes the first head_len bytes of
 * conn->in, followed by the empty line that ends it, and drops the first
 * consumed bytes (head and empty line). Returns false on allocation
 * failure.
 */
static bool serve_request(struct cj_metrics_server *server,
                          struct http_conn *conn, size_t head_len,
                          size_t consumed)
{
    struct cj_http_request req = {0};
    bool queued;

    int status = cj_http_parse_head(conn->in, head_len, &req);
    bool send_body = req.method != CJ_HTTP_METHOD_HEAD;
    /* HTTP/1.1 keeps the connection by default, HTTP/1.0 only on request
     * (RFC 9112 section 9.3). */
    conn->close_after =
        req.connection_close || !(req.http11 || req.connection_keep_alive);
    if (status == 413) {
        queued = queue_text(conn, status, "request body not accepted\n",
                            send_body, true);
    } else if (status != 0) {
        queued = queue_text(conn, status, "bad request\n", send_body, true);
    } else if (!is_metrics_path(&req)) {
        queued = queue_text(conn, 404, "not found\n", send_body, false);
    } else if (req.method == CJ_HTTP_METHOD_OTHER) {
        queued =
            queue_text(conn, 405, "method not allowed\n", send_body, false);
    } else {
        queued = queue_metrics(server, conn, send_body);
    }
    conn->in_len -= consumed;
    memmove(conn->in, conn->in + consumed, conn->in_len);
    return queued;
}

/* ---- connections -------------------------------------------------------- */

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_free(struct http_conn *conn)
{
    if (conn == NULL) {
        return;
    }
    close(conn->fd);
    free(conn->out);
    free(conn);
}

/* Sends what it can of conn->out. Returns false on a socket error. */
static bool conn_flush(struct http_conn *conn)
{
    while (conn->out_sent < conn->out_len) {
        ssize_t n = send(conn->fd, conn->out + conn->out_sent,
                         conn->out_len - conn->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        conn->out_sent += (size_t)n;
    }
    free(conn->out);
    conn->out = NULL;
    return true;
}

/* Reads into conn->in, dropping the bytes while lingering. Returns false
 * when the peer closed or the socket failed. */
static bool conn_read(struct http_conn *conn)
{
    if (conn->lingering) {
        conn->in_len = 0;
    }
    ssize_t n = recv(conn->fd, conn->in + conn->in_len,
                     sizeof(conn->in) - conn->in_len, 0);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    conn->in_len += (size_t)n;
    return n > 0;
}

/* Drops the empty lines a client may send before a request line (RFC 9112
 * section 2.2), each a CRLF or a bare LF. */
static void conn_skip_empty_lines(struct http_conn *conn)
{
    size_t skip = 0;
    for (;;) {
        if (skip + 1 <= conn->in_len && conn->in[skip] == '\n') {
            skip += 1;
        } else if (skip + 2 <= conn->in_len && conn->in[skip] == '\r' &&
                   conn->in[skip + 1] == '\n') {
            skip += 2;
        } else {
            break;
        }
    }
    conn->in_len -= skip;
    memmove(conn->in, conn->in + skip, conn->in_len);
}

/*
 * Sends pending output and replies to every complete request head in
 * conn->in, one at a time. Returns false when the connection must be
 * closed now.
 */
static bool conn_advance(struct cj_metrics_server *server,
                         struct http_conn *conn, long long now)
{
    for (;;) {
        if (conn->out != NULL) {
            if (!conn_flush(conn)) {
                return false;
            }
            if (conn->out != NULL) {
                return true;
            }
            if (conn->close_after) {
                shutdown(conn->fd, SHUT_WR);
                conn->lingering = true;
                conn->in_len = 0;
                conn->deadline_ms = now + HTTP_LINGER_MS;
                return true;
            }
            conn->deadline_ms = now + server->timeout_ms;
            conn->idle_since = server->idle_sequence++;
        }
        if (conn->lingering) {
            return true;
        }
        conn_skip_empty_lines(conn);
        size_t head_len = 0;
        size_t consumed =
            cj_http_find_head_end(conn->in, conn->in_len, &head_len);
        bool queued;
        if (consumed > 0) {
            queued = serve_request(server, conn, head_len, consumed);
        } else if (conn->in_len == sizeof(conn->in)) {
            queued =
                queue_text(conn, 431, "request head too large\n", true, true);
        } else {
            return true;
        }
        if (!queued) {
            return false;
        }
    }
}

/* Handles the poll events of the connection in slot. */
static void conn_handle(struct cj_metrics_server *server, size_t slot,
                        short revents, long long now)
{
    struct http_conn *conn = server->conns[slot];
    bool keep = true;

    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && conn->out == NULL) {
        keep = conn_read(conn);
    }
    if (keep) {
        keep = conn_advance(server, conn, now);
    }
    if (!keep) {
        conn_free(conn);
        server->conns[slot] = NULL;
    }
}

/*
 * Returns whether conn may be closed to make room for a new connection:
 * no request is in progress and no response is pending. That holds for a
 * connection that has not sent a byte since accept or since its last
 * response, and for one lingering after its last response was sent.
 */
static bool conn_is_idle(const struct http_conn *conn)
{
    if (conn->lingering) {
        return true;
    }
    if (conn->out != NULL || conn->in_len > 0) {
        return false;
    }
    /* Bytes that arrived but were not yet read start a request too. A
     * read of 0 (the peer closed) or an error leaves nothing to serve. */
    char byte;
    return recv(conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

/*
 * Finds a free slot. When none is free, closes the connection that has
 * been idle the longest and returns its slot, so that clients that hold
 * connections without sending requests cannot lock others out. Returns
 * NULL when every connection has a request in progress.
 */
static struct http_conn **free_slot(struct cj_metrics_server *server)
{
    struct http_conn **oldest = NULL;

    for (size_t i = 0; i < server->connection_limit; i++) {
        struct http_conn *conn = server->conns[i];
        if (conn == NULL) {
            return &server->conns[i];
        }
        if (conn_is_idle(conn) &&
            (oldest == NULL || conn->idle_since < (*oldest)->idle_since)) {
            oldest = &server->conns[i];
        }
    }
    if (oldest != NULL) {
        conn_free(*oldest);
        *oldest = NULL;
        cj_log_limited(&evict_log_limit, CJ_LOG_INFO,
                       "metrics.idle_connection_closed", NULL,
                       CJ_F_INT("limit", (long long)server->connection_limit));
    }
    return oldest;
}

/* Takes one pending connection. Returns false when none is left or
 * accepting failed. */
static bool accept_one(struct cj_metrics_server *server, long long now)
{
    int fd =
        accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) {
            return true;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* Out of descriptors or memory: the listener stays readable,
             * so polling it again at once would spin. */
            server->accept_paused_until_ms = now + HTTP_ACCEPT_PAUSE_MS;
            cj_log_limited(&accept_log_limit, CJ_LOG_ERROR,
                           "metrics.accept_failed", NULL,
                           CJ_F_STR("error", strerror(errno)));
        }
        return false;
    }
    struct http_conn **slot = free_slot(server);
    struct http_conn *conn = slot != NULL ? malloc(sizeof(*conn)) : NULL;
    if (conn == NULL) {
        /* With every connection mid-request (or out of memory) the newest
         * connection goes. */
        close(fd);
        cj_log_limited(&full_log_limit, CJ_LOG_WARN,
                       "metrics.connection_rejected", NULL,
                       CJ_F_INT("limit", (long long)server->connection_limit));
        return true;
    }
    conn->fd = fd;
    conn->deadline_ms = now + server->timeout_ms;
    conn->close_after = false;
    conn->lingering = false;
    conn->idle_since = server->idle_sequence++;
    conn->out = NULL;
    conn->in_len = 0;
    *slot = conn;
    return true;
}

/* ---- the server thread -------------------------------------------------- */

/* Closes every connection whose deadline has passed. */
static void close_expired(struct cj_metrics_server *server, long long now)
{
    for (size_t i = 0; i < server->connection_limit; i++) {
        struct http_conn *conn = server->conns[i];
        if (conn != NULL && conn->deadline_ms <= now) {
            conn_free(conn);
            server->conns[i] = NULL;
        }
    }
}

/*
 * Fills server->fds for the next poll and returns their number. *timeout_ms
 * gets the time to the earliest deadline, or -1 for none.
 */
static nfds_t fill_poll_set(struct cj_metrics_server *server, long long now,
                            int *timeout_ms)
{
    long long wake_at = -1;
    nfds_t n = HTTP_POLL_FIRST;

    server->fds[HTTP_POLL_WAKE] =
        (struct pollfd){.fd = server->wake_fd, .events = POLLIN};
    server->fds[HTTP_POLL_LISTEN] =
        (struct pollfd){.fd = server->listen_fd, .events = POLLIN};
    if (server->accept_paused_until_ms > now) {
        server->fds[HTTP_POLL_LISTEN].fd = -1;
        wake_at = server->accept_paused_until_ms;
    }
    for (size_t i = 0; i < server->connection_limit; i++) {
        struct http_conn *conn = server->conns[i];
        if (conn == NULL) {
            continue;
        }
        short events = conn->out != NULL ? POLLOUT : POLLIN;
        server->fds[n] = (struct pollfd){.fd = conn->fd, .events = events};
        server->fd_slots[n] = i;
        n++;
        if (wake_at < 0 || conn->deadline_ms < wake_at) {
            wake_at = conn->deadline_ms;
        }
    }
    if (wake_at < 0) {
        *timeout_ms = -1;
    } else {
        *timeout_ms = wake_at - now < INT_MAX ? (int)(wake_at - now) : INT_MAX;
    }
    return n;
}

static void *serve_thread(void *arg)
{
    struct cj_metrics_server *server = arg;

    for (;;) {
        int timeout_ms;
        long long now = monotonic_ms();
        close_expired(server, now);
        nfds_t n = fill_poll_set(server, now, &timeout_ms);
        if (poll(server->fds, n, timeout_ms) < 0) {
            if (errno != EINTR) {
                cj_log_limited(&poll_log_limit, CJ_LOG_ERROR,
                               "metrics.poll_failed", NULL,
                               CJ_F_STR("error", strerror(errno)));
                poll(NULL, 0, HTTP_POLL_RETRY_MS);
            }
            continue;
        }
        if (server->fds[HTTP_POLL_WAKE].revents != 0) {
            break;
        }
        now = monotonic_ms();
        /* Connections first, so that slots closed now take new ones. */
        for (nfds_t i = HTTP_POLL_FIRST; i < n; i++) {
            if (server->fds[i].revents != 0) {
                conn_handle(server, server->fd_slots[i], server->fds[i].revents,
                            now);
            }
        }
        if (server->fds[HTTP_POLL_LISTEN].revents != 0) {
            for (int i = 0; i < HTTP_LISTEN_BACKLOG; i++) {
                if (!accept_one(server, now)) {
                    break;
                }
            }
        }
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static void server_free(struct cj_metrics_server *server)
{
    if (server == NULL) {
        return;
    }
    for (size_t i = 0; server->conns != NULL && i < server->connection_limit;
         i++) {
        conn_free(server->conns[i]);
    }
    if (server->listen_fd >= 0) {
        close(server->listen_fd);
    }
    if (server->wake_fd >= 0) {
        close(server->wake_fd);
    }
    free(server->conns);
    free(server->fds);
    free(server->fd_slots);
    free(server);
}

static struct cj_metrics_server *
server_new(struct cj_metrics *reg,
           const struct cj_metrics_server_options *options)
{
    struct cj_metrics_server *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        return NULL;
    }
    server->reg = reg;
    server->listen_fd = -1;
    server->wake_fd = -1;
    server->connection_limit = CJ_METRICS_HTTP_CONNECTION_LIMIT;
    server->timeout_ms = CJ_METRICS_HTTP_TIMEOUT_S * 1000LL;
    if (options != NULL && options->connection_limit > 0) {
        server->connection_limit = options->connection_limit;
    }
    server->bind_wait_ms = HTTP_BIND_WAIT_MS;
    if (options != NULL && options->bind_wait_ms > 0) {
        server->bind_wait_ms = options->bind_wait_ms;
    }
    if (options != NULL && options->timeout_ms > 0) {
        server->timeout_ms = options->timeout_ms;
    }
    size_t poll_count = HTTP_POLL_FIRST + server->connection_limit;
    server->conns = calloc(server->connection_limit, sizeof(*server->conns));
    server->fds = calloc(poll_count, sizeof(*server->fds));
    server->fd_slots = calloc(poll_count, sizeof(*server->fd_slots));
    if (server->conns == NULL || server->fds == NULL ||
        server->fd_slots == NULL) {
        server_free(server);
        return NULL;
    }
    return server;
}

/* Opens and binds the listening socket on server->addr. On failure errno
 * is the cause. */
static enum cj_status server_bind(struct cj_metrics_server *server)
{
    struct sockaddr_in bound;
    socklen_t bound_len = sizeof(bound);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return CJ_ERR_UNAVAILABLE;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&server->addr,
             sizeof(server->addr)) != 0 ||
        listen(fd, HTTP_LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return CJ_ERR_UNAVAILABLE;
    }
    server->listen_fd = fd;
    server->port = ntohs(bound.sin_port);
    return CJ_OK;
}

/*
 * Tries a fixed port that is in use again until it is free or the bind
 * wait passes. On failure errno is the cause (EADDRINUSE after the wait).
 */
static enum cj_status bind_wait(struct cj_metrics_server *server,
                                const char *address)
{
    long long late_at = monotonic_ms() + server->bind_wait_ms;

    cj_log(CJ_LOG_WARN, "metrics.port_busy", NULL, CJ_F_STR("address", address),
           CJ_F_INT("port", server->port),
           CJ_F_INT("wait_ms", server->bind_wait_ms));
    while (monotonic_ms() < late_at) {
        poll(NULL, 0, HTTP_BIND_RETRY_MS);
        if (server_bind(server) == CJ_OK) {
            return CJ_OK;
        }
        if (errno != EADDRINUSE) {
            return CJ_ERR_UNAVAILABLE;
        }
    }
    cj_log(CJ_LOG_ERROR, "metrics.port_still_busy", NULL,
           CJ_F_STR("address", address), CJ_F_INT("port", server->port),
           CJ_F_INT("wait_ms", server->bind_wait_ms));
    errno = EADDRINUSE;
    return CJ_ERR_UNAVAILABLE;
}

/*
 * Opens the stop event and the listening socket, waiting for a fixed port
 * that is still in use. On failure errno is the cause.
 */
static enum cj_status server_listen(struct cj_metrics_server *server,
                                    const struct sockaddr_in *addr,
                                    const char *address)
{
    server->addr = *addr;
    server->port = ntohs(addr->sin_port);
    server->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (server->wake_fd < 0) {
        return CJ_ERR_UNAVAILABLE;
    }
    if (server_bind(server) == CJ_OK) {
        return CJ_OK;
    }
    if (errno == EADDRINUSE && server->port != 0) {
        return bind_wait(server, address);
    }
    return CJ_ERR_UNAVAILABLE;
}

void cj_metrics_print_help(FILE *out)
{
    fprintf(out,
            "%s\n    IPv4 address that the Prometheus metrics port listens on "
            "in place of 127.0.0.1, such as 0.0.0.0 so that other pods can "
            "scrape it; an IPv4 literal; unset or empty keeps 127.0.0.1\n",
            CJ_METRICS_HOST_ENV);
}

enum cj_status cj_metrics_host_check(char *err, size_t err_size)
{
    struct in_addr addr;
    const char *host = getenv(CJ_METRICS_HOST_ENV);

    if (host == NULL || host[0] == '\0' ||
        inet_pton(AF_INET, host, &addr) == 1) {
        return CJ_OK;
    }
    snprintf(err, err_size,
             "%s: expected an IPv4 literal such as 0.0.0.0 or 127.0.0.1, "
             "got '%.*s'",
             CJ_METRICS_HOST_ENV, CJ_METRICS_HOST_ECHO_MAX, host);
    return CJ_ERR_INVALID;
}

enum cj_status
cj_metrics_server_start_options(struct cj_metrics *reg, const char *address,
                                uint16_t port,
                                const struct cj_metrics_server_options *options,
                                struct cj_metrics_server **out)
{
    struct cj_metrics_server *server = NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    enum cj_status status = CJ_ERR_INVALID;

    *out = NULL;
    const char *override = getenv(CJ_METRICS_HOST_ENV);
    if (override != NULL && override[0] != '\0') {
        address = override;
    }
    if (reg == NULL || address == NULL) {
        goto out;
    }
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
        cj_log(CJ_LOG_ERROR, "metrics.address_invalid", NULL,
               CJ_F_STR("address", address),
               CJ_F_STR("expected", "an IPv4 literal such as 127.0.0.1"),
               CJ_F_STR("variable", CJ_METRICS_HOST_ENV));
        goto out;
    }
    status = CJ_ERR_NOMEM;
    server = server_new(reg, options);
    if (server == NULL) {
        goto out;
    }
    status = server_listen(server, &addr, address);
    if (status == CJ_OK) {
        int rc = pthread_create(&server->thread, NULL, serve_thread, server);
        if (rc != 0) {
            errno = rc;
            status = CJ_ERR_UNAVAILABLE;
        }
    }
    if (status != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "metrics.listen_failed", NULL,
               CJ_F_STR("address", address), CJ_F_INT("port", port),
               CJ_F_STR("error", strerror(errno)));
        goto out;
    }
    /* The name shows in top and perf; 15 characters at most. */
    pthread_setname_np(server->thread, "cj-metrics");
    cj_log(CJ_LOG_INFO, "metrics.listening", NULL, CJ_F_STR("address", address),
           CJ_F_INT("port", server->port));
    *out = server;
    server = NULL;
out:
    server_free(server);
    return status;
}

enum cj_status cj_metrics_server_start(struct cj_metrics *reg,
                                       const char *address, uint16_t port,
                                       struct cj_metrics_server **out)
{
    return cj_metrics_server_start_options(reg, address, port, NULL, out);
}

uint16_t cj_metrics_server_port(const struct cj_metrics_server *server)
{
    return server->port;
}

void cj_metrics_server_stop(struct cj_metrics_server *server)
{
    if (server == NULL) {
        return;
    }
    uint64_t one = 1;
    /* Writing 1 to an eventfd fails only when its counter would overflow
     * (eventfd(2)), and stop writes once. */
    if (write(server->wake_fd, &one, sizeof(one)) != sizeof(one)) {
        cj_log(CJ_LOG_ERROR, "metrics.stop_failed", NULL,
               CJ_F_STR("error", strerror(errno)));
    }
    pthread_join(server->thread, NULL);
    server_free(server);
}

/* Loopback checks for URLs, gRPC targets and libpq connection strings. */
#include "bench_loopback.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Maximum host text the checks accept, with the NUL. */
#define BENCH_HOST_MAX 256

bool bench_host_is_loopback(const char *host)
{
    char buf[BENCH_HOST_MAX];
    size_t len = strlen(host);
    struct in_addr v4;
    struct in6_addr v6;

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, buf, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

/* Checks one "host:port" or "[v6]:port" of len bytes. */
static bool host_port_is_loopback(const char *text, size_t len)
{
    char host[BENCH_HOST_MAX];
    const char *colon;
    size_t host_len;

    if (len == 0 || len >= sizeof(host))
        return false;
    if (text[0] == '[') {
        const char *end = memchr(text, ']', len);
        if (end == NULL)
            return false;
        host_len = (size_t)(end - text) + 1;
    } else {
        colon = memchr(text, ':', len);
        host_len = colon != NULL ? (size_t)(colon - text) : len;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    return bench_host_is_loopback(host);
}

bool bench_url_is_loopback(const char *url)
{
    static const char scheme[] = "http://";
    const char *start;
    size_t len;

    if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
        return false;
    start = url + sizeof(scheme) - 1;
    len = strcspn(start, "/?#");
    /* user@host would name another host in disguise; reject it. */
    if (memchr(start, '@', len) != NULL)
        return false;
    return host_port_is_loopback(start, len);
}

bool bench_grpc_target_is_loopback(const char *target)
{
    const char *p = target;

    if (strncmp(p, "ipv4:", 5) == 0 || strncmp(p, "ipv6:", 5) == 0)
        p += 5;
    if (*p == '\0')
        return false;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (!host_port_is_loopback(p, len))
            return false;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

/* Checks a comma-separated libpq host or hostaddr list. */
static bool pg_hosts_are_loopback(const char *list)
{
    const char *p = list;

    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char host[BENCH_HOST_MAX];

        if (len >= sizeof(host))
            return false;
        memcpy(host, p, len);
        host[len] = '\0';
        /* A path is a Unix socket folder on this host. */
        if (host[0] != '/' && host[0] != '@' && !bench_host_is_loopback(host))
            return false;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

bool bench_pg_dsn_is_loopback(const char *dsn)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    bool ok = opts != NULL;
    bool named = false;

    for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0 ||
            strcmp(o->keyword, "hostaddr") == 0) {
            ok = pg_hosts_are_loopback(o->val);
            named = true;
        }
    }
    PQfreemem(err);
    PQconninfoFree(opts);
    /* Without host, libpq would follow PGHOST, which this check never saw. */
    return ok && named;
}

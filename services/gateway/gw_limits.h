/*
 * Every size, count and time limit of the gateway, as named constants with
 * their unit. The settings that operators may change start from these
 * defaults (see gw_settings.h).
 */
#ifndef GW_LIMITS_H
#define GW_LIMITS_H

/* Request bodies. A body over its route's limit gets 413, decided from
 * Content-Length before reading or while reading, never after. */
#define GW_BODY_BYTES_DEFAULT   (16 * 1024)
#define GW_BODY_BYTES_HANDSHAKE (4 * 1024)
#define GW_BODY_BYTES_DATA_PUT  (128 * 1024)
/* The largest limit of any route: the size of the accumulation buffer. */
#define GW_BODY_BYTES_MAX GW_BODY_BYTES_DATA_PUT

/* The request head: the request target (path and query) and the request
 * line plus headers, counted as the gateway receives them (each header as name,
 * value and 4 bytes). Over these the gateway returns its JSON 414 and 431. */
#define GW_URI_BYTES_MAX  (8 * 1024)
#define GW_HEAD_BYTES_MAX (16 * 1024)
/* Memory MHD may use per connection for the request line, the headers and
 * its read buffer. A head that does not fit gets 414 or 431 from MHD itself
 * (an HTML page, before the gateway receives the request), so this is eight
 * times GW_HEAD_BYTES_MAX. With it a 120,000-byte header or URL still
 * reached the gateway. MHD 0.9.75 touches the whole pool, so each open
 * connection costs this much resident memory (measured in
 * docs/architecture.md, Known limits). */
#define GW_CONNECTION_MEMORY_BYTES (128 * 1024)

/* JSON: nesting depth counts every object and array, the outermost one
 * being depth 1. Strings are measured in bytes after unescaping. */
#define GW_JSON_DEPTH_MAX        16
#define GW_JSON_STRING_BYTES_MAX (32 * 1024)
#define GW_JSON_MEMBERS_MAX      256

/* Request ids: accepted from a trusted proxy only when 1 to this many
 * characters of [A-Za-z0-9._-]. */
#define GW_REQUEST_ID_CHARS_MAX 64
/* Generated ids: this many random bytes, base64url (22 characters). */
#define GW_REQUEST_ID_RANDOM_BYTES 16

/* Values the gateway forwards to the services as caller context. */
#define GW_USER_AGENT_CHARS_MAX 256
#define GW_TRUSTED_PROXIES_MAX  32
#define GW_CORS_ORIGINS_MAX     32
#define GW_ORIGIN_CHARS_MAX     255
/* X-Forwarded-For entries examined from the right, at most. */
#define GW_FORWARDED_HOPS_MAX 16

/* Shortest trusted-proxy prefixes. Proxies sit in a few small networks,
 * and a wider prefix trusts clients too. An IPv4-mapped prefix counts as
 * IPv4. An IPv6 prefix shorter than /32 is allowed only inside the
 * unique-local range fc00::/7, which RFC 4193 keeps off the internet's
 * routes. So fc00::/7 and fd00::/8 pass, and 2a00::/7 and 2000::/16 fail. */
#define GW_TRUSTED_PROXY_V4_PREFIX_MIN 8
#define GW_TRUSTED_PROXY_V6_PREFIX_MIN 32

/* Connections: MHD runs one thread per connection, so these bound the
 * threads too. */
#define GW_CONNECTIONS_MAX         512
#define GW_CONNECTION_IDLE_SECONDS 15
/* Open connections per client IP address. The gateway counts them itself
 * and rejects each request on a connection beyond GW_CONNECTIONS_PER_IP_MAX
 * with 429 and Connection: close. libmicrohttpd closes connections beyond
 * GW_CONNECTIONS_PER_IP_HARD_MAX without a response, which bounds the
 * threads one address can hold. Neither applies behind trusted proxies,
 * whose clients share the proxies' addresses. */
#define GW_CONNECTIONS_PER_IP_MAX      64
#define GW_CONNECTIONS_PER_IP_HARD_MAX 128
/* Retry-After of the 429 to a connection over the per-IP limit, because a
 * request in flight usually ends within this time. */
#define GW_CONNECTION_LIMIT_RETRY_AFTER_SECONDS 1
/* Time a request has to deliver its whole body, counted from the first
 * call of the access handler for it (the headers are in). The idle
 * timeout restarts on every byte, so without this a client sending one
 * byte every few seconds would hold its connection and thread forever. */
#define GW_BODY_DEADLINE_SECONDS 10

/* gzip of sealed response envelopes above this size, when accepted. */
#define GW_GZIP_THRESHOLD_BYTES 1024

/* Deadline of one backend RPC; a dependency that does not answer in time
 * gives 503 with this Retry-After. */
#define GW_RPC_DEADLINE_MS     3000
#define GW_RETRY_AFTER_SECONDS 5

/* Longest Cache-Control max-age of /.well-known/jwks.json, in seconds:
 * short, so that verifiers pick up a new signing key well before it is
 * promoted (promotion waits twice the gateway's JWKS refresh period). */
#define GW_JWKS_MAX_AGE_SECONDS 300

/* CORS preflight cache lifetime sent in Access-Control-Max-Age. */
#define GW_CORS_MAX_AGE_SECONDS 600

/* The OpenAPI file is served from memory; larger files are refused at
 * start. */
#define GW_OPENAPI_BYTES_MAX (1024 * 1024)

#endif

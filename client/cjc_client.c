/*
 * The client's calls: the signed key list, stateless and stateful sealing
 * of each request, opening of each response, and the state they leave
 * behind (session position, tokens, clock offset).
 */
#include "cjc_client.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cjc_http.h"
#include "cjc_keys.h"
#include "cjc_state.h"
#include "envelope_stateful.h"
#include "envelope_stateless.h"
#include "ratchet.h"
#include "seal_pad.h"

/* Refresh this long before the access token expires, in milliseconds. */
#define CJC_TOKEN_REFRESH_MARGIN_MS 30000
_Static_assert(CJC_STATE_SESSION_KEY_LEN == CJ_RATCHET_KEY_LEN,
               "the state file check must accept the ratchet's key length");

/* Largest response error message kept, in bytes. */
#define CJC_MESSAGE_MAX 400
/* The gateway's default window for a request's timestamp, each side, in
 * seconds (CERROJO_GATEWAY_TIMESTAMP_WINDOW_SECONDS). */
#define CJC_TIMESTAMP_WINDOW_DEFAULT_S 60
/*
 * Bounds of a session's creation time, in Unix milliseconds: from
 * 2000-01-01T00:00:00Z, long before any cerrojo server ran, to the end of
 * year 9999, the last year that an RFC 3339 timestamp can hold. A value
 * outside them, such as proto3's default 0, is damage. A clock offset
 * larger than the upper bound cannot be the difference of two such times.
 */
#define CJC_SESSION_CREATED_MIN_MS INT64_C(946684800000)
#define CJC_TIME_MAX_MS            INT64_C(253402300799999)

/* The gateway's body limit of each route, in bytes (docs/architecture.md,
 * route table). A request body is padded only as far as its route still
 * accepts the envelope. */
#define CJC_BODY_BYTES_HANDSHAKE (4 * 1024)
#define CJC_BODY_BYTES_DEFAULT   (16 * 1024)
#define CJC_BODY_BYTES_DATA_PUT  (128 * 1024)
/* Path prefix of the data routes, whose PUT takes the larger body. */
#define CJC_DATA_PATH_PREFIX "/v1/me/data/"

struct cjc_client {
    struct cjc_http *http;
    char url[CJC_URL_MAX]; /* the gateway URL in its canonical form */
    char state_path[PATH_MAX];
    int lock_fd;   /* the state file's lock, held until close, or -1 */
    json_t *state; /* owned; written back by cjc_client_save */
    bool dirty;
    const char *pins[CJC_MAX_PINS];
    size_t n_pins;
    bool have_key;
    struct cjc_server_key key;
    void (*notice)(const char *message);
    /* Refreshes sent since open, failed ones too, so that a call never
     * presents one refresh token twice. */
    unsigned long refresh_attempts;
    /* Whether the last stateful response opened under the session's keys,
     * which shows that the server still has the session. */
    bool session_answered;
    bool save_before_send; /* from cjc_client_options */
};

static void set_error(struct cjc_error *err, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));

static void set_error(struct cjc_error *err, const char *code, const char *fmt,
                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    snprintf(err->code, sizeof(err->code), "%s", code ? code : "");
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The server's time as the client estimates it from the saved offset. */
static uint64_t server_ms(const struct cjc_client *c)
{
    json_int_t offset =
        json_integer_value(json_object_get(c->state, "clock_offset_ms"));
    return (uint64_t)((json_int_t)wall_ms() + offset);
}

static const char *aead_name(uint16_t aead_id)
{
    switch (aead_id) {
    case CJ_HPKE_AEAD_AES_128_GCM:
        return "AES-128-GCM";
    case CJ_HPKE_AEAD_AES_256_GCM:
        return "AES-256-GCM";
    case CJ_HPKE_AEAD_CHACHA20:
        return "ChaCha20-Poly1305";
    default:
        return "unknown AEAD";
    }
}

/*
 * With CERROJO_TRACE set, prints to stderr what crossed the wire for each
 * request: mode, keys by id, sizes and status. Never a body, token or key.
 */
static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
    const char *on = getenv("CERROJO_TRACE");
    va_list ap;

    if (on == NULL || on[0] == '\0' || strcmp(on, "0") == 0)
        return;
    va_start(ap, fmt);
    fputs("  trace: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Reads an integer member that may arrive as a JSON number or string. */
static bool get_int(const json_t *obj, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v)) {
        char *end = NULL;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end != NULL && *end == '\0' && end != json_string_value(v)) {
            *out = n;
            return true;
        }
    }
    return false;
}

/*
 * Compares the URL stored in the state file with the client's, both in
 * canonical form, so that "http://h:8080/" and "http://H:8080" name one
 * gateway. A state file written for another server is not reused, and
 * its login is not dropped by a command that does not start a new one.
 */
static enum cj_status check_stored_url(struct cjc_client *c,
                                       const struct cjc_client_options *opts,
                                       struct cjc_error *err)
{
    const char *stored = json_string_value(json_object_get(c->state, "url"));
    bool has_tokens = json_object_get(c->state, "tokens") != NULL;
    bool has_session = json_object_get(c->state, "session") != NULL;
    char canonical[CJC_URL_MAX];

    if (stored == NULL)
        return CJ_OK;
    /* A stored URL that does not parse is compared as it is. */
    if (cjc_url_normalize(stored, canonical, sizeof(canonical)) != CJ_OK)
        snprintf(canonical, sizeof(canonical), "%s", stored);
    if (strcmp(canonical, c->url) == 0)
        return CJ_OK;
    if (!opts->replace_other_login &&
        !(opts->replace_other_session && !has_tokens) &&
        (has_tokens || has_session)) {
        set_error(err, NULL,
                  "state file %s holds a login at %s; pass --url %s, or "
                  "--state with another file for %s",
                  c->state_path, stored, stored, c->url);
        return CJ_ERR_PRECONDITION;
    }
    json_object_clear(c->state);
    c->dirty = true;
    return CJ_OK;
}

/*
 * Returns the name of the first session member, or of clock_offset_ms, that
 * holds a value no server sends, or NULL when all are plausible. Members
 * that are missing or of another type are left to load_position, which
 * rejects them when the session is used.
 */
static const char *invalid_session_member(const json_t *state)
{
    const json_t *s = json_object_get(state, "session");
    const json_t *offset = json_object_get(state, "clock_offset_ms");
    const char *id = json_string_value(json_object_get(s, "id"));
    json_int_t value;

    if (offset != NULL &&
        (!json_is_integer(offset) ||
         llabs((long long)json_integer_value(offset)) > CJC_TIME_MAX_MS))
        return "clock_offset_ms";
    if (!json_is_object(s))
        return NULL;
    if (id != NULL && !cj_session_id_valid(id))
        return "id";
    if (get_int(s, "created_at_ms", &value) &&
        (value < CJC_SESSION_CREATED_MIN_MS || value > CJC_TIME_MAX_MS))
        return "created_at_ms";
    if (get_int(s, "epoch_seconds", &value) && value <= 0)
        return "epoch_seconds";
    if (get_int(s, "epoch", &value) && (value < 0 || value > UINT32_MAX))
        return "epoch";
    /* The next request uses seq + 1, which must stay a valid number. */
    if (get_int(s, "seq", &value) &&
        (value < 0 || (uint64_t)value >= CJ_STATEFUL_MAX_SEQ))
        return "seq";
    return NULL;
}

/*
 * Rejects a state file whose session or clock offset holds a value that
 * no server sends. Such a value would otherwise get advice to correct the
 * clock, or a sealing error that names neither the file nor the value. A
 * command that starts a new login replaces both, so for it the damaged
 * members are only dropped from memory, and the file keeps them until the
 * login succeeds.
 */
static enum cj_status
check_stored_session(struct cjc_client *c,
                     const struct cjc_client_options *opts,
                     struct cjc_error *err)
{
    const char *member = invalid_session_member(c->state);

    if (member == NULL)
        return CJ_OK;
    if (opts->replace_other_login) {
        json_object_del(c->state, "session");
        json_object_del(c->state, "clock_offset_ms");
        return CJ_OK;
    }
    set_error(err, NULL,
              "state file %s has an invalid %s (%s); run 'cerrojo "
              "login'",
              c->state_path,
              strcmp(member, "clock_offset_ms") == 0 ? "clock offset"
                                                     : "session",
              member);
    return CJ_ERR_INVALID;
}

enum cj_status cjc_client_open(const struct cjc_client_options *opts,
                               struct cjc_client **out, struct cjc_error *err)
{
    enum cj_status rc = CJ_ERR_NOMEM;
    struct cjc_client *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL)
        goto fail;
    c->lock_fd = -1;
    if (opts->state_path != NULL) {
        if (snprintf(c->state_path, sizeof(c->state_path), "%s",
                     opts->state_path) >= (int)sizeof(c->state_path)) {
            set_error(err, NULL, "state file path is too long");
            rc = CJ_ERR_INVALID;
            goto fail;
        }
    } else if (cjc_state_default_path(c->state_path, sizeof(c->state_path)) !=
               CJ_OK) {
        set_error(err, NULL, "no HOME to keep the state file in; use --state");
        rc = CJ_ERR_INVALID;
        goto fail;
    }
    rc = cjc_state_resolve_path(c->state_path, c->state_path,
                                sizeof(c->state_path), err->message,
                                sizeof(err->message));
    if (rc != CJ_OK)
        goto fail;
    rc = cjc_state_lock(c->state_path,
                        opts->lock_wait_ms > 0 ? opts->lock_wait_ms
                                               : CJC_STATE_LOCK_WAIT_MS,
                        &c->lock_fd, err->message, sizeof(err->message));
    if (rc != CJ_OK)
        goto fail;
    rc = cjc_state_load(c->state_path, &c->state, err->message,
                        sizeof(err->message));
    if (rc != CJ_OK)
        goto fail;
    rc = check_stored_session(c, opts, err);
    if (rc != CJ_OK)
        goto fail;

    rc = cjc_url_normalize(opts->url, c->url, sizeof(c->url));
    if (rc != CJ_OK) {
        set_error(err, NULL,
                  "invalid URL '%s': expected http://HOST:PORT or "
                  "https://HOST:PORT",
                  opts->url);
        goto fail;
    }
    rc = check_stored_url(c, opts, err);
    if (rc != CJ_OK)
        goto fail;
    json_object_set_new(c->state, "url", json_string(c->url));
    json_object_set_new(c->state, "version", json_integer(CJC_STATE_VERSION));
    rc = cjc_http_new(c->url, &c->http);
    if (rc != CJ_OK) {
        set_error(err, NULL, "invalid URL '%s'", opts->url);
        goto fail;
    }
    if (opts->n_pins > CJC_MAX_PINS) {
        set_error(err, NULL, "at most %d pins, got %zu", CJC_MAX_PINS,
                  opts->n_pins);
        rc = CJ_ERR_INVALID;
        goto fail;
    }
    for (size_t i = 0; i < opts->n_pins; i++) {
        rc = cjc_pin_check(opts->pins[i], err->message, sizeof(err->message));
        if (rc != CJ_OK)
            goto fail;
    }
    memcpy(c->pins, opts->pins, sizeof(c->pins));
    c->n_pins = opts->n_pins;
    c->notice = opts->notice;
    c->save_before_send = opts->save_before_send;
    *out = c;
    return CJ_OK;

fail:
    cjc_client_close(c);
    return rc;
}

enum cj_status cjc_client_save(struct cjc_client *c, struct cjc_error *err)
{
    enum cj_status rc;

    if (!c->dirty)
        return CJ_OK;
    rc = cjc_state_save(c->state_path, c->state, err->message,
                        sizeof(err->message));
    if (rc == CJ_OK)
        c->dirty = false;
    return rc;
}

void cjc_client_close(struct cjc_client *c)
{
    struct cjc_error err = {0};

    if (c == NULL)
        return;
    if (c->state != NULL && c->dirty && cjc_client_save(c, &err) != CJ_OK)
        fprintf(stderr, "cerrojo: %s\n", err.message);
    /* Released only after the save, so the next command reads it. */
    cjc_state_unlock(c->lock_fd);
    json_decref(c->state);
    cjc_http_free(c->http);
    sodium_memzero(&c->key, sizeof(c->key));
    free(c);
}

bool cjc_client_has_session(const struct cjc_client *c)
{
    return json_is_object(json_object_get(c->state, "session"));
}

/*
 * Copies server text into dst (size bytes), replacing each control
 * character with '?'. Server text reaches a terminal, where escape
 * sequences from an unsealed response could clear the screen or show
 * text of an attacker's choosing. C1 controls count too, as raw bytes
 * and in their UTF-8 form (0xC2 0x80 to 0xC2 0x9F).
 */
static void copy_printable(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)src;

    while (*p != '\0' && n + 1 < size) {
        if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            dst[n++] = '?';
            p += 2;
            continue;
        }
        dst[n++] = (*p < 0x20 || (*p >= 0x7F && *p <= 0x9F)) ? '?' : (char)*p;
        p++;
    }
    dst[n] = '\0';
}

/* Copies an error code into dst, keeping only the characters that the
 * gateway's codes use (letters, digits and '_'). */
static void copy_code(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    for (; src != NULL && *src != '\0' && n + 1 < size; src++)
        dst[n++] = (isalnum((unsigned char)*src) || *src == '_') ? *src : '?';
    dst[n] = '\0';
}

/*
 * Fills err from an error response: the gateway's one error shape. A plain
 * error is labeled as unsealed, because anything on the network path can
 * send one. status is the HTTP status, which the seal does not cover.
 */
static void error_from_response(long status, const json_t *body,
                                long retry_after, bool sealed,
                                struct cjc_error *err)
{
    const json_t *e = json_object_get(body, "error");
    const char *message = json_string_value(json_object_get(e, "message"));
    const char *request_id =
        json_string_value(json_object_get(e, "request_id"));
    char code[sizeof(err->code)];
    char text[CJC_MESSAGE_MAX + 1];
    const char *label = sealed ? "" : "unsealed response: ";

    copy_code(code, sizeof(code),
              json_string_value(json_object_get(e, "code")));
    copy_printable(text, sizeof(text),
                   message != NULL ? message : "the server returned an error");
    err->http_status = status;
    err->retry_after_seconds = retry_after;
    err->server_time_ms = 0;
    /* Only the seal vouches for the server's clock. */
    if (sealed && json_is_integer(json_object_get(e, "server_time_ms")))
        err->server_time_ms =
            json_integer_value(json_object_get(e, "server_time_ms"));
    copy_printable(err->request_id, sizeof(err->request_id),
                   request_id != NULL ? request_id : "");
    if (err->request_id[0] != '\0')
        set_error(err, code, "%s%s (HTTP %ld, request %s)", label, text, status,
                  err->request_id);
    else
        set_error(err, code, "%s%s (HTTP %ld)", label, text, status);
}

/* Returns the cj_status of an error response with HTTP status status. */
static enum cj_status status_of_error(long status)
{
    if (status == 429)
        return CJ_ERR_RATE_LIMITED;
    if (status == 401)
        return CJ_ERR_UNAUTHENTICATED;
    if (status == 503)
        return CJ_ERR_UNAVAILABLE;
    return CJ_ERR_INVALID;
}

/* Parses a plain JSON response body; NULL when it is not JSON. */
static json_t *parse_plain(const struct cjc_http_response *resp)
{
    if (resp->body == NULL || resp->body_len == 0)
        return json_object();
    return json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL);
}

/* True when a JSON response looks like a sealed response envelope. */
static bool is_sealed_envelope(const json_t *obj)
{
    return json_is_object(obj) && json_object_get(obj, "nonce") != NULL &&
           json_object_get(obj, "ct") != NULL;
}

/*
 * Turns an opened (or plain) response into *out or an error. Takes
 * ownership of body. sealed is true when body was opened under the
 * request's keys, and is stored in err for an error.
 */
static enum cj_status finish_response(long status, long retry_after,
                                      json_t *body, bool sealed, json_t **out,
                                      struct cjc_error *err)
{
    err->sealed = sealed;
    if (body == NULL) {
        set_error(err, NULL,
                  "the server returned a response that is not "
                  "JSON (HTTP %ld)",
                  status);
        err->http_status = status;
        return CJ_ERR_INVALID;
    }
    if (status < 200 || status > 299) {
        error_from_response(status, body, retry_after, sealed, err);
        json_decref(body);
        return status_of_error(status);
    }
    if (sealed && json_object_get(body, "error") != NULL) {
        /* The gateway seals its errors, but the status outside the seal
         * may have been changed on the way. The sealed body wins, and the
         * call fails with CJ_ERR_INVALID, keeping the 2xx in http_status,
         * so no 401 path (refresh, logout fallback) starts from it. */
        error_from_response(status, body, retry_after, sealed, err);
        json_decref(body);
        return CJ_ERR_INVALID;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        set_error(err, NULL,
                  "the server returned a success that is not a JSON object "
                  "(HTTP %ld)",
                  status);
        err->http_status = status;
        return CJ_ERR_INVALID;
    }
    *out = body;
    return CJ_OK;
}

/* Makes sure the client has a server HPKE key from a checked key list. */
static enum cj_status ensure_key(struct cjc_client *c, struct cjc_error *err)
{
    json_t *list = NULL;
    enum cj_status rc;

    if (c->have_key)
        return CJ_OK;
    rc = cjc_keys(c, &list, err);
    json_decref(list);
    return rc;
}

enum cj_status cjc_keys(struct cjc_client *c, json_t **out,
                        struct cjc_error *err)
{
    struct cjc_http_response resp = {0};
    enum cj_status rc;
    json_t *body = NULL;

    *out = NULL;
    rc = cjc_http_request(c->http, "GET", "/v1/keys", NULL, 0, NULL, 0, &resp,
                          err->message, sizeof(err->message));
    if (rc != CJ_OK)
        return rc;
    body = parse_plain(&resp);
    if (resp.status != 200) {
        rc = finish_response(resp.status, resp.retry_after_seconds, body, false,
                             out, err);
        cjc_http_response_clear(&resp);
        return rc == CJ_OK ? CJ_ERR_INVALID : rc;
    }
    cjc_http_response_clear(&resp);
    rc = cjc_keys_check(body, c->pins, c->n_pins, &c->key, out, err->message,
                        sizeof(err->message));
    json_decref(body);
    if (rc == CJ_OK)
        c->have_key = true;
    return rc;
}

/* Wipes and frees a heap buffer of len bytes; accepts NULL. */
static void free_wiped(void *buf, size_t len)
{
    if (buf == NULL)
        return;
    sodium_memzero(buf, len);
    free(buf);
}

/* Serializes body (or {} for NULL) to compact JSON text. */
static char *body_text(const json_t *body)
{
    json_t *empty = NULL;
    char *text;

    if (body == NULL)
        body = empty = json_object();
    text = json_dumps(body, JSON_COMPACT);
    json_decref(empty);
    return text;
}

/* Returns the longest sealed plaintext that the gateway accepts for a
 * request of method to path. */
static size_t request_plaintext_max(const char *method, const char *path)
{
    size_t envelope_max;
    size_t max;

    if (strcmp(method, "GET") == 0)
        /* The envelope travels base64url-encoded in Cerrojo-Seal. */
        envelope_max = CJ_SEAL_MAX_HEADER_LEN / 4 * 3;
    else if (strcmp(path, "/v1/handshake") == 0)
        envelope_max = CJC_BODY_BYTES_HANDSHAKE;
    else if (strncmp(path, CJC_DATA_PATH_PREFIX,
                     strlen(CJC_DATA_PATH_PREFIX)) == 0)
        envelope_max = CJC_BODY_BYTES_DATA_PUT;
    else
        envelope_max = CJC_BODY_BYTES_DEFAULT;
    max = cj_seal_pad_plaintext_max(envelope_max);
    return max < CJ_SEAL_MAX_PLAINTEXT_LEN ? max : CJ_SEAL_MAX_PLAINTEXT_LEN;
}

/*
 * Pads the JSON body *text of a request whose token has token_len bytes,
 * so that the envelope's size does not give away the length of a password
 * or value. *text is replaced and the old buffer wiped.
 */
static enum cj_status pad_request_body(char **text, size_t token_len,
                                       const char *method, const char *path,
                                       struct cjc_error *err)
{
    size_t len = strlen(*text);
    enum cj_status rc =
        cj_seal_pad_json(text, &len, CJ_SEAL_PLAINTEXT_HEADER_LEN + token_len,
                         request_plaintext_max(method, path));

    if (rc != CJ_OK)
        set_error(err, NULL, "padding the request failed (%s)",
                  cj_status_name(rc));
    return rc;
}

/* Sends an envelope as the body, or in Cerrojo-Seal for a GET. */
static enum cj_status send_envelope(struct cjc_client *c, const char *method,
                                    const char *path, const char *session_id,
                                    const char *envelope, size_t envelope_len,
                                    struct cjc_http_response *resp,
                                    struct cjc_error *err)
{
    struct cjc_http_header headers[3];
    size_t n = 0;
    char *seal_header = NULL;
    enum cj_status rc;
    bool has_body = strcmp(method, "GET") != 0;

    headers[n++] = (struct cjc_http_header){"Accept", "application/json"};
    if (session_id != NULL)
        headers[n++] =
            (struct cjc_http_header){CJ_SESSION_HEADER_NAME, session_id};
    if (has_body) {
        headers[n++] =
            (struct cjc_http_header){"Content-Type", "application/json"};
    } else {
        rc = cj_seal_header_encode(envelope, envelope_len, &seal_header);
        if (rc != CJ_OK) {
            set_error(err, NULL, "sealed request is too large for a header");
            return rc;
        }
        headers[n++] =
            (struct cjc_http_header){CJ_SEAL_HEADER_NAME, seal_header};
    }
    rc = cjc_http_request(
        c->http, method, path, headers, n, has_body ? envelope : NULL,
        has_body ? envelope_len : 0, resp, err->message, sizeof(err->message));
    free(seal_header);
    return rc;
}

/*
 * Rejects a plain response on a sealed route. The gateway seals every
 * response that it sends after opening a request, and a success always
 * comes after opening, so a plain 2xx can only come from something
 * between client and gateway. A plain error goes on to finish_response,
 * which reports it as unsealed. Takes ownership of outer.
 */
static enum cj_status
finish_plain_response(const struct cjc_http_response *resp, json_t *outer,
                      json_t **out, struct cjc_error *err)
{
    if (resp->status < 200 || resp->status > 299)
        return finish_response(resp->status, resp->retry_after_seconds, outer,
                               false, out, err);
    json_decref(outer);
    set_error(err, "unsealed_response",
              "the response came unsealed with HTTP %ld, but the gateway "
              "seals every successful response on this route. Something "
              "between this client and the gateway, such as a proxy or an "
              "attacker on the network, may have forged or altered it, so it "
              "was ignored and no session or token was stored",
              resp->status);
    err->http_status = resp->status;
    return CJ_ERR_CRYPTO;
}

/* Opens a stateless response (sealed, or plain for early errors). */
static enum cj_status
open_stateless_response(const struct cj_stateless_client *sc,
                        const struct cjc_http_response *resp, json_t **out,
                        struct cjc_error *err)
{
    json_t *outer = parse_plain(resp);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;
    json_t *body = NULL;

    if (!is_sealed_envelope(outer))
        return finish_plain_response(resp, outer, out, err);
    json_decref(outer);
    if (cj_stateless_open_response(sc, resp->body, resp->body_len, &plain,
                                   &plain_len, &why) != CJ_OK) {
        set_error(err, "decryption_failed",
                  "the sealed response did not open (%s)",
                  cj_seal_reason_name(why));
        return CJ_ERR_CRYPTO;
    }
    body = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES,
                      NULL);
    free_wiped(plain, plain_len);
    return finish_response(resp->status, resp->retry_after_seconds, body, true,
                           out, err);
}

/* Returns whether the gateway rejected a call's credential. */
static bool credential_rejected(enum cj_status rc, const struct cjc_error *err)
{
    return rc == CJ_ERR_UNAUTHENTICATED && err->http_status == 401 &&
           strcmp(err->code, "invalid_token") == 0;
}

/*
 * Replaces the message of a session rejection that came as plain JSON. The
 * gateway cannot seal it for a session that it no longer has, but anything
 * on the network path can send one too, so it is no proof that the login
 * has ended. A new login is a sealed exchange, so advising one is safe.
 */
static void say_session_rejection_unsealed(struct cjc_error *err)
{
    char code[sizeof(err->code)];

    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "unsealed response: a plain response rejected the session "
              "(HTTP %ld%s%s). The gateway sends one for a session that has "
              "ended: it was idle too long or reached its total lifetime, a "
              "logout of all devices ended it, or the account logged in more "
              "often since than the server keeps sessions per user. But "
              "something between this client and the gateway could have "
              "forged it. Run 'cerrojo login' to log in again",
              err->http_status, err->request_id[0] != '\0' ? ", request " : "",
              err->request_id);
}

/*
 * Replaces the message of a rejected credential that no retry can mend (a
 * refresh token or a session that has expired, was revoked or was reused)
 * with one that names the next step, keeping the code and request id.
 */
static void say_login_ended(struct cjc_error *err, const char *credential)
{
    char code[sizeof(err->code)];

    /* A plain rejection may be forged, so it is no verdict to pass on. A
     * session's rejection is plain for a session that the gateway no
     * longer has, so that case still gets advice. */
    if (!err->sealed) {
        if (strcmp(credential, "session") == 0)
            say_session_rejection_unsealed(err);
        return;
    }
    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "the server rejected the %s (HTTP 401%s%s), so this login has "
              "ended. Run 'cerrojo login' to log in again",
              credential, err->request_id[0] != '\0' ? ", request " : "",
              err->request_id);
}

/* Replaces the message of a user route sent on a session without a user. */
static void say_no_user(struct cjc_error *err)
{
    char code[sizeof(err->code)];

    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "no user is logged in on this session (HTTP 401%s%s). Run "
              "'cerrojo login' to log in",
              err->request_id[0] != '\0' ? ", request " : "", err->request_id);
}

/*
 * Replaces the message of an access token rejection that came as plain
 * JSON. The gateway seals a rejected access token, because it finds the
 * token inside the opened request, so a plain rejection may be forged. A
 * refresh because of it would let a forged response to that refresh
 * replace the stored tokens.
 */
static void say_rejection_unsealed(struct cjc_error *err)
{
    char code[sizeof(err->code)];

    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "the rejection of the access token came unsealed (HTTP "
              "%ld%s%s), but the gateway seals it. Something between this "
              "client and the gateway may have forged it, so the tokens were "
              "not refreshed. Run the command again, and check the network "
              "path to the gateway if this repeats",
              err->http_status, err->request_id[0] != '\0' ? ", request " : "",
              err->request_id);
}

/* Returns the stored refresh token, or NULL when the state has none. */
static const char *stored_refresh_token(const struct cjc_client *c)
{
    return json_string_value(
        json_object_get(json_object_get(c->state, "tokens"), "refresh_token"));
}

/*
 * Refreshes the tokens for a call that needs a valid access token, saves
 * them at once and passes notice to the client's notice callback. The save
 * does not wait for cjc_client_close, because the server has already marked
 * the old refresh token used. A state file that still contained it after a
 * crash would make the next command present it again, which revokes the
 * whole family as reuse. A rejected refresh (401) leaves the state as it
 * was and sets an error message that asks the user to log in again.
 */
static enum cj_status refresh_for_call(struct cjc_client *c, const char *notice,
                                       struct cjc_error *err)
{
    char saved[sizeof(err->message)];
    json_t *result = NULL;
    enum cj_status rc;

    rc = cjc_refresh(c, &result, err);
    json_decref(result);
    if (rc != CJ_OK)
        return rc;
    rc = cjc_client_save(c, err);
    if (rc != CJ_OK) {
        /* The server has spent the stored refresh token, so the next
         * command would present it again and revoke the family as reuse. */
        snprintf(saved, sizeof(saved), "%s", err->message);
        set_error(err, NULL,
                  "saving the refreshed tokens failed: %.*s. The stored "
                  "refresh token is spent; run 'cerrojo login' to log in "
                  "again",
                  CJC_MESSAGE_MAX, saved);
        return rc;
    }
    if (c->notice != NULL)
        c->notice(notice);
    return CJ_OK;
}

/*
 * Refreshes the tokens first when the access token has expired or is about
 * to, so that a stateless call (logout included) does not fail with
 * invalid_token while a valid refresh token sits in the state file.
 */
static enum cj_status ensure_fresh_access_token(struct cjc_client *c,
                                                struct cjc_error *err)
{
    json_t *tokens = json_object_get(c->state, "tokens");
    json_int_t expires_at = 0;

    if (!get_int(tokens, "access_expires_at_ms", &expires_at) ||
        stored_refresh_token(c) == NULL ||
        (json_int_t)server_ms(c) + CJC_TOKEN_REFRESH_MARGIN_MS < expires_at)
        return CJ_OK;
    trace("the access token expires within %d s: refreshing first",
          CJC_TOKEN_REFRESH_MARGIN_MS / 1000);
    return refresh_for_call(c,
                            "the access token had expired or was about to, "
                            "so the tokens were refreshed first",
                            err);
}

/* Returns the stored access token, or NULL when the state has none. */
static const char *stored_access_token(const struct cjc_client *c)
{
    return json_string_value(
        json_object_get(json_object_get(c->state, "tokens"), "access_token"));
}

/*
 * Replaces the message of a request that the gateway rejected for its
 * timestamp (409 "replayed", with a message that names the timestamp).
 * The gateway's advice to check the clock offset gives a CLI user nothing
 * to set, because the client takes each timestamp from the system clock.
 * The response's Date header, when present, shows by how much it is off.
 */
static void say_clock_off(const struct cjc_client *c,
                          const struct cjc_http_response *resp,
                          struct cjc_error *err)
{
    char code[sizeof(err->code)];
    char gap[128] = "differs from the server's by more than";
    long long ahead_s;

    /* The gateway seals a stale timestamp's 409, and the Date header is
     * unauthenticated, so advice that rests on them needs the seal. */
    if (!err->sealed || err->http_status != 409 ||
        strcmp(err->code, "replayed") != 0 ||
        strstr(err->message, "timestamp") == NULL)
        return;
    if (resp->date_seconds >= 0) {
        ahead_s = (long long)(server_ms(c) / 1000) - resp->date_seconds;
        /* The Date header has whole seconds, so 1 s is within its error. */
        if (llabs(ahead_s) > 1)
            snprintf(gap, sizeof(gap),
                     "is about %lld s %s the server's clock (by the Date "
                     "header of its response), more than",
                     llabs(ahead_s), ahead_s > 0 ? "ahead of" : "behind");
    }
    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "this machine's clock, which sets each request's timestamp, "
              "%s the server accepts (%d s each side by default). Correct "
              "the system clock and run the command again (HTTP 409%s%s)",
              gap, CJC_TIMESTAMP_WINDOW_DEFAULT_S,
              err->request_id[0] != '\0' ? ", request " : "", err->request_id);
}

static enum cj_status request_stateless(struct cjc_client *c,
                                        const char *method, const char *path,
                                        json_t *body, bool with_token,
                                        json_t **out, struct cjc_error *err)
{
    struct cj_stateless_client sc = {0};
    struct cjc_http_response resp = {0};
    struct cj_seal_plaintext pt = {0};
    char *text = NULL;
    char *envelope = NULL;
    size_t envelope_len = 0;
    enum cj_status rc;
    const char *token = NULL;

    /* Without tokens the call cannot succeed, so no request is sent. */
    if (with_token && stored_access_token(c) == NULL) {
        set_error(err, NULL, "not logged in; run 'cerrojo login' first");
        rc = CJ_ERR_UNAUTHENTICATED;
        goto out;
    }
    rc = ensure_key(c, err);
    if (rc != CJ_OK)
        goto out;
    if (with_token) {
        rc = ensure_fresh_access_token(c, err);
        if (rc != CJ_OK)
            goto out;
        /* Read again, because a refresh may have replaced the token. */
        token = stored_access_token(c);
        if (token == NULL) {
            set_error(err, NULL, "not logged in; run 'cerrojo login' first");
            rc = CJ_ERR_UNAUTHENTICATED;
            goto out;
        }
    }
    rc = CJ_ERR_NOMEM;
    text = body_text(body);
    if (text == NULL)
        goto out;
    pt.ts_ms = server_ms(c);
    pt.token = (const uint8_t *)token;
    pt.token_len = token != NULL ? strlen(token) : 0;
    rc = pad_request_body(&text, pt.token_len, method, path, err);
    if (rc != CJ_OK)
        goto out;
    pt.body = (const uint8_t *)text;
    pt.body_len = strlen(text);
    rc = cj_stateless_seal_request(&c->key.header, c->key.public_key, method,
                                   path, &pt, &envelope, &envelope_len, &sc);
    if (rc != CJ_OK) {
        set_error(err, NULL, "sealing the request failed (%s)",
                  cj_status_name(rc));
        goto out;
    }
    trace("%s %s sealed stateless: HPKE X25519 to key %u, %s, %zu-byte "
          "envelope%s",
          method, path, c->key.header.key_id,
          aead_name(c->key.header.suite.aead_id), envelope_len,
          token != NULL ? ", access token inside the seal" : "");
    rc = send_envelope(c, method, path, NULL, envelope, envelope_len, &resp,
                       err);
    if (rc != CJ_OK)
        goto out;
    trace("HTTP %ld, %zu-byte %s response", resp.status, resp.body_len,
          strstr(resp.body != NULL ? resp.body : "", "\"nonce\"") != NULL
              ? "sealed"
              : "plain");
    rc = open_stateless_response(&sc, &resp, out, err);
    if (rc != CJ_OK)
        say_clock_off(c, &resp, err);

out:
    cj_stateless_client_wipe(&sc);
    cjc_http_response_clear(&resp);
    free_wiped(text, text != NULL ? strlen(text) : 0);
    free(envelope);
    return rc;
}

/*
 * The session's position: its id, the epoch key of `epoch`, and the last
 * sequence number used. The key is kept in the state file (mode 0600).
 */
struct session_position {
    const char *id;
    uint64_t created_ms;
    uint64_t epoch_ms;
    uint32_t epoch;
    uint8_t key[CJ_RATCHET_KEY_LEN];
    uint64_t seq;
};

/* Sets the error for a stored session that cannot be used, with the
 * command that removes the state file, quoted for the shell. */
static void say_bad_session(const struct cjc_client *c, const char *problem,
                            struct cjc_error *err)
{
    char quoted[CJC_STATE_QUOTED_PATH_MAX];

    if (cjc_state_quote_for_shell(c->state_path, quoted, sizeof(quoted)) !=
        CJ_OK) {
        set_error(err, NULL,
                  "state file %s contains %s. Remove it, then run 'cerrojo "
                  "login' to log in again",
                  c->state_path, problem);
        return;
    }
    set_error(err, NULL,
              "state file %s contains %s. Remove it with rm %s, then run "
              "'cerrojo login' to log in again",
              c->state_path, problem, quoted);
}

static enum cj_status load_position(struct cjc_client *c,
                                    struct session_position *pos,
                                    struct cjc_error *err)
{
    json_t *s = json_object_get(c->state, "session");
    const char *key_text = json_string_value(json_object_get(s, "epoch_key"));
    json_int_t created, epoch_seconds, epoch, seq;
    size_t key_len = 0;

    pos->id = json_string_value(json_object_get(s, "id"));
    if (pos->id == NULL || key_text == NULL ||
        !get_int(s, "created_at_ms", &created) ||
        !get_int(s, "epoch_seconds", &epoch_seconds) ||
        !get_int(s, "epoch", &epoch) || !get_int(s, "seq", &seq) ||
        epoch_seconds <= 0 || epoch < 0 || epoch > UINT32_MAX || seq < 0) {
        /* cjc_state_load checked these members, so only a bug in this
         * client reaches here. A handshake would not help, because it is
         * rejected while the state contains a login. */
        say_bad_session(c, "an incomplete session", err);
        return CJ_ERR_INVALID;
    }
    if (sodium_base642bin(pos->key, sizeof(pos->key), key_text,
                          strlen(key_text), NULL, &key_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        key_len != sizeof(pos->key)) {
        say_bad_session(c, "a damaged session key", err);
        return CJ_ERR_INVALID;
    }
    pos->created_ms = (uint64_t)created;
    pos->epoch_ms = (uint64_t)epoch_seconds * 1000u;
    pos->epoch = (uint32_t)epoch;
    pos->seq = (uint64_t)seq;
    return CJ_OK;
}

/* Stores the last sequence number used. */
static void save_sequence(struct cjc_client *c, uint64_t seq)
{
    json_t *s = json_object_get(c->state, "session");

    json_object_set_new(s, "seq", json_integer((json_int_t)seq));
    c->dirty = true;
}

/*
 * Stores the epoch and its key. It is called only after a response sealed
 * under that epoch opened. A request that the server rejected, from a clock
 * that ran ahead for example, thus leaves no later epoch key behind, which
 * the server has not reached and from which the ratchet cannot step back.
 */
static enum cj_status save_epoch(struct cjc_client *c,
                                 const struct session_position *pos)
{
    json_t *s = json_object_get(c->state, "session");
    char *key_text = cj_base64url_encode(pos->key, sizeof(pos->key));

    if (key_text == NULL)
        return CJ_ERR_NOMEM;
    json_object_set_new(s, "epoch_key", json_string(key_text));
    json_object_set_new(s, "epoch", json_integer(pos->epoch));
    sodium_memzero(key_text, strlen(key_text));
    free(key_text);
    c->dirty = true;
    return CJ_OK;
}

/*
 * Opens a stateful response (sealed, or plain for early errors). *opened
 * is set when a sealed response opened under the session's keys.
 */
static enum cj_status
open_stateful_response(const struct session_position *pos,
                       const uint8_t s2c[CJ_RATCHET_KEY_LEN],
                       const struct cjc_http_response *resp, bool *opened,
                       json_t **out, struct cjc_error *err)
{
    uint8_t response_key[CJ_RATCHET_KEY_LEN];
    json_t *outer = parse_plain(resp);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;
    enum cj_status rc;
    json_t *body = NULL;

    if (!is_sealed_envelope(outer))
        return finish_plain_response(resp, outer, out, err);
    json_decref(outer);
    rc = cj_ratchet_response_key(response_key, s2c, pos->seq);
    if (rc == CJ_OK)
        rc = cj_stateful_open_response(
            response_key, (const uint8_t *)pos->id, strlen(pos->id), pos->epoch,
            pos->seq, resp->body, resp->body_len, &plain, &plain_len, &why);
    sodium_memzero(response_key, sizeof(response_key));
    if (rc != CJ_OK) {
        set_error(err, "decryption_failed",
                  "the sealed response did not open (%s)",
                  cj_seal_reason_name(why));
        return CJ_ERR_CRYPTO;
    }
    *opened = true;
    body = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES,
                      NULL);
    free_wiped(plain, plain_len);
    return finish_response(resp->status, resp->retry_after_seconds, body, true,
                           out, err);
}

/*
 * Replaces the message of a stateful request that the server could not
 * open. The gateway's own message names a new session from a handshake as
 * the remedy, but a handshake alone binds no user, so a CLI user
 * needs a login. The rejection is always plain, because the gateway has no
 * key to seal it with, so the message states that it may be forged.
 */
static void say_session_unopened(struct cjc_error *err)
{
    char code[sizeof(err->code)];

    snprintf(code, sizeof(code), "%s", err->code);
    set_error(err, code,
              "unsealed response: a plain response says that the server "
              "could not open the request with this session's keys (HTTP "
              "%ld%s%s), and something between this client and the gateway "
              "could have forged it. If this machine's clock is wrong, "
              "correct it and run the command again. Otherwise run 'cerrojo "
              "login' to log in again",
              err->http_status, err->request_id[0] != '\0' ? ", request " : "",
              err->request_id);
}

/*
 * Sets the error for a system clock behind the session's creation time,
 * as after the clock was set back since the login. No epoch exists before
 * creation. A new session would not mend the clock, and it would drop the
 * session that the login is bound to.
 */
static void say_clock_behind(struct cjc_error *err, uint64_t behind_ms)
{
    set_error(err, NULL,
              "the system clock is %llu s behind the session's creation "
              "time, so no session key can be computed. Correct the system "
              "clock and run the command again",
              (unsigned long long)((behind_ms + 999) / 1000));
}

static enum cj_status request_stateful(struct cjc_client *c, const char *method,
                                       const char *path, json_t *body,
                                       json_t **out, struct cjc_error *err)
{
    struct session_position pos = {0};
    struct cjc_http_response resp = {0};
    struct cj_seal_plaintext pt = {0};
    uint8_t c2s[CJ_RATCHET_KEY_LEN], s2c[CJ_RATCHET_KEY_LEN];
    char *text = NULL;
    char *envelope = NULL;
    size_t envelope_len = 0;
    uint32_t epoch_now = 0;
    uint64_t now_ms;
    enum cj_status rc;

    c->session_answered = false;
    rc = load_position(c, &pos, err);
    if (rc != CJ_OK)
        goto out;
    /* Follow the epochs from the session's creation; never step back. */
    now_ms = server_ms(c);
    if (now_ms < pos.created_ms && wall_ms() >= pos.created_ms) {
        /* The server cannot be behind a session it created, so the stored
         * offset is what is wrong: measured while this clock was fast and
         * since corrected. The wall clock is tried instead, and a sealed
         * stale-timestamp response measures the offset again if needed. */
        trace("stored clock offset puts the server before the session's "
              "creation; offset dropped");
        json_object_set_new(c->state, "clock_offset_ms", json_integer(0));
        c->dirty = true;
        now_ms = server_ms(c);
    }
    if (now_ms < pos.created_ms) {
        say_clock_behind(err, pos.created_ms - now_ms);
        rc = CJ_ERR_INVALID;
        goto out;
    }
    rc = cj_epoch_at(pos.created_ms, pos.epoch_ms, now_ms, &epoch_now);
    if (rc == CJ_OK && epoch_now > pos.epoch) {
        rc = cj_ratchet_advance(pos.key, pos.epoch, epoch_now);
        if (rc == CJ_OK)
            pos.epoch = epoch_now;
    }
    if (rc != CJ_OK) {
        /* The epoch number does not fit in 32 bits, so the clock is decades
         * ahead. */
        set_error(err, NULL,
                  "the session's epoch cannot be computed from the system "
                  "clock. Correct the system clock and run the command "
                  "again");
        goto out;
    }
    /* The sequence number is stored before the request is sent and never
     * goes back, even when the request fails, so that no two requests are
     * sealed with one key and nonce. With save_before_send it reaches the
     * file first too, so a command killed mid-request does not reuse it. */
    pos.seq++;
    save_sequence(c, pos.seq);
    if (c->save_before_send) {
        rc = cjc_client_save(c, err);
        if (rc != CJ_OK)
            goto out;
    }
    rc = cj_ratchet_direction_keys(pos.key, c2s, s2c);
    if (rc != CJ_OK)
        goto out;

    rc = CJ_ERR_NOMEM;
    text = body_text(body);
    if (text == NULL)
        goto out;
    pt.ts_ms = server_ms(c);
    /* A stateful plaintext carries no token, but pad_request_body still
     * counts its header (CJ_SEAL_PLAINTEXT_HEADER_LEN). */
    rc = pad_request_body(&text, 0, method, path, err);
    if (rc != CJ_OK)
        goto out;
    pt.body = (const uint8_t *)text;
    pt.body_len = strlen(text);
    rc = cj_stateful_seal_request(c2s, (const uint8_t *)pos.id, strlen(pos.id),
                                  pos.epoch, pos.seq, method, path, &pt,
                                  &envelope, &envelope_len);
    if (rc != CJ_OK) {
        set_error(err, NULL, "sealing the request failed (%s)",
                  cj_status_name(rc));
        goto out;
    }
    trace("%s %s sealed stateful: AES-256-GCM epoch %u, sequence %llu, "
          "%zu-byte envelope",
          method, path, pos.epoch, (unsigned long long)pos.seq, envelope_len);
    rc = send_envelope(c, method, path, pos.id, envelope, envelope_len, &resp,
                       err);
    if (rc != CJ_OK)
        goto out;
    trace("HTTP %ld, %zu-byte %s response", resp.status, resp.body_len,
          strstr(resp.body != NULL ? resp.body : "", "\"nonce\"") != NULL
              ? "sealed"
              : "plain");
    rc = open_stateful_response(&pos, s2c, &resp, &c->session_answered, out,
                                err);
    /* A failed save only leaves the older key, from which the next request
     * steps forward again. */
    if (c->session_answered)
        (void)save_epoch(c, &pos);
    else if (rc != CJ_OK && err->http_status == 400 &&
             strcmp(err->code, "decryption_failed") == 0)
        say_session_unopened(err);
    if (rc != CJ_OK)
        say_clock_off(c, &resp, err);

out:
    sodium_memzero(&pos.key, sizeof(pos.key));
    sodium_memzero(c2s, sizeof(c2s));
    sodium_memzero(s2c, sizeof(s2c));
    cjc_http_response_clear(&resp);
    free_wiped(text, text != NULL ? strlen(text) : 0);
    free(envelope);
    return rc;
}

/*
 * After a sealed 409 for a request timestamp outside the gateway's window,
 * sets the stored clock offset from the server's clock that the response
 * carries and returns true. The gateway checks the timestamp before it
 * records the request or passes it on, so sending the request again with
 * a corrected timestamp does not run it twice.
 */
static bool measure_clock_again(struct cjc_client *c,
                                const struct cjc_error *err)
{
    long long offset;

    if (!err->sealed || err->http_status != 409 ||
        strcmp(err->code, "replayed") != 0 ||
        err->server_time_ms < CJC_SESSION_CREATED_MIN_MS ||
        err->server_time_ms > CJC_TIME_MAX_MS)
        return false;
    offset = err->server_time_ms - (long long)wall_ms();
    trace("request timestamp outside the server's window; clock offset "
          "measured again: %lld ms",
          offset);
    json_object_set_new(c->state, "clock_offset_ms", json_integer(offset));
    c->dirty = true;
    return true;
}

static enum cj_status request_once(struct cjc_client *c, const char *method,
                                   const char *path, json_t *body,
                                   enum cjc_mode mode, bool with_token,
                                   json_t **out, struct cjc_error *err)
{
    *out = NULL;
    memset(err, 0, sizeof(*err));
    err->retry_after_seconds = -1;
    if (mode == CJC_MODE_STATEFUL)
        return request_stateful(c, method, path, body, out, err);
    return request_stateless(c, method, path, body, with_token, out, err);
}

enum cj_status cjc_request(struct cjc_client *c, const char *method,
                           const char *path, json_t *body, enum cjc_mode mode,
                           bool with_token, json_t **out, struct cjc_error *err)
{
    enum cj_status rc;

    if (mode == CJC_MODE_AUTO)
        mode =
            cjc_client_has_session(c) ? CJC_MODE_STATEFUL : CJC_MODE_STATELESS;
    rc = request_once(c, method, path, body, mode, with_token, out, err);
    /* Once only: a second refusal means the clock moves while it runs, or
     * the gateways behind one address disagree, and the error names the clock.
     */
    if (rc != CJ_OK && measure_clock_again(c, err))
        rc = request_once(c, method, path, body, mode, with_token, out, err);
    return rc;
}

/*
 * Keeps a session the server opened from client_secret: derives the
 * epoch-0 key and stores the position. session is SessionInfo's JSON.
 */
static enum cj_status keep_session(struct cjc_client *c, const json_t *info,
                                   const uint8_t *client_secret,
                                   struct cjc_error *err)
{
    const char *id = json_string_value(json_object_get(info, "session_id"));
    json_int_t created, server_now, epoch_seconds;
    uint8_t key[CJ_RATCHET_KEY_LEN];
    json_t *s = NULL;
    char *key_text = NULL;
    enum cj_status rc;

    if (id == NULL || !get_int(info, "created_at_ms", &created) ||
        !get_int(info, "epoch_seconds", &epoch_seconds) || epoch_seconds <= 0) {
        set_error(err, NULL,
                  "the server's session description is "
                  "incomplete");
        return CJ_ERR_INVALID;
    }
    rc = cj_ratchet_first_key(key, (const uint8_t *)id, strlen(id),
                              client_secret);
    if (rc != CJ_OK) {
        set_error(err, NULL, "the session key cannot be derived");
        return rc;
    }
    key_text = cj_base64url_encode(key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    if (key_text == NULL)
        return CJ_ERR_NOMEM;
    /* The clock offset makes timestamps and epochs follow the server. */
    if (get_int(info, "server_time_ms", &server_now))
        json_object_set_new(c->state, "clock_offset_ms",
                            json_integer(server_now - (json_int_t)wall_ms()));
    s = json_deep_copy(info);
    json_object_set_new(s, "id", json_string(id));
    json_object_set_new(s, "epoch_key", json_string(key_text));
    json_object_set_new(s, "epoch", json_integer(0));
    json_object_set_new(s, "seq", json_integer(0));
    json_object_set_new(c->state, "session", s);
    sodium_memzero(key_text, strlen(key_text));
    free(key_text);
    c->dirty = true;
    return CJ_OK;
}

/*
 * Returns a copy of a SessionInfo for printing, without session_id: the id
 * and the epoch key together are the stateful credential, so the id stays
 * in the state file only.
 */
static json_t *public_session_view(const json_t *info)
{
    json_t *copy = json_deep_copy(info);

    json_object_del(copy, "session_id");
    return copy;
}

/* A response without the secret parts (tokens, session id), for printing. */
static json_t *public_view(const json_t *result)
{
    json_t *copy = json_deep_copy(result);
    json_t *session = json_object_get(copy, "session");

    json_object_del(copy, "access_token");
    json_object_del(copy, "refresh_token");
    if (json_is_object(session))
        json_object_set_new(copy, "session", public_session_view(session));
    return copy;
}

/*
 * Checks that a TokenSet response has both tokens, so that a response
 * without them cannot replace the stored ones with nothing.
 */
static enum cj_status check_token_set(const json_t *result,
                                      struct cjc_error *err)
{
    if (json_is_string(json_object_get(result, "access_token")) &&
        json_is_string(json_object_get(result, "refresh_token")))
        return CJ_OK;
    set_error(err, NULL,
              "the server's response has no access and refresh token, so the "
              "stored tokens were kept");
    return CJ_ERR_INVALID;
}

/* Stores the tokens of a TokenSet response that check_token_set accepted. */
static void keep_tokens(struct cjc_client *c, const json_t *result)
{
    json_t *tokens = json_object();
    json_int_t expires_in = 0;

    json_object_set(tokens, "access_token",
                    json_object_get(result, "access_token"));
    json_object_set(tokens, "refresh_token",
                    json_object_get(result, "refresh_token"));
    json_object_set(tokens, "user_id", json_object_get(result, "user_id"));
    if (get_int(result, "expires_in", &expires_in))
        json_object_set_new(
            tokens, "access_expires_at_ms",
            json_integer((json_int_t)server_ms(c) + expires_in * 1000));
    json_object_set_new(c->state, "tokens", tokens);
    c->dirty = true;
}

enum cj_status cjc_handshake(struct cjc_client *c, json_t **out,
                             struct cjc_error *err)
{
    uint8_t secret[CJ_RATCHET_CLIENT_SECRET_LEN];
    char *secret_text = NULL;
    json_t *body = NULL;
    json_t *info = NULL;
    enum cj_status rc = CJ_ERR_NOMEM;

    *out = NULL;
    /* A handshake binds no user, so it would leave the tokens beside a
     * session that cannot use them, and logout would lose the session that
     * the login is bound to. */
    if (json_object_get(c->state, "tokens") != NULL) {
        set_error(err, NULL,
                  "state file %s contains a login, and a handshake would "
                  "replace its session with one that no user is logged in "
                  "on. Run 'cerrojo logout' to end the login first, or "
                  "'cerrojo login' to log in again",
                  c->state_path);
        return CJ_ERR_PRECONDITION;
    }
    randombytes_buf(secret, sizeof(secret));
    secret_text = cj_base64url_encode(secret, sizeof(secret));
    if (secret_text == NULL)
        goto out;
    body = json_pack("{s:s}", "client_secret", secret_text);
    if (body == NULL)
        goto out;
    rc = cjc_request(c, "POST", "/v1/handshake", body, CJC_MODE_STATELESS,
                     false, &info, err);
    if (rc != CJ_OK)
        goto out;
    rc = keep_session(c, info, secret, err);
    if (rc == CJ_OK)
        *out = public_session_view(info);

out:
    sodium_memzero(secret, sizeof(secret));
    if (secret_text != NULL) {
        sodium_memzero(secret_text, strlen(secret_text));
        free(secret_text);
    }
    json_decref(body);
    json_decref(info);
    return rc;
}

/*
 * Register and login: in stateful mode the request carries a fresh
 * handshake secret and the session it opens is kept with the tokens.
 */
static enum cj_status credentials_call(struct cjc_client *c, const char *path,
                                       json_t *body, enum cjc_mode mode,
                                       json_t **out, struct cjc_error *err)
{
    uint8_t secret[CJ_RATCHET_CLIENT_SECRET_LEN];
    char *secret_text = NULL;
    json_t *result = NULL;
    enum cj_status rc = CJ_ERR_NOMEM;
    bool stateful = mode != CJC_MODE_STATELESS;

    *out = NULL;
    if (stateful) {
        randombytes_buf(secret, sizeof(secret));
        secret_text = cj_base64url_encode(secret, sizeof(secret));
        if (secret_text == NULL)
            goto out;
        json_object_set_new(body, "client_secret", json_string(secret_text));
    }
    rc = cjc_request(c, "POST", path, body, CJC_MODE_STATELESS, false, &result,
                     err);
    if (rc != CJ_OK)
        goto out;
    /*
     * Only a successful call replaces the old session and tokens: after a
     * failed one they are still valid on the server, and the user needs
     * them to go on or to log out. So every check comes before the first
     * change, and keep_session changes nothing when it fails.
     */
    rc = check_token_set(result, err);
    if (rc != CJ_OK)
        goto out;
    if (stateful) {
        json_t *session = json_object_get(result, "session");
        if (!json_is_object(session)) {
            set_error(err, NULL,
                      "the server opened no session, so the stored session "
                      "and tokens were kept");
            rc = CJ_ERR_INVALID;
            goto out;
        }
        rc = keep_session(c, session, secret, err);
        if (rc != CJ_OK)
            goto out;
    } else {
        json_object_del(c->state, "session");
    }
    keep_tokens(c, result);
    *out = public_view(result);

out:
    sodium_memzero(secret, sizeof(secret));
    if (secret_text != NULL) {
        sodium_memzero(secret_text, strlen(secret_text));
        free(secret_text);
    }
    json_decref(result);
    return rc;
}

/* Wipes the password copy jansson made inside body before freeing it. */
static void free_credentials_body(json_t *body)
{
    json_t *pw = json_object_get(body, "password");

    if (json_is_string(pw)) {
        char *text = (char *)json_string_value(pw);
        sodium_memzero(text, json_string_length(pw));
    }
    json_t *secret = json_object_get(body, "client_secret");
    if (json_is_string(secret)) {
        char *text = (char *)json_string_value(secret);
        sodium_memzero(text, json_string_length(secret));
    }
    json_decref(body);
}

enum cj_status cjc_register(struct cjc_client *c, const char *username,
                            const char *email, const char *password,
                            enum cjc_mode mode, json_t **out,
                            struct cjc_error *err)
{
    json_t *body = json_pack("{s:s,s:s,s:s}", "username", username, "email",
                             email, "password", password);
    enum cj_status rc;

    if (body == NULL) {
        set_error(err, NULL, "username, email and password must be UTF-8");
        return CJ_ERR_INVALID;
    }
    rc = credentials_call(c, "/v1/register", body, mode, out, err);
    free_credentials_body(body);
    return rc;
}

enum cj_status cjc_login(struct cjc_client *c, const char *login,
                         const char *password, enum cjc_mode mode, json_t **out,
                         struct cjc_error *err)
{
    json_t *body = json_pack("{s:s,s:s}", "login", login, "password", password);
    enum cj_status rc;

    if (body == NULL) {
        set_error(err, NULL, "login and password must be UTF-8");
        return CJ_ERR_INVALID;
    }
    rc = credentials_call(c, "/v1/login", body, mode, out, err);
    free_credentials_body(body);
    return rc;
}

/*
 * Sends a call that carries the stored access token, and when the gateway
 * rejects that token in a sealed response, refreshes once and sends the
 * same body (borrowed) again. In stateful mode the session, not the token, is
 * the credential, and a refresh cannot revive a session, so nothing is retried
 * and the error message tells the user to log in again. Nor is a call retried
 * that already sent a refresh, successful or not, because a token fresh from
 * the server was rejected for a reason such as a revocation that another
 * refresh does not undo, and a rejected refresh token must not be presented
 * twice.
 */
static enum cj_status request_with_token(struct cjc_client *c,
                                         const char *method, const char *path,
                                         json_t *body, json_t **out,
                                         struct cjc_error *err)
{
    bool stateless = !cjc_client_has_session(c);
    unsigned long attempts_before = c->refresh_attempts;
    enum cj_status rc;

    rc = cjc_request(c, method, path, body, CJC_MODE_AUTO, true, out, err);
    if (!credential_rejected(rc, err))
        return rc;
    if (!stateless && c->session_answered) {
        /* The 401 was sealed under the session's keys, so the session is
         * alive but no login is bound to it (a handshake alone). */
        say_no_user(err);
        return rc;
    }
    if (!stateless) {
        say_login_ended(err, "session");
        return rc;
    }
    if (c->refresh_attempts != attempts_before ||
        stored_refresh_token(c) == NULL)
        return rc;
    if (!err->sealed) {
        say_rejection_unsealed(err);
        return rc;
    }
    trace("%s %s: access token rejected, refreshing and sending again", method,
          path);
    rc = refresh_for_call(c,
                          "the server rejected the access token, so the "
                          "tokens were refreshed and the request is sent "
                          "once more",
                          err);
    if (rc != CJ_OK)
        return rc;
    return cjc_request(c, method, path, body, CJC_MODE_AUTO, true, out, err);
}

enum cj_status cjc_me(struct cjc_client *c, json_t **out, struct cjc_error *err)
{
    return request_with_token(c, "GET", "/v1/me", NULL, out, err);
}

enum cj_status cjc_data_get(struct cjc_client *c, const char *data_class,
                            json_t **out, struct cjc_error *err)
{
    char path[64];

    snprintf(path, sizeof(path), "/v1/me/data/%s", data_class);
    return request_with_token(c, "GET", path, NULL, out, err);
}

enum cj_status cjc_data_put(struct cjc_client *c, const char *data_class,
                            json_t *fields, json_t **out, struct cjc_error *err)
{
    char path[64];
    json_t *body = json_pack("{s:O}", "fields", fields);
    enum cj_status rc;

    if (body == NULL)
        return CJ_ERR_NOMEM;
    snprintf(path, sizeof(path), "/v1/me/data/%s", data_class);
    rc = request_with_token(c, "PUT", path, body, out, err);
    json_decref(body);
    return rc;
}

/* The stored refresh token, or NULL with err set. */
static const char *refresh_token(const struct cjc_client *c,
                                 struct cjc_error *err)
{
    const char *token = json_string_value(
        json_object_get(json_object_get(c->state, "tokens"), "refresh_token"));

    if (token == NULL)
        set_error(err, NULL, "no refresh token; run 'cerrojo login' first");
    return token;
}

enum cj_status cjc_refresh(struct cjc_client *c, json_t **out,
                           struct cjc_error *err)
{
    const char *token = refresh_token(c, err);
    json_t *body = NULL;
    json_t *result = NULL;
    enum cj_status rc;

    *out = NULL;
    if (token == NULL)
        return CJ_ERR_UNAUTHENTICATED;
    body = json_pack("{s:s}", "refresh_token", token);
    if (body == NULL)
        return CJ_ERR_NOMEM;
    c->refresh_attempts++;
    rc = cjc_request(c, "POST", "/v1/refresh", body, CJC_MODE_AUTO, false,
                     &result, err);
    json_decref(body);
    if (credential_rejected(rc, err))
        say_login_ended(err, cjc_client_has_session(c) ? "session"
                                                       : "refresh token");
    if (rc == CJ_OK)
        rc = check_token_set(result, err);
    if (rc != CJ_OK) {
        json_decref(result);
        return rc;
    }
    keep_tokens(c, result);
    *out = public_view(result);
    json_decref(result);
    return CJ_OK;
}

/*
 * Sends the logout without the session, for a session that the server
 * rejected: one that no user is logged in on (a handshake replaced the
 * login's session) or one that has ended. The stored tokens may still be
 * valid on the stateless channel, and only a logout revokes their family.
 * The session leaves the state for the call, so that a refresh on the way
 * is stateless too, and comes back when the call fails.
 */
static enum cj_status logout_stateless(struct cjc_client *c, json_t *body,
                                       struct cjc_error *err)
{
    json_t *session = json_incref(json_object_get(c->state, "session"));
    json_t *result = NULL;
    enum cj_status rc;

    trace("POST /v1/logout: the server rejected the session, so the tokens "
          "are revoked over the stateless channel");
    json_object_del(c->state, "session");
    c->dirty = true;
    rc = request_with_token(c, "POST", "/v1/logout", body, &result, err);
    json_decref(result);
    if (rc != CJ_OK)
        json_object_set(c->state, "session", session);
    else if (c->notice != NULL)
        c->notice("the server rejected the session, so the tokens were "
                  "revoked without it");
    json_decref(session);
    return rc;
}

/*
 * Returns whether a stateful call failed because the server could not use
 * the stored session. Either it rejected the session (401 invalid_token),
 * or it could not open the request with the session's keys (400
 * decryption_failed), as when the stored key no longer matches the server's.
 */
static bool session_unusable(enum cj_status rc, const struct cjc_error *err)
{
    return credential_rejected(rc, err) ||
           (err->http_status == 400 &&
            strcmp(err->code, "decryption_failed") == 0);
}

/*
 * Sends the logout with the refresh token alone, for a login whose
 * session the server no longer has. The server then rejects the login's
 * access and refresh tokens too, because they are bound to that session,
 * but a logout that carries only the refresh token still revokes its
 * family. Such a logout cannot end other devices. So with `all` the family
 * is revoked, the state is cleared, and the call fails with a message that
 * explains how to log out every device.
 */
static enum cj_status logout_refresh_token_only(struct cjc_client *c, bool all,
                                                struct cjc_error *err)
{
    const char *token = stored_refresh_token(c);
    json_t *body = json_pack("{s:s,s:b}", "refresh_token", token, "all", 0);
    json_t *result = NULL;
    enum cj_status rc;

    if (body == NULL)
        return CJ_ERR_NOMEM;
    trace("POST /v1/logout: the server rejected the session and its tokens, "
          "so the refresh family is revoked with the refresh token alone");
    rc = cjc_request(c, "POST", "/v1/logout", body, CJC_MODE_STATELESS, false,
                     &result, err);
    json_decref(result);
    json_decref(body);
    /* A failed logout leaves the state as it was, so the user can retry. */
    if (credential_rejected(rc, err))
        say_login_ended(err, "refresh token");
    if (rc != CJ_OK)
        return rc;
    json_object_del(c->state, "session");
    json_object_del(c->state, "tokens");
    c->dirty = true;
    if (all) {
        set_error(err, NULL,
                  "the server no longer has this login's session, so only "
                  "its own refresh tokens were revoked and the state file "
                  "was cleared. Other devices stay logged in: run 'cerrojo "
                  "login', then 'cerrojo logout --all'");
        return CJ_ERR_PRECONDITION;
    }
    if (c->notice != NULL)
        c->notice("the server no longer has this login's session and "
                  "rejected its tokens, so the refresh tokens were revoked "
                  "with the refresh token alone");
    return CJ_OK;
}

enum cj_status cjc_logout(struct cjc_client *c, bool all, struct cjc_error *err)
{
    const char *token = stored_refresh_token(c);
    json_t *body =
        json_pack("{s:s,s:b}", "refresh_token", token ? token : "", "all", all);
    json_t *result = NULL;
    bool stateful = cjc_client_has_session(c);
    enum cj_status rc;

    if (body == NULL)
        return CJ_ERR_NOMEM;
    /* A retry sends the refresh token that a refresh has just spent. That
     * is enough, because auth revokes the family of any of its tokens,
     * spent ones included. */
    rc = request_with_token(c, "POST", "/v1/logout", body, &result, err);
    json_decref(result);
    if (stateful && session_unusable(rc, err) && stored_access_token(c) != NULL)
        rc = logout_stateless(c, body, err);
    json_decref(body);
    /* Only a sealed rejection of the tokens leads here: a forged plain one
     * would otherwise turn a logout with `all` into one of this login only
     * and clear the state file. */
    if (stateful && credential_rejected(rc, err) && err->sealed &&
        stored_refresh_token(c) != NULL)
        return logout_refresh_token_only(c, all, err);
    if (rc != CJ_OK)
        return rc;
    /* Nothing of the session or the tokens is of use any more. */
    json_object_del(c->state, "session");
    json_object_del(c->state, "tokens");
    c->dirty = true;
    return CJ_OK;
}

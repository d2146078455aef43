/*
 * The sealed-route handler: open the request (stateless through kms
 * OpenSealed, stateful through session OpenRequest), check freshness and
 * replay, authenticate, call the route's RPC with the opened JSON, and
 * seal the response. Errors raised before the body is opened are plain JSON;
 * errors raised after are sealed like any response.
 */
#include "gw_sealed.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cerrojo/v1/kms.pb-c.h"
#include "cerrojo/v1/session.pb-c.h"
#include "crypto_util.h"
#include "envelope_stateful.h"
#include "envelope_stateless.h"
#include "gw_audit.h"
#include "gw_auth.h"
#include "gw_json.h"
#include "gw_limits.h"
#include "gw_pipeline.h"
#include "gw_redis.h"
#include "log.h"
#include "ratchet.h"
#include "rpc_caller.h"
#include "seal_pad.h"

/* Room for a backend's status message in the log. */
#define GW_SEALED_DETAIL_CHARS 256

/* The request field whose presence makes register and login open a
 * session. */
#define GW_CLIENT_SECRET_FIELD "client_secret"
/* The only client_secret length auth accepts. */
#define GW_CLIENT_SECRET_BYTES 32

/* Member of the sealed 409 for a stale timestamp that carries the
 * gateway's clock, in milliseconds since the Unix epoch. */
#define GW_STALE_TIME_MEMBER "server_time_ms"

/* Client message of the session bucket's 429. It names the limit and the
 * way around it, because a login without a session spends nothing from
 * that bucket. */
#define GW_MSG_SESSION_RATE_LIMITED                                            \
    "Too many logins or registrations that open a session from this "          \
    "address; retry later. A login without a session (cerrojo login "          \
    "--stateless) is not limited by this."
#define GW_LOG_SESSION_RATE_LIMITED                                            \
    "per-IP session rate limit: the request carries client_secret and "        \
    "would open a session"

/* Client messages of decryption_failed, one per mode. Each says what a
 * client can do next and never which check failed, because that goes to
 * the log. A stateless seal usually fails after the server's HPKE key
 * rotated or was retired, a stateful one after the session's keys are
 * gone. */
#define GW_MSG_UNOPENED_STATELESS                                              \
    "The sealed request could not be opened. The server key may have "         \
    "rotated or been retired, so fetch GET /v1/keys and seal it again."
#define GW_MSG_UNOPENED_STATEFUL                                               \
    "The sealed request could not be opened with this session's keys. "        \
    "Open a new session with a handshake and send it again."
/* Client message of an unknown or expired session (invalid_token). */
#define GW_MSG_SESSION_UNKNOWN                                                 \
    "The session is unknown or has expired. Open a new session with a "        \
    "handshake."

/* Client message of a stateful request whose plaintext carries a token. */
#define GW_MSG_TOKEN_IN_STATEFUL                                               \
    "An access token must not be sent in stateful mode, because the "          \
    "session is the credential. Send the request with an empty token "         \
    "(token_len 0)."

/* Client message of a stateless request whose plaintext carries a token
 * on a route that acts for no user. */
#define GW_MSG_TOKEN_ON_USERLESS_ROUTE                                         \
    "This route takes no access token. Send the request with an empty "        \
    "token (token_len 0)."

static const struct gw_rpc gw_open_sealed_rpc = {
    GW_BACKEND_KMS, "/cerrojo.v1.Kms/OpenSealed",
    &cerrojo__v1__open_sealed_request__descriptor,
    &cerrojo__v1__open_sealed_response__descriptor};

static const struct gw_rpc gw_open_request_rpc = {
    GW_BACKEND_SESSION, "/cerrojo.v1.Session/OpenRequest",
    &cerrojo__v1__open_request_request__descriptor,
    &cerrojo__v1__open_request_response__descriptor};

/* An opened request and the keys its response must be sealed with. Holds keys
 * and plaintext: wiped by gw_opened_clear(). */
struct gw_opened {
    enum gw_mode mode;
    char method[16];
    /* Stateless: the response secret of RFC 9458 section 4.4. */
    uint16_t aead_id;
    uint8_t enc[CJ_HPKE_ENC_LEN];
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len;
    /* Stateful: the one-response key and the request's position. */
    const char *session_id;
    uint32_t epoch;
    uint64_t seq;
    uint8_t response_key[CJ_RATCHET_KEY_LEN];
    char user_id[CJ_CALLER_ID_MAX_LEN + 1];
    /* Both: the opened plaintext and views into it. */
    ProtobufCMessage *open_response; /* owns the plaintext bytes */
    struct cj_seal_plaintext pt;
};

static void gw_opened_clear(struct gw_opened *opened)
{
    gw_json_message_free(opened->open_response);
    sodium_memzero(opened, sizeof(*opened));
}

static int64_t gw_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- sealing the response ---- */

/* Returns the longest response plaintext that every client opens: the
 * envelope stays within CJ_SEAL_MAX_ENVELOPE_LEN and the plaintext within
 * CJ_SEAL_MAX_PLAINTEXT_LEN. */
static size_t gw_response_plaintext_max(void)
{
    size_t max = cj_seal_pad_plaintext_max(CJ_SEAL_MAX_ENVELOPE_LEN);

    return max < CJ_SEAL_MAX_PLAINTEXT_LEN ? max : CJ_SEAL_MAX_PLAINTEXT_LEN;
}

/* Replaces the reply's plain JSON body by its sealed envelope, padded so
 * that its size hides the body's exact length. On a padding or sealing
 * failure the reply becomes a bodiless 500: never plaintext. */
static void gw_seal_reply(const struct gw_opened *opened,
                          struct gw_reply *reply)
{
    char *envelope = NULL;
    size_t envelope_len = 0;
    enum cj_status status = CJ_OK;
    const uint8_t *body;

    /* An empty body stays empty, because spaces alone are not JSON. */
    if (reply->body != NULL && reply->body_len > 0) {
        status = cj_seal_pad_json(&reply->body, &reply->body_len, 0,
                                  gw_response_plaintext_max());
    }
    body = (const uint8_t *)(reply->body ? reply->body : "");
    if (status == CJ_OK && opened->mode == GW_MODE_STATELESS) {
        status = cj_stateless_seal_response(
            opened->aead_id, opened->secret, opened->secret_len, opened->enc,
            sizeof(opened->enc), body, reply->body_len, &envelope,
            &envelope_len);
    } else if (status == CJ_OK) {
        status = cj_stateful_seal_response(
            opened->response_key, (const uint8_t *)opened->session_id,
            strlen(opened->session_id), opened->epoch, opened->seq, body,
            reply->body_len, &envelope, &envelope_len);
    }
    if (reply->body != NULL) {
        sodium_memzero(reply->body, reply->body_len);
    }
    if (status != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "gateway.seal_failed", NULL,
               CJ_F_STR("status", cj_status_name(status)));
        gw_reply_clear(reply);
        reply->status = 500;
        reply->content_type = NULL;
        return;
    }
    free(reply->body);
    reply->body = envelope;
    reply->body_len = envelope_len;
    reply->sealed = true;
    reply->content_type = "application/json";
    reply->cache_control = NULL; /* no-store */
}

static void gw_sealed_error(struct gw_request *req, struct gw_reply *reply,
                            const struct gw_opened *opened, enum gw_error error,
                            const char *message, enum gw_rejection reason,
                            const char *log_reason)
{
    gw_reply_error(req, reply, error, message, reason, log_reason);
    gw_seal_reply(opened, reply);
}

/* ---- opening ---- */

/* Rejects a request whose seal did not open with decryption_failed and the
 * mode's message, and audits it. `log_reason` is the precise reason. */
static void gw_reject_unopened(const struct gw_context *ctx,
                               struct gw_request *req, struct gw_reply *reply,
                               const char *log_reason)
{
    gw_audit_record(ctx->audit, "gateway.decryption_failed", req->route->path,
                    req->client_ip, req->request_id);
    gw_reply_error(req, reply, GW_ERR_DECRYPTION_FAILED,
                   req->session_header != NULL ? GW_MSG_UNOPENED_STATEFUL
                                               : GW_MSG_UNOPENED_STATELESS,
                   GW_REJECT_DECRYPTION_FAILED, log_reason);
}

/* Answers a rejected envelope (before opening) with a plain error.
 * `from_header` says the envelope came in the Cerrojo-Seal header. */
static void gw_envelope_rejected(const struct gw_context *ctx,
                                 struct gw_request *req, struct gw_reply *reply,
                                 enum cj_seal_reason why, bool from_header)
{
    enum cj_status status = cj_seal_reason_status(why);
    char message[GW_JSON_ERROR_CHARS];

    if (status == CJ_ERR_CRYPTO) {
        gw_reject_unopened(ctx, req, reply, cj_seal_reason_name(why));
        return;
    }
    if (status != CJ_ERR_TOO_LARGE) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "The sealed envelope is malformed.",
                       GW_REJECT_JSON_INVALID, cj_seal_reason_name(why));
        return;
    }
    if (from_header) {
        snprintf(message, sizeof(message),
                 "The " CJ_SEAL_HEADER_NAME " header is longer than %d bytes.",
                 CJ_SEAL_MAX_HEADER_LEN);
    } else {
        snprintf(message, sizeof(message), "%s",
                 "A field of the sealed envelope is longer than its limit.");
    }
    gw_reply_error(req, reply, GW_ERR_PAYLOAD_TOO_LARGE, message,
                   GW_REJECT_JSON_INVALID, cj_seal_reason_name(why));
}

/* Fetches the envelope text: the body, or the Cerrojo-Seal header of a
 * request without one. *owned is set when the text must be freed. */
static bool gw_envelope_text(const struct gw_context *ctx,
                             struct gw_request *req, struct gw_reply *reply,
                             const char **text, size_t *len, char **owned)
{
    enum cj_seal_reason why = CJ_SEAL_OK;

    *owned = NULL;
    if (req->route->body_bytes_max > 0) {
        if (req->body_len == 0) {
            gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                           "The request needs a sealed body.", GW_REJECT_MODE,
                           "empty body on a sealed route");
            return false;
        }
        /* Two places for one envelope would leave it open which one the
         * gateway and a proxy in front read. */
        if (req->seal_header != NULL) {
            gw_reply_error(
                req, reply, GW_ERR_INVALID_REQUEST,
                "A request with a body carries its envelope in "
                "the body. Send it without the " CJ_SEAL_HEADER_NAME " header.",
                GW_REJECT_MODE, "seal header on a request with a body");
            return false;
        }
        *text = (const char *)req->body;
        *len = req->body_len;
        return true;
    }
    if (req->seal_header == NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "A sealed GET needs the Cerrojo-Seal header.",
                       GW_REJECT_MODE, "sealed GET without a seal header");
        return false;
    }
    if (cj_seal_header_decode(req->seal_header, strlen(req->seal_header), owned,
                              len, &why) != CJ_OK) {
        gw_envelope_rejected(ctx, req, reply, why, true);
        return false;
    }
    *text = *owned;
    return true;
}

/* Rejects deep JSON before the envelope parser runs. */
static bool gw_envelope_depth_ok(struct gw_request *req, struct gw_reply *reply,
                                 const char *text, size_t len)
{
    char message[GW_JSON_ERROR_CHARS];

    if (gw_json_check_depth(text, len, GW_JSON_DEPTH_MAX) == CJ_OK) {
        return true;
    }
    snprintf(message, sizeof(message), "JSON nesting is deeper than %d levels",
             GW_JSON_DEPTH_MAX);
    gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST, message,
                   GW_REJECT_JSON_TOO_DEEP, "envelope nesting too deep");
    return false;
}

/* Maps a failed open RPC to a plain error; audits decryption failures. */
static void gw_open_failed(const struct gw_context *ctx, struct gw_request *req,
                           struct gw_reply *reply, grpc_status_code code,
                           const char *detail)
{
    enum gw_error error = gw_error_from_grpc(code, GW_ERR_DECRYPTION_FAILED);
    bool stateful = req->session_header != NULL;

    cj_log(CJ_LOG_INFO, "gateway.open_failed", req->request_id,
           CJ_F_INT("grpc_status", code), CJ_F_STR("detail", detail));
    if (code == GRPC_STATUS_NOT_FOUND && stateful) {
        gw_reply_error(req, reply, GW_ERR_INVALID_TOKEN, GW_MSG_SESSION_UNKNOWN,
                       GW_REJECT_TOKEN, "unknown or expired session");
    } else if (error == GW_ERR_INVALID_REQUEST && stateful) {
        /* Session rejects a malformed field before opening anything, and
         * the gateway checks the same fields first. So this is a mismatch
         * of the two checks, a server bug or version skew that the client
         * cannot fix, and not a failed decryption. */
        cj_log(CJ_LOG_WARN, "gateway.session_check_mismatch", req->request_id,
               CJ_F_STR("reason", "session rejected as invalid an envelope "
                                  "that the gateway accepted"),
               CJ_F_STR("detail", detail));
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "session and gateway checks disagree");
    } else if (code == GRPC_STATUS_ABORTED) {
        gw_audit_record(ctx->audit, "gateway.replayed", req->route->path,
                        req->client_ip, req->request_id);
        gw_reply_error(req, reply, error, NULL, GW_REJECT_REPLAYED,
                       "sealed body not opened");
    } else if (code == GRPC_STATUS_FAILED_PRECONDITION && stateful) {
        /* Session rejects a bound session while its revocation cache is
         * not loaded, so this returns the 503 that a token gets. */
        gw_reply_error(req, reply, error, NULL, GW_REJECT_BACKEND_UNAVAILABLE,
                       "revocation cache not loaded");
    } else if (error == GW_ERR_UNAVAILABLE || error == GW_ERR_INTERNAL ||
               error == GW_ERR_RATE_LIMITED) {
        gw_reply_error(req, reply, error, NULL, GW_REJECT_BACKEND_UNAVAILABLE,
                       "sealed body not opened");
    } else if (error == GW_ERR_FORBIDDEN) {
        /* The access rule refused the gateway itself: a deployment error,
         * not the client's. */
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "sealed body not opened");
    } else {
        /* Unknown key id, wrong suite, bad tag: one class for clients. */
        gw_reject_unopened(ctx, req, reply, "sealed body not opened");
    }
}

/* Sends an open RPC and stores the response in opened->open_response. On a
 * failure it replies through gw_open_failed and returns false. */
static bool gw_call_open(const struct gw_context *ctx, struct gw_request *req,
                         struct gw_reply *reply, const struct gw_rpc *rpc,
                         const struct gw_caller *caller,
                         const ProtobufCMessage *request,
                         struct gw_opened *opened)
{
    char detail[GW_SEALED_DETAIL_CHARS] = "";
    grpc_status_code code =
        gw_backend_call(ctx->backends, rpc, caller, request,
                        &opened->open_response, detail, sizeof(detail), NULL);

    if (code != GRPC_STATUS_OK) {
        gw_open_failed(ctx, req, reply, code, detail);
        return false;
    }
    return true;
}

static bool gw_decode_plaintext(struct gw_request *req, struct gw_reply *reply,
                                struct gw_opened *opened,
                                const ProtobufCBinaryData *plaintext)
{
    enum cj_seal_reason why = CJ_SEAL_OK;

    if (cj_seal_plaintext_decode(plaintext->data, plaintext->len, &opened->pt,
                                 &why) != CJ_OK) {
        gw_sealed_error(req, reply, opened, GW_ERR_INVALID_REQUEST,
                        "The sealed plaintext is malformed.",
                        GW_REJECT_JSON_INVALID, cj_seal_reason_name(why));
        return false;
    }
    return true;
}

static bool gw_open_stateless(const struct gw_context *ctx,
                              struct gw_request *req, struct gw_reply *reply,
                              const char *text, size_t len,
                              struct gw_opened *opened)
{
    struct cj_stateless_request sreq = {0};
    Cerrojo__V1__OpenSealedRequest request =
        CERROJO__V1__OPEN_SEALED_REQUEST__INIT;
    const Cerrojo__V1__OpenSealedResponse *response;
    struct gw_caller caller = {.channel = "stateless",
                               .client_ip = req->client_ip,
                               .user_agent = req->user_agent,
                               .request_id = req->request_id};
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *aad = NULL;
    size_t aad_len = 0;
    bool ok = false;

    if (cj_stateless_parse_request(text, len, &sreq, &why) != CJ_OK) {
        gw_envelope_rejected(ctx, req, reply, why, false);
        goto out;
    }
    if (cj_stateless_build_aad(opened->method, req->route->path, &aad,
                               &aad_len) != CJ_OK) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "AAD of a route path failed");
        goto out;
    }
    request.version = sreq.header.version;
    request.key_id = sreq.header.key_id;
    request.kem_id = sreq.header.suite.kem_id;
    request.kdf_id = sreq.header.suite.kdf_id;
    request.aead_id = sreq.header.suite.aead_id;
    request.enc.data = sreq.enc;
    request.enc.len = sizeof(sreq.enc);
    request.aad.data = aad;
    request.aad.len = aad_len;
    request.ciphertext.data = sreq.ct;
    request.ciphertext.len = sreq.ct_len;
    if (!gw_call_open(ctx, req, reply, &gw_open_sealed_rpc, &caller,
                      &request.base, opened)) {
        goto out;
    }
    response = (const Cerrojo__V1__OpenSealedResponse *)opened->open_response;
    if (response->response_secret.len == 0 ||
        response->response_secret.len > sizeof(opened->secret)) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "kms returned a response secret of a wrong length");
        goto out;
    }
    opened->mode = GW_MODE_STATELESS;
    opened->aead_id = sreq.header.suite.aead_id;
    memcpy(opened->enc, sreq.enc, sizeof(opened->enc));
    memcpy(opened->secret, response->response_secret.data,
           response->response_secret.len);
    opened->secret_len = response->response_secret.len;
    ok = gw_decode_plaintext(req, reply, opened, &response->plaintext);

out:
    free(aad);
    cj_stateless_request_clear(&sreq);
    return ok;
}

static bool gw_open_stateful(const struct gw_context *ctx,
                             struct gw_request *req, struct gw_reply *reply,
                             const char *text, size_t len,
                             struct gw_opened *opened)
{
    struct cj_stateful_request sreq = {0};
    Cerrojo__V1__OpenRequestRequest request =
        CERROJO__V1__OPEN_REQUEST_REQUEST__INIT;
    const Cerrojo__V1__OpenRequestResponse *response;
    const char *sid = req->session_header;
    struct gw_caller caller = {.session_id = sid,
                               .channel = "stateful",
                               .client_ip = req->client_ip,
                               .user_agent = req->user_agent,
                               .request_id = req->request_id};
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *aad = NULL;
    size_t aad_len = 0;
    bool ok = false;

    /* An id not of the form that session issues is a malformed request
     * (400 naming the header), which session would reject as an invalid
     * argument. A well-formed id that no session has is unknown (401). */
    if (!cj_session_id_valid(sid)) {
        char message[GW_JSON_ERROR_CHARS];

        snprintf(message, sizeof(message),
                 "The " CJ_SESSION_HEADER_NAME " header is malformed. Send the "
                 "%d-character session id that the handshake returned.",
                 CJ_SESSION_ID_LEN);
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST, message,
                       GW_REJECT_MODE, "malformed session id");
        goto out;
    }
    if (cj_stateful_parse_request(text, len, &sreq, &why) != CJ_OK) {
        gw_envelope_rejected(ctx, req, reply, why, false);
        goto out;
    }
    if (cj_stateful_build_aad((const uint8_t *)sid, strlen(sid), sreq.epoch,
                              sreq.seq, opened->method, req->route->path, &aad,
                              &aad_len) != CJ_OK) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "AAD of a route path failed");
        goto out;
    }
    request.session_id = (char *)sid;
    request.epoch = sreq.epoch;
    request.sequence = sreq.seq;
    request.aad.data = aad;
    request.aad.len = aad_len;
    request.ciphertext.data = sreq.ct;
    request.ciphertext.len = sreq.ct_len;
    if (!gw_call_open(ctx, req, reply, &gw_open_request_rpc, &caller,
                      &request.base, opened)) {
        goto out;
    }
    response = (const Cerrojo__V1__OpenRequestResponse *)opened->open_response;
    if (response->response_key.len != CJ_RATCHET_KEY_LEN ||
        strlen(response->user_id) > CJ_CALLER_ID_MAX_LEN) {
        gw_reply_error(req, reply, GW_ERR_INTERNAL, NULL, GW_REJECT_COUNT,
                       "session returned a malformed answer");
        goto out;
    }
    opened->mode = GW_MODE_STATEFUL;
    opened->session_id = sid;
    opened->epoch = sreq.epoch;
    opened->seq = sreq.seq;
    memcpy(opened->response_key, response->response_key.data,
           CJ_RATCHET_KEY_LEN);
    snprintf(opened->user_id, sizeof(opened->user_id), "%s", response->user_id);
    ok = gw_decode_plaintext(req, reply, opened, &response->plaintext);

out:
    free(aad);
    cj_stateful_request_clear(&sreq);
    return ok;
}

/* ---- after opening ---- */

/* Checks the sealed timestamp against the window in both modes. In stateful
 * mode the epoch and the sequence window alone would accept a held request
 * for up to an epoch plus its grace, so the timestamp bounds that too. */
static bool gw_check_timestamp(const struct gw_context *ctx,
                               struct gw_request *req, struct gw_reply *reply,
                               const struct gw_opened *opened)
{
    const struct gw_settings *s = ctx->settings;
    enum cj_seal_reason why = CJ_SEAL_OK;

    if (cj_seal_check_timestamp(opened->pt.ts_ms, (uint64_t)gw_now_ms(),
                                (uint64_t)s->timestamp_window_seconds * 1000,
                                &why) == CJ_OK) {
        return true;
    }
    gw_audit_record(ctx->audit, "gateway.stale_timestamp", req->route->path,
                    req->client_ip, req->request_id);
    gw_reply_error(req, reply, GW_ERR_REPLAYED,
                   "The request timestamp is outside the accepted "
                   "window; check the clock offset.",
                   GW_REJECT_TIMESTAMP, "timestamp outside the window");
    /* The seal vouches for the gateway's clock, so a client can measure
     * its offset again and send the request anew. Without the member the
     * response still names the error. */
    if (gw_error_body_add_int(&reply->body, GW_STALE_TIME_MEMBER,
                              gw_now_ms())) {
        reply->body_len = strlen(reply->body);
    }
    gw_seal_reply(opened, reply);
    return false;
}

/* Records a stateless request's enc against replay. The record comes only
 * after a successful open and timestamp check, so that forged envelopes
 * cannot fill Redis or block a real client's enc. */
static bool gw_record_enc(const struct gw_context *ctx, struct gw_request *req,
                          struct gw_reply *reply,
                          const struct gw_opened *opened)
{
    const struct gw_settings *s = ctx->settings;
    unsigned ttl = 2 * s->timestamp_window_seconds + s->clock_leeway_seconds;
    enum cj_status status;

    status = ctx->redis != NULL ? gw_replay_record(ctx->redis, opened->enc,
                                                   sizeof(opened->enc), ttl)
                                : CJ_ERR_UNAVAILABLE;
    if (status == CJ_ERR_REPLAYED) {
        gw_audit_record(ctx->audit, "gateway.replayed", req->route->path,
                        req->client_ip, req->request_id);
        gw_sealed_error(req, reply, opened, GW_ERR_REPLAYED, NULL,
                        GW_REJECT_REPLAYED, "enc already recorded");
        return false;
    }
    if (status != CJ_OK) {
        gw_sealed_error(req, reply, opened, GW_ERR_UNAVAILABLE, NULL,
                        GW_REJECT_BACKEND_UNAVAILABLE,
                        "replay record failed: Redis unavailable");
        return false;
    }
    return true;
}

/* Decides the caller's identity. Token claims are kept in *claims so that
 * the caller context can point into them. */
static bool gw_authenticate(const struct gw_context *ctx,
                            struct gw_request *req, struct gw_reply *reply,
                            const struct gw_opened *opened,
                            struct gw_caller *caller,
                            struct cj_jwt_claims *claims)
{
    const char *reason = "no user";
    enum gw_error error;

    if (opened->mode == GW_MODE_STATEFUL) {
        /* The session is the credential. A token would be ignored, and the
         * request would act for the session's user, not the token's. */
        if (opened->pt.token_len > 0) {
            gw_sealed_error(req, reply, opened, GW_ERR_INVALID_REQUEST,
                            GW_MSG_TOKEN_IN_STATEFUL, GW_REJECT_MODE,
                            "access token in a stateful request");
            return false;
        }
        if (opened->user_id[0] != '\0') {
            caller->user_id = opened->user_id;
        }
    } else if (req->route->user == GW_USER_NONE && opened->pt.token_len > 0) {
        /* The route would ignore the token, so a client that sends one
         * expects an effect that does not happen. */
        gw_sealed_error(req, reply, opened, GW_ERR_INVALID_REQUEST,
                        GW_MSG_TOKEN_ON_USERLESS_ROUTE, GW_REJECT_MODE,
                        "access token on a route that takes no user");
        return false;
    } else if (opened->pt.token_len > 0) {
        error = gw_auth_verify_token(ctx, req->request_id,
                                     (const char *)opened->pt.token,
                                     opened->pt.token_len, claims, &reason);
        if (error != GW_OK) {
            gw_sealed_error(req, reply, opened, error, NULL,
                            error == GW_ERR_INVALID_TOKEN
                                ? GW_REJECT_TOKEN
                                : GW_REJECT_BACKEND_UNAVAILABLE,
                            reason);
            return false;
        }
        caller->user_id = claims->sub;
        caller->session_id = claims->sid[0] != '\0' ? claims->sid : NULL;
        caller->token_id = claims->jti;
        caller->token_expires_at = claims->exp;
    }
    if (req->route->user == GW_USER_REQUIRED && caller->user_id == NULL) {
        gw_sealed_error(req, reply, opened, GW_ERR_INVALID_TOKEN,
                        "This route needs a logged-in user.", GW_REJECT_TOKEN,
                        reason);
        return false;
    }
    return true;
}

/* Returns whether text holds only JSON whitespace: the padding of a
 * request whose sender sealed no body, which counts as no body. */
static bool blank_body(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
            text[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* Returns whether text is a JSON object with no members, as the
 * project's client seals for a route without a body. */
static bool empty_object(const char *text, size_t len)
{
    json_t *json = json_loadb(text, len, 0, NULL);
    bool empty = json_is_object(json) && json_object_size(json) == 0;

    json_decref(json);
    return empty;
}

/* Builds the RPC request from the opened JSON body and the route's path
 * field. */
static ProtobufCMessage *gw_build_request(struct gw_request *req,
                                          struct gw_reply *reply,
                                          const struct gw_opened *opened)
{
    const struct gw_route *route = req->route;
    const char *text = (const char *)opened->pt.body;
    size_t len = opened->pt.body_len;
    json_t *json = NULL;
    ProtobufCMessage *message = NULL;
    char err[GW_JSON_ERROR_CHARS] = "";
    enum cj_status status;

    if (blank_body(text, len)) {
        len = 0;
    }
    if (len > 0 && route->body_bytes_max == 0 && !empty_object(text, len)) {
        gw_sealed_error(req, reply, opened, GW_ERR_INVALID_REQUEST,
                        "This route takes no request body.",
                        GW_REJECT_JSON_INVALID, "sealed body on a GET route");
        return NULL;
    }
    if (len == 0) {
        text = "{}";
        len = 2;
    }
    status = gw_json_parse_object(text, len, &json, err, sizeof(err));
    if (status == CJ_OK) {
        status = gw_json_to_message(json, route->rpc.request, route->path_field,
                                    &message, err, sizeof(err));
    }
    json_decref(json);
    if (status != CJ_OK) {
        gw_sealed_error(req, reply, opened, GW_ERR_INVALID_REQUEST, err,
                        status == CJ_ERR_TOO_LARGE ? GW_REJECT_JSON_TOO_DEEP
                                                   : GW_REJECT_JSON_INVALID,
                        "request JSON does not fit the RPC");
        return NULL;
    }
    if (route->path_field != NULL) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name(route->rpc.request,
                                                            route->path_field);

        *(int32_t *)((char *)message + field->offset) = route->path_field_value;
    }
    return message;
}

/* Returns whether a request opens a session and so spends the session
 * bucket: a register or login on the stateless channel whose client_secret
 * auth would accept. A secret of the wrong length, an all-zero secret and
 * a secret sent on the stateful channel spend nothing, so that auth's 400
 * explains them instead of a 429 from a bucket they could empty. */
static bool gw_opens_session(const struct gw_route *route,
                             const ProtobufCMessage *request, enum gw_mode mode)
{
    const ProtobufCFieldDescriptor *field;
    const ProtobufCBinaryData *secret;

    if (!route->opens_session || mode != GW_MODE_STATELESS) {
        return false;
    }
    field = protobuf_c_message_descriptor_get_field_by_name(
        route->rpc.request, GW_CLIENT_SECRET_FIELD);
    if (field == NULL || field->type != PROTOBUF_C_TYPE_BYTES) {
        return false;
    }
    secret =
        (const ProtobufCBinaryData *)((const char *)request + field->offset);
    return secret->len == GW_CLIENT_SECRET_BYTES &&
           !cj_ct_is_zero(secret->data, secret->len);
}

/* Spends a token from the session bucket for a register or login that
 * opens a session. The bucket is separate from the handshake bucket
 * because ordinary CLI logins open a session, and an office behind one NAT
 * address must not run out of logins at the handshake limit. The token is
 * spent before the backend checks the credentials, because the gateway
 * cannot know in advance whether the session will open. Replies with a
 * sealed 429 and Retry-After, or a sealed 503 when Redis does not reply. */
static bool gw_spend_session_token(const struct gw_context *ctx,
                                   struct gw_request *req,
                                   struct gw_reply *reply,
                                   const struct gw_opened *opened)
{
    unsigned retry_after = 0;
    enum cj_status status =
        gw_rate_limit_take(ctx, req, GW_RATE_BUCKET_SESSION, &retry_after);
    char detail[GW_SEALED_DETAIL_CHARS];

    if (status == CJ_OK) {
        return true;
    }
    if (status == CJ_ERR_RATE_LIMITED) {
        gw_audit_record(ctx->audit, "gateway.rate_limited", req->route->path,
                        req->client_ip, req->request_id);
        gw_metrics_record_rate_limited(GW_RATE_BUCKET_SESSION);
        gw_sealed_error(req, reply, opened, GW_ERR_RATE_LIMITED,
                        GW_MSG_SESSION_RATE_LIMITED, GW_REJECT_RATE_LIMITED,
                        GW_LOG_SESSION_RATE_LIMITED);
        reply->retry_after = retry_after;
        return false;
    }
    gw_rate_limit_warn_unavailable(req, GW_RATE_BUCKET_SESSION, status);
    snprintf(detail, sizeof(detail), "session rate limit check failed: %s",
             cj_status_name(status));
    gw_sealed_error(req, reply, opened, GW_ERR_UNAVAILABLE, NULL,
                    GW_REJECT_BACKEND_UNAVAILABLE, detail);
    return false;
}

static void gw_call_and_reply(const struct gw_context *ctx,
                              struct gw_request *req, struct gw_reply *reply,
                              const struct gw_opened *opened,
                              const struct gw_caller *caller)
{
    ProtobufCMessage *request = gw_build_request(req, reply, opened);
    ProtobufCMessage *response = NULL;
    char detail[GW_SEALED_DETAIL_CHARS] = "";
    json_t *json = NULL;
    unsigned retry_after_s = 0;
    grpc_status_code code;

    if (request == NULL) {
        return;
    }
    if (gw_opens_session(req->route, request, opened->mode) &&
        !gw_spend_session_token(ctx, req, reply, opened)) {
        goto out;
    }
    code = gw_backend_call(ctx->backends, &req->route->rpc, caller, request,
                           &response, detail, sizeof(detail), &retry_after_s);
    if (code != GRPC_STATUS_OK) {
        enum gw_error error =
            gw_error_from_grpc(code, req->route->unauthenticated_as);
        const char *message = gw_error_busy_message(code, retry_after_s);

        if (message == NULL) {
            message = gw_error_backend_message(code, detail);
        }
        cj_log(CJ_LOG_INFO, "gateway.backend_failed", req->request_id,
               CJ_F_STR("rpc", req->route->rpc.path),
               CJ_F_INT("grpc_status", code), CJ_F_STR("detail", detail));
        gw_sealed_error(req, reply, opened, error, message,
                        error == GW_ERR_UNAVAILABLE
                            ? GW_REJECT_BACKEND_UNAVAILABLE
                            : GW_REJECT_COUNT,
                        "backend call failed");
        /* The backend's own wait (auth's login throttle) when it sent
         * one; 0 leaves the gateway's default Retry-After. */
        reply->retry_after = retry_after_s;
        goto out;
    }
    json = gw_json_from_message(response);
    gw_reply_json(reply, 200, json ? json_dumps(json, JSON_COMPACT) : NULL);
    if (reply->body == NULL) {
        gw_sealed_error(req, reply, opened, GW_ERR_INTERNAL, NULL,
                        GW_REJECT_COUNT, "answer not representable as JSON");
        goto out;
    }
    gw_seal_reply(opened, reply);

out:
    json_decref(json);
    gw_json_message_free(request);
    gw_json_message_free(response);
}

void gw_sealed_handle(const struct gw_context *ctx, struct gw_request *req,
                      struct gw_reply *reply)
{
    enum gw_mode mode =
        req->session_header != NULL ? GW_MODE_STATEFUL : GW_MODE_STATELESS;
    struct gw_opened opened;
    struct gw_caller caller = {
        .channel = mode == GW_MODE_STATEFUL ? "stateful" : "stateless",
        .client_ip = req->client_ip,
        .user_agent = req->user_agent,
        .request_id = req->request_id};
    struct cj_jwt_claims claims;
    const char *text = NULL;
    size_t len = 0;
    char *owned = NULL;
    bool ok;

    memset(&opened, 0, sizeof(opened));
    memset(&claims, 0, sizeof(claims));
    gw_methods_format(req->method, opened.method, sizeof(opened.method));
    if (!(req->route->modes & mode)) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       mode == GW_MODE_STATEFUL
                           ? "This route does not accept a session."
                           : "This route needs a stateful session.",
                       GW_REJECT_MODE, "mode not accepted by the route");
        goto out;
    }
    if (!gw_envelope_text(ctx, req, reply, &text, &len, &owned) ||
        !gw_envelope_depth_ok(req, reply, text, len)) {
        goto out;
    }
    ok = mode == GW_MODE_STATELESS
             ? gw_open_stateless(ctx, req, reply, text, len, &opened)
             : gw_open_stateful(ctx, req, reply, text, len, &opened);
    if (!ok) {
        goto out;
    }
    /* Session has already committed a stateful request's sequence number,
     * so a stale one cannot be sent again after this rejection. */
    if (!gw_check_timestamp(ctx, req, reply, &opened)) {
        goto out;
    }
    if (mode == GW_MODE_STATELESS && !gw_record_enc(ctx, req, reply, &opened)) {
        goto out;
    }
    if (mode == GW_MODE_STATEFUL) {
        caller.session_id = opened.session_id;
    }
    if (!gw_authenticate(ctx, req, reply, &opened, &caller, &claims)) {
        goto out;
    }
    gw_call_and_reply(ctx, req, reply, &opened, &caller);

out:
    free(owned);
    sodium_memzero(&claims, sizeof(claims));
    gw_opened_clear(&opened);
}

/*
 * The gRPC methods of cerrojo.v1.Session: the method table with each access
 * rule, and handlers that validate a request, call the session core and
 * build the reply. Errors go back with a message that names the field or
 * the cause, never a session id or a key.
 */
#include "sess_rpc.h"

#include <stdlib.h>
#include <string.h>

#include "cerrojo/v1/session.pb-c.h"
#include "crypto_util.h"
#include "log.h"

/* Sets the message of a status that no field explains. */
static enum cj_status fail(struct cj_rpc_call *call, enum cj_status st)
{
    switch (st) {
    case CJ_ERR_UNAVAILABLE:
    case CJ_ERR_TIMEOUT:
        cj_rpc_call_set_error(call, "session store (Redis) is unavailable; "
                                    "retry later");
        return CJ_ERR_UNAVAILABLE;
    case CJ_ERR_NOT_FOUND:
        cj_rpc_call_set_error(call, "session not found or expired");
        break;
    case CJ_ERR_CRYPTO:
        cj_rpc_call_set_error(call, "sealed request could not be opened");
        break;
    case CJ_ERR_REPLAYED:
        cj_rpc_call_set_error(call, "sequence number already used or older "
                                    "than the replay window");
        break;
    case CJ_ERR_PRECONDITION:
        cj_rpc_call_set_error(call, "revocation cache not loaded");
        break;
    case CJ_ERR_TOO_LARGE:
        cj_rpc_call_set_error(call, "batch has more than %d entries",
                              SESS_LOAD_BATCH_MAX);
        break;
    case CJ_ERR_NOMEM:
    case CJ_ERR_INTERNAL:
        cj_rpc_call_set_error(call, "internal error");
        break;
    default:
        break;
    }
    return st;
}

static enum cj_status invalid(struct cj_rpc_call *call, const char *message)
{
    cj_rpc_call_set_error(call, "%s", message);
    return CJ_ERR_INVALID;
}

#define MSG_SESSION_ID "session_id is invalid: expected 22 base64url characters"
#define MSG_USER_ID                                                            \
    "user_id is invalid: expected 1 to 128 printable ASCII characters "        \
    "without spaces"
#define MSG_TOKEN_ID                                                           \
    "token_id is invalid: expected 1 to 128 printable ASCII characters "       \
    "without spaces"

static Cerrojo__V1__SessionInfo *info_message(const struct sess_info *info)
{
    Cerrojo__V1__SessionInfo *m = malloc(sizeof(*m));

    if (m == NULL) {
        return NULL;
    }
    cerrojo__v1__session_info__init(m);
    m->session_id = strdup(info->session_id);
    if (m->session_id == NULL) {
        free(m);
        return NULL;
    }
    m->created_at_ms = info->created_ms;
    m->server_time_ms = info->server_time_ms;
    m->epoch_seconds = info->epoch_seconds;
    m->grace_seconds = info->grace_seconds;
    m->idle_expires_at_ms = info->idle_expires_ms;
    m->absolute_expires_at_ms = info->absolute_expires_ms;
    return m;
}

static enum cj_status create_session(struct cj_rpc_call *call,
                                     const ProtobufCMessage *request,
                                     ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__CreateSessionRequest *req =
        (const Cerrojo__V1__CreateSessionRequest *)request;
    struct sess_info info;
    Cerrojo__V1__SessionInfo *m;
    enum cj_status st;

    if (req->client_secret.len != SESS_CLIENT_SECRET_LEN) {
        return invalid(call, "client_secret is invalid: expected 32 bytes");
    }
    /* 32 zero bytes come from a broken random source, and a session keyed
     * by a secret that others can guess protects nothing. */
    if (cj_ct_is_zero(req->client_secret.data, req->client_secret.len)) {
        return invalid(call, "client_secret is invalid: all bytes are zero, "
                             "so the client's random source is broken");
    }
    st = sess_create(state, req->client_secret.data, req->client_secret.len,
                     &info);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = info_message(&info);
    cj_wipe(&info, sizeof(info));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status open_request(struct cj_rpc_call *call,
                                   const ProtobufCMessage *request,
                                   ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__OpenRequestRequest *req =
        (const Cerrojo__V1__OpenRequestRequest *)request;
    Cerrojo__V1__OpenRequestResponse *m = NULL;
    struct sess_opened opened;
    enum cj_status st;

    memset(&opened, 0, sizeof(opened));
    if (!cj_session_id_valid(req->session_id)) {
        return invalid(call, MSG_SESSION_ID);
    }
    if (req->sequence == 0 || req->sequence >= SESS_SEQUENCE_MAX) {
        return invalid(call, "sequence is invalid: expected 1 to 2^53 - 1");
    }
    if (req->ciphertext.len < SESS_TAG_LEN ||
        req->ciphertext.len > SESS_CIPHERTEXT_MAX) {
        return invalid(call, "ciphertext is invalid: expected 16 bytes (the "
                             "tag) to 4 MiB");
    }
    if (req->aad.len > SESS_AAD_MAX) {
        return invalid(call, "aad is invalid: longer than 4096 bytes");
    }
    st = sess_open(state, req->session_id, req->epoch, req->sequence,
                   req->aad.data, req->aad.len, req->ciphertext.data,
                   req->ciphertext.len, &opened);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        goto nomem;
    }
    cerrojo__v1__open_request_response__init(m);
    m->user_id = strdup(opened.user_id);
    m->response_key.data = malloc(SESS_RESPONSE_KEY_LEN);
    if (m->user_id == NULL || m->response_key.data == NULL) {
        goto nomem;
    }
    memcpy(m->response_key.data, opened.response_key, SESS_RESPONSE_KEY_LEN);
    m->response_key.len = SESS_RESPONSE_KEY_LEN;
    /* The reply takes the plaintext buffer; the framework wipes and frees
     * it with the message. */
    m->plaintext.data = opened.plaintext;
    m->plaintext.len = opened.plaintext_len;
    opened.plaintext = NULL;
    m->current_epoch = opened.current_epoch;
    sess_opened_clear(&opened);
    *response = &m->base;
    return CJ_OK;
nomem:
    if (m != NULL) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    sess_opened_clear(&opened);
    return fail(call, CJ_ERR_NOMEM);
}

/*
 * How far a user revocation time may lie ahead of this server's clock, in
 * seconds. It covers clock skew between auth and session; a revocation is
 * not a schedule.
 */
#define SESS_REVOKED_AT_AHEAD_MAX_S 300
/* A printf format that takes SESS_REVOKED_AT_AHEAD_MAX_S. A bind time
 * comes from auth's clock, as a revocation time does, so it gets the same
 * bound. */
#define MSG_BOUND_AT_FORMAT                                                    \
    "bound_at_ms is invalid: expected 0 or Unix ms at most %d s ahead of "     \
    "the session service's clock"

static bool bound_at_valid(int64_t bound_at_ms)
{
    return bound_at_ms >= 0 &&
           bound_at_ms <= sess_now_ms() + SESS_REVOKED_AT_AHEAD_MAX_S * 1000LL;
}

static enum cj_status bind_user(struct cj_rpc_call *call,
                                const ProtobufCMessage *request,
                                ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__BindUserRequest *req =
        (const Cerrojo__V1__BindUserRequest *)request;
    Cerrojo__V1__BindUserResponse *m;
    struct sess_info info;
    uint32_t evicted = 0;
    enum cj_status st;

    if (!cj_session_id_valid(req->session_id)) {
        return invalid(call, MSG_SESSION_ID);
    }
    if (!sess_name_valid(req->user_id)) {
        return invalid(call, MSG_USER_ID);
    }
    if (!bound_at_valid(req->bound_at_ms)) {
        cj_rpc_call_set_error(call, MSG_BOUND_AT_FORMAT,
                              SESS_REVOKED_AT_AHEAD_MAX_S);
        return CJ_ERR_INVALID;
    }
    st = sess_bind(state, req->session_id, req->user_id, req->bound_at_ms,
                   &info, &evicted);
    if (st == CJ_ERR_PRECONDITION) {
        cj_rpc_call_set_error(call, "session is bound to another user");
        return st;
    }
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__bind_user_response__init(m);
    m->evicted_sessions = evicted;
    m->session = info_message(&info);
    if (m->session == NULL) {
        free(m);
        return fail(call, CJ_ERR_NOMEM);
    }
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status delete_session(struct cj_rpc_call *call,
                                     const ProtobufCMessage *request,
                                     ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__DeleteSessionRequest *req =
        (const Cerrojo__V1__DeleteSessionRequest *)request;
    Cerrojo__V1__DeleteSessionResponse *m;
    bool deleted = false;
    enum cj_status st;

    if (!cj_session_id_valid(req->session_id)) {
        return invalid(call, MSG_SESSION_ID);
    }
    st = sess_delete(state, req->session_id, &deleted);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__delete_session_response__init(m);
    m->deleted = deleted;
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status delete_user_sessions(struct cj_rpc_call *call,
                                           const ProtobufCMessage *request,
                                           ProtobufCMessage **response,
                                           void *state)
{
    const Cerrojo__V1__DeleteUserSessionsRequest *req =
        (const Cerrojo__V1__DeleteUserSessionsRequest *)request;
    Cerrojo__V1__DeleteUserSessionsResponse *m;
    uint32_t count = 0;
    enum cj_status st;

    if (!sess_name_valid(req->user_id)) {
        return invalid(call, MSG_USER_ID);
    }
    st = sess_delete_user(state, req->user_id, &count);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__delete_user_sessions_response__init(m);
    m->deleted_count = count;
    *response = &m->base;
    return CJ_OK;
}

/*
 * Latest time a revocation may name, in Unix seconds: 9999-12-31T23:59:59Z,
 * the bound the JWT code puts on time claims. It keeps the millisecond
 * arithmetic of the store far from overflow.
 */
#define SESS_UNIX_TIME_MAX 253402300799LL

#define MSG_EXPIRES_AT                                                         \
    "expires_at is invalid: expected Unix seconds from 1 to 253402300799"
/* A printf format that takes SESS_REVOKED_AT_AHEAD_MAX_S. */
#define MSG_REVOKED_AT_FORMAT                                                  \
    "revoked_at is invalid: expected Unix seconds above 0 and at most %d s "   \
    "ahead of the session service's clock"

static bool expires_at_valid(int64_t expires_at)
{
    return expires_at > 0 && expires_at <= SESS_UNIX_TIME_MAX;
}

/* Latest entry_expires_at_ms: the last millisecond of SESS_UNIX_TIME_MAX. */
#define SESS_UNIX_TIME_MAX_MS (SESS_UNIX_TIME_MAX * 1000 + 999)
#define MSG_ENTRY_EXPIRES_AT                                                   \
    "entry_expires_at_ms is invalid: expected 0 or Unix milliseconds from 1 "  \
    "to 253402300799999"

/* 0 is what an older auth sends, and means that auth sets no instant. */
static bool entry_expires_at_valid(int64_t entry_expires_at_ms)
{
    return entry_expires_at_ms >= 0 &&
           entry_expires_at_ms <= SESS_UNIX_TIME_MAX_MS;
}

static bool revoked_at_valid(int64_t revoked_at)
{
    return revoked_at > 0 &&
           revoked_at <= sess_now_ms() / 1000 + SESS_REVOKED_AT_AHEAD_MAX_S;
}

static enum cj_status revoke_token(struct cj_rpc_call *call,
                                   const ProtobufCMessage *request,
                                   ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__RevokeTokenRequest *req =
        (const Cerrojo__V1__RevokeTokenRequest *)request;
    Cerrojo__V1__RevokeTokenResponse *m;
    enum cj_status st;

    if (!sess_name_valid(req->token_id)) {
        return invalid(call, MSG_TOKEN_ID);
    }
    if (!expires_at_valid(req->expires_at)) {
        return invalid(call, MSG_EXPIRES_AT);
    }
    st = sess_revoke_token(state, req->token_id, req->expires_at);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__revoke_token_response__init(m);
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status revoke_user(struct cj_rpc_call *call,
                                  const ProtobufCMessage *request,
                                  ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__RevokeUserRequest *req =
        (const Cerrojo__V1__RevokeUserRequest *)request;
    Cerrojo__V1__RevokeUserResponse *m;
    enum cj_status st;

    if (!sess_name_valid(req->user_id)) {
        return invalid(call, MSG_USER_ID);
    }
    if (!revoked_at_valid(req->revoked_at)) {
        cj_rpc_call_set_error(call, MSG_REVOKED_AT_FORMAT,
                              SESS_REVOKED_AT_AHEAD_MAX_S);
        return CJ_ERR_INVALID;
    }
    if (!entry_expires_at_valid(req->entry_expires_at_ms)) {
        return invalid(call, MSG_ENTRY_EXPIRES_AT);
    }
    st = sess_revoke_user(state, req->user_id, req->revoked_at,
                          req->entry_expires_at_ms);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__revoke_user_response__init(m);
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status is_revoked(struct cj_rpc_call *call,
                                 const ProtobufCMessage *request,
                                 ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__IsRevokedRequest *req =
        (const Cerrojo__V1__IsRevokedRequest *)request;
    Cerrojo__V1__IsRevokedResponse *m;
    enum sess_revoked_reason reason = SESS_NOT_REVOKED;
    enum cj_status st;

    if (!sess_name_valid(req->token_id)) {
        return invalid(call, MSG_TOKEN_ID);
    }
    if (!sess_name_valid(req->user_id)) {
        return invalid(call, MSG_USER_ID);
    }
    if (req->issued_at < 0) {
        return invalid(call, "issued_at is invalid: expected Unix seconds");
    }
    if (req->session_id[0] != '\0' && !cj_session_id_valid(req->session_id)) {
        return invalid(call, "session_id is invalid: expected empty or 22 "
                             "base64url characters");
    }
    st = sess_is_revoked(state, req->token_id, req->user_id, req->issued_at,
                         req->session_id, &reason);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__is_revoked_response__init(m);
    m->revoked = reason != SESS_NOT_REVOKED;
    m->reason = strdup(sess_revoked_reason_name(reason));
    if (m->reason == NULL) {
        free(m);
        return fail(call, CJ_ERR_NOMEM);
    }
    *response = &m->base;
    return CJ_OK;
}

static enum cj_status cache_status(struct cj_rpc_call *call,
                                   const ProtobufCMessage *request,
                                   ProtobufCMessage **response, void *state)
{
    Cerrojo__V1__GetRevocationCacheStatusResponse *m;
    bool loaded = false;
    enum cj_status st;

    (void)request;
    st = sess_cache_status(state, &loaded);
    if (st != CJ_OK) {
        return fail(call, st);
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return fail(call, CJ_ERR_NOMEM);
    }
    cerrojo__v1__get_revocation_cache_status_response__init(m);
    m->loaded = loaded;
    *response = &m->base;
    return CJ_OK;
}

/* Sets *step from the request's load_id and begin fields. */
static enum cj_status load_step(struct cj_rpc_call *call,
                                const Cerrojo__V1__LoadRevocationsRequest *req,
                                enum sess_load_step *step)
{
    if (req->load_id == NULL || req->load_id[0] == '\0') {
        if (req->begin) {
            return invalid(call, "begin needs a load_id");
        }
        *step = SESS_LOAD_UNNAMED;
        return CJ_OK;
    }
    if (!sess_name_valid(req->load_id)) {
        return invalid(call, "load_id is invalid: expected 1 to 128 "
                             "printable ASCII characters without spaces");
    }
    *step = req->begin ? SESS_LOAD_BEGIN : SESS_LOAD_CONTINUE;
    return CJ_OK;
}

/* Converts the request's entries and checks each one, naming the first
 * invalid entry by its index. */
static enum cj_status load_revocations(struct cj_rpc_call *call,
                                       const ProtobufCMessage *request,
                                       ProtobufCMessage **response, void *state)
{
    const Cerrojo__V1__LoadRevocationsRequest *req =
        (const Cerrojo__V1__LoadRevocationsRequest *)request;
    Cerrojo__V1__LoadRevocationsResponse *m = NULL;
    struct sess_revocation_batch batch = {0};
    struct sess_revoked_token *tokens = NULL;
    struct sess_revoked_user *users = NULL;
    enum cj_status st = CJ_ERR_NOMEM;

    if (req->n_tokens + req->n_users + req->n_session_ids >
        SESS_LOAD_BATCH_MAX) {
        return fail(call, CJ_ERR_TOO_LARGE);
    }
    tokens = calloc(req->n_tokens + 1, sizeof(*tokens));
    users = calloc(req->n_users + 1, sizeof(*users));
    if (tokens == NULL || users == NULL) {
        st = fail(call, CJ_ERR_NOMEM);
        goto out;
    }
    st = CJ_ERR_INVALID;
    for (size_t i = 0; i < req->n_tokens; i++) {
        if (!sess_name_valid(req->tokens[i]->token_id) ||
            !expires_at_valid(req->tokens[i]->expires_at)) {
            cj_rpc_call_set_error(call,
                                  "tokens[%zu] is invalid: expected a "
                                  "token_id and expires_at from 1 to %lld",
                                  i, SESS_UNIX_TIME_MAX);
            goto out;
        }
        tokens[i].token_id = req->tokens[i]->token_id;
        tokens[i].expires_at = req->tokens[i]->expires_at;
    }
    for (size_t i = 0; i < req->n_users; i++) {
        if (!sess_name_valid(req->users[i]->user_id) ||
            !revoked_at_valid(req->users[i]->revoked_at) ||
            !entry_expires_at_valid(req->users[i]->entry_expires_at_ms)) {
            cj_rpc_call_set_error(call,
                                  "users[%zu] is invalid: expected a "
                                  "user_id, revoked_at above 0, at most "
                                  "%d s ahead of this server's clock, and "
                                  "entry_expires_at_ms from 0 to %lld",
                                  i, SESS_REVOKED_AT_AHEAD_MAX_S,
                                  SESS_UNIX_TIME_MAX_MS);
            goto out;
        }
        users[i].user_id = req->users[i]->user_id;
        users[i].revoked_at = req->users[i]->revoked_at;
        users[i].entry_expires_at_ms = req->users[i]->entry_expires_at_ms;
    }
    for (size_t i = 0; i < req->n_session_ids; i++) {
        if (!cj_session_id_valid(req->session_ids[i])) {
            cj_rpc_call_set_error(call,
                                  "session_ids[%zu] is invalid: "
                                  "expected 22 base64url characters",
                                  i);
            goto out;
        }
    }
    st = load_step(call, req, &batch.step);
    if (st != CJ_OK) {
        goto out;
    }
    batch.tokens = tokens;
    batch.token_count = req->n_tokens;
    batch.users = users;
    batch.user_count = req->n_users;
    batch.session_ids = (const char *const *)req->session_ids;
    batch.session_count = req->n_session_ids;
    batch.complete = req->complete;
    batch.load_id = req->load_id;
    st = sess_load_revocations(state, &batch);
    if (st == CJ_ERR_PRECONDITION) {
        cj_rpc_call_set_error(call, "revocation load interrupted: Redis lost "
                                    "keys since the load began; start the "
                                    "load again");
        goto out;
    }
    if (st != CJ_OK) {
        st = fail(call, st);
        goto out;
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        st = fail(call, CJ_ERR_NOMEM);
        goto out;
    }
    cerrojo__v1__load_revocations_response__init(m);
    *response = &m->base;
out:
    free(tokens);
    free(users);
    return st;
}

/*
 * Every handler talks to Redis, so all run on the framework's worker pool
 * (blocking = true), never on a completion-queue thread.
 */
#define SESS_METHOD(name, req, resp, fn, ...)                                  \
    {                                                                          \
        .path = "/cerrojo.v1.Session/" name, .request = &(req),                \
        .response = &(resp), .handler = (fn), .blocking = true,                \
        .allowed = {__VA_ARGS__},                                              \
    }

static const struct cj_rpc_method sess_methods[] = {
    SESS_METHOD("CreateSession",
                cerrojo__v1__create_session_request__descriptor,
                cerrojo__v1__session_info__descriptor, create_session,
                CJ_RPC_ID_GATEWAY, CJ_RPC_ID_AUTH),
    SESS_METHOD("OpenRequest", cerrojo__v1__open_request_request__descriptor,
                cerrojo__v1__open_request_response__descriptor, open_request,
                CJ_RPC_ID_GATEWAY),
    SESS_METHOD("BindUser", cerrojo__v1__bind_user_request__descriptor,
                cerrojo__v1__bind_user_response__descriptor, bind_user,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("DeleteSession",
                cerrojo__v1__delete_session_request__descriptor,
                cerrojo__v1__delete_session_response__descriptor,
                delete_session, CJ_RPC_ID_AUTH),
    SESS_METHOD("DeleteUserSessions",
                cerrojo__v1__delete_user_sessions_request__descriptor,
                cerrojo__v1__delete_user_sessions_response__descriptor,
                delete_user_sessions, CJ_RPC_ID_AUTH),
    SESS_METHOD("RevokeToken", cerrojo__v1__revoke_token_request__descriptor,
                cerrojo__v1__revoke_token_response__descriptor, revoke_token,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("RevokeUser", cerrojo__v1__revoke_user_request__descriptor,
                cerrojo__v1__revoke_user_response__descriptor, revoke_user,
                CJ_RPC_ID_AUTH),
    SESS_METHOD("IsRevoked", cerrojo__v1__is_revoked_request__descriptor,
                cerrojo__v1__is_revoked_response__descriptor, is_revoked,
                CJ_RPC_ID_GATEWAY, CJ_RPC_ID_AUTH),
    SESS_METHOD("GetRevocationCacheStatus",
                cerrojo__v1__get_revocation_cache_status_request__descriptor,
                cerrojo__v1__get_revocation_cache_status_response__descriptor,
                cache_status, CJ_RPC_ID_AUTH),
    SESS_METHOD("LoadRevocations",
                cerrojo__v1__load_revocations_request__descriptor,
                cerrojo__v1__load_revocations_response__descriptor,
                load_revocations, CJ_RPC_ID_AUTH),
};

void sess_rpc_service_init(struct cj_rpc_service *out, struct sess_service *svc)
{
    memset(out, 0, sizeof(*out));
    out->name = SESS_RPC_SERVICE_NAME;
    out->methods = sess_methods;
    out->n_methods = sizeof(sess_methods) / sizeof(sess_methods[0]);
    out->state = svc;
}

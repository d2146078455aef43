/*
 * The handlers of cerrojo.v1.Kms and their access rules: protobuf in and
 * out, the work itself in kms_datakey.c, kms_sign.c and kms_hpke.c. The
 * framework checks each rule before a handler runs.
 */
#include "kms_rpc.h"

#include <stdlib.h>
#include <string.h>

#include "cerrojo/v1/kms.pb-c.h"
#include "crypto_util.h"
#include "kms_datakey.h"
#include "kms_hpke.h"
#include "kms_sign.h"

/* Error messages the caller receives: one per class, no detail. */
#define KMS_MSG_UNWRAP      "wrapped key does not open for this user"
#define KMS_MSG_INVALID     "invalid request"
#define KMS_MSG_UNAVAILABLE "key store unavailable"
#define KMS_MSG_OPEN        "sealed request does not open"

/* Copies len bytes into a new malloc buffer of a bytes field. */
static bool set_bytes(ProtobufCBinaryData *field, const void *data, size_t len)
{
    field->data = malloc(len > 0 ? len : 1);
    if (field->data == NULL)
        return false;
    memcpy(field->data, data, len);
    field->len = len;
    return true;
}

static void set_error(struct cj_rpc_call *call, enum cj_status st,
                      const char *crypto_message)
{
    switch (st) {
    case CJ_ERR_CRYPTO:
        cj_rpc_call_set_error(call, "%s", crypto_message);
        break;
    case CJ_ERR_INVALID:
        cj_rpc_call_set_error(call, "%s", KMS_MSG_INVALID);
        break;
    case CJ_ERR_UNAVAILABLE:
        cj_rpc_call_set_error(call, "%s", KMS_MSG_UNAVAILABLE);
        break;
    default:
        break;
    }
}

/* A new, initialised message of the given type; NULL when out of memory. */
static void *new_response(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);

    if (msg != NULL)
        protobuf_c_message_init(desc, msg);
    return msg;
}

/*
 * Ends every handler. On success the framework takes the response. On
 * failure the response is freed, and the caller gets the one message of
 * its error class (crypto_message for CJ_ERR_CRYPTO).
 */
static enum cj_status finish(struct cj_rpc_call *call, enum cj_status st,
                             void *resp, ProtobufCMessage **response,
                             const char *crypto_message)
{
    if (st == CJ_OK)
        *response = resp;
    else if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    set_error(call, st, crypto_message);
    return st;
}

static enum cj_status handle_create_user_key(struct cj_rpc_call *call,
                                             const ProtobufCMessage *request,
                                             ProtobufCMessage **response,
                                             void *state)
{
    const Cerrojo__V1__CreateUserKeyRequest *req =
        (const Cerrojo__V1__CreateUserKeyRequest *)request;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    uint32_t version = 0;
    Cerrojo__V1__CreateUserKeyResponse *resp = NULL;
    enum cj_status st =
        kms_create_user_key(state, req->user_id, cj_rpc_call_request_id(call),
                            data_key, wrapped, &version);

    if (st != CJ_OK)
        goto out;
    resp = new_response(&cerrojo__v1__create_user_key_response__descriptor);
    st = resp != NULL &&
                 set_bytes(&resp->data_key, data_key, sizeof(data_key)) &&
                 set_bytes(&resp->wrapped_key, wrapped, sizeof(wrapped))
             ? CJ_OK
             : CJ_ERR_NOMEM;
    if (resp != NULL)
        resp->kek_version = version;
out:
    cj_wipe(data_key, sizeof(data_key));
    return finish(call, st, resp, response, KMS_MSG_UNWRAP);
}

static enum cj_status handle_decrypt_key(struct cj_rpc_call *call,
                                         const ProtobufCMessage *request,
                                         ProtobufCMessage **response,
                                         void *state)
{
    const Cerrojo__V1__DecryptKeyRequest *req =
        (const Cerrojo__V1__DecryptKeyRequest *)request;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;
    Cerrojo__V1__DecryptKeyResponse *resp = NULL;
    enum cj_status st = kms_decrypt_key(
        state, req->user_id, req->wrapped_key.data, req->wrapped_key.len,
        cj_rpc_call_request_id(call), data_key, &version);

    if (st != CJ_OK)
        goto out;
    resp = new_response(&cerrojo__v1__decrypt_key_response__descriptor);
    st = resp != NULL && set_bytes(&resp->data_key, data_key, sizeof(data_key))
             ? CJ_OK
             : CJ_ERR_NOMEM;
    if (resp != NULL)
        resp->kek_version = version;
out:
    cj_wipe(data_key, sizeof(data_key));
    return finish(call, st, resp, response, KMS_MSG_UNWRAP);
}

static enum cj_status handle_rewrap_key(struct cj_rpc_call *call,
                                        const ProtobufCMessage *request,
                                        ProtobufCMessage **response,
                                        void *state)
{
    const Cerrojo__V1__RewrapKeyRequest *req =
        (const Cerrojo__V1__RewrapKeyRequest *)request;
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    uint32_t version = 0;
    bool changed = false;
    Cerrojo__V1__RewrapKeyResponse *resp = NULL;
    enum cj_status st = kms_rewrap_key(
        state, req->user_id, req->wrapped_key.data, req->wrapped_key.len,
        cj_rpc_call_request_id(call), wrapped, &version, &changed);

    if (st != CJ_OK)
        goto out;
    resp = new_response(&cerrojo__v1__rewrap_key_response__descriptor);
    st = resp != NULL && set_bytes(&resp->wrapped_key, wrapped, sizeof(wrapped))
             ? CJ_OK
             : CJ_ERR_NOMEM;
    if (resp != NULL) {
        resp->kek_version = version;
        resp->changed = changed;
    }
out:
    return finish(call, st, resp, response, KMS_MSG_UNWRAP);
}

static enum cj_status handle_forget_user_key(struct cj_rpc_call *call,
                                             const ProtobufCMessage *request,
                                             ProtobufCMessage **response,
                                             void *state)
{
    const Cerrojo__V1__ForgetUserKeyRequest *req =
        (const Cerrojo__V1__ForgetUserKeyRequest *)request;
    bool forgotten = false;
    Cerrojo__V1__ForgetUserKeyResponse *resp = NULL;
    enum cj_status st = kms_forget_user_key(
        state, req->user_id, cj_rpc_call_request_id(call), &forgotten);

    if (st == CJ_OK) {
        resp = new_response(&cerrojo__v1__forget_user_key_response__descriptor);
        st = resp != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    if (resp != NULL)
        resp->forgotten = forgotten;
    return finish(call, st, resp, response, KMS_MSG_INVALID);
}

static enum cj_status handle_list_old_key_users(struct cj_rpc_call *call,
                                                const ProtobufCMessage *request,
                                                ProtobufCMessage **response,
                                                void *state)
{
    const Cerrojo__V1__ListOldKeyUsersRequest *req =
        (const Cerrojo__V1__ListOldKeyUsersRequest *)request;
    char **user_ids = NULL;
    size_t count = 0;
    Cerrojo__V1__ListOldKeyUsersResponse *resp = NULL;
    enum cj_status st = kms_list_old_key_users(
        state, req->after_user_id, req->max_users, &user_ids, &count);

    if (st == CJ_OK) {
        resp =
            new_response(&cerrojo__v1__list_old_key_users_response__descriptor);
        st = resp != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    if (resp != NULL) {
        /* The response takes the strings; freeing it frees them. */
        resp->user_ids = user_ids;
        resp->n_user_ids = count;
        user_ids = NULL;
    }
    kms_store_free_user_ids(user_ids, count);
    return finish(call, st, resp, response, KMS_MSG_INVALID);
}

static enum cj_status handle_sign_token(struct cj_rpc_call *call,
                                        const ProtobufCMessage *request,
                                        ProtobufCMessage **response,
                                        void *state)
{
    const Cerrojo__V1__SignTokenRequest *req =
        (const Cerrojo__V1__SignTokenRequest *)request;
    struct kms_token_request claims = {
        .user_id = req->user_id,
        .session_id = req->session_id,
        .token_id = req->token_id,
        .issuer = req->issuer,
        .audience = req->audience,
        .issued_at = req->issued_at,
        .expires_at = req->expires_at,
    };
    char kid[KMS_KID_MAX + 1];
    const char *alg = NULL;
    char *token = NULL;
    Cerrojo__V1__SignTokenResponse *resp = NULL;
    enum cj_status st = kms_sign_token(
        state, &claims, cj_rpc_call_request_id(call), &token, kid, &alg);

    if (st != CJ_OK)
        goto out;
    st = CJ_ERR_NOMEM;
    resp = new_response(&cerrojo__v1__sign_token_response__descriptor);
    if (resp == NULL)
        goto out;
    resp->token = token;
    token = NULL;
    resp->kid = strdup(kid);
    resp->alg = strdup(alg);
    if (resp->kid != NULL && resp->alg != NULL)
        st = CJ_OK;
out:
    free(token);
    return finish(call, st, resp, response, KMS_MSG_INVALID);
}

static enum cj_status handle_get_jwks(struct cj_rpc_call *call,
                                      const ProtobufCMessage *request,
                                      ProtobufCMessage **response, void *state)
{
    struct kms_service *svc = state;
    Cerrojo__V1__GetJwksResponse *resp = NULL;
    char *jwks = NULL;
    enum cj_status st = kms_get_jwks(svc, &jwks);

    (void)request;
    if (st != CJ_OK)
        goto out;
    st = CJ_ERR_NOMEM;
    resp = new_response(&cerrojo__v1__get_jwks_response__descriptor);
    if (resp == NULL)
        goto out;
    resp->jwks_json = jwks;
    jwks = NULL;
    resp->max_age_seconds = (uint32_t)svc->cfg.jwks_max_age_s;
    st = CJ_OK;
out:
    free(jwks);
    return finish(call, st, resp, response, KMS_MSG_INVALID);
}

static enum cj_status handle_open_sealed(struct cj_rpc_call *call,
                                         const ProtobufCMessage *request,
                                         ProtobufCMessage **response,
                                         void *state)
{
    const Cerrojo__V1__OpenSealedRequest *req =
        (const Cerrojo__V1__OpenSealedRequest *)request;
    struct kms_sealed_request sealed = {
        .version = req->version,
        .key_id = req->key_id,
        .kem_id = req->kem_id,
        .kdf_id = req->kdf_id,
        .aead_id = req->aead_id,
        .enc = req->enc.data,
        .enc_len = req->enc.len,
        .aad = req->aad.data,
        .aad_len = req->aad.len,
        .ct = req->ciphertext.data,
        .ct_len = req->ciphertext.len,
    };
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len = 0;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    Cerrojo__V1__OpenSealedResponse *resp = NULL;
    enum cj_status st =
        kms_open_sealed(state, &sealed, cj_rpc_call_request_id(call), &pt,
                        &pt_len, secret, &secret_len);

    if (st != CJ_OK)
        goto out;
    st = CJ_ERR_NOMEM;
    resp = new_response(&cerrojo__v1__open_sealed_response__descriptor);
    if (resp == NULL)
        goto out;
    resp->plaintext.data = pt; /* the framework wipes and frees it */
    resp->plaintext.len = pt_len;
    pt = NULL;
    if (set_bytes(&resp->response_secret, secret, secret_len))
        st = CJ_OK;
out:
    cj_wipe(secret, sizeof(secret));
    if (pt != NULL) {
        cj_wipe(pt, pt_len);
        free(pt);
    }
    if (st != CJ_OK && resp != NULL)
        cj_wipe(resp->plaintext.data, resp->plaintext.len);
    return finish(call, st, resp, response, KMS_MSG_OPEN);
}

static Cerrojo__V1__HpkePublicKey *
listed_key_message(const struct kms_listed_key *key)
{
    Cerrojo__V1__HpkePublicKey *msg =
        new_response(&cerrojo__v1__hpke_public_key__descriptor);

    if (msg == NULL)
        return NULL;
    msg->key_id = key->key_id;
    msg->kem_id = key->kem_id;
    msg->kdf_id = key->kdf_id;
    msg->aead_id = key->aead_id;
    msg->state = strdup(key->state);
    if (msg->state == NULL || !set_bytes(&msg->public_key, key->public_key,
                                         sizeof(key->public_key))) {
        protobuf_c_message_free_unpacked(&msg->base, NULL);
        return NULL;
    }
    return msg;
}

/* Moves the list into a response message; CJ_ERR_NOMEM on failure. */
static enum cj_status fill_key_list(Cerrojo__V1__ListPublicKeysResponse *resp,
                                    struct kms_key_list *list)
{
    resp->key_list_jws = list->jws;
    list->jws = NULL;
    if (list->previous_jws != NULL) {
        resp->previous_key_list_jws = list->previous_jws;
        list->previous_jws = NULL;
    }
    resp->keys = calloc(list->n_keys + 1, sizeof(*resp->keys));
    resp->signer_fingerprints =
        calloc(list->n_fingerprints + 1, sizeof(*resp->signer_fingerprints));
    if (resp->keys == NULL || resp->signer_fingerprints == NULL)
        return CJ_ERR_NOMEM;
    for (size_t i = 0; i < list->n_keys; i++) {
        resp->keys[i] = listed_key_message(&list->keys[i]);
        if (resp->keys[i] == NULL)
            return CJ_ERR_NOMEM;
        resp->n_keys++;
    }
    for (size_t i = 0; i < list->n_fingerprints; i++) {
        resp->signer_fingerprints[i] = strdup(list->fingerprints[i]);
        if (resp->signer_fingerprints[i] == NULL)
            return CJ_ERR_NOMEM;
        resp->n_signer_fingerprints++;
    }
    return CJ_OK;
}

static enum cj_status handle_list_public_keys(struct cj_rpc_call *call,
                                              const ProtobufCMessage *request,
                                              ProtobufCMessage **response,
                                              void *state)
{
    struct kms_key_list list;
    Cerrojo__V1__ListPublicKeysResponse *resp = NULL;
    enum cj_status st = kms_list_public_keys(state, &list);

    (void)request;
    if (st != CJ_OK)
        goto out;
    resp = new_response(&cerrojo__v1__list_public_keys_response__descriptor);
    st = resp != NULL ? fill_key_list(resp, &list) : CJ_ERR_NOMEM;
out:
    kms_key_list_clear(&list);
    return finish(call, st, resp, response, KMS_MSG_INVALID);
}

/*
 * Every method runs on the worker pool: the data-key and signing calls may
 * write to Postgres, and the others are cheap enough that keeping them off
 * the completion-queue threads costs nothing.
 */
#define KMS_METHOD(name, req, resp, fn, ...)                                   \
    {                                                                          \
        .path = "/cerrojo.v1.Kms/" name, .request = &(req),                    \
        .response = &(resp), .handler = (fn), .blocking = true,                \
        .allowed = {__VA_ARGS__},                                              \
    }

static const struct cj_rpc_method kms_methods[] = {
    KMS_METHOD("CreateUserKey",
               cerrojo__v1__create_user_key_request__descriptor,
               cerrojo__v1__create_user_key_response__descriptor,
               handle_create_user_key, CJ_RPC_ID_AUTH),
    KMS_METHOD("DecryptKey", cerrojo__v1__decrypt_key_request__descriptor,
               cerrojo__v1__decrypt_key_response__descriptor,
               handle_decrypt_key, CJ_RPC_ID_AUTH),
    KMS_METHOD("RewrapKey", cerrojo__v1__rewrap_key_request__descriptor,
               cerrojo__v1__rewrap_key_response__descriptor, handle_rewrap_key,
               CJ_RPC_ID_AUTH),
    KMS_METHOD("ForgetUserKey",
               cerrojo__v1__forget_user_key_request__descriptor,
               cerrojo__v1__forget_user_key_response__descriptor,
               handle_forget_user_key, CJ_RPC_ID_AUTH),
    KMS_METHOD("ListOldKeyUsers",
               cerrojo__v1__list_old_key_users_request__descriptor,
               cerrojo__v1__list_old_key_users_response__descriptor,
               handle_list_old_key_users, CJ_RPC_ID_AUTH),
    KMS_METHOD("SignToken", cerrojo__v1__sign_token_request__descriptor,
               cerrojo__v1__sign_token_response__descriptor, handle_sign_token,
               CJ_RPC_ID_AUTH),
    KMS_METHOD("GetJwks", cerrojo__v1__get_jwks_request__descriptor,
               cerrojo__v1__get_jwks_response__descriptor, handle_get_jwks,
               CJ_RPC_ID_AUTH, CJ_RPC_ID_GATEWAY),
    KMS_METHOD("OpenSealed", cerrojo__v1__open_sealed_request__descriptor,
               cerrojo__v1__open_sealed_response__descriptor,
               handle_open_sealed, CJ_RPC_ID_GATEWAY),
    KMS_METHOD("ListPublicKeys",
               cerrojo__v1__list_public_keys_request__descriptor,
               cerrojo__v1__list_public_keys_response__descriptor,
               handle_list_public_keys, CJ_RPC_ID_GATEWAY),
};

void kms_rpc_service_init(struct cj_rpc_service *out, struct kms_service *svc)
{
    *out = (struct cj_rpc_service){
        .name = KMS_RPC_SERVICE_NAME,
        .methods = kms_methods,
        .n_methods = sizeof(kms_methods) / sizeof(kms_methods[0]),
        .state = svc,
    };
}

/*
 * Stateful mode envelopes: AES-256-GCM requests under per-epoch keys with
 * deterministic nonces, and responses under one-response keys with random
 * nonces.
 */
#include "envelope_stateful.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "crypto_util.h"

#define MAX_CT_LEN (CJ_SEAL_MAX_PLAINTEXT_LEN + CJ_AEAD_TAG_LEN)
/* u8(version) || u16(len(sid)) || sid || u32(epoch) || u64(seq) */
#define BINDING_MAX_LEN (1 + 2 + CJ_SESSION_ID_MAX_LEN + 4 + 8)

static bool session_id_valid(const uint8_t *sid, size_t len)
{
    return sid != NULL && len >= CJ_SESSION_ID_MIN_LEN &&
           len <= CJ_SESSION_ID_MAX_LEN;
}

/* Writes the binding prefix shared by request and response AADs and
 * returns its length. */
static size_t put_binding(uint8_t *p, const uint8_t *sid, size_t sid_len,
                          uint32_t epoch, uint64_t seq)
{
    p[0] = CJ_ENVELOPE_VERSION;
    cj_put_u16(p + 1, (uint16_t)sid_len);
    memcpy(p + 3, sid, sid_len);
    cj_put_u32(p + 3 + sid_len, epoch);
    cj_put_u64(p + 7 + sid_len, seq);
    return 15 + sid_len;
}

/* The request nonce: u32(epoch) || u64(seq). Unique per key because a
 * key belongs to one epoch and seq never repeats within a session. */
static void request_nonce(uint8_t nonce[CJ_AEAD_NONCE_LEN], uint32_t epoch,
                          uint64_t seq)
{
    cj_put_u32(nonce, epoch);
    cj_put_u64(nonce + 4, seq);
}

enum cj_status cj_stateful_build_aad(const uint8_t *session_id,
                                     size_t session_id_len, uint32_t epoch,
                                     uint64_t seq, const char *method,
                                     const char *path, uint8_t **aad,
                                     size_t *aad_len)
{
    size_t method_len, path_len;
    uint8_t *buf, *p;

    *aad = NULL;
    *aad_len = 0;
    if (!session_id_valid(session_id, session_id_len) ||
        !cj_seal_method_valid(method) || !cj_seal_path_valid(path) ||
        seq == 0 || seq > CJ_STATEFUL_MAX_SEQ) {
        return CJ_ERR_INVALID;
    }
    method_len = strlen(method);
    path_len = strlen(path);
    buf = malloc(BINDING_MAX_LEN + 4 + method_len + path_len);
    if (buf == NULL) {
        return CJ_ERR_NOMEM;
    }
    p = buf + put_binding(buf, session_id, session_id_len, epoch, seq);
    cj_put_u16_string(&p, method, method_len);
    cj_put_u16_string(&p, path, path_len);
    *aad = buf;
    *aad_len = (size_t)(p - buf);
    return CJ_OK;
}

enum cj_status cj_stateful_seal_request(const uint8_t c2s[CJ_RATCHET_KEY_LEN],
                                        const uint8_t *session_id,
                                        size_t session_id_len, uint32_t epoch,
                                        uint64_t seq, const char *method,
                                        const char *path,
                                        const struct cj_seal_plaintext *pt,
                                        char **envelope, size_t *envelope_len)
{
    uint8_t nonce[CJ_AEAD_NONCE_LEN];
    uint8_t *aad = NULL, *plain = NULL, *ct = NULL;
    size_t aad_len = 0, plain_len = 0;
    char *ct_text = NULL;
    enum cj_status result;

    *envelope = NULL;
    *envelope_len = 0;
    result = cj_stateful_build_aad(session_id, session_id_len, epoch, seq,
                                   method, path, &aad, &aad_len);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_seal_plaintext_encode(pt, &plain, &plain_len);
    if (result != CJ_OK) {
        goto out;
    }
    ct = malloc(plain_len + CJ_AEAD_TAG_LEN);
    if (ct == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    request_nonce(nonce, epoch, seq);
    result = cj_aead_seal(CJ_AEAD_AES_256_GCM, c2s, CJ_RATCHET_KEY_LEN, nonce,
                          aad, aad_len, plain, plain_len, ct);
    if (result != CJ_OK) {
        goto out;
    }
    ct_text = cj_base64url_encode(ct, plain_len + CJ_AEAD_TAG_LEN);
    result = CJ_ERR_NOMEM;
    if (ct_text == NULL) {
        goto out;
    }
    *envelope = cj_envelope_format(
        envelope_len,
        "{\"v\":%u,\"epoch\":%" PRIu32 ",\"seq\":%" PRIu64 ",\"ct\":\"%s\"}",
        (unsigned)CJ_ENVELOPE_VERSION, epoch, seq, ct_text);
    if (*envelope != NULL) {
        result = CJ_OK;
    }
out:
    if (plain != NULL) {
        cj_wipe(plain, plain_len);
        free(plain);
    }
    free(aad);
    free(ct);
    free(ct_text);
    return result;
}

enum cj_status cj_stateful_parse_request(const char *envelope,
                                         size_t envelope_len,
                                         struct cj_stateful_request *out,
                                         enum cj_seal_reason *reason)
{
    struct cj_envelope_field fields[] = {
        {.name = "v", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT8_MAX},
        {.name = "epoch", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT32_MAX},
        {.name = "seq",
         .type = CJ_ENVELOPE_FIELD_UINT,
         .min = 1,
         .max = CJ_STATEFUL_MAX_SEQ},
        {.name = "ct",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_AEAD_TAG_LEN,
         .max = MAX_CT_LEN},
    };
    size_t count = sizeof(fields) / sizeof(fields[0]);
    enum cj_seal_reason why = CJ_SEAL_OK;

    memset(out, 0, sizeof(*out));
    if (cj_envelope_parse(envelope, envelope_len, fields, count, &why) !=
        CJ_OK) {
        return cj_seal_fail(reason, why);
    }
    if (fields[0].number != CJ_ENVELOPE_VERSION) {
        cj_envelope_fields_clear(fields, count);
        return cj_seal_fail(reason, CJ_SEAL_UNKNOWN_VERSION);
    }
    out->version = (uint8_t)fields[0].number;
    out->epoch = (uint32_t)fields[1].number;
    out->seq = fields[2].number;
    out->ct = fields[3].bytes;
    out->ct_len = fields[3].bytes_len;
    fields[3].bytes = NULL;
    return cj_seal_fail(reason, CJ_SEAL_OK);
}

void cj_stateful_request_clear(struct cj_stateful_request *request)
{
    if (request == NULL) {
        return;
    }
    free(request->ct);
    memset(request, 0, sizeof(*request));
}

enum cj_status
cj_stateful_open_request(const uint8_t c2s[CJ_RATCHET_KEY_LEN],
                         const uint8_t *session_id, size_t session_id_len,
                         const struct cj_stateful_request *request,
                         const char *method, const char *path, uint8_t **pt,
                         size_t *pt_len, enum cj_seal_reason *reason)
{
    uint8_t nonce[CJ_AEAD_NONCE_LEN];
    uint8_t *aad = NULL, *plain = NULL;
    size_t aad_len = 0, plain_len = 0;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    enum cj_status st;

    *pt = NULL;
    *pt_len = 0;
    if (request->version != CJ_ENVELOPE_VERSION) {
        why = CJ_SEAL_UNKNOWN_VERSION;
        goto out;
    }
    if (request->ct == NULL || request->ct_len < CJ_AEAD_TAG_LEN) {
        why = CJ_SEAL_BAD_LENGTH;
        goto out;
    }
    if (request->ct_len > MAX_CT_LEN) {
        why = CJ_SEAL_TOO_LARGE;
        goto out;
    }
    st = cj_stateful_build_aad(session_id, session_id_len, request->epoch,
                               request->seq, method, path, &aad, &aad_len);
    if (st != CJ_OK) {
        why = st == CJ_ERR_NOMEM ? CJ_SEAL_NO_MEMORY : CJ_SEAL_BAD_ARGUMENT;
        goto out;
    }
    plain_len = request->ct_len - CJ_AEAD_TAG_LEN;
    plain = malloc(plain_len + 1);
    if (plain == NULL) {
        why = CJ_SEAL_NO_MEMORY;
        goto out;
    }
    request_nonce(nonce, request->epoch, request->seq);
    st = cj_aead_open(CJ_AEAD_AES_256_GCM, c2s, CJ_RATCHET_KEY_LEN, nonce, aad,
                      aad_len, request->ct, request->ct_len, plain);
    if (st != CJ_OK) {
        why = st == CJ_ERR_CRYPTO ? CJ_SEAL_AUTH_FAILED : CJ_SEAL_INTERNAL;
        goto out;
    }
    *pt = plain;
    *pt_len = plain_len;
    plain = NULL;
    why = CJ_SEAL_OK;
out:
    free(plain);
    free(aad);
    return cj_seal_fail(reason, why);
}

enum cj_status cj_stateful_seal_response_with_nonce(
    const uint8_t response_key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len, uint32_t epoch, uint64_t seq,
    const uint8_t nonce[CJ_STATEFUL_NONCE_LEN], const uint8_t *body,
    size_t body_len, char **envelope, size_t *envelope_len)
{
    uint8_t aad[BINDING_MAX_LEN];
    size_t aad_len;
    uint8_t *ct = NULL;
    enum cj_status result = CJ_ERR_INVALID;

    *envelope = NULL;
    *envelope_len = 0;
    if (!session_id_valid(session_id, session_id_len) || seq == 0 ||
        seq > CJ_STATEFUL_MAX_SEQ) {
        goto out;
    }
    if (body_len > CJ_SEAL_MAX_PLAINTEXT_LEN) {
        result = CJ_ERR_TOO_LARGE;
        goto out;
    }
    aad_len = put_binding(aad, session_id, session_id_len, epoch, seq);
    ct = malloc(body_len + CJ_AEAD_TAG_LEN);
    if (ct == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    result = cj_aead_seal(CJ_AEAD_AES_256_GCM, response_key, CJ_RATCHET_KEY_LEN,
                          nonce, aad, aad_len, body, body_len, ct);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_envelope_format_response(nonce, CJ_STATEFUL_NONCE_LEN, ct,
                                         body_len + CJ_AEAD_TAG_LEN, envelope,
                                         envelope_len);
out:
    free(ct);
    return result;
}

enum cj_status cj_stateful_seal_response(
    const uint8_t response_key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len, uint32_t epoch, uint64_t seq, const uint8_t *body,
    size_t body_len, char **envelope, size_t *envelope_len)
{
    uint8_t nonce[CJ_STATEFUL_NONCE_LEN];

    /* A random nonce keeps the key safe even if a caller ever sealed a
     * second response with it. */
    cj_random_bytes(nonce, sizeof(nonce));
    return cj_stateful_seal_response_with_nonce(
        response_key, session_id, session_id_len, epoch, seq, nonce, body,
        body_len, envelope, envelope_len);
}

enum cj_status
cj_stateful_open_response(const uint8_t response_key[CJ_RATCHET_KEY_LEN],
                          const uint8_t *session_id, size_t session_id_len,
                          uint32_t epoch, uint64_t seq, const char *envelope,
                          size_t envelope_len, uint8_t **body, size_t *body_len,
                          enum cj_seal_reason *reason)
{
    struct cj_envelope_field fields[] = {
        {.name = "v", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT8_MAX},
        {.name = "nonce",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_STATEFUL_NONCE_LEN,
         .max = CJ_STATEFUL_NONCE_LEN},
        {.name = "ct",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_AEAD_TAG_LEN,
         .max = MAX_CT_LEN},
    };
    size_t count = sizeof(fields) / sizeof(fields[0]);
    uint8_t aad[BINDING_MAX_LEN];
    size_t aad_len;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;
    enum cj_status st;

    *body = NULL;
    *body_len = 0;
    if (!session_id_valid(session_id, session_id_len) || seq == 0 ||
        seq > CJ_STATEFUL_MAX_SEQ) {
        return cj_seal_fail(reason, CJ_SEAL_BAD_ARGUMENT);
    }
    if (cj_envelope_parse(envelope, envelope_len, fields, count, &why) !=
        CJ_OK) {
        return cj_seal_fail(reason, why);
    }
    if (fields[0].number != CJ_ENVELOPE_VERSION) {
        why = CJ_SEAL_UNKNOWN_VERSION;
        goto out;
    }
    aad_len = put_binding(aad, session_id, session_id_len, epoch, seq);
    plain_len = fields[2].bytes_len - CJ_AEAD_TAG_LEN;
    plain = malloc(plain_len + 1);
    if (plain == NULL) {
        why = CJ_SEAL_NO_MEMORY;
        goto out;
    }
    st = cj_aead_open(CJ_AEAD_AES_256_GCM, response_key, CJ_RATCHET_KEY_LEN,
                      fields[1].bytes, aad, aad_len, fields[2].bytes,
                      fields[2].bytes_len, plain);
    if (st != CJ_OK) {
        why = st == CJ_ERR_CRYPTO ? CJ_SEAL_AUTH_FAILED : CJ_SEAL_INTERNAL;
        goto out;
    }
    *body = plain;
    *body_len = plain_len;
    plain = NULL;
    why = CJ_SEAL_OK;
out:
    free(plain);
    cj_envelope_fields_clear(fields, count);
    return cj_seal_fail(reason, why);
}

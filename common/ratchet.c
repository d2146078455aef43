/*
 * Epoch keys of stateful sessions: HKDF from the handshake secret, then a
 * one-way HKDF-Expand chain, each epoch split into directional keys.
 */
#include "ratchet.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "hkdf.h"

#define LABEL(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* The base64url alphabet (RFC 4648 section 5). */
#define CJ_BASE64URL_ALPHABET                                                  \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

bool cj_session_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != CJ_SESSION_ID_LEN) {
        return false;
    }
    return strspn(id, CJ_BASE64URL_ALPHABET) == CJ_SESSION_ID_LEN;
}

enum cj_status
cj_ratchet_first_key(uint8_t key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
                     size_t session_id_len,
                     const uint8_t client_secret[CJ_RATCHET_CLIENT_SECRET_LEN])
{
    if (session_id == NULL || session_id_len < CJ_SESSION_ID_MIN_LEN ||
        session_id_len > CJ_SESSION_ID_MAX_LEN || client_secret == NULL) {
        return CJ_ERR_INVALID;
    }
    return cj_hkdf(key, CJ_RATCHET_KEY_LEN, session_id, session_id_len,
                   client_secret, CJ_RATCHET_CLIENT_SECRET_LEN,
                   LABEL(CJ_RATCHET_FIRST_LABEL));
}

enum cj_status cj_ratchet_next(uint8_t key[CJ_RATCHET_KEY_LEN])
{
    uint8_t next[CJ_RATCHET_KEY_LEN];
    enum cj_status result =
        cj_hkdf_expand(next, sizeof(next), key, CJ_RATCHET_KEY_LEN,
                       LABEL(CJ_RATCHET_NEXT_LABEL));
    if (result == CJ_OK) {
        memcpy(key, next, sizeof(next));
    }
    cj_wipe(next, sizeof(next));
    return result;
}

enum cj_status cj_ratchet_advance(uint8_t key[CJ_RATCHET_KEY_LEN],
                                  uint32_t from, uint32_t to)
{
    if (to < from || to - from > CJ_RATCHET_MAX_STEPS) {
        return CJ_ERR_INVALID;
    }
    for (uint32_t epoch = from; epoch < to; epoch++) {
        enum cj_status result = cj_ratchet_next(key);
        if (result != CJ_OK) {
            /* A half-advanced key must not be used for any epoch. */
            cj_wipe(key, CJ_RATCHET_KEY_LEN);
            return result;
        }
    }
    return CJ_OK;
}

enum cj_status
cj_ratchet_direction_keys(const uint8_t epoch_key[CJ_RATCHET_KEY_LEN],
                          uint8_t c2s[CJ_RATCHET_KEY_LEN],
                          uint8_t s2c[CJ_RATCHET_KEY_LEN])
{
    enum cj_status result =
        cj_hkdf_expand(c2s, CJ_RATCHET_KEY_LEN, epoch_key, CJ_RATCHET_KEY_LEN,
                       LABEL(CJ_RATCHET_C2S_LABEL));
    if (result == CJ_OK) {
        result =
            cj_hkdf_expand(s2c, CJ_RATCHET_KEY_LEN, epoch_key,
                           CJ_RATCHET_KEY_LEN, LABEL(CJ_RATCHET_S2C_LABEL));
    }
    if (result != CJ_OK) {
        cj_wipe(c2s, CJ_RATCHET_KEY_LEN);
        cj_wipe(s2c, CJ_RATCHET_KEY_LEN);
    }
    return result;
}

enum cj_status cj_ratchet_response_key(uint8_t out[CJ_RATCHET_KEY_LEN],
                                       const uint8_t s2c[CJ_RATCHET_KEY_LEN],
                                       uint64_t seq)
{
    uint8_t info[sizeof(CJ_RATCHET_RESPONSE_LABEL) - 1 + 8];
    size_t label_len = sizeof(CJ_RATCHET_RESPONSE_LABEL) - 1;

    memcpy(info, CJ_RATCHET_RESPONSE_LABEL, label_len);
    cj_put_u64(info + label_len, seq);
    return cj_hkdf_expand(out, CJ_RATCHET_KEY_LEN, s2c, CJ_RATCHET_KEY_LEN,
                          info, sizeof(info));
}

enum cj_status cj_epoch_at(uint64_t created_ms, uint64_t epoch_len_ms,
                           uint64_t now_ms, uint32_t *epoch)
{
    uint64_t n;

    if (epoch_len_ms == 0 || now_ms < created_ms) {
        return CJ_ERR_INVALID;
    }
    n = (now_ms - created_ms) / epoch_len_ms;
    if (n > UINT32_MAX) {
        return CJ_ERR_INVALID;
    }
    *epoch = (uint32_t)n;
    return CJ_OK;
}

struct cj_ratchet *
cj_ratchet_new(const uint8_t *session_id, size_t session_id_len,
               const uint8_t client_secret[CJ_RATCHET_CLIENT_SECRET_LEN])
{
    struct cj_ratchet *ratchet = calloc(1, sizeof(*ratchet));
    if (ratchet == NULL) {
        return NULL;
    }
    ratchet->key = cj_secret_new(CJ_RATCHET_KEY_LEN);
    if (ratchet->key == NULL ||
        cj_ratchet_first_key(ratchet->key->bytes, session_id, session_id_len,
                             client_secret) != CJ_OK) {
        cj_ratchet_free(ratchet);
        return NULL;
    }
    return ratchet;
}

enum cj_status cj_ratchet_move_to(struct cj_ratchet *ratchet, uint32_t epoch)
{
    enum cj_status result;

    if (ratchet == NULL || ratchet->key == NULL || epoch < ratchet->epoch) {
        return CJ_ERR_INVALID;
    }
    if (epoch - ratchet->epoch > CJ_RATCHET_MAX_STEPS) {
        return CJ_ERR_INVALID;
    }
    result = cj_ratchet_advance(ratchet->key->bytes, ratchet->epoch, epoch);
    if (result == CJ_OK) {
        ratchet->epoch = epoch;
    } else {
        /* The key was wiped mid-way: drop it so nothing uses it. */
        cj_secret_free(ratchet->key);
        ratchet->key = NULL;
    }
    return result;
}

void cj_ratchet_free(struct cj_ratchet *ratchet)
{
    if (ratchet == NULL) {
        return;
    }
    cj_secret_free(ratchet->key);
    free(ratchet);
}

/*
 * Stateful sealing steps for the session service, on the crypto library's
 * ratchet (common/ratchet.h) and its request layout (common/
 * envelope_stateful.h), so that the server derives exactly the keys a
 * client derives.
 */
#include "sess_crypto.h"

#include <string.h>

#include "aead.h"
#include "crypto_util.h"
#include "envelope.h"
#include "envelope_stateful.h"
#include "ratchet.h"

_Static_assert(SESS_EPOCH_KEY_LEN == CJ_RATCHET_KEY_LEN,
               "epoch keys are ratchet keys");
_Static_assert(SESS_RESPONSE_KEY_LEN == CJ_RATCHET_KEY_LEN,
               "response keys are ratchet keys");
_Static_assert(SESS_CLIENT_SECRET_LEN == CJ_RATCHET_CLIENT_SECRET_LEN,
               "the handshake secret is the ratchet's client secret");

/* Bytes of the AAD prefix checked here: u8(version) || u16(len(sid)). */
#define SESS_AAD_HEAD_LEN 3

enum cj_status sess_crypto_first_key(const unsigned char *secret,
                                     size_t secret_len, const char *sid,
                                     unsigned char out[SESS_EPOCH_KEY_LEN])
{
    if (secret_len != CJ_RATCHET_CLIENT_SECRET_LEN) {
        return CJ_ERR_INVALID;
    }
    return cj_ratchet_first_key(out, (const uint8_t *)sid, strlen(sid), secret);
}

enum cj_status sess_crypto_next_key(const unsigned char in[SESS_EPOCH_KEY_LEN],
                                    unsigned char out[SESS_EPOCH_KEY_LEN])
{
    memmove(out, in, SESS_EPOCH_KEY_LEN);
    return cj_ratchet_next(out);
}

/*
 * Checks that the additional data the gateway built names this session,
 * epoch and sequence: u8(version) || u16(len(sid)) || sid || u32(epoch) ||
 * u64(seq) || method and path. The key and nonce already bind all three,
 * so a mismatch means a gateway bug, reported as a failed open.
 */
static bool aad_matches(const unsigned char *aad, size_t aad_len,
                        const char *sid, uint32_t epoch, uint64_t sequence)
{
    size_t sid_len = strlen(sid);
    size_t need = SESS_AAD_HEAD_LEN + sid_len + 4 + 8;
    uint8_t expect[SESS_AAD_HEAD_LEN + CJ_SESSION_ID_MAX_LEN + 4 + 8];

    if (aad == NULL || aad_len < need || sid_len > CJ_SESSION_ID_MAX_LEN) {
        return false;
    }
    expect[0] = CJ_ENVELOPE_VERSION;
    cj_put_u16(expect + 1, (uint16_t)sid_len);
    memcpy(expect + SESS_AAD_HEAD_LEN, sid, sid_len);
    cj_put_u32(expect + SESS_AAD_HEAD_LEN + sid_len, epoch);
    cj_put_u64(expect + SESS_AAD_HEAD_LEN + sid_len + 4, sequence);
    return memcmp(aad, expect, need) == 0;
}

enum cj_status sess_crypto_open(const unsigned char key[SESS_EPOCH_KEY_LEN],
                                const char *sid, uint64_t epoch,
                                uint64_t sequence, const unsigned char *aad,
                                size_t aad_len, const unsigned char *ct,
                                size_t ct_len, unsigned char *pt)
{
    uint8_t c2s[CJ_RATCHET_KEY_LEN];
    uint8_t s2c[CJ_RATCHET_KEY_LEN];
    uint8_t nonce[CJ_AEAD_NONCE_LEN];
    enum cj_status st;

    if (epoch > UINT32_MAX || sequence == 0 || sequence > CJ_STATEFUL_MAX_SEQ) {
        return CJ_ERR_INVALID;
    }
    if (!aad_matches(aad, aad_len, sid, (uint32_t)epoch, sequence)) {
        return CJ_ERR_CRYPTO;
    }
    /* The request nonce of the stateful layout: u32(epoch) || u64(seq). */
    cj_put_u32(nonce, (uint32_t)epoch);
    cj_put_u64(nonce + 4, sequence);
    st = cj_ratchet_direction_keys(key, c2s, s2c);
    if (st == CJ_OK) {
        st = cj_aead_open(CJ_AEAD_AES_256_GCM, c2s, sizeof(c2s), nonce, aad,
                          aad_len, ct, ct_len, pt);
    }
    cj_wipe(c2s, sizeof(c2s));
    cj_wipe(s2c, sizeof(s2c));
    return st;
}

enum cj_status
sess_crypto_response_key(const unsigned char key[SESS_EPOCH_KEY_LEN],
                         uint64_t sequence,
                         unsigned char out[SESS_RESPONSE_KEY_LEN])
{
    uint8_t c2s[CJ_RATCHET_KEY_LEN];
    uint8_t s2c[CJ_RATCHET_KEY_LEN];
    enum cj_status st;

    st = cj_ratchet_direction_keys(key, c2s, s2c);
    if (st == CJ_OK) {
        st = cj_ratchet_response_key(out, s2c, sequence);
    }
    cj_wipe(c2s, sizeof(c2s));
    cj_wipe(s2c, sizeof(s2c));
    return st;
}

/*
 * Client-side session keys for tests.
 *
 * TODO: derive through the crypto library's client-side ratchet and seal
 * once they are on main; this copy follows the interim labels of
 * sess_crypto.c.
 */
#include "sess_client.h"

#include <string.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"

enum cj_status sess_client_keys_init(struct sess_client_keys *k,
                                     const unsigned char *secret,
                                     const char *sid)
{
    return sess_crypto_first_key(secret, SESS_CLIENT_SECRET_LEN, sid, k->first);
}

enum cj_status sess_client_epoch_key(const struct sess_client_keys *k,
                                     uint64_t epoch,
                                     unsigned char out[SESS_EPOCH_KEY_LEN])
{
    unsigned char next[SESS_EPOCH_KEY_LEN];
    enum cj_status st = CJ_OK;

    memcpy(out, k->first, SESS_EPOCH_KEY_LEN);
    for (uint64_t e = 0; e < epoch && st == CJ_OK; e++) {
        st = sess_crypto_next_key(out, next);
        memcpy(out, next, SESS_EPOCH_KEY_LEN);
    }
    cj_wipe(next, sizeof(next));
    return st;
}

enum cj_status sess_client_seal(const struct sess_client_keys *k,
                                uint64_t epoch, uint64_t sequence,
                                const unsigned char *aad, size_t aad_len,
                                const unsigned char *pt, size_t pt_len,
                                unsigned char *ct)
{
    unsigned char key[SESS_EPOCH_KEY_LEN];
    unsigned char c2s[SESS_EPOCH_KEY_LEN];
    unsigned char nonce[CJ_AEAD_NONCE_LEN];
    enum cj_status st;

    for (int i = 3; i >= 0; i--) {
        nonce[i] = (unsigned char)(epoch >> (8 * (3 - i)));
    }
    for (int i = 11; i >= 4; i--) {
        nonce[i] = (unsigned char)(sequence >> (8 * (11 - i)));
    }
    st = sess_client_epoch_key(k, epoch, key);
    if (st == CJ_OK) {
        st = cj_hkdf_expand(c2s, sizeof(c2s), key, sizeof(key),
                            (const uint8_t *)"cerrojo interim c2s",
                            strlen("cerrojo interim c2s"));
    }
    if (st == CJ_OK) {
        st = cj_aead_seal(CJ_AEAD_AES_256_GCM, c2s, sizeof(c2s), nonce, aad,
                          aad_len, pt, pt_len, ct);
    }
    cj_wipe(key, sizeof(key));
    cj_wipe(c2s, sizeof(c2s));
    return st;
}

enum cj_status
sess_client_response_key(const struct sess_client_keys *k, uint64_t epoch,
                         uint64_t sequence,
                         unsigned char out[SESS_RESPONSE_KEY_LEN])
{
    unsigned char key[SESS_EPOCH_KEY_LEN];
    enum cj_status st = sess_client_epoch_key(k, epoch, key);

    if (st == CJ_OK) {
        st = sess_crypto_response_key(key, sequence, out);
    }
    cj_wipe(key, sizeof(key));
    return st;
}

/*
 * Stateful sealing steps for the session service.
 *
 * TODO: switch to the crypto library's ratchet and envelope functions once
 * they are on main; until then these derive keys with HKDF-SHA256 under
 * interim labels, so a client built on the library will not interoperate.
 */
#include "sess_crypto.h"

#include <string.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"

#define INTERIM_FIRST_INFO    "cerrojo interim epoch 0"
#define INTERIM_NEXT_INFO     "cerrojo interim ratchet"
#define INTERIM_C2S_INFO      "cerrojo interim c2s"
#define INTERIM_S2C_INFO      "cerrojo interim s2c"
#define INTERIM_RESPONSE_INFO "cerrojo interim response"

static void put_be(unsigned char *out, uint64_t v, int len)
{
    for (int i = len - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

enum cj_status sess_crypto_first_key(const unsigned char *secret,
                                     size_t secret_len, const char *sid,
                                     unsigned char out[SESS_EPOCH_KEY_LEN])
{
    return cj_hkdf(out, SESS_EPOCH_KEY_LEN, (const uint8_t *)sid, strlen(sid),
                   secret, secret_len, (const uint8_t *)INTERIM_FIRST_INFO,
                   strlen(INTERIM_FIRST_INFO));
}

enum cj_status sess_crypto_next_key(const unsigned char in[SESS_EPOCH_KEY_LEN],
                                    unsigned char out[SESS_EPOCH_KEY_LEN])
{
    return cj_hkdf_expand(out, SESS_EPOCH_KEY_LEN, in, SESS_EPOCH_KEY_LEN,
                          (const uint8_t *)INTERIM_NEXT_INFO,
                          strlen(INTERIM_NEXT_INFO));
}

enum cj_status sess_crypto_open(const unsigned char key[SESS_EPOCH_KEY_LEN],
                                uint64_t epoch, uint64_t sequence,
                                const unsigned char *aad, size_t aad_len,
                                const unsigned char *ct, size_t ct_len,
                                unsigned char *pt)
{
    unsigned char c2s[SESS_EPOCH_KEY_LEN];
    unsigned char nonce[CJ_AEAD_NONCE_LEN];
    enum cj_status st;

    put_be(nonce, epoch, 4);
    put_be(nonce + 4, sequence, 8);
    st = cj_hkdf_expand(c2s, sizeof(c2s), key, SESS_EPOCH_KEY_LEN,
                        (const uint8_t *)INTERIM_C2S_INFO,
                        strlen(INTERIM_C2S_INFO));
    if (st == CJ_OK) {
        st = cj_aead_open(CJ_AEAD_AES_256_GCM, c2s, sizeof(c2s), nonce, aad,
                          aad_len, ct, ct_len, pt);
    }
    cj_wipe(c2s, sizeof(c2s));
    return st;
}

enum cj_status
sess_crypto_response_key(const unsigned char key[SESS_EPOCH_KEY_LEN],
                         uint64_t sequence,
                         unsigned char out[SESS_RESPONSE_KEY_LEN])
{
    unsigned char s2c[SESS_EPOCH_KEY_LEN];
    unsigned char info[sizeof(INTERIM_RESPONSE_INFO) + 8];
    enum cj_status st;

    memcpy(info, INTERIM_RESPONSE_INFO, sizeof(INTERIM_RESPONSE_INFO));
    put_be(info + sizeof(INTERIM_RESPONSE_INFO), sequence, 8);
    st = cj_hkdf_expand(s2c, sizeof(s2c), key, SESS_EPOCH_KEY_LEN,
                        (const uint8_t *)INTERIM_S2C_INFO,
                        strlen(INTERIM_S2C_INFO));
    if (st == CJ_OK) {
        st = cj_hkdf_expand(out, SESS_RESPONSE_KEY_LEN, s2c, sizeof(s2c), info,
                            sizeof(info));
    }
    cj_wipe(s2c, sizeof(s2c));
    return st;
}

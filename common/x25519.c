/*
 * X25519 on libsodium's crypto_scalarmult, which clamps the scalar, masks
 * the top bit of the peer key, and runs in constant time.
 */
#include "x25519.h"

#include <sodium.h>

#include "crypto_util.h"

enum cj_status cj_x25519_keygen(uint8_t sk[CJ_X25519_KEY_LEN],
                                uint8_t pk[CJ_X25519_KEY_LEN])
{
    cj_random_bytes(sk, CJ_X25519_KEY_LEN);
    enum cj_status result = cj_x25519_public(pk, sk);
    if (result != CJ_OK) {
        cj_wipe(sk, CJ_X25519_KEY_LEN);
    }
    return result;
}

enum cj_status cj_x25519_public(uint8_t pk[CJ_X25519_KEY_LEN],
                                const uint8_t sk[CJ_X25519_KEY_LEN])
{
    if (cj_crypto_init() != CJ_OK) {
        return CJ_ERR_INTERNAL;
    }
    /* Fails only for a scalar that clamps to zero, which cannot happen. */
    if (crypto_scalarmult_base(pk, sk) != 0) {
        return CJ_ERR_CRYPTO;
    }
    return CJ_OK;
}

enum cj_status cj_x25519_dh(uint8_t shared[CJ_X25519_KEY_LEN],
                            const uint8_t sk[CJ_X25519_KEY_LEN],
                            const uint8_t pk[CJ_X25519_KEY_LEN])
{
    if (cj_crypto_init() != CJ_OK) {
        return CJ_ERR_INTERNAL;
    }
    /* libsodium returns -1 for an all-zero result; check again in constant
     * time so the rule does not depend on the library version. */
    if (crypto_scalarmult(shared, sk, pk) != 0 ||
        cj_ct_is_zero(shared, CJ_X25519_KEY_LEN)) {
        cj_wipe(shared, CJ_X25519_KEY_LEN);
        return CJ_ERR_CRYPTO;
    }
    return CJ_OK;
}

/*
 * X25519 on libsodium's crypto_scalarmult, which clamps the scalar, masks
 * the top bit of the peer key, and runs in constant time.
 */
#include "x25519.h"

#include <string.h>

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

/* Little-endian u-coordinates of small order: 0, 1, the two points of
 * order 8, p - 1, p and p + 1 (p = 2^255 - 19). */
static const uint8_t low_order_points[][CJ_X25519_KEY_LEN] = {
    {0},
    {1},
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
     0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
     0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

bool cj_x25519_is_low_order(const uint8_t pk[CJ_X25519_KEY_LEN])
{
    uint8_t masked[CJ_X25519_KEY_LEN];
    size_t count = sizeof(low_order_points) / sizeof(low_order_points[0]);

    /* A public share is not secret, so an early-exit compare is fine. */
    memcpy(masked, pk, sizeof(masked));
    masked[CJ_X25519_KEY_LEN - 1] &= 0x7f;
    for (size_t i = 0; i < count; i++) {
        if (memcmp(masked, low_order_points[i], sizeof(masked)) == 0) {
            return true;
        }
    }
    return false;
}

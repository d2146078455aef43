/*
 * X25519 (RFC 7748) key generation, public key from private key, and
 * Diffie-Hellman that rejects an all-zero shared secret, which is what a
 * low-order peer public key produces (RFC 7748 6.1).
 */
#ifndef CJ_X25519_H
#define CJ_X25519_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#define CJ_X25519_KEY_LEN 32

/* Generates a key pair from the system CSPRNG. */
enum cj_status cj_x25519_keygen(uint8_t sk[CJ_X25519_KEY_LEN],
                                uint8_t pk[CJ_X25519_KEY_LEN]) CJ_WARN_UNUSED;

/* Computes the public key of a private key (with the scalar clamped as in RFC
 * 7748 section 5). */
enum cj_status
cj_x25519_public(uint8_t pk[CJ_X25519_KEY_LEN],
                 const uint8_t sk[CJ_X25519_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Computes the shared secret X25519(sk, pk). Returns CJ_ERR_CRYPTO, with
 * shared wiped, when the result is all zeros (a low-order or otherwise
 * degenerate peer key).
 */
enum cj_status cj_x25519_dh(uint8_t shared[CJ_X25519_KEY_LEN],
                            const uint8_t sk[CJ_X25519_KEY_LEN],
                            const uint8_t pk[CJ_X25519_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Returns true when pk is one of the X25519 points of small order (or a
 * non-canonical encoding of one), compared with the top bit masked as RFC
 * 7748 5 decodes it. Such a share makes every DH output all zeros.
 */
bool cj_x25519_is_low_order(const uint8_t pk[CJ_X25519_KEY_LEN]);

#endif

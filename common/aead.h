/*
 * AEAD seal and open for AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305
 * (RFC 8439), all with 12-byte nonces and 16-byte tags appended to the
 * ciphertext. The algorithm numbers are the HPKE AEAD ids (RFC 9180 7.3).
 */
#ifndef CJ_AEAD_H
#define CJ_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum cj_aead_alg {
    CJ_AEAD_AES_128_GCM = 0x0001,
    CJ_AEAD_AES_256_GCM = 0x0002,
    CJ_AEAD_CHACHA20_POLY1305 = 0x0003,
};

#define CJ_AEAD_NONCE_LEN   12
#define CJ_AEAD_TAG_LEN     16
#define CJ_AEAD_MAX_KEY_LEN 32
/* Largest plaintext accepted in one call (1 GiB), far below the GCM
 * limit of 2^36 - 32 bytes and the int length OpenSSL's API takes. */
#define CJ_AEAD_MAX_PLAINTEXT_LEN ((size_t)1 << 30)

/* Returns the key length in bytes of alg, or 0 for an unknown alg. */
size_t cj_aead_key_len(enum cj_aead_alg alg);

/*
 * Encrypts pt_len bytes of pt and writes ciphertext || tag (pt_len + 16
 * bytes) to out. key_len must be cj_aead_key_len(alg). pt and aad may be
 * NULL when their length is 0. out must not overlap pt.
 */
enum cj_status cj_aead_seal(enum cj_aead_alg alg, const uint8_t *key,
                            size_t key_len,
                            const uint8_t nonce[CJ_AEAD_NONCE_LEN],
                            const uint8_t *aad, size_t aad_len,
                            const uint8_t *pt, size_t pt_len,
                            uint8_t *out) CJ_WARN_UNUSED;

/*
 * Verifies and decrypts ct (ciphertext || tag, ct_len >= 16) and writes
 * ct_len - 16 bytes of plaintext to out. The plaintext is decrypted into a
 * private buffer and copied to out only after the tag verifies, so on any
 * failure out is left untouched. Returns CJ_ERR_CRYPTO on a bad tag and
 * CJ_ERR_INVALID on a bad length or key size.
 */
enum cj_status cj_aead_open(enum cj_aead_alg alg, const uint8_t *key,
                            size_t key_len,
                            const uint8_t nonce[CJ_AEAD_NONCE_LEN],
                            const uint8_t *aad, size_t aad_len,
                            const uint8_t *ct, size_t ct_len,
                            uint8_t *out) CJ_WARN_UNUSED;

#endif

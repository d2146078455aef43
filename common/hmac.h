/* HMAC-SHA256 (RFC 2104) through OpenSSL's EVP_MAC, and its verification. */
#ifndef CJ_HMAC_H
#define CJ_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CJ_HMAC_SHA256_LEN 32

/* Computes HMAC-SHA256(key, msg) into out (32 bytes); key may be empty. */
enum cj_status cj_hmac_sha256(uint8_t out[CJ_HMAC_SHA256_LEN],
                              const uint8_t *key, size_t key_len,
                              const uint8_t *msg,
                              size_t msg_len) CJ_WARN_UNUSED;

/*
 * Verifies a full 32-byte tag in constant time. A truncated tag is rejected,
 * because a caller that took tag_len from input would otherwise accept a
 * forged 1-byte tag once in 256 guesses. Returns CJ_OK on a match,
 * CJ_ERR_CRYPTO on a mismatch, CJ_ERR_INVALID when tag_len is not 32.
 */
enum cj_status cj_hmac_sha256_verify(const uint8_t *tag, size_t tag_len,
                                     const uint8_t *key, size_t key_len,
                                     const uint8_t *msg,
                                     size_t msg_len) CJ_WARN_UNUSED;

#endif

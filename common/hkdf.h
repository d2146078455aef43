/*
 * HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF: extract, expand and
 * both in one call.
 */
#ifndef CJ_HKDF_H
#define CJ_HKDF_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Hash output length of SHA-256 in bytes; also the PRK length. */
#define CJ_HKDF_SHA256_LEN 32
/* Largest HKDF-Expand output: 255 blocks of the hash (RFC 5869 2.3). */
#define CJ_HKDF_SHA256_MAX_OKM_LEN (255 * CJ_HKDF_SHA256_LEN)

/*
 * Computes PRK = HMAC-SHA256(salt, ikm) into prk (32 bytes). An empty salt
 * means 32 zero bytes, as RFC 5869 section 2.2 defines.
 */
enum cj_status cj_hkdf_extract(uint8_t prk[CJ_HKDF_SHA256_LEN],
                               const uint8_t *salt, size_t salt_len,
                               const uint8_t *ikm,
                               size_t ikm_len) CJ_WARN_UNUSED;

/*
 * Expands prk (at least 32 bytes) with info to out_len bytes. Returns
 * CJ_ERR_INVALID when out_len is 0 or above CJ_HKDF_SHA256_MAX_OKM_LEN.
 */
enum cj_status cj_hkdf_expand(uint8_t *out, size_t out_len, const uint8_t *prk,
                              size_t prk_len, const uint8_t *info,
                              size_t info_len) CJ_WARN_UNUSED;

/* Extract then expand; the intermediate PRK is wiped. */
enum cj_status cj_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt,
                       size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                       const uint8_t *info, size_t info_len) CJ_WARN_UNUSED;

#endif

/*
 * Oblivious HTTP message encapsulation (RFC 9458): the request header and
 * HPKE info of section 4.3, and the response sealing of section 4.4 (a
 * secret exported from the request context, a random response nonce, HKDF
 * to an AEAD key and nonce). cerrojo's stateless envelopes reuse the
 * response derivation with their own labels.
 */
#ifndef CJ_OHTTP_H
#define CJ_OHTTP_H

#include <stddef.h>
#include <stdint.h>

#include "hpke.h"
#include "status.h"

#define CJ_OHTTP_REQUEST_LABEL  "message/bhttp request"
#define CJ_OHTTP_RESPONSE_LABEL "message/bhttp response"
/* hdr = key_id (1) || kem_id (2) || kdf_id (2) || aead_id (2). */
#define CJ_OHTTP_HEADER_LEN 7
/* max(Nn, Nk) for the supported AEADs: the response nonce and the
 * exported secret are this long at most. */
#define CJ_OHTTP_MAX_SECRET_LEN 32
/* Maximum length of the info label accepted by cj_ohttp_build_info(). */
#define CJ_OHTTP_MAX_LABEL_LEN 64

/* Returns max(Nn, Nk) of an AEAD id, the length of the exported response
 * secret and of the response nonce; 0 for export-only or unknown ids. */
size_t cj_ohttp_response_nonce_len(uint16_t aead_id);

/* Writes hdr = key_id || kem_id || kdf_id || aead_id (7 bytes). */
void cj_ohttp_build_header(uint8_t hdr[CJ_OHTTP_HEADER_LEN], uint8_t key_id,
                           const struct cj_hpke_suite *suite);

/*
 * Writes info = label || 0x00 || header to out (capacity out_cap) and its
 * length to out_len. RFC 9458 uses CJ_OHTTP_REQUEST_LABEL and the 7-byte
 * header above; cerrojo passes its own label and header.
 */
enum cj_status cj_ohttp_build_info(const char *label, const uint8_t *header,
                                   size_t header_len, uint8_t *out,
                                   size_t out_cap,
                                   size_t *out_len) CJ_WARN_UNUSED;

/*
 * Exports the response secret, Export(label, max(Nn, Nk)), from an HPKE
 * context of either role into secret (capacity CJ_OHTTP_MAX_SECRET_LEN) and
 * stores its length. The caller wipes it.
 */
enum cj_status cj_ohttp_export_secret(const struct cj_hpke_ctx *ctx,
                                      const char *label, uint8_t *secret,
                                      size_t *secret_len) CJ_WARN_UNUSED;

/*
 * Derives the response AEAD key (Nk bytes) and nonce (12 bytes) of RFC
 * 9458 4.4: salt = enc || response_nonce, prk = Extract(salt, secret),
 * key = Expand(prk, "key", Nk), nonce = Expand(prk, "nonce", Nn).
 * response_nonce is max(Nn, Nk) bytes. The caller wipes key and nonce.
 */
enum cj_status
cj_ohttp_response_keys(uint16_t aead_id, const uint8_t *secret,
                       size_t secret_len, const uint8_t *enc, size_t enc_len,
                       const uint8_t *response_nonce, uint8_t *key,
                       uint8_t nonce[CJ_HPKE_NONCE_LEN]) CJ_WARN_UNUSED;

/*
 * Seals a response: pt_len + 16 bytes of ciphertext || tag to ct, with an
 * empty AAD. response_nonce (max(Nn, Nk) bytes) is the caller's: fresh
 * random bytes from cj_random_bytes() in production, a fixed value only in
 * known-answer tests. The full encapsulated response is response_nonce ||
 * ct.
 */
enum cj_status cj_ohttp_seal_response(uint16_t aead_id, const uint8_t *secret,
                                      size_t secret_len, const uint8_t *enc,
                                      size_t enc_len,
                                      const uint8_t *response_nonce,
                                      const uint8_t *pt, size_t pt_len,
                                      uint8_t *ct) CJ_WARN_UNUSED;

/* Opens a response sealed by cj_ohttp_seal_response(); writes ct_len - 16
 * bytes to pt. Returns CJ_ERR_CRYPTO on a bad tag. */
enum cj_status cj_ohttp_open_response(uint16_t aead_id, const uint8_t *secret,
                                      size_t secret_len, const uint8_t *enc,
                                      size_t enc_len,
                                      const uint8_t *response_nonce,
                                      const uint8_t *ct, size_t ct_len,
                                      uint8_t *pt) CJ_WARN_UNUSED;

/*
 * Opens an RFC 9458 encapsulated request (hdr || enc || ct) for the key
 * configuration (key_id, suite, sk_r). On success *pt is a new buffer of
 * *pt_len bytes (freed by the caller after wiping), ctx is the recipient
 * context (for the response secret) and enc receives the 32-byte enc.
 * Returns CJ_ERR_NOT_FOUND when the header names another key or suite,
 * CJ_ERR_INVALID on a short message, CJ_ERR_CRYPTO on a bad tag or a
 * low-order enc.
 */
enum cj_status
cj_ohttp_open_request(uint8_t key_id, const struct cj_hpke_suite *suite,
                      const uint8_t sk_r[CJ_HPKE_SK_LEN],
                      const uint8_t *enc_request, size_t enc_request_len,
                      uint8_t **pt, size_t *pt_len, struct cj_hpke_ctx *ctx,
                      uint8_t enc[CJ_HPKE_ENC_LEN]) CJ_WARN_UNUSED;

#endif

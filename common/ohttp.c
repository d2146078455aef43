/*
 * RFC 9458 request header and info (section 4.3) and response sealing
 * (section 4.4) on cerrojo's HPKE, HKDF and AEAD.
 */
#include "ohttp.h"

#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"

/* enc || response_nonce */
#define MAX_SALT_LEN (CJ_HPKE_ENC_LEN + CJ_OHTTP_MAX_SECRET_LEN)

size_t cj_ohttp_response_nonce_len(uint16_t aead_id)
{
    size_t nk = cj_hpke_aead_key_len(aead_id);
    size_t nn = cj_hpke_aead_nonce_len(aead_id);
    return nk > nn ? nk : nn;
}

void cj_ohttp_build_header(uint8_t hdr[CJ_OHTTP_HEADER_LEN], uint8_t key_id,
                           const struct cj_hpke_suite *suite)
{
    hdr[0] = key_id;
    hdr[1] = (uint8_t)(suite->kem_id >> 8);
    hdr[2] = (uint8_t)suite->kem_id;
    hdr[3] = (uint8_t)(suite->kdf_id >> 8);
    hdr[4] = (uint8_t)suite->kdf_id;
    hdr[5] = (uint8_t)(suite->aead_id >> 8);
    hdr[6] = (uint8_t)suite->aead_id;
}

enum cj_status cj_ohttp_build_info(const char *label, const uint8_t *header,
                                   size_t header_len, uint8_t *out,
                                   size_t out_cap, size_t *out_len)
{
    size_t label_len = label == NULL ? 0 : strlen(label);
    if (label_len == 0 || label_len > CJ_OHTTP_MAX_LABEL_LEN ||
        header == NULL || out == NULL || out_cap < label_len + 1 + header_len) {
        return CJ_ERR_INVALID;
    }
    memcpy(out, label, label_len);
    out[label_len] = 0x00;
    memcpy(out + label_len + 1, header, header_len);
    *out_len = label_len + 1 + header_len;
    return CJ_OK;
}

enum cj_status cj_ohttp_export_secret(const struct cj_hpke_ctx *ctx,
                                      const char *label, uint8_t *secret,
                                      size_t *secret_len)
{
    size_t len;
    enum cj_status result;

    if (ctx == NULL || label == NULL || secret == NULL) {
        return CJ_ERR_INVALID;
    }
    len = cj_ohttp_response_nonce_len(ctx->suite.aead_id);
    if (len == 0) {
        return CJ_ERR_INVALID;
    }
    result =
        cj_hpke_export(ctx, (const uint8_t *)label, strlen(label), secret, len);
    if (result == CJ_OK) {
        *secret_len = len;
    }
    return result;
}

enum cj_status cj_ohttp_response_keys(uint16_t aead_id, const uint8_t *secret,
                                      size_t secret_len, const uint8_t *enc,
                                      size_t enc_len,
                                      const uint8_t *response_nonce,
                                      uint8_t *key,
                                      uint8_t nonce[CJ_HPKE_NONCE_LEN])
{
    uint8_t salt[MAX_SALT_LEN];
    uint8_t prk[CJ_HKDF_SHA256_LEN];
    size_t nonce_len = cj_ohttp_response_nonce_len(aead_id);
    size_t nk = cj_hpke_aead_key_len(aead_id);
    enum cj_status result = CJ_ERR_INVALID;

    if (nonce_len == 0 || secret == NULL || secret_len == 0 || enc == NULL ||
        enc_len != CJ_HPKE_ENC_LEN || response_nonce == NULL) {
        goto out;
    }
    memcpy(salt, enc, enc_len);
    memcpy(salt + enc_len, response_nonce, nonce_len);
    result =
        cj_hkdf_extract(prk, salt, enc_len + nonce_len, secret, secret_len);
    if (result != CJ_OK) {
        goto out;
    }
    result =
        cj_hkdf_expand(key, nk, prk, sizeof(prk), (const uint8_t *)"key", 3);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_hkdf_expand(nonce, CJ_HPKE_NONCE_LEN, prk, sizeof(prk),
                            (const uint8_t *)"nonce", 5);
out:
    if (result != CJ_OK && key != NULL && nk > 0) {
        cj_wipe(key, nk);
    }
    cj_wipe(prk, sizeof(prk));
    return result;
}

enum cj_status cj_ohttp_seal_response(uint16_t aead_id, const uint8_t *secret,
                                      size_t secret_len, const uint8_t *enc,
                                      size_t enc_len,
                                      const uint8_t *response_nonce,
                                      const uint8_t *pt, size_t pt_len,
                                      uint8_t *ct)
{
    uint8_t key[CJ_HPKE_MAX_KEY_LEN];
    uint8_t nonce[CJ_HPKE_NONCE_LEN];
    enum cj_status result = cj_ohttp_response_keys(
        aead_id, secret, secret_len, enc, enc_len, response_nonce, key, nonce);
    if (result == CJ_OK) {
        result = cj_aead_seal((enum cj_aead_alg)aead_id, key,
                              cj_hpke_aead_key_len(aead_id), nonce, NULL, 0, pt,
                              pt_len, ct);
    }
    cj_wipe(key, sizeof(key));
    cj_wipe(nonce, sizeof(nonce));
    return result;
}

enum cj_status cj_ohttp_open_response(uint16_t aead_id, const uint8_t *secret,
                                      size_t secret_len, const uint8_t *enc,
                                      size_t enc_len,
                                      const uint8_t *response_nonce,
                                      const uint8_t *ct, size_t ct_len,
                                      uint8_t *pt)
{
    uint8_t key[CJ_HPKE_MAX_KEY_LEN];
    uint8_t nonce[CJ_HPKE_NONCE_LEN];
    enum cj_status result = cj_ohttp_response_keys(
        aead_id, secret, secret_len, enc, enc_len, response_nonce, key, nonce);
    if (result == CJ_OK) {
        result = cj_aead_open((enum cj_aead_alg)aead_id, key,
                              cj_hpke_aead_key_len(aead_id), nonce, NULL, 0, ct,
                              ct_len, pt);
    }
    cj_wipe(key, sizeof(key));
    cj_wipe(nonce, sizeof(nonce));
    return result;
}

enum cj_status cj_ohttp_open_request(uint8_t key_id,
                                     const struct cj_hpke_suite *suite,
                                     const uint8_t sk_r[CJ_HPKE_SK_LEN],
                                     const uint8_t *enc_request,
                                     size_t enc_request_len, uint8_t **pt,
                                     size_t *pt_len, struct cj_hpke_ctx *ctx,
                                     uint8_t enc[CJ_HPKE_ENC_LEN])
{
    uint8_t hdr[CJ_OHTTP_HEADER_LEN];
    uint8_t info[sizeof(CJ_OHTTP_REQUEST_LABEL) + CJ_OHTTP_HEADER_LEN];
    size_t info_len = 0;
    size_t prefix = CJ_OHTTP_HEADER_LEN + CJ_HPKE_ENC_LEN;
    uint8_t *out = NULL;
    size_t out_len = 0;
    enum cj_status result = CJ_ERR_INVALID;

    *pt = NULL;
    *pt_len = 0;
    if (enc_request == NULL || enc_request_len < prefix + CJ_HPKE_TAG_LEN) {
        goto out;
    }
    cj_ohttp_build_header(hdr, key_id, suite);
    /* Header bytes are public, so a plain comparison is fine here. */
    if (memcmp(hdr, enc_request, CJ_OHTTP_HEADER_LEN) != 0) {
        result = CJ_ERR_NOT_FOUND;
        goto out;
    }
    result = cj_ohttp_build_info(CJ_OHTTP_REQUEST_LABEL, hdr, sizeof(hdr), info,
                                 sizeof(info), &info_len);
    if (result != CJ_OK) {
        goto out;
    }
    memcpy(enc, enc_request + CJ_OHTTP_HEADER_LEN, CJ_HPKE_ENC_LEN);
    result = cj_hpke_setup_base_r(ctx, suite, enc, sk_r, info, info_len);
    if (result != CJ_OK) {
        goto out;
    }
    out_len = enc_request_len - prefix - CJ_HPKE_TAG_LEN;
    out = malloc(out_len + 1);
    if (out == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    result = cj_hpke_open(ctx, NULL, 0, enc_request + prefix,
                          enc_request_len - prefix, out);
    if (result != CJ_OK) {
        goto out;
    }
    *pt = out;
    *pt_len = out_len;
    out = NULL;
out:
    if (result != CJ_OK) {
        cj_hpke_ctx_wipe(ctx);
    }
    if (out != NULL) {
        cj_wipe(out, out_len + 1);
        free(out);
    }
    return result;
}

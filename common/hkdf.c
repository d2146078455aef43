/*
 * HKDF-SHA256 on OpenSSL 3.0's EVP_KDF "HKDF", in its extract-only and
 * expand-only modes so that HPKE can label each step.
 */
#include "hkdf.h"

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto_util.h"

/* The fetched algorithm is reference counted and safe to share. */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_KDF *hkdf_alg;

static void fetch_hkdf(void)
{
    hkdf_alg = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
}

static enum cj_status run_hkdf(int mode, uint8_t *out, size_t out_len,
                               const uint8_t *salt, size_t salt_len,
                               const uint8_t *key, size_t key_len,
                               const uint8_t *info, size_t info_len)
{
    enum cj_status result = CJ_ERR_INTERNAL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[6];
    size_t n = 0;
    /* OpenSSL needs a non-NULL pointer even for an empty key. */
    static const uint8_t empty[1];

    pthread_once(&fetch_once, fetch_hkdf);
    if (hkdf_alg == NULL) {
        goto out;
    }
    kctx = EVP_KDF_CTX_new(hkdf_alg);
    if (kctx == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                   (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_KEY, (void *)(key_len ? key : empty), key_len);
    if (salt_len > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)salt, salt_len);
    }
    if (info_len > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        (void *)info, info_len);
    }
    params[n] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
        cj_wipe(out, out_len);
        goto out;
    }
    result = CJ_OK;
out:
    /* EVP_KDF_CTX_free clears the key, salt and info copies it holds. */
    EVP_KDF_CTX_free(kctx);
    return result;
}

enum cj_status cj_hkdf_extract(uint8_t prk[CJ_HKDF_SHA256_LEN],
                               const uint8_t *salt, size_t salt_len,
                               const uint8_t *ikm, size_t ikm_len)
{
    return run_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, prk, CJ_HKDF_SHA256_LEN,
                    salt, salt_len, ikm, ikm_len, NULL, 0);
}

enum cj_status cj_hkdf_expand(uint8_t *out, size_t out_len, const uint8_t *prk,
                              size_t prk_len, const uint8_t *info,
                              size_t info_len)
{
    if (out_len == 0 || out_len > CJ_HKDF_SHA256_MAX_OKM_LEN ||
        prk_len < CJ_HKDF_SHA256_LEN) {
        return CJ_ERR_INVALID;
    }
    return run_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, out, out_len, NULL, 0, prk,
                    prk_len, info, info_len);
}

enum cj_status cj_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt,
                       size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                       const uint8_t *info, size_t info_len)
{
    uint8_t prk[CJ_HKDF_SHA256_LEN];
    enum cj_status result = cj_hkdf_extract(prk, salt, salt_len, ikm, ikm_len);
    if (result == CJ_OK) {
        result = cj_hkdf_expand(out, out_len, prk, sizeof(prk), info, info_len);
    }
    cj_wipe(prk, sizeof(prk));
    return result;
}

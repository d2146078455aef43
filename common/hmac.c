/* HMAC-SHA256 on OpenSSL 3.0's EVP_MAC "HMAC". */
#include "hmac.h"

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto_util.h"

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;

static void fetch_hmac(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

enum cj_status cj_hmac_sha256(uint8_t out[CJ_HMAC_SHA256_LEN],
                              const uint8_t *key, size_t key_len,
                              const uint8_t *msg, size_t msg_len)
{
    enum cj_status result = CJ_ERR_INTERNAL;
    EVP_MAC_CTX *mctx = NULL;
    size_t out_len = 0;
    static const uint8_t empty[1];
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    pthread_once(&fetch_once, fetch_hmac);
    if (hmac_alg == NULL) {
        goto out;
    }
    mctx = EVP_MAC_CTX_new(hmac_alg);
    if (mctx == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    if (EVP_MAC_init(mctx, key_len ? key : empty, key_len, params) != 1 ||
        EVP_MAC_update(mctx, msg_len ? msg : empty, msg_len) != 1 ||
        EVP_MAC_final(mctx, out, &out_len, CJ_HMAC_SHA256_LEN) != 1 ||
        out_len != CJ_HMAC_SHA256_LEN) {
        cj_wipe(out, CJ_HMAC_SHA256_LEN);
        goto out;
    }
    result = CJ_OK;
out:
    EVP_MAC_CTX_free(mctx);
    return result;
}

enum cj_status cj_hmac_sha256_verify(const uint8_t *tag, size_t tag_len,
                                     const uint8_t *key, size_t key_len,
                                     const uint8_t *msg, size_t msg_len)
{
    uint8_t expected[CJ_HMAC_SHA256_LEN];
    enum cj_status result;

    if (tag_len != CJ_HMAC_SHA256_LEN) {
        return CJ_ERR_INVALID;
    }
    result = cj_hmac_sha256(expected, key, key_len, msg, msg_len);
    if (result == CJ_OK && !cj_ct_equal(expected, tag, tag_len)) {
        result = CJ_ERR_CRYPTO;
    }
    cj_wipe(expected, sizeof(expected));
    return result;
}

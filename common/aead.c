/*
 * AEAD through OpenSSL's EVP cipher interface. Open decrypts into a
 * temporary buffer and releases plaintext to the caller only after the tag
 * check, wiping the temporary buffer on every path.
 */
#include "aead.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto_util.h"

static const EVP_CIPHER *cipher_for(enum cj_aead_alg alg)
{
    switch (alg) {
    case CJ_AEAD_AES_128_GCM:
        return EVP_aes_128_gcm();
    case CJ_AEAD_AES_256_GCM:
        return EVP_aes_256_gcm();
    case CJ_AEAD_CHACHA20_POLY1305:
        return EVP_chacha20_poly1305();
    }
    return NULL;
}

size_t cj_aead_key_len(enum cj_aead_alg alg)
{
    switch (alg) {
    case CJ_AEAD_AES_128_GCM:
        return 16;
    case CJ_AEAD_AES_256_GCM:
    case CJ_AEAD_CHACHA20_POLY1305:
        return 32;
    }
    return 0;
}

/* Checks the arguments common to seal and open; data_len is the length of
 * the plaintext or of the ciphertext without its tag. */
static bool args_valid(enum cj_aead_alg alg, const uint8_t *key, size_t key_len,
                       const uint8_t *nonce, size_t aad_len, size_t data_len)
{
    return cipher_for(alg) != NULL && key != NULL &&
           key_len == cj_aead_key_len(alg) && nonce != NULL &&
           aad_len <= INT_MAX && data_len <= CJ_AEAD_MAX_PLAINTEXT_LEN;
}

/* Creates a context keyed for alg in the given direction (1 encrypt). */
static EVP_CIPHER_CTX *new_keyed_ctx(enum cj_aead_alg alg, const uint8_t *key,
                                     const uint8_t *nonce, int encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return NULL;
    }
    if (EVP_CipherInit_ex(ctx, cipher_for(alg), NULL, NULL, NULL, encrypt) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, CJ_AEAD_NONCE_LEN,
                            NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

enum cj_status cj_aead_seal(enum cj_aead_alg alg, const uint8_t *key,
                            size_t key_len,
                            const uint8_t nonce[CJ_AEAD_NONCE_LEN],
                            const uint8_t *aad, size_t aad_len,
                            const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    enum cj_status result = CJ_ERR_INTERNAL;
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0;

    if (!args_valid(alg, key, key_len, nonce, aad_len, pt_len) || out == NULL ||
        (pt_len > 0 && pt == NULL) || (aad_len > 0 && aad == NULL)) {
        return CJ_ERR_INVALID;
    }
    ctx = new_keyed_ctx(alg, key, nonce, 1);
    if (ctx == NULL) {
        goto out;
    }
    if (aad_len > 0 &&
        EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, out, &n, pt, (int)pt_len) != 1) {
        goto out;
    }
    if (EVP_EncryptFinal_ex(ctx, out + pt_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, CJ_AEAD_TAG_LEN,
                            out + pt_len) != 1) {
        goto out;
    }
    result = CJ_OK;
out:
    if (result != CJ_OK) {
        cj_wipe(out, pt_len + CJ_AEAD_TAG_LEN);
    }
    /* EVP_CIPHER_CTX_free cleanses the expanded key schedule. */
    EVP_CIPHER_CTX_free(ctx);
    return result;
}

enum cj_status cj_aead_open(enum cj_aead_alg alg, const uint8_t *key,
                            size_t key_len,
                            const uint8_t nonce[CJ_AEAD_NONCE_LEN],
                            const uint8_t *aad, size_t aad_len,
                            const uint8_t *ct, size_t ct_len, uint8_t *out)
{
    enum cj_status result = CJ_ERR_INTERNAL;
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *tmp = NULL;
    uint8_t tag[CJ_AEAD_TAG_LEN];
    size_t pt_len;
    int n = 0;

    if (ct == NULL || ct_len < CJ_AEAD_TAG_LEN) {
        return CJ_ERR_INVALID;
    }
    pt_len = ct_len - CJ_AEAD_TAG_LEN;
    if (!args_valid(alg, key, key_len, nonce, aad_len, pt_len) ||
        (pt_len > 0 && out == NULL) || (aad_len > 0 && aad == NULL)) {
        return CJ_ERR_INVALID;
    }
    /* One spare byte so that an empty plaintext still has a buffer. */
    tmp = malloc(pt_len + 1);
    if (tmp == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    ctx = new_keyed_ctx(alg, key, nonce, 0);
    if (ctx == NULL) {
        goto out;
    }
    memcpy(tag, ct + pt_len, CJ_AEAD_TAG_LEN);
    if (aad_len > 0 &&
        EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (pt_len > 0 && EVP_DecryptUpdate(ctx, tmp, &n, ct, (int)pt_len) != 1) {
        goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CJ_AEAD_TAG_LEN, tag) !=
        1) {
        goto out;
    }
    /* EVP_DecryptFinal_ex compares the tag in constant time. */
    if (EVP_DecryptFinal_ex(ctx, tmp + pt_len, &n) != 1) {
        result = CJ_ERR_CRYPTO;
        goto out;
    }
    if (pt_len > 0) {
        memcpy(out, tmp, pt_len);
    }
    result = CJ_OK;
out:
    if (tmp != NULL) {
        cj_wipe(tmp, pt_len + 1);
        free(tmp);
    }
    EVP_CIPHER_CTX_free(ctx);
    return result;
}

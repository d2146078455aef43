/*
 * AES-256-GCM wrapping of data keys (bound to a user id and KEK version)
 * and of stored keys (bound to a label), in the formats kms_wrap.h lays
 * out.
 */
#include "kms_wrap.h"

#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "crypto_util.h"

#define DATA_KEY_CONTEXT   "cerrojo-kms data key"
#define STORED_KEY_CONTEXT "cerrojo-kms stored key"
/* Header of a wrapped data key: format byte and KEK version. */
#define DATA_HEADER_BYTES 5
/* Maximum length of the additional data built here, in bytes. */
#define AAD_MAX 320

/* Largest plaintext a stored-key wrap accepts (a PKCS#8 RSA-4096 key fits),
 * in bytes. */
#define STORED_PLAIN_MAX 8192

/* AES-256-GCM; the tag follows the ciphertext. */
static enum cj_status gcm_seal(const unsigned char *key,
                               const unsigned char *nonce,
                               const unsigned char *aad, size_t aad_len,
                               const unsigned char *plain, size_t len,
                               unsigned char *out)
{
    return cj_aead_seal(CJ_AEAD_AES_256_GCM, key, KMS_WRAP_KEY_BYTES, nonce,
                        aad, aad_len, plain, len, out);
}

/* Opens ciphertext || tag (len + 16 bytes); plain is zeroed on failure. */
static enum cj_status gcm_open(const unsigned char *key,
                               const unsigned char *nonce,
                               const unsigned char *aad, size_t aad_len,
                               const unsigned char *cipher, size_t len,
                               unsigned char *plain)
{
    enum cj_status st =
        cj_aead_open(CJ_AEAD_AES_256_GCM, key, KMS_WRAP_KEY_BYTES, nonce, aad,
                     aad_len, cipher, len + KMS_WRAP_TAG_BYTES, plain);
    if (st != CJ_OK)
        cj_wipe(plain, len);
    return st;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Builds the data-key additional data; returns its length or 0. */
static size_t data_key_aad(unsigned char *aad, const unsigned char *header,
                           const char *user_id)
{
    size_t uid_len = user_id != NULL ? strlen(user_id) : 0;
    size_t pos = sizeof(DATA_KEY_CONTEXT); /* with its NUL as separator */

    if (uid_len == 0 || uid_len > KMS_USER_ID_MAX)
        return 0;
    memcpy(aad, DATA_KEY_CONTEXT, pos);
    memcpy(aad + pos, header, DATA_HEADER_BYTES);
    pos += DATA_HEADER_BYTES;
    aad[pos++] = (unsigned char)(uid_len >> 8);
    aad[pos++] = (unsigned char)uid_len;
    memcpy(aad + pos, user_id, uid_len);
    return pos + uid_len;
}

enum cj_status kms_wrap_data_key(const unsigned char *kek, uint32_t kek_version,
                                 const char *user_id,
                                 const unsigned char *data_key,
                                 unsigned char *out)
{
    unsigned char aad[AAD_MAX];
    unsigned char *nonce = out + DATA_HEADER_BYTES;
    unsigned char *cipher = nonce + KMS_WRAP_NONCE_BYTES;

    out[0] = KMS_WRAP_FORMAT;
    put_u32(out + 1, kek_version);
    size_t aad_len = data_key_aad(aad, out, user_id);
    if (aad_len == 0 || kek_version == 0)
        return CJ_ERR_INVALID;
    cj_random_bytes(nonce, KMS_WRAP_NONCE_BYTES);
    return gcm_seal(kek, nonce, aad, aad_len, data_key, KMS_DATA_KEY_BYTES,
                    cipher);
}

enum cj_status kms_wrapped_data_key_version(const unsigned char *wrapped,
                                            size_t len, uint32_t *version)
{
    if (wrapped == NULL || len != KMS_WRAPPED_DATA_KEY_BYTES ||
        wrapped[0] != KMS_WRAP_FORMAT)
        return CJ_ERR_INVALID;
    *version = get_u32(wrapped + 1);
    return *version == 0 ? CJ_ERR_INVALID : CJ_OK;
}

enum cj_status kms_unwrap_data_key(const unsigned char *kek,
                                   uint32_t kek_version, const char *user_id,
                                   const unsigned char *wrapped, size_t len,
                                   unsigned char *data_key)
{
    unsigned char aad[AAD_MAX];
    uint32_t version = 0;
    enum cj_status st = kms_wrapped_data_key_version(wrapped, len, &version);

    if (st != CJ_OK)
        return st;
    if (version != kek_version)
        return CJ_ERR_INVALID;
    size_t aad_len = data_key_aad(aad, wrapped, user_id);
    if (aad_len == 0)
        return CJ_ERR_INVALID;
    const unsigned char *nonce = wrapped + DATA_HEADER_BYTES;
    const unsigned char *cipher = nonce + KMS_WRAP_NONCE_BYTES;
    return gcm_open(kek, nonce, aad, aad_len, cipher, KMS_DATA_KEY_BYTES,
                    data_key);
}

size_t kms_stored_wrap_len(size_t len)
{
    return len + KMS_STORED_OVERHEAD;
}

/* Builds the stored-key additional data; returns its length or 0. */
static size_t stored_aad(unsigned char *aad, const char *label)
{
    size_t label_len = label != NULL ? strlen(label) : 0;
    size_t pos = sizeof(STORED_KEY_CONTEXT);

    if (label_len == 0 || label_len > KMS_LABEL_MAX)
        return 0;
    memcpy(aad, STORED_KEY_CONTEXT, pos);
    memcpy(aad + pos, label, label_len);
    return pos + label_len;
}

enum cj_status kms_wrap_stored(const unsigned char *root, const char *label,
                               const unsigned char *plain, size_t len,
                               unsigned char *out)
{
    unsigned char aad[AAD_MAX];
    size_t aad_len = stored_aad(aad, label);
    unsigned char *nonce = out + 1;
    unsigned char *cipher = nonce + KMS_WRAP_NONCE_BYTES;

    if (aad_len == 0 || len == 0 || len > STORED_PLAIN_MAX)
        return CJ_ERR_INVALID;
    out[0] = KMS_WRAP_FORMAT;
    cj_random_bytes(nonce, KMS_WRAP_NONCE_BYTES);
    return gcm_seal(root, nonce, aad, aad_len, plain, len, cipher);
}

enum cj_status kms_unwrap_stored(const unsigned char *root, const char *label,
                                 const unsigned char *wrapped, size_t len,
                                 unsigned char **plain, size_t *plain_len)
{
    unsigned char aad[AAD_MAX];
    size_t aad_len = stored_aad(aad, label);
    unsigned char *buf = NULL;
    enum cj_status st = CJ_ERR_INVALID;

    *plain = NULL;
    *plain_len = 0;
    if (aad_len == 0 || wrapped == NULL || len <= KMS_STORED_OVERHEAD ||
        len - KMS_STORED_OVERHEAD > STORED_PLAIN_MAX ||
        wrapped[0] != KMS_WRAP_FORMAT)
        goto out;
    size_t n = len - KMS_STORED_OVERHEAD;
    st = CJ_ERR_NOMEM;
    buf = sodium_malloc(n);
    if (buf == NULL)
        goto out;
    const unsigned char *nonce = wrapped + 1;
    const unsigned char *cipher = nonce + KMS_WRAP_NONCE_BYTES;
    st = gcm_open(root, nonce, aad, aad_len, cipher, n, buf);
    if (st != CJ_OK)
        goto out;
    *plain = buf;
    *plain_len = n;
    buf = NULL;
out:
    sodium_free(buf);
    return st;
}

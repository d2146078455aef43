/* AES-256-GCM of user data fields with their binding as additional data. */
#include "auth_data_crypto.h"

#include <string.h>

#include "crypto_util.h"

const char *auth_data_class_name(enum auth_data_class cls)
{
    switch (cls) {
    case AUTH_DATA_PUBLIC:
        return "public";
    case AUTH_DATA_PRIVATE:
        return "private";
    case AUTH_DATA_PROTECTED:
        return "protected";
    }
    return NULL;
}

/* Domain label that starts the additional data, versioned with the format. */
#define DATA_AAD_LABEL "cerrojo auth data v1"
/* Label, three length-prefixed items and the class byte fit in this. */
#define DATA_AAD_MAX 512

/*
 * Builds label || u16 len || user_id || u8 class || u16 len || field, big
 * endian lengths, so that no two bindings share additional data.
 */
static enum cj_status build_aad(const char *user_id, enum auth_data_class cls,
                                const char *field, uint8_t *aad, size_t *len)
{
    size_t label_len = sizeof(DATA_AAD_LABEL) - 1;
    size_t user_len = strlen(user_id);
    size_t field_len = strlen(field);
    size_t pos = 0;

    if (auth_data_class_name(cls) == NULL ||
        label_len + 2 + user_len + 1 + 2 + field_len > DATA_AAD_MAX) {
        return CJ_ERR_INVALID;
    }
    memcpy(aad, DATA_AAD_LABEL, label_len);
    pos = label_len;
    aad[pos++] = (uint8_t)(user_len >> 8);
    aad[pos++] = (uint8_t)user_len;
    memcpy(aad + pos, user_id, user_len);
    pos += user_len;
    aad[pos++] = (uint8_t)cls;
    aad[pos++] = (uint8_t)(field_len >> 8);
    aad[pos++] = (uint8_t)field_len;
    memcpy(aad + pos, field, field_len);
    pos += field_len;
    *len = pos;
    return CJ_OK;
}

enum cj_status auth_data_seal(const uint8_t key[AUTH_DATA_KEY_SIZE],
                              const char *user_id, enum auth_data_class cls,
                              const char *field, const uint8_t *value,
                              size_t value_len,
                              uint8_t nonce[CJ_AEAD_NONCE_LEN],
                              uint8_t *ciphertext)
{
    uint8_t aad[DATA_AAD_MAX];
    size_t aad_len = 0;
    enum cj_status rc = build_aad(user_id, cls, field, aad, &aad_len);

    if (rc != CJ_OK) {
        return rc;
    }
    cj_random_bytes(nonce, CJ_AEAD_NONCE_LEN);
    return cj_aead_seal(CJ_AEAD_AES_256_GCM, key, AUTH_DATA_KEY_SIZE, nonce,
                        aad, aad_len, value, value_len, ciphertext);
}

enum cj_status auth_data_open(const uint8_t key[AUTH_DATA_KEY_SIZE],
                              const char *user_id, enum auth_data_class cls,
                              const char *field, const uint8_t *nonce,
                              size_t nonce_len, const uint8_t *ciphertext,
                              size_t ciphertext_len, uint8_t *value)
{
    uint8_t aad[DATA_AAD_MAX];
    size_t aad_len = 0;
    enum cj_status rc;

    if (nonce_len != CJ_AEAD_NONCE_LEN || ciphertext_len < CJ_AEAD_TAG_LEN) {
        return CJ_ERR_CRYPTO;
    }
    rc = build_aad(user_id, cls, field, aad, &aad_len);
    if (rc != CJ_OK) {
        return rc;
    }
    return cj_aead_open(CJ_AEAD_AES_256_GCM, key, AUTH_DATA_KEY_SIZE, nonce,
                        aad, aad_len, ciphertext, ciphertext_len, value);
}

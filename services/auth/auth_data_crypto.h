/*
 * Encryption of private and protected field values: AES-256-GCM under the
 * user's data key, random 96-bit nonce, with the user id, the class and the
 * field name bound as additional data.
 */
#ifndef AUTH_DATA_CRYPTO_H
#define AUTH_DATA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "auth_store.h"
#include "status.h"

/* Size of a user's data key, as kms CreateUserKey returns it. */
#define AUTH_DATA_KEY_SIZE 32

/*
 * Encrypts value for (user_id, cls, field): fills nonce with fresh random
 * bytes and writes value_len + CJ_AEAD_TAG_LEN bytes to ciphertext.
 */
CJ_WARN_UNUSED enum cj_status
auth_data_seal(const uint8_t key[AUTH_DATA_KEY_SIZE], const char *user_id,
               enum auth_data_class cls, const char *field,
               const uint8_t *value, size_t value_len,
               uint8_t nonce[CJ_AEAD_NONCE_LEN], uint8_t *ciphertext);

/*
 * Decrypts a stored value for (user_id, cls, field) into value
 * (ciphertext_len - CJ_AEAD_TAG_LEN bytes). CJ_ERR_CRYPTO when the key,
 * the binding or the bytes do not match, for example a value copied from
 * another user, field or class.
 */
CJ_WARN_UNUSED enum cj_status
auth_data_open(const uint8_t key[AUTH_DATA_KEY_SIZE], const char *user_id,
               enum auth_data_class cls, const char *field,
               const uint8_t *nonce, size_t nonce_len,
               const uint8_t *ciphertext, size_t ciphertext_len,
               uint8_t *value);

#endif

/*
 * Wrap formats of cerrojo-kms, all AES-256-GCM: per-user data keys wrapped
 * under a key-encryption key (KEK), and stored keys wrapped under the root
 * key. Pure functions over caller buffers; no I/O.
 *
 * Wrapped data key (KMS_WRAPPED_DATA_KEY_BYTES = 65 bytes):
 *   0      format, 0x01
 *   1..4   KEK version, unsigned 32-bit big-endian
 *   5..16  nonce (96 random bits)
 *   17..48 encrypted data key
 *   49..64 GCM tag
 * Additional data: "cerrojo-kms data key" 0x00, bytes 0..4 above, the user
 * id's length (16-bit big-endian) and the user id. The wrap therefore opens
 * only for the same user id and KEK version.
 *
 * Stored key: 0x01, 12-byte nonce, ciphertext, 16-byte tag, with the
 * additional data "cerrojo-kms stored key" 0x00 and a label naming the key
 * ("kek/3", "signing/<kid>"), so a wrapped key copied to another row fails.
 */
#ifndef KMS_WRAP_H
#define KMS_WRAP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define KMS_WRAP_FORMAT            0x01
#define KMS_WRAP_KEY_BYTES         32 /* AES-256 */
#define KMS_WRAP_NONCE_BYTES       12
#define KMS_WRAP_TAG_BYTES         16
#define KMS_DATA_KEY_BYTES         32
#define KMS_WRAPPED_DATA_KEY_BYTES 65
/* Maximum length of the user id bound into a wrapped data key, in bytes. */
#define KMS_USER_ID_MAX 256
/* Maximum length of the label of a stored key, in bytes. */
#define KMS_LABEL_MAX 200
/* Overhead of a stored-key wrap over its plaintext, in bytes. */
#define KMS_STORED_OVERHEAD (1 + KMS_WRAP_NONCE_BYTES + KMS_WRAP_TAG_BYTES)

/*
 * Wraps data_key for user_id under kek (version kek_version) into out.
 * Fails with CJ_ERR_INVALID for an empty or overlong user id.
 */
enum cj_status kms_wrap_data_key(const unsigned char *kek, uint32_t kek_version,
                                 const char *user_id,
                                 const unsigned char *data_key,
                                 unsigned char *out) CJ_WARN_UNUSED;

/*
 * Reads the KEK version from a wrapped data key's header without opening
 * it. CJ_ERR_INVALID for a wrong length or format byte.
 */
enum cj_status kms_wrapped_data_key_version(const unsigned char *wrapped,
                                            size_t len,
                                            uint32_t *version) CJ_WARN_UNUSED;

/*
 * Opens a wrapped data key with kek (whose version the header must name)
 * for user_id into data_key (KMS_DATA_KEY_BYTES). CJ_ERR_INVALID for a
 * malformed input, CJ_ERR_CRYPTO when the tag does not verify (other user,
 * altered bytes, wrong KEK). data_key is written only after the tag verifies
 * and is wiped on failure.
 */
enum cj_status kms_unwrap_data_key(const unsigned char *kek,
                                   uint32_t kek_version, const char *user_id,
                                   const unsigned char *wrapped, size_t len,
                                   unsigned char *data_key) CJ_WARN_UNUSED;

/* Returns the length of a stored-key wrap of len plaintext bytes. */
size_t kms_stored_wrap_len(size_t len);

/*
 * Wraps a stored key (a KEK or a private key) under root, bound to label.
 * out must hold kms_stored_wrap_len(len) bytes.
 */
enum cj_status kms_wrap_stored(const unsigned char *root, const char *label,
                               const unsigned char *plain, size_t len,
                               unsigned char *out) CJ_WARN_UNUSED;

/*
 * Opens a stored key. On success *plain is new sodium_malloc memory of
 * *plain_len bytes (free it with sodium_free, which wipes it).
 * CJ_ERR_INVALID for a malformed input, CJ_ERR_CRYPTO for a wrong root key,
 * label or altered bytes.
 */
enum cj_status kms_unwrap_stored(const unsigned char *root, const char *label,
                                 const unsigned char *wrapped, size_t len,
                                 unsigned char **plain,
                                 size_t *plain_len) CJ_WARN_UNUSED;

#endif

/*
 * Per-user data keys: CreateUserKey, DecryptKey and RewrapKey without the
 * gRPC layer. Every unwrap failure reaches the caller as one status,
 * CJ_ERR_CRYPTO; the precise reason goes to the security log.
 */
#ifndef KMS_DATAKEY_H
#define KMS_DATAKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms_service.h"
#include "kms_wrap.h"

/*
 * Makes a fresh data key for user_id and wraps it under the active KEK.
 * data_key (KMS_DATA_KEY_BYTES) is the caller's to wipe. Records the
 * user's KEK version (CJ_ERR_UNAVAILABLE when Postgres cannot).
 */
CJ_WARN_UNUSED enum cj_status
kms_create_user_key(struct kms_service *svc, const char *user_id,
                    const char *request_id, unsigned char *data_key,
                    unsigned char *wrapped, uint32_t *kek_version);

/*
 * Unwraps a data key of user_id. CJ_ERR_INVALID for a missing or overlong
 * user id; CJ_ERR_CRYPTO for any input that does not open (another user,
 * altered or truncated bytes, an unknown or destroyed KEK version).
 */
CJ_WARN_UNUSED enum cj_status
kms_decrypt_key(struct kms_service *svc, const char *user_id,
                const unsigned char *wrapped, size_t len,
                const char *request_id, unsigned char *data_key,
                uint32_t *kek_version);

/*
 * Re-wraps a data key under the active KEK; *changed is false when it
 * already used it (out then equals the input). Reloads the key set first
 * when Postgres has a newer KEK than the loaded one, so that a rotation
 * takes effect for re-wrapping at once. Errors as kms_decrypt_key.
 */
CJ_WARN_UNUSED enum cj_status
kms_rewrap_key(struct kms_service *svc, const char *user_id,
               const unsigned char *wrapped, size_t len, const char *request_id,
               unsigned char *out, uint32_t *kek_version, bool *changed);

#endif

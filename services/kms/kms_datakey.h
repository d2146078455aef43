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
 * takes effect for re-wrapping at once. A new form adds the active
 * version to the user's record and keeps the old one. An input already
 * under the active version confirms that version and drops the user's
 * older ones, so auth calls this again with the form it stored. Errors as
 * kms_decrypt_key, and CJ_ERR_UNAVAILABLE when Postgres fails.
 */
CJ_WARN_UNUSED enum cj_status
kms_rewrap_key(struct kms_service *svc, const char *user_id,
               const unsigned char *wrapped, size_t len, const char *request_id,
               unsigned char *out, uint32_t *kek_version, bool *changed);

/*
 * Age a data_key_versions row must reach before ListOldKeyUsers returns
 * it, in seconds. A registration lasts seconds, so a user id kms has not
 * seen for this long and that auth does not store belongs to a
 * registration that failed, not to one that has yet to commit.
 */
#define KMS_OLD_KEY_MIN_AGE_S 3600
/* Largest page ListOldKeyUsers returns. */
#define KMS_OLD_KEY_USERS_MAX 1000

/*
 * Drops every KEK version recorded for user_id, for a user whose data key
 * auth does not store. *forgotten is false when none was recorded.
 * CJ_ERR_INVALID for a missing or overlong user id, CJ_ERR_UNAVAILABLE
 * when Postgres fails.
 */
CJ_WARN_UNUSED enum cj_status kms_forget_user_key(struct kms_service *svc,
                                                  const char *user_id,
                                                  const char *request_id,
                                                  bool *forgotten);

/*
 * Lists up to max_users (1 to KMS_OLD_KEY_USERS_MAX) users after
 * after_user_id with a recorded KEK version that is retired and was
 * recorded at least KMS_OLD_KEY_MIN_AGE_S ago, as kms_store_list_old_data_keys
 * does. CJ_ERR_INVALID for a page size out of range.
 */
CJ_WARN_UNUSED enum cj_status
kms_list_old_key_users(struct kms_service *svc, const char *after_user_id,
                       unsigned max_users, char ***user_ids, size_t *count);

#endif

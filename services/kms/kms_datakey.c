/*
 * Data-key operations over the current key set. kms records, per user,
 * every KEK version that may wrap the data key auth stores, because
 * destroy-expired may remove a retired KEK only when no user still has a
 * key under it (kms cannot read auth's tables). RewrapKey drops a user's
 * older versions only when given a form under the active one, because auth
 * gives it only forms it stores. ForgetUserKey drops them all.
 */
#include "kms_datakey.h"

#include <string.h>

#include "crypto_util.h"
#include "log.h"

static bool user_id_valid(const char *user_id)
{
    size_t len = user_id != NULL ? strlen(user_id) : 0;
    return len > 0 && len <= KMS_USER_ID_MAX;
}

/*
 * Records version for user_id. With confirm, also drops the user's older
 * versions, for a form that auth has shown it stores.
 */
static enum cj_status record_version(struct kms_service *svc,
                                     const char *user_id, uint32_t version,
                                     bool confirm, const char *request_id)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st = cj_db_acquire(svc->pool, -1, &conn);

    if (st == CJ_OK && confirm)
        st = kms_store_confirm_data_key(conn, user_id, version);
    else if (st == CJ_OK)
        st = kms_store_note_data_key(conn, user_id, version);
    cj_db_release(conn);
    if (st != CJ_OK)
        cj_log(CJ_LOG_ERROR, "kms.note_data_key_failed", request_id,
               CJ_F_INT("kek_version", version), CJ_F_BOOL("confirm", confirm),
               CJ_F_STR("status", cj_status_name(st)));
    return st == CJ_OK ? CJ_OK : CJ_ERR_UNAVAILABLE;
}

static enum cj_status note_version(struct kms_service *svc, const char *user_id,
                                   uint32_t version, const char *request_id)
{
    return record_version(svc, user_id, version, false, request_id);
}

enum cj_status kms_create_user_key(struct kms_service *svc, const char *user_id,
                                   const char *request_id,
                                   unsigned char *data_key,
                                   unsigned char *wrapped,
                                   uint32_t *kek_version)
{
    struct kms_keyring *ring = NULL;
    enum cj_status st = CJ_ERR_INVALID;

    if (!user_id_valid(user_id))
        goto out;
    st = CJ_ERR_UNAVAILABLE;
    ring = kms_service_keys(svc);
    const struct kms_kek *kek = ring ? kms_keyring_active_kek(ring) : NULL;
    if (kek == NULL)
        goto out;
    cj_random_bytes(data_key, KMS_DATA_KEY_BYTES);
    st = kms_wrap_data_key(kek->key, kek->version, user_id, data_key, wrapped);
    if (st != CJ_OK)
        goto out;
    *kek_version = kek->version;
    st = note_version(svc, user_id, kek->version, request_id);
    if (st == CJ_OK)
        cj_counter_add(svc->metrics.data_keys_created, 1);
out:
    if (st != CJ_OK)
        cj_wipe(data_key, KMS_DATA_KEY_BYTES);
    kms_keyring_unref(ring);
    return st;
}

/* Logs why an unwrap failed, with key ids only, and returns CJ_ERR_CRYPTO. */
static enum cj_status unwrap_failed(struct kms_service *svc,
                                    const char *request_id, const char *reason,
                                    uint32_t version)
{
    cj_counter_add(svc->metrics.unwrap_failed, 1);
    cj_log(CJ_LOG_WARN, "kms.unwrap_failed", request_id,
           CJ_F_STR("reason", reason), CJ_F_INT("kek_version", version));
    return CJ_ERR_CRYPTO;
}

/* Opens wrapped with the KEK its header names, from ring. */
static enum cj_status open_data_key(struct kms_service *svc,
                                    const struct kms_keyring *ring,
                                    const char *user_id,
                                    const unsigned char *wrapped, size_t len,
                                    const char *request_id,
                                    unsigned char *data_key, uint32_t *version)
{
    *version = 0;
    if (kms_wrapped_data_key_version(wrapped, len, version) != CJ_OK)
        return unwrap_failed(svc, request_id, "malformed", 0);
    const struct kms_kek *kek = kms_keyring_kek(ring, *version);
    if (kek == NULL)
        return unwrap_failed(svc, request_id, "unknown_kek_version", *version);
    if (kms_unwrap_data_key(kek->key, kek->version, user_id, wrapped, len,
                            data_key) != CJ_OK)
        return unwrap_failed(svc, request_id, "tag_mismatch", *version);
    return CJ_OK;
}

enum cj_status kms_decrypt_key(struct kms_service *svc, const char *user_id,
                               const unsigned char *wrapped, size_t len,
                               const char *request_id, unsigned char *data_key,
                               uint32_t *kek_version)
{
    struct kms_keyring *ring = NULL;
    enum cj_status st = CJ_ERR_INVALID;

    if (!user_id_valid(user_id))
        goto out;
    st = CJ_ERR_UNAVAILABLE;
    ring = kms_service_keys(svc);
    if (ring == NULL)
        goto out;
    st = open_data_key(svc, ring, user_id, wrapped, len, request_id, data_key,
                       kek_version);
    if (st != CJ_OK)
        goto out;
    /* A key under an older KEK keeps that KEK alive until it is re-wrapped.
     */
    const struct kms_kek *active = kms_keyring_active_kek(ring);
    if (active == NULL || active->version != *kek_version)
        st = note_version(svc, user_id, *kek_version, request_id);
out:
    if (st != CJ_OK)
        cj_wipe(data_key, KMS_DATA_KEY_BYTES);
    kms_keyring_unref(ring);
    return st;
}

/*
 * Swaps *ring for a freshly loaded key set when Postgres has a newer KEK
 * than *ring's active one. Without it, `rewrap-keys` run right after
 * `rotate kek` would re-wrap nothing until the periodic reload.
 */
static enum cj_status use_newest_kek(struct kms_service *svc,
                                     struct kms_keyring **ring,
                                     const char *request_id)
{
    const struct kms_kek *active = kms_keyring_active_kek(*ring);
    uint32_t loaded = active != NULL ? active->version : 0;
    uint32_t newest = 0;
    struct cj_db_conn *conn = NULL;
    enum cj_status st = cj_db_acquire(svc->pool, -1, &conn);

    if (st == CJ_OK)
        st = kms_store_max_kek_version(conn, &newest);
    cj_db_release(conn);
    if (st != CJ_OK)
        return CJ_ERR_UNAVAILABLE;
    if (newest <= loaded)
        return CJ_OK;
    cj_log(CJ_LOG_INFO, "kms.reload_for_rewrap", request_id,
           CJ_F_INT("loaded_kek_version", loaded),
           CJ_F_INT("kek_version", newest));
    if (kms_service_reload(svc) != CJ_OK)
        return CJ_ERR_UNAVAILABLE;
    kms_keyring_unref(*ring);
    *ring = kms_service_keys(svc);
    return *ring != NULL ? CJ_OK : CJ_ERR_UNAVAILABLE;
}

enum cj_status kms_rewrap_key(struct kms_service *svc, const char *user_id,
                              const unsigned char *wrapped, size_t len,
                              const char *request_id, unsigned char *out,
                              uint32_t *kek_version, bool *changed)
{
    struct kms_keyring *ring = NULL;
    struct cj_secret *data_key = NULL;
    uint32_t old_version = 0;
    enum cj_status st = CJ_ERR_INVALID;

    *changed = false;
    if (!user_id_valid(user_id))
        goto out;
    st = CJ_ERR_NOMEM;
    data_key = cj_secret_new(KMS_DATA_KEY_BYTES);
    if (data_key == NULL)
        goto out;
    st = CJ_ERR_UNAVAILABLE;
    ring = kms_service_keys(svc);
    if (ring == NULL)
        goto out;
    st = use_newest_kek(svc, &ring, request_id);
    const struct kms_kek *active = ring ? kms_keyring_active_kek(ring) : NULL;
    if (st != CJ_OK || active == NULL) {
        st = CJ_ERR_UNAVAILABLE;
        goto out;
    }
    st = open_data_key(svc, ring, user_id, wrapped, len, request_id,
                       data_key->bytes, &old_version);
    if (st != CJ_OK)
        goto out;
    *kek_version = active->version;
    if (old_version == active->version) {
        /* auth presents the form it stores, and it replaces that form only
         * with a newer version, so older versions no longer wrap its key.
         * This also drops an older version that a DecryptKey racing the
         * re-wrap recorded again. */
        memcpy(out, wrapped, KMS_WRAPPED_DATA_KEY_BYTES);
        st = record_version(svc, user_id, active->version, true, request_id);
        goto out;
    }
    st = kms_wrap_data_key(active->key, active->version, user_id,
                           data_key->bytes, out);
    if (st != CJ_OK)
        goto out;
    *changed = true;
    /* The old version stays recorded because auth stores out only after
     * this returns, and that store may fail or never run. */
    st = note_version(svc, user_id, active->version, request_id);
    if (st == CJ_OK)
        cj_log(CJ_LOG_INFO, "kms.data_key_rewrapped", request_id,
               CJ_F_INT("from_kek_version", old_version),
               CJ_F_INT("kek_version", active->version));
out:
    cj_secret_free(data_key);
    kms_keyring_unref(ring);
    return st;
}

enum cj_status kms_forget_user_key(struct kms_service *svc, const char *user_id,
                                   const char *request_id, bool *forgotten)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st;

    *forgotten = false;
    if (!user_id_valid(user_id))
        return CJ_ERR_INVALID;
    st = cj_db_acquire(svc->pool, -1, &conn);
    if (st == CJ_OK)
        st = kms_store_forget_data_key(conn, user_id, forgotten);
    cj_db_release(conn);
    if (st != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "kms.forget_data_key_failed", request_id,
               CJ_F_STR("status", cj_status_name(st)));
        return CJ_ERR_UNAVAILABLE;
    }
    cj_log(CJ_LOG_INFO, "kms.data_key_forgotten", request_id,
           CJ_F_STR("user_id", user_id), CJ_F_BOOL("forgotten", *forgotten));
    return CJ_OK;
}

enum cj_status kms_list_old_key_users(struct kms_service *svc,
                                      const char *after_user_id,
                                      unsigned max_users, char ***user_ids,
                                      size_t *count)
{
    struct cj_db_conn *conn = NULL;
    size_t after_len = after_user_id != NULL ? strlen(after_user_id) : 0;
    enum cj_status st;

    *user_ids = NULL;
    *count = 0;
    if (max_users == 0 || max_users > KMS_OLD_KEY_USERS_MAX ||
        after_len > KMS_USER_ID_MAX)
        return CJ_ERR_INVALID;
    st = cj_db_acquire(svc->pool, -1, &conn);
    if (st == CJ_OK)
        st = kms_store_list_old_data_keys(
            conn, after_user_id != NULL ? after_user_id : "",
            KMS_OLD_KEY_MIN_AGE_S, max_users, user_ids, count);
    cj_db_release(conn);
    if (st != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "kms.list_old_key_users_failed", NULL,
               CJ_F_STR("status", cj_status_name(st)));
        return CJ_ERR_UNAVAILABLE;
    }
    return CJ_OK;
}

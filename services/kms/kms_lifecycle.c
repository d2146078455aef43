/*
 * Creating, rotating and destroying keys. New keys are generated here,
 * wrapped under the root key and handed to kms_store.c inside one
 * transaction that holds the key-set lock.
 */
#include "kms_lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto_util.h"
#include "kms_keys.h"
#include "kms_wrap.h"
#include "log.h"
#include "migrate.h"
#include "migrations_list.h"
#include "x25519.h"

static const char *const purpose_names[] = {
    [KMS_PURPOSE_SIGNING] = "signing",
    [KMS_PURPOSE_HPKE] = "hpke",
    [KMS_PURPOSE_KEK] = "kek",
    [KMS_PURPOSE_KEYLIST] = "keylist",
};

bool kms_purpose_parse(const char *name, enum kms_purpose *out)
{
    for (size_t i = 0; i < sizeof(purpose_names) / sizeof(purpose_names[0]);
         i++) {
        if (strcmp(name, purpose_names[i]) == 0) {
            *out = (enum kms_purpose)i;
            return true;
        }
    }
    return false;
}

const char *kms_purpose_name(enum kms_purpose purpose)
{
    if ((unsigned)purpose >= sizeof(purpose_names) / sizeof(purpose_names[0]))
        return "unknown";
    return purpose_names[purpose];
}

/* Wraps plain under the root key into a new malloc buffer *out. */
static enum cj_status wrap_new(const struct kms_lifecycle *lc,
                               const char *label, const unsigned char *plain,
                               size_t len, unsigned char **out, size_t *out_len)
{
    *out_len = kms_stored_wrap_len(len);
    *out = malloc(*out_len);
    if (*out == NULL)
        return CJ_ERR_NOMEM;
    enum cj_status st =
        kms_wrap_stored(lc->root->bytes, label, plain, len, *out);
    if (st != CJ_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

static enum cj_status create_kek(const struct kms_lifecycle *lc,
                                 struct cj_db_conn *conn, uint32_t *version)
{
    char label[KMS_LABEL_MAX + 1];
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_secret *key = cj_secret_new(KMS_WRAP_KEY_BYTES);

    if (key == NULL)
        goto out;
    st = kms_store_max_kek_version(conn, version);
    if (st != CJ_OK)
        goto out;
    (*version)++;
    cj_random_bytes(key->bytes, key->len);
    kms_label_kek(label, *version);
    st = wrap_new(lc, label, key->bytes, key->len, &wrapped, &wrapped_len);
    if (st == CJ_OK)
        st = kms_store_insert_kek(conn, *version, wrapped, wrapped_len);
out:
    free(wrapped);
    cj_secret_free(key);
    return st;
}

static enum cj_status create_signing(const struct kms_lifecycle *lc,
                                     struct cj_db_conn *conn,
                                     enum kms_state state,
                                     char kid[KMS_KID_MAX + 1])
{
    char label[KMS_LABEL_MAX + 1];
    struct cj_jwk *jwk = NULL;
    unsigned char *priv = NULL;
    size_t priv_len = 0;
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    char *public_jwk = NULL;
    enum cj_status st = cj_jwk_generate(lc->signing_alg, &jwk);

    if (st != CJ_OK)
        goto out;
    snprintf(kid, KMS_KID_MAX + 1, "%s", cj_jwk_get_kid(jwk));
    st = cj_jwk_export_private(jwk, &priv, &priv_len);
    if (st != CJ_OK)
        goto out;
    st = cj_jwk_to_json(jwk, &public_jwk);
    if (st != CJ_OK)
        goto out;
    kms_label_signing(label, kid);
    st = wrap_new(lc, label, priv, priv_len, &wrapped, &wrapped_len);
    if (st != CJ_OK)
        goto out;
    st = kms_store_insert_signing(conn, kid, cj_jwk_alg_name(lc->signing_alg),
                                  state, public_jwk, wrapped, wrapped_len);
out:
    cj_jwk_private_bytes_free(priv, priv_len);
    free(wrapped);
    free(public_jwk);
    cj_jwk_free(jwk);
    return st;
}

static enum cj_status create_hpke(const struct kms_lifecycle *lc,
                                  struct cj_db_conn *conn, uint8_t *key_id)
{
    char label[KMS_LABEL_MAX + 1];
    unsigned char pk[CJ_X25519_KEY_LEN];
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_secret *sk = cj_secret_new(CJ_X25519_KEY_LEN);

    if (sk == NULL)
        goto out;
    st = cj_x25519_keygen(sk->bytes, pk);
    if (st != CJ_OK)
        goto out;
    kms_label_hpke(label, pk);
    st = wrap_new(lc, label, sk->bytes, sk->len, &wrapped, &wrapped_len);
    if (st != CJ_OK)
        goto out;
    st = kms_store_insert_hpke(conn, lc->hpke_aead_ids, lc->n_hpke_aead_ids, pk,
                               lc->hpke_accept_s, lc->hpke_destroy_s, key_id,
                               wrapped, wrapped_len);
out:
    free(wrapped);
    cj_secret_free(sk);
    return st;
}

static enum cj_status create_signer(const struct kms_lifecycle *lc,
                                    struct cj_db_conn *conn,
                                    char fp[KMS_FINGERPRINT_LEN + 1])
{
    char label[KMS_LABEL_MAX + 1];
    struct cj_jwk *jwk = NULL;
    unsigned char *seed = NULL;
    size_t seed_len = 0;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char *wrapped = NULL;
    size_t wrapped_len = 0;
    enum cj_status st = CJ_ERR_NOMEM;
    struct cj_secret *sk = cj_secret_new(crypto_sign_SECRETKEYBYTES);

    if (sk == NULL)
        goto out;
    st = cj_jwk_generate(CJ_JWK_ALG_EDDSA, &jwk);
    if (st != CJ_OK)
        goto out;
    st = cj_jwk_export_private(jwk, &seed, &seed_len);
    if (st != CJ_OK)
        goto out;
    /* The raw public key, for the row, from the same 32-byte seed. */
    st = CJ_ERR_INTERNAL;
    if (seed_len != crypto_sign_SEEDBYTES ||
        crypto_sign_seed_keypair(pk, sk->bytes, seed) != 0)
        goto out;
    /* The fingerprint clients pin is the RFC 7638 thumbprint. */
    snprintf(fp, KMS_FINGERPRINT_LEN + 1, "%s", cj_jwk_get_kid(jwk));
    kms_label_signer(label, fp);
    st = wrap_new(lc, label, seed, seed_len, &wrapped, &wrapped_len);
    if (st != CJ_OK)
        goto out;
    st = kms_store_insert_signer(conn, fp, pk, wrapped, wrapped_len);
out:
    cj_jwk_private_bytes_free(seed, seed_len);
    free(wrapped);
    cj_jwk_free(jwk);
    cj_secret_free(sk);
    return st;
}

/* Loads every key and checks that it opens under root. */
static enum cj_status check_root(struct cj_db_conn *conn,
                                 const unsigned char *root)
{
    struct kms_key_rows rows = {0};
    struct kms_keyring *ring = NULL;
    char failed[KMS_LABEL_MAX + 1];
    enum cj_status st = kms_store_load(conn, &rows);

    if (st == CJ_OK)
        st = kms_keyring_build(&rows, root, 0, 0, &ring, failed);
    kms_keyring_unref(ring);
    kms_key_rows_free(&rows);
    return st;
}

/*
 * Borrows a connection, begins and takes the key-set lock. With
 * check_root, also proves that the configured root key opens every stored
 * key, so that a command run with a stale root key (after rewrap-root)
 * cannot add a key wrapped under it.
 */
static enum cj_status begin_locked(const struct kms_lifecycle *lc,
                                   bool check_root_key,
                                   struct cj_db_conn **conn)
{
    enum cj_status st = cj_db_acquire(lc->pool, -1, conn);

    if (st != CJ_OK)
        return st;
    st = cj_db_begin(*conn);
    if (st == CJ_OK)
        st = kms_store_lock_keys(*conn);
    if (st == CJ_OK && check_root_key) {
        st = check_root(*conn, lc->root->bytes);
        /* Only a stored key that does not open is a mismatch. The caller
         * reports a failed query. */
        if (st == CJ_ERR_CRYPTO)
            cj_log(CJ_LOG_ERROR, "kms.root_key_mismatch", NULL,
                   CJ_F_STR("status", cj_status_name(st)));
    }
    if (st != CJ_OK) {
        cj_db_release(*conn); /* rolls back */
        *conn = NULL;
    }
    return st;
}

/* Commits on CJ_OK and gives the connection back; cj_db_release rolls an
 * uncommitted transaction back. */
static enum cj_status finish(struct cj_db_conn *conn, enum cj_status st)
{
    if (conn == NULL)
        return st;
    if (st == CJ_OK)
        st = cj_db_commit(conn);
    cj_db_release(conn);
    return st;
}

static const char *const kms_migrations[] = {CJ_MIGRATIONS_KMS};

enum cj_status kms_schema_check(const struct kms_lifecycle *lc, char *missing,
                                size_t missing_size)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st = cj_db_acquire(lc->pool, -1, &conn);

    if (missing_size > 0)
        missing[0] = '\0';
    if (st != CJ_OK)
        return st;
    st = cj_migrate_check_applied(conn, "kms", kms_migrations,
                                  sizeof(kms_migrations) /
                                      sizeof(*kms_migrations),
                                  missing, missing_size);
    cj_db_release(conn);
    if (st == CJ_ERR_PRECONDITION)
        cj_log(CJ_LOG_ERROR, "kms.schema_missing", NULL,
               CJ_F_STR("schema", "kms"), CJ_F_STR("missing", missing),
               CJ_F_STR("action", "run cerrojo-migrate up"));
    return st;
}

enum cj_status kms_bootstrap(const struct kms_lifecycle *lc)
{
    struct cj_db_conn *conn = NULL;
    struct kms_missing missing = {0};
    char kid[KMS_KID_MAX + 1] = "";
    char fp[KMS_FINGERPRINT_LEN + 1] = "";
    uint32_t version = 0;
    uint8_t key_id = 0;
    enum cj_status st = begin_locked(lc, true, &conn);

    if (st != CJ_OK)
        return st;
    st = kms_store_missing(conn, &missing);
    if (st == CJ_OK && missing.kek)
        st = create_kek(lc, conn, &version);
    /* The first signing key is active at once: nothing else can sign. */
    if (st == CJ_OK && missing.signing)
        st = create_signing(lc, conn, KMS_STATE_ACTIVE, kid);
    if (st == CJ_OK && missing.hpke)
        st = create_hpke(lc, conn, &key_id);
    if (st == CJ_OK && missing.signer)
        st = create_signer(lc, conn, fp);
    st = finish(conn, st);
    if (st != CJ_OK)
        return st;

    if (missing.kek)
        cj_log(CJ_LOG_WARN, "kms.key_created", NULL, CJ_F_STR("purpose", "kek"),
               CJ_F_INT("version", version));
    if (missing.signing)
        cj_log(CJ_LOG_WARN, "kms.key_created", NULL,
               CJ_F_STR("purpose", "signing"), CJ_F_STR("kid", kid),
               CJ_F_STR("alg", cj_jwk_alg_name(lc->signing_alg)));
    if (missing.hpke)
        cj_log(CJ_LOG_WARN, "kms.key_created", NULL,
               CJ_F_STR("purpose", "hpke"), CJ_F_INT("key_id", key_id));
    if (missing.signer)
        cj_log(CJ_LOG_WARN, "kms.key_created", NULL,
               CJ_F_STR("purpose", "keylist"), CJ_F_STR("fingerprint", fp));
    return CJ_OK;
}

enum cj_status kms_rotate(const struct kms_lifecycle *lc,
                          enum kms_purpose purpose,
                          char new_key[KMS_KID_MAX + 1])
{
    struct cj_db_conn *conn = NULL;
    char id[KMS_KID_MAX + 1] = "";
    uint32_t version = 0;
    uint8_t key_id = 0;
    enum cj_status st = begin_locked(lc, true, &conn);

    if (st != CJ_OK)
        return st;
    switch (purpose) {
    case KMS_PURPOSE_SIGNING:
        st = create_signing(lc, conn, KMS_STATE_NEXT, id);
        break;
    case KMS_PURPOSE_HPKE:
        st = create_hpke(lc, conn, &key_id);
        snprintf(id, sizeof(id), "%u", (unsigned)key_id);
        break;
    case KMS_PURPOSE_KEK:
        st = create_kek(lc, conn, &version);
        snprintf(id, sizeof(id), "%u", (unsigned)version);
        break;
    case KMS_PURPOSE_KEYLIST:
        st = create_signer(lc, conn, id);
        break;
    default:
        st = CJ_ERR_INVALID;
    }
    st = finish(conn, st);
    if (st == CJ_OK && new_key != NULL)
        memcpy(new_key, id, sizeof(id));
    if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.key_rotated", NULL,
               CJ_F_STR("purpose", kms_purpose_name(purpose)),
               CJ_F_STR("new_key", id));
    else
        cj_log(CJ_LOG_ERROR, "kms.key_rotation_failed", NULL,
               CJ_F_STR("purpose", kms_purpose_name(purpose)),
               CJ_F_STR("status", cj_status_name(st)));
    return st;
}

enum cj_status kms_promote(const struct kms_lifecycle *lc,
                           char kid[KMS_KID_MAX + 1],
                           char previous[KMS_KID_MAX + 1], int64_t *ready_at)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st;

    *ready_at = 0;
    kid[0] = '\0';
    previous[0] = '\0';
    st = begin_locked(lc, false, &conn);
    if (st != CJ_OK)
        return st;
    st = kms_store_promote_signing(conn, lc->promote_after_s, kid, previous,
                                   ready_at);
    st = finish(conn, st);
    if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.key_promoted", NULL,
               CJ_F_STR("purpose", "signing"), CJ_F_STR("kid", kid),
               CJ_F_STR("retired_kid", previous));
    else if (st == CJ_ERR_PRECONDITION)
        cj_log(CJ_LOG_WARN, "kms.promote_too_early", NULL, CJ_F_STR("kid", kid),
               CJ_F_INT("ready_at", *ready_at));
    return st;
}

enum cj_status kms_retire(const struct kms_lifecycle *lc,
                          enum kms_purpose purpose, unsigned *count,
                          char key[KMS_KID_MAX + 1])
{
    struct cj_db_conn *conn = NULL;
    char id[KMS_KID_MAX + 1] = "";
    enum cj_status st;

    *count = 0;
    if (key != NULL)
        key[0] = '\0';
    if (purpose == KMS_PURPOSE_KEK)
        return CJ_ERR_INVALID;
    st = begin_locked(lc, false, &conn);
    if (st != CJ_OK)
        return st;
    /* The signing and key-list cases retire exactly one key or fail. */
    if (purpose == KMS_PURPOSE_SIGNING)
        st = kms_store_retire_next_signing(conn, id);
    else if (purpose == KMS_PURPOSE_HPKE)
        st = kms_store_retire_hpke(conn, count, id);
    else
        st = kms_store_retire_previous_signer(conn, id);
    if (st == CJ_OK && purpose != KMS_PURPOSE_HPKE)
        *count = 1;
    st = finish(conn, st);
    if (st == CJ_OK && key != NULL)
        memcpy(key, id, sizeof(id));
    /* Ending no window changes nothing, so it is no security event. */
    if (st == CJ_OK && *count > 0)
        cj_log(CJ_LOG_WARN, "kms.key_retired", NULL,
               CJ_F_STR("purpose", kms_purpose_name(purpose)),
               CJ_F_STR("key", id), CJ_F_INT("count", *count));
    return st;
}

/* Puts a key in place of a destroyed active one: the next key when there
 * is one, else a new key, active at once. */
static enum cj_status replace_active(const struct kms_lifecycle *lc,
                                     struct cj_db_conn *conn,
                                     char kid[KMS_KID_MAX + 1])
{
    enum cj_status st = kms_store_activate_next_signing(conn, kid);

    if (st == CJ_ERR_NOT_FOUND)
        st = create_signing(lc, conn, KMS_STATE_ACTIVE, kid);
    return st;
}

/* Destroys kid and fills result, inside the caller's transaction. */
static enum cj_status destroy_signing_locked(const struct kms_lifecycle *lc,
                                             struct cj_db_conn *conn,
                                             const char *kid,
                                             struct kms_signing_destroy *result)
{
    enum kms_state previous = KMS_STATE_DESTROYED;
    enum cj_status st = kms_store_destroy_signing_now(conn, kid, &previous);

    if (st != CJ_OK)
        return st;
    result->already_destroyed = previous == KMS_STATE_DESTROYED;
    result->was_active = previous == KMS_STATE_ACTIVE;
    if (result->was_active)
        return replace_active(lc, conn, result->active_kid);
    return kms_store_active_signing_kid(conn, result->active_kid);
}

enum cj_status kms_destroy_signing(const struct kms_lifecycle *lc,
                                   const char *kid,
                                   struct kms_signing_destroy *result)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st;

    memset(result, 0, sizeof(*result));
    st = begin_locked(lc, false, &conn);
    if (st != CJ_OK)
        return st;
    st = destroy_signing_locked(lc, conn, kid, result);
    st = finish(conn, st);
    /* Destroying a destroyed key changes nothing, so it is no security
     * event. */
    if (st == CJ_OK && result->already_destroyed)
        cj_log(CJ_LOG_INFO, "kms.signing_key_already_destroyed", NULL,
               CJ_F_STR("kid", kid));
    else if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.signing_key_destroyed", NULL,
               CJ_F_STR("kid", kid),
               CJ_F_BOOL("was_active", result->was_active),
               CJ_F_STR("active_kid", result->active_kid));
    else
        cj_log(CJ_LOG_ERROR, "kms.signing_key_destroy_failed", NULL,
               CJ_F_STR("kid", kid), CJ_F_STR("status", cj_status_name(st)));
    return st;
}

enum cj_status kms_destroy_expired(const struct kms_lifecycle *lc,
                                   struct kms_destroy_report *report)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status st = begin_locked(lc, false, &conn);

    if (st != CJ_OK)
        return st;
    st = kms_store_destroy_expired(conn, lc->leeway_s, lc->settle_s, report);
    st = finish(conn, st);
    if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.keys_destroyed", NULL,
               CJ_F_INT("hpke", report->hpke),
               CJ_F_INT("signing", report->signing),
               CJ_F_INT("kek", report->kek));
    return st;
}

/* Opens one stored key with the old root and stores it under the new. */
static enum cj_status rewrap_one(const struct kms_lifecycle *lc,
                                 struct cj_db_conn *conn,
                                 const unsigned char *new_root,
                                 enum kms_key_kind kind, const char *id,
                                 const char *label, const struct kms_blob *blob)
{
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    unsigned char *wrapped = NULL;
    enum cj_status st = kms_unwrap_stored(lc->root->bytes, label, blob->bytes,
                                          blob->len, &plain, &plain_len);

    if (st != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "kms.rewrap_root_unwrap_failed", NULL,
               CJ_F_STR("key", label));
        goto out;
    }
    st = CJ_ERR_NOMEM;
    wrapped = malloc(kms_stored_wrap_len(plain_len));
    if (wrapped == NULL)
        goto out;
    st = kms_wrap_stored(new_root, label, plain, plain_len, wrapped);
    if (st == CJ_OK)
        st = kms_store_replace_wrapped(conn, kind, id, wrapped,
                                       kms_stored_wrap_len(plain_len));
out:
    sodium_free(plain);
    free(wrapped);
    return st;
}

static enum cj_status rewrap_rows(const struct kms_lifecycle *lc,
                                  struct cj_db_conn *conn,
                                  const struct kms_key_rows *rows,
                                  const unsigned char *new_root,
                                  unsigned *count)
{
    char label[KMS_LABEL_MAX + 1];
    char id[32];
    enum cj_status st = CJ_OK;

    for (size_t i = 0; st == CJ_OK && i < rows->n_keks; i++) {
        snprintf(id, sizeof(id), "%u", (unsigned)rows->keks[i].version);
        kms_label_kek(label, rows->keks[i].version);
        st = rewrap_one(lc, conn, new_root, KMS_KIND_KEK, id, label,
                        &rows->keks[i].wrapped);
        *count += st == CJ_OK;
    }
    for (size_t i = 0; st == CJ_OK && i < rows->n_signing; i++) {
        kms_label_signing(label, rows->signing[i].kid);
        st = rewrap_one(lc, conn, new_root, KMS_KIND_SIGNING,
                        rows->signing[i].kid, label, &rows->signing[i].wrapped);
        *count += st == CJ_OK;
    }
    for (size_t i = 0; st == CJ_OK && i < rows->n_hpke; i++) {
        snprintf(id, sizeof(id), "%lld", (long long)rows->hpke[i].id);
        kms_label_hpke(label, rows->hpke[i].public_key);
        st = rewrap_one(lc, conn, new_root, KMS_KIND_HPKE, id, label,
                        &rows->hpke[i].wrapped);
        *count += st == CJ_OK;
    }
    for (size_t i = 0; st == CJ_OK && i < rows->n_signers; i++) {
        kms_label_signer(label, rows->signers[i].fingerprint);
        st = rewrap_one(lc, conn, new_root, KMS_KIND_SIGNER,
                        rows->signers[i].fingerprint, label,
                        &rows->signers[i].wrapped);
        *count += st == CJ_OK;
    }
    return st;
}

enum cj_status kms_rewrap_root(const struct kms_lifecycle *lc,
                               const unsigned char *new_root, unsigned *count)
{
    struct cj_db_conn *conn = NULL;
    struct kms_key_rows rows = {0};
    enum cj_status st = begin_locked(lc, false, &conn);

    *count = 0;
    if (st != CJ_OK)
        return st;
    st = kms_store_load(conn, &rows);
    if (st == CJ_OK)
        st = rewrap_rows(lc, conn, &rows, new_root, count);
    /* Prove the new root opens everything before the commit makes it so. */
    if (st == CJ_OK)
        st = check_root(conn, new_root);
    kms_key_rows_free(&rows);
    st = finish(conn, st);
    if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.root_key_rewrapped", NULL,
               CJ_F_INT("keys", *count));
    else
        cj_log(CJ_LOG_ERROR, "kms.root_key_rewrap_failed", NULL,
               CJ_F_STR("status", cj_status_name(st)));
    return st;
}

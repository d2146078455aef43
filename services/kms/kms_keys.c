/*
 * Building, sharing and freeing the in-memory key set: each stored key is
 * opened with the root key under its label, checked against its row, and
 * wiped when the last reference goes.
 */
#include "kms_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto_util.h"
#include "x25519.h"

void kms_label_kek(char *buf, uint32_t version)
{
    snprintf(buf, KMS_LABEL_MAX + 1, "kek/%u", (unsigned)version);
}

void kms_label_signing(char *buf, const char *kid)
{
    snprintf(buf, KMS_LABEL_MAX + 1, "signing/%s", kid);
}

void kms_label_hpke(char *buf, const unsigned char *public_key)
{
    char b64[sodium_base64_ENCODED_LEN(
        KMS_HPKE_PK_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

    sodium_bin2base64(b64, sizeof(b64), public_key, KMS_HPKE_PK_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(buf, KMS_LABEL_MAX + 1, "hpke/%s", b64);
}

void kms_label_signer(char *buf, const char *fingerprint)
{
    snprintf(buf, KMS_LABEL_MAX + 1, "keylist/%s", fingerprint);
}

static void keyring_free(struct kms_keyring *ring)
{
    for (size_t i = 0; i < ring->n_keks; i++)
        sodium_free(ring->keks[i].key);
    for (size_t i = 0; i < ring->n_signing; i++)
        cj_jwk_free(ring->signing[i].jwk);
    for (size_t i = 0; i < ring->n_hpke; i++)
        sodium_free(ring->hpke[i].private_key);
    for (size_t i = 0; i < ring->n_signers; i++)
        cj_jwk_free(ring->signers[i].jwk);
    free(ring->keks);
    free(ring->signing);
    free(ring->hpke);
    free(ring->signers);
    free(ring->jwks_json);
    free(ring);
}

struct kms_keyring *kms_keyring_ref(struct kms_keyring *ring)
{
    atomic_fetch_add(&ring->refs, 1);
    return ring;
}

void kms_keyring_unref(struct kms_keyring *ring)
{
    if (ring != NULL && atomic_fetch_sub(&ring->refs, 1) == 1)
        keyring_free(ring);
}

static enum cj_status open_keks(const struct kms_key_rows *rows,
                                const unsigned char *root,
                                struct kms_keyring *ring, char *label)
{
    for (size_t i = 0; i < rows->n_keks; i++) {
        const struct kms_kek_row *row = &rows->keks[i];
        size_t len = 0;
        unsigned char *key = NULL;

        kms_label_kek(label, row->version);
        enum cj_status st = kms_unwrap_stored(root, label, row->wrapped.bytes,
                                              row->wrapped.len, &key, &len);
        if (st == CJ_OK && len != KMS_WRAP_KEY_BYTES) {
            sodium_free(key);
            st = CJ_ERR_CRYPTO;
        }
        if (st != CJ_OK)
            return st;
        ring->keks[ring->n_keks++] = (struct kms_kek){
            .version = row->version, .state = row->state, .key = key};
    }
    return CJ_OK;
}

static enum cj_status open_signing(const struct kms_key_rows *rows,
                                   const unsigned char *root,
                                   struct kms_keyring *ring, char *label)
{
    for (size_t i = 0; i < rows->n_signing; i++) {
        const struct kms_signing_row *row = &rows->signing[i];
        struct kms_signing_key *key = &ring->signing[ring->n_signing];
        enum cj_jwk_alg alg;
        unsigned char *der = NULL;
        size_t len = 0;

        kms_label_signing(label, row->kid);
        if (!cj_jwk_alg_parse(row->algorithm, &alg))
            return CJ_ERR_INTERNAL;
        enum cj_status st = kms_unwrap_stored(root, label, row->wrapped.bytes,
                                              row->wrapped.len, &der, &len);
        if (st != CJ_OK)
            return st;
        st = cj_jwk_import_private(alg, der, len, &key->jwk);
        sodium_free(der);
        if (st != CJ_OK)
            return CJ_ERR_CRYPTO;
        ring->n_signing++;
        /* The kid is the key's own thumbprint, so a row cannot rename it. */
        if (strcmp(cj_jwk_get_kid(key->jwk), row->kid) != 0)
            return CJ_ERR_CRYPTO;
        memcpy(key->kid, row->kid, sizeof(key->kid));
        key->state = row->state;
        key->published_at = row->published_at;
        key->retired_at = row->retired_at;
        key->last_token_expires_at = row->last_token_expires_at;
        atomic_store(&key->noted_expiry, row->last_token_expires_at);
    }
    return CJ_OK;
}

static enum cj_status open_hpke(const struct kms_key_rows *rows,
                                const unsigned char *root,
                                struct kms_keyring *ring, char *label)
{
    for (size_t i = 0; i < rows->n_hpke; i++) {
        const struct kms_hpke_row *row = &rows->hpke[i];
        unsigned char *sk = NULL;
        unsigned char pk[CJ_X25519_KEY_LEN];
        size_t len = 0;

        kms_label_hpke(label, row->public_key);
        enum cj_status st = kms_unwrap_stored(root, label, row->wrapped.bytes,
                                              row->wrapped.len, &sk, &len);
        if (st != CJ_OK)
            return st;
        /* The private key must match the public key that clients use. */
        if (len != CJ_X25519_KEY_LEN || cj_x25519_public(pk, sk) != CJ_OK ||
            !cj_ct_equal(pk, row->public_key, sizeof(pk))) {
            sodium_free(sk);
            return CJ_ERR_CRYPTO;
        }
        struct kms_hpke_key *key = &ring->hpke[ring->n_hpke++];
        key->row_id = row->id;
        key->key_id = row->key_id;
        key->kem_id = row->kem_id;
        key->kdf_id = row->kdf_id;
        memcpy(key->aead_ids, row->aead_ids, sizeof(key->aead_ids));
        key->n_aead_ids = row->n_aead_ids;
        key->state = row->state;
        key->created_at = row->created_at;
        key->accept_until = row->accept_until;
        key->private_key = sk;
        memcpy(key->public_key, row->public_key, sizeof(key->public_key));
    }
    return CJ_OK;
}

static enum cj_status open_signers(const struct kms_key_rows *rows,
                                   const unsigned char *root,
                                   struct kms_keyring *ring, char *label)
{
    for (size_t i = 0; i < rows->n_signers; i++) {
        const struct kms_signer_row *row = &rows->signers[i];
        struct kms_list_signer *signer = &ring->signers[ring->n_signers];
        unsigned char *seed = NULL;
        size_t len = 0;

        kms_label_signer(label, row->fingerprint);
        enum cj_status st = kms_unwrap_stored(root, label, row->wrapped.bytes,
                                              row->wrapped.len, &seed, &len);
        if (st != CJ_OK)
            return st;
        st = cj_jwk_import_private(CJ_JWK_ALG_EDDSA, seed, len, &signer->jwk);
        sodium_free(seed);
        if (st != CJ_OK)
            return CJ_ERR_CRYPTO;
        ring->n_signers++;
        if (strcmp(cj_jwk_get_kid(signer->jwk), row->fingerprint) != 0)
            return CJ_ERR_CRYPTO;
        memcpy(signer->fingerprint, row->fingerprint,
               sizeof(signer->fingerprint));
        signer->state = row->state;
    }
    return CJ_OK;
}

/*
 * Builds the JWKS: next and active keys, and retired keys until the last
 * token they signed has expired (plus the verifiers' clock leeway).
 */
static enum cj_status build_jwks(struct kms_keyring *ring, int64_t now_s,
                                 int64_t leeway_s)
{
    const struct cj_jwk *keys[CJ_JWKS_MAX_KEYS];
    size_t n = 0;

    for (size_t i = 0; i < ring->n_signing && n < CJ_JWKS_MAX_KEYS; i++) {
        const struct kms_signing_key *key = &ring->signing[i];
        bool live = key->state == KMS_STATE_NEXT ||
                    key->state == KMS_STATE_ACTIVE ||
                    (key->state == KMS_STATE_RETIRED &&
                     key->last_token_expires_at + leeway_s > now_s);
        if (live)
            keys[n++] = key->jwk;
    }
    return cj_jwks_to_json(keys, n, &ring->jwks_json);
}

enum cj_status kms_keyring_build(const struct kms_key_rows *rows,
                                 const unsigned char *root, int64_t now_s,
                                 int64_t leeway_s, struct kms_keyring **out,
                                 char failed_label[KMS_LABEL_MAX + 1])
{
    enum cj_status st = CJ_ERR_NOMEM;
    struct kms_keyring *ring = calloc(1, sizeof(*ring));

    failed_label[0] = '\0';
    if (ring == NULL)
        goto out;
    atomic_init(&ring->refs, 1);
    ring->loaded_at = now_s;
    ring->keks = calloc(rows->n_keks + 1, sizeof(*ring->keks));
    ring->signing = calloc(rows->n_signing + 1, sizeof(*ring->signing));
    ring->hpke = calloc(rows->n_hpke + 1, sizeof(*ring->hpke));
    ring->signers = calloc(rows->n_signers + 1, sizeof(*ring->signers));
    if (ring->keks == NULL || ring->signing == NULL || ring->hpke == NULL ||
        ring->signers == NULL)
        goto out;

    st = open_keks(rows, root, ring, failed_label);
    if (st == CJ_OK)
        st = open_signing(rows, root, ring, failed_label);
    if (st == CJ_OK)
        st = open_hpke(rows, root, ring, failed_label);
    if (st == CJ_OK)
        st = open_signers(rows, root, ring, failed_label);
    if (st != CJ_OK)
        goto out;
    failed_label[0] = '\0';
    st = build_jwks(ring, now_s, leeway_s);
    if (st != CJ_OK)
        goto out;
    *out = ring;
    ring = NULL;
out:
    if (ring != NULL)
        keyring_free(ring);
    return st;
}

const struct kms_kek *kms_keyring_active_kek(const struct kms_keyring *ring)
{
    for (size_t i = 0; i < ring->n_keks; i++) {
        if (ring->keks[i].state == KMS_STATE_ACTIVE)
            return &ring->keks[i];
    }
    return NULL;
}

const struct kms_kek *kms_keyring_kek(const struct kms_keyring *ring,
                                      uint32_t version)
{
    for (size_t i = 0; i < ring->n_keks; i++) {
        if (ring->keks[i].version == version)
            return &ring->keks[i];
    }
    return NULL;
}

struct kms_signing_key *
kms_keyring_active_signing(const struct kms_keyring *ring)
{
    for (size_t i = 0; i < ring->n_signing; i++) {
        if (ring->signing[i].state == KMS_STATE_ACTIVE)
            return &ring->signing[i];
    }
    return NULL;
}

const struct kms_hpke_key *kms_keyring_hpke(const struct kms_keyring *ring,
                                            uint8_t key_id)
{
    for (size_t i = 0; i < ring->n_hpke; i++) {
        if (ring->hpke[i].key_id == key_id)
            return &ring->hpke[i];
    }
    return NULL;
}

const struct kms_list_signer *kms_keyring_signer(const struct kms_keyring *ring,
                                                 enum kms_state state)
{
    for (size_t i = 0; i < ring->n_signers; i++) {
        if (ring->signers[i].state == state)
            return &ring->signers[i];
    }
    return NULL;
}

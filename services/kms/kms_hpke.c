/*
 * OpenSealed and ListPublicKeys over the current key set. Every loaded key
 * opens requests, a retired one until its accept_until time, and an unknown
 * key id reloads the key set on demand. The key list names a new key only
 * once every replica has had time to load it, and shows older keys that
 * still open requests as "retired".
 */
#include "kms_hpke.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto_util.h"
#include "envelope_stateless.h"
#include "jws.h"
#include "log.h"

static bool key_offers(const struct kms_hpke_key *key, uint16_t aead_id)
{
    for (size_t i = 0; i < key->n_aead_ids; i++) {
        if (key->aead_ids[i] == aead_id)
            return true;
    }
    return false;
}

/* Whether a key still opens requests at now_s. */
static bool key_accepts(const struct kms_hpke_key *key, int64_t now_s)
{
    return key->state == KMS_STATE_ACTIVE ||
           (key->state == KMS_STATE_RETIRED && now_s < key->accept_until);
}

/* Counts and logs a failed open. reload names the outcome of an on-demand
 * reload, or is NULL (logged as null) when none was tried. */
static enum cj_status open_failed(struct kms_service *svc,
                                  const char *request_id, const char *reason,
                                  uint32_t key_id, const char *reload)
{
    cj_counter_add(svc->metrics.sealed_failed, 1);
    cj_log(CJ_LOG_WARN, "kms.open_failed", request_id,
           CJ_F_STR("reason", reason), CJ_F_INT("key_id", key_id),
           CJ_F_STR("reload", reload));
    return CJ_ERR_CRYPTO;
}

/*
 * Reloads the key set for key_id, which *ring does not contain, and looks
 * the key up again. After a reload *ring is the new key set, which the
 * caller unrefs as before. Returns NULL, after counting and logging the
 * failure with the outcome of the reload, when the key is still unknown.
 */
static const struct kms_hpke_key *reload_for_key(struct kms_service *svc,
                                                 const char *request_id,
                                                 uint8_t key_id,
                                                 struct kms_keyring **ring)
{
    const struct kms_hpke_key *key = NULL;
    enum kms_reload_outcome outcome =
        kms_service_reload_on_demand(svc, request_id, key_id);

    if (outcome == KMS_RELOAD_DONE) {
        kms_keyring_unref(*ring);
        *ring = kms_service_keys(svc);
        key = *ring != NULL ? kms_keyring_hpke(*ring, key_id) : NULL;
    }
    if (key == NULL) {
        (void)open_failed(svc, request_id, "unknown_key_id", key_id,
                          kms_reload_outcome_name(outcome));
    }
    return key;
}

enum cj_status kms_open_sealed(struct kms_service *svc,
                               const struct kms_sealed_request *req,
                               const char *request_id, uint8_t **pt,
                               size_t *pt_len, uint8_t *secret,
                               size_t *secret_len)
{
    struct kms_keyring *ring = NULL;
    enum cj_seal_reason reason = CJ_SEAL_OK;
    enum cj_status st = CJ_ERR_INVALID;
    struct cj_stateless_header hdr = {
        .version = (uint8_t)req->version,
        .key_id = (uint8_t)req->key_id,
        .suite = {.kem_id = (uint16_t)req->kem_id,
                  .kdf_id = (uint16_t)req->kdf_id,
                  .aead_id = (uint16_t)req->aead_id},
    };

    *pt = NULL;
    *pt_len = 0;
    if (req->version > UINT8_MAX || req->key_id > UINT8_MAX ||
        req->kem_id > UINT16_MAX || req->kdf_id > UINT16_MAX ||
        req->aead_id > UINT16_MAX ||
        cj_stateless_header_check(&hdr, &reason) != CJ_OK) {
        cj_log(CJ_LOG_WARN, "kms.open_rejected", request_id,
               CJ_F_STR("reason", cj_seal_reason_name(reason)));
        goto out;
    }
    st = CJ_ERR_UNAVAILABLE;
    ring = kms_service_keys(svc);
    if (ring == NULL)
        goto out;
    const struct kms_hpke_key *key = kms_keyring_hpke(ring, hdr.key_id);
    if (key == NULL) {
        key = reload_for_key(svc, request_id, hdr.key_id, &ring);
    }
    if (key == NULL) {
        st = CJ_ERR_CRYPTO;
        goto out;
    }
    if (!key_accepts(key, kms_now())) {
        st = open_failed(svc, request_id, "key_expired", hdr.key_id, NULL);
        goto out;
    }
    if (key->kem_id != hdr.suite.kem_id || key->kdf_id != hdr.suite.kdf_id ||
        !key_offers(key, hdr.suite.aead_id)) {
        st =
            open_failed(svc, request_id, "suite_not_offered", hdr.key_id, NULL);
        goto out;
    }
    st = cj_stateless_open(&hdr, key->private_key, req->enc, req->enc_len,
                           req->aad, req->aad_len, req->ct, req->ct_len, pt,
                           pt_len, secret, secret_len, &reason);
    if (st != CJ_OK) {
        st = open_failed(svc, request_id, cj_seal_reason_name(reason),
                         hdr.key_id, NULL);
    } else {
        cj_counter_add(svc->metrics.sealed_opened, 1);
    }
out:
    kms_keyring_unref(ring);
    return st;
}

static json_t *listed_key_json(const struct kms_listed_key *key)
{
    char *pk = cj_base64url_encode(key->public_key, sizeof(key->public_key));
    json_t *obj = NULL;

    if (pk != NULL)
        obj = json_pack("{s:i, s:i, s:i, s:i, s:s, s:s}", "key_id",
                        (int)key->key_id, "kem_id", (int)key->kem_id, "kdf_id",
                        (int)key->kdf_id, "aead_id", (int)key->aead_id,
                        "public_key", pk, "state", key->state);
    free(pk);
    return obj;
}

/* Signs the list with one signer; *jws is a new string. */
static enum cj_status sign_list(const struct kms_key_list *list,
                                const struct kms_list_signer *signer,
                                int64_t now_s, int64_t lifetime_s, char **jws)
{
    enum cj_status st = CJ_ERR_NOMEM;
    char *signer_jwk = NULL;
    char *payload = NULL;
    json_t *keys = json_array();
    json_t *doc = NULL;

    if (keys == NULL)
        goto out;
    for (size_t i = 0; i < list->n_keys; i++) {
        if (json_array_append_new(keys, listed_key_json(&list->keys[i])) != 0)
            goto out;
    }
    st = cj_jwk_to_json(signer->jwk, &signer_jwk);
    if (st != CJ_OK)
        goto out;
    st = CJ_ERR_NOMEM;
    doc = json_pack("{s:I, s:I, s:o, s:O}", "iat", (json_int_t)now_s, "exp",
                    (json_int_t)(now_s + lifetime_s), "signer",
                    json_loads(signer_jwk, 0, NULL), "keys", keys);
    if (doc == NULL)
        goto out;
    payload = json_dumps(doc, JSON_COMPACT);
    if (payload == NULL)
        goto out;
    st = cj_jws_sign(signer->jwk, KMS_KEY_LIST_TYP,
                     (const unsigned char *)payload, strlen(payload), jws);
out:
    free(payload);
    free(signer_jwk);
    json_decref(doc);
    json_decref(keys);
    return st;
}

/*
 * Picks the key that the list names as active: the newest accepting key
 * that is at least publish_after_s old. Every replica reloads within that
 * time, so every replica opens requests sealed to it. When no accepting key
 * is that old, the oldest accepting key is used: the first key of a fresh
 * install, or the new key after `retire hpke` has ended every older one.
 * Returns an index into ring->hpke, or ring->n_hpke when no key accepts
 * requests.
 */
static size_t listed_active_index(const struct kms_keyring *ring, int64_t now_s,
                                  int64_t publish_after_s)
{
    size_t oldest = ring->n_hpke;

    for (size_t i = 0; i < ring->n_hpke; i++) {
        const struct kms_hpke_key *key = &ring->hpke[i];
        if (!key_accepts(key, now_s))
            continue;
        if (key->created_at + publish_after_s <= now_s)
            return i;
        oldest = i;
    }
    return oldest;
}

/*
 * Lists the active key and the older keys that still accept requests, as
 * "retired". Keys newer than the listed active key are left out until they
 * are publish_after_s old. ring->hpke is newest first.
 */
static void collect_keys(const struct kms_keyring *ring, int64_t now_s,
                         int64_t publish_after_s, struct kms_key_list *list)
{
    size_t active = listed_active_index(ring, now_s, publish_after_s);

    for (size_t i = active; i < ring->n_hpke; i++) {
        const struct kms_hpke_key *key = &ring->hpke[i];
        if (!key_accepts(key, now_s))
            continue;
        for (size_t a = 0; a < key->n_aead_ids; a++) {
            if (list->n_keys == KMS_KEY_LIST_MAX)
                return;
            struct kms_listed_key *entry = &list->keys[list->n_keys++];
            entry->key_id = key->key_id;
            entry->kem_id = key->kem_id;
            entry->kdf_id = key->kdf_id;
            entry->aead_id = key->aead_ids[a];
            memcpy(entry->public_key, key->public_key,
                   sizeof(entry->public_key));
            entry->state = i == active ? "active" : "retired";
        }
    }
}

enum cj_status kms_list_public_keys(struct kms_service *svc,
                                    struct kms_key_list *out)
{
    struct kms_keyring *ring = kms_service_keys(svc);
    int64_t now = kms_now();
    enum cj_status st = CJ_ERR_UNAVAILABLE;

    memset(out, 0, sizeof(*out));
    const struct kms_list_signer *active =
        ring != NULL ? kms_keyring_signer(ring, KMS_STATE_ACTIVE) : NULL;
    if (active == NULL)
        goto out;
    const struct kms_list_signer *previous =
        kms_keyring_signer(ring, KMS_STATE_PREVIOUS);
    collect_keys(ring, now, kms_hpke_publish_after_s(&svc->cfg), out);
    st = sign_list(out, active, now, svc->cfg.key_list_lifetime_s, &out->jws);
    if (st != CJ_OK)
        goto out;
    memcpy(out->fingerprints[out->n_fingerprints++], active->fingerprint,
           KMS_FINGERPRINT_LEN + 1);
    if (previous != NULL) {
        st = sign_list(out, previous, now, svc->cfg.key_list_lifetime_s,
                       &out->previous_jws);
        if (st != CJ_OK)
            goto out;
        memcpy(out->fingerprints[out->n_fingerprints++], previous->fingerprint,
               KMS_FINGERPRINT_LEN + 1);
    }
out:
    if (st != CJ_OK)
        kms_key_list_clear(out);
    kms_keyring_unref(ring);
    return st;
}

void kms_key_list_clear(struct kms_key_list *list)
{
    free(list->jws);
    free(list->previous_jws);
    memset(list, 0, sizeof(*list));
}

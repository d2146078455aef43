/*
 * Stateless sealed requests on the kms side: OpenSealed opens a request
 * with the HPKE private key its key id names, and ListPublicKeys returns
 * the HPKE public keys as a list signed (EdDSA) by the key-list signer.
 */
#ifndef KMS_HPKE_H
#define KMS_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "kms_service.h"
#include "ohttp.h"

/* JWS "typ" of the signed key list. */
#define KMS_KEY_LIST_TYP "cerrojo-keys+jws"
/* Entries in one key list at most: every live key times its AEADs. */
#define KMS_KEY_LIST_MAX 32

/* The fields of an OpenSealed request; buffers are borrowed. */
struct kms_sealed_request {
    uint32_t version;
    uint32_t key_id;
    uint32_t kem_id;
    uint32_t kdf_id;
    uint32_t aead_id;
    const uint8_t *enc;
    size_t enc_len;
    const uint8_t *aad;
    size_t aad_len;
    const uint8_t *ct;
    size_t ct_len;
};

/*
 * Opens a sealed request. On success *pt is a new buffer of *pt_len bytes
 * and secret contains the exported response secret (*secret_len bytes); the
 * caller wipes and frees both. A key id that the current key set does not
 * contain reloads it first (kms_service_reload_on_demand). Returns
 * CJ_ERR_INVALID for an unknown version or suite. Returns CJ_ERR_CRYPTO for
 * anything that does not open (an unknown, expired or destroyed key id, an
 * AEAD the key does not offer, a bad tag or enc), with the precise reason
 * in the security log.
 */
CJ_WARN_UNUSED enum cj_status
kms_open_sealed(struct kms_service *svc, const struct kms_sealed_request *req,
                const char *request_id, uint8_t **pt, size_t *pt_len,
                uint8_t *secret, size_t *secret_len);

/* One entry of the key list. */
struct kms_listed_key {
    uint8_t key_id;
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_id;
    uint8_t public_key[KMS_HPKE_PK_BYTES];
    const char *state; /* "active" or "retired" (static) */
};

/* The key list as ListPublicKeys returns it. Free with
 * kms_key_list_clear. */
struct kms_key_list {
    char *jws;          /* signed by the active signer */
    char *previous_jws; /* signed by the previous signer, or NULL */
    struct kms_listed_key keys[KMS_KEY_LIST_MAX];
    size_t n_keys;
    char fingerprints[2][KMS_FINGERPRINT_LEN + 1]; /* newest first */
    size_t n_fingerprints;
};

/*
 * Builds and signs the key list: every HPKE key that still opens requests,
 * once per AEAD it offers, preferred first. The JWS payload is
 * {"iat","exp","signer","keys":[{"key_id","kem_id","kdf_id","aead_id",
 * "public_key","state"}]} where signer is the signing key's public JWK.
 */
CJ_WARN_UNUSED enum cj_status kms_list_public_keys(struct kms_service *svc,
                                                   struct kms_key_list *out);

void kms_key_list_clear(struct kms_key_list *list);

#endif

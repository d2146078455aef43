/*
 * The in-memory key set of cerrojo-kms: every live key unwrapped from its
 * stored row. A key set is immutable once built and reference-counted, so
 * handlers use one snapshot while a reload builds the next.
 */
#ifndef KMS_KEYS_H
#define KMS_KEYS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwk.h"
#include "kms_store.h"
#include "kms_wrap.h"
#include "status.h"

struct kms_kek {
    uint32_t version;
    enum kms_state state;
    unsigned char *key; /* KMS_WRAP_KEY_BYTES, sodium_malloc */
};

struct kms_signing_key {
    char kid[KMS_KID_MAX + 1];
    enum kms_state state;
    struct cj_jwk *jwk; /* with its private part */
    int64_t published_at;
    int64_t retired_at;
    int64_t last_token_expires_at; /* as loaded; 0 when none */
    /*
     * Latest token expiry this process has written to the database for
     * this key, so that SignToken normally writes once per rounding step (two
     * threads may both write, which is harmless).
     */
    _Atomic int64_t noted_expiry;
};

struct kms_hpke_key {
    int64_t row_id;
    uint8_t key_id;
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_ids[KMS_HPKE_AEADS_MAX];
    size_t n_aead_ids;
    enum kms_state state;
    int64_t created_at;         /* Unix seconds, Postgres clock */
    int64_t accept_until;       /* 0 while active */
    unsigned char *private_key; /* 32 bytes, sodium_malloc */
    unsigned char public_key[KMS_HPKE_PK_BYTES];
};

struct kms_list_signer {
    char fingerprint[KMS_FINGERPRINT_LEN + 1];
    enum kms_state state; /* active or previous */
    struct cj_jwk *jwk;   /* EdDSA, with its private part */
};

struct kms_keyring {
    atomic_int refs;
    struct kms_kek *keks; /* newest first */
    size_t n_keks;
    struct kms_signing_key *signing;
    size_t n_signing;
    struct kms_hpke_key *hpke; /* newest first */
    size_t n_hpke;
    struct kms_list_signer *signers; /* newest first */
    size_t n_signers;
    /* JWKS served by GetJwks, built when the set was loaded. */
    char *jwks_json;
    int64_t loaded_at; /* Unix seconds */
};

/*
 * Unwraps every row with the root key into a new key set (refs = 1).
 * now_s and leeway_s decide which retired signing keys the JWKS still
 * lists. CJ_ERR_CRYPTO when a wrapped key does not open (a wrong root key
 * or an altered row); *failed_label then names the key.
 */
CJ_WARN_UNUSED enum cj_status
kms_keyring_build(const struct kms_key_rows *rows, const unsigned char *root,
                  int64_t now_s, int64_t leeway_s, struct kms_keyring **out,
                  char failed_label[KMS_LABEL_MAX + 1]);

/* Takes one more reference and returns ring. */
struct kms_keyring *kms_keyring_ref(struct kms_keyring *ring);

/* Drops a reference; the last one wipes and frees. Accepts NULL. */
void kms_keyring_unref(struct kms_keyring *ring);

/* Lookups return borrowed entries valid while the reference is held. */
const struct kms_kek *kms_keyring_active_kek(const struct kms_keyring *ring);
const struct kms_kek *kms_keyring_kek(const struct kms_keyring *ring,
                                      uint32_t version);
struct kms_signing_key *
kms_keyring_active_signing(const struct kms_keyring *ring);
const struct kms_hpke_key *kms_keyring_hpke(const struct kms_keyring *ring,
                                            uint8_t key_id);
const struct kms_list_signer *kms_keyring_signer(const struct kms_keyring *ring,
                                                 enum kms_state state);

/* Root-key labels of stored keys; buf has room for KMS_LABEL_MAX + 1 bytes. */
void kms_label_kek(char *buf, uint32_t version);
void kms_label_signing(char *buf, const char *kid);
void kms_label_hpke(char *buf, const unsigned char *public_key);
void kms_label_signer(char *buf, const char *fingerprint);

#endif

/*
 * Every SQL statement of cerrojo-kms, over the kms schema. Functions take a
 * borrowed connection; those that change keys run inside the caller's
 * transaction after kms_store_lock_keys. Wrapped key material passes
 * through opaque, so this file never handles a plaintext key.
 */
#ifndef KMS_STORE_H
#define KMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "status.h"

/* Name of the advisory lock that serializes every change of the key set. */
#define KMS_STORE_LOCK_NAME "cerrojo.kms.keys"
#define KMS_KID_MAX         128
/* base64url SHA-256, as the key-list signer fingerprint. */
#define KMS_FINGERPRINT_LEN 43
#define KMS_HPKE_PK_BYTES   32
#define KMS_HPKE_AEADS_MAX  3

/* Key states as the schema spells them. */
enum kms_state {
    KMS_STATE_NEXT = 0,
    KMS_STATE_ACTIVE,
    KMS_STATE_RETIRED,
    KMS_STATE_PREVIOUS,
    KMS_STATE_DESTROYED,
};

const char *kms_state_name(enum kms_state state);
bool kms_state_parse(const char *name, enum kms_state *out);

/* A stored blob; `bytes` is malloc memory owned by the row. */
struct kms_blob {
    unsigned char *bytes;
    size_t len;
};

struct kms_kek_row {
    uint32_t version;
    enum kms_state state;
    int64_t retired_at; /* Unix seconds; 0 when not retired */
    struct kms_blob wrapped;
};

struct kms_signing_row {
    char kid[KMS_KID_MAX + 1];
    char algorithm[8];
    enum kms_state state;
    int64_t published_at;
    int64_t activated_at;          /* 0 when never active */
    int64_t retired_at;            /* 0 when not retired */
    int64_t last_token_expires_at; /* 0 when it signed nothing */
    char *public_jwk;              /* malloc */
    struct kms_blob wrapped;
};

struct kms_hpke_row {
    int64_t id;
    uint8_t key_id;
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_ids[KMS_HPKE_AEADS_MAX];
    size_t n_aead_ids;
    enum kms_state state;
    int64_t created_at;
    int64_t accept_until;  /* 0 while active */
    int64_t destroy_after; /* 0 while active */
    unsigned char public_key[KMS_HPKE_PK_BYTES];
    struct kms_blob wrapped;
};

struct kms_signer_row {
    char fingerprint[KMS_FINGERPRINT_LEN + 1];
    enum kms_state state;
    int64_t created_at;
    unsigned char public_key[32];
    struct kms_blob wrapped;
};

/* Every live (not destroyed) key, as stored. Free with kms_key_rows_free. */
struct kms_key_rows {
    struct kms_kek_row *keks;
    size_t n_keks;
    struct kms_signing_row *signing;
    size_t n_signing;
    struct kms_hpke_row *hpke;
    size_t n_hpke;
    struct kms_signer_row *signers;
    size_t n_signers;
};

/* Reads every live key. Rows come newest first within each kind. */
CJ_WARN_UNUSED enum cj_status kms_store_load(struct cj_db_conn *conn,
                                             struct kms_key_rows *out);

/* Frees rows; wrapped blobs are wiped first. Accepts a zeroed struct. */
void kms_key_rows_free(struct kms_key_rows *rows);

/* Takes the transaction-level lock on the key set (inside a transaction). */
CJ_WARN_UNUSED enum cj_status kms_store_lock_keys(struct cj_db_conn *conn);

/* The database clock, Unix seconds. */
CJ_WARN_UNUSED enum cj_status kms_store_now(struct cj_db_conn *conn,
                                            int64_t *now);

/* Purposes that have no active key yet (a fresh database). */
struct kms_missing {
    bool kek;
    bool signing;
    bool hpke;
    bool signer;
};

CJ_WARN_UNUSED enum cj_status kms_store_missing(struct cj_db_conn *conn,
                                                struct kms_missing *out);

/* --- Key-encryption keys ------------------------------------------------ */

/* Highest KEK version ever stored (0 when none). */
CJ_WARN_UNUSED enum cj_status kms_store_max_kek_version(struct cj_db_conn *conn,
                                                        uint32_t *version);
/* Retires the active KEK (if any) and inserts `version` as active. */
CJ_WARN_UNUSED enum cj_status kms_store_insert_kek(struct cj_db_conn *conn,
                                                   uint32_t version,
                                                   const unsigned char *wrapped,
                                                   size_t len);
/*
 * Records that a data key auth stores, or may store, for user_id is
 * wrapped under kek_version. Rows of other versions stay.
 */
CJ_WARN_UNUSED enum cj_status kms_store_note_data_key(struct cj_db_conn *conn,
                                                      const char *user_id,
                                                      uint32_t kek_version);
/*
 * Records kek_version for user_id and deletes the user's rows of older
 * versions, for a wrapped key that auth has shown it stores. Rows of newer
 * versions stay, because a re-wrap to them may still be stored.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_confirm_data_key(struct cj_db_conn *conn, const char *user_id,
                           uint32_t kek_version);

/* --- Signing keys ------------------------------------------------------- */

/* Inserts a signing key as `state` (KMS_STATE_NEXT or KMS_STATE_ACTIVE). */
CJ_WARN_UNUSED enum cj_status
kms_store_insert_signing(struct cj_db_conn *conn, const char *kid,
                         const char *algorithm, enum kms_state state,
                         const char *public_jwk, const unsigned char *wrapped,
                         size_t len);
/*
 * Promotes the next key when it was published at least min_published_s
 * seconds ago and retires the active one. *kid gets the promoted kid and
 * *previous the retired one (empty when no key was active);
 * CJ_ERR_NOT_FOUND without a next key, CJ_ERR_PRECONDITION when it is too
 * young (*ready_at is then the time it will be ready).
 */
CJ_WARN_UNUSED enum cj_status
kms_store_promote_signing(struct cj_db_conn *conn, int64_t min_published_s,
                          char kid[KMS_KID_MAX + 1],
                          char previous[KMS_KID_MAX + 1], int64_t *ready_at);
/*
 * Destroys a signing key at once, whatever tokens it signed (a leaked
 * key). *previous gets its state before the call. A key that is already
 * destroyed stays unchanged. CJ_ERR_NOT_FOUND when no key has this kid.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_destroy_signing_now(struct cj_db_conn *conn, const char *kid,
                              enum kms_state *previous);
/* Stores the kid of the active signing key, or returns CJ_ERR_NOT_FOUND
 * when there is none. */
CJ_WARN_UNUSED enum cj_status
kms_store_active_signing_kid(struct cj_db_conn *conn,
                             char kid[KMS_KID_MAX + 1]);
/* Makes the next key active without the publication wait; for a leaked
 * active key only. CJ_ERR_NOT_FOUND when there is no next key. */
CJ_WARN_UNUSED enum cj_status
kms_store_activate_next_signing(struct cj_db_conn *conn,
                                char kid[KMS_KID_MAX + 1]);
/* Retires the next key without promoting it; CJ_ERR_NOT_FOUND if none. */
CJ_WARN_UNUSED enum cj_status
kms_store_retire_next_signing(struct cj_db_conn *conn,
                              char kid[KMS_KID_MAX + 1]);
/* Raises the key's recorded last-token expiry to at least exp (seconds). */
CJ_WARN_UNUSED enum cj_status
kms_store_note_token_expiry(struct cj_db_conn *conn, const char *kid,
                            int64_t exp);

/* --- HPKE keys ---------------------------------------------------------- */

/*
 * Inserts a new active HPKE key and retires the active one, which stays
 * accepted for accept_s seconds and is destroyed after destroy_s seconds.
 * The new key id is the one after the newest key's, skipping live ones;
 * *key_id gets it. CJ_ERR_EXISTS when all 256 ids are live.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_insert_hpke(struct cj_db_conn *conn, const uint16_t *aead_ids,
                      size_t n_aead_ids, const unsigned char *public_key,
                      int64_t accept_s, int64_t destroy_s, uint8_t *key_id,
                      const unsigned char *wrapped, size_t len);
/*
 * Ends the acceptance window of every retired HPKE key now, and stores
 * how many there were and their key ids, comma-separated and cut to fit.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_retire_hpke(struct cj_db_conn *conn, unsigned *count,
                      char key_ids[KMS_KID_MAX + 1]);

/* --- Key-list signers --------------------------------------------------- */

/* Inserts an active signer; the active one becomes previous. CJ_ERR_EXISTS
 * while a previous one remains. */
CJ_WARN_UNUSED enum cj_status
kms_store_insert_signer(struct cj_db_conn *conn, const char *fingerprint,
                        const unsigned char *public_key,
                        const unsigned char *wrapped, size_t len);
/* Destroys the previous signer, ending a signer rotation. */
CJ_WARN_UNUSED enum cj_status
kms_store_retire_previous_signer(struct cj_db_conn *conn,
                                 char fingerprint[KMS_FINGERPRINT_LEN + 1]);

/*
 * Deletes user_id's data_key_versions rows. *forgotten is false when there
 * were none.
 */
CJ_WARN_UNUSED enum cj_status kms_store_forget_data_key(struct cj_db_conn *conn,
                                                        const char *user_id,
                                                        bool *forgotten);

/*
 * Lists up to max user ids after after_user_id, in byte order, that have a
 * row naming a KEK version that is no longer active, written at least
 * min_age_s ago. *user_ids is a new array of new strings; free it with
 * kms_store_free_user_ids.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_list_old_data_keys(struct cj_db_conn *conn, const char *after_user_id,
                             int64_t min_age_s, unsigned max, char ***user_ids,
                             size_t *count);

void kms_store_free_user_ids(char **user_ids, size_t count);

/* --- Destruction and root rewrap ---------------------------------------- */

/* Retired KEK versions a report names, at most. */
#define KMS_KEPT_KEKS_MAX 8

/* A retired KEK that destroy-expired kept, and why. */
struct kms_kept_kek {
    uint32_t version;
    /* data_key_versions rows that name it: users whose key it wraps. */
    unsigned users;
    /* False while it was retired less than settle_s ago. */
    bool settled;
};

/* Counts of keys destroy-expired removed, by kind, and the retired KEKs
 * it kept. */
struct kms_destroy_report {
    unsigned hpke;
    unsigned signing;
    unsigned kek;
    struct kms_kept_kek kept_keks[KMS_KEPT_KEKS_MAX];
    size_t n_kept_keks; /* at most KMS_KEPT_KEKS_MAX, oldest first */
};

/*
 * Destroys (removes the wrapped material of) HPKE keys past destroy_after,
 * retired signing keys retired at least settle_s ago whose last token
 * expired more than leeway_s ago, and retired KEKs retired at least
 * settle_s ago that no data_key_versions row names. Fills kept_keks with
 * the retired KEKs that remain, after the deletions.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_destroy_expired(struct cj_db_conn *conn, int64_t leeway_s,
                          int64_t settle_s, struct kms_destroy_report *report);

/* Table of a wrapped key, for kms_store_replace_wrapped. */
enum kms_key_kind {
    KMS_KIND_KEK = 0,
    KMS_KIND_SIGNING,
    KMS_KIND_HPKE,
    KMS_KIND_SIGNER,
};

/*
 * Replaces one key's wrapped material (rewrap-root). `id` is the version,
 * kid, row id or fingerprint, as text.
 */
CJ_WARN_UNUSED enum cj_status
kms_store_replace_wrapped(struct cj_db_conn *conn, enum kms_key_kind kind,
                          const char *id, const unsigned char *wrapped,
                          size_t len);

#endif

/*
 * Key lifecycle of cerrojo-kms: the first key set, rotation, promotion,
 * retirement, destruction and re-wrapping under a new root key. Each step
 * runs in one transaction under the key-set lock, so replicas and
 * one-shot commands never race, and logs a security event with key ids.
 */
#ifndef KMS_LIFECYCLE_H
#define KMS_LIFECYCLE_H

#include <stdint.h>

#include "db.h"
#include "jwk.h"
#include "kms_rootkey.h"
#include "kms_store.h"
#include "status.h"

/* Dependencies of the lifecycle steps, borrowed for each call. */
struct kms_lifecycle {
    struct cj_db_pool *pool;
    const struct kms_root_key *root;
    enum cj_jwk_alg signing_alg;
    const uint16_t *hpke_aead_ids; /* preferred first */
    size_t n_hpke_aead_ids;
    int64_t promote_after_s;
    int64_t hpke_accept_s;
    int64_t hpke_destroy_s;
    int64_t leeway_s;
    int64_t settle_s;
};

/* Purposes a rotation can name. */
enum kms_purpose {
    KMS_PURPOSE_SIGNING = 0,
    KMS_PURPOSE_HPKE,
    KMS_PURPOSE_KEK,
    KMS_PURPOSE_KEYLIST,
};

bool kms_purpose_parse(const char *name, enum kms_purpose *out);
const char *kms_purpose_name(enum kms_purpose purpose);

/* Room for the names of the missing migration files, ", "-separated. */
#define KMS_SCHEMA_MISSING_MAX 1024

/*
 * Checks that every kms migration of this build is recorded in
 * kms.schema_migrations. Returns CJ_OK, CJ_ERR_PRECONDITION with the
 * missing file names in missing (logged as kms.schema_missing), or the
 * acquire or query status.
 */
CJ_WARN_UNUSED enum cj_status kms_schema_check(const struct kms_lifecycle *lc,
                                               char *missing,
                                               size_t missing_size);

/*
 * Creates an active key for every purpose that has none (a first start).
 * Safe to run from several replicas at once: the lock makes exactly one
 * create them and the others find them.
 */
CJ_WARN_UNUSED enum cj_status kms_bootstrap(const struct kms_lifecycle *lc);

/*
 * Rotates one purpose. signing: adds a `next` key (promote activates it
 * later); CJ_ERR_EXISTS when a next key is already waiting. hpke: a new
 * active key, the old one retired with its acceptance window. kek: a new
 * active version; older versions still unwrap. keylist: a new active
 * signer, the old one kept as `previous` (CJ_ERR_EXISTS while a previous
 * one remains; retire it first). new_key, when not NULL, gets the new
 * key's id: the kid, HPKE key id, KEK version or signer fingerprint.
 */
CJ_WARN_UNUSED enum cj_status kms_rotate(const struct kms_lifecycle *lc,
                                         enum kms_purpose purpose,
                                         char new_key[KMS_KID_MAX + 1]);

/*
 * Activates the next signing key once it has been published for
 * promote_after_s, retiring the active one. CJ_ERR_NOT_FOUND without a
 * next key, CJ_ERR_PRECONDITION when it is too young: *ready_at is then
 * the Unix time at which it becomes due. On success *kid gets the
 * promoted kid and *previous the retired one (empty when none was active).
 */
CJ_WARN_UNUSED enum cj_status kms_promote(const struct kms_lifecycle *lc,
                                          char kid[KMS_KID_MAX + 1],
                                          char previous[KMS_KID_MAX + 1],
                                          int64_t *ready_at);

/*
 * Ends an overlap early. signing: drops the waiting next key. hpke: ends
 * the acceptance window of retired HPKE keys. keylist: stops signing with
 * the previous key-list signer and destroys it. Others: CJ_ERR_INVALID.
 * *count is the number of keys retired (0 when no HPKE window was open).
 * key, when not NULL, gets the retired key's id: the kid, the HPKE key ids
 * comma-separated, or the signer fingerprint. CJ_ERR_NOT_FOUND when no
 * next signing key or previous signer exists.
 */
CJ_WARN_UNUSED enum cj_status kms_retire(const struct kms_lifecycle *lc,
                                         enum kms_purpose purpose,
                                         unsigned *count,
                                         char key[KMS_KID_MAX + 1]);

/* Outcome of kms_destroy_signing. */
struct kms_signing_destroy {
    bool already_destroyed; /* destroyed before the call, so nothing changed */
    bool was_active;        /* it was the active key, so another replaced it */
    char active_kid[KMS_KID_MAX + 1]; /* the active signing key afterwards */
};

/*
 * Destroys the signing key kid at once, for a key that leaked: its tokens,
 * forged ones included, stop verifying as soon as verifiers drop it from
 * their JWKS. A destroyed active key is replaced by the next key, or by a
 * new one, active at once. A key destroyed before stays as it is, with
 * result->already_destroyed set. CJ_ERR_NOT_FOUND when no key has this kid.
 */
CJ_WARN_UNUSED enum cj_status
kms_destroy_signing(const struct kms_lifecycle *lc, const char *kid,
                    struct kms_signing_destroy *result);

/* Destroys what has expired, as kms_store_destroy_expired defines. */
CJ_WARN_UNUSED enum cj_status
kms_destroy_expired(const struct kms_lifecycle *lc,
                    struct kms_destroy_report *report);

/*
 * Re-wraps every stored key under new_root in one transaction, then checks
 * that each opens under it. *count gets the number of keys re-wrapped.
 */
CJ_WARN_UNUSED enum cj_status kms_rewrap_root(const struct kms_lifecycle *lc,
                                              const unsigned char *new_root,
                                              unsigned *count);

#endif

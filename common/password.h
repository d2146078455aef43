/*
 * Password hashing: Argon2id through libsodium's crypto_pwhash_str_alg
 * (libsodium's Argon2id always uses one lane), with parameters from
 * configuration, a rehash check, and a dummy verification so that a login
 * for an unknown user costs the same single Argon2 verification as a known
 * one. Passwords are pointer and length; no function here logs them.
 */
#ifndef CJ_PASSWORD_H
#define CJ_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Maximum password length in bytes. Longer input is never hashed. */
#define CJ_PASSWORD_MAX_BYTES              1024
#define CJ_PASSWORD_MEMLIMIT_DEFAULT_BYTES (19u * 1024u * 1024u)
#define CJ_PASSWORD_OPSLIMIT_DEFAULT       2
/* Configuration bounds, kept so a typo cannot stall or exhaust a host. */
#define CJ_PASSWORD_MEMLIMIT_MIN_BYTES (8u * 1024u)
#define CJ_PASSWORD_MEMLIMIT_MAX_BYTES (1024u * 1024u * 1024u)
#define CJ_PASSWORD_OPSLIMIT_MIN       1
#define CJ_PASSWORD_OPSLIMIT_MAX       32
/* Size of a hash string buffer, NUL included (crypto_pwhash_STRBYTES). */
#define CJ_PASSWORD_HASH_BYTES 128

struct cj_password_params {
    unsigned long long opslimit; /* Argon2 passes */
    size_t memlimit_bytes;       /* Argon2 memory, bytes */
};

/* A configured hasher: parameters, dummy hash and verification counter. */
struct cj_password_hasher;

/* Fills the defaults: 19 MiB, 2 passes. */
void cj_password_params_default(struct cj_password_params *params);

/* CJ_ERR_INVALID when a parameter is outside the bounds above. */
CJ_WARN_UNUSED enum cj_status
cj_password_params_check(const struct cj_password_params *params);

/*
 * Creates a hasher. Hashes a random password once with params to make the
 * dummy hash (this hash is not counted as a verification). Free with
 * cj_password_hasher_free. Safe to share between threads once created.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_hasher_new(const struct cj_password_params *params,
                       struct cj_password_hasher **out);

void cj_password_hasher_free(struct cj_password_hasher *hasher);

/*
 * Writes the NFKC form of a password into out, NUL-terminated, and its
 * length in bytes into *out_len. Login and registration hash this form,
 * so the composed and decomposed spellings of a character (U+00E9 and
 * "e" U+0301) and compatibility forms (U+FB01 and "fi") give one
 * password. CJ_ERR_TOO_LARGE when the input or the result is longer than
 * CJ_PASSWORD_MAX_BYTES, CJ_ERR_INVALID for invalid UTF-8 or an embedded
 * NUL, CJ_ERR_NOMEM when the work buffer cannot be allocated. On failure
 * out is the empty string.
 * NOTE: code points unassigned in utf8proc's Unicode version pass
 * through unchanged. A later Unicode version may give them a
 * decomposition, so such a password could stop matching after a
 * utf8proc upgrade.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_normalize(const char *password, size_t password_len,
                      char out[CJ_PASSWORD_MAX_BYTES + 1], size_t *out_len);

/*
 * Hashes a password into out (a "$argon2id$..." string). Before any
 * hashing, rejects more than CJ_PASSWORD_MAX_BYTES (CJ_ERR_TOO_LARGE) and
 * an embedded NUL (CJ_ERR_INVALID). CJ_ERR_NOMEM when Argon2 cannot get
 * its memory.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_hash(const struct cj_password_hasher *hasher, const char *password,
                 size_t password_len, char out[CJ_PASSWORD_HASH_BYTES]);

/*
 * Verifies a password against a stored hash with exactly one Argon2
 * verification: CJ_OK when it matches, CJ_ERR_UNAUTHENTICATED when not.
 * A stored hash that is not a NUL-terminated Argon2 string (at most
 * CJ_PASSWORD_HASH_BYTES) costs one dummy verification and returns
 * CJ_ERR_INTERNAL. Oversize or NUL-containing input is rejected as in
 * cj_password_hash with no verification at all.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_verify(struct cj_password_hasher *hasher, const char *stored_hash,
                   const char *password, size_t password_len);

/*
 * Runs one verification against the dummy hash and returns
 * CJ_ERR_UNAUTHENTICATED; for a login whose user does not exist. Input
 * rules and their statuses are those of cj_password_verify.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_verify_dummy(struct cj_password_hasher *hasher,
                         const char *password, size_t password_len);

/*
 * Sets *needs_rehash when stored_hash was made with other parameters or is
 * not Argon2id (an Argon2i hash, for example). CJ_ERR_INVALID when it is
 * not a parsable Argon2 hash string.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_needs_rehash(const struct cj_password_hasher *hasher,
                         const char *stored_hash, bool *needs_rehash);

/*
 * Returns how many Argon2 verifications this hasher has run (real and
 * dummy), read atomically. Tests count work with it instead of timing.
 */
uint64_t
cj_password_verification_count(const struct cj_password_hasher *hasher);

#endif

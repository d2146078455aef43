/*
 * Signing keys for JWS: RS256 (RSA, PKCS#1 v1.5, SHA-256), ES256 (P-256)
 * and EdDSA (Ed25519). A key carries its one algorithm, so a verifier
 * takes the algorithm from the key and never from a token (RFC 8725
 * section 3.1). Also owns the key formats: private bytes for storage,
 * public JWK and JWK Set (RFC 7517) and the RFC 7638 thumbprint used as
 * kid.
 */
#ifndef CJ_JWK_H
#define CJ_JWK_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CJ_JWK_RSA_MIN_BITS       2048 /* smaller RSA keys are rejected */
#define CJ_JWK_RSA_MAX_BITS       8192 /* bounds the cost of one verify */
#define CJ_JWK_RSA_DEFAULT_BITS   2048
#define CJ_JWK_ED25519_SEED_BYTES 32
/* Length of a SHA-256 thumbprint in base64url without padding. */
#define CJ_JWK_THUMBPRINT_LEN 43
#define CJ_JWK_KID_MAX_BYTES  128 /* longer kid values rejected */
/* Largest private key accepted by import (an 8192-bit RSA PKCS#8 is
 * about 4.9 KiB). */
#define CJ_JWK_PRIVATE_MAX_BYTES 8192
#define CJ_JWK_JSON_MAX_BYTES    (16 * 1024)  /* one JWK as JSON text */
#define CJ_JWKS_JSON_MAX_BYTES   (128 * 1024) /* a whole JWK Set */
#define CJ_JWKS_MAX_KEYS         32

enum cj_jwk_alg {
    CJ_JWK_ALG_RS256 = 1,
    CJ_JWK_ALG_ES256,
    CJ_JWK_ALG_EDDSA,
};

/*
 * A public key, or a key pair when it was generated or imported private.
 * Apart from cj_jwk_set_kid nothing changes a key after it is made, so
 * threads may share it: openssl-threads(7) of OpenSSL 3.0 deems an object
 * thread-safe while the calls made on it do not modify it.
 */
struct cj_jwk;

/* A set of public keys, looked up by kid; read-only once parsed, so one
 * set can serve every verifying thread. */
struct cj_jwks;

/* Returns the JWS "alg" name ("RS256", "ES256", "EdDSA"), or NULL. */
const char *cj_jwk_alg_name(enum cj_jwk_alg alg);

/* Parses an exact "RS256", "ES256" or "EdDSA"; returns false otherwise. */
bool cj_jwk_alg_parse(const char *name, enum cj_jwk_alg *out);

/*
 * Generates a new key pair for alg (RSA keys have CJ_JWK_RSA_DEFAULT_BITS)
 * whose kid is its RFC 7638 thumbprint. Free *out with cj_jwk_free.
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_generate(enum cj_jwk_alg alg,
                                              struct cj_jwk **out);

/*
 * Exports the private key for storage (kms wraps these bytes): PKCS#8 DER
 * for RS256 and ES256, the 32-byte seed for EdDSA. *out is a new buffer
 * of *out_len bytes; release it with cj_jwk_private_bytes_free, which
 * wipes it. CJ_ERR_INVALID when the key has no private part.
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_export_private(const struct cj_jwk *key,
                                                    unsigned char **out,
                                                    size_t *out_len);

/* Wipes and frees bytes from cj_jwk_export_private; accepts NULL. */
void cj_jwk_private_bytes_free(unsigned char *bytes, size_t len);

/*
 * Imports a private key exported by cj_jwk_export_private. The bytes must
 * be a key of alg: an RSA key of CJ_JWK_RSA_MIN_BITS to
 * CJ_JWK_RSA_MAX_BITS, a P-256 key, or a 32-byte Ed25519 seed; otherwise
 * CJ_ERR_INVALID. The kid is the thumbprint. The caller still owns and
 * wipes `in`.
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_import_private(enum cj_jwk_alg alg,
                                                    const unsigned char *in,
                                                    size_t len,
                                                    struct cj_jwk **out);

/*
 * Parses one public JWK (JSON text). kty, crv and key size must match a
 * supported alg; "alg", when present, must name it; "use", when present,
 * must be "sig"; "key_ops", when present, must contain "verify". Private
 * or secret members (d, p, q, dp, dq, qi, oth, k) are rejected, and so are
 * RSA moduli with the ROCA fingerprint (CVE-2017-15361) and EC points off
 * the curve. kid is the JWK's "kid" when present (printable ASCII, at most
 * CJ_JWK_KID_MAX_BYTES), else the thumbprint. CJ_ERR_INVALID on any
 * violation, CJ_ERR_UNIMPLEMENTED for a well-formed key this verifier does
 * not use (another kty, curve or alg, or a use other than signing).
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_from_json(const char *json, size_t len,
                                               struct cj_jwk **out);

/* Frees a key and wipes its private part; accepts NULL. */
void cj_jwk_free(struct cj_jwk *key);

enum cj_jwk_alg cj_jwk_get_alg(const struct cj_jwk *key);

/* Returns the kid (borrowed, valid while the key lives). */
const char *cj_jwk_get_kid(const struct cj_jwk *key);

/*
 * Replaces the kid (1 to CJ_JWK_KID_MAX_BYTES printable ASCII bytes).
 * kms keeps the thumbprint; this exists for keys with published names.
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_set_kid(struct cj_jwk *key,
                                             const char *kid);

bool cj_jwk_has_private(const struct cj_jwk *key);

/*
 * Writes the RFC 7638 thumbprint (SHA-256 over the required public
 * members in lexicographic order, base64url) into out, NUL-terminated.
 */
CJ_WARN_UNUSED enum cj_status
cj_jwk_thumbprint(const struct cj_jwk *key,
                  char out[CJ_JWK_THUMBPRINT_LEN + 1]);

/*
 * Writes the public JWK as compact JSON into a new string *out (malloc;
 * the caller frees): kty, crv (EC, OKP), key members, "use":"sig", "alg"
 * and "kid". Never includes private members.
 */
CJ_WARN_UNUSED enum cj_status cj_jwk_to_json(const struct cj_jwk *key,
                                             char **out);

/*
 * Writes {"keys":[...]} with the public JWK of each key into a new string
 * *out (malloc; the caller frees). This is what kms serves as the JWKS.
 */
CJ_WARN_UNUSED enum cj_status cj_jwks_to_json(const struct cj_jwk *const *keys,
                                              size_t count, char **out);

/*
 * Parses a JWK Set ({"keys":[...]}, at most CJ_JWKS_JSON_MAX_BYTES and
 * CJ_JWKS_MAX_KEYS keys) into a new set. Keys of unsupported types are
 * skipped (RFC 7517 section 5); a malformed key, a key with private or
 * secret members, a repeated kid or a duplicate JSON member rejects the
 * whole set (CJ_ERR_INVALID), and so do more bytes or keys than the
 * limits (CJ_ERR_TOO_LARGE). An empty result is valid. Free with
 * cj_jwks_free.
 */
CJ_WARN_UNUSED enum cj_status cj_jwks_parse(const char *json, size_t len,
                                            struct cj_jwks **out);

/* Frees a set and its keys; accepts NULL. */
void cj_jwks_free(struct cj_jwks *set);

size_t cj_jwks_count(const struct cj_jwks *set);

/* Returns the key with this kid (borrowed from the set), or NULL. */
const struct cj_jwk *cj_jwks_find(const struct cj_jwks *set, const char *kid);

#endif

/*
 * JWS compact serialization (RFC 7515 section 7.1) with the keys of
 * jwk.h: signing, decoding with the header rules of RFC 8725, and
 * signature checks. The algorithm always comes from the key; the header's
 * "alg" must merely equal it.
 */
#ifndef CJ_JWS_H
#define CJ_JWS_H

#include <jansson.h>
#include <stddef.h>

#include "jose.h"
#include "jwk.h"
#include "status.h"

/* Largest raw signature: an RSA key of CJ_JWK_RSA_MAX_BITS. */
#define CJ_JWS_SIG_MAX_BYTES (CJ_JWK_RSA_MAX_BITS / 8)
/* ES256 signatures are r || s, 32 bytes each (RFC 7518 section 3.4). */
#define CJ_JWS_ES256_SIG_BYTES 64
/* Largest DER ECDSA-Sig-Value for P-256: SEQUENCE of two 33-byte INTEGERs. */
#define CJ_JWS_ES256_DER_MAX_BYTES 72

/*
 * A decoded compact JWS whose header passed the generic rules. Fields are
 * owned by the struct; release with cj_jws_decoded_clear.
 */
struct cj_jws_decoded {
    json_t *header;         /* the protected header object */
    const char *alg;        /* borrowed from header; never NULL */
    const char *kid;        /* borrowed from header; NULL when absent */
    const char *typ;        /* borrowed from header; NULL when absent */
    unsigned char *payload; /* decoded payload, NUL-terminated copy */
    size_t payload_len;     /* without that NUL */
    unsigned char *sig;     /* decoded signature */
    size_t sig_len;
    const char *signing_input; /* borrowed: the token's first two parts */
    size_t signing_input_len;
};

/*
 * Signs a raw message with a private key. For ES256 the output is the
 * 64-byte r || s form. sig must hold CJ_JWS_SIG_MAX_BYTES; *sig_len gets
 * the length. CJ_ERR_INVALID when key has no private part.
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_sign_raw(const struct cj_jwk *key, const unsigned char *msg,
                size_t msg_len, unsigned char *sig, size_t *sig_len);

/*
 * Verifies a raw signature with the key's algorithm: CJ_OK when valid,
 * CJ_ERR_CRYPTO otherwise (including a wrong length, and ES256 r or s out
 * of [1, n-1]).
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_verify_raw(const struct cj_jwk *key, const unsigned char *msg,
                  size_t msg_len, const unsigned char *sig, size_t sig_len);

/*
 * Converts a DER ECDSA-Sig-Value (as OpenSSL produces) to r || s. Rejects
 * non-minimal integers, negative values, values over 32 bytes, trailing
 * data and long-form lengths (CJ_ERR_INVALID).
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_es256_der_to_raw(const unsigned char *der, size_t der_len,
                        unsigned char raw[CJ_JWS_ES256_SIG_BYTES]);

/*
 * Converts r || s (exactly CJ_JWS_ES256_SIG_BYTES) to minimal DER. der
 * must hold CJ_JWS_ES256_DER_MAX_BYTES. Rejects r or s equal to zero.
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_es256_raw_to_der(const unsigned char *raw, size_t raw_len,
                        unsigned char der[CJ_JWS_ES256_DER_MAX_BYTES],
                        size_t *der_len);

/*
 * Signs header_json (the exact protected header bytes, which must name
 * the key's alg) and payload into a new compact JWS *out (malloc; the
 * caller frees). Use cj_jws_sign_json to have the header built.
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_sign_compact(const struct cj_jwk *key, const char *header_json,
                    size_t header_len, const unsigned char *payload,
                    size_t payload_len, char **out);

/*
 * Signs payload under the header {"alg":<key alg>,"kid":<key kid>} plus
 * "typ" when typ is not NULL. *out as for cj_jws_sign_compact.
 */
CJ_WARN_UNUSED enum cj_status cj_jws_sign(const struct cj_jwk *key,
                                          const char *typ,
                                          const unsigned char *payload,
                                          size_t payload_len, char **out);

/*
 * Splits and decodes a compact JWS and applies the header rules that hold
 * for every token. The token must fit the size limit and have three parts
 * in canonical base64url. The header must be a JSON object without
 * duplicate members whose "alg" is RS256, ES256 or EdDSA (none, HS* and
 * others each get their own reason). It must have no jwk, jku, x5u, x5c,
 * x5t, x5t#S256 or crit member, and kid and typ must be strings when
 * present. Does not check the signature. On CJ_OK, *out is filled and
 * must be cleared; on failure *reason says why and *out is empty.
 */
CJ_WARN_UNUSED enum cj_status cj_jws_decode(const char *token, size_t token_len,
                                            struct cj_jws_decoded *out,
                                            enum cj_jose_reason *reason);

/*
 * Checks a decoded JWS against key: its alg must equal the key's
 * (CJ_JOSE_ALG_MISMATCH) and the signature must verify
 * (CJ_JOSE_BAD_SIGNATURE).
 */
CJ_WARN_UNUSED enum cj_status
cj_jws_check_signature(const struct cj_jws_decoded *jws,
                       const struct cj_jwk *key, enum cj_jose_reason *reason);

/* Releases what cj_jws_decode allocated; safe on a zeroed struct. */
void cj_jws_decoded_clear(struct cj_jws_decoded *jws);

/*
 * Decodes and verifies a compact JWS with one key (no typ rule: for signed
 * documents such as the HPKE key list). *payload is a new NUL-terminated
 * buffer of *payload_len bytes (malloc; the caller frees).
 */
CJ_WARN_UNUSED enum cj_status cj_jws_verify(const struct cj_jwk *key,
                                            const char *token, size_t token_len,
                                            unsigned char **payload,
                                            size_t *payload_len,
                                            enum cj_jose_reason *reason);

#endif

/*
 * The layout of struct cj_jwk, shared by jwk.c (which owns it) and jws.c
 * (which signs and verifies with it). Nothing outside common/ includes it.
 */
#ifndef CJ_JWK_INTERNAL_H
#define CJ_JWK_INTERNAL_H

#include <openssl/evp.h>
#include <sodium.h>
#include <stdbool.h>

#include "jwk.h"

struct cj_jwk {
    enum cj_jwk_alg alg;
    bool has_private;
    char kid[CJ_JWK_KID_MAX_BYTES + 1];
    /* RS256 and ES256: the OpenSSL key, private when has_private. */
    EVP_PKEY *pkey;
    /* EdDSA: the public key, and the libsodium secret key (seed || pk) in
     * sodium_malloc memory, NULL for a public key. */
    unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char *ed_sk;
};

#endif

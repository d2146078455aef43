/*
 * Checking the server's HPKE key list: a JWS (EdDSA) whose payload names
 * its signer's public key; the signer's RFC 7638 thumbprint must equal a
 * pinned fingerprint when any is pinned.
 */
#ifndef CJC_KEYS_H
#define CJC_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "envelope_stateless.h"
#include "status.h"

/* The key the client seals to, chosen from a checked list. */
struct cjc_server_key {
    struct cj_stateless_header header;
    uint8_t public_key[CJ_HPKE_PK_LEN];
};

/*
 * Checks that pin is a well-formed signer fingerprint: an RFC 7638
 * SHA-256 thumbprint in base64url without padding (43 characters), as
 * `cerrojo keys` prints it. Returns CJ_ERR_INVALID with a message in err
 * otherwise.
 */
CJ_WARN_UNUSED enum cj_status cjc_pin_check(const char *pin, char *err,
                                            size_t errlen);

/*
 * Checks the body of GET /v1/keys: the JWS in "key_list_jws" (or the one
 * in "previous_key_list_jws" during a signer rotation) must verify with
 * the signer its payload names, that signer must be pinned when pins are
 * given, and the list must not have expired at now_s. Picks the first
 * active key with AES-256-GCM (else any active key) into *key, and sets
 * *out to {"signer": thumbprint, "pinned": bool, "keys": [...]}.
 */
CJ_WARN_UNUSED enum cj_status
cjc_keys_check(const json_t *body, const char *const *pins, size_t n_pins,
               struct cjc_server_key *key, json_t **out, char *err,
               size_t errlen);

#endif

/*
 * The stateful sealing steps the session service needs, as thin calls
 * into the crypto library's ratchet, so that the server derives exactly
 * the keys a client derives.
 */
#ifndef SESS_CRYPTO_H
#define SESS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "sess_keys.h"
#include "status.h"

/* Length of the client's handshake secret, in bytes. */
#define SESS_CLIENT_SECRET_LEN 32
/* Length of the one-response key handed to the gateway, in bytes. */
#define SESS_RESPONSE_KEY_LEN 32
/* Length of an AEAD tag appended to a sealed body, in bytes. */
#define SESS_TAG_LEN 16

/* Derives the key of the first epoch from the client's secret, salted
 * with the session id. */
enum cj_status
sess_crypto_first_key(const unsigned char *secret, size_t secret_len,
                      const char *sid,
                      unsigned char out[SESS_EPOCH_KEY_LEN]) CJ_WARN_UNUSED;

/* Derives the key of epoch e + 1 from the key of epoch e. */
enum cj_status
sess_crypto_next_key(const unsigned char in[SESS_EPOCH_KEY_LEN],
                     unsigned char out[SESS_EPOCH_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Opens a request sealed under the epoch's client-to-server key with the
 * nonce u32(epoch) || u64(sequence). The additional data must start with
 * the version, sid, epoch and sequence (the stateful layout). pt receives
 * ct_len - SESS_TAG_LEN bytes, and only when the tag verifies.
 * CJ_ERR_CRYPTO otherwise; CJ_ERR_INVALID for an epoch above 2^32 - 1 or a
 * sequence outside 1..2^53 - 1.
 */
enum cj_status sess_crypto_open(const unsigned char key[SESS_EPOCH_KEY_LEN],
                                const char *sid, uint64_t epoch,
                                uint64_t sequence, const unsigned char *aad,
                                size_t aad_len, const unsigned char *ct,
                                size_t ct_len,
                                unsigned char *pt) CJ_WARN_UNUSED;

/* Derives the key for the one response to request `sequence` from the
 * epoch's server-to-client key. */
enum cj_status sess_crypto_response_key(
    const unsigned char key[SESS_EPOCH_KEY_LEN], uint64_t sequence,
    unsigned char out[SESS_RESPONSE_KEY_LEN]) CJ_WARN_UNUSED;

#endif

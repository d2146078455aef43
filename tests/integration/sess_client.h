/*
 * The client side of a stateful session, for tests: the keys a client
 * derives from its secret and the session id, ratcheted per epoch, and
 * sealing a request the way a client does.
 */
#ifndef SESS_CLIENT_H
#define SESS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sess_crypto.h"
#include "status.h"

struct sess_client_keys {
    unsigned char first[SESS_EPOCH_KEY_LEN]; /* key of epoch 0 */
};

enum cj_status sess_client_keys_init(struct sess_client_keys *k,
                                     const unsigned char *secret,
                                     const char *sid) CJ_WARN_UNUSED;

/* Writes the key of `epoch`, ratcheted from epoch 0. */
enum cj_status
sess_client_epoch_key(const struct sess_client_keys *k, uint64_t epoch,
                      unsigned char out[SESS_EPOCH_KEY_LEN]) CJ_WARN_UNUSED;

/* Seals pt under the client-to-server key of epoch; ct receives pt_len +
 * 16 bytes. */
enum cj_status sess_client_seal(const struct sess_client_keys *k,
                                uint64_t epoch, uint64_t sequence,
                                const unsigned char *aad, size_t aad_len,
                                const unsigned char *pt, size_t pt_len,
                                unsigned char *ct) CJ_WARN_UNUSED;

/* Writes the key the client expects for the response to `sequence`. */
enum cj_status sess_client_response_key(
    const struct sess_client_keys *k, uint64_t epoch, uint64_t sequence,
    unsigned char out[SESS_RESPONSE_KEY_LEN]) CJ_WARN_UNUSED;

#endif

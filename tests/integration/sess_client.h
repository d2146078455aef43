/*
 * The client side of a stateful session, for tests, on the crypto
 * library's client functions: the ratchet from the handshake secret, and a
 * request sealed into its envelope and taken apart again as the gateway
 * does, giving the additional data and ciphertext OpenRequest receives.
 */
#ifndef SESS_CLIENT_H
#define SESS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ratchet.h"
#include "status.h"

/* One sealed request as the gateway forwards it; free with
 * sess_client_request_clear. */
struct sess_client_request {
    uint8_t *aad;
    size_t aad_len;
    uint8_t *ct;
    size_t ct_len;
};

/* Derives the key of `epoch` from the handshake, ratcheting from 0. */
enum cj_status
sess_client_epoch_key(const uint8_t *secret, const char *sid, uint32_t epoch,
                      uint8_t out[CJ_RATCHET_KEY_LEN]) CJ_WARN_UNUSED;

/* Seals body for POST /v1/me under epoch and sequence. */
enum cj_status sess_client_seal(const uint8_t *secret, const char *sid,
                                uint32_t epoch, uint64_t sequence,
                                const uint8_t *body, size_t body_len,
                                struct sess_client_request *out) CJ_WARN_UNUSED;

void sess_client_request_clear(struct sess_client_request *r);

/* Derives the key the client expects for the response to `sequence`. */
enum cj_status
sess_client_response_key(const uint8_t *secret, const char *sid, uint32_t epoch,
                         uint64_t sequence,
                         uint8_t out[CJ_RATCHET_KEY_LEN]) CJ_WARN_UNUSED;

#endif

/*
 * Stateful sealed requests and responses: AES-256-GCM under the epoch's
 * client-to-server key with nonce u32(epoch) || u64(seq), the envelope
 * {"v","epoch","seq","ct"} beside a Cerrojo-Session header, and responses
 * under a one-response key. Byte layouts are in docs/protocol.md.
 */
#ifndef CJ_ENVELOPE_STATEFUL_H
#define CJ_ENVELOPE_STATEFUL_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "ratchet.h"
#include "status.h"

/* Largest sequence number: 2^53 - 1, the largest integer every JSON
 * implementation (JavaScript included) reads exactly. Sequence numbers
 * start at 1. */
#define CJ_STATEFUL_MAX_SEQ ((UINT64_C(1) << 53) - 1)
/* Response nonces are random, 12 bytes. */
#define CJ_STATEFUL_NONCE_LEN 12

/* A parsed request envelope; owns ct (free with
 * cj_stateful_request_clear()). */
struct cj_stateful_request {
    uint8_t version;
    uint32_t epoch;
    uint64_t seq;
    uint8_t *ct;
    size_t ct_len;
};

/*
 * Builds the request AAD: u8(version) || u16(len(sid)) || sid ||
 * u32(epoch) || u64(seq) || u16(len(method)) || method || u16(len(path))
 * || path, into a new buffer freed by the caller.
 */
enum cj_status cj_stateful_build_aad(const uint8_t *session_id,
                                     size_t session_id_len, uint32_t epoch,
                                     uint64_t seq, const char *method,
                                     const char *path, uint8_t **aad,
                                     size_t *aad_len) CJ_WARN_UNUSED;

/*
 * Seals a request under the epoch's client-to-server key: envelope
 * {"v":1,"epoch":n,"seq":n,"ct":...} in *envelope (new string, caller
 * frees). The caller sends the session id in the Cerrojo-Session header.
 * Usage: cj_stateful_seal_request(c2s, sid, sid_len, epoch, seq, "GET",
 * "/v1/me", &pt, &json, &json_len).
 */
enum cj_status
cj_stateful_seal_request(const uint8_t c2s[CJ_RATCHET_KEY_LEN],
                         const uint8_t *session_id, size_t session_id_len,
                         uint32_t epoch, uint64_t seq, const char *method,
                         const char *path, const struct cj_seal_plaintext *pt,
                         char **envelope, size_t *envelope_len) CJ_WARN_UNUSED;

/* Parses a request envelope: strict JSON, version 1, seq in [1, 2^53 -
 * 1], epoch in 32 bits, ct of at least 16 bytes. */
enum cj_status
cj_stateful_parse_request(const char *envelope, size_t envelope_len,
                          struct cj_stateful_request *out,
                          enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Frees the ciphertext of a parsed request; accepts NULL. */
void cj_stateful_request_clear(struct cj_stateful_request *request);

/*
 * Opens a parsed request with the client-to-server key of its epoch (the
 * session service's step, before it checks the replay window). On success
 * *pt is a new buffer of *pt_len bytes, wiped and freed by the caller.
 */
enum cj_status cj_stateful_open_request(
    const uint8_t c2s[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len, const struct cj_stateful_request *request,
    const char *method, const char *path, uint8_t **pt, size_t *pt_len,
    enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/*
 * Seals a response body with the one-response key (from
 * cj_ratchet_response_key()) and a random nonce: envelope
 * {"v":1,"nonce":...,"ct":...}. AAD: u8(version) || u16(len(sid)) || sid
 * || u32(epoch) || u64(seq) of the request it belongs to.
 */
enum cj_status cj_stateful_seal_response(
    const uint8_t response_key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len, uint32_t epoch, uint64_t seq, const uint8_t *body,
    size_t body_len, char **envelope, size_t *envelope_len) CJ_WARN_UNUSED;

/* As cj_stateful_seal_response() with a caller-chosen 12-byte nonce, for
 * known-answer tests and the documented example only. */
enum cj_status cj_stateful_seal_response_with_nonce(
    const uint8_t response_key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len, uint32_t epoch, uint64_t seq,
    const uint8_t nonce[CJ_STATEFUL_NONCE_LEN], const uint8_t *body,
    size_t body_len, char **envelope, size_t *envelope_len) CJ_WARN_UNUSED;

/* Opens a response envelope on the client; *body is a new buffer of
 * *body_len bytes (at least 1 allocated), wiped and freed by the caller. */
enum cj_status
cj_stateful_open_response(const uint8_t response_key[CJ_RATCHET_KEY_LEN],
                          const uint8_t *session_id, size_t session_id_len,
                          uint32_t epoch, uint64_t seq, const char *envelope,
                          size_t envelope_len, uint8_t **body, size_t *body_len,
                          enum cj_seal_reason *reason) CJ_WARN_UNUSED;

#endif

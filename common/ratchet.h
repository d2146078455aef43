/*
 * Stateful-session key derivation: the first epoch key from the client's
 * handshake secret, the ratchet from one epoch key to the next, the
 * per-epoch client-to-server and server-to-client keys, the one-response
 * keys, and the epoch number from the clock. All keys are 32 bytes of
 * HKDF-SHA256 output; labels and layouts are in docs/protocol.md.
 */
#ifndef CJ_RATCHET_H
#define CJ_RATCHET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto_util.h"
#include "status.h"

#define CJ_RATCHET_KEY_LEN 32
/* Length of the client's handshake secret. */
#define CJ_RATCHET_CLIENT_SECRET_LEN 32
/* Bounds of a session id (the HKDF salt), in bytes. */
#define CJ_SESSION_ID_MIN_LEN 16
#define CJ_SESSION_ID_MAX_LEN 64
/* Length of the session ids that cerrojo-session issues: 16 random bytes in
 * unpadded base64url. The stateful additional data admits the range above,
 * but no session has an id of another length. */
#define CJ_SESSION_ID_LEN 22

/* Returns true when `id` has the form of an issued session id:
 * CJ_SESSION_ID_LEN characters of the base64url alphabet, without padding.
 * The gateway and session both use it, so their checks agree. */
bool cj_session_id_valid(const char *id);
/* Most ratchet steps one call may take (about 1.4 years of 15-minute
 * epochs), so a forged epoch number cannot buy unbounded work. */
#define CJ_RATCHET_MAX_STEPS 50000

/* HKDF info labels; the response label is followed by u64(seq). */
#define CJ_RATCHET_FIRST_LABEL    "cerrojo epoch key v1"
#define CJ_RATCHET_NEXT_LABEL     "cerrojo epoch ratchet v1"
#define CJ_RATCHET_C2S_LABEL      "cerrojo client-to-server key v1"
#define CJ_RATCHET_S2C_LABEL      "cerrojo server-to-client key v1"
#define CJ_RATCHET_RESPONSE_LABEL "cerrojo response key v1"

/*
 * Derives the epoch-0 key: HKDF-SHA256(salt = session id bytes, ikm =
 * client secret, info = CJ_RATCHET_FIRST_LABEL, 32).
 * Usage: cj_ratchet_first_key(key, sid, sid_len, client_secret).
 */
enum cj_status cj_ratchet_first_key(
    uint8_t key[CJ_RATCHET_KEY_LEN], const uint8_t *session_id,
    size_t session_id_len,
    const uint8_t client_secret[CJ_RATCHET_CLIENT_SECRET_LEN]) CJ_WARN_UNUSED;

/*
 * Replaces key (epoch n) with the epoch n + 1 key, HKDF-Expand(key,
 * CJ_RATCHET_NEXT_LABEL, 32); the old key is overwritten and the
 * temporary wiped, so the old epoch cannot be recomputed from the new.
 */
enum cj_status cj_ratchet_next(uint8_t key[CJ_RATCHET_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Advances key in place from epoch `from` to epoch `to` (to >= from, at
 * most CJ_RATCHET_MAX_STEPS steps). The session service's lazy advance
 * calls it with the stored epoch; the client calls it with 0 and the
 * first key. CJ_ERR_INVALID when to < from or the gap is too large.
 */
enum cj_status cj_ratchet_advance(uint8_t key[CJ_RATCHET_KEY_LEN],
                                  uint32_t from, uint32_t to) CJ_WARN_UNUSED;

/* Derives an epoch's client-to-server and server-to-client keys. */
enum cj_status
cj_ratchet_direction_keys(const uint8_t epoch_key[CJ_RATCHET_KEY_LEN],
                          uint8_t c2s[CJ_RATCHET_KEY_LEN],
                          uint8_t s2c[CJ_RATCHET_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Derives the key for the one response to request seq: HKDF-Expand(s2c,
 * CJ_RATCHET_RESPONSE_LABEL || u64(seq), 32). Session returns it to the
 * gateway; the client derives the same from its own s2c key.
 */
enum cj_status cj_ratchet_response_key(uint8_t out[CJ_RATCHET_KEY_LEN],
                                       const uint8_t s2c[CJ_RATCHET_KEY_LEN],
                                       uint64_t seq) CJ_WARN_UNUSED;

/*
 * Computes the epoch at now_ms of a session created at created_ms, with
 * epochs of epoch_len_ms: floor((now - created) / epoch_len). Epoch 0
 * starts at creation. CJ_ERR_INVALID when now < created, epoch_len is 0,
 * or the epoch does not fit in 32 bits.
 */
enum cj_status cj_epoch_at(uint64_t created_ms, uint64_t epoch_len_ms,
                           uint64_t now_ms, uint32_t *epoch) CJ_WARN_UNUSED;

/* A ratchet position held in guarded memory, for the client library. */
struct cj_ratchet {
    struct cj_secret *key; /* the key of `epoch` */
    uint32_t epoch;
};

/* Creates a ratchet at epoch 0 from the handshake; NULL on failure. Free
 * it with cj_ratchet_free(). */
struct cj_ratchet *
cj_ratchet_new(const uint8_t *session_id, size_t session_id_len,
               const uint8_t client_secret[CJ_RATCHET_CLIENT_SECRET_LEN]);

/* Moves the ratchet forward to epoch (never back: CJ_ERR_INVALID). */
enum cj_status cj_ratchet_move_to(struct cj_ratchet *ratchet,
                                  uint32_t epoch) CJ_WARN_UNUSED;

/* Wipes and frees a ratchet; accepts NULL. */
void cj_ratchet_free(struct cj_ratchet *ratchet);

#endif

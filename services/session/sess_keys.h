/*
 * Epoch keys at rest and in time: wrapping each stored epoch key under the
 * session service's own key (AES-256-GCM under a key derived per session id
 * and epoch, and bound to both), choosing which epoch a request may use, and
 * the keyed hash that stands for a session id in logs.
 */
#ifndef SESS_KEYS_H
#define SESS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Length of the wrapping key (CERROJO_SESSION_KEY), in bytes. */
#define SESS_WRAP_KEY_LEN 32
/* Length of an epoch key, in bytes. */
#define SESS_EPOCH_KEY_LEN 32
/* Bytes of the wrapping key's id that each wrapped key carries. */
#define SESS_WRAP_KEY_ID_LEN 8
/* Wrapped key: version, key id, nonce, ciphertext, tag. */
#define SESS_WRAPPED_LEN                                                       \
    (1 + SESS_WRAP_KEY_ID_LEN + 12 + SESS_EPOCH_KEY_LEN + 16)
/* Hex characters of a session id's keyed hash in logs, plus the NUL. */
#define SESS_LOG_ID_SIZE 17

/* The service's wrapping keys: the current one and, during its rotation,
 * the previous one, which is only used to unwrap. */
struct sess_wrapping;

/*
 * Creates the wrapping keys from 32-byte keys; previous may be NULL. The
 * bytes are copied into guarded memory. Free with sess_wrapping_free.
 */
enum cj_status sess_wrapping_new(const unsigned char *current,
                                 const unsigned char *previous,
                                 struct sess_wrapping **out) CJ_WARN_UNUSED;

/* Wipes and frees; NULL-safe. */
void sess_wrapping_free(struct sess_wrapping *w);

/*
 * Decodes a wrapping key written as base64 (standard with padding, or
 * base64url without) into 32 bytes. Surrounding white space is ignored.
 * CJ_ERR_INVALID when the text is not base64 or not 32 bytes long.
 */
enum cj_status
sess_wrap_key_decode(const char *text,
                     unsigned char key[SESS_WRAP_KEY_LEN]) CJ_WARN_UNUSED;

/*
 * Wraps an epoch key for session sid and epoch in format version 2: the
 * AES-256-GCM key is HKDF-SHA256 of the current wrapping key with the
 * session id and the epoch in its info. out must hold SESS_WRAPPED_LEN bytes.
 */
enum cj_status
sess_key_wrap(const struct sess_wrapping *w, const char *sid, uint64_t epoch,
              const unsigned char key[SESS_EPOCH_KEY_LEN],
              unsigned char out[SESS_WRAPPED_LEN]) CJ_WARN_UNUSED;

/*
 * Unwraps a key wrapped by sess_key_wrap under the current or the previous
 * wrapping key, in format version 2 or in version 1 (sealed under the
 * wrapping key itself, as written before version 2). CJ_ERR_CRYPTO when the
 * tag fails, the wrapping key is unknown, or the blob belongs to another
 * session or epoch. key is then left zeroed, and session.unwrap_failed is
 * logged with the reason: malformed, unknown_wrapping_key,
 * key_derivation_failed or authentication_failed. That log line comes at
 * most once per CJ_LOG_REPEAT_INTERVAL_MS for one sess_wrapping.
 */
enum cj_status
sess_key_unwrap(const struct sess_wrapping *w, const char *sid, uint64_t epoch,
                const unsigned char *wrapped, size_t wrapped_len,
                unsigned char key[SESS_EPOCH_KEY_LEN]) CJ_WARN_UNUSED;

/* Tells whether wrapped was made with the current wrapping key. */
bool sess_key_is_current(const struct sess_wrapping *w,
                         const unsigned char *wrapped, size_t wrapped_len);

/*
 * Writes a short keyed hash of sid (16 hex characters) for logs, so events
 * of one session can be correlated without the id itself.
 */
void sess_log_id(const struct sess_wrapping *w, const char *sid,
                 char out[SESS_LOG_ID_SIZE]);

/* Epoch timing, all in milliseconds. */
struct sess_epoch_policy {
    int64_t epoch_ms;  /* length of one epoch */
    int64_t grace_ms;  /* the previous epoch stays accepted this long */
    int64_t leeway_ms; /* the next epoch is accepted this early */
};

/* Key that opens a request: stored, kept from before, or derived. */
enum sess_epoch_choice {
    SESS_EPOCH_REJECTED = 0,
    SESS_EPOCH_CURRENT,
    SESS_EPOCH_PREVIOUS,
    SESS_EPOCH_NEXT,
};

/* Returns the epoch at now_ms of a session created at created_ms. */
uint64_t sess_epoch_at(const struct sess_epoch_policy *p, int64_t created_ms,
                       int64_t now_ms);

/* Returns the instant epoch starts, Unix ms. */
int64_t sess_epoch_start(const struct sess_epoch_policy *p, int64_t created_ms,
                         uint64_t epoch);

/*
 * Decides whether a request sealed under client_epoch is acceptable at
 * now_ms: the current epoch always, the previous one until grace_ms after
 * the current began, the next one within leeway_ms of its start.
 */
enum sess_epoch_choice sess_epoch_choose(const struct sess_epoch_policy *p,
                                         int64_t created_ms, int64_t now_ms,
                                         uint64_t client_epoch);

#endif

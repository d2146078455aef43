/*
 * Padding of sealed plaintexts. An AEAD ciphertext is as long as its
 * plaintext plus the tag. Without padding, the size of an envelope gives
 * away the length of a password or of a stored value to any party that can
 * read it (a TLS-terminating proxy, an access log of Content-Length).
 * Both sides append JSON whitespace to the JSON body before sealing, so
 * that the sealed plaintext grows to a multiple of CJ_SEAL_PAD_BLOCK_LEN.
 * The receiver's JSON parser skips the spaces, so no field of the envelope
 * changes. The rule is in docs/protocol.md ("Padding").
 */
#ifndef CJ_SEAL_PAD_H
#define CJ_SEAL_PAD_H

#include <stddef.h>

#include "status.h"

/* Sealed plaintexts grow to a multiple of this many bytes. One block holds
 * a login whose name and password take up to 220 bytes together, counted
 * as JSON-escaped text. A stateful login leaves 158 bytes for them,
 * because its client_secret member takes 62, and a stateful register
 * leaves 144 for username, email and password. So all usual logins seal to
 * one size. A larger block would hide more but adds up to block - 1 bytes
 * to every request and response (a third more as base64url), also to the
 * Cerrojo-Seal header of each GET. */
#define CJ_SEAL_PAD_BLOCK_LEN 256

/* Upper bound of the bytes of any request or response envelope other than
 * the base64url text of "ct" (the longest, stateless, has about 100). */
#define CJ_SEAL_PAD_ENVELOPE_OVERHEAD 128

/*
 * Appends spaces to the JSON text *text (*text_len bytes, allocated with
 * malloc) so that prefix_len + *text_len becomes the next
 * multiple of CJ_SEAL_PAD_BLOCK_LEN. prefix_len counts the bytes that
 * precede the JSON in the sealed plaintext (the timestamp and token of a
 * request, 0 for a response). The sum never exceeds max_len: a text that
 * would cross it is padded only up to it, and a text already at or over
 * it is left as it is. When spaces are added, *text becomes a new
 * NUL-terminated buffer (malloc) and the old one is wiped and freed,
 * because it may hold a password or token. On failure
 * (CJ_ERR_NOMEM, CJ_ERR_INVALID for NULL arguments) *text is unchanged.
 */
enum cj_status cj_seal_pad_json(char **text, size_t *text_len,
                                size_t prefix_len,
                                size_t max_len) CJ_WARN_UNUSED;

/*
 * Returns the longest plaintext whose sealed envelope (AEAD tag included,
 * ct in base64url) fits in envelope_max bytes; 0 when none does. A receiver
 * that rejects envelopes over envelope_max therefore accepts any plaintext
 * padded up to this length.
 */
size_t cj_seal_pad_plaintext_max(size_t envelope_max);

#endif

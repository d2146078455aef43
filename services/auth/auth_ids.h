/*
 * Random identifiers and opaque tokens: UUIDs for rows and token ids, and
 * refresh tokens (256 random bits, base64url), of which only the SHA-256
 * is ever stored.
 */
#ifndef AUTH_IDS_H
#define AUTH_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_store.h"
#include "status.h"

#define AUTH_REFRESH_TOKEN_BYTES 32
/* base64url without padding of 32 bytes is 43 characters, plus the NUL. */
#define AUTH_REFRESH_TOKEN_TEXT_SIZE 44

/* Writes a random (version 4) UUID in canonical text form. */
void auth_uuid_new(char out[AUTH_UUID_TEXT_SIZE]);

/* Returns true when text is a canonical lower-case UUID. */
bool auth_uuid_valid(const char *text);

/*
 * Writes text in lower case to out and returns true when text is a UUID
 * in canonical form with hex digits of either case. Otherwise returns
 * false and leaves out unchanged.
 */
bool auth_uuid_canonicalize(const char *text, char *out, size_t out_size);

/*
 * Creates a refresh token: its text for the client and its SHA-256 for
 * the database. The caller wipes text once it has been sent.
 */
void auth_refresh_token_new(char text[AUTH_REFRESH_TOKEN_TEXT_SIZE],
                            uint8_t hash[AUTH_TOKEN_HASH_SIZE]);

/*
 * Hashes a refresh token presented by a client. CJ_ERR_UNAUTHENTICATED when
 * it is not 43 characters of canonical base64url, which no issued token
 * can be.
 */
CJ_WARN_UNUSED enum cj_status
auth_refresh_token_hash(const char *text, size_t len,
                        uint8_t hash[AUTH_TOKEN_HASH_SIZE]);

/*
 * Writes the SHA-256 of a session id in lower-case hex, the form audit
 * events store. The id is 128 random bits, so the hash cannot be reversed,
 * and an operator who has an id finds its events by hashing it too.
 */
void auth_session_id_hash(const char *session_id,
                          char out[AUTH_SESSION_HASH_TEXT_SIZE]);

#endif

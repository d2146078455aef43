/* UUIDs and refresh tokens from the system CSPRNG. */
#include "auth_ids.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "crypto_util.h"

void auth_uuid_new(char out[AUTH_UUID_TEXT_SIZE])
{
    uint8_t b[16];

    cj_random_bytes(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4, RFC 9562 5.4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, AUTH_UUID_TEXT_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

bool auth_uuid_valid(const char *text)
{
    if (text == NULL || strlen(text) != AUTH_UUID_TEXT_SIZE - 1) {
        return false;
    }
    for (size_t i = 0; i < AUTH_UUID_TEXT_SIZE - 1; i++) {
        char c = text[i];
        bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash_position
                ? c != '-'
                : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool auth_uuid_canonicalize(const char *text, char *out, size_t out_size)
{
    char lower[AUTH_UUID_TEXT_SIZE];

    if (text == NULL || strlen(text) != AUTH_UUID_TEXT_SIZE - 1 ||
        out_size < AUTH_UUID_TEXT_SIZE) {
        return false;
    }
    for (size_t i = 0; i < AUTH_UUID_TEXT_SIZE; i++) {
        lower[i] = (char)tolower((unsigned char)text[i]);
    }
    if (!auth_uuid_valid(lower)) {
        return false;
    }
    memcpy(out, lower, AUTH_UUID_TEXT_SIZE);
    return true;
}

void auth_refresh_token_new(char text[AUTH_REFRESH_TOKEN_TEXT_SIZE],
                            uint8_t hash[AUTH_TOKEN_HASH_SIZE])
{
    uint8_t raw[AUTH_REFRESH_TOKEN_BYTES];

    cj_random_bytes(raw, sizeof(raw));
    sodium_bin2base64(text, AUTH_REFRESH_TOKEN_TEXT_SIZE, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    SHA256(raw, sizeof(raw), hash);
    cj_wipe(raw, sizeof(raw));
}

void auth_session_id_hash(const char *session_id,
                          char out[AUTH_SESSION_HASH_TEXT_SIZE])
{
    uint8_t hash[SHA256_DIGEST_LENGTH];

    SHA256((const uint8_t *)session_id, strlen(session_id), hash);
    sodium_bin2hex(out, AUTH_SESSION_HASH_TEXT_SIZE, hash, sizeof(hash));
}

enum cj_status auth_refresh_token_hash(const char *text, size_t len,
                                       uint8_t hash[AUTH_TOKEN_HASH_SIZE])
{
    uint8_t raw[AUTH_REFRESH_TOKEN_BYTES];
    size_t raw_len = 0;
    enum cj_status rc = CJ_ERR_UNAUTHENTICATED;

    if (len != AUTH_REFRESH_TOKEN_TEXT_SIZE - 1) {
        goto out;
    }
    if (sodium_base642bin(raw, sizeof(raw), text, len, NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        raw_len != sizeof(raw)) {
        goto out;
    }
    SHA256(raw, sizeof(raw), hash);
    rc = CJ_OK;
out:
    cj_wipe(raw, sizeof(raw));
    return rc;
}

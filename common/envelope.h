/*
 * Parts shared by cerrojo's stateless and stateful sealed envelopes: the
 * rejection reasons, size limits, the sealed plaintext layout, the strict
 * JSON envelope parser, and the header form that GET requests use. The
 * byte layouts are specified in docs/protocol.md.
 */
#ifndef CJ_ENVELOPE_H
#define CJ_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Envelope format version written and accepted by this code. */
#define CJ_ENVELOPE_VERSION 1

/* Largest sealed plaintext: timestamp, token and body (1 MiB). */
#define CJ_SEAL_MAX_PLAINTEXT_LEN ((size_t)1 << 20)
/* Largest JSON envelope accepted: the base64url of the largest ciphertext
 * plus room for the other fields (1.5 MiB). */
#define CJ_SEAL_MAX_ENVELOPE_LEN ((size_t)3 << 19)
/* Largest value of the Cerrojo-Seal request header (8 KiB, the default
 * size of one nginx large header buffer). */
#define CJ_SEAL_MAX_HEADER_LEN 8192
/* Largest access token carried in a sealed plaintext, in bytes. */
#define CJ_SEAL_MAX_TOKEN_LEN 8192
/* Bounds of the HTTP method and path bound into the AAD, in bytes. */
#define CJ_SEAL_MAX_METHOD_LEN 16
#define CJ_SEAL_MAX_PATH_LEN   2048
/* Fixed part of the sealed plaintext: ts_ms (8) || token_len (2). */
#define CJ_SEAL_PLAINTEXT_HEADER_LEN 10

/* Request header that carries the envelope of a request without a body. */
#define CJ_SEAL_HEADER_NAME "Cerrojo-Seal"
/* Request header that carries the session id of a stateful request. */
#define CJ_SESSION_HEADER_NAME "Cerrojo-Session"

/*
 * Reason for rejecting an envelope. Each reason is for logs and metrics only:
 * clients see one error class (decryption_failed or invalid_request).
 */
enum cj_seal_reason {
    CJ_SEAL_OK = 0,
    CJ_SEAL_TOO_LARGE,       /* input over its size limit */
    CJ_SEAL_BAD_JSON,        /* not valid JSON text */
    CJ_SEAL_DUPLICATE_FIELD, /* a member name appears twice */
    CJ_SEAL_TRAILING_DATA,   /* bytes other than whitespace after the object */
    CJ_SEAL_NOT_OBJECT,      /* the JSON value is not an object */
    CJ_SEAL_MISSING_FIELD,   /* a required member is absent */
    CJ_SEAL_UNKNOWN_FIELD,   /* a member this version does not define */
    CJ_SEAL_WRONG_TYPE,      /* a member of the wrong JSON type */
    CJ_SEAL_NOT_INTEGER,     /* a number with a fraction or exponent */
    CJ_SEAL_OUT_OF_RANGE,    /* an integer outside its range */
    CJ_SEAL_UNKNOWN_VERSION, /* "v" is not CJ_ENVELOPE_VERSION */
    CJ_SEAL_UNKNOWN_SUITE,   /* a KEM, KDF or AEAD id not supported */
    CJ_SEAL_BAD_BASE64,      /* not canonical base64url without padding */
    CJ_SEAL_BAD_LENGTH,      /* a decoded field of the wrong length */
    CJ_SEAL_LOW_ORDER_SHARE, /* enc is a small-order X25519 point */
    CJ_SEAL_AUTH_FAILED,     /* the AEAD tag did not verify */
    CJ_SEAL_BAD_PLAINTEXT,   /* the opened plaintext is malformed */
    CJ_SEAL_STALE_TIMESTAMP, /* the timestamp is outside the window */
    CJ_SEAL_BAD_ARGUMENT,    /* a caller argument is invalid */
    CJ_SEAL_NO_MEMORY,       /* an allocation failed */
    CJ_SEAL_INTERNAL,        /* an unexpected library failure */
};

/* Returns a stable snake_case name of a reason ("auth_failed") for logs. */
const char *cj_seal_reason_name(enum cj_seal_reason reason);

/* Maps a reason to a status: CJ_ERR_CRYPTO for auth_failed and
 * low_order_share, CJ_ERR_TOO_LARGE, CJ_ERR_NOMEM, CJ_ERR_INTERNAL, and
 * CJ_ERR_INVALID for every other rejection. */
enum cj_status cj_seal_reason_status(enum cj_seal_reason reason);

/*
 * The sealed plaintext of a request in both modes, as views into a buffer
 * owned elsewhere. Wire layout: ts_ms (u64, big-endian) || token_len (u16,
 * big-endian) || token || body. token_len 0 means no token.
 */
struct cj_seal_plaintext {
    uint64_t ts_ms; /* client time in ms since the Unix epoch */
    const uint8_t *token;
    size_t token_len;
    const uint8_t *body;
    size_t body_len;
};

/* Encodes pt into a new buffer *out (*out_len bytes). The caller wipes
 * and frees it. CJ_ERR_TOO_LARGE when a part is over its limit. */
enum cj_status cj_seal_plaintext_encode(const struct cj_seal_plaintext *pt,
                                        uint8_t **out,
                                        size_t *out_len) CJ_WARN_UNUSED;

/* Decodes buf into pt, whose token and body point into buf. Rejects
 * (CJ_SEAL_BAD_PLAINTEXT) a buffer shorter than its header or token. */
enum cj_status
cj_seal_plaintext_decode(const uint8_t *buf, size_t len,
                         struct cj_seal_plaintext *pt,
                         enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/*
 * Checks |ts_ms - now_ms| <= window_ms (the stateless window, ±60 s by
 * default). CJ_ERR_INVALID with CJ_SEAL_STALE_TIMESTAMP otherwise.
 */
enum cj_status
cj_seal_check_timestamp(uint64_t ts_ms, uint64_t now_ms, uint64_t window_ms,
                        enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Checks an HTTP method (1 to 16 upper-case ASCII letters) and a path (1
 * to 2048 bytes, starting with '/', no control characters or spaces). */
bool cj_seal_method_valid(const char *method);
bool cj_seal_path_valid(const char *path);

/*
 * Encodes an envelope (JSON text) as the value of the Cerrojo-Seal header:
 * base64url without padding of the JSON bytes. *value is a new
 * NUL-terminated string freed by the caller. CJ_ERR_TOO_LARGE when the
 * value would exceed CJ_SEAL_MAX_HEADER_LEN.
 */
enum cj_status cj_seal_header_encode(const char *json, size_t json_len,
                                     char **value) CJ_WARN_UNUSED;

/* Decodes a Cerrojo-Seal header value into the envelope's JSON text (a new
 * buffer of *json_len bytes plus a NUL, freed by the caller). */
enum cj_status
cj_seal_header_decode(const char *value, size_t value_len, char **json,
                      size_t *json_len,
                      enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* ---- Building blocks shared by the two envelope modules ---- */

enum cj_envelope_field_type {
    CJ_ENVELOPE_FIELD_UINT,   /* a JSON integer in [min, max] */
    CJ_ENVELOPE_FIELD_BASE64, /* base64url text of [min, max] bytes */
};

/* One expected member of an envelope object, filled by the parser. */
struct cj_envelope_field {
    const char *name;
    enum cj_envelope_field_type type;
    uint64_t min;     /* minimum value, or minimum decoded length */
    uint64_t max;     /* maximum value, or maximum decoded length */
    uint64_t number;  /* out: the value of a UINT field */
    uint8_t *bytes;   /* out: new buffer of a BASE64 field, caller frees */
    size_t bytes_len; /* out: decoded length */
    bool present;     /* out: set when the member was found */
};

/*
 * Parses a JSON envelope of json_len bytes: exactly one object whose
 * members are the given fields, each present once, nothing else, and only
 * whitespace after it. On failure every decoded buffer is freed and
 * *reason says why.
 */
enum cj_status cj_envelope_parse(const char *json, size_t json_len,
                                 struct cj_envelope_field *fields,
                                 size_t field_count,
                                 enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Frees the decoded buffers of parsed fields; safe to call twice. */
void cj_envelope_fields_clear(struct cj_envelope_field *fields,
                              size_t field_count);

/* Returns a new NUL-terminated base64url (no padding) encoding of len
 * bytes, or NULL when out of memory. */
char *cj_base64url_encode(const uint8_t *bytes, size_t len);

/* Formats an envelope with printf-style arguments into a new string and
 * stores its length; NULL when out of memory. */
char *cj_envelope_format(size_t *len, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats the sealed response envelope {"v","nonce","ct"} of both modes
 * from the binary nonce and ciphertext. CJ_ERR_NOMEM when out of memory. */
enum cj_status cj_envelope_format_response(const uint8_t *nonce,
                                           size_t nonce_len, const uint8_t *ct,
                                           size_t ct_len, char **envelope,
                                           size_t *envelope_len) CJ_WARN_UNUSED;

/* Appends a 16-bit big-endian length and then the bytes of text to *p. */
void cj_put_u16_string(uint8_t **p, const char *text, size_t len);

/* Writes v big-endian to p (2, 4 or 8 bytes). */
void cj_put_u16(uint8_t *p, uint16_t v);
void cj_put_u32(uint8_t *p, uint32_t v);
void cj_put_u64(uint8_t *p, uint64_t v);

/* Stores reason in *out when out is not NULL and returns its status. */
enum cj_status cj_seal_fail(enum cj_seal_reason *out,
                            enum cj_seal_reason reason);

#endif

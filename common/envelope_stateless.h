/*
 * Stateless sealed requests and responses: HPKE base mode to one of the
 * server's keys, the envelope {"v","kid","kdf","aead","enc","ct"}, and the
 * response sealed as RFC 9458 4.4 does from a secret exported from the
 * request context. Byte layouts are in docs/protocol.md.
 */
#ifndef CJ_ENVELOPE_STATELESS_H
#define CJ_ENVELOPE_STATELESS_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "hpke.h"
#include "ohttp.h"
#include "status.h"

/* HPKE info = CJ_STATELESS_INFO_LABEL || 0x00 || version || key_id ||
 * kem_id || kdf_id || aead_id, as RFC 9458 4.3 binds its header. */
#define CJ_STATELESS_INFO_LABEL "cerrojo stateless request v1"
/* Exporter context of the response secret (RFC 9458 4.4 analogue). */
#define CJ_STATELESS_RESPONSE_LABEL "cerrojo stateless response v1"
/* version (1) || key_id (1) || kem_id (2) || kdf_id (2) || aead_id (2). */
#define CJ_STATELESS_HEADER_LEN 8
#define CJ_STATELESS_INFO_LEN                                                  \
    (sizeof(CJ_STATELESS_INFO_LABEL) + CJ_STATELESS_HEADER_LEN)

/* The header fields that the info binds; kem_id is always X25519 in v1. */
struct cj_stateless_header {
    uint8_t version;
    uint8_t key_id;
    struct cj_hpke_suite suite;
};

/* A parsed request envelope; owns ct (free with
 * cj_stateless_request_clear()). */
struct cj_stateless_request {
    struct cj_stateless_header header;
    uint8_t enc[CJ_HPKE_ENC_LEN];
    uint8_t *ct;
    size_t ct_len;
};

/* What the client keeps to open the response; holds the exported secret,
 * so wipe it with cj_stateless_client_wipe(). */
struct cj_stateless_client {
    uint16_t aead_id;
    uint8_t enc[CJ_HPKE_ENC_LEN];
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len;
};

/* Checks version (1) and suite (X25519, HKDF-SHA256, AES-128-GCM,
 * AES-256-GCM or ChaCha20-Poly1305; not export-only). */
enum cj_status
cj_stateless_header_check(const struct cj_stateless_header *hdr,
                          enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Writes the HPKE info of a header (CJ_STATELESS_INFO_LEN bytes). */
void cj_stateless_build_info(const struct cj_stateless_header *hdr,
                             uint8_t info[CJ_STATELESS_INFO_LEN]);

/*
 * Builds the AAD u16(len(method)) || method || u16(len(path)) || path
 * into a new buffer (*aad, *aad_len) freed by the caller. CJ_ERR_INVALID
 * for a method or path that cj_seal_method_valid()/cj_seal_path_valid()
 * rejects.
 */
enum cj_status cj_stateless_build_aad(const char *method, const char *path,
                                      uint8_t **aad,
                                      size_t *aad_len) CJ_WARN_UNUSED;

/* ---- client ---- */

/*
 * Seals a request to the server key pk_r named by hdr: writes the JSON
 * envelope to *envelope (new NUL-terminated string of *envelope_len bytes,
 * freed by the caller) and fills client for opening the response.
 * Usage: cj_stateless_seal_request(&hdr, pk, "POST", "/v1/login", &pt,
 * &json, &json_len, &client).
 */
enum cj_status cj_stateless_seal_request(
    const struct cj_stateless_header *hdr, const uint8_t pk_r[CJ_HPKE_PK_LEN],
    const char *method, const char *path, const struct cj_seal_plaintext *pt,
    char **envelope, size_t *envelope_len,
    struct cj_stateless_client *client) CJ_WARN_UNUSED;

/* As cj_stateless_seal_request() with a caller-chosen ephemeral key, for
 * known-answer tests and the documented example only. */
enum cj_status cj_stateless_seal_request_with_ephemeral(
    const struct cj_stateless_header *hdr, const uint8_t pk_r[CJ_HPKE_PK_LEN],
    const uint8_t sk_e[CJ_HPKE_SK_LEN], const char *method, const char *path,
    const struct cj_seal_plaintext *pt, char **envelope, size_t *envelope_len,
    struct cj_stateless_client *client) CJ_WARN_UNUSED;

/* Opens a response envelope {"v","nonce","ct"}; *body is a new buffer of
 * *body_len bytes (at least 1 allocated), wiped and freed by the caller. */
enum cj_status
cj_stateless_open_response(const struct cj_stateless_client *client,
                           const char *envelope, size_t envelope_len,
                           uint8_t **body, size_t *body_len,
                           enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Wipes a client state; accepts NULL. */
void cj_stateless_client_wipe(struct cj_stateless_client *client);

/* ---- server ---- */

/*
 * Parses a request envelope (the gateway's step before calling kms):
 * strict JSON, known version and suite, enc of 32 bytes that is not a
 * low-order point, ct of at least 16 bytes.
 */
enum cj_status
cj_stateless_parse_request(const char *envelope, size_t envelope_len,
                           struct cj_stateless_request *out,
                           enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/* Frees the ciphertext of a parsed request; accepts NULL. */
void cj_stateless_request_clear(struct cj_stateless_request *request);

/*
 * Opens a request with the HPKE private key sk_r (what kms's OpenSealed
 * does from the parsed fields). On success *pt is a new buffer of *pt_len
 * bytes and secret receives the exported response secret (*secret_len
 * bytes, max(Nn, Nk)); the caller wipes and frees both.
 * Usage: cj_stateless_open(&req.header, sk, req.enc, 32, aad, aad_len,
 * req.ct, req.ct_len, &pt, &pt_len, secret, &secret_len, &why).
 */
enum cj_status cj_stateless_open(
    const struct cj_stateless_header *hdr, const uint8_t sk_r[CJ_HPKE_SK_LEN],
    const uint8_t *enc, size_t enc_len, const uint8_t *aad, size_t aad_len,
    const uint8_t *ct, size_t ct_len, uint8_t **pt, size_t *pt_len,
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN], size_t *secret_len,
    enum cj_seal_reason *reason) CJ_WARN_UNUSED;

/*
 * Seals a response body with the exported secret and the request's enc
 * (the gateway's step): fresh random response nonce, envelope
 * {"v":1,"nonce":...,"ct":...} in *envelope (new string, caller frees).
 */
enum cj_status cj_stateless_seal_response(uint16_t aead_id,
                                          const uint8_t *secret,
                                          size_t secret_len, const uint8_t *enc,
                                          size_t enc_len, const uint8_t *body,
                                          size_t body_len, char **envelope,
                                          size_t *envelope_len) CJ_WARN_UNUSED;

/* As cj_stateless_seal_response() with a caller-chosen response nonce of
 * max(Nn, Nk) bytes, for known-answer tests only. */
enum cj_status cj_stateless_seal_response_with_nonce(
    uint16_t aead_id, const uint8_t *secret, size_t secret_len,
    const uint8_t *enc, size_t enc_len, const uint8_t *response_nonce,
    const uint8_t *body, size_t body_len, char **envelope,
    size_t *envelope_len) CJ_WARN_UNUSED;

#endif

/*
 * HPKE (RFC 9180) with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256, in base
 * and PSK modes, for AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305 and
 * export-only. Built on cerrojo's X25519, HKDF and AEAD wrappers because
 * OpenSSL 3.0 has no HPKE API.
 */
#ifndef CJ_HPKE_H
#define CJ_HPKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Algorithm ids from RFC 9180 7.1, 7.2 and 7.3. */
#define CJ_HPKE_KEM_X25519_SHA256 0x0020
#define CJ_HPKE_KDF_HKDF_SHA256   0x0001
#define CJ_HPKE_AEAD_AES_128_GCM  0x0001
#define CJ_HPKE_AEAD_AES_256_GCM  0x0002
#define CJ_HPKE_AEAD_CHACHA20     0x0003
#define CJ_HPKE_AEAD_EXPORT_ONLY  0xFFFF

#define CJ_HPKE_MODE_BASE 0x00
#define CJ_HPKE_MODE_PSK  0x01

/* Nenc, Npk and Nsk of DHKEM(X25519, HKDF-SHA256). */
#define CJ_HPKE_ENC_LEN 32
#define CJ_HPKE_PK_LEN  32
#define CJ_HPKE_SK_LEN  32
/* Nh of HKDF-SHA256, also the exporter secret length. */
#define CJ_HPKE_NH          32
#define CJ_HPKE_NONCE_LEN   12
#define CJ_HPKE_TAG_LEN     16
#define CJ_HPKE_MAX_KEY_LEN 32
/* Upper bound for info, psk, psk_id and exporter_context (64 KiB); RFC
 * 9180 section 7.2.1 requires at least 64 bytes. */
#define CJ_HPKE_MAX_INPUT_LEN 65536
/* Minimum PSK length, 32 bytes of entropy (RFC 9180 5.1.2). */
#define CJ_HPKE_MIN_PSK_LEN 32

struct cj_hpke_suite {
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_id;
};

enum cj_hpke_role {
    CJ_HPKE_ROLE_SENDER = 1,
    CJ_HPKE_ROLE_RECIPIENT = 2,
};

/*
 * An encryption context (RFC 9180 5.2). It contains secrets, so the caller
 * that places it on its stack or heap wipes it with cj_hpke_ctx_wipe() when
 * done, on every path.
 */
struct cj_hpke_ctx {
    struct cj_hpke_suite suite;
    enum cj_hpke_role role;
    uint8_t key[CJ_HPKE_MAX_KEY_LEN];
    size_t key_len; /* 0 for export-only */
    uint8_t base_nonce[CJ_HPKE_NONCE_LEN];
    uint64_t seq; /* sequence number of the next seal or open */
    uint8_t exporter_secret[CJ_HPKE_NH];
};

/* Returns true when cerrojo implements the suite (X25519 KEM, HKDF-SHA256,
 * one of the four AEAD ids above). */
bool cj_hpke_suite_supported(const struct cj_hpke_suite *suite);

/* Returns Nk of an AEAD id (16 or 32; 0 for export-only or unknown). */
size_t cj_hpke_aead_key_len(uint16_t aead_id);

/* Returns Nn of an AEAD id (12; 0 for export-only or unknown). */
size_t cj_hpke_aead_nonce_len(uint16_t aead_id);

/* Derives a key pair from ikm (at least 32 bytes) as DeriveKeyPair of RFC
 * 9180 7.1.3 does for X25519. */
enum cj_status cj_hpke_derive_key_pair(uint8_t sk[CJ_HPKE_SK_LEN],
                                       uint8_t pk[CJ_HPKE_PK_LEN],
                                       const uint8_t *ikm,
                                       size_t ikm_len) CJ_WARN_UNUSED;

/*
 * SetupBaseS: encapsulates to pk_r with a fresh ephemeral key, writes enc
 * (32 bytes) and a sender context. Returns CJ_ERR_CRYPTO when pk_r is a
 * low-order point.
 */
enum cj_status cj_hpke_setup_base_s(struct cj_hpke_ctx *ctx,
                                    uint8_t enc[CJ_HPKE_ENC_LEN],
                                    const struct cj_hpke_suite *suite,
                                    const uint8_t pk_r[CJ_HPKE_PK_LEN],
                                    const uint8_t *info,
                                    size_t info_len) CJ_WARN_UNUSED;

/* SetupBaseR: decapsulates enc with sk_r and makes a recipient context.
 * Returns CJ_ERR_CRYPTO when enc is a low-order point. */
enum cj_status cj_hpke_setup_base_r(struct cj_hpke_ctx *ctx,
                                    const struct cj_hpke_suite *suite,
                                    const uint8_t enc[CJ_HPKE_ENC_LEN],
                                    const uint8_t sk_r[CJ_HPKE_SK_LEN],
                                    const uint8_t *info,
                                    size_t info_len) CJ_WARN_UNUSED;

/* SetupPSKS: as setup_base_s, with a pre-shared key (at least 32 bytes)
 * and its non-empty id. */
enum cj_status
cj_hpke_setup_psk_s(struct cj_hpke_ctx *ctx, uint8_t enc[CJ_HPKE_ENC_LEN],
                    const struct cj_hpke_suite *suite,
                    const uint8_t pk_r[CJ_HPKE_PK_LEN], const uint8_t *info,
                    size_t info_len, const uint8_t *psk, size_t psk_len,
                    const uint8_t *psk_id, size_t psk_id_len) CJ_WARN_UNUSED;

/* SetupPSKR: the recipient side of setup_psk_s. */
enum cj_status
cj_hpke_setup_psk_r(struct cj_hpke_ctx *ctx, const struct cj_hpke_suite *suite,
                    const uint8_t enc[CJ_HPKE_ENC_LEN],
                    const uint8_t sk_r[CJ_HPKE_SK_LEN], const uint8_t *info,
                    size_t info_len, const uint8_t *psk, size_t psk_len,
                    const uint8_t *psk_id, size_t psk_id_len) CJ_WARN_UNUSED;

/*
 * Sender setup with a caller-chosen ephemeral private key, for known-answer
 * tests only: reusing an ephemeral key breaks HPKE's security. mode is
 * CJ_HPKE_MODE_BASE (psk and psk_id empty) or CJ_HPKE_MODE_PSK.
 */
enum cj_status cj_hpke_setup_s_with_ephemeral(
    struct cj_hpke_ctx *ctx, uint8_t enc[CJ_HPKE_ENC_LEN],
    const struct cj_hpke_suite *suite, uint8_t mode,
    const uint8_t pk_r[CJ_HPKE_PK_LEN], const uint8_t sk_e[CJ_HPKE_SK_LEN],
    const uint8_t *info, size_t info_len, const uint8_t *psk, size_t psk_len,
    const uint8_t *psk_id, size_t psk_id_len) CJ_WARN_UNUSED;

/*
 * Writes the nonce of the context's next operation, base_nonce XOR the
 * sequence number (RFC 9180 5.2). Exposed for tests and diagnostics.
 */
void cj_hpke_current_nonce(const struct cj_hpke_ctx *ctx,
                           uint8_t nonce[CJ_HPKE_NONCE_LEN]);

/*
 * Seals pt with aad under the next sequence number and writes pt_len + 16
 * bytes to ct. Sender contexts only; CJ_ERR_INVALID for an export-only
 * suite or a recipient context.
 */
enum cj_status cj_hpke_seal(struct cj_hpke_ctx *ctx, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct) CJ_WARN_UNUSED;

/*
 * Opens ct (ciphertext || tag) with aad under the next sequence number and
 * writes ct_len - 16 bytes to pt. Recipient contexts only. The sequence
 * number advances only on success; CJ_ERR_CRYPTO on a bad tag.
 */
enum cj_status cj_hpke_open(struct cj_hpke_ctx *ctx, const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len,
                            uint8_t *pt) CJ_WARN_UNUSED;

/* Export (RFC 9180 5.3): out_len (1 to 8160) bytes derived from the
 * exporter secret and exporter_context. */
enum cj_status cj_hpke_export(const struct cj_hpke_ctx *ctx,
                              const uint8_t *exporter_context,
                              size_t context_len, uint8_t *out,
                              size_t out_len) CJ_WARN_UNUSED;

/* Wipes every secret of a context; accepts NULL. */
void cj_hpke_ctx_wipe(struct cj_hpke_ctx *ctx);

#endif

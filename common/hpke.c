/*
 * HPKE (RFC 9180): labeled HKDF, DHKEM(X25519, HKDF-SHA256), the key
 * schedule, and the context's seal, open and export. Every intermediate
 * secret (DH output, shared secret, PRKs, labeled inputs) is wiped before
 * return, on success and failure alike.
 */
#include "hpke.h"

#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"
#include "x25519.h"

#define HPKE_VERSION_LABEL     "HPKE-v1"
#define HPKE_VERSION_LABEL_LEN 7
/* "KEM" || kem_id, or "HPKE" || kem_id || kdf_id || aead_id (RFC 9180 4.1
 * and 5.1). */
#define SUITE_ID_MAX_LEN 10

struct suite_id {
    uint8_t bytes[SUITE_ID_MAX_LEN];
    size_t len;
};

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void kem_suite_id(struct suite_id *id)
{
    memcpy(id->bytes, "KEM", 3);
    put_u16(id->bytes + 3, CJ_HPKE_KEM_X25519_SHA256);
    id->len = 5;
}

static void hpke_suite_id(struct suite_id *id,
                          const struct cj_hpke_suite *suite)
{
    memcpy(id->bytes, "HPKE", 4);
    put_u16(id->bytes + 4, suite->kem_id);
    put_u16(id->bytes + 6, suite->kdf_id);
    put_u16(id->bytes + 8, suite->aead_id);
    id->len = 10;
}

bool cj_hpke_suite_supported(const struct cj_hpke_suite *suite)
{
    if (suite == NULL || suite->kem_id != CJ_HPKE_KEM_X25519_SHA256 ||
        suite->kdf_id != CJ_HPKE_KDF_HKDF_SHA256) {
        return false;
    }
    switch (suite->aead_id) {
    case CJ_HPKE_AEAD_AES_128_GCM:
    case CJ_HPKE_AEAD_AES_256_GCM:
    case CJ_HPKE_AEAD_CHACHA20:
    case CJ_HPKE_AEAD_EXPORT_ONLY:
        return true;
    default:
        return false;
    }
}

size_t cj_hpke_aead_key_len(uint16_t aead_id)
{
    if (aead_id == CJ_HPKE_AEAD_EXPORT_ONLY) {
        return 0;
    }
    return cj_aead_key_len((enum cj_aead_alg)aead_id);
}

size_t cj_hpke_aead_nonce_len(uint16_t aead_id)
{
    return cj_hpke_aead_key_len(aead_id) > 0 ? CJ_HPKE_NONCE_LEN : 0;
}

/*
 * Builds "HPKE-v1" || suite_id || label || part1 || part2, preceded by
 * I2OSP(L, 2) when with_length is set, into a new heap buffer. The caller
 * wipes and frees it because parts may be secret.
 */
static uint8_t *labeled_input(const struct suite_id *id, bool with_length,
                              uint16_t length, const char *label,
                              const uint8_t *part1, size_t part1_len,
                              const uint8_t *part2, size_t part2_len,
                              size_t *out_len)
{
    size_t label_len = strlen(label);
    size_t total = (with_length ? 2 : 0) + HPKE_VERSION_LABEL_LEN + id->len +
                   label_len + part1_len + part2_len;
    uint8_t *buf = malloc(total);
    uint8_t *p = buf;

    if (buf == NULL) {
        return NULL;
    }
    if (with_length) {
        put_u16(p, length);
        p += 2;
    }
    memcpy(p, HPKE_VERSION_LABEL, HPKE_VERSION_LABEL_LEN);
    p += HPKE_VERSION_LABEL_LEN;
    memcpy(p, id->bytes, id->len);
    p += id->len;
    memcpy(p, label, label_len);
    p += label_len;
    if (part1_len > 0) {
        memcpy(p, part1, part1_len);
        p += part1_len;
    }
    if (part2_len > 0) {
        memcpy(p, part2, part2_len);
    }
    *out_len = total;
    return buf;
}

static void free_wiped(uint8_t *buf, size_t len)
{
    if (buf != NULL) {
        cj_wipe(buf, len);
        free(buf);
    }
}

/* LabeledExtract(salt, label, ikm) of RFC 9180 4. */
static enum cj_status labeled_extract(uint8_t prk[CJ_HPKE_NH],
                                      const struct suite_id *id,
                                      const uint8_t *salt, size_t salt_len,
                                      const char *label, const uint8_t *ikm,
                                      size_t ikm_len)
{
    size_t buf_len = 0;
    uint8_t *buf =
        labeled_input(id, false, 0, label, ikm, ikm_len, NULL, 0, &buf_len);
    if (buf == NULL) {
        return CJ_ERR_NOMEM;
    }
    enum cj_status result = cj_hkdf_extract(prk, salt, salt_len, buf, buf_len);
    free_wiped(buf, buf_len);
    return result;
}

/* LabeledExpand(prk, label, info, L) of RFC 9180 4; info is the
 * concatenation of info1 and info2. */
static enum cj_status labeled_expand(uint8_t *out, size_t out_len,
                                     const struct suite_id *id,
                                     const uint8_t *prk, const char *label,
                                     const uint8_t *info1, size_t info1_len,
                                     const uint8_t *info2, size_t info2_len)
{
    size_t buf_len = 0;
    uint8_t *buf;
    enum cj_status result;

    if (out_len == 0 || out_len > CJ_HKDF_SHA256_MAX_OKM_LEN) {
        return CJ_ERR_INVALID;
    }
    buf = labeled_input(id, true, (uint16_t)out_len, label, info1, info1_len,
                        info2, info2_len, &buf_len);
    if (buf == NULL) {
        return CJ_ERR_NOMEM;
    }
    result = cj_hkdf_expand(out, out_len, prk, CJ_HPKE_NH, buf, buf_len);
    free_wiped(buf, buf_len);
    return result;
}

enum cj_status cj_hpke_derive_key_pair(uint8_t sk[CJ_HPKE_SK_LEN],
                                       uint8_t pk[CJ_HPKE_PK_LEN],
                                       const uint8_t *ikm, size_t ikm_len)
{
    struct suite_id id;
    uint8_t dkp_prk[CJ_HPKE_NH];
    enum cj_status result = CJ_ERR_INVALID;

    /* RFC 9180 7.1.3: ikm needs at least Nsk bytes of entropy. */
    if (ikm == NULL || ikm_len < CJ_HPKE_SK_LEN ||
        ikm_len > CJ_HPKE_MAX_INPUT_LEN) {
        goto out;
    }
    kem_suite_id(&id);
    result = labeled_extract(dkp_prk, &id, NULL, 0, "dkp_prk", ikm, ikm_len);
    if (result != CJ_OK) {
        goto out;
    }
    result = labeled_expand(sk, CJ_HPKE_SK_LEN, &id, dkp_prk, "sk", NULL, 0,
                            NULL, 0);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_x25519_public(pk, sk);
out:
    if (result != CJ_OK) {
        cj_wipe(sk, CJ_HPKE_SK_LEN);
    }
    cj_wipe(dkp_prk, sizeof(dkp_prk));
    return result;
}

/* ExtractAndExpand(dh, kem_context) of RFC 9180 4.1, with kem_context =
 * enc || pkR. */
static enum cj_status kem_shared_secret(uint8_t shared[CJ_HPKE_NH],
                                        const uint8_t dh[CJ_X25519_KEY_LEN],
                                        const uint8_t enc[CJ_HPKE_ENC_LEN],
                                        const uint8_t pk_r[CJ_HPKE_PK_LEN])
{
    struct suite_id id;
    uint8_t eae_prk[CJ_HPKE_NH];
    enum cj_status result;

    kem_suite_id(&id);
    result = labeled_extract(eae_prk, &id, NULL, 0, "eae_prk", dh,
                             CJ_X25519_KEY_LEN);
    if (result == CJ_OK) {
        result =
            labeled_expand(shared, CJ_HPKE_NH, &id, eae_prk, "shared_secret",
                           enc, CJ_HPKE_ENC_LEN, pk_r, CJ_HPKE_PK_LEN);
    }
    cj_wipe(eae_prk, sizeof(eae_prk));
    return result;
}

/* Checks VerifyPSKInputs (RFC 9180 5.1) and the length bounds. */
static bool inputs_valid(uint8_t mode, const uint8_t *info, size_t info_len,
                         const uint8_t *psk, size_t psk_len,
                         const uint8_t *psk_id, size_t psk_id_len)
{
    if (info_len > CJ_HPKE_MAX_INPUT_LEN || (info_len > 0 && info == NULL) ||
        psk_len > CJ_HPKE_MAX_INPUT_LEN || psk_id_len > CJ_HPKE_MAX_INPUT_LEN) {
        return false;
    }
    if (mode == CJ_HPKE_MODE_BASE) {
        return psk_len == 0 && psk_id_len == 0;
    }
    if (mode == CJ_HPKE_MODE_PSK) {
        return psk != NULL && psk_len >= CJ_HPKE_MIN_PSK_LEN &&
               psk_id != NULL && psk_id_len > 0;
    }
    return false;
}

/* KeyScheduleS/R (RFC 9180 5.1): fills ctx from the KEM shared secret. */
static enum cj_status key_schedule(struct cj_hpke_ctx *ctx,
                                   const struct cj_hpke_suite *suite,
                                   enum cj_hpke_role role, uint8_t mode,
                                   const uint8_t shared[CJ_HPKE_NH],
                                   const uint8_t *info, size_t info_len,
                                   const uint8_t *psk, size_t psk_len,
                                   const uint8_t *psk_id, size_t psk_id_len)
{
    struct suite_id id;
    /* mode || psk_id_hash || info_hash */
    uint8_t context[1 + 2 * CJ_HPKE_NH];
    uint8_t secret[CJ_HPKE_NH];
    enum cj_status result;
    size_t nk = cj_hpke_aead_key_len(suite->aead_id);

    memset(ctx, 0, sizeof(*ctx));
    hpke_suite_id(&id, suite);
    context[0] = mode;
    result = labeled_extract(context + 1, &id, NULL, 0, "psk_id_hash", psk_id,
                             psk_id_len);
    if (result != CJ_OK) {
        goto out;
    }
    result = labeled_extract(context + 1 + CJ_HPKE_NH, &id, NULL, 0,
                             "info_hash", info, info_len);
    if (result != CJ_OK) {
        goto out;
    }
    result = labeled_extract(secret, &id, shared, CJ_HPKE_NH, "secret", psk,
                             psk_len);
    if (result != CJ_OK) {
        goto out;
    }
    if (nk > 0) {
        result = labeled_expand(ctx->key, nk, &id, secret, "key", context,
                                sizeof(context), NULL, 0);
        if (result != CJ_OK) {
            goto out;
        }
        result =
            labeled_expand(ctx->base_nonce, CJ_HPKE_NONCE_LEN, &id, secret,
                           "base_nonce", context, sizeof(context), NULL, 0);
        if (result != CJ_OK) {
            goto out;
        }
    }
    result = labeled_expand(ctx->exporter_secret, CJ_HPKE_NH, &id, secret,
                            "exp", context, sizeof(context), NULL, 0);
    if (result != CJ_OK) {
        goto out;
    }
    ctx->suite = *suite;
    ctx->role = role;
    ctx->key_len = nk;
    ctx->seq = 0;
out:
    if (result != CJ_OK) {
        cj_hpke_ctx_wipe(ctx);
    }
    cj_wipe(secret, sizeof(secret));
    return result;
}

enum cj_status cj_hpke_setup_s_with_ephemeral(
    struct cj_hpke_ctx *ctx, uint8_t enc[CJ_HPKE_ENC_LEN],
    const struct cj_hpke_suite *suite, uint8_t mode,
    const uint8_t pk_r[CJ_HPKE_PK_LEN], const uint8_t sk_e[CJ_HPKE_SK_LEN],
    const uint8_t *info, size_t info_len, const uint8_t *psk, size_t psk_len,
    const uint8_t *psk_id, size_t psk_id_len)
{
    uint8_t dh[CJ_X25519_KEY_LEN];
    uint8_t shared[CJ_HPKE_NH];
    enum cj_status result = CJ_ERR_INVALID;

    if (ctx == NULL || enc == NULL || pk_r == NULL || sk_e == NULL ||
        !cj_hpke_suite_supported(suite) ||
        !inputs_valid(mode, info, info_len, psk, psk_len, psk_id, psk_id_len)) {
        goto out;
    }
    /* Encap (RFC 9180 4.1): enc = pkE, dh = DH(skE, pkR). */
    result = cj_x25519_public(enc, sk_e);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_x25519_dh(dh, sk_e, pk_r);
    if (result != CJ_OK) {
        goto out;
    }
    result = kem_shared_secret(shared, dh, enc, pk_r);
    if (result != CJ_OK) {
        goto out;
    }
    result = key_schedule(ctx, suite, CJ_HPKE_ROLE_SENDER, mode, shared, info,
                          info_len, psk, psk_len, psk_id, psk_id_len);
out:
    cj_wipe(dh, sizeof(dh));
    cj_wipe(shared, sizeof(shared));
    return result;
}

/* SetupBaseS and SetupPSKS with a fresh ephemeral key. */
static enum cj_status setup_s(struct cj_hpke_ctx *ctx,
                              uint8_t enc[CJ_HPKE_ENC_LEN],
                              const struct cj_hpke_suite *suite, uint8_t mode,
                              const uint8_t pk_r[CJ_HPKE_PK_LEN],
                              const uint8_t *info, size_t info_len,
                              const uint8_t *psk, size_t psk_len,
                              const uint8_t *psk_id, size_t psk_id_len)
{
    uint8_t sk_e[CJ_HPKE_SK_LEN];
    uint8_t pk_e[CJ_HPKE_PK_LEN];
    enum cj_status result = cj_x25519_keygen(sk_e, pk_e);
    if (result == CJ_OK) {
        result = cj_hpke_setup_s_with_ephemeral(ctx, enc, suite, mode, pk_r,
                                                sk_e, info, info_len, psk,
                                                psk_len, psk_id, psk_id_len);
    }
    cj_wipe(sk_e, sizeof(sk_e));
    return result;
}

/* SetupBaseR and SetupPSKR: Decap (RFC 9180 4.1) then the key schedule. */
static enum cj_status setup_r(struct cj_hpke_ctx *ctx,
                              const struct cj_hpke_suite *suite, uint8_t mode,
                              const uint8_t enc[CJ_HPKE_ENC_LEN],
                              const uint8_t sk_r[CJ_HPKE_SK_LEN],
                              const uint8_t *info, size_t info_len,
                              const uint8_t *psk, size_t psk_len,
                              const uint8_t *psk_id, size_t psk_id_len)
{
    uint8_t dh[CJ_X25519_KEY_LEN];
    uint8_t shared[CJ_HPKE_NH];
    uint8_t pk_r[CJ_HPKE_PK_LEN];
    enum cj_status result = CJ_ERR_INVALID;

    if (ctx == NULL || enc == NULL || sk_r == NULL ||
        !cj_hpke_suite_supported(suite) ||
        !inputs_valid(mode, info, info_len, psk, psk_len, psk_id, psk_id_len)) {
        goto out;
    }
    result = cj_x25519_dh(dh, sk_r, enc);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_x25519_public(pk_r, sk_r);
    if (result != CJ_OK) {
        goto out;
    }
    result = kem_shared_secret(shared, dh, enc, pk_r);
    if (result != CJ_OK) {
        goto out;
    }
    result = key_schedule(ctx, suite, CJ_HPKE_ROLE_RECIPIENT, mode, shared,
                          info, info_len, psk, psk_len, psk_id, psk_id_len);
out:
    cj_wipe(dh, sizeof(dh));
    cj_wipe(shared, sizeof(shared));
    return result;
}

enum cj_status cj_hpke_setup_base_s(struct cj_hpke_ctx *ctx,
                                    uint8_t enc[CJ_HPKE_ENC_LEN],
                                    const struct cj_hpke_suite *suite,
                                    const uint8_t pk_r[CJ_HPKE_PK_LEN],
                                    const uint8_t *info, size_t info_len)
{
    return setup_s(ctx, enc, suite, CJ_HPKE_MODE_BASE, pk_r, info, info_len,
                   NULL, 0, NULL, 0);
}

enum cj_status cj_hpke_setup_base_r(struct cj_hpke_ctx *ctx,
                                    const struct cj_hpke_suite *suite,
                                    const uint8_t enc[CJ_HPKE_ENC_LEN],
                                    const uint8_t sk_r[CJ_HPKE_SK_LEN],
                                    const uint8_t *info, size_t info_len)
{
    return setup_r(ctx, suite, CJ_HPKE_MODE_BASE, enc, sk_r, info, info_len,
                   NULL, 0, NULL, 0);
}

enum cj_status cj_hpke_setup_psk_s(struct cj_hpke_ctx *ctx,
                                   uint8_t enc[CJ_HPKE_ENC_LEN],
                                   const struct cj_hpke_suite *suite,
                                   const uint8_t pk_r[CJ_HPKE_PK_LEN],
                                   const uint8_t *info, size_t info_len,
                                   const uint8_t *psk, size_t psk_len,
                                   const uint8_t *psk_id, size_t psk_id_len)
{
    return setup_s(ctx, enc, suite, CJ_HPKE_MODE_PSK, pk_r, info, info_len, psk,
                   psk_len, psk_id, psk_id_len);
}

enum cj_status cj_hpke_setup_psk_r(struct cj_hpke_ctx *ctx,
                                   const struct cj_hpke_suite *suite,
                                   const uint8_t enc[CJ_HPKE_ENC_LEN],
                                   const uint8_t sk_r[CJ_HPKE_SK_LEN],
                                   const uint8_t *info, size_t info_len,
                                   const uint8_t *psk, size_t psk_len,
                                   const uint8_t *psk_id, size_t psk_id_len)
{
    return setup_r(ctx, suite, CJ_HPKE_MODE_PSK, enc, sk_r, info, info_len, psk,
                   psk_len, psk_id, psk_id_len);
}

void cj_hpke_current_nonce(const struct cj_hpke_ctx *ctx,
                           uint8_t nonce[CJ_HPKE_NONCE_LEN])
{
    /* The 64-bit sequence number sits in the last 8 of the 12 bytes,
     * big-endian (I2OSP(seq, Nn)). */
    memcpy(nonce, ctx->base_nonce, CJ_HPKE_NONCE_LEN);
    for (int i = 0; i < 8; i++) {
        nonce[CJ_HPKE_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
    }
}

/* Checks that ctx can run an AEAD operation in the given role. */
static bool ctx_usable(const struct cj_hpke_ctx *ctx, enum cj_hpke_role role)
{
    /* The sequence number may not wrap (RFC 9180 5.2 IncrementSeq). */
    return ctx != NULL && ctx->role == role && ctx->key_len > 0 &&
           ctx->seq != UINT64_MAX;
}

enum cj_status cj_hpke_seal(struct cj_hpke_ctx *ctx, const uint8_t *aad,
                            size_t aad_len, const uint8_t *pt, size_t pt_len,
                            uint8_t *ct)
{
    uint8_t nonce[CJ_HPKE_NONCE_LEN];
    enum cj_status result;

    if (!ctx_usable(ctx, CJ_HPKE_ROLE_SENDER)) {
        return CJ_ERR_INVALID;
    }
    cj_hpke_current_nonce(ctx, nonce);
    result = cj_aead_seal((enum cj_aead_alg)ctx->suite.aead_id, ctx->key,
                          ctx->key_len, nonce, aad, aad_len, pt, pt_len, ct);
    if (result == CJ_OK) {
        ctx->seq++;
    }
    return result;
}

enum cj_status cj_hpke_open(struct cj_hpke_ctx *ctx, const uint8_t *aad,
                            size_t aad_len, const uint8_t *ct, size_t ct_len,
                            uint8_t *pt)
{
    uint8_t nonce[CJ_HPKE_NONCE_LEN];
    enum cj_status result;

    if (!ctx_usable(ctx, CJ_HPKE_ROLE_RECIPIENT)) {
        return CJ_ERR_INVALID;
    }
    cj_hpke_current_nonce(ctx, nonce);
    result = cj_aead_open((enum cj_aead_alg)ctx->suite.aead_id, ctx->key,
                          ctx->key_len, nonce, aad, aad_len, ct, ct_len, pt);
    if (result == CJ_OK) {
        ctx->seq++;
    }
    return result;
}

enum cj_status cj_hpke_export(const struct cj_hpke_ctx *ctx,
                              const uint8_t *exporter_context,
                              size_t context_len, uint8_t *out, size_t out_len)
{
    struct suite_id id;

    if (ctx == NULL || ctx->role == 0 || out == NULL ||
        context_len > CJ_HPKE_MAX_INPUT_LEN ||
        (context_len > 0 && exporter_context == NULL)) {
        return CJ_ERR_INVALID;
    }
    hpke_suite_id(&id, &ctx->suite);
    return labeled_expand(out, out_len, &id, ctx->exporter_secret, "sec",
                          exporter_context, context_len, NULL, 0);
}

void cj_hpke_ctx_wipe(struct cj_hpke_ctx *ctx)
{
    cj_wipe(ctx, ctx == NULL ? 0 : sizeof(*ctx));
}

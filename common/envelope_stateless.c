/*
 * Stateless mode: HPKE base-mode request envelopes bound to their header,
 * method and path, and RFC 9458-style responses from the exported secret.
 * Temporary plaintexts, contexts and keys are wiped on every path.
 */
#include "envelope_stateless.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crypto_util.h"
#include "x25519.h"

/* Largest ciphertext of a sealed plaintext: the plaintext plus its tag. */
#define MAX_CT_LEN (CJ_SEAL_MAX_PLAINTEXT_LEN + CJ_HPKE_TAG_LEN)

enum cj_status cj_stateless_header_check(const struct cj_stateless_header *hdr,
                                         enum cj_seal_reason *reason)
{
    if (hdr->version != CJ_ENVELOPE_VERSION) {
        return cj_seal_fail(reason, CJ_SEAL_UNKNOWN_VERSION);
    }
    /* Export-only cannot seal, so it is no suite for envelopes. */
    if (!cj_hpke_suite_supported(&hdr->suite) ||
        hdr->suite.aead_id == CJ_HPKE_AEAD_EXPORT_ONLY) {
        return cj_seal_fail(reason, CJ_SEAL_UNKNOWN_SUITE);
    }
    return cj_seal_fail(reason, CJ_SEAL_OK);
}

void cj_stateless_build_info(const struct cj_stateless_header *hdr,
                             uint8_t info[CJ_STATELESS_INFO_LEN])
{
    uint8_t *p = info;
    memcpy(p, CJ_STATELESS_INFO_LABEL, sizeof(CJ_STATELESS_INFO_LABEL));
    /* sizeof includes the label's NUL, which is the 0x00 separator. */
    p += sizeof(CJ_STATELESS_INFO_LABEL);
    p[0] = hdr->version;
    p[1] = hdr->key_id;
    cj_put_u16(p + 2, hdr->suite.kem_id);
    cj_put_u16(p + 4, hdr->suite.kdf_id);
    cj_put_u16(p + 6, hdr->suite.aead_id);
}

enum cj_status cj_stateless_build_aad(const char *method, const char *path,
                                      uint8_t **aad, size_t *aad_len)
{
    size_t method_len, path_len;
    uint8_t *buf, *p;

    *aad = NULL;
    *aad_len = 0;
    if (!cj_seal_method_valid(method) || !cj_seal_path_valid(path)) {
        return CJ_ERR_INVALID;
    }
    method_len = strlen(method);
    path_len = strlen(path);
    buf = malloc(4 + method_len + path_len);
    if (buf == NULL) {
        return CJ_ERR_NOMEM;
    }
    p = buf;
    cj_put_u16_string(&p, method, method_len);
    cj_put_u16_string(&p, path, path_len);
    *aad = buf;
    *aad_len = (size_t)(p - buf);
    return CJ_OK;
}

void cj_stateless_client_wipe(struct cj_stateless_client *client)
{
    cj_wipe(client, client == NULL ? 0 : sizeof(*client));
}

void cj_stateless_request_clear(struct cj_stateless_request *request)
{
    if (request == NULL) {
        return;
    }
    free(request->ct);
    memset(request, 0, sizeof(*request));
}

/* Writes the request envelope JSON for hdr, enc and ct. */
static enum cj_status format_request(const struct cj_stateless_header *hdr,
                                     const uint8_t *enc, const uint8_t *ct,
                                     size_t ct_len, char **envelope,
                                     size_t *envelope_len)
{
    char *enc_text = cj_base64url_encode(enc, CJ_HPKE_ENC_LEN);
    char *ct_text = cj_base64url_encode(ct, ct_len);
    enum cj_status result = CJ_ERR_NOMEM;

    if (enc_text != NULL && ct_text != NULL) {
        *envelope = cj_envelope_format(
            envelope_len,
            "{\"v\":%u,\"kid\":%u,\"kdf\":%u,\"aead\":%u,\"enc\":\"%s\","
            "\"ct\":\"%s\"}",
            (unsigned)hdr->version, (unsigned)hdr->key_id,
            (unsigned)hdr->suite.kdf_id, (unsigned)hdr->suite.aead_id, enc_text,
            ct_text);
        result = *envelope == NULL ? CJ_ERR_NOMEM : CJ_OK;
    }
    free(enc_text);
    free(ct_text);
    return result;
}

enum cj_status cj_stateless_seal_request_with_ephemeral(
    const struct cj_stateless_header *hdr, const uint8_t pk_r[CJ_HPKE_PK_LEN],
    const uint8_t sk_e[CJ_HPKE_SK_LEN], const char *method, const char *path,
    const struct cj_seal_plaintext *pt, char **envelope, size_t *envelope_len,
    struct cj_stateless_client *client)
{
    struct cj_hpke_ctx ctx;
    uint8_t info[CJ_STATELESS_INFO_LEN];
    uint8_t *aad = NULL, *plain = NULL, *ct = NULL;
    size_t aad_len = 0, plain_len = 0;
    enum cj_status result;

    memset(&ctx, 0, sizeof(ctx));
    *envelope = NULL;
    *envelope_len = 0;
    memset(client, 0, sizeof(*client));
    result = cj_stateless_header_check(hdr, NULL);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_stateless_build_aad(method, path, &aad, &aad_len);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_seal_plaintext_encode(pt, &plain, &plain_len);
    if (result != CJ_OK) {
        goto out;
    }
    cj_stateless_build_info(hdr, info);
    result = cj_hpke_setup_s_with_ephemeral(&ctx, client->enc, &hdr->suite,
                                            CJ_HPKE_MODE_BASE, pk_r, sk_e, info,
                                            sizeof(info), NULL, 0, NULL, 0);
    if (result != CJ_OK) {
        goto out;
    }
    ct = malloc(plain_len + CJ_HPKE_TAG_LEN);
    if (ct == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    result = cj_hpke_seal(&ctx, aad, aad_len, plain, plain_len, ct);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_ohttp_export_secret(&ctx, CJ_STATELESS_RESPONSE_LABEL,
                                    client->secret, &client->secret_len);
    if (result != CJ_OK) {
        goto out;
    }
    client->aead_id = hdr->suite.aead_id;
    result = format_request(hdr, client->enc, ct, plain_len + CJ_HPKE_TAG_LEN,
                            envelope, envelope_len);
out:
    if (result != CJ_OK) {
        cj_stateless_client_wipe(client);
    }
    cj_hpke_ctx_wipe(&ctx);
    if (plain != NULL) {
        cj_wipe(plain, plain_len);
        free(plain);
    }
    free(aad);
    free(ct);
    return result;
}

enum cj_status cj_stateless_seal_request(const struct cj_stateless_header *hdr,
                                         const uint8_t pk_r[CJ_HPKE_PK_LEN],
                                         const char *method, const char *path,
                                         const struct cj_seal_plaintext *pt,
                                         char **envelope, size_t *envelope_len,
                                         struct cj_stateless_client *client)
{
    uint8_t sk_e[CJ_HPKE_SK_LEN];
    uint8_t pk_e[CJ_HPKE_PK_LEN];
    enum cj_status result = cj_x25519_keygen(sk_e, pk_e);
    if (result == CJ_OK) {
        result = cj_stateless_seal_request_with_ephemeral(
            hdr, pk_r, sk_e, method, path, pt, envelope, envelope_len, client);
    }
    cj_wipe(sk_e, sizeof(sk_e));
    return result;
}

enum cj_status cj_stateless_parse_request(const char *envelope,
                                          size_t envelope_len,
                                          struct cj_stateless_request *out,
                                          enum cj_seal_reason *reason)
{
    struct cj_envelope_field fields[] = {
        {.name = "v", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT8_MAX},
        {.name = "kid", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT8_MAX},
        {.name = "kdf", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT16_MAX},
        {.name = "aead", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT16_MAX},
        {.name = "enc",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_HPKE_ENC_LEN,
         .max = CJ_HPKE_ENC_LEN},
        {.name = "ct",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_HPKE_TAG_LEN,
         .max = MAX_CT_LEN},
    };
    size_t count = sizeof(fields) / sizeof(fields[0]);
    enum cj_seal_reason why = CJ_SEAL_OK;
    enum cj_status result;

    memset(out, 0, sizeof(*out));
    result = cj_envelope_parse(envelope, envelope_len, fields, count, &why);
    if (result != CJ_OK) {
        return cj_seal_fail(reason, why);
    }
    out->header.version = (uint8_t)fields[0].number;
    out->header.key_id = (uint8_t)fields[1].number;
    out->header.suite.kem_id = CJ_HPKE_KEM_X25519_SHA256;
    out->header.suite.kdf_id = (uint16_t)fields[2].number;
    out->header.suite.aead_id = (uint16_t)fields[3].number;
    if (cj_stateless_header_check(&out->header, &why) != CJ_OK) {
        goto fail;
    }
    if (cj_x25519_is_low_order(fields[4].bytes)) {
        why = CJ_SEAL_LOW_ORDER_SHARE;
        goto fail;
    }
    memcpy(out->enc, fields[4].bytes, CJ_HPKE_ENC_LEN);
    out->ct = fields[5].bytes;
    out->ct_len = fields[5].bytes_len;
    fields[5].bytes = NULL;
    cj_envelope_fields_clear(fields, count);
    return cj_seal_fail(reason, CJ_SEAL_OK);
fail:
    cj_envelope_fields_clear(fields, count);
    memset(out, 0, sizeof(*out));
    return cj_seal_fail(reason, why);
}

enum cj_status
cj_stateless_open(const struct cj_stateless_header *hdr,
                  const uint8_t sk_r[CJ_HPKE_SK_LEN], const uint8_t *enc,
                  size_t enc_len, const uint8_t *aad, size_t aad_len,
                  const uint8_t *ct, size_t ct_len, uint8_t **pt,
                  size_t *pt_len, uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN],
                  size_t *secret_len, enum cj_seal_reason *reason)
{
    struct cj_hpke_ctx ctx;
    uint8_t info[CJ_STATELESS_INFO_LEN];
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    enum cj_status st;

    memset(&ctx, 0, sizeof(ctx));
    *pt = NULL;
    *pt_len = 0;
    *secret_len = 0;
    if (cj_stateless_header_check(hdr, &why) != CJ_OK) {
        goto out;
    }
    if (enc == NULL || enc_len != CJ_HPKE_ENC_LEN || ct == NULL ||
        ct_len < CJ_HPKE_TAG_LEN) {
        why = CJ_SEAL_BAD_LENGTH;
        goto out;
    }
    if (ct_len > MAX_CT_LEN) {
        why = CJ_SEAL_TOO_LARGE;
        goto out;
    }
    if (cj_x25519_is_low_order(enc)) {
        why = CJ_SEAL_LOW_ORDER_SHARE;
        goto out;
    }
    cj_stateless_build_info(hdr, info);
    st = cj_hpke_setup_base_r(&ctx, &hdr->suite, enc, sk_r, info, sizeof(info));
    if (st != CJ_OK) {
        why = st == CJ_ERR_CRYPTO ? CJ_SEAL_LOW_ORDER_SHARE : CJ_SEAL_INTERNAL;
        goto out;
    }
    plain_len = ct_len - CJ_HPKE_TAG_LEN;
    plain = malloc(plain_len + 1);
    if (plain == NULL) {
        why = CJ_SEAL_NO_MEMORY;
        goto out;
    }
    st = cj_hpke_open(&ctx, aad, aad_len, ct, ct_len, plain);
    if (st != CJ_OK) {
        why = st == CJ_ERR_CRYPTO ? CJ_SEAL_AUTH_FAILED : CJ_SEAL_BAD_ARGUMENT;
        goto out;
    }
    st = cj_ohttp_export_secret(&ctx, CJ_STATELESS_RESPONSE_LABEL, secret,
                                secret_len);
    if (st != CJ_OK) {
        why = CJ_SEAL_INTERNAL;
        goto out;
    }
    *pt = plain;
    *pt_len = plain_len;
    plain = NULL;
    why = CJ_SEAL_OK;
out:
    if (why != CJ_SEAL_OK) {
        cj_wipe(secret, CJ_OHTTP_MAX_SECRET_LEN);
        *secret_len = 0;
    }
    if (plain != NULL) {
        cj_wipe(plain, plain_len + 1);
        free(plain);
    }
    cj_hpke_ctx_wipe(&ctx);
    return cj_seal_fail(reason, why);
}

enum cj_status cj_stateless_seal_response_with_nonce(
    uint16_t aead_id, const uint8_t *secret, size_t secret_len,
    const uint8_t *enc, size_t enc_len, const uint8_t *response_nonce,
    const uint8_t *body, size_t body_len, char **envelope, size_t *envelope_len)
{
    size_t nonce_len = cj_ohttp_response_nonce_len(aead_id);
    uint8_t *ct = NULL;
    enum cj_status result = CJ_ERR_INVALID;

    *envelope = NULL;
    *envelope_len = 0;
    if (nonce_len == 0 || secret_len != nonce_len) {
        goto out;
    }
    if (body_len > CJ_SEAL_MAX_PLAINTEXT_LEN) {
        result = CJ_ERR_TOO_LARGE;
        goto out;
    }
    ct = malloc(body_len + CJ_HPKE_TAG_LEN);
    if (ct == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    result = cj_ohttp_seal_response(aead_id, secret, secret_len, enc, enc_len,
                                    response_nonce, body, body_len, ct);
    if (result != CJ_OK) {
        goto out;
    }
    result = cj_envelope_format_response(response_nonce, nonce_len, ct,
                                         body_len + CJ_HPKE_TAG_LEN, envelope,
                                         envelope_len);
out:
    free(ct);
    return result;
}

enum cj_status cj_stateless_seal_response(uint16_t aead_id,
                                          const uint8_t *secret,
                                          size_t secret_len, const uint8_t *enc,
                                          size_t enc_len, const uint8_t *body,
                                          size_t body_len, char **envelope,
                                          size_t *envelope_len)
{
    uint8_t nonce[CJ_OHTTP_MAX_SECRET_LEN];
    size_t nonce_len = cj_ohttp_response_nonce_len(aead_id);

    *envelope = NULL;
    *envelope_len = 0;
    if (nonce_len == 0) {
        return CJ_ERR_INVALID;
    }
    cj_random_bytes(nonce, nonce_len);
    return cj_stateless_seal_response_with_nonce(
        aead_id, secret, secret_len, enc, enc_len, nonce, body, body_len,
        envelope, envelope_len);
}

enum cj_status
cj_stateless_open_response(const struct cj_stateless_client *client,
                           const char *envelope, size_t envelope_len,
                           uint8_t **body, size_t *body_len,
                           enum cj_seal_reason *reason)
{
    size_t nonce_len = cj_ohttp_response_nonce_len(client->aead_id);
    struct cj_envelope_field fields[] = {
        {.name = "v", .type = CJ_ENVELOPE_FIELD_UINT, .max = UINT8_MAX},
        {.name = "nonce",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = nonce_len,
         .max = nonce_len},
        {.name = "ct",
         .type = CJ_ENVELOPE_FIELD_BASE64,
         .min = CJ_HPKE_TAG_LEN,
         .max = MAX_CT_LEN},
    };
    size_t count = sizeof(fields) / sizeof(fields[0]);
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    enum cj_status st;

    *body = NULL;
    *body_len = 0;
    if (nonce_len == 0 || client->secret_len != nonce_len) {
        return cj_seal_fail(reason, CJ_SEAL_BAD_ARGUMENT);
    }
    if (cj_envelope_parse(envelope, envelope_len, fields, count, &why) !=
        CJ_OK) {
        return cj_seal_fail(reason, why);
    }
    if (fields[0].number != CJ_ENVELOPE_VERSION) {
        why = CJ_SEAL_UNKNOWN_VERSION;
        goto out;
    }
    plain_len = fields[2].bytes_len - CJ_HPKE_TAG_LEN;
    plain = malloc(plain_len + 1);
    if (plain == NULL) {
        why = CJ_SEAL_NO_MEMORY;
        goto out;
    }
    st = cj_ohttp_open_response(client->aead_id, client->secret,
                                client->secret_len, client->enc,
                                CJ_HPKE_ENC_LEN, fields[1].bytes,
                                fields[2].bytes, fields[2].bytes_len, plain);
    if (st != CJ_OK) {
        why = st == CJ_ERR_CRYPTO ? CJ_SEAL_AUTH_FAILED : CJ_SEAL_INTERNAL;
        goto out;
    }
    *body = plain;
    *body_len = plain_len;
    plain = NULL;
    why = CJ_SEAL_OK;
out:
    free(plain);
    cj_envelope_fields_clear(fields, count);
    return cj_seal_fail(reason, why);
}

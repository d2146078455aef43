/* Verification of the signed HPKE key list and the choice of a key. */
#include "cjc_keys.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "jwk.h"
#include "jws.h"

/* The JWS "typ" kms puts on key lists. */
#define CJC_KEY_LIST_TYP "cerrojo-keys+jws"
/* Maximum number of bytes of an invalid pin that an error message repeats. */
#define CJC_PIN_ECHO_MAX 64

static bool pinned(const char *thumbprint, const char *const *pins,
                   size_t n_pins)
{
    for (size_t i = 0; i < n_pins; i++)
        if (strcmp(thumbprint, pins[i]) == 0)
            return true;
    return false;
}

enum cj_status cjc_pin_check(const char *pin, char *err, size_t errlen)
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    size_t digest_len = 0;
    size_t len = strlen(pin);

    /* The decoder rejects characters outside the alphabet and padding. */
    if (len != CJ_JWK_THUMBPRINT_LEN ||
        sodium_base642bin(digest, sizeof(digest), pin, len, NULL, &digest_len,
                          NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        digest_len != sizeof(digest)) {
        snprintf(err, errlen,
                 "invalid pin '%.*s': expected a key-list signer's "
                 "fingerprint, the %d-character base64url SHA-256 "
                 "thumbprint that 'cerrojo keys' prints as \"signer\"",
                 CJC_PIN_ECHO_MAX, pin, CJ_JWK_THUMBPRINT_LEN);
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/* Reads one listed key; false when a field is missing or malformed. */
static bool parse_listed_key(const json_t *k, struct cjc_server_key *out)
{
    const char *pk = json_string_value(json_object_get(k, "public_key"));
    json_int_t id = json_integer_value(json_object_get(k, "key_id"));
    json_int_t kem = json_integer_value(json_object_get(k, "kem_id"));
    json_int_t kdf = json_integer_value(json_object_get(k, "kdf_id"));
    json_int_t aead = json_integer_value(json_object_get(k, "aead_id"));
    size_t pk_len = 0;
    enum cj_seal_reason why;

    if (pk == NULL || id < 0 || id > 255 || kem < 0 || kem > 0xffff ||
        kdf < 0 || kdf > 0xffff || aead < 0 || aead > 0xffff)
        return false;
    if (sodium_base642bin(out->public_key, sizeof(out->public_key), pk,
                          strlen(pk), NULL, &pk_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        pk_len != CJ_HPKE_PK_LEN)
        return false;
    out->header.version = CJ_ENVELOPE_VERSION;
    out->header.key_id = (uint8_t)id;
    out->header.suite.kem_id = (uint16_t)kem;
    out->header.suite.kdf_id = (uint16_t)kdf;
    out->header.suite.aead_id = (uint16_t)aead;
    return cj_stateless_header_check(&out->header, &why) == CJ_OK;
}

/* Picks the first active AES-256-GCM key, else the first usable one. */
static bool choose_key(const json_t *keys, struct cjc_server_key *out)
{
    struct cjc_server_key candidate;
    bool found = false;
    size_t i;
    json_t *k;

    json_array_foreach(keys, i, k)
    {
        const char *state = json_string_value(json_object_get(k, "state"));
        if (state == NULL || strcmp(state, "active") != 0)
            continue;
        if (!parse_listed_key(k, &candidate))
            continue;
        if (!found ||
            candidate.header.suite.aead_id == CJ_HPKE_AEAD_AES_256_GCM) {
            bool best =
                candidate.header.suite.aead_id == CJ_HPKE_AEAD_AES_256_GCM;
            *out = candidate;
            found = true;
            if (best)
                break;
        }
    }
    return found;
}

/*
 * Verifies one signed list. On success *payload is the parsed payload and
 * thumbprint the signer's RFC 7638 thumbprint.
 */
static enum cj_status verify_list(const char *jws_text, json_t **payload,
                                  char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1],
                                  char *err, size_t errlen)
{
    struct cj_jws_decoded jws = {0};
    enum cj_jose_reason why = CJ_JOSE_OK;
    struct cj_jwk *signer = NULL;
    enum cj_status rc = CJ_ERR_CRYPTO;
    char *signer_json = NULL;
    json_t *doc = NULL;

    *payload = NULL;
    if (cj_jws_decode(jws_text, strlen(jws_text), &jws, &why) != CJ_OK) {
        snprintf(err, errlen, "the key list is not a valid JWS (%s)",
                 cj_jose_reason_name(why));
        goto out;
    }
    doc = json_loadb((const char *)jws.payload, jws.payload_len,
                     JSON_REJECT_DUPLICATES, NULL);
    signer_json = json_dumps(json_object_get(doc, "signer"), JSON_COMPACT);
    if (doc == NULL || signer_json == NULL ||
        cj_jwk_from_json(signer_json, strlen(signer_json), &signer) != CJ_OK ||
        cj_jwk_get_alg(signer) != CJ_JWK_ALG_EDDSA) {
        snprintf(err, errlen, "the key list names no valid Ed25519 signer");
        goto out;
    }
    if (jws.typ == NULL || strcmp(jws.typ, CJC_KEY_LIST_TYP) != 0 ||
        cj_jws_check_signature(&jws, signer, &why) != CJ_OK) {
        snprintf(err, errlen, "the key list's signature does not verify");
        goto out;
    }
    if (cj_jwk_thumbprint(signer, thumbprint) != CJ_OK)
        goto out;
    json_int_t exp = json_integer_value(json_object_get(doc, "exp"));
    if (exp != 0 && exp < (json_int_t)time(NULL)) {
        snprintf(err, errlen,
                 "the key list expired; the server may be "
                 "replaying an old one");
        goto out;
    }
    *payload = doc;
    doc = NULL;
    rc = CJ_OK;

out:
    cj_jws_decoded_clear(&jws);
    cj_jwk_free(signer);
    free(signer_json);
    json_decref(doc);
    return rc;
}

enum cj_status cjc_keys_check(const json_t *body, const char *const *pins,
                              size_t n_pins, struct cjc_server_key *key,
                              json_t **out, char *err, size_t errlen)
{
    static const char *const members[] = {"key_list_jws",
                                          "previous_key_list_jws"};
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];
    /* Verified signers that no pin matches, joined by " and ". */
    char unpinned[2 * CJ_JWK_THUMBPRINT_LEN + 8] = "";
    json_t *payload = NULL;
    enum cj_status rc = CJ_ERR_CRYPTO;

    *out = NULL;
    snprintf(err, errlen, "the server sent no signed key list");
    /* During a signer rotation either list may carry the pinned signer. */
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        const char *text = json_string_value(json_object_get(body, members[i]));
        if (text == NULL || text[0] == '\0')
            continue;
        rc = verify_list(text, &payload, thumbprint, err, errlen);
        if (rc != CJ_OK)
            continue;
        if (n_pins == 0 || pinned(thumbprint, pins, n_pins))
            break;
        rc = CJ_ERR_CRYPTO;
        json_decref(payload);
        payload = NULL;
        if (unpinned[0] != '\0')
            strcat(unpinned, " and ");
        strcat(unpinned, thumbprint);
    }
    /* Every verified signer is named, because during a rotation the two
     * lists have different signers and 'cerrojo keys' prints the current
     * one. */
    if (rc != CJ_OK && unpinned[0] != '\0')
        snprintf(err, errlen,
                 "the key list is signed by %s, %s not pinned; compare the "
                 "--pin values with the \"signer\" that 'cerrojo keys' prints",
                 unpinned,
                 strchr(unpinned, ' ') != NULL ? "which are" : "which is");
    if (rc != CJ_OK)
        return rc;
    if (!choose_key(json_object_get(payload, "keys"), key)) {
        snprintf(err, errlen, "the key list has no usable active key");
        json_decref(payload);
        return CJ_ERR_NOT_FOUND;
    }
    *out = json_pack("{s:s,s:b,s:O}", "signer", thumbprint, "pinned",
                     n_pins > 0, "keys", json_object_get(payload, "keys"));
    json_decref(payload);
    return *out != NULL ? CJ_OK : CJ_ERR_NOMEM;
}

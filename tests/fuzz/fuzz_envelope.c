/*
 * libFuzzer entry point for the sealed-envelope parsers. The first input
 * byte picks a parser, the rest is its input; every parser must reject
 * garbage without crashing, leaking or reading out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope_stateful.h"
#include "envelope_stateless.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed keys: the fuzzer explores parsing and the paths to the tag check,
 * not the keys. */
static const uint8_t FUZZ_SK[32] = {0x42, 0x17, 0x99};
static const uint8_t FUZZ_KEY[32] = {0x24};
static const uint8_t FUZZ_SID[16] = "fuzz-session-id";

static void fuzz_stateless_request(const char *text, size_t len)
{
    struct cj_stateless_request req;
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *aad = NULL, *pt = NULL, secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t aad_len = 0, pt_len = 0, secret_len = 0;

    if (cj_stateless_parse_request(text, len, &req, &why) != CJ_OK) {
        return;
    }
    if (cj_stateless_build_aad("POST", "/v1/login", &aad, &aad_len) == CJ_OK &&
        cj_stateless_open(&req.header, FUZZ_SK, req.enc, sizeof(req.enc), aad,
                          aad_len, req.ct, req.ct_len, &pt, &pt_len, secret,
                          &secret_len, &why) == CJ_OK) {
        struct cj_seal_plaintext plain;
        if (cj_seal_plaintext_decode(pt, pt_len, &plain, &why) == CJ_OK) {
            (void)plain;
        }
        free(pt);
    }
    free(aad);
    cj_stateless_request_clear(&req);
}

static void fuzz_stateful_request(const char *text, size_t len)
{
    struct cj_stateful_request req;
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *pt = NULL;
    size_t pt_len = 0;

    if (cj_stateful_parse_request(text, len, &req, &why) != CJ_OK) {
        return;
    }
    if (cj_stateful_open_request(FUZZ_KEY, FUZZ_SID, sizeof(FUZZ_SID), &req,
                                 "GET", "/v1/me", &pt, &pt_len,
                                 &why) == CJ_OK) {
        free(pt);
    }
    cj_stateful_request_clear(&req);
}

static void fuzz_header(const char *text, size_t len)
{
    char *json = NULL;
    size_t json_len = 0;
    enum cj_seal_reason why = CJ_SEAL_OK;

    if (cj_seal_header_decode(text, len, &json, &json_len, &why) == CJ_OK) {
        fuzz_stateless_request(json, json_len);
        fuzz_stateful_request(json, json_len);
        free(json);
    }
}

static void fuzz_responses(const char *text, size_t len)
{
    struct cj_stateless_client client = {.aead_id = CJ_HPKE_AEAD_AES_128_GCM,
                                         .secret_len = 16};
    enum cj_seal_reason why = CJ_SEAL_OK;
    uint8_t *body = NULL;
    size_t body_len = 0;

    if (cj_stateless_open_response(&client, text, len, &body, &body_len,
                                   &why) == CJ_OK) {
        free(body);
    }
    if (cj_stateful_open_response(FUZZ_KEY, FUZZ_SID, sizeof(FUZZ_SID), 0, 1,
                                  text, len, &body, &body_len, &why) == CJ_OK) {
        free(body);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cj_seal_plaintext plain;
    enum cj_seal_reason why = CJ_SEAL_OK;

    if (size == 0) {
        return 0;
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 5) {
    case 0:
        fuzz_stateless_request(text, len);
        break;
    case 1:
        fuzz_stateful_request(text, len);
        break;
    case 2:
        fuzz_header(text, len);
        break;
    case 3:
        fuzz_responses(text, len);
        break;
    default:
        if (cj_seal_plaintext_decode(data + 1, len, &plain, &why) == CJ_OK) {
            (void)plain;
        }
        break;
    }
    return 0;
}

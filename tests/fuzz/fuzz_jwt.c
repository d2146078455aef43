/*
 * libFuzzer target for the access-token verifier and the JWK Set parser.
 * The first input byte selects the mode. Mode 0 passes the rest to
 * cj_jwt_verify as a compact token. Mode 1 signs the rest as a payload
 * with a known key and verifies it, which reaches the claim rules behind
 * the signature. Mode 2 passes the rest to cj_jwks_parse.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "jwk.h"
#include "jws.h"
#include "jwt.h"

#define FUZZ_NOW_S    1700000000LL
#define FUZZ_ISSUER   "https://auth.cerrojo.test"
#define FUZZ_AUDIENCE "cerrojo-gateway"

enum fuzz_mode {
    FUZZ_MODE_TOKEN = 0,
    FUZZ_MODE_PAYLOAD = 1,
    FUZZ_MODE_JWKS = 2,
    FUZZ_MODE_COUNT = 3,
};

/* A fixed Ed25519 seed, so seed tokens in the corpus verify. */
static const unsigned char FUZZ_SEED[CJ_JWK_ED25519_SEED_BYTES] = {
    0x63, 0x65, 0x72, 0x72, 0x6f, 0x6a, 0x6f, 0x2d, 0x66, 0x75, 0x7a,
    0x7a, 0x2d, 0x73, 0x65, 0x65, 0x64, 0x2d, 0x6e, 0x6f, 0x74, 0x2d,
    0x61, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x21, 0x21};

static struct cj_jwk *signing_key;
static struct cj_jwks *key_set;
static struct cj_jwt_verify_config config;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Makes the keys once. The replay driver has no initializer hook, so the
 * first input does it; keys live until the process exits. */
static void init_keys(void)
{
    struct cj_jwk *ec = NULL;
    const struct cj_jwk *keys[2];
    char *json = NULL;

    if (key_set != NULL) {
        return;
    }
    if (cj_jwk_import_private(CJ_JWK_ALG_EDDSA, FUZZ_SEED, sizeof(FUZZ_SEED),
                              &signing_key) != CJ_OK ||
        cj_jwk_set_kid(signing_key, "fuzz-ed25519") != CJ_OK ||
        cj_jwk_generate(CJ_JWK_ALG_ES256, &ec) != CJ_OK) {
        abort();
    }
    keys[0] = signing_key;
    keys[1] = ec;
    if (cj_jwks_to_json(keys, 2, &json) != CJ_OK ||
        cj_jwks_parse(json, strlen(json), &key_set) != CJ_OK) {
        abort();
    }
    free(json);
    cj_jwk_free(ec);
    cj_jwt_verify_config_init(&config, FUZZ_ISSUER, FUZZ_AUDIENCE);
}

static void verify(const char *token, size_t len)
{
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason = CJ_JOSE_INTERNAL;
    enum cj_status status = cj_jwt_verify(key_set, &config, FUZZ_NOW_S, token,
                                          len, &claims, &reason);

    /* The status must always be the class of the reason. */
    if (status != cj_jose_reason_status(reason)) {
        abort();
    }
    if (status == CJ_OK &&
        (claims.sub[0] == '\0' || claims.exp <= claims.iat)) {
        abort();
    }
}

static void sign_and_verify(const uint8_t *payload, size_t len)
{
    char *token = NULL;

    if (cj_jws_sign(signing_key, CJ_JWT_TYP, payload, len, &token) != CJ_OK) {
        return;
    }
    verify(token, strlen(token));
    free(token);
}

static void parse_jwks(const uint8_t *data, size_t size)
{
    struct cj_jwks *set = NULL;

    if (cj_jwks_parse((const char *)data, size, &set) == CJ_OK) {
        for (size_t i = 0; i < cj_jwks_count(set); i++) {
            (void)cj_jwks_find(set, "fuzz-ed25519");
        }
    }
    cj_jwks_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    init_keys();
    switch (data[0] % FUZZ_MODE_COUNT) {
    case FUZZ_MODE_TOKEN:
        verify((const char *)data + 1, size - 1);
        break;
    case FUZZ_MODE_PAYLOAD:
        sign_and_verify(data + 1, size - 1);
        break;
    default:
        parse_jwks(data + 1, size - 1);
        break;
    }
    return 0;
}

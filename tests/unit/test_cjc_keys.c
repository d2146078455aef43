/*
 * Tests for the client's key-list check: signature, signer pinning,
 * expiry and the choice of a key. Lists are signed here with a fresh
 * Ed25519 key the way kms signs them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <sodium.h>

#include "cjc_keys.h"
#include "crypto_util.h"
#include "envelope.h"
#include "jwk.h"
#include "jws.h"
#include "x25519.h"

struct fixture {
    struct cj_jwk *signer;
    char thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];
    char public_key[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uint8_t pk[32];

    assert_non_null(f);
    assert_int_equal(sodium_init() >= 0, 1);
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &f->signer), CJ_OK);
    assert_int_equal(cj_jwk_thumbprint(f->signer, f->thumbprint), CJ_OK);
    randombytes_buf(pk, sizeof(pk));
    char *text = cj_base64url_encode(pk, sizeof(pk));
    assert_non_null(text);
    snprintf(f->public_key, sizeof(f->public_key), "%s", text);
    free(text);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cj_jwk_free(f->signer);
    free(f);
    return 0;
}

/* Signs a key list with signer; exp_offset is added to now for "exp". */
static char *sign_list(const struct cj_jwk *signer, const char *public_key,
                       const char *state, int aead_id, long exp_offset)
{
    char *signer_json = NULL;
    char *payload = NULL;
    char *jws = NULL;

    assert_int_equal(cj_jwk_to_json(signer, &signer_json), CJ_OK);
    json_t *doc = json_pack("{s:I,s:I,s:o,s:[{s:i,s:i,s:i,s:i,s:s,s:s}]}",
                            "iat", (json_int_t)time(NULL), "exp",
                            (json_int_t)(time(NULL) + exp_offset), "signer",
                            json_loads(signer_json, 0, NULL), "keys", "key_id",
                            7, "kem_id", 0x20, "kdf_id", 1, "aead_id", aead_id,
                            "public_key", public_key, "state", state);
    assert_non_null(doc);
    payload = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(cj_jws_sign(signer, "cerrojo-keys+jws",
                                 (const unsigned char *)payload,
                                 strlen(payload), &jws),
                     CJ_OK);
    free(payload);
    free(signer_json);
    json_decref(doc);
    return jws;
}

static json_t *body_with(const char *jws)
{
    return json_pack("{s:s}", "key_list_jws", jws);
}

static void test_keys_accepts_pinned_signer(void **state)
{
    struct fixture *f = *state;
    char *jws = sign_list(f->signer, f->public_key, "active", 2, 3600);
    json_t *body = body_with(jws);
    const char *pins[] = {f->thumbprint};
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, pins, 1, &key, &out, err, sizeof(err)), CJ_OK);
    assert_int_equal(key.header.key_id, 7);
    assert_int_equal(key.header.suite.aead_id, 2);
    assert_string_equal(json_string_value(json_object_get(out, "signer")),
                        f->thumbprint);
    assert_true(json_is_true(json_object_get(out, "pinned")));
    json_decref(out);
    json_decref(body);
    free(jws);
}

static void test_keys_rejects_unpinned_signer(void **state)
{
    struct fixture *f = *state;
    char *jws = sign_list(f->signer, f->public_key, "active", 2, 3600);
    json_t *body = body_with(jws);
    const char *pins[] = {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, pins, 1, &key, &out, err, sizeof(err)),
        CJ_ERR_CRYPTO);
    assert_null(out);
    assert_non_null(strstr(err, "not pinned"));
    json_decref(body);
    free(jws);
}

static void test_pin_check_accepts_thumbprint(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";

    assert_int_equal(cjc_pin_check(f->thumbprint, err, sizeof(err)), CJ_OK);
    assert_string_equal(err, "");
}

static void test_pin_check_rejects_malformed_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not base64!",
        "",
        /* 42 and 44 characters */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        /* standard base64 alphabet, and padding */
        "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        /* the last character sets bits beyond the 32 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        print_message("pin '%s'\n", bad[i]);
        assert_int_equal(cjc_pin_check(bad[i], err, sizeof(err)),
                         CJ_ERR_INVALID);
        assert_non_null(strstr(err, "invalid pin"));
        assert_non_null(strstr(err, "43-character base64url"));
        assert_null(strstr(err, "not pinned"));
    }
}

static void test_keys_rejects_altered_payload(void **state)
{
    struct fixture *f = *state;
    char *jws = sign_list(f->signer, f->public_key, "active", 2, 3600);
    /* Flip one character of the payload part; the signature no longer
     * covers it. */
    char *dot = strchr(jws, '.');
    assert_non_null(dot);
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    json_t *body = body_with(jws);
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_not_equal(
        cjc_keys_check(body, NULL, 0, &key, &out, err, sizeof(err)), CJ_OK);
    assert_null(out);
    json_decref(body);
    free(jws);
}

static void test_keys_rejects_expired_list(void **state)
{
    struct fixture *f = *state;
    char *jws = sign_list(f->signer, f->public_key, "active", 2, -10);
    json_t *body = body_with(jws);
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, NULL, 0, &key, &out, err, sizeof(err)),
        CJ_ERR_CRYPTO);
    assert_non_null(strstr(err, "expired"));
    json_decref(body);
    free(jws);
}

static void test_keys_rejects_list_without_active_key(void **state)
{
    struct fixture *f = *state;
    char *jws = sign_list(f->signer, f->public_key, "retired", 2, 3600);
    json_t *body = body_with(jws);
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, NULL, 0, &key, &out, err, sizeof(err)),
        CJ_ERR_NOT_FOUND);
    json_decref(body);
    free(jws);
}

static void test_keys_rejects_missing_list(void **state)
{
    (void)state;
    json_t *body = json_object();
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_not_equal(
        cjc_keys_check(body, NULL, 0, &key, &out, err, sizeof(err)), CJ_OK);
    json_decref(body);
}

static void test_keys_accepts_previous_signer_in_rotation(void **state)
{
    struct fixture *f = *state;
    struct cj_jwk *next = NULL;
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &next), CJ_OK);
    char *new_list = sign_list(next, f->public_key, "active", 2, 3600);
    char *old_list = sign_list(f->signer, f->public_key, "active", 2, 3600);
    json_t *body = json_pack("{s:s,s:s}", "key_list_jws", new_list,
                             "previous_key_list_jws", old_list);
    const char *pins[] = {f->thumbprint};
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, pins, 1, &key, &out, err, sizeof(err)), CJ_OK);
    assert_string_equal(json_string_value(json_object_get(out, "signer")),
                        f->thumbprint);
    json_decref(out);
    json_decref(body);
    free(new_list);
    free(old_list);
    cj_jwk_free(next);
}

static void test_keys_unpinned_rotation_names_both(void **state)
{
    struct fixture *f = *state;
    struct cj_jwk *next = NULL;
    char next_thumbprint[CJ_JWK_THUMBPRINT_LEN + 1];
    assert_int_equal(cj_jwk_generate(CJ_JWK_ALG_EDDSA, &next), CJ_OK);
    assert_int_equal(cj_jwk_thumbprint(next, next_thumbprint), CJ_OK);
    char *new_list = sign_list(next, f->public_key, "active", 2, 3600);
    char *old_list = sign_list(f->signer, f->public_key, "active", 2, 3600);
    json_t *body = json_pack("{s:s,s:s}", "key_list_jws", new_list,
                             "previous_key_list_jws", old_list);
    const char *pins[] = {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    struct cjc_server_key key;
    json_t *out = NULL;
    char err[256];

    assert_int_equal(
        cjc_keys_check(body, pins, 1, &key, &out, err, sizeof(err)),
        CJ_ERR_CRYPTO);
    assert_null(out);
    /* The current signer is the one 'cerrojo keys' prints. */
    assert_non_null(strstr(err, next_thumbprint));
    assert_non_null(strstr(err, f->thumbprint));
    assert_non_null(strstr(err, "cerrojo keys"));
    json_decref(body);
    free(new_list);
    free(old_list);
    cj_jwk_free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_accepts_pinned_signer),
        cmocka_unit_test(test_keys_rejects_unpinned_signer),
        cmocka_unit_test(test_pin_check_accepts_thumbprint),
        cmocka_unit_test(test_pin_check_rejects_malformed_values),
        cmocka_unit_test(test_keys_rejects_altered_payload),
        cmocka_unit_test(test_keys_rejects_expired_list),
        cmocka_unit_test(test_keys_rejects_list_without_active_key),
        cmocka_unit_test(test_keys_rejects_missing_list),
        cmocka_unit_test(test_keys_accepts_previous_signer_in_rotation),
        cmocka_unit_test(test_keys_unpinned_rotation_names_both),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

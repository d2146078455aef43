/* Tests for the padding of sealed plaintexts: block rounding, the prefix,
 * the receiver's maximum, that the padded text stays the same JSON, and
 * that a plaintext of cj_seal_pad_plaintext_max() bytes seals to an
 * envelope within the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "crypto_util.h"
#include "envelope_stateful.h"
#include "envelope_stateless.h"
#include "hpke.h"
#include "seal_pad.h"

/* A receiver maximum far above every length these tests pad to. */
#define TEST_MAX_LARGE ((size_t)1 << 20)

/* Returns a malloc'd copy of text. */
static char *copy_of(const char *text)
{
    char *copy = strdup(text);

    assert_non_null(copy);
    return copy;
}

/* Returns a malloc'd JSON object {"p":"xxx..."} of exactly len bytes. */
static char *json_of_length(size_t len)
{
    char *text = malloc(len + 1);

    assert_true(len >= 8);
    assert_non_null(text);
    memcpy(text, "{\"p\":\"", 6);
    memset(text + 6, 'x', len - 8);
    memcpy(text + len - 2, "\"}", 3);
    return text;
}

static void test_pad_rounds_up_to_block(void **state)
{
    char *text = copy_of("{}");
    size_t len = 2;

    (void)state;
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE), CJ_OK);
    assert_int_equal(len, CJ_SEAL_PAD_BLOCK_LEN);
    assert_int_equal(strlen(text), CJ_SEAL_PAD_BLOCK_LEN);
    assert_memory_equal(text, "{}", 2);
    for (size_t i = 2; i < len; i++)
        assert_int_equal(text[i], ' ');
    free(text);
}

static void test_pad_counts_prefix(void **state)
{
    char *text = copy_of("{\"a\":1}");
    size_t len = 7;

    (void)state;
    /* The timestamp and token header of a request come before the JSON. */
    assert_int_equal(cj_seal_pad_json(&text, &len, 10, TEST_MAX_LARGE), CJ_OK);
    assert_int_equal(len, CJ_SEAL_PAD_BLOCK_LEN - 10);
    free(text);

    text = copy_of("{\"a\":1}");
    len = 7;
    assert_int_equal(cj_seal_pad_json(&text, &len, 300, TEST_MAX_LARGE), CJ_OK);
    assert_int_equal(300 + len, 2 * CJ_SEAL_PAD_BLOCK_LEN);
    free(text);
}

static void test_pad_equal_within_block(void **state)
{
    (void)state;
    /* Bodies from 8 bytes to a whole block all pad to one size. */
    for (size_t body = 8; body <= CJ_SEAL_PAD_BLOCK_LEN; body++) {
        char *text = json_of_length(body);
        size_t len = body;

        assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE),
                         CJ_OK);
        assert_int_equal(len, CJ_SEAL_PAD_BLOCK_LEN);
        free(text);
    }
    /* One byte more starts the next block. */
    char *text = json_of_length(CJ_SEAL_PAD_BLOCK_LEN + 1);
    size_t len = CJ_SEAL_PAD_BLOCK_LEN + 1;

    assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE), CJ_OK);
    assert_int_equal(len, 2 * CJ_SEAL_PAD_BLOCK_LEN);
    free(text);
}

static void test_pad_leaves_full_block(void **state)
{
    char *text = json_of_length(CJ_SEAL_PAD_BLOCK_LEN);
    char *before = text;
    size_t len = CJ_SEAL_PAD_BLOCK_LEN;

    (void)state;
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE), CJ_OK);
    assert_ptr_equal(text, before);
    assert_int_equal(len, CJ_SEAL_PAD_BLOCK_LEN);
    free(text);
}

static void test_pad_stops_at_max(void **state)
{
    char *text = json_of_length(300);
    size_t len = 300;

    (void)state;
    /* The next block ends at 512, but the receiver takes at most 400. */
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, 400), CJ_OK);
    assert_int_equal(len, 400);
    free(text);

    text = json_of_length(300);
    len = 300;
    assert_int_equal(cj_seal_pad_json(&text, &len, 10, 400), CJ_OK);
    assert_int_equal(len, 390);
    free(text);
}

static void test_pad_leaves_text_over_max(void **state)
{
    char *text = json_of_length(300);
    char *before = text;
    size_t len = 300;

    (void)state;
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, 200), CJ_OK);
    assert_ptr_equal(text, before);
    assert_int_equal(len, 300);
    free(text);
}

static void test_pad_keeps_json_value(void **state)
{
    char *text = copy_of("{\"login\":\"ana\",\"password\":\"pw\"}");
    size_t len = strlen(text);
    json_error_t error;
    json_t *parsed;

    (void)state;
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE), CJ_OK);
    /* Trailing whitespace is valid JSON, so a strict parser takes it. */
    parsed = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    assert_non_null(parsed);
    assert_string_equal(json_string_value(json_object_get(parsed, "login")),
                        "ana");
    json_decref(parsed);
    free(text);
}

static void test_pad_rejects_null(void **state)
{
    char *text = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(cj_seal_pad_json(NULL, &len, 0, TEST_MAX_LARGE),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_seal_pad_json(&text, &len, 0, TEST_MAX_LARGE),
                     CJ_ERR_INVALID);
    text = copy_of("{}");
    assert_int_equal(cj_seal_pad_json(&text, NULL, 0, TEST_MAX_LARGE),
                     CJ_ERR_INVALID);
    free(text);
}

static void test_plaintext_max_small_limits(void **state)
{
    (void)state;
    assert_int_equal(cj_seal_pad_plaintext_max(0), 0);
    assert_int_equal(cj_seal_pad_plaintext_max(CJ_SEAL_PAD_ENVELOPE_OVERHEAD),
                     0);
    /* 20 characters of ct hold 15 bytes, less than a tag. */
    assert_int_equal(
        cj_seal_pad_plaintext_max(CJ_SEAL_PAD_ENVELOPE_OVERHEAD + 20), 0);
}

/* Seals a stateless request whose plaintext has exactly pt_len bytes and
 * returns the envelope's length. */
static size_t stateless_envelope_len(size_t pt_len)
{
    struct cj_stateless_header hdr = {
        .version = CJ_ENVELOPE_VERSION,
        .key_id = 255,
        .suite = {CJ_HPKE_KEM_X25519_SHA256, CJ_HPKE_KDF_HKDF_SHA256,
                  CJ_HPKE_AEAD_CHACHA20},
    };
    uint8_t sk[CJ_HPKE_SK_LEN], pk[CJ_HPKE_PK_LEN], ikm[32] = {1};
    struct cj_stateless_client client;
    struct cj_seal_plaintext pt = {.ts_ms = 1};
    char *body;
    char *envelope = NULL;
    size_t envelope_len = 0;

    assert_true(pt_len > CJ_SEAL_PLAINTEXT_HEADER_LEN);
    body = json_of_length(pt_len - CJ_SEAL_PLAINTEXT_HEADER_LEN);
    pt.body = (const uint8_t *)body;
    pt.body_len = pt_len - CJ_SEAL_PLAINTEXT_HEADER_LEN;
    assert_int_equal(cj_hpke_derive_key_pair(sk, pk, ikm, sizeof(ikm)), CJ_OK);
    assert_int_equal(cj_stateless_seal_request(&hdr, pk, "POST", "/v1/login",
                                               &pt, &envelope, &envelope_len,
                                               &client),
                     CJ_OK);
    cj_stateless_client_wipe(&client);
    free(envelope);
    free(body);
    return envelope_len;
}

/* Seals a stateful request whose plaintext has exactly pt_len bytes, with
 * the largest epoch and sequence number, and returns the envelope's
 * length. */
static size_t stateful_envelope_len(size_t pt_len)
{
    const uint8_t c2s[CJ_RATCHET_KEY_LEN] = {2};
    const uint8_t session_id[] = "AAECAwQFBgcICQoLDA0ODw";
    struct cj_seal_plaintext pt = {.ts_ms = UINT64_MAX};
    char *body;
    char *envelope = NULL;
    size_t envelope_len = 0;

    assert_true(pt_len > CJ_SEAL_PLAINTEXT_HEADER_LEN);
    body = json_of_length(pt_len - CJ_SEAL_PLAINTEXT_HEADER_LEN);
    pt.body = (const uint8_t *)body;
    pt.body_len = pt_len - CJ_SEAL_PLAINTEXT_HEADER_LEN;
    assert_int_equal(cj_stateful_seal_request(
                         c2s, session_id, sizeof(session_id) - 1, UINT32_MAX,
                         (UINT64_C(1) << 53) - 1, "PUT", "/v1/me/data/private",
                         &pt, &envelope, &envelope_len),
                     CJ_OK);
    free(envelope);
    free(body);
    return envelope_len;
}

static void test_plaintext_max_fits_envelope(void **state)
{
    const size_t limits[] = {4 * 1024, 6 * 1024, 16 * 1024, 128 * 1024};

    (void)state;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        size_t max = cj_seal_pad_plaintext_max(limits[i]);

        assert_true(stateless_envelope_len(max) <= limits[i]);
        assert_true(stateful_envelope_len(max) <= limits[i]);
        /* The bound wastes less than a block: one more would not fit. */
        assert_true(stateless_envelope_len(max + CJ_SEAL_PAD_BLOCK_LEN) >
                    limits[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_rounds_up_to_block),
        cmocka_unit_test(test_pad_counts_prefix),
        cmocka_unit_test(test_pad_equal_within_block),
        cmocka_unit_test(test_pad_leaves_full_block),
        cmocka_unit_test(test_pad_stops_at_max),
        cmocka_unit_test(test_pad_leaves_text_over_max),
        cmocka_unit_test(test_pad_keeps_json_value),
        cmocka_unit_test(test_pad_rejects_null),
        cmocka_unit_test(test_plaintext_max_small_limits),
        cmocka_unit_test(test_plaintext_max_fits_envelope),
    };

    if (cj_crypto_init() != CJ_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for stateful envelopes: round trips across ratchet epochs, the
 * one-response keys, the GET header form, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "envelope_stateful.h"

static const uint8_t SID[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                                9, 10, 11, 12, 13, 14, 15, 16};

static const struct cj_seal_plaintext SAMPLE_PT = {
    .ts_ms = 1733300000000ULL,
    .body = (const uint8_t *)"{\"value\":\"secret\"}",
    .body_len = 18,
};

static void test_round_trip_across_epochs(void **state)
{
    (void)state;
    uint8_t client_secret[32];
    uint8_t server_key[32];
    uint64_t seq = 0;
    uint32_t server_epoch = 0;
    cj_random_bytes(client_secret, sizeof(client_secret));
    struct cj_ratchet *client = cj_ratchet_new(SID, sizeof(SID), client_secret);
    assert_non_null(client);
    assert_int_equal(
        cj_ratchet_first_key(server_key, SID, sizeof(SID), client_secret),
        CJ_OK);

    for (uint32_t epoch = 0; epoch < 4; epoch++) {
        uint8_t c_c2s[32], c_s2c[32], s_c2s[32], s_s2c[32];
        assert_int_equal(cj_ratchet_move_to(client, epoch), CJ_OK);
        assert_int_equal(cj_ratchet_advance(server_key, server_epoch, epoch),
                         CJ_OK);
        server_epoch = epoch;
        assert_int_equal(
            cj_ratchet_direction_keys(client->key->bytes, c_c2s, c_s2c), CJ_OK);
        assert_int_equal(cj_ratchet_direction_keys(server_key, s_c2s, s_s2c),
                         CJ_OK);
        for (int r = 0; r < 2; r++) {
            struct cj_stateful_request req;
            struct cj_seal_plaintext got;
            char *env = NULL, *resp = NULL;
            size_t env_len = 0, pt_len = 0, resp_len = 0, body_len = 0;
            uint8_t *pt = NULL, *body = NULL, gw_key[32], client_key[32];
            enum cj_seal_reason why = CJ_SEAL_INTERNAL;

            seq++;
            assert_int_equal(
                cj_stateful_seal_request(c_c2s, SID, sizeof(SID), epoch, seq,
                                         "PUT", "/v1/me/data/protected",
                                         &SAMPLE_PT, &env, &env_len),
                CJ_OK);
            assert_int_equal(
                cj_stateful_parse_request(env, env_len, &req, &why), CJ_OK);
            assert_int_equal(req.epoch, epoch);
            assert_int_equal(req.seq, seq);
            assert_int_equal(cj_stateful_open_request(
                                 s_c2s, SID, sizeof(SID), &req, "PUT",
                                 "/v1/me/data/protected", &pt, &pt_len, &why),
                             CJ_OK);
            assert_int_equal(cj_seal_plaintext_decode(pt, pt_len, &got, &why),
                             CJ_OK);
            assert_int_equal(got.ts_ms, SAMPLE_PT.ts_ms);
            assert_memory_equal(got.body, SAMPLE_PT.body, SAMPLE_PT.body_len);

            /* Session hands the gateway a key for this response only. */
            assert_int_equal(cj_ratchet_response_key(gw_key, s_s2c, seq),
                             CJ_OK);
            assert_int_equal(cj_stateful_seal_response(
                                 gw_key, SID, sizeof(SID), epoch, seq,
                                 (const uint8_t *)"saved", 5, &resp, &resp_len),
                             CJ_OK);
            assert_int_equal(cj_ratchet_response_key(client_key, c_s2c, seq),
                             CJ_OK);
            assert_int_equal(cj_stateful_open_response(
                                 client_key, SID, sizeof(SID), epoch, seq, resp,
                                 resp_len, &body, &body_len, &why),
                             CJ_OK);
            assert_int_equal(body_len, 5);
            assert_memory_equal(body, "saved", 5);
            free(body);
            body = NULL;

            /* The response does not open as the answer to another seq. */
            assert_int_equal(cj_stateful_open_response(
                                 client_key, SID, sizeof(SID), epoch, seq + 1,
                                 resp, resp_len, &body, &body_len, &why),
                             CJ_ERR_CRYPTO);
            assert_int_equal(why, CJ_SEAL_AUTH_FAILED);

            cj_stateful_request_clear(&req);
            free(env);
            free(resp);
            free(pt);
        }
    }
    cj_ratchet_free(client);
}

/* Seals one request with key under (epoch 3, seq 9) and parses it. */
static void sealed_sample(const uint8_t key[32],
                          struct cj_stateful_request *req, char **env,
                          size_t *env_len)
{
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    assert_int_equal(cj_stateful_seal_request(key, SID, sizeof(SID), 3, 9,
                                              "POST", "/v1/refresh", &SAMPLE_PT,
                                              env, env_len),
                     CJ_OK);
    assert_int_equal(cj_stateful_parse_request(*env, *env_len, req, &why),
                     CJ_OK);
}

static enum cj_seal_reason try_open(const uint8_t key[32], const uint8_t *sid,
                                    size_t sid_len,
                                    const struct cj_stateful_request *req,
                                    const char *method, const char *path)
{
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    enum cj_status st = cj_stateful_open_request(key, sid, sid_len, req, method,
                                                 path, &pt, &pt_len, &why);
    assert_int_equal(st, cj_seal_reason_status(why));
    if (st == CJ_OK) {
        free(pt);
    } else {
        assert_null(pt);
    }
    return why;
}

static void test_open_rejects_changed_binding(void **state)
{
    (void)state;
    uint8_t key[32], other_key[32], other_sid[16];
    struct cj_stateful_request req;
    char *env = NULL;
    size_t env_len = 0;
    cj_random_bytes(key, sizeof(key));
    cj_random_bytes(other_key, sizeof(other_key));
    memcpy(other_sid, SID, sizeof(SID));
    other_sid[0] ^= 1;
    sealed_sample(key, &req, &env, &env_len);

    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_OK);
    assert_int_equal(try_open(other_key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    assert_int_equal(try_open(key, other_sid, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    assert_int_equal(try_open(key, SID, 16, &req, "GET", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/logout"),
                     CJ_SEAL_AUTH_FAILED);
    req.seq++;
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    req.seq--;
    req.epoch++;
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    req.epoch--;
    req.ct_len--;
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    req.ct_len++;
    req.ct[0] ^= 1;
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_AUTH_FAILED);
    req.ct[0] ^= 1;
    assert_int_equal(try_open(key, SID, 8, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_BAD_ARGUMENT);
    req.version = 2;
    assert_int_equal(try_open(key, SID, 16, &req, "POST", "/v1/refresh"),
                     CJ_SEAL_UNKNOWN_VERSION);
    cj_stateful_request_clear(&req);
    free(env);
}

static void test_parse_rejection_table(void **state)
{
    (void)state;
    uint8_t key[32] = {4};
    struct cj_stateful_request req;
    char *env = NULL, ct[4096], text[8192];
    size_t env_len = 0;
    const struct {
        const char *format; /* %s: ct */
        enum cj_seal_reason want;
    } cases[] = {
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%s\"}", CJ_SEAL_OK},
        {"{\"v\":2,\"epoch\":3,\"seq\":9,\"ct\":\"%s\"}",
         CJ_SEAL_UNKNOWN_VERSION},
        {"{\"v\":1,\"epoch\":3,\"seq\":0,\"ct\":\"%s\"}", CJ_SEAL_OUT_OF_RANGE},
        {"{\"v\":1,\"epoch\":3,\"seq\":9007199254740992,\"ct\":\"%s\"}",
         CJ_SEAL_OUT_OF_RANGE},
        {"{\"v\":1,\"epoch\":4294967296,\"seq\":9,\"ct\":\"%s\"}",
         CJ_SEAL_OUT_OF_RANGE},
        {"{\"v\":1,\"epoch\":3.0,\"seq\":9,\"ct\":\"%s\"}",
         CJ_SEAL_NOT_INTEGER},
        {"{\"v\":1,\"epoch\":3,\"seq\":9e0,\"ct\":\"%s\"}",
         CJ_SEAL_NOT_INTEGER},
        {"{\"v\":1,\"epoch\":\"3\",\"seq\":9,\"ct\":\"%s\"}",
         CJ_SEAL_WRONG_TYPE},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%s\",\"sid\":\"x\"}",
         CJ_SEAL_UNKNOWN_FIELD},
        {"{\"v\":1,\"seq\":9,\"ct\":\"%s\"}", CJ_SEAL_MISSING_FIELD},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%s\"}\n}",
         CJ_SEAL_TRAILING_DATA},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"seq\":9,\"ct\":\"%s\"}",
         CJ_SEAL_DUPLICATE_FIELD},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%s==\"}", CJ_SEAL_BAD_BASE64},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%.20s\"}",
         CJ_SEAL_BAD_LENGTH},
        {"{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":%.0s[]}", CJ_SEAL_WRONG_TYPE},
    };

    assert_int_equal(cj_stateful_seal_request(key, SID, sizeof(SID), 3, 9,
                                              "POST", "/v1/refresh", &SAMPLE_PT,
                                              &env, &env_len),
                     CJ_OK);
    assert_int_equal(sscanf(env,
                            "{\"v\":1,\"epoch\":3,\"seq\":9,\"ct\":\"%4095["
                            "^\"]\"}",
                            ct),
                     1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum cj_seal_reason why = CJ_SEAL_INTERNAL;
        snprintf(text, sizeof(text), cases[i].format, ct);
        enum cj_status st =
            cj_stateful_parse_request(text, strlen(text), &req, &why);
        assert_int_equal(st, cj_seal_reason_status(why));
        if (why != cases[i].want) {
            fail_msg("case %zu: got %s, expected %s", i,
                     cj_seal_reason_name(why),
                     cj_seal_reason_name(cases[i].want));
        }
        cj_stateful_request_clear(&req);
    }
    free(env);
}

static void test_get_request_through_header_form(void **state)
{
    (void)state;
    uint8_t key[32] = {9};
    struct cj_seal_plaintext get = {.ts_ms = 7};
    struct cj_stateful_request req;
    char *env = NULL, *value = NULL, *json = NULL;
    size_t env_len = 0, json_len = 0;
    enum cj_seal_reason why = CJ_SEAL_INTERNAL;

    assert_int_equal(cj_stateful_seal_request(key, SID, sizeof(SID), 0, 1,
                                              "GET", "/v1/me", &get, &env,
                                              &env_len),
                     CJ_OK);
    assert_int_equal(cj_seal_header_encode(env, env_len, &value), CJ_OK);
    assert_int_equal(
        cj_seal_header_decode(value, strlen(value), &json, &json_len, &why),
        CJ_OK);
    assert_int_equal(cj_stateful_parse_request(json, json_len, &req, &why),
                     CJ_OK);
    assert_int_equal(try_open(key, SID, 16, &req, "GET", "/v1/me"), CJ_SEAL_OK);
    cj_stateful_request_clear(&req);
    free(env);
    free(value);
    free(json);
}

static void test_seal_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t key[32] = {0};
    char *env = NULL;
    size_t env_len = 0;
    assert_int_equal(cj_stateful_seal_request(key, SID, sizeof(SID), 0, 0,
                                              "GET", "/v1/me", &SAMPLE_PT, &env,
                                              &env_len),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_stateful_seal_request(
                         key, SID, sizeof(SID), 0, CJ_STATEFUL_MAX_SEQ + 1,
                         "GET", "/v1/me", &SAMPLE_PT, &env, &env_len),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_stateful_seal_request(key, SID, 15, 0, 1, "GET",
                                              "/v1/me", &SAMPLE_PT, &env,
                                              &env_len),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_stateful_seal_response(key, SID, sizeof(SID), 0, 0,
                                               NULL, 0, &env, &env_len),
                     CJ_ERR_INVALID);
    assert_null(env);
}

/* The worked example of docs/protocol.md, reproduced byte for byte
 * (values recomputed independently by docs/protocol_example.py). */
static void test_documented_example_matches(void **state)
{
    (void)state;
    static const char sid[] = "AAECAwQFBgcICQoLDA0ODw";
    static const char want_request[] =
        "{\"v\":1,\"epoch\":2,\"seq\":5,\"ct\":"
        "\"uJgbJ5oNklupfjJ_UnBVRuVb7ARokqD8W0Y\"}";
    static const char want_response[] =
        "{\"v\":1,\"nonce\":\"VVVVVVVVVVVVVVVV\",\"ct\":"
        "\"k6ddMJRZ8atoMf4pR98GCkKhEvqVXQZDIycIdWwH\"}";
    const uint64_t created = 1764806400000ULL, len = 900000;
    const uint64_t now = created + 2 * len + 1234;
    uint8_t secret[32], key[32], c2s[32], s2c[32], resp_key[32], nonce[12];
    struct cj_seal_plaintext pt = {.ts_ms = now};
    char *env = NULL, *resp = NULL;
    size_t env_len = 0, resp_len = 0;
    uint32_t epoch = 0;

    memset(secret, 0x44, sizeof(secret));
    memset(nonce, 0x55, sizeof(nonce));
    assert_int_equal(cj_epoch_at(created, len, now, &epoch), CJ_OK);
    assert_int_equal(epoch, 2);
    assert_int_equal(
        cj_ratchet_first_key(key, (const uint8_t *)sid, strlen(sid), secret),
        CJ_OK);
    assert_int_equal(cj_ratchet_advance(key, 0, epoch), CJ_OK);
    assert_int_equal(cj_ratchet_direction_keys(key, c2s, s2c), CJ_OK);
    assert_int_equal(cj_stateful_seal_request(c2s, (const uint8_t *)sid,
                                              strlen(sid), epoch, 5, "GET",
                                              "/v1/me", &pt, &env, &env_len),
                     CJ_OK);
    assert_string_equal(env, want_request);
    assert_int_equal(cj_ratchet_response_key(resp_key, s2c, 5), CJ_OK);
    assert_int_equal(cj_stateful_seal_response_with_nonce(
                         resp_key, (const uint8_t *)sid, strlen(sid), epoch, 5,
                         nonce, (const uint8_t *)"{\"user\":\"ana\"}", 14,
                         &resp, &resp_len),
                     CJ_OK);
    assert_string_equal(resp, want_response);
    free(env);
    free(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example_matches),
        cmocka_unit_test(test_round_trip_across_epochs),
        cmocka_unit_test(test_open_rejects_changed_binding),
        cmocka_unit_test(test_parse_rejection_table),
        cmocka_unit_test(test_get_request_through_header_form),
        cmocka_unit_test(test_seal_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the session key schedule: known answers computed with an
 * independent HKDF (Python's hmac module), client and server agreement
 * across epochs, bounds, and the epoch clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "crypto_util.h"
#include "ratchet.h"
#include "vectors_helper.h"

/* Session id 00..0f and client secret 20..3f. */
#define KAT_K0                                                                 \
    "7729dba0713c9aa6c1b7993353708b34bcab2180d1886c37d3c4c7ed9a273055"
#define KAT_K1                                                                 \
    "00ffdfb8232ccadb518c36ed1c5d06f2ee5f992515ea14c806232bcca7ee80e6"
#define KAT_K2                                                                 \
    "b7b824f7845e0c8238c7b5f76879c3f7b2b229af7b7f9217e28d7f748a11cbb4"
#define KAT_C2S2                                                               \
    "83dfdf01eaab5bd57eb86db7d9f2d6c185e677e4f27d1edccc554f8ce407ede3"
#define KAT_S2C2                                                               \
    "55d951f80a40c13d1834a09467d42233a781529835ea8b59974d301b93e0aa16"
#define KAT_RESP                                                               \
    "8896aeae4b705fb2df6b7f62b6e95d558ee051385d8d9280940f003be7b7e68a"

static void kat_inputs(uint8_t sid[16], uint8_t secret[32])
{
    for (int i = 0; i < 16; i++) {
        sid[i] = (uint8_t)i;
    }
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(0x20 + i);
    }
}

static void assert_key(const uint8_t *key, const char *hex)
{
    uint8_t want[32];
    hex_to(want, 32, hex);
    assert_memory_equal(key, want, 32);
}

static void test_key_schedule_known_answers(void **state)
{
    (void)state;
    uint8_t sid[16], secret[32], key[32], c2s[32], s2c[32], resp[32];
    kat_inputs(sid, secret);

    assert_int_equal(cj_ratchet_first_key(key, sid, 16, secret), CJ_OK);
    assert_key(key, KAT_K0);
    assert_int_equal(cj_ratchet_next(key), CJ_OK);
    assert_key(key, KAT_K1);
    assert_int_equal(cj_ratchet_next(key), CJ_OK);
    assert_key(key, KAT_K2);
    assert_int_equal(cj_ratchet_direction_keys(key, c2s, s2c), CJ_OK);
    assert_key(c2s, KAT_C2S2);
    assert_key(s2c, KAT_S2C2);
    assert_int_equal(cj_ratchet_response_key(resp, s2c, 5), CJ_OK);
    assert_key(resp, KAT_RESP);
}

static void test_client_and_server_agree_over_epochs(void **state)
{
    (void)state;
    uint8_t sid[32], secret[32], server_key[32];
    uint32_t server_epoch = 0;
    cj_random_bytes(sid, sizeof(sid));
    cj_random_bytes(secret, sizeof(secret));

    /* The client keeps a ratchet; the server advances lazily in jumps. */
    struct cj_ratchet *client = cj_ratchet_new(sid, sizeof(sid), secret);
    assert_non_null(client);
    assert_int_equal(cj_ratchet_first_key(server_key, sid, sizeof(sid), secret),
                     CJ_OK);
    static const uint32_t epochs[] = {0, 1, 2, 5, 6, 10};
    for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
        uint8_t cc[32], cs[32], sc[32], ss[32], from_first[32], first[32];
        assert_int_equal(cj_ratchet_move_to(client, epochs[i]), CJ_OK);
        assert_int_equal(
            cj_ratchet_advance(server_key, server_epoch, epochs[i]), CJ_OK);
        server_epoch = epochs[i];
        assert_memory_equal(client->key->bytes, server_key, 32);

        /* Derived from the first key directly, the same key results. */
        assert_int_equal(cj_ratchet_first_key(first, sid, sizeof(sid), secret),
                         CJ_OK);
        memcpy(from_first, first, 32);
        assert_int_equal(cj_ratchet_advance(from_first, 0, epochs[i]), CJ_OK);
        assert_memory_equal(from_first, server_key, 32);

        assert_int_equal(cj_ratchet_direction_keys(client->key->bytes, cc, cs),
                         CJ_OK);
        assert_int_equal(cj_ratchet_direction_keys(server_key, sc, ss), CJ_OK);
        assert_memory_equal(cc, sc, 32);
        assert_memory_equal(cs, ss, 32);
        assert_memory_not_equal(cc, cs, 32);
    }
    cj_ratchet_free(client);
}

static void test_epochs_and_sessions_give_distinct_keys(void **state)
{
    (void)state;
    uint8_t sid[16], secret[32], a[32], b[32];
    kat_inputs(sid, secret);
    assert_int_equal(cj_ratchet_first_key(a, sid, 16, secret), CJ_OK);
    memcpy(b, a, 32);
    assert_int_equal(cj_ratchet_next(b), CJ_OK);
    assert_memory_not_equal(a, b, 32);
    sid[15] ^= 1;
    assert_int_equal(cj_ratchet_first_key(b, sid, 16, secret), CJ_OK);
    assert_memory_not_equal(a, b, 32);
}

static void test_response_keys_differ_per_sequence(void **state)
{
    (void)state;
    uint8_t s2c[32] = {1}, r1[32], r2[32];
    assert_int_equal(cj_ratchet_response_key(r1, s2c, 1), CJ_OK);
    assert_int_equal(cj_ratchet_response_key(r2, s2c, 2), CJ_OK);
    assert_memory_not_equal(r1, r2, 32);
}

static void test_rejects_bad_session_id_and_backward_moves(void **state)
{
    (void)state;
    uint8_t sid[65] = {0}, secret[32] = {0}, key[32] = {0};
    assert_int_equal(cj_ratchet_first_key(key, sid, 15, secret),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_ratchet_first_key(key, sid, 65, secret),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_ratchet_first_key(key, NULL, 16, secret),
                     CJ_ERR_INVALID);
    assert_null(cj_ratchet_new(sid, 3, secret));
    assert_int_equal(cj_ratchet_advance(key, 5, 4), CJ_ERR_INVALID);
    assert_int_equal(cj_ratchet_advance(key, 0, CJ_RATCHET_MAX_STEPS + 1),
                     CJ_ERR_INVALID);

    struct cj_ratchet *r = cj_ratchet_new(sid, 16, secret);
    assert_non_null(r);
    assert_int_equal(cj_ratchet_move_to(r, 3), CJ_OK);
    assert_int_equal(cj_ratchet_move_to(r, 2), CJ_ERR_INVALID);
    assert_int_equal(r->epoch, 3);
    assert_int_equal(cj_ratchet_move_to(r, 3 + CJ_RATCHET_MAX_STEPS + 1),
                     CJ_ERR_INVALID);
    assert_non_null(r->key);
    cj_ratchet_free(r);
    cj_ratchet_free(NULL);
}

static void test_session_id_valid_issued_form(void **state)
{
    /* 22 characters, as 16 random bytes in unpadded base64url give. */
    static const char *const good[] = {
        "c2Vzc2lvbi1pZC0xMjM0NQ",
        "AAAAAAAAAAAAAAAAAAAAAA",
        "zz09-_zz09-_zz09-_zz09",
    };
    static const char *const bad[] = {
        "",
        "c2Vzc2lvbi1pZC0xMjM0N",
        "c2Vzc2lvbi1pZC0xMjM0NQx",
        "c2Vzc2lvbi1pZC0xMjM0N+",
        "c2Vzc2lvbi1pZC0xMjM0N/",
        "c2Vzc2lvbi1pZC0xMjM0N=",
        "c2Vzc2lvbi1pZC0xMjM0N ",
        "c2Vzc2lvbi1pZC0xMjM0N.",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!cj_session_id_valid(good[i])) {
            fail_msg("session id \"%s\" rejected", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cj_session_id_valid(bad[i])) {
            fail_msg("session id \"%s\" accepted", bad[i]);
        }
    }
    assert_false(cj_session_id_valid(NULL));
}

static void test_epoch_at_counts_from_creation(void **state)
{
    (void)state;
    const uint64_t created = 1733300000000ULL;
    const uint64_t len = 15 * 60 * 1000ULL;
    uint32_t epoch = 99;
    assert_int_equal(cj_epoch_at(created, len, created, &epoch), CJ_OK);
    assert_int_equal(epoch, 0);
    assert_int_equal(cj_epoch_at(created, len, created + len - 1, &epoch),
                     CJ_OK);
    assert_int_equal(epoch, 0);
    assert_int_equal(cj_epoch_at(created, len, created + len, &epoch), CJ_OK);
    assert_int_equal(epoch, 1);
    assert_int_equal(cj_epoch_at(created, len, created + 10 * len + 5, &epoch),
                     CJ_OK);
    assert_int_equal(epoch, 10);
    assert_int_equal(cj_epoch_at(created, len, created - 1, &epoch),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_epoch_at(created, 0, created, &epoch), CJ_ERR_INVALID);
    assert_int_equal(cj_epoch_at(0, 1, UINT64_C(1) << 40, &epoch),
                     CJ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_schedule_known_answers),
        cmocka_unit_test(test_client_and_server_agree_over_epochs),
        cmocka_unit_test(test_epochs_and_sessions_give_distinct_keys),
        cmocka_unit_test(test_response_keys_differ_per_sequence),
        cmocka_unit_test(test_rejects_bad_session_id_and_backward_moves),
        cmocka_unit_test(test_epoch_at_counts_from_creation),
        cmocka_unit_test(test_session_id_valid_issued_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

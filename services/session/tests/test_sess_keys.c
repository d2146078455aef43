/* Unit tests of epoch-key wrapping and epoch selection (sess_keys.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"
#include "log.h"
#include "sess_keys.h"

static const char SID_A[] = "AAAAAAAAAAAAAAAAAAAAAA";
static const char SID_B[] = "BBBBBBBBBBBBBBBBBBBBBB";

/* A version 1 record written by sess_key_wrap before version 2 existed:
 * wrapping key bytes 0x00..0x1f, epoch key bytes 0xa0..0xbf, session SID_A,
 * epoch 7. */
static const char V1_RECORD_HEX[] =
    "013437d806822fe83e821a1afed18a2358bbad897da9261e17b25aab0f5b5f8c"
    "dba1bdd64958b152eb23e81f91facf027213a27208cdf0d91eb0c86339602de2"
    "ed216dc8c2";
#define V1_RECORD_EPOCH 7

struct fixture {
    unsigned char wrap_current[SESS_WRAP_KEY_LEN];
    unsigned char wrap_previous[SESS_WRAP_KEY_LEN];
    unsigned char epoch_key[SESS_EPOCH_KEY_LEN];
    struct sess_wrapping *w;
};

static int setup(void **state)
{
    static struct fixture f;

    assert_int_equal(cj_crypto_init(), CJ_OK);
    cj_random_bytes(f.wrap_current, sizeof(f.wrap_current));
    cj_random_bytes(f.wrap_previous, sizeof(f.wrap_previous));
    cj_random_bytes(f.epoch_key, sizeof(f.epoch_key));
    assert_int_equal(sess_wrapping_new(f.wrap_current, NULL, &f.w), CJ_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    sess_wrapping_free(f->w);
    f->w = NULL;
    return 0;
}

static void test_wrap_round_trips(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 7, f->epoch_key, wrapped),
                     CJ_OK);
    assert_memory_not_equal(wrapped + SESS_WRAPPED_LEN - 48, f->epoch_key,
                            SESS_EPOCH_KEY_LEN);
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 7, wrapped, sizeof(wrapped), out), CJ_OK);
    assert_memory_equal(out, f->epoch_key, SESS_EPOCH_KEY_LEN);
    assert_true(sess_key_is_current(f->w, wrapped, sizeof(wrapped)));
}

static void test_wrap_handles_long_session_id(void **state)
{
    struct fixture *f = *state;
    char sid[65];
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    memset(sid, 'x', 64);
    sid[64] = '\0';
    assert_int_equal(sess_key_wrap(f->w, sid, 1, f->epoch_key, wrapped), CJ_OK);
    assert_int_equal(
        sess_key_unwrap(f->w, sid, 1, wrapped, sizeof(wrapped), out), CJ_OK);
    assert_memory_equal(out, f->epoch_key, SESS_EPOCH_KEY_LEN);
}

static void test_unwrap_rejects_other_session(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 7, f->epoch_key, wrapped),
                     CJ_OK);
    assert_int_equal(
        sess_key_unwrap(f->w, SID_B, 7, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
    assert_true(cj_ct_is_zero(out, sizeof(out)));
}

static void test_unwrap_rejects_other_epoch(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 7, f->epoch_key, wrapped),
                     CJ_OK);
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 8, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
}

static void test_unwrap_rejects_tampered_tag(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 1, f->epoch_key, wrapped),
                     CJ_OK);
    wrapped[SESS_WRAPPED_LEN - 1] ^= 0x01;
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 1, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
}

static void test_unwrap_rejects_truncated_blob(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 1, f->epoch_key, wrapped),
                     CJ_OK);
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 1, wrapped, sizeof(wrapped) - 1, out),
        CJ_ERR_CRYPTO);
}

static void test_previous_wrapping_key_still_unwraps(void **state)
{
    struct fixture *f = *state;
    struct sess_wrapping *old = NULL;
    struct sess_wrapping *rotated = NULL;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_wrapping_new(f->wrap_previous, NULL, &old), CJ_OK);
    assert_int_equal(sess_key_wrap(old, SID_A, 3, f->epoch_key, wrapped),
                     CJ_OK);
    assert_int_equal(
        sess_wrapping_new(f->wrap_current, f->wrap_previous, &rotated), CJ_OK);
    assert_int_equal(
        sess_key_unwrap(rotated, SID_A, 3, wrapped, sizeof(wrapped), out),
        CJ_OK);
    assert_memory_equal(out, f->epoch_key, SESS_EPOCH_KEY_LEN);
    assert_false(sess_key_is_current(rotated, wrapped, sizeof(wrapped)));
    /* Without the previous key the blob is unknown. */
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 3, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
    sess_wrapping_free(old);
    sess_wrapping_free(rotated);
}

static void fill_counting(unsigned char *buf, size_t len, unsigned char first)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (unsigned char)(first + i);
    }
}

static void v1_record(unsigned char out[SESS_WRAPPED_LEN])
{
    size_t len = 0;

    assert_int_equal(sodium_hex2bin(out, SESS_WRAPPED_LEN, V1_RECORD_HEX,
                                    strlen(V1_RECORD_HEX), NULL, &len, NULL),
                     0);
    assert_int_equal(len, SESS_WRAPPED_LEN);
}

static void test_wrap_writes_version_2(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 7, f->epoch_key, wrapped),
                     CJ_OK);
    assert_int_equal(wrapped[0], 2);
}

/* Opens a version 2 record by the documented format: AES-256-GCM under
 * HKDF-SHA256(ikm = wrapping key, info = label || 0 || u8(len(sid)) || sid
 * || u64(epoch)), and checks that the wrapping key itself does not open it. */
static void test_version_2_key_is_derived_per_session(void **state)
{
    static const char label[] = "cerrojo session epoch key wrap v2";
    static const char aad_label[] = "cerrojo session epoch key v1";
    unsigned char wrap_key[SESS_WRAP_KEY_LEN];
    unsigned char epoch_key[SESS_EPOCH_KEY_LEN];
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char info[sizeof(label) + 1 + sizeof(SID_A) + 8] = {0};
    unsigned char aad[sizeof(aad_label) + 1 + sizeof(SID_A) + 8 + 9] = {0};
    unsigned char subkey[SESS_WRAP_KEY_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];
    struct sess_wrapping *w = NULL;
    size_t sid_len = strlen(SID_A);
    size_t n = 0;

    (void)state;
    fill_counting(wrap_key, sizeof(wrap_key), 0x00);
    fill_counting(epoch_key, sizeof(epoch_key), 0xa0);
    assert_int_equal(sess_wrapping_new(wrap_key, NULL, &w), CJ_OK);
    assert_int_equal(sess_key_wrap(w, SID_A, 7, epoch_key, wrapped), CJ_OK);

    memcpy(info, label, sizeof(label));
    n = sizeof(label);
    info[n++] = (unsigned char)sid_len;
    memcpy(info + n, SID_A, sid_len);
    n += sid_len + 7;
    info[n++] = 7;
    assert_int_equal(cj_hkdf(subkey, sizeof(subkey), NULL, 0, wrap_key,
                             sizeof(wrap_key), info, n),
                     CJ_OK);

    memcpy(aad, aad_label, sizeof(aad_label));
    n = sizeof(aad_label);
    aad[n++] = (unsigned char)sid_len;
    memcpy(aad + n, SID_A, sid_len);
    n += sid_len + 7;
    aad[n++] = 7;
    memcpy(aad + n, wrapped, 9); /* version and wrapping key id */
    n += 9;

    assert_int_equal(cj_aead_open(CJ_AEAD_AES_256_GCM, subkey, sizeof(subkey),
                                  wrapped + 9, aad, n, wrapped + 21,
                                  SESS_EPOCH_KEY_LEN + CJ_AEAD_TAG_LEN, out),
                     CJ_OK);
    assert_memory_equal(out, epoch_key, SESS_EPOCH_KEY_LEN);
    assert_int_not_equal(
        cj_aead_open(CJ_AEAD_AES_256_GCM, wrap_key, sizeof(wrap_key),
                     wrapped + 9, aad, n, wrapped + 21,
                     SESS_EPOCH_KEY_LEN + CJ_AEAD_TAG_LEN, out),
        CJ_OK);
    cj_wipe(subkey, sizeof(subkey));
    sess_wrapping_free(w);
}

static void test_version_1_record_still_unwraps(void **state)
{
    unsigned char wrap_key[SESS_WRAP_KEY_LEN];
    unsigned char epoch_key[SESS_EPOCH_KEY_LEN];
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];
    struct sess_wrapping *w = NULL;

    (void)state;
    fill_counting(wrap_key, sizeof(wrap_key), 0x00);
    fill_counting(epoch_key, sizeof(epoch_key), 0xa0);
    v1_record(wrapped);
    assert_int_equal(wrapped[0], 1);
    assert_int_equal(sess_wrapping_new(wrap_key, NULL, &w), CJ_OK);
    assert_int_equal(sess_key_unwrap(w, SID_A, V1_RECORD_EPOCH, wrapped,
                                     sizeof(wrapped), out),
                     CJ_OK);
    assert_memory_equal(out, epoch_key, SESS_EPOCH_KEY_LEN);
    assert_true(sess_key_is_current(w, wrapped, sizeof(wrapped)));
    sess_wrapping_free(w);
}

static void test_version_1_record_moved_fails(void **state)
{
    unsigned char wrap_key[SESS_WRAP_KEY_LEN];
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];
    struct sess_wrapping *w = NULL;

    (void)state;
    fill_counting(wrap_key, sizeof(wrap_key), 0x00);
    v1_record(wrapped);
    assert_int_equal(sess_wrapping_new(wrap_key, NULL, &w), CJ_OK);
    assert_int_equal(sess_key_unwrap(w, SID_B, V1_RECORD_EPOCH, wrapped,
                                     sizeof(wrapped), out),
                     CJ_ERR_CRYPTO);
    assert_true(cj_ct_is_zero(out, sizeof(out)));
    assert_int_equal(sess_key_unwrap(w, SID_A, V1_RECORD_EPOCH + 1, wrapped,
                                     sizeof(wrapped), out),
                     CJ_ERR_CRYPTO);
    assert_true(cj_ct_is_zero(out, sizeof(out)));
    sess_wrapping_free(w);
}

/* A version 1 record under the key being rotated out still unwraps, and
 * wrapping its key again, as an advance does, gives version 2 under the new
 * key. */
static void test_version_1_record_unwraps_during_rotation(void **state)
{
    unsigned char old_key[SESS_WRAP_KEY_LEN];
    unsigned char new_key[SESS_WRAP_KEY_LEN];
    unsigned char epoch_key[SESS_EPOCH_KEY_LEN];
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char rewrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];
    struct sess_wrapping *rotated = NULL;

    (void)state;
    fill_counting(old_key, sizeof(old_key), 0x00);
    fill_counting(new_key, sizeof(new_key), 0x40);
    fill_counting(epoch_key, sizeof(epoch_key), 0xa0);
    v1_record(wrapped);
    assert_int_equal(sess_wrapping_new(new_key, old_key, &rotated), CJ_OK);
    assert_false(sess_key_is_current(rotated, wrapped, sizeof(wrapped)));
    assert_int_equal(sess_key_unwrap(rotated, SID_A, V1_RECORD_EPOCH, wrapped,
                                     sizeof(wrapped), out),
                     CJ_OK);
    assert_memory_equal(out, epoch_key, SESS_EPOCH_KEY_LEN);
    assert_int_equal(
        sess_key_wrap(rotated, SID_A, V1_RECORD_EPOCH, out, rewrapped), CJ_OK);
    assert_int_equal(rewrapped[0], 2);
    assert_true(sess_key_is_current(rotated, rewrapped, sizeof(rewrapped)));
    assert_int_equal(sess_key_unwrap(rotated, SID_A, V1_RECORD_EPOCH, rewrapped,
                                     sizeof(rewrapped), out),
                     CJ_OK);
    assert_memory_equal(out, epoch_key, SESS_EPOCH_KEY_LEN);
    sess_wrapping_free(rotated);
}

static void test_unwrap_rejects_unknown_version(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    unsigned char out[SESS_EPOCH_KEY_LEN];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 1, f->epoch_key, wrapped),
                     CJ_OK);
    wrapped[0] = 3;
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 1, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
    /* The version is in the AAD, so a version 2 record relabeled as
     * version 1 does not open either. */
    wrapped[0] = 1;
    assert_int_equal(
        sess_key_unwrap(f->w, SID_A, 1, wrapped, sizeof(wrapped), out),
        CJ_ERR_CRYPTO);
}

/*
 * Calls sess_key_unwrap with the log sent to a temporary file and copies
 * what it logged into text. Returns the unwrap status.
 */
static enum cj_status unwrap_logged(const struct sess_wrapping *w,
                                    const char *sid, uint64_t epoch,
                                    const unsigned char *wrapped,
                                    size_t wrapped_len, char *text, size_t size)
{
    unsigned char out[SESS_EPOCH_KEY_LEN];
    FILE *f = tmpfile();
    assert_non_null(f);
    cj_log_init("session", CJ_LOG_INFO);
    cj_log_set_fd(fileno(f));
    enum cj_status st =
        sess_key_unwrap(w, sid, epoch, wrapped, wrapped_len, out);
    cj_log_set_fd(STDERR_FILENO);
    rewind(f);
    size_t n = fread(text, 1, size - 1, f);
    text[n] = '\0';
    fclose(f);
    return st;
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n') {
            lines++;
        }
    }
    return lines;
}

static void test_unwrap_logs_unknown_wrapping_key(void **state)
{
    struct fixture *f = *state;
    struct sess_wrapping *old = NULL;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    char text[2048];
    char log_id[SESS_LOG_ID_SIZE];

    /* A record wrapped under a key that the service no longer has, as
     * after a rotation that dropped the previous key too early. */
    assert_int_equal(sess_wrapping_new(f->wrap_previous, NULL, &old), CJ_OK);
    assert_int_equal(sess_key_wrap(old, SID_A, 3, f->epoch_key, wrapped),
                     CJ_OK);

    assert_int_equal(unwrap_logged(f->w, SID_A, 3, wrapped, sizeof(wrapped),
                                   text, sizeof(text)),
                     CJ_ERR_CRYPTO);

    sess_log_id(f->w, SID_A, log_id);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, "\"event\":\"session.unwrap_failed\""));
    assert_non_null(strstr(text, "\"level\":\"error\""));
    assert_non_null(strstr(text, "\"reason\":\"unknown_wrapping_key\""));
    assert_non_null(strstr(text, "\"epoch\":3"));
    assert_non_null(strstr(text, log_id));
    assert_null(strstr(text, SID_A));
    sess_wrapping_free(old);
}

static void test_unwrap_logs_tampered_tag(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    char text[2048];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 5, f->epoch_key, wrapped),
                     CJ_OK);
    wrapped[SESS_WRAPPED_LEN - 1] ^= 0x01;

    assert_int_equal(unwrap_logged(f->w, SID_A, 5, wrapped, sizeof(wrapped),
                                   text, sizeof(text)),
                     CJ_ERR_CRYPTO);

    assert_non_null(strstr(text, "\"event\":\"session.unwrap_failed\""));
    assert_non_null(strstr(text, "\"reason\":\"authentication_failed\""));
}

static void test_unwrap_failure_log_is_rate_limited(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    char text[2048];
    const int failures = 5;

    assert_int_equal(sess_key_wrap(f->w, SID_A, 1, f->epoch_key, wrapped),
                     CJ_OK);
    for (int i = 0; i < failures; i++) {
        /* Truncated: the blob is malformed. */
        assert_int_equal(unwrap_logged(f->w, SID_A, 1, wrapped,
                                       sizeof(wrapped) - 1, text, sizeof(text)),
                         CJ_ERR_CRYPTO);
        /* Five calls take far less than the repeat interval, so only the
         * first one logs. */
        assert_int_equal(count_lines(text), i == 0 ? 1 : 0);
    }
}

static void test_unwrap_success_logs_nothing(void **state)
{
    struct fixture *f = *state;
    unsigned char wrapped[SESS_WRAPPED_LEN];
    char text[2048];

    assert_int_equal(sess_key_wrap(f->w, SID_A, 2, f->epoch_key, wrapped),
                     CJ_OK);

    assert_int_equal(unwrap_logged(f->w, SID_A, 2, wrapped, sizeof(wrapped),
                                   text, sizeof(text)),
                     CJ_OK);
    assert_string_equal(text, "");
}

static void test_wrap_key_decode_accepts_both_alphabets(void **state)
{
    unsigned char key[SESS_WRAP_KEY_LEN];
    (void)state;

    /* 32 bytes 0xfb..: standard base64 uses '+' and '/', base64url '-'
     * and '_'. */
    assert_int_equal(sess_wrap_key_decode(
                         "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=\n", key),
                     CJ_OK);
    assert_int_equal(key[0], 0xfb);
    assert_int_equal(sess_wrap_key_decode(
                         "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s", key),
                     CJ_OK);
    assert_int_equal(key[31], 0xfb);
}

static void test_wrap_key_decode_rejects_wrong_length(void **state)
{
    unsigned char key[SESS_WRAP_KEY_LEN];
    (void)state;

    assert_int_equal(sess_wrap_key_decode("AAAA", key), CJ_ERR_INVALID);
    assert_int_equal(sess_wrap_key_decode("", key), CJ_ERR_INVALID);
    assert_int_equal(sess_wrap_key_decode("not base64 at all!!", key),
                     CJ_ERR_INVALID);
}

static void test_log_id_is_stable_and_hides_id(void **state)
{
    struct fixture *f = *state;
    char a1[SESS_LOG_ID_SIZE];
    char a2[SESS_LOG_ID_SIZE];
    char b[SESS_LOG_ID_SIZE];

    sess_log_id(f->w, SID_A, a1);
    sess_log_id(f->w, SID_A, a2);
    sess_log_id(f->w, SID_B, b);
    assert_string_equal(a1, a2);
    assert_string_not_equal(a1, b);
    assert_int_equal(strlen(a1), SESS_LOG_ID_SIZE - 1);
    assert_null(strstr(a1, "AAAA"));
}

static const struct sess_epoch_policy POLICY = {
    .epoch_ms = 900000, .grace_ms = 60000, .leeway_ms = 60000};
static const int64_t CREATED = 1700000000000;

static void test_epoch_at_counts_from_creation(void **state)
{
    (void)state;
    assert_int_equal(sess_epoch_at(&POLICY, CREATED, CREATED), 0);
    assert_int_equal(sess_epoch_at(&POLICY, CREATED, CREATED + 899999), 0);
    assert_int_equal(sess_epoch_at(&POLICY, CREATED, CREATED + 900000), 1);
    assert_int_equal(sess_epoch_at(&POLICY, CREATED, CREATED - 5000), 0);
    assert_int_equal(sess_epoch_start(&POLICY, CREATED, 2), CREATED + 1800000);
}

static void test_epoch_choose_previous_only_during_grace(void **state)
{
    int64_t start1 = CREATED + 900000;
    (void)state;

    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 + 59999, 0),
                     SESS_EPOCH_PREVIOUS);
    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 + 60000, 0),
                     SESS_EPOCH_REJECTED);
    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 + 1, 1),
                     SESS_EPOCH_CURRENT);
}

static void test_epoch_choose_next_only_within_leeway(void **state)
{
    int64_t start1 = CREATED + 900000;
    (void)state;

    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 - 60000, 1),
                     SESS_EPOCH_NEXT);
    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 - 60001, 1),
                     SESS_EPOCH_REJECTED);
    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, start1 - 1, 2),
                     SESS_EPOCH_REJECTED);
}

static void test_epoch_choose_rejects_far_epochs(void **state)
{
    (void)state;
    assert_int_equal(
        sess_epoch_choose(&POLICY, CREATED, CREATED + 5 * 900000, 2),
        SESS_EPOCH_REJECTED);
    assert_int_equal(sess_epoch_choose(&POLICY, CREATED, CREATED, UINT64_MAX),
                     SESS_EPOCH_REJECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrap_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_writes_version_2, setup,
                                        teardown),
        cmocka_unit_test(test_version_2_key_is_derived_per_session),
        cmocka_unit_test(test_version_1_record_still_unwraps),
        cmocka_unit_test(test_version_1_record_moved_fails),
        cmocka_unit_test(test_version_1_record_unwraps_during_rotation),
        cmocka_unit_test_setup_teardown(test_unwrap_rejects_unknown_version,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_handles_long_session_id,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_rejects_other_session,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_rejects_other_epoch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_rejects_tampered_tag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_rejects_truncated_blob,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_previous_wrapping_key_still_unwraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_logs_unknown_wrapping_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_logs_tampered_tag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_failure_log_is_rate_limited,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwrap_success_logs_nothing, setup,
                                        teardown),
        cmocka_unit_test(test_wrap_key_decode_accepts_both_alphabets),
        cmocka_unit_test(test_wrap_key_decode_rejects_wrong_length),
        cmocka_unit_test_setup_teardown(test_log_id_is_stable_and_hides_id,
                                        setup, teardown),
        cmocka_unit_test(test_epoch_at_counts_from_creation),
        cmocka_unit_test(test_epoch_choose_previous_only_during_grace),
        cmocka_unit_test(test_epoch_choose_next_only_within_leeway),
        cmocka_unit_test(test_epoch_choose_rejects_far_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

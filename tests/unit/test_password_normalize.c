/*
 * Tests for cj_password_normalize: canonical and compatibility forms of
 * one password give the same bytes, the output is stable, and invalid
 * input or an NFKC form over the byte limit is rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "password.h"

/* "café": U+00E9 in NFC, "e" U+0301 in NFD. */
#define CAFE_NFC "caf\xc3\xa9"
#define CAFE_NFD "cafe\xcc\x81"
/* U+FB01 LATIN SMALL LIGATURE FI, whose compatibility form is "fi". */
#define LIGATURE_FI "\xef\xac\x81"
/* U+FDFA, one code point of 3 bytes whose NFKC form is 33 bytes. */
#define ARABIC_LIGATURE            "\xef\xb7\xba"
#define ARABIC_LIGATURE_NFKC_BYTES 33

struct normalized {
    char text[CJ_PASSWORD_MAX_BYTES + 1];
    size_t len;
};

static enum cj_status normalize(const char *password, size_t len,
                                struct normalized *out)
{
    return cj_password_normalize(password, len, out->text, &out->len);
}

static void assert_normalizes_to(const char *password, const char *expected)
{
    struct normalized out;

    assert_int_equal(normalize(password, strlen(password), &out), CJ_OK);
    assert_int_equal(out.len, strlen(expected));
    assert_string_equal(out.text, expected);
}

static void test_nfc_and_nfd_give_same_bytes(void **state)
{
    (void)state;
    assert_normalizes_to(CAFE_NFC, CAFE_NFC);
    assert_normalizes_to(CAFE_NFD, CAFE_NFC);
    assert_normalizes_to("Contrase\xc3\xb1"
                         "a segura " CAFE_NFD " 7",
                         "Contrase\xc3\xb1"
                         "a segura " CAFE_NFC " 7");
    assert_normalizes_to("Contrasen\xcc\x83"
                         "a segura " CAFE_NFC " 7",
                         "Contrase\xc3\xb1"
                         "a segura " CAFE_NFC " 7");
}

static void test_compatibility_forms_fold(void **state)
{
    (void)state;
    assert_normalizes_to(LIGATURE_FI "le-Quokka", "file-Quokka");
    /* Full-width "A" (U+FF21) and superscript two (U+00B2). */
    assert_normalizes_to("\xef\xbc\xa1\xc2\xb2", "A2");
    /* Hangul jamo compose into one syllable (U+AC01). */
    assert_normalizes_to("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8",
                         "\xea\xb0\x81");
}

static void test_output_is_stable(void **state)
{
    static const char *const inputs[] = {
        CAFE_NFD, LIGATURE_FI, ARABIC_LIGATURE, "plain ascii 123", "",
    };
    struct normalized once;
    struct normalized twice;

    (void)state;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_int_equal(normalize(inputs[i], strlen(inputs[i]), &once), CJ_OK);
        assert_int_equal(normalize(once.text, once.len, &twice), CJ_OK);
        assert_int_equal(twice.len, once.len);
        assert_memory_equal(twice.text, once.text, once.len);
    }
}

static void test_rejects_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "caf\xc3",             /* truncated sequence */
        "caf\xc0\xa9",         /* overlong */
        "caf\xed\xa0\x80",     /* a UTF-16 surrogate */
        "caf\xff",             /* never valid */
        "caf\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    struct normalized out;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(normalize(bad[i], strlen(bad[i]), &out),
                         CJ_ERR_INVALID);
        assert_int_equal(out.len, 0);
        assert_string_equal(out.text, "");
    }
}

static void test_rejects_embedded_nul(void **state)
{
    static const char text[] = "caf\0e";
    struct normalized out;

    (void)state;
    assert_int_equal(normalize(text, sizeof(text) - 1, &out), CJ_ERR_INVALID);
}

static void test_byte_limit_applies_to_both_forms(void **state)
{
    char input[CJ_PASSWORD_MAX_BYTES + 1];
    const size_t ligatures = 40;
    struct normalized out;

    (void)state;
    memset(input, 'q', sizeof(input));
    assert_int_equal(normalize(input, CJ_PASSWORD_MAX_BYTES, &out), CJ_OK);
    assert_int_equal(out.len, CJ_PASSWORD_MAX_BYTES);
    assert_int_equal(normalize(input, sizeof(input), &out), CJ_ERR_TOO_LARGE);

    /* 120 bytes in, 1320 bytes of NFKC form out. */
    for (size_t i = 0; i < ligatures; i++) {
        memcpy(input + 3 * i, ARABIC_LIGATURE, 3);
    }
    assert_int_equal(normalize(input, 3 * ligatures, &out), CJ_ERR_TOO_LARGE);
    assert_int_equal(out.len, 0);
    assert_int_equal(normalize(input, 3, &out), CJ_OK);
    assert_int_equal(out.len, ARABIC_LIGATURE_NFKC_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfc_and_nfd_give_same_bytes),
        cmocka_unit_test(test_compatibility_forms_fold),
        cmocka_unit_test(test_output_is_stable),
        cmocka_unit_test(test_rejects_invalid_utf8),
        cmocka_unit_test(test_rejects_embedded_nul),
        cmocka_unit_test(test_byte_limit_applies_to_both_forms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

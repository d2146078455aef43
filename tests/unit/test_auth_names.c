/* Tests for username and email rules and their normalized forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "auth_names.h"

static enum cj_status parse_username(const char *text,
                                     struct auth_username *out)
{
    const char *reason = NULL;
    enum cj_status rc = auth_username_parse(text, strlen(text), out, &reason);

    if (rc == CJ_OK) {
        assert_null(reason);
    } else {
        assert_non_null(reason);
    }
    return rc;
}

static void test_username_is_case_folded(void **state)
{
    struct auth_username u;

    (void)state;
    assert_int_equal(parse_username("Alice_Smith", &u), CJ_OK);
    assert_string_equal(u.display, "Alice_Smith");
    assert_string_equal(u.norm, "alice_smith");
}

static void test_username_fullwidth_folds_to_ascii(void **state)
{
    struct auth_username full;
    struct auth_username ascii;

    (void)state;
    /* "ＡＬＩＣＥ" in fullwidth forms. */
    assert_int_equal(
        parse_username("\xef\xbc\xa1\xef\xbc\xac\xef\xbc\xa9\xef\xbc\xa3"
                       "\xef\xbc\xa5",
                       &full),
        CJ_OK);
    assert_int_equal(parse_username("alice", &ascii), CJ_OK);
    assert_string_equal(full.norm, ascii.norm);
    assert_string_equal(full.skeleton, ascii.skeleton);
}

static void test_username_lookalike_digit_shares_skeleton(void **state)
{
    struct auth_username a;
    struct auth_username b;

    (void)state;
    assert_int_equal(parse_username("paypal", &a), CJ_OK);
    assert_int_equal(parse_username("paypa1", &b), CJ_OK);
    assert_string_not_equal(a.norm, b.norm);
    assert_string_equal(a.skeleton, b.skeleton);
}

static void test_username_rn_shares_skeleton_with_m(void **state)
{
    struct auth_username a;
    struct auth_username b;

    (void)state;
    assert_int_equal(parse_username("modern", &a), CJ_OK);
    assert_int_equal(parse_username("rnodern", &b), CJ_OK);
    assert_string_equal(a.skeleton, b.skeleton);
}

static void test_username_cyrillic_lookalike_rejected(void **state)
{
    struct auth_username u;

    (void)state;
    /* "p" + CYRILLIC SMALL LETTER A + "ypal": Latin mixed with Cyrillic. */
    assert_int_equal(parse_username("p\xd0\xb0ypal", &u), CJ_ERR_INVALID);
}

static void test_username_whole_cyrillic_shares_skeleton(void **state)
{
    struct auth_username latin;
    struct auth_username cyrillic;

    (void)state;
    /* "аре" in Cyrillic looks like Latin "ape". */
    assert_int_equal(parse_username("ape", &latin), CJ_OK);
    assert_int_equal(parse_username("\xd0\xb0\xd1\x80\xd0\xb5", &cyrillic),
                     CJ_OK);
    assert_string_not_equal(latin.norm, cyrillic.norm);
    assert_string_equal(latin.skeleton, cyrillic.skeleton);
}

/* Asserts that both names are accepted, differ in norm and share a key. */
static void assert_lookalikes(const char *first, const char *second)
{
    struct auth_username a;
    struct auth_username b;

    assert_int_equal(parse_username(first, &a), CJ_OK);
    assert_int_equal(parse_username(second, &b), CJ_OK);
    assert_string_not_equal(a.norm, b.norm);
    assert_string_equal(a.skeleton, b.skeleton);
}

/* Asserts that both names are accepted and have different keys. */
static void assert_distinct_names(const char *first, const char *second)
{
    struct auth_username a;
    struct auth_username b;

    assert_int_equal(parse_username(first, &a), CJ_OK);
    assert_int_equal(parse_username(second, &b), CJ_OK);
    assert_string_not_equal(a.skeleton, b.skeleton);
}

static void test_username_capital_i_matches_l(void **state)
{
    (void)state;
    assert_lookalikes("lana", "Iana");
}

static void test_username_digit_zero_matches_o(void **state)
{
    (void)state;
    assert_lookalikes("bob", "b0b");
}

static void test_username_double_zero_matches_oo(void **state)
{
    (void)state;
    assert_lookalikes("google", "g00gle");
}

static void test_username_cyrillic_palochka_matches_l(void **state)
{
    (void)state;
    /* "раураӏ": Cyrillic er, a, u, er, a and U+04CF PALOCHKA. */
    assert_lookalikes("paypal", "\xd1\x80\xd0\xb0\xd1\x83\xd1\x80\xd0\xb0"
                                "\xd3\x8f");
}

static void test_username_key_ignores_case(void **state)
{
    struct auth_username lower;
    struct auth_username upper;
    struct auth_username mixed;

    (void)state;
    assert_int_equal(parse_username("alice", &lower), CJ_OK);
    assert_int_equal(parse_username("ALICE", &upper), CJ_OK);
    /* "aIice" with a capital I looks like "alice". */
    assert_int_equal(parse_username("aIice", &mixed), CJ_OK);
    assert_string_equal(lower.skeleton, upper.skeleton);
    assert_string_equal(lower.skeleton, mixed.skeleton);
}

static void test_username_ordinary_names_stay_distinct(void **state)
{
    (void)state;
    assert_distinct_names("anna", "anne");
    assert_distinct_names("bob", "rob");
    assert_distinct_names("lana", "luna");
    assert_distinct_names("google", "goggle");
}

static void test_username_invisible_characters_rejected(void **state)
{
    static const char *const cases[] = {
        "ali\xe2\x80\x8b"
        "ce", /* U+200B ZERO WIDTH SPACE */
        "ali\xe2\x80\x8d"
        "ce", /* U+200D ZERO WIDTH JOINER */
        "ali\xc2\xad"
        "ce", /* U+00AD SOFT HYPHEN */
        "ali\xe2\x80\xae"
        "ce",                /* U+202E RIGHT-TO-LEFT OVERRIDE */
        "alice\xef\xb8\x8f", /* U+FE0F VARIATION SELECTOR-16 */
        "ali\x7f"
        "ce", /* DEL */
        "ali\tce",
        "alice\xef\xbb\xbf", /* U+FEFF BYTE ORDER MARK */
        "ali\xee\x80\x80"
        "ce", /* U+E000 private use */
    };
    struct auth_username u;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *reason = NULL;

        assert_int_equal(
            auth_username_parse(cases[i], strlen(cases[i]), &u, &reason),
            CJ_ERR_INVALID);
        assert_non_null(strstr(reason, "invisible or control"));
    }
}

static void test_username_space_rejected(void **state)
{
    struct auth_username u;

    (void)state;
    assert_int_equal(parse_username("ali ce", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("ali\xc2\xa0"
                                    "ce",
                                    &u),
                     CJ_ERR_INVALID);
}

static void test_username_length_limits(void **state)
{
    struct auth_username u;
    char long_name[AUTH_USERNAME_MAX_INPUT_BYTES + 2];

    (void)state;
    assert_int_equal(parse_username("ab", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("abc", &u), CJ_OK);
    assert_int_equal(parse_username("a234567890123456789012345678901b", &u),
                     CJ_OK);
    assert_int_equal(parse_username("a2345678901234567890123456789012b", &u),
                     CJ_ERR_INVALID);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(parse_username(long_name, &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("", &u), CJ_ERR_INVALID);
}

static void test_username_punctuation_rules(void **state)
{
    struct auth_username u;

    (void)state;
    assert_int_equal(parse_username("a.b-c_d", &u), CJ_OK);
    assert_int_equal(parse_username(".abc", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("abc-", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("ab@c", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("ab/c", &u), CJ_ERR_INVALID);
    /* U+2474 PARENTHESIZED DIGIT ONE becomes "(1)" under NFKC. */
    assert_int_equal(parse_username("ab\xe2\x91\xb4", &u), CJ_ERR_INVALID);
}

static void test_username_invalid_utf8_rejected(void **state)
{
    struct auth_username u;
    const char nul_inside[] = "ab\0cd";
    const char *reason = NULL;

    (void)state;
    assert_int_equal(parse_username("ab\xc3", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("ab\xc0\xafz", &u), CJ_ERR_INVALID);
    assert_int_equal(parse_username("ab\xed\xa0\x80z", &u), CJ_ERR_INVALID);
    assert_int_equal(
        auth_username_parse(nul_inside, sizeof(nul_inside) - 1, &u, &reason),
        CJ_ERR_INVALID);
}

static void test_username_non_latin_accepted(void **state)
{
    struct auth_username u;

    (void)state;
    /* "José" with a combining acute accent composes to NFC. */
    assert_int_equal(parse_username("Jose\xcc\x81", &u), CJ_OK);
    assert_string_equal(u.display, "Jos\xc3\xa9");
    assert_string_equal(u.norm, "jos\xc3\xa9");
    /* Japanese mixed with Latin is allowed at this restriction level. */
    assert_int_equal(parse_username("tanaka\xe5\xa4\xaa\xe9\x83\x8e", &u),
                     CJ_OK);
}

static void test_username_mixed_digit_sets_rejected(void **state)
{
    struct auth_username u;

    (void)state;
    /* ASCII 1 with ARABIC-INDIC DIGIT TWO. */
    assert_int_equal(parse_username("abc1\xd9\xa2", &u), CJ_ERR_INVALID);
}

static enum cj_status parse_email(const char *text, struct auth_email *out)
{
    const char *reason = NULL;

    return auth_email_parse(text, strlen(text), out, &reason);
}

static void test_email_normalized_case_folded(void **state)
{
    struct auth_email e;

    (void)state;
    assert_int_equal(parse_email("Alice.Smith+tag@Example.COM", &e), CJ_OK);
    assert_string_equal(e.display, "Alice.Smith+tag@Example.COM");
    assert_string_equal(e.norm, "alice.smith+tag@example.com");
}

static void test_email_syntax_rejected(void **state)
{
    static const char *const cases[] = {
        "",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "a@b@example.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@-example.com",
        "alice@example-.com",
        "alice@example..com",
        "alice@example.com.",
        "alice@127.0.0.1",
        "ali ce@example.com",
        "alice@exa mple.com",
        "\"alice\"@example.com",
        "alice@[127.0.0.1]",
        "ali\xe2\x80\x8b"
        "ce@example.com",
        "alice@exa_mple.com",
        "alice\n@example.com",
    };
    struct auth_email e;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_email(cases[i], &e), CJ_ERR_INVALID);
    }
}

static void test_email_length_limits(void **state)
{
    struct auth_email e;
    char local[AUTH_EMAIL_LOCAL_MAX_BYTES + 2 + sizeof("@example.com")];
    char label[AUTH_EMAIL_LABEL_MAX_BYTES + 2 + sizeof("a@.com")];

    (void)state;
    memset(local, 'a', AUTH_EMAIL_LOCAL_MAX_BYTES);
    strcpy(local + AUTH_EMAIL_LOCAL_MAX_BYTES, "@example.com");
    assert_int_equal(parse_email(local, &e), CJ_OK);
    memset(local, 'a', AUTH_EMAIL_LOCAL_MAX_BYTES + 1);
    strcpy(local + AUTH_EMAIL_LOCAL_MAX_BYTES + 1, "@example.com");
    assert_int_equal(parse_email(local, &e), CJ_ERR_INVALID);

    strcpy(label, "a@");
    memset(label + 2, 'b', AUTH_EMAIL_LABEL_MAX_BYTES + 1);
    strcpy(label + 2 + AUTH_EMAIL_LABEL_MAX_BYTES + 1, ".com");
    assert_int_equal(parse_email(label, &e), CJ_ERR_INVALID);
}

static void test_email_international_accepted(void **state)
{
    struct auth_email e;

    (void)state;
    /* "JOSÉ@ÉXAMPLE.ES" folds to lower case, accents kept. */
    assert_int_equal(parse_email("JOS\xc3\x89@\xc3\x89XAMPLE.ES", &e), CJ_OK);
    assert_string_equal(e.norm, "jos\xc3\xa9@\xc3\xa9xample.es");
}

static void test_email_encoded_domain_same_account(void **state)
{
    struct auth_email unicode;
    struct auth_email encoded;
    struct auth_email upper;

    (void)state;
    /* "bücher.example" and its encoded form, in either case. */
    assert_int_equal(parse_email("anna@b\xc3\xbc"
                                 "cher.example",
                                 &unicode),
                     CJ_OK);
    assert_int_equal(parse_email("anna@xn--bcher-kva.example", &encoded),
                     CJ_OK);
    assert_int_equal(parse_email("ANNA@XN--BCHER-KVA.EXAMPLE", &upper), CJ_OK);
    assert_string_equal(unicode.norm, "anna@b\xc3\xbc"
                                      "cher.example");
    assert_string_equal(encoded.norm, unicode.norm);
    assert_string_equal(upper.norm, unicode.norm);
    assert_string_equal(encoded.display, "anna@b\xc3\xbc"
                                         "cher.example");
}

static void test_email_bad_encoded_label_rejected(void **state)
{
    /* Each is plain ASCII letters, digits and inner hyphens, so only the
     * decoding rejects it. */
    static const char *const cases[] = {
        "anna@mail.xn--0.example", /* not a valid encoding */
        "anna@xn--a-wbb.example",  /* starts with a combining mark */
        "anna@xn--a-ecp.example",  /* U+2488 maps to "1." (a dot) */
        "anna@xn--n3h.example",    /* a snowman: not a letter or digit */
    };
    struct auth_email e;
    const char *reason = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            auth_email_parse(cases[i], strlen(cases[i]), &e, &reason),
            CJ_ERR_INVALID);
        assert_non_null(reason);
    }
}

static void test_email_plain_domain_unchanged(void **state)
{
    struct auth_email e;

    (void)state;
    /* A label that merely contains "xn" is not an encoded label. */
    assert_int_equal(parse_email("anna@axn--b.example", &e), CJ_OK);
    assert_string_equal(e.norm, "anna@axn--b.example");
}

static void test_login_normalize_decodes_domain(void **state)
{
    struct auth_email e;
    char norm[AUTH_NAME_BUF_BYTES];
    static const char login[] = "Anna@XN--BCHER-KVA.example";

    (void)state;
    assert_int_equal(parse_email("anna@b\xc3\xbc"
                                 "cher.example",
                                 &e),
                     CJ_OK);
    assert_int_equal(
        auth_login_normalize(login, strlen(login), norm, sizeof(norm)), CJ_OK);
    assert_string_equal(norm, e.norm);
}

static void test_login_normalize_matches_register_forms(void **state)
{
    struct auth_username u;
    struct auth_email e;
    char norm[AUTH_NAME_BUF_BYTES];

    (void)state;
    assert_int_equal(parse_username("Alice", &u), CJ_OK);
    assert_int_equal(auth_login_normalize("ALICE", 5, norm, sizeof(norm)),
                     CJ_OK);
    assert_string_equal(norm, u.norm);
    assert_int_equal(parse_email("Alice@Example.com", &e), CJ_OK);
    assert_int_equal(
        auth_login_normalize("ALICE@EXAMPLE.COM", 17, norm, sizeof(norm)),
        CJ_OK);
    assert_string_equal(norm, e.norm);
}

static void test_login_normalize_rejects_bad_input(void **state)
{
    char norm[AUTH_NAME_BUF_BYTES];
    char long_login[AUTH_LOGIN_MAX_INPUT_BYTES + 1];

    (void)state;
    assert_int_equal(auth_login_normalize("", 0, norm, sizeof(norm)),
                     CJ_ERR_INVALID);
    assert_int_equal(auth_login_normalize("a\0b", 3, norm, sizeof(norm)),
                     CJ_ERR_INVALID);
    assert_int_equal(auth_login_normalize("a\xff", 2, norm, sizeof(norm)),
                     CJ_ERR_INVALID);
    memset(long_login, 'a', sizeof(long_login));
    assert_int_equal(auth_login_normalize(long_login, sizeof(long_login), norm,
                                          sizeof(norm)),
                     CJ_ERR_INVALID);
    assert_int_equal(auth_login_normalize("abcdef", 6, norm, 4),
                     CJ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_is_case_folded),
        cmocka_unit_test(test_username_fullwidth_folds_to_ascii),
        cmocka_unit_test(test_username_lookalike_digit_shares_skeleton),
        cmocka_unit_test(test_username_rn_shares_skeleton_with_m),
        cmocka_unit_test(test_username_cyrillic_lookalike_rejected),
        cmocka_unit_test(test_username_whole_cyrillic_shares_skeleton),
        cmocka_unit_test(test_username_capital_i_matches_l),
        cmocka_unit_test(test_username_digit_zero_matches_o),
        cmocka_unit_test(test_username_double_zero_matches_oo),
        cmocka_unit_test(test_username_cyrillic_palochka_matches_l),
        cmocka_unit_test(test_username_key_ignores_case),
        cmocka_unit_test(test_username_ordinary_names_stay_distinct),
        cmocka_unit_test(test_username_invisible_characters_rejected),
        cmocka_unit_test(test_username_space_rejected),
        cmocka_unit_test(test_username_length_limits),
        cmocka_unit_test(test_username_punctuation_rules),
        cmocka_unit_test(test_username_invalid_utf8_rejected),
        cmocka_unit_test(test_username_non_latin_accepted),
        cmocka_unit_test(test_username_mixed_digit_sets_rejected),
        cmocka_unit_test(test_email_normalized_case_folded),
        cmocka_unit_test(test_email_syntax_rejected),
        cmocka_unit_test(test_email_length_limits),
        cmocka_unit_test(test_email_international_accepted),
        cmocka_unit_test(test_email_encoded_domain_same_account),
        cmocka_unit_test(test_email_bad_encoded_label_rejected),
        cmocka_unit_test(test_email_plain_domain_unchanged),
        cmocka_unit_test(test_login_normalize_decodes_domain),
        cmocka_unit_test(test_login_normalize_matches_register_forms),
        cmocka_unit_test(test_login_normalize_rejects_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

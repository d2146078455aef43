/*
 * Tests for the password policy: each rule in its order, code points
 * rather than bytes, the case-folded account names, cracklib's dictionary
 * check with the installed Debian dictionary, disguised dictionary words,
 * keyboard runs, and a missing dictionary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "password.h"
#include "password_patterns.h"
#include "password_policy.h"

#define THREADS           4
#define CHECKS_PER_THREAD 10

static struct cj_password_policy policy;

static int setup(void **state)
{
    (void)state;
    cj_password_policy_default(&policy);
    return 0;
}

static enum cj_password_rule rule_for(const char *password, size_t len,
                                      const char *username)
{
    enum cj_password_rule rule = CJ_PASSWORD_RULE_WEAK;
    enum cj_status status =
        cj_password_policy_check(&policy, password, len, username, NULL, &rule);

    assert_int_equal(status,
                     rule == CJ_PASSWORD_RULE_OK ? CJ_OK : CJ_ERR_INVALID);
    return rule;
}

static enum cj_password_rule rule_of(const char *password)
{
    return rule_for(password, strlen(password), NULL);
}

static void test_default_config_is_valid(void **state)
{
    (void)state;
    assert_int_equal(policy.min_code_points, 10);
    assert_string_equal(policy.dict_path, "/var/cache/cracklib/cracklib_dict");
    assert_int_equal(cj_password_policy_check_config(&policy), CJ_OK);
}

static void test_config_rejects_bad_values(void **state)
{
    struct cj_password_policy bad = policy;

    (void)state;
    bad.min_code_points = 0;
    assert_int_equal(cj_password_policy_check_config(&bad), CJ_ERR_INVALID);
    bad.min_code_points = CJ_PASSWORD_MAX_BYTES + 1;
    assert_int_equal(cj_password_policy_check_config(&bad), CJ_ERR_INVALID);
    bad = policy;
    bad.dict_path = "/nonexistent/cracklib_dict";
    assert_int_equal(cj_password_policy_check_config(&bad), CJ_ERR_INVALID);
    bad.dict_path = NULL;
    assert_int_equal(cj_password_policy_check_config(&bad), CJ_ERR_INVALID);
}

static void test_rejects_over_max_bytes(void **state)
{
    char big[CJ_PASSWORD_MAX_BYTES + 1];

    (void)state;
    memset(big, 'q', sizeof(big));
    assert_int_equal(rule_for(big, sizeof(big), NULL),
                     CJ_PASSWORD_RULE_TOO_LONG);
}

static void test_rejects_embedded_nul(void **state)
{
    static const char text[] = "Tr1cky-Quokka\0-Nebula-42";

    (void)state;
    assert_int_equal(rule_for(text, sizeof(text) - 1, NULL),
                     CJ_PASSWORD_RULE_NUL);
    assert_int_equal(rule_for(NULL, 0, NULL), CJ_PASSWORD_RULE_NUL);
}

static void test_rejects_invalid_utf8(void **state)
{
    const char *bad[] = {
        "Tr1cky-Quokka-\xc0\x80",     /* overlong NUL */
        "Tr1cky-Quokka-\xff",         /* never valid */
        "Tr1cky-Quokka-\xed\xa0\x80", /* a UTF-16 surrogate */
        "Tr1cky-Quokka-\xe2\x82",     /* truncated sequence */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rule_of(bad[i]), CJ_PASSWORD_RULE_INVALID_UTF8);
    }
}

static void test_counts_code_points_not_bytes(void **state)
{
    /* Nine code points in 18 bytes: too short despite its size. */
    static const char nine[] = "\xc3\xb1\xc3\xa7\xc3\xa9\xc3\xbc\xc3\xa5"
                               "\xc3\xb8\xc3\xa6\xc3\x9f\xc3\xb0";
    struct cj_password_policy five = policy;
    enum cj_password_rule rule;

    (void)state;
    assert_int_equal(strlen(nine), 18);
    assert_int_equal(rule_of(nine), CJ_PASSWORD_RULE_TOO_SHORT);
    assert_int_equal(rule_of("Sh0rt-pw!"), CJ_PASSWORD_RULE_TOO_SHORT);
    /* With a lower minimum the same nine code points pass. */
    five.min_code_points = 9;
    assert_int_equal(
        cj_password_policy_check(&five, nine, strlen(nine), NULL, NULL, &rule),
        CJ_OK);
    assert_int_equal(rule, CJ_PASSWORD_RULE_OK);
}

static void test_rejects_weakest_passwords(void **state)
{
    const char *weak[] = {
        "password123",                /* dictionary word with digits */
        "Password123",                /* the same, capitalised */
        "iloveyou123",  "qwertyuiop", /* keyboard row in the dictionary */
        "aaaaaaaaaaaa",               /* too few different characters */
        "abcdefghijkl",               /* a systematic run */
        "1234567890",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        assert_int_equal(rule_of(weak[i]), CJ_PASSWORD_RULE_WEAK);
    }
}

static void test_rejects_password_equal_to_username(void **state)
{
    static const char name[] = "zqxvbnmtrw";

    (void)state;
    assert_int_equal(rule_of(name), CJ_PASSWORD_RULE_OK);
    assert_int_equal(rule_for(name, strlen(name), name),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
}

static enum cj_password_rule
rule_for_account(const char *password, const char *username, const char *email)
{
    enum cj_password_rule rule = CJ_PASSWORD_RULE_WEAK;
    enum cj_status status = cj_password_policy_check(
        &policy, password, strlen(password), username, email, &rule);

    assert_int_equal(status,
                     rule == CJ_PASSWORD_RULE_OK ? CJ_OK : CJ_ERR_INVALID);
    return rule;
}

static void test_username_check_ignores_case(void **state)
{
    /* "Łukasz" and the password with "ŁUKASZ": U+0141 folds to U+0142. */
    static const char polish_name[] = "\xc5\x81ukasz";
    static const char polish_password[] = "xx-\xc5\x81UKASZ-42-Orbit";

    (void)state;
    assert_int_equal(rule_of("zqvbk364wzz"), CJ_PASSWORD_RULE_OK);
    assert_int_equal(rule_for_account("zqvbk364wzz", "Zqvbk364w", NULL),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
    assert_int_equal(rule_for_account("zqvbk364wzz", "zqvbk364w", NULL),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
    assert_int_equal(rule_for_account("ZQVBK364Wzz", "zqvbk364w", NULL),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
    assert_int_equal(rule_for_account(polish_password, polish_name, NULL),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
}

static void test_email_local_part_checked(void **state)
{
    static const char email[] = "Marta.Quokka@example.com";

    (void)state;
    assert_int_equal(rule_for_account("xx-MARTA.quokka-99z", NULL, email),
                     CJ_PASSWORD_RULE_CONTAINS_NAME);
    /* The domain is not the user's own name. */
    assert_int_equal(rule_for_account("example.com-Orbit-7q", NULL, email),
                     CJ_PASSWORD_RULE_OK);
}

static void test_short_names_not_searched(void **state)
{
    (void)state;
    assert_int_equal(rule_for_account("bananas-Orbit-7q", "ana", "ana@x.org"),
                     CJ_PASSWORD_RULE_OK);
}

static void test_rejects_disguised_dictionary_words(void **state)
{
    const char *weak[] = {
        "Password12345",  /* digits after the word */
        "12345marianne",  /* digits before the word */
        "m4ri4nne7580x!", /* substitutions, the word is over half */
        "P@ssw0rd!!2024", "Tr0ub4dor&3", "Sunshine2024!",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        assert_int_equal(rule_of(weak[i]), CJ_PASSWORD_RULE_DICTIONARY_WORD);
    }
}

static void test_rejects_repeated_dictionary_word(void **state)
{
    const char *weak[] = {
        "password password",          "iloveyou iloveyou", "letmein letmein",
        "Passw0rd Passw0rd", /* substitutions in each copy */
        "sunshine-sunshine-sunshine", "Letmein9Letmein",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        assert_int_equal(rule_of(weak[i]), CJ_PASSWORD_RULE_DICTIONARY_WORD);
    }
}

static void test_rejects_keyboard_runs(void **state)
{
    (void)state;
    assert_int_equal(rule_of("qwertyuiopas"), CJ_PASSWORD_RULE_KEYBOARD_RUN);
    assert_int_equal(rule_of("1qaz2wsx3edc"), CJ_PASSWORD_RULE_KEYBOARD_RUN);
}

static void test_rejects_shifted_digit_row(void **state)
{
    const char *weak[] = {"!@#$%^&*()_+", "~!@#$%^&*()", ")(*&^%$#@!"};

    (void)state;
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        assert_int_equal(rule_of(weak[i]), CJ_PASSWORD_RULE_KEYBOARD_RUN);
    }
}

static void test_runs_cover_half_of_bytes(void **state)
{
    (void)state;
    assert_true(cj_password_mostly_runs("qwertyuiopas", 12));
    assert_true(cj_password_mostly_runs("ZYXwvu-k9#m", 11));
    assert_true(cj_password_mostly_runs("aaa7#kbbb!q", 11));
    assert_false(cj_password_mostly_runs("abc-k9#mX2pq", 12));
    assert_false(cj_password_mostly_runs("Tr1cky-Quokka-Nebula-42", 23));
    assert_false(cj_password_mostly_runs("", 0));
}

static void test_undo_substitutions_variants(void **state)
{
    static const char typed[] = "P@55w0rd-1-7$3X";
    char out[sizeof(typed)] = {0};

    (void)state;
    cj_password_undo_substitutions(typed, strlen(typed), 0, out);
    assert_string_equal(out, "password-i-tsex");
    cj_password_undo_substitutions(typed, strlen(typed), 1, out);
    assert_string_equal(out, "password-l-tsex");
}

static void test_accepts_strong_passwords(void **state)
{
    const char *strong[] = {
        "Tr1cky-Quokka-Nebula-42",
        "\xc2\xa1M\xc3\xbasica-\xc3\x91"
        "and\xc3\xba-2026!", /* Música */
        "vivid plum orbit 7 lantern",
        "k9#mX2pq!7vR",
        "correct horse battery staple",
        "x!9#7$2@8&1q", /* symbols around one letter */
        "quiet orchard lantern 1",
        "backup-lantern-harbor-7",
        "ca\xc3\xb1\xc3\xb3n mar\xc3\xad"
        "a \xc3\xa1rbol lim\xc3\xb3n 8", /* cañón maría árbol limón */
        "lantern harbor lantern 4",      /* a repeated word among others */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(strong) / sizeof(strong[0]); i++) {
        assert_int_equal(rule_for(strong[i], strlen(strong[i]), "alice"),
                         CJ_PASSWORD_RULE_OK);
    }
}

static enum cj_password_rule rule_after_normalizing(const char *password)
{
    char normalized[CJ_PASSWORD_MAX_BYTES + 1];
    size_t normalized_len = 1;
    enum cj_password_rule rule = CJ_PASSWORD_RULE_WEAK;
    enum cj_status status = cj_password_policy_check_and_normalize(
        &policy, password, strlen(password), NULL, NULL, normalized,
        &normalized_len, &rule);

    assert_int_equal(status,
                     rule == CJ_PASSWORD_RULE_OK ? CJ_OK : CJ_ERR_INVALID);
    if (rule != CJ_PASSWORD_RULE_OK) {
        assert_int_equal(normalized_len, 0);
    }
    return rule;
}

static void test_normalizing_check_returns_nfkc(void **state)
{
    /* "Contraseña segura café 7" with ñ and é decomposed. */
    static const char nfd[] = "Contrasen\xcc\x83"
                              "a segura cafe\xcc\x81 7";
    static const char nfc[] = "Contrase\xc3\xb1"
                              "a segura caf\xc3\xa9 7";
    char normalized[CJ_PASSWORD_MAX_BYTES + 1];
    size_t normalized_len = 0;
    enum cj_password_rule rule;

    (void)state;
    assert_int_equal(cj_password_policy_check_and_normalize(
                         &policy, nfd, strlen(nfd), "alice", NULL, normalized,
                         &normalized_len, &rule),
                     CJ_OK);
    assert_int_equal(rule, CJ_PASSWORD_RULE_OK);
    assert_int_equal(normalized_len, strlen(nfc));
    assert_string_equal(normalized, nfc);
}

static void test_rules_judge_the_nfkc_form(void **state)
{
    /* Ten code points as typed, nine once "e" U+0301 composes. */
    static const char nine_composed[] = "Xq7#Lm2pe\xcc\x81";
    static const char full_width_weak[] =
        "\xef\xbd\x90\xef\xbd\x81\xef\xbd\x93\xef\xbd\x93\xef\xbd\x97"
        "\xef\xbd\x8f\xef\xbd\x92\xef\xbd\x84\xef\xbc\x91\xef\xbc\x92"
        "\xef\xbc\x93";
    char long_form[CJ_PASSWORD_MAX_BYTES + 1];
    const size_t ligatures = 40;

    (void)state;
    assert_int_equal(rule_of(nine_composed), CJ_PASSWORD_RULE_OK);
    assert_int_equal(rule_after_normalizing(nine_composed),
                     CJ_PASSWORD_RULE_TOO_SHORT);

    /* U+FDFA is 3 bytes whose NFKC form is 33 bytes: 120 bytes typed
     * become 1320 bytes, over the limit. */
    for (size_t i = 0; i < ligatures; i++) {
        memcpy(long_form + 3 * i, "\xef\xb7\xba", 3);
    }
    long_form[3 * ligatures] = '\0';
    assert_int_equal(rule_after_normalizing(long_form),
                     CJ_PASSWORD_RULE_TOO_LONG);

    /* Full-width "password123" is weak once it folds to ASCII. */
    assert_int_equal(rule_after_normalizing(full_width_weak),
                     CJ_PASSWORD_RULE_WEAK);
}

static void test_normalizing_check_keeps_input_rules(void **state)
{
    char big[CJ_PASSWORD_MAX_BYTES + 2];

    (void)state;
    assert_int_equal(rule_after_normalizing("Tr1cky-Quokka-\xff"),
                     CJ_PASSWORD_RULE_INVALID_UTF8);
    assert_int_equal(rule_after_normalizing("Tr1cky-Quokka-\xed\xa0\x80"),
                     CJ_PASSWORD_RULE_INVALID_UTF8);
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rule_after_normalizing(big), CJ_PASSWORD_RULE_TOO_LONG);
    assert_int_equal(rule_after_normalizing("password123"),
                     CJ_PASSWORD_RULE_WEAK);
}

static void test_missing_dictionary_is_unavailable(void **state)
{
    struct cj_password_policy missing = policy;
    enum cj_password_rule rule = CJ_PASSWORD_RULE_WEAK;
    static const char pw[] = "Tr1cky-Quokka-Nebula-42";

    (void)state;
    missing.dict_path = "/nonexistent/cracklib_dict";
    assert_int_equal(
        cj_password_policy_check(&missing, pw, strlen(pw), NULL, NULL, &rule),
        CJ_ERR_UNAVAILABLE);
    assert_int_equal(rule, CJ_PASSWORD_RULE_OK);
}

static void *run_checks(void *arg)
{
    (void)arg;
    for (int i = 0; i < CHECKS_PER_THREAD; i++) {
        enum cj_password_rule rule;

        if (cj_password_policy_check(&policy, "password123", 11, NULL, NULL,
                                     &rule) != CJ_ERR_INVALID ||
            rule != CJ_PASSWORD_RULE_WEAK ||
            cj_password_policy_check(&policy, "Tr1cky-Quokka-Nebula-42", 23,
                                     NULL, NULL, &rule) != CJ_OK) {
            return &policy;
        }
    }
    return NULL;
}

static void test_checks_agree_across_threads(void **state)
{
    pthread_t threads[THREADS];
    void *result;

    (void)state;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, run_checks, NULL),
                         0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
}

static void test_rule_names_and_messages(void **state)
{
    (void)state;
    for (int a = CJ_PASSWORD_RULE_OK; a <= CJ_PASSWORD_RULE_LAST; a++) {
        assert_string_not_equal(cj_password_rule_name(a), "unknown");
        assert_true(strlen(cj_password_rule_message(a)) > 10);
        for (int b = a + 1; b <= CJ_PASSWORD_RULE_LAST; b++) {
            assert_string_not_equal(cj_password_rule_name(a),
                                    cj_password_rule_name(b));
        }
    }
    assert_non_null(
        strstr(cj_password_rule_message(CJ_PASSWORD_RULE_TOO_LONG), "1024"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_config_is_valid),
        cmocka_unit_test(test_config_rejects_bad_values),
        cmocka_unit_test(test_rejects_over_max_bytes),
        cmocka_unit_test(test_rejects_embedded_nul),
        cmocka_unit_test(test_rejects_invalid_utf8),
        cmocka_unit_test(test_counts_code_points_not_bytes),
        cmocka_unit_test(test_rejects_weakest_passwords),
        cmocka_unit_test(test_rejects_password_equal_to_username),
        cmocka_unit_test(test_username_check_ignores_case),
        cmocka_unit_test(test_email_local_part_checked),
        cmocka_unit_test(test_short_names_not_searched),
        cmocka_unit_test(test_rejects_disguised_dictionary_words),
        cmocka_unit_test(test_rejects_repeated_dictionary_word),
        cmocka_unit_test(test_rejects_keyboard_runs),
        cmocka_unit_test(test_rejects_shifted_digit_row),
        cmocka_unit_test(test_runs_cover_half_of_bytes),
        cmocka_unit_test(test_undo_substitutions_variants),
        cmocka_unit_test(test_accepts_strong_passwords),
        cmocka_unit_test(test_normalizing_check_returns_nfkc),
        cmocka_unit_test(test_rules_judge_the_nfkc_form),
        cmocka_unit_test(test_normalizing_check_keeps_input_rules),
        cmocka_unit_test(test_missing_dictionary_is_unavailable),
        cmocka_unit_test(test_checks_agree_across_threads),
        cmocka_unit_test(test_rule_names_and_messages),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}

/*
 * Tests for the command-line client's input checks: UTF-8 validation of
 * option text and values, the size limit of a `data put` value, and the
 * content rules of a password file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "temp_dir_helper.h"

#include <sodium.h>

#include "cli_input.h"

static char dir[] = "/tmp/cjc_cli_input_XXXXXX";

static int setup(void **state)
{
    (void)state;
    /* cli_read_password allocates with sodium_malloc. */
    if (sodium_init() < 0)
        return -1;
    return temp_dir_make(dir);
}

static int teardown(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

static bool utf8_valid(const char *text)
{
    return cli_utf8_valid(text, strlen(text));
}

static void test_utf8_valid_text_accepted(void **state)
{
    (void)state;
    assert_true(utf8_valid(""));
    assert_true(utf8_valid("ana@example.com"));
    assert_true(utf8_valid("jos\xC3\xA9"));      /* é */
    assert_true(utf8_valid("\xE2\x82\xAC"));     /* € */
    assert_true(utf8_valid("\xF0\x9F\x94\x92")); /* U+1F512 */
    assert_true(utf8_valid("\xF4\x8F\xBF\xBF")); /* U+10FFFF */
}

static void test_utf8_invalid_text_rejected(void **state)
{
    (void)state;
    assert_false(utf8_valid("\xFF\xFE"));
    assert_false(utf8_valid("abc\x80"));          /* lone continuation byte */
    assert_false(utf8_valid("\xC3"));             /* truncated sequence */
    assert_false(utf8_valid("\xC0\xAF"));         /* overlong '/' */
    assert_false(utf8_valid("\xED\xA0\x80"));     /* surrogate U+D800 */
    assert_false(utf8_valid("\xF4\x90\x80\x80")); /* above U+10FFFF */
}

/* Writes len bytes of 'x' to a file in dir and returns its path. */
static void write_value_file(const char *name, size_t len, char *path,
                             size_t size)
{
    FILE *f;

    snprintf(path, size, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(fputc('x', f), 'x');
    assert_int_equal(fclose(f), 0);
}

static void test_value_at_limit_read(void **state)
{
    char path[256], err[256] = "";
    char *text = NULL;
    size_t len = 0;
    (void)state;

    write_value_file("at-limit", CLI_VALUE_MAX, path, sizeof(path));
    assert_int_equal(cli_read_value(path, &text, &len, err, sizeof(err)),
                     CJ_OK);
    assert_int_equal(len, CLI_VALUE_MAX);
    free(text);
}

static void test_value_over_limit_rejected(void **state)
{
    char path[256], err[256] = "";
    char *text = NULL;
    size_t len = 0;
    (void)state;

    write_value_file("over-limit", CLI_VALUE_MAX + 1, path, sizeof(path));
    assert_int_equal(cli_read_value(path, &text, &len, err, sizeof(err)),
                     CJ_ERR_TOO_LARGE);
    assert_null(text);
    assert_non_null(strstr(err, "larger than 65536 bytes (64 KiB)"));
}

static void test_value_with_nul_rejected(void **state)
{
    char path[256], err[256] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;

    snprintf(path, sizeof(path), "%s/nul", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("hello\0world", 1, 11, f), 11);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(cli_read_value(path, &text, &len, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(text);
    assert_non_null(strstr(err, "NUL byte at byte offset 5 of the input"));
}

static void test_missing_files_named(void **state)
{
    char path[256], err[256] = "";
    char *text = NULL;
    size_t len = 0;
    (void)state;

    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(cli_read_value(path, &text, &len, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, path));
    assert_int_equal(cli_read_password(path, "", &text, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "cannot read password file"));
    assert_null(text);
}

/* Writes len bytes of data to a file in dir and returns its path. */
static void write_password_file(const char *name, const char *data, size_t len,
                                char *path, size_t size)
{
    FILE *f;

    snprintf(path, size, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Reads the password file with content data; returns the status and sets
 * *out (NULL on failure) and err. */
static enum cj_status read_password_data(const char *data, char **out,
                                         char *err, size_t errlen)
{
    char path[256];

    write_password_file("password", data, strlen(data), path, sizeof(path));
    return cli_read_password(path, "", out, err, errlen);
}

static void test_password_file_line_end_dropped(void **state)
{
    static const char *const files[] = {"PWMARKER", "PWMARKER\n",
                                        "PWMARKER\r\n", "PWMARKER\r"};
    (void)state;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char err[256] = "";
        char *password = NULL;

        assert_int_equal(
            read_password_data(files[i], &password, err, sizeof(err)), CJ_OK);
        assert_string_equal(password, "PWMARKER");
        cli_secret_free(password);
    }
}

static void test_password_file_lines_rejected(void **state)
{
    static const char *const files[] = {"PWMARKER\nsecondline",
                                        "PWMARKER\nsecondline\n",
                                        "PWMARKER\r\nsecondline",
                                        "PWMARKER\n\n",
                                        "\nPWMARKER",
                                        "PWMARKER\n\r"};
    (void)state;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char err[256] = "";
        char *password = NULL;

        assert_int_equal(
            read_password_data(files[i], &password, err, sizeof(err)),
            CJ_ERR_INVALID);
        assert_null(password);
        assert_non_null(
            strstr(err, "the password file has more than one line"));
        assert_null(strstr(err, "PWMARKER"));
        assert_null(strstr(err, "secondline"));
    }
}

/* A second line past the length limit is still reported as a second line,
 * and a password at the limit keeps its CRLF allowance. */
static void test_password_file_limits(void **state)
{
    char data[CLI_PASSWORD_MAX + 16];
    char path[256], err[256] = "";
    char *password = NULL;
    (void)state;

    memset(data, 'x', sizeof(data));
    write_password_file("over-limit", data, CLI_PASSWORD_MAX + 1, path,
                        sizeof(path));
    assert_int_equal(cli_read_password(path, "", &password, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(password);
    assert_non_null(strstr(err, "password is longer than 1024 bytes"));

    memcpy(data + CLI_PASSWORD_MAX, "\r\n", 2);
    write_password_file("at-limit", data, CLI_PASSWORD_MAX + 2, path,
                        sizeof(path));
    assert_int_equal(cli_read_password(path, "", &password, err, sizeof(err)),
                     CJ_OK);
    assert_int_equal(strlen(password), CLI_PASSWORD_MAX);
    cli_secret_free(password);

    password = NULL;
    memcpy(data, "short\n", 6);
    write_password_file("long-second-line", data, sizeof(data), path,
                        sizeof(path));
    assert_int_equal(cli_read_password(path, "", &password, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(password);
    assert_non_null(strstr(err, "more than one line"));
}

static void test_drop_newline_lf_or_crlf(void **state)
{
    static const struct {
        const char *text;
        size_t kept;
    } cases[] = {
        {"a\r\nb\r\n", 4}, {"a\r\nb\n", 4}, {"\r\n", 0},   {"\n", 0},
        {"ab", 2},         {"ab\r", 3},     {"ab\n\n", 3}, {"", 0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *text = cases[i].text;

        assert_int_equal(cli_drop_newline(text, strlen(text)), cases[i].kept);
    }
}

static void test_json_array_value_detected(void **state)
{
    const char *arrays[] = {"[1,2]", " [\"a\", {\"b\": \"c\"}]\n", "[]"};
    const char *others[] = {
        "[draft] note", /* text that only starts with '[' */
        "[1,2",         /* incomplete */
        "{\"a\":\"1\"}", "42", "\"text\"", "true", "", "plain text",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        assert_true(cli_value_is_json_array(arrays[i], strlen(arrays[i])));
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_false(cli_value_is_json_array(others[i], strlen(others[i])));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_text_accepted),
        cmocka_unit_test(test_utf8_invalid_text_rejected),
        cmocka_unit_test(test_value_at_limit_read),
        cmocka_unit_test(test_value_over_limit_rejected),
        cmocka_unit_test(test_value_with_nul_rejected),
        cmocka_unit_test(test_missing_files_named),
        cmocka_unit_test(test_password_file_line_end_dropped),
        cmocka_unit_test(test_password_file_lines_rejected),
        cmocka_unit_test(test_password_file_limits),
        cmocka_unit_test(test_drop_newline_lf_or_crlf),
        cmocka_unit_test(test_json_array_value_detected),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

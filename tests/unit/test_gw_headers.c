/* Tests for CORS origin matching and the request-header parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "gw_headers.h"

#include <string.h>

static void test_origin_list_accepts_serialized_origins(void **state)
{
    struct gw_origin_list list;

    (void)state;
    assert_int_equal(gw_origin_list_parse("https://app.example, "
                                          "http://localhost:3000",
                                          &list),
                     CJ_OK);
    assert_int_equal(list.count, 2);
    assert_int_equal(gw_origin_list_parse("", &list), CJ_OK);
    assert_int_equal(list.count, 0);
    assert_int_equal(gw_origin_list_parse(NULL, &list), CJ_OK);
}

static void test_origin_list_rejects_wildcards_and_junk(void **state)
{
    static const char *const bad[] = {
        "*",
        "null",
        "https://app.example/",
        "https://app.example/path",
        "ftp://app.example",
        "https://APP.example",
        "https://user@app.example",
        "https://app.example:",
        "https://app.example:80a",
        "https://*.example",
        "app.example",
    };
    struct gw_origin_list list;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_origin_list_parse(bad[i], &list) == CJ_OK) {
            fail_msg("origin list \"%s\" accepted", bad[i]);
        }
    }
}

static void test_origin_list_rejects_default_ports(void **state)
{
    /* Browsers never send these, so such an entry would never match. */
    static const char *const bad[] = {
        "https://app.example:443",    "http://app.example:80",
        "https://app.example:0443",   "https://app.example:65536",
        "https://app.example:123456",
    };
    static const char *const good[] = {
        "https://app.example:8443",
        "http://app.example:443",
        "https://app.example:80",
        "http://localhost:3000",
    };
    struct gw_origin_list list;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_origin_list_parse(bad[i], &list) == CJ_OK) {
            fail_msg("origin list \"%s\" accepted", bad[i]);
        }
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (gw_origin_list_parse(good[i], &list) != CJ_OK) {
            fail_msg("origin list \"%s\" rejected", good[i]);
        }
    }
}

static void test_origin_matching_is_exact(void **state)
{
    struct gw_origin_list list;
    static const char *const refused[] = {
        "null",
        "https://app.example.evil.example",
        "https://evilapp.example",
        "http://app.example",
        "https://app.example:443",
        "https://APP.example",
        "https://app.example/",
        "https://app.exampl",
        "",
    };

    (void)state;
    assert_int_equal(gw_origin_list_parse("https://app.example", &list), CJ_OK);
    assert_true(gw_origin_allowed(&list, "https://app.example"));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (gw_origin_allowed(&list, refused[i])) {
            fail_msg("origin \"%s\" allowed", refused[i]);
        }
    }
    assert_false(gw_origin_allowed(&list, NULL));
}

static void test_empty_origin_list_allows_nothing(void **state)
{
    struct gw_origin_list list;

    (void)state;
    assert_int_equal(gw_origin_list_parse(NULL, &list), CJ_OK);
    assert_false(gw_origin_allowed(&list, "https://app.example"));
    assert_false(gw_origin_allowed(&list, "null"));
}

static void test_accept_encoding_gzip_detection(void **state)
{
    (void)state;
    assert_true(gw_accepts_gzip("gzip"));
    assert_true(gw_accepts_gzip("br, gzip;q=0.5"));
    assert_true(gw_accepts_gzip("deflate, GZIP"));
    assert_false(gw_accepts_gzip("gzip;q=0"));
    assert_false(gw_accepts_gzip("gzip; q=0.0"));
    assert_false(gw_accepts_gzip("x-gzip2, deflate"));
    assert_false(gw_accepts_gzip("identity"));
    assert_false(gw_accepts_gzip(NULL));
}

static void test_accept_encoding_malformed_qvalue_means_no_gzip(void **state)
{
    static const char *const refused[] = {
        "gzip;q=nan", "gzip;q=inf",  "gzip;q=1e3", "gzip;q=0x1",
        "gzip;q=-1",  "gzip;q=1.5",  "gzip;q=2",   "gzip;q=0.0001",
        "gzip;q=",    "gzip;q=0.5x", "gzip;q=.5",  "gzip;q= 0.5",
    };
    static const char *const accepted[] = {
        "gzip;q=1",       "gzip;q=1.000",  "gzip;q=0.001",
        "gzip;q=0.5 ,br", "gzip;q=1.;x=y",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (gw_accepts_gzip(refused[i])) {
            fail_msg("\"%s\" accepted gzip", refused[i]);
        }
    }
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        if (!gw_accepts_gzip(accepted[i])) {
            fail_msg("\"%s\" refused gzip", accepted[i]);
        }
    }
}

static void test_content_type_must_be_json(void **state)
{
    (void)state;
    assert_true(gw_content_type_is_json("application/json"));
    assert_true(gw_content_type_is_json("application/json; charset=utf-8"));
    assert_true(gw_content_type_is_json("Application/JSON;charset=UTF-8"));
    assert_false(gw_content_type_is_json("application/jsonx"));
    assert_false(gw_content_type_is_json("application/json; charset=latin1"));
    assert_false(gw_content_type_is_json("text/plain"));
    assert_false(gw_content_type_is_json("application/x-www-form-urlencoded"));
    assert_false(gw_content_type_is_json(NULL));
}

/* Feeds `count` header lines, name and value in turn, to a new framing
 * record and returns its problem. */
static const char *framing_problem_of(const char *const *lines, size_t count)
{
    struct gw_framing framing = {0};

    for (size_t i = 0; i + 1 < count; i += 2) {
        gw_framing_add(&framing, lines[i], strlen(lines[i]), lines[i + 1],
                       strlen(lines[i + 1]));
    }
    return gw_framing_problem(&framing);
}

#define FRAMING_PROBLEM(...)                                                   \
    framing_problem_of((const char *const[]){__VA_ARGS__},                     \
                       sizeof((const char *const[]){__VA_ARGS__}) /            \
                           sizeof(const char *))

static void test_framing_accepts_unambiguous_heads(void **state)
{
    (void)state;
    assert_null(FRAMING_PROBLEM("Host", "x"));
    assert_null(FRAMING_PROBLEM("Host", "x", "Content-Length", "12"));
    /* Identical Content-Length lines name one length (RFC 9110 8.6). */
    assert_null(
        FRAMING_PROBLEM("content-length", "12", "Content-Length", "12"));
    assert_null(FRAMING_PROBLEM("Host", "x", "Transfer-Encoding", "chunked"));
    assert_null(FRAMING_PROBLEM("Transfer-Encoding", " Chunked "));
}

static void test_framing_rejects_conflicting_lengths(void **state)
{
    (void)state;
    assert_non_null(
        FRAMING_PROBLEM("Content-Length", "217", "Content-Length", "251"));
    assert_non_null(
        FRAMING_PROBLEM("Content-Length", "5", "content-length", "217"));
}

static void test_framing_rejects_folded_framing_headers(void **state)
{
    (void)state;
    /* libmicrohttpd 0.9.75 appends a folded line to the header's name, so
     * "Content-Length:" then " 34" arrives as Content-Length34. */
    assert_non_null(FRAMING_PROBLEM("Host", "x", "Content-Length34", ""));
    assert_non_null(FRAMING_PROBLEM("content-length7", "3"));
    assert_non_null(FRAMING_PROBLEM("Transfer-Encodingchunked", ""));
    assert_null(FRAMING_PROBLEM("Content-Language", "es"));
    assert_null(FRAMING_PROBLEM("Transfer", "x"));
}

static void test_framing_rejects_lengths_not_decimal(void **state)
{
    (void)state;
    assert_non_null(FRAMING_PROBLEM("Content-Length", ""));
    assert_non_null(FRAMING_PROBLEM("Content-Length", " "));
    assert_non_null(FRAMING_PROBLEM("Content-Length", "1 2"));
    assert_non_null(FRAMING_PROBLEM("Content-Length", "0x7"));
    assert_null(FRAMING_PROBLEM("Content-Length", " 12\t"));
    assert_null(FRAMING_PROBLEM("Content-Length", "007"));
}

static void test_framing_rejects_length_with_chunked(void **state)
{
    (void)state;
    assert_non_null(
        FRAMING_PROBLEM("Transfer-Encoding", "chunked", "Content-Length", "3"));
    assert_non_null(
        FRAMING_PROBLEM("Content-Length", "3", "Transfer-Encoding", "chunked"));
}

static void test_framing_rejects_two_hosts(void **state)
{
    (void)state;
    assert_non_null(FRAMING_PROBLEM("Host", "x", "Host", "x"));
    assert_non_null(FRAMING_PROBLEM("Host", "x", "host", "y"));
}

/* Feeds `count` header lines, name and value in turn, and returns the
 * repeated-header problem. */
static const char *repeated_problem_of(const char *const *lines, size_t count)
{
    struct gw_framing framing = {0};

    for (size_t i = 0; i + 1 < count; i += 2) {
        gw_framing_add(&framing, lines[i], strlen(lines[i]), lines[i + 1],
                       strlen(lines[i + 1]));
    }
    return gw_repeated_header_problem(&framing);
}

#define REPEATED_PROBLEM(...)                                                  \
    repeated_problem_of((const char *const[]){__VA_ARGS__},                    \
                        sizeof((const char *const[]){__VA_ARGS__}) /           \
                            sizeof(const char *))

static void test_repeated_session_header_rejected(void **state)
{
    const char *problem;

    (void)state;
    assert_null(REPEATED_PROBLEM("Host", "x", "Cerrojo-Session", "a"));
    problem = REPEATED_PROBLEM("Cerrojo-Session", "a", "Cerrojo-Session", "b");
    assert_non_null(problem);
    assert_non_null(strstr(problem, "Cerrojo-Session"));
    problem = REPEATED_PROBLEM("Cerrojo-Session", "a", "cerrojo-session", "a");
    assert_non_null(problem);
}

static void test_repeated_seal_header_rejected(void **state)
{
    const char *problem;

    (void)state;
    assert_null(
        REPEATED_PROBLEM("Cerrojo-Seal", "e30", "Cerrojo-Session", "a"));
    problem = REPEATED_PROBLEM("Cerrojo-Seal", "e30", "CERROJO-SEAL", "e30");
    assert_non_null(problem);
    assert_non_null(strstr(problem, "Cerrojo-Seal"));
}

static void test_conflicting_content_types_rejected(void **state)
{
    const char *problem;

    (void)state;
    assert_null(REPEATED_PROBLEM("Content-Type", "application/json",
                                 "content-type", "Application/JSON"));
    problem = REPEATED_PROBLEM("Content-Type", "application/json",
                               "Content-Type", "text/plain");
    assert_non_null(problem);
    assert_non_null(strstr(problem, "Content-Type"));
}

static void test_framing_ignores_repeated_session(void **state)
{
    (void)state;
    /* The body's end is clear, so the framing check passes it on. */
    assert_null(FRAMING_PROBLEM("Host", "x", "Cerrojo-Session", "a",
                                "Cerrojo-Session", "b"));
}

static void test_framing_rejects_other_transfer_codings(void **state)
{
    static const char *const codings[] = {
        "gzip, chunked", "identity", "chunked, chunked", "xchunked",
        "chunkedx",      "",         "chunked;x=1",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        assert_non_null(FRAMING_PROBLEM("Transfer-Encoding", codings[i]));
    }
    assert_non_null(FRAMING_PROBLEM("Transfer-Encoding", "chunked",
                                    "Transfer-Encoding", "chunked"));
}

/* Returns the problem of a head with one line given with explicit lengths,
 * so that a name or value may contain NUL. */
static const char *line_problem(const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    struct gw_framing framing = {0};

    gw_framing_add(&framing, "Host", 4, "x", 1);
    gw_framing_add(&framing, name, name_len, value, value_len);
    return gw_framing_problem(&framing);
}

static void test_framing_rejects_names_not_tokens(void **state)
{
    static const char *const names[] = {
        "Content-Length ",
        "Content-Length\t",
        " Host",
        "X A",
        "X-A:Content-Length: 35",
        "X\x01"
        "A",
        "X\x7f"
        "A",
        "X-\xc3\xa9",
        "X(A)",
        "",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_non_null(line_problem(names[i], strlen(names[i]), "35", 2));
    }
    assert_non_null(line_problem("X\0A", 3, "b", 1));
    assert_non_null(line_problem(NULL, 0, "b", 1));
    assert_null(line_problem("X-A.b_c~d!#$%&'*+^`|", 20, "b", 1));
}

static void test_framing_rejects_cr_lf_nul_in_values(void **state)
{
    (void)state;
    assert_non_null(line_problem("X-A", 3, "b\rc", 3));
    assert_non_null(line_problem("X-A", 3, "b\r", 2));
    assert_non_null(line_problem("X-A", 3, "b\nc", 3));
    assert_non_null(line_problem("X-A", 3, "b\0c", 3));
    /* Tabs, spaces and obs-text stay allowed in values (RFC 9110 5.5). */
    assert_null(line_problem("X-A", 3, "b\tc d\xe9", 6));
    assert_null(line_problem("X-A", 3, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_list_accepts_serialized_origins),
        cmocka_unit_test(test_origin_list_rejects_wildcards_and_junk),
        cmocka_unit_test(test_origin_list_rejects_default_ports),
        cmocka_unit_test(test_origin_matching_is_exact),
        cmocka_unit_test(test_empty_origin_list_allows_nothing),
        cmocka_unit_test(test_accept_encoding_gzip_detection),
        cmocka_unit_test(test_accept_encoding_malformed_qvalue_means_no_gzip),
        cmocka_unit_test(test_content_type_must_be_json),
        cmocka_unit_test(test_framing_accepts_unambiguous_heads),
        cmocka_unit_test(test_framing_rejects_conflicting_lengths),
        cmocka_unit_test(test_framing_rejects_folded_framing_headers),
        cmocka_unit_test(test_framing_rejects_lengths_not_decimal),
        cmocka_unit_test(test_framing_rejects_length_with_chunked),
        cmocka_unit_test(test_framing_rejects_two_hosts),
        cmocka_unit_test(test_repeated_session_header_rejected),
        cmocka_unit_test(test_repeated_seal_header_rejected),
        cmocka_unit_test(test_conflicting_content_types_rejected),
        cmocka_unit_test(test_framing_ignores_repeated_session),
        cmocka_unit_test(test_framing_rejects_other_transfer_codings),
        cmocka_unit_test(test_framing_rejects_names_not_tokens),
        cmocka_unit_test(test_framing_rejects_cr_lf_nul_in_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

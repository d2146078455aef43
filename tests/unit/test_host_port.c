/* Tests for the host:port and [IPv6]:port checks of listen addresses and
 * gRPC targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "host_port.h"

static void test_accepts_host_and_port(void **state)
{
    (void)state;
    struct cj_host_port parsed;

    assert_int_equal(cj_host_port_parse("127.0.0.1:50052", false, &parsed),
                     CJ_HOST_PORT_OK);
    assert_string_equal(parsed.host, "127.0.0.1");
    assert_int_equal(parsed.port, 50052);
    assert_false(parsed.ipv6);

    assert_int_equal(
        cj_host_port_parse("kms.cerrojo_1-a:65535", false, &parsed),
        CJ_HOST_PORT_OK);
    assert_string_equal(parsed.host, "kms.cerrojo_1-a");
    assert_int_equal(parsed.port, 65535);
}

static void test_accepts_bracketed_ipv6(void **state)
{
    (void)state;
    struct cj_host_port parsed;

    assert_int_equal(cj_host_port_parse("[::1]:50052", false, &parsed),
                     CJ_HOST_PORT_OK);
    assert_string_equal(parsed.host, "::1");
    assert_int_equal(parsed.port, 50052);
    assert_true(parsed.ipv6);
    assert_int_equal(cj_host_port_parse("[::]:0", true, &parsed),
                     CJ_HOST_PORT_OK);
    assert_int_equal(parsed.port, 0);
}

static void test_rejects_missing_port(void **state)
{
    (void)state;
    /* gRPC would bind or dial port 443 for each of these. */
    const char *inputs[] = {"127.0.0.1", "127.0.0.1:", "localhost", "[::1]",
                            "[::1]:"};

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_int_equal(cj_host_port_parse(inputs[i], true, NULL),
                         CJ_HOST_PORT_MISSING_PORT);
    }
}

static void test_rejects_empty_host(void **state)
{
    (void)state;
    assert_int_equal(cj_host_port_parse(":50052", true, NULL),
                     CJ_HOST_PORT_EMPTY_HOST);
    assert_int_equal(cj_host_port_parse("[]:50052", true, NULL),
                     CJ_HOST_PORT_EMPTY_HOST);
    assert_int_equal(cj_host_port_parse("", true, NULL),
                     CJ_HOST_PORT_EMPTY_HOST);
    assert_int_equal(cj_host_port_parse(NULL, true, NULL),
                     CJ_HOST_PORT_EMPTY_HOST);
}

static void test_rejects_bad_ports(void **state)
{
    (void)state;
    const char *inputs[] = {"127.0.0.1:65536",  "127.0.0.1:99999",
                            "127.0.0.1:123456", "127.0.0.1:-1",
                            "127.0.0.1:+80",    "127.0.0.1:8o",
                            "127.0.0.1: 80",    "[::1]:70000"};

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_int_equal(cj_host_port_parse(inputs[i], true, NULL),
                         CJ_HOST_PORT_INVALID_PORT);
    }
}

static void test_port_zero_only_where_allowed(void **state)
{
    (void)state;
    assert_int_equal(cj_host_port_parse("127.0.0.1:0", true, NULL),
                     CJ_HOST_PORT_OK);
    assert_int_equal(cj_host_port_parse("127.0.0.1:0", false, NULL),
                     CJ_HOST_PORT_PORT_ZERO);
    assert_int_equal(cj_host_port_parse("127.0.0.1:00000", false, NULL),
                     CJ_HOST_PORT_PORT_ZERO);
    assert_int_equal(cj_host_port_parse("[::1]:0", false, NULL),
                     CJ_HOST_PORT_PORT_ZERO);
}

static void test_rejects_unbracketed_ipv6(void **state)
{
    (void)state;
    assert_int_equal(cj_host_port_parse("::1:50052", true, NULL),
                     CJ_HOST_PORT_UNBRACKETED_IPV6);
    assert_int_equal(cj_host_port_parse("fe80::1:443", true, NULL),
                     CJ_HOST_PORT_UNBRACKETED_IPV6);
}

static void test_rejects_bad_bracketed_text(void **state)
{
    (void)state;
    assert_int_equal(cj_host_port_parse("[127.0.0.1]:80", true, NULL),
                     CJ_HOST_PORT_INVALID_IPV6);
    assert_int_equal(cj_host_port_parse("[::1:80", true, NULL),
                     CJ_HOST_PORT_INVALID_IPV6);
    assert_int_equal(cj_host_port_parse("[::1]x:80", true, NULL),
                     CJ_HOST_PORT_INVALID_IPV6);
}

static void test_rejects_bad_host_characters(void **state)
{
    (void)state;
    assert_int_equal(cj_host_port_parse("unix/path:80", true, NULL),
                     CJ_HOST_PORT_INVALID_HOST);
    assert_int_equal(cj_host_port_parse("a b:80", true, NULL),
                     CJ_HOST_PORT_INVALID_HOST);
}

static void test_rejects_long_host(void **state)
{
    (void)state;
    char text[300];

    memset(text, 'a', 256);
    memcpy(text + 256, ":80", 4);
    assert_int_equal(cj_host_port_parse(text, true, NULL),
                     CJ_HOST_PORT_TOO_LONG);
}

static void test_error_text_names_cause(void **state)
{
    (void)state;
    assert_string_equal(cj_host_port_error_text(CJ_HOST_PORT_MISSING_PORT),
                        "the port is missing");
    assert_non_null(strstr(
        cj_host_port_error_text(CJ_HOST_PORT_UNBRACKETED_IPV6), "brackets"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_host_and_port),
        cmocka_unit_test(test_accepts_bracketed_ipv6),
        cmocka_unit_test(test_rejects_missing_port),
        cmocka_unit_test(test_rejects_empty_host),
        cmocka_unit_test(test_rejects_bad_ports),
        cmocka_unit_test(test_port_zero_only_where_allowed),
        cmocka_unit_test(test_rejects_unbracketed_ipv6),
        cmocka_unit_test(test_rejects_bad_bracketed_text),
        cmocka_unit_test(test_rejects_bad_host_characters),
        cmocka_unit_test(test_rejects_long_host),
        cmocka_unit_test(test_error_text_names_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

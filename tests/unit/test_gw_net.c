/* Tests for trusted-proxy matching, client-IP selection and request ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw_net.h"

static void test_cidr_list_matches_v4_and_v6(void **state)
{
    struct gw_cidr_list list;

    (void)state;
    assert_int_equal(
        gw_cidr_list_parse("10.0.0.0/8, 192.168.1.7, fd00::/8", &list, NULL, 0),
        CJ_OK);
    assert_int_equal(list.count, 3);
    assert_true(gw_cidr_list_contains_ip(&list, "10.200.3.4"));
    assert_false(gw_cidr_list_contains_ip(&list, "11.0.0.1"));
    assert_true(gw_cidr_list_contains_ip(&list, "192.168.1.7"));
    assert_false(gw_cidr_list_contains_ip(&list, "192.168.1.8"));
    assert_true(gw_cidr_list_contains_ip(&list, "fd12::1"));
    assert_false(gw_cidr_list_contains_ip(&list, "fe80::1"));
    /* An IPv4-mapped IPv6 address is the IPv4 address. */
    assert_true(gw_cidr_list_contains_ip(&list, "::ffff:10.1.2.3"));
    assert_false(gw_cidr_list_contains_ip(&list, "not-an-ip"));
}

static void test_cidr_list_rejects_malformed_entries(void **state)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/",   "10.0.0/8",
        "::1/129",     "host",       "10.0.0.0/-1",
    };
    struct gw_cidr_list list;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_cidr_list_parse(bad[i], &list, NULL, 0) == CJ_OK) {
            fail_msg("CIDR list \"%s\" accepted", bad[i]);
        }
    }
    assert_int_equal(gw_cidr_list_parse("", &list, NULL, 0), CJ_OK);
    assert_int_equal(list.count, 0);
}

static void test_cidr_list_error_names_entry(void **state)
{
    static const struct {
        const char *list;
        const char *entry;
    } cases[] = {
        {"10.0.0.1, 10.0.0.0/33", "'10.0.0.0/33'"},
        {"garbage", "'garbage'"},
        {"10.0.0.1/8", "'10.0.0.1/8'"},
        {"::ffff:0:0/95", "'::ffff:0:0/95'"},
        {"::1/129", "'::1/129'"},
    };
    struct gw_cidr_list list;
    char err[GW_CIDR_ERROR_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            gw_cidr_list_parse(cases[i].list, &list, err, sizeof(err)),
            CJ_ERR_INVALID);
        if (strstr(err, cases[i].entry) == NULL) {
            fail_msg("error for \"%s\" does not name %s: %s", cases[i].list,
                     cases[i].entry, err);
        }
    }
}

static void test_cidr_list_mapped_prefix_counts_ipv4_bits(void **state)
{
    struct gw_cidr_list list;

    (void)state;
    assert_int_equal(gw_cidr_list_parse("::ffff:10.0.0.0/104", &list, NULL, 0),
                     CJ_OK);
    assert_int_equal(list.count, 1);
    assert_int_equal(list.items[0].family, AF_INET);
    assert_int_equal(list.items[0].prefix_bits, 8);
    assert_true(list.items[0].v4_mapped);
    assert_string_equal(list.items[0].text, "::ffff:10.0.0.0/104");
    assert_true(gw_cidr_list_contains_ip(&list, "10.9.8.7"));
    assert_false(gw_cidr_list_contains_ip(&list, "11.0.0.1"));

    assert_int_equal(gw_cidr_list_parse("::ffff:0:0/96", &list, NULL, 0),
                     CJ_OK);
    assert_int_equal(list.items[0].prefix_bits, 0);
    assert_int_equal(gw_cidr_list_parse("::ffff:10.1.2.3", &list, NULL, 0),
                     CJ_OK);
    assert_int_equal(list.items[0].prefix_bits, 32);

    /* An IPv6 length below /96 leaves the mapped 0xffff in the host bits,
     * so "::ffff:10.0.0.0/8" is invalid rather than IPv4 10.0.0.0/8. */
    assert_int_equal(gw_cidr_list_parse("::ffff:10.0.0.0/8", &list, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(gw_cidr_list_parse("::ffff:0:0/95", &list, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(gw_cidr_list_parse("::ffff:10.0.0.0/129", &list, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(gw_cidr_list_parse("::ffff:10.0.0.1/104", &list, NULL, 0),
                     CJ_ERR_INVALID);
}

static void test_cidr_list_find_short_per_family(void **state)
{
    struct gw_cidr_list list;
    const struct gw_cidr *net;

    (void)state;
    assert_int_equal(
        gw_cidr_list_parse("10.0.0.0/8, 2001:db8::/32", &list, NULL, 0), CJ_OK);
    assert_null(gw_cidr_list_find_short(&list, 8, 32));
    net = gw_cidr_list_find_short(&list, 9, 32);
    assert_non_null(net);
    assert_string_equal(net->text, "10.0.0.0/8");
    net = gw_cidr_list_find_short(&list, 8, 33);
    assert_non_null(net);
    assert_string_equal(net->text, "2001:db8::/32");
}

static void test_cidr_list_find_short_unique_local(void **state)
{
    struct gw_cidr_list list;
    const struct gw_cidr *net;

    (void)state;
    assert_int_equal(
        gw_cidr_list_parse("fc00::/7, fd00::/8, fdff::/16", &list, NULL, 0),
        CJ_OK);
    assert_null(gw_cidr_list_find_short(&list, 8, 32));
    assert_int_equal(gw_cidr_list_parse("fd00::/8, fe00::/7", &list, NULL, 0),
                     CJ_OK);
    net = gw_cidr_list_find_short(&list, 8, 32);
    assert_non_null(net);
    assert_string_equal(net->text, "fe00::/7");
    assert_int_equal(gw_cidr_list_parse("2a00::/7", &list, NULL, 0), CJ_OK);
    net = gw_cidr_list_find_short(&list, 8, 32);
    assert_non_null(net);
    assert_string_equal(net->text, "2a00::/7");
    assert_int_equal(gw_cidr_list_parse("fc00::/6", &list, NULL, 0), CJ_OK);
    net = gw_cidr_list_find_short(&list, 8, 32);
    assert_non_null(net);
    assert_string_equal(net->text, "fc00::/6");
}

static void test_client_ip_ignores_forwarded_from_untrusted_peer(void **state)
{
    struct gw_cidr_list trusted;
    char ip[GW_IP_CHARS];

    (void)state;
    assert_int_equal(gw_cidr_list_parse("10.0.0.1", &trusted, NULL, 0), CJ_OK);
    gw_client_ip(&trusted, "203.0.113.9", "1.2.3.4", ip, sizeof(ip));
    assert_string_equal(ip, "203.0.113.9");
}

static void test_client_ip_walks_past_trusted_proxies(void **state)
{
    struct gw_cidr_list trusted;
    char ip[GW_IP_CHARS];

    (void)state;
    assert_int_equal(gw_cidr_list_parse("10.0.0.0/8", &trusted, NULL, 0),
                     CJ_OK);
    /* The client forged the leftmost entry; the rightmost untrusted wins. */
    gw_client_ip(&trusted, "10.0.0.1", "6.6.6.6, 198.51.100.4, 10.0.0.2", ip,
                 sizeof(ip));
    assert_string_equal(ip, "198.51.100.4");
    gw_client_ip(&trusted, "10.0.0.1", NULL, ip, sizeof(ip));
    assert_string_equal(ip, "10.0.0.1");
    /* An invalid entry stops the walk at the proxy that sent it. */
    gw_client_ip(&trusted, "10.0.0.1", "1.1.1.1, junk", ip, sizeof(ip));
    assert_string_equal(ip, "10.0.0.1");
}

static void test_client_ip_drops_forwarded_ports(void **state)
{
    struct gw_cidr_list trusted;
    char ip[GW_IP_CHARS];

    (void)state;
    assert_int_equal(gw_cidr_list_parse("127.0.0.1", &trusted, NULL, 0), CJ_OK);
    gw_client_ip(&trusted, "127.0.0.1", "10.0.0.4:5555", ip, sizeof(ip));
    assert_string_equal(ip, "10.0.0.4");
    gw_client_ip(&trusted, "127.0.0.1", "[2001:db8::1]:443", ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8::1");
    gw_client_ip(&trusted, "127.0.0.1", "[2001:db8::2]", ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8::2");
    /* A bare IPv6 address keeps its colons. */
    gw_client_ip(&trusted, "127.0.0.1", "2001:db8::3", ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8::3");
    /* A trusted proxy with a port is still walked past. */
    gw_client_ip(&trusted, "127.0.0.1", "198.51.100.5:80, 127.0.0.1:9000", ip,
                 sizeof(ip));
    assert_string_equal(ip, "198.51.100.5");
}

static void test_client_ip_rejects_malformed_ports(void **state)
{
    static const char *const bad[] = {
        "10.0.0.4:",    "10.0.0.4:x",     "10.0.0.4:80:81",   "[2001:db8::1]:",
        "[2001:db8::1", "[2001:db8::1]x", "[2001:db8::1]:8a",
    };
    struct gw_cidr_list trusted;
    char ip[GW_IP_CHARS];

    (void)state;
    assert_int_equal(gw_cidr_list_parse("127.0.0.1", &trusted, NULL, 0), CJ_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_client_ip(&trusted, "127.0.0.1", bad[i], ip, sizeof(ip));
        assert_string_equal(ip, "127.0.0.1");
    }
}

static void test_request_id_validation(void **state)
{
    char long_id[GW_REQUEST_ID_CHARS_MAX + 2];

    (void)state;
    assert_true(gw_request_id_valid("abc-123_X.y"));
    assert_false(gw_request_id_valid(""));
    assert_false(gw_request_id_valid(NULL));
    assert_false(gw_request_id_valid("a b"));
    assert_false(gw_request_id_valid("a\"b"));
    assert_false(gw_request_id_valid("a\nb"));
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_false(gw_request_id_valid(long_id));
    long_id[GW_REQUEST_ID_CHARS_MAX] = '\0';
    assert_true(gw_request_id_valid(long_id));
}

static void test_generated_request_ids_are_valid_and_distinct(void **state)
{
    char a[GW_REQUEST_ID_SIZE];
    char b[GW_REQUEST_ID_SIZE];

    (void)state;
    gw_request_id_generate(a, sizeof(a));
    gw_request_id_generate(b, sizeof(b));
    assert_true(gw_request_id_valid(a));
    assert_int_equal(strlen(a), 22);
    assert_string_not_equal(a, b);
}

#define TEST_ID_THREADS     4
#define TEST_IDS_PER_THREAD 256

struct id_batch {
    char ids[TEST_IDS_PER_THREAD][GW_REQUEST_ID_SIZE];
};

static void *generate_ids(void *arg)
{
    struct id_batch *batch = arg;

    for (size_t i = 0; i < TEST_IDS_PER_THREAD; i++) {
        gw_request_id_generate(batch->ids[i], sizeof(batch->ids[i]));
    }
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Each thread has its own stream, and no two ids repeat within a thread or
 * across threads. */
static void test_request_ids_distinct_across_threads(void **state)
{
    struct id_batch *batches = calloc(TEST_ID_THREADS, sizeof(*batches));
    pthread_t threads[TEST_ID_THREADS];
    size_t count = (size_t)TEST_ID_THREADS * TEST_IDS_PER_THREAD;
    char(*all)[GW_REQUEST_ID_SIZE];

    (void)state;
    assert_non_null(batches);
    for (size_t t = 0; t < TEST_ID_THREADS; t++) {
        assert_int_equal(
            pthread_create(&threads[t], NULL, generate_ids, &batches[t]), 0);
    }
    for (size_t t = 0; t < TEST_ID_THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    }
    all = (char(*)[GW_REQUEST_ID_SIZE])batches;
    for (size_t i = 0; i < count; i++) {
        assert_true(gw_request_id_valid(all[i]));
        assert_int_equal(strlen(all[i]), 22);
    }
    qsort(all, count, sizeof(all[0]), compare_ids);
    for (size_t i = 1; i < count; i++) {
        assert_string_not_equal(all[i - 1], all[i]);
    }
    free(batches);
}

static void test_copy_text_truncates_like_snprintf(void **state)
{
    char out[6];

    (void)state;
    memset(out, 'x', sizeof(out));
    gw_copy_text(out, sizeof(out), "abc");
    assert_string_equal(out, "abc");
    gw_copy_text(out, sizeof(out), "abcde");
    assert_string_equal(out, "abcde");
    gw_copy_text(out, sizeof(out), "abcdefgh");
    assert_string_equal(out, "abcde");
    gw_copy_text(out, sizeof(out), "");
    assert_string_equal(out, "");
    gw_copy_text(out, 1, "abc");
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_list_matches_v4_and_v6),
        cmocka_unit_test(test_cidr_list_rejects_malformed_entries),
        cmocka_unit_test(test_cidr_list_error_names_entry),
        cmocka_unit_test(test_cidr_list_mapped_prefix_counts_ipv4_bits),
        cmocka_unit_test(test_cidr_list_find_short_per_family),
        cmocka_unit_test(test_cidr_list_find_short_unique_local),
        cmocka_unit_test(test_client_ip_ignores_forwarded_from_untrusted_peer),
        cmocka_unit_test(test_client_ip_walks_past_trusted_proxies),
        cmocka_unit_test(test_client_ip_drops_forwarded_ports),
        cmocka_unit_test(test_client_ip_rejects_malformed_ports),
        cmocka_unit_test(test_request_id_validation),
        cmocka_unit_test(test_generated_request_ids_are_valid_and_distinct),
        cmocka_unit_test(test_request_ids_distinct_across_threads),
        cmocka_unit_test(test_copy_text_truncates_like_snprintf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the per-IP count of open connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gw_conn_count.h"

/* Distinct addresses used to fill the table in the probe-run tests. */
#define MANY_ADDRESSES GW_CONNECTIONS_MAX

static struct sockaddr_in ipv4(const char *text)
{
    struct sockaddr_in addr;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &addr.sin_addr), 1);
    return addr;
}

static struct sockaddr_in6 ipv6(const char *text)
{
    struct sockaddr_in6 addr;

    memset(&addr, 0, sizeof(addr));
    addr.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, &addr.sin6_addr), 1);
    return addr;
}

/* The address 10.x.y.z numbered `n`. */
static struct sockaddr_in numbered(unsigned n)
{
    struct sockaddr_in addr;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(0x0a000000u + n);
    return addr;
}

static void test_conn_count_counts_per_address(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();
    struct sockaddr_in a = ipv4("192.0.2.1");
    struct sockaddr_in b = ipv4("192.0.2.2");

    (void)state;
    assert_non_null(count);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&a), 1);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&a), 2);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&b), 1);
    gw_conn_count_close(count, (struct sockaddr *)&a);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&a), 2);
    gw_conn_count_free(count);
}

static void test_conn_count_frees_address_at_zero(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();
    struct sockaddr_in a = ipv4("192.0.2.1");

    (void)state;
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&a), 1);
    gw_conn_count_close(count, (struct sockaddr *)&a);
    /* An extra close of a freed address changes nothing. */
    gw_conn_count_close(count, (struct sockaddr *)&a);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&a), 1);
    gw_conn_count_free(count);
}

static void test_conn_count_maps_ipv4_in_ipv6(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();
    struct sockaddr_in plain = ipv4("198.51.100.7");
    struct sockaddr_in6 mapped = ipv6("::ffff:198.51.100.7");
    struct sockaddr_in6 other = ipv6("2001:db8::7");

    (void)state;
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&plain), 1);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&mapped), 2);
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&other), 1);
    gw_conn_count_free(count);
}

static void test_conn_count_ignores_other_families(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();
    struct sockaddr unix_addr = {.sa_family = AF_UNIX};

    (void)state;
    assert_int_equal(gw_conn_count_open(count, NULL), 0);
    assert_int_equal(gw_conn_count_open(count, &unix_addr), 0);
    gw_conn_count_close(count, NULL);
    gw_conn_count_free(count);
}

/* Fills the table to GW_CONNECTIONS_MAX addresses, which makes long probe
 * runs, then closes every other address: the rest must keep their counts,
 * which fails when a removal breaks a probe run. */
static void test_conn_count_survives_removals_in_runs(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();

    (void)state;
    for (unsigned n = 0; n < MANY_ADDRESSES; n++) {
        struct sockaddr_in addr = numbered(n);

        for (unsigned k = 0; k <= n % 3; k++) {
            assert_int_equal(
                gw_conn_count_open(count, (struct sockaddr *)&addr), k + 1);
        }
    }
    for (unsigned n = 0; n < MANY_ADDRESSES; n += 2) {
        struct sockaddr_in addr = numbered(n);

        for (unsigned k = 0; k <= n % 3; k++) {
            gw_conn_count_close(count, (struct sockaddr *)&addr);
        }
    }
    for (unsigned n = 0; n < MANY_ADDRESSES; n++) {
        struct sockaddr_in addr = numbered(n);
        unsigned expected = n % 2 == 0 ? 1 : n % 3 + 2;

        assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&addr),
                         expected);
    }
    gw_conn_count_free(count);
}

static void test_conn_count_full_table_counts_nothing(void **state)
{
    struct gw_conn_count *count = gw_conn_count_new();
    struct sockaddr_in extra = numbered(GW_CONN_COUNT_SLOTS);
    struct sockaddr_in first = numbered(0);

    (void)state;
    for (unsigned n = 0; n < GW_CONN_COUNT_SLOTS; n++) {
        struct sockaddr_in addr = numbered(n);

        assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&addr),
                         1);
    }
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&extra), 0);
    /* Addresses already in the table are still counted. */
    assert_int_equal(gw_conn_count_open(count, (struct sockaddr *)&first), 2);
    gw_conn_count_free(count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_count_counts_per_address),
        cmocka_unit_test(test_conn_count_frees_address_at_zero),
        cmocka_unit_test(test_conn_count_maps_ipv4_in_ipv6),
        cmocka_unit_test(test_conn_count_ignores_other_families),
        cmocka_unit_test(test_conn_count_survives_removals_in_runs),
        cmocka_unit_test(test_conn_count_full_table_counts_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

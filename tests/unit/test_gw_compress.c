/* Tests for gzip of sealed response envelopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gw_compress.h"
#include "gw_request.h"

static void test_gzip_round_trips_through_zlib(void **state)
{
    char in[4096];
    unsigned char *out = NULL;
    size_t out_len = 0;
    unsigned char back[sizeof(in)];
    z_stream z = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = "ABCDEFGHabcdefgh-_"[i % 18];
    }
    assert_int_equal(gw_gzip(in, sizeof(in), &out, &out_len), CJ_OK);
    assert_true(out_len < sizeof(in));
    /* gzip magic bytes (RFC 1952 section 2.3.1). */
    assert_int_equal(out[0], 0x1f);
    assert_int_equal(out[1], 0x8b);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = out;
    z.avail_in = (uInt)out_len;
    z.next_out = back;
    z.avail_out = sizeof(back);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof(in));
    assert_memory_equal(back, in, sizeof(in));
    inflateEnd(&z);
    free(out);
}

/* Fills `buf` with text that repeats at long distances, like the
 * base64url ciphertext of an envelope repeats its JSON framing. */
static void fill_text(unsigned char *buf, size_t len)
{
    unsigned seed = 12345;

    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (i % 700 < 100) ? (unsigned char)"{\"sealed\":\""[i % 11]
                                 : (unsigned char)('A' + (seed >> 16) % 64);
    }
}

/* Every window size deflate picks, from the smallest to the default, makes
 * a gzip stream that a default inflate (32 KiB window) reads back. */
static void test_gzip_round_trips_at_every_size(void **state)
{
    static const size_t sizes[] = {1,    511,  512,   513,   1024,  1500,
                                   2048, 4097, 16384, 32768, 32769, 200000};

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        unsigned char *in = malloc(len);
        unsigned char *back = malloc(len + 1);
        unsigned char *out = NULL;
        size_t out_len = 0;
        z_stream z = {0};

        assert_non_null(in);
        assert_non_null(back);
        fill_text(in, len);
        assert_int_equal(gw_gzip(in, len, &out, &out_len), CJ_OK);
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = out;
        z.avail_in = (uInt)out_len;
        z.next_out = back;
        z.avail_out = (uInt)(len + 1);
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, len);
        assert_memory_equal(back, in, len);
        inflateEnd(&z);
        free(out);
        free(back);
        free(in);
    }
}

static void test_gzip_of_empty_input_is_valid(void **state)
{
    unsigned char *out = NULL;
    size_t out_len = 0;

    (void)state;
    assert_int_equal(gw_gzip("", 0, &out, &out_len), CJ_OK);
    assert_true(out_len >= 18);
    free(out);
}

static void test_reply_compress_skips_plain_and_small(void **state)
{
    struct gw_request req = {.accepts_gzip = true};
    struct gw_reply reply = {0};
    char *body = malloc(4096);

    (void)state;
    memset(body, 'a', 4096);
    reply.body = body;
    reply.body_len = 4096;
    /* Plain JSON is never compressed. */
    gw_reply_compress(&req, &reply);
    assert_false(reply.gzipped);
    assert_int_equal(reply.body_len, 4096);
    /* Sealed but the client did not ask. */
    reply.sealed = true;
    req.accepts_gzip = false;
    gw_reply_compress(&req, &reply);
    assert_false(reply.gzipped);
    /* Sealed and small. */
    req.accepts_gzip = true;
    reply.body_len = GW_GZIP_THRESHOLD_BYTES - 1;
    gw_reply_compress(&req, &reply);
    assert_false(reply.gzipped);
    /* Sealed, large, accepted. */
    reply.body_len = 4096;
    gw_reply_compress(&req, &reply);
    assert_true(reply.gzipped);
    assert_true(reply.body_len < 4096);
    assert_int_equal((unsigned char)reply.body[0], 0x1f);
    free(reply.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_round_trips_through_zlib),
        cmocka_unit_test(test_gzip_round_trips_at_every_size),
        cmocka_unit_test(test_gzip_of_empty_input_is_valid),
        cmocka_unit_test(test_reply_compress_skips_plain_and_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * One-shot gzip through zlib's deflate with the gzip wrapper.
 */
#include "gw_compress.h"

#include "gw_request.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

/* Adding 16 to windowBits makes deflate write a gzip header and trailer. */
#define GW_GZIP_WRAPPER_BITS 16
/* zlib's range of windowBits for deflate (9 to 15, a 512 byte to 32 KiB
 * window), and its default memory level. */
#define GW_GZIP_WINDOW_BITS_MIN 9
#define GW_GZIP_WINDOW_BITS_MAX 15
#define GW_GZIP_MEM_LEVEL_MAX   8
/* memLevel is windowBits minus this, at most GW_GZIP_MEM_LEVEL_MAX. In a
 * loop of 5000 calls with zlib 1.2.13, random base64 text of 1.5 and 3 KB
 * then compressed to the same size as at the defaults, in a quarter to a
 * third of the CPU time. */
#define GW_GZIP_MEM_LEVEL_OFFSET 6

/*
 * Returns the smallest windowBits whose window covers `in_len` bytes, at
 * most GW_GZIP_WINDOW_BITS_MAX. A larger window finds no more matches, but
 * deflateInit2 allocates and clears its tables at full size (about 256 KiB
 * at the defaults), which costs more than compressing a 2 KiB envelope.
 */
static int gw_gzip_window_bits(size_t in_len)
{
    int bits = GW_GZIP_WINDOW_BITS_MIN;

    while (bits < GW_GZIP_WINDOW_BITS_MAX && ((size_t)1 << bits) < in_len) {
        bits++;
    }
    return bits;
}

enum cj_status gw_gzip(const void *in, size_t in_len, unsigned char **out,
                       size_t *out_len)
{
    z_stream stream = {0};
    unsigned char *buf = NULL;
    size_t cap;
    enum cj_status status = CJ_ERR_INTERNAL;
    bool initialized = false;
    int window_bits = gw_gzip_window_bits(in_len);
    int mem_level = window_bits - GW_GZIP_MEM_LEVEL_OFFSET;

    *out = NULL;
    *out_len = 0;
    if (in_len > UINT32_MAX / 2) {
        return CJ_ERR_TOO_LARGE;
    }
    if (mem_level > GW_GZIP_MEM_LEVEL_MAX) {
        mem_level = GW_GZIP_MEM_LEVEL_MAX;
    }
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     window_bits + GW_GZIP_WRAPPER_BITS, mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        goto out;
    }
    initialized = true;
    /* deflateBound covers the zlib wrapper; the gzip one is 12 bytes more. */
    cap = deflateBound(&stream, (uLong)in_len) + 12;
    buf = malloc(cap);
    if (buf == NULL) {
        status = CJ_ERR_NOMEM;
        goto out;
    }
    stream.next_in = (Bytef *)in;
    stream.avail_in = (uInt)in_len;
    stream.next_out = buf;
    stream.avail_out = (uInt)cap;
    if (deflate(&stream, Z_FINISH) != Z_STREAM_END) {
        goto out;
    }
    *out = buf;
    *out_len = cap - stream.avail_out;
    buf = NULL;
    status = CJ_OK;

out:
    if (initialized) {
        deflateEnd(&stream);
    }
    free(buf);
    return status;
}

void gw_reply_compress(const struct gw_request *req, struct gw_reply *reply)
{
    unsigned char *packed = NULL;
    size_t packed_len = 0;

    if (!reply->sealed || reply->gzipped || !req->accepts_gzip ||
        reply->body_len < GW_GZIP_THRESHOLD_BYTES) {
        return;
    }
    if (gw_gzip(reply->body, reply->body_len, &packed, &packed_len) != CJ_OK) {
        return; /* sent uncompressed: still sealed */
    }
    free(reply->body);
    reply->body = (char *)packed;
    reply->body_len = packed_len;
    reply->gzipped = true;
}

/*
 * One-shot gzip through zlib's deflate with the gzip wrapper.
 */
#include "gw_compress.h"

#include "gw_request.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

/* windowBits 15 plus 16 makes deflate write a gzip header and trailer. */
#define GW_GZIP_WINDOW_BITS (15 + 16)
/* zlib's default memory level. */
#define GW_GZIP_MEM_LEVEL 8

enum cj_status gw_gzip(const void *in, size_t in_len, unsigned char **out,
                       size_t *out_len)
{
    z_stream stream = {0};
    unsigned char *buf = NULL;
    size_t cap;
    enum cj_status status = CJ_ERR_INTERNAL;
    bool initialized = false;

    *out = NULL;
    *out_len = 0;
    if (in_len > UINT32_MAX / 2) {
        return CJ_ERR_TOO_LARGE;
    }
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                     GW_GZIP_WINDOW_BITS, GW_GZIP_MEM_LEVEL,
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

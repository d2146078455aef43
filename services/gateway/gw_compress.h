/*
 * gzip (RFC 1952) of sealed response envelopes. Plaintext is never
 * compressed before sealing: compression before encryption leaks content
 * through the ciphertext's length.
 */
#ifndef GW_COMPRESS_H
#define GW_COMPRESS_H

#include <stddef.h>

#include "status.h"

/* Compresses `in` into a new malloc'd buffer (*out, *out_len); the caller
 * frees it. Returns CJ_ERR_NOMEM or CJ_ERR_INTERNAL on a zlib failure. */
CJ_WARN_UNUSED enum cj_status gw_gzip(const void *in, size_t in_len,
                                      unsigned char **out, size_t *out_len);

#endif

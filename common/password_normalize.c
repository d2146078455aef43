/*
 * NFKC normalization of passwords with utf8proc, done in buffers this
 * file owns so that every copy of the password can be wiped.
 * utf8proc_map would leave its intermediate buffers unwiped in freed heap.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "crypto_util.h"
#include "password.h"

/* utf8proc's NFKC (utf8proc_NFKC) without UTF8PROC_NULLTERM, because the
 * length is given. */
#define NFKC_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT)

enum cj_status cj_password_normalize(const char *password, size_t password_len,
                                     char out[CJ_PASSWORD_MAX_BYTES + 1],
                                     size_t *out_len)
{
    const utf8proc_uint8_t *in = (const utf8proc_uint8_t *)password;
    utf8proc_int32_t *code_points = NULL;
    size_t buffer_bytes = 0;
    utf8proc_ssize_t count;
    utf8proc_ssize_t written;
    enum cj_status rc = CJ_ERR_INVALID;

    *out_len = 0;
    out[0] = '\0';
    if (password_len > CJ_PASSWORD_MAX_BYTES) {
        return CJ_ERR_TOO_LARGE;
    }
    if (memchr(password, '\0', password_len) != NULL) {
        return CJ_ERR_INVALID;
    }
    /* A first pass with no buffer returns the decomposed length, or a
     * negative error for invalid UTF-8 (overlongs and surrogates too). */
    count = utf8proc_decompose(in, (utf8proc_ssize_t)password_len, NULL, 0,
                               NFKC_OPTIONS);
    if (count < 0) {
        goto out;
    }
    /* utf8proc_reencode writes UTF-8 in place and needs one extra unit
     * for the terminating NUL. */
    buffer_bytes = ((size_t)count + 1) * sizeof(*code_points);
    code_points = malloc(buffer_bytes);
    if (code_points == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    count = utf8proc_decompose(in, (utf8proc_ssize_t)password_len, code_points,
                               count, NFKC_OPTIONS);
    written =
        count < 0 ? count : utf8proc_reencode(code_points, count, NFKC_OPTIONS);
    if (written < 0) {
        rc = CJ_ERR_INTERNAL;
        goto out;
    }
    if ((size_t)written > CJ_PASSWORD_MAX_BYTES) {
        rc = CJ_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(out, code_points, (size_t)written);
    out[written] = '\0';
    *out_len = (size_t)written;
    rc = CJ_OK;
out:
    if (code_points != NULL) {
        cj_wipe(code_points, buffer_bytes);
        free(code_points);
    }
    return rc;
}

/*
 * Helpers for the JWS and JWT tests: base64url text and compact tokens
 * built by hand, for inputs that the signing API never produces.
 */
#ifndef CJ_TEST_JOSE_HELPER_H
#define CJ_TEST_JOSE_HELPER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jose.h"

/* Returns the unpadded base64url form of text, which the caller frees. */
static inline char *b64url_text(const char *text)
{
    char *out = NULL;

    assert_int_equal(
        cj_jose_b64url_encode((const unsigned char *)text, strlen(text), &out),
        CJ_OK);
    return out;
}

/*
 * Builds "b64url(header).b64url(payload).sig_b64" without any key, for
 * decode tests and forged algorithms. The caller frees the result.
 */
static inline char *unsigned_token(const char *header, const char *payload,
                                   const char *sig_b64)
{
    char *h = b64url_text(header);
    char *p = b64url_text(payload);
    size_t size = strlen(h) + strlen(p) + strlen(sig_b64) + sizeof("..");
    char *token = malloc(size);

    assert_non_null(token);
    snprintf(token, size, "%s.%s.%s", h, p, sig_b64);
    free(h);
    free(p);
    return token;
}

#endif

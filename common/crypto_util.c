/*
 * libsodium start-up, random bytes, constant-time helpers and guarded
 * secret memory.
 */
#include "crypto_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void init_sodium(void)
{
    /* sodium_init returns 0 on first success and 1 when already done. */
    init_result = sodium_init() < 0 ? -1 : 0;
}

enum cj_status cj_crypto_init(void)
{
    pthread_once(&init_once, init_sodium);
    return init_result == 0 ? CJ_OK : CJ_ERR_INTERNAL;
}

enum cj_status cj_openssl_skip_error_strings(void)
{
    /* Only libcrypto's strings. libssl loads its own only for
     * OPENSSL_INIT_LOAD_SSL_STRINGS, and OPENSSL_init_ssl would initialize
     * libssl even in a process that never uses TLS.
     * NOTE: that no caller asks for the libssl strings was checked with gdb
     * in a kms with plaintext gRPC only, not with TLS. */
    int ok = OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
    return ok == 1 ? CJ_OK : CJ_ERR_INTERNAL;
}

void cj_random_bytes(void *buf, size_t len)
{
    if (cj_crypto_init() != CJ_OK) {
        /* Without a working CSPRNG no key may be made: stop at once. */
        abort();
    }
    randombytes_buf(buf, len);
}

bool cj_ct_equal(const void *a, const void *b, size_t len)
{
    if (len == 0) {
        return true;
    }
    return sodium_memcmp(a, b, len) == 0;
}

bool cj_ct_is_zero(const void *buf, size_t len)
{
    return sodium_is_zero(buf, len) == 1;
}

void cj_wipe(void *buf, size_t len)
{
    if (buf != NULL && len > 0) {
        sodium_memzero(buf, len);
    }
}

struct cj_secret *cj_secret_new(size_t len)
{
    if (len == 0 || cj_crypto_init() != CJ_OK) {
        return NULL;
    }
    struct cj_secret *secret = calloc(1, sizeof(*secret));
    if (secret == NULL) {
        return NULL;
    }
    secret->bytes = sodium_malloc(len);
    if (secret->bytes == NULL) {
        free(secret);
        return NULL;
    }
    sodium_memzero(secret->bytes, len);
    secret->len = len;
    return secret;
}

struct cj_secret *cj_secret_from(const void *src, size_t len)
{
    struct cj_secret *secret = cj_secret_new(len);
    if (secret != NULL) {
        memcpy(secret->bytes, src, len);
    }
    return secret;
}

void cj_secret_free(struct cj_secret *secret)
{
    if (secret == NULL) {
        return;
    }
    /* sodium_free wipes the region before unmapping it. */
    sodium_free(secret->bytes);
    free(secret);
}

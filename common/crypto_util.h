/*
 * Crypto utilities shared by every cerrojo module: libsodium start-up,
 * secure random bytes, constant-time comparison, wiping, and secret memory
 * (sodium_malloc) for keys that live longer than one call.
 */
#ifndef CJ_CRYPTO_UTIL_H
#define CJ_CRYPTO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/*
 * Initializes libsodium once per process (thread-safe, idempotent). Each
 * binary's main() should call it before starting threads, so that a failure
 * stops the process at start. cj_random_bytes(), cj_secret_new() and the
 * X25519 functions call it too, so a caller that forgets still gets an
 * initialized libsodium.
 */
enum cj_status cj_crypto_init(void) CJ_WARN_UNUSED;

/*
 * Keeps OpenSSL from loading its error strings, which OpenSSL 3 otherwise
 * loads the first time any thread records an error. Each service calls it
 * first in main(), before anything uses OpenSSL. Afterwards
 * ERR_reason_error_string() returns NULL and ERR_error_string_n() writes
 * the numeric library and reason codes, which `openssl errstr CODE`
 * decodes. No cerrojo code formats OpenSSL errors.
 */
enum cj_status cj_openssl_skip_error_strings(void) CJ_WARN_UNUSED;

/* Fills buf with len bytes from the operating system's CSPRNG. */
void cj_random_bytes(void *buf, size_t len);

/* Compares two buffers of len bytes in time independent of their content. */
bool cj_ct_equal(const void *a, const void *b, size_t len);

/* Returns true when all len bytes are zero, in constant time. */
bool cj_ct_is_zero(const void *buf, size_t len);

/* Overwrites len bytes with zeros in a way the compiler cannot drop. */
void cj_wipe(void *buf, size_t len);

/*
 * A long-lived secret in guarded, locked memory (sodium_malloc): guard pages
 * around it, excluded from core dumps where the system allows, wiped when
 * freed.
 */
struct cj_secret {
    unsigned char *bytes;
    size_t len;
};

/* Returns a new zero-filled secret of len (>= 1) bytes, or NULL. Free it
 * with cj_secret_free(). */
struct cj_secret *cj_secret_new(size_t len);

/* Returns a new secret holding a copy of len bytes of src, or NULL. */
struct cj_secret *cj_secret_from(const void *src, size_t len);

/* Wipes and frees a secret; accepts NULL. */
void cj_secret_free(struct cj_secret *secret);

#endif

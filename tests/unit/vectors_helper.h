/*
 * Helpers for the crypto tests: locate the published test vectors, load a
 * JSON vector file, and decode hex. The vectors folder comes from
 * CERROJO_VECTORS, defaulting to CJ_VECTORS_DEFAULT.
 */
#ifndef CJ_TEST_VECTORS_HELPER_H
#define CJ_TEST_VECTORS_HELPER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

static inline const char *vectors_dir(void)
{
    const char *dir = getenv("CERROJO_VECTORS");
    return (dir != NULL && dir[0] != '\0') ? dir : CJ_VECTORS_DEFAULT;
}

/* Returns true when the vectors folder exists; prints a loud notice when it
 * does not, so a skipped vector test is never silent. */
static inline bool vectors_available(const char *what)
{
    struct stat st;
    if (stat(vectors_dir(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return true;
    }
    fprintf(stderr,
            "\n*** VECTOR TESTS SKIPPED (%s): folder %s not found; set "
            "CERROJO_VECTORS to the test vectors folder. Built-in "
            "known-answer tests still ran. ***\n\n",
            what, vectors_dir());
    return false;
}

/* Loads vectors_dir()/relpath; returns NULL when the file does not exist
 * and aborts the test on a parse error. */
static inline json_t *load_vector_file(const char *relpath)
{
    char path[4096];
    struct stat st;
    json_error_t err;

    snprintf(path, sizeof(path), "%s/%s", vectors_dir(), relpath);
    if (stat(path, &st) != 0) {
        return NULL;
    }
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fprintf(stderr, "cannot parse %s: %s (line %d)\n", path, err.text,
                err.line);
        abort();
    }
    return root;
}

static inline int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes a hex string into a new buffer (at least 1 byte allocated) and
 * stores its length; aborts on invalid hex. The caller frees it. */
static inline uint8_t *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0) {
        fprintf(stderr, "odd-length hex: %s\n", hex);
        abort();
    }
    uint8_t *out = malloc(n / 2 + 1);
    if (out == NULL) {
        abort();
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_nibble(hex[2 * i]);
        int lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "invalid hex: %s\n", hex);
            abort();
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

/* Decodes hex that must be exactly want bytes into out; aborts otherwise. */
static inline void hex_to(uint8_t *out, size_t want, const char *hex)
{
    size_t len = 0;
    uint8_t *buf = hex_decode(hex, &len);
    if (len != want) {
        fprintf(stderr, "hex %s: %zu bytes, expected %zu\n", hex, len, want);
        abort();
    }
    memcpy(out, buf, len);
    free(buf);
}

/* Decodes the hex string member `key` of obj into a new buffer. */
static inline uint8_t *json_hex(const json_t *obj, const char *key, size_t *len)
{
    const char *hex = json_string_value(json_object_get(obj, key));
    if (hex == NULL) {
        fprintf(stderr, "vector field %s missing\n", key);
        abort();
    }
    return hex_decode(hex, len);
}

static inline bool bytes_equal(const uint8_t *a, size_t a_len, const uint8_t *b,
                               size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

#endif

/*
 * Test helpers for published vectors: where the vector folder is
 * (CERROJO_VECTORS, else the build's default), a loud notice when it is
 * absent, and JSON and hex readers. Header-only so each test stays one
 * executable.
 */
#ifndef CJ_TEST_VECTORS_H
#define CJ_TEST_VECTORS_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CJ_VECTORS_DEFAULT
#define CJ_VECTORS_DEFAULT "../shared/vectors"
#endif

/* Returns the vector folder, or NULL after printing that tests skip. */
static inline const char *cj_test_vectors_dir(const char *suite)
{
    const char *dir = getenv("CERROJO_VECTORS");
    struct stat st;

    if (dir == NULL || dir[0] == '\0') {
        dir = CJ_VECTORS_DEFAULT;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "\n*** %s: VECTOR TESTS SKIPPED: no vector folder at %s "
                "(set CERROJO_VECTORS) ***\n\n",
                suite, dir);
        return NULL;
    }
    return dir;
}

/* Loads dir/relpath as JSON (a new reference), or NULL with a message. */
static inline json_t *cj_test_load_json(const char *dir, const char *relpath)
{
    char path[4096];
    json_error_t error;
    json_t *root;

    snprintf(path, sizeof(path), "%s/%s", dir, relpath);
    root = json_load_file(path, 0, &error);
    if (root == NULL) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", path, error.text,
                error.line);
    }
    return root;
}

/* Decodes lowercase or uppercase hex into a new buffer; NULL on error. */
static inline unsigned char *cj_test_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    unsigned char *out = malloc(n / 2 + 1);

    if (out == NULL || n % 2 != 0) {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int byte;

        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)byte;
    }
    *len = n / 2;
    return out;
}

#endif

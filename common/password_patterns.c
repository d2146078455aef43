/*
 * The name comparison of password_patterns.h.
 */
#include "password_patterns.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* NFKC with case folding, the forms in which auth compares names. */
#define FOLD_OPTIONS                                                           \
    (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)

/* Maps text once with FOLD_OPTIONS into a new string; wipes what it frees. */
static enum cj_status fold_once(const char *text, size_t len, char **out)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                     &mapped, (utf8proc_option_t)FOLD_OPTIONS);

    *out = NULL;
    if (n < 0) {
        return n == UTF8PROC_ERROR_NOMEM ? CJ_ERR_NOMEM : CJ_ERR_INVALID;
    }
    *out = (char *)mapped;
    return CJ_OK;
}

enum cj_status cj_password_fold(const char *text, size_t len, char **out)
{
    char *once = NULL;
    enum cj_status rc = fold_once(text, len, &once);

    *out = NULL;
    if (rc != CJ_OK) {
        return rc;
    }
    /* Twice, because case folding can produce text that NFKC changes
     * again, as auth_names.c does for names. */
    rc = fold_once(once, strlen(once), out);
    cj_password_folded_free(once);
    return rc;
}

void cj_password_folded_free(char *folded)
{
    if (folded != NULL) {
        sodium_memzero(folded, strlen(folded));
        free(folded);
    }
}

/* Counts the code points of valid UTF-8. */
static size_t code_points_of(const char *text)
{
    size_t count = 0;

    for (const char *p = text; *p != '\0'; p++) {
        if (((unsigned char)*p & 0xc0) != 0x80) {
            count++;
        }
    }
    return count;
}

/* Sets *contains when folded_password contains the folded form of the
 * first len bytes of name, and that form is long enough to count. */
static enum cj_status contains_folded(const char *folded_password,
                                      const char *name, size_t len,
                                      bool *contains)
{
    char *folded_name = NULL;
    enum cj_status rc = cj_password_fold(name, len, &folded_name);

    if (rc == CJ_ERR_INVALID) {
        /* A name that is not valid UTF-8 cannot appear in a password that
         * is, so there is nothing to compare. */
        return CJ_OK;
    }
    if (rc != CJ_OK) {
        return rc;
    }
    if (code_points_of(folded_name) >= CJ_PASSWORD_NAME_MIN_CODE_POINTS &&
        strstr(folded_password, folded_name) != NULL) {
        *contains = true;
    }
    cj_password_folded_free(folded_name);
    return CJ_OK;
}

enum cj_status cj_password_contains_names(const char *password, size_t len,
                                          const char *username,
                                          const char *email, bool *contains)
{
    char *folded_password = NULL;
    const char *at = email != NULL ? strrchr(email, '@') : NULL;
    enum cj_status rc;

    *contains = false;
    rc = cj_password_fold(password, len, &folded_password);
    if (rc == CJ_ERR_INVALID) {
        /* The policy checks the password's UTF-8 before this rule. */
        return CJ_ERR_INTERNAL;
    }
    if (rc == CJ_OK && username != NULL) {
        rc = contains_folded(folded_password, username, strlen(username),
                             contains);
    }
    if (rc == CJ_OK && email != NULL) {
        rc = contains_folded(folded_password, email,
                             at != NULL ? (size_t)(at - email) : strlen(email),
                             contains);
    }
    cj_password_folded_free(folded_password);
    return rc;
}

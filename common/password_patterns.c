/*
 * The name comparison, substitutions and runs of password_patterns.h.
 */
#include "password_patterns.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* NFKC with case folding, the forms in which auth compares names. */
#define FOLD_OPTIONS                                                           \
    (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD)

/* The sequences that a run steps through. Each contains a character at
 * most once, so a character's position in it is unique. */
static const char *const run_sequences[] = {
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "abcdefghijklmnopqrstuvwxyz",
    "1qaz",
    "2wsx",
    "3edc",
    "4rfv",
    "5tgb",
    "6yhn",
    "7ujm",
    "8ik,",
    "9ol.",
    "0p;/",
    "~!@#$%^&*()_+", /* the digit row with shift held */
};

#define RUN_SEQUENCE_COUNT (sizeof(run_sequences) / sizeof(run_sequences[0]))

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool cj_password_is_letter(char c)
{
    c = ascii_lower(c);
    return c >= 'a' && c <= 'z';
}

static char undo_substitution(char c, unsigned variant)
{
    switch (c) {
    case '4':
    case '@':
        return 'a';
    case '3':
        return 'e';
    case '0':
        return 'o';
    case '5':
    case '$':
        return 's';
    case '7':
        return 't';
    case '1':
        return variant == 0 ? 'i' : 'l';
    default:
        return ascii_lower(c);
    }
}

void cj_password_undo_substitutions(const char *password, size_t len,
                                    unsigned variant, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[i] = undo_substitution(password[i], variant);
    }
}

/* Returns true when b follows a in sequence at the given step (+1 or -1). */
static bool steps_in(const char *sequence, char a, char b, int step)
{
    const char *pa = a != '\0' ? strchr(sequence, a) : NULL;
    const char *pb = b != '\0' ? strchr(sequence, b) : NULL;

    return pa != NULL && pb != NULL && pb - pa == step;
}

/* Returns the length of the longest run that starts at text[start]. */
static size_t run_length_at(const char *text, size_t len, size_t start)
{
    size_t longest = 1;
    size_t end = start;

    while (end + 1 < len &&
           ascii_lower(text[end]) == ascii_lower(text[end + 1])) {
        end++;
    }
    longest = end - start + 1;
    for (size_t s = 0; s < RUN_SEQUENCE_COUNT; s++) {
        for (int step = -1; step <= 1; step += 2) {
            end = start;
            while (end + 1 < len &&
                   steps_in(run_sequences[s], ascii_lower(text[end]),
                            ascii_lower(text[end + 1]), step)) {
                end++;
            }
            if (end - start + 1 > longest) {
                longest = end - start + 1;
            }
        }
    }
    return longest;
}

bool cj_password_mostly_runs(const char *password, size_t len)
{
    size_t covered = 0;
    size_t i = 0;

    while (i < len) {
        size_t run = run_length_at(password, len, i);

        if (run >= CJ_PASSWORD_RUN_MIN_CHARS) {
            covered += run;
            i += run;
        } else {
            i++;
        }
    }
    return len > 0 && covered * 2 >= len;
}

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

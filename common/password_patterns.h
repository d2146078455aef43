/*
 * Guessable patterns in a password that cracklib misses. The password is
 * compared with the account's names in case-folded form, its runs of
 * adjacent keys, consecutive letters or digits and repeated characters are
 * counted, and its look-alike substitutions are undone before a dictionary
 * lookup. password_policy.c applies these as rules 5, 7 and 8.
 */
#ifndef CJ_PASSWORD_PATTERNS_H
#define CJ_PASSWORD_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Shorter usernames and email local parts are common inside other words,
 * so cj_password_contains_names skips them. */
#define CJ_PASSWORD_NAME_MIN_CODE_POINTS 4

/* Number of ways to undo the substitutions: "1" is read as "i" in the
 * first and as "l" in the second. */
#define CJ_PASSWORD_SUBSTITUTION_VARIANTS 2
/* A run counts from this many characters ("qwe", "abc", "321", "aaa"). */
#define CJ_PASSWORD_RUN_MIN_CHARS 3

/*
 * Writes len bytes to out: password with ASCII letters lower-cased and
 * common look-alike substitutions undone. These are "4" and "@" to "a", "3"
 * to "e", "0" to "o", "5" and "$" to "s", "7" to "t", and "1" to "i" or "l"
 * as variant selects. Every other byte is copied unchanged, so offsets in
 * out match those in password.
 */
void cj_password_undo_substitutions(const char *password, size_t len,
                                    unsigned variant, char *out);

/* Returns true for an ASCII letter. */
bool cj_password_is_letter(char c);

/*
 * Returns true when at least half of the password's bytes lie in runs of
 * CJ_PASSWORD_RUN_MIN_CHARS or more characters, compared without case, that
 * step through one of these sequences in either direction or repeat one
 * character: a QWERTY keyboard row ("qwertyuiop", "asdfghjkl", "zxcvbnm"),
 * a keyboard column ("1qaz", "2wsx", ...), the digit row with shift held
 * ("~!@#$%^&*()_+"), the digits "1234567890" or the alphabet. Runs are
 * taken greedily from the left.
 */
bool cj_password_mostly_runs(const char *password, size_t len);

/*
 * Folds len bytes of UTF-8 text to NFKC with case folding, applied twice
 * as auth_names.c folds names, into a new string that the caller releases
 * with cj_password_folded_free. CJ_ERR_INVALID for invalid UTF-8,
 * CJ_ERR_NOMEM.
 */
CJ_WARN_UNUSED enum cj_status cj_password_fold(const char *text, size_t len,
                                               char **out);

/* Wipes and frees a string from cj_password_fold; NULL is ignored. */
void cj_password_folded_free(char *folded);

/*
 * Sets *contains when the folded password contains the folded username or
 * the folded local part of email (the text before its last "@"), counting
 * only a name of at least CJ_PASSWORD_NAME_MIN_CODE_POINTS code points
 * once folded. username and email may be NULL, and a name that is not
 * valid UTF-8 is skipped. CJ_ERR_INTERNAL when the password is not valid
 * UTF-8, CJ_ERR_NOMEM.
 */
CJ_WARN_UNUSED enum cj_status cj_password_contains_names(const char *password,
                                                         size_t len,
                                                         const char *username,
                                                         const char *email,
                                                         bool *contains);

#endif

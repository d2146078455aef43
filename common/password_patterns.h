/*
 * Guessable patterns in a password that cracklib misses: the password is
 * compared with the account's names in case-folded form.
 * password_policy.c applies this as rule 5.
 */
#ifndef CJ_PASSWORD_PATTERNS_H
#define CJ_PASSWORD_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Shorter usernames and email local parts are common inside other words,
 * so cj_password_contains_names skips them. */
#define CJ_PASSWORD_NAME_MIN_CODE_POINTS 4

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

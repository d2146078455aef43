/*
 * Usernames and email addresses: the rules a new name must meet, and the
 * normalized forms (NFKC with case folding, plus the Unicode TS #39
 * confusable skeleton for usernames) that auth compares and indexes.
 */
#ifndef AUTH_NAMES_H
#define AUTH_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Input longer than this is rejected before any Unicode processing. */
#define AUTH_USERNAME_MAX_INPUT_BYTES 128
/* Length of the normalized username, in code points. */
#define AUTH_USERNAME_MIN_CHARS 3
#define AUTH_USERNAME_MAX_CHARS 32
/* RFC 5321 section 4.5.3.1: path 256 octets less the brackets, local part
 * 64 octets, domain 255 (a label 63). */
#define AUTH_EMAIL_MAX_BYTES       254
#define AUTH_EMAIL_LOCAL_MAX_BYTES 64
#define AUTH_EMAIL_LABEL_MAX_BYTES 63
/* A login name (username or email) longer than this cannot match a user. */
#define AUTH_LOGIN_MAX_INPUT_BYTES 256
/* Room for any normalized or skeleton form of an accepted input: NFKC and
 * case folding can expand a code point to at most 18 code points of 4
 * bytes, but accepted names are bounded far below that by the character
 * rules; the functions fail with CJ_ERR_INVALID rather than truncate. */
#define AUTH_NAME_BUF_BYTES 1024

struct auth_username {
    char display[AUTH_NAME_BUF_BYTES]; /* NFC of the input, for display */
    char norm[AUTH_NAME_BUF_BYTES];    /* NFKC with case folding */
    /* Look-alike key of norm: equal for names that differ only in case or
     * in Unicode TS #39 confusables (stored as username_skeleton). */
    char skeleton[AUTH_NAME_BUF_BYTES];
};

struct auth_email {
    char display[AUTH_NAME_BUF_BYTES]; /* NFC of the input */
    char norm[AUTH_NAME_BUF_BYTES];    /* NFKC with case folding */
};

/*
 * Checks a requested username and fills its forms. The rules, in order:
 * at most AUTH_USERNAME_MAX_INPUT_BYTES of valid UTF-8; no control, format,
 * surrogate, private-use, unassigned, separator or default-ignorable code
 * point; after NFKC and case folding only letters, combining marks, decimal
 * digits and the punctuation ". _ -", starting and ending with a letter or
 * digit, AUTH_USERNAME_MIN_CHARS to AUTH_USERNAME_MAX_CHARS code points;
 * no mix of scripts beyond ICU's moderately restrictive level (Latin with
 * one other script, never Cyrillic or Greek) and no mix of digit sets. On
 * failure *reason (static text, fit for the client) says which rule.
 */
enum cj_status auth_username_parse(const char *input, size_t len,
                                   struct auth_username *out,
                                   const char **reason) CJ_WARN_UNUSED;

/*
 * Checks an email address and fills its forms. Rules: at most
 * AUTH_EMAIL_MAX_BYTES of valid UTF-8 without control, space or invisible
 * code points; one '@' (quoted local parts are not accepted); a local part
 * of 1 to AUTH_EMAIL_LOCAL_MAX_BYTES bytes of letters, digits and the
 * RFC 5322 atext symbols, with dots only between other characters; a
 * domain of at least two dot-separated labels of letters, digits and
 * inner hyphens, each 1 to AUTH_EMAIL_LABEL_MAX_BYTES bytes, the last not
 * all digits. Internationalized domains are compared in their Unicode
 * form: "xn--" labels are decoded first (auth_idn.h), so both spellings
 * of a domain give one normalized address, and a label that does not
 * decode is rejected.
 */
enum cj_status auth_email_parse(const char *input, size_t len,
                                struct auth_email *out,
                                const char **reason) CJ_WARN_UNUSED;

/*
 * Normalizes a login name (username or email) for lookup: "xn--" domain
 * labels decoded as auth_email_parse does, then NFKC with case folding,
 * no other rule, since a name that breaks the rules simply matches no
 * user. Returns CJ_ERR_INVALID for input that is not valid
 * UTF-8, is longer than AUTH_LOGIN_MAX_INPUT_BYTES or does not fit out.
 */
enum cj_status auth_login_normalize(const char *input, size_t len, char *out,
                                    size_t out_size) CJ_WARN_UNUSED;

#endif

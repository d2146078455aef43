/*
 * Username and email rules and normalized forms. Normalization is utf8proc
 * (NFKC with case folding); the confusable skeleton and the script-mixing
 * check are ICU's spoof checker (Unicode TS #39).
 */
#include "auth_names.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uspoof.h>
#include <utf8proc.h>

#include "auth_idn.h"

/* Characters allowed in a username besides letters, marks and digits. */
#define USERNAME_PUNCTUATION "._-"
/* RFC 5322 section 3.2.3 atext symbols, allowed in an email local part. */
#define EMAIL_ATEXT_SYMBOLS "!#$%&'*+-/=?^_`{|}~"

/* Client-facing reasons for the checks that both names share. */
struct visible_reasons {
    const char *invalid;
    const char *invisible;
    const char *space;
};

static const struct visible_reasons username_reasons = {
    .invalid = "username is not valid UTF-8",
    .invisible = "username contains an invisible or control character",
    .space = "username contains a space",
};
static const struct visible_reasons email_reasons = {
    .invalid = "email is not valid UTF-8",
    .invisible = "email contains an invisible or control character",
    .space = "email contains a space",
};

static USpoofChecker *spoof_checker;
static pthread_once_t spoof_once = PTHREAD_ONCE_INIT;

/* ICU documents a configured checker as safe for concurrent checks. */
static void spoof_checker_open(void)
{
    UErrorCode err = U_ZERO_ERROR;
    USpoofChecker *sc = uspoof_open(&err);

    if (U_FAILURE(err)) {
        return;
    }
    uspoof_setRestrictionLevel(sc, USPOOF_MODERATELY_RESTRICTIVE);
    uspoof_setChecks(
        sc, USPOOF_RESTRICTION_LEVEL | USPOOF_INVISIBLE | USPOOF_MIXED_NUMBERS,
        &err);
    if (U_FAILURE(err)) {
        uspoof_close(sc);
        return;
    }
    spoof_checker = sc;
}

static const USpoofChecker *spoof_checker_get(void)
{
    pthread_once(&spoof_once, spoof_checker_open);
    return spoof_checker;
}

/*
 * Rejects code points that are invisible or never belong in a name:
 * controls, format characters (zero-width joiners, bidi controls),
 * surrogates, private use, unassigned, line and paragraph separators, and
 * every default-ignorable code point. Spaces are reported separately.
 */
static bool is_invisible_or_control(utf8proc_int32_t cp)
{
    const utf8proc_property_t *prop = utf8proc_get_property(cp);

    if (prop->ignorable) {
        return true;
    }
    switch (prop->category) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return true;
    default:
        return false;
    }
}

static bool is_letter_or_digit(utf8proc_int32_t cp)
{
    switch (utf8proc_get_property(cp)->category) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
        return true;
    default:
        return false;
    }
}

static bool is_mark(utf8proc_int32_t cp)
{
    utf8proc_category_t cat = utf8proc_get_property(cp)->category;

    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC ||
           cat == UTF8PROC_CATEGORY_ME;
}

/*
 * Checks every code point of valid UTF-8: no invisible, control or space
 * character. Returns a reason, or NULL when the text passes.
 */
static const char *check_visible(const uint8_t *text, size_t len,
                                 const struct visible_reasons *reasons)
{
    size_t pos = 0;

    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate(text + pos, (utf8proc_ssize_t)(len - pos), &cp);

        if (n <= 0 || cp == 0) {
            return reasons->invalid;
        }
        if (is_invisible_or_control(cp)) {
            return reasons->invisible;
        }
        if (utf8proc_get_property(cp)->category == UTF8PROC_CATEGORY_ZS) {
            return reasons->space;
        }
        pos += (size_t)n;
    }
    return NULL;
}

/*
 * Maps text with utf8proc options into out (NUL-terminated). Fails with
 * CJ_ERR_INVALID on invalid or unassigned input and when out is too small.
 */
static enum cj_status map_into(const char *text, size_t len, int options,
                               char *out, size_t out_size)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n;
    enum cj_status rc = CJ_ERR_INVALID;

    n = utf8proc_map(
        (const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &mapped,
        (utf8proc_option_t)(options | UTF8PROC_STABLE | UTF8PROC_REJECTNA));
    if (n < 0) {
        rc = n == UTF8PROC_ERROR_NOMEM ? CJ_ERR_NOMEM : CJ_ERR_INVALID;
        goto out;
    }
    if ((size_t)n >= out_size) {
        goto out;
    }
    memcpy(out, mapped, (size_t)n);
    out[n] = '\0';
    rc = CJ_OK;
out:
    free(mapped);
    return rc;
}

/*
 * NFKC with case folding. Applied twice, because case folding can produce
 * text that NFKC changes again (the fixed point that Unicode's
 * NFKC_Casefold property describes).
 */
static enum cj_status fold(const char *text, size_t len, char *out,
                           size_t out_size)
{
    const int options = UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD;
    char once[AUTH_NAME_BUF_BYTES];
    enum cj_status rc;

    rc = map_into(text, len, options, once, sizeof(once));
    if (rc != CJ_OK) {
        return rc;
    }
    return map_into(once, strlen(once), options, out, out_size);
}

static enum cj_status nfc(const char *text, size_t len, char *out,
                          size_t out_size)
{
    return map_into(text, len, UTF8PROC_COMPOSE, out, out_size);
}

/* Checks the character rules on a normalized username. */
static const char *check_username_chars(const char *norm)
{
    const uint8_t *text = (const uint8_t *)norm;
    size_t len = strlen(norm);
    size_t pos = 0;
    size_t count = 0;
    utf8proc_int32_t cp = 0;
    bool first = true;

    while (pos < len) {
        utf8proc_ssize_t n =
            utf8proc_iterate(text + pos, (utf8proc_ssize_t)(len - pos), &cp);

        if (n <= 0) {
            return "username is not valid UTF-8";
        }
        if (cp < 0x80 && strchr(USERNAME_PUNCTUATION, (int)cp) != NULL) {
            if (first) {
                return "username must start with a letter or digit";
            }
        } else if (is_mark(cp)) {
            if (first) {
                return "username must start with a letter or digit";
            }
        } else if (!is_letter_or_digit(cp)) {
            return "username may contain only letters, digits and . _ -";
        }
        first = false;
        count++;
        pos += (size_t)n;
    }
    if (count < AUTH_USERNAME_MIN_CHARS) {
        return "username is shorter than 3 characters";
    }
    if (count > AUTH_USERNAME_MAX_CHARS) {
        return "username is longer than 32 characters";
    }
    if (cp < 0x80 && strchr(USERNAME_PUNCTUATION, (int)cp) != NULL) {
        return "username must end with a letter, digit or mark";
    }
    return NULL;
}

/* Runs ICU's look-alike checks (script mixing, invisible characters and
 * digit sets) on a normalized username. */
static const char *spoof_check(const char *norm)
{
    const USpoofChecker *sc = spoof_checker_get();
    UErrorCode err = U_ZERO_ERROR;
    int32_t failed;

    if (sc == NULL) {
        return "username could not be checked";
    }
    failed = uspoof_checkUTF8(sc, norm, -1, NULL, &err);
    if (U_FAILURE(err)) {
        return "username could not be checked";
    }
    if (failed & USPOOF_INVISIBLE) {
        return "username contains an invisible or repeated combining character";
    }
    if (failed & USPOOF_MIXED_NUMBERS) {
        return "username mixes digits of different scripts";
    }
    if (failed & USPOOF_RESTRICTION_LEVEL) {
        return "username mixes scripts in a way that allows look-alikes";
    }
    return NULL;
}

/* Writes ICU's confusable skeleton (uspoof_getSkeleton) of text to out. */
static enum cj_status skeleton_of(const char *text, char *out, size_t out_size)
{
    const USpoofChecker *sc = spoof_checker_get();
    UErrorCode err = U_ZERO_ERROR;
    int32_t n;

    if (sc == NULL) {
        return CJ_ERR_INTERNAL;
    }
    n = uspoof_getSkeletonUTF8(sc, 0, text, -1, out, (int32_t)out_size, &err);
    if (U_FAILURE(err) || n < 0 || (size_t)n >= out_size) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/* Writes text with each code point replaced by its simple uppercase
 * mapping (UnicodeData.txt) to out. */
static enum cj_status upper_of(const char *text, char *out, size_t out_size)
{
    const uint8_t *in = (const uint8_t *)text;
    size_t len = strlen(text);
    size_t pos = 0;
    size_t used = 0;

    while (pos < len) {
        utf8proc_int32_t cp = 0;
        utf8proc_uint8_t encoded[4];
        utf8proc_ssize_t n =
            utf8proc_iterate(in + pos, (utf8proc_ssize_t)(len - pos), &cp);
        utf8proc_ssize_t width;

        if (n <= 0) {
            return CJ_ERR_INVALID;
        }
        width = utf8proc_encode_char(utf8proc_toupper(cp), encoded);
        if (width <= 0 || used + (size_t)width >= out_size) {
            return CJ_ERR_INVALID;
        }
        memcpy(out + used, encoded, (size_t)width);
        used += (size_t)width;
        pos += (size_t)n;
    }
    out[used] = '\0';
    return CJ_OK;
}

/*
 * Computes the look-alike key of a normalized (NFKC case-folded) username:
 * fold(skeleton(fold(skeleton(upper(norm))))). TS #39 skeletons are
 * case-sensitive, so both cases are needed. The skeleton of the uppercase
 * form catches capital look-alikes ("I" and "1" become "l", "0" becomes
 * "O", Cyrillic "ӏ" via its capital "Ӏ" becomes "l"), and the skeleton of
 * the folded result catches lowercase ones ("rn" and "m"). The key is a
 * function of norm alone, so all case variants of a name share it.
 * Consequence: "i" and "l" share a key, because "I" (the capital of "i")
 * looks like "l".
 */
static enum cj_status lookalike_key(const char *norm, char *out,
                                    size_t out_size)
{
    char a[AUTH_NAME_BUF_BYTES];
    char b[AUTH_NAME_BUF_BYTES];
    enum cj_status rc;

    rc = upper_of(norm, a, sizeof(a));
    if (rc == CJ_OK) {
        rc = skeleton_of(a, b, sizeof(b));
    }
    if (rc == CJ_OK) {
        rc = fold(b, strlen(b), a, sizeof(a));
    }
    if (rc == CJ_OK) {
        rc = skeleton_of(a, b, sizeof(b));
    }
    if (rc == CJ_OK) {
        rc = fold(b, strlen(b), out, out_size);
    }
    return rc;
}

enum cj_status auth_username_parse(const char *input, size_t len,
                                   struct auth_username *out,
                                   const char **reason)
{
    const char *failed_rule = NULL;
    enum cj_status rc = CJ_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        failed_rule = "username is empty";
        goto out;
    }
    if (len > AUTH_USERNAME_MAX_INPUT_BYTES) {
        failed_rule = "username is longer than 128 bytes";
        goto out;
    }
    failed_rule = check_visible((const uint8_t *)input, len, &username_reasons);
    if (failed_rule != NULL) {
        goto out;
    }
    if (nfc(input, len, out->display, sizeof(out->display)) != CJ_OK ||
        fold(input, len, out->norm, sizeof(out->norm)) != CJ_OK) {
        failed_rule = "username contains an unassigned character";
        goto out;
    }
    failed_rule = check_username_chars(out->norm);
    if (failed_rule == NULL) {
        failed_rule = spoof_check(out->norm);
    }
    if (failed_rule == NULL && lookalike_key(out->norm, out->skeleton,
                                             sizeof(out->skeleton)) != CJ_OK) {
        failed_rule = "username could not be checked";
    }
    if (failed_rule != NULL) {
        goto out;
    }
    rc = CJ_OK;
out:
    if (rc != CJ_OK) {
        memset(out, 0, sizeof(*out));
    }
    if (reason != NULL) {
        *reason = failed_rule;
    }
    return rc;
}

static bool is_ascii_alnum(utf8proc_int32_t cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= '0' && cp <= '9');
}

/* Checks the local part (before the '@') of a normalized address. */
static const char *check_email_local(const uint8_t *text, size_t len)
{
    size_t pos = 0;
    bool prev_dot = true; /* a leading dot is rejected like a double one */

    if (len == 0) {
        return "email has an empty local part";
    }
    if (len > AUTH_EMAIL_LOCAL_MAX_BYTES) {
        return "email local part is longer than 64 bytes";
    }
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate(text + pos, (utf8proc_ssize_t)(len - pos), &cp);

        if (n <= 0) {
            return "email is not valid UTF-8";
        }
        if (cp == '.') {
            if (prev_dot) {
                return "email local part has a misplaced dot";
            }
            prev_dot = true;
        } else if (is_ascii_alnum(cp) || is_letter_or_digit(cp) ||
                   (pos > 0 && is_mark(cp)) ||
                   (cp < 0x80 && strchr(EMAIL_ATEXT_SYMBOLS, (int)cp))) {
            prev_dot = false;
        } else {
            return "email local part contains a character that is not "
                   "allowed";
        }
        pos += (size_t)n;
    }
    if (prev_dot) {
        return "email local part has a misplaced dot";
    }
    return NULL;
}

/* Checks one domain label; sets *all_digits. */
static const char *check_email_label(const uint8_t *text, size_t len,
                                     bool *all_digits)
{
    size_t pos = 0;
    utf8proc_int32_t cp = 0;

    *all_digits = true;
    if (len == 0) {
        return "email domain has an empty label";
    }
    if (len > AUTH_EMAIL_LABEL_MAX_BYTES) {
        return "email domain has a label longer than 63 bytes";
    }
    if (text[0] == '-') {
        return "email domain label starts with a hyphen";
    }
    while (pos < len) {
        utf8proc_ssize_t n =
            utf8proc_iterate(text + pos, (utf8proc_ssize_t)(len - pos), &cp);

        if (n <= 0) {
            return "email is not valid UTF-8";
        }
        if (!(cp >= '0' && cp <= '9')) {
            *all_digits = false;
        }
        if (!(cp == '-' || is_ascii_alnum(cp) || is_letter_or_digit(cp) ||
              (pos > 0 && is_mark(cp)))) {
            return "email domain contains a character that is not allowed";
        }
        pos += (size_t)n;
    }
    if (cp == '-') {
        return "email domain label ends with a hyphen";
    }
    return NULL;
}

static const char *check_email_domain(const uint8_t *text, size_t len)
{
    size_t start = 0;
    size_t labels = 0;
    bool all_digits = false;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '.') {
            const char *failed_rule =
                check_email_label(text + start, i - start, &all_digits);

            if (failed_rule != NULL) {
                return failed_rule;
            }
            labels++;
            start = i + 1;
        }
    }
    if (labels < 2) {
        return "email domain needs at least two labels";
    }
    if (all_digits) {
        return "email domain ends with an all-digit label";
    }
    return NULL;
}

enum cj_status auth_email_parse(const char *input, size_t len,
                                struct auth_email *out, const char **reason)
{
    const char *failed_rule = NULL;
    const char *at;
    char decoded[AUTH_NAME_BUF_BYTES];
    bool is_decoded = false;
    size_t norm_len;
    enum cj_status rc = CJ_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        failed_rule = "email is empty";
        goto out;
    }
    if (len > AUTH_EMAIL_MAX_BYTES) {
        failed_rule = "email is longer than 254 bytes";
        goto out;
    }
    failed_rule = check_visible((const uint8_t *)input, len, &email_reasons);
    if (failed_rule != NULL) {
        goto out;
    }
    if (auth_idn_email_decode(input, len, decoded, sizeof(decoded),
                              &is_decoded) != CJ_OK) {
        failed_rule = "email domain has an xn-- label that is not a valid "
                      "internationalized domain name";
        goto out;
    }
    if (is_decoded) {
        input = decoded;
        len = strlen(decoded);
        failed_rule =
            check_visible((const uint8_t *)input, len, &email_reasons);
        if (failed_rule != NULL) {
            goto out;
        }
    }
    if (nfc(input, len, out->display, sizeof(out->display)) != CJ_OK ||
        fold(input, len, out->norm, sizeof(out->norm)) != CJ_OK) {
        failed_rule = "email contains an unassigned character";
        goto out;
    }
    norm_len = strlen(out->norm);
    if (norm_len > AUTH_EMAIL_MAX_BYTES) {
        failed_rule = "email is longer than 254 bytes";
        goto out;
    }
    at = strchr(out->norm, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL) {
        failed_rule = "email must contain exactly one @";
        goto out;
    }
    failed_rule =
        check_email_local((const uint8_t *)out->norm, (size_t)(at - out->norm));
    if (failed_rule == NULL) {
        failed_rule = check_email_domain(
            (const uint8_t *)at + 1, norm_len - (size_t)(at - out->norm) - 1);
    }
    if (failed_rule != NULL) {
        goto out;
    }
    rc = CJ_OK;
out:
    if (rc != CJ_OK) {
        memset(out, 0, sizeof(*out));
    }
    if (reason != NULL) {
        *reason = failed_rule;
    }
    return rc;
}

enum cj_status auth_login_normalize(const char *input, size_t len, char *out,
                                    size_t out_size)
{
    char decoded[AUTH_NAME_BUF_BYTES];
    bool is_decoded = false;

    if (len == 0 || len > AUTH_LOGIN_MAX_INPUT_BYTES ||
        memchr(input, '\0', len) != NULL) {
        return CJ_ERR_INVALID;
    }
    /* An email given with encoded domain labels finds the account
     * registered with either form. A label that does not decode is folded
     * as typed: it matches no account registered since decoding began. */
    if (auth_idn_email_decode(input, len, decoded, sizeof(decoded),
                              &is_decoded) == CJ_OK &&
        is_decoded) {
        return fold(decoded, strlen(decoded), out, out_size);
    }
    return fold(input, len, out, out_size);
}

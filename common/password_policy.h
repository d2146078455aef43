/*
 * Rules a new password must meet at registration or change, checked in
 * this order on its NFKC form (cj_password_policy_check_and_normalize):
 *   1. at most CJ_PASSWORD_MAX_BYTES bytes (CJ_PASSWORD_RULE_TOO_LONG);
 *   2. no NUL byte (CJ_PASSWORD_RULE_NUL);
 *   3. valid UTF-8 (CJ_PASSWORD_RULE_INVALID_UTF8);
 *   4. at least min_code_points Unicode code points, default 10
 *      (CJ_PASSWORD_RULE_TOO_SHORT);
 *   5. once case-folded (NFKC with case folding, as auth compares names),
 *      it does not contain the username or the email's local part, when
 *      that name has at least CJ_PASSWORD_NAME_MIN_CODE_POINTS code points
 *      (CJ_PASSWORD_RULE_CONTAINS_NAME);
 *   6. cracklib's FascistCheckUser with the configured dictionary and the
 *      case-folded username: rejects dictionary words and their common
 *      mangled forms, too few distinct characters, keyboard-like runs and
 *      passwords derived from the username (CJ_PASSWORD_RULE_WEAK);
 *   7. less than half of its bytes in runs of adjacent keys, consecutive
 *      letters or digits, or repeated characters (password_patterns.h,
 *      CJ_PASSWORD_RULE_KEYBOARD_RUN);
 *   8. no dictionary word of at least 4 letters with only non-letters
 *      before and after it, and none that starts or ends the password and
 *      makes up at least half of its bytes. Its ASCII letters must not be
 *      one such word repeated either. Words are read after ASCII
 *      lower-casing and undoing the look-alike substitutions of
 *      password_patterns.h (CJ_PASSWORD_RULE_DICTIONARY_WORD).
 * cracklib keeps state in static buffers, so rules 6 and 8 run under a
 * mutex. No rule compares against lists of breached passwords.
 */
#ifndef CJ_PASSWORD_POLICY_H
#define CJ_PASSWORD_POLICY_H

#include <stddef.h>

#include "password.h"
#include "status.h"

#define CJ_PASSWORD_MIN_CODE_POINTS_DEFAULT 10
/* Debian's cracklib-runtime dictionary (files .pwd, .pwi and .hwm). */
#define CJ_PASSWORD_DICT_DEFAULT_PATH "/var/cache/cracklib/cracklib_dict"

struct cj_password_policy {
    size_t min_code_points;
    const char *dict_path; /* borrowed; cracklib dictionary prefix */
};

enum cj_password_rule {
    CJ_PASSWORD_RULE_OK = 0,
    CJ_PASSWORD_RULE_TOO_LONG,
    CJ_PASSWORD_RULE_NUL,
    CJ_PASSWORD_RULE_INVALID_UTF8,
    CJ_PASSWORD_RULE_TOO_SHORT,
    CJ_PASSWORD_RULE_WEAK,
    CJ_PASSWORD_RULE_CONTAINS_NAME,
    CJ_PASSWORD_RULE_DICTIONARY_WORD,
    CJ_PASSWORD_RULE_KEYBOARD_RUN,
};

/* Last value of enum cj_password_rule, for tables and loops. */
#define CJ_PASSWORD_RULE_LAST CJ_PASSWORD_RULE_KEYBOARD_RUN

/* Fills the defaults: 10 code points, the Debian dictionary. */
void cj_password_policy_default(struct cj_password_policy *policy);

/*
 * Validates a policy: min_code_points in [1, CJ_PASSWORD_MAX_BYTES] and
 * the dictionary's three files readable. CJ_ERR_INVALID otherwise.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_policy_check_config(const struct cj_password_policy *policy);

/*
 * Applies the rules to a candidate password exactly as given, with no
 * normalization. username and email may be NULL; the rules compare their
 * case-folded forms, so any case may be given. CJ_OK when every rule
 * passes; CJ_ERR_INVALID with *failed set to the first broken rule;
 * CJ_ERR_UNAVAILABLE when the dictionary cannot be read (the password is
 * then not accepted); CJ_ERR_NOMEM.
 */
CJ_WARN_UNUSED enum cj_status
cj_password_policy_check(const struct cj_password_policy *policy,
                         const char *password, size_t password_len,
                         const char *username, const char *email,
                         enum cj_password_rule *failed);

/*
 * Normalizes a candidate password to NFKC (cj_password_normalize) and
 * applies the rules to that form, which is the one to hash. Rules 1 to 3
 * also judge the input itself, so invalid UTF-8 gets
 * CJ_PASSWORD_RULE_INVALID_UTF8, and an NFKC form over
 * CJ_PASSWORD_MAX_BYTES gets CJ_PASSWORD_RULE_TOO_LONG. Statuses are
 * those of cj_password_policy_check, plus CJ_ERR_NOMEM. On CJ_OK,
 * normalized contains the NFKC form and *normalized_len its length in
 * bytes; otherwise it is wiped. The caller wipes it after use.
 */
CJ_WARN_UNUSED enum cj_status cj_password_policy_check_and_normalize(
    const struct cj_password_policy *policy, const char *password,
    size_t password_len, const char *username, const char *email,
    char normalized[CJ_PASSWORD_MAX_BYTES + 1], size_t *normalized_len,
    enum cj_password_rule *failed);

/* Returns a stable name for logs ("too_short"). */
const char *cj_password_rule_name(enum cj_password_rule rule);

/* Returns a sentence for the client ("The password is too short."). */
const char *cj_password_rule_message(enum cj_password_rule rule);

#endif

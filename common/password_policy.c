/*
 * The password policy of password_policy.h: byte and code-point limits,
 * UTF-8 validity, NFKC normalization, the account's names, cracklib's
 * checks and the pattern rules of password_patterns.h.
 */
#include "password_policy.h"

#include <crack.h>
#include <limits.h>
#include <packer.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

#include "crypto_util.h"
#include "password.h"
#include "password_patterns.h"

#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x)       STRINGIFY_VALUE(x)

/* cracklib's untranslated message when it cannot open the dictionary. */
#define CRACKLIB_DICT_ERROR "error loading dictionary"

/* Rule 8 looks up words of this many letters or more; shorter ones are
 * common inside strong passwords. */
#define DICT_WORD_MIN_CHARS 4
/* Longest word that cracklib's dictionary stores (MAXWORDLEN less NUL). */
#define DICT_WORD_MAX_CHARS (MAXWORDLEN - 1)
/* A string that sorts before every dictionary word, so that FindPW
 * returns its "not found" value for it. NOTE: this relies on FindPW
 * returning the word count for every miss, as cracklib 2.9 does, because
 * packer.h hides that count (PW_WORDS) from programs outside cracklib. */
#define DICT_NOT_FOUND_PROBE "\x01"

/*
 * cracklib 2.9 keeps its mangling buffers in static storage (Mangle,
 * Lowercase, Reverse), so FascistCheckUser is not thread-safe: every call
 * holds this lock.
 */
static pthread_mutex_t cracklib_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const dict_suffixes[] = {".pwd", ".pwi", ".hwm"};

void cj_password_policy_default(struct cj_password_policy *policy)
{
    policy->min_code_points = CJ_PASSWORD_MIN_CODE_POINTS_DEFAULT;
    policy->dict_path = CJ_PASSWORD_DICT_DEFAULT_PATH;
}

static bool dictionary_readable(const char *prefix)
{
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(dict_suffixes) / sizeof(dict_suffixes[0]);
         i++) {
        int len =
            snprintf(path, sizeof(path), "%s%s", prefix, dict_suffixes[i]);

        if (len < 0 || (size_t)len >= sizeof(path) || access(path, R_OK) != 0) {
            return false;
        }
    }
    return true;
}

enum cj_status
cj_password_policy_check_config(const struct cj_password_policy *policy)
{
    if (policy->min_code_points < 1 ||
        policy->min_code_points > CJ_PASSWORD_MAX_BYTES) {
        return CJ_ERR_INVALID;
    }
    if (policy->dict_path == NULL || !dictionary_readable(policy->dict_path)) {
        return CJ_ERR_INVALID;
    }
    return CJ_OK;
}

/* Counts code points; returns false on invalid UTF-8 (overlongs,
 * surrogates and values above U+10FFFF included). */
static bool count_code_points(const char *text, size_t len, size_t *count)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    utf8proc_int32_t code_point;
    size_t pos = 0;

    *count = 0;
    while (pos < len) {
        utf8proc_ssize_t n = utf8proc_iterate(
            p + pos, (utf8proc_ssize_t)(len - pos), &code_point);

        if (n <= 0) {
            return false;
        }
        pos += (size_t)n;
        (*count)++;
    }
    return true;
}

/* An open cracklib dictionary and the value FindPW returns for a miss. */
struct dictionary {
    PWDICT *words;
    unsigned not_found;
};

/* Returns true when text[start, end) is a word of the dictionary. */
static bool is_word(const struct dictionary *dict, const char *text,
                    size_t start, size_t end)
{
    char word[DICT_WORD_MAX_CHARS + 1];
    size_t len = end - start;
    bool found;

    if (end <= start || len < DICT_WORD_MIN_CHARS ||
        len > DICT_WORD_MAX_CHARS) {
        return false;
    }
    memcpy(word, text + start, len);
    word[len] = '\0';
    found = FindPW(dict->words, word) != dict->not_found;
    sodium_memzero(word, sizeof(word));
    return found;
}

/* Rule 8 on one decoded form: a word with only non-letters around it (as
 * typed, before decoding), or a word at either end that makes up at least
 * half of the password. */
static bool has_dictionary_word(const struct dictionary *dict,
                                const char *password, const char *decoded,
                                size_t len)
{
    size_t lead = 0;
    size_t trail = 0;
    size_t half = (len + 1) / 2;

    while (lead < len && !cj_password_is_letter(password[lead])) {
        lead++;
    }
    while (trail < len - lead &&
           !cj_password_is_letter(password[len - 1 - trail])) {
        trail++;
    }
    for (size_t start = 0; lead < len && start <= lead; start++) {
        for (size_t end = len - trail;
             end <= len && end <= start + DICT_WORD_MAX_CHARS; end++) {
            if (is_word(dict, decoded, start, end)) {
                return true;
            }
        }
    }
    for (size_t n = half; n <= len && n <= DICT_WORD_MAX_CHARS; n++) {
        if (is_word(dict, decoded, 0, n) ||
            is_word(dict, decoded, len - n, len)) {
            return true;
        }
    }
    return false;
}

/* Returns true when text[0, count) is text[0, unit) written count / unit
 * times; count is a multiple of unit. */
static bool repeats_unit(const char *text, size_t count, size_t unit)
{
    for (size_t start = unit; start < count; start += unit) {
        if (memcmp(text + start, text, unit) != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Rule 8's repeated form on one decoded form: its ASCII letters, with every
 * other byte dropped, are one dictionary word written two or more times
 * ("Passw0rd Passw0rd", "letmein-letmein-7"). Each copy can be under half
 * of the password, so has_dictionary_word misses these.
 */
static bool has_repeated_word(const struct dictionary *dict,
                              const char *decoded, size_t len)
{
    char letters[CJ_PASSWORD_MAX_BYTES + 1];
    size_t count = 0;
    bool found = false;

    for (size_t i = 0; i < len; i++) {
        if (cj_password_is_letter(decoded[i])) {
            letters[count++] = decoded[i];
        }
    }
    for (size_t unit = DICT_WORD_MIN_CHARS;
         !found && unit <= count / 2 && unit <= DICT_WORD_MAX_CHARS; unit++) {
        if (count % unit == 0 && repeats_unit(letters, count, unit)) {
            found = is_word(dict, letters, 0, unit);
        }
    }
    sodium_memzero(letters, sizeof(letters));
    return found;
}

/*
 * Applies rule 8 with each way of undoing the substitutions. Sets *found,
 * or returns CJ_ERR_UNAVAILABLE when the dictionary cannot be opened.
 */
static enum cj_status dictionary_word_check(const char *dict_path,
                                            const char *password, size_t len,
                                            bool *found)
{
    char decoded[CJ_PASSWORD_MAX_BYTES + 1];
    char probe[] = DICT_NOT_FOUND_PROBE;
    struct dictionary dict;
    enum cj_status status = CJ_OK;

    *found = false;
    /* PWOpen and FindPW share cracklib's static buffers too. */
    pthread_mutex_lock(&cracklib_lock);
    dict.words = PWOpen(dict_path, "r");
    if (dict.words == NULL) {
        status = CJ_ERR_UNAVAILABLE;
        goto out;
    }
    dict.not_found = FindPW(dict.words, probe);
    for (unsigned v = 0; v < CJ_PASSWORD_SUBSTITUTION_VARIANTS && !*found;
         v++) {
        cj_password_undo_substitutions(password, len, v, decoded);
        *found = has_dictionary_word(&dict, password, decoded, len) ||
                 has_repeated_word(&dict, decoded, len);
    }
    PWClose(dict.words);
out:
    pthread_mutex_unlock(&cracklib_lock);
    sodium_memzero(decoded, sizeof(decoded));
    return status;
}

/*
 * Runs cracklib (rule 6); sets *weak, or returns CJ_ERR_UNAVAILABLE when
 * the dictionary cannot be read. The caller folds the username, because
 * cracklib compares it with the password lower-cased in ASCII only.
 */
static enum cj_status cracklib_check(const struct cj_password_policy *policy,
                                     const char *password, size_t len,
                                     const char *username, bool *weak)
{
    char copy[CJ_PASSWORD_MAX_BYTES + 1];
    const char *message;
    enum cj_status status = CJ_OK;

    *weak = false;
    memcpy(copy, password, len);
    copy[len] = '\0';
    pthread_mutex_lock(&cracklib_lock);
    if (!dictionary_readable(policy->dict_path)) {
        status = CJ_ERR_UNAVAILABLE;
    } else {
        /* A non-NULL user keeps cracklib from comparing against the
         * process owner's passwd entry. */
        message = FascistCheckUser(copy, policy->dict_path,
                                   username != NULL ? username : "", NULL);
        if (message != NULL && strcmp(message, CRACKLIB_DICT_ERROR) == 0) {
            status = CJ_ERR_UNAVAILABLE;
        } else {
            *weak = message != NULL;
        }
    }
    /* NOTE: cracklib leaves lowercased and mangled copies of the password
     * in its own static buffers; only our copy is wiped here. */
    pthread_mutex_unlock(&cracklib_lock);
    sodium_memzero(copy, sizeof(copy));
    return status;
}

/* Applies the rules on the bytes alone (length, NUL, UTF-8) and counts the
 * code points; returns the first rule broken, or CJ_PASSWORD_RULE_OK. */
static enum cj_password_rule
check_encoding(const char *password, size_t password_len, size_t *code_points)
{
    if (password_len > CJ_PASSWORD_MAX_BYTES) {
        return CJ_PASSWORD_RULE_TOO_LONG;
    }
    if (password == NULL || memchr(password, '\0', password_len) != NULL) {
        return CJ_PASSWORD_RULE_NUL;
    }
    if (!count_code_points(password, password_len, code_points)) {
        return CJ_PASSWORD_RULE_INVALID_UTF8;
    }
    return CJ_PASSWORD_RULE_OK;
}

/* Applies rules 6 to 8; the username is already folded or as given. */
static enum cj_status check_guessable(const struct cj_password_policy *policy,
                                      const char *password, size_t len,
                                      const char *username,
                                      enum cj_password_rule *failed)
{
    bool weak = false;
    bool found = false;
    enum cj_status status;

    status = cracklib_check(policy, password, len, username, &weak);
    if (status != CJ_OK) {
        return status;
    }
    if (weak) {
        *failed = CJ_PASSWORD_RULE_WEAK;
        return CJ_ERR_INVALID;
    }
    if (cj_password_mostly_runs(password, len)) {
        *failed = CJ_PASSWORD_RULE_KEYBOARD_RUN;
        return CJ_ERR_INVALID;
    }
    status = dictionary_word_check(policy->dict_path, password, len, &found);
    if (status == CJ_OK && found) {
        *failed = CJ_PASSWORD_RULE_DICTIONARY_WORD;
        return CJ_ERR_INVALID;
    }
    return status;
}

/* Applies rules 5 to 8 to a password that passed rules 1 to 4. */
static enum cj_status check_patterns(const struct cj_password_policy *policy,
                                     const char *password, size_t password_len,
                                     const char *username, const char *email,
                                     enum cj_password_rule *failed)
{
    char *folded_username = NULL;
    bool contains = false;
    enum cj_status status;

    status = cj_password_contains_names(password, password_len, username, email,
                                        &contains);
    if (status == CJ_OK && contains) {
        *failed = CJ_PASSWORD_RULE_CONTAINS_NAME;
        return CJ_ERR_INVALID;
    }
    if (status == CJ_OK && username != NULL) {
        status = cj_password_fold(username, strlen(username), &folded_username);
        if (status == CJ_ERR_INVALID) {
            status = CJ_OK; /* cracklib then compares the name as given */
        }
    }
    if (status == CJ_OK) {
        status = check_guessable(
            policy, password, password_len,
            folded_username != NULL ? folded_username : username, failed);
    }
    cj_password_folded_free(folded_username);
    return status;
}

enum cj_status cj_password_policy_check(const struct cj_password_policy *policy,
                                        const char *password,
                                        size_t password_len,
                                        const char *username, const char *email,
                                        enum cj_password_rule *failed)
{
    size_t code_points;
    enum cj_status status;

    *failed = check_encoding(password, password_len, &code_points);
    if (*failed != CJ_PASSWORD_RULE_OK) {
        return CJ_ERR_INVALID;
    }
    if (code_points < policy->min_code_points) {
        *failed = CJ_PASSWORD_RULE_TOO_SHORT;
        return CJ_ERR_INVALID;
    }
    status =
        check_patterns(policy, password, password_len, username, email, failed);
    if (status != CJ_OK && status != CJ_ERR_INVALID) {
        *failed = CJ_PASSWORD_RULE_OK;
    }
    return status;
}

enum cj_status cj_password_policy_check_and_normalize(
    const struct cj_password_policy *policy, const char *password,
    size_t password_len, const char *username, const char *email,
    char normalized[CJ_PASSWORD_MAX_BYTES + 1], size_t *normalized_len,
    enum cj_password_rule *failed)
{
    size_t code_points;
    enum cj_status status;

    *normalized_len = 0;
    normalized[0] = '\0';
    /* Rules 1 to 3 judge the input, so input that cannot be normalized
     * fails the same rule as before passwords were normalized. */
    *failed = check_encoding(password, password_len, &code_points);
    if (*failed != CJ_PASSWORD_RULE_OK) {
        return CJ_ERR_INVALID;
    }
    status = cj_password_normalize(password, password_len, normalized,
                                   normalized_len);
    if (status == CJ_ERR_TOO_LARGE) {
        *failed = CJ_PASSWORD_RULE_TOO_LONG;
        return CJ_ERR_INVALID;
    }
    if (status == CJ_OK) {
        status = cj_password_policy_check(policy, normalized, *normalized_len,
                                          username, email, failed);
    }
    if (status != CJ_OK) {
        cj_wipe(normalized, CJ_PASSWORD_MAX_BYTES + 1);
        *normalized_len = 0;
    }
    return status;
}

const char *cj_password_rule_name(enum cj_password_rule rule)
{
    switch (rule) {
    case CJ_PASSWORD_RULE_OK:
        return "ok";
    case CJ_PASSWORD_RULE_TOO_LONG:
        return "too_long";
    case CJ_PASSWORD_RULE_NUL:
        return "nul";
    case CJ_PASSWORD_RULE_INVALID_UTF8:
        return "invalid_utf8";
    case CJ_PASSWORD_RULE_TOO_SHORT:
        return "too_short";
    case CJ_PASSWORD_RULE_WEAK:
        return "weak";
    case CJ_PASSWORD_RULE_CONTAINS_NAME:
        return "contains_name";
    case CJ_PASSWORD_RULE_DICTIONARY_WORD:
        return "dictionary_word";
    case CJ_PASSWORD_RULE_KEYBOARD_RUN:
        return "keyboard_run";
    }
    return "unknown";
}

const char *cj_password_rule_message(enum cj_password_rule rule)
{
    switch (rule) {
    case CJ_PASSWORD_RULE_OK:
        return "The password is accepted.";
    case CJ_PASSWORD_RULE_TOO_LONG:
        return "The password is too long: at most " STRINGIFY(
            CJ_PASSWORD_MAX_BYTES) " bytes in Unicode NFKC form.";
    case CJ_PASSWORD_RULE_NUL:
        return "The password must not contain a NUL character.";
    case CJ_PASSWORD_RULE_INVALID_UTF8:
        return "The password is not valid UTF-8.";
    case CJ_PASSWORD_RULE_TOO_SHORT:
        return "The password is too short.";
    case CJ_PASSWORD_RULE_WEAK:
        return "The password is too easy to guess: avoid dictionary words, "
               "your username and simple patterns.";
    case CJ_PASSWORD_RULE_CONTAINS_NAME:
        return "The password contains your username or the part of your "
               "email address before the @, in some mix of upper and lower "
               "case.";
    case CJ_PASSWORD_RULE_DICTIONARY_WORD:
        return "The password is mostly one dictionary word, or one word "
               "repeated, even counting digits or symbols that stand for "
               "letters (such as 4 for a or 0 for o) and digits, symbols or "
               "spaces added around or between the words.";
    case CJ_PASSWORD_RULE_KEYBOARD_RUN:
        return "The password is mostly runs of adjacent keys, consecutive "
               "letters or digits, or repeated characters (such as qwerty, "
               "abcd, 4321 or aaa).";
    }
    return "The password is invalid.";
}

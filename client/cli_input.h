/* Reading secrets and values for the command-line client. */
#ifndef CJC_CLI_INPUT_H
#define CJC_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Longest password accepted, in bytes, as the server enforces. */
#define CLI_PASSWORD_MAX 1024
/* Largest input read for `data put` (text or a JSON object of fields), in
 * bytes. */
#define CLI_VALUE_MAX (64u * 1024u)
/* Maximum length of one field value, in UTF-8 bytes, as auth enforces. */
#define CLI_FIELD_VALUE_MAX 4096u
/* Maximum length of a field name, whose characters are a-z, 0-9 and _,
 * as auth enforces. */
#define CLI_FIELD_NAME_MAX 64u
/* Maximum number of fields that one `data put` sets, as auth enforces. */
#define CLI_FIELDS_PER_PUT_MAX 32u

/*
 * Reads a password from file, or, when file is NULL, from the terminal
 * without echo after printing prompt. The file contains the password
 * alone, optionally followed by one LF or CRLF; a file with more than one
 * line fails with CJ_ERR_INVALID. *out is allocated with sodium_malloc and
 * must be released with cli_secret_free.
 */
CJ_WARN_UNUSED enum cj_status cli_read_password(const char *file,
                                                const char *prompt, char **out,
                                                char *err, size_t errlen);

void cli_secret_free(char *secret);

/*
 * Reads all of file, or stdin when file is NULL, up to CLI_VALUE_MAX bytes.
 * Fails with CJ_ERR_TOO_LARGE on more, and with CJ_ERR_INVALID, naming the
 * byte offset, when the input contains a NUL byte.
 */
CJ_WARN_UNUSED enum cj_status cli_read_value(const char *file, char **out,
                                             size_t *len, char *err,
                                             size_t errlen);

/* Returns len less one trailing newline (LF or CRLF) of text, the rule of
 * both password files and `data put` values. */
size_t cli_drop_newline(const char *text, size_t len);

/* Returns whether the len bytes at text are valid UTF-8 (no overlong form,
 * surrogate or code point above U+10FFFF). */
bool cli_utf8_valid(const char *text, size_t len);

/*
 * Returns whether the len bytes at text are one complete JSON array, with
 * optional white space around it. `data put` rejects such input, because
 * the server stores only string fields, and the array's text stored as
 * the field "value" is seldom what was meant.
 */
bool cli_value_is_json_array(const char *text, size_t len);

#endif

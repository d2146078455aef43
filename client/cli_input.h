/* Reading secrets and values for the command-line client. */
#ifndef CJC_CLI_INPUT_H
#define CJC_CLI_INPUT_H

#include <stddef.h>

#include "status.h"

/* Longest password accepted, in bytes, as the server enforces. */
#define CLI_PASSWORD_MAX 1024
/* Longest value read for `data put`, in bytes. */
#define CLI_VALUE_MAX (64u * 1024u)

/*
 * Reads a password from file (its first line), or, when file is NULL,
 * from the terminal without echo after printing prompt. *out is allocated
 * with sodium_malloc and must be released with cli_secret_free.
 */
CJ_WARN_UNUSED enum cj_status cli_read_password(const char *file,
                                                const char *prompt, char **out,
                                                char *err, size_t errlen);

void cli_secret_free(char *secret);

/* Reads all of file, or stdin when file is NULL, up to CLI_VALUE_MAX. */
CJ_WARN_UNUSED enum cj_status cli_read_value(const char *file, char **out,
                                             size_t *len, char *err,
                                             size_t errlen);

#endif

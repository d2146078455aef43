/* Password prompts without echo, password files, and value input. */
#include "cli_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <utf8proc.h>

void cli_secret_free(char *secret)
{
    if (secret != NULL)
        sodium_free(secret); /* sodium_free wipes before freeing */
}

/* Bytes read from a password file: the longest password, a CRLF, and one
 * byte more, which marks the content as too long. */
#define PASSWORD_FILE_READ_MAX (CLI_PASSWORD_MAX + 3)

/* Reads at most max bytes from fd into buf; returns the count or -1. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
    size_t got = 0;

    while (got < max) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Reads one line from the terminal with echo off. */
static ssize_t read_tty_line(const char *prompt, char *buf, size_t max)
{
    struct termios saved, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    ssize_t len = -1;
    size_t got = 0;

    if (fd < 0)
        return -1;
    if (tcgetattr(fd, &saved) != 0)
        goto out;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
        goto out;
    if (write(fd, prompt, strlen(prompt)) < 0)
        goto restore;
    while (got < max) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n')
            break;
        buf[got++] = c;
    }
    len = (ssize_t)got;
    if (write(fd, "\n", 1) < 0)
        len = -1;
restore:
    tcsetattr(fd, TCSAFLUSH, &saved);
out:
    close(fd);
    return len;
}

size_t cli_drop_newline(const char *text, size_t len)
{
    if (len > 0 && text[len - 1] == '\n')
        len--;
    else
        return len;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    return len;
}

/*
 * Returns the length of the password file's content without its one
 * trailing newline (LF or CRLF), or -1 when a newline comes before the
 * end. A secret may span lines, and taking only its first line would
 * set a weaker password than the file contains.
 */
static ssize_t strip_line_end(const char *buf, ssize_t len)
{
    const char *nl = memchr(buf, '\n', (size_t)len);

    if (nl != NULL && nl - buf < len - 1)
        return -1;
    len = (ssize_t)cli_drop_newline(buf, (size_t)len);
    /* A lone CR at the end is dropped as well, as earlier versions did, so
     * that passwords set from such files still match. */
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    return len;
}

enum cj_status cli_read_password(const char *file, const char *prompt,
                                 char **out, char *err, size_t errlen)
{
    enum cj_status rc = CJ_ERR_INVALID;
    char *buf = sodium_malloc(PASSWORD_FILE_READ_MAX);
    ssize_t len;

    *out = NULL;
    if (buf == NULL)
        return CJ_ERR_NOMEM;
    if (file != NULL) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "cannot read password file %s: %s", file,
                     strerror(errno));
            goto out;
        }
        len = read_all(fd, buf, PASSWORD_FILE_READ_MAX);
        int read_errno = errno;
        close(fd);
        if (len < 0) {
            /* A folder opens, and only read(2) fails, with EISDIR. */
            snprintf(err, errlen, "cannot read password file %s: %s", file,
                     strerror(read_errno));
            goto out;
        }
        len = strip_line_end(buf, len);
        if (len < 0) {
            snprintf(err, errlen,
                     "the password file has more than one line, but it must "
                     "contain only the password and at most one trailing "
                     "newline");
            goto out;
        }
    } else {
        len = read_tty_line(prompt, buf, CLI_PASSWORD_MAX + 1);
        if (len < 0) {
            snprintf(err, errlen,
                     "no terminal to prompt for the password; use "
                     "--password-file");
            goto out;
        }
    }
    if (len > CLI_PASSWORD_MAX) {
        snprintf(err, errlen, "password is longer than %d bytes",
                 CLI_PASSWORD_MAX);
        goto out;
    }
    if (memchr(buf, '\0', (size_t)len) != NULL) {
        snprintf(err, errlen, "password contains a NUL byte");
        goto out;
    }
    if (len == 0) {
        snprintf(err, errlen, "password is empty");
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    rc = CJ_OK;
out:
    cli_secret_free(buf);
    return rc;
}

enum cj_status cli_read_value(const char *file, char **out, size_t *len,
                              char *err, size_t errlen)
{
    int fd = file != NULL ? open(file, O_RDONLY | O_CLOEXEC) : 0;
    char *buf = NULL;
    ssize_t n;

    *out = NULL;
    *len = 0;
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
        return CJ_ERR_INVALID;
    }
    buf = malloc(CLI_VALUE_MAX + 2);
    if (buf == NULL) {
        if (file != NULL)
            close(fd);
        return CJ_ERR_NOMEM;
    }
    n = read_all(fd, buf, CLI_VALUE_MAX + 1);
    int read_errno = errno;
    if (file != NULL)
        close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read %s: %s",
                 file != NULL ? file : "the value from stdin",
                 strerror(read_errno));
        free(buf);
        return CJ_ERR_INVALID;
    }
    if ((size_t)n > CLI_VALUE_MAX) {
        snprintf(err, errlen,
                 "the value is larger than %u bytes (64 KiB), the limit of "
                 "'data put'",
                 CLI_VALUE_MAX);
        free(buf);
        return CJ_ERR_TOO_LARGE;
    }
    /* The server rejects NUL in any field value, and it would report the
     * position in the JSON body that the client builds, not in the input. */
    const char *nul = memchr(buf, '\0', (size_t)n);
    if (nul != NULL) {
        snprintf(err, errlen,
                 "the value contains a NUL byte at byte offset %zu of the "
                 "input, and field values cannot contain NUL",
                 (size_t)(nul - buf));
        explicit_bzero(buf, (size_t)n);
        free(buf);
        return CJ_ERR_INVALID;
    }
    buf[n] = '\0';
    *out = buf;
    *len = (size_t)n;
    return CJ_OK;
}

bool cli_utf8_valid(const char *text, size_t len)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    size_t left = len;

    while (left > 0) {
        utf8proc_int32_t code_point;
        utf8proc_ssize_t n =
            utf8proc_iterate(p, (utf8proc_ssize_t)left, &code_point);

        if (n <= 0)
            return false;
        p += n;
        left -= (size_t)n;
    }
    return true;
}

bool cli_value_is_json_array(const char *text, size_t len)
{
    /* Without JSON_DECODE_ANY, jansson decodes only an object or an array,
     * so anything else fails here. */
    json_t *parsed = json_loadb(text, len, 0, NULL);
    bool is_array = json_is_array(parsed);

    json_decref(parsed);
    return is_array;
}

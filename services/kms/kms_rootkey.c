/*
 * Root-key loading rules: a secret file or an environment variable in every
 * profile, and in dev only, a key generated once into var/ and marked as
 * generated so that stage and prod can recognize and reject it.
 */
#include "kms_rootkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

/* Length of the base64 text of a generated key, without the NUL. */
#define ROOT_KEY_B64_MAX 64

static void set_err(char *err, size_t size, const char *fmt, const char *arg)
{
    if (err != NULL && size > 0)
        snprintf(err, size, fmt, arg);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum cj_status kms_root_key_parse(const char *text, size_t len,
                                  unsigned char *key, bool *generated)
{
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL,
        sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE,
        sodium_base64_VARIANT_URLSAFE_NO_PADDING,
    };
    const size_t prefix_len = strlen(KMS_ROOT_KEY_GENERATED_PREFIX);

    *generated = false;
    if (len > KMS_ROOT_KEY_TEXT_MAX)
        return CJ_ERR_INVALID;
    while (len > 0 && is_space(text[0])) {
        text++;
        len--;
    }
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len >= prefix_len &&
        memcmp(text, KMS_ROOT_KEY_GENERATED_PREFIX, prefix_len) == 0) {
        *generated = true;
        text += prefix_len;
        len -= prefix_len;
    }

    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        size_t bin_len = 0;
        const char *end = NULL;
        if (sodium_base642bin(key, KMS_ROOT_KEY_BYTES, text, len, NULL,
                              &bin_len, &end, variants[i]) == 0 &&
            end == text + len && bin_len == KMS_ROOT_KEY_BYTES)
            return CJ_OK;
    }
    sodium_memzero(key, KMS_ROOT_KEY_BYTES);
    return CJ_ERR_INVALID;
}

static struct kms_root_key *root_key_new(void)
{
    struct kms_root_key *key = calloc(1, sizeof(*key));
    if (key == NULL)
        return NULL;
    key->bytes = sodium_malloc(KMS_ROOT_KEY_BYTES);
    if (key->bytes == NULL) {
        free(key);
        return NULL;
    }
    return key;
}

void kms_root_key_free(struct kms_root_key *key)
{
    if (key == NULL)
        return;
    sodium_free(key->bytes); /* wipes before it frees */
    free(key);
}

/* Parses text into a new key; err names `what` (the variable) on failure. */
static enum cj_status parse_into(const char *text, size_t len,
                                 bool allow_generated, const char *what,
                                 struct kms_root_key **out, char *err,
                                 size_t err_size)
{
    enum cj_status st = CJ_ERR_NOMEM;
    struct kms_root_key *key = root_key_new();

    if (key == NULL)
        goto out;
    st = kms_root_key_parse(text, len, key->bytes, &key->generated);
    if (st != CJ_OK) {
        set_err(err, err_size,
                "%s is not a root key: expected 32 bytes in base64 "
                "(e.g. from `openssl rand -base64 32`)",
                what);
        goto out;
    }
    if (key->generated && !allow_generated) {
        set_err(err, err_size,
                "%s holds a generated development root key, which the "
                "stage and prod profiles reject; set it to 32 random "
                "bytes in base64 made by the operator",
                what);
        st = CJ_ERR_PRECONDITION;
        goto out;
    }
    sodium_mprotect_readonly(key->bytes);
    *out = key;
    key = NULL;
    st = CJ_OK;
out:
    kms_root_key_free(key);
    return st;
}

/* Reads a small open file into a sodium_malloc buffer; *len gets its
 * length. */
static enum cj_status read_secret_fd(int fd, char **text, size_t *len)
{
    enum cj_status st = CJ_ERR_NOMEM;
    char *buf = NULL;
    size_t used = 0;

    buf = sodium_malloc(KMS_ROOT_KEY_TEXT_MAX + 1);
    if (buf == NULL)
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf + used, KMS_ROOT_KEY_TEXT_MAX + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = CJ_ERR_UNAVAILABLE;
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > KMS_ROOT_KEY_TEXT_MAX) {
            st = CJ_ERR_TOO_LARGE;
            goto out;
        }
    }
    *text = buf;
    *len = used;
    buf = NULL;
    st = CJ_OK;
out:
    sodium_free(buf);
    return st;
}

/*
 * Reads the key file at path, after the permission check for `profile`.
 * Parse errors name the file as `what`. A read or permission error names
 * the path, and also the setting it came from unless setting is NULL.
 */
static enum cj_status read_file_as(const char *path, const char *what,
                                   const char *setting, bool allow_generated,
                                   enum cj_profile profile,
                                   struct kms_root_key **out, char *err,
                                   size_t err_size)
{
    char *text = NULL;
    size_t len = 0;
    enum cj_status st = CJ_ERR_UNAVAILABLE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        /* Checked on the open file, so that the file read is the one
         * checked. */
        st = cj_config_check_key_file_mode(fd, setting, path, profile, err,
                                           err_size);
        if (st != CJ_OK)
            goto out;
        st = read_secret_fd(fd, &text, &len);
    }
    if (st != CJ_OK) {
        char failure[KMS_ROOT_KEY_ERROR_MAX];

        snprintf(
            failure, sizeof(failure), "%s%scannot read the root key file %s",
            setting != NULL ? setting : "", setting != NULL ? ": " : "", path);
        set_err(err, err_size,
                "%s (missing, unreadable or larger than 256 bytes)", failure);
        goto out;
    }
    st = parse_into(text, len, allow_generated, what, out, err, err_size);
out:
    sodium_free(text);
    if (fd >= 0)
        close(fd);
    return st;
}

enum cj_status kms_root_key_read_file(const char *path, enum cj_profile profile,
                                      struct kms_root_key **out, char *err,
                                      size_t err_size)
{
    char what[512];

    snprintf(what, sizeof(what), "the root key file %s", path);
    return read_file_as(path, what, NULL, profile == CJ_PROFILE_DEV, profile,
                        out, err, err_size);
}

/*
 * Writes a fresh generated key to path with mode 0600. The key is written
 * under a temporary name and linked into place, so of two processes
 * starting together exactly one creates it. The other gets CJ_ERR_EXISTS
 * and reads the winner's key.
 */
static enum cj_status generate_key_file(const char *path)
{
    enum cj_status st = CJ_ERR_NOMEM;
    unsigned char *raw = sodium_malloc(KMS_ROOT_KEY_BYTES);
    char *text = sodium_malloc(ROOT_KEY_B64_MAX);
    char tmp[4096];
    int fd = -1;
    bool tmp_made = false;

    if (raw == NULL || text == NULL)
        goto out;
    st = CJ_ERR_INVALID;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
                         (long)getpid()) >= sizeof(tmp))
        goto out;
    randombytes_buf(raw, KMS_ROOT_KEY_BYTES);
    size_t prefix_len = strlen(KMS_ROOT_KEY_GENERATED_PREFIX);
    memcpy(text, KMS_ROOT_KEY_GENERATED_PREFIX, prefix_len);
    sodium_bin2base64(text + prefix_len, ROOT_KEY_B64_MAX - prefix_len, raw,
                      KMS_ROOT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(text);
    text[len++] = '\n';

    st = CJ_ERR_UNAVAILABLE;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    tmp_made = true;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        goto out;
    if (link(tmp, path) != 0) {
        st = errno == EEXIST ? CJ_ERR_EXISTS : CJ_ERR_UNAVAILABLE;
        goto out;
    }
    st = CJ_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    sodium_free(raw);
    sodium_free(text);
    return st;
}

/* dev only: loads the generated key at path, creating it when missing. */
static enum cj_status load_or_generate(const char *path,
                                       struct kms_root_key **out, char *err,
                                       size_t err_size)
{
    enum cj_status st = generate_key_file(path);

    if (st == CJ_OK) {
        cj_log(CJ_LOG_WARN, "kms.root_key_generated", NULL,
               CJ_F_STR("path", path),
               CJ_F_STR("fix", "set " KMS_ROOT_KEY_FILE_VAR
                               " or " KMS_ROOT_KEY_ENV_VAR " outside dev"));
    } else if (st != CJ_ERR_EXISTS) {
        set_err(err, err_size,
                "no root key is set and a development key cannot be "
                "written to %s; set " KMS_ROOT_KEY_FILE_VAR,
                path);
        return st;
    }
    st = kms_root_key_read_file(path, CJ_PROFILE_DEV, out, err, err_size);
    if (st == CJ_OK)
        cj_log(CJ_LOG_WARN, "kms.root_key_development", NULL,
               CJ_F_STR("path", path),
               CJ_F_BOOL("generated", (*out)->generated));
    return st;
}

enum cj_status kms_root_key_load(const struct kms_root_key_source *src,
                                 struct kms_root_key **out, char *err,
                                 size_t err_size)
{
    bool has_file = src->file_path != NULL && src->file_path[0] != '\0';
    bool has_value = src->value != NULL && src->value[0] != '\0';

    *out = NULL;
    if (has_file && has_value) {
        set_err(err, err_size, "%s",
                "set only one of " KMS_ROOT_KEY_FILE_VAR
                " and " KMS_ROOT_KEY_ENV_VAR);
        return CJ_ERR_INVALID;
    }
    if (has_file)
        return read_file_as(src->file_path, KMS_ROOT_KEY_FILE_VAR,
                            KMS_ROOT_KEY_FILE_VAR, src->allow_generated,
                            src->profile, out, err, err_size);
    if (has_value)
        return parse_into(src->value, strlen(src->value), src->allow_generated,
                          KMS_ROOT_KEY_ENV_VAR, out, err, err_size);
    if (!src->allow_generated || src->generated_path == NULL) {
        set_err(err, err_size, "%s",
                "no root key: set " KMS_ROOT_KEY_FILE_VAR
                " (a file holding 32 random bytes in base64) "
                "or " KMS_ROOT_KEY_ENV_VAR
                "; stage and prod never generate one");
        return CJ_ERR_PRECONDITION;
    }
    return load_or_generate(src->generated_path, out, err, err_size);
}

enum cj_status kms_root_key_check(const struct kms_root_key_source *src,
                                  char *err, size_t err_size)
{
    struct kms_root_key *key = NULL;
    bool has_file = src->file_path != NULL && src->file_path[0] != '\0';
    bool has_value = src->value != NULL && src->value[0] != '\0';
    enum cj_status st;

    if (!has_file && !has_value && src->allow_generated)
        return CJ_OK;
    st = kms_root_key_load(src, &key, err, err_size);
    kms_root_key_free(key);
    return st;
}

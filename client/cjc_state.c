/* Loading, atomically saving and locking the client's state file. */
#include "cjc_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

/* Largest state file accepted, in bytes. */
#define CJC_STATE_MAX_BYTES (256u * 1024u)
/* Pause between two attempts to take a held lock, in milliseconds. */
#define CJC_STATE_LOCK_RETRY_MS 10

enum cj_status cjc_state_default_path(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;

    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, size, "%s/cerrojo/state.json", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(buf, size, "%s/.local/state/cerrojo/state.json", home);
    else
        return CJ_ERR_NOT_FOUND;
    return n > 0 && (size_t)n < size ? CJ_OK : CJ_ERR_TOO_LARGE;
}

enum cj_status cjc_state_quote_for_shell(const char *text, char *out,
                                         size_t outlen)
{
    /* Closes the quoted run, adds an escaped quote and opens a new run. */
    static const char escaped_quote[] = "'\\''";
    size_t used = 0;

    if (outlen < 3)
        return CJ_ERR_TOO_LARGE;
    out[used++] = '\'';
    for (const char *p = text; *p != '\0'; p++) {
        const char *piece = *p == '\'' ? escaped_quote : p;
        size_t len = *p == '\'' ? sizeof(escaped_quote) - 1 : 1;

        /* Room for this piece, the closing quote and the terminator. */
        if (outlen - used < len + 2)
            return CJ_ERR_TOO_LARGE;
        memcpy(out + used, piece, len);
        used += len;
    }
    out[used++] = '\'';
    out[used] = '\0';
    return CJ_OK;
}

/* Writes the reason why text that did not parse as JSON is damaged.
 * Jansson's own error text is not used, because it quotes the text near
 * the error, which may be part of a token or the session key. */
static void describe_json_error(const json_error_t *jerr, char *reason,
                                size_t reason_len)
{
    switch (json_error_code(jerr)) {
    case json_error_premature_end_of_input:
        snprintf(reason, reason_len,
                 "it ends in the middle of the JSON text, "
                 "as a truncated file does");
        break;
    case json_error_invalid_utf8:
        snprintf(reason, reason_len, "it is not valid UTF-8");
        break;
    case json_error_duplicate_key:
        snprintf(reason, reason_len, "a member appears twice, at line %d",
                 jerr->line);
        break;
    default:
        snprintf(reason, reason_len,
                 "it is not valid JSON, at line %d, column %d", jerr->line,
                 jerr->column);
        break;
    }
}

/* Sets the message of a damaged state file: the path, the reason and how to
 * recover. */
static void say_damaged(const char *path, const char *reason, char *err,
                        size_t errlen)
{
    char quoted[CJC_STATE_QUOTED_PATH_MAX];

    if (cjc_state_quote_for_shell(path, quoted, sizeof(quoted)) != CJ_OK) {
        snprintf(err, errlen,
                 "state file %s is damaged (%s). Remove it, then run "
                 "'cerrojo login' to log in again",
                 path, reason);
        return;
    }
    snprintf(err, errlen,
             "state file %s is damaged (%s). Remove it with rm %s, then "
             "run 'cerrojo login' to log in again",
             path, reason, quoted);
}

/* Reads an integer member that the server may have sent as a JSON number
 * or as a decimal string, as gRPC's JSON mapping does for 64-bit fields. */
static bool int_member(const json_t *obj, const char *key, json_int_t *out)
{
    const json_t *v = json_object_get(obj, key);
    const char *text = json_string_value(v);
    char *end = NULL;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (text == NULL || text[0] == '\0')
        return false;
    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Returns whether text is base64url without padding for exactly len bytes. */
static bool is_base64url_key(const char *text, size_t len)
{
    unsigned char bytes[64];
    size_t decoded = 0;
    bool ok;

    if (text == NULL || len > sizeof(bytes))
        return false;
    ok = sodium_base642bin(bytes, sizeof(bytes), text, strlen(text), NULL,
                           &decoded, NULL,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
         decoded == len;
    sodium_memzero(bytes, sizeof(bytes));
    return ok;
}

/* Checks the "session" member. On failure writes the reason and returns
 * false. */
static bool session_valid(const json_t *s, char *reason, size_t reason_len)
{
    const char *id = json_string_value(json_object_get(s, "id"));
    json_int_t created, epoch_seconds, epoch, seq;

    if (!json_is_object(s)) {
        snprintf(reason, reason_len, "\"session\" is not an object");
        return false;
    }
    if (id == NULL || id[0] == '\0') {
        snprintf(reason, reason_len, "\"session\" has no \"id\"");
        return false;
    }
    if (!is_base64url_key(json_string_value(json_object_get(s, "epoch_key")),
                          CJC_STATE_SESSION_KEY_LEN)) {
        snprintf(reason, reason_len,
                 "the session key is missing or is not %d bytes "
                 "of base64url",
                 CJC_STATE_SESSION_KEY_LEN);
        return false;
    }
    if (!int_member(s, "created_at_ms", &created) ||
        !int_member(s, "epoch_seconds", &epoch_seconds) ||
        !int_member(s, "epoch", &epoch) || !int_member(s, "seq", &seq) ||
        created < 0 || epoch_seconds <= 0 || epoch < 0 || epoch > UINT32_MAX ||
        seq < 0) {
        snprintf(reason, reason_len,
                 "\"session\" lacks a valid created_at_ms, epoch_seconds, "
                 "epoch or seq");
        return false;
    }
    return true;
}

/* Checks the "tokens" member. On failure writes the reason and returns
 * false. */
static bool tokens_valid(const json_t *t, char *reason, size_t reason_len)
{
    const json_t *refresh = json_object_get(t, "refresh_token");
    json_int_t expires_at;

    if (!json_is_object(t)) {
        snprintf(reason, reason_len, "\"tokens\" is not an object");
        return false;
    }
    if (!json_is_string(json_object_get(t, "access_token"))) {
        snprintf(reason, reason_len, "\"tokens\" has no \"access_token\"");
        return false;
    }
    if (refresh != NULL && !json_is_string(refresh)) {
        snprintf(reason, reason_len, "\"refresh_token\" is not a string");
        return false;
    }
    if (json_object_get(t, "access_expires_at_ms") != NULL &&
        !int_member(t, "access_expires_at_ms", &expires_at)) {
        snprintf(reason, reason_len,
                 "\"access_expires_at_ms\" is not an integer");
        return false;
    }
    return true;
}

enum cj_status cjc_state_check(const json_t *state, char *reason,
                               size_t reason_len)
{
    const json_t *version = json_object_get(state, "version");
    const json_t *url = json_object_get(state, "url");
    const json_t *offset = json_object_get(state, "clock_offset_ms");
    const json_t *session = json_object_get(state, "session");
    const json_t *tokens = json_object_get(state, "tokens");

    if (!json_is_object(state)) {
        snprintf(reason, reason_len, "it is not a JSON object");
        return CJ_ERR_INVALID;
    }
    /* A file without "version" comes from a client that wrote none, in
     * this same layout. */
    if (version != NULL && (!json_is_integer(version) ||
                            json_integer_value(version) != CJC_STATE_VERSION)) {
        snprintf(reason, reason_len,
                 "its \"version\" is not %d, the only version this client "
                 "reads",
                 CJC_STATE_VERSION);
        return CJ_ERR_INVALID;
    }
    if (url != NULL && !json_is_string(url)) {
        snprintf(reason, reason_len, "\"url\" is not a string");
        return CJ_ERR_INVALID;
    }
    if (offset != NULL && !json_is_integer(offset)) {
        snprintf(reason, reason_len, "\"clock_offset_ms\" is not an integer");
        return CJ_ERR_INVALID;
    }
    if (session != NULL && !session_valid(session, reason, reason_len))
        return CJ_ERR_INVALID;
    if (tokens != NULL && !tokens_valid(tokens, reason, reason_len))
        return CJ_ERR_INVALID;
    return CJ_OK;
}

/*
 * Opens the state file at path without following a symbolic link and
 * checks that it is a regular file of this user that no one else can
 * access. The descriptor is then the only way the file is read, so the
 * file that was checked is the file that is parsed. O_NONBLOCK keeps a
 * FIFO put at path from blocking the open. Stores -1 in *fd_out when the
 * file does not exist.
 */
static enum cj_status open_checked(const char *path, int *fd_out,
                                   struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    enum cj_status rc = CJ_ERR_PERMISSION;

    *fd_out = -1;
    if (fd < 0 && errno == ENOENT)
        return CJ_OK;
    if (fd < 0 && errno == ELOOP) {
        /* cjc_state_resolve_path resolved every link in path, so someone
         * replaced the file by a link while this command ran. */
        snprintf(err, errlen,
                 "state file %s was replaced by a symbolic link; retry, or "
                 "use --state with a file in a folder that only you can write",
                 path);
        return CJ_ERR_PERMISSION;
    }
    if (fd < 0 || fstat(fd, st) != 0) {
        snprintf(err, errlen, "cannot read state file %s: %s", path,
                 strerror(errno));
        rc = CJ_ERR_UNAVAILABLE;
        goto fail;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen,
                 "state file %s is not a regular file; remove it, or use "
                 "--state with a file in a folder that only you can write",
                 path);
        goto fail;
    }
    if (st->st_uid != geteuid()) {
        snprintf(err, errlen,
                 "state file %s is owned by another user (uid %ld); remove "
                 "it, or use --state with a file in a folder that only you "
                 "can write",
                 path, (long)st->st_uid);
        goto fail;
    }
    if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(err, errlen,
                 "state file %s is accessible by other users (mode %03o); "
                 "run chmod 600 on it",
                 path, (unsigned)(st->st_mode & 0777));
        goto fail;
    }
    *fd_out = fd;
    return CJ_OK;

fail:
    if (fd >= 0)
        close(fd);
    return rc;
}

enum cj_status cjc_state_load(const char *path, json_t **out, char *err,
                              size_t errlen)
{
    enum cj_status rc;
    char reason[160];
    struct stat st;
    json_error_t jerr;
    int fd = -1;

    *out = NULL;
    rc = open_checked(path, &fd, &st, err, errlen);
    if (rc != CJ_OK)
        return rc;
    if (fd < 0) {
        *out = json_object();
        return *out != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    rc = CJ_ERR_INVALID;
    if (st.st_size > (off_t)CJC_STATE_MAX_BYTES) {
        snprintf(reason, sizeof(reason), "it is larger than %u bytes",
                 CJC_STATE_MAX_BYTES);
        say_damaged(path, reason, err, errlen);
        goto out;
    }
    if (st.st_size == 0) {
        say_damaged(path, "it is empty", err, errlen);
        goto out;
    }
    *out = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL) {
        describe_json_error(&jerr, reason, sizeof(reason));
        say_damaged(path, reason, err, errlen);
        goto out;
    }
    if (cjc_state_check(*out, reason, sizeof(reason)) != CJ_OK) {
        say_damaged(path, reason, err, errlen);
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    rc = CJ_OK;

out:
    close(fd);
    return rc;
}

/* Writes the folder part of path into folder, or "." for a bare file name. */
static void folder_of(const char *path, char *folder, size_t folder_len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(folder, folder_len, ".");
    else if (slash == path)
        snprintf(folder, folder_len, "/");
    else
        snprintf(folder, folder_len, "%.*s", (int)(slash - path), path);
}

/* Maximum number of links followed to a file that does not exist yet, the
 * same as Linux's MAXSYMLINKS limit for one path lookup. */
#define CJC_STATE_MAX_LINK_HOPS 40

/*
 * Writes into out the path that the symbolic link at link_path names,
 * made absolute against the link's folder, with its folder resolved by
 * realpath(3) and its file name kept. Returns -1 with errno set when the
 * link cannot be read, when the folder does not resolve, or when the
 * target has no file name.
 */
static int read_link_target(const char *link_path, char *out, size_t outlen)
{
    char text[PATH_MAX], joined[PATH_MAX], folder[PATH_MAX];
    const char *slash = strrchr(link_path, '/');
    const char *name;
    ssize_t n = readlink(link_path, text, sizeof(text) - 1);
    int len;

    if (n < 0)
        return -1;
    text[n] = '\0';
    if (text[0] == '/' || slash == NULL)
        len = snprintf(joined, sizeof(joined), "%s", text);
    else
        len = snprintf(joined, sizeof(joined), "%.*s/%s",
                       (int)(slash - link_path), link_path, text);
    if (len < 0 || (size_t)len >= sizeof(joined)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* A target such as "dir/", "." or ".." names a folder, not a file. */
    slash = strrchr(joined, '/');
    name = slash != NULL ? slash + 1 : joined;
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        errno = EISDIR;
        return -1;
    }
    folder_of(joined, folder, sizeof(folder));
    if (realpath(folder, text) == NULL)
        return -1;
    len = snprintf(out, outlen, "%s/%s", strcmp(text, "/") == 0 ? "" : text,
                   name);
    if (len < 0 || (size_t)len >= outlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/*
 * Resolves the symbolic link at path into target. realpath(3) fails with
 * ENOENT when the last link names a file that does not exist yet, as
 * before the first login or after that file was removed. The links are
 * then followed one at a time up to that missing file, which the first
 * save creates. Returns -1 with errno set, ELOOP for too many links.
 */
static int resolve_link(const char *path, char *target, size_t target_len)
{
    char current[PATH_MAX];
    struct stat st;

    if (realpath(path, target) != NULL)
        return 0;
    if (errno != ENOENT)
        return -1;
    snprintf(current, sizeof(current), "%s", path);
    for (int hop = 0; hop < CJC_STATE_MAX_LINK_HOPS; hop++) {
        if (read_link_target(current, target, target_len) != 0)
            return -1;
        if (lstat(target, &st) != 0)
            return errno == ENOENT ? 0 : -1;
        if (!S_ISLNK(st.st_mode))
            return 0;
        snprintf(current, sizeof(current), "%s", target);
    }
    errno = ELOOP;
    return -1;
}

enum cj_status cjc_state_resolve_path(const char *path, char *out,
                                      size_t outlen, char *err, size_t errlen)
{
    char target[PATH_MAX];
    struct stat st;
    bool is_link = false;

    if (lstat(path, &st) == 0) {
        is_link = S_ISLNK(st.st_mode);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read state file %s: %s", path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    if (!is_link) {
        snprintf(target, sizeof(target), "%s", path);
    } else if (resolve_link(path, target, sizeof(target)) != 0) {
        snprintf(err, errlen,
                 "state file %s is a symbolic link that cannot be resolved "
                 "(%s); fix or remove the link",
                 path, strerror(errno));
        return CJ_ERR_INVALID;
    }
    if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state file %s is a folder; name a file", path);
        return CJ_ERR_INVALID;
    }
    if (snprintf(out, outlen, "%s", target) >= (int)outlen) {
        snprintf(err, errlen, "state file path is too long");
        return CJ_ERR_TOO_LARGE;
    }
    return CJ_OK;
}

/* Creates every missing folder of path's parent with mode 0700. */
static int make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -1;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

/*
 * Creates the temporary file for a save beside path, under a random name,
 * and stores that name in tmp. mkostemp(3) opens with O_CREAT | O_EXCL
 * and mode 0600, so a name that another user created first, as a file or
 * as a symbolic link, makes it pick another name instead of writing the
 * secrets there. Returns the descriptor, or -1 with errno set.
 */
static int create_temporary(const char *path, char *tmp, size_t tmplen)
{
    if (snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path) >= (int)tmplen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkostemp(tmp, O_CLOEXEC);
}

/* Writes all of text to fd and flushes it to the disk. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return fsync(fd);
}

/* Length of the random suffix that mkostemp(3) puts in place of XXXXXX. */
#define CJC_STATE_TEMPORARY_SUFFIX_LEN 6

/* Flushes path's folder to the disk, so that after a crash the folder
 * names the file that rename(2) put there, not the older one. */
static int sync_folder(const char *path)
{
    char folder[PATH_MAX];
    int fd, rc;

    folder_of(path, folder, sizeof(folder));
    fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/*
 * Blocks the signals that end the client by default (SIGINT from Ctrl-C,
 * SIGTERM, SIGHUP) and stores the previous mask in old. While they are
 * blocked, the temporary file of a save cannot be left behind with the
 * tokens in it. A blocked signal is delivered when the mask is restored.
 */
static void block_exit_signals(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, old);
}

enum cj_status cjc_state_save(const char *path, const json_t *state, char *err,
                              size_t errlen)
{
    enum cj_status rc = CJ_ERR_UNAVAILABLE;
    char tmp[PATH_MAX] = "";
    bool created = false;
    bool blocked = false;
    sigset_t old_mask;
    char *text = NULL;
    int fd = -1;

    if (make_parent_dirs(path) != 0) {
        snprintf(err, errlen, "cannot create the folder of %s: %s", path,
                 strerror(errno));
        goto out;
    }
    text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        rc = CJ_ERR_NOMEM;
        goto out;
    }
    block_exit_signals(&old_mask);
    blocked = true;
    fd = create_temporary(path, tmp, sizeof(tmp));
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file beside %s: %s",
                 path, strerror(errno));
        goto out;
    }
    created = true;
    if (write_all(fd, text, strlen(text)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    created = false;
    if (sync_folder(path) != 0) {
        snprintf(err, errlen,
                 "saved %s, but cannot flush its folder to the disk: %s", path,
                 strerror(errno));
        goto out;
    }
    rc = CJ_OK;

out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    if (blocked)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (text != NULL) {
        /* The text contains the session key and the tokens. */
        explicit_bzero(text, strlen(text));
        free(text);
    }
    return rc;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Rejects a lock file that is not a regular file of this user. In a folder
 * that others can write, another user could create the name first and
 * then hold the lock for as long as they like.
 */
static enum cj_status check_lock_file(int fd, const char *lock_path, char *err,
                                      size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read lock file %s: %s", lock_path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen,
                 "lock file %s is not a regular file; remove it, or use "
                 "--state with a file in a folder that only you can write",
                 lock_path);
        return CJ_ERR_PERMISSION;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "lock file %s is owned by another user (uid %ld); remove "
                 "it, or use --state with a file in a folder that only you "
                 "can write",
                 lock_path, (long)st.st_uid);
        return CJ_ERR_PERMISSION;
    }
    return CJ_OK;
}

/* Returns whether name is the temporary file name of a save of the state
 * file named base: base.tmp. and the random suffix of mkostemp(3). */
static bool is_temporary_name(const char *name, const char *base)
{
    static const char infix[] = ".tmp.";
    size_t base_len = strlen(base);
    const char *suffix;

    if (strncmp(name, base, base_len) != 0 ||
        strncmp(name + base_len, infix, sizeof(infix) - 1) != 0)
        return false;
    suffix = name + base_len + sizeof(infix) - 1;
    if (strlen(suffix) != CJC_STATE_TEMPORARY_SUFFIX_LEN)
        return false;
    for (const char *p = suffix; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/*
 * Removes the temporary files of path that an earlier save left behind
 * when it was killed (SIGKILL cannot be blocked) or crashed, since they
 * contain tokens. Only regular files of this user are removed, never a
 * link or another user's file. The caller holds the lock, so no save of
 * this state file is running. A file that cannot be removed is left for
 * the next command, because the command itself does not need it gone.
 */
static void remove_leftover_temporaries(const char *path)
{
    char folder[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    struct dirent *entry;
    struct stat st;
    DIR *dir;

    folder_of(path, folder, sizeof(folder));
    dir = opendir(folder);
    if (dir == NULL)
        return;
    while ((entry = readdir(dir)) != NULL) {
        if (!is_temporary_name(entry->d_name, base))
            continue;
        if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && st.st_uid == geteuid())
            unlinkat(dirfd(dir), entry->d_name, 0);
    }
    closedir(dir);
}

enum cj_status cjc_state_lock(const char *path, long wait_ms, int *fd_out,
                              char *err, size_t errlen)
{
    const struct timespec pause = {
        .tv_sec = 0, .tv_nsec = CJC_STATE_LOCK_RETRY_MS * 1000000L};
    char lock_path[PATH_MAX];
    int64_t deadline = monotonic_ms() + (wait_ms > 0 ? wait_ms : 0);
    int fd;

    *fd_out = -1;
    if (snprintf(lock_path, sizeof(lock_path), "%s.lock", path) >=
        (int)sizeof(lock_path)) {
        snprintf(err, errlen, "state file path is too long");
        return CJ_ERR_TOO_LARGE;
    }
    if (make_parent_dirs(path) != 0) {
        snprintf(err, errlen, "cannot create the folder of %s: %s", path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == ELOOP) {
        snprintf(err, errlen,
                 "lock file %s is a symbolic link; remove it, or use --state "
                 "with a file in a folder that only you can write",
                 lock_path);
        return CJ_ERR_PERMISSION;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", lock_path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    if (check_lock_file(fd, lock_path, err, errlen) != CJ_OK) {
        close(fd);
        return CJ_ERR_PERMISSION;
    }
    /*
     * flock(2) has no timeout, so a held lock is retried without blocking
     * until the deadline. EINTR from a signal counts as one more attempt.
     */
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "cannot lock %s: %s", lock_path,
                     strerror(errno));
            close(fd);
            return CJ_ERR_UNAVAILABLE;
        }
        if (monotonic_ms() >= deadline) {
            snprintf(err, errlen,
                     "another cerrojo command is using %s; retry when it "
                     "ends (waited %ld ms for %s)",
                     path, wait_ms, lock_path);
            close(fd);
            return CJ_ERR_TIMEOUT;
        }
        nanosleep(&pause, NULL);
    }
    remove_leftover_temporaries(path);
    *fd_out = fd;
    return CJ_OK;
}

void cjc_state_unlock(int fd)
{
    /* Closing the only descriptor of the open file releases the lock. */
    if (fd >= 0)
        close(fd);
}

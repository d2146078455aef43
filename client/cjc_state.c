/* Loading, atomically saving and locking the client's state file. */
#include "cjc_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

enum cj_status cjc_state_load(const char *path, json_t **out, char *err,
                              size_t errlen)
{
    struct stat st;
    json_error_t jerr;

    *out = NULL;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            *out = json_object();
            return *out != NULL ? CJ_OK : CJ_ERR_NOMEM;
        }
        snprintf(err, errlen, "cannot read state file %s: %s", path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(err, errlen,
                 "state file %s is accessible by other users (mode %03o); "
                 "run chmod 600 on it",
                 path, (unsigned)(st.st_mode & 0777));
        return CJ_ERR_PERMISSION;
    }
    if (st.st_size > (off_t)CJC_STATE_MAX_BYTES) {
        snprintf(err, errlen, "state file %s is larger than %u bytes", path,
                 CJC_STATE_MAX_BYTES);
        return CJ_ERR_TOO_LARGE;
    }
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL || !json_is_object(*out)) {
        snprintf(err, errlen, "state file %s is not a JSON object: %s", path,
                 jerr.text);
        json_decref(*out);
        *out = NULL;
        return CJ_ERR_INVALID;
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

enum cj_status cjc_state_save(const char *path, const json_t *state, char *err,
                              size_t errlen)
{
    enum cj_status rc = CJ_ERR_UNAVAILABLE;
    char tmp[PATH_MAX];
    char *text = NULL;
    int fd = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof(tmp)) {
        snprintf(err, errlen, "state file path is too long");
        return CJ_ERR_TOO_LARGE;
    }
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
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
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
    rc = CJ_OK;

out:
    if (fd >= 0)
        close(fd);
    if (rc != CJ_OK)
        unlink(tmp);
    if (text != NULL) {
        /* The text holds the session key and the tokens. */
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
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", lock_path,
                 strerror(errno));
        return CJ_ERR_UNAVAILABLE;
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
    *fd_out = fd;
    return CJ_OK;
}

void cjc_state_unlock(int fd)
{
    /* Closing the only descriptor of the open file releases the lock. */
    if (fd >= 0)
        close(fd);
}

/*
 * The client's state file: the session (its current epoch key, sequence
 * number and clock offset) and the tokens, as one JSON object in a file of
 * mode 0600. Saving is atomic (temporary file, fsync, rename), and a lock
 * file beside it lets one command at a time use the state.
 */
#ifndef CJC_STATE_H
#define CJC_STATE_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "status.h"

/*
 * Writes the default path into buf: $XDG_STATE_HOME/cerrojo/state.json, or
 * ~/.local/state/cerrojo/state.json.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_default_path(char *buf, size_t size);

/*
 * Writes text into out as one word for a POSIX shell: inside single
 * quotes, with each single quote in text written as '\''. A path quoted so
 * can be pasted into a command even when it contains spaces or shell
 * characters. Fails with CJ_ERR_TOO_LARGE when out is too small.
 */
CJ_WARN_UNUSED enum cj_status
cjc_state_quote_for_shell(const char *text, char *out, size_t outlen);

/* Buffer size for a path of up to PATH_MAX bytes quoted by
 * cjc_state_quote_for_shell, because each byte may become four, plus the
 * two quotes and the terminator. */
#define CJC_STATE_QUOTED_PATH_MAX (4 * PATH_MAX + 3)

/* Layout version of the state file, stored as its "version" member. */
#define CJC_STATE_VERSION 1
/* Length of the session's epoch key, in bytes. */
#define CJC_STATE_SESSION_KEY_LEN 32

/*
 * Writes into out the path that the lock and every save of the state file
 * at path act on. When path is a symbolic link, that is the file it names
 * (realpath(3)), so a save updates the target in place of replacing the
 * link, and the link and its target share one lock. A link to a file that
 * does not exist yet resolves to that file when its folder exists. Fails
 * with CJ_ERR_INVALID for a link loop, a link whose target folder does not
 * resolve, and a folder.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_resolve_path(const char *path,
                                                     char *out, size_t outlen,
                                                     char *err, size_t errlen);

/*
 * Loads the state at path, a path from cjc_state_resolve_path, into *out
 * (a new reference). A missing file gives an empty object. The file is
 * opened once, without following a symbolic link. It is rejected with
 * CJ_ERR_PERMISSION when it is a link, is not a regular file, belongs to
 * another user, or is readable by group or others, because it may contain
 * a session key. A damaged file
 * (empty, truncated, not JSON, or failing cjc_state_check) is rejected
 * with CJ_ERR_INVALID and a message that names the path, the reason and
 * how to recover, and that quotes nothing of the file's content.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_load(const char *path, json_t **out,
                                             char *err, size_t errlen);

/*
 * Checks the members that the client reads: "version" (absent or
 * CJC_STATE_VERSION), "url", "clock_offset_ms", "session" and "tokens".
 * Other members are ignored. On failure writes a short reason, naming
 * members but never their values, into reason.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_check(const json_t *state, char *reason,
                                              size_t reason_len);

/*
 * Saves state to path with mode 0600, creating the parent folder (0700).
 * The text goes to a new file with a random name beside path, created
 * exclusively, which is then renamed over path, and the folder is then
 * flushed to the disk. A failed save removes the new file. SIGINT, SIGTERM
 * and SIGHUP are blocked from its creation to the rename and delivered
 * after, so they cannot leave it behind.
 */
CJ_WARN_UNUSED enum cj_status
cjc_state_save(const char *path, const json_t *state, char *err, size_t errlen);

/* Default maximum wait for the state file's lock, in milliseconds. */
#define CJC_STATE_LOCK_WAIT_MS 30000

/*
 * Takes an exclusive flock(2) on "<path>.lock" (mode 0600, created with
 * the parent folder when missing) and stores its descriptor in *fd_out.
 * The lock file, not the state file, is locked because saving replaces the
 * state file's inode by rename. Waits up to wait_ms for another holder,
 * then fails with CJ_ERR_TIMEOUT. Fails with CJ_ERR_PERMISSION when the
 * lock file is a symbolic link, is not a regular file or belongs to another
 * user. The lock file is never removed, since removing it would let two
 * commands lock two different inodes. Once locked, removes this user's
 * regular files named "<path>.tmp.XXXXXX" that a killed save left behind.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_lock(const char *path, long wait_ms,
                                             int *fd_out, char *err,
                                             size_t errlen);

/* Releases a lock from cjc_state_lock. Accepts -1. */
void cjc_state_unlock(int fd);

#endif

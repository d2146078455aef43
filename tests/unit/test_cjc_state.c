/* Tests for the client's state file: mode, atomic save, rejections, lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "temp_dir_helper.h"

/* Lock wait for tests that expect a timeout, in milliseconds. */
#define TEST_LOCK_WAIT_MS 50

#include "cjc_state.h"

/* A session key of 32 bytes in base64url, as the client stores it. */
#define VALID_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
/* A token value that no error message may quote. */
#define SECRET_TOKEN "eyJzZWNyZXQiOiJkby1ub3QtcHJpbnQifQ"

static char dir[] = "/tmp/cjc_state_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return temp_dir_make(dir);
}

static int teardown(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

/* Writes text to path and sets its permission bits to mode. */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_state_missing_file_is_empty(void **state)
{
    (void)state;
    char path[256], err[256];
    json_t *obj = NULL;

    snprintf(path, sizeof(path), "%s/none.json", dir);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)), CJ_OK);
    assert_true(json_is_object(obj));
    assert_int_equal(json_object_size(obj), 0);
    json_decref(obj);
}

static void test_state_save_is_private_and_loads_back(void **state)
{
    (void)state;
    char path[256], err[256];
    struct stat st;
    json_t *saved = json_pack(
        "{s:i,s:s,s:{s:s,s:s,s:i,s:s,s:i,s:i}}", "version", CJC_STATE_VERSION,
        "url", "http://x", "session", "id", "sid", "epoch_key", VALID_KEY,
        "created_at_ms", 1000, "epoch_seconds", "900", "epoch", 0, "seq", 4);
    json_t *loaded = NULL;

    snprintf(path, sizeof(path), "%s/nested/dir/state.json", dir);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cjc_state_load(path, &loaded, err, sizeof(err)), CJ_OK);
    assert_true(json_equal(saved, loaded));
    json_decref(saved);
    json_decref(loaded);
}

static void test_state_rejects_group_readable_file(void **state)
{
    (void)state;
    char path[256], err[256];
    json_t *obj = NULL;

    snprintf(path, sizeof(path), "%s/open.json", dir);
    write_file(path, "{}", 0644);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_PERMISSION);
    assert_null(obj);
    assert_non_null(strstr(err, "chmod 600"));
}

/*
 * cjc_state_load gets a path whose links are resolved, so a link found
 * there was put in place of the file after resolution, and is rejected
 * in place of being followed. A FIFO is rejected without blocking.
 */
static void test_state_load_rejects_swapped_file(void **state)
{
    (void)state;
    char target[256], path[256], resolved[PATH_MAX], err[512];
    json_t *obj = NULL;

    snprintf(target, sizeof(target), "%s/other-user.json", dir);
    write_file(target, "{}", 0600);
    snprintf(path, sizeof(path), "%s/swapped.json", dir);
    write_file(path, "{}", 0600);
    assert_int_equal(cjc_state_resolve_path(path, resolved, sizeof(resolved),
                                            err, sizeof(err)),
                     CJ_OK);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("other-user.json", path), 0);
    assert_int_equal(cjc_state_load(resolved, &obj, err, sizeof(err)),
                     CJ_ERR_PERMISSION);
    assert_null(obj);
    assert_non_null(strstr(err, "was replaced by a symbolic link"));
    assert_non_null(strstr(err, path));

    snprintf(path, sizeof(path), "%s/fifo-state.json", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_PERMISSION);
    assert_null(obj);
    assert_non_null(strstr(err, "is not a regular file"));

    /* Only root can give a file to another user. */
    if (geteuid() != 0)
        return;
    snprintf(path, sizeof(path), "%s/foreign-state.json", dir);
    write_file(path, "{}", 0600);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_PERMISSION);
    assert_null(obj);
    assert_non_null(strstr(err, "is owned by another user (uid 65534)"));
}

static void test_state_rejects_non_object(void **state)
{
    (void)state;
    char path[256], err[256];
    json_t *obj = NULL;

    snprintf(path, sizeof(path), "%s/array.json", dir);
    write_file(path, "[1,2]", 0600);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(obj);
}

/* Loads text as a state file and checks that it is rejected as damaged
 * with the path, the reason and the way to recover, and no token. */
static void check_damaged(const char *name, const char *text,
                          const char *reason)
{
    char path[256], err[512], remove_hint[300];
    json_t *obj = NULL;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text, 0600);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(obj);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "is damaged"));
    assert_non_null(strstr(err, reason));
    snprintf(remove_hint, sizeof(remove_hint), "Remove it with rm '%s',", path);
    assert_non_null(strstr(err, remove_hint));
    assert_non_null(strstr(err, "cerrojo login"));
    assert_null(strstr(err, "handshake"));
    assert_null(strstr(err, SECRET_TOKEN));
}

static void test_state_truncated_file_damaged(void **state)
{
    (void)state;
    check_damaged("truncated.json",
                  "{\"tokens\":{\"access_token\":\"" SECRET_TOKEN, "truncated");
    check_damaged("empty.json", "", "empty");
}

static void test_state_non_json_damaged(void **state)
{
    (void)state;
    check_damaged("text.json", "access_token=" SECRET_TOKEN "\n",
                  "not valid JSON");
    check_damaged("array.json", "[\"" SECRET_TOKEN "\"]", "not a JSON object");
    check_damaged("twice.json", "{\"url\":\"http://x\",\"url\":\"http://y\"}",
                  "appears twice");
}

static void test_state_wrong_fields_damaged(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {"{\"url\":8080}", "\"url\" is not a string"},
        {"{\"clock_offset_ms\":\"x\"}", "\"clock_offset_ms\""},
        {"{\"session\":\"" SECRET_TOKEN "\"}", "\"session\" is not an object"},
        {"{\"session\":{\"epoch_key\":\"" VALID_KEY "\"}}", "no \"id\""},
        {"{\"session\":{\"id\":\"s\",\"epoch_key\":\"" SECRET_TOKEN "\","
         "\"created_at_ms\":1,\"epoch_seconds\":900,\"epoch\":0,"
         "\"seq\":1}}",
         "session key"},
        {"{\"session\":{\"id\":\"s\",\"epoch_key\":\"" VALID_KEY "\","
         "\"created_at_ms\":1,\"epoch_seconds\":0,\"epoch\":0,"
         "\"seq\":1}}",
         "epoch_seconds"},
        {"{\"session\":{\"id\":\"s\",\"epoch_key\":\"" VALID_KEY "\","
         "\"created_at_ms\":1,\"epoch_seconds\":900,\"epoch\":0}}",
         "seq"},
        {"{\"tokens\":[\"" SECRET_TOKEN "\"]}", "\"tokens\" is not an object"},
        {"{\"tokens\":{\"refresh_token\":\"" SECRET_TOKEN "\"}}",
         "no \"access_token\""},
        {"{\"tokens\":{\"access_token\":\"a\",\"refresh_token\":7}}",
         "\"refresh_token\" is not a string"},
        {"{\"tokens\":{\"access_token\":\"a\","
         "\"access_expires_at_ms\":\"soon\"}}",
         "access_expires_at_ms"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_damaged("fields.json", cases[i].text, cases[i].reason);
}

static void test_state_other_version_damaged(void **state)
{
    (void)state;
    check_damaged("v2.json", "{\"version\":2,\"url\":\"http://x\"}",
                  "\"version\" is not 1");
    check_damaged("v_text.json", "{\"version\":\"1\"}", "\"version\" is not 1");
}

static void test_state_without_version_loads(void **state)
{
    (void)state;
    char path[256], err[512];
    json_t *obj = NULL;

    /* Clients before the version member wrote this layout. */
    snprintf(path, sizeof(path), "%s/old.json", dir);
    write_file(path,
               "{\"url\":\"http://x\",\"clock_offset_ms\":-5,"
               "\"tokens\":{\"access_token\":\"a\",\"refresh_token\":\"r\","
               "\"access_expires_at_ms\":1}}",
               0600);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)), CJ_OK);
    assert_true(json_is_object(obj));
    json_decref(obj);
}

static void test_state_lock_times_out_while_held(void **state)
{
    (void)state;
    char path[256], lock_path[300], err[512], want[400];
    struct stat st;
    int first = -1, second = -1;

    snprintf(path, sizeof(path), "%s/locked/state.json", dir);
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &first, err, sizeof(err)),
        CJ_OK);
    assert_true(first >= 0);
    assert_int_equal(stat(lock_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &second, err, sizeof(err)),
        CJ_ERR_TIMEOUT);
    assert_int_equal(second, -1);
    snprintf(want, sizeof(want),
             "another cerrojo command is using %s; retry when it ends", path);
    assert_non_null(strstr(err, want));

    cjc_state_unlock(first);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &second, err, sizeof(err)),
        CJ_OK);
    cjc_state_unlock(second);
}

static void test_state_lock_survives_save(void **state)
{
    (void)state;
    char path[256], err[512];
    json_t *saved = json_pack("{s:s}", "url", "http://x");
    int first = -1, second = -1;

    /* Saving replaces the state file by rename, and the lock must hold. */
    snprintf(path, sizeof(path), "%s/replaced.json", dir);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &first, err, sizeof(err)),
        CJ_OK);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &second, err, sizeof(err)),
        CJ_ERR_TIMEOUT);
    cjc_state_unlock(first);
    json_decref(saved);
}

/* Counts the entries of folder whose names start with prefix. */
static int count_entries(const char *folder, const char *prefix)
{
    DIR *d = opendir(folder);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/*
 * Another user of a shared folder may create the temporary name that an
 * older client used, FILE.tmp.PID, before the save. Neither a file nor a
 * symbolic link there may receive the state.
 */
static void test_state_save_skips_prepared_temporary(void **state)
{
    (void)state;
    char folder[256], path[300], planted[400], linked[400], victim[300];
    char err[256], text[64] = "";
    json_t *saved = json_pack("{s:s}", "secret", "session-key-text");
    struct stat st;
    int planted_fd;
    FILE *f;

    snprintf(folder, sizeof(folder), "%s/shared", dir);
    assert_int_equal(mkdir(folder, 01777), 0);
    snprintf(path, sizeof(path), "%s/s.json", folder);
    snprintf(planted, sizeof(planted), "%s.tmp.%ld", path, (long)getpid());
    planted_fd = open(planted, O_RDWR | O_CREAT | O_EXCL, 0666);
    assert_true(planted_fd >= 0);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(fstat(planted_fd, &st), 0);
    assert_int_equal(st.st_size, 0);
    close(planted_fd);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(unlink(planted), 0);

    snprintf(victim, sizeof(victim), "%s/victim.txt", dir);
    write_file(victim, "precious", 0644);
    snprintf(linked, sizeof(linked), "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(symlink(victim, linked), 0);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    f = fopen(victim, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof(text), f));
    fclose(f);
    assert_string_equal(text, "precious");
    assert_int_equal(lstat(linked, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(unlink(linked), 0);
    assert_int_equal(count_entries(folder, "s.json.tmp."), 0);
    json_decref(saved);
}

static void test_state_failed_save_leaves_no_temporary(void **state)
{
    (void)state;
    char folder[256], path[300], err[256];
    json_t *saved = json_pack("{s:s}", "url", "http://x");

    /* rename(2) cannot replace a folder with a file. */
    snprintf(folder, sizeof(folder), "%s/failing", dir);
    assert_int_equal(mkdir(folder, 0700), 0);
    snprintf(path, sizeof(path), "%s/s.json", folder);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)),
                     CJ_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "cannot replace"));
    assert_int_equal(count_entries(folder, "s.json.tmp."), 0);
    json_decref(saved);
}

/* Returns whether a file, link or folder exists at path. */
static bool entry_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/*
 * A save killed between creating its temporary file and the rename leaves
 * the file with the tokens behind. The next command to take the lock
 * removes this user's regular files named FILE.tmp.XXXXXX and nothing
 * else.
 */
static void test_state_lock_removes_leftover_temporaries(void **state)
{
    (void)state;
    static const char *const removed[] = {"s.json.tmp.Ab3xYz",
                                          "s.json.tmp.123456"};
    static const char *const kept[] = {
        "s.json.tmp.12345",      "s.json.tmp.1234567",     "s.json.tmp.ab-def",
        "other.json.tmp.AbCdEf", "s.json.lock.tmp.AbCdEf", "s.json"};
    char folder[256], path[300], entry[400], err[512];
    int fd = -1;

    snprintf(folder, sizeof(folder), "%s/leftover", dir);
    assert_int_equal(mkdir(folder, 0700), 0);
    snprintf(path, sizeof(path), "%s/s.json", folder);
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
        snprintf(entry, sizeof(entry), "%s/%s", folder, removed[i]);
        write_file(entry, "{\"tokens\":{}}", 0600);
    }
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        snprintf(entry, sizeof(entry), "%s/%s", folder, kept[i]);
        write_file(entry, "{}", 0600);
    }
    /* A save never creates a link, so a link with a matching name is not
     * this client's file and stays. */
    snprintf(entry, sizeof(entry), "%s/s.json.tmp.LnkAbc", folder);
    assert_int_equal(symlink("s.json", entry), 0);
    if (geteuid() == 0) {
        snprintf(entry, sizeof(entry), "%s/s.json.tmp.Foreig", folder);
        write_file(entry, "{}", 0600);
        assert_int_equal(chown(entry, 65534, 65534), 0);
    }

    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &fd, err, sizeof(err)), CJ_OK);
    cjc_state_unlock(fd);
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
        snprintf(entry, sizeof(entry), "%s/%s", folder, removed[i]);
        assert_false(entry_exists(entry));
    }
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        snprintf(entry, sizeof(entry), "%s/%s", folder, kept[i]);
        assert_true(entry_exists(entry));
    }
    snprintf(entry, sizeof(entry), "%s/s.json.tmp.LnkAbc", folder);
    assert_true(entry_exists(entry));
    if (geteuid() == 0) {
        snprintf(entry, sizeof(entry), "%s/s.json.tmp.Foreig", folder);
        assert_true(entry_exists(entry));
    }
}

/* A save blocks SIGINT, SIGTERM and SIGHUP only while it runs. */
static void test_state_save_restores_signal_mask(void **state)
{
    (void)state;
    char path[256], err[256];
    json_t *saved = json_pack("{s:s}", "url", "http://x");
    sigset_t before, after;

    snprintf(path, sizeof(path), "%s/mask.json", dir);
    assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &before), 0);
    assert_int_equal(cjc_state_save(path, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &after), 0);
    assert_false(sigismember(&after, SIGINT));
    assert_false(sigismember(&after, SIGTERM));
    assert_false(sigismember(&after, SIGHUP));
    assert_int_equal(sigismember(&after, SIGINT), sigismember(&before, SIGINT));
    json_decref(saved);
}

static void test_state_lock_rejects_foreign_lock_file(void **state)
{
    (void)state;
    char path[256], lock_path[300], err[512];
    int fd = -1;

    snprintf(path, sizeof(path), "%s/fifo.json", dir);
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    assert_int_equal(mkfifo(lock_path, 0666), 0);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &fd, err, sizeof(err)),
        CJ_ERR_PERMISSION);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err, "is not a regular file"));

    snprintf(path, sizeof(path), "%s/linked.json", dir);
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    assert_int_equal(symlink("/dev/null", lock_path), 0);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &fd, err, sizeof(err)),
        CJ_ERR_PERMISSION);
    assert_non_null(strstr(err, "is a symbolic link"));

    /* Only root can give a file to another user. */
    if (geteuid() != 0)
        return;
    snprintf(path, sizeof(path), "%s/foreign.json", dir);
    snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    write_file(lock_path, "", 0666);
    assert_int_equal(chown(lock_path, 65534, 65534), 0);
    assert_int_equal(
        cjc_state_lock(path, TEST_LOCK_WAIT_MS, &fd, err, sizeof(err)),
        CJ_ERR_PERMISSION);
    assert_non_null(strstr(err, "is owned by another user"));
}

static void test_state_resolve_follows_link(void **state)
{
    (void)state;
    char path[256], link_path[256], resolved[PATH_MAX], want[PATH_MAX];
    char err[512];

    snprintf(path, sizeof(path), "%s/target.json", dir);
    write_file(path, "{}", 0600);
    snprintf(link_path, sizeof(link_path), "%s/link.json", dir);
    assert_int_equal(symlink("target.json", link_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_OK);
    assert_non_null(realpath(path, want));
    assert_string_equal(resolved, want);

    /* A missing file is kept as named, since the first save creates it. */
    snprintf(path, sizeof(path), "%s/new.json", dir);
    assert_int_equal(cjc_state_resolve_path(path, resolved, sizeof(resolved),
                                            err, sizeof(err)),
                     CJ_OK);
    assert_string_equal(resolved, path);

    snprintf(link_path, sizeof(link_path), "%s/gone.json", dir);
    assert_int_equal(symlink("missing-folder/s.json", link_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "is a symbolic link that cannot be resolved"));

    snprintf(link_path, sizeof(link_path), "%s/loop-a.json", dir);
    assert_int_equal(symlink("loop-b.json", link_path), 0);
    snprintf(path, sizeof(path), "%s/loop-b.json", dir);
    assert_int_equal(symlink("loop-a.json", path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "is a symbolic link that cannot be resolved"));

    snprintf(link_path, sizeof(link_path), "%s/to-folder.json", dir);
    assert_int_equal(symlink("missing-folder/", link_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "is a symbolic link that cannot be resolved"));
}

/*
 * A link to a file that does not exist yet, as before the first login,
 * resolves to that file, also through a second link, and the first save
 * creates it and keeps the links in place.
 */
static void test_state_resolve_link_to_missing_file(void **state)
{
    (void)state;
    char real_dir[PATH_MAX], link_path[256], hop_path[256], want[PATH_MAX + 32];
    char resolved[PATH_MAX], err[512];
    json_t *saved = json_pack("{s:s}", "url", "http://x");
    struct stat st;

    assert_non_null(realpath(dir, real_dir));
    snprintf(link_path, sizeof(link_path), "%s/first.json", dir);
    assert_int_equal(symlink("hop.json", link_path), 0);
    snprintf(hop_path, sizeof(hop_path), "%s/hop.json", dir);
    assert_int_equal(symlink("./sub/../real.json", hop_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "is a symbolic link that cannot be resolved"));

    assert_int_equal(unlink(hop_path), 0);
    assert_int_equal(symlink("real.json", hop_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_OK);
    snprintf(want, sizeof(want), "%s/real.json", real_dir);
    assert_string_equal(resolved, want);
    assert_int_equal(cjc_state_save(resolved, saved, err, sizeof(err)), CJ_OK);
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(hop_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(want, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    json_decref(saved);
}

/* The client loads the resolved path, so the advice for a damaged file
 * names the link's target: removing the link would not remove the file. */
static void test_state_damaged_link_names_target(void **state)
{
    (void)state;
    char real_dir[PATH_MAX], link_path[256], target[PATH_MAX + 32];
    char resolved[PATH_MAX], err[1024], want[PATH_MAX + 64];
    json_t *obj = NULL;

    assert_non_null(realpath(dir, real_dir));
    snprintf(target, sizeof(target), "%s/damaged-target.json", real_dir);
    write_file(target, "{", 0600);
    snprintf(link_path, sizeof(link_path), "%s/damaged-link.json", dir);
    assert_int_equal(symlink("damaged-target.json", link_path), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_OK);
    assert_int_equal(cjc_state_load(resolved, &obj, err, sizeof(err)),
                     CJ_ERR_INVALID);
    snprintf(want, sizeof(want), "Remove it with rm '%s',", target);
    assert_non_null(strstr(err, want));
    assert_null(strstr(err, "damaged-link.json"));

    /* After the advice is followed, the link resolves again to the same
     * file, which the next login creates. */
    assert_int_equal(unlink(target), 0);
    assert_int_equal(cjc_state_resolve_path(link_path, resolved,
                                            sizeof(resolved), err, sizeof(err)),
                     CJ_OK);
    assert_string_equal(resolved, target);
    assert_int_equal(cjc_state_load(resolved, &obj, err, sizeof(err)), CJ_OK);
    assert_true(json_is_object(obj));
    json_decref(obj);
}

static void test_state_quote_for_shell(void **state)
{
    (void)state;
    char out[64], small[8];

    assert_int_equal(cjc_state_quote_for_shell("/tmp/s.json", out, sizeof(out)),
                     CJ_OK);
    assert_string_equal(out, "'/tmp/s.json'");
    assert_int_equal(cjc_state_quote_for_shell("/a b/$x;`y`", out, sizeof(out)),
                     CJ_OK);
    assert_string_equal(out, "'/a b/$x;`y`'");
    assert_int_equal(cjc_state_quote_for_shell("/it's", out, sizeof(out)),
                     CJ_OK);
    assert_string_equal(out, "'/it'\\''s'");
    assert_int_equal(cjc_state_quote_for_shell("", out, sizeof(out)), CJ_OK);
    assert_string_equal(out, "''");
    assert_int_equal(cjc_state_quote_for_shell("/abcdef", small, sizeof(small)),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(cjc_state_quote_for_shell("/abcd", small, sizeof(small)),
                     CJ_OK);
    assert_string_equal(small, "'/abcd'");
}

/* The advice for a damaged file must paste as one argument, whatever
 * characters the path contains. */
static void test_state_damaged_advice_quotes_path(void **state)
{
    (void)state;
    char folder[256], path[300], err[1024], want[700];
    json_t *obj = NULL;

    snprintf(folder, sizeof(folder), "%s/it's a dir", dir);
    assert_int_equal(mkdir(folder, 0700), 0);
    snprintf(path, sizeof(path), "%s/s.json", folder);
    write_file(path, "{", 0600);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_INVALID);
    snprintf(want, sizeof(want),
             "Remove it with rm '%s/it'\\''s a dir/s.json',", dir);
    assert_non_null(strstr(err, want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_missing_file_is_empty),
        cmocka_unit_test(test_state_save_is_private_and_loads_back),
        cmocka_unit_test(test_state_rejects_group_readable_file),
        cmocka_unit_test(test_state_rejects_non_object),
        cmocka_unit_test(test_state_load_rejects_swapped_file),
        cmocka_unit_test(test_state_truncated_file_damaged),
        cmocka_unit_test(test_state_non_json_damaged),
        cmocka_unit_test(test_state_wrong_fields_damaged),
        cmocka_unit_test(test_state_other_version_damaged),
        cmocka_unit_test(test_state_without_version_loads),
        cmocka_unit_test(test_state_lock_times_out_while_held),
        cmocka_unit_test(test_state_lock_survives_save),
        cmocka_unit_test(test_state_save_skips_prepared_temporary),
        cmocka_unit_test(test_state_failed_save_leaves_no_temporary),
        cmocka_unit_test(test_state_lock_rejects_foreign_lock_file),
        cmocka_unit_test(test_state_lock_removes_leftover_temporaries),
        cmocka_unit_test(test_state_save_restores_signal_mask),
        cmocka_unit_test(test_state_resolve_follows_link),
        cmocka_unit_test(test_state_resolve_link_to_missing_file),
        cmocka_unit_test(test_state_damaged_link_names_target),
        cmocka_unit_test(test_state_quote_for_shell),
        cmocka_unit_test(test_state_damaged_advice_quotes_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

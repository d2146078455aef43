/* Tests for the client's state file: mode, atomic save, rejections, lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "temp_dir_helper.h"

/* Lock wait for tests that expect a timeout, in milliseconds. */
#define TEST_LOCK_WAIT_MS 50

#include "cjc_state.h"

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
    json_t *saved =
        json_pack("{s:s,s:{s:i}}", "url", "http://x", "session", "seq", 4);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_missing_file_is_empty),
        cmocka_unit_test(test_state_save_is_private_and_loads_back),
        cmocka_unit_test(test_state_rejects_group_readable_file),
        cmocka_unit_test(test_state_rejects_non_object),
        cmocka_unit_test(test_state_lock_times_out_while_held),
        cmocka_unit_test(test_state_lock_survives_save),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

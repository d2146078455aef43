/* Tests for the client's state file: mode, atomic save, rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cjc_state.h"

static char dir[] = "/tmp/cjc_state_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
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
    FILE *f;

    snprintf(path, sizeof(path), "%s/open.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{}", f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
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
    FILE *f;

    snprintf(path, sizeof(path), "%s/array.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[1,2]", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(cjc_state_load(path, &obj, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_missing_file_is_empty),
        cmocka_unit_test(test_state_save_is_private_and_loads_back),
        cmocka_unit_test(test_state_rejects_group_readable_file),
        cmocka_unit_test(test_state_rejects_non_object),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Tests for the permission rule of key files: stage and prod reject a file
 * that other users can read or write, dev logs a warning, and group read
 * (Kubernetes Secrets mounted with mode 0440) stays allowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "temp_dir_helper.h"

#define VARIABLE "CERROJO_TEST_KEY_FILE"

static char dir[] = "/tmp/cerrojo-key-mode-XXXXXX";
static char path[128];
static char log_path[128];

static int group_setup(void **state)
{
    (void)state;
    if (temp_dir_make(dir) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(log_path, sizeof(log_path), "%s/log", dir);
    cj_log_init("test", CJ_LOG_INFO);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return temp_dir_remove(dir);
}

/* Writes the key file with `mode` and returns it open for reading. */
static int key_file_with_mode(mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    return fd;
}

/* Runs the check with the log sent to log_path; returns the log text. */
static enum cj_status check_logged(int fd, enum cj_profile profile, char *err,
                                   char *log, size_t log_size)
{
    int log_fd = open(log_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(log_fd >= 0);
    cj_log_set_fd(log_fd);
    enum cj_status st = cj_config_check_key_file_mode(
        fd, VARIABLE, path, profile, err, CJ_CONFIG_ERROR_MAX);
    cj_log_set_fd(STDERR_FILENO);
    ssize_t n = pread(log_fd, log, log_size - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(log_fd);
    return st;
}

static void test_owner_only_accepted_everywhere(void **state)
{
    (void)state;
    const enum cj_profile profiles[] = {CJ_PROFILE_DEV, CJ_PROFILE_STAGE,
                                        CJ_PROFILE_PROD};
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char log[1024];
    int fd = key_file_with_mode(0600);

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(check_logged(fd, profiles[i], err, log, sizeof(log)),
                         CJ_OK);
        assert_string_equal(log, "");
    }
    close(fd);
}

static void test_group_read_accepted_in_prod(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char log[1024];
    int fd = key_file_with_mode(0440);

    assert_int_equal(check_logged(fd, CJ_PROFILE_PROD, err, log, sizeof(log)),
                     CJ_OK);
    assert_string_equal(log, "");
    close(fd);
}

static void test_other_read_rejected_in_prod(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char log[1024];
    int fd = key_file_with_mode(0644);

    assert_int_equal(check_logged(fd, CJ_PROFILE_PROD, err, log, sizeof(log)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, VARIABLE ": "));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "other users can read this key file"));
    assert_non_null(strstr(err, "mode 0644"));
    assert_non_null(strstr(err, "prod profile"));
    assert_non_null(strstr(err, "chmod 600"));
    close(fd);
}

static void test_other_write_rejected_in_stage(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char log[1024];
    int fd = key_file_with_mode(0602);

    assert_int_equal(check_logged(fd, CJ_PROFILE_STAGE, err, log, sizeof(log)),
                     CJ_ERR_INVALID);
    assert_non_null(strstr(err, "other users can write this key file"));
    assert_non_null(strstr(err, "stage profile"));
    close(fd);
}

static void test_dev_warns_and_accepts(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    char log[1024];
    int fd = key_file_with_mode(0644);

    assert_int_equal(check_logged(fd, CJ_PROFILE_DEV, err, log, sizeof(log)),
                     CJ_OK);
    assert_string_equal(err, "");
    assert_non_null(strstr(log, "\"event\":\"config.key_file_insecure_mode\""));
    assert_non_null(strstr(log, "\"level\":\"warn\""));
    assert_non_null(strstr(log, "\"variable\":\"" VARIABLE "\""));
    assert_non_null(strstr(log, "\"mode\":\"0644\""));
    /* The key itself never reaches the log. */
    assert_null(strstr(log, "AAECAwQF"));
    close(fd);
}

static void test_without_variable_names_path(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    int fd = key_file_with_mode(0604);

    assert_int_equal(cj_config_check_key_file_mode(
                         fd, NULL, path, CJ_PROFILE_PROD, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_only_accepted_everywhere),
        cmocka_unit_test(test_group_read_accepted_in_prod),
        cmocka_unit_test(test_other_read_rejected_in_prod),
        cmocka_unit_test(test_other_write_rejected_in_stage),
        cmocka_unit_test(test_dev_warns_and_accepts),
        cmocka_unit_test(test_without_variable_names_path),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

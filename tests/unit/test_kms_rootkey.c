/* Tests for the root-key loading rules of kms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>

#include "kms_rootkey.h"
#include "log.h"

/* 32 bytes 0x00..0x1f in standard base64. */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static char dir[64];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    cj_log_init("kms", CJ_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/kms-rootkey-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_parse_accepts_padded_and_unpadded(void **state)
{
    (void)state;
    unsigned char key[KMS_ROOT_KEY_BYTES];
    bool generated = true;
    const char *texts[] = {KEY_B64, KEY_B64 "\n",
                           "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"};

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(
            kms_root_key_parse(texts[i], strlen(texts[i]), key, &generated),
            CJ_OK);
        assert_false(generated);
        assert_int_equal(key[0], 0x00);
        assert_int_equal(key[31], 0x1f);
    }
}

static void test_parse_reads_generated_marker(void **state)
{
    (void)state;
    unsigned char key[KMS_ROOT_KEY_BYTES];
    bool generated = false;
    const char *text = "generated:" KEY_B64;

    assert_int_equal(kms_root_key_parse(text, strlen(text), key, &generated),
                     CJ_OK);
    assert_true(generated);
}

static void test_parse_rejects_wrong_length(void **state)
{
    (void)state;
    unsigned char key[KMS_ROOT_KEY_BYTES];
    bool generated = false;
    const char *short_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";
    const char *junk = KEY_B64 "x";

    assert_int_equal(
        kms_root_key_parse(short_key, strlen(short_key), key, &generated),
        CJ_ERR_INVALID);
    assert_int_equal(kms_root_key_parse(junk, strlen(junk), key, &generated),
                     CJ_ERR_INVALID);
    assert_int_equal(kms_root_key_parse("", 0, key, &generated),
                     CJ_ERR_INVALID);
}

static void test_load_from_value(void **state)
{
    (void)state;
    struct kms_root_key_source src = {.value = KEY_B64};
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)), CJ_OK);
    assert_non_null(key);
    assert_false(key->generated);
    assert_int_equal(key->bytes[5], 0x05);
    kms_root_key_free(key);
}

static void test_load_rejects_both_sources(void **state)
{
    (void)state;
    struct kms_root_key_source src = {.value = KEY_B64,
                                      .file_path = "/nonexistent"};
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(key);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY_FILE"));
}

static void test_stage_rejects_missing_key(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/never", dir);
    struct kms_root_key_source src = {.allow_generated = false,
                                      .generated_path = path};
    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)),
                     CJ_ERR_PRECONDITION);
    assert_null(key);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY_FILE"));
    assert_int_equal(access(path, F_OK), -1);
}

static void test_stage_rejects_generated_key(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/generated-key", dir);
    write_file(path, "generated:" KEY_B64 "\n");
    struct kms_root_key_source file_src = {.file_path = path};
    assert_int_equal(kms_root_key_load(&file_src, &key, err, sizeof(err)),
                     CJ_ERR_PRECONDITION);
    assert_null(key);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY_FILE"));

    struct kms_root_key_source env_src = {.value = "generated:" KEY_B64};
    assert_int_equal(kms_root_key_load(&env_src, &key, err, sizeof(err)),
                     CJ_ERR_PRECONDITION);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY"));
}

static void test_dev_generates_once_with_mode_0600(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *first = NULL;
    struct kms_root_key *second = NULL;
    struct stat st;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/dev-root-key", dir);
    struct kms_root_key_source src = {.allow_generated = true,
                                      .generated_path = path};
    assert_int_equal(kms_root_key_load(&src, &first, err, sizeof(err)), CJ_OK);
    assert_true(first->generated);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(kms_root_key_load(&src, &second, err, sizeof(err)), CJ_OK);
    assert_memory_equal(first->bytes, second->bytes, KMS_ROOT_KEY_BYTES);
    kms_root_key_free(first);
    kms_root_key_free(second);

    /* The generated file is marked, so stage rejects it by name. */
    struct kms_root_key_source stage = {.file_path = path};
    assert_int_equal(kms_root_key_load(&stage, &first, err, sizeof(err)),
                     CJ_ERR_PRECONDITION);
}

static void test_dev_accepts_operator_key_file(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/operator-key", dir);
    write_file(path, KEY_B64 "\n");
    struct kms_root_key_source src = {.file_path = path};
    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)), CJ_OK);
    assert_false(key->generated);
    assert_int_equal(key->bytes[31], 0x1f);
    kms_root_key_free(key);
}

static void test_missing_file_names_variable(void **state)
{
    (void)state;
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";
    struct kms_root_key_source src = {.file_path = "/nonexistent/kms-key"};

    assert_int_not_equal(kms_root_key_load(&src, &key, err, sizeof(err)),
                         CJ_OK);
    assert_null(key);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY_FILE"));
}

static void test_prod_rejects_file_others_can_read(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/shared-key", dir);
    write_file(path, KEY_B64 "\n");
    assert_int_equal(chmod(path, 0644), 0);
    struct kms_root_key_source src = {.file_path = path,
                                      .profile = CJ_PROFILE_PROD};
    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_null(key);
    assert_non_null(strstr(err, "CERROJO_KMS_ROOT_KEY_FILE: "));
    assert_non_null(strstr(err, "other users can read"));
    assert_non_null(strstr(err, "chmod 600"));

    /* The same check runs for --print-config and for rewrap-root. */
    assert_int_equal(kms_root_key_check(&src, err, sizeof(err)),
                     CJ_ERR_INVALID);
    assert_int_equal(
        kms_root_key_read_file(path, CJ_PROFILE_STAGE, &key, err, sizeof(err)),
        CJ_ERR_INVALID);
    assert_non_null(strstr(err, "other users can read"));

    /* dev accepts it, with a warning in the log. */
    src.profile = CJ_PROFILE_DEV;
    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)), CJ_OK);
    kms_root_key_free(key);
}

static void test_prod_accepts_group_readable_file(void **state)
{
    (void)state;
    char path[128];
    struct kms_root_key *key = NULL;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    /* Kubernetes mounts the root key Secret with defaultMode 0440. */
    snprintf(path, sizeof(path), "%s/secret-volume-key", dir);
    write_file(path, KEY_B64 "\n");
    assert_int_equal(chmod(path, 0440), 0);
    struct kms_root_key_source src = {.file_path = path,
                                      .profile = CJ_PROFILE_PROD};
    assert_int_equal(kms_root_key_load(&src, &key, err, sizeof(err)), CJ_OK);
    kms_root_key_free(key);
}

static void test_check_generates_no_dev_key(void **state)
{
    (void)state;
    char path[128];
    struct stat st;
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";

    snprintf(path, sizeof(path), "%s/not-generated", dir);
    struct kms_root_key_source src = {.allow_generated = true,
                                      .generated_path = path};
    assert_int_equal(kms_root_key_check(&src, err, sizeof(err)), CJ_OK);
    assert_int_not_equal(stat(path, &st), 0);

    struct kms_root_key_source stage = {.profile = CJ_PROFILE_STAGE};
    assert_int_equal(kms_root_key_check(&stage, err, sizeof(err)),
                     CJ_ERR_PRECONDITION);
    assert_non_null(strstr(err, "no root key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_padded_and_unpadded),
        cmocka_unit_test(test_parse_reads_generated_marker),
        cmocka_unit_test(test_parse_rejects_wrong_length),
        cmocka_unit_test(test_load_from_value),
        cmocka_unit_test(test_load_rejects_both_sources),
        cmocka_unit_test(test_stage_rejects_missing_key),
        cmocka_unit_test(test_stage_rejects_generated_key),
        cmocka_unit_test(test_dev_generates_once_with_mode_0600),
        cmocka_unit_test(test_dev_accepts_operator_key_file),
        cmocka_unit_test(test_missing_file_names_variable),
        cmocka_unit_test(test_prod_rejects_file_others_can_read),
        cmocka_unit_test(test_prod_accepts_group_readable_file),
        cmocka_unit_test(test_check_generates_no_dev_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

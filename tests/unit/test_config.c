/* Tests for declarative configuration: parsing, bounds, .env, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

struct demo_config {
    char *listen;
    long long threads;
    bool plaintext;
    long long idle;
    long long memory;
    char *key_file;
    char *password;
};

static const struct cj_config_option DEMO_OPTIONS[] = {
    {.name = "CJT_LISTEN",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct demo_config, listen),
     .default_value = "127.0.0.1:50052",
     .help = "gRPC listen address (host:port)"},
    {.name = "CJT_THREADS",
     .type = CJ_CONFIG_INT,
     .offset = offsetof(struct demo_config, threads),
     .default_value = "4",
     .min = 1,
     .max = 64,
     .help = "worker threads"},
    {.name = "CJT_PLAINTEXT",
     .type = CJ_CONFIG_BOOL,
     .offset = offsetof(struct demo_config, plaintext),
     .default_value = "false",
     .help = "serve gRPC without TLS"},
    {.name = "CJT_IDLE",
     .type = CJ_CONFIG_DURATION,
     .offset = offsetof(struct demo_config, idle),
     .default_value = "5m",
     .min = 1,
     .max = 86400,
     .help = "idle expiry in seconds"},
    {.name = "CJT_MEMORY",
     .type = CJ_CONFIG_BYTES,
     .offset = offsetof(struct demo_config, memory),
     .default_value = "19MiB",
     .help = "Argon2id memory in bytes"},
    {.name = "CJT_KEY_FILE",
     .type = CJ_CONFIG_PATH,
     .offset = offsetof(struct demo_config, key_file),
     .help = "root key file"},
    {.name = "CJT_PASSWORD",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct demo_config, password),
     .dev_default = "dev-password",
     .secret = true,
     .help = "database password"},
};
#define DEMO_COUNT (sizeof(DEMO_OPTIONS) / sizeof(*DEMO_OPTIONS))

static void clear_env(void)
{
    for (size_t i = 0; i < DEMO_COUNT; i++) {
        unsetenv(DEMO_OPTIONS[i].name);
    }
    unsetenv("CJT_FROM_FILE");
    unsetenv("CJT_KEY");
    unsetenv("CJT_KEY_FILE");
    unsetenv("CJT_QUOTED");
    unsetenv("CJT_SINGLE");
    unsetenv("CJT_EXPORTED");
    unsetenv("CJT_THREADZ");
    unsetenv("CJTX_OTHER");
    unsetenv("CERROJO_KMS_ADDR");
    unsetenv("CERROJO_KMS_LISTN");
    unsetenv("CERROJO_KMS_PORT");
    unsetenv("CERROJO_KMS_PROT");
    unsetenv(CJ_CONFIG_ENV_FILE_VAR);
    unsetenv(CJ_CONFIG_PROFILE_VAR);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static enum cj_status parse_demo(struct demo_config *cfg,
                                 enum cj_profile profile, char *err)
{
    memset(cfg, 0, sizeof(*cfg));
    return cj_config_parse(DEMO_OPTIONS, DEMO_COUNT, profile, cfg, err,
                           CJ_CONFIG_ERROR_MAX);
}

static void test_parse_applies_defaults(void **state)
{
    (void)state;
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_OK);
    assert_string_equal(cfg.listen, "127.0.0.1:50052");
    assert_int_equal(cfg.threads, 4);
    assert_false(cfg.plaintext);
    assert_int_equal(cfg.idle, 300);
    assert_int_equal(cfg.memory, 19LL * 1024 * 1024);
    assert_null(cfg.key_file);
    assert_string_equal(cfg.password, "dev-password");
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
    assert_null(cfg.listen);
}

static void test_parse_reads_environment(void **state)
{
    (void)state;
    setenv("CJT_LISTEN", "127.0.0.1:57001", 1);
    setenv("CJT_THREADS", "64", 1);
    setenv("CJT_PLAINTEXT", "Yes", 1);
    setenv("CJT_IDLE", "2h", 1);
    setenv("CJT_MEMORY", "64k", 1);
    setenv("CJT_KEY_FILE", "/etc/cerrojo/root.key", 1);
    setenv("CJT_PASSWORD", "s3cret", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_PROD, err), CJ_OK);
    assert_string_equal(cfg.listen, "127.0.0.1:57001");
    assert_int_equal(cfg.threads, 64);
    assert_true(cfg.plaintext);
    assert_int_equal(cfg.idle, 7200);
    assert_int_equal(cfg.memory, 65536);
    assert_string_equal(cfg.key_file, "/etc/cerrojo/root.key");
    assert_string_equal(cfg.password, "s3cret");
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_int_error_names_variable_and_range(void **state)
{
    (void)state;
    setenv("CJT_THREADS", "x", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
    assert_string_equal(
        err, "CJT_THREADS: expected an integer from 1 to 64, got 'x'");
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_int_rejects_out_of_range_and_trailing_text(void **state)
{
    (void)state;
    const char *bad[] = {
        "0", "65", "-1", "4x", "", " 4", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        setenv("CJT_THREADS", bad[i], 1);
        struct demo_config cfg;
        char err[CJ_CONFIG_ERROR_MAX] = "";
        assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
        assert_non_null(strstr(err, "CJT_THREADS: expected an integer"));
        cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
    }
}

static void test_duration_accepts_units_and_rejects_others(void **state)
{
    (void)state;
    const struct {
        const char *text;
        long long seconds;
    } good[] = {{"90", 90}, {"90s", 90}, {"5m", 300}, {"1d", 86400}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        setenv("CJT_IDLE", good[i].text, 1);
        struct demo_config cfg;
        char err[CJ_CONFIG_ERROR_MAX] = "";
        assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_OK);
        assert_int_equal(cfg.idle, good[i].seconds);
        cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
    }
    setenv("CJT_IDLE", "5 weeks", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CJT_IDLE: expected a duration in seconds"));
    assert_non_null(strstr(err, "from 1 to 86400, got '5 weeks'"));
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_bytes_rejects_overflow(void **state)
{
    (void)state;
    setenv("CJT_MEMORY", "99999999999G", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CJT_MEMORY: expected a size in bytes"));
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_bool_rejects_unknown_word(void **state)
{
    (void)state;
    setenv("CJT_PLAINTEXT", "maybe", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CJT_PLAINTEXT: expected a boolean"));
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_empty_path_is_rejected(void **state)
{
    (void)state;
    setenv("CJT_KEY_FILE", "", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_DEV, err), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CJT_KEY_FILE: expected a non-empty"));
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_dev_default_rejected_in_prod(void **state)
{
    (void)state;
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_PROD, err), CJ_ERR_INVALID);
    assert_string_equal(err, "CJT_PASSWORD: must be set in the prod profile "
                             "(its development default is allowed only in "
                             "dev)");
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_required_option_missing_is_named(void **state)
{
    (void)state;
    const struct cj_config_option opts[] = {
        {.name = "CJT_LISTEN",
         .type = CJ_CONFIG_STRING,
         .offset = offsetof(struct demo_config, listen),
         .required = true,
         .help = "listen address"},
    };
    struct demo_config cfg = {0};
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(
        cj_config_parse(opts, 1, CJ_PROFILE_DEV, &cfg, err, sizeof(err)),
        CJ_ERR_INVALID);
    assert_string_equal(err, "CJT_LISTEN: missing, expected a string");
}

static void test_secret_value_not_echoed_in_error(void **state)
{
    (void)state;
    const struct cj_config_option opts[] = {
        {.name = "CJT_THREADS",
         .type = CJ_CONFIG_INT,
         .offset = offsetof(struct demo_config, threads),
         .secret = true,
         .help = "a secret number"},
    };
    setenv("CJT_THREADS", "hunter2", 1);
    struct demo_config cfg = {0};
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(
        cj_config_parse(opts, 1, CJ_PROFILE_DEV, &cfg, err, sizeof(err)),
        CJ_ERR_INVALID);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "CJT_THREADS"));
}

static void test_dump_redacts_secrets(void **state)
{
    (void)state;
    setenv("CJT_PASSWORD", "s3cret", 1);
    struct demo_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(parse_demo(&cfg, CJ_PROFILE_STAGE, err), CJ_OK);

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    cj_config_dump(DEMO_OPTIONS, DEMO_COUNT, CJ_PROFILE_STAGE, &cfg, mem);
    fclose(mem);
    assert_null(strstr(text, "s3cret"));
    assert_non_null(strstr(text, "CERROJO_PROFILE=stage\n"));
    assert_non_null(strstr(text, "CJT_PASSWORD=<redacted>\n"));
    assert_non_null(strstr(text, "CJT_THREADS=4\n"));
    assert_non_null(strstr(text, "CJT_KEY_FILE=\n"));
    free(text);
    cj_config_free(DEMO_OPTIONS, DEMO_COUNT, &cfg);
}

static void test_profile_parses_and_rejects(void **state)
{
    (void)state;
    enum cj_profile p = CJ_PROFILE_PROD;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_profile(&p, err, sizeof(err)), CJ_OK);
    assert_int_equal(p, CJ_PROFILE_DEV);
    setenv(CJ_CONFIG_PROFILE_VAR, "stage", 1);
    assert_int_equal(cj_config_profile(&p, err, sizeof(err)), CJ_OK);
    assert_int_equal(p, CJ_PROFILE_STAGE);
    setenv(CJ_CONFIG_PROFILE_VAR, "production", 1);
    assert_int_equal(cj_config_profile(&p, err, sizeof(err)), CJ_ERR_INVALID);
    assert_string_equal(err, "CERROJO_PROFILE: expected one of dev, stage, "
                             "prod, got 'production'");
}

static void test_require_dev_names_variable(void **state)
{
    (void)state;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_require_dev(CJ_PROFILE_DEV, "CJT_PLAINTEXT",
                                           "plaintext gRPC is dev-only", err,
                                           sizeof(err)),
                     CJ_OK);
    assert_int_equal(cj_config_require_dev(CJ_PROFILE_PROD, "CJT_PLAINTEXT",
                                           "plaintext gRPC is dev-only", err,
                                           sizeof(err)),
                     CJ_ERR_INVALID);
    assert_string_equal(
        err, "CJT_PLAINTEXT: plaintext gRPC is dev-only (profile is prod)");
}

/* Writes `text` to a fresh temporary file and returns its path. */
static void write_temp(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/cj-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void test_env_file_loads_without_overriding(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, sizeof(path),
               "# a comment\n"
               "\n"
               "CJT_FROM_FILE=plain value # trailing comment\n"
               "CJT_THREADS=7\n"
               "export CJT_EXPORTED = 1\n"
               "CJT_QUOTED=\"a \\\"b\\\" #c\"\n"
               "CJT_SINGLE='x=$y'\n");
    setenv(CJ_CONFIG_ENV_FILE_VAR, path, 1);
    setenv("CJT_THREADS", "9", 1);
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_load_env_file(err, sizeof(err)), CJ_OK);
    unlink(path);
    assert_string_equal(getenv("CJT_FROM_FILE"), "plain value");
    assert_string_equal(getenv("CJT_THREADS"), "9");
    assert_string_equal(getenv("CJT_EXPORTED"), "1");
    assert_string_equal(getenv("CJT_QUOTED"), "a \"b\" #c");
    assert_string_equal(getenv("CJT_SINGLE"), "x=$y");
}

static void test_env_file_reports_bad_line(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, sizeof(path), "CJT_OK=1\nthis line is wrong\n");
    setenv(CJ_CONFIG_ENV_FILE_VAR, path, 1);
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_load_env_file(err, sizeof(err)), CJ_ERR_INVALID);
    unlink(path);
    unsetenv("CJT_OK");
    char expected[128];
    snprintf(expected, sizeof(expected), "%s:2: expected NAME=value", path);
    assert_string_equal(err, expected);
}

static void test_env_file_named_but_missing_fails(void **state)
{
    (void)state;
    setenv(CJ_CONFIG_ENV_FILE_VAR, "/nonexistent/cerrojo.env", 1);
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_load_env_file(err, sizeof(err)), CJ_ERR_INVALID);
    assert_non_null(strstr(err, "CERROJO_ENV_FILE"));
    assert_non_null(strstr(err, "/nonexistent/cerrojo.env"));
}

static void test_env_file_rejects_duplicate_name(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, sizeof(path),
               "CJT_THREADS=4\n"
               "CJT_IDLE=5m\n"
               "export CJT_THREADS=8\n");
    setenv(CJ_CONFIG_ENV_FILE_VAR, path, 1);
    char err[CJ_CONFIG_ERROR_MAX] = "";
    assert_int_equal(cj_config_load_env_file(err, sizeof(err)), CJ_ERR_INVALID);
    unlink(path);
    char expected[CJ_CONFIG_ERROR_MAX];
    snprintf(expected, sizeof(expected),
             "%s:3: CJT_THREADS is already set on line 1; keep one of the "
             "two lines",
             path);
    assert_string_equal(err, expected);
}

struct key_config {
    char *key;
    char *key_file;
};

static const struct cj_config_option KEY_OPTIONS[] = {
    {.name = "CJT_KEY",
     .type = CJ_CONFIG_STRING,
     .offset = offsetof(struct key_config, key),
     .secret = true,
     .help = "the key itself"},
    {.name = "CJT_KEY_FILE",
     .type = CJ_CONFIG_PATH,
     .offset = offsetof(struct key_config, key_file),
     .help = "file containing CJT_KEY instead",
     .file_of = "CJT_KEY"},
};
#define KEY_COUNT (sizeof(KEY_OPTIONS) / sizeof(*KEY_OPTIONS))

static enum cj_status parse_keys(struct key_config *cfg, char *err)
{
    memset(cfg, 0, sizeof(*cfg));
    return cj_config_parse(KEY_OPTIONS, KEY_COUNT, CJ_PROFILE_DEV, cfg, err,
                           CJ_CONFIG_ERROR_MAX);
}

static void test_value_and_its_file_rejected(void **state)
{
    (void)state;
    struct key_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    setenv("CJT_KEY", "s3cret", 1);
    setenv("CJT_KEY_FILE", "/etc/cerrojo/key", 1);

    assert_int_equal(parse_keys(&cfg, err), CJ_ERR_INVALID);
    cj_config_free(KEY_OPTIONS, KEY_COUNT, &cfg);

    assert_string_equal(
        err, "CJT_KEY and CJT_KEY_FILE are both set; set only one of them");
    assert_null(strstr(err, "s3cret"));
}

static void test_value_or_its_file_accepted(void **state)
{
    (void)state;
    struct key_config cfg;
    char err[CJ_CONFIG_ERROR_MAX] = "";

    setenv("CJT_KEY_FILE", "/etc/cerrojo/key", 1);
    setenv("CJT_KEY", "", 1);
    assert_int_equal(parse_keys(&cfg, err), CJ_OK);
    assert_string_equal(cfg.key_file, "/etc/cerrojo/key");
    cj_config_free(KEY_OPTIONS, KEY_COUNT, &cfg);

    unsetenv("CJT_KEY_FILE");
    setenv("CJT_KEY", "s3cret", 1);
    assert_int_equal(parse_keys(&cfg, err), CJ_OK);
    assert_string_equal(cfg.key, "s3cret");
    cj_config_free(KEY_OPTIONS, KEY_COUNT, &cfg);
}

/*
 * Runs cj_config_warn_unknown with the log sent to a temporary file and
 * copies what it logged into text. Returns the number of warnings.
 */
static size_t warn_unknown_logged(const char *prefix,
                                  const struct cj_config_option *options,
                                  size_t count, char *text, size_t size)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    cj_log_init("test", CJ_LOG_INFO);
    cj_log_set_fd(fileno(f));
    size_t warnings = cj_config_warn_unknown(prefix, options, count);
    cj_log_set_fd(STDERR_FILENO);
    rewind(f);
    size_t n = fread(text, 1, size - 1, f);
    text[n] = '\0';
    fclose(f);
    return warnings;
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n') {
            lines++;
        }
    }
    return lines;
}

static void test_warn_unknown_names_unread_variable(void **state)
{
    (void)state;
    char text[4096];
    setenv("CJT_THREADS", "8", 1);
    setenv("CJT_THREADZ", "value-not-to-log", 1);
    setenv("CJTX_OTHER", "1", 1);

    size_t warnings = warn_unknown_logged("CJT_", DEMO_OPTIONS, DEMO_COUNT,
                                          text, sizeof(text));

    assert_int_equal(warnings, 1);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, "\"event\":\"config.unknown_variable\""));
    assert_non_null(strstr(text, "\"level\":\"warn\""));
    assert_non_null(strstr(text, "\"variable\":\"CJT_THREADZ\""));
    assert_null(strstr(text, "value-not-to-log"));
    assert_null(strstr(text, "CJTX_OTHER"));
}

static void test_warn_unknown_silent_for_stack_script_ports(void **state)
{
    (void)state;
    char text[4096];
    setenv("CERROJO_KMS_PORT", "50452", 1);
    setenv("CERROJO_KMS_PROT", "50452", 1);

    size_t warnings = warn_unknown_logged("CERROJO_KMS_", DEMO_OPTIONS,
                                          DEMO_COUNT, text, sizeof(text));

    assert_int_equal(warnings, 1);
    assert_non_null(strstr(text, "\"variable\":\"CERROJO_KMS_PROT\""));
    assert_null(strstr(text, "\"variable\":\"CERROJO_KMS_PORT\""));
}

static void test_warn_unknown_silent_for_read_variables(void **state)
{
    (void)state;
    char text[4096];
    setenv("CJT_THREADS", "8", 1);
    setenv("CJT_LISTEN", "127.0.0.1:1", 1);

    size_t warnings = warn_unknown_logged("CJT_", DEMO_OPTIONS, DEMO_COUNT,
                                          text, sizeof(text));

    assert_int_equal(warnings, 0);
    assert_string_equal(text, "");
}

static void test_warn_unknown_skips_gateway_backend_address(void **state)
{
    (void)state;
    static const struct cj_config_option kms_options[] = {
        {.name = "CERROJO_KMS_LISTEN", .type = CJ_CONFIG_STRING},
    };
    char text[4096];
    /* The gateway reads CERROJO_KMS_ADDR; a shared environment gives it to
     * kms too. The misspelt LISTN is still reported. */
    setenv("CERROJO_KMS_ADDR", "127.0.0.1:1", 1);
    setenv("CERROJO_KMS_LISTN", "127.0.0.1:2", 1);

    (void)warn_unknown_logged("CERROJO_KMS_", kms_options, 1, text,
                              sizeof(text));

    assert_null(strstr(text, "\"CERROJO_KMS_ADDR\""));
    assert_non_null(strstr(text, "\"variable\":\"CERROJO_KMS_LISTN\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_applies_defaults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parse_reads_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_int_error_names_variable_and_range,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_int_rejects_out_of_range_and_trailing_text, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_duration_accepts_units_and_rejects_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_rejects_overflow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bool_rejects_unknown_word, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_path_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dev_default_rejected_in_prod,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_option_missing_is_named,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_value_not_echoed_in_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_redacts_secrets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_profile_parses_and_rejects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_require_dev_names_variable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_env_file_loads_without_overriding,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_reports_bad_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_env_file_named_but_missing_fails,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_rejects_duplicate_name,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_and_its_file_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_value_or_its_file_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_warn_unknown_names_unread_variable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_warn_unknown_silent_for_read_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_warn_unknown_skips_gateway_backend_address, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_warn_unknown_silent_for_stack_script_ports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

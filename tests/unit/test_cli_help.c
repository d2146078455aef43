/* Tests for the help requests of the service binaries' command lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_help.h"

static const char *const commands[] = {"serve", "rotate"};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void test_help_in_place_of_the_command(void **state)
{
    (void)state;
    char *const help[] = {"bin", "--help", NULL};
    char *const short_help[] = {"bin", "-h", NULL};
    assert_true(cj_cli_help_requested(2, help, false));
    assert_true(cj_cli_help_requested(2, short_help, false));
}

static void test_help_after_a_known_command(void **state)
{
    (void)state;
    char *const argv[] = {"bin", "rotate", "signing", "--help", NULL};
    assert_true(cj_cli_help_requested(
        4, argv, cj_cli_is_command(argv[1], commands, COMMAND_COUNT)));
}

static void test_help_after_an_unknown_command_is_not_help(void **state)
{
    (void)state;
    char *const argv[] = {"bin", "rotat", "--help", NULL};
    bool known = cj_cli_is_command(argv[1], commands, COMMAND_COUNT);
    assert_false(known);
    assert_false(cj_cli_help_requested(3, argv, known));
}

static void test_no_help_without_the_option(void **state)
{
    (void)state;
    char *const bare[] = {"bin", NULL};
    char *const argv[] = {"bin", "rotate", "hpke", NULL};
    char *const lookalike[] = {"bin", "serve", "--helpme", NULL};
    assert_false(cj_cli_help_requested(1, bare, false));
    assert_false(cj_cli_help_requested(3, argv, true));
    assert_false(cj_cli_help_requested(3, lookalike, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_in_place_of_the_command),
        cmocka_unit_test(test_help_after_a_known_command),
        cmocka_unit_test(test_help_after_an_unknown_command_is_not_help),
        cmocka_unit_test(test_no_help_without_the_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

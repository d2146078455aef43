/*
 * Command-line help requests of the service binaries, which take a
 * command and, for some commands, arguments after it.
 */
#ifndef CJ_CLI_HELP_H
#define CJ_CLI_HELP_H

#include <stdbool.h>
#include <stddef.h>

/* Returns whether arg is --help or -h. */
bool cj_cli_is_help(const char *arg);

/* Returns whether name is one of the count names in names. */
bool cj_cli_is_command(const char *name, const char *const *names,
                       size_t count);

/*
 * Returns whether the command line requests the usage: --help or -h in
 * place of the command, or anywhere after it when command_known is true
 * (the command exists). So `cerrojo-kms rotate --help` does not take
 * --help for a key purpose, and an unknown command followed by --help is
 * still reported as unknown.
 */
bool cj_cli_help_requested(int argc, char *const *argv, bool command_known);

#endif

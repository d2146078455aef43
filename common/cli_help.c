/* Command-line help requests of the service binaries. */
#include "cli_help.h"

#include <string.h>

bool cj_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool cj_cli_is_command(const char *name, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

bool cj_cli_help_requested(int argc, char *const *argv, bool command_known)
{
    if (argc <= 1) {
        return false;
    }
    if (cj_cli_is_help(argv[1])) {
        return true;
    }
    if (!command_known) {
        return false;
    }
    for (int i = 2; i < argc; i++) {
        if (cj_cli_is_help(argv[i])) {
            return true;
        }
    }
    return false;
}

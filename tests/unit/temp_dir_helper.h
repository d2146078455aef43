/*
 * A temporary folder for the tests of one program: made by the group
 * setup from a mkdtemp template, removed with its contents by the group
 * teardown.
 */
#ifndef TEMP_DIR_HELPER_H
#define TEMP_DIR_HELPER_H

#include <stdio.h>
#include <stdlib.h>

/* Turns the template (ending in XXXXXX) into a new folder; 0 on success. */
static inline int temp_dir_make(char *template_path)
{
    return mkdtemp(template_path) != NULL ? 0 : -1;
}

/* Removes the folder and everything in it; 0 on success. */
static inline int temp_dir_remove(const char *path)
{
    char cmd[128];

    if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path) >= (int)sizeof(cmd))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

#endif

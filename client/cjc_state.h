/*
 * The client's state file: the session (its current epoch key, sequence
 * number and clock offset) and the tokens, as one JSON object in a file of
 * mode 0600. Saving is atomic (temporary file, fsync, rename).
 */
#ifndef CJC_STATE_H
#define CJC_STATE_H

#include <stddef.h>

#include <jansson.h>

#include "status.h"

/*
 * Writes the default path into buf: $XDG_STATE_HOME/cerrojo/state.json, or
 * ~/.local/state/cerrojo/state.json.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_default_path(char *buf, size_t size);

/*
 * Loads the state at path into *out (a new reference). A missing file
 * gives an empty object. A file readable by group or others is rejected,
 * since it may hold a session key.
 */
CJ_WARN_UNUSED enum cj_status cjc_state_load(const char *path, json_t **out,
                                             char *err, size_t errlen);

/* Saves state to path with mode 0600, creating the parent folder (0700). */
CJ_WARN_UNUSED enum cj_status
cjc_state_save(const char *path, const json_t *state, char *err, size_t errlen);

#endif

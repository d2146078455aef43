/*
 * The check that the auth schema has every migration this build needs.
 * Without them each call fails in SQL, so auth stays NOT_SERVING and logs
 * which files are missing.
 */
#ifndef AUTH_SCHEMA_H
#define AUTH_SCHEMA_H

#include <stddef.h>

#include "auth_service.h"

/* Room for the names of the missing migration files, ", "-separated. */
#define AUTH_SCHEMA_MISSING_MAX 1024

/*
 * Checks auth.schema_migrations through a pooled connection. Returns CJ_OK
 * when every migration is applied, CJ_ERR_PRECONDITION with the missing
 * file names in missing when some are not, and the acquire or query status
 * otherwise (missing then contains the database's message, or is empty).
 */
CJ_WARN_UNUSED enum cj_status
auth_schema_check(struct auth_service *svc, char *missing, size_t missing_size);

#endif

/* The check that the auth migrations of this build are applied. */
#include "auth_schema.h"

#include "migrate.h"
#include "migrations_list.h"

static const char *const auth_migrations[] = {CJ_MIGRATIONS_AUTH};

enum cj_status auth_schema_check(struct auth_service *svc, char *missing,
                                 size_t missing_size)
{
    struct cj_db_conn *conn = NULL;
    enum cj_status rc = cj_db_acquire(svc->db, -1, &conn);

    if (missing_size > 0) {
        missing[0] = '\0';
    }
    if (rc != CJ_OK) {
        return rc;
    }
    rc = cj_migrate_check_applied(conn, "auth", auth_migrations,
                                  sizeof(auth_migrations) /
                                      sizeof(*auth_migrations),
                                  missing, missing_size);
    cj_db_release(conn);
    return rc;
}

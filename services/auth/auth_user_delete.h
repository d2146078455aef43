/*
 * Deletion of a user for the delete-user command. The user's row goes
 * with everything that references it (profile and data fields, refresh
 * tokens); a durable revocation of the user stops every access token
 * already issued; session ends the user's sessions; kms forgets the
 * user's data key, so a backup's encrypted fields can no longer be
 * decrypted. Audit rows are kept, with the event user.deleted added.
 */
#ifndef AUTH_USER_DELETE_H
#define AUTH_USER_DELETE_H

#include <stdbool.h>

#include "auth_ids.h"
#include "auth_service.h"

/* The steps a deletion completed, filled as far as it got. */
struct auth_user_delete_report {
    char user_id[AUTH_UUID_TEXT_SIZE]; /* "" when the name matched no user */
    bool row_deleted; /* the user's row existed and was deleted */
    bool
        sessions_ended; /* session ended the sessions and took the revocation */
    bool key_checked;   /* kms completed the request to forget the key */
    bool key_forgotten; /* kms held a data key record and dropped it */
};

/*
 * Deletes the user that user_ref names: a user id (a UUID in either case,
 * reported in lower case) or a username or email as login accepts it.
 * With a user id whose row is already gone, the later steps still run
 * when auth recorded that user's deletion, so a repeat finishes a
 * deletion that stopped part way. Returns CJ_ERR_NOT_FOUND when a name
 * matches no user or an id has neither a row nor a deletion record;
 * CJ_ERR_UNAVAILABLE or another error when a step failed, with *report
 * saying which steps were done.
 */
CJ_WARN_UNUSED enum cj_status
auth_user_delete(struct auth_service *svc, const char *user_ref,
                 struct auth_user_delete_report *report);

#endif

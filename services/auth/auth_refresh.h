/*
 * Refresh-token rotation (RFC 9700 section 4.14): each use marks the token
 * used and issues a successor in the same family; presenting a used or
 * revoked token revokes the family and its session. An optional grace
 * period lets a client retry with the token it just used.
 */
#ifndef AUTH_REFRESH_H
#define AUTH_REFRESH_H

#include <stdint.h>

#include "auth_store.h"

/* Defaults of the configuration settings. */
#define AUTH_REFRESH_TOKEN_LIFETIME_S_DEFAULT  (30LL * 24 * 3600)
#define AUTH_REFRESH_FAMILY_LIFETIME_S_DEFAULT (90LL * 24 * 3600)
#define AUTH_REFRESH_GRACE_S_DEFAULT           0

enum auth_refresh_action {
    AUTH_REFRESH_ROTATE = 0,  /* live token: issue the successor */
    AUTH_REFRESH_GRACE_RETRY, /* just used, successor unseen: replace it */
    AUTH_REFRESH_REUSE,       /* used or revoked: revoke the family */
    AUTH_REFRESH_EXPIRED,     /* past its own or its family's expiry */
};

/*
 * Decides what a presented token leads to. successor is the row that
 * token->replaced_by names, or NULL. grace_ms 0 turns the grace period off,
 * so any second use is reuse. user_revoked_at_ms is the user's last
 * "logout of all devices" (0 for none): a token issued before it counts as
 * revoked.
 */
enum auth_refresh_action
auth_refresh_decide(const struct auth_refresh_row *token,
                    const struct auth_refresh_row *successor, int64_t now_ms,
                    int64_t grace_ms, int64_t user_revoked_at_ms);

/* Name of an action for logs: "rotate", "grace_retry", "reuse" or
 * "expired". */
const char *auth_refresh_action_name(enum auth_refresh_action action);

/* Expiry of a successor issued at now_ms: the token lifetime, capped by
 * the family's absolute expiry. */
int64_t auth_refresh_successor_expiry(int64_t now_ms, int64_t lifetime_ms,
                                      int64_t family_expires_at_ms);

#endif

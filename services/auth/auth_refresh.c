/* Refresh-token rotation: the decision and the Refresh flow. */
#include "auth_refresh.h"

enum auth_refresh_action
auth_refresh_decide(const struct auth_refresh_row *token,
                    const struct auth_refresh_row *successor, int64_t now_ms,
                    int64_t grace_ms, int64_t user_revoked_at_ms)
{
    bool successor_live;

    if (token->revoked_at_ms != 0) {
        return AUTH_REFRESH_REUSE;
    }
    if (user_revoked_at_ms != 0 && token->issued_at_ms <= user_revoked_at_ms) {
        return AUTH_REFRESH_REUSE;
    }
    if (token->used_at_ms == 0) {
        if (now_ms >= token->expires_at_ms ||
            now_ms >= token->family_expires_at_ms) {
            return AUTH_REFRESH_EXPIRED;
        }
        return AUTH_REFRESH_ROTATE;
    }
    /* A used token: a retry within grace only while the successor has
     * never been used, so the retry cannot fork the family. */
    successor_live = successor != NULL && successor->used_at_ms == 0 &&
                     successor->revoked_at_ms == 0;
    if (grace_ms > 0 && successor_live &&
        now_ms - token->used_at_ms <= grace_ms &&
        now_ms < token->family_expires_at_ms) {
        return AUTH_REFRESH_GRACE_RETRY;
    }
    return AUTH_REFRESH_REUSE;
}

int64_t auth_refresh_successor_expiry(int64_t now_ms, int64_t lifetime_ms,
                                      int64_t family_expires_at_ms)
{
    int64_t expiry = now_ms + lifetime_ms;

    return expiry < family_expires_at_ms ? expiry : family_expires_at_ms;
}

const char *auth_refresh_action_name(enum auth_refresh_action action)
{
    switch (action) {
    case AUTH_REFRESH_ROTATE:
        return "rotate";
    case AUTH_REFRESH_GRACE_RETRY:
        return "grace_retry";
    case AUTH_REFRESH_REUSE:
        return "reuse";
    case AUTH_REFRESH_EXPIRED:
        return "expired";
    }
    return "unknown";
}

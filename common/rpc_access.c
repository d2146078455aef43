/* Matching of peer identities against a method's access rule. */
#include "rpc_access.h"

#include <string.h>

bool cj_rpc_access_allowed(const char *const allowed[CJ_RPC_ALLOWED_MAX],
                           const char *identity)
{
    if (identity == NULL || identity[0] == '\0') {
        return false;
    }
    for (size_t i = 0; i < CJ_RPC_ALLOWED_MAX && allowed[i] != NULL; i++) {
        if (strcmp(allowed[i], CJ_RPC_ANY_PLATFORM) == 0 ||
            strcmp(allowed[i], identity) == 0) {
            return true;
        }
    }
    return false;
}

static bool identity_char_valid(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return !first && (c == '.' || c == '-');
}

bool cj_rpc_identity_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > CJ_RPC_IDENTITY_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!identity_char_valid(name[i], i == 0)) {
            return false;
        }
    }
    return true;
}

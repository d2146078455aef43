/*
 * Access rules of gRPC methods. A peer's identity is the common name (CN) of
 * its client certificate, which the TLS handshake verified against the
 * platform CA. A rule lists the identities that may call one method.
 */
#ifndef CJ_RPC_ACCESS_H
#define CJ_RPC_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

/* Maximum length of an identity (the CN), in bytes. */
#define CJ_RPC_IDENTITY_MAX_LEN 64

/* Maximum number of identities in one rule. */
#define CJ_RPC_ALLOWED_MAX 4

/* In a rule, matches any caller holding a certificate of the platform CA. */
#define CJ_RPC_ANY_PLATFORM "*"

/* The identities of the services named in the access rules. */
#define CJ_RPC_ID_GATEWAY "gateway"
#define CJ_RPC_ID_AUTH    "auth"
#define CJ_RPC_ID_KMS     "kms"
#define CJ_RPC_ID_SESSION "session"

/*
 * Returns whether `identity` may call a method whose rule is `allowed`, a
 * list of at most CJ_RPC_ALLOWED_MAX identities ended by NULL or by the end
 * of the array. An empty rule allows no caller, and an empty or NULL
 * identity matches no rule, not even CJ_RPC_ANY_PLATFORM.
 */
bool cj_rpc_access_allowed(const char *const allowed[CJ_RPC_ALLOWED_MAX],
                           const char *identity);

/*
 * Returns whether the `len` bytes at `name` form a usable identity: 1 to
 * CJ_RPC_IDENTITY_MAX_LEN characters of [a-z0-9.-], starting with a letter
 * or digit.
 */
bool cj_rpc_identity_valid(const char *name, size_t len);

#endif

/*
 * Redis key names of the revocation cache that both session and auth use.
 * Session owns the cache. Auth deletes only the loaded marker, after it
 * failed to deliver a revocation that it committed, so that IsRevoked
 * fails closed until auth's next full load sets the marker again.
 */
#ifndef CJ_REVOCATION_CACHE_H
#define CJ_REVOCATION_CACHE_H

/* Prefix of every key of the revocation cache. */
#define CJ_REVOKED_KEY_PREFIX "cerrojo:revoked:"
/* The marker that the cache is complete. Without it IsRevoked fails with
 * FAILED_PRECONDITION. Only the last batch of a full load sets it. */
#define CJ_REVOKED_LOADED_KEY CJ_REVOKED_KEY_PREFIX "loaded"

#endif

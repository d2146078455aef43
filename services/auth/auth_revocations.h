/*
 * Keeps session's revocation cache whole. A background thread calls
 * session's GetRevocationCacheStatus. When the cache is not loaded (Redis
 * restarted empty or was flushed), it sends every unexpired row of
 * auth.revocations in batches, the last with complete=true, which sets the
 * loaded marker. Until then IsRevoked fails and callers fail closed.
 *
 * A revocation that session did not store (RevokeToken or RevokeUser failed
 * after the row was committed) marks the cache stale. The thread then
 * sends every row again, retrying every AUTH_REVOCATION_RETRY_MS until a
 * reload succeeds, because session's loaded marker may have outlived the
 * outage and IsRevoked would otherwise accept the token.
 * NOTE: the stale mark lives in this process only. If auth stops between
 * committing a revocation and sending it, the cache gets the row at its
 * next full reload, and until then IsRevoked accepts the token.
 */
#ifndef AUTH_REVOCATIONS_H
#define AUTH_REVOCATIONS_H

#include "auth_service.h"

/* Revocations sent per LoadRevocations call. */
#define AUTH_REVOCATION_BATCH 500
/* Pause between reloads while the cache is stale, in milliseconds. */
#define AUTH_REVOCATION_RETRY_MS 1000

/* Loads every unexpired revocation into session's cache. */
CJ_WARN_UNUSED enum cj_status auth_revocations_reload(struct auth_service *svc,
                                                      const char *request_id);

/* Checks the cache once and reloads it when it is not loaded. */
CJ_WARN_UNUSED enum cj_status auth_revocations_check(struct auth_service *svc,
                                                     const char *request_id);

/* Marks session's cache stale after a revocation it did not store, and
 * wakes the watcher thread to reload it. */
void auth_revocations_mark_stale(struct auth_service *svc);

/* Thread body: checks the cache and the clock every cfg.cache_watch_s
 * until svc->stopping, and reloads a stale cache at once. */
void *auth_revocations_watch(void *svc);

/* Waits up to ms or until svc->stopping; returns false when stopping. */
bool auth_service_sleep(struct auth_service *svc, int64_t ms);

#endif

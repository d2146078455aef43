/*
 * Keeps session's revocation cache whole. A background thread calls
 * session's GetRevocationCacheStatus. When the cache is not loaded (Redis
 * restarted empty or was flushed), it sends every unexpired row of
 * auth.revocations in batches, the last with complete=true, which sets the
 * loaded marker. Until then IsRevoked fails and callers fail closed.
 */
#ifndef AUTH_REVOCATIONS_H
#define AUTH_REVOCATIONS_H

#include "auth_service.h"

/* Revocations sent per LoadRevocations call. */
#define AUTH_REVOCATION_BATCH 500

/* Loads every unexpired revocation into session's cache. */
CJ_WARN_UNUSED enum cj_status auth_revocations_reload(struct auth_service *svc,
                                                      const char *request_id);

/* Checks the cache once and reloads it when it is not loaded. */
CJ_WARN_UNUSED enum cj_status auth_revocations_check(struct auth_service *svc,
                                                     const char *request_id);

/* Thread body: checks the cache and the clock every cfg.cache_watch_s
 * until svc->stopping. */
void *auth_revocations_watch(void *svc);

/* Waits up to ms or until svc->stopping; returns false when stopping. */
bool auth_service_sleep(struct auth_service *svc, int64_t ms);

#endif

/*
 * Keeps session's revocation cache whole. A background thread calls
 * session's GetRevocationCacheStatus. When the cache is not loaded (Redis
 * restarted empty or was flushed), it sends every unexpired row of
 * auth.revocations in batches, the last with complete=true, which sets the
 * loaded marker. Until then IsRevoked fails and callers fail closed.
 *
 * Each row records whether session confirmed it (sent_at). A flow that
 * commits a revocation sends it (RevokeToken, RevokeUser, DeleteSession)
 * and then marks the row confirmed, and so does every batch a reload
 * sends. When the cache is loaded, the thread sends the unconfirmed rows
 * older than AUTH_REVOCATION_RESEND_GRACE_S with complete=false, which
 * leaves the loaded marker as it is, and confirms them. This covers an
 * auth process that stopped between committing a row and sending it,
 * which session's loaded marker would otherwise hide until the row
 * expires. The thread does this on every check, and at start without the
 * grace: a replica that stopped, even killed, may have left rows of the
 * last seconds unsent, and their revocations must not wait for the grace
 * and the next check. Rows that another replica is still sending go out
 * twice, which is harmless.
 *
 * A revocation that session did not store (the call failed after the row
 * was committed) also marks the cache stale in memory. The thread then
 * sends every row at once, retrying every AUTH_REVOCATION_RETRY_MS until a
 * reload succeeds, because session's loaded marker may have outlived the
 * outage. This is faster than waiting for the grace and the next check.
 *
 * Every cfg.cache_reload_s the thread also sends every row again, because a
 * confirmed row can still be lost when Redis drops acknowledged writes and
 * keeps its loaded marker (a failover to a lagging replica, a crash).
 */
#ifndef AUTH_REVOCATIONS_H
#define AUTH_REVOCATIONS_H

#include "auth_service.h"
#include "auth_store.h"

/* Revocations sent per LoadRevocations call. */
#define AUTH_REVOCATION_BATCH 500
/* Pause between reloads while the cache is stale, in milliseconds. */
#define AUTH_REVOCATION_RETRY_MS 1000
/* Age in seconds before an unconfirmed row is sent again. It leaves time
 * for the flow that committed it, on any replica, to send and confirm it
 * in several calls of up to CERROJO_AUTH_RPC_TIMEOUT_MS each. A row sent
 * twice is harmless. */
#define AUTH_REVOCATION_RESEND_GRACE_S 10
/* Random bytes of a full load's id, and the size of its hex text. */
#define AUTH_LOAD_ID_BYTES 16
#define AUTH_LOAD_ID_SIZE  (AUTH_LOAD_ID_BYTES * 2 + 1)
/* Max full loads in a row while Redis loses keys during each. After that
 * the watcher's next round tries again. */
#define AUTH_LOAD_ATTEMPTS 3

/* Loads every unexpired revocation into session's cache. */
CJ_WARN_UNUSED enum cj_status auth_revocations_reload(struct auth_service *svc,
                                                      const char *request_id);

/* Sends the unconfirmed rows older than grace_s seconds to session's
 * cache without touching its loaded marker, and marks them confirmed. */
CJ_WARN_UNUSED enum cj_status auth_revocations_resend(struct auth_service *svc,
                                                      const char *request_id,
                                                      int grace_s);

/* Checks the cache once: reloads it when it is not loaded, and otherwise
 * resends the unconfirmed rows older than grace_s seconds. */
CJ_WARN_UNUSED enum cj_status auth_revocations_check(struct auth_service *svc,
                                                     const char *request_id,
                                                     int grace_s);

/* Marks one row confirmed after session stored it. revoked_at is the
 * Unix second sent with a user's revocation and is ignored for the other
 * kinds. A failure is logged, and the watcher sends the row again. */
void auth_revocations_confirm(struct auth_service *svc, const char *request_id,
                              enum auth_revocation_kind kind,
                              const char *subject, int64_t revoked_at);

/* Returns the instant (Unix ms) after which no access token issued up to
 * now_ms is valid: its lifetime plus the verifiers' leeway. */
int64_t auth_revocation_expiry_ms(const struct auth_service *svc,
                                  int64_t now_ms);

/*
 * Marks session's cache stale after a revocation it did not store, and
 * wakes the watcher thread to reload it. Also deletes the cache's loaded
 * marker in auth's Redis, so that IsRevoked fails closed until the reload
 * sets it again, and logs auth.revocation_cache_invalidated with reason.
 */
void auth_revocations_mark_stale(struct auth_service *svc,
                                 const char *request_id, const char *reason);

/* Thread body: checks the cache and the clock every cfg.cache_watch_s
 * until svc->stopping, and reloads a stale cache at once. */
void *auth_revocations_watch(void *svc);

/* Waits up to ms or until svc->stopping; returns false when stopping. */
bool auth_service_sleep(struct auth_service *svc, int64_t ms);

#endif

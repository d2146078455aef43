/*
 * The session service's core, independent of gRPC: session lifecycle
 * (create, open, advance, bind, delete) and the revocation cache. The RPC
 * handlers translate messages to these calls; the worker and the tests
 * call them directly.
 */
#ifndef SESS_SERVICE_H
#define SESS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "sess_crypto.h"
#include "sess_keys.h"
#include "sess_metrics.h"
#include "sess_store.h"
#include "status.h"

/* Defaults, each overridable by configuration. */
#define SESS_DEFAULT_EPOCH_SECONDS          900
#define SESS_DEFAULT_GRACE_SECONDS          60
#define SESS_DEFAULT_LEEWAY_SECONDS         60
#define SESS_DEFAULT_IDLE_SECONDS           300
#define SESS_DEFAULT_BOUND_IDLE_SECONDS     1800
#define SESS_DEFAULT_ABSOLUTE_SECONDS       43200
#define SESS_DEFAULT_TOKEN_LIFETIME_SECONDS 900
#define SESS_DEFAULT_MAX_PER_USER           50
/* Largest sealed body OpenRequest accepts, in bytes. */
#define SESS_CIPHERTEXT_MAX (4 * 1024 * 1024)
/* Largest additional data OpenRequest accepts, in bytes. */
#define SESS_AAD_MAX 4096
/* Clock offset from Redis above which the service warns, and the default
 * above which it reports NOT_SERVING, in ms. */
#define SESS_CLOCK_WARN_OFFSET_MS        1000
#define SESS_DEFAULT_CLOCK_MAX_OFFSET_MS 5000
/* How long the loaded marker lives unless the worker extends it, in ms. */
#define SESS_LOADED_MARKER_TTL_MS (60 * 60 * 1000)

/* Settings in milliseconds. */
struct sess_settings {
    struct sess_epoch_policy epochs;
    int64_t idle_ms;       /* unbound sessions */
    int64_t bound_idle_ms; /* after BindUser */
    int64_t absolute_ms;   /* from creation, bound or not */
    /* Maximum access-token lifetime plus the clock leeway, which is how
     * long a deleted session's tombstone and a user revocation must last. */
    int64_t token_lifetime_ms;
    /* Largest |Redis clock - own clock| at which the service is ready. */
    int64_t clock_max_offset_ms;
    /* Maximum number of bound sessions per user. BindUser ends the oldest
     * sessions beyond it, and 0 turns the limit off. */
    uint32_t max_per_user;
};

struct sess_service {
    struct cj_redis_pool *redis;    /* borrowed */
    struct sess_wrapping *wrapping; /* borrowed */
    struct sess_settings settings;
    struct sess_metrics metrics; /* all NULL when nothing is exported */
};

/* Session details for CreateSession and BindUser; times in Unix ms. */
struct sess_info {
    char session_id[SESS_ID_LEN + 1];
    int64_t created_ms;
    int64_t server_time_ms;
    uint32_t epoch_seconds;
    uint32_t grace_seconds;
    int64_t idle_expires_ms;
    int64_t absolute_expires_ms;
};

/* Result of OpenRequest. plaintext is the caller's to free with
 * sess_opened_clear, which also wipes it and the response key. */
struct sess_opened {
    unsigned char *plaintext;
    size_t plaintext_len;
    char user_id[SESS_NAME_MAX + 1];
    unsigned char response_key[SESS_RESPONSE_KEY_LEN];
    uint64_t current_epoch;
};

/* Returns the wall clock in Unix milliseconds. */
int64_t sess_now_ms(void);

/* Fills settings with the defaults above. */
void sess_settings_default(struct sess_settings *s);

enum cj_status sess_create(const struct sess_service *svc,
                           const unsigned char *secret, size_t secret_len,
                           struct sess_info *out) CJ_WARN_UNUSED;

/*
 * Opens one stateful request: lazily advances the epoch, picks the key,
 * opens, and only after the tag verifies commits the sequence number to the
 * replay window. CJ_ERR_CRYPTO for a wrong key, tag or epoch,
 * CJ_ERR_REPLAYED for a replay, CJ_ERR_NOT_FOUND for an unknown session,
 * CJ_ERR_PRECONDITION for a bound session while the revocation cache is not
 * loaded (fail closed, as IsRevoked does).
 */
enum cj_status sess_open(const struct sess_service *svc, const char *sid,
                         uint64_t epoch, uint64_t sequence,
                         const unsigned char *aad, size_t aad_len,
                         const unsigned char *ct, size_t ct_len,
                         struct sess_opened *out) CJ_WARN_UNUSED;

void sess_opened_clear(struct sess_opened *o);

/*
 * Brings a session's stored epoch up to now_ms and drops its previous key
 * once the grace period is over, by compare-and-set. *advanced is true
 * when this call changed the stored epoch. CJ_ERR_NOT_FOUND when the
 * session is gone.
 */
enum cj_status sess_advance(const struct sess_service *svc, const char *sid,
                            int64_t now_ms, bool *advanced) CJ_WARN_UNUSED;

/*
 * Binds a session to user_id. bound_at_ms is the bind time to record, in
 * Unix ms on the clock that sets the user's revocation time (auth's). With
 * 0, session's own clock sets it. When the user then has more than
 * settings.max_per_user bound sessions, the oldest others end as with
 * sess_delete, and *evicted is their number (0 on any error). The bound
 * session itself is never ended.
 */
enum cj_status sess_bind(const struct sess_service *svc, const char *sid,
                         const char *user_id, int64_t bound_at_ms,
                         struct sess_info *out,
                         uint32_t *evicted) CJ_WARN_UNUSED;

enum cj_status sess_delete(const struct sess_service *svc, const char *sid,
                           bool *deleted) CJ_WARN_UNUSED;

enum cj_status sess_delete_user(const struct sess_service *svc,
                                const char *user_id,
                                uint32_t *count) CJ_WARN_UNUSED;

/* Revocation cache (sess_revoke.c). Times in Unix seconds. */
enum cj_status sess_revoke_token(const struct sess_service *svc,
                                 const char *token_id,
                                 int64_t expires_at) CJ_WARN_UNUSED;

/* Caches the user's revocation time until the later of auth's
 * entry_expires_at_ms (Unix ms, 0 for none) and revoked_at plus this
 * service's access-token lifetime. */
enum cj_status sess_revoke_user(const struct sess_service *svc,
                                const char *user_id, int64_t revoked_at,
                                int64_t entry_expires_at_ms) CJ_WARN_UNUSED;

enum cj_status sess_is_revoked(const struct sess_service *svc,
                               const char *token_id, const char *user_id,
                               int64_t issued_at, const char *sid,
                               enum sess_revoked_reason *out) CJ_WARN_UNUSED;

/* Returns "token", "user", "session" or "" for IsRevokedResponse.reason. */
const char *sess_revoked_reason_name(enum sess_revoked_reason reason);

enum cj_status sess_cache_status(const struct sess_service *svc,
                                 bool *loaded) CJ_WARN_UNUSED;

/* One revoked token of a LoadRevocations batch; expires_at in Unix s. */
struct sess_revoked_token {
    const char *token_id;
    int64_t expires_at;
};

/* One user revocation of a LoadRevocations batch; revoked_at in Unix s. */
struct sess_revoked_user {
    const char *user_id;
    int64_t revoked_at;
    int64_t entry_expires_at_ms; /* from auth, Unix ms; 0 for none */
};

/* One LoadRevocations batch. load_id is the id of its full load, unused
 * with SESS_LOAD_UNNAMED. */
struct sess_revocation_batch {
    const struct sess_revoked_token *tokens;
    size_t token_count;
    const struct sess_revoked_user *users;
    size_t user_count;
    const char *const *session_ids;
    size_t session_count;
    bool complete;
    const char *load_id;
    enum sess_load_step step;
};

/*
 * Writes one LoadRevocations batch, skipping entries that have already
 * expired; with complete set, the loaded marker is set in the same script.
 * Fails with CJ_ERR_PRECONDITION when the batch continues a load whose
 * record Redis lost, so the caller must start the load again.
 */
enum cj_status
sess_load_revocations(const struct sess_service *svc,
                      const struct sess_revocation_batch *in) CJ_WARN_UNUSED;

/* Extends the loaded marker when present; the worker calls it. */
enum cj_status
sess_cache_keep_loaded(const struct sess_service *svc) CJ_WARN_UNUSED;

#endif

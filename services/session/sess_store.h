/*
 * Every Redis command and Lua script of cerrojo-session, for both of its
 * namespaces: cerrojo:sess: (sessions, their wrapped epoch keys, replay
 * windows, the per-user index and the worker's schedule) and
 * cerrojo:revoked: (the revocation cache). Each function takes a connected
 * Redis pool and returns CJ_ERR_UNAVAILABLE when Redis cannot be
 * reached. A value and its expiry are always written by one command or one
 * script, so no key in either namespace exists without a TTL.
 */
#ifndef SESS_STORE_H
#define SESS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratchet.h"
#include "redis.h"
#include "revocation_cache.h"
#include "status.h"

#define SESS_KEY_PREFIX    "cerrojo:sess:"
#define SESS_REVOKE_PREFIX CJ_REVOKED_KEY_PREFIX

/* Length of a session id: 16 random bytes in base64url without padding. */
#define SESS_ID_LEN CJ_SESSION_ID_LEN
/* Maximum length of a user id or token id, in bytes. */
#define SESS_NAME_MAX 128
/* Replay window width in sequence numbers (a ring of this many bits). */
#define SESS_WINDOW_SIZE 128
/* Largest sequence number: Lua numbers are doubles, exact up to 2^53. */
#define SESS_SEQUENCE_MAX ((uint64_t)1 << 53)
/* Largest wrapped epoch key stored in a session hash, in bytes. */
#define SESS_WRAPPED_MAX 128
/* Most sessions the worker takes from its schedule in one pass. */
#define SESS_DUE_BATCH_MAX 256

/* One session as stored in its hash. */
struct sess_record {
    int64_t created_ms;
    char user_id[SESS_NAME_MAX + 1]; /* "" while unbound */
    uint64_t epoch;                  /* epoch of key_wrapped */
    unsigned char key_wrapped[SESS_WRAPPED_MAX];
    size_t key_wrapped_len;
    unsigned char prev_wrapped[SESS_WRAPPED_MAX]; /* key of epoch - 1 */
    size_t prev_wrapped_len;                      /* 0 when erased */
    int64_t prev_until_ms; /* the previous key is dropped at this instant */
    int64_t idle_ms;       /* idle timeout */
    int64_t absolute_ms;   /* absolute expiry, Unix ms */
    int64_t expires_ms;    /* the hash's current expiry, Unix ms */
    uint64_t advances;     /* successful epoch advances, for tests and logs */
};

/* Result of committing a sequence number. */
struct sess_commit {
    char user_id[SESS_NAME_MAX + 1];
    uint64_t epoch;
    int64_t expires_ms;
};

/* Reason IsRevoked matched. */
enum sess_revoked_reason {
    SESS_NOT_REVOKED = 0,
    SESS_REVOKED_TOKEN,
    SESS_REVOKED_USER,
    SESS_REVOKED_SESSION,
};

/* Returns true when name is 1..SESS_NAME_MAX printable ASCII characters
 * without spaces (user ids and token ids). */
bool sess_name_valid(const char *name);

/*
 * Writes a new session hash with its expiry and schedules it at due_ms for
 * the worker. Returns CJ_ERR_EXISTS when the id is taken.
 */
enum cj_status sess_store_create(struct cj_redis_pool *pool, const char *sid,
                                 const struct sess_record *rec, int64_t now_ms,
                                 int64_t due_ms) CJ_WARN_UNUSED;

/*
 * Reads a session. CJ_ERR_NOT_FOUND when it is missing or expired, or when
 * it was bound at or before its user's revocation time, in which case it
 * is deleted with a tombstone of tombstone_ms.
 */
enum cj_status sess_store_load(struct cj_redis_pool *pool, const char *sid,
                               int64_t tombstone_ms,
                               struct sess_record *out) CJ_WARN_UNUSED;

/*
 * Compare-and-set of the epoch: when the stored epoch is still
 * expected_epoch, stores new_epoch with its wrapped key and the wrapped
 * previous key (prev_len 0 erases it), and reschedules the session at
 * due_ms. *advanced is false when another writer moved the epoch first and
 * this call changed nothing. CJ_ERR_NOT_FOUND when the session
 * is gone.
 */
enum cj_status sess_store_advance(struct cj_redis_pool *pool, const char *sid,
                                  uint64_t expected_epoch, uint64_t new_epoch,
                                  const unsigned char *key, size_t key_len,
                                  const unsigned char *prev, size_t prev_len,
                                  int64_t prev_until_ms, int64_t due_ms,
                                  bool *advanced) CJ_WARN_UNUSED;

/*
 * Checks sequence against the session's sliding replay window and marks it
 * seen, in one script, and refreshes the idle expiry. Call it only after
 * the request's tag verified. Returns CJ_ERR_REPLAYED for a number already
 * seen or older than the window, CJ_ERR_NOT_FOUND when the session is gone
 * or was bound at or before its user's revocation time (then it is deleted
 * as sess_store_load does), and CJ_ERR_PRECONDITION, with nothing changed,
 * when the session is bound and the revocation cache is not loaded.
 */
enum cj_status
sess_store_commit_sequence(struct cj_redis_pool *pool, const char *sid,
                           uint64_t sequence, int64_t now_ms,
                           int64_t tombstone_ms,
                           struct sess_commit *out) CJ_WARN_UNUSED;

/* Inputs of sess_store_bind besides the session and the user, in ms. */
struct sess_bind_params {
    int64_t idle_ms;      /* bound idle timeout */
    int64_t now_ms;       /* session's clock, which sets the idle expiry */
    int64_t bound_ms;     /* bind time on the clock of revocation times */
    int64_t tombstone_ms; /* lifetime of the tombstones written */
    /* Maximum number of sessions the user's index may list after the
     * bind, or 0 for no limit. */
    uint32_t max_sessions;
};

/*
 * Binds the session to user_id, switches it to the bound idle timeout from
 * now_ms and adds it to the user's index. The first bind records bound_ms
 * as the bind time, which must come from the clock that sets the user's
 * revocation time. CJ_ERR_PRECONDITION when it is bound to another user;
 * binding the same user again is accepted. CJ_ERR_NOT_FOUND when the
 * session is gone, or when its bind time is at or before the user's
 * revocation time (then it is deleted as sess_store_load does). In the
 * same script, while the index lists more than max_sessions, the user's
 * oldest other sessions are deleted with tombstones; *evicted is their
 * count.
 */
enum cj_status sess_store_bind(struct cj_redis_pool *pool, const char *sid,
                               const char *user_id,
                               const struct sess_bind_params *p,
                               struct sess_record *out,
                               uint32_t *evicted) CJ_WARN_UNUSED;

/*
 * Deletes a session and writes its tombstone for tombstone_ms, whether or
 * not the session existed.
 */
enum cj_status sess_store_delete(struct cj_redis_pool *pool, const char *sid,
                                 int64_t tombstone_ms,
                                 bool *deleted) CJ_WARN_UNUSED;

/* Deletes every session in user_id's index, each with a tombstone. */
enum cj_status sess_store_delete_user(struct cj_redis_pool *pool,
                                      const char *user_id, int64_t tombstone_ms,
                                      uint32_t *count) CJ_WARN_UNUSED;

/*
 * Lists up to max (<= SESS_DUE_BATCH_MAX) sessions scheduled at or before
 * now_ms; ids must hold max entries.
 */
enum cj_status sess_store_due(struct cj_redis_pool *pool, int64_t now_ms,
                              size_t max, char ids[][SESS_ID_LEN + 1],
                              size_t *count) CJ_WARN_UNUSED;

/* Moves a scheduled session to due_ms; never adds one (ZADD XX). */
enum cj_status sess_store_schedule(struct cj_redis_pool *pool, const char *sid,
                                   int64_t due_ms) CJ_WARN_UNUSED;

/* Removes a session from the worker's schedule (the session expired). */
enum cj_status sess_store_unschedule(struct cj_redis_pool *pool,
                                     const char *sid) CJ_WARN_UNUSED;

/*
 * Takes the named lock for ttl_ms when it is free (SET NX PX); token
 * identifies the holder. *acquired is false when another holder has it.
 */
enum cj_status sess_store_lock(struct cj_redis_pool *pool, const char *name,
                               const char *token, int64_t ttl_ms,
                               bool *acquired) CJ_WARN_UNUSED;

/* Releases the lock only when token still holds it. */
enum cj_status sess_store_unlock(struct cj_redis_pool *pool, const char *name,
                                 const char *token) CJ_WARN_UNUSED;

/* Caches token_id as revoked until expire_at_ms. */
enum cj_status sess_store_revoke_token(struct cj_redis_pool *pool,
                                       const char *token_id,
                                       int64_t expire_at_ms) CJ_WARN_UNUSED;

/*
 * Caches user_id's revocation time (Unix seconds) until expire_at_ms,
 * keeping the later of the stored and the given time.
 */
enum cj_status sess_store_revoke_user(struct cj_redis_pool *pool,
                                      const char *user_id, int64_t revoked_at,
                                      int64_t expire_at_ms) CJ_WARN_UNUSED;

/* Writes a deleted session's tombstone for ttl_ms. */
enum cj_status sess_store_tombstone(struct cj_redis_pool *pool, const char *sid,
                                    int64_t ttl_ms) CJ_WARN_UNUSED;

/*
 * Checks a token id, a user's revocation time against issued_at (Unix
 * seconds) and a session tombstone (sid may be NULL or "") in one script.
 * CJ_ERR_PRECONDITION when the loaded marker is missing.
 */
enum cj_status
sess_store_is_revoked(struct cj_redis_pool *pool, const char *token_id,
                      const char *user_id, int64_t issued_at, const char *sid,
                      enum sess_revoked_reason *out) CJ_WARN_UNUSED;

/* Tells whether the loaded marker is present. */
enum cj_status sess_store_cache_loaded(struct cj_redis_pool *pool,
                                       bool *loaded) CJ_WARN_UNUSED;

/* Extends the loaded marker to ttl_ms when it is present. */
enum cj_status sess_store_refresh_loaded(struct cj_redis_pool *pool,
                                         int64_t ttl_ms) CJ_WARN_UNUSED;

/* Most entries (tokens, users and sessions together) in one load batch. */
#define SESS_LOAD_BATCH_MAX 10000

struct sess_load_token {
    const char *token_id;
    int64_t expire_at_ms;
};

struct sess_load_user {
    const char *user_id;
    int64_t revoked_at; /* Unix seconds */
    int64_t expire_at_ms;
};

/* One batch of LoadRevocations, with every expiry already computed. */
/* Step of a load batch within its full load. */
enum sess_load_step {
    SESS_LOAD_UNNAMED,  /* without a load id, so never rejected */
    SESS_LOAD_BEGIN,    /* first batch, which records the load id */
    SESS_LOAD_CONTINUE, /* later batch, rejected once the record is gone */
};

/* Lifetime of a load's record after its latest batch. */
#define SESS_LOAD_RECORD_TTL_MS (2 * 60 * 1000)

struct sess_load_batch {
    const char *load_id; /* unused with SESS_LOAD_UNNAMED */
    enum sess_load_step step;
    const struct sess_load_token *tokens;
    size_t token_count;
    const struct sess_load_user *users;
    size_t user_count;
    const char *const *session_ids;
    size_t session_count;
    int64_t tombstone_ms;  /* TTL of each restored tombstone */
    int64_t marker_ttl_ms; /* > 0: set the loaded marker after the batch */
};

/*
 * Writes one batch in one script, so no reader sees half of it;
 * CJ_ERR_TOO_LARGE above SESS_LOAD_BATCH_MAX entries. A SESS_LOAD_CONTINUE
 * batch whose load record is gone writes nothing and fails with
 * CJ_ERR_PRECONDITION, because Redis lost keys after the load began.
 */
enum cj_status
sess_store_load_batch(struct cj_redis_pool *pool,
                      const struct sess_load_batch *batch) CJ_WARN_UNUSED;

/* Reads Redis's clock (TIME) in Unix ms. */
enum cj_status sess_store_time(struct cj_redis_pool *pool,
                               int64_t *now_ms) CJ_WARN_UNUSED;

/* Sends PING; CJ_ERR_UNAVAILABLE when Redis does not reply PONG. */
enum cj_status sess_store_ping(struct cj_redis_pool *pool) CJ_WARN_UNUSED;

#endif

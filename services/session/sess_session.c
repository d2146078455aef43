/*
 * Session lifecycle: create, open a request, advance the epoch, bind,
 * delete. Epoch keys are unwrapped only for the duration of one call and
 * wiped before it returns.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto_util.h"
#include "log.h"
#include "ratchet.h"
#include "sess_service.h"

/* Random bytes of a session id (128 bits). */
#define SESS_ID_RANDOM_LEN 16
/* Attempts at a fresh id before giving up; a collision of 128-bit ids
 * means a broken random source, not bad luck. */
#define SESS_CREATE_ATTEMPTS 3
/* Rounds of load-advance-load in one OpenRequest before giving up: each
 * lost compare-and-set means another writer advanced, so two suffice. */
#define SESS_ADVANCE_ROUNDS 3

int64_t sess_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sess_settings_default(struct sess_settings *s)
{
    s->epochs.epoch_ms = (int64_t)SESS_DEFAULT_EPOCH_SECONDS * 1000;
    s->epochs.grace_ms = (int64_t)SESS_DEFAULT_GRACE_SECONDS * 1000;
    s->epochs.leeway_ms = (int64_t)SESS_DEFAULT_LEEWAY_SECONDS * 1000;
    s->idle_ms = (int64_t)SESS_DEFAULT_IDLE_SECONDS * 1000;
    s->bound_idle_ms = (int64_t)SESS_DEFAULT_BOUND_IDLE_SECONDS * 1000;
    s->absolute_ms = (int64_t)SESS_DEFAULT_ABSOLUTE_SECONDS * 1000;
    s->token_lifetime_ms = ((int64_t)SESS_DEFAULT_TOKEN_LIFETIME_SECONDS +
                            SESS_DEFAULT_LEEWAY_SECONDS) *
                           1000;
    s->clock_max_offset_ms = SESS_DEFAULT_CLOCK_MAX_OFFSET_MS;
    s->max_per_user = SESS_DEFAULT_MAX_PER_USER;
}

static void fill_info(const struct sess_service *svc, const char *sid,
                      int64_t created_ms, int64_t expires_ms,
                      int64_t absolute_ms, struct sess_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->session_id, sizeof(out->session_id), "%s", sid);
    out->created_ms = created_ms;
    out->server_time_ms = sess_now_ms();
    out->epoch_seconds = (uint32_t)(svc->settings.epochs.epoch_ms / 1000);
    out->grace_seconds = (uint32_t)(svc->settings.epochs.grace_ms / 1000);
    out->idle_expires_ms = expires_ms;
    out->absolute_expires_ms = absolute_ms;
}

static void new_session_id(char out[SESS_ID_LEN + 1])
{
    unsigned char raw[SESS_ID_RANDOM_LEN];

    cj_random_bytes(raw, sizeof(raw));
    sodium_bin2base64(out, SESS_ID_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

enum cj_status sess_create(const struct sess_service *svc,
                           const unsigned char *secret, size_t secret_len,
                           struct sess_info *out)
{
    unsigned char key[SESS_EPOCH_KEY_LEN];
    struct sess_record rec;
    char sid[SESS_ID_LEN + 1];
    int64_t now;
    enum cj_status st = CJ_ERR_INVALID;

    memset(&rec, 0, sizeof(rec));
    if (secret == NULL || secret_len != SESS_CLIENT_SECRET_LEN) {
        goto out;
    }
    for (int attempt = 0; attempt < SESS_CREATE_ATTEMPTS; attempt++) {
        new_session_id(sid);
        st = sess_crypto_first_key(secret, secret_len, sid, key);
        if (st != CJ_OK) {
            goto out;
        }
        now = sess_now_ms();
        rec.created_ms = now;
        rec.epoch = 0;
        rec.idle_ms = svc->settings.idle_ms;
        rec.absolute_ms = now + svc->settings.absolute_ms;
        st = sess_key_wrap(svc->wrapping, sid, 0, key, rec.key_wrapped);
        if (st != CJ_OK) {
            goto out;
        }
        rec.key_wrapped_len = SESS_WRAPPED_LEN;
        st = sess_store_create(svc->redis, sid, &rec, now,
                               sess_epoch_start(&svc->settings.epochs, now, 1));
        if (st != CJ_ERR_EXISTS) {
            break;
        }
    }
    if (st != CJ_OK) {
        goto out;
    }
    cj_counter_add(svc->metrics.created, 1);
    fill_info(svc, sid, rec.created_ms,
              rec.created_ms + svc->settings.idle_ms < rec.absolute_ms
                  ? rec.created_ms + svc->settings.idle_ms
                  : rec.absolute_ms,
              rec.absolute_ms, out);
out:
    cj_wipe(key, sizeof(key));
    cj_wipe(&rec, sizeof(rec));
    return st;
}

/*
 * Computes and stores the state the session should have at now_ms: the
 * epoch of the wall clock with its key, and the previous epoch's key while
 * its grace lasts. Both the worker and OpenRequest come here, and the
 * store's compare-and-set lets only one of them write each step.
 */
static enum cj_status advance_record(const struct sess_service *svc,
                                     const char *sid,
                                     const struct sess_record *rec,
                                     int64_t now_ms, bool *advanced)
{
    const struct sess_epoch_policy *p = &svc->settings.epochs;
    unsigned char key[SESS_EPOCH_KEY_LEN];
    unsigned char prev[SESS_EPOCH_KEY_LEN];
    unsigned char key_wrapped[SESS_WRAPPED_LEN];
    unsigned char prev_wrapped[SESS_WRAPPED_LEN];
    uint64_t target = sess_epoch_at(p, rec->created_ms, now_ms);
    int64_t target_start;
    int64_t prev_until;
    int64_t next_start;
    bool keep_prev;
    enum cj_status st = CJ_OK;

    *advanced = false;
    if (target <= rec->epoch) {
        /* Same epoch: only the previous key may need to go. */
        if (rec->prev_wrapped_len == 0 || now_ms < rec->prev_until_ms) {
            goto out;
        }
        bool dropped = false;
        st = sess_store_advance(
            svc->redis, sid, rec->epoch, rec->epoch, rec->key_wrapped,
            rec->key_wrapped_len, NULL, 0, 0,
            sess_epoch_start(p, rec->created_ms, rec->epoch + 1), &dropped);
        goto out;
    }
    st = sess_key_unwrap(svc->wrapping, sid, rec->epoch, rec->key_wrapped,
                         rec->key_wrapped_len, prev);
    if (st != CJ_OK) {
        goto out;
    }
    st = cj_ratchet_advance(prev, (uint32_t)rec->epoch, (uint32_t)(target - 1));
    if (st != CJ_OK) {
        goto out;
    }
    st = sess_crypto_next_key(prev, key);
    if (st != CJ_OK) {
        goto out;
    }
    target_start = sess_epoch_start(p, rec->created_ms, target);
    next_start = sess_epoch_start(p, rec->created_ms, target + 1);
    prev_until = target_start + p->grace_ms;
    keep_prev = now_ms < prev_until;
    st = sess_key_wrap(svc->wrapping, sid, target, key, key_wrapped);
    if (st == CJ_OK && keep_prev) {
        st = sess_key_wrap(svc->wrapping, sid, target - 1, prev, prev_wrapped);
    }
    if (st != CJ_OK) {
        goto out;
    }
    st = sess_store_advance(
        svc->redis, sid, rec->epoch, target, key_wrapped, SESS_WRAPPED_LEN,
        prev_wrapped, keep_prev ? SESS_WRAPPED_LEN : 0, prev_until,
        keep_prev && prev_until < next_start ? prev_until : next_start,
        advanced);
    if (st == CJ_OK && *advanced) {
        char log_id[SESS_LOG_ID_SIZE];
        cj_counter_add(svc->metrics.advances, 1);
        sess_log_id(svc->wrapping, sid, log_id);
        cj_log(CJ_LOG_INFO, "session.epoch_advanced", NULL,
               CJ_F_STR("session_hash", log_id),
               CJ_F_INT("from_epoch", rec->epoch), CJ_F_INT("epoch", target));
    }
out:
    cj_wipe(key, sizeof(key));
    cj_wipe(prev, sizeof(prev));
    return st;
}

/* Whether the stored state is behind the wall clock at now_ms. */
static bool record_stale(const struct sess_service *svc,
                         const struct sess_record *rec, int64_t now_ms)
{
    return sess_epoch_at(&svc->settings.epochs, rec->created_ms, now_ms) >
               rec->epoch ||
           (rec->prev_wrapped_len > 0 && now_ms >= rec->prev_until_ms);
}

enum cj_status sess_advance(const struct sess_service *svc, const char *sid,
                            int64_t now_ms, bool *advanced)
{
    struct sess_record rec;
    enum cj_status st;

    *advanced = false;
    st =
        sess_store_load(svc->redis, sid, svc->settings.token_lifetime_ms, &rec);
    if (st == CJ_OK && record_stale(svc, &rec, now_ms)) {
        st = advance_record(svc, sid, &rec, now_ms, advanced);
    } else if (st == CJ_OK) {
        /* Nothing to do yet: the schedule was early (another replica's
         * clock, or a lazy advance already done); move it to the next
         * change. */
        int64_t next_start = sess_epoch_start(&svc->settings.epochs,
                                              rec.created_ms, rec.epoch + 1);
        int64_t due = rec.prev_wrapped_len > 0 && rec.prev_until_ms < next_start
                          ? rec.prev_until_ms
                          : next_start;
        st = sess_store_schedule(svc->redis, sid, due);
    }
    cj_wipe(&rec, sizeof(rec));
    return st;
}

/* Loads the session into *rec and brings it up to date. */
static enum cj_status load_current(const struct sess_service *svc,
                                   const char *sid, int64_t now_ms,
                                   struct sess_record *rec)
{
    enum cj_status st;
    bool advanced = false;

    for (int round = 0; round < SESS_ADVANCE_ROUNDS; round++) {
        st = sess_store_load(svc->redis, sid, svc->settings.token_lifetime_ms,
                             rec);
        if (st != CJ_OK || !record_stale(svc, rec, now_ms)) {
            return st;
        }
        st = advance_record(svc, sid, rec, now_ms, &advanced);
        if (st != CJ_OK) {
            return st;
        }
    }
    return sess_store_load(svc->redis, sid, svc->settings.token_lifetime_ms,
                           rec);
}

/*
 * Finds the key of client_epoch in the stored record: the stored epoch's
 * key, the previous one while it is kept, or the next one derived from the
 * stored one. Time limits were checked by sess_epoch_choose.
 */
static enum cj_status key_for_epoch(const struct sess_service *svc,
                                    const char *sid,
                                    const struct sess_record *rec,
                                    uint64_t client_epoch,
                                    unsigned char key[SESS_EPOCH_KEY_LEN])
{
    unsigned char current[SESS_EPOCH_KEY_LEN];
    enum cj_status st = CJ_ERR_CRYPTO;

    if (client_epoch == rec->epoch) {
        st = sess_key_unwrap(svc->wrapping, sid, rec->epoch, rec->key_wrapped,
                             rec->key_wrapped_len, key);
    } else if (rec->epoch > 0 && client_epoch == rec->epoch - 1 &&
               rec->prev_wrapped_len > 0) {
        st = sess_key_unwrap(svc->wrapping, sid, client_epoch,
                             rec->prev_wrapped, rec->prev_wrapped_len, key);
    } else if (client_epoch == rec->epoch + 1) {
        st = sess_key_unwrap(svc->wrapping, sid, rec->epoch, rec->key_wrapped,
                             rec->key_wrapped_len, current);
        if (st == CJ_OK) {
            st = sess_crypto_next_key(current, key);
        }
    }
    cj_wipe(current, sizeof(current));
    return st;
}

/* Limits the log of bound sessions rejected while the revocation cache is
 * not loaded to one line per interval, and logs the end of the streak. */
static struct cj_log_limit cache_not_loaded_limit = CJ_LOG_LIMIT_INIT;

static void log_open_failed(const struct sess_service *svc, const char *sid,
                            const char *reason, uint64_t epoch)
{
    char log_id[SESS_LOG_ID_SIZE];

    sess_log_id(svc->wrapping, sid, log_id);
    cj_log(CJ_LOG_WARN, "session.open_failed", NULL,
           CJ_F_STR("session_hash", log_id), CJ_F_STR("reason", reason),
           CJ_F_INT("epoch", epoch));
}

enum cj_status sess_open(const struct sess_service *svc, const char *sid,
                         uint64_t epoch, uint64_t sequence,
                         const unsigned char *aad, size_t aad_len,
                         const unsigned char *ct, size_t ct_len,
                         struct sess_opened *out)
{
    unsigned char key[SESS_EPOCH_KEY_LEN];
    struct sess_record rec;
    struct sess_commit commit;
    unsigned char *pt = NULL;
    size_t pt_len = 0;
    int64_t now = sess_now_ms();
    enum cj_status st = CJ_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    memset(key, 0, sizeof(key));
    memset(&rec, 0, sizeof(rec));
    if (!cj_session_id_valid(sid) || epoch > UINT32_MAX || sequence == 0 ||
        sequence >= SESS_SEQUENCE_MAX || ct_len < SESS_TAG_LEN ||
        ct_len > SESS_CIPHERTEXT_MAX || aad_len > SESS_AAD_MAX) {
        goto out;
    }
    st = load_current(svc, sid, now, &rec);
    if (st != CJ_OK) {
        goto out;
    }
    if (sess_epoch_choose(&svc->settings.epochs, rec.created_ms, now, epoch) ==
        SESS_EPOCH_REJECTED) {
        cj_counter_add(svc->metrics.open_failed, 1);
        log_open_failed(svc, sid, "epoch", epoch);
        st = CJ_ERR_CRYPTO;
        goto out;
    }
    st = key_for_epoch(svc, sid, &rec, epoch, key);
    if (st != CJ_OK) {
        cj_counter_add(svc->metrics.open_failed, 1);
        log_open_failed(svc, sid, "key", epoch);
        st = CJ_ERR_CRYPTO;
        goto out;
    }
    pt_len = ct_len - SESS_TAG_LEN;
    pt = malloc(pt_len > 0 ? pt_len : 1);
    if (pt == NULL) {
        st = CJ_ERR_NOMEM;
        goto out;
    }
    st = sess_crypto_open(key, sid, epoch, sequence, aad, aad_len, ct, ct_len,
                          pt);
    if (st != CJ_OK) {
        cj_counter_add(svc->metrics.open_failed, 1);
        log_open_failed(svc, sid, "tag", epoch);
        st = CJ_ERR_CRYPTO;
        goto out;
    }
    /* The tag verified: only now may the sequence number move the
     * window. */
    st = sess_store_commit_sequence(svc->redis, sid, sequence, now,
                                    svc->settings.token_lifetime_ms, &commit);
    if (st == CJ_ERR_REPLAYED) {
        cj_counter_add(svc->metrics.open_replayed, 1);
        log_open_failed(svc, sid, "replay", epoch);
    }
    if (st == CJ_ERR_PRECONDITION) {
        cj_counter_add(svc->metrics.open_cache_not_loaded, 1);
        cj_log_limited(&cache_not_loaded_limit, CJ_LOG_WARN,
                       "session.open_rejected_cache_not_loaded", NULL,
                       CJ_F_STR("reason", "revocation cache not loaded"));
    } else if (st == CJ_OK && commit.user_id[0] != '\0') {
        cj_log_recovered(&cache_not_loaded_limit, "session.bound_open_resumed",
                         NULL);
    }
    if (st != CJ_OK) {
        goto out;
    }
    st = sess_crypto_response_key(key, sequence, out->response_key);
    if (st != CJ_OK) {
        goto out;
    }
    cj_counter_add(svc->metrics.open_ok, 1);
    snprintf(out->user_id, sizeof(out->user_id), "%s", commit.user_id);
    out->current_epoch = commit.epoch;
    out->plaintext = pt;
    out->plaintext_len = pt_len;
    pt = NULL;
out:
    if (pt != NULL) {
        cj_wipe(pt, pt_len);
        free(pt);
    }
    cj_wipe(key, sizeof(key));
    cj_wipe(&rec, sizeof(rec));
    if (st != CJ_OK) {
        cj_wipe(out->response_key, sizeof(out->response_key));
    }
    return st;
}

void sess_opened_clear(struct sess_opened *o)
{
    if (o == NULL) {
        return;
    }
    if (o->plaintext != NULL) {
        cj_wipe(o->plaintext, o->plaintext_len);
        free(o->plaintext);
    }
    cj_wipe(o, sizeof(*o));
}

enum cj_status sess_bind(const struct sess_service *svc, const char *sid,
                         const char *user_id, int64_t bound_at_ms,
                         struct sess_info *out, uint32_t *evicted)
{
    struct sess_record rec;
    int64_t now = sess_now_ms();
    struct sess_bind_params params = {
        .idle_ms = svc->settings.bound_idle_ms,
        .now_ms = now,
        .bound_ms = bound_at_ms != 0 ? bound_at_ms : now,
        .tombstone_ms = svc->settings.token_lifetime_ms,
        .max_sessions = svc->settings.max_per_user,
    };
    enum cj_status st;

    *evicted = 0;
    if (!cj_session_id_valid(sid) || !sess_name_valid(user_id) ||
        bound_at_ms < 0) {
        return CJ_ERR_INVALID;
    }
    st = sess_store_bind(svc->redis, sid, user_id, &params, &rec, evicted);
    if (st == CJ_OK) {
        fill_info(svc, sid, rec.created_ms, rec.expires_ms, rec.absolute_ms,
                  out);
    }
    if (st == CJ_OK && *evicted > 0) {
        /* The user id, not the session ids: a session id is a credential
         * of the stateful channel. */
        cj_counter_add(svc->metrics.evicted, *evicted);
        cj_log(CJ_LOG_INFO, "session.evicted_over_limit", NULL,
               CJ_F_STR("user_id", user_id), CJ_F_INT("count", *evicted),
               CJ_F_INT("max_per_user", svc->settings.max_per_user));
    }
    cj_wipe(&rec, sizeof(rec));
    return st;
}

enum cj_status sess_delete(const struct sess_service *svc, const char *sid,
                           bool *deleted)
{
    *deleted = false;
    if (!cj_session_id_valid(sid)) {
        return CJ_ERR_INVALID;
    }
    return sess_store_delete(svc->redis, sid, svc->settings.token_lifetime_ms,
                             deleted);
}

enum cj_status sess_delete_user(const struct sess_service *svc,
                                const char *user_id, uint32_t *count)
{
    *count = 0;
    if (!sess_name_valid(user_id)) {
        return CJ_ERR_INVALID;
    }
    return sess_store_delete_user(svc->redis, user_id,
                                  svc->settings.token_lifetime_ms, count);
}

/*
 * Wrapping of stored epoch keys under the service's key, and the epoch
 * arithmetic that decides which key a request may use.
 */
#include "sess_keys.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "crypto_util.h"
#include "hkdf.h"
#include "log.h"
#include "ratchet.h"

/* Version 1 seals under the wrapping key itself, so every wrap of every
 * session draws a random nonce under one key. Version 2 seals under a key
 * derived per session and epoch, so a nonce collision needs two wraps of the
 * same session and epoch. New wraps use version 2; version 1 still unwraps
 * for records stored before the upgrade. */
#define SESS_WRAP_VERSION_SHARED_KEY  1
#define SESS_WRAP_VERSION_DERIVED_KEY 2
#define SESS_WRAP_VERSION             SESS_WRAP_VERSION_DERIVED_KEY
/* HKDF-SHA256 info of a version 2 key: label with its NUL, u8(len(sid)),
 * sid (at most SESS_WRAP_SID_MAX bytes) and u64(epoch). */
#define SESS_WRAP_SUBKEY_LABEL "cerrojo session epoch key wrap v2"
#define SESS_WRAP_NONCE_OFFSET (1 + SESS_WRAP_KEY_ID_LEN)
#define SESS_WRAP_CT_OFFSET    (SESS_WRAP_NONCE_OFFSET + CJ_AEAD_NONCE_LEN)
/* Additional data: label with its NUL, u8(len(sid)), sid (at most
 * SESS_WRAP_SID_MAX bytes), u64(epoch) and the header. */
#define SESS_WRAP_AAD_LABEL "cerrojo session epoch key v1"
#define SESS_WRAP_SID_MAX   64
#define SESS_WRAP_AAD_MAX                                                      \
    (sizeof(SESS_WRAP_AAD_LABEL) + 1 + SESS_WRAP_SID_MAX + 8 +                 \
     SESS_WRAP_NONCE_OFFSET)
#define SESS_WRAP_SUBKEY_INFO_MAX                                              \
    (sizeof(SESS_WRAP_SUBKEY_LABEL) + 1 + SESS_WRAP_SID_MAX + 8)
#define SESS_KEY_ID_LABEL "cerrojo session wrapping key id"
#define SESS_LOG_KEY_INFO "cerrojo session log id"
#define SESS_LOG_KEY_LEN  32
#define SESS_LOG_HASH_LEN 8
/* Maximum length of a wrapping key in base64, white space included. */
#define SESS_WRAP_KEY_TEXT_MAX 128

struct sess_wrapping {
    struct cj_secret *current;
    unsigned char current_id[SESS_WRAP_KEY_ID_LEN];
    struct cj_secret *previous; /* NULL outside a rotation */
    unsigned char previous_id[SESS_WRAP_KEY_ID_LEN];
    struct cj_secret *log_key;
    /* Limits session.unwrap_failed to one line per CJ_LOG_REPEAT_INTERVAL_MS,
     * because a lost wrapping key fails every request of every session it
     * wrapped. */
    struct cj_log_limit *unwrap_failures;
};

static void key_id(const unsigned char *key,
                   unsigned char out[SESS_WRAP_KEY_ID_LEN])
{
    crypto_generichash(out, SESS_WRAP_KEY_ID_LEN,
                       (const unsigned char *)SESS_KEY_ID_LABEL,
                       strlen(SESS_KEY_ID_LABEL), key, SESS_WRAP_KEY_LEN);
}

enum cj_status sess_wrapping_new(const unsigned char *current,
                                 const unsigned char *previous,
                                 struct sess_wrapping **out)
{
    struct sess_wrapping *w = NULL;
    enum cj_status st = CJ_ERR_NOMEM;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        goto out;
    }
    w->current = cj_secret_from(current, SESS_WRAP_KEY_LEN);
    w->log_key = cj_secret_new(SESS_LOG_KEY_LEN);
    w->unwrap_failures = calloc(1, sizeof(*w->unwrap_failures));
    if (w->current == NULL || w->log_key == NULL ||
        w->unwrap_failures == NULL) {
        goto out;
    }
    pthread_mutex_init(&w->unwrap_failures->mutex, NULL);
    key_id(current, w->current_id);
    if (previous != NULL) {
        w->previous = cj_secret_from(previous, SESS_WRAP_KEY_LEN);
        if (w->previous == NULL) {
            goto out;
        }
        key_id(previous, w->previous_id);
    }
    st = cj_hkdf(w->log_key->bytes, SESS_LOG_KEY_LEN, NULL, 0, current,
                 SESS_WRAP_KEY_LEN, (const uint8_t *)SESS_LOG_KEY_INFO,
                 strlen(SESS_LOG_KEY_INFO));
    if (st != CJ_OK) {
        goto out;
    }
    *out = w;
    w = NULL;
out:
    sess_wrapping_free(w);
    return st;
}

void sess_wrapping_free(struct sess_wrapping *w)
{
    if (w == NULL) {
        return;
    }
    cj_secret_free(w->current);
    cj_secret_free(w->previous);
    cj_secret_free(w->log_key);
    if (w->unwrap_failures != NULL) {
        pthread_mutex_destroy(&w->unwrap_failures->mutex);
        free(w->unwrap_failures);
    }
    free(w);
}

enum cj_status sess_wrap_key_decode(const char *text,
                                    unsigned char key[SESS_WRAP_KEY_LEN])
{
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    unsigned char buf[SESS_WRAP_KEY_TEXT_MAX];
    size_t start = 0;
    size_t end;
    size_t len = 0;
    enum cj_status st = CJ_ERR_INVALID;

    end = text != NULL ? strlen(text) : 0;
    while (start < end && isspace((unsigned char)text[start])) {
        start++;
    }
    while (end > start && isspace((unsigned char)text[end - 1])) {
        end--;
    }
    if (end == start || end - start >= SESS_WRAP_KEY_TEXT_MAX) {
        goto out;
    }
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        if (sodium_base642bin(buf, sizeof(buf), text + start, end - start, NULL,
                              &len, NULL, variants[i]) == 0 &&
            len == SESS_WRAP_KEY_LEN) {
            memcpy(key, buf, SESS_WRAP_KEY_LEN);
            st = CJ_OK;
            goto out;
        }
    }
out:
    cj_wipe(buf, sizeof(buf));
    return st;
}

static void put_u64_be(unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* Writes a label with its NUL, the session id with its length byte and
 * the epoch to out, and returns the bytes written. */
static size_t put_label_sid_epoch(unsigned char *out, const char *label,
                                  size_t label_size, const char *sid,
                                  uint64_t epoch)
{
    size_t sid_len = strnlen(sid, SESS_WRAP_SID_MAX);
    size_t n = 0;

    memcpy(out, label, label_size);
    n += label_size; /* the NUL separates the label */
    out[n++] = (unsigned char)sid_len;
    memcpy(out + n, sid, sid_len);
    n += sid_len;
    put_u64_be(out + n, epoch);
    return n + 8;
}

/* Builds the additional data that ties a wrapped key to its session, its
 * epoch and its header (version and wrapping key id). */
static size_t wrap_aad(unsigned char *aad, const char *sid, uint64_t epoch,
                       const unsigned char *header)
{
    size_t n = put_label_sid_epoch(aad, SESS_WRAP_AAD_LABEL,
                                   sizeof(SESS_WRAP_AAD_LABEL), sid, epoch);

    memcpy(aad + n, header, SESS_WRAP_NONCE_OFFSET);
    return n + SESS_WRAP_NONCE_OFFSET;
}

/* Derives the AES-256-GCM key of a version 2 wrap for session sid and
 * epoch. The caller wipes the derived key. */
static enum cj_status derive_wrap_subkey(const struct cj_secret *wrap_key,
                                         const char *sid, uint64_t epoch,
                                         unsigned char out[SESS_WRAP_KEY_LEN])
{
    unsigned char info[SESS_WRAP_SUBKEY_INFO_MAX];
    size_t n = put_label_sid_epoch(info, SESS_WRAP_SUBKEY_LABEL,
                                   sizeof(SESS_WRAP_SUBKEY_LABEL), sid, epoch);

    return cj_hkdf(out, SESS_WRAP_KEY_LEN, NULL, 0, wrap_key->bytes,
                   SESS_WRAP_KEY_LEN, info, n);
}

enum cj_status sess_key_wrap(const struct sess_wrapping *w, const char *sid,
                             uint64_t epoch,
                             const unsigned char key[SESS_EPOCH_KEY_LEN],
                             unsigned char out[SESS_WRAPPED_LEN])
{
    unsigned char aad[SESS_WRAP_AAD_MAX];
    unsigned char subkey[SESS_WRAP_KEY_LEN];
    size_t aad_len;
    enum cj_status st;

    out[0] = SESS_WRAP_VERSION;
    memcpy(out + 1, w->current_id, SESS_WRAP_KEY_ID_LEN);
    cj_random_bytes(out + SESS_WRAP_NONCE_OFFSET, CJ_AEAD_NONCE_LEN);
    aad_len = wrap_aad(aad, sid, epoch, out);
    st = derive_wrap_subkey(w->current, sid, epoch, subkey);
    if (st == CJ_OK) {
        st = cj_aead_seal(CJ_AEAD_AES_256_GCM, subkey, sizeof(subkey),
                          out + SESS_WRAP_NONCE_OFFSET, aad, aad_len, key,
                          SESS_EPOCH_KEY_LEN, out + SESS_WRAP_CT_OFFSET);
    }
    cj_wipe(subkey, sizeof(subkey));
    return st;
}

/*
 * Logs why a stored epoch key did not unwrap. Callers unwrap only records
 * stored for this session and epoch, so a client cannot cause this: it
 * means a lost wrapping key or a changed record in Redis.
 */
static void log_unwrap_failed(const struct sess_wrapping *w, const char *sid,
                              uint64_t epoch, const char *reason)
{
    char log_id[SESS_LOG_ID_SIZE];

    sess_log_id(w, sid, log_id);
    cj_log_limited(w->unwrap_failures, CJ_LOG_ERROR, "session.unwrap_failed",
                   NULL, CJ_F_STR("session_hash", log_id),
                   CJ_F_STR("reason", reason), CJ_F_INT("epoch", epoch));
}

/* Returns the wrapping key whose id the record carries, or NULL. */
static const struct cj_secret *find_wrap_key(const struct sess_wrapping *w,
                                             const unsigned char *wrapped)
{
    if (cj_ct_equal(wrapped + 1, w->current_id, SESS_WRAP_KEY_ID_LEN)) {
        return w->current;
    }
    if (w->previous != NULL &&
        cj_ct_equal(wrapped + 1, w->previous_id, SESS_WRAP_KEY_ID_LEN)) {
        return w->previous;
    }
    return NULL;
}

enum cj_status sess_key_unwrap(const struct sess_wrapping *w, const char *sid,
                               uint64_t epoch, const unsigned char *wrapped,
                               size_t wrapped_len,
                               unsigned char key[SESS_EPOCH_KEY_LEN])
{
    unsigned char aad[SESS_WRAP_AAD_MAX];
    unsigned char subkey[SESS_WRAP_KEY_LEN] = {0};
    const struct cj_secret *wrap_key;
    const unsigned char *aead_key;
    size_t aad_len;
    enum cj_status st;

    memset(key, 0, SESS_EPOCH_KEY_LEN);
    if (wrapped_len != SESS_WRAPPED_LEN ||
        (wrapped[0] != SESS_WRAP_VERSION_SHARED_KEY &&
         wrapped[0] != SESS_WRAP_VERSION_DERIVED_KEY)) {
        log_unwrap_failed(w, sid, epoch, "malformed");
        return CJ_ERR_CRYPTO;
    }
    wrap_key = find_wrap_key(w, wrapped);
    if (wrap_key == NULL) {
        /* Wrapped under a key that is neither CERROJO_SESSION_KEY nor
         * CERROJO_SESSION_KEY_PREVIOUS, as after a rotation that dropped the
         * previous key too early. */
        log_unwrap_failed(w, sid, epoch, "unknown_wrapping_key");
        return CJ_ERR_CRYPTO;
    }
    aad_len = wrap_aad(aad, sid, epoch, wrapped);
    aead_key = wrap_key->bytes;
    if (wrapped[0] == SESS_WRAP_VERSION_DERIVED_KEY) {
        if (derive_wrap_subkey(wrap_key, sid, epoch, subkey) != CJ_OK) {
            cj_wipe(subkey, sizeof(subkey));
            log_unwrap_failed(w, sid, epoch, "key_derivation_failed");
            return CJ_ERR_CRYPTO;
        }
        aead_key = subkey;
    }
    st = cj_aead_open(CJ_AEAD_AES_256_GCM, aead_key, SESS_WRAP_KEY_LEN,
                      wrapped + SESS_WRAP_NONCE_OFFSET, aad, aad_len,
                      wrapped + SESS_WRAP_CT_OFFSET,
                      SESS_EPOCH_KEY_LEN + CJ_AEAD_TAG_LEN, key);
    cj_wipe(subkey, sizeof(subkey));
    if (st != CJ_OK) {
        memset(key, 0, SESS_EPOCH_KEY_LEN);
        log_unwrap_failed(w, sid, epoch, "authentication_failed");
        return CJ_ERR_CRYPTO;
    }
    return CJ_OK;
}

bool sess_key_is_current(const struct sess_wrapping *w,
                         const unsigned char *wrapped, size_t wrapped_len)
{
    return wrapped_len == SESS_WRAPPED_LEN &&
           cj_ct_equal(wrapped + 1, w->current_id, SESS_WRAP_KEY_ID_LEN);
}

void sess_log_id(const struct sess_wrapping *w, const char *sid,
                 char out[SESS_LOG_ID_SIZE])
{
    unsigned char hash[SESS_LOG_HASH_LEN];

    crypto_generichash(hash, sizeof(hash), (const unsigned char *)sid,
                       strlen(sid), w->log_key->bytes, SESS_LOG_KEY_LEN);
    sodium_bin2hex(out, SESS_LOG_ID_SIZE, hash, sizeof(hash));
}

uint64_t sess_epoch_at(const struct sess_epoch_policy *p, int64_t created_ms,
                       int64_t now_ms)
{
    uint32_t epoch = 0;

    /* A clock behind the creation time counts as epoch 0. */
    if (now_ms <= created_ms || p->epoch_ms <= 0 ||
        cj_epoch_at((uint64_t)created_ms, (uint64_t)p->epoch_ms,
                    (uint64_t)now_ms, &epoch) != CJ_OK) {
        return 0;
    }
    return epoch;
}

int64_t sess_epoch_start(const struct sess_epoch_policy *p, int64_t created_ms,
                         uint64_t epoch)
{
    return created_ms + (int64_t)epoch * p->epoch_ms;
}

enum sess_epoch_choice sess_epoch_choose(const struct sess_epoch_policy *p,
                                         int64_t created_ms, int64_t now_ms,
                                         uint64_t client_epoch)
{
    uint64_t current = sess_epoch_at(p, created_ms, now_ms);

    if (client_epoch == current) {
        return SESS_EPOCH_CURRENT;
    }
    if (current > 0 && client_epoch == current - 1 &&
        now_ms < sess_epoch_start(p, created_ms, current) + p->grace_ms) {
        return SESS_EPOCH_PREVIOUS;
    }
    if (client_epoch == current + 1 &&
        sess_epoch_start(p, created_ms, current + 1) - now_ms <= p->leeway_ms) {
        return SESS_EPOCH_NEXT;
    }
    return SESS_EPOCH_REJECTED;
}

/* Client-side session keys and sealing for tests, on the crypto library. */
#include "sess_client.h"

#include <stdlib.h>
#include <string.h>

#include "crypto_util.h"
#include "envelope.h"
#include "envelope_stateful.h"

#define SESS_CLIENT_METHOD "POST"
#define SESS_CLIENT_PATH   "/v1/me"

enum cj_status sess_client_epoch_key(const uint8_t *secret, const char *sid,
                                     uint32_t epoch,
                                     uint8_t out[CJ_RATCHET_KEY_LEN])
{
    struct cj_ratchet *r =
        cj_ratchet_new((const uint8_t *)sid, strlen(sid), secret);
    enum cj_status st = CJ_ERR_NOMEM;

    if (r != NULL) {
        st = cj_ratchet_move_to(r, epoch);
    }
    if (st == CJ_OK) {
        memcpy(out, r->key->bytes, CJ_RATCHET_KEY_LEN);
    }
    cj_ratchet_free(r);
    return st;
}

enum cj_status sess_client_seal(const uint8_t *secret, const char *sid,
                                uint32_t epoch, uint64_t sequence,
                                const uint8_t *body, size_t body_len,
                                struct sess_client_request *out)
{
    uint8_t key[CJ_RATCHET_KEY_LEN];
    uint8_t c2s[CJ_RATCHET_KEY_LEN];
    uint8_t s2c[CJ_RATCHET_KEY_LEN];
    struct cj_seal_plaintext pt = {
        .ts_ms = 0, .body = body, .body_len = body_len};
    struct cj_stateful_request parsed = {0};
    enum cj_seal_reason reason;
    char *envelope = NULL;
    size_t envelope_len = 0;
    enum cj_status st;

    memset(out, 0, sizeof(*out));
    st = sess_client_epoch_key(secret, sid, epoch, key);
    if (st == CJ_OK) {
        st = cj_ratchet_direction_keys(key, c2s, s2c);
    }
    if (st == CJ_OK) {
        st = cj_stateful_seal_request(c2s, (const uint8_t *)sid, strlen(sid),
                                      epoch, sequence, SESS_CLIENT_METHOD,
                                      SESS_CLIENT_PATH, &pt, &envelope,
                                      &envelope_len);
    }
    /* What the gateway does with it: parse the envelope, rebuild the
     * additional data from the session header, method and path. */
    if (st == CJ_OK) {
        st =
            cj_stateful_parse_request(envelope, envelope_len, &parsed, &reason);
    }
    if (st == CJ_OK) {
        st = cj_stateful_build_aad((const uint8_t *)sid, strlen(sid),
                                   parsed.epoch, parsed.seq, SESS_CLIENT_METHOD,
                                   SESS_CLIENT_PATH, &out->aad, &out->aad_len);
    }
    if (st == CJ_OK) {
        out->ct = parsed.ct;
        out->ct_len = parsed.ct_len;
        parsed.ct = NULL;
    }
    cj_stateful_request_clear(&parsed);
    free(envelope);
    cj_wipe(key, sizeof(key));
    cj_wipe(c2s, sizeof(c2s));
    cj_wipe(s2c, sizeof(s2c));
    return st;
}

void sess_client_request_clear(struct sess_client_request *r)
{
    free(r->aad);
    free(r->ct);
    memset(r, 0, sizeof(*r));
}

enum cj_status sess_client_response_key(const uint8_t *secret, const char *sid,
                                        uint32_t epoch, uint64_t sequence,
                                        uint8_t out[CJ_RATCHET_KEY_LEN])
{
    uint8_t key[CJ_RATCHET_KEY_LEN];
    uint8_t c2s[CJ_RATCHET_KEY_LEN];
    uint8_t s2c[CJ_RATCHET_KEY_LEN];
    enum cj_status st = sess_client_epoch_key(secret, sid, epoch, key);

    if (st == CJ_OK) {
        st = cj_ratchet_direction_keys(key, c2s, s2c);
    }
    if (st == CJ_OK) {
        st = cj_ratchet_response_key(out, s2c, sequence);
    }
    cj_wipe(key, sizeof(key));
    cj_wipe(c2s, sizeof(c2s));
    cj_wipe(s2c, sizeof(s2c));
    return st;
}

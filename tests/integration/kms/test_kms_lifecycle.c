/*
 * kms key lifecycle against a real Postgres: first start, concurrent first
 * starts, restart, data-key failures, rotation of every purpose with
 * destroy-expired, the KEK versions recorded around a re-wrap, the warning
 * about a raised HPKE acceptance window, and re-wrapping under a new root key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "crypto_util.h"
#include "envelope_stateless.h"
#include "jwt.h"
#include "kms_datakey.h"
#include "kms_hpke.h"
#include "kms_itest.h"
#include "kms_service.h"
#include "kms_sign.h"
#include "kms_store.h"
#include "log.h"

/* Two root keys: 32 bytes of 0x01..0x20 and of 0xA0..0xBF, base64. */
#define ROOT_A            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define ROOT_B            "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="
#define CONCURRENT_STARTS 4

static struct kms_itest_db db;

static void set_env(const char *root, const char *promote_after)
{
    setenv("CERROJO_ENV_FILE", "/dev/null", 1);
    setenv("CERROJO_PROFILE", "dev", 1);
    setenv("CERROJO_KMS_DATABASE_URL", db.kms_dsn, 1);
    setenv("CERROJO_KMS_ROOT_KEY", root, 1);
    unsetenv("CERROJO_KMS_ROOT_KEY_FILE");
    setenv("CERROJO_KMS_SETTLE", "0", 1);
    setenv("CERROJO_KMS_PROMOTE_AFTER", promote_after, 1);
    setenv("CERROJO_KMS_SIGNING_ALG", "EdDSA", 1);
}

/* Sets a service up from the environment; bootstrap and load when asked. */
static enum cj_status service_open(struct kms_service *svc, bool load)
{
    struct kms_config cfg;
    enum cj_profile profile;
    char err[CJ_CONFIG_ERROR_MAX] = "";

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(cj_config_load(kms_config_options, kms_config_option_count,
                                    &profile, &cfg, err, sizeof(err)),
                     CJ_OK);
    enum cj_status st = kms_service_init(svc, profile, &cfg, err, sizeof(err));
    cj_config_free(kms_config_options, kms_config_option_count, &cfg);
    if (st != CJ_OK) {
        fprintf(stderr, "service_open: %s\n", err);
        return st;
    }
    if (!load)
        return CJ_OK;
    st = kms_bootstrap(&svc->lifecycle);
    if (st == CJ_OK)
        st = kms_service_reload(svc);
    return st;
}

/* Returns one integer the admin role reads from the test database. */
static long long admin_int(const char *sql)
{
    PGconn *conn = PQconnectdb(db.admin_db_dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return v;
}

static void admin_sql(const char *sql)
{
    assert_true(kms_itest_exec(db.admin_db_dsn, sql));
}

static void assert_one_active_per_purpose(void)
{
    assert_int_equal(admin_int("SELECT count(*) FROM kms.key_encryption_keys"),
                     1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.signing_keys"), 1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.hpke_keys"), 1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.key_list_signers"), 1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.signing_keys "
                               "WHERE state = 'active'"),
                     1);
}

static int reset(void **state)
{
    (void)state;
    set_env(ROOT_A, "0");
    return kms_itest_db_reset(&db) ? 0 : -1;
}

static void test_first_start_creates_one_key_set(void **state)
{
    (void)state;
    struct kms_service a;
    struct kms_service b;

    assert_int_equal(service_open(&a, true), CJ_OK);
    assert_one_active_per_purpose();
    assert_int_equal(service_open(&b, true), CJ_OK);
    assert_one_active_per_purpose();
    kms_service_free(&a);
    kms_service_free(&b);
}

static void *start_one(void *arg)
{
    struct kms_service *svc = arg;
    enum cj_status st = kms_bootstrap(&svc->lifecycle);
    return (void *)(intptr_t)st;
}

static void test_concurrent_first_starts_create_one_set(void **state)
{
    (void)state;
    struct kms_service svcs[CONCURRENT_STARTS];
    pthread_t threads[CONCURRENT_STARTS];

    for (int i = 0; i < CONCURRENT_STARTS; i++)
        assert_int_equal(service_open(&svcs[i], false), CJ_OK);
    for (int i = 0; i < CONCURRENT_STARTS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, start_one, &svcs[i]),
                         0);
    for (int i = 0; i < CONCURRENT_STARTS; i++) {
        void *result = NULL;
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_int_equal((intptr_t)result, CJ_OK);
    }
    assert_one_active_per_purpose();

    /* Every replica loads the same signing key. */
    char first_kid[KMS_KID_MAX + 1] = "";
    for (int i = 0; i < CONCURRENT_STARTS; i++) {
        assert_int_equal(kms_service_reload(&svcs[i]), CJ_OK);
        struct kms_keyring *ring = kms_service_keys(&svcs[i]);
        struct kms_signing_key *key = kms_keyring_active_signing(ring);
        assert_non_null(key);
        if (i == 0)
            snprintf(first_kid, sizeof(first_kid), "%s", key->kid);
        assert_string_equal(key->kid, first_kid);
        kms_keyring_unref(ring);
        kms_service_free(&svcs[i]);
    }
}

static void make_user_key(struct kms_service *svc, const char *user,
                          unsigned char *data_key, unsigned char *wrapped,
                          uint32_t *version)
{
    assert_int_equal(
        kms_create_user_key(svc, user, NULL, data_key, wrapped, version),
        CJ_OK);
}

static void test_restart_keeps_every_key(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;
    struct kms_key_list before;
    struct kms_key_list after;
    char *jwks_before = NULL;
    char *jwks_after = NULL;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    make_user_key(&svc, "user-restart", data_key, wrapped, &version);
    assert_int_equal(kms_list_public_keys(&svc, &before), CJ_OK);
    assert_int_equal(kms_get_jwks(&svc, &jwks_before), CJ_OK);
    kms_service_free(&svc);

    assert_int_equal(service_open(&svc, true), CJ_OK);
    assert_int_equal(kms_decrypt_key(&svc, "user-restart", wrapped,
                                     sizeof(wrapped), NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, data_key, sizeof(opened));
    assert_int_equal(kms_list_public_keys(&svc, &after), CJ_OK);
    assert_int_equal(kms_get_jwks(&svc, &jwks_after), CJ_OK);
    assert_string_equal(jwks_before, jwks_after);
    assert_int_equal(before.n_keys, after.n_keys);
    assert_memory_equal(before.keys[0].public_key, after.keys[0].public_key,
                        KMS_HPKE_PK_BYTES);
    assert_string_equal(before.fingerprints[0], after.fingerprints[0]);
    assert_one_active_per_purpose();
    kms_key_list_clear(&before);
    kms_key_list_clear(&after);
    free(jwks_before);
    free(jwks_after);
    kms_service_free(&svc);
}

static void test_decrypt_rejects_bad_inputs(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    make_user_key(&svc, "user-a", data_key, wrapped, &version);

    /* Another user's id. */
    assert_int_equal(kms_decrypt_key(&svc, "user-b", wrapped, sizeof(wrapped),
                                     NULL, opened, &version),
                     CJ_ERR_CRYPTO);
    /* A flipped byte anywhere. */
    for (size_t i = 0; i < sizeof(wrapped); i++) {
        wrapped[i] ^= 0x04;
        assert_int_equal(kms_decrypt_key(&svc, "user-a", wrapped,
                                         sizeof(wrapped), NULL, opened,
                                         &version),
                         CJ_ERR_CRYPTO);
        wrapped[i] ^= 0x04;
    }
    /* A truncated input. */
    assert_int_equal(kms_decrypt_key(&svc, "user-a", wrapped,
                                     sizeof(wrapped) - 1, NULL, opened,
                                     &version),
                     CJ_ERR_CRYPTO);
    /* An unknown KEK version. */
    wrapped[4] = 99;
    assert_int_equal(kms_decrypt_key(&svc, "user-a", wrapped, sizeof(wrapped),
                                     NULL, opened, &version),
                     CJ_ERR_CRYPTO);
    wrapped[4] = 1;
    /* The untouched input still opens. */
    assert_int_equal(kms_decrypt_key(&svc, "user-a", wrapped, sizeof(wrapped),
                                     NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, data_key, sizeof(opened));
    kms_service_free(&svc);
}

/* Signs a token expiring in lifetime_s seconds; returns it (free it). */
static char *sign(struct kms_service *svc, const char *jti, int64_t lifetime_s,
                  char *kid)
{
    const char *alg = NULL;
    char *token = NULL;
    int64_t now = kms_now();
    struct kms_token_request req = {
        .user_id = "user-t",
        .session_id = "",
        .token_id = jti,
        .issuer = "https://cerrojo.test",
        .audience = "cerrojo",
        .issued_at = now,
        .expires_at = now + lifetime_s,
    };
    assert_int_equal(kms_sign_token(svc, &req, NULL, &token, kid, &alg), CJ_OK);
    assert_string_equal(alg, "EdDSA");
    return token;
}

/* Verifies token against the service's current JWKS. */
static enum cj_status verify(struct kms_service *svc, const char *token)
{
    char *json = NULL;
    struct cj_jwks *set = NULL;
    struct cj_jwt_verify_config config;
    struct cj_jwt_claims claims;
    enum cj_jose_reason reason;

    assert_int_equal(kms_get_jwks(svc, &json), CJ_OK);
    assert_int_equal(cj_jwks_parse(json, strlen(json), &set), CJ_OK);
    cj_jwt_verify_config_init(&config, "https://cerrojo.test", "cerrojo");
    enum cj_status st = cj_jwt_verify(set, &config, kms_now(), token,
                                      strlen(token), &claims, &reason);
    cj_jwks_free(set);
    free(json);
    return st;
}

/* Seals a request to the active HPKE key as a client would. */
struct sealed {
    char *envelope;
    struct cj_stateless_request req;
    struct cj_stateless_client client;
};

static void seal_to_active(struct kms_service *svc, struct sealed *out)
{
    struct kms_key_list list;
    static const uint8_t body[] = "{\"hello\":1}";
    struct cj_seal_plaintext pt = {
        .ts_ms = 1, .body = body, .body_len = sizeof(body) - 1};
    size_t len = 0;
    enum cj_seal_reason reason;

    assert_int_equal(kms_list_public_keys(svc, &list), CJ_OK);
    assert_true(list.n_keys > 0);
    assert_string_equal(list.keys[0].state, "active");
    struct cj_stateless_header hdr = {
        .version = 1,
        .key_id = list.keys[0].key_id,
        .suite = {.kem_id = list.keys[0].kem_id,
                  .kdf_id = list.keys[0].kdf_id,
                  .aead_id = list.keys[0].aead_id}};
    assert_int_equal(cj_stateless_seal_request(
                         &hdr, list.keys[0].public_key, "POST", "/v1/login",
                         &pt, &out->envelope, &len, &out->client),
                     CJ_OK);
    assert_int_equal(
        cj_stateless_parse_request(out->envelope, len, &out->req, &reason),
        CJ_OK);
    kms_key_list_clear(&list);
}

static enum cj_status open_sealed(struct kms_service *svc,
                                  const struct sealed *s)
{
    uint8_t *aad = NULL;
    size_t aad_len = 0;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    uint8_t secret[CJ_OHTTP_MAX_SECRET_LEN];
    size_t secret_len = 0;

    assert_int_equal(
        cj_stateless_build_aad("POST", "/v1/login", &aad, &aad_len), CJ_OK);
    struct kms_sealed_request req = {
        .version = s->req.header.version,
        .key_id = s->req.header.key_id,
        .kem_id = s->req.header.suite.kem_id,
        .kdf_id = s->req.header.suite.kdf_id,
        .aead_id = s->req.header.suite.aead_id,
        .enc = s->req.enc,
        .enc_len = sizeof(s->req.enc),
        .aad = aad,
        .aad_len = aad_len,
        .ct = s->req.ct,
        .ct_len = s->req.ct_len,
    };
    enum cj_status st =
        kms_open_sealed(svc, &req, NULL, &pt, &pt_len, secret, &secret_len);
    if (st == CJ_OK) {
        /* The exported secret equals the client's own. */
        assert_int_equal(secret_len, s->client.secret_len);
        assert_memory_equal(secret, s->client.secret, secret_len);
    }
    free(pt);
    free(aad);
    return st;
}

static void sealed_clear(struct sealed *s)
{
    free(s->envelope);
    cj_stateless_request_clear(&s->req);
    cj_stateless_client_wipe(&s->client);
}

static void test_rotation_keeps_old_keys_until_expiry(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char key1[KMS_DATA_KEY_BYTES];
    unsigned char key2[KMS_DATA_KEY_BYTES];
    unsigned char wrapped1[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char wrapped2[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char rewrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    uint32_t version = 0;
    bool changed = false;
    char kid1[KMS_KID_MAX + 1];
    char kid2[KMS_KID_MAX + 1];
    char promoted[KMS_KID_MAX + 1];
    char retired[KMS_KID_MAX + 1];
    struct sealed sealed1;
    struct kms_destroy_report destroyed;
    int64_t ready_at = 0;
    unsigned count = 0;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    make_user_key(&svc, "user-1", key1, wrapped1, &version);
    make_user_key(&svc, "user-2", key2, wrapped2, &version);
    assert_int_equal(version, 1);
    char *token1 = sign(&svc, "jti-1", 900, kid1);
    seal_to_active(&svc, &sealed1);

    /* Rotate every purpose. */
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_KEK, NULL), CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_SIGNING, NULL),
                     CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_SIGNING, NULL),
                     CJ_ERR_EXISTS);
    assert_int_equal(kms_promote(&svc.lifecycle, promoted, retired, &ready_at),
                     CJ_OK);
    /* The kids of the promotion name the key that signed token1. */
    assert_string_equal(retired, kid1);
    assert_string_not_equal(promoted, kid1);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_KEYLIST, NULL),
                     CJ_OK);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);

    /* Old data keys open; rewrap moves one user to version 2. */
    assert_int_equal(kms_decrypt_key(&svc, "user-1", wrapped1, sizeof(wrapped1),
                                     NULL, opened, &version),
                     CJ_OK);
    assert_int_equal(version, 1);
    assert_memory_equal(opened, key1, sizeof(opened));
    assert_int_equal(kms_rewrap_key(&svc, "user-1", wrapped1, sizeof(wrapped1),
                                    NULL, rewrapped, &version, &changed),
                     CJ_OK);
    assert_true(changed);
    assert_int_equal(version, 2);
    assert_int_equal(kms_decrypt_key(&svc, "user-1", rewrapped,
                                     sizeof(rewrapped), NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, key1, sizeof(opened));
    assert_int_equal(kms_rewrap_key(&svc, "user-1", rewrapped,
                                    sizeof(rewrapped), NULL, wrapped1, &version,
                                    &changed),
                     CJ_OK);
    assert_false(changed);

    /* The old token still verifies; new tokens use the promoted key. */
    char *token2 = sign(&svc, "jti-2", 900, kid2);
    assert_string_not_equal(kid1, kid2);
    assert_int_equal(verify(&svc, token1), CJ_OK);
    assert_int_equal(verify(&svc, token2), CJ_OK);

    /* A request sealed to the retired HPKE key still opens. */
    assert_int_equal(open_sealed(&svc, &sealed1), CJ_OK);
    struct kms_key_list list;
    assert_int_equal(kms_list_public_keys(&svc, &list), CJ_OK);
    assert_non_null(list.previous_jws);
    assert_int_equal(list.n_fingerprints, 2);
    kms_key_list_clear(&list);

    /* Nothing has expired yet; user-2 still has a version-1 key. */
    assert_int_equal(kms_destroy_expired(&svc.lifecycle, &destroyed), CJ_OK);
    assert_int_equal(destroyed.hpke, 0);
    assert_int_equal(destroyed.signing, 0);
    assert_int_equal(destroyed.kek, 0);

    /* Let everything expire, and move user-2 as well. The second call
     * presents the stored form, as auth does after storing it. */
    assert_int_equal(kms_rewrap_key(&svc, "user-2", wrapped2, sizeof(wrapped2),
                                    NULL, rewrapped, &version, &changed),
                     CJ_OK);
    assert_int_equal(kms_rewrap_key(&svc, "user-2", rewrapped,
                                    sizeof(rewrapped), NULL, wrapped1, &version,
                                    &changed),
                     CJ_OK);
    assert_false(changed);
    admin_sql("UPDATE kms.signing_keys SET last_token_expires_at = now() - "
              "interval '2 minutes' WHERE state = 'retired'");
    admin_sql("UPDATE kms.hpke_keys SET accept_until = now() - interval "
              "'1 minute', destroy_after = now() - interval '1 minute' "
              "WHERE state = 'retired'");
    assert_int_equal(kms_destroy_expired(&svc.lifecycle, &destroyed), CJ_OK);
    assert_int_equal(destroyed.hpke, 1);
    assert_int_equal(destroyed.signing, 1);
    assert_int_equal(destroyed.kek, 1);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);

    /* What was destroyed is gone; what is active still works. */
    assert_int_not_equal(verify(&svc, token1), CJ_OK);
    assert_int_equal(verify(&svc, token2), CJ_OK);
    assert_int_equal(open_sealed(&svc, &sealed1), CJ_ERR_CRYPTO);
    assert_int_equal(kms_decrypt_key(&svc, "user-2", wrapped2, sizeof(wrapped2),
                                     NULL, opened, &version),
                     CJ_ERR_CRYPTO);
    assert_int_equal(kms_decrypt_key(&svc, "user-2", rewrapped,
                                     sizeof(rewrapped), NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, key2, sizeof(opened));
    assert_int_equal(admin_int("SELECT count(*) FROM kms.key_list_signers "
                               "WHERE state <> 'destroyed'"),
                     2);
    assert_int_equal(
        kms_retire(&svc.lifecycle, KMS_PURPOSE_KEYLIST, &count, NULL), CJ_OK);
    assert_int_equal(count, 1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.key_list_signers "
                               "WHERE state <> 'destroyed'"),
                     1);

    sealed_clear(&sealed1);
    free(token1);
    free(token2);
    kms_service_free(&svc);
}

/* Returns 1 when kms records version for user, else 0. */
static long long version_recorded(const char *user, uint32_t version)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM kms.data_key_versions "
             "WHERE user_id = '%s' AND kek_version = %u",
             user, (unsigned)version);
    return admin_int(sql);
}

/* Creates a key for user under KEK 1, then rotates the KEK to version 2. */
static void key_before_rotation(struct kms_service *svc, const char *user,
                                unsigned char *data_key, unsigned char *wrapped)
{
    uint32_t version = 0;

    assert_int_equal(service_open(svc, true), CJ_OK);
    make_user_key(svc, user, data_key, wrapped, &version);
    assert_int_equal(version, 1);
    assert_int_equal(kms_rotate(&svc->lifecycle, KMS_PURPOSE_KEK, NULL), CJ_OK);
    assert_int_equal(kms_service_reload(svc), CJ_OK);
}

/* Calls RewrapKey with the form auth stored, as the confirmation after a
 * re-wrap does; returns RewrapKey's "changed" and the key it returned. */
static bool present_stored_form(struct kms_service *svc, const char *user,
                                const unsigned char *stored,
                                unsigned char *returned)
{
    uint32_t version = 0;
    bool changed = false;

    assert_int_equal(kms_rewrap_key(svc, user, stored,
                                    KMS_WRAPPED_DATA_KEY_BYTES, NULL, returned,
                                    &version, &changed),
                     CJ_OK);
    return changed;
}

static void test_rewrap_keeps_old_kek_until_confirmed(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char rewrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char same[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    struct kms_destroy_report destroyed;
    uint32_t version = 0;
    bool changed = false;

    key_before_rotation(&svc, "user-k", data_key, wrapped);
    assert_int_equal(kms_rewrap_key(&svc, "user-k", wrapped, sizeof(wrapped),
                                    NULL, rewrapped, &version, &changed),
                     CJ_OK);
    assert_true(changed);
    assert_int_equal(version, 2);

    /* auth has not stored the new form yet, so version 1 stays. */
    assert_int_equal(version_recorded("user-k", 1), 1);
    assert_int_equal(version_recorded("user-k", 2), 1);
    assert_int_equal(kms_destroy_expired(&svc.lifecycle, &destroyed), CJ_OK);
    assert_int_equal(destroyed.kek, 0);
    assert_int_equal(destroyed.n_kept_keks, 1);
    assert_int_equal(destroyed.kept_keks[0].version, 1);
    assert_int_equal(destroyed.kept_keks[0].users, 1);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    assert_int_equal(kms_decrypt_key(&svc, "user-k", wrapped, sizeof(wrapped),
                                     NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, data_key, sizeof(opened));

    /* Presenting the stored new form confirms it and frees version 1. */
    changed = present_stored_form(&svc, "user-k", rewrapped, same);
    assert_false(changed);
    assert_memory_equal(same, rewrapped, sizeof(same));
    assert_int_equal(version_recorded("user-k", 1), 0);
    assert_int_equal(version_recorded("user-k", 2), 1);
    assert_int_equal(kms_destroy_expired(&svc.lifecycle, &destroyed), CJ_OK);
    assert_int_equal(destroyed.kek, 1);
    kms_service_free(&svc);
}

static void test_racing_decrypt_record_converges(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char rewrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char same[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    struct kms_destroy_report destroyed;
    uint32_t version = 0;
    bool changed = false;

    key_before_rotation(&svc, "user-r", data_key, wrapped);
    assert_int_equal(kms_rewrap_key(&svc, "user-r", wrapped, sizeof(wrapped),
                                    NULL, rewrapped, &version, &changed),
                     CJ_OK);
    changed = present_stored_form(&svc, "user-r", rewrapped, same);
    assert_int_equal(version_recorded("user-r", 1), 0);

    /* A DecryptKey of the old form, read before auth stored the new one,
     * finishes late and records version 1 again. */
    assert_int_equal(kms_decrypt_key(&svc, "user-r", wrapped, sizeof(wrapped),
                                     NULL, opened, &version),
                     CJ_OK);
    assert_int_equal(version, 1);
    assert_int_equal(version_recorded("user-r", 1), 1);

    /* The next re-wrap run finds the stored form current and drops it. */
    changed = present_stored_form(&svc, "user-r", rewrapped, same);
    assert_false(changed);
    assert_int_equal(version_recorded("user-r", 1), 0);
    assert_int_equal(kms_destroy_expired(&svc.lifecycle, &destroyed), CJ_OK);
    assert_int_equal(destroyed.kek, 1);
    kms_service_free(&svc);
}

static void test_promote_waits_for_publication(void **state)
{
    (void)state;
    struct kms_service svc;
    int64_t ready_at = 0;
    unsigned count = 0;
    char promoted[KMS_KID_MAX + 1];
    char retired[KMS_KID_MAX + 1];

    set_env(ROOT_A, "10m");
    assert_int_equal(service_open(&svc, true), CJ_OK);
    assert_int_equal(kms_promote(&svc.lifecycle, promoted, retired, &ready_at),
                     CJ_ERR_NOT_FOUND);
    int64_t rotated_at = kms_now();
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_SIGNING, NULL),
                     CJ_OK);
    assert_int_equal(kms_promote(&svc.lifecycle, promoted, retired, &ready_at),
                     CJ_ERR_PRECONDITION);
    /* Due CERROJO_KMS_PROMOTE_AFTER (10 min) after the rotation. */
    assert_true(ready_at >= rotated_at + 600 - 1);
    assert_true(ready_at <= kms_now() + 600 + 1);
    /* The next key is published at once. */
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    char *jwks = NULL;
    assert_int_equal(kms_get_jwks(&svc, &jwks), CJ_OK);
    struct cj_jwks *set = NULL;
    assert_int_equal(cj_jwks_parse(jwks, strlen(jwks), &set), CJ_OK);
    assert_int_equal(cj_jwks_count(set), 2);
    cj_jwks_free(set);
    free(jwks);
    assert_int_equal(
        kms_retire(&svc.lifecycle, KMS_PURPOSE_SIGNING, &count, NULL), CJ_OK);
    assert_int_equal(count, 1);
    assert_int_equal(
        kms_retire(&svc.lifecycle, KMS_PURPOSE_SIGNING, &count, NULL),
        CJ_ERR_NOT_FOUND);
    kms_service_free(&svc);
}

static void test_retire_hpke_names_retired_keys(void **state)
{
    (void)state;
    struct kms_service svc;
    struct cj_db_conn *conn = NULL;
    char key_ids[KMS_KID_MAX + 1] = "";
    char expected[32];
    unsigned count = 0;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    long long retired = admin_int("SELECT key_id FROM kms.hpke_keys "
                                  "WHERE state = 'retired'");
    snprintf(expected, sizeof(expected), "%lld", retired);
    assert_int_equal(cj_db_acquire(svc.pool, -1, &conn), CJ_OK);
    assert_int_equal(kms_store_retire_hpke(conn, &count, key_ids), CJ_OK);
    assert_int_equal(count, 1);
    assert_string_equal(key_ids, expected);
    /* The window is closed now, so a second call finds nothing. */
    assert_int_equal(kms_store_retire_hpke(conn, &count, key_ids), CJ_OK);
    assert_int_equal(count, 0);
    assert_string_equal(key_ids, "");
    cj_db_release(conn);
    kms_service_free(&svc);
}

/* Returns the key id that svc's key list names as active; fails without. */
static int listed_active_key(struct kms_service *svc)
{
    struct kms_key_list list;
    int key_id = -1;

    assert_int_equal(kms_list_public_keys(svc, &list), CJ_OK);
    for (size_t i = 0; i < list.n_keys; i++) {
        if (strcmp(list.keys[i].state, "active") == 0)
            key_id = list.keys[i].key_id;
    }
    kms_key_list_clear(&list);
    assert_true(key_id >= 0);
    return key_id;
}

/* Whether svc's key list has any entry for key_id. */
static bool list_names_key(struct kms_service *svc, long long key_id)
{
    struct kms_key_list list;
    bool found = false;

    assert_int_equal(kms_list_public_keys(svc, &list), CJ_OK);
    for (size_t i = 0; i < list.n_keys; i++)
        found = found || list.keys[i].key_id == key_id;
    kms_key_list_clear(&list);
    return found;
}

/* Moves the active HPKE key's creation back by seconds, as if that much
 * time had passed. Stored times are rounded to whole seconds, so callers
 * add one second to a threshold. */
static void age_active_hpke_key(int64_t seconds)
{
    char sql[160];

    snprintf(sql, sizeof(sql),
             "UPDATE kms.hpke_keys SET created_at = created_at - "
             "make_interval(secs => %lld) WHERE state = 'active'",
             (long long)seconds);
    admin_sql(sql);
}

/*
 * Two replicas on one database: the one that rotates reloads at once, the
 * other not yet. No list may name the new key before both open requests
 * sealed to it.
 */
static void test_new_hpke_key_listed_after_replicas_load(void **state)
{
    (void)state;
    struct kms_service first;
    struct kms_service second;
    struct sealed before;
    struct sealed during;
    struct sealed after;

    assert_int_equal(service_open(&first, true), CJ_OK);
    age_active_hpke_key(kms_hpke_publish_after_s(&first.cfg) + 1);
    assert_int_equal(kms_service_reload(&first), CJ_OK);
    assert_int_equal(service_open(&second, true), CJ_OK);
    int old_key = listed_active_key(&first);
    seal_to_active(&first, &before);

    assert_int_equal(kms_rotate(&first.lifecycle, KMS_PURPOSE_HPKE, NULL),
                     CJ_OK);
    assert_int_equal(kms_service_reload(&first), CJ_OK);
    long long new_key =
        admin_int("SELECT key_id FROM kms.hpke_keys WHERE state = 'active'");
    assert_int_not_equal(new_key, old_key);

    /* The second replica has not reloaded: it cannot open the new key, so
     * neither list names it yet, and the old key stays active. */
    assert_false(list_names_key(&first, new_key));
    assert_false(list_names_key(&second, new_key));
    assert_int_equal(listed_active_key(&first), old_key);
    seal_to_active(&first, &during);
    assert_int_equal(open_sealed(&second, &during), CJ_OK);
    assert_int_equal(open_sealed(&first, &during), CJ_OK);
    assert_int_equal(open_sealed(&second, &before), CJ_OK);

    /* After the publication delay every replica has reloaded. The new key
     * is active, and the old one is listed as retired. */
    age_active_hpke_key(kms_hpke_publish_after_s(&first.cfg) + 1);
    assert_int_equal(kms_service_reload(&first), CJ_OK);
    assert_int_equal(kms_service_reload(&second), CJ_OK);
    assert_int_equal(listed_active_key(&first), new_key);
    assert_int_equal(listed_active_key(&second), new_key);
    assert_true(list_names_key(&first, old_key));
    seal_to_active(&first, &after);
    assert_int_equal(after.req.header.key_id, new_key);
    assert_int_equal(open_sealed(&second, &after), CJ_OK);
    assert_int_equal(open_sealed(&second, &during), CJ_OK);

    sealed_clear(&before);
    sealed_clear(&during);
    sealed_clear(&after);
    kms_service_free(&first);
    kms_service_free(&second);
}

/* `retire hpke` right after a rotation leaves only the new key, which the
 * list then names at once, so that clients always have a key. */
static void test_retire_hpke_lists_new_key_at_once(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned count = 0;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    int old_key = listed_active_key(&svc);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    assert_int_equal(listed_active_key(&svc), old_key);
    assert_int_equal(kms_retire(&svc.lifecycle, KMS_PURPOSE_HPKE, &count, NULL),
                     CJ_OK);
    assert_int_equal(count, 1);
    /* Stored times are rounded to whole seconds, so move the end of the
     * acceptance window a second back instead of waiting for it. */
    admin_sql("UPDATE kms.hpke_keys SET accept_until = accept_until - "
              "interval '1 second' WHERE state = 'retired'");
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    long long new_key =
        admin_int("SELECT key_id FROM kms.hpke_keys WHERE state = 'active'");
    assert_int_equal(listed_active_key(&svc), new_key);
    assert_false(list_names_key(&svc, old_key));
    kms_service_free(&svc);
}

/* Seconds between the active HPKE key's creation and the end of the
 * retired key's acceptance window. */
static long long retired_accept_after_rotation(void)
{
    return admin_int("SELECT extract(epoch FROM retired.accept_until - "
                     "active.created_at)::bigint FROM kms.hpke_keys retired, "
                     "kms.hpke_keys active WHERE retired.state = 'retired' "
                     "AND active.state = 'active'");
}

/*
 * The last key list that names the old key as active is signed just before
 * the new key is listed, and it stays valid for the key-list lifetime. The
 * old key must open requests at least that long after the new key is listed.
 */
static void test_retired_hpke_key_outlives_key_lists(void **state)
{
    (void)state;
    struct kms_service svc;

    setenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED", "600", 1);
    setenv("CERROJO_KMS_KEY_LIST_LIFETIME", "3600", 1);
    assert_int_equal(service_open(&svc, true), CJ_OK);
    long long covered = kms_hpke_publish_after_s(&svc.cfg) +
                        svc.cfg.key_list_lifetime_s +
                        svc.cfg.clock_max_offset_s;
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    assert_true(retired_accept_after_rotation() >= covered);
    kms_service_free(&svc);

    /* A longer configured window is kept as it is. */
    assert_true(kms_itest_db_reset(&db));
    setenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED", "7200", 1);
    assert_int_equal(service_open(&svc, true), CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    assert_true(retired_accept_after_rotation() >= 7200);
    assert_true(retired_accept_after_rotation() <= 7201);
    kms_service_free(&svc);
    unsetenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED");
    unsetenv("CERROJO_KMS_KEY_LIST_LIFETIME");
}

/* Bytes of captured log read at most. */
#define LOG_CAPTURE_MAX 8192
/* The start of a kms.hpke_accept_raised line at each level. */
#define ACCEPT_RAISED_WARN                                                     \
    "\"level\":\"warn\",\"service\":\"kms-test\","                             \
    "\"event\":\"kms.hpke_accept_raised\""
#define ACCEPT_RAISED_INFO                                                     \
    "\"level\":\"info\",\"service\":\"kms-test\","                             \
    "\"event\":\"kms.hpke_accept_raised\""

/*
 * Sets a service up with CERROJO_KMS_HPKE_ACCEPT_RETIRED set to `accept`
 * (NULL: unset) and returns in `log` what it logged at info and above.
 */
static void capture_service_log(const char *accept, char *log)
{
    struct kms_service svc;
    char path[] = "/tmp/cj-kms-log-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    if (accept != NULL)
        setenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED", accept, 1);
    else
        unsetenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED");
    cj_log_init("kms-test", CJ_LOG_INFO);
    cj_log_set_fd(fd);
    enum cj_status st = service_open(&svc, false);
    cj_log_set_fd(2);
    cj_log_init("kms-test", CJ_LOG_ERROR);
    kms_service_free(&svc);
    unsetenv("CERROJO_KMS_HPKE_ACCEPT_RETIRED");
    assert_int_equal(st, CJ_OK);

    ssize_t len = pread(fd, log, LOG_CAPTURE_MAX - 1, 0);
    close(fd);
    unlink(path);
    assert_true(len >= 0);
    log[len] = '\0';
}

/*
 * A configured acceptance window shorter than a key list's lifetime plus
 * the publication delay and the clock offset limit is raised with one
 * warning that names both values. The default window, which the default
 * key-list lifetime always raises, is reported at info level.
 */
static void test_raised_hpke_window_is_logged(void **state)
{
    (void)state;
    char log[LOG_CAPTURE_MAX];
    char effective[64];

    setenv("CERROJO_KMS_KEY_LIST_LIFETIME", "3600", 1);
    setenv("CERROJO_KMS_RELOAD_INTERVAL", "30", 1);
    setenv("CERROJO_CLOCK_MAX_OFFSET", "5", 1);
    snprintf(effective, sizeof(effective), "\"effective_s\":%d",
             3600 + 2 * 30 + 5);

    capture_service_log("600", log);
    const char *line = strstr(log, ACCEPT_RAISED_WARN);
    assert_non_null(line);
    /* One line: no second event after the first. */
    assert_null(
        strstr(line + strlen(ACCEPT_RAISED_WARN), "kms.hpke_accept_raised"));
    assert_non_null(strstr(log, "\"configured_s\":600"));
    assert_non_null(strstr(log, effective));

    /* A window that already covers the key lists is kept and not logged. */
    capture_service_log("7200", log);
    assert_null(strstr(log, "kms.hpke_accept_raised"));

    /* The default window is raised too, at info level. */
    capture_service_log(NULL, log);
    assert_non_null(strstr(log, ACCEPT_RAISED_INFO));
    assert_null(strstr(log, ACCEPT_RAISED_WARN));
    assert_non_null(strstr(log, "\"default\":true"));
    assert_non_null(strstr(log, effective));

    unsetenv("CERROJO_KMS_KEY_LIST_LIFETIME");
    unsetenv("CERROJO_KMS_RELOAD_INTERVAL");
    unsetenv("CERROJO_CLOCK_MAX_OFFSET");
}

static void test_sign_records_last_token_expiry(void **state)
{
    (void)state;
    struct kms_service svc;
    char kid[KMS_KID_MAX + 1];

    assert_int_equal(service_open(&svc, true), CJ_OK);
    int64_t before = kms_now();
    char *token = sign(&svc, "jti-exp", 600, kid);
    long long recorded =
        admin_int("SELECT extract(epoch FROM last_token_expires_at)::bigint "
                  "FROM kms.signing_keys WHERE state = 'active'");
    assert_true(recorded >= before + 600);
    assert_true(recorded <= kms_now() + 600 + KMS_TOKEN_EXPIRY_STEP_S);
    free(token);
    kms_service_free(&svc);
}

/* Returns how many signing keys have kid and state. */
static long long signing_keys_with(const char *kid, const char *key_state)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM kms.signing_keys WHERE kid = '%s' AND "
             "state = '%s'",
             kid, key_state);
    return admin_int(sql);
}

static void test_destroy_signing_replaces_leaked_key(void **state)
{
    (void)state;
    struct kms_service svc;
    struct kms_signing_destroy result;
    char leaked[KMS_KID_MAX + 1];
    char after[KMS_KID_MAX + 1];

    assert_int_equal(service_open(&svc, true), CJ_OK);
    char *forged = sign(&svc, "jti-leaked", 600, leaked);
    assert_int_equal(verify(&svc, forged), CJ_OK);
    assert_int_equal(kms_destroy_signing(&svc.lifecycle, leaked, &result),
                     CJ_OK);
    assert_false(result.already_destroyed);
    assert_true(result.was_active);
    assert_int_equal(signing_keys_with(result.active_kid, "active"), 1);
    /* The key is gone at once although its token is still unexpired. */
    assert_int_equal(signing_keys_with(leaked, "destroyed"), 1);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.signing_keys WHERE "
                               "state = 'active'"),
                     1);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    assert_int_not_equal(verify(&svc, forged), CJ_OK);
    char *token = sign(&svc, "jti-after", 600, after);
    assert_string_not_equal(after, leaked);
    assert_int_equal(verify(&svc, token), CJ_OK);
    /* A second destroy finds the key destroyed and changes nothing. */
    assert_int_equal(kms_destroy_signing(&svc.lifecycle, leaked, &result),
                     CJ_OK);
    assert_true(result.already_destroyed);
    assert_false(result.was_active);
    assert_string_equal(result.active_kid, after);
    assert_int_equal(
        kms_destroy_signing(&svc.lifecycle, "no-such-kid", &result),
        CJ_ERR_NOT_FOUND);
    free(token);
    free(forged);
    kms_service_free(&svc);
}

static void test_destroy_signing_activates_next_key(void **state)
{
    (void)state;
    struct kms_service svc;
    struct kms_signing_destroy result;
    char leaked[KMS_KID_MAX + 1];
    char after[KMS_KID_MAX + 1];

    set_env(ROOT_A, "10m");
    assert_int_equal(service_open(&svc, true), CJ_OK);
    free(sign(&svc, "jti-before", 600, leaked));
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_SIGNING, NULL),
                     CJ_OK);
    /* The next key becomes active without its publication wait. */
    assert_int_equal(kms_destroy_signing(&svc.lifecycle, leaked, &result),
                     CJ_OK);
    assert_true(result.was_active);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.signing_keys WHERE "
                               "state = 'next'"),
                     0);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.signing_keys"), 2);
    assert_int_equal(kms_service_reload(&svc), CJ_OK);
    free(sign(&svc, "jti-after", 600, after));
    assert_int_equal(signing_keys_with(after, "active"), 1);
    assert_string_equal(result.active_kid, after);
    kms_service_free(&svc);
}

static void test_rewrap_root_moves_every_key(void **state)
{
    (void)state;
    struct kms_service svc;
    unsigned char data_key[KMS_DATA_KEY_BYTES];
    unsigned char wrapped[KMS_WRAPPED_DATA_KEY_BYTES];
    unsigned char opened[KMS_DATA_KEY_BYTES];
    unsigned char root_b[KMS_ROOT_KEY_BYTES];
    bool generated = false;
    uint32_t version = 0;
    unsigned count = 0;

    assert_int_equal(service_open(&svc, true), CJ_OK);
    make_user_key(&svc, "user-root", data_key, wrapped, &version);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_HPKE, NULL), CJ_OK);
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_KEK, NULL), CJ_OK);
    long long live = admin_int(
        "SELECT (SELECT count(*) FROM kms.key_encryption_keys WHERE state <> "
        "'destroyed') + (SELECT count(*) FROM kms.signing_keys WHERE state "
        "<> 'destroyed') + (SELECT count(*) FROM kms.hpke_keys WHERE state "
        "<> 'destroyed') + (SELECT count(*) FROM kms.key_list_signers WHERE "
        "state <> 'destroyed')");
    assert_int_equal(
        kms_root_key_parse(ROOT_B, strlen(ROOT_B), root_b, &generated), CJ_OK);
    assert_int_equal(kms_rewrap_root(&svc.lifecycle, root_b, &count), CJ_OK);
    assert_int_equal(count, live);
    kms_service_free(&svc);

    /* The old root opens nothing any more. */
    set_env(ROOT_A, "0");
    assert_int_equal(service_open(&svc, false), CJ_OK);
    assert_int_equal(kms_service_reload(&svc), CJ_ERR_CRYPTO);
    /* A command run with the old root adds no key wrapped under it. */
    long long keks = admin_int("SELECT count(*) FROM kms.key_encryption_keys");
    assert_int_equal(kms_rotate(&svc.lifecycle, KMS_PURPOSE_KEK, NULL),
                     CJ_ERR_CRYPTO);
    assert_int_equal(admin_int("SELECT count(*) FROM kms.key_encryption_keys"),
                     keks);
    kms_service_free(&svc);

    /* The new root opens everything, and old data keys still open. */
    set_env(ROOT_B, "0");
    assert_int_equal(service_open(&svc, true), CJ_OK);
    assert_int_equal(kms_decrypt_key(&svc, "user-root", wrapped,
                                     sizeof(wrapped), NULL, opened, &version),
                     CJ_OK);
    assert_memory_equal(opened, data_key, sizeof(opened));
    char kid[KMS_KID_MAX + 1];
    char *token = sign(&svc, "jti-root", 300, kid);
    assert_int_equal(verify(&svc, token), CJ_OK);
    free(token);
    kms_service_free(&svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_first_start_creates_one_key_set, reset),
        cmocka_unit_test_setup(test_concurrent_first_starts_create_one_set,
                               reset),
        cmocka_unit_test_setup(test_restart_keeps_every_key, reset),
        cmocka_unit_test_setup(test_decrypt_rejects_bad_inputs, reset),
        cmocka_unit_test_setup(test_rotation_keeps_old_keys_until_expiry,
                               reset),
        cmocka_unit_test_setup(test_rewrap_keeps_old_kek_until_confirmed,
                               reset),
        cmocka_unit_test_setup(test_racing_decrypt_record_converges, reset),
        cmocka_unit_test_setup(test_promote_waits_for_publication, reset),
        cmocka_unit_test_setup(test_retire_hpke_names_retired_keys, reset),
        cmocka_unit_test_setup(test_new_hpke_key_listed_after_replicas_load,
                               reset),
        cmocka_unit_test_setup(test_retire_hpke_lists_new_key_at_once, reset),
        cmocka_unit_test_setup(test_retired_hpke_key_outlives_key_lists, reset),
        cmocka_unit_test_setup(test_raised_hpke_window_is_logged, reset),
        cmocka_unit_test_setup(test_sign_records_last_token_expiry, reset),
        cmocka_unit_test_setup(test_destroy_signing_replaces_leaked_key, reset),
        cmocka_unit_test_setup(test_destroy_signing_activates_next_key, reset),
        cmocka_unit_test_setup(test_rewrap_root_moves_every_key, reset),
    };

    cj_log_init("kms-test", CJ_LOG_ERROR);
    if (cj_crypto_init() != CJ_OK)
        return 1;
    if (!kms_itest_db_create(&db, "kms_lifecycle"))
        return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    kms_itest_db_drop(&db);
    return failed;
}

/*
 * Integration tests of the session core against real Redis: replay window,
 * epoch rotation, the worker racing lazy advances, TTLs, user deletion and
 * the revocation cache. Tests that flush or stop Redis start their own with
 * scripts/redis.sh on a free port, so the shared one is left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aead.h"
#include "envelope.h"
#include "crypto_util.h"
#include "itest.h"
#include "redis.h"
#include "sess_crypto.h"
#include "sess_service.h"
#include "sess_worker.h"
#include "sess_client.h"

/* A two-second epoch keeps the rotation tests short; grace and leeway are
 * shorter than an epoch so that both of their edges can be observed. */
#define TEST_EPOCH_MS      2000
#define TEST_GRACE_MS      800
#define TEST_LEEWAY_MS     500
#define CONCURRENT_CREATES 500
#define CREATE_THREADS     10
#define OPEN_THREADS       8
/* Seconds before session's clock of the revocation in the bind-time test. */
#define BIND_REVOKED_AGO_S 5
#define OPEN_SEQUENCES     150
/* Fresh sessions tried when a stall pushes a step past its window. */
#define ROTATION_ATTEMPTS 4

static const char *redis_host;
static int redis_port;

struct fixture {
    struct cj_redis_pool *pool;
    struct sess_wrapping *wrapping;
    struct sess_service svc;
};

static struct cj_redis_pool *pool_at(const char *host, int port)
{
    struct cj_redis_options o = {.host = host,
                                 .port = port,
                                 .pool_size = 16,
                                 .connect_timeout_ms = 1000,
                                 .command_timeout_ms = 2000,
                                 .acquire_timeout_ms = 5000};
    struct cj_redis_pool *p = NULL;

    assert_int_equal(cj_redis_pool_new(&o, &p), CJ_OK);
    return p;
}

/* One wrapping key for the whole run, as one service has, so that the
 * worker can open the sessions every test leaves behind. */
static unsigned char wrap_key[SESS_WRAP_KEY_LEN];

static void fixture_init(struct fixture *f, const char *host, int port)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(sess_wrapping_new(wrap_key, NULL, &f->wrapping), CJ_OK);
    f->pool = pool_at(host, port);
    sess_settings_default(&f->svc.settings);
    f->svc.settings.epochs.epoch_ms = TEST_EPOCH_MS;
    f->svc.settings.epochs.grace_ms = TEST_GRACE_MS;
    f->svc.settings.epochs.leeway_ms = TEST_LEEWAY_MS;
    f->svc.redis = f->pool;
    f->svc.wrapping = f->wrapping;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    fixture_init(f, redis_host, redis_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cj_redis_pool_free(f->pool);
    sess_wrapping_free(f->wrapping);
    free(f);
    return 0;
}

/* Runs a command of NUL-terminated words; returns the reply. */
static redisReply *run(struct cj_redis_pool *p, int argc, const char **argv)
{
    size_t lens[8];
    redisReply *r = NULL;

    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    assert_int_equal(cj_redis_command(p, argc, argv, lens, &r), CJ_OK);
    return r;
}

static void sleep_until(int64_t when_ms)
{
    int64_t now = sess_now_ms();

    if (when_ms > now) {
        usleep((useconds_t)(when_ms - now) * 1000);
    }
}

/* A client of one session: its handshake secret and the session. */
struct client {
    struct sess_info info;
    unsigned char secret[SESS_CLIENT_SECRET_LEN];
};

static void client_create(struct fixture *f, struct client *c)
{
    cj_random_bytes(c->secret, sizeof(c->secret));
    assert_int_equal(
        sess_create(&f->svc, c->secret, sizeof(c->secret), &c->info), CJ_OK);
}

/* Seals "hello" for epoch and sequence and opens it through the server. */
static enum cj_status client_send(struct fixture *f, struct client *c,
                                  uint64_t epoch, uint64_t sequence,
                                  struct sess_opened *opened)
{
    static const unsigned char body[] = "hello";
    struct sess_client_request req;
    enum cj_status st;

    assert_int_equal(sess_client_seal(c->secret, c->info.session_id,
                                      (uint32_t)epoch, sequence, body,
                                      sizeof(body), &req),
                     CJ_OK);
    st = sess_open(&f->svc, c->info.session_id, epoch, sequence, req.aad,
                   req.aad_len, req.ct, req.ct_len, opened);
    sess_client_request_clear(&req);
    return st;
}

static enum cj_status send_once(struct fixture *f, struct client *c,
                                uint64_t epoch, uint64_t sequence)
{
    struct sess_opened opened;
    enum cj_status st = client_send(f, c, epoch, sequence, &opened);

    sess_opened_clear(&opened);
    return st;
}

/* Sets the loaded marker with an empty, unnamed last batch. */
static enum cj_status load_complete(struct fixture *f)
{
    return sess_load_revocations(
        &f->svc, &(struct sess_revocation_batch){.complete = true});
}

static void test_open_round_trips_and_returns_response_key(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct sess_opened opened;
    struct cj_seal_plaintext pt;
    enum cj_seal_reason reason;
    unsigned char expected[SESS_RESPONSE_KEY_LEN];

    client_create(f, &c);
    assert_int_equal(client_send(f, &c, 0, 1, &opened), CJ_OK);
    assert_int_equal(cj_seal_plaintext_decode(
                         opened.plaintext, opened.plaintext_len, &pt, &reason),
                     CJ_OK);
    assert_int_equal(pt.body_len, 6);
    assert_memory_equal(pt.body, "hello", 6);
    assert_string_equal(opened.user_id, "");
    assert_int_equal(opened.current_epoch, 0);
    assert_int_equal(
        sess_client_response_key(c.secret, c.info.session_id, 0, 1, expected),
        CJ_OK);
    assert_memory_equal(opened.response_key, expected, sizeof(expected));
    sess_opened_clear(&opened);
}

static void test_window_rejects_replay_and_old(void **state)
{
    struct fixture *f = *state;
    struct client c;

    client_create(f, &c);
    assert_int_equal(send_once(f, &c, 0, 5), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 5), CJ_ERR_REPLAYED);
    /* Out of order within the window: accepted once. */
    assert_int_equal(send_once(f, &c, 0, 3), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 3), CJ_ERR_REPLAYED);
    /* A jump of a whole window slides it: the window is now 6..133, so 5
     * fell out, while 6, never seen, is accepted once. */
    assert_int_equal(send_once(f, &c, 0, 5 + SESS_WINDOW_SIZE), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 5), CJ_ERR_REPLAYED);
    assert_int_equal(send_once(f, &c, 0, 4), CJ_ERR_REPLAYED);
    assert_int_equal(send_once(f, &c, 0, 6), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 6), CJ_ERR_REPLAYED);
    /* A slide by one (window 7..134) drops 6 and keeps the flag of 133. */
    assert_int_equal(send_once(f, &c, 0, 6 + SESS_WINDOW_SIZE), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 6), CJ_ERR_REPLAYED);
    assert_int_equal(send_once(f, &c, 0, 7), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 5 + SESS_WINDOW_SIZE),
                     CJ_ERR_REPLAYED);
}

static void test_forged_huge_sequence_leaves_window(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct sess_opened opened;
    unsigned char forged[64];
    static const unsigned char aad[] = "POST /v1/me";
    struct sess_client_request req;

    client_create(f, &c);
    cj_random_bytes(forged, sizeof(forged));
    assert_int_equal(sess_open(&f->svc, c.info.session_id, 0,
                               SESS_SEQUENCE_MAX - 1, aad, sizeof(aad), forged,
                               sizeof(forged), &opened),
                     CJ_ERR_CRYPTO);
    assert_null(opened.plaintext);
    /* A forgery with well-formed additional data fails on its tag. */
    assert_int_equal(sess_client_seal(c.secret, c.info.session_id, 0,
                                      SESS_SEQUENCE_MAX - 1,
                                      (const uint8_t *)"x", 1, &req),
                     CJ_OK);
    req.ct[0] ^= 0x01;
    assert_int_equal(sess_open(&f->svc, c.info.session_id, 0,
                               SESS_SEQUENCE_MAX - 1, req.aad, req.aad_len,
                               req.ct, req.ct_len, &opened),
                     CJ_ERR_CRYPTO);
    sess_client_request_clear(&req);
    assert_null(opened.plaintext);
    /* The real client still starts at 1. */
    assert_int_equal(send_once(f, &c, 0, 1), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 2), CJ_OK);
}

static void test_open_rejects_unknown_session(void **state)
{
    struct fixture *f = *state;
    struct client c;

    client_create(f, &c);
    memcpy(c.info.session_id, "ZZZZZZZZZZZZZZZZZZZZZZ", SESS_ID_LEN);
    assert_int_equal(send_once(f, &c, 0, 1), CJ_ERR_NOT_FOUND);
}

struct open_race {
    struct fixture *f;
    struct client *c;
    pthread_barrier_t *barrier;
    int accepted;
};

static void *open_race_main(void *arg)
{
    struct open_race *r = arg;

    pthread_barrier_wait(r->barrier);
    for (uint64_t seq = 1; seq <= OPEN_SEQUENCES; seq++) {
        if (send_once(r->f, r->c, 0, seq) == CJ_OK) {
            r->accepted++;
        }
    }
    return NULL;
}

static void test_concurrent_opens_accept_each_once(void **state)
{
    struct fixture *f = *state;
    struct client c;
    pthread_t threads[OPEN_THREADS];
    struct open_race races[OPEN_THREADS];
    pthread_barrier_t barrier;
    int total = 0;

    client_create(f, &c);
    pthread_barrier_init(&barrier, NULL, OPEN_THREADS);
    for (int i = 0; i < OPEN_THREADS; i++) {
        races[i] = (struct open_race){.f = f, .c = &c, .barrier = &barrier};
        pthread_create(&threads[i], NULL, open_race_main, &races[i]);
    }
    for (int i = 0; i < OPEN_THREADS; i++) {
        pthread_join(threads[i], NULL);
        total += races[i].accepted;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(total, OPEN_SEQUENCES);
}

/* Reads one field of a session hash; NULL-safe reply to free. */
static redisReply *session_field(struct fixture *f, const char *sid,
                                 const char *field)
{
    char key[64];
    const char *argv[] = {"HGET", key, field};

    snprintf(key, sizeof(key), SESS_KEY_PREFIX "s:%s", sid);
    return run(f->pool, 3, argv);
}

/* Returns true while the clock is before end_ms. A step that finishes
 * after its window's end may have run in the next epoch phase (the VM
 * stalled), so its results are discarded and the scenario restarts. */
static bool still_before(int64_t end_ms)
{
    return sess_now_ms() < end_ms;
}

/* Returns the epoch field of a session hash, or -1 when it is missing. */
static long stored_epoch(struct fixture *f, const char *sid)
{
    redisReply *r = session_field(f, sid, "e");
    long epoch = r->type == REDIS_REPLY_STRING ? atol(r->str) : -1;

    freeReplyObject(r);
    return epoch;
}

/* Returns true when the session hash contains the previous epoch's key. */
static bool has_previous_key(struct fixture *f, const char *sid)
{
    redisReply *r = session_field(f, sid, "p");
    bool present = r->type == REDIS_REPLY_STRING;

    freeReplyObject(r);
    return present;
}

/* Checks that the stored current key is the client's key for epoch. */
static void assert_stored_key_is_clients(struct fixture *f, struct client *c,
                                         uint32_t epoch)
{
    unsigned char server_key[SESS_EPOCH_KEY_LEN];
    unsigned char client_key[SESS_EPOCH_KEY_LEN];
    redisReply *r = session_field(f, c->info.session_id, "k");

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(sess_key_unwrap(f->wrapping, c->info.session_id, epoch,
                                     (const unsigned char *)r->str, r->len,
                                     server_key),
                     CJ_OK);
    freeReplyObject(r);
    assert_int_equal(
        sess_client_epoch_key(c->secret, c->info.session_id, epoch, client_key),
        CJ_OK);
    assert_memory_equal(server_key, client_key, SESS_EPOCH_KEY_LEN);
    cj_wipe(server_key, sizeof(server_key));
    cj_wipe(client_key, sizeof(client_key));
}

/* Walks one session through epochs 0 to 3, asserting every check of a
 * step that ended inside its window. Returns false when a step ran late. */
static bool rotation_attempt(struct fixture *f)
{
    struct client c;
    struct sess_worker_stats stats;
    enum cj_status st[2];
    enum cj_status worker;
    int64_t t0;
    long epoch;
    bool previous;

    client_create(f, &c);
    t0 = c.info.created_ms;
    assert_int_equal(c.info.epoch_seconds, TEST_EPOCH_MS / 1000);

    /* Epoch 0. The next epoch is rejected outside the leeway. */
    st[0] = send_once(f, &c, 0, 1);
    st[1] = send_once(f, &c, 1, 2);
    if (!still_before(t0 + TEST_EPOCH_MS - TEST_LEEWAY_MS)) {
        return false;
    }
    assert_int_equal(st[0], CJ_OK);
    assert_int_equal(st[1], CJ_ERR_CRYPTO);

    /* Within the leeway before epoch 1, epoch 1 is accepted. */
    sleep_until(t0 + TEST_EPOCH_MS - TEST_LEEWAY_MS + 150);
    st[0] = send_once(f, &c, 1, 3);
    if (!still_before(t0 + TEST_EPOCH_MS)) {
        return false;
    }
    assert_int_equal(st[0], CJ_OK);

    /* Epoch 1 during the grace period: epoch 0 still works. */
    sleep_until(t0 + TEST_EPOCH_MS + 100);
    st[0] = send_once(f, &c, 0, 4);
    st[1] = send_once(f, &c, 1, 5);
    if (!still_before(t0 + TEST_EPOCH_MS + TEST_GRACE_MS)) {
        return false;
    }
    assert_int_equal(st[0], CJ_OK);
    assert_int_equal(st[1], CJ_OK);

    /* After the grace period epoch 0 is rejected, and the worker erased
     * its key. */
    sleep_until(t0 + TEST_EPOCH_MS + TEST_GRACE_MS + 100);
    st[0] = send_once(f, &c, 0, 6);
    worker = sess_worker_pass(&f->svc, sess_now_ms(), &stats);
    previous = has_previous_key(f, c.info.session_id);
    if (!still_before(t0 + 2 * TEST_EPOCH_MS)) {
        return false;
    }
    assert_int_equal(st[0], CJ_ERR_CRYPTO);
    assert_int_equal(worker, CJ_OK);
    assert_false(previous);

    /* Epoch 2, advanced by the worker alone: the stored key is the one
     * the client ratchets to, and epoch 1's key stays only for the grace
     * period. */
    sleep_until(t0 + 2 * TEST_EPOCH_MS + 100);
    worker = sess_worker_pass(&f->svc, sess_now_ms(), &stats);
    epoch = stored_epoch(f, c.info.session_id);
    previous = has_previous_key(f, c.info.session_id);
    st[0] = send_once(f, &c, 2, 7);
    st[1] = send_once(f, &c, 1, 8);
    if (!still_before(t0 + 2 * TEST_EPOCH_MS + TEST_GRACE_MS)) {
        return false;
    }
    assert_int_equal(worker, CJ_OK);
    assert_int_equal(epoch, 2);
    assert_stored_key_is_clients(f, &c, 2);
    assert_true(previous);
    assert_int_equal(st[0], CJ_OK);
    assert_int_equal(st[1], CJ_OK);

    /* Epoch 3 after its grace: only epoch 3's key is left. */
    sleep_until(t0 + 3 * TEST_EPOCH_MS + TEST_GRACE_MS + 100);
    worker = sess_worker_pass(&f->svc, sess_now_ms(), &stats);
    epoch = stored_epoch(f, c.info.session_id);
    previous = has_previous_key(f, c.info.session_id);
    st[0] = send_once(f, &c, 2, 9);
    st[1] = send_once(f, &c, 3, 10);
    if (!still_before(t0 + 4 * TEST_EPOCH_MS)) {
        return false;
    }
    assert_int_equal(worker, CJ_OK);
    assert_int_equal(epoch, 3);
    assert_false(previous);
    assert_int_equal(st[0], CJ_ERR_CRYPTO);
    assert_int_equal(st[1], CJ_OK);
    cj_wipe(c.secret, sizeof(c.secret));
    return true;
}

static void test_rotation_follows_client_ratchet(void **state)
{
    struct fixture *f = *state;

    for (int attempt = 1; attempt <= ROTATION_ATTEMPTS; attempt++) {
        if (rotation_attempt(f)) {
            return;
        }
        print_message("rotation: a step ran past its window (machine "
                      "stalled); attempt %d of %d\n",
                      attempt, ROTATION_ATTEMPTS);
    }
    fail_msg("every rotation attempt ran past a window; the machine is "
             "too slow for a %d ms epoch",
             TEST_EPOCH_MS);
}

struct advance_race {
    struct fixture *f;
    struct client *c;
    pthread_barrier_t *barrier;
    bool worker;
    uint64_t sequence;
};

static void *advance_race_main(void *arg)
{
    struct advance_race *r = arg;
    struct sess_worker_stats stats;
    bool advanced = false;

    pthread_barrier_wait(r->barrier);
    if (r->worker) {
        assert_int_equal(sess_worker_pass(&r->f->svc, sess_now_ms(), &stats),
                         CJ_OK);
        assert_int_equal(sess_advance(&r->f->svc, r->c->info.session_id,
                                      sess_now_ms(), &advanced),
                         CJ_OK);
    } else {
        assert_int_equal(send_once(r->f, r->c, 1, r->sequence), CJ_OK);
    }
    return NULL;
}

static void test_worker_and_lazy_advance_once(void **state)
{
    struct fixture *f = *state;
    struct client c;
    pthread_t threads[OPEN_THREADS];
    struct advance_race races[OPEN_THREADS];
    pthread_barrier_t barrier;
    redisReply *r;

    client_create(f, &c);
    sleep_until(c.info.created_ms + TEST_EPOCH_MS + 50);
    pthread_barrier_init(&barrier, NULL, OPEN_THREADS);
    for (int i = 0; i < OPEN_THREADS; i++) {
        races[i] = (struct advance_race){.f = f,
                                         .c = &c,
                                         .barrier = &barrier,
                                         .worker = i % 2 == 0,
                                         .sequence = (uint64_t)i + 1};
        pthread_create(&threads[i], NULL, advance_race_main, &races[i]);
    }
    for (int i = 0; i < OPEN_THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    pthread_barrier_destroy(&barrier);
    r = session_field(f, c.info.session_id, "n");
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    r = session_field(f, c.info.session_id, "e");
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
}

struct create_batch {
    struct fixture *f;
    int count;
    int created;
};

static void *create_main(void *arg)
{
    struct create_batch *b = arg;
    unsigned char secret[SESS_CLIENT_SECRET_LEN];
    struct sess_info info;

    for (int i = 0; i < b->count; i++) {
        cj_random_bytes(secret, sizeof(secret));
        if (sess_create(&b->f->svc, secret, sizeof(secret), &info) == CJ_OK) {
            b->created++;
        }
    }
    return NULL;
}

/* Checks that every key under the pattern has a TTL; returns the count. */
static size_t check_ttls(struct cj_redis_pool *p, const char *pattern)
{
    char cursor[32] = "0";
    size_t count = 0;

    do {
        const char *scan[] = {"SCAN",  cursor,  "MATCH",
                              pattern, "COUNT", "1000"};
        redisReply *r = run(p, 6, scan);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *ttl[] = {"PTTL", r->element[1]->element[i]->str};
            redisReply *t = run(p, 2, ttl);
            /* -2: the key expired between SCAN and PTTL, which is fine;
             * -1 is a key without a TTL. */
            if (t->integer == -1) {
                fail_msg("key %s has no TTL (%lld)",
                         r->element[1]->element[i]->str, t->integer);
            }
            freeReplyObject(t);
            count++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return count;
}

static void test_concurrent_creates_leave_ttls(void **state)
{
    struct fixture *f = *state;
    pthread_t threads[CREATE_THREADS];
    struct create_batch batches[CREATE_THREADS];
    int created = 0;

    for (int i = 0; i < CREATE_THREADS; i++) {
        batches[i] = (struct create_batch){
            .f = f, .count = CONCURRENT_CREATES / CREATE_THREADS};
        pthread_create(&threads[i], NULL, create_main, &batches[i]);
    }
    for (int i = 0; i < CREATE_THREADS; i++) {
        pthread_join(threads[i], NULL);
        created += batches[i].created;
    }
    assert_int_equal(created, CONCURRENT_CREATES);
    assert_true(check_ttls(f->pool, SESS_KEY_PREFIX "*") >= CONCURRENT_CREATES);
    check_ttls(f->pool, SESS_REVOKE_PREFIX "*");
}

static void make_user(char *out, size_t size, const char *tag)
{
    unsigned char raw[6];
    char hex[13];

    cj_random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    snprintf(out, size, "user-%s-%s", tag, hex);
}

static void test_delete_user_sessions_only_theirs(void **state)
{
    struct fixture *f = *state;
    struct client a[3];
    struct client b[2];
    struct client unbound;
    struct sess_info info;
    uint32_t evicted = 0;
    char user_a[64];
    char user_b[64];
    uint32_t count = 0;

    /* A bound session opens only while the revocation cache is loaded. */
    assert_int_equal(load_complete(f), CJ_OK);
    make_user(user_a, sizeof(user_a), "a");
    make_user(user_b, sizeof(user_b), "b");
    for (int i = 0; i < 3; i++) {
        client_create(f, &a[i]);
        assert_int_equal(sess_bind(&f->svc, a[i].info.session_id, user_a, 0,
                                   &info, &evicted),
                         CJ_OK);
        assert_true(info.idle_expires_ms > a[i].info.idle_expires_ms + 60000);
    }
    for (int i = 0; i < 2; i++) {
        client_create(f, &b[i]);
        assert_int_equal(sess_bind(&f->svc, b[i].info.session_id, user_b, 0,
                                   &info, &evicted),
                         CJ_OK);
    }
    client_create(f, &unbound);
    assert_int_equal(
        sess_bind(&f->svc, a[0].info.session_id, user_b, 0, &info, &evicted),
        CJ_ERR_PRECONDITION);

    assert_int_equal(sess_delete_user(&f->svc, user_a, &count), CJ_OK);
    assert_int_equal(count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send_once(f, &a[i], 0, 1), CJ_ERR_NOT_FOUND);
    }
    for (int i = 0; i < 2; i++) {
        struct sess_opened opened;
        assert_int_equal(client_send(f, &b[i], 0, 1, &opened), CJ_OK);
        assert_string_equal(opened.user_id, user_b);
        sess_opened_clear(&opened);
    }
    assert_int_equal(send_once(f, &unbound, 0, 1), CJ_OK);
    assert_int_equal(sess_delete_user(&f->svc, user_a, &count), CJ_OK);
    assert_int_equal(count, 0);
}

static void test_is_revoked_reports_each_reason(void **state)
{
    struct fixture *f = *state;
    struct client c;
    enum sess_revoked_reason reason;
    char user[64];
    char jti[64];
    int64_t now_s = sess_now_ms() / 1000;
    bool deleted = false;

    make_user(user, sizeof(user), "r");
    make_user(jti, sizeof(jti), "jti");
    assert_int_equal(load_complete(f), CJ_OK);
    client_create(f, &c);

    assert_int_equal(
        sess_is_revoked(&f->svc, jti, user, now_s, c.info.session_id, &reason),
        CJ_OK);
    assert_int_equal(reason, SESS_NOT_REVOKED);

    assert_int_equal(sess_revoke_token(&f->svc, jti, now_s + 900), CJ_OK);
    assert_int_equal(sess_is_revoked(&f->svc, jti, user, now_s, NULL, &reason),
                     CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_TOKEN);

    assert_int_equal(sess_revoke_user(&f->svc, user, now_s, 0), CJ_OK);
    assert_int_equal(
        sess_is_revoked(&f->svc, "other-jti", user, now_s - 10, NULL, &reason),
        CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_USER);
    assert_int_equal(
        sess_is_revoked(&f->svc, "other-jti", user, now_s + 10, NULL, &reason),
        CJ_OK);
    assert_int_equal(reason, SESS_NOT_REVOKED);
    /* An earlier revocation time never replaces a later one. */
    assert_int_equal(sess_revoke_user(&f->svc, user, now_s - 100, 0), CJ_OK);
    assert_int_equal(
        sess_is_revoked(&f->svc, "other-jti", user, now_s - 10, NULL, &reason),
        CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_USER);

    assert_int_equal(sess_delete(&f->svc, c.info.session_id, &deleted), CJ_OK);
    assert_true(deleted);
    assert_int_equal(sess_is_revoked(&f->svc, "other-jti", "other-user", now_s,
                                     c.info.session_id, &reason),
                     CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_SESSION);
    assert_int_equal(sess_delete(&f->svc, c.info.session_id, &deleted), CJ_OK);
    assert_false(deleted);
}

/* Returns the PTTL of a user's revocation entry, in ms. */
static long long user_entry_ttl_ms(struct cj_redis_pool *p, const char *user)
{
    char key[256];
    const char *argv[] = {"PTTL", key};
    redisReply *r;
    long long ttl;

    snprintf(key, sizeof(key), SESS_REVOKE_PREFIX "user:%s", user);
    r = run(p, 2, argv);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    ttl = r->integer;
    freeReplyObject(r);
    return ttl;
}

/* Session's lifetime shorter than auth's, as when the two are configured
 * apart: 60 s here, and 15 min in auth's expiry. */
#define SHORT_TOKEN_LIFETIME_MS (60 * 1000)
#define AUTH_ENTRY_LIFETIME_MS  (15 * 60 * 1000)

static void test_user_entry_keeps_auth_expiry(void **state)
{
    struct fixture *f = *state;
    int64_t now_s = sess_now_ms() / 1000;
    int64_t auth_expiry_ms = now_s * 1000 + AUTH_ENTRY_LIFETIME_MS;
    struct sess_revoked_user loaded = {0};
    char direct[64];
    char batch[64];
    char older_auth[64];
    char earlier[64];

    f->svc.settings.token_lifetime_ms = SHORT_TOKEN_LIFETIME_MS;
    make_user(direct, sizeof(direct), "ld");
    make_user(batch, sizeof(batch), "lb");
    make_user(older_auth, sizeof(older_auth), "lo");
    make_user(earlier, sizeof(earlier), "le");

    /* RevokeUser and a load batch both keep the entry for auth's lifetime. */
    assert_int_equal(sess_revoke_user(&f->svc, direct, now_s, auth_expiry_ms),
                     CJ_OK);
    assert_true(user_entry_ttl_ms(f->pool, direct) >
                AUTH_ENTRY_LIFETIME_MS - SHORT_TOKEN_LIFETIME_MS);
    loaded = (struct sess_revoked_user){.user_id = batch,
                                        .revoked_at = now_s,
                                        .entry_expires_at_ms = auth_expiry_ms};
    assert_int_equal(
        sess_load_revocations(
            &f->svc,
            &(struct sess_revocation_batch){.users = &loaded, .user_count = 1}),
        CJ_OK);
    assert_true(user_entry_ttl_ms(f->pool, batch) >
                AUTH_ENTRY_LIFETIME_MS - SHORT_TOKEN_LIFETIME_MS);

    /* 0 from an older auth, or an earlier instant, keeps session's own. */
    assert_int_equal(sess_revoke_user(&f->svc, older_auth, now_s, 0), CJ_OK);
    assert_true(user_entry_ttl_ms(f->pool, older_auth) <=
                SHORT_TOKEN_LIFETIME_MS);
    assert_true(user_entry_ttl_ms(f->pool, older_auth) > 0);
    assert_int_equal(
        sess_revoke_user(&f->svc, earlier, now_s, now_s * 1000 + 1000), CJ_OK);
    assert_true(user_entry_ttl_ms(f->pool, earlier) >
                SHORT_TOKEN_LIFETIME_MS / 2);
}

/* Checks whether a Redis key exists. */
static bool key_exists(struct cj_redis_pool *p, const char *prefix,
                       const char *name)
{
    char key[256];
    const char *argv[] = {"EXISTS", key};
    redisReply *r;
    bool exists;

    snprintf(key, sizeof(key), "%s%s", prefix, name);
    r = run(p, 2, argv);
    exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return exists;
}

static void test_bound_open_fails_until_cache_loaded(void **state)
{
    struct fixture *f = *state;
    struct client bound;
    struct client unbound;
    struct sess_info info;
    struct sess_opened opened;
    uint32_t evicted = 0;
    char user[64];
    const char *unload[] = {"DEL", CJ_REVOKED_LOADED_KEY};
    redisReply *r;

    assert_int_equal(load_complete(f), CJ_OK);
    make_user(user, sizeof(user), "nl");
    client_create(f, &bound);
    client_create(f, &unbound);
    assert_int_equal(
        sess_bind(&f->svc, bound.info.session_id, user, 0, &info, &evicted),
        CJ_OK);
    assert_int_equal(send_once(f, &bound, 0, 1), CJ_OK);

    /* Auth deletes the marker when a revocation did not reach session. */
    r = run(f->pool, 2, unload);
    freeReplyObject(r);
    assert_int_equal(send_once(f, &bound, 0, 2), CJ_ERR_PRECONDITION);
    /* An unbound session carries no user, so it still opens. */
    assert_int_equal(send_once(f, &unbound, 0, 1), CJ_OK);

    /* The rejected request left the replay window as it was. */
    assert_int_equal(load_complete(f), CJ_OK);
    assert_int_equal(client_send(f, &bound, 0, 2, &opened), CJ_OK);
    assert_string_equal(opened.user_id, user);
    sess_opened_clear(&opened);
}

static void test_bound_before_user_revocation_fails(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct client other;
    struct sess_info info;
    uint32_t evicted = 0;
    char user[64];
    char index[128];
    const char *members[] = {"SISMEMBER", index, NULL};
    redisReply *r;

    make_user(user, sizeof(user), "rb");
    snprintf(index, sizeof(index), SESS_KEY_PREFIX "u:%s", user);
    client_create(f, &c);
    client_create(f, &other);
    assert_int_equal(
        sess_bind(&f->svc, c.info.session_id, user, 0, &info, &evicted), CJ_OK);
    assert_int_equal(
        sess_bind(&f->svc, other.info.session_id, user, 0, &info, &evicted),
        CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 1), CJ_OK);

    /* The revocation reaches Redis without DeleteUserSessions, as after a
     * failed call from auth. */
    assert_int_equal(sess_revoke_user(&f->svc, user, sess_now_ms() / 1000, 0),
                     CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 2), CJ_ERR_NOT_FOUND);
    assert_false(key_exists(f->pool, SESS_KEY_PREFIX "s:", c.info.session_id));
    assert_true(
        key_exists(f->pool, SESS_REVOKE_PREFIX "sid:", c.info.session_id));
    members[2] = c.info.session_id;
    r = run(f->pool, 3, members);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    /* Binding the same user again does not renew a revoked session. */
    assert_int_equal(
        sess_bind(&f->svc, other.info.session_id, user, 0, &info, &evicted),
        CJ_ERR_NOT_FOUND);
    assert_false(
        key_exists(f->pool, SESS_KEY_PREFIX "s:", other.info.session_id));
    assert_int_equal(send_once(f, &other, 0, 1), CJ_ERR_NOT_FOUND);
}

/* Revokes user in the second the session of c was created, then waits for
 * the next second, so that a bind from now on comes after the revocation. */
static void revoke_at_creation(struct fixture *f, struct client *c,
                               const char *user)
{
    int64_t created_s = c->info.created_ms / 1000;

    assert_int_equal(sess_revoke_user(&f->svc, user, created_s, 0), CJ_OK);
    sleep_until((created_s + 1) * 1000 + 10);
}

static void test_bound_after_user_revocation_works(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct sess_info info;
    uint32_t evicted = 0;
    struct sess_opened opened;
    char user[64];

    make_user(user, sizeof(user), "ra");
    client_create(f, &c);
    revoke_at_creation(f, &c, user);

    assert_int_equal(
        sess_bind(&f->svc, c.info.session_id, user, 0, &info, &evicted), CJ_OK);
    assert_int_equal(client_send(f, &c, 0, 1, &opened), CJ_OK);
    assert_string_equal(opened.user_id, user);
    sess_opened_clear(&opened);
    assert_int_equal(send_once(f, &c, 0, 2), CJ_OK);
    assert_int_equal(
        sess_bind(&f->svc, c.info.session_id, user, 0, &info, &evicted), CJ_OK);
    assert_int_equal(send_once(f, &c, 0, 3), CJ_OK);
}

/*
 * The bind time a caller passes, not session's clock, decides against the
 * user's revocation time, since auth's clock sets both.
 */
static void test_bind_time_from_caller_decides(void **state)
{
    struct fixture *f = *state;
    struct client after;
    struct client before;
    struct sess_info info;
    uint32_t evicted = 0;
    char user[64];
    int64_t revoked_s = sess_now_ms() / 1000 - BIND_REVOKED_AGO_S;

    make_user(user, sizeof(user), "rc");
    client_create(f, &after);
    client_create(f, &before);
    assert_int_equal(sess_revoke_user(&f->svc, user, revoked_s, 0), CJ_OK);

    /* Bound after the revocation second on the caller's clock. */
    assert_int_equal(sess_bind(&f->svc, after.info.session_id, user,
                               (revoked_s + 1) * 1000, &info, &evicted),
                     CJ_OK);
    assert_int_equal(send_once(f, &after, 0, 1), CJ_OK);

    /* Bound in the revocation second on the caller's clock, although
     * session's clock is seconds past it. */
    assert_int_equal(sess_bind(&f->svc, before.info.session_id, user,
                               revoked_s * 1000 + 999, &info, &evicted),
                     CJ_ERR_NOT_FOUND);
    assert_false(
        key_exists(f->pool, SESS_KEY_PREFIX "s:", before.info.session_id));
    assert_int_equal(
        sess_bind(&f->svc, after.info.session_id, user, -1, &info, &evicted),
        CJ_ERR_INVALID);
}

static void test_bind_time_missing_uses_creation(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct sess_info info;
    uint32_t evicted = 0;
    char user[64];
    char key[128];
    const char *hdel[] = {"HDEL", key, "b"};
    redisReply *r;

    make_user(user, sizeof(user), "rl");
    client_create(f, &c);
    revoke_at_creation(f, &c, user);
    assert_int_equal(
        sess_bind(&f->svc, c.info.session_id, user, 0, &info, &evicted), CJ_OK);

    /* A session stored before bind times were recorded has no b. */
    snprintf(key, sizeof(key), SESS_KEY_PREFIX "s:%s", c.info.session_id);
    r = run(f->pool, 3, hdel);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(send_once(f, &c, 0, 1), CJ_ERR_NOT_FOUND);
    assert_false(key_exists(f->pool, SESS_KEY_PREFIX "s:", c.info.session_id));
}

/* A Redis of this test's own, for flushing and stopping. */
static char own_dir[128];
static int own_port;

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void own_redis(const char *action)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "%s/scripts/redis.sh %s %s %d >/dev/null",
             CJ_SOURCE_DIR, action, own_dir, own_port);
    assert_int_equal(system(cmd), 0);
}

static int own_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(own_dir, sizeof(own_dir), "/tmp/cerrojo-sess-test-%d",
             (int)getpid());
    own_port = free_port();
    own_redis("start");
    fixture_init(f, "127.0.0.1", own_port);
    *state = f;
    return 0;
}

static int own_teardown(void **state)
{
    char cmd[256];

    teardown(state);
    own_redis("stop");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", own_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_flush_unloads_revocation_cache(void **state)
{
    struct fixture *f = *state;
    enum sess_revoked_reason reason;
    bool loaded = true;
    struct sess_revoked_token token = {
        .token_id = "jti-flush", .expires_at = sess_now_ms() / 1000 + 600};
    const char *flush[] = {"FLUSHALL"};
    redisReply *r;

    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &token,
                                               .token_count = 1,
                                               .complete = true,
                                           }),
                     CJ_OK);
    assert_int_equal(sess_cache_status(&f->svc, &loaded), CJ_OK);
    assert_true(loaded);
    r = run(f->pool, 1, flush);
    freeReplyObject(r);

    assert_int_equal(sess_cache_status(&f->svc, &loaded), CJ_OK);
    assert_false(loaded);
    assert_int_equal(
        sess_is_revoked(&f->svc, "jti-flush", "u", 1, NULL, &reason),
        CJ_ERR_PRECONDITION);
    /* A partial load does not set the marker; the last batch does. */
    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &token,
                                               .token_count = 1,
                                           }),
                     CJ_OK);
    assert_int_equal(
        sess_is_revoked(&f->svc, "jti-flush", "u", 1, NULL, &reason),
        CJ_ERR_PRECONDITION);
    assert_int_equal(load_complete(f), CJ_OK);
    assert_int_equal(
        sess_is_revoked(&f->svc, "jti-flush", "u", 1, NULL, &reason), CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_TOKEN);
}

static void test_load_interrupted_by_flush_sets_no_marker(void **state)
{
    struct fixture *f = *state;
    enum sess_revoked_reason reason;
    bool loaded = true;
    struct sess_revoked_token first = {
        .token_id = "jti-first", .expires_at = sess_now_ms() / 1000 + 600};
    struct sess_revoked_token last = {.token_id = "jti-last",
                                      .expires_at = sess_now_ms() / 1000 + 600};
    const char *flush[] = {"FLUSHALL"};
    const char *record[] = {"EXISTS", SESS_REVOKE_PREFIX "load:load-b"};
    redisReply *r;

    /* Redis is flushed after load a's first batch. Its last batch must not
     * set the marker over a copy without "jti-first". */
    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &first,
                                               .token_count = 1,
                                               .load_id = "load-a",
                                               .step = SESS_LOAD_BEGIN,
                                           }),
                     CJ_OK);
    r = run(f->pool, 1, flush);
    freeReplyObject(r);
    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &last,
                                               .token_count = 1,
                                               .complete = true,
                                               .load_id = "load-a",
                                               .step = SESS_LOAD_CONTINUE,
                                           }),
                     CJ_ERR_PRECONDITION);
    assert_int_equal(sess_cache_status(&f->svc, &loaded), CJ_OK);
    assert_false(loaded);
    assert_int_equal(
        sess_is_revoked(&f->svc, "jti-first", "u", 1, NULL, &reason),
        CJ_ERR_PRECONDITION);

    /* Load b begins after the flush, completes and deletes its record. */
    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &first,
                                               .token_count = 1,
                                               .load_id = "load-b",
                                               .step = SESS_LOAD_BEGIN,
                                           }),
                     CJ_OK);
    assert_int_equal(sess_load_revocations(&f->svc,
                                           &(struct sess_revocation_batch){
                                               .tokens = &last,
                                               .token_count = 1,
                                               .complete = true,
                                               .load_id = "load-b",
                                               .step = SESS_LOAD_CONTINUE,
                                           }),
                     CJ_OK);
    assert_int_equal(sess_cache_status(&f->svc, &loaded), CJ_OK);
    assert_true(loaded);
    assert_int_equal(
        sess_is_revoked(&f->svc, "jti-first", "u", 1, NULL, &reason), CJ_OK);
    assert_int_equal(reason, SESS_REVOKED_TOKEN);
    r = run(f->pool, 2, record);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_redis_down_is_unavailable_then_recovers(void **state)
{
    struct fixture *f = *state;
    struct client c;
    struct sess_info info;
    unsigned char secret[SESS_CLIENT_SECRET_LEN] = {1};
    bool loaded;

    client_create(f, &c);
    own_redis("stop");
    assert_int_equal(sess_create(&f->svc, secret, sizeof(secret), &info),
                     CJ_ERR_UNAVAILABLE);
    assert_int_equal(send_once(f, &c, 0, 1), CJ_ERR_UNAVAILABLE);
    assert_int_equal(sess_cache_status(&f->svc, &loaded), CJ_ERR_UNAVAILABLE);

    /* Append-only persistence brings the session back with Redis. */
    own_redis("start");
    assert_int_equal(send_once(f, &c, 0, 1), CJ_OK);
    assert_int_equal(sess_create(&f->svc, secret, sizeof(secret), &info),
                     CJ_OK);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test_setup_teardown(
            test_open_round_trips_and_returns_response_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_rejects_replay_and_old,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_huge_sequence_leaves_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_unknown_session,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_opens_accept_each_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_follows_client_ratchet,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_and_lazy_advance_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creates_leave_ttls,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_user_sessions_only_theirs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_revoked_reports_each_reason,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_entry_keeps_auth_expiry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_bound_open_fails_until_cache_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_before_user_revocation_fails,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_after_user_revocation_works,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_time_missing_uses_creation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_time_from_caller_decides,
                                        setup, teardown),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test_setup_teardown(test_flush_unloads_revocation_cache,
                                        own_setup, own_teardown),
        cmocka_unit_test_setup_teardown(
            test_load_interrupted_by_flush_sets_no_marker, own_setup,
            own_teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_down_is_unavailable_then_recovers, own_setup,
            own_teardown),
    };
    int failed;

    redis_host =
        itest_require_env("test_sess_store", "CERROJO_TEST_REDIS_HOST");
    redis_port =
        atoi(itest_require_env("test_sess_store", "CERROJO_TEST_REDIS_PORT"));
    assert_int_equal(cj_crypto_init(), CJ_OK);
    cj_random_bytes(wrap_key, sizeof(wrap_key));
    failed = cmocka_run_group_tests_name("shared redis", shared, NULL, NULL);
    failed += cmocka_run_group_tests_name("own redis", own, NULL, NULL);
    return failed;
}

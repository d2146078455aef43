/*
 * Integration tests of the per-user session limit against the real Redis
 * that scripts/test.sh starts: a bind past settings.max_per_user ends the
 * user's oldest sessions as DeleteSession does, concurrent binds keep
 * exactly the limit, and sessions that expired do not count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto_util.h"
#include "itest.h"
#include "metrics.h"
#include "redis.h"
#include "sess_client.h"
#include "sess_service.h"

#define TEST_LIMIT 3
/* Sessions bound in the sequential tests: two past TEST_LIMIT. */
#define TEST_SESSIONS    (TEST_LIMIT + 2)
#define CONCURRENT_LIMIT 4
#define CONCURRENT_BINDS 20
/* Bind times the tests pass are this far apart, so that the order of the
 * sessions never depends on the clock's resolution. */
#define BIND_STEP_MS 1000
/* How far before now the first passed bind time lies, in ms. */
#define BIND_BASE_AGO_MS 60000
/* Wait after a 1 ms PEXPIRE, so that Redis has expired the key. */
#define EXPIRY_WAIT_US 50000

static const char *redis_host;
static int redis_port;
static unsigned char wrap_key[SESS_WRAP_KEY_LEN];

struct fixture {
    struct cj_redis_pool *pool;
    struct sess_wrapping *wrapping;
    struct sess_service svc;
    struct cj_metrics *metrics;
    char user[64];
};

/* A client of one session: its handshake secret and the session. */
struct client {
    struct sess_info info;
    unsigned char secret[SESS_CLIENT_SECRET_LEN];
};

static int setup(void **state)
{
    struct cj_redis_options o = {.host = redis_host,
                                 .port = redis_port,
                                 .pool_size = 8,
                                 .connect_timeout_ms = 1000,
                                 .command_timeout_ms = 2000,
                                 .acquire_timeout_ms = 5000};
    struct fixture *f = calloc(1, sizeof(*f));
    unsigned char raw[6];
    char hex[2 * sizeof(raw) + 1];

    assert_non_null(f);
    assert_int_equal(sess_wrapping_new(wrap_key, NULL, &f->wrapping), CJ_OK);
    assert_int_equal(cj_redis_pool_new(&o, &f->pool), CJ_OK);
    sess_settings_default(&f->svc.settings);
    f->svc.settings.max_per_user = TEST_LIMIT;
    f->svc.redis = f->pool;
    f->svc.wrapping = f->wrapping;
    f->metrics = cj_metrics_new();
    assert_non_null(f->metrics);
    assert_int_equal(sess_metrics_register(f->metrics, &f->svc.metrics), CJ_OK);
    cj_random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    snprintf(f->user, sizeof(f->user), "user-limit-%s", hex);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cj_redis_pool_free(f->pool);
    sess_wrapping_free(f->wrapping);
    cj_metrics_free(f->metrics);
    free(f);
    return 0;
}

/* Checks that the metrics contain the line "name value". */
static void assert_metric(struct fixture *f, const char *name, long value)
{
    char line[128];
    size_t len = 0;
    char *text = cj_metrics_render(f->metrics, &len);

    assert_non_null(text);
    snprintf(line, sizeof(line), "\n%s %ld\n", name, value);
    if (strstr(text, line) == NULL) {
        fail_msg("metrics lack \"%s %ld\":\n%s", name, value, text);
    }
    free(text);
}

/* Runs a command of NUL-terminated words and returns its integer reply. */
static long long run_integer(struct fixture *f, int argc, const char **argv)
{
    size_t lens[4];
    redisReply *r = NULL;
    long long value;

    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    assert_int_equal(cj_redis_command(f->pool, argc, argv, lens, &r), CJ_OK);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    value = r->integer;
    freeReplyObject(r);
    return value;
}

static bool key_exists(struct fixture *f, const char *prefix, const char *sid)
{
    char key[128];
    const char *argv[] = {"EXISTS", key};

    int n = snprintf(key, sizeof(key), "%s%s", prefix, sid);

    assert_true(n > 0 && (size_t)n < sizeof(key));
    return run_integer(f, 2, argv) == 1;
}

static bool session_exists(struct fixture *f, const char *sid)
{
    return key_exists(f, SESS_KEY_PREFIX "s:", sid);
}

static bool tombstone_exists(struct fixture *f, const char *sid)
{
    return key_exists(f, SESS_REVOKE_PREFIX "sid:", sid);
}

static bool in_user_index(struct fixture *f, const char *sid)
{
    char index[128];
    const char *argv[] = {"SISMEMBER", index, sid};

    snprintf(index, sizeof(index), SESS_KEY_PREFIX "u:%s", f->user);
    return run_integer(f, 3, argv) == 1;
}

static long long user_index_size(struct fixture *f)
{
    char index[128];
    const char *argv[] = {"SCARD", index};

    snprintf(index, sizeof(index), SESS_KEY_PREFIX "u:%s", f->user);
    return run_integer(f, 2, argv);
}

/* Lets Redis expire the session now, as its idle timeout would. */
static void expire_session(struct fixture *f, const char *sid)
{
    char key[128];
    const char *argv[] = {"PEXPIRE", key, "1"};

    snprintf(key, sizeof(key), SESS_KEY_PREFIX "s:%s", sid);
    assert_int_equal(run_integer(f, 3, argv), 1);
    usleep(EXPIRY_WAIT_US);
    assert_false(session_exists(f, sid));
}

static void client_create(struct fixture *f, struct client *c)
{
    cj_random_bytes(c->secret, sizeof(c->secret));
    assert_int_equal(
        sess_create(&f->svc, c->secret, sizeof(c->secret), &c->info), CJ_OK);
}

/* Creates count sessions for a user without any and binds them in order,
 * the i-th at base_ms + i * BIND_STEP_MS. Each bind past the limit must
 * report the one session it ended. */
static void create_and_bind(struct fixture *f, struct client *c, int count,
                            int64_t base_ms)
{
    uint32_t max = f->svc.settings.max_per_user;
    struct sess_info info;
    uint32_t evicted;

    for (int i = 0; i < count; i++) {
        client_create(f, &c[i]);
        assert_int_equal(sess_bind(&f->svc, c[i].info.session_id, f->user,
                                   base_ms + i * BIND_STEP_MS, &info, &evicted),
                         CJ_OK);
        assert_int_equal(evicted, max != 0 && (uint32_t)i >= max ? 1 : 0);
    }
}

/* Seals one request with the session's first epoch and opens it through
 * the service. */
static enum cj_status send_once(struct fixture *f, struct client *c,
                                uint64_t sequence)
{
    static const unsigned char body[] = "hello";
    struct sess_client_request req;
    struct sess_opened opened;
    enum cj_status st;

    assert_int_equal(sess_client_seal(c->secret, c->info.session_id, 0,
                                      sequence, body, sizeof(body), &req),
                     CJ_OK);
    st = sess_open(&f->svc, c->info.session_id, 0, sequence, req.aad,
                   req.aad_len, req.ct, req.ct_len, &opened);
    sess_client_request_clear(&req);
    sess_opened_clear(&opened);
    return st;
}

/* Returns IsRevoked's reason for a fresh token of the user on session c. */
static enum sess_revoked_reason revoked_reason(struct fixture *f,
                                               struct client *c)
{
    enum sess_revoked_reason reason = SESS_NOT_REVOKED;

    assert_int_equal(sess_is_revoked(&f->svc, "limit-test-jti", f->user,
                                     sess_now_ms() / 1000, c->info.session_id,
                                     &reason),
                     CJ_OK);
    return reason;
}

/* Sets the loaded marker, which IsRevoked requires. */
static void load_complete(struct fixture *f)
{
    assert_int_equal(
        sess_load_revocations(
            &f->svc, &(struct sess_revocation_batch){.complete = true}),
        CJ_OK);
}

static void assert_ended(struct fixture *f, struct client *c)
{
    assert_int_equal(send_once(f, c, 1), CJ_ERR_NOT_FOUND);
    assert_false(session_exists(f, c->info.session_id));
    assert_true(tombstone_exists(f, c->info.session_id));
    assert_false(in_user_index(f, c->info.session_id));
    assert_int_equal(revoked_reason(f, c), SESS_REVOKED_SESSION);
}

static void assert_open(struct fixture *f, struct client *c, uint64_t sequence)
{
    assert_int_equal(send_once(f, c, sequence), CJ_OK);
    assert_true(in_user_index(f, c->info.session_id));
    assert_false(tombstone_exists(f, c->info.session_id));
    assert_int_equal(revoked_reason(f, c), SESS_NOT_REVOKED);
}

static void test_bind_past_limit_ends_oldest(void **state)
{
    struct fixture *f = *state;
    struct client c[TEST_SESSIONS];
    struct sess_info info;
    uint32_t evicted = 0;

    load_complete(f);
    create_and_bind(f, c, TEST_SESSIONS, sess_now_ms() - BIND_BASE_AGO_MS);

    for (int i = 0; i < TEST_SESSIONS - TEST_LIMIT; i++) {
        assert_ended(f, &c[i]);
    }
    for (int i = TEST_SESSIONS - TEST_LIMIT; i < TEST_SESSIONS; i++) {
        assert_open(f, &c[i], 1);
    }
    assert_int_equal(user_index_size(f), TEST_LIMIT);
    assert_metric(f, "cerrojo_session_evicted_total",
                  TEST_SESSIONS - TEST_LIMIT);

    /* Binding a listed session again, as a refresh does, ends nothing,
     * although it is the oldest of the user's sessions. */
    assert_int_equal(sess_bind(&f->svc,
                               c[TEST_SESSIONS - TEST_LIMIT].info.session_id,
                               f->user, 0, &info, &evicted),
                     CJ_OK);
    assert_int_equal(evicted, 0);
    for (int i = TEST_SESSIONS - TEST_LIMIT; i < TEST_SESSIONS; i++) {
        assert_open(f, &c[i], 2);
    }
    assert_int_equal(user_index_size(f), TEST_LIMIT);
}

static void test_bind_limit_zero_keeps_all(void **state)
{
    struct fixture *f = *state;
    struct client c[TEST_SESSIONS];

    f->svc.settings.max_per_user = 0;
    load_complete(f);
    create_and_bind(f, c, TEST_SESSIONS, sess_now_ms() - BIND_BASE_AGO_MS);

    for (int i = 0; i < TEST_SESSIONS; i++) {
        assert_open(f, &c[i], 1);
    }
    assert_int_equal(user_index_size(f), TEST_SESSIONS);
    assert_metric(f, "cerrojo_session_evicted_total", 0);
}

static void test_bind_limit_skips_expired(void **state)
{
    struct fixture *f = *state;
    struct client c[TEST_SESSIONS];
    int64_t base = sess_now_ms() - BIND_BASE_AGO_MS;

    load_complete(f);
    create_and_bind(f, c, TEST_LIMIT, base);
    expire_session(f, c[0].info.session_id);
    expire_session(f, c[1].info.session_id);
    assert_true(in_user_index(f, c[0].info.session_id));

    /* Counting the two expired members would end c[2] here. */
    for (int i = TEST_LIMIT; i < TEST_SESSIONS; i++) {
        struct sess_info info;
        uint32_t evicted = 0;
        client_create(f, &c[i]);
        assert_int_equal(sess_bind(&f->svc, c[i].info.session_id, f->user,
                                   base + i * BIND_STEP_MS, &info, &evicted),
                         CJ_OK);
        assert_int_equal(evicted, 0);
    }
    for (int i = 2; i < TEST_SESSIONS; i++) {
        assert_open(f, &c[i], 1);
    }
    assert_false(in_user_index(f, c[0].info.session_id));
    assert_false(in_user_index(f, c[1].info.session_id));
    assert_int_equal(user_index_size(f), TEST_LIMIT);
}

struct bind_job {
    struct fixture *f;
    struct client *c;
    enum cj_status result;
    uint32_t evicted;
};

static void *bind_main(void *arg)
{
    struct bind_job *job = arg;
    struct sess_info info;

    job->result = sess_bind(&job->f->svc, job->c->info.session_id, job->f->user,
                            0, &info, &job->evicted);
    return NULL;
}

/*
 * CONCURRENT_BINDS binds of new sessions race for a user who already has
 * CONCURRENT_LIMIT older ones. Each bind must succeed, the user must keep
 * exactly the limit, all of the newest batch, every session that is
 * still stored must be listed in the user's index, and the binds together
 * must report each ended session once.
 */
static void test_concurrent_binds_keep_limit(void **state)
{
    struct fixture *f = *state;
    struct client old[CONCURRENT_LIMIT];
    struct client fresh[CONCURRENT_BINDS];
    struct bind_job jobs[CONCURRENT_BINDS];
    pthread_t threads[CONCURRENT_BINDS];
    uint32_t evicted = 0;
    int live = 0;

    f->svc.settings.max_per_user = CONCURRENT_LIMIT;
    load_complete(f);
    create_and_bind(f, old, CONCURRENT_LIMIT, sess_now_ms() - BIND_BASE_AGO_MS);
    for (int i = 0; i < CONCURRENT_BINDS; i++) {
        client_create(f, &fresh[i]);
        jobs[i] = (struct bind_job){.f = f, .c = &fresh[i]};
    }
    for (int i = 0; i < CONCURRENT_BINDS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, bind_main, &jobs[i]),
                         0);
    }
    for (int i = 0; i < CONCURRENT_BINDS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].result, CJ_OK);
        evicted += jobs[i].evicted;
    }

    assert_int_equal(user_index_size(f), CONCURRENT_LIMIT);
    for (int i = 0; i < CONCURRENT_LIMIT; i++) {
        assert_ended(f, &old[i]);
    }
    for (int i = 0; i < CONCURRENT_BINDS; i++) {
        const char *sid = fresh[i].info.session_id;
        bool stored = session_exists(f, sid);
        assert_int_equal(stored, in_user_index(f, sid));
        assert_int_equal(stored, !tombstone_exists(f, sid));
        if (stored) {
            assert_open(f, &fresh[i], 1);
            live++;
        } else {
            assert_ended(f, &fresh[i]);
        }
    }
    assert_int_equal(live, CONCURRENT_LIMIT);
    assert_int_equal(evicted, CONCURRENT_BINDS);
    assert_metric(f, "cerrojo_session_evicted_total", CONCURRENT_BINDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bind_past_limit_ends_oldest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bind_limit_zero_keeps_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bind_limit_skips_expired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_binds_keep_limit, setup,
                                        teardown),
    };

    redis_host =
        itest_require_env("test_sess_limit", "CERROJO_TEST_REDIS_HOST");
    redis_port =
        atoi(itest_require_env("test_sess_limit", "CERROJO_TEST_REDIS_PORT"));
    assert_int_equal(cj_crypto_init(), CJ_OK);
    cj_random_bytes(wrap_key, sizeof(wrap_key));
    return cmocka_run_group_tests_name("session limit", tests, NULL, NULL);
}

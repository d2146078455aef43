/*
 * Tests for Argon2id password hashing: parameters, input checks before any
 * hashing, the dummy verification and the verification counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>

#include "password.h"

/* Small parameters keep the tests fast; one test uses the defaults. */
#define TEST_OPSLIMIT       1
#define TEST_MEMLIMIT_BYTES (64u * 1024u)
#define THREADS             4
#define DUMMIES_PER_THREAD  5

static const char PASSWORD[] = "correct horse battery staple";

static struct cj_password_hasher *new_hasher(unsigned long long ops, size_t mem)
{
    struct cj_password_params params = {.opslimit = ops, .memlimit_bytes = mem};
    struct cj_password_hasher *hasher = NULL;

    assert_int_equal(cj_password_hasher_new(&params, &hasher), CJ_OK);
    return hasher;
}

static int setup(void **state)
{
    *state = new_hasher(TEST_OPSLIMIT, TEST_MEMLIMIT_BYTES);
    return 0;
}

static int teardown(void **state)
{
    cj_password_hasher_free(*state);
    return 0;
}

static void test_params_default_and_bounds(void **state)
{
    struct cj_password_params p;

    (void)state;
    cj_password_params_default(&p);
    assert_int_equal(p.opslimit, 2);
    assert_int_equal(p.memlimit_bytes, 19u * 1024u * 1024u);
    assert_int_equal(cj_password_params_check(&p), CJ_OK);
    p.opslimit = 0;
    assert_int_equal(cj_password_params_check(&p), CJ_ERR_INVALID);
    p.opslimit = CJ_PASSWORD_OPSLIMIT_MAX + 1;
    assert_int_equal(cj_password_params_check(&p), CJ_ERR_INVALID);
    p.opslimit = 2;
    p.memlimit_bytes = CJ_PASSWORD_MEMLIMIT_MIN_BYTES - 1;
    assert_int_equal(cj_password_params_check(&p), CJ_ERR_INVALID);
    p.memlimit_bytes = (size_t)CJ_PASSWORD_MEMLIMIT_MAX_BYTES + 1;
    assert_int_equal(cj_password_params_check(&p), CJ_ERR_INVALID);
}

static void test_hasher_new_rejects_bad_params(void **state)
{
    struct cj_password_params p = {.opslimit = 0, .memlimit_bytes = 1};
    struct cj_password_hasher *hasher = (struct cj_password_hasher *)&p;

    (void)state;
    assert_int_equal(cj_password_hasher_new(&p, &hasher), CJ_ERR_INVALID);
    assert_null(hasher);
}

static void test_hash_then_verify_counts_one(void **state)
{
    struct cj_password_hasher *hasher = *state;
    char hash[CJ_PASSWORD_HASH_BYTES];
    uint64_t before;

    assert_int_equal(cj_password_hash(hasher, PASSWORD, strlen(PASSWORD), hash),
                     CJ_OK);
    assert_non_null(strstr(hash, "$argon2id$v=19$m=64,t=1,p=1$"));
    before = cj_password_verification_count(hasher);
    assert_int_equal(
        cj_password_verify(hasher, hash, PASSWORD, strlen(PASSWORD)), CJ_OK);
    assert_int_equal(cj_password_verification_count(hasher), before + 1);
    assert_int_equal(cj_password_verify(hasher, hash, "wrong", 5),
                     CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(cj_password_verification_count(hasher), before + 2);
    /* A prefix of the password is a different password. */
    assert_int_equal(
        cj_password_verify(hasher, hash, PASSWORD, strlen(PASSWORD) - 1),
        CJ_ERR_UNAUTHENTICATED);
}

static void test_unknown_user_costs_one_verification(void **state)
{
    struct cj_password_hasher *hasher = *state;
    char hash[CJ_PASSWORD_HASH_BYTES];
    uint64_t before;

    assert_int_equal(cj_password_hash(hasher, PASSWORD, strlen(PASSWORD), hash),
                     CJ_OK);
    before = cj_password_verification_count(hasher);
    assert_int_equal(cj_password_verify(hasher, hash, "guess", 5),
                     CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(cj_password_verification_count(hasher), before + 1);
    assert_int_equal(cj_password_verify_dummy(hasher, "guess", 5),
                     CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(cj_password_verification_count(hasher), before + 2);
    /* Even the right password of some user fails against the dummy. */
    assert_int_equal(
        cj_password_verify_dummy(hasher, PASSWORD, strlen(PASSWORD)),
        CJ_ERR_UNAUTHENTICATED);
    assert_int_equal(cj_password_verification_count(hasher), before + 3);
}

static void test_oversize_input_rejected_before_hashing(void **state)
{
    struct cj_password_hasher *hasher = *state;
    char big[CJ_PASSWORD_MAX_BYTES + 1];
    char hash[CJ_PASSWORD_HASH_BYTES];
    char good_hash[CJ_PASSWORD_HASH_BYTES];
    uint64_t before;

    memset(big, 'a', sizeof(big));
    assert_int_equal(cj_password_hash(hasher, PASSWORD, 3, good_hash), CJ_OK);
    before = cj_password_verification_count(hasher);
    assert_int_equal(cj_password_hash(hasher, big, sizeof(big), hash),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(cj_password_verify(hasher, good_hash, big, sizeof(big)),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(cj_password_verify_dummy(hasher, big, sizeof(big)),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(cj_password_verification_count(hasher), before);
    /* Exactly the limit is accepted. */
    assert_int_equal(cj_password_hash(hasher, big, CJ_PASSWORD_MAX_BYTES, hash),
                     CJ_OK);
}

static void test_embedded_nul_rejected_before_hashing(void **state)
{
    struct cj_password_hasher *hasher = *state;
    static const char with_nul[] = "abc\0def";
    char hash[CJ_PASSWORD_HASH_BYTES];
    char good_hash[CJ_PASSWORD_HASH_BYTES];
    uint64_t before;

    assert_int_equal(cj_password_hash(hasher, "abc", 3, good_hash), CJ_OK);
    before = cj_password_verification_count(hasher);
    assert_int_equal(cj_password_hash(hasher, with_nul, 7, hash),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_password_verify(hasher, good_hash, with_nul, 7),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_password_verify_dummy(hasher, with_nul, 7),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_password_verify(hasher, good_hash, NULL, 0),
                     CJ_ERR_INVALID);
    assert_int_equal(cj_password_verification_count(hasher), before);
}

static void test_corrupt_stored_hash_costs_one_verification(void **state)
{
    struct cj_password_hasher *hasher = *state;
    char unterminated[CJ_PASSWORD_HASH_BYTES];
    uint64_t before = cj_password_verification_count(hasher);

    memset(unterminated, '$', sizeof(unterminated));
    assert_int_equal(cj_password_verify(hasher, "$2b$10$bcrypt", "pw", 2),
                     CJ_ERR_INTERNAL);
    assert_int_equal(cj_password_verify(hasher, unterminated, "pw", 2),
                     CJ_ERR_INTERNAL);
    assert_int_equal(cj_password_verify(hasher, NULL, "pw", 2),
                     CJ_ERR_INTERNAL);
    assert_int_equal(cj_password_verification_count(hasher), before + 3);
}

static void test_needs_rehash_follows_params(void **state)
{
    struct cj_password_hasher *hasher = *state;
    struct cj_password_hasher *stronger =
        new_hasher(TEST_OPSLIMIT + 1, TEST_MEMLIMIT_BYTES);
    struct cj_password_hasher *bigger =
        new_hasher(TEST_OPSLIMIT, 2 * TEST_MEMLIMIT_BYTES);
    char hash[CJ_PASSWORD_HASH_BYTES];
    char argon2i[CJ_PASSWORD_HASH_BYTES];
    bool needs = true;

    assert_int_equal(cj_password_hash(hasher, "pw", 2, hash), CJ_OK);
    assert_int_equal(cj_password_needs_rehash(hasher, hash, &needs), CJ_OK);
    assert_false(needs);
    assert_int_equal(cj_password_needs_rehash(stronger, hash, &needs), CJ_OK);
    assert_true(needs);
    assert_int_equal(cj_password_needs_rehash(bigger, hash, &needs), CJ_OK);
    assert_true(needs);
    /* An Argon2i hash verifies but should move to Argon2id. */
    assert_int_equal(crypto_pwhash_str_alg(argon2i, "pw", 2, 3,
                                           TEST_MEMLIMIT_BYTES,
                                           crypto_pwhash_ALG_ARGON2I13),
                     0);
    assert_int_equal(cj_password_verify(hasher, argon2i, "pw", 2), CJ_OK);
    assert_int_equal(cj_password_needs_rehash(hasher, argon2i, &needs), CJ_OK);
    assert_true(needs);
    assert_int_equal(cj_password_needs_rehash(hasher, "garbage", &needs),
                     CJ_ERR_INVALID);
    assert_int_equal(
        cj_password_needs_rehash(hasher, "$argon2id$v=19$bad", &needs),
        CJ_ERR_INVALID);
    cj_password_hasher_free(stronger);
    cj_password_hasher_free(bigger);
}

static void test_default_params_hash_and_verify(void **state)
{
    struct cj_password_params params;
    struct cj_password_hasher *hasher = NULL;
    char hash[CJ_PASSWORD_HASH_BYTES];
    bool needs = true;

    (void)state;
    cj_password_params_default(&params);
    assert_int_equal(cj_password_hasher_new(&params, &hasher), CJ_OK);
    assert_int_equal(cj_password_hash(hasher, PASSWORD, strlen(PASSWORD), hash),
                     CJ_OK);
    /* 19 MiB is 19456 KiB; libsodium's Argon2id uses one lane. */
    assert_non_null(strstr(hash, "$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_int_equal(
        cj_password_verify(hasher, hash, PASSWORD, strlen(PASSWORD)), CJ_OK);
    assert_int_equal(cj_password_needs_rehash(hasher, hash, &needs), CJ_OK);
    assert_false(needs);
    assert_int_equal(cj_password_verification_count(hasher), 1);
    cj_password_hasher_free(hasher);
}

static void *run_dummies(void *arg)
{
    struct cj_password_hasher *hasher = arg;

    for (int i = 0; i < DUMMIES_PER_THREAD; i++) {
        if (cj_password_verify_dummy(hasher, "x", 1) !=
            CJ_ERR_UNAUTHENTICATED) {
            return arg;
        }
    }
    return NULL;
}

static void test_counter_is_exact_across_threads(void **state)
{
    struct cj_password_hasher *hasher =
        new_hasher(TEST_OPSLIMIT, TEST_MEMLIMIT_BYTES);
    pthread_t threads[THREADS];
    void *result;

    (void)state;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, run_dummies, hasher),
                         0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
    assert_int_equal(cj_password_verification_count(hasher),
                     THREADS * DUMMIES_PER_THREAD);
    cj_password_hasher_free(hasher);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_default_and_bounds),
        cmocka_unit_test(test_hasher_new_rejects_bad_params),
        cmocka_unit_test_setup_teardown(test_hash_then_verify_counts_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_unknown_user_costs_one_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_oversize_input_rejected_before_hashing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_embedded_nul_rejected_before_hashing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_corrupt_stored_hash_costs_one_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_rehash_follows_params, setup,
                                        teardown),
        cmocka_unit_test(test_default_params_hash_and_verify),
        cmocka_unit_test(test_counter_is_exact_across_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

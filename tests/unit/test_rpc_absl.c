/* Tests for switching off Abseil's Mutex deadlock detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dlfcn.h>
#include <cmocka.h>

#include <grpc/grpc.h>
#include <grpc/support/sync.h>

#include "rpc_absl.h"

/* The setter that rpc_absl.c looks up, in Debian 12's absl. */
#define SETTER_SYMBOL                                                          \
    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE"

/*
 * Locking two gpr_mu (absl::Mutex in this gRPC build) in both orders is a
 * potential deadlock that absl's detection aborts the process on. It has
 * to pass once detection is off.
 */
static void test_tune_allows_inverted_lock_order(void **state)
{
    (void)state;
    gpr_mu first;
    gpr_mu second;

    grpc_init();
    enum cj_rpc_absl_detection result =
        cj_rpc_absl_disable_deadlock_detection();
    if (dlsym(RTLD_DEFAULT, SETTER_SYMBOL) == NULL) {
        assert_int_equal(result, CJ_RPC_ABSL_DETECTION_UNCHANGED);
        grpc_shutdown();
        skip();
    }
    assert_int_equal(result, CJ_RPC_ABSL_DETECTION_OFF);

    gpr_mu_init(&first);
    gpr_mu_init(&second);
    gpr_mu_lock(&first);
    gpr_mu_lock(&second);
    gpr_mu_unlock(&second);
    gpr_mu_unlock(&first);
    gpr_mu_lock(&second);
    gpr_mu_lock(&first);
    gpr_mu_unlock(&first);
    gpr_mu_unlock(&second);
    gpr_mu_destroy(&first);
    gpr_mu_destroy(&second);
    grpc_shutdown();
}

static void test_tune_repeats_first_result(void **state)
{
    (void)state;
    enum cj_rpc_absl_detection first = cj_rpc_absl_disable_deadlock_detection();
    enum cj_rpc_absl_detection second =
        cj_rpc_absl_disable_deadlock_detection();

    assert_int_equal(second, first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tune_allows_inverted_lock_order),
        cmocka_unit_test(test_tune_repeats_first_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

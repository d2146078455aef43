/*
 * Switches off Abseil's Mutex deadlock detection, which Debian 12's absl
 * 20220623 runs on every lock the gRPC core takes because it was built
 * without NDEBUG. Measured with callgrind on a Health/Check call, it cost
 * about 7,000 of 57,000 instructions on the server and 7,600 of 65,000 on
 * the client.
 */
#include "rpc_absl.h"

#include <dlfcn.h>
#include <pthread.h>

#include "log.h"

/*
 * absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle) as the C++
 * compiler names it in Debian's build, whose inline namespace is "debian3".
 * The name encodes the namespace and the parameter type, so a different
 * absl build simply does not have it and the lookup fails. The parameter is
 * an `enum class` with int as underlying type, passed like a C int.
 */
#define ABSL_SET_DETECTION_SYMBOL                                              \
    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE"

/* absl::OnDeadlockCycle::kIgnore, the first value of that enum class. */
#define ABSL_ON_DEADLOCK_CYCLE_IGNORE 0

static pthread_once_t tune_once = PTHREAD_ONCE_INIT;
static enum cj_rpc_absl_detection tune_result = CJ_RPC_ABSL_DETECTION_UNCHANGED;

/*
 * Detection may be switched off while locks are held, because absl then
 * only stops recording and checking lock order, as in its NDEBUG builds.
 * It must never be switched on again: a Mutex locked while it was off and
 * unlocked while it is on makes absl abort with "thread releasing lock it
 * does not hold".
 */
static void tune(void)
{
    void (*set_mode)(int) = NULL;
    void *symbol = dlsym(RTLD_DEFAULT, ABSL_SET_DETECTION_SYMBOL);

    if (symbol == NULL) {
        cj_log(CJ_LOG_DEBUG, "rpc.absl_detection_unchanged", NULL,
               CJ_F_STR("symbol", ABSL_SET_DETECTION_SYMBOL));
        return;
    }
    /* POSIX allows this conversion from dlsym's void pointer. */
    *(void **)(&set_mode) = symbol;
    set_mode(ABSL_ON_DEADLOCK_CYCLE_IGNORE);
    tune_result = CJ_RPC_ABSL_DETECTION_OFF;
}

enum cj_rpc_absl_detection cj_rpc_absl_disable_deadlock_detection(void)
{
    pthread_once(&tune_once, tune);
    return tune_result;
}

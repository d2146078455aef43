/*
 * Deadline arithmetic on struct timespec and condition variables on the
 * monotonic clock, shared by the connection pools and service workers.
 */
#include "deadline.h"

enum cj_status cj_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    enum cj_status st = CJ_ERR_INTERNAL;

    if (pthread_condattr_init(&attr) != 0) {
        return st;
    }
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(cond, &attr) == 0) {
        st = CJ_OK;
    }
    pthread_condattr_destroy(&attr);
    return st;
}

void cj_deadline_after_ms(clockid_t clock_id, int64_t ms, struct timespec *out)
{
    clock_gettime(clock_id, out);
    out->tv_sec += (time_t)(ms / CJ_MS_PER_S);
    out->tv_nsec += (long)((ms % CJ_MS_PER_S) * CJ_NS_PER_MS);
    if (out->tv_nsec >= CJ_NS_PER_S) {
        out->tv_sec++;
        out->tv_nsec -= CJ_NS_PER_S;
    }
}

int64_t cj_monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * CJ_MS_PER_S + now.tv_nsec / CJ_NS_PER_MS;
}

/*
 * Deadlines for pthread_cond_timedwait and the monotonic clock they are
 * usually measured on. A condition variable waits on CLOCK_REALTIME unless
 * it was made with cj_cond_init_monotonic, and its deadlines must come
 * from the same clock.
 */
#ifndef CJ_DEADLINE_H
#define CJ_DEADLINE_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

#define CJ_MS_PER_S  1000LL
#define CJ_NS_PER_MS 1000000LL
#define CJ_NS_PER_S  1000000000LL

/* Sets *out to the time on clock_id ms milliseconds (0 or more) from now. */
void cj_deadline_after_ms(clockid_t clock_id, int64_t ms, struct timespec *out);

/*
 * Initializes *cond for timed waits on CLOCK_MONOTONIC, which clock steps
 * do not move. Returns CJ_ERR_INTERNAL when a pthread call fails, and
 * *cond is then not initialized.
 */
CJ_WARN_UNUSED enum cj_status cj_cond_init_monotonic(pthread_cond_t *cond);

/* Returns milliseconds on CLOCK_MONOTONIC, for measuring intervals only. */
int64_t cj_monotonic_ms(void);

#endif

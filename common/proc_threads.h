/*
 * The threads of this process, counted from /proc/self/task.
 *
 * The gRPC core detaches some of its threads, so they may still be ending
 * after grpc_shutdown_blocking() returns. Exit handlers that run then
 * (OpenSSL frees its state in one) race those threads: a thread that ends
 * after OpenSSL's handler keeps its OpenSSL error queue, which
 * LeakSanitizer reports, and one still using OpenSSL reads freed state.
 * Each service waits for them before it returns from main().
 */
#ifndef CJ_PROC_THREADS_H
#define CJ_PROC_THREADS_H

#include <stdbool.h>
#include <stdint.h>

/* How long a service waits at exit for library threads to end. */
#define CJ_PROC_EXIT_WAIT_MS 2000

/* Returns the number of threads in this process, or -1 when
 * /proc/self/task cannot be read. */
int cj_proc_thread_count(void);

/*
 * Waits until the calling thread is the process's only one, for at most
 * timeout_ms. Returns true once it is alone; returns false and logs
 * process.threads_remaining at the timeout or when the count cannot be
 * read. Call it only after every thread the program started has been
 * joined.
 */
bool cj_proc_wait_alone(int64_t timeout_ms);

#endif

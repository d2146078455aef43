/*
 * Counting this process's threads, and waiting at exit for the ones
 * libraries detached.
 */
#include "proc_threads.h"

#include <dirent.h>
#include <stddef.h>
#include <time.h>

#include "deadline.h"
#include "log.h"

#define PROC_TASK_DIR "/proc/self/task"
/* A detached thread ends soon after its library stops it, so a 1 ms poll
 * keeps the wait short. */
#define PROC_POLL_NS CJ_NS_PER_MS

int cj_proc_thread_count(void)
{
    DIR *dir = opendir(PROC_TASK_DIR);
    if (dir == NULL) {
        return -1;
    }
    int count = 0;
    const struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') {
            count++;
        }
    }
    closedir(dir);
    return count;
}

bool cj_proc_wait_alone(int64_t timeout_ms)
{
    const struct timespec poll = {.tv_sec = 0, .tv_nsec = PROC_POLL_NS};
    int64_t started_ms = cj_monotonic_ms();
    int count = cj_proc_thread_count();

    while (count > 1 && cj_monotonic_ms() - started_ms < timeout_ms) {
        nanosleep(&poll, NULL);
        count = cj_proc_thread_count();
    }
    if (count == 1) {
        return true;
    }
    cj_log(CJ_LOG_WARN, "process.threads_remaining", NULL,
           CJ_F_INT("threads", count), CJ_F_INT("waited_ms", timeout_ms));
    return false;
}

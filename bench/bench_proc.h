/*
 * Per-process figures of the services under load, from /proc: CPU time
 * (utime + stime of /proc/<pid>/stat), resident set (VmRSS) and its peak
 * (VmHWM of /proc/<pid>/status), with the peak reset before a run.
 */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest service name given to --watch, with the NUL. */
#define BENCH_PROC_NAME_MAX 32

struct bench_proc_sample {
    bool ok;
    uint64_t cpu_us; /* utime + stime, microseconds */
    uint64_t rss_kb; /* VmRSS */
    uint64_t hwm_kb; /* VmHWM: peak resident set since the last reset */
};

/* Reads the CPU time and memory of pid. Sets ok to false when gone. */
void bench_proc_read(pid_t pid, struct bench_proc_sample *out);

/*
 * Resets pid's VmHWM to its current VmRSS (writes 5 to clear_refs, which
 * needs the same user as the process). Returns false when not allowed.
 */
bool bench_proc_reset_peak(pid_t pid);

#endif

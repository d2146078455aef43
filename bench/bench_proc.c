/* Reading /proc/<pid>/stat and /proc/<pid>/status for the watched services. */
#include "bench_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads "Name:   123 kB" from an open status file; 0 when absent. */
static uint64_t status_kb(const char *text, const char *key)
{
    const char *at = strstr(text, key);

    if (at == NULL)
        return 0;
    return strtoull(at + strlen(key), NULL, 10);
}

void bench_proc_read(pid_t pid, struct bench_proc_sample *out)
{
    char path[64];
    char buf[4096];
    FILE *f;
    size_t n;
    const char *p;
    unsigned long long utime = 0, stime = 0;
    long ticks = sysconf(_SC_CLK_TCK);

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields resume after
     * the last ')'. utime and stime are fields 14 and 15 (proc(5)), the 12th
     * and 13th after the state field. */
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return;
    if (ticks <= 0)
        ticks = 100;
    out->cpu_us = (utime + stime) * 1000000ull / (unsigned long long)ticks;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    out->rss_kb = status_kb(buf, "VmRSS:");
    out->hwm_kb = status_kb(buf, "VmHWM:");
    out->ok = true;
}

bool bench_proc_reset_peak(pid_t pid)
{
    char path[64];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    f = fopen(path, "w");
    if (f == NULL)
        return false;
    ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/*
 * A latency histogram with logarithmic buckets in the manner of
 * HdrHistogram: values below 128 are exact, larger ones fall into one of
 * 64 linear sub-buckets per power of two, so a reported value is within
 * 1/64 (about 1.6 %) of the true one. Values are nanoseconds.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Sub-buckets per power of two (6 bits of precision). */
#define BENCH_HIST_SUB_BUCKETS 64
/* Values below this are counted exactly. */
#define BENCH_HIST_EXACT_LIMIT (2 * BENCH_HIST_SUB_BUCKETS)
/* Powers of two above the exact range: covers up to 2^64 ns. */
#define BENCH_HIST_MAGNITUDES 57
#define BENCH_HIST_BUCKETS                                                     \
    (BENCH_HIST_EXACT_LIMIT + BENCH_HIST_MAGNITUDES * BENCH_HIST_SUB_BUCKETS)

struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t total;
    uint64_t min_ns;
    uint64_t max_ns;
    long double sum_ns;
};

void bench_hist_init(struct bench_hist *hist);

/* Counts one value, in nanoseconds. */
void bench_hist_record(struct bench_hist *hist, uint64_t value_ns);

/* Adds every count of from into into. */
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);

/*
 * Returns the value at percentile (0 to 100): the upper edge of the bucket
 * that holds the ceil(total * percentile / 100)-th smallest value, capped
 * at the maximum recorded. 0 when the histogram is empty.
 */
uint64_t bench_hist_percentile(const struct bench_hist *hist,
                               double percentile);

/* Index of the bucket that counts value_ns (exposed for tests). */
size_t bench_hist_index(uint64_t value_ns);

/* Largest value counted by bucket index (exposed for tests). */
uint64_t bench_hist_bucket_upper(size_t index);

#endif

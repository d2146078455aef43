/*
 * The log-bucket latency histogram: index arithmetic, merging and
 * percentile lookup.
 */
#include "bench_hist.h"

#include <string.h>

/* log2 of BENCH_HIST_SUB_BUCKETS. */
#define BENCH_HIST_SUB_BITS 6

void bench_hist_init(struct bench_hist *hist)
{
    memset(hist, 0, sizeof(*hist));
    hist->min_ns = UINT64_MAX;
}

size_t bench_hist_index(uint64_t value_ns)
{
    unsigned msb;
    unsigned shift;
    uint64_t mantissa;

    if (value_ns < BENCH_HIST_EXACT_LIMIT)
        return (size_t)value_ns;
    /* value >= 128, so msb >= 7 and shift >= 1; mantissa is in [64, 127]. */
    msb = 63u - (unsigned)__builtin_clzll(value_ns);
    shift = msb - BENCH_HIST_SUB_BITS;
    mantissa = value_ns >> shift;
    return BENCH_HIST_EXACT_LIMIT +
           (size_t)(shift - 1) * BENCH_HIST_SUB_BUCKETS +
           (size_t)(mantissa - BENCH_HIST_SUB_BUCKETS);
}

uint64_t bench_hist_bucket_upper(size_t index)
{
    size_t rel;
    unsigned shift;
    uint64_t mantissa;

    if (index < BENCH_HIST_EXACT_LIMIT)
        return (uint64_t)index;
    rel = index - BENCH_HIST_EXACT_LIMIT;
    shift = (unsigned)(rel / BENCH_HIST_SUB_BUCKETS) + 1;
    mantissa = BENCH_HIST_SUB_BUCKETS + rel % BENCH_HIST_SUB_BUCKETS;
    if (shift >= 57)
        return UINT64_MAX;
    return ((mantissa + 1) << shift) - 1;
}

void bench_hist_record(struct bench_hist *hist, uint64_t value_ns)
{
    hist->counts[bench_hist_index(value_ns)]++;
    hist->total++;
    hist->sum_ns += (long double)value_ns;
    if (value_ns < hist->min_ns)
        hist->min_ns = value_ns;
    if (value_ns > hist->max_ns)
        hist->max_ns = value_ns;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum_ns += from->sum_ns;
    if (from->min_ns < into->min_ns)
        into->min_ns = from->min_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

uint64_t bench_hist_percentile(const struct bench_hist *hist, double percentile)
{
    uint64_t rank;
    uint64_t seen = 0;

    if (hist->total == 0)
        return 0;
    if (percentile <= 0.0)
        return hist->min_ns;
    if (percentile >= 100.0)
        return hist->max_ns;
    /* The rank, 1-based, of the value asked for. */
    rank = (uint64_t)((long double)hist->total * percentile / 100.0L);
    if ((long double)rank < (long double)hist->total * percentile / 100.0L)
        rank++;
    if (rank == 0)
        rank = 1;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += hist->counts[i];
        if (seen >= rank) {
            uint64_t upper = bench_hist_bucket_upper(i);
            return upper < hist->max_ns ? upper : hist->max_ns;
        }
    }
    return hist->max_ns;
}

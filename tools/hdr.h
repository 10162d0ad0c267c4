/*
 * hdr.h — a log-linear latency histogram in the style of HdrHistogram.
 *
 * Owns: recording non-negative integer values (kbench records nanoseconds)
 * in O(1) into buckets whose width is at most 1/128 of their lowest value,
 * percentile queries, and merging histograms recorded by different threads.
 *
 * Must not: allocate or lock on the record path (each thread records into its
 * own histogram and the results are merged afterwards), or drop a value: one
 * above the configured maximum is clamped into the top bucket and counted in
 * `clamped`, so totals always match the number of recordings.
 *
 * Layout: values below 2^HDR_SUB_BITS have one bucket each (exact). Above,
 * every power-of-two range [2^k, 2^(k+1)) is split into 2^HDR_SUB_BITS linear
 * sub-buckets of width 2^(k - HDR_SUB_BITS). A bucket's width is therefore at
 * most 1/128 of any value in it, and reporting the bucket midpoint bounds the
 * relative error of a percentile by 1/256 (< 0.4%, comfortably below 1%).
 */
#ifndef KB_TOOLS_HDR_H
#define KB_TOOLS_HDR_H

#include <stdint.h>

#define HDR_SUB_BITS  7
#define HDR_SUB_COUNT (1u << HDR_SUB_BITS)

typedef struct hdr_hist {
    uint64_t highest;  /* configured maximum: larger values clamp to its bucket */
    uint32_t nbuckets; /* length of counts */
    uint64_t *counts;  /* one counter per bucket */
    uint64_t total;    /* recordings, including clamped ones */
    uint64_t clamped;  /* recordings above `highest` */
    uint64_t min, max; /* exact extremes of the recorded values (max unclamped) */
    long double sum;   /* for the mean; long double keeps ns sums exact for hours */
} hdr_hist;

/* Prepares an empty histogram tracking values in [0, highest]; highest >= 1.
 * Returns 0, or -1 when the counters cannot be allocated. */
int hdr_init(hdr_hist *h, uint64_t highest);
void hdr_free(hdr_hist *h);
/* Forgets every recording (used to discard a warm-up period). */
void hdr_reset(hdr_hist *h);

/* Bucket index of v (v already clamped to h->highest by the caller or not:
 * this function clamps). Exposed for the tests. */
uint32_t hdr_index(const hdr_hist *h, uint64_t v);
/* Lowest and highest value that fall into bucket idx. */
uint64_t hdr_bucket_low(uint32_t idx);
uint64_t hdr_bucket_high(uint32_t idx);

void hdr_record(hdr_hist *h, uint64_t v);

/* Adds src's recordings to dst. Both must have been created with the same
 * `highest`; returns -1 (dst untouched) when they were not, else 0. */
int hdr_merge(hdr_hist *dst, const hdr_hist *src);

/* The value at percentile p (0 < p <= 100): the midpoint of the bucket holding
 * the ceil(p% * total)-th smallest recording, bounded by the exact min and max.
 * Returns 0 for an empty histogram. */
uint64_t hdr_percentile(const hdr_hist *h, double p);
double hdr_mean(const hdr_hist *h);

#endif

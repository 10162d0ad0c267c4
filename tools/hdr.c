/*
 * hdr.c — log-linear latency histogram (see hdr.h for the bucket layout).
 *
 * Owns: the value <-> bucket arithmetic, recording, merging and percentiles.
 *
 * Must not: branch on anything but the value's magnitude on the record path
 * (one count-leading-zeros and a shift decide the bucket), or report a
 * percentile outside the exact [min, max] that was recorded.
 */
#include "hdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint32_t hdr_index(const hdr_hist *h, uint64_t v)
{
    if (v > h->highest)
        v = h->highest;
    if (v < HDR_SUB_COUNT)
        return (uint32_t)v;
    /* k = position of the top bit; the next HDR_SUB_BITS bits pick the
     * linear sub-bucket inside [2^k, 2^(k+1)). */
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = k - HDR_SUB_BITS;
    uint32_t sub = (uint32_t)(v >> shift) - HDR_SUB_COUNT;
    return (shift + 1) * HDR_SUB_COUNT + sub;
}

uint64_t hdr_bucket_low(uint32_t idx)
{
    if (idx < HDR_SUB_COUNT)
        return idx;
    unsigned shift = idx / HDR_SUB_COUNT - 1;
    uint64_t sub = idx % HDR_SUB_COUNT;
    return (HDR_SUB_COUNT + sub) << shift;
}

uint64_t hdr_bucket_high(uint32_t idx)
{
    if (idx < HDR_SUB_COUNT)
        return idx;
    unsigned shift = idx / HDR_SUB_COUNT - 1;
    return hdr_bucket_low(idx) + ((uint64_t)1 << shift) - 1;
}

int hdr_init(hdr_hist *h, uint64_t highest)
{
    memset(h, 0, sizeof *h);
    if (highest < 1)
        highest = 1;
    h->highest = highest;
    h->nbuckets = hdr_index(h, highest) + 1;
    h->counts = calloc(h->nbuckets, sizeof *h->counts);
    if (!h->counts)
        return -1;
    h->min = UINT64_MAX;
    return 0;
}

void hdr_free(hdr_hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void hdr_reset(hdr_hist *h)
{
    memset(h->counts, 0, h->nbuckets * sizeof *h->counts);
    h->total = h->clamped = h->max = 0;
    h->min = UINT64_MAX;
    h->sum = 0;
}

void hdr_record(hdr_hist *h, uint64_t v)
{
    if (v > h->highest)
        h->clamped++;
    h->counts[hdr_index(h, v)]++;
    h->total++;
    h->sum += (long double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

int hdr_merge(hdr_hist *dst, const hdr_hist *src)
{
    if (dst->highest != src->highest || dst->nbuckets != src->nbuckets)
        return -1;
    for (uint32_t i = 0; i < src->nbuckets; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

uint64_t hdr_percentile(const hdr_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p > 100.0)
        p = 100.0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    uint64_t seen = 0;
    uint32_t idx = h->nbuckets - 1;
    for (uint32_t i = 0; i < h->nbuckets; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            idx = i;
            break;
        }
    }
    uint64_t lo = hdr_bucket_low(idx), hi = hdr_bucket_high(idx);
    uint64_t v = lo + (hi - lo) / 2;
    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    return v;
}

double hdr_mean(const hdr_hist *h)
{
    return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}

/*
 * test_hdr.c — the kbench latency histogram: bucket layout, percentiles of
 * known distributions against exact sorted values, merge, bounds, clamping.
 *
 * Owns: only tests of tools/hdr.c. Must not: use timing or randomness that is
 * not seeded (every distribution here is generated deterministically).
 */
#include "../hdr.h"

#include "kb_test.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MIN (60ull * 1000 * 1000 * 1000)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Uniform in (0, 1]. */
static double unit(void)
{
    return ((double)(rng() >> 11) + 1.0) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Exact percentile with the same rank definition as hdr_percentile. */
static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p)
{
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static int within(uint64_t got, uint64_t want, double rel)
{
    double d = fabs((double)got - (double)want);
    return d <= rel * (double)want || d <= 0.5; /* tiny values are exact */
}

static void test_bucket_layout(void)
{
    hdr_hist h;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&h, 10 * NS_PER_MIN), 0);
    uint32_t prev = 0;
    /* Every value lies in its bucket, buckets are contiguous and monotonic,
     * and a bucket is never wider than 1/128 of its lowest value. */
    for (uint64_t v = 0; v < 100000; v++) {
        uint32_t i = hdr_index(&h, v);
        CU_ASSERT(hdr_bucket_low(i) <= v && v <= hdr_bucket_high(i));
        CU_ASSERT(i == prev || i == prev + 1);
        prev = i;
    }
    for (uint32_t i = 1; i < h.nbuckets; i++) {
        CU_ASSERT_EQUAL(hdr_bucket_low(i), hdr_bucket_high(i - 1) + 1);
        uint64_t width = hdr_bucket_high(i) - hdr_bucket_low(i) + 1;
        CU_ASSERT(width == 1 || width * HDR_SUB_COUNT <= hdr_bucket_low(i));
    }
    for (int k = 0; k < 1000; k++) {
        uint64_t v = rng() % (10 * NS_PER_MIN);
        uint32_t i = hdr_index(&h, v);
        CU_ASSERT(hdr_bucket_low(i) <= v && v <= hdr_bucket_high(i));
    }
    /* Microseconds to minutes in a few thousand counters. */
    CU_ASSERT(h.nbuckets < 5000);
    hdr_free(&h);
}

static void check_distribution(uint64_t *vals, size_t n, const char *name)
{
    hdr_hist h;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&h, 10 * NS_PER_MIN), 0);
    for (size_t i = 0; i < n; i++)
        hdr_record(&h, vals[i]);
    qsort(vals, n, sizeof *vals, cmp_u64);
    static const double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        uint64_t got = hdr_percentile(&h, ps[k]), want = exact_pct(vals, n, ps[k]);
        if (!within(got, want, 0.01))
            printf("\n  %s p%g: got %llu want %llu\n", name, ps[k], (unsigned long long)got,
                   (unsigned long long)want);
        CU_ASSERT(within(got, want, 0.01));
    }
    CU_ASSERT_EQUAL(h.total, n);
    CU_ASSERT_EQUAL(h.min, vals[0]);
    CU_ASSERT_EQUAL(h.max, vals[n - 1]);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 100), vals[n - 1]);
    hdr_free(&h);
}

static void test_uniform(void)
{
    size_t n = 1000000;
    uint64_t *v = malloc(n * sizeof *v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (size_t i = 0; i < n; i++)
        v[i] = i + 1; /* 1 ns .. 1 ms, each once */
    check_distribution(v, n, "uniform");
    /* The closed form, independent of the sort: p50 of 1..n is n/2. */
    hdr_hist h;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&h, NS_PER_MIN), 0);
    for (size_t i = 0; i < n; i++)
        hdr_record(&h, i + 1);
    CU_ASSERT(within(hdr_percentile(&h, 50), 500000, 0.01));
    CU_ASSERT(within(hdr_percentile(&h, 99), 990000, 0.01));
    CU_ASSERT(fabs(hdr_mean(&h) - 500000.5) < 1e-3);
    hdr_free(&h);
    free(v);
}

static void test_exponential_and_lognormal(void)
{
    size_t n = 500000;
    uint64_t *v = malloc(n * sizeof *v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    /* Exponential with a 200 us mean: a queueing-like latency tail. */
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)(-log(unit()) * 200000.0);
    check_distribution(v, n, "exponential");
    /* Log-normal around 1 ms with a heavy tail reaching seconds. */
    for (size_t i = 0; i < n; i++) {
        double z = sqrt(-2.0 * log(unit())) * cos(2.0 * M_PI * unit());
        v[i] = (uint64_t)(1e6 * exp(1.5 * z));
    }
    check_distribution(v, n, "lognormal");
    free(v);
}

static void test_merge(void)
{
    hdr_hist a, b, all;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&a, NS_PER_MIN), 0);
    CU_ASSERT_EQUAL_FATAL(hdr_init(&b, NS_PER_MIN), 0);
    CU_ASSERT_EQUAL_FATAL(hdr_init(&all, NS_PER_MIN), 0);
    for (int i = 0; i < 200000; i++) {
        uint64_t x = rng() % 50000000;
        hdr_record(i % 3 ? &a : &b, x);
        hdr_record(&all, x);
    }
    CU_ASSERT_EQUAL(hdr_merge(&a, &b), 0);
    CU_ASSERT_EQUAL(a.total, all.total);
    CU_ASSERT_EQUAL(a.min, all.min);
    CU_ASSERT_EQUAL(a.max, all.max);
    CU_ASSERT(memcmp(a.counts, all.counts, a.nbuckets * sizeof *a.counts) == 0);
    CU_ASSERT_EQUAL(hdr_percentile(&a, 99.9), hdr_percentile(&all, 99.9));
    /* Merging an empty histogram changes nothing. */
    hdr_reset(&b);
    CU_ASSERT_EQUAL(hdr_merge(&a, &b), 0);
    CU_ASSERT_EQUAL(a.total, all.total);
    CU_ASSERT_EQUAL(a.min, all.min);
    /* Different ranges cannot be merged and leave dst untouched. */
    hdr_hist other;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&other, 1000), 0);
    hdr_record(&other, 5);
    CU_ASSERT_EQUAL(hdr_merge(&a, &other), -1);
    CU_ASSERT_EQUAL(a.total, all.total);
    hdr_free(&a);
    hdr_free(&b);
    hdr_free(&all);
    hdr_free(&other);
}

static void test_bounds(void)
{
    hdr_hist h;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&h, NS_PER_MIN), 0);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 50), 0); /* empty */
    CU_ASSERT_EQUAL(hdr_mean(&h), 0.0);
    /* Values below 128 are exact. */
    for (uint64_t v = 0; v < HDR_SUB_COUNT; v++)
        hdr_record(&h, v);
    CU_ASSERT_EQUAL(h.min, 0);
    CU_ASSERT_EQUAL(h.max, HDR_SUB_COUNT - 1);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 50), 63);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 100), HDR_SUB_COUNT - 1);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 0.0001), 0);
    /* A single value is reported exactly at every percentile, however coarse
     * its bucket: the result is bounded by the recorded min and max. */
    hdr_reset(&h);
    CU_ASSERT_EQUAL(h.total, 0);
    hdr_record(&h, 123456789);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 1), 123456789);
    CU_ASSERT_EQUAL(hdr_percentile(&h, 99.99), 123456789);
    /* The top of the range keeps its relative precision. */
    hdr_reset(&h);
    hdr_record(&h, NS_PER_MIN);
    hdr_record(&h, NS_PER_MIN - 1);
    CU_ASSERT(within(hdr_percentile(&h, 50), NS_PER_MIN - 1, 0.01));
    hdr_free(&h);
}

static void test_clamp(void)
{
    hdr_hist h;
    CU_ASSERT_EQUAL_FATAL(hdr_init(&h, 1000000), 0);
    uint32_t top = h.nbuckets - 1;
    CU_ASSERT_EQUAL(hdr_index(&h, 1000000), top);
    CU_ASSERT_EQUAL(hdr_index(&h, 5000000), top);
    CU_ASSERT_EQUAL(hdr_index(&h, UINT64_MAX), top);
    for (int i = 0; i < 99; i++)
        hdr_record(&h, 1000);
    hdr_record(&h, 5000000);    /* above the maximum */
    hdr_record(&h, UINT64_MAX); /* far above: must not overflow an index */
    CU_ASSERT_EQUAL(h.total, 101);
    CU_ASSERT_EQUAL(h.clamped, 2);
    CU_ASSERT_EQUAL(h.counts[top], 2);
    CU_ASSERT_EQUAL(h.max, UINT64_MAX); /* the exact extreme is kept */
    /* The clamped values are counted: they sit above p98 and in the top
     * bucket, which reports a value within 1% of the configured maximum. */
    CU_ASSERT(within(hdr_percentile(&h, 98), 1000, 0.01));
    CU_ASSERT(within(hdr_percentile(&h, 99.5), 1000000, 0.01));
    CU_ASSERT(within(hdr_percentile(&h, 100), 1000000, 0.01));
    hdr_free(&h);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("hdr", NULL, NULL);
    CU_add_test(s, "bucket layout", test_bucket_layout);
    CU_add_test(s, "uniform", test_uniform);
    CU_add_test(s, "exponential and lognormal", test_exponential_and_lognormal);
    CU_add_test(s, "merge", test_merge);
    CU_add_test(s, "bounds", test_bounds);
    CU_add_test(s, "clamp", test_clamp);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};

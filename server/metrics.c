/*
 * metrics.c — the shards' counters and latency histograms (metrics.h).
 *
 * Owns the histogram buckets and how a sample is counted. Must not: know
 * partitions, connections or the HTTP endpoint (metrics_http.c reads these
 * counters), so every core file may count without depending on them.
 */
#include "metrics.h"

const uint64_t srv_lat_bounds_us[SRV_LAT_NBUCKETS - 1] = {50,     100,     250,     500,     1000,    2500,
                                                          5000,   10000,   25000,   50000,   100000,  250000,
                                                          500000, 1000000, 2500000, 5000000, 10000000};

void srv_hist_record(srv_histogram *h, uint64_t us)
{
    int i = 0;
    while (i < SRV_LAT_NBUCKETS - 1 && us > srv_lat_bounds_us[i])
        i++;
    srv_m_add(&h->buckets[i], 1);
    srv_m_add(&h->count, 1);
    srv_m_add(&h->sum_us, us);
}

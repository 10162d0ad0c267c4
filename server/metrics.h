/*
 * metrics.h — counters, gauges and latency histograms, one set per shard,
 * exposed in Prometheus text format by metrics_http.c (metrics.port).
 *
 * Every field is written by exactly one thread, its shard, with relaxed
 * atomic stores (no read-modify-write, no lock, no shared cache line with
 * another shard); the HTTP thread reads with relaxed loads and sums the
 * shards. Must not: take a lock or allocate on a shard's hot path.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdint.h>
#include <time.h>

#include "kp_messages.h"

/* Bucket upper bounds in microseconds; the last bucket is +Inf. */
#define SRV_LAT_NBUCKETS 18
extern const uint64_t srv_lat_bounds_us[SRV_LAT_NBUCKETS - 1];

typedef struct srv_histogram {
    uint64_t buckets[SRV_LAT_NBUCKETS]; /* not cumulative: one per range */
    uint64_t count;
    uint64_t sum_us;
} srv_histogram;

typedef struct srv_shard_metrics {
    _Alignas(64) srv_histogram api[KP_API_KEY_MAX + 1]; /* request latency, arrival to answer */
    uint64_t api_errors[KP_API_KEY_MAX + 2]; /* refused at the protocol level; last slot: unknown keys */
    uint64_t bytes_in, bytes_out;
    uint64_t connections_opened, connections_closed;
    uint64_t busy_ns;              /* time spent in this shard's callbacks */
    uint64_t quota_throttle_ms[5]; /* throttle time given, per quota key (quota.h SRV_QK_*) */
    uint64_t conns_refused_ip;     /* closed over max.connections.per.ip (accept shard) */
    srv_histogram sync;            /* storage append -> durable (acks=all) */
    char *partitions;              /* partition gauges as text, handed to the reader (see metrics.c) */
    struct srv_m_hwms *hwms;       /* its partitions' high watermarks, handed over the same way */
    struct srv_m_share *share;     /* the share groups it coordinates (metrics_http.c) */
} srv_shard_metrics;

static inline void srv_m_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void srv_hist_record(srv_histogram *h, uint64_t us);

static inline uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Brackets a top-level event callback to account the shard's busy time. */
#define SRV_BUSY_BEGIN()    uint64_t busy_t0_ = srv_now_ns()
#define SRV_BUSY_END(shard) srv_m_add(&(shard)->metrics.busy_ns, srv_now_ns() - busy_t0_)

#endif

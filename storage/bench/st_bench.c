/*
 * st_bench.c — storage engine benchmark (st-bench).
 *
 * Owns: two measurements of one partition log on a given directory:
 *   throughput  sequential appends of fixed-size batches, an fdatasync
 *               requested for every --sync-bytes appended (default 1 MiB;
 *               group commit merges requests that meet a sync in flight),
 *               or with --strict-sync the acks=all policy (sync_acks=1) and
 *               every MiB durable before the next is appended, in MB/s;
 *   latency     --appenders concurrent appenders, each with one append of
 *               --batch bytes in flight, acks after fdatasync (the default
 *               policy), reporting append->durable p50/p99/p99.9, appends/s
 *               and fdatasyncs/s.
 * Must not: be run as a timed test (numbers are recorded in README.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "st_log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t make_batch(uint8_t **out, size_t size)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    size_t vlen = size > 100 ? size - 100 : 1;
    uint8_t *v = malloc(vlen);
    for (size_t i = 0; i < vlen; i++)
        v[i] = (uint8_t)(i * 131 + 7);
    kp_bytes key = {(const uint8_t *)"k", 1};
    kp_bytes val = {v, (int32_t)vlen};
    kp_batch_builder_add(&b, 1000, key, val, NULL, 0);
    kp_writer w;
    kp_writer_init(&w, size + 128);
    kp_batch_builder_finish(&b, &w);
    kp_batch_builder_free(&b);
    free(v);
    *out = w.buf;
    return w.len;
}

static void count_cb(void *arg, int rc, int64_t off)
{
    (void)off;
    long *n = arg;
    if (rc != 0) {
        fprintf(stderr, "append failed: %s\n", st_strerror(rc));
        exit(1);
    }
    (*n)++;
}

static size_t g_segment_bytes = 1u << 30;
static int g_strict; /* wait for each per-MiB sync before appending more */

static int run_throughput(st_io *io, const char *dir, size_t batch, size_t total, size_t sync_bytes)
{
    st_log_config c;
    st_log_config_default(&c);
    c.sync_acks = g_strict;
    c.max_batch_bytes = (uint32_t)batch + 4096;
    c.max_unflushed_bytes = 64u << 20;
    c.chunk_bytes = 1u << 20;
    c.segment_bytes = g_segment_bytes;
    st_log *log;
    int rc = st_log_open(io, dir, &c, &log);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", st_strerror(rc));
        return 1;
    }
    uint8_t *b;
    size_t len = make_batch(&b, batch);
    long done = 0, flushed = 0, flushes = 0, appended = 0;
    size_t since_sync = 0, bytes = 0;
    size_t per_sync = (sync_bytes + len / 2) / len;
    if (per_sync == 0)
        per_sync = 1;
    double t0 = now_s();
    while (bytes < total) {
        int64_t off;
        rc = st_log_append(log, b, len, count_cb, &done, &off);
        if (rc == ST_E_BUSY) {
            st_io_wait(io, 10);
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "append: %s\n", st_strerror(rc));
            return 1;
        }
        appended++;
        bytes += len;
        /* Rounded to whole batches: a "1 MiB" batch is a few bytes short. */
        if (++since_sync >= per_sync) {
            since_sync = 0;
            if (g_strict) {
                /* acks=all style: the appends of this MiB are durable
                 * (linked write+fdatasync cycles) before the next starts. */
                while (done < appended)
                    st_io_wait(io, 10);
            } else {
                st_log_flush(log, count_cb, &flushed);
                flushes++;
            }
        }
        st_io_poll(io);
    }
    st_log_flush(log, count_cb, &flushed);
    flushes++;
    while (done < appended || flushed < flushes)
        st_io_wait(io, 10);
    double el = now_s() - t0;
    st_log_stats s;
    st_log_get_stats(log, &s);
    printf("mode=throughput%s io=%s direct=%d batch=%zu bytes=%zu seconds=%.3f MBps=%.1f syncs=%llu "
           "writes=%llu\n",
           g_strict ? "-strict" : "", st_io_backend_name(io), s.direct_io, len, bytes, el, bytes / el / 1e6,
           (unsigned long long)s.syncs, (unsigned long long)s.writes);
    free(b);
    st_log_close(log);
    return 0;
}

typedef struct appender {
    st_log *log;
    double start;
    double *lat;
    long *nlat;
    long cap;
    uint8_t *b;
    size_t len;
    int stop;
    int busy;
} appender;

static void lat_cb(void *arg, int rc, int64_t off);

static void submit(appender *a)
{
    int64_t off;
    a->start = now_s();
    int rc = st_log_append(a->log, a->b, a->len, lat_cb, a, &off);
    a->busy = rc == 0;
    if (rc != 0 && rc != ST_E_BUSY) {
        fprintf(stderr, "append: %s\n", st_strerror(rc));
        exit(1);
    }
}

static void lat_cb(void *arg, int rc, int64_t off)
{
    (void)off;
    appender *a = arg;
    if (rc != 0) {
        fprintf(stderr, "append failed: %s\n", st_strerror(rc));
        exit(1);
    }
    a->busy = 0;
    if (*a->nlat < a->cap)
        a->lat[(*a->nlat)++] = now_s() - a->start;
    if (!a->stop)
        submit(a);
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int run_latency(st_io *io, const char *dir, size_t batch, int n, double seconds)
{
    st_log_config c;
    st_log_config_default(&c);
    st_log *log;
    int rc = st_log_open(io, dir, &c, &log);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", st_strerror(rc));
        return 1;
    }
    long cap = 20000000, nlat = 0;
    double *lat = malloc((size_t)cap * sizeof(double));
    appender *as = calloc((size_t)n, sizeof(*as));
    uint8_t *b;
    size_t len = make_batch(&b, batch);
    st_log_stats s0;
    st_log_get_stats(log, &s0);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        as[i] = (appender){log, 0, lat, &nlat, cap, b, len, 0, 0};
        submit(&as[i]);
    }
    while (now_s() - t0 < seconds) {
        st_io_wait(io, 10);
        for (int i = 0; i < n; i++)
            if (!as[i].busy)
                submit(&as[i]);
    }
    for (int i = 0; i < n; i++)
        as[i].stop = 1;
    int busy;
    do {
        st_io_wait(io, 10);
        busy = 0;
        for (int i = 0; i < n; i++)
            busy += as[i].busy;
    } while (busy);
    double el = now_s() - t0;
    st_log_stats s;
    st_log_get_stats(log, &s);
    qsort(lat, (size_t)nlat, sizeof(double), cmp_d);
    double p50 = lat[nlat / 2] * 1e3, p99 = lat[(long)(nlat * 0.99)] * 1e3,
           p999 = lat[(long)(nlat * 0.999)] * 1e3;
    printf("mode=latency io=%s direct=%d appenders=%d batch=%zu appends=%ld seconds=%.2f appends_per_s=%.0f "
           "fdatasyncs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
           st_io_backend_name(io), s.direct_io, n, len, nlat, el, nlat / el, (s.syncs - s0.syncs) / el, p50,
           p99, p999, lat[nlat - 1] * 1e3);
    free(lat);
    free(as);
    free(b);
    st_log_close(log);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: st-bench --dir DIR [--mode throughput|latency] [--io uring|thread]\n"
            "                [--batch BYTES] [--total BYTES] [--sync-bytes BYTES]\n"
            "                [--appenders N] [--seconds S] [--segment-bytes BYTES] [--strict-sync]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *mode = "throughput", *iom = "uring";
    size_t batch = 16384, total = 1u << 30, sync_bytes = 1u << 20;
    int appenders = 64;
    double seconds = 5;
    static struct option opts[] = {{"dir", 1, 0, 'd'},
                                   {"mode", 1, 0, 'm'},
                                   {"io", 1, 0, 'i'},
                                   {"batch", 1, 0, 'b'},
                                   {"total", 1, 0, 't'},
                                   {"sync-bytes", 1, 0, 's'},
                                   {"appenders", 1, 0, 'a'},
                                   {"seconds", 1, 0, 'S'},
                                   {"segment-bytes", 1, 0, 'g'},
                                   {"strict-sync", 0, 0, 'x'},
                                   {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'i':
            iom = optarg;
            break;
        case 'b':
            batch = strtoull(optarg, NULL, 0);
            break;
        case 't':
            total = strtoull(optarg, NULL, 0);
            break;
        case 's':
            sync_bytes = strtoull(optarg, NULL, 0);
            break;
        case 'a':
            appenders = atoi(optarg);
            break;
        case 'S':
            seconds = atof(optarg);
            break;
        case 'x':
            g_strict = 1;
            break;
        case 'g':
            g_segment_bytes = strtoull(optarg, NULL, 0);
            break;
        default:
            usage();
        }
    }
    if (!dir || appenders < 1 || batch < 128)
        usage();
    st_io_config ic;
    st_io_config_default(&ic);
    ic.force_thread = strcmp(iom, "thread") == 0;
    st_io *io;
    int rc = st_io_create(&ic, &io);
    if (rc != 0) {
        fprintf(stderr, "st_io_create: %s\n", strerror(-rc));
        return 1;
    }
    if (strcmp(mode, "throughput") == 0)
        rc = run_throughput(io, dir, batch, total, sync_bytes);
    else if (strcmp(mode, "latency") == 0)
        rc = run_latency(io, dir, batch, appenders, seconds);
    else
        usage();
    st_io_destroy(io);
    return rc;
}

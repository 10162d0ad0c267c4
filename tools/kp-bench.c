/*
 * kp-bench.c — micro-benchmarks of the kafka-proto hot path, run and recorded
 * by hand (never asserted in CI).
 *
 * Owns: CRC-32C throughput (hardware and portable paths) against memcpy on
 * the same buffer, and the decode time of a Produce request carrying one
 * 1 MiB batch (generated codec + kp_batch_validate).
 *
 * Must not: report a figure it did not measure, or let the compiler drop the
 * work it times (every result feeds a volatile sink or an opaque barrier).
 *
 * Usage: kp-bench [-t seconds] [buffer-size[k|m] ...]   (default: -t 1 1m)
 */
#include "batch.h"
#include "kp_messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile uint32_t sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tells the compiler dst was read, so a memcpy into it is not dead. */
static inline void clobber(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

typedef enum { OP_CRC_HW, OP_CRC_SW, OP_MEMCPY } op_kind;

static void run_op(op_kind op, uint8_t *dst, const uint8_t *src, size_t n)
{
    switch (op) {
    case OP_CRC_HW:
        sink ^= kp_crc32c(0, src, n);
        break;
    case OP_CRC_SW:
        sink ^= kp_crc32c_sw(0, src, n);
        break;
    case OP_MEMCPY:
        memcpy(dst, src, n);
        clobber(dst);
        break;
    }
}

/* Repeats op over the buffer for about `seconds`; returns MB/s (10^6 B/s). */
static double measure(op_kind op, uint8_t *dst, const uint8_t *src, size_t n, double seconds)
{
    for (int i = 0; i < 3; i++) /* warm caches, TLB and the CPU clock */
        run_op(op, dst, src, n);
    uint64_t iters = 0;
    double t0 = now_s(), t;
    do {
        run_op(op, dst, src, n);
        iters++;
        t = now_s();
    } while (t - t0 < seconds);
    return (double)iters * (double)n / (t - t0) / 1e6;
}

static void bench_crc(size_t n, double seconds)
{
    uint8_t *src = aligned_alloc(64, (n + 63) & ~(size_t)63);
    uint8_t *dst = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!src || !dst) {
        fprintf(stderr, "kp-bench: cannot allocate %zu bytes\n", n);
        exit(1);
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (uint8_t)(x >> 16);
    }
    memset(dst, 0, n);

    printf("buffer %zu bytes, %.1f s per measurement\n", n, seconds);
    double mc = measure(OP_MEMCPY, dst, src, n, seconds);
    double sw = measure(OP_CRC_SW, dst, src, n, seconds);
    printf("  memcpy              %10.0f MB/s\n", mc);
    if (kp_crc32c_hw_available()) {
        double hw = measure(OP_CRC_HW, dst, src, n, seconds);
        printf("  crc32c hw (sse4.2)  %10.0f MB/s   crc/memcpy %.2f\n", hw, hw / mc);
    } else {
        printf("  crc32c hw (sse4.2)  not available on this CPU\n");
    }
    printf("  crc32c sw (slice-8) %10.0f MB/s   crc/memcpy %.2f\n", sw, sw / mc);
    free(src);
    free(dst);
}

/*
 * Decode time of a Produce request (v9, the first flexible version) with one
 * 1 MiB uncompressed batch: what a broker pays per request before appending
 * the batch as-is: the generated decoder (zero copy, so nearly free) plus
 * kp_batch_validate (CRC over the batch and a walk of every record).
 */
static int bench_produce_decode(double seconds)
{
    enum { RECORDS = 1024, KEY = 16, VALUE = 1000, VERSION = 9 };
    static uint8_t value[VALUE];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)(i * 7);

    kp_writer batch;
    kp_writer_init(&batch, 0);
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    kp_batch_builder_set_producer(&b, 1000, 0, 0, 0);
    int rc = KP_OK;
    for (int i = 0; i < RECORDS && !rc; i++) {
        char key[KEY + 1];
        snprintf(key, sizeof(key), "key-%011d", i);
        rc = kp_batch_builder_add(&b, 1700000000000LL + i, (kp_bytes){(const uint8_t *)key, KEY},
                                  (kp_bytes){value, VALUE}, NULL, 0);
    }
    if (!rc)
        rc = kp_batch_builder_finish(&b, &batch);
    kp_batch_builder_free(&b);
    if (rc) {
        fprintf(stderr, "kp-bench: building the batch failed: %s\n", kp_strerror(rc));
        return 1;
    }

    kp_produce_request req;
    kp_produce_request_init(&req);
    kp_produce_request_topic_produce_data topic;
    kp_produce_request_topic_produce_data_init(&topic);
    kp_produce_request_partition_produce_data part;
    kp_produce_request_partition_produce_data_init(&part);
    part.index = 0;
    part.records = (kp_bytes){batch.buf, (int32_t)batch.len};
    topic.name = kp_str_c("bench");
    topic.partition_data = &part;
    topic.partition_data_count = 1;
    req.acks = -1;
    req.timeout_ms = 30000;
    req.topic_data = &topic;
    req.topic_data_count = 1;

    kp_writer body;
    kp_writer_init(&body, 0);
    rc = kp_produce_request_encode(&body, VERSION, &req);
    if (rc) {
        fprintf(stderr, "kp-bench: encoding the request failed: %s\n", kp_strerror(rc));
        return 1;
    }

    kp_arena arena;
    kp_arena_init(&arena, 0);
    double us_per[2] = {0, 0};
    for (int validate = 0; validate <= 1; validate++) {
        uint64_t iters = 0;
        double t0 = now_s(), t;
        do {
            kp_reader r;
            kp_reader_init(&r, body.buf, body.len);
            kp_produce_request m;
            rc = kp_produce_request_decode(&r, &arena, VERSION, &m);
            if (!rc && validate) {
                for (int32_t ti = 0; ti < m.topic_data_count && !rc; ti++)
                    for (int32_t pi = 0; pi < m.topic_data[ti].partition_data_count && !rc; pi++) {
                        kp_bytes rec = m.topic_data[ti].partition_data[pi].records;
                        kp_batch_iter it;
                        kp_batch bt;
                        kp_batch_iter_init(&it, rec.p, (size_t)rec.len, 1);
                        while ((rc = kp_batch_iter_next(&it, &bt)) == 1)
                            sink ^= (uint32_t)bt.h.record_count;
                        if (!rc && it.partial)
                            rc = KP_E_SHORT;
                    }
            }
            kp_arena_reset(&arena);
            if (rc) {
                fprintf(stderr, "kp-bench: decoding failed: %s\n", kp_strerror(rc));
                return 1;
            }
            iters++;
            t = now_s();
        } while (t - t0 < seconds);
        us_per[validate] = (t - t0) / (double)iters * 1e6;
    }
    printf("Produce v%d, one batch of %d records, %zu bytes (request body %zu bytes)\n", VERSION, RECORDS,
           batch.len, body.len);
    printf("  decode only            %10.2f us/request\n", us_per[0]);
    printf("  decode + validate      %10.2f us/request   (%.0f MB/s of batch)\n", us_per[1],
           (double)batch.len / us_per[1]);
    kp_writer_free(&body);
    kp_writer_free(&batch);
    return 0;
}

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (*end || v == 0) {
        fprintf(stderr, "kp-bench: bad size '%s'\n", s);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    size_t sizes[16];
    int nsizes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
            if (seconds <= 0) {
                fprintf(stderr, "kp-bench: bad duration\n");
                return 2;
            }
        } else if (nsizes < 16 && argv[i][0] != '-') {
            sizes[nsizes++] = parse_size(argv[i]);
        } else {
            fprintf(stderr, "usage: kp-bench [-t seconds] [buffer-size[k|m] ...]\n");
            return 2;
        }
    }
    if (nsizes == 0)
        sizes[nsizes++] = 1u << 20;
    for (int i = 0; i < nsizes; i++)
        bench_crc(sizes[i], seconds);
    return bench_produce_decode(seconds);
}

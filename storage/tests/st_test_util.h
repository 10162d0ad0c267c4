/*
 * st_test_util.h — helpers shared by the storage tests: temp directories on
 * the real disk, batch building, and synchronous wrappers that drive an
 * st_io until a callback fired.
 */
#ifndef ST_TEST_UTIL_H
#define ST_TEST_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "st_log.h"

static inline char *tu_mkdtemp(void)
{
    const char *base = getenv("ST_TEST_DIR");
    if (!base || !*base)
        base = "/var/tmp";
    mkdir(base, 0755);
    char *p = malloc(strlen(base) + 32);
    sprintf(p, "%s/st-XXXXXX", base);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static inline int tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tu_rmrf(const char *dir)
{
    nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A deterministic batch: nrec records, key "k<keybase+i>", values derived from
 * seed, timestamps ts, ts+1, ... Returns the length; *out is malloc'ed. */
static inline size_t tu_batch(uint8_t **out, int nrec, int64_t ts, uint32_t seed, size_t value_len,
                              int64_t pid, int16_t epoch, int32_t seq, int keybase)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    if (pid >= 0)
        kp_batch_builder_set_producer(&b, pid, epoch, seq, 0);
    uint8_t *val = malloc(value_len + 1);
    for (int i = 0; i < nrec; i++) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "k%d", keybase + i);
        uint32_t x = seed * 2654435761u + (uint32_t)i;
        for (size_t j = 0; j < value_len; j++) {
            x = x * 1103515245u + 12345u;
            val[j] = (uint8_t)(x >> 16);
        }
        kp_bytes k = {(const uint8_t *)key, kl};
        kp_bytes v = {val, (int32_t)value_len};
        if (kp_batch_builder_add(&b, ts + i, k, v, NULL, 0) != 0)
            abort();
    }
    kp_writer w;
    kp_writer_init(&w, 256);
    if (kp_batch_builder_finish(&b, &w) != 0)
        abort();
    kp_batch_builder_free(&b);
    free(val);
    *out = w.buf;
    return w.len;
}

/* Tombstone / keyed single-record batch for compaction tests. */
static inline size_t tu_kv(uint8_t **out, const char *key, const char *value, int64_t ts)
{
    kp_batch_builder b;
    kp_batch_builder_init(&b, 0, KP_CODEC_NONE);
    kp_bytes k = {(const uint8_t *)key, (int32_t)strlen(key)};
    kp_bytes v = value ? (kp_bytes){(const uint8_t *)value, (int32_t)strlen(value)} : KP_BYTES_NULL;
    if (kp_batch_builder_add(&b, ts, k, v, NULL, 0) != 0)
        abort();
    kp_writer w;
    kp_writer_init(&w, 128);
    if (kp_batch_builder_finish(&b, &w) != 0)
        abort();
    kp_batch_builder_free(&b);
    *out = w.buf;
    return w.len;
}

typedef struct tu_done {
    int fired;
    int rc;
    int64_t offset;
} tu_done;

static inline void tu_append_cb(void *arg, int rc, int64_t off)
{
    tu_done *d = arg;
    d->fired++;
    d->rc = rc;
    d->offset = off;
}

static inline void tu_wait(st_io *io, const int *flag)
{
    for (int i = 0; i < 20000 && !*flag; i++)
        st_io_wait(io, 10);
    if (!*flag) {
        fprintf(stderr, "timeout waiting for a storage callback\n");
        abort();
    }
}

/* Appends and waits for completion; retries on backpressure.
 * Returns the callback rc (or the synchronous error). */
static inline int tu_append(st_io *io, st_log *log, const uint8_t *b, size_t len, int64_t *off)
{
    tu_done d = {0, 0, -1};
    int64_t base = -1;
    int rc;
    while ((rc = st_log_append(log, b, len, tu_append_cb, &d, &base)) == ST_E_BUSY)
        st_io_wait(io, 10);
    if (rc < 0)
        return rc;
    tu_wait(io, &d.fired);
    if (off)
        *off = d.offset;
    if (d.rc == 0 && d.offset != base)
        return -9999;
    return d.rc;
}

typedef struct tu_rd {
    int fired;
    int rc;
    uint8_t *data;
    size_t len;
    int64_t hw;
} tu_rd;

static inline void tu_read_cb(void *arg, const st_read_result *res)
{
    tu_rd *r = arg;
    r->fired = 1;
    r->rc = res->rc;
    r->len = res->len;
    r->hw = res->high_watermark;
    r->data = malloc(res->len + 1);
    if (res->len)
        memcpy(r->data, res->data, res->len);
}

/* Synchronous read; returns rc, fills *r (caller frees r->data). *sync_out
 * tells whether it was served from memory. */
static inline int tu_read(st_io *io, st_log *log, int64_t off, size_t max, tu_rd *r, int *sync_out)
{
    memset(r, 0, sizeof(*r));
    int rc = st_log_read(log, off, max, tu_read_cb, r);
    if (rc < 0)
        return rc;
    if (sync_out)
        *sync_out = rc == 0;
    tu_wait(io, &r->fired);
    return r->rc;
}

typedef struct tu_off {
    int fired;
    int rc;
    int64_t off;
    int64_t ts;
} tu_off;

static inline void tu_off_cb(void *arg, int rc, int64_t off, int64_t ts)
{
    tu_off *o = arg;
    o->fired = 1;
    o->rc = rc;
    o->off = off;
    o->ts = ts;
}

static inline int64_t tu_offset_for_time(st_io *io, st_log *log, int64_t ts)
{
    tu_off o = {0, 0, -2, 0};
    int rc = st_log_offset_for_time(log, ts, tu_off_cb, &o);
    if (rc < 0)
        return rc;
    tu_wait(io, &o.fired);
    return o.rc < 0 ? o.rc : o.off;
}

static inline int64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline st_io *tu_io(int force_thread)
{
    st_io_config c;
    st_io_config_default(&c);
    c.force_thread = force_thread;
    st_io *io = NULL;
    if (st_io_create(&c, &io) != 0)
        abort();
    return io;
}

#endif

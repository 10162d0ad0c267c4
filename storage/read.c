/*
 * read.c — reads by offset and by timestamp.
 *
 * Owns: locating an offset (segment, sparse index, forward walk over batch
 * headers), serving it from the tail cache when the bytes are still in
 * memory, otherwise through an aligned asynchronous read, and the
 * ListOffsets lookups built on top.
 *
 * Must not: return a partial batch or a batch at or past the high watermark
 * (the last stable offset for read_committed reads),
 * trust a length read from disk, or free a segment under a read in flight
 * (reads hold a segment reference).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MIN_DISK_READ (64u << 10)
#define PEEK          27 /* baseOffset, batchLength, epoch, magic, crc, attributes, lastOffsetDelta */

typedef struct read_req {
    st_log *log;
    st_read_cb cb;
    void *arg;
    int64_t offset;
    size_t max_bytes;
    st_segment *seg; /* referenced */
    uint64_t pos;
    st_op op;
    void *buf; /* posix_memalign, ST_BLOCK-aligned; may be handed to the callback (keep) */
    uint64_t buf_off;
    size_t buf_len;
    uint64_t limit; /* file bytes usable by this read */
    int committed;  /* read_committed: stop at the last stable offset */
    int64_t upto;   /* and never at or past this offset (st_log_read_upto) */
} read_req;

static void deliver_kept(read_req *r, int rc, const uint8_t *data, size_t len, void **keep, size_t keep_size)
{
    st_read_result res = {
        rc, data, len, r->log->hw, r->log->log_start, st_log_last_stable_offset(r->log), keep, keep_size};
    r->cb(r->arg, &res);
}

static void deliver(read_req *r, int rc, const uint8_t *data, size_t len)
{
    st_read_result res = {rc,   data, len, r->log->hw, r->log->log_start, st_log_last_stable_offset(r->log),
                          NULL, 0};
    r->cb(r->arg, &res);
}

/* No batch starting at or past this offset is returned. Both bounds are
 * batch boundaries: the HW is the end of an append, the LSO the base of a
 * transaction's first batch. */
static int64_t read_end(const read_req *r)
{
    int64_t end = r->committed ? st_log_last_stable_offset(r->log) : r->log->hw;
    return end < r->upto ? end : r->upto;
}

static int sane_len(uint32_t blen)
{
    return blen >= KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD && blen + 12ull <= ST_MAX_DISK_BATCH;
}

static size_t read_cap(const read_req *r)
{
    size_t cap = r->max_bytes;
    return cap > r->log->cfg.max_read_bytes ? r->log->cfg.max_read_bytes : cap;
}

/* Moves r to the segment after r->seg. 0 = moved, 1 = there is none. */
static int next_segment(read_req *r)
{
    st_log *log = r->log;
    /* Works whether or not r->seg is still listed (retention may have
     * removed it meanwhile): the next one is the first with a larger base. */
    size_t j = (size_t)(st_log_segment_index_of(log, r->seg->base) + 1);
    if (j >= log->nsegs)
        return 1;
    st_segment *n = log->segs[j];
    n->refs++;
    st_segment_unref(r->seg);
    r->seg = n;
    r->pos = r->offset > n->base ? st_index_lookup(&n->ix, (uint32_t)(r->offset - n->base)) : 0;
    return 0;
}

/* Serves r from the chunks of w; always completes. */
static void read_memory(read_req *r, st_wbuf *w)
{
    st_log *log = r->log;
    uint64_t limit = r->seg->size, pos = r->pos;
    uint8_t h[PEEK];
    while (pos + PEEK <= limit) {
        st_chunks_read(&w->ch, pos, h, PEEK);
        int64_t last = (int64_t)kp_be64(h) + (int32_t)kp_be32(h + 23);
        if (last >= r->offset)
            break;
        pos += 12ull + kp_be32(h + 8);
    }
    uint64_t p = pos;
    size_t total = 0, cap = read_cap(r);
    int64_t end_off = read_end(r);
    while (p + PEEK <= limit) {
        st_chunks_read(&w->ch, p, h, PEEK);
        size_t size = 12u + kp_be32(h + 8);
        if ((int64_t)kp_be64(h) >= end_off || (total > 0 && total + size > cap))
            break;
        total += size;
        p += size;
    }
    log->stats.cache_reads++;
    if (total == 0) {
        deliver(r, 0, NULL, 0);
        return;
    }
    uint8_t *out = malloc(total);
    if (!out) {
        deliver(r, -ENOMEM, NULL, 0);
        return;
    }
    st_chunks_read(&w->ch, pos, out, total);
    void *keep = out;
    deliver_kept(r, 0, out, total, &keep, total);
    free(keep);
}

static void disk_done(st_op *op);
static void finish(read_req *r);
static int read_step(read_req *r);

/* The segment's file was closed by the open-file budget and is open again
 * (or could not be opened): continue where read_step stopped. */
static void reopened(void *arg, int rc)
{
    read_req *r = arg;
    r->log->reads_inflight--;
    if (rc == 0)
        rc = read_step(r);
    if (rc == 1)
        return;
    if (rc < 0)
        deliver(r, rc, NULL, 0);
    finish(r);
}

static int submit_disk(read_req *r, size_t want)
{
    st_wbuf *w = st_log_wbuf_of(r->log, r->seg);
    r->limit = w ? w->written : r->seg->size;
    uint64_t off = ST_ALIGN_DOWN(r->pos);
    uint64_t end = r->pos + want;
    if (end > r->limit)
        end = r->limit;
    end = ST_ALIGN_UP(end);
    if (end <= off)
        end = off + ST_BLOCK;
    size_t len = (size_t)(end - off);
    free(r->buf);
    r->buf = NULL;
    void *buf = NULL;
    if (posix_memalign(&buf, ST_BLOCK, len) != 0)
        return -ENOMEM;
    r->buf = buf;
    r->buf_len = len;
    r->buf_off = off;
    memset(&r->op, 0, sizeof(r->op));
    r->op.kind = ST_OP_READ;
    r->op.fd = r->seg->fd;
    r->op.buf = buf;
    r->op.len = len;
    r->op.off = (off_t)off;
    r->op.cb = disk_done;
    r->op.arg = r;
    r->log->reads_inflight++;
    r->log->stats.disk_reads++;
    st_io_submit(r->log->io, &r->op);
    return 1;
}

static void finish(read_req *r)
{
    st_segment_unref(r->seg);
    free(r->buf);
    free(r);
}

/* Chooses memory or disk for r's current position. 0 = completed (the
 * callback ran), 1 = a disk read is pending, <0 = error (no callback). */
static int read_step(read_req *r)
{
    for (;;) {
        st_wbuf *w = st_log_wbuf_of(r->log, r->seg);
        if (r->pos >= r->seg->size) {
            if (next_segment(r) != 0) {
                deliver(r, 0, NULL, 0);
                return 0;
            }
            continue;
        }
        if (w && r->pos >= st_chunks_start(&w->ch)) {
            read_memory(r, w);
            return 0;
        }
        int rc = st_log_segment_need_fd(r->log, r->seg, reopened, r);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            r->log->reads_inflight++; /* st_log_close waits for it */
            return 1;
        }
        size_t want = read_cap(r) + PEEK;
        if (want < MIN_DISK_READ)
            want = MIN_DISK_READ;
        return submit_disk(r, want);
    }
}

static void disk_done(st_op *op)
{
    read_req *r = op->arg;
    st_log *log = r->log;
    log->reads_inflight--;
    if (op->res < 0) {
        deliver(r, (int)op->res, NULL, 0);
        finish(r);
        return;
    }
    uint64_t end = r->buf_off + (uint64_t)op->res;
    if (end > r->limit)
        end = r->limit;
    uint64_t pos = r->pos;
    int rc = 0;
    for (;;) {
        if (pos + PEEK > end) {
            r->pos = pos;
            if (pos >= r->limit) {
                /* The rest of this segment is in memory or in the next one. */
                if (pos < r->seg->size || next_segment(r) == 0)
                    rc = read_step(r);
                else
                    deliver(r, 0, NULL, 0);
            } else {
                rc = submit_disk(r, MIN_DISK_READ);
            }
            goto out;
        }
        const uint8_t *h = (const uint8_t *)r->buf + (pos - r->buf_off);
        uint32_t blen = kp_be32(h + 8);
        if (!sane_len(blen)) {
            deliver(r, ST_E_CORRUPT, NULL, 0);
            goto out;
        }
        int64_t last = (int64_t)kp_be64(h) + (int32_t)kp_be32(h + 23);
        if (last >= r->offset)
            break;
        pos += 12ull + blen;
    }
    r->pos = pos;
    {
        int64_t end_off = read_end(r);
        uint64_t p = pos;
        size_t total = 0, cap = read_cap(r);
        while (p + PEEK <= end) {
            const uint8_t *h = (const uint8_t *)r->buf + (p - r->buf_off);
            uint32_t blen = kp_be32(h + 8);
            size_t size = 12u + blen;
            if (!sane_len(blen) || (int64_t)kp_be64(h) >= end_off || p + size > end ||
                (total > 0 && total + size > cap))
                break;
            total += size;
            p += size;
        }
        if (total == 0) {
            const uint8_t *h = (const uint8_t *)r->buf + (pos - r->buf_off);
            uint32_t blen = kp_be32(h + 8);
            if ((int64_t)kp_be64(h) >= end_off || !sane_len(blen) || pos + 12 + blen > r->limit) {
                /* Past the high watermark (or LSO), or not a whole batch on disk. */
                if ((int64_t)kp_be64(h) < end_off && sane_len(blen) && pos + 12 + blen > r->limit &&
                    pos + 12 + blen <= r->seg->size) {
                    rc = read_step(r);
                    goto out;
                }
                deliver(r, (int64_t)kp_be64(h) >= end_off ? 0 : ST_E_CORRUPT, NULL, 0);
                goto out;
            }
            /* The first batch is bigger than what was read: read all of it. */
            rc = submit_disk(r, 12u + blen);
            goto out;
        }
        deliver_kept(r, 0, (const uint8_t *)r->buf + (pos - r->buf_off), total, &r->buf, r->buf_len);
    }
out:
    if (rc == 1)
        return;
    if (rc < 0)
        deliver(r, rc, NULL, 0);
    finish(r);
}

static int read_from(st_log *log, int64_t offset, size_t max_bytes, int committed, int64_t upto,
                     st_read_cb cb, void *arg)
{
    if (offset < log->log_start || offset > log->hw)
        return ST_E_OUT_OF_RANGE;
    int64_t lso = st_log_last_stable_offset(log);
    if (offset == log->hw || (committed && offset >= lso) || offset >= upto) {
        st_read_result res = {0, NULL, 0, log->hw, log->log_start, lso, NULL, 0};
        cb(arg, &res);
        return 0;
    }
    int i = st_log_segment_index_of(log, offset);
    if (i < 0)
        i = 0;
    read_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->log = log;
    r->cb = cb;
    r->arg = arg;
    r->offset = offset;
    r->committed = committed;
    r->upto = upto;
    r->max_bytes = max_bytes ? max_bytes : 1;
    r->seg = log->segs[i];
    r->seg->refs++;
    r->pos = offset > r->seg->base ? st_index_lookup(&r->seg->ix, (uint32_t)(offset - r->seg->base)) : 0;
    int rc = read_step(r);
    if (rc != 1)
        finish(r);
    return rc;
}

int st_log_read(st_log *log, int64_t offset, size_t max_bytes, st_read_cb cb, void *arg)
{
    return read_from(log, offset, max_bytes, 0, INT64_MAX, cb, arg);
}

int st_log_read_committed(st_log *log, int64_t offset, size_t max_bytes, st_read_cb cb, void *arg)
{
    return read_from(log, offset, max_bytes, 1, INT64_MAX, cb, arg);
}

int st_log_read_upto(st_log *log, int64_t offset, size_t max_bytes, int committed, int64_t upto,
                     st_read_cb cb, void *arg)
{
    return read_from(log, offset, max_bytes, committed, upto, cb, arg);
}

/* ---- by timestamp -------------------------------------------------------- */

typedef struct time_req {
    st_log *log;
    int64_t ts;
    st_offset_cb cb;
    void *arg;
    int64_t cur;
    int done;
    int in_driver;
    int64_t found, found_ts;
    int rc;
} time_req;

static int time_drive(time_req *t);

static void time_read_cb(void *arg, const st_read_result *res)
{
    time_req *t = arg;
    if (res->rc != 0 || res->len == 0) {
        t->rc = res->rc;
        t->done = 1;
    } else {
        kp_batch_iter it;
        kp_batch b;
        kp_batch_iter_init(&it, res->data, res->len, 0);
        int64_t next = t->cur;
        while (!t->done && kp_batch_iter_next(&it, &b) == 1) {
            int64_t last = b.h.base_offset + b.h.last_offset_delta;
            next = last + 1;
            if (b.h.max_timestamp < t->ts || last < t->cur)
                continue;
            t->done = 1;
            t->found = b.h.base_offset;
            t->found_ts = b.h.max_timestamp;
            if ((b.h.attributes & KP_ATTR_CODEC_MASK) == KP_CODEC_NONE &&
                !(b.h.attributes & KP_ATTR_LOG_APPEND_TIME)) {
                /* Uncompressed: the exact first record at or after ts. */
                kp_record_iter ri;
                kp_record rec;
                kp_record_iter_init(&ri, &b.h, b.records, b.records_size);
                while (kp_record_iter_next(&ri, &rec) == 1) {
                    if (rec.timestamp >= t->ts && rec.offset >= t->cur) {
                        t->found = rec.offset;
                        t->found_ts = rec.timestamp;
                        break;
                    }
                }
            }
        }
        if (!t->done) {
            if (next <= t->cur) {
                t->done = 1;
            } else {
                t->cur = next;
            }
        }
    }
    if (!t->in_driver)
        time_drive(t);
}

/* Loops over synchronous reads; an asynchronous one re-enters from its
 * callback. Returns 1 while pending, 0 once the callback ran. */
static int time_drive(time_req *t)
{
    t->in_driver = 1;
    while (!t->done) {
        int rc = st_log_read(t->log, t->cur, 256u << 10, time_read_cb, t);
        if (rc == 1) {
            t->in_driver = 0;
            return 1;
        }
        if (rc < 0) {
            t->rc = rc == ST_E_OUT_OF_RANGE ? 0 : rc;
            t->done = 1;
        }
    }
    t->cb(t->arg, t->rc, t->rc == 0 ? t->found : -1, t->rc == 0 ? t->found_ts : -1);
    free(t);
    return 0;
}

int st_log_offset_for_time(st_log *log, int64_t ts, st_offset_cb cb, void *arg)
{
    if (ts == ST_TS_EARLIEST) {
        cb(arg, 0, log->log_start, -1);
        return 0;
    }
    if (ts == ST_TS_LATEST) {
        cb(arg, 0, log->hw, -1);
        return 0;
    }
    if (ts == ST_TS_MAX) {
        if (log->max_ts_offset >= log->log_start && log->max_ts_offset < log->hw)
            cb(arg, 0, log->max_ts_offset, log->max_ts);
        else
            cb(arg, 0, -1, -1);
        return 0;
    }
    if (ts < 0)
        return ST_E_INVALID_TIMESTAMP;
    size_t i = 0;
    while (i < log->nsegs && log->segs[i]->max_ts < ts)
        i++;
    if (i == log->nsegs) {
        cb(arg, 0, -1, -1);
        return 0;
    }
    st_segment *s = log->segs[i];
    uint32_t pos;
    int64_t start = s->base + st_index_lookup_time(&s->ix, ts, &pos);
    if (start < log->log_start)
        start = log->log_start;
    time_req *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->log = log;
    t->ts = ts;
    t->cb = cb;
    t->arg = arg;
    t->cur = start;
    t->found = -1;
    t->found_ts = -1;
    return time_drive(t);
}

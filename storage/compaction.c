/*
 * compaction.c — log compaction for cleanup.policy=compact.
 *
 * Owns: the key → latest-offset map, rewriting sealed segments so that each
 * key keeps only its latest record (tombstones dropped once older than
 * delete.retention.ms), the removal of aborted transactional data and of
 * transaction markers (Kafka's LogCleaner rules, below), the cleaned
 * segments' .txnindex, and swapping the rewritten segments in.
 *
 * Must not: touch the active segment, a segment still being flushed or one
 * reaching the last stable offset (Kafka's first uncleanable offset: what is
 * not yet decided must not be cleaned), run its I/O on the shard thread (the
 * whole rewrite is one background call on immutable sealed files, so appends
 * never wait for it), renumber offsets (kept records keep their bytes, and
 * batches keep their base offset and lastOffsetDelta), or grow its map past
 * COMPACT_MAX_KEYS (a pass with more distinct keys is skipped and logged).
 *
 * Keys are compared by a 64-bit hash plus their length, as Kafka's cleaner
 * compares MD5 digests; compressed batches are kept whole (their keys are not
 * read), which keeps more than necessary but never loses a latest value.
 *
 * Transactions, as Kafka's cleaner (CleanedTransactionMetadata): the aborted
 * transactions over the cleaned range come from the .txnindex entries; a
 * batch of an aborted transaction is dropped whole (compressed or not) and
 * never enters the key map, committed transactional records count like any
 * other. A marker goes in two passes: the first pass that finds no data of
 * its transaction left stamps it with a delete horizon (attribute bit 6,
 * base timestamp = now + delete.retention.ms), a pass after the horizon
 * removes it; an ABORT marker's .txnindex entry stays while the pass still
 * met data of its transaction. The batch holding a producer's last data
 * offset (or its last marker, when it has no data in its epoch) stays, emptied
 * if need be, so that a replay of the log still finds its sequence and epoch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define COMPACT_MAX_KEYS (1u << 20)

typedef struct key_slot {
    uint64_t h; /* 0 = empty */
    int64_t offset;
} key_slot;

typedef struct key_map {
    key_slot *t;
    size_t cap, n;
} key_map;

static uint64_t key_hash(const uint8_t *p, int32_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uint32_t)len;
    for (int32_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

static key_slot *km_slot(key_map *m, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->t[i].h && m->t[i].h != h)
        i = (i + 1) & (m->cap - 1);
    return &m->t[i];
}

static int km_put(key_map *m, uint64_t h, int64_t offset)
{
    if ((m->n + 1) * 2 > m->cap) {
        if (m->n >= COMPACT_MAX_KEYS)
            return -E2BIG;
        size_t nc = m->cap ? m->cap * 2 : 1024;
        key_slot *old = m->t;
        size_t oc = m->cap;
        m->t = calloc(nc, sizeof(*m->t));
        if (!m->t) {
            m->t = old;
            return -ENOMEM;
        }
        m->cap = nc;
        for (size_t i = 0; i < oc; i++)
            if (old[i].h)
                *km_slot(m, old[i].h) = old[i];
        free(old);
    }
    key_slot *s = km_slot(m, h);
    if (!s->h) {
        s->h = h;
        m->n++;
    }
    s->offset = offset;
    return 0;
}

static int64_t km_get(key_map *m, uint64_t h)
{
    key_slot *s = km_slot(m, h);
    return s->h ? s->offset : -1;
}

/* Per producer, while a pass walks the batches: the aborted transaction it
 * is in (index in cjob.ab, -1 none) and whether a batch of it was met, and
 * whether a batch of a transaction not aborted was met. */
typedef struct ctxn_slot {
    int64_t pid;
    int used;
    int committed;
    int observed;
    ptrdiff_t ab;
} ctxn_slot;

/* Kafka's CleanedTransactionMetadata for one walk over the cleaned range. */
typedef struct ctxn {
    const st_aborted_txn *ab; /* ascending first offset */
    size_t nab, next;
    ctxn_slot *t;
    size_t cap, n;
    int err;
} ctxn;

/* One segment handed to the background job, and what comes back. */
typedef struct cseg {
    int64_t base;
    char *path;
    uint64_t size;
    st_segment *out; /* the rewritten segment, opened and indexed */
    /* The aborted transactions the cleaned segment keeps (marker order). */
    st_aborted_txn *txn;
    size_t ntxn, txncap;
    size_t old_ntxn; /* what it had: fewer now means a new .txnindex */
    int walked;      /* the rewrite walked it whole: txn is its complete list */
} cseg;

typedef struct cjob {
    cseg *segs;
    size_t n;
    char *dir;
    int64_t horizon_ms; /* tombstones with a timestamp before this go */
    int64_t now_ms;
    int64_t delete_retention_ms;
    uint32_t interval;
    key_map map;
    st_aborted_txn *ab; /* aborted transactions meeting the range, by first offset */
    size_t nab;
    st_plast *prod;
    size_t nprod;
    ctxn tx;
    st_append_cb cb;
    void *arg;
    int rewritten;
} cjob;

static ctxn_slot *ct_slot(ctxn *c, int64_t pid)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        ctxn_slot *nt = calloc(nc, sizeof(*nt));
        if (!nt) {
            c->err = -ENOMEM;
            return NULL;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->t[i].used)
                continue;
            size_t k = ((uint64_t)c->t[i].pid * 0x9E3779B97F4A7C15ull >> 20) & (nc - 1);
            while (nt[k].used)
                k = (k + 1) & (nc - 1);
            nt[k] = c->t[i];
        }
        free(c->t);
        c->t = nt;
        c->cap = nc;
    }
    size_t k = ((uint64_t)pid * 0x9E3779B97F4A7C15ull >> 20) & (c->cap - 1);
    while (c->t[k].used && c->t[k].pid != pid)
        k = (k + 1) & (c->cap - 1);
    if (!c->t[k].used) {
        c->t[k] = (ctxn_slot){pid, 1, 0, 0, -1};
        c->n++;
    }
    return &c->t[k];
}

static void ct_reset(ctxn *c, const st_aborted_txn *ab, size_t nab)
{
    free(c->t);
    memset(c, 0, sizeof(*c));
    c->ab = ab;
    c->nab = nab;
}

/* Kafka's consumeAbortedTxnsUpTo: transactions that began at or before
 * offset become the ongoing aborted transaction of their producer. */
static void ct_consume(ctxn *c, int64_t offset)
{
    while (c->next < c->nab && c->ab[c->next].first_offset <= offset) {
        ctxn_slot *s = ct_slot(c, c->ab[c->next].producer_id);
        if (s && s->ab < 0) {
            s->ab = (ptrdiff_t)c->next;
            s->observed = 0;
        }
        c->next++;
    }
}

/* A data batch: 1 when it belongs to an aborted transaction (drop it). */
static int ct_on_batch(ctxn *c, const kp_batch_header *h)
{
    ct_consume(c, h->base_offset + h->last_offset_delta);
    if (!(h->attributes & KP_ATTR_TRANSACTIONAL) || h->producer_id < 0)
        return 0;
    ctxn_slot *s = ct_slot(c, h->producer_id);
    if (!s)
        return 0;
    if (s->ab >= 0) {
        s->observed = 1;
        return 1;
    }
    s->committed = 1;
    return 0;
}

/* A control batch: 1 when no data of its transaction is left in the range
 * (the marker may go once its delete horizon passed). *keep_entry is set to
 * the aborted transaction whose ABORT marker this is and whose data the walk
 * still met (its .txnindex entry stays), else NULL. */
static int ct_on_control(ctxn *c, const kp_batch *b, const st_aborted_txn **keep_entry)
{
    *keep_entry = NULL;
    ct_consume(c, b->h.base_offset + b->h.last_offset_delta);
    int16_t type;
    int32_t coord;
    if (b->h.producer_id < 0)
        return 0; /* no transaction marker (e.g. a metadata log's): kept */
    if (b->h.record_count == 0)
        return 1; /* emptied by an earlier pass */
    if (kp_txn_marker_parse(b, &type, &coord) != 0)
        return 0;
    ctxn_slot *s = ct_slot(c, b->h.producer_id);
    if (!s)
        return 0;
    if (type == KP_CONTROL_ABORT) {
        ptrdiff_t ab = s->ab;
        int observed = s->observed;
        s->ab = -1;
        s->observed = 0;
        if (ab >= 0 && observed) {
            *keep_entry = &c->ab[ab];
            return 0;
        }
        return 1;
    }
    int had = s->committed;
    s->committed = 0;
    return !had;
}

static const st_plast *find_prod(const cjob *j, int64_t pid)
{
    size_t lo = 0, hi = j->nprod;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->prod[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < j->nprod && j->prod[lo].pid == pid ? &j->prod[lo] : NULL;
}

/* Kafka's isBatchLastRecordOfProducer: the batch carrying a producer's last
 * sequence (or, without data in its epoch, its last marker) survives. */
static int last_of_producer(const cjob *j, const kp_batch_header *h)
{
    if (h->producer_id < 0)
        return 0;
    const st_plast *p = find_prod(j, h->producer_id);
    if (!p)
        return 0;
    if (p->last_data >= 0)
        return h->base_offset + h->last_offset_delta == p->last_data;
    return (h->attributes & KP_ATTR_CONTROL) && h->producer_epoch == p->epoch;
}

static int is_plain(const kp_batch *b)
{
    return (b->h.attributes & KP_ATTR_CODEC_MASK) == KP_CODEC_NONE && !(b->h.attributes & KP_ATTR_CONTROL);
}

static int map_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    cjob *j = arg;
    if (b->h.attributes & KP_ATTR_CONTROL) {
        const st_aborted_txn *keep;
        ct_on_control(&j->tx, b, &keep);
        return j->tx.err ? 1 : 0;
    }
    if (ct_on_batch(&j->tx, &b->h))
        return 0; /* aborted: its values never count */
    if (j->tx.err)
        return 1;
    if (!is_plain(b)) {
        /* A compressed committed value stays whole and unread: a later
         * tombstone of its key must stay too, or the value would be the
         * key's latest again. */
        if (b->h.attributes & KP_ATTR_TRANSACTIONAL)
            j->horizon_ms = INT64_MIN;
        return 0;
    }
    kp_record_iter it;
    kp_record r;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    while (kp_record_iter_next(&it, &r) == 1) {
        if (r.key.len < 0)
            continue;
        if (km_put(&j->map, key_hash(r.key.p, r.key.len), r.offset) != 0)
            return 1;
    }
    return 0;
}

typedef struct rewrite_ctx {
    cjob *j;
    cseg *cs;
    int fd;
    uint64_t out_pos;
    int err;
    uint8_t *buf;
    size_t cap;
} rewrite_ctx;

static int out_write(rewrite_ctx *c, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n > 0) {
        ssize_t w = write(c->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            c->err = -errno;
            return 1;
        }
        s += w;
        n -= (size_t)w;
        c->out_pos += (uint64_t)w;
    }
    return 0;
}

static int ensure_buf(rewrite_ctx *c, size_t n)
{
    if (c->cap >= n)
        return 0;
    uint8_t *nb = realloc(c->buf, n);
    if (!nb) {
        c->err = -ENOMEM;
        return 1;
    }
    c->buf = nb;
    c->cap = n;
    return 0;
}

static void finish_batch(uint8_t *p, size_t len, int32_t count)
{
    kp_put_be32(p + 8, (uint32_t)(len - KP_BATCH_LOG_OVERHEAD));
    kp_put_be32(p + 57, (uint32_t)count);
    kp_put_be32(p + 17, kp_crc32c(0, p + KP_BATCH_CRC_START, len - KP_BATCH_CRC_START));
}

/* Kafka's writeEmptyHeader: the batch's offsets, producer fields and max
 * timestamp without records, uncompressed, no base timestamp. */
static int write_empty(rewrite_ctx *c, const kp_batch *b)
{
    uint8_t h[KP_BATCH_HEADER_SIZE];
    memcpy(h, b->data, sizeof(h));
    uint16_t attr = (uint16_t)b->h.attributes;
    attr &= (uint16_t) ~(KP_ATTR_CODEC_MASK | KP_ATTR_DELETE_HORIZON);
    kp_put_be16(h + 21, attr);
    kp_put_be64(h + 27, (uint64_t)-1);
    finish_batch(h, sizeof(h), 0);
    return out_write(c, h, sizeof(h));
}

/* The batch with the delete horizon set: base timestamp = horizon, so every
 * record's timestamp delta is re-encoded against it (Kafka's
 * MemoryRecordsBuilder with a deleteHorizonMs). */
static int write_with_horizon(rewrite_ctx *c, const kp_batch *b, int64_t horizon)
{
    if (ensure_buf(c, b->size + (size_t)b->h.record_count * 16 + 64))
        return 1;
    memcpy(c->buf, b->data, KP_BATCH_HEADER_SIZE);
    kp_put_be16(c->buf + 21, (uint16_t)(b->h.attributes | KP_ATTR_DELETE_HORIZON));
    kp_put_be64(c->buf + 27, (uint64_t)horizon);
    size_t len = KP_BATCH_HEADER_SIZE;
    kp_record_iter it;
    kp_record r;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    int32_t n = 0;
    uint8_t tmp[64];
    while (kp_record_iter_next(&it, &r) == 1) {
        /* Body without the key/value/header bytes, which are copied after. */
        kp_writer w;
        kp_writer_init_fixed(&w, tmp, sizeof(tmp));
        kp_write_i8(&w, r.attributes);
        kp_write_varlong(&w, r.timestamp - horizon);
        kp_write_varint(&w, (int32_t)(r.offset - b->h.base_offset));
        kp_write_varint(&w, r.key.len);
        size_t head = w.len;
        kp_writer tail;
        uint8_t tbuf[16];
        kp_writer_init_fixed(&tail, tbuf, sizeof(tbuf));
        kp_write_varint(&tail, r.value.len);
        size_t vlen_len = tail.len;
        kp_write_varint(&tail, r.header_count);
        if (w.err || tail.err) {
            c->err = ST_E_STORAGE;
            return 1;
        }
        size_t body = head + (r.key.len > 0 ? (size_t)r.key.len : 0) + vlen_len +
                      (r.value.len > 0 ? (size_t)r.value.len : 0) + (tail.len - vlen_len) + r.headers_size;
        kp_writer lw;
        uint8_t lbuf[8];
        kp_writer_init_fixed(&lw, lbuf, sizeof(lbuf));
        kp_write_varint(&lw, (int32_t)body);
        if (ensure_buf(c, len + lw.len + body))
            return 1;
        uint8_t *o = c->buf + len;
        memcpy(o, lbuf, lw.len);
        o += lw.len;
        memcpy(o, tmp, head);
        o += head;
        if (r.key.len > 0) {
            memcpy(o, r.key.p, (size_t)r.key.len);
            o += r.key.len;
        }
        memcpy(o, tbuf, vlen_len);
        o += vlen_len;
        if (r.value.len > 0) {
            memcpy(o, r.value.p, (size_t)r.value.len);
            o += r.value.len;
        }
        memcpy(o, tbuf + vlen_len, tail.len - vlen_len);
        o += tail.len - vlen_len;
        if (r.headers_size)
            memcpy(o, r.headers, r.headers_size);
        o += r.headers_size;
        len = (size_t)(o - c->buf);
        n++;
    }
    finish_batch(c->buf, len, n);
    return out_write(c, c->buf, len);
}

static int keep_entry(rewrite_ctx *c, const st_aborted_txn *t)
{
    cseg *cs = c->cs;
    if (st_grow((void **)&cs->txn, &cs->txncap, cs->ntxn + 1, sizeof(*cs->txn), 8) != 0) {
        c->err = -ENOMEM;
        return 1;
    }
    cs->txn[cs->ntxn++] = *t;
    return 0;
}

static int rewrite_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    rewrite_ctx *c = arg;
    cjob *j = c->j;
    int control = (b->h.attributes & KP_ATTR_CONTROL) != 0;
    /* Kafka's checkBatchRetention. */
    const st_aborted_txn *entry = NULL;
    int can_discard = control ? ct_on_control(&j->tx, b, &entry) : ct_on_batch(&j->tx, &b->h);
    if (j->tx.err) {
        c->err = j->tx.err;
        return 1;
    }
    int horizon_set = (b->h.attributes & KP_ATTR_DELETE_HORIZON) != 0;
    int discard_records =
        control ? can_discard && horizon_set && b->h.base_timestamp <= j->now_ms : can_discard;
    int retain_empty = last_of_producer(j, &b->h);
    if (entry && keep_entry(c, entry))
        return 1;
    if (discard_records)
        return retain_empty ? write_empty(c, b) : 0;
    if (control) {
        if (b->h.record_count == 0)
            return retain_empty ? out_write(c, b->data, b->size) : 0;
        if (can_discard && !horizon_set)
            return write_with_horizon(c, b, j->now_ms + j->delete_retention_ms);
        return out_write(c, b->data, b->size);
    }
    if (!is_plain(b))
        return out_write(c, b->data, b->size);
    if (ensure_buf(c, b->size))
        return 1;
    memcpy(c->buf, b->data, KP_BATCH_HEADER_SIZE);
    size_t len = KP_BATCH_HEADER_SIZE;
    int32_t kept = 0, total = 0;
    kp_record_iter it;
    kp_record r;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    const uint8_t *start = it.r.p;
    while (kp_record_iter_next(&it, &r) == 1) {
        total++;
        int keep = 1;
        if (r.key.len >= 0) {
            keep = km_get(&j->map, key_hash(r.key.p, r.key.len)) == r.offset;
            if (keep && r.value.len < 0 && r.timestamp < j->horizon_ms)
                keep = 0;
        }
        if (keep) {
            /* Records are relative to the unchanged base: copy their bytes. */
            memcpy(c->buf + len, start, (size_t)(it.r.p - start));
            len += (size_t)(it.r.p - start);
            kept++;
        }
        start = it.r.p;
    }
    if (kept == total && total > 0)
        return out_write(c, b->data, b->size);
    if (kept == 0)
        return retain_empty ? write_empty(c, b) : 0;
    finish_batch(c->buf, len, kept);
    return out_write(c, c->buf, len);
}

typedef struct note_ctx {
    st_segment *s;
    uint32_t interval;
} note_ctx;

static int note_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    note_ctx *c = arg;
    st_segment_note_batch(c->s, &b->h, (uint32_t)pos, (uint32_t)b->size, c->interval, 0);
    return 0;
}

/* The .txnindex of a cleaned segment that lost entries. Written before the
 * .log is replaced: it only lost transactions of which no data was left
 * before this pass, so it is right for the old file as for the new one. */
static long write_txnindex(const cseg *cs)
{
    if (cs->ntxn == cs->old_ntxn)
        return 0;
    uint8_t *t = st_txnindex_encode(cs->txn, cs->ntxn);
    if (!t)
        return -ENOMEM;
    long rc = st_txnindex_write(cs->path, t, cs->ntxn * ST_TXN_ENTRY, 1);
    free(t);
    return rc;
}

static long rewrite_one(cjob *j, cseg *cs)
{
    size_t n = strlen(cs->path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n + 16, "%s.cleaned", cs->path);
    int in = open(cs->path, O_RDONLY | O_CLOEXEC);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    long rc = 0;
    if (in < 0 || out < 0)
        rc = -errno;
    rewrite_ctx c = {j, cs, out, 0, 0, NULL, 0};
    if (rc == 0) {
        int64_t end = st_scan_file(in, 0, cs->size, cs->base, 1, rewrite_cb, &c);
        rc = end < 0 ? end : c.err;
        if (rc == 0 && (uint64_t)end != cs->size)
            rc = ST_E_STORAGE;
    }
    free(c.buf);
    int same = rc == 0 && c.out_pos == cs->size;
    if (rc == 0)
        rc = write_txnindex(cs);
    if (rc == 0)
        cs->walked = 1;
    if (rc == 0 && same)
        rc = 1; /* nothing dropped or stamped: keep the original */
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc == 0) {
        /* Stale indexes go first: a crash after the rename then finds them
         * missing and rebuilds them. */
        char *ip = malloc(n + 16);
        if (ip) {
            memcpy(ip, cs->path, n + 1);
            strcpy(ip + n - 4, ".index");
            unlink(ip);
            strcpy(ip + n - 4, ".timeindex");
            unlink(ip);
            free(ip);
        }
        if (rename(tmp, cs->path) != 0)
            rc = -errno;
        else
            rc = st_fsync_dir(j->dir);
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    if (rc != 0)
        return rc == 1 ? 0 : rc;

    st_segment *s = st_segment_new(j->dir, cs->base);
    if (!s)
        return -ENOMEM;
    rc = st_segment_open_file(s, 0);
    if (rc == 0) {
        struct stat st;
        int sfd = open(cs->path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0 || fstat(sfd, &st) != 0) {
            rc = -errno;
        } else {
            note_ctx nc = {s, j->interval};
            int64_t end = st_scan_file(sfd, 0, (uint64_t)st.st_size, cs->base, 0, note_cb, &nc);
            rc = end < 0 ? end : 0;
            if (rc == 0)
                s->size = (uint64_t)end;
        }
        if (sfd >= 0)
            close(sfd);
    }
    if (rc == 0)
        rc = st_index_save(&s->ix, s->path);
    if (rc != 0) {
        st_segment_unref(s);
        return rc;
    }
    s->sealed = 1;
    cs->out = s;
    j->rewritten++;
    return 0;
}

static long compact_fn(void *arg)
{
    cjob *j = arg;
    ct_reset(&j->tx, j->ab, j->nab);
    for (size_t i = 0; i < j->n; i++) {
        int fd = open(j->segs[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int64_t end = st_scan_file(fd, 0, j->segs[i].size, j->segs[i].base, 0, map_cb, j);
        close(fd);
        if (end < 0)
            return end;
        if (j->tx.err)
            return j->tx.err;
        if ((uint64_t)end != j->segs[i].size) {
            st_logf(ST_LL_WARN, "compaction of %s skipped: too many keys or unreadable segment", j->dir);
            return -E2BIG;
        }
    }
    /* The rewrite walks the range again with fresh transaction state. */
    ct_reset(&j->tx, j->ab, j->nab);
    for (size_t i = 0; i < j->n; i++) {
        long rc = rewrite_one(j, &j->segs[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void free_job(cjob *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->segs[i].path);
        free(j->segs[i].txn);
        if (j->segs[i].out)
            st_segment_unref(j->segs[i].out);
    }
    free(j->segs);
    free(j->map.t);
    free(j->ab);
    free(j->prod);
    free(j->tx.t);
    free(j->dir);
    free(j);
}

/* Hands the cleaned segment's aborted transactions to seg (its old ones go). */
static void take_txn(st_segment *seg, cseg *cs)
{
    free(seg->txn);
    seg->txn = cs->txn;
    seg->ntxn = cs->ntxn;
    seg->txncap = cs->txncap;
    cs->txn = NULL;
    cs->ntxn = cs->txncap = 0;
}

static void compact_done(st_log *log, void *arg, long res)
{
    cjob *j = arg;
    log->compacting = 0;
    /* Also after a failed pass: a segment renamed into place must be the one
     * the log reads (a reopen by path would find the new file). */
    for (size_t i = 0; i < j->n; i++) {
        cseg *cs = &j->segs[i];
        int k = st_log_segment_index_of(log, cs->base);
        /* Retention waits while compacting, so the segment is still listed. */
        if (k < 0 || log->segs[k]->base != cs->base)
            continue;
        st_segment *old = log->segs[k];
        if (!cs->out) {
            if (cs->walked && cs->ntxn != cs->old_ntxn)
                take_txn(old, cs);
            continue;
        }
        cs->out->created_ms = old->created_ms;
        if (cs->out->next_offset < old->next_offset)
            cs->out->next_offset = old->next_offset; /* dense: offsets of dropped records stay used */
        /* Markers keep their offsets: the entries kept stay valid. */
        take_txn(cs->out, cs);
        log->segs[k] = cs->out;
        cs->out = NULL;
        st_segment_unref(old);
        st_fdc_add(log->io, log->segs[k]); /* opened on the background thread */
    }
    if (res == 0)
        log->stats.compactions++;
    if (j->cb)
        j->cb(j->arg, (int)res, j->rewritten);
    free_job(j);
}

static int cmp_first(const void *a, const void *b)
{
    int64_t x = ((const st_aborted_txn *)a)->first_offset, y = ((const st_aborted_txn *)b)->first_offset;
    return x < y ? -1 : x > y;
}

static int cmp_pid(const void *a, const void *b)
{
    int64_t x = ((const st_plast *)a)->pid, y = ((const st_plast *)b)->pid;
    return x < y ? -1 : x > y;
}

/* What the background walk needs from the shard: the aborted transactions
 * meeting [segs[0].base, upper) and the producers' last batches. */
static int capture_txn_state(st_log *log, cjob *j, int64_t upper)
{
    int64_t from = log->segs[0]->base;
    size_t n = st_log_aborted_txns(log, from, upper, NULL, 0);
    if (n) {
        j->ab = malloc(n * sizeof(*j->ab));
        if (!j->ab)
            return -ENOMEM;
        j->nab = st_log_aborted_txns(log, from, upper, j->ab, n);
        qsort(j->ab, j->nab, sizeof(*j->ab), cmp_first);
    }
    size_t np = st_pstate_last_batches(&log->ps, NULL, 0);
    if (np) {
        j->prod = malloc(np * sizeof(*j->prod));
        if (!j->prod)
            return -ENOMEM;
        j->nprod = st_pstate_last_batches(&log->ps, j->prod, np);
        qsort(j->prod, j->nprod, sizeof(*j->prod), cmp_pid);
    }
    return 0;
}

int st_compaction_start(st_log *log, st_append_cb cb, void *arg)
{
    if (log->compacting || log->cutting)
        return ST_E_BUSY;
    /* Kafka's first uncleanable offset: nothing at or past the last stable
     * offset (an undecided transaction) is cleaned; whole segments only. */
    int64_t upper = st_log_last_stable_offset(log);
    size_t n = 0;
    while (n < log->nsegs && log->segs[n]->sealed && log->segs[n] != log->act.seg &&
           log->segs[n] != log->old.seg && log->segs[n]->next_offset <= upper)
        n++;
    cjob *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->segs = calloc(n ? n : 1, sizeof(*j->segs));
    j->dir = strdup(log->dir);
    if (!j->segs || !j->dir) {
        free_job(j);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        j->segs[i].base = log->segs[i]->base;
        j->segs[i].size = log->segs[i]->size;
        j->segs[i].old_ntxn = log->segs[i]->ntxn;
        j->segs[i].path = strdup(log->segs[i]->path);
        j->n = i + 1;
        if (!j->segs[i].path) {
            free_job(j);
            return -ENOMEM;
        }
    }
    if (n && capture_txn_state(log, j, log->segs[n - 1]->next_offset) != 0) {
        free_job(j);
        return -ENOMEM;
    }
    j->now_ms = st_now_ms();
    j->delete_retention_ms = log->cfg.delete_retention_ms;
    j->horizon_ms = j->now_ms - log->cfg.delete_retention_ms;
    j->interval = log->cfg.index_interval_bytes;
    j->cb = cb;
    j->arg = arg;
    log->compacting = 1;
    st_log_bg_call(log, compact_fn, j, compact_done);
    return 0;
}

int st_log_compact_now(st_log *log, st_append_cb cb, void *arg)
{
    if (!log->cfg.compact)
        return ST_E_UNSUPPORTED;
    return st_compaction_start(log, cb, arg);
}

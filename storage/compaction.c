/*
 * compaction.c — log compaction for cleanup.policy=compact.
 *
 * Owns: the key → latest-offset map, rewriting sealed segments so that each
 * key keeps only its latest record (tombstones dropped once older than
 * delete.retention.ms), and swapping the rewritten segments in.
 *
 * Must not: touch the active segment or a segment still being flushed, run
 * its I/O on the shard thread (the whole rewrite is one background call on
 * immutable sealed files, so appends never wait for it), renumber offsets
 * (kept records keep their bytes, and batches keep their base offset and
 * lastOffsetDelta), or grow its map past COMPACT_MAX_KEYS (a pass with more
 * distinct keys is skipped and logged).
 *
 * Keys are compared by a 64-bit hash plus their length, as Kafka's cleaner
 * compares MD5 digests; compressed batches are kept whole (their keys are not
 * read), which keeps more than necessary but never loses a latest value.
 *
 * Transactions: transactional batches and markers are kept whole and their
 * keys do not enter the map (an aborted record must never count as a key's
 * latest value), and a pass over a log holding any transactional batch
 * keeps its tombstones (dropping one could expose an older transactional
 * value of its key again). Kafka's removal of aborted data and of markers
 * after delete.retention.ms is not done: they stay, which is correct for
 * read_committed (the aborted list still covers them) but keeps more.
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

/* One segment handed to the background job, and what comes back. */
typedef struct cseg {
    int64_t base;
    char *path;
    uint64_t size;
    st_segment *out; /* the rewritten segment, opened and indexed */
} cseg;

typedef struct cjob {
    cseg *segs;
    size_t n;
    char *dir;
    int64_t horizon_ms; /* tombstones with a timestamp before this go */
    uint32_t interval;
    key_map map;
    st_append_cb cb;
    void *arg;
    int rewritten;
} cjob;

static int is_plain(const kp_batch *b)
{
    return (b->h.attributes & KP_ATTR_CODEC_MASK) == KP_CODEC_NONE &&
           !(b->h.attributes & (KP_ATTR_CONTROL | KP_ATTR_TRANSACTIONAL));
}

static int map_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    cjob *j = arg;
    if (b->h.attributes & KP_ATTR_TRANSACTIONAL)
        j->horizon_ms = INT64_MIN;
    if (!is_plain(b))
        return 0;
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

static int rewrite_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    rewrite_ctx *c = arg;
    if (!is_plain(b))
        return out_write(c, b->data, b->size);
    if (c->cap < b->size) {
        uint8_t *nb = realloc(c->buf, b->size);
        if (!nb) {
            c->err = -ENOMEM;
            return 1;
        }
        c->buf = nb;
        c->cap = b->size;
    }
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
            keep = km_get(&c->j->map, key_hash(r.key.p, r.key.len)) == r.offset;
            if (keep && r.value.len < 0 && r.timestamp < c->j->horizon_ms)
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
    if (kept == total)
        return out_write(c, b->data, b->size);
    if (kept == 0)
        return 0;
    kp_put_be32(c->buf + 8, (uint32_t)(len - KP_BATCH_LOG_OVERHEAD));
    kp_put_be32(c->buf + 57, (uint32_t)kept);
    kp_put_be32(c->buf + 17, kp_crc32c(0, c->buf + KP_BATCH_CRC_START, len - KP_BATCH_CRC_START));
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
    rewrite_ctx c = {j, out, 0, 0, NULL, 0};
    if (rc == 0) {
        int64_t end = st_scan_file(in, 0, cs->size, cs->base, 1, rewrite_cb, &c);
        rc = end < 0 ? end : c.err;
        if (rc == 0 && (uint64_t)end != cs->size)
            rc = ST_E_STORAGE;
    }
    free(c.buf);
    if (rc == 0 && c.out_pos == cs->size)
        rc = 1; /* nothing dropped: keep the original */
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
    for (size_t i = 0; i < j->n; i++) {
        int fd = open(j->segs[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int64_t end = st_scan_file(fd, 0, j->segs[i].size, j->segs[i].base, 0, map_cb, j);
        close(fd);
        if (end < 0)
            return end;
        if ((uint64_t)end != j->segs[i].size) {
            st_logf(ST_LL_WARN, "compaction of %s skipped: too many keys or unreadable segment", j->dir);
            return -E2BIG;
        }
    }
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
        if (j->segs[i].out)
            st_segment_unref(j->segs[i].out);
    }
    free(j->segs);
    free(j->map.t);
    free(j->dir);
    free(j);
}

static void compact_done(st_log *log, void *arg, long res)
{
    cjob *j = arg;
    log->compacting = 0;
    for (size_t i = 0; i < j->n; i++) {
        cseg *cs = &j->segs[i];
        if (!cs->out)
            continue;
        int k = st_log_segment_index_of(log, cs->base);
        /* Retention waits while compacting, so the segment is still listed. */
        if (k < 0 || log->segs[k]->base != cs->base)
            continue;
        st_segment *old = log->segs[k];
        cs->out->created_ms = old->created_ms;
        if (cs->out->next_offset < old->next_offset)
            cs->out->next_offset = old->next_offset; /* dense: offsets of dropped records stay used */
        /* Markers keep their offsets: the aborted transactions stay valid. */
        cs->out->txn = old->txn;
        cs->out->ntxn = old->ntxn;
        cs->out->txncap = old->txncap;
        old->txn = NULL;
        old->ntxn = old->txncap = 0;
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

int st_compaction_start(st_log *log, st_append_cb cb, void *arg)
{
    if (log->compacting)
        return ST_E_BUSY;
    size_t n = 0;
    while (n < log->nsegs && log->segs[n]->sealed && log->segs[n] != log->act.seg &&
           log->segs[n] != log->old.seg)
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
        j->segs[i].path = strdup(log->segs[i]->path);
        j->n = i + 1;
        if (!j->segs[i].path) {
            free_job(j);
            return -ENOMEM;
        }
    }
    j->horizon_ms = st_now_ms() - log->cfg.delete_retention_ms;
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

/*
 * recovery.c — bringing a partition directory back to a consistent log.
 *
 * Owns: the directory listing, the validating segment scanner (lengths,
 * magic, CRC-32C, increasing offsets), tail truncation at the first bad byte,
 * index rebuilds, the clean-shutdown marker, the log start offset file,
 * producer-state replay and the aborted-transaction indexes (.txnindex
 * loaded below the producer snapshot's offset, rebuilt by the replay above
 * it), the leader-epoch cache (from the batch headers).
 *
 * Must not: run anywhere but st_log_open() (it blocks on the disk) or trust
 * any byte it reads: a segment is believed only up to the end of its last
 * whole, valid batch.
 *
 * The recovery point: sealed segments were fdatasync'ed before the next
 * segment received any data, so only the last segment (and, if that one is
 * empty, the one before) can hold a torn tail; two quick rolls can leave two
 * empty files at the end, both of which go. Unless the clean-shutdown
 * marker says otherwise, the last segment is scanned in full with CRCs;
 * every other segment gets its index checked and the batches after its last
 * index entry walked, which also removes the zero padding an unsealed
 * segment may carry.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SCAN_WINDOW (1u << 20)

int64_t st_scan_file(int fd, uint64_t pos, uint64_t size, int64_t min_offset, int verify_crc, st_scan_fn fn,
                     void *arg)
{
    size_t cap = SCAN_WINDOW;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    uint64_t win_off = pos; /* file position of buf[0] */
    size_t win_len = 0;
    int64_t rc = 0;
    while (pos < size) {
        /* Make [pos, pos + need) resident, need growing as we learn it. */
        size_t need = KP_BATCH_HEADER_SIZE;
        int whole = 0;
        for (;;) {
            if (pos + need > size)
                break;
            if (pos >= win_off && pos + need <= win_off + win_len) {
                if (whole)
                    break;
                uint32_t blen = kp_be32(buf + (pos - win_off) + 8);
                uint64_t total = (uint64_t)blen + KP_BATCH_LOG_OVERHEAD;
                if (blen < KP_BATCH_HEADER_SIZE - KP_BATCH_LOG_OVERHEAD || total > ST_MAX_DISK_BATCH) {
                    need = SIZE_MAX;
                    break;
                }
                need = (size_t)total;
                whole = 1;
                continue;
            }
            if (need > cap) {
                uint8_t *nb = realloc(buf, need);
                if (!nb) {
                    rc = -ENOMEM;
                    goto out;
                }
                buf = nb;
                cap = need;
            }
            size_t want = (size_t)(size - pos < cap ? size - pos : cap);
            size_t got = 0;
            while (got < want) {
                ssize_t r = pread(fd, buf + got, want - got, (off_t)(pos + got));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0) {
                    rc = -errno;
                    goto out;
                }
                if (r == 0)
                    break;
                got += (size_t)r;
            }
            win_off = pos;
            win_len = got;
            if (got < need)
                break;
        }
        if (!whole || need == SIZE_MAX || pos + need > size || pos + need > win_off + win_len)
            break;
        const uint8_t *p = buf + (pos - win_off);
        kp_batch b;
        if (verify_crc) {
            if (kp_batch_validate(p, need, &b) < 0)
                break;
        } else {
            if (kp_batch_header_parse(p, need, &b.h) < 0 || b.h.magic != 2)
                break;
            b.data = p;
            b.size = need;
            b.records = p + KP_BATCH_HEADER_SIZE;
            b.records_size = need - KP_BATCH_HEADER_SIZE;
        }
        if (b.size != need || b.h.base_offset < min_offset || b.h.last_offset_delta < 0)
            break;
        min_offset = b.h.base_offset + b.h.last_offset_delta + 1;
        if (fn && fn(arg, &b, pos) != 0)
            break;
        pos += need;
    }
    rc = (int64_t)pos;
out:
    free(buf);
    return rc;
}

/* ---- per-segment recovery ------------------------------------------------ */

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

static int open_scan_fd(const st_segment *s)
{
    return open(s->path, O_RDONLY | O_CLOEXEC);
}

/* Establishes size, next_offset, max_ts and the index of one segment. */
static int recover_segment(st_log *log, st_segment *s, int full_scan, int verify_crc)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    uint64_t fsize = (uint64_t)st.st_size;
    uint64_t from = 0;
    if (fsize == 0) {
        st_index_reset(&s->ix); /* empty: no index files are written for it */
    } else if (!full_scan && st_index_load(&s->ix, s->path, fsize) == 0) {
        if (s->ix.n > 0) {
            from = s->ix.e[s->ix.n - 1].pos;
            s->next_offset = s->base + s->ix.e[s->ix.n - 1].rel;
        }
        if (s->ix.tn > 0) {
            s->max_ts = s->ix.t[s->ix.tn - 1].ts;
            s->max_ts_offset = s->base + s->ix.t[s->ix.tn - 1].rel;
        }
    } else {
        if (!full_scan)
            st_logf(ST_LL_INFO, "rebuilding index of %s", s->path);
        st_index_reset(&s->ix);
    }
    int sfd = open_scan_fd(s);
    if (sfd < 0)
        return -errno;
    note_ctx c = {s, log->cfg.index_interval_bytes};
    s->size = from;
    int64_t end = st_scan_file(sfd, from, fsize, from ? s->next_offset : s->base, verify_crc, note_cb, &c);
    close(sfd);
    if (end < 0)
        return (int)end;
    if (from > 0 && (uint64_t)end == from && end < (int64_t)fsize) {
        /* The last index entry does not point at a valid batch: the index
         * is inconsistent, rebuild from the start. */
        st_index_reset(&s->ix);
        s->max_ts = -1;
        s->max_ts_offset = -1;
        s->next_offset = s->base;
        s->bytes_since_index = 0;
        return recover_segment(log, s, 1, verify_crc);
    }
    s->size = (uint64_t)end;
    if ((uint64_t)end < fsize) {
        st_logf(ST_LL_WARN, "%s: truncating %" PRIu64 " bytes after the last valid batch at %" PRId64,
                s->path, fsize - (uint64_t)end, end);
        if (ftruncate(s->fd, end) != 0 || fdatasync(s->fd) != 0)
            return -errno;
        st_index_truncate(&s->ix, (uint32_t)end);
        /* The index on disk no longer matches; rewrite it when sealed. */
        st_index_save(&s->ix, s->path);
    }
    return 0;
}

/* ---- directory ----------------------------------------------------------- */

static int mkdirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -ENOMEM;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = -errno;
            free(p);
            return e;
        }
        *q = '/';
    }
    int rc = (mkdir(p, 0755) != 0 && errno != EEXIST) ? -errno : 0;
    free(p);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int parse_base(const char *name, const char *ext, int64_t *base)
{
    size_t n = strlen(name), el = strlen(ext);
    if (n != 20 + el || strcmp(name + 20, ext) != 0)
        return 0;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        if (v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 1;
}

static int list_segments(st_log *log, int64_t **bases, size_t *n)
{
    DIR *d = opendir(log->dir);
    if (!d)
        return -errno;
    size_t cap = 16, cnt = 0;
    int64_t *v = malloc(cap * sizeof(*v));
    if (!v) {
        closedir(d);
        return -ENOMEM;
    }
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        size_t nl = strlen(e->d_name);
        if ((nl > 4 && strcmp(e->d_name + nl - 4, ".tmp") == 0) ||
            (nl > 8 && strcmp(e->d_name + nl - 8, ".cleaned") == 0)) {
            snprintf(path, sizeof(path), "%s/%s", log->dir, e->d_name);
            unlink(path); /* an interrupted atomic write or compaction */
            continue;
        }
        if (!parse_base(e->d_name, ".log", &base))
            continue;
        if (cnt == cap) {
            cap *= 2;
            int64_t *nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                free(v);
                closedir(d);
                return -ENOMEM;
            }
            v = nv;
        }
        v[cnt++] = base;
    }
    closedir(d);
    qsort(v, cnt, sizeof(*v), cmp_i64);
    *bases = v;
    *n = cnt;
    return 0;
}

static int push_segment(st_log *log, st_segment *s)
{
    if (log->nsegs == log->segcap) {
        size_t nc = log->segcap ? log->segcap * 2 : 16;
        st_segment **ns = realloc(log->segs, nc * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        log->segs = ns;
        log->segcap = nc;
    }
    log->segs[log->nsegs++] = s;
    return 0;
}

static void drop_segment_now(st_log *log, size_t i)
{
    st_segment *s = log->segs[i];
    st_segment_unlink_files(s->path);
    memmove(&log->segs[i], &log->segs[i + 1], (log->nsegs - i - 1) * sizeof(*log->segs));
    log->nsegs--;
    st_segment_unref(s);
}

typedef struct replay_ctx {
    st_log *log;
    st_segment *s;
    int64_t from;
    int rc;
} replay_ctx;

static int replay_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    replay_ctx *c = arg;
    if (b->h.base_offset < c->from)
        return 0;
    st_marker mk, *m = NULL;
    if ((b->h.attributes & KP_ATTR_CONTROL) && b->h.producer_id >= 0) {
        /* Compaction empties a producer's last marker once its transaction
         * is cleaned away: it changes nothing (Kafka's append skips it). */
        if (kp_txn_marker_parse(b, &mk.type, &mk.coord_epoch) != 0)
            return 0;
        m = &mk;
    }
    st_aborted_txn ab;
    int r = st_pstate_update(&c->log->ps, &b->h, b->h.base_offset, m, 0, &ab);
    if (r == 1)
        r = st_segment_add_txn(c->s, &ab);
    if (r < 0) {
        c->rc = r;
        return 1;
    }
    return 0;
}

/* Each segment's aborted transactions below `from` (the replay adds the
 * rest). 0, or ST_E_STORAGE when a .txnindex is unusable. */
static int load_txnindexes(st_log *log, int64_t from)
{
    for (size_t i = 0; i < log->nsegs; i++) {
        st_segment *s = log->segs[i];
        s->ntxn = 0;
        if (s->base >= from)
            continue;
        int rc = st_txnindex_load(s);
        if (rc < 0) {
            st_logf(ST_LL_WARN, "%s: unusable .txnindex (%s); replaying the log from its start", s->path,
                    st_strerror(rc));
            return rc;
        }
        st_segment_truncate_txn(s, from);
    }
    return 0;
}

static int load_producer_state(st_log *log)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/producer.snapshot", log->dir);
    int64_t from = log->segs[0]->base, snap_off = -1;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20)) {
        uint8_t *buf = malloc((size_t)st.st_size);
        size_t len = 0;
        if (buf && st_read_small_file(path, buf, (size_t)st.st_size, &len) == 0 &&
            st_pstate_deserialize(&log->ps, buf, len, &snap_off) == 0 && snap_off <= log->next_offset &&
            snap_off >= from) {
            from = snap_off;
            log->snap_offset = snap_off;
        } else {
            /* Unusable or ahead of the recovered log: rebuild from scratch. */
            st_pstate_free(&log->ps);
            from = log->segs[0]->base;
        }
        free(buf);
    }
    int rewrite_all = 0;
    if (load_txnindexes(log, from) < 0) {
        rewrite_all = 1; /* the damaged file must not be met again */
        /* Without a trustworthy .txnindex the snapshot alone cannot give
         * the aborted transactions below it: derive everything again from
         * the first segment, keeping from the snapshot only what that
         * replay cannot see (transactions and batches of segments
         * retention removed), as Kafka rebuilds from its snapshot. */
        st_pstate snap = log->ps;
        memset(&log->ps, 0, sizeof(log->ps));
        from = log->segs[0]->base;
        int rc = log->snap_offset >= 0 ? st_pstate_seed_before(&log->ps, &snap, from) : 0;
        st_pstate_free(&snap);
        if (rc < 0)
            return rc;
        log->snap_offset = -1;
        for (size_t i = 0; i < log->nsegs; i++)
            log->segs[i]->ntxn = 0;
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        st_segment *s = log->segs[i];
        if (s->next_offset <= from || s->size == 0)
            continue;
        uint64_t pos = from > s->base ? st_index_lookup(&s->ix, (uint32_t)(from - s->base)) : 0;
        int fd = open_scan_fd(s);
        if (fd < 0)
            return -errno;
        replay_ctx c = {log, s, from, 0};
        int64_t r = st_scan_file(fd, pos, s->size, s->base, 0, replay_cb, &c);
        close(fd);
        if (r < 0)
            return (int)r;
        if (c.rc < 0)
            return c.rc;
        /* A sealed segment gets no later roll to write its .txnindex, and
         * the next snapshot will vouch for it: write it now (startup). */
        if (s != log->act.seg || rewrite_all) {
            uint8_t *txn = st_txnindex_encode(s->txn, s->ntxn);
            int wr = txn ? st_txnindex_write(s->path, txn, s->ntxn * ST_TXN_ENTRY, 1) : -ENOMEM;
            free(txn);
            if (wr < 0)
                return wr;
        }
    }
    return 0;
}

static void load_log_start(st_log *log)
{
    char path[4096];
    uint8_t b[12];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/log-start-offset", log->dir);
    log->log_start = log->segs[0]->base;
    if (st_read_small_file(path, b, sizeof(b), &len) == 0 && len == 12 &&
        kp_crc32c(0, b, 8) == kp_be32(b + 8)) {
        int64_t v = (int64_t)kp_be64(b);
        if (v > log->log_start)
            log->log_start = v;
    }
    if (log->log_start > log->next_offset)
        log->log_start = log->next_offset;
}

/* The active segment's partial last block must be in memory: the next flush
 * rewrites that whole block. It waits in a 4 KiB copy, not a write-buffer
 * chunk, so a log nobody writes to holds no chunk (100,000 partitions). */
static int load_tail_block(st_log *log)
{
    st_segment *s = log->act.seg;
    uint64_t blk = ST_ALIGN_DOWN(s->size);
    if (blk == s->size)
        return 0;
    void *buf = NULL;
    if (posix_memalign(&buf, ST_BLOCK, ST_BLOCK) != 0)
        return -ENOMEM;
    ssize_t r;
    do {
        r = pread(s->fd, buf, ST_BLOCK, (off_t)blk);
    } while (r < 0 && errno == EINTR);
    int rc = 0;
    if (r < (ssize_t)(s->size - blk))
        rc = r < 0 ? -errno : ST_E_STORAGE;
    else
        rc = st_log_keep_tail(log, buf, (size_t)(s->size - blk)); /* chunks come with the next append */
    free(buf);
    return rc;
}

/* The leader-epoch cache from the batch headers (Kafka keeps it in a
 * checkpoint file; here the headers are the only record): one header read
 * per batch, hopping by the batch lengths recovery already checked. */
static int load_epochs(st_log *log)
{
    for (size_t i = 0; i < log->nsegs; i++) {
        st_segment *s = log->segs[i];
        int fd = s->size ? open_scan_fd(s) : -1;
        if (s->size && fd < 0)
            return -errno;
        uint64_t pos = 0;
        int rc = 0;
        while (pos + KP_BATCH_LOG_OVERHEAD + 8 <= s->size) {
            uint8_t h[KP_BATCH_LOG_OVERHEAD + 8]; /* base offset, length, partitionLeaderEpoch, magic... */
            ssize_t r;
            do {
                r = pread(fd, h, sizeof(h), (off_t)pos);
            } while (r < 0 && errno == EINTR);
            if (r != (ssize_t)sizeof(h)) {
                rc = r < 0 ? -errno : ST_E_STORAGE;
                break;
            }
            if ((rc = st_epochs_note(log, (int32_t)kp_be32(h + 12), (int64_t)kp_be64(h))) < 0)
                break;
            pos += (uint64_t)kp_be32(h + 8) + KP_BATCH_LOG_OVERHEAD;
        }
        if (fd >= 0)
            close(fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int st_recover(st_log *log)
{
    int rc = mkdirs(log->dir);
    if (rc < 0)
        return rc;
    char marker[4096];
    snprintf(marker, sizeof(marker), "%s/clean-shutdown", log->dir);
    int clean = access(marker, F_OK) == 0;
    /* The marker is not removed while the log runs (that was an unlink and a
     * directory fsync per partition, at open or before its first write).
     * It only vouches for what the clean stop left: sealed segments (synced
     * before any later segment got data) and index files. What was appended
     * since lies after the last segment's last index entry, and that part is
     * always CRC-checked below and truncated at the first bad byte. */
    log->marker = clean;

    int64_t *bases = NULL;
    size_t n = 0;
    rc = list_segments(log, &bases, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        st_segment *s = st_segment_new(log->dir, bases[i]);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        rc = st_segment_open_file(s, 0);
        if (rc == 0)
            rc = push_segment(log, s);
        if (rc < 0) {
            st_segment_unref(s);
            break;
        }
        int last = i + 1 == n;
        rc = recover_segment(log, s, !clean && last, !clean || last);
    }
    free(bases);
    if (rc < 0)
        return rc;

    /* An empty last segment may follow a previous one whose unsynced tail
     * was lost; it then starts past the real end and goes away. Empty
     * segments elsewhere carry nothing. */
    for (size_t i = 0; i + 1 < log->nsegs;) {
        st_segment *s = log->segs[i], *nx = log->segs[i + 1];
        if (s->size == 0) {
            drop_segment_now(log, i);
            /* The segment before it now meets the next one: check that pair
             * again. A kill after two quick rolls leaves two empty files
             * (the rolled segment's data never reached the disk); without
             * this the last one stayed, starting past the real end, and the
             * log end jumped over offsets that were never written. */
            if (i > 0)
                i--;
            continue;
        }
        if (nx->base < s->next_offset) {
            st_logf(ST_LL_ERROR, "%s overlaps the previous segment", nx->path);
            return ST_E_STORAGE;
        }
        if (nx->size == 0 && i + 2 == log->nsegs && nx->base != s->next_offset) {
            drop_segment_now(log, i + 1);
            /* The previous segment is active again: walk its tail with CRCs. */
            st_index_reset(&s->ix);
            s->max_ts = -1;
            s->next_offset = s->base;
            s->bytes_since_index = 0;
            if ((rc = recover_segment(log, s, 1, 1)) < 0)
                return rc;
            continue;
        }
        i++;
    }
    if (log->nsegs == 0) {
        st_segment *s = st_segment_new(log->dir, 0);
        if (!s)
            return -ENOMEM;
        /* A new, empty log is as final as a cleanly closed one: marked
         * clean (the segment's directory fsync below covers the marker too)
         * it needs no work at close or at the next open until written. */
        if (!clean) {
            int mfd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (mfd >= 0) {
                clean = write(mfd, "1", 1) == 1;
                close(mfd);
                log->marker = clean;
            }
        }
        rc = st_segment_open_file(s, 1);
        if (rc == 0)
            rc = push_segment(log, s);
        if (rc < 0) {
            st_segment_unref(s);
            return rc;
        }
    }

    st_segment *a = st_log_active(log);
    log->act.seg = a;
    log->act.written = log->act.synced = a->size;
    log->next_offset = log->written_offset = log->durable_offset = log->hw = a->next_offset;
    a->created_ms = st_now_ms();
    for (size_t i = 0; i < log->nsegs; i++) {
        st_segment *s = log->segs[i];
        if (s != a)
            s->sealed = 1;
        if (s->max_ts > log->max_ts) {
            log->max_ts = s->max_ts;
            log->max_ts_offset = s->max_ts_offset;
        }
    }
    /* Force an index entry at the first batch of every new chunk. */
    log->act.idx_chunk = (int64_t)(a->size / log->cfg.chunk_bytes);
    if ((rc = load_tail_block(log)) < 0)
        return rc;
    load_log_start(log);
    if (log->cfg.leader_epochs && (rc = load_epochs(log)) < 0)
        return rc;
    return load_producer_state(log);
}

/*
 * truncate.c — online truncation of a partition's log (a follower dropping
 * the tail its new leader does not have: Kafka's truncateTo).
 *
 * Owns: st_log_truncate: the refusal while anything is in flight, the
 * background job that changes the files (later segments unlinked, the cut
 * segment shortened, its stale index files and the clean-shutdown marker
 * removed, a producer snapshot past the cut removed, producer state
 * replayed up to the cut), and adopting the result on the log's thread
 * (segments, write buffer, offsets, the leader-epoch cache).
 *
 * Must not: touch the files on the log's thread, or leave on disk anything
 * a crash right after could bring back: every destructive step is synced
 * before the callback reports the new end, and recovery rebuilds what the
 * job removed (indexes, producer state) from the segments themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct cut_job {
    st_log *log;
    int64_t offset;
    st_append_cb cb;
    void *arg;
    /* Copied on the log's thread: the job never reads the log itself. */
    char *dir;
    char **paths; /* segments 0..cut (replay, cut) then the later ones (unlinked) */
    int64_t *bases;
    uint64_t *sizes;
    size_t cut, n;
    uint64_t scan_from; /* index position at or below the cut offset in segment `cut` */
    uint32_t chunk_bytes;
    st_pstate ps; /* in: the seed for a replay from the first segment; out: the state at the cut */
    /* Results. */
    int destroyed; /* the files changed: the log must adopt the cut even on a later error */
    uint64_t cut_pos;
    int64_t new_end;
    int snap_removed;
    uint8_t *tail; /* the cut segment's partial last block, for the next flush */
} cut_job;

static void free_job(cut_job *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->paths[i]);
    free(j->paths);
    free(j->bases);
    free(j->sizes);
    free(j->dir);
    free(j->tail);
    st_pstate_free(&j->ps);
    free(j);
}

typedef struct find_ctx {
    int64_t offset;
    int found;
    uint64_t pos;
    int64_t base;
} find_ctx;

/* The first batch holding `offset` or anything after it starts the cut. */
static int find_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    find_ctx *c = arg;
    if (b->h.base_offset + b->h.last_offset_delta < c->offset)
        return 0;
    c->found = 1;
    c->pos = pos;
    c->base = b->h.base_offset;
    return 1;
}

typedef struct cut_replay {
    st_pstate *ps;
    int64_t from, end;
    int rc;
} cut_replay;

static int cut_replay_cb(void *arg, const kp_batch *b, uint64_t pos)
{
    (void)pos;
    cut_replay *c = arg;
    if (b->h.base_offset >= c->end)
        return 1;
    if (b->h.base_offset < c->from)
        return 0;
    st_marker mk, *m = NULL;
    if ((b->h.attributes & KP_ATTR_CONTROL) && b->h.producer_id >= 0) {
        if (kp_txn_marker_parse(b, &mk.type, &mk.coord_epoch) != 0)
            return 0; /* an emptied marker changes nothing (as recovery) */
        m = &mk;
    }
    st_aborted_txn ab;
    int r = st_pstate_update(c->ps, &b->h, b->h.base_offset, m, 0, &ab);
    if (r < 0) {
        c->rc = r;
        return 1;
    }
    return 0;
}

static int unlink_synced(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) != 0)
        return errno == ENOENT ? 0 : -errno;
    return st_fsync_dir(dir);
}

static void unlink_index_files(const char *log_path)
{
    size_t n = strlen(log_path);
    char *p = malloc(n + 16);
    if (!p)
        return;
    static const char *exts[] = {".index", ".timeindex"};
    for (size_t i = 0; i < 2; i++) {
        memcpy(p, log_path, n - 4);
        strcpy(p + n - 4, exts[i]);
        unlink(p);
    }
    free(p);
}

/* The producer snapshot on disk and its offset (-1 when none is usable).
 * Read from the file: snapshots written at rolls do not pass through the
 * log's snap_offset. */
static int64_t load_snapshot(const char *dir, st_pstate *out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/producer.snapshot", dir);
    struct stat st;
    int64_t off = -1;
    if (stat(path, &st) != 0 || st.st_size <= 0 || st.st_size >= (64 << 20))
        return -1;
    uint8_t *buf = malloc((size_t)st.st_size);
    size_t len = 0;
    if (!buf || st_read_small_file(path, buf, (size_t)st.st_size, &len) != 0 ||
        st_pstate_deserialize(out, buf, len, &off) != 0)
        off = -1;
    free(buf);
    return off;
}

/* Producer state at the cut: the snapshot when it lies at or below it (then
 * in snap), else the seed handed over, then a replay up to the cut. */
static long rebuild_state(cut_job *j, st_pstate *snap, int64_t snap_off)
{
    int64_t from = j->bases[0];
    if (snap_off >= j->bases[0] && snap_off <= j->new_end) {
        st_pstate_free(&j->ps);
        j->ps = *snap;
        memset(snap, 0, sizeof(*snap));
        from = snap_off;
    }
    for (size_t i = 0; i <= j->cut; i++) {
        uint64_t size = i == j->cut ? j->cut_pos : j->sizes[i];
        if (size == 0 || (i + 1 <= j->cut && j->bases[i + 1] <= from))
            continue;
        int fd = open(j->paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        cut_replay c = {&j->ps, from, j->new_end, 0};
        int64_t r = st_scan_file(fd, 0, size, j->bases[i], 0, cut_replay_cb, &c);
        close(fd);
        if (r < 0)
            return (long)r;
        if (c.rc < 0)
            return c.rc;
    }
    return 0;
}

static long cut_fn(void *arg)
{
    cut_job *j = arg;
    const char *cpath = j->paths[j->cut];
    int fd = open(cpath, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    find_ctx f = {j->offset, 0, 0, 0};
    int64_t r = st_scan_file(fd, j->scan_from, j->sizes[j->cut], j->bases[j->cut], 0, find_cb, &f);
    if (r < 0) {
        close(fd);
        return (long)r;
    }
    j->cut_pos = f.found ? f.pos : j->sizes[j->cut];
    j->new_end = f.found && f.base < j->offset ? f.base : j->offset;

    /* From here on the files change. The marker vouches for index files and
     * sealed segments the cut invalidates: it goes first, so a crash at any
     * later step gets a full recovery scan. */
    j->destroyed = 1;
    long rc = unlink_synced(j->dir, "clean-shutdown");
    /* Later segments newest first: a crash leaves a prefix of the log. */
    for (size_t i = j->n; rc == 0 && i-- > j->cut + 1;)
        st_segment_unlink_files(j->paths[i]);
    if (rc == 0 && j->n > j->cut + 1)
        rc = st_fsync_dir(j->dir);
    if (rc == 0 && (ftruncate(fd, (off_t)j->cut_pos) != 0 || fsync(fd) != 0))
        rc = -errno;
    if (rc == 0) {
        unlink_index_files(cpath); /* rebuilt by recovery, written again at the seal */
        rc = st_fsync_dir(j->dir);
    }
    /* A snapshot past the cut describes batches that are gone; once the log
     * grows past its offset again it would be believed. */
    st_pstate snap;
    memset(&snap, 0, sizeof(snap));
    int64_t snap_off = load_snapshot(j->dir, &snap);
    if (rc == 0 && snap_off > j->new_end) {
        rc = unlink_synced(j->dir, "producer.snapshot");
        j->snap_removed = rc == 0;
    }
    uint64_t blk = ST_ALIGN_DOWN(j->cut_pos);
    if (rc == 0 && blk < j->cut_pos) {
        j->tail = malloc(ST_BLOCK);
        if (!j->tail) {
            rc = -ENOMEM;
        } else {
            ssize_t got;
            do {
                got = pread(fd, j->tail, (size_t)(j->cut_pos - blk), (off_t)blk);
            } while (got < 0 && errno == EINTR);
            if (got != (ssize_t)(j->cut_pos - blk))
                rc = got < 0 ? -errno : ST_E_STORAGE;
        }
    }
    close(fd);
    if (rc == 0)
        rc = rebuild_state(j, &snap, snap_off);
    st_pstate_free(&snap);
    return rc;
}

static void recompute_max_ts(st_log *log)
{
    log->max_ts = -1;
    log->max_ts_offset = -1;
    for (size_t i = 0; i < log->nsegs; i++) {
        st_segment *s = log->segs[i];
        if (s->max_ts > log->max_ts) {
            log->max_ts = s->max_ts;
            log->max_ts_offset = s->max_ts_offset;
        }
    }
}

static void cut_done(st_log *log, void *arg, long res)
{
    cut_job *j = arg;
    log->truncating = 0;
    log->cutting = 0;
    if (res < 0)
        st_logf(ST_LL_ERROR, "truncating %s to %" PRId64 ": %s", log->dir, j->offset, st_strerror((int)res));
    if (j->destroyed) {
        /* Adopted even after a failed step: memory follows what the files
         * were meant to hold, and the next open's recovery (the marker is
         * gone first) repairs what a failed step left. */
        ST_ASSERT(log->nsegs == j->n, "segments changed while a truncation ran");
        while (log->nsegs > j->cut + 1) {
            st_segment *s = log->segs[--log->nsegs];
            if (s == log->act.seg) {
                st_chunks_free(&log->act.ch);
                memset(&log->act, 0, sizeof(log->act));
            }
            s->deleted = 1;
            log->stats.segments_deleted++;
            st_segment_unref(s);
        }
        st_segment *s = log->segs[j->cut];
        if (log->act.seg == s)
            st_chunks_free(&log->act.ch);
        else
            s->created_ms = st_now_ms(); /* segment.ms counts from now, as for a recovered segment */
        memset(&log->act, 0, sizeof(log->act));
        log->act.seg = s;
        st_chunks_init(&log->act.ch, log->cfg.chunk_bytes);
        free(log->tail_blk);
        log->tail_blk = NULL;
        log->tail_seg = NULL;
        s->size = j->cut_pos;
        s->next_offset = j->new_end > s->base ? j->new_end : s->base;
        s->sealed = 0;
        s->bytes_since_index = 0;
        st_index_truncate(&s->ix, (uint32_t)j->cut_pos);
        if (s->ix.tn > 0) {
            s->max_ts = s->ix.t[s->ix.tn - 1].ts;
            s->max_ts_offset = s->base + s->ix.t[s->ix.tn - 1].rel;
        } else {
            s->max_ts = -1;
            s->max_ts_offset = -1;
        }
        st_segment_truncate_txn(s, j->new_end);
        st_epochs_truncate(log, j->new_end);
        log->act.written = log->act.synced = j->cut_pos;
        log->act.idx_chunk = (int64_t)(j->cut_pos / log->cfg.chunk_bytes);
        uint64_t blk = ST_ALIGN_DOWN(j->cut_pos);
        if (j->tail && st_log_keep_tail(log, j->tail, (size_t)(j->cut_pos - blk)) < 0 && res == 0)
            res = -ENOMEM;
        log->next_offset = log->written_offset = log->durable_offset = log->hw = j->new_end;
        if (log->log_start > j->new_end)
            log->log_start = j->new_end;
        recompute_max_ts(log);
        if (res == 0) {
            st_pstate_free(&log->ps);
            log->ps = j->ps;
            memset(&j->ps, 0, sizeof(j->ps));
        } else {
            st_pstate_truncate(&log->ps, j->new_end); /* best effort until the next open */
        }
        if (j->snap_removed || log->snap_offset > j->new_end)
            log->snap_offset = -1;
    }
    st_append_cb cb = j->cb;
    void *cb_arg = j->arg;
    int64_t end = log->next_offset;
    free_job(j);
    if (cb)
        cb(cb_arg, (int)res, end);
    st_log_kick_flush(log);
    st_appendq_drain(log);
}

int st_log_truncate(st_log *log, int64_t offset, st_append_cb cb, void *arg)
{
    if (log->closing)
        return ST_E_CLOSED;
    if (offset < log->log_start)
        return ST_E_OUT_OF_RANGE;
    if (log->pend_n || log->flushing || log->truncating || log->cutting || log->old.seg || log->wait_head ||
        log->compacting || log->bg_pending || log->reads_inflight || log->act.written < log->act.seg->size)
        return ST_E_BUSY;
    if (offset >= log->next_offset) {
        if (cb)
            cb(arg, 0, log->next_offset);
        return 0;
    }
    int ci = st_log_segment_index_of(log, offset);
    ST_ASSERT(ci >= 0, "an offset at or above the log start lies in no segment");
    cut_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->log = log;
    j->offset = offset;
    j->cb = cb;
    j->arg = arg;
    j->cut = (size_t)ci;
    j->n = log->nsegs;
    j->chunk_bytes = (uint32_t)log->cfg.chunk_bytes;
    j->dir = strdup(log->dir);
    j->paths = calloc(j->n, sizeof(*j->paths));
    j->bases = calloc(j->n, sizeof(*j->bases));
    j->sizes = calloc(j->n, sizeof(*j->sizes));
    int rc = j->dir && j->paths && j->bases && j->sizes ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        st_segment *s = log->segs[i];
        j->bases[i] = s->base;
        j->sizes[i] = s->size;
        if (!(j->paths[i] = strdup(s->path)))
            rc = -ENOMEM;
    }
    st_segment *cs = log->segs[j->cut];
    j->scan_from = offset > cs->base ? st_index_lookup(&cs->ix, (uint32_t)(offset - cs->base)) : 0;
    /* The replay from the first segment cannot see producers whose batches
     * retention removed: they come from the current state. */
    if (rc == 0)
        rc = st_pstate_seed_before(&j->ps, &log->ps, log->segs[0]->base);
    if (rc < 0) {
        free_job(j);
        return rc;
    }
    /* Nothing at or past the cut is readable from now on. */
    if (log->hw > offset)
        log->hw = offset;
    log->truncating = 1; /* no flush */
    log->cutting = 1;    /* no append, retention or compaction */
    st_log_bg_call(log, cut_fn, j, cut_done);
    return 0;
}

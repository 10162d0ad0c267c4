/*
 * log.c — a partition log's write path: append, group-committed flushes,
 * segment rolls, failure rollback, open/close and the simple getters.
 *
 * Owns: offset assignment, the write buffers of the active (and a just
 * rolled) segment, the flush cycle (at most one write[+fdatasync] in flight
 * per log, covering everything appended before it was issued), the queue of
 * append completions and the rules that turn a completed cycle into acked
 * offsets.
 *
 * Must not: block on the disk outside st_log_open()/st_log_close() (files are
 * created, sealed and removed through st_io's background thread), expose a
 * byte past the acked end (reads stop at the high watermark), or keep an
 * offset that a failed write could not store: on any write or sync error
 * every unacked append fails and the log end goes back to the acked end, so
 * offsets stay dense.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *st_strerror(int rc)
{
    switch (rc) {
    case ST_OK:
        return "ok";
    case ST_E_INVALID_RECORD:
        return "invalid record batch";
    case ST_E_CORRUPT:
        return "record batch CRC mismatch";
    case ST_E_TOO_LARGE:
        return "record batch too large";
    case ST_E_OUT_OF_RANGE:
        return "offset out of range";
    case ST_E_DUPLICATE:
        return "duplicate sequence number";
    case ST_E_OUT_OF_ORDER:
        return "out of order sequence number";
    case ST_E_FENCED:
        return "invalid producer epoch";
    case ST_E_BUSY:
        return "write buffer full";
    case ST_E_CLOSED:
        return "log closed";
    case ST_E_UNSUPPORTED:
        return "unsupported message format";
    case ST_E_STORAGE:
        return "storage error";
    case ST_E_INVALID_TIMESTAMP:
        return "invalid timestamp";
    default:
        return rc < 0 && rc > -4096 ? strerror(-rc) : "unknown storage error";
    }
}

void st_log_config_default(st_log_config *c)
{
    memset(c, 0, sizeof(*c));
    c->segment_bytes = 1ull << 30;
    c->segment_ms = 7ll * 24 * 3600 * 1000;
    c->index_interval_bytes = 4096;
    c->retention_ms = 7ll * 24 * 3600 * 1000;
    c->retention_bytes = -1;
    c->sync_acks = 1;
    c->max_batch_bytes = (1u << 20) + 12;
    c->chunk_bytes = 256u << 10;
    c->max_unflushed_bytes = 8u << 20;
    c->tail_cache_bytes = 4u << 20;
    c->max_read_bytes = 8u << 20;
    c->delete_retention_ms = 24ll * 3600 * 1000;
}

static void sanitize_config(st_log_config *c)
{
    if (c->segment_bytes < ST_BLOCK)
        c->segment_bytes = ST_BLOCK;
    if (c->segment_bytes > INT32_MAX)
        c->segment_bytes = INT32_MAX;
    if (c->chunk_bytes < ST_BLOCK)
        c->chunk_bytes = ST_BLOCK;
    c->chunk_bytes = ST_ALIGN_UP(c->chunk_bytes);
    if (c->max_batch_bytes < KP_BATCH_HEADER_SIZE)
        c->max_batch_bytes = KP_BATCH_HEADER_SIZE;
    if (c->max_unflushed_bytes < c->max_batch_bytes)
        c->max_unflushed_bytes = c->max_batch_bytes;
    if (c->max_read_bytes < 64u << 10)
        c->max_read_bytes = 64u << 10;
    if (c->index_interval_bytes == 0)
        c->index_interval_bytes = 4096;
}

int st_partition_dir(char *buf, size_t cap, const char *log_dir, const char *topic, int32_t partition)
{
    int n = snprintf(buf, cap, "%s/%s-%" PRId32, log_dir, topic, partition);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

st_segment *st_log_active(const st_log *log)
{
    return log->segs[log->nsegs - 1];
}

st_wbuf *st_log_wbuf_of(st_log *log, const st_segment *s)
{
    if (log->act.seg == s)
        return &log->act;
    if (log->old.seg && log->old.seg == s)
        return &log->old;
    return NULL;
}

int st_log_segment_index_of(const st_log *log, int64_t offset)
{
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->segs[mid]->base <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)lo - 1;
}

/* ---- background calls ---------------------------------------------------- */

typedef struct bg_call {
    st_op op;
    st_log *log;
    void *arg;
    void (*done)(st_log *, void *, long);
} bg_call;

static void bg_done(st_op *op)
{
    bg_call *c = op->arg;
    c->log->bg_pending--;
    if (c->done)
        c->done(c->log, c->arg, op->res);
    free(c);
}

static void bg_call_raw(st_log *log, long (*fn)(void *), void *arg, void (*done)(st_log *, void *, long))
{
    bg_call *c = calloc(1, sizeof(*c));
    if (!c) {
        /* Running it inline blocks briefly but loses nothing. */
        long r = fn(arg);
        if (done)
            done(log, arg, r);
        return;
    }
    c->log = log;
    c->arg = arg;
    c->done = done;
    c->op.kind = ST_OP_CALL;
    c->op.fn = fn;
    c->op.fn_arg = arg;
    c->op.cb = bg_done;
    c->op.arg = c;
    log->bg_pending++;
    st_io_submit(log->io, &c->op);
}

/* The first change since a clean open: from now on st_log_close has work
 * to do. The marker file itself stays (recovery CRC-checks what was
 * appended after it, see recovery.c), so no write waits for a fsync. */
static void unmark(st_log *log)
{
    log->marker = 0;
}

void st_log_bg_call(st_log *log, long (*fn)(void *), void *arg, void (*done)(st_log *, void *, long))
{
    unmark(log);
    bg_call_raw(log, fn, arg, done);
}

static long unlink_fn(void *arg)
{
    st_segment *s = arg;
    st_segment_unlink_files(s->path);
    return 0;
}

static void unref_done(st_log *log, void *arg, long res)
{
    (void)log;
    (void)res;
    st_segment_unref(arg);
}

void st_log_remove_segment_at(st_log *log, size_t i)
{
    st_segment *s = log->segs[i];
    memmove(&log->segs[i], &log->segs[i + 1], (log->nsegs - i - 1) * sizeof(*log->segs));
    log->nsegs--;
    s->deleted = 1;
    log->stats.segments_deleted++;
    /* The list's reference moves to the call; reads in flight hold theirs. */
    st_log_bg_call(log, unlink_fn, s, unref_done);
}

/* ---- completions --------------------------------------------------------- */

/* Room for one more completion, so an append can reserve it before it
 * changes the log. */
static int pend_reserve(st_log *log)
{
    if (log->pend_n == log->pend_cap) {
        size_t nc = log->pend_cap ? log->pend_cap * 2 : 64;
        st_pending *np = malloc(nc * sizeof(*np));
        if (!np)
            return -ENOMEM;
        for (size_t i = 0; i < log->pend_n; i++)
            np[i] = log->pend[(log->pend_head + i) % log->pend_cap];
        free(log->pend);
        log->pend = np;
        log->pend_cap = nc;
        log->pend_head = 0;
    }
    return 0;
}

static int pend_push(st_log *log, st_pending e)
{
    if (pend_reserve(log) != 0)
        return -ENOMEM;
    log->pend[(log->pend_head + log->pend_n) % log->pend_cap] = e;
    log->pend_n++;
    return 0;
}

/* Callbacks may append again, so each entry is popped before its call. */
static void fire_pending(st_log *log, int fail_rc)
{
    while (log->pend_n > 0) {
        st_pending e = log->pend[log->pend_head];
        int rc = e.rc;
        if (fail_rc == 0) {
            int64_t limit = e.need_sync ? log->durable_offset : log->hw;
            if (e.end > limit)
                break;
        } else if (e.end > (e.need_sync ? log->durable_offset : log->hw)) {
            rc = fail_rc;
        }
        log->pend_head = (log->pend_head + 1) % log->pend_cap;
        log->pend_n--;
        if (e.cb)
            e.cb(e.arg, rc, e.base);
    }
}

/* ---- flush cycle --------------------------------------------------------- */

static void flush_done(st_op *op);
static void rollback(st_log *log, int err);

/* Creating a segment file, or reopening one the open-file budget closed:
 * both on the background thread; only open_done touches the segment. */
typedef struct open_job {
    st_segment *s;
    int create;
    int fd;
    int direct;
} open_job;

static long open_fn(void *arg)
{
    open_job *j = arg;
    j->fd = st_segment_open_fd(j->s->path, j->create, &j->direct);
    return j->fd < 0 ? j->fd : 0;
}

/* The end of an open (started or not): the slot, the segment, its waiters. */
static void open_finish(st_log *log, st_segment *s, int create, long res, int fd, int direct)
{
    s->opening = 0;
    if (res < 0 && !s->deleted) {
        st_logf(ST_LL_ERROR, "%s %s: %s", create ? "creating" : "reopening", s->path, strerror((int)-res));
        log->stats.io_errors++;
        s->open_err = (int)res;
    }
    if (res == 0) {
        s->fd = fd;
        s->direct = direct;
        s->created = 1;
        if (!create) {
            st_fdcache *c = st_fdcache_of(log->io);
            if (c)
                c->reopens++;
        }
    }
    st_fdc_opened(log->io, s);
    /* Waiters run before the flush is kicked: a read queued first goes first. */
    st_fd_waiter *w = s->open_waiters;
    s->open_waiters = NULL;
    while (w) {
        st_fd_waiter *next = w->next;
        w->fn(w->arg, res < 0 ? (int)res : 0);
        free(w);
        w = next;
    }
    /* The flush starts (and marks the file busy) before the open's
     * reference goes: dropping it first would let a waiting open close this
     * file again before it was used, forever. */
    if (!s->deleted)
        st_log_kick_flush(log);
    st_segment_unref(s);
}

static void open_done(st_log *log, void *arg, long res)
{
    open_job *j = arg;
    st_segment *s = j->s;
    int create = j->create, fd = j->fd, direct = j->direct;
    free(j);
    if (res < 0 && fd >= 0)
        close(fd);
    open_finish(log, s, create, res, res < 0 ? -1 : fd, direct);
}

/* A slot of the open-file budget is reserved for s (st_fdc_reserve). */
void st_log_start_open(st_log *log, st_segment *s)
{
    s->refs++; /* the open's own, dropped by open_finish */
    open_job *j = s->deleted ? NULL : calloc(1, sizeof(*j));
    if (!j) {
        open_finish(log, s, !s->created, s->deleted ? -ENOENT : -ENOMEM, -1, 0);
        return;
    }
    j->s = s;
    j->create = !s->created;
    j->fd = -1;
    /* Reopening changes nothing on disk. */
    if (j->create)
        st_log_bg_call(log, open_fn, j, open_done);
    else
        bg_call_raw(log, open_fn, j, open_done);
}

static int submit_open(st_log *log, st_segment *s)
{
    if (s->opening)
        return 0;
    s->opening = 1;
    s->open_err = 0;
    if (st_fdc_reserve(log->io, log, s))
        st_log_start_open(log, s);
    return 0;
}

int st_log_segment_need_fd(st_log *log, st_segment *s, void (*fn)(void *arg, int rc), void *arg)
{
    if (s->fd >= 0) {
        st_fdc_touch(s);
        return 0;
    }
    st_fd_waiter *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    if (!s->opening) {
        int rc = submit_open(log, s);
        if (rc < 0) {
            free(w);
            return rc;
        }
    }
    w->fn = fn;
    w->arg = arg;
    w->next = NULL;
    st_fd_waiter **pp = &s->open_waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    return 1;
}

static long seal_fn(void *arg)
{
    return st_segment_seal_files(arg);
}

static void seal_done(st_log *log, void *arg, long res)
{
    st_segment *s = arg;
    if (res < 0)
        st_logf(ST_LL_WARN, "sealing %s: %s (recovery will redo it)", s->path, strerror((int)-res));
    else
        s->sealed = 1;
    (void)log;
    st_segment_unref(s);
}

static void submit_roll_snapshot(st_log *log);

static void finish_old(st_log *log)
{
    st_segment *s = log->old.seg;
    st_chunks_free(&log->old.ch);
    memset(&log->old, 0, sizeof(log->old));
    s->refs++;
    st_log_bg_call(log, seal_fn, s, seal_done);
    submit_roll_snapshot(log); /* the rolled segment is durable now */
}

static int want_sync(const st_log *log, const st_wbuf *w)
{
    if (log->cfg.sync_acks || w == &log->old)
        return 1;
    if (log->durable_offset < log->sync_req_end)
        return 1;
    if (log->closing)
        return 1;
    return log->cfg.flush_messages > 0 && log->msgs_since_sync >= log->cfg.flush_messages;
}

void st_log_kick_flush(st_log *log)
{
    if (log->flushing || log->truncating)
        return;
    st_wbuf *w = log->old.seg ? &log->old : &log->act;
    st_segment *s = w->seg;
    if (s->fd < 0 && s->open_err) {
        /* Nothing of this segment can be written: fail what waits for it. */
        int err = s->open_err;
        s->open_err = 0;
        rollback(log, err);
        return;
    }
    int need_write = w->written < s->size;
    int need_sync = w->synced < s->size && want_sync(log, w);
    if (!need_write && !need_sync) {
        if (w == &log->old) {
            finish_old(log);
            st_log_kick_flush(log);
        }
        return;
    }
    if (s->fd < 0) {
        /* Being created, or closed by the open-file budget: open_done kicks
         * the flush again. */
        if (!s->opening)
            submit_open(log, s);
        return;
    }
    st_fdc_touch(s);
    st_op *op = &log->flush_op;
    memset(op, 0, sizeof(*op));
    op->fd = s->fd;
    op->cb = flush_done;
    op->arg = log;
    if (need_write) {
        uint64_t from = ST_ALIGN_DOWN(w->written);
        uint64_t full = ST_ALIGN_DOWN(s->size);
        int need = (int)((full - from) / w->ch.chunk) + 3;
        if (need > log->iovmax) {
            struct iovec *ni = realloc(log->iov, (size_t)need * sizeof(*ni));
            if (!ni)
                return; /* retried on the next append or tick */
            log->iov = ni;
            log->iovmax = need;
        }
        if (!log->bounce) {
            void *b = NULL;
            if (posix_memalign(&b, ST_BLOCK, ST_BLOCK) != 0)
                return; /* retried on the next append or tick */
            log->bounce = b;
        }
        int n = st_chunks_iov(&w->ch, from, full, log->iov, log->iovmax);
        if (full < s->size) {
            /* The partial tail block goes through a private copy so later
             * appends never modify memory a write in flight reads. */
            size_t tail = (size_t)(s->size - full);
            st_chunks_read(&w->ch, full, log->bounce, tail);
            memset(log->bounce + tail, 0, ST_BLOCK - tail);
            log->iov[n].iov_base = log->bounce;
            log->iov[n].iov_len = ST_BLOCK;
            n++;
        }
        op->kind = ST_OP_WRITE;
        op->iov = log->iov;
        op->iovcnt = n;
        op->off = (off_t)from;
        op->sync = need_sync;
    } else {
        op->kind = ST_OP_SYNC;
        op->sync = 1;
    }
    log->flush_seg = s;
    log->flush_to_pos = s->size;
    log->flush_to_offset = s->next_offset;
    log->flushing = 1;
    s->io_busy = 1; /* the budget must not close fd under the write */
    st_io_submit(log->io, op);
}

/* Forget everything past the acked end after a failed write or sync. */
typedef struct trunc_job {
    st_segment *s;
    uint64_t size;
} trunc_job;

static long trunc_fn(void *arg)
{
    trunc_job *j = arg;
    if (ftruncate(j->s->fd, (off_t)j->size) != 0 || fsync(j->s->fd) != 0)
        return -errno;
    return 0;
}

static void trunc_done(st_log *log, void *arg, long res)
{
    trunc_job *j = arg;
    if (res < 0)
        st_logf(ST_LL_WARN, "truncating %s after a failed write: %s", j->s->path, strerror((int)-res));
    log->truncating = 0;
    st_segment_unref(j->s);
    free(j);
    st_log_kick_flush(log);
    st_appendq_drain(log);
}

static void free_snap_job(struct snap_job *j);

static void rollback(st_log *log, int err)
{
    if (log->old.seg) {
        /* The snapshot taken at the roll claims the rolled segment's end,
         * which is being cut. */
        free_snap_job(log->roll_snap);
        log->roll_snap = NULL;
        /* The active segment holds no acked byte: drop it entirely. */
        st_chunks_free(&log->act.ch);
        log->act = log->old;
        memset(&log->old, 0, sizeof(log->old));
        st_log_remove_segment_at(log, log->nsegs - 1);
    }
    st_wbuf *w = &log->act;
    st_segment *s = w->seg;
    uint64_t keep = log->cfg.sync_acks ? w->synced : w->written;
    s->size = keep;
    w->written = keep;
    if (w->synced > keep)
        w->synced = keep;
    s->next_offset = log->hw > s->base ? log->hw : s->base;
    st_index_truncate(&s->ix, (uint32_t)keep);
    s->bytes_since_index = 0;
    log->next_offset = s->next_offset;
    if (log->written_offset > log->next_offset)
        log->written_offset = log->next_offset;
    if (log->durable_offset > log->next_offset)
        log->durable_offset = log->next_offset;
    log->msgs_since_sync = 0;
    log->sync_req_end = 0;
    st_pstate_truncate(&log->ps, log->next_offset);
    st_segment_truncate_txn(s, log->next_offset);
    st_epochs_truncate(log, log->next_offset);
    /* Part of the failed write may have reached the file: cut it off before
     * the next write, or a crash could resurrect batches that were reported
     * as failed. Flushes wait for this. */
    trunc_job *j = s->fd >= 0 ? malloc(sizeof(*j)) : NULL;
    if (j) {
        j->s = s;
        j->size = keep;
        s->refs++;
        log->truncating = 1;
        st_log_bg_call(log, trunc_fn, j, trunc_done);
    }
    fire_pending(log, err);
    st_appendq_drain(log); /* the buffer was emptied: waiting appends may fit */
}

static void release_chunks(st_log *log, st_wbuf *w)
{
    uint64_t hard = ST_ALIGN_DOWN(w->written);
    uint64_t soft = w->written > log->cfg.tail_cache_bytes ? w->written - log->cfg.tail_cache_bytes : 0;
    st_chunks_release_below(&w->ch, soft < hard ? soft : hard);
}

static void flush_done(st_op *op)
{
    st_log *log = op->arg;
    st_wbuf *w = st_log_wbuf_of(log, log->flush_seg);
    log->flushing = 0;
    log->flush_seg->io_busy = 0;
    st_fdc_pump(log->flush_seg->fdc); /* its file may be closed for a waiting open */
    /* Only the first dirty segment is flushed, and it stays listed until
     * its flush completes. */
    ST_ASSERT(w != NULL, "flush completed for a segment without a write buffer");
    if (op->res < 0) {
        log->stats.io_errors++;
        st_logf(ST_LL_ERROR, "%s %s: %s", op->kind == ST_OP_SYNC ? "fdatasync" : "write", w->seg->path,
                strerror((int)-op->res));
        rollback(log, (int)op->res);
        return;
    }
    if (op->kind == ST_OP_WRITE) {
        log->stats.writes++;
        log->stats.bytes_written += (uint64_t)op->res;
        w->written = log->flush_to_pos;
        if (log->written_offset < log->flush_to_offset)
            log->written_offset = log->flush_to_offset;
    }
    if (op->sync) {
        log->stats.syncs++;
        w->synced = log->flush_to_pos;
        if (log->durable_offset < log->flush_to_offset)
            log->durable_offset = log->flush_to_offset;
        log->msgs_since_sync = 0;
        log->last_sync_ms = st_now_ms();
    }
    log->hw = log->cfg.sync_acks ? log->durable_offset : log->written_offset;
    st_pstate_settle(&log->ps, log->hw); /* acked markers release the LSO */
    if (w == &log->act)
        release_chunks(log, w);
    fire_pending(log, 0);
    st_log_kick_flush(log);
    st_appendq_drain(log); /* bytes left the buffer, a roll may have finished */
}

/* ---- append -------------------------------------------------------------- */

static int map_kp_error(int rc)
{
    switch (rc) {
    case KP_E_CRC:
        return ST_E_CORRUPT;
    case KP_E_UNSUPPORTED:
        return ST_E_UNSUPPORTED;
    case KP_E_TOO_LARGE:
        return ST_E_TOO_LARGE;
    default:
        return ST_E_INVALID_RECORD;
    }
}

static void snapshot_done(st_log *log, void *arg, long res)
{
    (void)log;
    if (res < 0)
        st_logf(ST_LL_WARN, "producer snapshot: %s", strerror((int)-res));
    free(arg);
}

typedef struct snap_job {
    char *dir;
    uint8_t *buf;
    size_t len;
    /* The rolled segment's .txnindex, written (durably) before the
     * snapshot: recovery trusts the .txnindex of every segment below the
     * snapshot's offset and replays the rest. */
    char *seg_path;
    uint8_t *txn;
    size_t txn_len;
} snap_job;

static void free_snap_job(snap_job *j)
{
    if (!j)
        return;
    free(j->buf);
    free(j->dir);
    free(j->seg_path);
    free(j->txn);
    free(j);
}

static long snapshot_fn(void *arg)
{
    snap_job *j = arg;
    long r = st_txnindex_write(j->seg_path, j->txn, j->txn_len, 1);
    if (r == 0)
        r = st_write_file_atomic(j->dir, "producer.snapshot", j->buf, j->len);
    free(j->buf);
    free(j->dir);
    free(j->seg_path);
    free(j->txn);
    j->buf = j->txn = NULL;
    j->dir = j->seg_path = NULL;
    return r;
}

/* The state at the roll (offset = the new segment's base) and the rolled
 * segment's aborted transactions; written by submit_roll_snapshot once that
 * segment is durable. */
static void take_roll_snapshot(st_log *log, const st_segment *rolled)
{
    snap_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->dir = strdup(log->dir);
    j->seg_path = strdup(rolled->path);
    j->txn = st_txnindex_encode(rolled->txn, rolled->ntxn);
    j->txn_len = rolled->ntxn * ST_TXN_ENTRY;
    if (!j->dir || !j->seg_path || !j->txn ||
        st_pstate_serialize(&log->ps, log->next_offset, &j->buf, &j->len) != 0) {
        free_snap_job(j);
        return;
    }
    ST_ASSERT(log->roll_snap == NULL, "a second roll before the first one's snapshot was written");
    log->roll_snap = j;
}

static void submit_roll_snapshot(st_log *log)
{
    snap_job *j = log->roll_snap;
    if (!j)
        return;
    log->roll_snap = NULL;
    st_log_bg_call(log, snapshot_fn, j, snapshot_done);
}

static int roll(st_log *log, int64_t now)
{
    (void)now;
    if (log->old.seg)
        return ST_E_BUSY; /* the previous roll is still being flushed */
    free(log->tail_blk);  /* the rolled segment is complete on disk */
    log->tail_blk = NULL;
    log->tail_seg = NULL;
    if (log->nsegs == log->segcap) {
        size_t nc = log->segcap * 2;
        st_segment **ns = realloc(log->segs, nc * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        log->segs = ns;
        log->segcap = nc;
    }
    st_segment *s = st_segment_new(log->dir, log->next_offset);
    if (!s)
        return -ENOMEM;
    take_roll_snapshot(log, log->act.seg);
    log->segs[log->nsegs++] = s;
    log->old = log->act;
    memset(&log->act, 0, sizeof(log->act));
    log->act.seg = s;
    log->act.idx_chunk = -1;
    st_chunks_init(&log->act.ch, log->cfg.chunk_bytes);
    submit_open(log, s);
    return 0;
}

/* Validates and appends one batch; no callback runs and no flush starts here
 * (the callers do both once they have told their own caller), so an
 * "accepted" report always precedes the completion of the same batch. */
static int append_one(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg,
                      int64_t *base_offset, int replica)
{
    if (log->closing)
        return ST_E_CLOSED;
    if (log->cutting)
        return ST_E_BUSY; /* ordered appends wait for the truncation, others retry */
    /* max.message.bytes is the leader's check: a follower keeps whatever
     * its leader accepted (Kafka's followers do not apply it either). */
    if (!replica && len > log->cfg.max_batch_bytes)
        return ST_E_TOO_LARGE;
    kp_batch b;
    int rc = kp_batch_validate(batch, len, &b);
    if (rc < 0)
        return map_kp_error(rc);
    if (b.size != len)
        return ST_E_INVALID_RECORD;
    kp_batch_header h = b.h;

    /* A control batch of a producer is a transaction marker (the metadata
     * log's own control records carry no producer). */
    st_marker mk, *m = NULL;
    if ((h.attributes & KP_ATTR_CONTROL) && h.producer_id >= 0) {
        if (kp_txn_marker_parse(&b, &mk.type, &mk.coord_epoch) < 0)
            return ST_E_INVALID_RECORD;
        m = &mk;
    }

    /* A follower keeps its leader's offsets, so its log continues where the
     * batch starts: at its end, or past it where compaction on the leader
     * left a gap (segments and recovery allow gaps, as compaction output
     * has them); the leader checked the producer's sequence (the follower's
     * state follows it through st_pstate_update below). */
    if (replica && h.base_offset < log->next_offset)
        return ST_E_OUT_OF_RANGE;
    int64_t dup = -1;
    rc = replica ? 0 : st_pstate_check(&log->ps, &h, m, &dup);
    if (rc == ST_E_DUPLICATE) {
        st_pending e = {dup + h.last_offset_delta + 1, dup, ST_E_DUPLICATE, 0, cb, arg};
        if (pend_push(log, e) != 0)
            return -ENOMEM;
        *base_offset = dup;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (m && m->type == KP_CONTROL_ABORT) {
        size_t kept = 0;
        for (size_t i = 0; i < log->nsegs; i++)
            kept += log->segs[i]->ntxn;
        if (kept >= ST_MAX_ABORTED_TXNS)
            return ST_E_TXN_LIMIT;
    }
    if (pend_reserve(log) != 0)
        return -ENOMEM;
    /* Transaction changes must not fail once the batch is in the log. */
    if (st_pstate_reserve(&log->ps) != 0)
        return -ENOMEM;

    uint64_t unflushed = log->act.seg->size - log->act.written;
    if (log->old.seg)
        unflushed += log->old.seg->size - log->old.written;
    if (unflushed > 0 && unflushed + len > log->cfg.max_unflushed_bytes)
        return ST_E_BUSY;

    int64_t now = st_now_ms();
    st_segment *s = log->act.seg;
    int64_t first = replica ? h.base_offset : log->next_offset;
    int64_t rel_end = first + h.last_offset_delta - s->base;
    if (s->size > 0 &&
        (s->size + len > log->cfg.segment_bytes ||
         (log->cfg.segment_ms > 0 && now - s->created_ms >= log->cfg.segment_ms) || rel_end >= INT32_MAX)) {
        int64_t end = log->next_offset;
        log->next_offset = first; /* a gap: the new segment starts at the batch */
        rc = roll(log, now);
        if (rc < 0) {
            log->next_offset = end;
            return rc;
        }
        s = log->act.seg;
    }
    if (m && m->type == KP_CONTROL_ABORT && st_segment_reserve_txn(s) != 0)
        return -ENOMEM;

    unmark(log);
    if (log->tail_blk && log->tail_seg == s) {
        /* Back from idle: the partial block the next flush rewrites. */
        uint64_t blk = ST_ALIGN_DOWN(s->size);
        rc = st_chunks_write(&log->act.ch, blk, log->tail_blk, (size_t)(s->size - blk));
        if (rc < 0)
            return rc;
        free(log->tail_blk);
        log->tail_blk = NULL;
        log->tail_seg = NULL;
    }
    log->last_append_ms = now;
    int64_t base = first;
    uint64_t pos = s->size;
    uint8_t head[8];
    kp_put_be64(head, (uint64_t)base);
    /* Header first: chunks only grow upwards from the first one written. */
    rc = st_chunks_write(&log->act.ch, pos, head, 8);
    if (rc < 0)
        return rc;
    /* A batch already stamped LogAppendTime was stamped by the broker just
     * before (it answers with that time); a producer's is refused earlier. */
    if (!replica && log->cfg.log_append_time && !(h.attributes & KP_ATTR_LOG_APPEND_TIME)) {
        uint8_t *tmp = malloc(len);
        if (!tmp)
            return -ENOMEM;
        memcpy(tmp, batch, len);
        kp_batch_set_max_timestamp(tmp, len, now, 1);
        rc = st_chunks_write(&log->act.ch, pos + 8, tmp + 8, len - 8);
        free(tmp);
        h.max_timestamp = now;
    } else {
        rc = st_chunks_write(&log->act.ch, pos + 8, batch + 8, len - 8);
    }
    if (rc < 0)
        return rc;

    if (!replica && log->stamp_epoch >= 0 && h.partition_leader_epoch != log->stamp_epoch) {
        uint8_t ep[4];
        kp_put_be32(ep, (uint32_t)log->stamp_epoch);
        rc = st_chunks_write(&log->act.ch, pos + 12, ep, 4); /* not covered by the CRC */
        if (rc < 0)
            return rc;
        h.partition_leader_epoch = log->stamp_epoch;
    }
    /* Only epochs this log's leader stamped (or a replica copied from its
     * leader) enter the cache: a client's own partitionLeaderEpoch on an
     * unstamped log would grow it without bound. */
    if ((replica || log->stamp_epoch >= 0) && st_epochs_note(log, h.partition_leader_epoch, base) < 0)
        return -ENOMEM;
    if (s->size == 0)
        s->created_ms = now;
    h.base_offset = base;
    int64_t chunk_no = (int64_t)(pos / log->cfg.chunk_bytes);
    int force = chunk_no > log->act.idx_chunk;
    if (force)
        log->act.idx_chunk = chunk_no;
    st_segment_note_batch(s, &h, (uint32_t)pos, (uint32_t)len, log->cfg.index_interval_bytes, force);
    log->next_offset = s->next_offset;
    if (h.max_timestamp > log->max_ts) {
        log->max_ts = h.max_timestamp;
        log->max_ts_offset = base + h.last_offset_delta;
    }
    st_aborted_txn ab;
    if (st_pstate_update(&log->ps, &h, base, m, 1, &ab) == 1) {
        int added = st_segment_add_txn(s, &ab);
        ST_ASSERT(added == 0, "aborted-transaction slot reserved before the log changed");
    }
    st_pending e = {log->next_offset, base, 0, 0, cb, arg};
    int pushed = pend_push(log, e);
    ST_ASSERT(pushed == 0, "append completion slot reserved before the log changed");
    log->msgs_since_sync += h.record_count > 0 ? h.record_count : 1;
    log->stats.appends++;
    *base_offset = base;
    return 0;
}

int st_log_append_one(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg,
                      int64_t *base_offset)
{
    return append_one(log, batch, len, cb, arg, base_offset, 0);
}

int st_log_append_replica(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg)
{
    if (log->closing)
        return ST_E_CLOSED;
    if (log->wait_head)
        return ST_E_BUSY;
    int64_t base = -1;
    int rc = append_one(log, batch, len, cb, arg, &base, 1);
    if (rc == 0)
        st_log_after_append(log);
    return rc;
}

void st_log_after_append(st_log *log)
{
    fire_pending(log, 0); /* a duplicate whose original is acked completes now */
    st_log_kick_flush(log);
}

int st_log_append(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg,
                  int64_t *base_offset)
{
    if (log->closing)
        return ST_E_CLOSED;
    if (log->wait_head)
        return ST_E_BUSY; /* ordered appends are waiting: nothing overtakes them */
    int rc = st_log_append_one(log, batch, len, cb, arg, base_offset);
    if (rc == 0)
        st_log_after_append(log);
    return rc;
}

int st_log_flush(st_log *log, st_append_cb cb, void *arg)
{
    st_pending e = {log->next_offset, log->next_offset, 0, 1, cb, arg};
    if (pend_push(log, e) != 0)
        return -ENOMEM;
    log->sync_req_end = log->next_offset;
    st_log_kick_flush(log);
    fire_pending(log, 0);
    return 0;
}

/* ---- idle memory ---------------------------------------------------------- */

int st_log_keep_tail(st_log *log, const uint8_t *blk, size_t len)
{
    if (!log->tail_blk && !(log->tail_blk = malloc(ST_BLOCK)))
        return -ENOMEM;
    memcpy(log->tail_blk, blk, len);
    log->tail_seg = log->act.seg;
    return 0;
}

void st_log_release_idle(st_log *log, int64_t now_ms, int64_t idle_ms)
{
    st_wbuf *w = &log->act;
    st_segment *s = w->seg;
    if (log->closing || log->flushing || log->truncating || log->old.seg || log->reads_inflight ||
        log->pend_n || w->written < s->size || now_ms - log->last_append_ms < idle_ms)
        return;
    if (w->ch.n || w->ch.nspare) {
        uint64_t blk = ST_ALIGN_DOWN(s->size);
        if (blk < s->size) {
            size_t contig = 0;
            if (!st_chunks_at(&w->ch, blk, &contig))
                return; /* not held (cannot happen: the flush keeps it), keep everything */
            uint8_t tmp[ST_BLOCK];
            st_chunks_read(&w->ch, blk, tmp, (size_t)(s->size - blk));
            if (st_log_keep_tail(log, tmp, (size_t)(s->size - blk)) < 0)
                return;
        }
        st_chunks_free(&w->ch);
    }
    free(log->bounce);
    log->bounce = NULL;
    free(log->iov);
    log->iov = NULL;
    log->iovmax = 0;
    free(log->pend);
    log->pend = NULL;
    log->pend_cap = log->pend_head = 0;
}

/* ---- leader epochs ------------------------------------------------------ */

int st_epochs_note(st_log *log, int32_t epoch, int64_t base)
{
    if (epoch < 0 || (log->nepochs && epoch <= log->epochs[log->nepochs - 1].epoch))
        return 0; /* an older epoch after a newer one is ignored, as Kafka's cache does */
    void *p = log->epochs;
    if (st_grow(&p, &log->epochcap, log->nepochs + 1, sizeof(st_epoch_start), 4) != 0)
        return -ENOMEM;
    log->epochs = p;
    log->epochs[log->nepochs++] = (st_epoch_start){epoch, base};
    return 0;
}

void st_epochs_truncate(st_log *log, int64_t end)
{
    while (log->nepochs && log->epochs[log->nepochs - 1].start >= end)
        log->nepochs--;
}

void st_log_set_leader_epoch(st_log *log, int32_t epoch)
{
    log->stamp_epoch = epoch;
}

int32_t st_log_latest_epoch(const st_log *log)
{
    return log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1;
}

void st_log_epoch_end(const st_log *log, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    *out_epoch = -1;
    *out_end = -1;
    if (epoch < 0 || log->nepochs == 0)
        return;
    if (epoch == log->epochs[log->nepochs - 1].epoch) {
        *out_epoch = epoch;
        *out_end = log->next_offset;
        return;
    }
    size_t hi = 0; /* the first epoch above the requested one */
    while (hi < log->nepochs && log->epochs[hi].epoch <= epoch)
        hi++;
    if (hi == log->nepochs)
        return;
    *out_epoch = hi > 0 ? log->epochs[hi - 1].epoch : epoch;
    *out_end = log->epochs[hi].start;
}

/* ---- getters ------------------------------------------------------------- */

int64_t st_log_start_offset(const st_log *log)
{
    return log->log_start;
}
int64_t st_log_end_offset(const st_log *log)
{
    return log->next_offset;
}
int64_t st_log_high_watermark(const st_log *log)
{
    return log->hw;
}
unsigned st_log_segment_count(const st_log *log)
{
    return (unsigned)log->nsegs;
}

int64_t st_log_size_bytes(const st_log *log)
{
    int64_t n = 0;
    for (size_t i = 0; i < log->nsegs; i++)
        n += (int64_t)log->segs[i]->size;
    return n;
}

int64_t st_log_last_stable_offset(const st_log *log)
{
    int64_t lso = log->hw;
    int64_t first = st_pstate_first_unstable(&log->ps);
    if (first >= 0) {
        /* Kafka: a transaction whose start retention removed holds the LSO
         * at the log start, not below it. */
        if (first < log->log_start)
            first = log->log_start;
        if (first < lso)
            lso = first;
    }
    ST_ASSERT(lso <= log->hw && lso >= log->log_start,
              "last stable offset outside [log start, high watermark]");
    return lso;
}

size_t st_log_aborted_txns(st_log *log, int64_t from_offset, int64_t upper_offset, st_aborted_txn *out,
                           size_t max)
{
    /* An entry lives in its marker's segment, and markers come after the
     * data they end: entries with last >= from start in from's segment. */
    int i = st_log_segment_index_of(log, from_offset);
    size_t n = 0;
    for (size_t k = i < 0 ? 0 : (size_t)i; k < log->nsegs; k++) {
        st_segment *s = log->segs[k];
        size_t lo = 0, hi = s->ntxn;
        while (lo < hi) { /* first entry with last >= from */
            size_t mid = lo + (hi - lo) / 2;
            if (s->txn[mid].last_offset < from_offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t j = lo; j < s->ntxn; j++) {
            const st_aborted_txn *t = &s->txn[j];
            if (t->first_offset < upper_offset) {
                if (n < max)
                    out[n] = *t;
                n++;
            }
            /* Kafka's stop: every transaction aborted later began at or
             * after the LSO this one recorded. */
            if (t->last_stable_offset >= upper_offset)
                return n;
        }
    }
    return n;
}

size_t st_log_producers(const st_log *log, st_producer_info *out, size_t max)
{
    return st_pstate_list(&log->ps, out, max);
}

void st_log_get_stats(const st_log *log, st_log_stats *out)
{
    *out = log->stats;
    out->direct_io = log->act.seg->direct;
    size_t m = log->act.ch.allocated + log->old.ch.allocated + st_pstate_memory(&log->ps) +
               log->pend_cap * sizeof(st_pending) + (log->bounce ? ST_BLOCK : 0) +
               (log->tail_blk ? ST_BLOCK : 0);
    for (size_t i = 0; i < log->nsegs; i++)
        m += st_index_memory(&log->segs[i]->ix) + sizeof(st_segment) +
             log->segs[i]->txncap * sizeof(st_aborted_txn);
    out->waiting_bytes = log->wait_bytes;
    out->memory_bytes = m + log->wait_bytes;
}

void st_log_set_config(st_log *log, const st_log_config *cfg)
{
    size_t chunk = log->cfg.chunk_bytes;
    int epochs = log->cfg.leader_epochs;
    log->cfg = *cfg;
    sanitize_config(&log->cfg);
    log->cfg.chunk_bytes = chunk;    /* live buffers keep their geometry */
    log->cfg.leader_epochs = epochs; /* decided at open, where the cache is built */
}

/* ---- open / close -------------------------------------------------------- */

static void free_log(st_log *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        st_segment_unref(log->segs[i]);
    st_chunks_free(&log->act.ch);
    st_chunks_free(&log->old.ch);
    st_pstate_free(&log->ps);
    free_snap_job(log->roll_snap);
    free(log->segs);
    free(log->pend);
    free(log->iov);
    free(log->bounce);
    free(log->tail_blk);
    free(log->epochs);
    free(log->dir);
    free(log);
}

int st_log_open(st_io *io, const char *dir, const st_log_config *cfg, st_log **out)
{
    st_log *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    log->io = io;
    if (cfg)
        log->cfg = *cfg;
    else
        st_log_config_default(&log->cfg);
    sanitize_config(&log->cfg);
    log->dir = strdup(dir);
    if (!log->dir) {
        free_log(log);
        return -ENOMEM;
    }
    log->max_ts = -1;
    log->max_ts_offset = -1;
    log->snap_offset = -1;
    log->stamp_epoch = -1;
    st_chunks_init(&log->act.ch, log->cfg.chunk_bytes);
    st_chunks_init(&log->old.ch, log->cfg.chunk_bytes);
    log->act.idx_chunk = -1;
    int rc = st_recover(log);
    if (rc < 0) {
        free_log(log);
        return rc;
    }
    log->last_sync_ms = st_now_ms();
    log->last_append_ms = log->last_sync_ms;
    /* Recovery opened every segment; beyond the budget, the least recently
     * used (this log's older segments first) are closed again. */
    for (size_t i = 0; i < log->nsegs; i++)
        st_fdc_add(io, log->segs[i]);
    *out = log;
    return 0;
}

/* Everything a clean close does but the marker: drains the log, seals the
 * active segment, writes the producer snapshot. durable = 0 leaves the
 * fsyncs to the caller's syncfs (st_log_close_all). Returns 1 when the log
 * is unchanged since a clean open (its files, marker included, are final),
 * 0 when the marker may now be written, or a negative error. */
static int close_drain(st_log *log)
{
    log->closing = 1;
    st_appendq_fail_all(log, ST_E_CLOSED); /* never accepted: the producer may retry them in order */
    int rc = 0;
    for (;;) {
        st_log_kick_flush(log);
        if (!log->flushing && !log->old.seg && log->reads_inflight == 0 && log->bg_pending == 0 &&
            log->act.synced >= log->act.seg->size)
            break;
        /* The budget may make this log's open wait for a slot that only
         * another log's completion frees: keep the shard's queue moving. */
        st_fdc_pump(st_fdcache_of(log->io));
        int r = st_io_wait(log->io, 100);
        if (r < 0) {
            rc = r;
            break;
        }
    }
    fire_pending(log, ST_E_CLOSED);
    if (rc == 0 && log->marker == 1)
        return 1;
    return rc;
}

int st_log_drain(st_log *log)
{
    int rc = close_drain(log);
    return rc < 0 ? rc : 0;
}

/* The files of a drained log (no st_io use: may run on any thread). */
static int close_files(st_log *log, int durable)
{
    int rc = 0;
    {
        st_segment *s = log->act.seg;
        if (durable && s->fd < 0 && s->created)
            rc = st_segment_open_file(s, 0); /* closed by the budget; blocking is fine here */
        if (rc == 0 && (s->fd >= 0 || s->created)) {
            rc = st_segment_seal_files(s);
            if (rc == 0 && durable && fsync(s->fd) != 0)
                rc = -errno;
        }
        /* Before the snapshot, which vouches for the .txnindex of every
         * segment below its offset. Always synced: unlike the snapshot it
         * carries no checksum, and it exists only where aborts happened. */
        uint8_t *txn = st_txnindex_encode(s->txn, s->ntxn);
        if (rc == 0)
            rc = txn ? st_txnindex_write(s->path, txn, s->ntxn * ST_TXN_ENTRY, 1) : -ENOMEM;
        free(txn);
        /* A snapshot at the log end is there already, or an empty log with
         * no producers needs none (the replay from its start is empty). */
        int need = log->snap_offset != log->next_offset &&
                   !(log->snap_offset < 0 && log->ps.count == 0 && log->next_offset == log->segs[0]->base);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (rc == 0 && need)
            rc = st_pstate_serialize(&log->ps, log->next_offset, &buf, &len);
        if (rc == 0 && need)
            rc = durable ? st_write_file_atomic(log->dir, "producer.snapshot", buf, len)
                         : st_write_file_nosync(log->dir, "producer.snapshot", buf, len);
        free(buf);
    }
    return rc;
}

static int close_prepare(st_log *log, int durable)
{
    int rc = close_drain(log);
    return rc == 0 ? close_files(log, durable) : rc;
}

int st_log_close(st_log *log)
{
    int rc = close_prepare(log, 1);
    /* Only a log whose every file is final may skip the recovery scan. */
    if (rc == 0)
        rc = st_write_file_atomic(log->dir, "clean-shutdown", "1", 1);
    free_log(log);
    return rc < 0 ? rc : 0;
}

/* close_files of many logs at once: sealing truncates each active segment
 * (ext4 reads bitmap blocks synchronously to free its padding block) and
 * writes small files, all waiting on the disk one at a time; a few threads
 * overlap those waits. */
#define CLOSE_THREADS 8

typedef struct close_job {
    st_log **logs;
    int *rcs;
    size_t n;
    size_t next; /* atomic */
} close_job;

static void *close_worker(void *arg)
{
    close_job *j = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->n)
            return NULL;
        j->rcs[i] = close_files(j->logs[i], 0);
    }
}

int st_log_close_all(st_log **logs, size_t n)
{
    /* Per log, st_log_close pays five fsyncs (segment, snapshot and marker
     * files, directory twice): minutes for 100,000 partitions. Here every
     * log writes its files unsynced (in parallel), one syncfs() makes them
     * durable, then the markers are written and a second syncfs() makes
     * those durable: no marker can reach the disk before the files it
     * vouches for. */
    st_log **closing = calloc(n ? n : 1, sizeof(*closing));
    int *rcs = calloc(n ? n : 1, sizeof(*rcs));
    if (!closing || !rcs) {
        free(closing);
        free(rcs);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
            int r = st_log_close(logs[i]);
            if (r < 0 && rc == 0)
                rc = r;
        }
        return rc;
    }
    int rc = 0;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        int r = close_drain(logs[i]); /* on the caller's thread: it drives the logs' st_io */
        if (r == 0)
            closing[nt++] = logs[i];
        else
            free_log(logs[i]); /* 1: unchanged, its files are final */
        if (r < 0 && rc == 0)
            rc = r;
    }
    close_job job = {closing, rcs, nt, 0};
    pthread_t th[CLOSE_THREADS];
    int started = 0;
    for (int t = 0; t < CLOSE_THREADS && (size_t)t < nt; t++)
        if (pthread_create(&th[started], NULL, close_worker, &job) == 0)
            started++;
    close_worker(&job); /* also here: works even if no thread could start */
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    char **dirs = calloc(nt ? nt : 1, sizeof(*dirs));
    size_t nd = 0;
    for (size_t i = 0; i < nt; i++) {
        if (rcs[i] == 0 && dirs && (dirs[nd] = strdup(closing[i]->dir)) != NULL)
            nd++;
        else if (rcs[i] < 0 && rc == 0)
            rc = rcs[i];
        free_log(closing[i]);
    }
    free(closing);
    free(rcs);
    if (nd > 0) {
        int fd = open(dirs[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = fd < 0 || syncfs(fd) != 0 ? -errno : 0;
        for (size_t i = 0; r == 0 && i < nd; i++) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/clean-shutdown", dirs[i]);
            int mfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (mfd < 0 || write(mfd, "1", 1) != 1)
                r = -errno;
            if (mfd >= 0)
                close(mfd);
        }
        if (r == 0 && syncfs(fd) != 0)
            r = -errno;
        if (fd >= 0)
            close(fd);
        if (r < 0 && rc == 0)
            rc = r; /* the logs recover with a full scan next time */
    }
    for (size_t i = 0; i < nd; i++)
        free(dirs[i]);
    free(dirs);
    return rc;
}

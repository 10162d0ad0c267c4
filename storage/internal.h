/*
 * internal.h — data structures shared by the storage engine's files.
 *
 * Owns: the layout of st_log, segments, indexes, the chunked write buffer and
 * producer state, and the prototypes each storage file offers the others.
 * Must not: be included outside storage/.
 */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/uio.h>

#include "batch.h"
#include "io_internal.h"
#include "st_log.h"

/* Grows the array *p (elements of elem bytes, *cap of them) to hold at least
 * need, doubling from `first`. Returns 0 or -ENOMEM (the array unchanged). */
static inline int st_grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : first;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return -ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

#define ST_BLOCK         4096u
#define ST_ALIGN_DOWN(x) ((x) & ~(uint64_t)(ST_BLOCK - 1))
#define ST_ALIGN_UP(x)   (((x) + ST_BLOCK - 1) & ~(uint64_t)(ST_BLOCK - 1))
/* Hostile-length cap for batches found on disk (independent of config). */
#define ST_MAX_DISK_BATCH  (64u << 20)
#define ST_PRODUCER_WINDOW 5

void st_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum { ST_LL_ERROR = 0, ST_LL_WARN = 1, ST_LL_INFO = 2 };

/* Always-on check of the engine's own invariants (never of input): logs
 * what broke and where, then aborts. Not compiled out by NDEBUG. */
void st_assert_fail(const char *what, const char *expr, const char *file, int line) __attribute__((noreturn));
#define ST_ASSERT(cond, what)                                                                                \
    do {                                                                                                     \
        if (__builtin_expect(!(cond), 0))                                                                    \
            st_assert_fail((what), #cond, __FILE__, __LINE__);                                               \
    } while (0)

/* ---- index.c ------------------------------------------------------------- */

typedef struct st_index_entry {
    uint32_t rel; /* offset - segment base */
    uint32_t pos; /* byte position of that batch in the .log */
} st_index_entry;

typedef struct st_time_entry {
    int64_t ts;   /* largest timestamp up to and including this batch */
    uint32_t rel; /* base offset of the batch - segment base */
} st_time_entry;

typedef struct st_index {
    st_index_entry *e;
    size_t n, cap;
    st_time_entry *t;
    size_t tn, tcap;
} st_index;

void st_index_free(st_index *ix);
void st_index_reset(st_index *ix);
int st_index_add(st_index *ix, uint32_t rel, uint32_t pos);
int st_index_add_time(st_index *ix, int64_t ts, uint32_t rel);
/* Position of the last entry with rel <= target (0 when none). */
uint32_t st_index_lookup(const st_index *ix, uint32_t rel);
/* rel of the last time entry with ts < target, or 0 (scan from the start). */
uint32_t st_index_lookup_time(const st_index *ix, int64_t ts, uint32_t *pos_out);
/* Drops entries at or past position pos (truncation). */
void st_index_truncate(st_index *ix, uint32_t pos);
/* Kafka's big-endian on-disk formats. Returns 0, or -errno / ST_E_STORAGE
 * when a file is missing or inconsistent with a segment of `size` bytes. */
int st_index_load(st_index *ix, const char *log_path, uint64_t size);
int st_index_save(const st_index *ix, const char *log_path);
size_t st_index_memory(const st_index *ix);

/* ---- cache.c: chunked write buffer + tail cache -------------------------- */

/* Chunk k holds segment bytes [k*chunk, (k+1)*chunk). Chunks are 4 KiB
 * aligned so they can be handed to O_DIRECT writes as they are. */
typedef struct st_chunks {
    size_t chunk; /* bytes per chunk */
    uint8_t **c;  /* c[i] is chunk first + i */
    size_t n, cap;
    uint64_t first;    /* chunk number of c[0] */
    uint64_t lo;       /* first valid byte (chunk c[0] may start mid-way) */
    uint8_t *spare[2]; /* recycled chunks */
    int nspare;
    size_t allocated; /* bytes held, spares included */
} st_chunks;

void st_chunks_init(st_chunks *ch, size_t chunk);
void st_chunks_free(st_chunks *ch);
/* Copies len bytes to segment position pos, allocating chunks. */
int st_chunks_write(st_chunks *ch, uint64_t pos, const void *src, size_t len);
void st_chunks_read(const st_chunks *ch, uint64_t pos, void *dst, size_t len);
uint64_t st_chunks_start(const st_chunks *ch); /* first byte still held */
/* Frees whole chunks below keep_from (which is rounded down to a chunk). */
void st_chunks_release_below(st_chunks *ch, uint64_t keep_from);
/* Builds iovecs for [from, to) (both block aligned, to may exceed the data,
 * the caller zeroed the tail). Returns the count or -ENOMEM when over max. */
int st_chunks_iov(const st_chunks *ch, uint64_t from, uint64_t to, struct iovec *iov, int max);
/* Pointer to the byte at pos and how many contiguous bytes follow in its chunk. */
uint8_t *st_chunks_at(const st_chunks *ch, uint64_t pos, size_t *contig);

/* ---- segment.c ----------------------------------------------------------- */

typedef struct st_fd_waiter st_fd_waiter;

typedef struct st_segment {
    int64_t base;
    int64_t next_offset; /* one past the last offset stored */
    uint64_t size;       /* logical bytes (may be less than the file) */
    int fd;              /* -1 while its creation is pending */
    int direct;
    int refs; /* the log's list + reads in flight */
    int deleted;
    int sealed;                 /* final size on disk, index files written */
    int opening;                /* creation running on the background thread */
    int open_err;               /* creation or reopen failed: the log rolls back on its next flush */
    int created;                /* the file exists: a closed fd is reopened, not created */
    int io_busy;                /* a flush (write/sync) on fd is in flight: never closed meanwhile */
    st_fd_waiter *open_waiters; /* reads waiting for a reopen */
    /* The shard's open-file LRU (fdcache.c); fdc is NULL while not listed. */
    struct st_fdcache *fdc;
    struct st_segment *lru_prev, *lru_next;
    /* Waiting for an open slot (budget full of files in use): the log whose
     * open to start once one frees up; holds a segment reference. */
    struct st_log *slot_log;
    struct st_segment *slot_next;
    int64_t max_ts; /* -1 when empty */
    int64_t max_ts_offset;
    int64_t created_ms; /* wall clock of the first append, for segment.ms */
    uint64_t bytes_since_index;
    st_index ix;
    /* Aborted transactions whose ABORT marker is in this segment, ordered
     * by marker offset: the segment's .txnindex. */
    st_aborted_txn *txn;
    size_t ntxn, txncap;
    char *path; /* .../<20 digits>.log */
} st_segment;

st_segment *st_segment_new(const char *dir, int64_t base);
void st_segment_unref(st_segment *s);
/* Opens (creating when asked) the .log with O_DIRECT, falling back to
 * buffered I/O where the filesystem refuses it. Blocking. */
int st_segment_open_file(st_segment *s, int create);
/* The same without touching s (for the background thread): the fd or -errno. */
int st_segment_open_fd(const char *path, int create, int *direct);
/* Index bookkeeping for one batch appended at pos. */
void st_segment_note_batch(st_segment *s, const kp_batch_header *h, uint32_t pos, uint32_t size,
                           uint32_t interval, int force_index);
/* Blocking helpers used by the background thread and recovery. */
int st_segment_seal_files(st_segment *s);
void st_segment_unlink_files(const char *log_path);
int st_fsync_dir(const char *dir);
int st_write_file_atomic(const char *dir, const char *name, const void *data, size_t len);
/* Rewrites the file in place without fsync: only for files whose content is
 * checked when read (the CRC-protected producer snapshot), written before a
 * syncfs (st_log_close_all); a torn one is detected and ignored. */
int st_write_file_nosync(const char *dir, const char *name, const void *data, size_t len);
int st_read_small_file(const char *path, void *buf, size_t cap, size_t *len);

/* ---- txnindex (segment.c) -------------------------------------------------- */

#define ST_TXN_ENTRY 34 /* version i16 0, producer id, first, last, last stable offset (i64 BE) */
int st_segment_reserve_txn(st_segment *s); /* room for one more entry */
int st_segment_add_txn(st_segment *s, const st_aborted_txn *t);
/* Drops the entries whose marker is at or past offset (truncation). */
void st_segment_truncate_txn(st_segment *s, int64_t offset);
/* Kafka's .txnindex bytes of the entries (n * ST_TXN_ENTRY, malloc'ed). */
uint8_t *st_txnindex_encode(const st_aborted_txn *e, size_t n);
/* Writes (or, with no entries, removes) <segment>.txnindex. durable = 0
 * skips the fsyncs (st_log_close_all's syncfs covers them). Blocking. */
int st_txnindex_write(const char *log_path, const uint8_t *bytes, size_t len, int durable);
/* Reads <segment>.txnindex into s->txn: 0 (a missing file is no entry),
 * ST_E_STORAGE for a file that is not whole version-0 entries. Blocking. */
int st_txnindex_load(st_segment *s);

/* ---- fdcache.c: the shard's budget of open segment files ---------------- */

/* Every segment whose fd is open is listed, most recently used first. When
 * more than the budget are open, the least recently used idle ones (only the
 * log's own reference, no flush in flight) are closed; they are reopened on
 * the background thread when a flush or a read needs them again. */
typedef struct st_fdcache {
    unsigned max; /* 0 = no limit */
    unsigned open;
    unsigned opening; /* opens on the background thread, each holding a slot */
    st_segment *head, *tail;
    st_segment *wait_head, *wait_tail; /* opens waiting for a slot, FIFO */
    int pumping;
    uint64_t closes, reopens;
} st_fdcache;

st_fdcache *st_fdcache_of(st_io *io); /* NULL only when out of memory */
/* s->fd just became valid: list it and close idle files beyond the budget. */
void st_fdc_add(st_io *io, st_segment *s);
void st_fdc_touch(st_segment *s);
/* s->fd is being closed (or s freed): unlist it. */
void st_fdc_remove(st_segment *s);
void st_fdc_trim(st_fdcache *c);
/* Before opening s's file: 1 = a slot is reserved, open now; 0 = queued,
 * st_log_start_open(log, s) runs once a slot frees up. Every file in use
 * (flushes in flight can be thousands at once) would otherwise be opened
 * regardless of the budget and run the process out of descriptors. */
int st_fdc_reserve(st_io *io, st_log *log, st_segment *s);
/* The reserved open finished (s->fd valid or not): frees the slot. */
void st_fdc_opened(st_io *io, st_segment *s);
/* A listed file may have become idle (flush done, read done): start
 * waiting opens, closing idle files to make room. */
void st_fdc_pump(st_fdcache *c);
void st_log_start_open(st_log *log, st_segment *s); /* log.c */

/* Called with 0 once s->fd is valid again, or with the open error. */
struct st_fd_waiter {
    st_fd_waiter *next;
    void (*fn)(void *arg, int rc);
    void *arg;
};
/* 0: s->fd is open (and now most recently used); 1: a reopen is running and
 * fn(arg, rc) will run from st_io_poll; negative: cannot be opened now. */
int st_log_segment_need_fd(st_log *log, st_segment *s, void (*fn)(void *arg, int rc), void *arg);

/* ---- producer_state.c ---------------------------------------------------- */

typedef struct st_pbatch {
    int32_t first_seq, last_seq;
    int64_t base_offset, last_offset;
} st_pbatch;

typedef struct st_producer {
    int64_t pid;
    int16_t epoch;
    int used;                        /* hash slot occupied */
    int nb;                          /* batches in the window */
    st_pbatch b[ST_PRODUCER_WINDOW]; /* b[nb-1] is the newest */
    int64_t last_ts;
    int64_t txn_first;   /* first offset of the ongoing transaction, -1 when none */
    int32_t coord_epoch; /* coordinator epoch of the last marker, -1 when none */
} st_producer;

/* An ongoing transaction, in the first-offset-ordered list the LSO reads. */
typedef struct st_ongoing {
    int64_t first;
    int64_t pid;
} st_ongoing;

/* How to undo one transaction-state change of an append not yet acked
 * (a failed write rolls the log back to the high watermark). */
typedef struct st_txn_undo {
    int64_t offset; /* of the batch that made the change */
    int64_t pid;
    int64_t prev_first;
    int32_t prev_coord;
} st_txn_undo;

/* A transaction whose marker is appended but not yet acked (Kafka's
 * unreplicatedTxns): it still holds the LSO, so read_committed never sees a
 * transaction end that a failed write or a crash could take back. */
typedef struct st_ending {
    int64_t first;
    int64_t marker;
} st_ending;

typedef struct st_pstate {
    st_producer *tab;
    size_t cap, count;
    st_ongoing *on; /* ongoing transactions, ascending first offset */
    size_t non, oncap;
    st_ending *end; /* ascending marker offset, every marker at or past the HW */
    size_t nend, endcap;
    st_txn_undo *undo;
    size_t nundo, undocap;
} st_pstate;

/* The transaction marker of a control batch, NULL for data batches. */
typedef struct st_marker {
    int16_t type; /* KP_CONTROL_ABORT / KP_CONTROL_COMMIT */
    int32_t coord_epoch;
} st_marker;

void st_pstate_free(st_pstate *ps);
/* Checks a batch against the producer's state. 0 = append it,
 * ST_E_DUPLICATE (with *dup_offset), ST_E_OUT_OF_ORDER, ST_E_FENCED,
 * ST_E_INVALID_TXN_STATE, ST_E_COORDINATOR_FENCED. */
int st_pstate_check(const st_pstate *ps, const kp_batch_header *h, const st_marker *m, int64_t *dup_offset);
/* Records an appended (or replayed) batch. Returns 1 with *aborted filled
 * when m is an ABORT marker that ended an ongoing transaction, 0 otherwise,
 * or -ENOMEM. keep_undo: the change may be rolled back (live appends). */
int st_pstate_update(st_pstate *ps, const kp_batch_header *h, int64_t base_offset, const st_marker *m,
                     int keep_undo, st_aborted_txn *aborted);
/* Forgets batches at or above offset (failed writes, truncation) and undoes
 * the transaction changes they made. */
void st_pstate_truncate(st_pstate *ps, int64_t offset);
/* Room for the transaction bookkeeping of one more batch, so that
 * st_pstate_update cannot fail once the batch is in the log. */
int st_pstate_reserve(st_pstate *ps);
/* Changes below offset (the new high watermark) are final: their undo
 * records go, and transactions whose marker lies below it stop holding the
 * LSO. Called whenever the high watermark moves. */
void st_pstate_settle(st_pstate *ps, int64_t offset);
/* First offset of the earliest transaction that is ongoing or whose marker
 * is not acked yet, -1 when none. O(1) + the markers not yet acked. */
int64_t st_pstate_first_unstable(const st_pstate *ps);
/* The part of src (a snapshot taken at or after offset) that a replay from
 * offset cannot rebuild: every producer's epoch and coordinator epoch, its
 * batches below offset, and a transaction still open that began below it. */
int st_pstate_seed_before(st_pstate *dst, const st_pstate *src, int64_t offset);
/* A producer's last batch (Kafka's lastRecordsOfActiveProducers): the last
 * offset of its last data batch in its epoch (-1: none) and its epoch. */
typedef struct st_plast {
    int64_t pid;
    int64_t last_data;
    int16_t epoch;
} st_plast;
/* Fills up to max entries; returns the producer count. */
size_t st_pstate_last_batches(const st_pstate *ps, st_plast *out, size_t max);
/* Fills up to max entries (DescribeProducers); returns the producer count. */
size_t st_pstate_list(const st_pstate *ps, st_producer_info *out, size_t max);
/* Serialized form: magic, version, offset, count, entries, CRC-32C. */
int st_pstate_serialize(const st_pstate *ps, int64_t offset, uint8_t **out, size_t *len);
int st_pstate_deserialize(st_pstate *ps, const uint8_t *p, size_t len, int64_t *offset);
size_t st_pstate_memory(const st_pstate *ps);

/* ---- log.c --------------------------------------------------------------- */

typedef struct st_epoch_start {
    int32_t epoch;
    int64_t start;
} st_epoch_start;

typedef struct st_wbuf {
    st_segment *seg;
    st_chunks ch;
    uint64_t written;  /* bytes of seg already in the file */
    uint64_t synced;   /* bytes of seg covered by an fdatasync */
    int64_t idx_chunk; /* last chunk whose first batch got a forced index entry */
} st_wbuf;

typedef struct st_pending {
    int64_t end;  /* completes once the acked end reaches this */
    int64_t base; /* reported to the callback */
    int rc;
    int need_sync; /* st_log_flush: waits for the durable end, whatever the policy */
    st_append_cb cb;
    void *arg;
} st_pending;

/* An append that had to wait (st_log_append_ordered): its own copy of the
 * batch, in arrival order. */
typedef struct st_waiting {
    struct st_waiting *next;
    st_accept_cb accepted;
    st_append_cb done;
    void *arg;
    size_t len;
    uint8_t batch[];
} st_waiting;

struct st_log {
    st_io *io;
    char *dir;
    st_log_config cfg;

    st_segment **segs;
    size_t nsegs, segcap;

    int64_t log_start;
    int64_t next_offset;    /* LEO */
    int64_t written_offset; /* every byte before it is in a file */
    int64_t durable_offset; /* every byte before it is synced */
    int64_t hw;             /* acked end (durable or written, per policy) */

    /* Write state: the active segment's buffer, and the buffer of a rolled
     * segment whose last bytes are still being written (old.seg == NULL when
     * there is none; a second roll waits for it with ST_E_BUSY). */
    st_wbuf act;
    st_wbuf old;
    int flushing;
    int truncating; /* cutting a failed write's bytes off; flushes wait */
    int cutting;    /* st_log_truncate's job runs: appends, retention and compaction wait */
    int64_t msgs_since_sync;
    int64_t last_sync_ms;
    int64_t sync_req_end; /* st_log_flush asked for a sync up to here */
    int closing;
    int reads_inflight;
    uint8_t *bounce; /* one aligned block: the partial tail being written */
    struct iovec *iov;
    int iovmax;
    st_op flush_op;
    st_segment *flush_seg; /* a roll may move its wbuf from act to old meanwhile */
    uint64_t flush_to_pos;
    int64_t flush_to_offset;

    st_pending *pend;
    size_t pend_head, pend_n, pend_cap;

    /* Ordered appends the log could not take yet. While any waits, every
     * append (ordered or not) goes behind it: that is what keeps a producer's
     * pipelined requests in order when the log applies backpressure. */
    st_waiting *wait_head, *wait_tail;
    size_t wait_n, wait_bytes;
    int draining;

    st_pstate ps;
    int64_t max_ts, max_ts_offset;

    int bg_pending; /* background ops in flight (seal, unlink, snapshot...) */
    /* 1 while nothing changed since a clean open: closing has nothing to
     * write (opening and closing an idle log costs no I/O). */
    int marker;
    int64_t snap_offset; /* offset of the producer.snapshot on disk, -1 when none */
    /* The snapshot (and the rolled segment's .txnindex) taken at the last
     * roll, written only once that segment is durable: a snapshot never
     * claims an offset the log may lose in a crash. */
    struct snap_job *roll_snap;
    /* An idle log holds no chunks: the active segment's partial last block
     * (which the next flush rewrites whole) waits here, for tail_seg only. */
    uint8_t *tail_blk;
    st_segment *tail_seg;
    int64_t last_append_ms;
    int compacting;
    int64_t last_compact_ms;
    /* Kafka's leader-epoch cache: where each leader epoch starts, ascending
     * in both; rebuilt at open from the batches' partitionLeaderEpoch. */
    st_epoch_start *epochs;
    size_t nepochs, epochcap;
    int32_t stamp_epoch; /* stamped into every (non-replica) append; -1: batches keep theirs */
    st_log_stats stats;
};

/* The epoch cache (log.c): a batch of a later epoch than the last starts
 * it; truncation drops the epochs starting at or past the new end. */
int st_epochs_note(st_log *log, int32_t epoch, int64_t base);
void st_epochs_truncate(st_log *log, int64_t end);

int st_log_segment_index_of(const st_log *log, int64_t offset); /* -1 when below */
/* Frees the write buffer, bounce block and completion queue of a log idle
 * for idle_ms (everything written); the next append brings them back. */
void st_log_release_idle(st_log *log, int64_t now_ms, int64_t idle_ms);
int st_log_keep_tail(st_log *log, const uint8_t *blk, size_t len); /* recovery */
st_segment *st_log_active(const st_log *log);
/* A background call that changes the partition's files (marks the log
 * changed since its clean open). */
void st_log_bg_call(st_log *log, long (*fn)(void *), void *arg, void (*done)(st_log *, void *, long));
void st_log_remove_segment_at(st_log *log, size_t i); /* unlinks in the background */
void st_log_kick_flush(st_log *log);
/* The append itself, without callbacks or a flush kick; then the second. */
int st_log_append_one(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg,
                      int64_t *base_offset);
void st_log_after_append(st_log *log);

/* ---- appendq.c ----------------------------------------------------------- */

/* Appends waiting appends while the log takes them; called wherever the log
 * may have made room (a flush completed, a failed write was rolled back). */
void st_appendq_drain(st_log *log);
/* Refuses every waiting append with rc (closing). */
void st_appendq_fail_all(st_log *log, int rc);
st_wbuf *st_log_wbuf_of(st_log *log, const st_segment *s); /* NULL unless act/old */
int64_t st_now_ms(void);

/* ---- recovery.c ---------------------------------------------------------- */

/* Scans a segment file from pos, calling fn per valid batch; returns the
 * position of the first byte that is not part of a whole valid batch (which
 * is where a torn or garbled tail starts). Blocking. */
typedef int (*st_scan_fn)(void *arg, const kp_batch *b, uint64_t pos);
int64_t st_scan_file(int fd, uint64_t pos, uint64_t size, int64_t min_offset, int verify_crc, st_scan_fn fn,
                     void *arg);
int st_recover(st_log *log);

/* ---- retention.c / compaction.c ----------------------------------------- */

void st_retention_run(st_log *log, int64_t now_ms);
int st_compaction_start(st_log *log, st_append_cb cb, void *arg);

#endif

/*
 * st_log.h — one partition's log: the public face of the storage engine.
 *
 * Owns: the partition directory <log.dir>/<topic>-<partition>/ and every file
 * in it (segments, indexes, producer-state snapshot, metadata, clean-shutdown
 * marker), offsets, durability, reads, retention and compaction.
 *
 * Must not: do networking, depend on libevent, block the calling (shard)
 * thread on the disk outside st_log_open()/st_log_close(), or be used from
 * more than one thread. All callbacks run on the thread that calls
 * st_io_poll() on the log's st_io — or, where documented, synchronously
 * before the call returns.
 */
#ifndef ST_LOG_H
#define ST_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "st_io.h"

/* Storage error codes. Functions return 0 on success, a negative ST_E_* code,
 * or a negative errno for an operating-system failure (e.g. -ENOSPC); every
 * negative errno maps to KAFKA_STORAGE_ERROR. */
enum {
    ST_OK = 0,
    ST_E_INVALID_RECORD = -1001, /* malformed batch (sizes, magic, counts): CORRUPT_MESSAGE */
    ST_E_CORRUPT = -1002,        /* CRC mismatch: CORRUPT_MESSAGE */
    ST_E_TOO_LARGE = -1003,      /* batch above max_batch_bytes: MESSAGE_TOO_LARGE */
    ST_E_OUT_OF_RANGE = -1004,   /* OFFSET_OUT_OF_RANGE */
    ST_E_DUPLICATE = -1005,      /* duplicate of a recent batch; offset reported is the original's */
    ST_E_OUT_OF_ORDER = -1006,   /* OUT_OF_ORDER_SEQUENCE_NUMBER */
    ST_E_FENCED = -1007,         /* INVALID_PRODUCER_EPOCH */
    ST_E_BUSY = -1008,           /* write buffer full: retry after completions (backpressure) */
    ST_E_CLOSED = -1009,         /* log is closing or failed */
    ST_E_UNSUPPORTED = -1010,    /* e.g. legacy magic 0/1: UNSUPPORTED_FOR_MESSAGE_FORMAT */
    ST_E_STORAGE = -1011,        /* on-disk state unusable: KAFKA_STORAGE_ERROR */
    ST_E_INVALID_TIMESTAMP = -1012,
    ST_E_INVALID_TXN_STATE =
        -1013, /* non-transactional data inside an ongoing transaction: INVALID_TXN_STATE */
    ST_E_COORDINATOR_FENCED =
        -1014,              /* marker from an older coordinator epoch: TRANSACTION_COORDINATOR_FENCED */
    ST_E_TXN_LIMIT = -1015, /* ABORT marker beyond ST_MAX_ABORTED_TXNS kept: KAFKA_STORAGE_ERROR */
};
const char *st_strerror(int rc);

/* Special timestamps of ListOffsets. */
#define ST_TS_LATEST   (-1)
#define ST_TS_EARLIEST (-2)
#define ST_TS_MAX      (-3)

typedef struct st_log_config {
    uint64_t segment_bytes;        /* segment.bytes (default 1 GiB, max 2 GiB - 1) */
    int64_t segment_ms;            /* segment.ms (default 7 days) */
    uint32_t index_interval_bytes; /* index.interval.bytes (4096) */
    int64_t retention_ms;          /* retention.ms (7 days; -1 = forever) */
    int64_t retention_bytes;       /* retention.bytes (-1 = unlimited) */
    /* Flush policy. sync_acks = 1 (the default): an append completes only
     * after an fdatasync covering it ("sync before acks=all answers"). With
     * sync_acks = 0 an append completes when its bytes are written to the file
     * and fdatasync runs every flush_messages appends or flush_ms. */
    int sync_acks;
    int64_t flush_messages;      /* flush.messages (0 = never by count) */
    int64_t flush_ms;            /* flush.ms (0 = never by time) */
    uint32_t max_batch_bytes;    /* max.message.bytes + 12 (default 1 MiB + 12) */
    size_t chunk_bytes;          /* write buffer chunk (256 KiB, multiple of 4 KiB) */
    size_t max_unflushed_bytes;  /* appends beyond this wait (ordered) or get ST_E_BUSY (8 MiB) */
    size_t tail_cache_bytes;     /* already-written bytes kept in memory for readers (4 MiB) */
    size_t max_read_bytes;       /* cap on one read's buffer (default 8 MiB) */
    int log_append_time;         /* message.timestamp.type = LogAppendTime */
    int compact;                 /* cleanup.policy = compact (else delete) */
    int64_t delete_retention_ms; /* delete.retention.ms (1 day) */
    /* Keep the leader-epoch cache (st_log_epoch_end): rebuilt at open from the
     * header of every batch of every segment, a read per batch, so only the
     * replicated partitions of a cluster ask for it (0 by default). */
    int leader_epochs;
} st_log_config;

void st_log_config_default(st_log_config *cfg);

typedef struct st_log st_log;

/* Builds "<log_dir>/<topic>-<partition>" into buf. Returns -ENAMETOOLONG or 0. */
int st_partition_dir(char *buf, size_t cap, const char *log_dir, const char *topic, int32_t partition);

/* Opens (creating when missing) the partition directory `dir` and recovers
 * it: blocking, for startup. Returns 0 or a negative code. */
int st_log_open(st_io *io, const char *dir, const st_log_config *cfg, st_log **out);

/* Flushes and syncs everything, finishes in-flight work, seals indexes,
 * writes the producer snapshot and the clean-shutdown marker, frees the log.
 * Blocking (drives st_io_wait itself); callbacks of pending appends run. */
int st_log_close(st_log *log);

/* The first half of a close: refuses new appends (ST_E_CLOSED), finishes
 * every write, sync and read in flight and runs their callbacks, but keeps
 * the log. Shutdown drains every log while the state its callbacks touch
 * (partitions, groups, coordinators) still exists, then frees that state,
 * then closes. Blocking; may be called again (a no-op) and st_log_close /
 * st_log_close_all still follow. Returns 0 or a negative code. */
int st_log_drain(st_log *log);

/* st_log_close for many logs at once (shutdown): the same files, made
 * durable with two syncfs() calls instead of fsyncs per log. Frees every
 * log; returns 0 or the first error. */
int st_log_close_all(st_log **logs, size_t n);

/* Applies a new configuration (sizes, retention, flush policy). */
void st_log_set_config(st_log *log, const st_log_config *cfg);

/* ---- append -------------------------------------------------------------- */

/* rc: 0 = durable per flush policy, ST_E_DUPLICATE (base_offset is the
 * original's, and that one is durable by now), or a negative error (nothing
 * of this batch will ever be readable). */
typedef void (*st_append_cb)(void *arg, int rc, int64_t base_offset);

/* Validates one record batch (magic 2, sizes, CRC), checks idempotent
 * producer state, assigns offsets and copies it into the write buffer; all in
 * memory. Returns 0 with *base_offset set (cb will fire exactly once), or a
 * negative code (cb never fires; ST_E_BUSY means retry after completions).
 * For a duplicate whose original is already acked, cb runs before this
 * returns. The caller's bytes are not modified nor referenced after return.
 * One batch per call: the server splits a produce request's records. */
int st_log_append(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg,
                  int64_t *base_offset);

/* The outcome of an ordered append's acceptance: rc 0 with the batch's base
 * offset (the original's for a duplicate), or the error that refused it (then
 * the append's completion callback never runs). */
typedef void (*st_accept_cb)(void *arg, int rc, int64_t base_offset);

/* st_log_append that never answers ST_E_BUSY: when the log cannot take the
 * batch now (unflushed-bytes budget, a roll still flushing) or other ordered
 * appends wait already, the batch is copied and waits, in call order, until
 * flushes make room. Appends through this call are applied in call order,
 * always; plain st_log_append returns ST_E_BUSY while any waits.
 * `accepted` runs exactly once — possibly before this returns — and always
 * before `done`; `done` runs as for st_log_append when accepted with rc 0.
 * Waiting appends are refused with ST_E_CLOSED when the log closes. The
 * caller bounds what waits (the server stops reading the connections whose
 * requests are pending). */
void st_log_append_ordered(st_log *log, const uint8_t *batch, size_t len, st_accept_cb accepted,
                           st_append_cb done, void *arg);

/* A follower's append (replication): the batch keeps the offsets its leader
 * gave it, so its base offset must be the log end offset (else
 * ST_E_OUT_OF_RANGE, nothing appended); producer state is updated from it,
 * not checked (its leader checked). Otherwise as st_log_append: cb fires
 * once when durable, ST_E_BUSY means retry after completions. */
int st_log_append_replica(st_log *log, const uint8_t *batch, size_t len, st_append_cb cb, void *arg);

/* A follower's truncation (Kafka's truncateTo): drops every batch that holds
 * `offset` or a later one (later segments, the cut segment's tail, their
 * index entries, the tail cache), so the log end becomes `offset` (or the
 * base of the batch holding it), high watermark and durable end with it, and
 * producer state is what it was there. Refused with ST_E_BUSY while anything
 * is in flight (appends not yet acked, a flush, a roll, background work,
 * reads from the disk): retry after completions. Below the log start:
 * ST_E_OUT_OF_RANGE. Returns 0 and cb(arg, rc, new end) runs once the cut is
 * durable (from st_io_poll; before this returns when there is nothing to
 * cut); meanwhile appends answer ST_E_BUSY (ordered ones wait), retention,
 * DeleteRecords and compaction wait, and reads see nothing at or past
 * `offset`. A crash before cb leaves a prefix of the old log (truncate
 * again); once cb reported 0, recovery finds exactly the cut log. */
int st_log_truncate(st_log *log, int64_t offset, st_append_cb cb, void *arg);

/* Forces an fdatasync of everything appended so far; cb(arg, rc, end offset). */
int st_log_flush(st_log *log, st_append_cb cb, void *arg);

/* ---- offsets ------------------------------------------------------------- */

int64_t st_log_start_offset(const st_log *log);
int64_t st_log_end_offset(const st_log *log);     /* next offset to assign (LEO) */
int64_t st_log_high_watermark(const st_log *log); /* end of completed (acked) appends */
int64_t st_log_size_bytes(const st_log *log);
unsigned st_log_segment_count(const st_log *log);

/* ---- leader epochs ----------------------------------------------------- */

/* From now on every append (not st_log_append_replica, whose batches carry
 * their leader's stamp) gets `epoch` as its partitionLeaderEpoch (not
 * covered by the CRC); -1 (the default) leaves the producer's value. */
void st_log_set_leader_epoch(st_log *log, int32_t epoch);
/* The latest epoch a batch of the log carries, -1 when none. */
int32_t st_log_latest_epoch(const st_log *log);
/* Kafka's endOffsetFor: for `epoch`, the largest epoch <= it that the log
 * knows and the start of the first epoch after it, or the log end for the
 * latest epoch; (-1, -1) for an epoch above the latest (or -1, or an empty
 * cache); (epoch, start of the first epoch) for one below every known. */
void st_log_epoch_end(const st_log *log, int32_t epoch, int32_t *out_epoch, int64_t *out_end);

/* ---- reads --------------------------------------------------------------- */

typedef struct st_read_result {
    int rc;              /* 0, ST_E_OUT_OF_RANGE, -errno... */
    const uint8_t *data; /* whole batches, valid only during the callback */
    size_t len;
    int64_t high_watermark;
    int64_t log_start_offset;
    int64_t last_stable_offset; /* at delivery time */
    /* Non-NULL when data lies inside a heap block the callback may keep
     * instead of copying: *keep is that block; setting *keep = NULL makes it
     * the callback's, to free() once done with data. */
    void **keep;
    size_t keep_size; /* the bytes of *keep's block (0 when keep is NULL) */
} st_read_result;

/* Whether keeping res's block is worth it rather than copying data: only
 * when data is at least half of the block, so that a reader holding many
 * small results does not pin a whole disk read buffer for each. */
static inline int st_read_keep_worth(const st_read_result *res)
{
    return res->keep && *res->keep && res->len >= res->keep_size / 2;
}

typedef void (*st_read_cb)(void *arg, const st_read_result *res);

/* Reads whole batches starting with the one that contains `offset`, up to
 * max_bytes (but always at least one whole batch when any is there), never
 * past the high watermark. An offset equal to the high watermark gives an
 * empty result. Returns 0 when served from memory (cb already ran), 1 when an
 * asynchronous read is pending (cb runs from st_io_poll), or a negative code
 * (cb never runs). */
int st_log_read(st_log *log, int64_t offset, size_t max_bytes, st_read_cb cb, void *arg);

/* st_log_read for read_committed fetches: the same batching rules, but never
 * a batch at or past the last stable offset. An offset between the LSO and
 * the high watermark gives an empty result (not OFFSET_OUT_OF_RANGE), as
 * Kafka answers it. */
int st_log_read_committed(st_log *log, int64_t offset, size_t max_bytes, st_read_cb cb, void *arg);

/* st_log_read (committed 0) or st_log_read_committed (1) that also never
 * returns a batch starting at or past `upto`, which must be a batch
 * boundary at or below the high watermark (a replicated partition's high
 * watermark, which its followers' log ends bound); an offset from `upto` to
 * the log's high watermark gives an empty result. */
int st_log_read_upto(st_log *log, int64_t offset, size_t max_bytes, int committed, int64_t upto,
                     st_read_cb cb, void *arg);

/* ---- transactions --------------------------------------------------------- */

/* Transactional batches (attribute bit 4) open a transaction for their
 * producer id at their base offset; a transaction marker (control batch,
 * bit 5, one record: see kp_txn_marker_parse) appended with st_log_append
 * ends it. An ABORT marker records the aborted transaction below, kept in
 * memory and in the marker's segment's .txnindex (Kafka's format). */
typedef struct st_aborted_txn {
    int64_t producer_id;
    int64_t first_offset;       /* the transaction's first batch */
    int64_t last_offset;        /* the ABORT marker's offset */
    int64_t last_stable_offset; /* the LSO once this marker completed it (Kafka's AbortedTxn) */
} st_aborted_txn;

/* Aborted transactions kept in memory per partition; an ABORT marker that
 * would exceed it is refused with ST_E_TXN_LIMIT until retention removes
 * segments (40 bytes each: 40 MiB at the limit). */
#define ST_MAX_ABORTED_TXNS (1u << 20)

/* min(first offset of every ongoing transaction, high watermark), never
 * below the log start offset (Kafka's lastStableOffset). O(1). */
int64_t st_log_last_stable_offset(const st_log *log);

/* Kafka's collectAbortedTransactions(from, upper): the aborted transactions
 * whose [first_offset, last_offset] intersects [from_offset, upper_offset),
 * ordered by last_offset. Copies up to max into out and returns how many
 * there are. Memory only: never touches the disk. */
size_t st_log_aborted_txns(st_log *log, int64_t from_offset, int64_t upper_offset, st_aborted_txn *out,
                           size_t max);

/* ListOffsets: ts >= 0 gives the first offset whose timestamp >= ts
 * (-1 offset when none); ST_TS_EARLIEST / ST_TS_LATEST / ST_TS_MAX the log
 * start, the high watermark, or the offset with the largest timestamp.
 * The callback may run before the function returns (then it returns 0);
 * 1 = pending; negative = error, no callback. */
typedef void (*st_offset_cb)(void *arg, int rc, int64_t offset, int64_t timestamp);
int st_log_offset_for_time(st_log *log, int64_t ts, st_offset_cb cb, void *arg);

/* ---- maintenance --------------------------------------------------------- */

/* DeleteRecords: moves the log start offset to `offset` (<= high watermark;
 * -1 means the high watermark) and deletes whole segments below it. cb runs
 * once the new start offset is persisted. */
int st_log_delete_records(st_log *log, int64_t offset, st_append_cb cb, void *arg);

/* Periodic work: flush.ms, segment.ms, retention, compaction scheduling.
 * Call every few hundred milliseconds from the shard; never blocks. */
void st_log_tick(st_log *log, int64_t now_ms);

/* Starts a compaction pass now if the log is compacted and has sealed
 * segments (tests and admin). cb(arg, rc, segments rewritten). */
int st_log_compact_now(st_log *log, st_append_cb cb, void *arg);

typedef struct st_log_stats {
    uint64_t appends;
    uint64_t append_waits; /* ordered appends that had to wait for room */
    size_t waiting_bytes;  /* bytes of ordered appends waiting now */
    uint64_t syncs;        /* fdatasyncs completed */
    uint64_t writes;       /* write operations completed */
    uint64_t bytes_written;
    uint64_t cache_reads; /* reads served from memory */
    uint64_t disk_reads;  /* reads that went to the disk */
    uint64_t io_errors;
    uint64_t segments_deleted;
    uint64_t compactions;
    int direct_io;       /* 1 when O_DIRECT is in use */
    size_t memory_bytes; /* chunks + indexes + producer state, approximately */
} st_log_stats;

void st_log_get_stats(const st_log *log, st_log_stats *out);

/* Idempotent producers the log tracks (DescribeProducers). */
typedef struct st_producer_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence; /* -1 when no data batch is known in this epoch */
    int64_t last_timestamp;
    int32_t coordinator_epoch;        /* of its last transaction marker, -1 when none */
    int64_t current_txn_start_offset; /* Kafka's currentTxnStartOffset, -1 when none */
} st_producer_info;

/* Copies up to max entries into out; returns how many the log tracks. */
size_t st_log_producers(const st_log *log, st_producer_info *out, size_t max);

/* ---- open files ------------------------------------------------------------ */

/* Most segment files the logs of one st_io (a shard) keep open at once; 0 (the
 * default) = no limit. Beyond it the least recently used idle files are
 * closed and reopened on st_io's background thread when a flush or a read
 * needs them, so the number of partitions is not bounded by RLIMIT_NOFILE.
 * The budget is soft: files in use (a flush or read in flight) stay open. */
void st_log_set_max_open_files(st_io *io, unsigned max);

typedef struct st_open_files {
    unsigned max, open;
    uint64_t closes;  /* idle files closed to stay within max */
    uint64_t reopens; /* files opened again after such a close */
} st_open_files;
void st_log_open_files(st_io *io, st_open_files *out);

/* Where storage writes its log lines (default: stderr). */
typedef void (*st_log_line_fn)(int level, const char *msg);
void st_set_log_line(st_log_line_fn fn);

#endif

/*
 * retention.c — deleting whole segments by age, size and log start offset,
 * DeleteRecords, and the periodic tick that drives time-based work.
 *
 * Owns: the decision which leading segments go, the persisted log start
 * offset (file "log-start-offset": 8-byte big-endian offset + CRC-32C), and
 * the flush.ms timer.
 *
 * Must not: delete the active segment or a segment still being flushed,
 * delete anything at or above the high watermark, or unlink on the calling
 * thread (files go through the background thread; reads in flight keep their
 * segment open).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Compaction is considered at most this often per log. */
#define COMPACT_INTERVAL_MS 15000

static int deletable(const st_log *log, const st_segment *s)
{
    return log->nsegs > 1 && s != log->act.seg && s != log->old.seg && s->next_offset <= log->hw;
}

void st_retention_run(st_log *log, int64_t now_ms)
{
    if (log->compacting || log->cutting)
        return; /* compaction swaps segments by base offset; wait for it */
    int64_t total = st_log_size_bytes(log);
    while (log->nsegs > 1) {
        st_segment *s = log->segs[0];
        if (!deletable(log, s))
            break;
        int by_start = s->next_offset <= log->log_start;
        int by_time = !log->cfg.compact && log->cfg.retention_ms >= 0 && s->max_ts >= 0 &&
                      now_ms - s->max_ts > log->cfg.retention_ms;
        int by_size = !log->cfg.compact && log->cfg.retention_bytes >= 0 &&
                      total - (int64_t)s->size >= log->cfg.retention_bytes;
        if (!by_start && !by_time && !by_size)
            break;
        total -= (int64_t)s->size;
        st_log_remove_segment_at(log, 0);
    }
    if (log->segs[0]->base > log->log_start)
        log->log_start = log->segs[0]->base;
}

typedef struct start_job {
    char *dir;
    uint8_t b[12];
    st_append_cb cb;
    void *arg;
    int64_t offset;
} start_job;

static long start_fn(void *arg)
{
    start_job *j = arg;
    return st_write_file_atomic(j->dir, "log-start-offset", j->b, sizeof(j->b));
}

static void start_done(st_log *log, void *arg, long res)
{
    (void)log;
    start_job *j = arg;
    if (j->cb)
        j->cb(j->arg, (int)res, j->offset);
    free(j->dir);
    free(j);
}

int st_log_delete_records(st_log *log, int64_t offset, st_append_cb cb, void *arg)
{
    if (log->cutting)
        return ST_E_BUSY; /* st_log_truncate replaces the segment list when it ends */
    if (offset == -1)
        offset = log->hw;
    if (offset < 0 || offset > log->hw)
        return ST_E_OUT_OF_RANGE;
    if (offset <= log->log_start) {
        if (cb)
            cb(arg, 0, log->log_start);
        return 0;
    }
    start_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->dir = strdup(log->dir))) {
        free(j);
        return -ENOMEM;
    }
    log->log_start = offset;
    st_retention_run(log, st_now_ms());
    kp_put_be64(j->b, (uint64_t)log->log_start);
    kp_put_be32(j->b + 8, kp_crc32c(0, j->b, 8));
    j->cb = cb;
    j->arg = arg;
    j->offset = log->log_start;
    st_log_bg_call(log, start_fn, j, start_done);
    return 0;
}

/* A log without appends for this long gives its write buffer back. */
#define IDLE_RELEASE_MS 30000

void st_log_tick(st_log *log, int64_t now_ms)
{
    if (log->closing)
        return;
    st_log_release_idle(log, now_ms, IDLE_RELEASE_MS);
    if (!log->cfg.sync_acks && log->cfg.flush_ms > 0 && log->durable_offset < log->written_offset &&
        now_ms - log->last_sync_ms >= log->cfg.flush_ms) {
        log->sync_req_end = log->next_offset;
        st_log_kick_flush(log);
    }
    if (log->wait_head) {
        /* Appends wait for a flush; a flush that could not be issued (no
         * memory for its iovec) is retried from here. */
        st_log_kick_flush(log);
        st_appendq_drain(log);
    }
    st_retention_run(log, now_ms);
    if (log->cfg.compact && !log->compacting && now_ms - log->last_compact_ms >= COMPACT_INTERVAL_MS) {
        log->last_compact_ms = now_ms;
        st_compaction_start(log, NULL, NULL);
    }
}

/*
 * appendq.c — ordered appends: the wait queue that turns the log's
 * backpressure into waiting instead of a refusal.
 *
 * Owns: the queue of appends the log could not take yet (each with its own
 * copy of the batch), their acceptance in arrival order, and refusing them
 * when the log closes.
 *
 * Must not: reorder anything (a waiting append is taken only from the head,
 * and nothing is appended past a waiting one), answer ST_E_BUSY to an
 * ordered append, or bound the queue itself: the caller stops feeding it
 * (the broker stops reading connections whose requests are still pending).
 *
 * Why: a producer pipelines requests; a retriable refusal of one of them
 * is retried after later ones were appended, which reorders its records.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void enqueue(st_log *log, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                    void *arg)
{
    st_waiting *w = malloc(sizeof(*w) + len);
    if (!w) {
        accepted(arg, -ENOMEM, -1);
        return;
    }
    w->next = NULL;
    w->accepted = accepted;
    w->done = done;
    w->arg = arg;
    w->len = len;
    memcpy(w->batch, batch, len);
    if (log->wait_tail)
        log->wait_tail->next = w;
    else
        log->wait_head = w;
    log->wait_tail = w;
    log->wait_n++;
    log->wait_bytes += len;
    log->stats.append_waits++;
}

void st_log_append_ordered(st_log *log, const uint8_t *batch, size_t len, st_accept_cb accepted,
                           st_append_cb done, void *arg)
{
    if (!log->wait_head) {
        int64_t base = -1;
        int rc = st_log_append_one(log, batch, len, done, arg, &base);
        if (rc != ST_E_BUSY) {
            accepted(arg, rc, rc == 0 ? base : -1);
            if (rc == 0)
                st_log_after_append(log);
            return;
        }
    }
    enqueue(log, batch, len, accepted, done, arg);
}

void st_appendq_drain(st_log *log)
{
    /* accepted() may append to this log again: that append queues behind
     * (wait_head is still set) and this loop takes it in turn. */
    if (log->draining || !log->wait_head)
        return;
    log->draining = 1;
    int appended = 0;
    while (log->wait_head && !log->closing) {
        st_waiting *w = log->wait_head;
        int64_t base = -1;
        int rc = st_log_append_one(log, w->batch, w->len, w->done, w->arg, &base);
        if (rc == ST_E_BUSY)
            break;
        log->wait_head = w->next;
        if (!log->wait_head)
            log->wait_tail = NULL;
        ST_ASSERT(log->wait_n > 0 && log->wait_bytes >= w->len, "append wait queue counters out of step");
        log->wait_n--;
        log->wait_bytes -= w->len;
        w->accepted(w->arg, rc, rc == 0 ? base : -1);
        free(w);
        appended |= rc == 0;
    }
    log->draining = 0;
    if (appended)
        st_log_after_append(log);
}

void st_appendq_fail_all(st_log *log, int rc)
{
    while (log->wait_head) {
        st_waiting *w = log->wait_head;
        log->wait_head = w->next;
        if (!log->wait_head)
            log->wait_tail = NULL;
        log->wait_n--;
        log->wait_bytes -= w->len;
        w->accepted(w->arg, rc, -1);
        free(w);
    }
}

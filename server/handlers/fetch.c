/*
 * fetch.c — Fetch (v4+): reads from every requested partition's owner, long
 * polls on max_wait_ms / min_bytes, woken by appends.
 *
 * Fetch sessions (KIP-227): this broker answers every fetch in full and
 * returns session id 0, which the protocol defines as "no session was
 * created", so clients keep sending full fetch requests. Incremental
 * sessions are a later optimisation, not a correctness matter.
 *
 * Must not: keep a read result past its callback on the owner (data is
 * copied into the op), or let a parked fetch outlive its wait.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "errors.h"
#include "legacy.h"
#include "log.h"
#include "meta.h"
#include "partcall.h"

typedef struct fetch_part {
    kp_fetch_response_partition_data *out;
    kp_uuid topic_id;
    int32_t partition;
    int64_t offset;
    int32_t max_bytes;
    int known;     /* topic and partition exist in metadata */
    uint8_t *data; /* last read, owned by this request */
    size_t len;
} fetch_part;

typedef struct srv_fetch_wait {
    struct srv_fetch_wait *next;
    uint64_t id;
    srv_req *req;
} srv_fetch_wait;

typedef struct fetch_state {
    kp_fetch_response resp;
    fetch_part *parts;
    int nparts;
    int64_t deadline_ms;
    int32_t min_bytes;
    int32_t max_bytes;
    int final; /* this round answers, whatever it finds */
    int parked;
    int responded;
    int reads_pending; /* reads of the current round still out */
    uint64_t wait_id;
    struct event *timer;
    int16_t version;
} fetch_state;

typedef struct read_op {
    srv_part_op base;
    fetch_part *fp;
    int64_t offset;
    int32_t max_bytes;
    int watch; /* park a waiter instead of reading */
    uint64_t wait_id;
    int64_t expire_ms;
    int16_t error;
    int64_t hwm, log_start;
    uint8_t *data;
    size_t len;
} read_op;

static void round_start(srv_req *req);
static void watch_done(srv_shard *s, srv_part_op *base);

/* ---- on the owner ------------------------------------------------------ */

typedef struct read_ctx {
    read_op *op;
    srv_shard *owner;
} read_ctx;

static void read_cb(void *arg, const st_read_result *res)
{
    read_ctx *rc = arg;
    read_op *op = rc->op;
    op->hwm = res->high_watermark;
    op->log_start = res->log_start_offset;
    if (res->rc) {
        op->error = srv_st_to_kafka(res->rc);
    } else if (res->len) {
        op->data = malloc(res->len);
        if (op->data) {
            memcpy(op->data, res->data, res->len);
            op->len = res->len;
        } else {
            op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    srv_shard *owner = rc->owner;
    free(rc);
    srv_part_op_reply(owner, &op->base);
}

static void run_read(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    read_op *op = (read_op *)base;
    if (!p) {
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_part_op_reply(owner, base);
        return;
    }
    if (op->watch) {
        /* Data may have arrived since our read: then the reply says so. */
        op->hwm = st_log_high_watermark(p->log);
        if (op->hwm <= op->offset)
            srv_part_add_waiter(owner, p, op->base.req_shard, op->wait_id, op->expire_ms);
        srv_part_op_reply(owner, base);
        return;
    }
    read_ctx *rc = malloc(sizeof(*rc));
    if (!rc) {
        op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        srv_part_op_reply(owner, base);
        return;
    }
    rc->op = op;
    rc->owner = owner;
    op->hwm = st_log_high_watermark(p->log);
    op->log_start = st_log_start_offset(p->log);
    int r = st_log_read(p->log, op->offset, (size_t)(op->max_bytes > 0 ? op->max_bytes : 0), read_cb, rc);
    if (r < 0) {
        free(rc);
        op->error = srv_st_to_kafka(r);
        srv_part_op_reply(owner, base);
    }
}

/* ---- on the request's shard -------------------------------------------- */

static void unpark(srv_shard *s, fetch_state *st)
{
    if (!st->parked)
        return;
    st->parked = 0;
    srv_fetch_wait **pp = &s->waits;
    while (*pp) {
        if ((*pp)->id == st->wait_id) {
            srv_fetch_wait *w = *pp;
            *pp = w->next;
            free(w);
            break;
        }
        pp = &(*pp)->next;
    }
    if (st->timer)
        event_del(st->timer);
}

static void respond(srv_req *req)
{
    fetch_state *st = req->state;
    if (st->responded)
        return;
    st->responded = 1;
    unpark(req->shard, st);
    if (st->timer) {
        event_free(st->timer);
        st->timer = NULL;
    }
    /* Fetch v0-3 clients read magic 0/1 message sets: convert at the edge. */
    if (st->version <= 3)
        for (int i = 0; i < st->nparts; i++) {
            fetch_part *fp = &st->parts[i];
            if (!fp->len)
                continue;
            kp_writer w;
            kp_writer_init(&w, fp->len);
            if (kp_batches_to_legacy(fp->data, fp->len, st->version <= 1, 64u << 20, &w) != 0) {
                fp->out->error_code = KP_ERR_CORRUPT_MESSAGE;
                kp_writer_free(&w);
                w.buf = NULL;
            }
            free(fp->data);
            fp->data = w.buf;
            fp->len = w.len;
        }
    /* Assemble in request order; max_bytes is a soft limit: the first
     * partition with data is always returned whole. */
    int64_t total = 0;
    for (int i = 0; i < st->nparts; i++) {
        fetch_part *fp = &st->parts[i];
        if (!fp->len)
            continue;
        if (total > 0 && total + (int64_t)fp->len > st->max_bytes) {
            fp->out->records = (kp_bytes){(const uint8_t *)"", 0};
            continue;
        }
        total += (int64_t)fp->len;
        fp->out->records = (kp_bytes){fp->data, (int32_t)fp->len};
    }
    srv_req_respond(req, &st->resp); /* may free req: see cleanup() */
}

/* The read copies and the timer live outside the arena. */
static void cleanup(srv_req *req)
{
    fetch_state *st = req->state;
    for (int i = 0; i < st->nparts; i++)
        free(st->parts[i].data);
    if (st->timer)
        event_free(st->timer);
    st->timer = NULL;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_req *req = arg;
    fetch_state *st = req->state;
    unpark(req->shard, st);
    st->final = 1;
    if (st->reads_pending == 0)
        round_start(req);
}

void srv_fetch_wake(srv_shard *s, uint64_t wait_id)
{
    for (srv_fetch_wait *w = s->waits; w; w = w->next)
        if (w->id == wait_id) {
            srv_req *req = w->req;
            fetch_state *st = req->state;
            unpark(s, st);
            if (st->reads_pending == 0)
                round_start(req);
            return;
        }
    /* A wake for a fetch that has already answered: nothing to do. */
}

static void park(srv_req *req)
{
    fetch_state *st = req->state;
    srv_shard *s = req->shard;
    srv_fetch_wait *w = malloc(sizeof(*w));
    int64_t left = st->deadline_ms - srv_mono_ms();
    if (!w || left <= 0) {
        free(w);
        respond(req);
        return;
    }
    st->wait_id = ++s->next_wait_id;
    w->id = st->wait_id;
    w->req = req;
    w->next = s->waits;
    s->waits = w;
    st->parked = 1;
    if (!st->timer)
        st->timer = evtimer_new(s->base, on_timer, req);
    struct timeval tv = {left / 1000, (left % 1000) * 1000};
    evtimer_add(st->timer, &tv);
    /* Ask each owner to wake us on new data past our offset. */
    for (int i = 0; i < st->nparts; i++) {
        fetch_part *fp = &st->parts[i];
        if (!fp->known)
            continue;
        read_op *op = calloc(1, sizeof(*op));
        if (!op)
            continue;
        op->base.topic_id = fp->topic_id;
        op->base.partition = fp->partition;
        op->base.run = run_read;
        op->base.done = watch_done;
        op->fp = fp;
        op->offset = fp->offset;
        op->watch = 1;
        op->wait_id = st->wait_id;
        op->expire_ms = s->now_ms + left + 1000;
        srv_part_op_send(req, &op->base);
    }
}

/* A watch op is back; the request stays alive until all are (pending). */
static void watch_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    read_op *op = (read_op *)base;
    srv_req *req = base->req;
    fetch_state *st = req->state;
    int ready = op->hwm > op->offset;
    uint64_t id = op->wait_id;
    free(op);
    if (ready && st->parked && st->wait_id == id && !st->responded) {
        unpark(req->shard, st);
        if (st->reads_pending == 0)
            round_start(req);
    }
}

static void round_done(srv_req *req)
{
    fetch_state *st = req->state;
    int64_t total = 0;
    int errors = 0;
    for (int i = 0; i < st->nparts; i++) {
        total += (int64_t)st->parts[i].len;
        if (st->parts[i].out->error_code)
            errors = 1;
    }
    if (st->final || total >= st->min_bytes || errors || srv_mono_ms() >= st->deadline_ms)
        respond(req);
    else
        park(req);
}

static void read_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    read_op *op = (read_op *)base;
    srv_req *req = base->req;
    fetch_state *st = req->state;
    fetch_part *fp = op->fp;
    fp->out->error_code = op->error;
    fp->out->high_watermark = op->hwm;
    fp->out->last_stable_offset = op->hwm; /* no transactions: LSO = HW */
    fp->out->log_start_offset = op->log_start;
    free(fp->data);
    fp->data = op->data;
    fp->len = op->len;
    free(op);
    if (--st->reads_pending == 0)
        round_done(req);
}

static void round_start(srv_req *req)
{
    fetch_state *st = req->state;
    if (st->responded)
        return;
    st->reads_pending++; /* held while sending, so inline answers cannot end the round */
    for (int i = 0; i < st->nparts; i++) {
        fetch_part *fp = &st->parts[i];
        if (!fp->known)
            continue;
        read_op *op = calloc(1, sizeof(*op));
        if (!op) {
            fp->out->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        op->base.topic_id = fp->topic_id;
        op->base.partition = fp->partition;
        op->base.run = run_read;
        op->base.done = read_done;
        op->fp = fp;
        op->offset = fp->offset;
        op->max_bytes = fp->max_bytes;
        st->reads_pending++;
        srv_part_op_send(req, &op->base);
    }
    if (--st->reads_pending == 0)
        round_done(req);
}

void srv_h_fetch(srv_req *req)
{
    const kp_fetch_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    int16_t v = req->kr.hdr.request_api_version;
    fetch_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = st;
    req->cleanup = cleanup;
    st->version = v;
    kp_fetch_response_init(&st->resp);
    st->resp.session_id = 0;
    st->min_bytes = rq->min_bytes;
    st->max_bytes = rq->max_bytes > 0 ? rq->max_bytes : INT32_MAX;
    st->deadline_ms = srv_mono_ms() + (rq->max_wait_ms > 0 ? rq->max_wait_ms : 0);
    int total = 0;
    for (int32_t i = 0; i < rq->topics_count; i++)
        total += rq->topics[i].partitions_count > 0 ? rq->topics[i].partitions_count : 0;
    st->parts = kp_arena_alloc(&req->arena, (size_t)total * sizeof(*st->parts) + 1);
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    st->resp.responses = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*st->resp.responses) + 1);
    if (!st->parts || !st->resp.responses) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.responses_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const kp_fetch_request_fetch_topic *ft = &rq->topics[i];
        kp_fetch_response_fetchable_topic_response *tr = &st->resp.responses[i];
        kp_fetch_response_fetchable_topic_response_init(tr);
        const srv_topic *t =
            v >= 13 ? srv_meta_topic_by_id(s->meta, &ft->topic_id) : srv_meta_topic(s->meta, ft->topic);
        tr->topic = ft->topic;
        tr->topic_id = ft->topic_id;
        int32_t np = ft->partitions_count > 0 ? ft->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        if (!tr->partitions) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        tr->partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            const kp_fetch_request_fetch_partition *fpq = &ft->partitions[j];
            kp_fetch_response_partition_data *pd = &tr->partitions[j];
            kp_fetch_response_partition_data_init(pd);
            pd->partition_index = fpq->partition;
            pd->high_watermark = -1;
            pd->last_stable_offset = -1;
            pd->log_start_offset = -1;
            pd->records = (kp_bytes){(const uint8_t *)"", 0};
            fetch_part *fp = &st->parts[st->nparts++];
            memset(fp, 0, sizeof(*fp));
            fp->out = pd;
            fp->partition = fpq->partition;
            fp->offset = fpq->fetch_offset;
            fp->max_bytes = fpq->partition_max_bytes;
            if (!t) {
                pd->error_code = v >= 13 ? KP_ERR_UNKNOWN_TOPIC_ID : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (fpq->partition < 0 || fpq->partition >= t->nparts) {
                pd->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                fp->known = 1;
                fp->topic_id = t->id;
            }
        }
    }
    round_start(req);
}

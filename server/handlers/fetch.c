/*
 * fetch.c — Fetch (v4+): reads from every requested partition's owner, long
 * polls on max_wait_ms / min_bytes, woken by appends. A parked fetch is a
 * wait of fetch_wait.c (core) whose callback, on_wait, reads again or answers.
 *
 * Fetch sessions (KIP-227, fetch_session.c): a session's fetches name only
 * changed partitions, and its incremental answers carry only partitions
 * with records or a changed high watermark, log start or error.
 *
 * A follower's fetch (ReplicaState / ReplicaId, with a quorum) reads up to
 * the leader's durable end and reports the follower's log end
 * (partition.h); a consumer of a replicated partition reads below its high
 * watermark. current_leader_epoch is checked against the placement.
 *
 * Must not: keep a read result past its callback on the owner (data is
 * copied into the op, or the read's own buffer taken over when the storage
 * offers it), or let a parked fetch outlive its wait.
 *
 * Records travel without a copy in user space when they are large: the read
 * buffer (O_DIRECT, or the tail cache's copy) becomes the op's, then the
 * request's (srv_req_give_mem), and the response frame refers to it, so the
 * socket is the only consumer of those bytes after the disk.
 */
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "srv_assert.h"
#include "dispatch.h"
#include "errors.h"
#include "quota.h"
#include "throttle_req.h"
#include "fetch_session.h"
#include "fetch_wait.h"
#include "legacy.h"
#include "logging.h"
#include "meta.h"
#include "partcall.h"
#include "sstr.h"
#include "txn_part.h"

typedef struct fetch_part {
    kp_str topic;         /* as the client named it (or the name of its id) */
    kp_uuid req_topic_id; /* as the client sent it (v13+) */
    kp_uuid topic_id;
    int32_t partition;
    int64_t offset;
    int32_t max_bytes;
    int32_t leader_epoch; /* the client's current_leader_epoch (-1: none) */
    int known;            /* topic and partition exist in metadata */
    int16_t error;
    int64_t hwm, lso, log_start;
    uint8_t *data; /* last read, inside mem */
    size_t len;
    void *mem;               /* the block holding data, owned by this request */
    st_aborted_txn *aborted; /* read_committed: of the last read, owned by this request */
    size_t naborted;
} fetch_part;

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
    int parking;       /* inside park(): watch answers are deferred to its end */
    int wake_pending;
    uint64_t wait_id;
    int16_t version;
    int8_t isolation_level; /* 1: read_committed */
    int16_t session_error;
    int32_t session_id; /* 0: sessionless */
    int32_t replica_id; /* a follower's node id (replica.h), -1 for consumers */
    int cluster_action; /* a follower's fetch: ClusterAction on the cluster granted */
    int full;           /* answer every partition (else only those with news) */
} fetch_state;

typedef struct read_op {
    srv_part_op base;
    fetch_part *fp;
    int64_t offset;
    int32_t max_bytes;
    int32_t leader_epoch; /* -1: not checked */
    int32_t replica_id;   /* -1: a consumer */
    int watch;            /* park a waiter instead of reading */
    int committed;        /* read_committed: read below the LSO, list aborted transactions */
    uint64_t wait_id;
    int64_t expire_ms;
    int16_t error;
    int64_t hwm, lso, log_start;
    uint8_t *data;
    size_t len;
    void *mem; /* holds data */
    st_aborted_txn *aborted;
    size_t naborted;
} read_op;

static void round_start(srv_req *req);
static void watch_done(srv_shard *s, srv_part_op *base);

/* ---- on the owner ------------------------------------------------------ */

typedef struct read_ctx {
    read_op *op;
    srv_shard *owner;
    st_log *log;
    int64_t chw; /* a consumer's bound (srv_part_consumer_hw), -1: none */
    int64_t phw; /* the high watermark answered, -1: the log's */
} read_ctx;

/* Kafka's collectAbortedTransactions for a read_committed read: from the
 * fetch offset to the end of what the read returns; nothing returned,
 * nothing listed. */
static int16_t collect_aborted(st_log *log, read_op *op)
{
    int64_t upper = srv_txn_batches_end(op->data, op->len);
    if (upper <= op->offset)
        return 0;
    size_t n = st_log_aborted_txns(log, op->offset, upper, NULL, 0);
    if (!n)
        return 0;
    op->aborted = malloc(n * sizeof(*op->aborted));
    if (!op->aborted)
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    size_t got = st_log_aborted_txns(log, op->offset, upper, op->aborted, n);
    SRV_ASSERT(got == n, "fetch: aborted transactions changed between two calls on one loop (%zu then %zu)",
               n, got);
    op->naborted = n;
    return 0;
}

static void read_cb(void *arg, const st_read_result *res)
{
    read_ctx *rc = arg;
    read_op *op = rc->op;
    op->hwm = rc->phw >= 0 ? rc->phw : res->high_watermark;
    op->lso = rc->chw >= 0 && res->last_stable_offset > rc->chw ? rc->chw : res->last_stable_offset;
    op->log_start = res->log_start_offset;
    if (res->rc) {
        op->error = srv_st_to_kafka(res->rc);
    } else if (res->len >= SRV_REF_MIN && st_read_keep_worth(res)) {
        /* Take the read's buffer rather than copy it when the answer fills
         * at least half of it: otherwise a consumer with a small
         * max.partition.fetch.bytes that stops reading would pin a whole
         * disk read buffer (>= 64 KiB) per answer of a few KiB. */
        op->mem = *res->keep;
        *res->keep = NULL;
        op->data = (uint8_t *)res->data;
        op->len = res->len;
    } else if (res->len) {
        op->data = malloc(res->len);
        if (op->data) {
            memcpy(op->data, res->data, res->len);
            op->len = res->len;
            op->mem = op->data;
        } else {
            op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    if (!op->error && op->committed)
        op->error = collect_aborted(rc->log, op);
    srv_shard *owner = rc->owner;
    free(rc);
    srv_call_reply(owner, &op->base.call);
}

static void run_read(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    read_op *op = (read_op *)base;
    if (!p || srv_part_offline(p)) {
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    /* As Kafka: an older epoch than the leader's is fenced, a newer one is
     * not known yet here (the client or follower has fresher metadata). */
    const srv_topic *t = op->leader_epoch >= 0 ? srv_meta_topic_by_id(owner->meta, &p->topic_id) : NULL;
    const srv_part_repl *pr = t ? srv_topic_repl(t, p->partition) : NULL;
    if (pr && op->leader_epoch != pr->leader_epoch) {
        op->error =
            op->leader_epoch < pr->leader_epoch ? KP_ERR_FENCED_LEADER_EPOCH : KP_ERR_UNKNOWN_LEADER_EPOCH;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (op->replica_id >= 0 && !op->watch) {
        /* As Kafka: a follower's offset outside this log is refused and
         * says nothing of its copy (past our end it would have moved the
         * high watermark over data no follower has). */
        if (op->offset > st_log_end_offset(p->log) || op->offset < st_log_start_offset(p->log)) {
            op->error = KP_ERR_OFFSET_OUT_OF_RANGE;
            srv_call_reply(owner, &base->call);
            return;
        }
        srv_part_follower_fetched(owner, p, op->replica_id, op->offset);
    }
    /* Consumers of a replicated partition read up to its high watermark
     * (what the ISR has); followers up to the leader's durable end. */
    int64_t phw = srv_part_consumer_hw(owner, p), chw = op->replica_id < 0 ? phw : -1;
    if (op->watch) {
        /* Data may have arrived since our read: then the reply says so. */
        op->hwm = chw >= 0 ? chw : st_log_high_watermark(p->log);
        op->lso = st_log_last_stable_offset(p->log);
        if (chw >= 0 && op->lso > chw)
            op->lso = chw;
        /* The LSO moves only when the HW does (a marker counts once acked),
         * so HW wakes cover read_committed waiters too. */
        if ((op->committed ? op->lso : op->hwm) <= op->offset)
            srv_part_add_waiter(owner, p, op->base.call.origin, op->wait_id, op->expire_ms);
        srv_call_reply(owner, &base->call);
        return;
    }
    read_ctx *rc = malloc(sizeof(*rc));
    if (!rc) {
        op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    rc->op = op;
    rc->owner = owner;
    rc->log = p->log;
    rc->chw = chw;
    rc->phw = phw;
    op->hwm = phw >= 0 ? phw : st_log_high_watermark(p->log);
    op->lso = st_log_last_stable_offset(p->log);
    op->log_start = st_log_start_offset(p->log);
    size_t max = (size_t)(op->max_bytes > 0 ? op->max_bytes : 0);
    int r = chw >= 0        ? st_log_read_upto(p->log, op->offset, max, op->committed, chw, read_cb, rc)
            : op->committed ? st_log_read_committed(p->log, op->offset, max, read_cb, rc)
                            : st_log_read(p->log, op->offset, max, read_cb, rc);
    if (r < 0) {
        free(rc);
        op->error = srv_st_to_kafka(r);
        srv_call_reply(owner, &base->call);
    }
}

/* ---- on the request's shard -------------------------------------------- */

static void unpark(srv_shard *s, fetch_state *st)
{
    if (!st->parked)
        return;
    st->parked = 0;
    srv_fetch_wait_cancel(s, st->wait_id);
}

static int same_topic(const kp_fetch_response_fetchable_topic_response *tr, const fetch_part *fp)
{
    return tr->topic.len == fp->topic.len &&
           (tr->topic.len <= 0 || memcmp(tr->topic.p, fp->topic.p, (size_t)fp->topic.len) == 0) &&
           memcmp(tr->topic_id.b, fp->req_topic_id.b, 16) == 0;
}

static void respond(srv_req *req)
{
    fetch_state *st = req->state;
    if (st->responded)
        return;
    st->responded = 1;
    unpark(req->shard, st);
    /* Fetch v0-3 clients read magic 0/1 message sets: convert at the edge. */
    if (st->version <= 3)
        for (int i = 0; i < st->nparts; i++) {
            fetch_part *fp = &st->parts[i];
            if (!fp->len)
                continue;
            kp_writer w;
            kp_writer_init(&w, fp->len);
            if (kp_batches_to_legacy(fp->data, fp->len, st->version <= 1, 64u << 20, &w) != 0) {
                fp->error = KP_ERR_CORRUPT_MESSAGE;
                kp_writer_free(&w);
                w.buf = NULL;
            }
            free(fp->mem);
            fp->data = w.buf;
            fp->mem = w.buf;
            fp->len = w.len;
        }
    srv_fetch_session *fs = srv_fetch_session_find(req->shard, st->session_id);
    st->resp.session_id = fs ? fs->id : 0;
    st->resp.error_code = st->session_error;
    st->resp.responses = kp_arena_alloc(&req->arena, (size_t)st->nparts * sizeof(*st->resp.responses) + 1);
    if (!st->resp.responses) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->resp.responses_count = 0;
    /* Kafka charges a fetch's bytes to the consumer quota; over it, the
     * bytes are taken back and the answer carries only the throttle time
     * (Kafka's getThrottledResponse), the connection muted meanwhile. */
    int64_t would = 0;
    for (int i = 0; i < st->nparts; i++)
        if (st->parts[i].len && !(would > 0 && would + (int64_t)st->parts[i].len > st->max_bytes))
            would += (int64_t)st->parts[i].len;
    int32_t throttle = srv_quota_charge(req, SRV_QK_CONSUMER_BYTE_RATE, (double)would);
    if (throttle > 0) {
        srv_quota_uncharge(req, SRV_QK_CONSUMER_BYTE_RATE, (double)would);
        st->resp.throttle_time_ms = throttle;
        srv_req_mute(req, throttle);
        srv_req_respond(req, &st->resp); /* may free req: see cleanup() */
        return;
    }
    /* Assemble in request order; max_bytes is a soft limit: the first
     * partition with data is always returned whole. */
    int64_t total = 0;
    kp_fetch_response_fetchable_topic_response *tr = NULL;
    for (int i = 0; i < st->nparts; i++) {
        fetch_part *fp = &st->parts[i];
        kp_bytes records = {(const uint8_t *)"", 0};
        if (fp->len && !(total > 0 && total + (int64_t)fp->len > st->max_bytes)) {
            total += (int64_t)fp->len;
            records = (kp_bytes){fp->data, (int32_t)fp->len};
        }
        /* The session's record of this partition (same index as at the start,
         * unless another fetch changed the session meanwhile). */
        srv_fs_part *sp =
            fs && i < fs->n && fs->parts[i].partition == fp->partition &&
                    (st->version >= 13 ? memcmp(fs->parts[i].topic_id.b, fp->req_topic_id.b, 16) == 0
                                       : srv_seq(fp->topic, fs->parts[i].topic))
                ? &fs->parts[i]
                : NULL;
        int news = st->full || records.len > 0 || !sp || !sp->reported || sp->error != fp->error ||
                   sp->hwm != fp->hwm || sp->lso != fp->lso || sp->log_start != fp->log_start;
        if (sp) {
            sp->reported = 1;
            sp->error = fp->error;
            sp->hwm = fp->hwm;
            sp->lso = fp->lso;
            sp->log_start = fp->log_start;
        }
        if (!news)
            continue; /* incremental: nothing new for this partition */
        if (!tr || !same_topic(tr, fp)) {
            tr = &st->resp.responses[st->resp.responses_count++];
            kp_fetch_response_fetchable_topic_response_init(tr);
            tr->topic = fp->topic;
            tr->topic_id = fp->req_topic_id;
            tr->partitions = kp_arena_alloc(&req->arena, (size_t)(st->nparts - i) * sizeof(*tr->partitions));
            tr->partitions_count = 0;
            if (!tr->partitions) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
        }
        kp_fetch_response_partition_data *pd = &tr->partitions[tr->partitions_count++];
        kp_fetch_response_partition_data_init(pd);
        pd->partition_index = fp->partition;
        pd->error_code = fp->error;
        if (fp->error) {
            /* Kafka answers a partition in error without its offsets. */
            pd->high_watermark = -1;
            pd->last_stable_offset = -1;
            pd->log_start_offset = -1;
        } else {
            pd->high_watermark = fp->hwm;
            pd->last_stable_offset = fp->lso;
            pd->log_start_offset = fp->log_start;
        }
        /* As Kafka: a partition it did not read (unknown topic or
         * partition) has an empty list, one whose read failed a null list;
         * a read lists aborted transactions to read_committed readers only,
         * read_uncommitted ones get null. */
        if (!fp->known)
            pd->aborted_transactions_count = 0;
        else if (fp->error)
            pd->aborted_transactions_count = -1;
        else if (st->isolation_level != 1)
            pd->aborted_transactions_count = -1;
        else if (records.len == 0 || fp->naborted == 0)
            pd->aborted_transactions_count = 0;
        else {
            pd->aborted_transactions =
                kp_arena_alloc(&req->arena, fp->naborted * sizeof(*pd->aborted_transactions));
            if (!pd->aborted_transactions) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            for (size_t k = 0; k < fp->naborted; k++) {
                pd->aborted_transactions[k].producer_id = fp->aborted[k].producer_id;
                pd->aborted_transactions[k].first_offset = fp->aborted[k].first_offset;
            }
            pd->aborted_transactions_count = (int32_t)fp->naborted;
        }
        pd->records = records;
        /* The frame refers to the records: the request holds them until the
         * socket has taken them. */
        if (records.len > 0 && fp->mem) {
            if (srv_req_give_mem(req, fp->mem) != 0) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            fp->mem = NULL;
        }
    }
    srv_req_respond(req, &st->resp); /* may free req: see cleanup() */
}

/* The read copies live outside the arena. */
static void cleanup(srv_req *req)
{
    fetch_state *st = req->state;
    for (int i = 0; i < st->nparts; i++) {
        free(st->parts[i].mem);
        free(st->parts[i].aborted);
    }
}

/* The parked wait ended (fetch_wait.c has already unregistered it). */
static void on_wait(srv_shard *s, void *arg, srv_wait_why why)
{
    (void)s;
    srv_req *req = arg;
    fetch_state *st = req->state;
    st->parked = 0;
    if (why == SRV_WAIT_SHUTDOWN) {
        /* Its connection is gone: answering frees it and its read buffers. */
        respond(req);
        return;
    }
    if (why == SRV_WAIT_EXPIRED)
        st->final = 1;
    if (st->reads_pending == 0)
        round_start(req);
}

static void park(srv_req *req)
{
    fetch_state *st = req->state;
    srv_shard *s = req->shard;
    int64_t left = st->deadline_ms - srv_mono_ms();
    if (left <= 0 || (st->wait_id = srv_fetch_wait_park(s, left, on_wait, req)) == 0) {
        respond(req);
        return;
    }
    st->parked = 1;
    /* Ask each owner to wake us on data past what the last read saw. Owners
     * on this shard answer inline: hold the request and defer any wake to
     * the end of the loop, so the round never restarts inside it. */
    srv_req_hold(req);
    st->parking = 1;
    st->wake_pending = 0;
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
        int64_t seen = st->isolation_level == 1 ? fp->lso : fp->hwm;
        op->offset = seen > fp->offset ? seen : fp->offset;
        op->watch = 1;
        op->committed = st->isolation_level == 1;
        op->leader_epoch = fp->leader_epoch;
        op->replica_id = st->replica_id;
        op->wait_id = st->wait_id;
        op->expire_ms = s->now_ms + left + 1000;
        srv_part_op_send(req, &op->base);
    }
    st->parking = 0;
    if (srv_req_release(req) || req->released)
        return;
    if (st->wake_pending && st->parked) {
        unpark(req->shard, st);
        if (st->reads_pending == 0)
            round_start(req);
    }
}

/* A watch op is back; the request stays alive until all are (call.h). */
static void watch_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    read_op *op = (read_op *)base;
    srv_req *req = base->call.req;
    fetch_state *st = req->state;
    int ready = (op->committed ? op->lso : op->hwm) > op->offset;
    uint64_t id = op->wait_id;
    free(op);
    if (ready && st->parked && st->wait_id == id && !st->responded) {
        if (st->parking) {
            st->wake_pending = 1;
            return;
        }
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
        if (st->parts[i].error)
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
    srv_req *req = base->call.req;
    fetch_state *st = req->state;
    fetch_part *fp = op->fp;
    fp->error = op->error;
    fp->hwm = op->hwm;
    fp->lso = op->lso;
    fp->log_start = op->log_start;
    free(fp->mem);
    fp->mem = op->mem;
    fp->data = op->data;
    fp->len = op->len;
    free(fp->aborted);
    fp->aborted = op->aborted;
    fp->naborted = op->naborted;
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
            fp->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        op->base.topic_id = fp->topic_id;
        op->base.partition = fp->partition;
        op->base.run = run_read;
        op->base.done = read_done;
        op->fp = fp;
        op->offset = fp->offset;
        op->max_bytes = fp->max_bytes;
        op->committed = st->isolation_level == 1;
        op->leader_epoch = fp->leader_epoch;
        op->replica_id = st->replica_id;
        st->reads_pending++;
        srv_part_op_send(req, &op->base);
    }
    if (--st->reads_pending == 0)
        round_done(req);
}

static void add_part(srv_req *req, fetch_state *st, kp_str topic, const kp_uuid *req_topic_id,
                     int32_t partition, int64_t offset, int32_t max_bytes, int32_t leader_epoch)
{
    srv_shard *s = req->shard;
    int16_t v = st->version;
    fetch_part *fp = &st->parts[st->nparts++];
    memset(fp, 0, sizeof(*fp));
    fp->topic = topic;
    fp->req_topic_id = *req_topic_id;
    fp->partition = partition;
    fp->offset = offset;
    fp->max_bytes = max_bytes;
    fp->leader_epoch = leader_epoch;
    fp->hwm = -1;
    fp->lso = -1;
    fp->log_start = -1;
    const srv_topic *t =
        v >= 13 ? srv_meta_topic_by_id(s->meta, req_topic_id) : srv_meta_topic(s->meta, topic);
    /* As Kafka: an unknown id first, then READ on the name (also of a topic
     * that does not exist), then the partition. */
    if (!t && v >= 13)
        fp->error = KP_ERR_UNKNOWN_TOPIC_ID;
    else if (st->replica_id >= 0
                 ? !st->cluster_action
                 : !srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, t ? kp_str_c(t->name) : topic))
        fp->error =
            KP_ERR_TOPIC_AUTHORIZATION_FAILED; /* a follower's fetch needs ClusterAction, as Kafka's */
    else if (!t)
        fp->error = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    else if (partition < 0 || partition >= t->nparts)
        fp->error = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    else {
        fp->known = 1;
        fp->topic_id = t->id;
    }
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
    st->isolation_level = rq->isolation_level;
    /* A follower names itself in ReplicaState from v15, in ReplicaId before;
     * only a quorum's brokers replicate (elsewhere it reads as a consumer). */
    st->replica_id = v >= 15 ? (rq->replica_state ? rq->replica_state->replica_id : -1) : rq->replica_id;
    if (!s->b->quorum || st->replica_id < 0)
        st->replica_id = -1;
    else
        st->cluster_action = srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION);
    kp_fetch_response_init(&st->resp);
    st->min_bytes = rq->min_bytes;
    st->max_bytes = rq->max_bytes > 0 ? rq->max_bytes : INT32_MAX;
    /* As Kafka: no more than the consumer quota allows in one window span. */
    double qmax = srv_quota_window_max(req, SRV_QK_CONSUMER_BYTE_RATE);
    if (qmax >= 0 && qmax < (double)st->max_bytes)
        st->max_bytes = qmax < 1 ? 1 : (int32_t)qmax;
    st->deadline_ms = srv_mono_ms() + (rq->max_wait_ms > 0 ? rq->max_wait_ms : 0);
    srv_fetch_session *fs = NULL;
    st->session_error = srv_fetch_session_begin(s, rq, v, &fs, &st->full);
    if (st->session_error) {
        st->final = 1;
        respond(req); /* no partitions: just the session error */
        return;
    }
    if (fs) {
        /* The session's partitions, names copied: the session may change. */
        st->session_id = fs->id;
        st->parts = kp_arena_alloc(&req->arena, (size_t)fs->n * sizeof(*st->parts) + 1);
        if (!st->parts) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        for (int i = 0; i < fs->n; i++) {
            const srv_fs_part *sp = &fs->parts[i];
            size_t n = (size_t)srv_slen(sp->topic);
            char *name = kp_arena_alloc(&req->arena, n + 1);
            if (!name) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            memcpy(name, sp->topic, n);
            kp_uuid rid = v >= 13 ? sp->topic_id : (kp_uuid){{0}};
            /* v13+ names topics by id only; the name field stays empty. */
            add_part(req, st, v >= 13 ? (kp_str){"", 0} : (kp_str){name, (int32_t)n}, &rid, sp->partition,
                     sp->fetch_offset, sp->max_bytes, -1);
        }
    } else {
        int total = 0;
        for (int32_t i = 0; i < rq->topics_count; i++)
            total += rq->topics[i].partitions_count > 0 ? rq->topics[i].partitions_count : 0;
        st->parts = kp_arena_alloc(&req->arena, (size_t)total * sizeof(*st->parts) + 1);
        if (!st->parts) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        for (int32_t i = 0; i < rq->topics_count; i++) {
            const kp_fetch_request_fetch_topic *ft = &rq->topics[i];
            for (int32_t j = 0; j < ft->partitions_count; j++)
                add_part(req, st, ft->topic, &ft->topic_id, ft->partitions[j].partition,
                         ft->partitions[j].fetch_offset, ft->partitions[j].partition_max_bytes,
                         ft->partitions[j].current_leader_epoch);
        }
    }
    round_start(req);
}

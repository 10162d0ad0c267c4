/*
 * list_offsets.c — ListOffsets (v1+): earliest (-2), latest (-1), max
 * timestamp (-3) and first offset at or after a timestamp, answered by each
 * partition's owner. read_committed requests see the log up to the last
 * stable offset, read_uncommitted ones up to the high watermark (Kafka's
 * Partition.fetchOffsetForTimestamp).
 */
#include <stdlib.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "partcall.h"
#include "txn_part.h"

typedef struct lo_op {
    srv_part_op base;
    int64_t timestamp;
    int committed; /* isolation_level READ_COMMITTED */
    kp_list_offsets_response_list_offsets_partition_response *out;
    int16_t error;
    int64_t offset, ts;
} lo_op;

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    lo_op *op = (lo_op *)base;
    srv_req *req = base->call.req;
    op->out->error_code = op->error;
    op->out->offset = op->error ? -1 : op->offset;
    op->out->timestamp = op->error ? -1 : op->ts;
    int16_t v = req->kr.hdr.request_api_version;
    if (v >= 4) /* not representable before v4 */
        op->out->leader_epoch = op->error || op->offset < 0 ? -1 : 0;
    if (v == 0) {
        /* v0 answers a list of offsets; one exact answer is a valid list. */
        op->out->offset = -1;
        op->out->timestamp = -1;
        op->out->old_style_offsets = kp_arena_alloc(&req->arena, sizeof(int64_t));
        op->out->old_style_offsets_count = 0;
        if (!op->error && op->offset >= 0 && op->out->old_style_offsets) {
            op->out->old_style_offsets[0] = op->offset;
            op->out->old_style_offsets_count = 1;
        }
    }
    free(op);
}

typedef struct lo_ctx {
    lo_op *op;
    srv_shard *owner;
    st_log *log;
    int64_t chw; /* a replicated partition's high watermark (srv_part_consumer_hw), -1: none */
} lo_ctx;

static void offset_cb(void *arg, int rc, int64_t offset, int64_t timestamp)
{
    lo_ctx *c = arg;
    c->op->error = srv_st_to_kafka(rc);
    c->op->offset = offset;
    c->op->ts = timestamp;
    /* As Kafka: LATEST is the last fetchable offset; a search (timestamp or
     * max timestamp) finds nothing at or past it; EARLIEST is not bounded. */
    int64_t bound = c->op->committed ? st_log_last_stable_offset(c->log) : -1;
    if (c->chw >= 0 && (bound < 0 || c->chw < bound))
        bound = c->chw; /* a replicated partition: what its ISR has */
    if (!rc && bound >= 0)
        srv_txn_bound_list_offset(c->op->timestamp, bound, &c->op->offset, &c->op->ts);
    srv_shard *owner = c->owner;
    lo_op *op = c->op;
    free(c);
    srv_call_reply(owner, &op->base.call);
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    lo_op *op = (lo_op *)base;
    if (!p || srv_part_offline(p)) {
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    lo_ctx *c = malloc(sizeof(*c));
    if (!c) {
        op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    c->op = op;
    c->owner = owner;
    c->log = p->log;
    c->chw = srv_part_consumer_hw(owner, p);
    int rc = st_log_offset_for_time(p->log, op->timestamp, offset_cb, c);
    if (rc < 0) {
        free(c);
        op->error = srv_st_to_kafka(rc);
        srv_call_reply(owner, &base->call);
    }
}

void srv_h_list_offsets(srv_req *req)
{
    const kp_list_offsets_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_list_offsets_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    if (resp) {
        kp_list_offsets_response_init(resp);
        resp->topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*resp->topics) + 1);
    }
    if (!resp || !resp->topics) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = resp;
    resp->topics_count = nt;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < nt; i++) {
        const kp_list_offsets_request_list_offsets_topic *tq = &rq->topics[i];
        kp_list_offsets_response_list_offsets_topic_response *tr = &resp->topics[i];
        kp_list_offsets_response_list_offsets_topic_response_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        tr->partitions_count = tr->partitions ? np : 0;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        int may_describe = srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            const kp_list_offsets_request_list_offsets_partition *pq = &tq->partitions[j];
            kp_list_offsets_response_list_offsets_partition_response *pr = &tr->partitions[j];
            kp_list_offsets_response_list_offsets_partition_response_init(pr);
            pr->partition_index = pq->partition_index;
            if (req->kr.hdr.request_api_version >= 1) { /* v0 carries only old_style_offsets */
                pr->offset = -1;
                pr->timestamp = -1;
            }
            if (!may_describe) {
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!t || pq->partition_index < 0 || pq->partition_index >= t->nparts) {
                pr->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            int64_t ts = pq->timestamp;
            if (ts == -5) { /* latest tiered offset: nothing is tiered here */
                continue;
            }
            if (ts == -4) /* earliest local: all data is local */
                ts = -2;
            if (ts < -3) {
                pr->error_code = KP_ERR_INVALID_REQUEST;
                continue;
            }
            lo_op *op = srv_part_op_new(t, pq->partition_index, sizeof(*op), run, op_done, &pr->error_code);
            if (!op)
                continue;
            op->timestamp = ts;
            op->committed = req->kr.hdr.request_api_version >= 2 && rq->isolation_level == 1;
            op->out = pr;
            srv_part_op_send(req, &op->base);
        }
    }
    srv_req_release(req);
}

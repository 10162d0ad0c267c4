/*
 * offset_for_leader_epoch.c — OffsetForLeaderEpoch (v2-4, as consumers use
 * it to validate positions after a leader change, and followers to find
 * where to truncate). On a single node every partition has had one leader
 * epoch, 0, since it was created: a request for epoch 0 ends at the high
 * watermark, one for a later epoch gets no epoch and no offset (-1, -1:
 * Kafka's epoch cache knows no end for an epoch above its latest); a
 * current_leader_epoch other than 0 is fenced (older) or unknown (newer), as
 * Kafka answers. A placed partition (a quorum) answers from its log's epoch
 * cache and the placement's leader epoch, which Kafka's leader holds in its
 * cache from the moment it leads (starting at its log end).
 */
#include <stdlib.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "partcall.h"

typedef struct ofle_op {
    srv_part_op base;
    int32_t current_epoch, epoch;
    kp_offset_for_leader_epoch_response_epoch_end_offset *out; /* filled back home */
    int16_t error;
    int32_t result_epoch;
    int64_t end_offset;
} ofle_op;

/* Every call is back. */
static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    ofle_op *op = (ofle_op *)base;
    op->out->error_code = op->error;
    op->out->leader_epoch = op->result_epoch;
    op->out->end_offset = op->end_offset;
    free(op);
}

/* A partition with a placement: 1 with the answer in op, 0 for the
 * single-node answer. */
static int placed_end(srv_shard *owner, ofle_op *op, srv_part *p)
{
    const srv_topic *t = srv_meta_topic_by_id(owner->meta, &p->topic_id);
    const srv_part_repl *pr = t ? srv_topic_repl(t, p->partition) : NULL;
    if (!pr)
        return 0;
    int32_t cur = pr->leader_epoch;
    if (op->current_epoch >= 0 && op->current_epoch != cur) {
        op->error = op->current_epoch < cur ? KP_ERR_FENCED_LEADER_EPOCH : KP_ERR_UNKNOWN_LEADER_EPOCH;
        return 1;
    }
    int32_t latest = st_log_latest_epoch(p->log);
    int64_t leo = st_log_end_offset(p->log);
    if (op->epoch < 0 || op->epoch > cur)
        return 1; /* (-1, -1) */
    if (op->epoch == cur) {
        op->result_epoch = cur;
        op->end_offset = leo;
    } else if (op->epoch >= latest) {
        /* The current epoch, no batch of it yet, starts at the log end. */
        op->result_epoch = latest >= 0 ? latest : op->epoch;
        op->end_offset = leo;
    } else {
        st_log_epoch_end(p->log, op->epoch, &op->result_epoch, &op->end_offset);
    }
    return 1;
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    ofle_op *op = (ofle_op *)base;
    op->result_epoch = -1;
    op->end_offset = -1;
    if (!p) {
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (srv_part_offline(p)) {
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
    } else if (placed_end(owner, op, p)) {
        /* answered from the epoch cache */
    } else if (op->current_epoch > 0) {
        op->error = KP_ERR_UNKNOWN_LEADER_EPOCH;
    } else if (op->current_epoch < -1) {
        op->error = KP_ERR_FENCED_LEADER_EPOCH;
    } else if (op->epoch == 0) {
        op->result_epoch = 0;
        op->end_offset = st_log_high_watermark(p->log);
    }
    srv_call_reply(owner, &base->call);
}

void srv_h_offset_for_leader_epoch(srv_req *req)
{
    const kp_offset_for_leader_epoch_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_offset_for_leader_epoch_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    if (resp) {
        kp_offset_for_leader_epoch_response_init(resp);
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
        const kp_offset_for_leader_epoch_request_offset_for_leader_topic *tq = &rq->topics[i];
        kp_offset_for_leader_epoch_response_offset_for_leader_topic_result *tr = &resp->topics[i];
        kp_offset_for_leader_epoch_response_offset_for_leader_topic_result_init(tr);
        tr->topic = tq->topic;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        tr->partitions_count = tr->partitions ? np : 0;
        const srv_topic *t = srv_meta_topic(s->meta, tq->topic);
        int may_describe = srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, tq->topic);
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            const kp_offset_for_leader_epoch_request_offset_for_leader_partition *pq = &tq->partitions[j];
            kp_offset_for_leader_epoch_response_epoch_end_offset *pr = &tr->partitions[j];
            kp_offset_for_leader_epoch_response_epoch_end_offset_init(pr);
            pr->partition = pq->partition;
            pr->leader_epoch = -1;
            pr->end_offset = -1;
            if (!may_describe) {
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            ofle_op *op = srv_part_op_new(t, pq->partition, sizeof(*op), run, op_done, &pr->error_code);
            if (!op)
                continue;
            op->current_epoch = pq->current_leader_epoch;
            op->epoch = pq->leader_epoch;
            op->out = pr;
            srv_part_op_send(req, &op->base);
        }
    }
    srv_req_release(req);
}

/*
 * delete_records.c — DeleteRecords (v0-2): moves each partition's log start
 * offset (-1 = the high watermark); whole segments below it go. Answered
 * once the new start offset is persisted by the owner. A topic whose
 * cleanup.policy lacks "delete" refuses with POLICY_VIOLATION, as Kafka does.
 */
#include <stdlib.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "partcall.h"
#include "validate.h"

typedef struct dr_op {
    srv_part_op base;
    int64_t offset;
    int16_t error;
    int64_t low_watermark;
    srv_shard *owner;
    kp_delete_records_response_delete_records_partition_result *out;
} dr_op;

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    dr_op *op = (dr_op *)base;
    op->out->error_code = op->error;
    op->out->low_watermark = op->error ? -1 : op->low_watermark;
    free(op);
}

static void deleted(void *arg, int rc, int64_t offset)
{
    (void)offset;
    dr_op *op = arg;
    op->error = srv_st_to_kafka(rc);
    srv_part *p = srv_partmap_get(op->owner->parts, &op->base.topic_id, op->base.partition);
    op->low_watermark = p && p->log ? st_log_start_offset(p->log) : -1;
    srv_call_reply(op->owner, &op->base.call);
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    dr_op *op = (dr_op *)base;
    op->owner = owner;
    if (!p || srv_part_offline(p)) {
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (op->offset < -1 || op->offset > st_log_high_watermark(p->log)) {
        op->error = KP_ERR_OFFSET_OUT_OF_RANGE;
        srv_call_reply(owner, &base->call);
        return;
    }
    int rc = st_log_delete_records(p->log, op->offset, deleted, op);
    if (rc < 0) {
        op->error = srv_st_to_kafka(rc);
        srv_call_reply(owner, &base->call);
    }
}

void srv_h_delete_records(srv_req *req)
{
    const kp_delete_records_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_delete_records_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    if (resp) {
        kp_delete_records_response_init(resp);
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
        const kp_delete_records_request_delete_records_topic *tq = &rq->topics[i];
        kp_delete_records_response_delete_records_topic_result *tr = &resp->topics[i];
        kp_delete_records_response_delete_records_topic_result_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        tr->partitions_count = tr->partitions ? np : 0;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        /* Kafka deletes records only where cleanup.policy includes "delete". */
        int refused = t && !srv_validate_policy_get(&s->b->cfg, s->meta, t)->del;
        int may_delete = srv_authorize(req, SRV_OP_DELETE, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            const kp_delete_records_request_delete_records_partition *pq = &tq->partitions[j];
            kp_delete_records_response_delete_records_partition_result *pr = &tr->partitions[j];
            kp_delete_records_response_delete_records_partition_result_init(pr);
            pr->partition_index = pq->partition_index;
            pr->low_watermark = -1;
            if (!may_delete) {
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (refused && pq->partition_index >= 0 && pq->partition_index < t->nparts) {
                pr->error_code = KP_ERR_POLICY_VIOLATION;
                continue;
            }
            dr_op *op = srv_part_op_new(t, pq->partition_index, sizeof(*op), run, op_done, &pr->error_code);
            if (!op)
                continue;
            op->offset = pq->offset;
            op->out = pr;
            srv_part_op_send(req, &op->base);
        }
    }
    srv_req_release(req);
}

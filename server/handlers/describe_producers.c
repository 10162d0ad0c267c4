/*
 * describe_producers.c — DescribeProducers (v0): the idempotent producers
 * each partition's log tracks, read by the owner shard and copied into the
 * op (the request's shard builds the answer).
 */
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "meta.h"
#include "partcall.h"

#define MAX_LISTED 1024 /* a partition rarely tracks more; more are cut, not wrong */

typedef struct dp_op {
    srv_part_op base;
    int16_t error;
    size_t n;
    st_producer_info *list;
    kp_describe_producers_response_partition_response *out;
} dp_op;

/* Every call is back. */
static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void op_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    dp_op *op = (dp_op *)base;
    srv_req *req = base->call.req;
    op->out->error_code = op->error;
    op->out->active_producers = kp_arena_alloc(&req->arena, op->n * sizeof(*op->out->active_producers) + 1);
    op->out->active_producers_count = 0;
    for (size_t i = 0; op->out->active_producers && i < op->n; i++) {
        kp_describe_producers_response_producer_state *ps = &op->out->active_producers[i];
        kp_describe_producers_response_producer_state_init(ps);
        ps->producer_id = op->list[i].producer_id;
        ps->producer_epoch = op->list[i].epoch;
        ps->last_sequence = op->list[i].last_sequence;
        ps->last_timestamp = op->list[i].last_timestamp;
        ps->coordinator_epoch = op->list[i].coordinator_epoch;
        ps->current_txn_start_offset = op->list[i].current_txn_start_offset;
        op->out->active_producers_count++;
    }
    free(op->list);
    free(op);
}

static void run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    dp_op *op = (dp_op *)base;
    if (!p) {
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (srv_part_offline(p)) {
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
    } else {
        size_t n = st_log_producers(p->log, NULL, 0);
        if (n > MAX_LISTED)
            n = MAX_LISTED;
        op->list = n ? malloc(n * sizeof(*op->list)) : NULL;
        if (n && !op->list)
            op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        else
            op->n = n ? (size_t)st_log_producers(p->log, op->list, n) : 0;
        if (op->n > n)
            op->n = n;
    }
    srv_call_reply(owner, &base->call);
}

void srv_h_describe_producers(srv_req *req)
{
    const kp_describe_producers_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_describe_producers_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    if (resp) {
        kp_describe_producers_response_init(resp);
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
        const kp_describe_producers_request_topic_request *tq = &rq->topics[i];
        kp_describe_producers_response_topic_response *tr = &resp->topics[i];
        kp_describe_producers_response_topic_response_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partition_indexes_count > 0 ? tq->partition_indexes_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        tr->partitions_count = tr->partitions ? np : 0;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        int may_read = srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            int32_t pi = tq->partition_indexes[j];
            kp_describe_producers_response_partition_response *pr = &tr->partitions[j];
            kp_describe_producers_response_partition_response_init(pr);
            pr->partition_index = pi;
            pr->active_producers_count = 0;
            if (!may_read) {
                pr->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
                pr->error_message = kp_str_c("Topic authorization failed.");
                continue;
            }
            dp_op *op = srv_part_op_new(t, pi, sizeof(*op), run, op_done, &pr->error_code);
            if (!t) /* Kafka names the error of a topic it does not know (not of a partition) */
                pr->error_message = kp_str_c("This server does not host this topic-partition.");
            if (!op)
                continue;
            op->out = pr;
            srv_part_op_send(req, &op->base);
        }
    }
    srv_req_release(req);
}

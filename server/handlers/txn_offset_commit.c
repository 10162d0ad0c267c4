/*
 * txn_offset_commit.c — TxnOffsetCommit (v0-5): a transactional producer's
 * offsets for a group. Authorized and checked against the topics here (as
 * Kafka's KafkaApis), written by the group's coordinator shard as a
 * transactional batch of the producer and kept pending there until the
 * producer's marker reaches that __consumer_offsets partition
 * (write_txn_markers.c); answered once the batch is durable. With
 * transaction.partition.verification.enable=true (the default) the
 * transaction coordinator first vouches that the group's __consumer_offsets
 * partition is in the producer's transaction (KIP-890 part 1, the verify op
 * Produce uses too): nothing is written otherwise. From v5 (KIP-890 part 2)
 * the coordinator adds that partition to the transaction instead, as
 * AddOffsetsToTxn did before.
 *
 * Owns the request's items while the calls are out. Must not: make the
 * offsets visible (the marker does), decide a transaction's fate, or wait
 * for the coordinator any other way than its srv_call.
 */
#include <stdlib.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "group/group.h"
#include "meta.h"

typedef struct toc_call {
    srv_gcall c;
    srv_shard *owner;
    int n;
    srv_commit_item *items; /* in the request's arena */
    srv_txn_commit_req rq;
} toc_call;

typedef struct toc_state {
    kp_txn_offset_commit_response resp;
    int n;
    srv_commit_item *items;
    kp_txn_offset_commit_response_txn_offset_commit_response_partition **out;
} toc_state;

static void answer(srv_req *req)
{
    toc_state *st = req->state;
    for (int i = 0; i < st->n; i++)
        st->out[i]->error_code = st->items[i].error;
    srv_req_respond(req, &st->resp);
}

static void fail_all(toc_state *st, int16_t err)
{
    for (int i = 0; i < st->n; i++)
        if (!st->items[i].error)
            st->items[i].error = err;
}

static void written(void *ctx)
{
    toc_call *o = ctx;
    srv_call_reply(o->owner, &o->c.call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    toc_call *o = (toc_call *)c;
    o->owner = owner;
    srv_group_txn_commit(gs, c->partition, &o->rq, o->n, o->items, written, o);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    if (c->error)
        fail_all(req->state, c->error);
    srv_gcall_free(c);
    answer(req);
}

static void commit(srv_req *req);

static void verified(srv_shard *s, srv_txn_op *vop)
{
    (void)s;
    srv_req *req = vop->call.req;
    int16_t err = srv_txn_offset_commit_error(srv_txn_verify_result(vop, 0), req->kr.hdr.request_api_version);
    srv_txn_op_free(vop);
    if (err) {
        fail_all(req->state, err);
        answer(req);
        return;
    }
    commit(req);
}

/* Kafka's GroupCoordinatorService.commitTransactionalOffsets with
 * verification: the one partition verified is the group's
 * __consumer_offsets partition, which AddOffsetsToTxn added. */
static void verify_then_commit(srv_req *req)
{
    const kp_txn_offset_commit_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    int16_t err = srv_groups_ready(s);
    const srv_topic *offsets = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_OFFSETS_TOPIC));
    if (!err && !offsets)
        err = KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (!err) {
        srv_txn_tp *part = calloc(1, sizeof(*part));
        if (!part) {
            err = KP_ERR_UNKNOWN_SERVER_ERROR;
        } else {
            part->topic = (char *)SRV_TXN_OFFSETS_TOPIC; /* read-only on the coordinator */
            part->topic_len = (int32_t)(sizeof(SRV_TXN_OFFSETS_TOPIC) - 1);
            part->partition = srv_group_partition_for(rq->group_id, offsets->nparts);
            int32_t np = srv_txns_nparts(s);
            err = srv_txn_verify_send(
                req, np > 0 ? srv_group_partition_for(rq->transactional_id, np) : -1, rq->transactional_id,
                rq->producer_id, rq->producer_epoch,
                srv_txn_client_tv(req->kr.hdr.request_api_key, req->kr.hdr.request_api_version), part, 1,
                verified, NULL, NULL);
            if (!err)
                return;
        }
    }
    fail_all(req->state, srv_txn_offset_commit_error(err, req->kr.hdr.request_api_version));
    answer(req);
}

void srv_h_txn_offset_commit(srv_req *req)
{
    const kp_txn_offset_commit_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    srv_shard *s = req->shard;
    int64_t now = srv_now_ms();
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    int n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += rq->topics[i].partitions_count > 0 ? rq->topics[i].partitions_count : 0;
    toc_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st) {
        kp_txn_offset_commit_response_init(&st->resp);
        st->resp.topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*st->resp.topics) + 1);
        st->items = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->items) + 1);
        st->out = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->out) + 1);
    }
    if (!st || !st->resp.topics || !st->items || !st->out) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = st;
    st->resp.topics_count = nt;
    /* As Kafka: WRITE on the transactional id, then READ on the group (each
     * refusal answers every partition), then READ on each topic. */
    int16_t req_err = KP_ERR_NONE;
    if (!srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_id))
        req_err = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    else if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id))
        req_err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    int valid = 0;
    for (int32_t i = 0; i < nt; i++) {
        const kp_txn_offset_commit_request_txn_offset_commit_request_topic *tq = &rq->topics[i];
        kp_txn_offset_commit_response_txn_offset_commit_response_topic *tr = &st->resp.topics[i];
        kp_txn_offset_commit_response_txn_offset_commit_response_topic_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        if (!tr->partitions) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        tr->partitions_count = np;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        int topic_ok = !req_err && srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < np; j++) {
            const kp_txn_offset_commit_request_txn_offset_commit_request_partition *pq = &tq->partitions[j];
            kp_txn_offset_commit_response_txn_offset_commit_response_partition *pr = &tr->partitions[j];
            kp_txn_offset_commit_response_txn_offset_commit_response_partition_init(pr);
            pr->partition_index = pq->partition_index;
            srv_commit_item *it = &st->items[st->n];
            st->out[st->n++] = pr;
            it->topic = tq->name;
            it->partition = pq->partition_index;
            it->offset = pq->committed_offset;
            it->leader_epoch = v >= 2 ? pq->committed_leader_epoch : -1;
            it->metadata = pq->committed_metadata;
            it->commit_ts = now;
            it->expire_ts = -1;
            if (req_err)
                it->error = req_err;
            else if (!topic_ok)
                it->error = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!t || pq->partition_index < 0 || pq->partition_index >= t->nparts)
                it->error = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                valid++;
        }
    }
    if (valid == 0) {
        answer(req);
        return;
    }
    /* As Kafka's group coordinator: an invalid group id before anything else. */
    if (rq->group_id.len <= 0) {
        fail_all(st, KP_ERR_INVALID_GROUP_ID);
        answer(req);
        return;
    }
    /* v5 (transactions v2) has no AddOffsetsToTxn before it: the
     * coordinator's add is how the offsets get into the transaction, so it
     * runs whatever the verification setting. */
    if (s->b->cfg.txn_partition_verification || v >= 5) {
        verify_then_commit(req);
        return;
    }
    commit(req);
}

/* Sends the valid items to the group's coordinator shard. */
static void commit(srv_req *req)
{
    const kp_txn_offset_commit_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    toc_state *st = req->state;
    toc_call *o = srv_gcall_new(sizeof(*o), run, done);
    if (!o) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    o->n = st->n;
    o->items = st->items;
    o->rq.group_id = rq->group_id;
    o->rq.generation = v >= 3 ? rq->generation_id : -1;
    o->rq.member_id = v >= 3 && rq->member_id.len >= 0 ? rq->member_id : kp_str_c("");
    o->rq.instance_id = v >= 3 ? rq->group_instance_id : KP_STR_NULL;
    o->rq.producer_id = rq->producer_id;
    o->rq.producer_epoch = rq->producer_epoch;
    int16_t err = srv_gcall_send(req, &o->c, rq->group_id);
    if (err) {
        srv_gcall_free(&o->c);
        fail_all(st, err);
        answer(req);
    }
}

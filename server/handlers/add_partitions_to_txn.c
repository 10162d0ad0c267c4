/*
 * add_partitions_to_txn.c — AddPartitionsToTxn v0-5: a producer's partitions
 * join its transaction (v0-3, one transaction), or a broker's batched form
 * (v4+, several transactions, each possibly verify-only: KIP-890 part 1).
 * Authorization and the partition checks are Kafka's KafkaApis ones; the
 * decision and its record are the coordinator's (txn_coord.c).
 *
 * Owns the per-transaction ops while they are out and the answer's shape.
 * Must not: decide a transaction's state.
 */
#include <stdlib.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/group.h"
#include "meta.h"

typedef kp_add_partitions_to_txn_request_add_partitions_to_txn_topic req_topic;
typedef kp_add_partitions_to_txn_response_add_partitions_to_txn_topic_result res_topic;
typedef kp_add_partitions_to_txn_response_add_partitions_to_txn_partition_result res_part;

/* One transaction of the request and where its answer goes. */
typedef struct one_txn {
    kp_str txn_id;
    int64_t pid;
    int16_t epoch;
    bool verify_only;
    const req_topic *topics;
    int32_t ntopics;
    res_topic *out; /* ntopics results, partitions in request order */
} one_txn;

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void set_all(one_txn *t, int16_t err)
{
    for (int32_t i = 0; i < t->ntopics; i++)
        for (int32_t k = 0; k < t->out[i].results_by_partition_count; k++)
            t->out[i].results_by_partition[k].partition_error_code = err;
}

static int16_t map_error(int16_t err, int16_t version)
{
    /* KafkaApis: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. */
    return srv_txn_map_fenced(err, version, 2);
}

static void txn_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    srv_req *req = op->call.req;
    one_txn *t = op->user;
    int16_t version = req->kr.hdr.request_api_version;
    if (op->kind == SRV_TXN_OP_VERIFY && op->error == KP_ERR_NONE) {
        int32_t idx = 0;
        for (int32_t i = 0; i < t->ntopics; i++)
            for (int32_t k = 0; k < t->out[i].results_by_partition_count; k++)
                t->out[i].results_by_partition[k].partition_error_code = op->per_part[idx++];
    } else {
        set_all(t, map_error(op->error, version));
    }
    srv_txn_op_free(op);
}

/* Fills t->out with the request's partitions; 0, or -1 out of memory. */
static int shape(srv_req *req, one_txn *t)
{
    t->out = kp_arena_alloc(&req->arena, (size_t)t->ntopics * sizeof(*t->out) + 1);
    if (!t->out)
        return -1;
    for (int32_t i = 0; i < t->ntopics; i++) {
        res_topic *rt = &t->out[i];
        kp_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_init(rt);
        rt->name = t->topics[i].name;
        int32_t np = t->topics[i].partitions_count > 0 ? t->topics[i].partitions_count : 0;
        rt->results_by_partition = kp_arena_alloc(&req->arena, (size_t)np * sizeof(res_part) + 1);
        if (!rt->results_by_partition)
            return -1;
        rt->results_by_partition_count = np;
        for (int32_t k = 0; k < np; k++) {
            kp_add_partitions_to_txn_response_add_partitions_to_txn_partition_result_init(
                &rt->results_by_partition[k]);
            rt->results_by_partition[k].partition_index = t->topics[i].partitions[k];
        }
    }
    return 0;
}

/* Checks the partitions as KafkaApis does, then sends the op. */
static void send_one(srv_req *req, one_txn *t, int16_t version)
{
    srv_shard *s = req->shard;
    if (!srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, t->txn_id)) {
        set_all(t, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return;
    }
    /* Unauthorized topics, then unknown partitions; when any, the others are
     * OPERATION_NOT_ATTEMPTED and nothing is sent. */
    int32_t total = 0;
    bool bad = false;
    for (int32_t i = 0; i < t->ntopics; i++) {
        res_topic *rt = &t->out[i];
        bool may = srv_authorize(req, SRV_OP_WRITE, SRV_RES_TOPIC, rt->name);
        const srv_topic *topic = srv_meta_topic(s->meta, rt->name);
        for (int32_t k = 0; k < rt->results_by_partition_count; k++) {
            int32_t p = rt->results_by_partition[k].partition_index;
            int16_t err = 0;
            if (!may)
                err = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!topic || p < 0 || p >= topic->nparts)
                err = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            rt->results_by_partition[k].partition_error_code = err;
            bad |= err != 0;
            total++;
        }
    }
    if (bad) {
        for (int32_t i = 0; i < t->ntopics; i++)
            for (int32_t k = 0; k < t->out[i].results_by_partition_count; k++)
                if (!t->out[i].results_by_partition[k].partition_error_code)
                    t->out[i].results_by_partition[k].partition_error_code = KP_ERR_OPERATION_NOT_ATTEMPTED;
        return;
    }
    srv_txn_op *op = srv_txn_op_new(t->verify_only ? SRV_TXN_OP_VERIFY : SRV_TXN_OP_ADD_PARTS, txn_done);
    srv_txn_tp *parts = calloc((size_t)total + 1, sizeof(*parts));
    int16_t *per = t->verify_only ? calloc((size_t)total + 1, sizeof(*per)) : NULL;
    if (!op || !parts || (t->verify_only && !per)) {
        srv_txn_op_free(op);
        free(parts);
        free(per);
        set_all(t, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    op->parts = parts;
    op->per_part = per;
    int32_t n = 0;
    for (int32_t i = 0; i < t->ntopics; i++)
        for (int32_t k = 0; k < t->out[i].results_by_partition_count; k++) {
            /* Read-only on the coordinator: the decision copies what it keeps. */
            parts[n].topic = (char *)t->out[i].name.p;
            parts[n].topic_len = t->out[i].name.len;
            parts[n].partition = t->out[i].results_by_partition[k].partition_index;
            n++;
        }
    op->txn_id = t->txn_id;
    op->producer_id = t->pid;
    op->producer_epoch = t->epoch;
    op->nparts = n;
    op->client_tv = version >= 5 ? 2 : 0;
    op->user = t;
    int32_t np = srv_txns_nparts(s);
    int16_t err = srv_txn_op_send(req, op, np > 0 ? srv_group_partition_for(t->txn_id, np) : -1);
    if (err) {
        srv_txn_op_free(op);
        set_all(t, err);
    }
}

void srv_h_add_partitions_to_txn(srv_req *req)
{
    const kp_add_partitions_to_txn_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    kp_add_partitions_to_txn_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    if (!resp) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_add_partitions_to_txn_response_init(resp);
    req->state = resp;
    if (v < 4) {
        one_txn *t = kp_arena_alloc(&req->arena, sizeof(*t));
        if (!t) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        t->txn_id = rq->v3_and_below_transactional_id;
        t->pid = rq->v3_and_below_producer_id;
        t->epoch = rq->v3_and_below_producer_epoch;
        t->verify_only = false;
        t->topics = rq->v3_and_below_topics;
        t->ntopics = rq->v3_and_below_topics_count > 0 ? rq->v3_and_below_topics_count : 0;
        if (shape(req, t)) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        resp->results_by_topic_v3_and_below = t->out;
        resp->results_by_topic_v3_and_below_count = t->ntopics;
        srv_req_then(req, finish);
        srv_req_hold(req);
        send_one(req, t, v);
        srv_req_release(req);
        return;
    }
    int32_t nt = rq->transactions_count > 0 ? rq->transactions_count : 0;
    resp->results_by_transaction =
        kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*resp->results_by_transaction) + 1);
    one_txn *txns = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*txns) + 1);
    if (!resp->results_by_transaction || !txns) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->results_by_transaction_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const kp_add_partitions_to_txn_request_add_partitions_to_txn_transaction *q = &rq->transactions[i];
        one_txn *t = &txns[i];
        t->txn_id = q->transactional_id;
        t->pid = q->producer_id;
        t->epoch = q->producer_epoch;
        t->verify_only = q->verify_only != 0;
        t->topics = q->topics;
        t->ntopics = q->topics_count > 0 ? q->topics_count : 0;
        kp_add_partitions_to_txn_response_add_partitions_to_txn_result *r = &resp->results_by_transaction[i];
        kp_add_partitions_to_txn_response_add_partitions_to_txn_result_init(r);
        r->transactional_id = q->transactional_id;
        if (shape(req, t)) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        r->topic_results = t->out;
        r->topic_results_count = t->ntopics;
    }
    /* v4+ is the brokers' batched form (KIP-890): CLUSTER_ACTION, as Kafka. */
    if (!srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION)) {
        resp->error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp->results_by_transaction_count = 0;
        srv_req_respond(req, resp);
        return;
    }
    srv_req_then(req, finish);
    srv_req_hold(req);
    for (int32_t i = 0; i < nt; i++)
        send_one(req, &txns[i], v);
    srv_req_release(req);
}

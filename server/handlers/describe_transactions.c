/*
 * describe_transactions.c — DescribeTransactions v0: the state of each
 * transactional id, asked of its coordinator (txn_coord.c), one op per id.
 * An id the principal may not DESCRIBE is TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
 * an unknown one TRANSACTIONAL_ID_NOT_FOUND; partitions of topics it may not
 * DESCRIBE are left out, as KafkaApis does.
 *
 * Owns the answer's shape and the ops while they are out. Must not: read a
 * coordinator's map from this shard.
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/group.h"

typedef kp_describe_transactions_response_transaction_state txn_state;

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void fill(srv_req *req, txn_state *out, const srv_txn_desc *d)
{
    const srv_txn_image *img = &d->img;
    out->transaction_state = kp_str_c(srv_txn_state_name(img->state));
    out->transaction_timeout_ms = img->timeout_ms;
    out->transaction_start_time_ms = img->start_ms;
    out->producer_id = img->producer_id;
    out->producer_epoch = img->producer_epoch;
    /* Grouped by topic, in the order the partitions were added. */
    out->topics = kp_arena_alloc(&req->arena, (size_t)img->nparts * sizeof(*out->topics) + 1);
    if (!out->topics)
        return; /* the arena's failed flag closes the connection instead */
    int32_t nt = 0;
    for (int32_t i = 0; i < img->nparts; i++) {
        kp_str name = {img->parts[i].topic, img->parts[i].topic_len};
        int32_t k = 0;
        while (k < nt && !(out->topics[k].topic.len == name.len &&
                           memcmp(out->topics[k].topic.p, name.p, (size_t)name.len) == 0))
            k++;
        if (k == nt) {
            if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, name))
                continue;
            kp_describe_transactions_response_topic_data_init(&out->topics[k]);
            out->topics[k].topic = kp_arena_str(&req->arena, name);
            out->topics[k].partitions =
                kp_arena_alloc(&req->arena, (size_t)img->nparts * sizeof(int32_t) + 1);
            out->topics[k].partitions_count = 0;
            if (!out->topics[k].partitions)
                return;
            nt++;
        }
        out->topics[k].partitions[out->topics[k].partitions_count++] = img->parts[i].partition;
    }
    out->topics_count = nt;
}

static void txn_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    srv_req *req = op->call.req;
    txn_state *out = op->user;
    out->error_code = op->error;
    if (!op->error && op->ndescs == 1)
        fill(req, out, &op->descs[0]);
    srv_txn_op_free(op);
}

void srv_h_describe_transactions(srv_req *req)
{
    const kp_describe_transactions_request *rq = req->kr.body;
    kp_describe_transactions_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    int32_t n = rq->transactional_ids_count > 0 ? rq->transactional_ids_count : 0;
    if (resp) {
        kp_describe_transactions_response_init(resp);
        resp->transaction_states = kp_arena_alloc(&req->arena, (size_t)n * sizeof(txn_state) + 1);
    }
    if (!resp || !resp->transaction_states) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->transaction_states_count = n;
    req->state = resp;
    srv_req_then(req, finish);
    srv_req_hold(req);
    int32_t np = srv_txns_nparts(req->shard);
    for (int32_t i = 0; i < n; i++) {
        txn_state *out = &resp->transaction_states[i];
        kp_describe_transactions_response_transaction_state_init(out);
        out->transactional_id = rq->transactional_ids[i];
        out->transaction_state = kp_str_c("");
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_ids[i])) {
            out->error_code = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            continue;
        }
        srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_DESCRIBE, txn_done);
        if (!op) {
            out->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        op->txn_id = rq->transactional_ids[i];
        op->user = out;
        int16_t err =
            srv_txn_op_send(req, op, np > 0 ? srv_group_partition_for(rq->transactional_ids[i], np) : -1);
        if (err) {
            srv_txn_op_free(op);
            /* No __transaction_state yet: no id can be known. */
            out->error_code =
                err == KP_ERR_COORDINATOR_NOT_AVAILABLE && np == 0 ? KP_ERR_TRANSACTIONAL_ID_NOT_FOUND : err;
        }
    }
    srv_req_release(req);
}

/*
 * end_txn.c — EndTxn v0-5: commit or abort a producer's transaction. The
 * coordinator (txn_coord.c) writes the Prepare record and answers; the
 * markers and the Complete record follow there, after the answer, as in
 * Kafka. v5 (KIP-890, transactions v2) answers the bumped producer id and
 * epoch.
 *
 * Owns the decoding and the answer. Must not: decide a transaction's state.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/group.h"

static void answer(srv_req *req, int16_t err, int64_t pid, int16_t epoch)
{
    kp_end_txn_response resp;
    kp_end_txn_response_init(&resp);
    /* KafkaApis: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. */
    resp.error_code = srv_txn_map_fenced(err, req->kr.hdr.request_api_version, 2);
    resp.producer_id = err ? -1 : pid;
    resp.producer_epoch = err ? -1 : epoch;
    srv_req_respond(req, &resp);
}

static void txn_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    answer(op->call.req, op->error, op->out_pid, op->out_epoch);
    srv_txn_op_free(op);
}

void srv_h_end_txn(srv_req *req)
{
    const kp_end_txn_request *rq = req->kr.body;
    if (!srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_id)) {
        answer(req, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
        return;
    }
    srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_END, txn_done);
    if (!op) {
        answer(req, KP_ERR_UNKNOWN_SERVER_ERROR, -1, -1);
        return;
    }
    op->txn_id = rq->transactional_id;
    op->producer_id = rq->producer_id;
    op->producer_epoch = rq->producer_epoch;
    op->commit = rq->committed != 0;
    op->client_tv = req->kr.hdr.request_api_version >= 5 ? 2 : 0;
    int32_t n = srv_txns_nparts(req->shard);
    int16_t err = srv_txn_op_send(req, op, n > 0 ? srv_group_partition_for(rq->transactional_id, n) : -1);
    if (err) {
        srv_txn_op_free(op);
        answer(req, err, -1, -1);
    }
}

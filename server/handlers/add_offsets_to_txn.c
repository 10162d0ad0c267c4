/*
 * add_offsets_to_txn.c — AddOffsetsToTxn v0-4: the group's __consumer_offsets
 * partition joins the producer's transaction, so that TxnOffsetCommit can
 * write there and the markers reach it. Authorization is KafkaApis' (WRITE
 * on the transactional id, READ on the group); the decision and its record
 * are the coordinator's (txn_coord.c).
 *
 * Owns the decoding and the answer. Must not: decide a transaction's state.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "group/group.h"
#include "meta.h"

static void answer(srv_req *req, int16_t err)
{
    kp_add_offsets_to_txn_response resp;
    kp_add_offsets_to_txn_response_init(&resp);
    /* KafkaApis: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2. */
    resp.error_code = srv_txn_map_fenced(err, req->kr.hdr.request_api_version, 2);
    srv_req_respond(req, &resp);
}

static void txn_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    answer(op->call.req, op->error);
    srv_txn_op_free(op);
}

void srv_h_add_offsets_to_txn(srv_req *req)
{
    const kp_add_offsets_to_txn_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    if (!srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_id)) {
        answer(req, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return;
    }
    if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id)) {
        answer(req, KP_ERR_GROUP_AUTHORIZATION_FAILED);
        return;
    }
    /* The group's offsets partition, as the group coordinator routes it; a
     * missing __consumer_offsets is being created (retriable). */
    int16_t gerr = srv_groups_ready(s);
    const srv_topic *offsets = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_OFFSETS_TOPIC));
    if (gerr || !offsets) {
        answer(req, gerr ? gerr : KP_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_ADD_OFFSETS, txn_done);
    if (!op) {
        answer(req, KP_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    op->txn_id = rq->transactional_id;
    op->producer_id = rq->producer_id;
    op->producer_epoch = rq->producer_epoch;
    op->offsets_partition = srv_group_partition_for(rq->group_id, offsets->nparts);
    op->client_tv = req->kr.hdr.request_api_version >= 4 ? 2 : 0;
    int32_t n = srv_txns_nparts(s);
    int16_t err = srv_txn_op_send(req, op, n > 0 ? srv_group_partition_for(rq->transactional_id, n) : -1);
    if (err) {
        srv_txn_op_free(op);
        answer(req, err);
    }
}

/*
 * init_producer_id.c — InitProducerId. Without a transactional id (an
 * idempotent producer): a fresh producer id, epoch 0. With one: the request
 * goes to the id's transaction coordinator (txn_coord.c), which decides
 * (txn_state.c) and persists before answering.
 *
 * Ids come from a base taken from the clock at start-up, striped by shard
 * (base + k * nshards + shard), so shards never coordinate and ids never
 * repeat across restarts while the clock moves forward; the coordinator
 * takes its ids from the same allocator of its own shard.
 *
 * Owns the decoding and the answer. Must not: decide a transactional id's
 * state (the coordinator does).
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/group.h"
#include "logging.h"

static void answer(srv_req *req, int16_t err, int64_t pid, int16_t epoch)
{
    kp_init_producer_id_response resp;
    kp_init_producer_id_response_init(&resp);
    /* KafkaApis: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v4. */
    resp.error_code = srv_txn_map_fenced(err, req->kr.hdr.request_api_version, 4);
    resp.producer_id = err ? -1 : pid;
    resp.producer_epoch = err ? -1 : epoch;
    srv_req_respond(req, &resp);
}

static void txn_done(srv_shard *s, srv_txn_op *op)
{
    (void)s;
    srv_req *req = op->call.req;
    answer(req, op->error, op->out_pid, op->out_epoch);
    srv_txn_op_free(op);
}

static void init_transactional(srv_req *req, const kp_init_producer_id_request *rq)
{
    if (!srv_authorize(req, SRV_OP_WRITE, SRV_RES_TRANSACTIONAL_ID, rq->transactional_id)) {
        answer(req, KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
        return;
    }
    if (rq->transactional_id.len == 0) {
        answer(req, KP_ERR_INVALID_REQUEST, -1, -1);
        return;
    }
    srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_INIT, txn_done);
    if (!op) {
        answer(req, KP_ERR_UNKNOWN_SERVER_ERROR, -1, -1);
        return;
    }
    op->txn_id = rq->transactional_id;
    op->timeout_ms = rq->transaction_timeout_ms;
    /* KIP-360 (v3+): both set means "bump my epoch". */
    op->has_expected = rq->producer_id != -1 && rq->producer_epoch != -1;
    op->producer_id = rq->producer_id;
    op->producer_epoch = rq->producer_epoch;
    int32_t n = srv_txns_nparts(req->shard);
    int16_t err = srv_txn_op_send(req, op, n > 0 ? srv_group_partition_for(rq->transactional_id, n) : -1);
    if (err) {
        srv_txn_op_free(op);
        answer(req, err, -1, -1);
    }
}

void srv_h_init_producer_id(srv_req *req)
{
    const kp_init_producer_id_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_init_producer_id_response resp;
    kp_init_producer_id_response_init(&resp);
    if (rq->transactional_id.len >= 0) {
        init_transactional(req, rq);
        return;
    }
    /* As Kafka 3+: an idempotent producer needs IDEMPOTENT_WRITE on the
     * cluster or WRITE on some topic. */
    if (!srv_authorize_cluster(req, SRV_OP_IDEMPOTENT_WRITE) &&
        !srv_authorize_any(req, SRV_OP_WRITE, SRV_RES_TOPIC)) {
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.producer_id = -1;
        resp.producer_epoch = -1;
        srv_req_respond(req, &resp);
        return;
    }
    /* KIP-360: a producer asking to bump its epoch after an error gets a new
     * id instead, which resets its sequence state just the same. */
    resp.producer_id = srv_pid_at(s->b, s->next_pid, s->id);
    s->next_pid++;
    resp.producer_epoch = 0;
    srv_req_respond(req, &resp);
}

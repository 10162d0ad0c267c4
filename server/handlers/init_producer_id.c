/*
 * init_producer_id.c — InitProducerId for idempotent producers (no
 * transactional id): a fresh producer id, epoch 0.
 *
 * Ids come from a base taken from the clock at start-up, striped by shard
 * (base + k * nshards + shard), so shards never coordinate and ids never
 * repeat across restarts while the clock moves forward. Transactions are
 * not supported: a transactional id is refused with a clear message.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "logging.h"

void srv_h_init_producer_id(srv_req *req)
{
    const kp_init_producer_id_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    kp_init_producer_id_response resp;
    kp_init_producer_id_response_init(&resp);
    if (rq->transactional_id.len >= 0) {
        srv_info("InitProducerId with transactional.id refused: transactions are not supported");
        resp.error_code = KP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        resp.producer_id = -1;
        resp.producer_epoch = -1;
        srv_req_respond(req, &resp);
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
    resp.producer_id = s->b->pid_base + s->next_pid * s->b->nshards + s->id;
    s->next_pid++;
    resp.producer_epoch = 0;
    srv_req_respond(req, &resp);
}

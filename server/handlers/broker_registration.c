/*
 * broker_registration.c — BrokerRegistration (v0) and BrokerHeartbeat (v0)
 * from the other members of the metadata quorum (quorum.c sends them): the
 * active controller records a registration through the quorum and keeps
 * each broker's session alive on its heartbeats; any other node answers
 * NOT_CONTROLLER. Served only with controller.quorum.voters and never
 * advertised (in Kafka these live on the controller listener).
 */
#include <string.h>

#include "authz_req.h"
#include "controller.h"
#include "dispatch.h"
#include "errors.h"

typedef struct reg_state {
    srv_ctl_op op;
    srv_req *req;
    srv_broker_reg reg;
} reg_state;

static void reg_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    reg_state *st = (reg_state *)op;
    kp_broker_registration_response resp;
    kp_broker_registration_response_init(&resp);
    resp.error_code = op->reg_error;
    resp.broker_epoch = op->reg_error ? -1 : 1;
    srv_req_respond(st->req, &resp);
}

static void hb_done(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    reg_state *st = (reg_state *)op;
    kp_broker_heartbeat_response resp;
    kp_broker_heartbeat_response_init(&resp);
    resp.error_code = op->reg_error;
    resp.is_caught_up = 1;
    resp.is_fenced = (uint8_t)(op->reg_error || st->reg.fenced);
    srv_req_respond(st->req, &resp);
}

static reg_state *new_state(srv_req *req, int kind, srv_ctl_done_fn done)
{
    reg_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (!st) {
        srv_req_fail_close(req, "out of memory");
        return NULL;
    }
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->op.kind = kind;
    st->op.reg = &st->reg;
    st->op.done = done;
    return st;
}

/* Only the configured voters are members (every member is a voter in
 * combined mode): any other id from the wire is refused, so a client cannot
 * add brokers or grow the registered set without bound. */
static int is_voter(const srv_req *req, int32_t id)
{
    const srv_config *cfg = &req->shard->b->cfg;
    for (int i = 0; i < cfg->nvoters; i++)
        if (cfg->voters[i].id == id)
            return 1;
    return 0;
}

void srv_h_broker_registration(srv_req *req)
{
    const kp_broker_registration_request *rq = req->kr.body;
    if (!srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION)) {
        kp_broker_registration_response resp;
        kp_broker_registration_response_init(&resp);
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        srv_req_respond(req, &resp);
        return;
    }
    reg_state *st = new_state(req, SRV_CTL_REGISTER, reg_done);
    if (!st)
        return;
    /* The first listener is where clients of that node connect; a
     * registration without one cannot be listed in Metadata. */
    int bad = rq->listeners_count < 1 || rq->listeners[0].host.len <= 0 ||
              (size_t)rq->listeners[0].host.len >= sizeof(st->reg.host) || rq->listeners[0].port == 0 ||
              (rq->rack.len > 0 && (size_t)rq->rack.len >= sizeof(st->reg.rack)) ||
              !is_voter(req, rq->broker_id);
    if (bad) {
        st->op.reg_error = KP_ERR_INVALID_REQUEST;
        reg_done(req->shard, &st->op);
        return;
    }
    const char *cid = req->shard->b->cluster_id;
    if (rq->cluster_id.len != (int32_t)strlen(cid) || memcmp(rq->cluster_id.p, cid, strlen(cid)) != 0) {
        st->op.reg_error = KP_ERR_INCONSISTENT_CLUSTER_ID; /* Kafka's answer to a member of another cluster */
        reg_done(req->shard, &st->op);
        return;
    }
    st->reg.id = rq->broker_id;
    memcpy(st->reg.host, rq->listeners[0].host.p, (size_t)rq->listeners[0].host.len);
    st->reg.port = rq->listeners[0].port;
    if (rq->rack.len > 0)
        memcpy(st->reg.rack, rq->rack.p, (size_t)rq->rack.len);
    srv_ctl_submit(req->shard, req, &st->op);
}

void srv_h_broker_heartbeat(srv_req *req)
{
    const kp_broker_heartbeat_request *rq = req->kr.body;
    if (!srv_authorize_cluster(req, SRV_OP_CLUSTER_ACTION)) {
        kp_broker_heartbeat_response resp;
        kp_broker_heartbeat_response_init(&resp);
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        srv_req_respond(req, &resp);
        return;
    }
    reg_state *st = new_state(req, SRV_CTL_HEARTBEAT, hb_done);
    if (!st)
        return;
    if (!is_voter(req, rq->broker_id)) {
        st->op.reg_error = KP_ERR_BROKER_ID_NOT_REGISTERED;
        hb_done(req->shard, &st->op);
        return;
    }
    st->reg.id = rq->broker_id;
    srv_ctl_submit(req->shard, req, &st->op);
}

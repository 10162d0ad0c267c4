/*
 * heartbeat.c — Heartbeat (v0-4): keeps a member's session alive and tells
 * it when a rebalance is under way (REBALANCE_IN_PROGRESS).
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"

typedef struct hb_call {
    srv_gcall c;
    int16_t error;
} hb_call;

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    hb_call *h = (hb_call *)c;
    const kp_heartbeat_request *rq = c->call.req->kr.body;
    kp_str instance = c->call.req->kr.hdr.request_api_version >= 3 ? rq->group_instance_id : KP_STR_NULL;
    h->error = srv_group_heartbeat(gs, rq->group_id, rq->generation_id, rq->member_id, instance);
    srv_call_reply(owner, &c->call);
}

static void answer(srv_req *req, int16_t err)
{
    kp_heartbeat_response resp;
    kp_heartbeat_response_init(&resp);
    resp.error_code = err;
    srv_req_respond(req, &resp);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    hb_call *h = (hb_call *)c;
    answer(c->call.req, c->error ? c->error : h->error);
    srv_gcall_free(c);
}

void srv_h_heartbeat(srv_req *req)
{
    const kp_heartbeat_request *rq = req->kr.body;
    hb_call *h = srv_gcall_new(sizeof(*h), run, done);
    if (!h) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    /* READ on the group, before the group id is looked at (as Kafka). */
    int16_t err = !srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id)
                      ? KP_ERR_GROUP_AUTHORIZATION_FAILED
                  : rq->group_id.len <= 0 ? KP_ERR_INVALID_GROUP_ID
                                          : srv_gcall_send(req, &h->c, rq->group_id);
    if (err) {
        answer(req, err);
        srv_gcall_free(&h->c);
    }
}

/*
 * leave_group.c — LeaveGroup (v0-5): one member (v0-2) or a batch of
 * members, dynamic by member id or static by group instance id (v3+).
 * Before v3 the single member's error is the response's error, as in Kafka.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"

typedef struct lg_call {
    srv_gcall c;
    int n;
    srv_leave_member *members; /* in the request's arena; errors written by the owner */
    int16_t error;
} lg_call;

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    lg_call *l = (lg_call *)c;
    const kp_leave_group_request *rq = c->call.req->kr.body;
    l->error = srv_group_leave(gs, rq->group_id, l->n, l->members);
    srv_call_reply(owner, &c->call);
}

static void answer(srv_req *req, lg_call *l, int16_t err)
{
    int16_t v = req->kr.hdr.request_api_version;
    kp_leave_group_response resp;
    kp_leave_group_response_init(&resp);
    resp.error_code = err;
    if (v < 3) {
        if (!err && l->n > 0)
            resp.error_code = l->members[0].error;
    } else if (!err) {
        resp.members = kp_arena_alloc(&req->arena, (size_t)l->n * sizeof(*resp.members) + 1);
        if (!resp.members) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        for (int i = 0; i < l->n; i++) {
            kp_leave_group_response_member_response_init(&resp.members[i]);
            resp.members[i].member_id = l->members[i].member_id;
            resp.members[i].group_instance_id = l->members[i].instance_id;
            resp.members[i].error_code = l->members[i].error;
        }
        resp.members_count = l->n;
    }
    srv_req_respond(req, &resp);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    lg_call *l = (lg_call *)c;
    answer(c->call.req, l, c->error ? c->error : l->error);
    srv_gcall_free(c);
}

void srv_h_leave_group(srv_req *req)
{
    const kp_leave_group_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    lg_call *l = srv_gcall_new(sizeof(*l), run, done);
    int32_t n = v < 3 ? 1 : (rq->members_count > 0 ? rq->members_count : 0);
    srv_leave_member *ms = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*ms) + 1);
    if (!l || !ms) {
        srv_gcall_free(l ? &l->c : NULL);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        ms[i].member_id = v < 3 ? rq->member_id : rq->members[i].member_id;
        ms[i].instance_id = v < 3 ? KP_STR_NULL : rq->members[i].group_instance_id;
        if (ms[i].member_id.len < 0)
            ms[i].member_id = kp_str_c("");
    }
    l->n = (int)n;
    l->members = ms;
    /* READ on the group, before the group id is looked at (as Kafka). */
    int16_t err = !srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id)
                      ? KP_ERR_GROUP_AUTHORIZATION_FAILED
                  : rq->group_id.len <= 0 ? KP_ERR_INVALID_GROUP_ID
                                          : srv_gcall_send(req, &l->c, rq->group_id);
    if (err) {
        answer(req, l, err);
        srv_gcall_free(&l->c);
    }
}

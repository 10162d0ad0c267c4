/*
 * join_group.c — JoinGroup (v0-9): decoded here, run by the group's
 * coordinator shard (group/), answered when the rebalance completes.
 *
 * Owns the translation between the wire and srv_join_req / srv_join_result.
 * Must not: hold group state (the coordinator does) or answer from the
 * coordinator's shard (the answer travels back in the call's arena).
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "sstr.h"

typedef struct jg_call {
    srv_gcall c;
    srv_shard *owner;
    srv_join_req jr;
    kp_join_group_response resp;
} jg_call;

static void fill_error(kp_join_group_response *r, int16_t err, kp_str member_id)
{
    r->error_code = err;
    r->generation_id = -1;
    r->protocol_type = KP_STR_NULL;
    r->protocol_name = KP_STR_NULL;
    r->leader = kp_str_c("");
    r->member_id = member_id.len >= 0 ? member_id : kp_str_c("");
    r->members_count = 0;
}

/* On the coordinator's shard: copy the result into the call and send it back. */
static void on_result(void *ctx, const srv_join_result *r)
{
    jg_call *j = ctx;
    srv_gcall *c = &j->c;
    kp_join_group_response *o = &j->resp;
    o->error_code = r->error;
    o->generation_id = r->generation;
    o->protocol_type = srv_gcall_str(c, r->protocol_type);
    o->protocol_name = srv_gcall_str(c, r->protocol_name);
    o->leader = srv_gcall_str(c, r->leader);
    o->member_id = srv_gcall_str(c, r->member_id);
    o->skip_assignment = (uint8_t)r->skip_assignment;
    o->members_count = 0;
    if (r->nmembers > 0) {
        o->members = kp_arena_alloc(&c->arena, (size_t)r->nmembers * sizeof(*o->members));
        if (o->members) {
            for (int i = 0; i < r->nmembers; i++) {
                kp_join_group_response_join_group_response_member *m = &o->members[i];
                kp_join_group_response_join_group_response_member_init(m);
                m->member_id = srv_gcall_str(c, r->members[i].member_id);
                m->group_instance_id = srv_gcall_str(c, r->members[i].instance_id);
                m->metadata = srv_gcall_bytes(c, r->members[i].metadata);
            }
            o->members_count = r->nmembers;
        } /* else the call arena's failed flag refuses the whole answer */
    }
    srv_call_reply(j->owner, &c->call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    jg_call *j = (jg_call *)c;
    j->owner = owner;
    srv_group_join(gs, c->partition, &j->jr, on_result, j);
}

static void respond(srv_req *req, kp_join_group_response *r)
{
    int16_t v = req->kr.hdr.request_api_version;
    /* Before v7 the protocol name is not nullable: Kafka sends "". */
    if (v < 7 && r->protocol_name.len < 0)
        r->protocol_name = kp_str_c("");
    srv_req_respond(req, r);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    jg_call *j = (jg_call *)c;
    srv_req *req = c->call.req;
    if (c->error)
        fill_error(&j->resp, c->error, j->jr.member_id);
    respond(req, &j->resp);
    srv_gcall_free(c);
}

void srv_h_join_group(srv_req *req)
{
    const kp_join_group_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    jg_call *j = srv_gcall_new(sizeof(*j), run, done);
    int32_t np = rq->protocols_count > 0 ? rq->protocols_count : 0;
    srv_join_protocol *ps = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*ps) + 1);
    if (!j || !ps) {
        srv_gcall_free(j ? &j->c : NULL);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < np; i++) {
        ps[i].name = rq->protocols[i].name;
        ps[i].metadata = rq->protocols[i].metadata;
    }
    kp_join_group_response_init(&j->resp);
    srv_join_req *jr = &j->jr;
    jr->group_id = rq->group_id;
    jr->member_id = rq->member_id.len >= 0 ? rq->member_id : kp_str_c("");
    jr->instance_id = v >= 5 ? rq->group_instance_id : KP_STR_NULL;
    jr->client_id = req->kr.hdr.client_id.len >= 0 ? req->kr.hdr.client_id : kp_str_c("");
    jr->client_host = srv_req_client_host(req);
    jr->protocol_type = rq->protocol_type;
    jr->session_timeout_ms = rq->session_timeout_ms;
    /* v0 has no rebalance timeout: Kafka uses the session timeout. */
    jr->rebalance_timeout_ms = v >= 1 ? rq->rebalance_timeout_ms : rq->session_timeout_ms;
    jr->nprotocols = (int)np;
    jr->protocols = ps;
    jr->require_known_member_id = v >= 4 && jr->instance_id.len < 0;
    jr->support_skip_assignment = v >= 9;
    /* READ on the group, before the group id is looked at (as Kafka). */
    int16_t err = !srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id)
                      ? KP_ERR_GROUP_AUTHORIZATION_FAILED
                  : rq->group_id.len <= 0 ? KP_ERR_INVALID_GROUP_ID
                                          : srv_gcall_send(req, &j->c, rq->group_id);
    if (err) {
        fill_error(&j->resp, err, jr->member_id);
        respond(req, &j->resp);
        srv_gcall_free(&j->c);
    }
}

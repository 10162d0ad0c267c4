/*
 * sync_group.c — SyncGroup (v0-5): the leader's assignment in, each
 * member's assignment out, once the generation's metadata is durable.
 *
 * Owns the wire side only (see join_group.c). v5 requires the protocol type
 * and name (INCONSISTENT_GROUP_PROTOCOL when missing, as Kafka does).
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"

typedef struct sg_call {
    srv_gcall c;
    srv_shard *owner;
    srv_sync_req sr;
    kp_sync_group_response resp;
} sg_call;

static void fill_error(kp_sync_group_response *r, int16_t err)
{
    r->error_code = err;
    r->protocol_type = KP_STR_NULL;
    r->protocol_name = KP_STR_NULL;
    r->assignment = (kp_bytes){(const uint8_t *)"", 0};
}

static void on_result(void *ctx, const srv_sync_result *r)
{
    sg_call *g = ctx;
    g->resp.error_code = r->error;
    g->resp.protocol_type = srv_gcall_str(&g->c, r->protocol_type);
    g->resp.protocol_name = srv_gcall_str(&g->c, r->protocol_name);
    g->resp.assignment = srv_gcall_bytes(&g->c, r->assignment);
    srv_call_reply(g->owner, &g->c.call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    sg_call *g = (sg_call *)c;
    g->owner = owner;
    srv_group_sync(gs, &g->sr, on_result, g);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    sg_call *g = (sg_call *)c;
    if (c->error)
        fill_error(&g->resp, c->error);
    srv_req_respond(c->call.req, &g->resp);
    srv_gcall_free(c);
}

void srv_h_sync_group(srv_req *req)
{
    const kp_sync_group_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    sg_call *g = srv_gcall_new(sizeof(*g), run, done);
    int32_t n = rq->assignments_count > 0 ? rq->assignments_count : 0;
    srv_sync_assignment *as = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*as) + 1);
    if (!g || !as) {
        srv_gcall_free(g ? &g->c : NULL);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        as[i].member_id = rq->assignments[i].member_id;
        as[i].assignment = rq->assignments[i].assignment;
    }
    kp_sync_group_response_init(&g->resp);
    srv_sync_req *sr = &g->sr;
    sr->group_id = rq->group_id;
    sr->generation = rq->generation_id;
    sr->member_id = rq->member_id;
    sr->instance_id = v >= 3 ? rq->group_instance_id : KP_STR_NULL;
    sr->protocol_type = v >= 5 ? rq->protocol_type : KP_STR_NULL;
    sr->protocol_name = v >= 5 ? rq->protocol_name : KP_STR_NULL;
    sr->nassignments = (int)n;
    sr->assignments = as;
    int16_t err = KP_ERR_NONE;
    if (v >= 5 && (rq->protocol_type.len < 0 || rq->protocol_name.len < 0))
        err = KP_ERR_INCONSISTENT_GROUP_PROTOCOL;
    else if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id))
        err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    else if (rq->group_id.len <= 0)
        err = KP_ERR_INVALID_GROUP_ID;
    else
        err = srv_gcall_send(req, &g->c, rq->group_id);
    if (err) {
        fill_error(&g->resp, err);
        srv_req_respond(req, &g->resp);
        srv_gcall_free(&g->c);
    }
}

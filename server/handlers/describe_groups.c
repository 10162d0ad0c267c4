/*
 * describe_groups.c — DescribeGroups (v0-5): each group asked of its
 * coordinator shard. An unknown group is described as Dead with no members
 * and no error, as Kafka does (so is a KIP-848 consumer group, which is not
 * a classic group); member metadata and assignments are shown
 * only while the group is Stable.
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "sstr.h"

/* READ | DELETE | DESCRIBE: what a group resource supports (no ACLs here). */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

typedef struct dg_call {
    srv_gcall c;
    kp_describe_groups_response_described_group *out; /* in the request's arena */
    kp_str group_id;
} dg_call;

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    dg_call *d = (dg_call *)c;
    kp_describe_groups_response_described_group *o = d->out;
    srv_group *g = srv_groups_find(gs, d->group_id);
    o->group_state = kp_str_c("Dead");
    o->protocol_type = kp_str_c("");
    o->protocol_data = kp_str_c("");
    o->members_count = 0;
    /* A consumer group (KIP-848) is not a classic group: Kafka describes it
     * as Dead, without error. */
    if (g && !g->cg) {
        int stable = g->state == SRV_GS_STABLE;
        o->group_state = srv_gcall_str(c, kp_str_c(srv_group_state_name(g->state)));
        o->protocol_type = srv_gcall_str(c, g->protocol_type ? srv_s(g->protocol_type) : kp_str_c(""));
        o->protocol_data =
            srv_gcall_str(c, stable && g->protocol_name ? srv_s(g->protocol_name) : kp_str_c(""));
        o->members = kp_arena_alloc(&c->arena, (size_t)g->nmembers * sizeof(*o->members) + 1);
        if (o->members) {
            for (int i = 0; i < g->nmembers; i++) {
                const srv_gmember *m = g->members[i];
                kp_describe_groups_response_described_group_member *mo = &o->members[i];
                kp_describe_groups_response_described_group_member_init(mo);
                mo->member_id = srv_gcall_str(c, srv_s(m->id));
                mo->group_instance_id = srv_gcall_str(c, srv_s(m->instance_id));
                mo->client_id = srv_gcall_str(c, srv_s(m->client_id));
                mo->client_host = srv_gcall_str(c, srv_s(m->client_host));
                mo->member_metadata = (kp_bytes){(const uint8_t *)"", 0};
                mo->member_assignment = (kp_bytes){(const uint8_t *)"", 0};
                if (stable) {
                    mo->member_metadata = srv_gcall_bytes(c, srv_gmember_metadata(g, m));
                    mo->member_assignment =
                        srv_gcall_bytes(c, (kp_bytes){m->assignment ? m->assignment : (const uint8_t *)"",
                                                      m->assignment ? m->assignment_len : 0});
                }
            }
            o->members_count = g->nmembers;
        } /* else the call arena's failed flag refuses the whole answer */
    }
    srv_call_reply(owner, &c->call);
}

static void finish(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    if (c->error)
        ((dg_call *)c)->out->error_code = c->error;
    /* The answer's strings live in the call's arena: move them to the request. */
    kp_describe_groups_response_described_group *o = ((dg_call *)c)->out;
    kp_describe_groups_response_described_group copy = *o;
    kp_describe_groups_response_described_group_member *ms =
        kp_arena_alloc(&req->arena, (size_t)copy.members_count * sizeof(*ms) + 1);
#define MOVE_STR(x)   ((x) = kp_arena_str(&req->arena, (x)))
#define MOVE_BYTES(x) ((x) = kp_arena_bytes(&req->arena, (x)))
    MOVE_STR(copy.group_state);
    MOVE_STR(copy.protocol_type);
    MOVE_STR(copy.protocol_data);
    if (!ms)
        copy.members_count = 0;
    for (int32_t i = 0; ms && i < copy.members_count; i++) {
        ms[i] = copy.members[i];
        MOVE_STR(ms[i].member_id);
        MOVE_STR(ms[i].group_instance_id);
        MOVE_STR(ms[i].client_id);
        MOVE_STR(ms[i].client_host);
        MOVE_BYTES(ms[i].member_metadata);
        MOVE_BYTES(ms[i].member_assignment);
    }
    copy.members = ms;
    *o = copy;
    srv_gcall_free(c);
}

void srv_h_describe_groups(srv_req *req)
{
    const kp_describe_groups_request *rq = req->kr.body;
    int32_t n = rq->groups_count > 0 ? rq->groups_count : 0;
    kp_describe_groups_response *resp = kp_arena_alloc(&req->arena, sizeof(*resp));
    if (resp) {
        kp_describe_groups_response_init(resp);
        resp->groups = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*resp->groups) + 1);
    }
    if (!resp || !resp->groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = resp;
    resp->groups_count = n;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < n; i++) {
        kp_describe_groups_response_described_group *o = &resp->groups[i];
        kp_describe_groups_response_described_group_init(o);
        o->group_id = rq->groups[i];
        o->group_state = kp_str_c("");
        o->protocol_type = kp_str_c("");
        o->protocol_data = kp_str_c("");
        o->members_count = 0;
        o->authorized_operations = !rq->include_authorized_operations ? INT32_MIN
                                   : srv_authz_enabled(req)
                                       ? srv_authorized_ops(req, SRV_RES_GROUP, rq->groups[i])
                                       : GROUP_OPERATIONS;
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, rq->groups[i])) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            o->authorized_operations = INT32_MIN;
            continue;
        }
        if (rq->groups[i].len < 0) {
            o->error_code = KP_ERR_INVALID_GROUP_ID;
            o->group_id = kp_str_c("");
            continue;
        }
        dg_call *d = srv_gcall_new(sizeof(*d), run, done);
        if (!d) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        d->out = o;
        d->group_id = rq->groups[i];
        int16_t err = srv_gcall_send(req, &d->c, rq->groups[i]);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&d->c);
        }
    }
    srv_req_release(req);
}

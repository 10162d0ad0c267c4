/*
 * list_groups.c — ListGroups (v0-5): every shard lists the groups it
 * coordinates, filtered there by state (v4+) and type (v5+: "classic",
 * "consumer" for KIP-848 groups, "share" for KIP-932 ones), and the lists are
 * concatenated.
 */
#include <string.h>
#include <strings.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/consumer.h"
#include "group/coord.h"
#include "share_group.h"
#include "sstr.h"

typedef struct lg_call {
    srv_gcall c;
    int n, cap;
    kp_list_groups_response_listed_group *groups; /* in the call's arena */
} lg_call;

typedef struct walk {
    lg_call *l;
    const kp_list_groups_request *rq;
    int16_t version;
} walk;

static int in_filter(const kp_str *list, int32_t n, const char *value)
{
    if (n <= 0)
        return 1;
    for (int32_t i = 0; i < n; i++)
        if (list[i].len >= 0 && strlen(value) == (size_t)list[i].len &&
            strncasecmp(list[i].p, value, (size_t)list[i].len) == 0)
            return 1;
    return 0;
}

static void add_one(walk *w, kp_str id, kp_str protocol_type, const char *state, const char *type)
{
    lg_call *l = w->l;
    if (w->version >= 4 && !in_filter(w->rq->states_filter, w->rq->states_filter_count, state))
        return;
    if (w->version >= 5 && !in_filter(w->rq->types_filter, w->rq->types_filter_count, type))
        return;
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 16;
        kp_list_groups_response_listed_group *ng = kp_arena_alloc(&l->c.arena, (size_t)nc * sizeof(*ng));
        if (!ng)
            return;
        for (int i = 0; i < l->n; i++)
            ng[i] = l->groups[i];
        l->groups = ng;
        l->cap = nc;
    }
    kp_list_groups_response_listed_group *o = &l->groups[l->n++];
    kp_list_groups_response_listed_group_init(o);
    o->group_id = srv_gcall_str(&l->c, id);
    o->protocol_type = srv_gcall_str(&l->c, protocol_type);
    o->group_state = srv_gcall_str(&l->c, kp_str_c(state));
    o->group_type = srv_gcall_str(&l->c, kp_str_c(type));
}

static void add(void *arg, const srv_group *g)
{
    const char *state = g->cg ? srv_cgroup_state_name(g->cg) : srv_group_state_name(g->state);
    add_one(arg, srv_s(g->id), g->protocol_type ? srv_s(g->protocol_type) : kp_str_c(""), state,
            g->cg ? "consumer" : "classic");
}

/* Share groups (share_group.c) live beside the others on the same shard; Kafka
 * lists them with protocol type and group type "share". */
static void add_share(void *arg, kp_str id, const char *state)
{
    add_one(arg, id, kp_str_c("share"), state, "share");
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    walk w = {(lg_call *)c, c->call.req->kr.body, c->call.req->kr.hdr.request_api_version};
    srv_groups_foreach(gs, add, &w);
    if (owner->share_groups)
        srv_share_foreach(owner->share_groups, add_share, &w);
    srv_call_reply(owner, &c->call);
}

static void finish(srv_req *req);

typedef struct lg_state {
    kp_list_groups_response resp;
    lg_call **calls;
    int ncalls;
} lg_state;

static void cleanup(srv_req *req)
{
    lg_state *st = req->state;
    for (int i = 0; st && i < st->ncalls; i++)
        srv_gcall_free(&st->calls[i]->c);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    lg_state *st = req->state;
    lg_call *l = (lg_call *)c;
    if (c->error && !st->resp.error_code)
        st->resp.error_code = c->error;
    st->calls[st->ncalls++] = l; /* freed with the request, after the answer is encoded */
}

static void finish(srv_req *req)
{
    lg_state *st = req->state;
    int total = 0;
    for (int i = 0; i < st->ncalls; i++)
        total += st->calls[i]->n;
    st->resp.groups = kp_arena_alloc(&req->arena, (size_t)total * sizeof(*st->resp.groups) + 1);
    if (!st->resp.groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    /* As Kafka: DESCRIBE on the cluster lists every group, else only the
     * groups the principal may DESCRIBE. */
    int all = srv_authorize_cluster(req, SRV_OP_DESCRIBE);
    for (int i = 0; i < st->ncalls; i++)
        for (int k = 0; k < st->calls[i]->n; k++)
            if (all || srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, st->calls[i]->groups[k].group_id))
                st->resp.groups[st->resp.groups_count++] = st->calls[i]->groups[k];
    srv_req_respond(req, &st->resp);
}

void srv_h_list_groups(srv_req *req)
{
    srv_shard *s = req->shard;
    int ns = s->b->nshards;
    lg_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st)
        st->calls = kp_arena_alloc(&req->arena, (size_t)ns * sizeof(*st->calls));
    if (!st || !st->calls) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_list_groups_response_init(&st->resp);
    st->resp.groups_count = 0;
    req->state = st;
    req->cleanup = cleanup;
    lg_call **calls = kp_arena_alloc(&req->arena, (size_t)ns * sizeof(*calls));
    if (!calls) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int i = 0; i < ns; i++) {
        calls[i] = srv_gcall_new(sizeof(lg_call), run, done);
        if (!calls[i]) {
            for (int k = 0; k < i; k++)
                srv_gcall_free(&calls[k]->c);
            srv_req_fail_close(req, "out of memory");
            return;
        }
    }
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int i = 0; i < ns; i++)
        srv_gcall_send_shard(req, &calls[i]->c, i);
    srv_req_release(req);
}

/*
 * consumer_group_describe.c — ConsumerGroupDescribe (v0, KIP-848): each group
 * asked of its coordinator shard. A group that does not exist or is not a
 * consumer group gets GROUP_ID_NOT_FOUND, as in Kafka.
 *
 * Owns the wire shape of the description. Must not: keep group state; the
 * description lives in each call's arena until the answer is encoded.
 */
#include <stdio.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/consumer.h"
#include "group/coord.h"
#include "meta.h"
#include "sstr.h"

/* READ | DELETE | DESCRIBE: what a group resource supports (no ACLs here). */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

typedef struct cgd_call {
    srv_gcall c;
    kp_consumer_group_describe_response_described_group *out; /* in the request's arena */
    kp_str group_id;
} cgd_call;

typedef struct cgd_state {
    kp_consumer_group_describe_response resp;
    int ncalls;
    cgd_call **calls;
} cgd_state;

static int describe_set(srv_gcall *c, const srv_meta *meta, const srv_tps *s,
                        kp_consumer_group_describe_response_assignment *o)
{
    kp_consumer_group_describe_response_assignment_init(o);
    srv_tpgroup *runs = kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*runs));
    int32_t *parts = kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*parts));
    kp_consumer_group_describe_response_topic_partitions *tps =
        kp_arena_alloc(&c->arena, ((size_t)s->n + 1) * sizeof(*tps));
    if (!runs || !parts || !tps)
        return -1;
    int n = srv_tps_groups(s, runs, parts);
    for (int i = 0; i < n; i++) {
        kp_consumer_group_describe_response_topic_partitions_init(&tps[i]);
        const srv_topic *t = srv_meta_topic_by_id(meta, &runs[i].topic);
        tps[i].topic_id = runs[i].topic;
        /* A deleted topic has no name any more: Kafka shows it as "". */
        tps[i].topic_name = srv_gcall_str(c, kp_str_c(t ? t->name : ""));
        tps[i].partitions = (int32_t *)runs[i].parts;
        tps[i].partitions_count = runs[i].n;
    }
    o->topic_partitions = tps;
    o->topic_partitions_count = n;
    return 0;
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    cgd_call *d = (cgd_call *)c;
    kp_consumer_group_describe_response_described_group *o = d->out;
    srv_group *g = srv_groups_find(gs, d->group_id);
    if (!g || !g->cg) {
        char msg[300];
        snprintf(msg, sizeof(msg), g ? "Group %.*s is not a consumer group." : "Group %.*s not found.",
                 d->group_id.len > 200 ? 200 : d->group_id.len, d->group_id.p);
        o->error_code = KP_ERR_GROUP_ID_NOT_FOUND;
        o->error_message = srv_gcall_str(c, kp_str_c(msg));
        srv_call_reply(owner, &c->call);
        return;
    }
    const srv_cgroup *cg = g->cg;
    o->group_state = srv_gcall_str(c, kp_str_c(srv_cgroup_state_name(cg)));
    o->group_epoch = cg->epoch;
    o->assignment_epoch = cg->assignment_epoch;
    o->assignor_name = srv_gcall_str(c, srv_cgroup_assignor(cg));
    /* A refused allocation stops the filling; the call arena's failed flag
     * then refuses the whole answer. */
    o->members = kp_arena_alloc(&c->arena, ((size_t)cg->nmembers + 1) * sizeof(*o->members));
    int ok = o->members != NULL;
    for (int i = 0; ok && i < cg->nmembers; i++) {
        const srv_cmember *m = cg->members[i];
        kp_consumer_group_describe_response_member *mo = &o->members[i];
        kp_consumer_group_describe_response_member_init(mo);
        mo->member_id = srv_gcall_str(c, srv_s(m->id));
        mo->instance_id = srv_gcall_str(c, srv_s(m->instance_id));
        mo->rack_id = srv_gcall_str(c, srv_s(m->rack_id));
        mo->member_epoch = m->epoch;
        mo->client_id = srv_gcall_str(c, m->client_id ? srv_s(m->client_id) : kp_str_c(""));
        mo->client_host = srv_gcall_str(c, m->client_host ? srv_s(m->client_host) : kp_str_c(""));
        mo->subscribed_topic_names = kp_arena_alloc(&c->arena, ((size_t)m->nsubs + 1) * sizeof(kp_str));
        if (!mo->subscribed_topic_names) {
            ok = 0;
            break;
        }
        for (int k = 0; k < m->nsubs; k++)
            mo->subscribed_topic_names[k] = srv_gcall_str(c, srv_s(m->subs[k]));
        mo->subscribed_topic_names_count = m->nsubs;
        /* Kafka sends "" for a member without a regex. */
        mo->subscribed_topic_regex = m->regex ? srv_gcall_str(c, srv_s(m->regex)) : kp_str_c("");
        if (describe_set(c, owner->meta, &m->assigned, &mo->assignment) ||
            describe_set(c, owner->meta, &m->target, &mo->target_assignment))
            ok = 0;
    }
    o->members_count = ok ? cg->nmembers : 0;
    srv_call_reply(owner, &c->call);
}

static void cleanup(srv_req *req)
{
    cgd_state *st = req->state;
    for (int i = 0; st && i < st->ncalls; i++)
        srv_gcall_free(&st->calls[i]->c);
}

static int may_describe_all(srv_req *req, const kp_consumer_group_describe_response_assignment *a)
{
    for (int32_t i = 0; i < a->topic_partitions_count; i++)
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, a->topic_partitions[i].topic_name))
            return 0;
    return 1;
}

/* As Kafka 4.4 (seen on the wire): a group whose members subscribe to or
 * are assigned a topic the principal may not DESCRIBE is not described. */
static void hide_undescribable(srv_req *req, kp_consumer_group_describe_response_described_group *g)
{
    int ok = 1;
    for (int32_t m = 0; ok && m < g->members_count; m++) {
        const kp_consumer_group_describe_response_member *mb = &g->members[m];
        for (int32_t i = 0; ok && i < mb->subscribed_topic_names_count; i++)
            ok = srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, mb->subscribed_topic_names[i]);
        ok = ok && may_describe_all(req, &mb->assignment) && may_describe_all(req, &mb->target_assignment);
    }
    if (ok)
        return;
    kp_str id = g->group_id;
    kp_consumer_group_describe_response_described_group_init(g);
    g->group_id = id;
    g->group_state = kp_str_c("");
    g->assignor_name = kp_str_c("");
    g->members_count = 0;
    g->authorized_operations = INT32_MIN;
    g->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
    g->error_message =
        kp_str_c("The group has described topic(s) that the client is not authorized to describe.");
}

/* Every call is back. */
static void finish(srv_req *req)
{
    cgd_state *st = req->state;
    for (int32_t i = 0; srv_authz_enabled(req) && i < st->resp.groups_count; i++)
        if (st->resp.groups[i].error_code == 0)
            hide_undescribable(req, &st->resp.groups[i]);
    srv_req_respond(req, &st->resp);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    cgd_state *st = req->state;
    cgd_call *d = (cgd_call *)c;
    if (c->error)
        d->out->error_code = c->error;
    /* The description points into the call's arena: kept until encoded. */
    st->calls[st->ncalls++] = d;
}

void srv_h_consumer_group_describe(srv_req *req)
{
    const kp_consumer_group_describe_request *rq = req->kr.body;
    int32_t n = rq->group_ids_count > 0 ? rq->group_ids_count : 0;
    cgd_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st) {
        kp_consumer_group_describe_response_init(&st->resp);
        st->ncalls = 0;
        st->calls = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*st->calls));
        st->resp.groups = kp_arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*st->resp.groups));
    }
    if (!st || !st->calls || !st->resp.groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = st;
    req->cleanup = cleanup;
    st->resp.groups_count = n;
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int32_t i = 0; i < n; i++) {
        kp_consumer_group_describe_response_described_group *o = &st->resp.groups[i];
        kp_consumer_group_describe_response_described_group_init(o);
        o->group_id = rq->group_ids[i].len >= 0 ? rq->group_ids[i] : kp_str_c("");
        o->group_state = kp_str_c("");
        o->assignor_name = kp_str_c("");
        o->members_count = 0;
        o->authorized_operations = !rq->include_authorized_operations ? INT32_MIN
                                   : srv_authz_enabled(req)
                                       ? srv_authorized_ops(req, SRV_RES_GROUP, rq->group_ids[i])
                                       : GROUP_OPERATIONS;
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, rq->group_ids[i])) {
            o->error_code = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            o->authorized_operations = INT32_MIN;
            continue;
        }
        if (rq->group_ids[i].len <= 0) {
            o->error_code = KP_ERR_INVALID_GROUP_ID;
            continue;
        }
        cgd_call *d = srv_gcall_new(sizeof(*d), run, done);
        if (!d) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        d->out = o;
        d->group_id = rq->group_ids[i];
        int16_t err = srv_gcall_send(req, &d->c, rq->group_ids[i]);
        if (err) {
            o->error_code = err;
            srv_gcall_free(&d->c);
        }
    }
    srv_req_release(req);
}

/*
 * offset_fetch.c — OffsetFetch (v0-9): one group (v0-7) or several (v8+),
 * given partitions or all of a group's offsets (null topics, v2+), each
 * group asked of its coordinator shard. A partition without a committed
 * offset answers -1 with no error, as Kafka does. With require_stable (v7+)
 * a partition holding a transaction's pending offset answers
 * UNSTABLE_OFFSET_COMMIT and -1 (Kafka's fetchOffsets, per partition in every
 * version); without it pending offsets are invisible. v9 carries
 * the member id and epoch of a consumer group (KIP-848) member, checked by
 * the coordinator (STALE_MEMBER_EPOCH).
 */
#include <string.h>

#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "sstr.h"

typedef struct of_topic {
    kp_str name;
    const int32_t *parts;
    int32_t nparts;
} of_topic;

typedef struct of_part {
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    kp_str metadata;
    int16_t error; /* UNSTABLE_OFFSET_COMMIT or 0 */
} of_part;

typedef struct of_result {
    kp_str name;
    int n, cap;
    of_part *parts;
} of_result;

typedef struct of_call {
    srv_gcall c;
    kp_str group_id;
    kp_str member_id; /* v9+: a consumer group member's fetch is checked */
    int32_t member_epoch;
    int require_stable;
    int ntopics; /* -1: every committed offset */
    const of_topic *topics;
    /* results, in the call's arena */
    int16_t error;
    int nres, rcap;
    of_result *res;
    const srv_groups *gs; /* while run runs on the owner */
} of_call;

static of_result *result_topic(of_call *o, kp_str name)
{
    for (int i = 0; i < o->nres; i++)
        if (srv_str_same(o->res[i].name, name))
            return &o->res[i];
    if (o->nres == o->rcap) {
        int nc = o->rcap ? o->rcap * 2 : 8;
        of_result *nr = kp_arena_alloc(&o->c.arena, (size_t)nc * sizeof(*nr));
        if (!nr)
            return NULL;
        if (o->nres)
            memcpy(nr, o->res, (size_t)o->nres * sizeof(*nr));
        o->res = nr;
        o->rcap = nc;
    }
    of_result *r = &o->res[o->nres++];
    memset(r, 0, sizeof(*r));
    r->name = srv_gcall_str(&o->c, name);
    return r;
}

static void add_part(of_call *o, of_result *r, int32_t p, const srv_goffset *off)
{
    if (!r)
        return;
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 8;
        of_part *np = kp_arena_alloc(&o->c.arena, (size_t)nc * sizeof(*np));
        if (!np)
            return;
        if (r->n)
            memcpy(np, r->parts, (size_t)r->n * sizeof(*np));
        r->parts = np;
        r->cap = nc;
    }
    of_part *x = &r->parts[r->n++];
    x->partition = p;
    x->offset = off ? off->offset : -1;
    x->epoch = off ? off->leader_epoch : -1;
    x->metadata = srv_gcall_str(&o->c, off && off->metadata ? srv_s(off->metadata) : kp_str_c(""));
    x->error = KP_ERR_NONE;
    if (o->require_stable && o->gs && srv_group_txn_pending(o->gs, o->group_id, r->name, p)) {
        x->error = KP_ERR_UNSTABLE_OFFSET_COMMIT;
        x->offset = -1;
        x->epoch = -1;
        x->metadata = kp_str_c("");
    }
}

static void add_any(void *arg, const srv_goffset *off)
{
    of_call *o = arg;
    add_part(o, result_topic(o, srv_s(off->topic)), off->partition, off);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    of_call *o = (of_call *)c;
    o->gs = gs;
    srv_group *g = srv_groups_find(gs, o->group_id);
    int16_t err = srv_group_validate_fetch(gs, o->group_id, o->member_id, o->member_epoch);
    if (err) {
        /* UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH as the group's error. */
        c->error = err;
    } else if (o->ntopics < 0) {
        if (g)
            srv_group_foreach_offset(g, add_any, o);
    } else {
        for (int i = 0; i < o->ntopics; i++) {
            const of_topic *t = &o->topics[i];
            /* The name is echoed as sent, every byte of it. */
            of_result *r = result_topic(o, t->name.len >= 0 ? t->name : kp_str_c(""));
            for (int32_t k = 0; k < t->nparts; k++)
                add_part(o, r, t->parts[k], g ? srv_group_offset(g, t->name, t->parts[k]) : NULL);
        }
    }
    o->gs = NULL;
    srv_call_reply(owner, &c->call);
}

typedef struct of_state {
    int ncalls;
    of_call **calls; /* per group, in request order (NULL: refused before sending) */
    int16_t *errors;
} of_state;

static void cleanup(srv_req *req)
{
    of_state *st = req->state;
    for (int i = 0; st && i < st->ncalls; i++)
        if (st->calls[i])
            srv_gcall_free(&st->calls[i]->c);
}

/* The v0-7 body, from the one group's results. */
static void answer_single(srv_req *req, of_call *o, int16_t err)
{
    int16_t v = req->kr.hdr.request_api_version;
    const kp_offset_fetch_request *rq = req->kr.body;
    kp_offset_fetch_response resp;
    kp_offset_fetch_response_init(&resp);
    resp.error_code = v >= 2 ? err : KP_ERR_NONE;
    resp.topics_count = 0;
    int nt = err ? (v < 2 ? (rq->topics_count > 0 ? rq->topics_count : 0) : 0) : o->nres;
    resp.topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*resp.topics) + 1);
    if (!resp.topics) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int w = 0;
    for (int i = 0; i < nt; i++) {
        /* As Kafka: topics the principal may not DESCRIBE are left out of
         * an all-topics answer and refused per partition when named. */
        int denied = !err && !srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, o->res[i].name);
        if (denied && o->ntopics < 0)
            continue;
        kp_offset_fetch_response_offset_fetch_response_topic *t = &resp.topics[w++];
        kp_offset_fetch_response_offset_fetch_response_topic_init(t);
        /* Before v2 a group error is every partition's error. */
        int np = err ? rq->topics[i].partition_indexes_count : o->res[i].n;
        np = np > 0 ? np : 0;
        t->name = err ? rq->topics[i].name : o->res[i].name;
        t->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*t->partitions) + 1);
        if (!t->partitions) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        for (int k = 0; k < np; k++) {
            kp_offset_fetch_response_offset_fetch_response_partition *p = &t->partitions[k];
            kp_offset_fetch_response_offset_fetch_response_partition_init(p);
            if (err || denied) {
                p->partition_index = err ? rq->topics[i].partition_indexes[k] : o->res[i].parts[k].partition;
                p->committed_offset = -1;
                p->committed_leader_epoch = -1;
                p->metadata = kp_str_c("");
                p->error_code = err ? err : KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            } else {
                p->partition_index = o->res[i].parts[k].partition;
                p->committed_offset = o->res[i].parts[k].offset;
                p->committed_leader_epoch = o->res[i].parts[k].epoch;
                p->metadata = o->res[i].parts[k].metadata;
                p->error_code = o->res[i].parts[k].error;
            }
        }
        t->partitions_count = np;
    }
    resp.topics_count = w;
    srv_req_respond(req, &resp);
}

static void answer_groups(srv_req *req, of_state *st)
{
    const kp_offset_fetch_request *rq = req->kr.body;
    kp_offset_fetch_response resp;
    kp_offset_fetch_response_init(&resp);
    resp.groups = kp_arena_alloc(&req->arena, (size_t)st->ncalls * sizeof(*resp.groups) + 1);
    if (!resp.groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    for (int gi = 0; gi < st->ncalls; gi++) {
        kp_offset_fetch_response_offset_fetch_response_group *g = &resp.groups[gi];
        kp_offset_fetch_response_offset_fetch_response_group_init(g);
        of_call *o = st->calls[gi];
        g->group_id = rq->groups[gi].group_id;
        g->error_code = st->errors[gi];
        int nt = g->error_code || !o ? 0 : o->nres;
        g->topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*g->topics) + 1);
        if (!g->topics) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        int w = 0;
        for (int i = 0; i < nt; i++) {
            int denied = !srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_TOPIC, o->res[i].name);
            if (denied && o->ntopics < 0)
                continue;
            kp_offset_fetch_response_offset_fetch_response_topics *t = &g->topics[w++];
            kp_offset_fetch_response_offset_fetch_response_topics_init(t);
            t->name = o->res[i].name;
            t->partitions = kp_arena_alloc(&req->arena, (size_t)o->res[i].n * sizeof(*t->partitions) + 1);
            if (!t->partitions) {
                srv_req_fail_close(req, "out of memory");
                return;
            }
            for (int k = 0; k < o->res[i].n; k++) {
                kp_offset_fetch_response_offset_fetch_response_partitions *p = &t->partitions[k];
                kp_offset_fetch_response_offset_fetch_response_partitions_init(p);
                p->partition_index = o->res[i].parts[k].partition;
                p->committed_offset = o->res[i].parts[k].offset;
                p->committed_leader_epoch = o->res[i].parts[k].epoch;
                p->metadata = o->res[i].parts[k].metadata;
                p->error_code = o->res[i].parts[k].error;
                if (denied) {
                    p->committed_offset = -1;
                    p->committed_leader_epoch = -1;
                    p->metadata = kp_str_c("");
                    p->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
                }
            }
            t->partitions_count = o->res[i].n;
        }
        g->topics_count = w;
    }
    resp.groups_count = st->ncalls;
    srv_req_respond(req, &resp);
}

static void finish(srv_req *req)
{
    of_state *st = req->state;
    if (req->kr.hdr.request_api_version >= 8)
        answer_groups(req, st);
    else
        answer_single(req, st->calls[0], st->errors[0]);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    of_state *st = req->state;
    for (int i = 0; i < st->ncalls; i++)
        if (st->calls[i] == (of_call *)c && c->error)
            st->errors[i] = c->error;
}

/* Builds the uniform topic list of one group; NULL topics: -1 (all). */
static int topics_of(srv_req *req, const void *arr, int32_t count, int v8, const of_topic **out)
{
    if (count < 0) {
        *out = NULL;
        return -1;
    }
    of_topic *ts = kp_arena_alloc(&req->arena, (size_t)count * sizeof(*ts) + 1);
    if (!ts)
        return -2;
    for (int32_t i = 0; i < count; i++) {
        if (v8) {
            const kp_offset_fetch_request_offset_fetch_request_topics *t =
                &((const kp_offset_fetch_request_offset_fetch_request_topics *)arr)[i];
            ts[i] = (of_topic){t->name, t->partition_indexes,
                               t->partition_indexes_count > 0 ? t->partition_indexes_count : 0};
        } else {
            const kp_offset_fetch_request_offset_fetch_request_topic *t =
                &((const kp_offset_fetch_request_offset_fetch_request_topic *)arr)[i];
            ts[i] = (of_topic){t->name, t->partition_indexes,
                               t->partition_indexes_count > 0 ? t->partition_indexes_count : 0};
        }
    }
    *out = ts;
    return count;
}

void srv_h_offset_fetch(srv_req *req)
{
    const kp_offset_fetch_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    int ng = v >= 8 ? (rq->groups_count > 0 ? rq->groups_count : 0) : 1;
    of_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st) {
        st->calls = kp_arena_alloc(&req->arena, (size_t)ng * sizeof(*st->calls) + 1);
        st->errors = kp_arena_alloc(&req->arena, (size_t)ng * sizeof(*st->errors) + 1);
    }
    if (!st || !st->calls || !st->errors) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    st->ncalls = ng;
    req->state = st;
    req->cleanup = cleanup;
    for (int i = 0; i < ng; i++) {
        of_call *o = srv_gcall_new(sizeof(*o), run, done);
        if (!o) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        st->calls[i] = o;
        o->group_id = v >= 8 ? rq->groups[i].group_id : rq->group_id;
        o->member_id = v >= 9 ? rq->groups[i].member_id : KP_STR_NULL;
        o->member_epoch = v >= 9 ? rq->groups[i].member_epoch : -1;
        o->require_stable = v >= 7 && rq->require_stable;
        /* v0-1 have no null topics: an empty list is just empty. */
        int nt = v >= 8 ? topics_of(req, rq->groups[i].topics, rq->groups[i].topics_count, 1, &o->topics)
                        : topics_of(req, rq->topics, v < 2 && rq->topics_count < 0 ? 0 : rq->topics_count, 0,
                                    &o->topics);
        if (nt == -2) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        o->ntopics = nt;
    }
    srv_req_then(req, finish);
    srv_req_hold(req); /* calls answered inline cannot finish the request half-way */
    for (int i = 0; i < ng; i++) {
        of_call *o = st->calls[i];
        int16_t err = !srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, o->group_id)
                          ? KP_ERR_GROUP_AUTHORIZATION_FAILED
                      : o->group_id.len < 0 ? KP_ERR_INVALID_GROUP_ID
                                            : srv_gcall_send(req, &o->c, o->group_id);
        if (err)
            st->errors[i] = err;
    }
    srv_req_release(req);
}

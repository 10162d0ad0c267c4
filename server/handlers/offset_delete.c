/*
 * offset_delete.c — OffsetDelete (v0): removes committed offsets of an Empty
 * group, or of topics a consumer group no longer subscribes to
 * (GROUP_SUBSCRIBED_TO_TOPIC otherwise), with tombstones in
 * __consumer_offsets.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "meta.h"

typedef struct od_call {
    srv_gcall c;
    srv_shard *owner;
    int n;
    srv_offset_del_item *items; /* in the request's arena */
    kp_str group_id;
    int16_t error;
} od_call;

typedef struct od_state {
    kp_offset_delete_response resp;
    int n;
    srv_offset_del_item *items;
    kp_offset_delete_response_offset_delete_response_partition **out;
} od_state;

static void answer(srv_req *req, int16_t err)
{
    od_state *st = req->state;
    st->resp.error_code = err;
    if (err) {
        st->resp.topics_count = 0; /* a group error carries no partitions, as in Kafka */
    } else {
        for (int i = 0; i < st->n; i++)
            st->out[i]->error_code = st->items[i].error;
    }
    srv_req_respond(req, &st->resp);
}

static void deleted(void *ctx)
{
    od_call *o = ctx;
    srv_call_reply(o->owner, &o->c.call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    od_call *o = (od_call *)c;
    o->owner = owner;
    srv_group_delete_offsets(gs, o->group_id, o->n, o->items, &o->error, deleted, o);
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    od_call *o = (od_call *)c;
    srv_req *req = c->call.req;
    int16_t err = c->error ? c->error : o->error;
    srv_gcall_free(c);
    answer(req, err);
}

void srv_h_offset_delete(srv_req *req)
{
    const kp_offset_delete_request *rq = req->kr.body;
    srv_shard *s = req->shard;
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    int n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += rq->topics[i].partitions_count > 0 ? rq->topics[i].partitions_count : 0;
    od_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st) {
        kp_offset_delete_response_init(&st->resp);
        st->resp.topics = kp_arena_alloc(&req->arena, (size_t)nt * sizeof(*st->resp.topics) + 1);
        st->items = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->items) + 1);
        st->out = kp_arena_alloc(&req->arena, (size_t)n * sizeof(*st->out) + 1);
    }
    if (!st || !st->resp.topics || !st->items || !st->out) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    req->state = st;
    st->resp.topics_count = nt;
    if (!srv_authorize(req, SRV_OP_DELETE, SRV_RES_GROUP, rq->group_id)) {
        /* As Kafka: the group's error alone, no topics. */
        st->resp.topics_count = 0;
        st->n = 0;
        answer(req, KP_ERR_GROUP_AUTHORIZATION_FAILED);
        return;
    }
    for (int32_t i = 0; i < nt; i++) {
        const kp_offset_delete_request_offset_delete_request_topic *tq = &rq->topics[i];
        kp_offset_delete_response_offset_delete_response_topic *tr = &st->resp.topics[i];
        kp_offset_delete_response_offset_delete_response_topic_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        if (!tr->partitions) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        tr->partitions_count = np;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        int topic_ok = srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < np; j++) {
            kp_offset_delete_response_offset_delete_response_partition *pr = &tr->partitions[j];
            kp_offset_delete_response_offset_delete_response_partition_init(pr);
            pr->partition_index = tq->partitions[j].partition_index;
            srv_offset_del_item *it = &st->items[st->n];
            st->out[st->n++] = pr;
            it->topic = tq->name;
            it->partition = pr->partition_index;
            if (!topic_ok)
                it->error = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!t || it->partition < 0 || it->partition >= t->nparts)
                it->error = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    }
    od_call *o = srv_gcall_new(sizeof(*o), run, done);
    if (!o) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    o->n = st->n;
    o->items = st->items;
    o->group_id = rq->group_id;
    int16_t err = rq->group_id.len < 0 ? KP_ERR_INVALID_GROUP_ID : srv_gcall_send(req, &o->c, rq->group_id);
    if (err) {
        srv_gcall_free(&o->c);
        answer(req, err);
    }
}

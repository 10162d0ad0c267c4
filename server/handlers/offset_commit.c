/*
 * offset_commit.c — OffsetCommit (v0-9): validated here against the topics
 * (UNKNOWN_TOPIC_OR_PARTITION), committed by the group's coordinator shard,
 * answered once the records are durable in __consumer_offsets.
 *
 * Timestamps follow Kafka: the commit time is now unless v1 gives one; v2-4
 * retention_time_ms (when not -1) sets an explicit expiry.
 */
#include "authz_req.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "meta.h"

typedef struct oc_call {
    srv_gcall c;
    srv_shard *owner;
    int n;
    srv_commit_item *items; /* in the request's arena */
    int32_t generation;
    kp_str group_id, member_id, instance_id;
} oc_call;

typedef struct oc_state {
    kp_offset_commit_response resp;
    int n;
    srv_commit_item *items;
    kp_offset_commit_response_offset_commit_response_partition **out;
} oc_state;

static void answer(srv_req *req)
{
    oc_state *st = req->state;
    for (int i = 0; i < st->n; i++)
        st->out[i]->error_code = st->items[i].error;
    srv_req_respond(req, &st->resp);
}

static void committed(void *ctx)
{
    oc_call *o = ctx;
    srv_call_reply(o->owner, &o->c.call);
}

static void run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    oc_call *o = (oc_call *)c;
    o->owner = owner;
    srv_group_commit(gs, c->partition, o->group_id, o->generation, o->member_id, o->instance_id,
                     c->call.req->kr.hdr.request_api_version, o->n, o->items, committed, o);
}

static void fail_all(oc_state *st, int16_t err)
{
    for (int i = 0; i < st->n; i++)
        if (!st->items[i].error)
            st->items[i].error = err;
}

static void done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    srv_req *req = c->call.req;
    if (c->error)
        fail_all(req->state, c->error);
    srv_gcall_free(c);
    answer(req);
}

void srv_h_offset_commit(srv_req *req)
{
    const kp_offset_commit_request *rq = req->kr.body;
    int16_t v = req->kr.hdr.request_api_version;
    srv_shard *s = req->shard;
    int64_t now = srv_now_ms();
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    int n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += rq->topics[i].partitions_count > 0 ? rq->topics[i].partitions_count : 0;
    oc_state *st = kp_arena_alloc(&req->arena, sizeof(*st));
    if (st) {
        kp_offset_commit_response_init(&st->resp);
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
    int64_t expire = v >= 2 && v <= 4 && rq->retention_time_ms != -1 ? now + rq->retention_time_ms : -1;
    int valid = 0;
    /* As Kafka: READ on the group (else every partition answers
     * GROUP_AUTHORIZATION_FAILED), then READ on each topic. */
    int group_ok = srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id);
    for (int32_t i = 0; i < nt; i++) {
        const kp_offset_commit_request_offset_commit_request_topic *tq = &rq->topics[i];
        kp_offset_commit_response_offset_commit_response_topic *tr = &st->resp.topics[i];
        kp_offset_commit_response_offset_commit_response_topic_init(tr);
        tr->name = tq->name;
        int32_t np = tq->partitions_count > 0 ? tq->partitions_count : 0;
        tr->partitions = kp_arena_alloc(&req->arena, (size_t)np * sizeof(*tr->partitions) + 1);
        if (!tr->partitions) {
            srv_req_fail_close(req, "out of memory");
            return;
        }
        tr->partitions_count = np;
        const srv_topic *t = srv_meta_topic(s->meta, tq->name);
        int topic_ok = group_ok && srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, tq->name);
        for (int32_t j = 0; j < np; j++) {
            const kp_offset_commit_request_offset_commit_request_partition *pq = &tq->partitions[j];
            kp_offset_commit_response_offset_commit_response_partition *pr = &tr->partitions[j];
            kp_offset_commit_response_offset_commit_response_partition_init(pr);
            pr->partition_index = pq->partition_index;
            srv_commit_item *it = &st->items[st->n];
            st->out[st->n++] = pr;
            it->topic = tq->name;
            it->partition = pq->partition_index;
            it->offset = pq->committed_offset;
            it->leader_epoch = v >= 6 ? pq->committed_leader_epoch : -1;
            it->metadata = pq->committed_metadata;
            it->commit_ts = v == 1 && pq->commit_timestamp != -1 ? pq->commit_timestamp : now;
            it->expire_ts = expire;
            if (!group_ok)
                it->error = KP_ERR_GROUP_AUTHORIZATION_FAILED;
            else if (!topic_ok)
                it->error = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!t || pq->partition_index < 0 || pq->partition_index >= t->nparts)
                it->error = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                valid++;
        }
    }
    if (valid == 0) {
        answer(req);
        return;
    }
    oc_call *o = srv_gcall_new(sizeof(*o), run, done);
    if (!o) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    o->n = st->n;
    o->items = st->items;
    o->group_id = rq->group_id;
    o->generation = v >= 1 ? rq->generation_id_or_member_epoch : -1;
    o->member_id = v >= 1 && rq->member_id.len >= 0 ? rq->member_id : kp_str_c("");
    o->instance_id = v >= 7 ? rq->group_instance_id : KP_STR_NULL;
    int16_t err = rq->group_id.len < 0 ? KP_ERR_INVALID_GROUP_ID : srv_gcall_send(req, &o->c, rq->group_id);
    if (err) {
        srv_gcall_free(&o->c);
        fail_all(st, err);
        answer(req);
    }
}

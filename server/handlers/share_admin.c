/*
 * share_admin.c — the share-group offset admin APIs (KIP-932):
 * DescribeShareGroupOffsets, AlterShareGroupOffsets and
 * DeleteShareGroupOffsets, answered as Apache Kafka 4.4 answers them.
 *
 * The state is on the group's coordinator shard (share_group.c), reached as
 * a group call; DescribeShareGroupOffsets then asks each partition's owner
 * for its high watermark (partcall.h) to give the lag, as Kafka does.
 *
 * Owns the translation between the wire and share_group.h's admin
 * operations. Must not: hold group state, block, or touch another shard
 * other than through group calls and partition ops.
 */
#include <stdlib.h>
#include <string.h>

#include "authz_req.h"
#include "clock.h"
#include "dispatch.h"
#include "errors.h"
#include "group/coord.h"
#include "meta.h"
#include "partcall.h"
#include "share_coord.h"
#include "share_group.h"

typedef kp_describe_share_group_offsets_request_describe_share_group_offsets_request_group dso_req_group;
typedef kp_describe_share_group_offsets_response_describe_share_group_offsets_response_group dso_group;
typedef kp_describe_share_group_offsets_response_describe_share_group_offsets_response_topic dso_topic;
typedef kp_describe_share_group_offsets_response_describe_share_group_offsets_response_partition dso_part;

/* "Group <id> not found." by length: ids are protocol strings. */
static kp_str group_not_found(kp_arena *a, kp_str id)
{
    size_t n = (size_t)(id.len > 0 ? id.len : 0);
    char *m = kp_arena_alloc(a, n + 17);
    if (!m)
        return KP_STR_NULL;
    memcpy(m, "Group ", 6);
    if (n)
        memcpy(m + 6, id.p, n);
    memcpy(m + 6 + n, " not found.", 11);
    return (kp_str){m, (int32_t)(n + 17)};
}

static const char NOT_HOSTED[] = "This server does not host this topic-partition.";
static const char NOT_EMPTY[] = "The group is not empty.";

/* ---- DescribeShareGroupOffsets --------------------------------------------- */

/* One partition asked about (or found), and where its answer goes. */
typedef struct dso_item {
    srv_share_off off;
    dso_part *out; /* in the request's arena, set back on the request's shard */
} dso_item;

typedef struct dso_call {
    srv_gcall c;
    kp_str group_id;
    int all;              /* Topics null: every share-partition with state */
    dso_item *items;      /* named partitions: in the request's arena */
    int nitems;           /* named partitions */
    srv_share_off *found; /* all: in the call's arena */
    int nfound;
    dso_group *out;
} dso_call;

typedef struct dso_lag {
    srv_part_op base;
    int64_t hwm;
    int16_t error;
    dso_part *out;
    int64_t done;
} dso_lag;

static void dso_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    dso_call *h = (dso_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    if (!sg) {
        c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else if (h->all) {
        h->nfound = srv_share_offsets_all(sg, h->group_id, srv_mono_ms(), &c->arena, &h->found);
        if (h->nfound < 0)
            c->error = KP_ERR_UNKNOWN_SERVER_ERROR;
    } else {
        for (int i = 0; i < h->nitems; i++)
            srv_share_offset_of(sg, h->group_id, &h->items[i].off);
    }
    srv_call_reply(owner, &c->call);
}

static void lag_run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    dso_lag *op = (dso_lag *)base;
    if (!p || srv_part_offline(p))
        op->error = p ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NOT_LEADER_OR_FOLLOWER;
    else
        op->hwm = st_log_high_watermark(p->log);
    srv_call_reply(owner, &base->call);
}

static void lag_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    dso_lag *op = (dso_lag *)base;
    srv_req *req = base->call.req;
    /* Kafka's lag: what the log holds past the share-partition start that is
     * not yet acknowledged or archived. */
    if (!op->error)
        op->out->lag = op->hwm - op->out->start_offset - op->done;
    free(op);
    srv_req_release(req);
}

/* The lag of a partition with state needs its high watermark, on its owner. */
static void ask_lag(srv_req *req, const srv_share_off *o, dso_part *out)
{
    const srv_topic *t = srv_meta_topic_by_id(req->shard->meta, &o->tp.topic);
    int16_t err = 0;
    dso_lag *op = t ? srv_part_op_new(t, o->tp.partition, sizeof(*op), lag_run, lag_done, &err) : NULL;
    if (!op)
        return; /* the lag stays unknown (-1) */
    op->out = out;
    op->done = o->done;
    srv_req_hold(req); /* released by lag_done */
    srv_part_op_send(req, &op->base);
}

static void dso_part_fill(dso_part *p, const srv_share_off *o)
{
    kp_describe_share_group_offsets_response_describe_share_group_offsets_response_partition_init(p);
    p->partition_index = o->tp.partition;
    p->start_offset = o->start;
    p->leader_epoch = 0; /* Kafka's answer: the state's leader epoch, 0 here */
    p->lag = -1;
}

static void dso_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    dso_call *h = (dso_call *)c;
    srv_req *req = c->call.req;
    kp_arena *a = &req->arena;
    dso_group *o = h->out;
    o->error_code = c->error;
    if (!c->error && h->all) {
        /* Grouped by topic (found is sorted by topic id, then partition). */
        o->topics = kp_arena_alloc(a, ((size_t)h->nfound + 1) * sizeof(*o->topics));
        dso_part *parts = kp_arena_alloc(a, ((size_t)h->nfound + 1) * sizeof(*parts));
        o->topics_count = 0;
        dso_topic *cur = NULL;
        for (int i = 0; o->topics && parts && i < h->nfound; i++) {
            const srv_share_off *f = &h->found[i];
            const srv_topic *t = srv_meta_topic_by_id(req->shard->meta, &f->tp.topic);
            if (!t)
                continue; /* the topic was deleted since */
            if (!cur || memcmp(cur->topic_id.b, f->tp.topic.b, 16) != 0) {
                cur = &o->topics[o->topics_count++];
                kp_describe_share_group_offsets_response_describe_share_group_offsets_response_topic_init(
                    cur);
                cur->topic_id = f->tp.topic;
                cur->topic_name = kp_arena_strz(a, t->name);
                cur->partitions = &parts[i];
                cur->partitions_count = 0;
            }
            dso_part *p = &cur->partitions[cur->partitions_count++];
            dso_part_fill(p, f);
            if (f->start >= 0)
                ask_lag(req, f, p);
        }
    } else if (!c->error) {
        for (int i = 0; i < h->nitems; i++) {
            dso_part_fill(h->items[i].out, &h->items[i].off);
            if (h->items[i].off.start >= 0)
                ask_lag(req, &h->items[i].off, h->items[i].out);
        }
    }
    srv_gcall_free(c);
    srv_req_release(req);
}

static void dso_then(srv_req *req)
{
    srv_req_respond(req, req->state);
}

static void dso_group_error(dso_group *o, int16_t err)
{
    o->error_code = err;
    o->topics = NULL;
    o->topics_count = 0;
}

void srv_h_describe_share_group_offsets(srv_req *req)
{
    const kp_describe_share_group_offsets_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    kp_describe_share_group_offsets_response *resp = kp_arena_alloc(a, sizeof(*resp));
    int32_t n = rq->groups_count > 0 ? rq->groups_count : 0;
    if (!resp) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_describe_share_group_offsets_response_init(resp);
    resp->groups = kp_arena_alloc(a, ((size_t)n + 1) * sizeof(*resp->groups));
    if (!resp->groups) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    resp->groups_count = n;
    req->state = resp;
    srv_req_then(req, dso_then);
    srv_req_hold(req);
    for (int32_t i = 0; i < n; i++) {
        const dso_req_group *g = &rq->groups[i];
        dso_group *o = &resp->groups[i];
        kp_describe_share_group_offsets_response_describe_share_group_offsets_response_group_init(o);
        o->group_id = g->group_id;
        o->topics = kp_arena_alloc(a, sizeof(*o->topics));
        o->topics_count = 0;
        if (!srv_authorize(req, SRV_OP_DESCRIBE, SRV_RES_GROUP, g->group_id)) {
            dso_group_error(o, KP_ERR_GROUP_AUTHORIZATION_FAILED);
            continue;
        }
        dso_call *h = srv_gcall_new(sizeof(*h), dso_run, dso_done);
        if (!h) {
            dso_group_error(o, KP_ERR_UNKNOWN_SERVER_ERROR);
            continue;
        }
        h->group_id = g->group_id;
        h->out = o;
        h->all = g->topics_count < 0;
        if (!h->all) {
            /* The named partitions, answered in the order asked; a topic
             * unknown here is answered as Kafka does (zero id, no state). */
            int64_t total = 0;
            for (int32_t k = 0; k < g->topics_count; k++)
                total += g->topics[k].partitions_count > 0 ? g->topics[k].partitions_count : 0;
            h->items = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*h->items));
            o->topics = kp_arena_alloc(a, ((size_t)g->topics_count + 1) * sizeof(*o->topics));
            dso_part *parts = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*parts));
            if (!h->items || !o->topics || !parts) {
                srv_gcall_free(&h->c);
                dso_group_error(o, KP_ERR_UNKNOWN_SERVER_ERROR);
                continue;
            }
            for (int32_t k = 0; k < g->topics_count; k++) {
                const kp_describe_share_group_offsets_request_describe_share_group_offsets_request_topic *rt =
                    &g->topics[k];
                dso_topic *ot = &o->topics[o->topics_count++];
                kp_describe_share_group_offsets_response_describe_share_group_offsets_response_topic_init(ot);
                ot->topic_name = rt->topic_name;
                const srv_topic *t = srv_meta_topic(req->shard->meta, rt->topic_name);
                if (t)
                    ot->topic_id = t->id;
                ot->partitions = &parts[h->nitems];
                ot->partitions_count = 0;
                for (int32_t q = 0; q < rt->partitions_count; q++) {
                    dso_item *it = &h->items[h->nitems++];
                    it->off.tp.topic = ot->topic_id;
                    it->off.tp.partition = rt->partitions[q];
                    it->off.start = -1;
                    it->out = &ot->partitions[ot->partitions_count++];
                    dso_part_fill(it->out, &it->off);
                }
            }
        }
        srv_req_hold(req); /* released by dso_done */
        int16_t err = srv_gcall_send(req, &h->c, g->group_id);
        if (err) {
            dso_group_error(o, err);
            srv_gcall_free(&h->c);
            srv_req_release(req);
        }
    }
    srv_req_release(req);
}

/* ---- AlterShareGroupOffsets ------------------------------------------------ */

typedef kp_alter_share_group_offsets_response_alter_share_group_offsets_response_topic aso_topic;
typedef kp_alter_share_group_offsets_response_alter_share_group_offsets_response_partition aso_part;

typedef struct aso_item {
    srv_share_tp tp;
    int64_t start;
    aso_part *out; /* error_code set on the owner: the request waits for the call */
} aso_item;

typedef struct aso_call {
    srv_gcall c;
    kp_str group_id;
    aso_item *items; /* the valid partitions, in the request's arena */
    int nitems;
    int16_t error;
    /* The records of the altered share-partitions (the owner's, in the
     * request's arena sized by nitems): new starts, then resets. */
    srv_share_tp *tps;
    aso_item **which;
    int16_t *errs;
    int nset, nreset, pending;
    kp_alter_share_group_offsets_response resp;
} aso_call;

/* One of the two writes is durable (or failed): the answer waits for both,
 * as Kafka answers an alter once its state is written. */
static void aso_persisted(srv_shard *owner, void *arg)
{
    aso_call *h = arg;
    if (--h->pending > 0)
        return;
    for (int i = 0; i < h->nset + h->nreset; i++)
        if (h->errs[i])
            h->which[i]->out->error_code = h->errs[i];
    srv_call_reply(owner, &h->c.call);
}

static void aso_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    aso_call *h = (aso_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    int16_t err = sg ? srv_share_check_empty(sg, h->group_id, srv_mono_ms()) : KP_ERR_UNKNOWN_SERVER_ERROR;
    if (err == KP_ERR_GROUP_ID_NOT_FOUND)
        err = 0; /* Kafka makes the group: offsets can be set before it is used */
    if (!err && h->nitems && srv_share_state_ready(owner) != KP_ERR_NONE)
        err = KP_ERR_COORDINATOR_NOT_AVAILABLE; /* nowhere to write the new state yet: retriable */
    h->error = err;
    h->nset = h->nreset = 0;
    for (int i = 0; !err && i < h->nitems; i++) {
        aso_item *it = &h->items[i];
        it->out->error_code = srv_share_alter_offset(sg, h->group_id, &it->tp, it->start);
        if (it->out->error_code || it->start >= 0)
            continue;
        /* A reset is written as Kafka's snapshot without a start. */
        h->tps[h->nitems - 1 - h->nreset] = it->tp;
        h->which[h->nitems - 1 - h->nreset] = it;
        h->nreset++;
    }
    for (int i = 0; !err && i < h->nitems; i++) {
        aso_item *it = &h->items[i];
        if (it->out->error_code || it->start < 0)
            continue;
        h->tps[h->nset] = it->tp;
        h->which[h->nset] = it;
        h->nset++;
    }
    if (err || (!h->nset && !h->nreset)) {
        srv_call_reply(owner, &c->call);
        return;
    }
    /* The resets were put at the end: move them next to the new starts. */
    memmove(&h->tps[h->nset], &h->tps[h->nitems - h->nreset], (size_t)h->nreset * sizeof(*h->tps));
    memmove(&h->which[h->nset], &h->which[h->nitems - h->nreset], (size_t)h->nreset * sizeof(*h->which));
    h->pending = 2;
    srv_share_persist(owner, h->group_id, h->tps, h->nset, h->errs, aso_persisted, h);
    srv_share_persist_reset(owner, h->group_id, &h->tps[h->nset], h->nreset, &h->errs[h->nset], aso_persisted,
                            h);
}

static void aso_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    aso_call *h = (aso_call *)c;
    kp_alter_share_group_offsets_response *r = &h->resp;
    int16_t err = c->error ? c->error : h->error;
    if (err) {
        r->error_code = err;
        r->error_message = err == KP_ERR_NON_EMPTY_GROUP ? kp_str_c(NOT_EMPTY) : KP_STR_NULL;
        r->responses_count = 0;
    }
    srv_req_respond(c->call.req, r);
    srv_gcall_free(c);
}

void srv_h_alter_share_group_offsets(srv_req *req)
{
    const kp_alter_share_group_offsets_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    aso_call *h = srv_gcall_new(sizeof(*h), aso_run, aso_done);
    if (!h) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_alter_share_group_offsets_response *r = &h->resp;
    kp_alter_share_group_offsets_response_init(r);
    h->group_id = rq->group_id;
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    int64_t total = 0;
    for (int32_t k = 0; k < nt; k++)
        total += rq->topics[k].partitions_count > 0 ? rq->topics[k].partitions_count : 0;
    r->responses = kp_arena_alloc(a, ((size_t)nt + 1) * sizeof(*r->responses));
    aso_part *parts = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*parts));
    h->items = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*h->items));
    h->tps = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*h->tps));
    h->which = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*h->which));
    h->errs = kp_arena_alloc(a, ((size_t)total + 1) * sizeof(*h->errs));
    if (!r->responses || !parts || !h->items || !h->tps || !h->which || !h->errs) {
        srv_gcall_free(&h->c);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int16_t err = 0;
    if (!srv_authorize(req, SRV_OP_READ, SRV_RES_GROUP, rq->group_id))
        err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    int64_t np = 0;
    for (int32_t k = 0; !err && k < nt; k++) {
        const kp_alter_share_group_offsets_request_alter_share_group_offsets_request_topic *rt =
            &rq->topics[k];
        aso_topic *ot = &r->responses[r->responses_count++];
        kp_alter_share_group_offsets_response_alter_share_group_offsets_response_topic_init(ot);
        ot->topic_name = rt->topic_name;
        const srv_topic *t = srv_meta_topic(req->shard->meta, rt->topic_name);
        int16_t terr = !srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, rt->topic_name)
                           ? KP_ERR_TOPIC_AUTHORIZATION_FAILED
                       : !t ? KP_ERR_UNKNOWN_TOPIC_OR_PARTITION
                            : 0;
        if (t)
            ot->topic_id = t->id;
        ot->partitions = &parts[np];
        ot->partitions_count = 0;
        for (int32_t q = 0; q < rt->partitions_count; q++) {
            const kp_alter_share_group_offsets_request_alter_share_group_offsets_request_partition *rp =
                &rt->partitions[q];
            aso_part *op = &ot->partitions[ot->partitions_count++];
            np++;
            kp_alter_share_group_offsets_response_alter_share_group_offsets_response_partition_init(op);
            op->partition_index = rp->partition_index;
            int16_t perr = terr ? terr
                           : rp->partition_index < 0 || rp->partition_index >= t->nparts
                               ? KP_ERR_UNKNOWN_TOPIC_OR_PARTITION
                               : 0;
            if (perr) {
                op->error_code = perr;
                if (perr == KP_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                    op->error_message = kp_str_c(NOT_HOSTED);
                continue;
            }
            aso_item *it = &h->items[h->nitems++];
            it->tp.topic = t->id;
            it->tp.partition = rp->partition_index;
            it->start = rp->start_offset;
            it->out = op;
        }
    }
    if (!err && rq->group_id.len <= 0)
        err = KP_ERR_INVALID_GROUP_ID;
    if (!err)
        err = srv_gcall_send(req, &h->c, rq->group_id);
    if (err) {
        r->error_code = err;
        r->responses_count = 0;
        srv_req_respond(req, r);
        srv_gcall_free(&h->c);
    }
}

/* ---- DeleteShareGroupOffsets ----------------------------------------------- */

typedef kp_delete_share_group_offsets_response_delete_share_group_offsets_response_topic dlo_topic;

typedef struct dlo_call {
    srv_gcall c;
    kp_str group_id;
    kp_uuid *topics; /* the known topics to delete, in the request's arena */
    int ntopics;
    int16_t error;
    srv_share_tp *tps; /* the dropped share-partitions, in the call's arena */
    int16_t *errs;
    int ntps;
    kp_delete_share_group_offsets_response resp;
} dlo_call;

/* The tombstones are durable (or failed): a failed one is the request's
 * error, since the deletion would not survive a restart. */
static void dlo_dropped(srv_shard *owner, void *arg)
{
    dlo_call *h = arg;
    for (int i = 0; !h->error && i < h->ntps; i++)
        h->error = h->errs[i];
    srv_call_reply(owner, &h->c.call);
}

static void dlo_run(srv_shard *owner, srv_gcall *c, srv_groups *gs)
{
    (void)gs;
    dlo_call *h = (dlo_call *)c;
    srv_share_groups *sg = srv_share_store(owner);
    int16_t err = sg ? srv_share_check_empty(sg, h->group_id, srv_mono_ms()) : KP_ERR_UNKNOWN_SERVER_ERROR;
    h->ntps = 0;
    for (int i = 0; !err && i < h->ntopics; i++) {
        int n = srv_share_tps(sg, h->group_id, &h->topics[i], NULL, 0);
        srv_share_tp *v = kp_arena_alloc(&c->arena, ((size_t)h->ntps + (size_t)n + 1) * sizeof(*v));
        int16_t *e = kp_arena_alloc(&c->arena, ((size_t)h->ntps + (size_t)n + 1) * sizeof(*e));
        if (!v || !e) {
            err = KP_ERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        if (h->ntps)
            memcpy(v, h->tps, (size_t)h->ntps * sizeof(*v));
        srv_share_tps(sg, h->group_id, &h->topics[i], &v[h->ntps], n);
        h->tps = v;
        h->errs = e;
        h->ntps += n;
        srv_share_delete_topic(sg, h->group_id, &h->topics[i]);
    }
    h->error = err;
    if (err || !h->ntps) {
        srv_call_reply(owner, &c->call);
        return;
    }
    srv_share_persist_drop(owner, h->group_id, h->tps, h->ntps, h->errs, dlo_dropped, h);
}

static void dlo_done(srv_shard *s, srv_gcall *c)
{
    (void)s;
    dlo_call *h = (dlo_call *)c;
    srv_req *req = c->call.req;
    kp_delete_share_group_offsets_response *r = &h->resp;
    int16_t err = c->error ? c->error : h->error;
    if (err) {
        r->error_code = err;
        r->error_message = err == KP_ERR_NON_EMPTY_GROUP      ? kp_str_c(NOT_EMPTY)
                           : err == KP_ERR_GROUP_ID_NOT_FOUND ? group_not_found(&req->arena, h->group_id)
                                                              : KP_STR_NULL;
        r->responses_count = 0;
    }
    srv_req_respond(req, r);
    srv_gcall_free(c);
}

void srv_h_delete_share_group_offsets(srv_req *req)
{
    const kp_delete_share_group_offsets_request *rq = req->kr.body;
    kp_arena *a = &req->arena;
    dlo_call *h = srv_gcall_new(sizeof(*h), dlo_run, dlo_done);
    if (!h) {
        srv_req_fail_close(req, "out of memory");
        return;
    }
    kp_delete_share_group_offsets_response *r = &h->resp;
    kp_delete_share_group_offsets_response_init(r);
    h->group_id = rq->group_id;
    int32_t nt = rq->topics_count > 0 ? rq->topics_count : 0;
    r->responses = kp_arena_alloc(a, ((size_t)nt + 1) * sizeof(*r->responses));
    h->topics = kp_arena_alloc(a, ((size_t)nt + 1) * sizeof(*h->topics));
    if (!r->responses || !h->topics) {
        srv_gcall_free(&h->c);
        srv_req_fail_close(req, "out of memory");
        return;
    }
    int16_t err = 0;
    if (!srv_authorize(req, SRV_OP_DELETE, SRV_RES_GROUP, rq->group_id))
        err = KP_ERR_GROUP_AUTHORIZATION_FAILED;
    for (int32_t k = 0; !err && k < nt; k++) {
        dlo_topic *ot = &r->responses[r->responses_count++];
        kp_delete_share_group_offsets_response_delete_share_group_offsets_response_topic_init(ot);
        ot->topic_name = rq->topics[k].topic_name;
        const srv_topic *t = srv_meta_topic(req->shard->meta, ot->topic_name);
        if (!srv_authorize(req, SRV_OP_READ, SRV_RES_TOPIC, ot->topic_name)) {
            ot->error_code = KP_ERR_TOPIC_AUTHORIZATION_FAILED;
        } else if (!t) {
            ot->error_code = KP_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            ot->error_message = kp_str_c(NOT_HOSTED);
        } else {
            ot->topic_id = t->id;
            h->topics[h->ntopics++] = t->id;
        }
    }
    if (!err && rq->group_id.len <= 0)
        err = KP_ERR_INVALID_GROUP_ID;
    if (!err)
        err = srv_gcall_send(req, &h->c, rq->group_id);
    if (err) {
        r->error_code = err;
        r->responses_count = 0;
        srv_req_respond(req, r);
        srv_gcall_free(&h->c);
    }
}
